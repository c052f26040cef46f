//! Streaming reader of a municipality's visit log (`visits.csv`, data contract section 1).
//!
//! Rows are read one at a time; only the compact [`VisitTable`] of accepted visits and a
//! set of 8-byte visit-id hashes (for duplicate detection) grow with the file. Every row
//! ends in exactly one place: used, flagged (valid but not trusted for the fit: duplicate,
//! forgotten check-out, 0–1 minute check-in) or rejected (written to the rejects file with
//! row, column and reason). Nothing is dropped silently.

use super::table::VisitTable;
use super::time::parse_check_in;
use crate::catalog::{Catalog, ContextKind, ContextRange};
use crate::echo::echo;
use crate::fingerprint::Fnv64;
use crate::progress::{NoProgress, Progress};
use crate::slot::Slot;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Read};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Problems that stop a read: the file cannot be used at all.
#[derive(Debug, Error)]
pub enum LogError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path}, row 1 (header): required column '{column}' is missing{hint}")]
    MissingColumn {
        path: String,
        column: String,
        hint: String,
    },
    #[error("{path}, row 1 (header): {message}")]
    Header { path: String, message: String },
    #[error("{path} is empty: a visit log starts with a header row ({columns})")]
    Empty { path: String, columns: String },
    #[error("{path}: the file does not look like a visit log: {rejected} of the first {checked} rows were rejected; the first: row {row}, column '{column}': {reason}")]
    Malformed {
        path: String,
        rejected: u64,
        checked: u64,
        row: u64,
        column: String,
        reason: String,
    },
    #[error("{path}: no usable visits ({rows} rows read, {rejected} rejected, {flagged} flagged); see the rejects file")]
    NothingUsable {
        path: String,
        rows: u64,
        rejected: u64,
        flagged: u64,
    },
    #[error("cannot write rejects file {path}: {source}")]
    Rejects {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// Thresholds that separate trustworthy visits from logging faults.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct CleaningRules {
    /// Shorter visits are check-in/out errors (the door tag read twice).
    pub min_duration_min: f64,
    /// Longer visits are forgotten check-outs, unless the tasks' schablon sum times
    /// `long_schablon_multiple` is longer still (a long walk or a big cleaning).
    pub max_duration_min: f64,
    pub long_schablon_multiple: f64,
}

impl Default for CleaningRules {
    fn default() -> Self {
        CleaningRules {
            min_duration_min: 2.0,
            max_duration_min: 180.0,
            long_schablon_multiple: 3.0,
        }
    }
}

/// One rejected row.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Reject {
    pub row: u64,
    pub column: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct ReadReport {
    pub file: String,
    pub rows_read: u64,
    pub rows_used: u64,
    pub rows_rejected: u64,
    pub rows_flagged: u64,
    pub rejected_by_column: BTreeMap<String, u64>,
    pub unknown_codes: BTreeMap<String, u64>,
    pub flagged_duplicate: u64,
    pub flagged_forgotten_checkout: u64,
    pub flagged_too_short: u64,
    pub ignored_columns: Vec<String>,
    /// The first rejects, for the report; all of them are in the rejects file.
    pub first_rejects: Vec<Reject>,
    pub rejects_file: Option<String>,
    pub data_fingerprint: String,
    pub recipients: usize,
    pub bytes_read: u64,
    /// Per numeric context variable, the smallest and largest value among the used rows:
    /// the range a model trained on them may be asked about.
    #[serde(default)]
    pub context_ranges: Vec<ContextRange>,
}

impl ReadReport {
    /// Every row read is accounted for exactly once.
    pub fn balances(&self) -> bool {
        self.rows_read == self.rows_used + self.rows_rejected + self.rows_flagged
    }
}

/// The accepted visits and what reading them found.
#[derive(Debug)]
pub struct VisitLog {
    pub table: VisitTable,
    /// Unit (team) names by the index used in the table.
    pub units: Vec<String>,
    /// Recipient ids by the index used in the table.
    pub recipients: Vec<String>,
    pub report: ReadReport,
}

#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub rules: CleaningRules,
    /// Where to write rejected rows (CSV: row,column,reason). None keeps only the counts
    /// and the first rejects in the report.
    pub rejects_path: Option<PathBuf>,
}

const REQUIRED: [&str; 7] = [
    "visit_id",
    "recipient_id",
    "unit_id",
    "start",
    "duration_min",
    "staff",
    "tasks",
];
const FIRST_REJECTS_KEPT: usize = 20;
/// A file that rejects more than half of its first this many rows (or of all its rows, if it
/// is shorter) is refused as a whole: a wrong file or a wrong separator, not a dirty log.
const MALFORMED_CHECK_ROWS: u64 = 1000;

