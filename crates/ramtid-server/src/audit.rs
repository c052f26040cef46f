//! The audit log: one JSON line per model activation, reload, training run (and, later,
//! erasure), appended and synced to disk before the RPC answers.
//!
//! `{"time":"2026-01-31T12:00:00.123Z","caller":"dora","role":"data",
//!   "action":"activate_model","target":"nordstad/3 as production","outcome":"ok"}`
//!
//! `caller` and `role` are null when access control is disabled.

use crate::auth::Caller;
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One line of the audit log.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Entry<'a> {
    pub time: String,
    pub caller: Option<&'a str>,
    pub role: Option<&'a str>,
    pub action: &'a str,
    pub target: &'a str,
    /// "ok", or the gRPC code and message of the failure.
    pub outcome: &'a str,
}

/// The audit log file, opened (and its directory created) on first use.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<Option<File>>,
}

impl AuditLog {
    pub fn new(path: PathBuf) -> AuditLog {
        AuditLog {
            path,
            file: Mutex::new(None),
        }
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
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            *guard = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?,
            );
        }
        let file = guard.as_mut().expect("opened");
        file.write_all(&line)?;
        file.flush()?;
        file.sync_data()
    }

    /// [`AuditLog::write`], logging (not returning) a failure: the action it records has
    /// already happened and its caller must learn the outcome.
    pub fn record(&self, caller: Option<&Caller>, action: &str, target: &str, outcome: &str) {
        if let Err(e) = self.write(caller, action, target, outcome) {
            tracing::error!(
                path = %self.path.display(),
                error = %e,
                action,
                target,
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
        let log = AuditLog::new(dir.path().join("sub/audit.log"));
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
}
