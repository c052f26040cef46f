//! What went wrong reading a CSV file, in the terms every report's error names: the file
//! could not be read, or a row (by its line) is malformed. One mapping of `csv::Error`, so
//! that the evaluation's and the follow-up's readers say the same thing of the same fault.

/// A `csv::Error` as a reader error reports it.
pub(crate) enum CsvFault {
    /// The file could not be read.
    Io(std::io::Error),
    /// The row at `line` is malformed (the whole row, not one cell).
    Row { line: u64, message: String },
}

impl From<csv::Error> for CsvFault {
    fn from(e: csv::Error) -> CsvFault {
        let line = e.position().map(|p| p.line()).unwrap_or(0);
        let message = match e.into_kind() {
            csv::ErrorKind::Io(source) => return CsvFault::Io(source),
            csv::ErrorKind::Utf8 { err, .. } => format!("is not valid UTF-8: {err}"),
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => format!("has {len} fields where the header has {expected_len}"),
            other => format!("{other:?}"),
        };
        CsvFault::Row { line, message }
    }
}