/// Reads `visits.csv` from a path; rejects go to `opts.rejects_path`.
pub fn read_visit_log(
    path: &Path,
    catalog: &Catalog,
    opts: &ReadOptions,
) -> Result<VisitLog, LogError> {
    read_visit_log_reporting(path, catalog, opts, &NoProgress)
}

/// [`read_visit_log`], advancing `progress` by the bytes read (about every MiB).
pub fn read_visit_log_reporting(
    path: &Path,
    catalog: &Catalog,
    opts: &ReadOptions,
    progress: &dyn Progress,
) -> Result<VisitLog, LogError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|source| LogError::Io {
        path: name.clone(),
        source,
    })?;
    read_from(file, &name, catalog, opts, progress)
}

/// Reads a visit log from any reader; `name` is used in messages. `_len` (bytes, 0 if
/// unknown) is not needed any more: the caller reports progress.
pub fn read_visit_log_from<R: Read>(
    reader: R,
    _len: u64,
    name: &str,
    catalog: &Catalog,
    opts: &ReadOptions,
) -> Result<VisitLog, LogError> {
    read_from(reader, name, catalog, opts, &NoProgress)
}

/// [`read_visit_log_from`], advancing `progress` by the bytes read (about every MiB).
pub fn read_visit_log_from_reporting<R: Read>(
    reader: R,
    name: &str,
    catalog: &Catalog,
    opts: &ReadOptions,
    progress: &dyn Progress,
) -> Result<VisitLog, LogError> {
    read_from(reader, name, catalog, opts, progress)
}

