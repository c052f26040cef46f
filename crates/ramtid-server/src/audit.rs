//! The audit log: one JSON line per model activation, reload, training run, re-budgeting,
//! erasure and retention purge, appended and synced to disk before the RPC answers.
//!
//! `{"time":"2026-01-31T12:00:00.123Z","caller":"dora","role":"data",
//!   "action":"activate_model","target":"nordstad/3 as production","outcome":"ok"}`
//!
//! `caller` and `role` are null when access control is disabled.
//!
//! The log fails closed: an action that cannot be recorded is not carried out. It is opened
//! for append at start-up (a server that cannot open it does not start). An action whose
//! outcome is known before it changes anything (ActivateModel, ReloadModels) writes its line
//! before the change and is refused if the line cannot be written. An action that changes
//! or reads data as it runs (TrainModel, RebudgetCaseload, EraseCase, a purge) first writes
//! a line with `"outcome":"started"`, is refused if that cannot be written, and writes its
//! outcome when done.

use crate::auth::Caller;
use crate::error::ApiError;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The outcome of the line an action writes before it starts.
pub const STARTED: &str = "started";

/// One line of the audit log.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Entry<'a> {
    pub time: String,
    pub caller: Option<&'a str>,
    pub role: Option<&'a str>,
    pub action: &'a str,
    pub target: &'a str,
    /// "ok", "started", or the gRPC code and message of the failure.
    pub outcome: &'a str,
}

/// Why the audit log cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(
        "audit.file: the directory {0} does not exist (create it, or point audit.file elsewhere)"
    )]
    NoDirectory(String),
    #[error("audit.file: {path} cannot be opened for append: {source}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The audit log file, open for append.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl AuditLog {
    /// Opens (creating the file, never its directory) `path` for append. Blocking.
    pub fn open(path: PathBuf) -> Result<AuditLog, AuditError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                return Err(AuditError::NoDirectory(dir.display().to_string()));
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| AuditError::Open {
                path: path.display().to_string(),
                source,
            })?;
        Ok(AuditLog {
            path,
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry and syncs it to disk. Blocking: call from a blocking thread.
    pub fn write(
        &self,
        caller: Option<&Caller>,
        action: &str,
        target: &str,
        outcome: &str,
    ) -> std::io::Result<()> {
        let entry = Entry {
            time: now_rfc3339(),
            caller: caller.map(|c| c.name.as_str()),
            role: caller.map(|c| c.role.as_str()),
            action,
            target,
            outcome,
        };
        let mut line = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(&line)?;
        file.flush()?;
        file.sync_data()
    }

    /// [`AuditLog::write`] for a line the action depends on: a failure is logged and
    /// returned as UNAVAILABLE, and the caller does not carry the action out.
    pub fn require(
        &self,
        caller: Option<&Caller>,
        action: &str,
        target: &str,
        outcome: &str,
    ) -> Result<(), ApiError> {
        self.write(caller, action, target, outcome).map_err(|e| {
            tracing::error!(
                path = %self.path.display(),
                error = %e,
                action,
                "cannot write the audit log; the action is refused"
            );
            ApiError::AuditUnavailable {
                path: self.path.display().to_string(),
                reason: e.to_string(),
            }
        })
    }

    /// [`AuditLog::write`], logging (not returning) a failure: for a line written after the
    /// action (its `started` line is on record) or after a refusal (nothing changed), whose
    /// caller must still learn the outcome.
    pub fn record(&self, caller: Option<&Caller>, action: &str, target: &str, outcome: &str) {
        if let Err(e) = self.write(caller, action, target, outcome) {
            tracing::error!(
                path = %self.path.display(),
                error = %e,
                action,
                "cannot write the audit log"
            );
        }
    }
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format_rfc3339(d.as_secs() as i64, d.subsec_millis())
}

/// A time in milliseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn rfc3339_from_ms(ms: i64) -> String {
    format_rfc3339(ms.div_euclid(1000), ms.rem_euclid(1000) as u32)
}

fn format_rfc3339(secs: i64, millis: u32) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = ramtid_core::calendar::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    #[test]
    fn times_are_utc_rfc3339() {
        assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339(1_709_210_096, 42),
            "2024-02-29T12:34:56.042Z"
        );
    }

    #[test]
    fn entries_are_appended_as_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path().join("audit.log")).unwrap();
        let dora = Caller {
            name: "dora".into(),
            role: Role::Data,
        };
        log.write(Some(&dora), "activate_model", "m/1 as production", "ok")
            .unwrap();
        log.write(None, "train_model", "m", "FailedPrecondition: no")
            .unwrap();
        let text = std::fs::read_to_string(log.path()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["caller"], "dora");
        assert_eq!(lines[0]["role"], "data");
        assert_eq!(lines[0]["action"], "activate_model");
        assert_eq!(lines[1]["caller"], serde_json::Value::Null);
        assert!(lines[1]["time"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn a_log_that_cannot_be_opened_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no/such/dir/audit.log");
        let e = AuditLog::open(missing).unwrap_err().to_string();
        assert!(
            e.contains("no/such/dir") && e.contains("does not exist"),
            "{e}"
        );
        assert!(!dir.path().join("no").exists(), "no directory is created");
        // A directory where the file should be.
        let e = AuditLog::open(dir.path().to_path_buf())
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot be opened for append"), "{e}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_line_that_cannot_be_written_is_unavailable() {
        // /dev/full opens for append but every write fails (ENOSPC), as a full disk does.
        let log = AuditLog::open("/dev/full".into()).unwrap();
        let e = log
            .require(None, "erase_case", "case K-1", STARTED)
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unavailable);
        assert!(e.to_string().contains("/dev/full"), "{e}");
    }
}
