//! Writing a simulated municipality's files: one buffered file whose errors name it, shared
//! by both simulators (they share output plumbing, never structure).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// A file that could not be written, and why; each simulator's error wraps it.
#[derive(Debug)]
pub(crate) struct WriteFailed {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// A buffered output file whose errors name the file.
pub(crate) struct Sink {
    path: PathBuf,
    w: BufWriter<File>,
}

impl Sink {
    pub fn create(path: PathBuf) -> Result<Sink, WriteFailed> {
        match File::create(&path) {
            Ok(f) => Ok(Sink {
                w: BufWriter::with_capacity(1 << 20, f),
                path,
            }),
            Err(source) => Err(WriteFailed { path, source }),
        }
    }

    pub fn put(&mut self, s: &str) -> Result<(), WriteFailed> {
        self.w
            .write_all(s.as_bytes())
            .map_err(|source| WriteFailed {
                path: self.path.clone(),
                source,
            })
    }

    pub fn finish(mut self) -> Result<PathBuf, WriteFailed> {
        match self.w.flush() {
            Ok(()) => Ok(self.path),
            Err(source) => Err(WriteFailed {
                path: self.path,
                source,
            }),
        }
    }
}