fn read_from<R: Read>(
    reader: R,
    name: &str,
    catalog: &Catalog,
    opts: &ReadOptions,
    progress: &dyn Progress,
) -> Result<VisitLog, LogError> {
    let mut source = HashingReader {
        inner: reader,
        hash: Fnv64::default(),
        bytes: 0,
        progress,
    };
    let io_err = |e: csv::Error| LogError::Io {
        path: name.to_string(),
        source: io::Error::other(e.to_string()),
    };
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(&mut source);
    let header = csv.byte_headers().map_err(io_err)?.clone();
    // The reader skips blank lines: no header fields means no line with anything on it.
    if header.is_empty() {
        return Err(LogError::Empty {
            path: name.to_string(),
            columns: REQUIRED.join(","),
        });
    }
    let columns = Columns::locate(&header, catalog, name)?;
    // One warning for all of them (the contract's promise), however wide the header.
    if !columns.ignored.is_empty() {
        let shown = columns.ignored.len().min(10);
        tracing::warn!(
            file = name,
            count = columns.ignored.len(),
            columns = %columns.ignored[..shown].join(", "),
            "unknown columns ignored{}",
            if shown < columns.ignored.len() { " (the first ten shown)" } else { "" }
        );
    }

    let mut rejects = match &opts.rejects_path {
        Some(p) => Some(RejectsWriter::create(p)?),
        None => None,
    };
    let mut report = ReadReport {
        file: name.to_string(),
        ignored_columns: columns.ignored.clone(),
        rejects_file: opts.rejects_path.as_ref().map(|p| p.display().to_string()),
        ..Default::default()
    };
    let mut table = VisitTable::new(catalog.contexts.len());
    let mut recipients: HashMap<String, u32> = HashMap::new();
    let mut units: Vec<String> = Vec::new();
    let mut unit_index: HashMap<String, u32> = HashMap::new();
    let mut seen_ids: HashSet<u64> = HashSet::new();
    let codes = catalog.code_index();
    let mut record = csv::ByteRecord::new();
    let mut tasks: Vec<u16> = Vec::with_capacity(8);
    let mut context = vec![0.0; catalog.contexts.len()];
    // Rejected rows among the first MALFORMED_CHECK_ROWS.
    let mut early_rejected = 0u64;
    let numeric: Vec<bool> = catalog
        .contexts
        .iter()
        .map(|c| c.kind == ContextKind::Numeric)
        .collect();
    let mut ranges = vec![[f64::INFINITY, f64::NEG_INFINITY]; catalog.contexts.len()];

    loop {
        match csv.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                // Only I/O and UTF-8-in-header problems reach here with a flexible reader.
                return Err(io_err(e));
            }
        }
        let row = record.position().map(|p| p.line()).unwrap_or(0);
        report.rows_read += 1;
        let outcome = parse_row(&record, &columns, catalog, &codes, &mut tasks, &mut context);
        match outcome {
            Err(RowError {
                column,
                reason,
                unknown_code,
            }) => {
                report.rows_rejected += 1;
                if let Some(code) = unknown_code {
                    *report.unknown_codes.entry(code).or_default() += 1;
                }
                *report.rejected_by_column.entry(column.clone()).or_default() += 1;
                if let Some(w) = rejects.as_mut() {
                    w.write(row, &column, &reason)?;
                }
                if report.first_rejects.len() < FIRST_REJECTS_KEPT {
                    report.first_rejects.push(Reject {
                        row,
                        column,
                        reason,
                    });
                }
                if report.rows_read <= MALFORMED_CHECK_ROWS {
                    early_rejected += 1;
                    // Refused as soon as it is certain: more than half of the first rows are
                    // bad whatever the rest of them hold.
                    if early_rejected * 2 > MALFORMED_CHECK_ROWS {
                        return Err(malformed(
                            name,
                            &report,
                            early_rejected,
                            MALFORMED_CHECK_ROWS,
                        ));
                    }
                }
            }
            Ok(parsed) => {
                let id_hash = Fnv64::default().update(parsed.visit_id).finish();
                if !seen_ids.insert(id_hash) {
                    report.rows_flagged += 1;
                    report.flagged_duplicate += 1;
                    continue;
                }
                let schablon: f64 = tasks
                    .iter()
                    .map(|&t| catalog.insatser[t as usize].schablon_min)
                    .sum();
                let rules = &opts.rules;
                if parsed.duration < rules.min_duration_min {
                    report.rows_flagged += 1;
                    report.flagged_too_short += 1;
                    continue;
                }
                if parsed.duration
                    > rules
                        .max_duration_min
                        .max(rules.long_schablon_multiple * schablon)
                {
                    report.rows_flagged += 1;
                    report.flagged_forgotten_checkout += 1;
                    continue;
                }
                let next = recipients.len() as u32;
                let recipient = *recipients
                    .entry(parsed.recipient_id.to_string())
                    .or_insert(next);
                let unit = match unit_index.get(parsed.unit_id) {
                    Some(&u) => u,
                    None => {
                        let u = units.len() as u32;
                        units.push(parsed.unit_id.to_string());
                        unit_index.insert(parsed.unit_id.to_string(), u);
                        u
                    }
                };
                table.push(
                    recipient,
                    unit,
                    parsed.day,
                    parsed.slot,
                    parsed.staff,
                    parsed.duration,
                    &tasks,
                    &context,
                );
                for (k, r) in ranges.iter_mut().enumerate().filter(|(k, _)| numeric[*k]) {
                    r[0] = r[0].min(context[k]);
                    r[1] = r[1].max(context[k]);
                }
                report.rows_used += 1;
            }
        }
    }
    drop(csv);
    // A file shorter than the check: judged on all its rows.
    if report.rows_read < MALFORMED_CHECK_ROWS && early_rejected * 2 > report.rows_read {
        return Err(malformed(name, &report, early_rejected, report.rows_read));
    }
    report.context_ranges = catalog
        .contexts
        .iter()
        .zip(&ranges)
        .filter(|(_, r)| r[0] <= r[1])
        .map(|(c, r)| ContextRange {
            name: c.name.clone(),
            min: r[0],
            max: r[1],
        })
        .collect();
    progress.advance(source.bytes - (source.bytes >> 20 << 20));
    if let Some(w) = rejects {
        w.finish()?;
    }
    report.data_fingerprint = format!("fnv64:{:016x}", source.hash.finish());
    report.bytes_read = source.bytes;
    report.recipients = recipients.len();
    if table.is_empty() {
        return Err(LogError::NothingUsable {
            path: name.to_string(),
            rows: report.rows_read,
            rejected: report.rows_rejected,
            flagged: report.rows_flagged,
        });
    }
    table.shrink_to_fit();
    // Built once at the end from the map the read already keeps: nothing grows twice.
    let mut recipient_ids = vec![String::new(); recipients.len()];
    for (id, k) in recipients {
        recipient_ids[k as usize] = id;
    }
    Ok(VisitLog {
        table,
        units,
        recipients: recipient_ids,
        report,
    })
}

fn malformed(name: &str, report: &ReadReport, rejected: u64, checked: u64) -> LogError {
    let first = &report.first_rejects[0];
    LogError::Malformed {
        path: name.to_string(),
        rejected,
        checked,
        row: first.row,
        column: first.column.clone(),
        // The reason may quote a cell; the file may be anything a caller named, so the
        // refusal says where and why, never what.
        reason: crate::redact::reason(&first.reason),
    }
}

struct Parsed<'a> {
    visit_id: &'a [u8],
    recipient_id: &'a str,
    unit_id: &'a str,
    day: i32,
    slot: Slot,
    staff: u8,
    duration: f64,
}

/// Column positions, found once from the header.
struct Columns {
    visit_id: usize,
    recipient_id: usize,
    unit_id: usize,
    start: usize,
    duration: usize,
    staff: usize,
    tasks: usize,
    /// (position, column name) for each catalog context variable, in catalog order.
    context: Vec<(usize, String)>,
    ignored: Vec<String>,
    width: usize,
}

impl Columns {
    /// Linear in the number of columns: names go into a map once (a header of 100 000
    /// columns once took quadratic time).
    fn locate(header: &csv::ByteRecord, catalog: &Catalog, path: &str) -> Result<Self, LogError> {
        let mut names = Vec::with_capacity(header.len());
        let mut index: HashMap<String, usize> = HashMap::with_capacity(header.len());
        for (i, field) in header.iter().enumerate() {
            let name = std::str::from_utf8(field).map_err(|_| LogError::Header {
                path: path.to_string(),
                message: format!("column {} is not valid UTF-8", i + 1),
            })?;
            let name = name.trim().trim_start_matches('\u{feff}').to_string();
            if let Some(first) = index.insert(name.clone(), i) {
                // Positions only: a header is file content.
                return Err(LogError::Header {
                    path: path.to_string(),
                    message: format!("columns {} and {} have the same name", first + 1, i + 1),
                });
            }
            names.push(name);
        }
        let find = |col: &str| -> Result<usize, LogError> {
            index
                .get(col)
                .copied()
                .ok_or_else(|| LogError::MissingColumn {
                    path: path.to_string(),
                    column: col.to_string(),
                    hint: if names.len() == 1 && names[0].contains(';') {
                        " (the file seems to use ';' as separator; the contract asks for ',')"
                            .to_string()
                    } else {
                        String::new()
                    },
                })
        };
        // The contract's own columns first: a file without them is named for that, not for
        // a missing context column.
        let required: Vec<usize> = REQUIRED.iter().map(|c| find(c)).collect::<Result<_, _>>()?;
        let mut context = Vec::with_capacity(catalog.contexts.len());
        for var in &catalog.contexts {
            let col = var.column();
            context.push((find(&col)?, col));
        }
        let mut known = vec![false; names.len()];
        for &p in required.iter().chain(context.iter().map(|(p, _)| p)) {
            known[p] = true;
        }
        Ok(Columns {
            visit_id: required[0],
            recipient_id: required[1],
            unit_id: required[2],
            start: required[3],
            duration: required[4],
            staff: required[5],
            tasks: required[6],
            ignored: names
                .iter()
                .zip(&known)
                .filter(|(_, k)| !**k)
                .map(|(n, _)| echo(n))
                .collect(),
            width: names.len(),
            context,
        })
    }
}

/// Why a row is rejected; an unknown insats code is also counted per code.
struct RowError {
    column: String,
    reason: String,
    unknown_code: Option<String>,
}

fn row_error(column: &str, reason: impl Into<String>) -> RowError {
    RowError {
        column: column.to_string(),
        reason: reason.into(),
        unknown_code: None,
    }
}

fn field<'r>(record: &'r csv::ByteRecord, pos: usize, column: &str) -> Result<&'r str, RowError> {
    let raw = record.get(pos).unwrap_or_default();
    let s = std::str::from_utf8(raw).map_err(|_| row_error(column, "is not valid UTF-8"))?;
    Ok(s.trim())
}

fn required<'r>(
    record: &'r csv::ByteRecord,
    pos: usize,
    column: &str,
) -> Result<&'r str, RowError> {
    let s = field(record, pos, column)?;
    if s.is_empty() {
        Err(row_error(column, "is empty"))
    } else {
        Ok(s)
    }
}

/// An id column that must not hold a personal identity number. The row is rejected and the
/// reason does not repeat the number: the rejects file must not become a copy of it.
fn pseudonymous<'r>(
    record: &'r csv::ByteRecord,
    pos: usize,
    column: &str,
) -> Result<&'r str, RowError> {
    let id = required(record, pos, column)?;
    if crate::personnummer::looks_like_personnummer(id) {
        return Err(row_error(
            column,
            "looks like a personnummer or samordningsnummer; ids must be pseudonymous (value not shown)",
        ));
    }
    Ok(id)
}

fn parse_row<'r>(
    record: &'r csv::ByteRecord,
    c: &Columns,
    catalog: &Catalog,
    codes: &HashMap<&str, usize>,
    tasks: &mut Vec<u16>,
    context: &mut [f64],
) -> Result<Parsed<'r>, RowError> {
    if record.len() != c.width {
        return Err(row_error(
            "(row)",
            format!(
                "has {} fields where the header has {}",
                record.len(),
                c.width
            ),
        ));
    }
    let visit_id = required(record, c.visit_id, "visit_id")?.as_bytes();
    let recipient_id = pseudonymous(record, c.recipient_id, "recipient_id")?;
    let unit_id = pseudonymous(record, c.unit_id, "unit_id")?;
    let start = required(record, c.start, "start")?;
    let check_in = parse_check_in(start).map_err(|e| row_error("start", e))?;
    let d = required(record, c.duration, "duration_min")?;
    let duration: f64 = d.parse().map_err(|_| {
        row_error(
            "duration_min",
            format!(
                "'{}' is not a number of minutes (use '.' as decimal sign)",
                echo(d)
            ),
        )
    })?;
    if !duration.is_finite() || duration < 0.0 {
        return Err(row_error(
            "duration_min",
            format!("{} is not a duration; expected minutes ≥ 0", echo(d)),
        ));
    }
    let s = required(record, c.staff, "staff")?;
    let staff = match s {
        "1" => 1,
        "2" => 2,
        other => {
            return Err(row_error(
                "staff",
                format!("'{}' is not a staff count; expected 1 or 2", echo(other)),
            ))
        }
    };
    let t = required(record, c.tasks, "tasks")?;
    tasks.clear();
    for code in t.split('|').map(str::trim).filter(|s| !s.is_empty()) {
        match codes.get(code) {
            Some(&k) => tasks.push(k as u16),
            None => {
                return Err(RowError {
                    column: "tasks".to_string(),
                    reason: format!("unknown insats code '{}' (not in the catalog)", echo(code)),
                    unknown_code: Some(echo(code)),
                })
            }
        }
    }
    if tasks.is_empty() {
        return Err(row_error("tasks", "lists no insats code"));
    }
    tasks.sort_unstable();
    tasks.dedup();
    for (k, (pos, col)) in c.context.iter().enumerate() {
        let v = field(record, *pos, col)?;
        context[k] = catalog.contexts[k]
            .parse_str(v)
            .map_err(|e| row_error(col, e))?;
    }
    Ok(Parsed {
        visit_id,
        recipient_id,
        unit_id,
        day: check_in.day,
        slot: Slot::from_hour(check_in.hour),
        staff,
        duration,
    })
}

/// Hashes and counts what passes through, and reports each MiB to the progress.
struct HashingReader<'p, R> {
    inner: R,
    hash: Fnv64,
    bytes: u64,
    progress: &'p dyn Progress,
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash = self.hash.update(&buf[..n]);
        let before = self.bytes >> 20;
        self.bytes += n as u64;
        let after = self.bytes >> 20;
        if after != before {
            self.progress.advance((after - before) << 20);
        }
        Ok(n)
    }
}

struct RejectsWriter {
    path: String,
    out: csv::Writer<BufWriter<File>>,
}

impl RejectsWriter {
    fn create(path: &Path) -> Result<Self, LogError> {
        let name = path.display().to_string();
        let err = |source: io::Error| LogError::Rejects {
            path: name.clone(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let file = File::create(path).map_err(err)?;
        let mut out = csv::Writer::from_writer(BufWriter::new(file));
        out.write_record(["row", "column", "reason"])
            .map_err(|e| err(io::Error::other(e.to_string())))?;
        Ok(RejectsWriter { path: name, out })
    }

    fn write(&mut self, row: u64, column: &str, reason: &str) -> Result<(), LogError> {
        self.out
            .write_record([row.to_string().as_str(), column, reason])
            .map_err(|e| LogError::Rejects {
                path: self.path.clone(),
                source: io::Error::other(e.to_string()),
            })
    }

    fn finish(mut self) -> Result<(), LogError> {
        self.out.flush().map_err(|source| LogError::Rejects {
            path: self.path.clone(),
            source,
        })
    }
}
