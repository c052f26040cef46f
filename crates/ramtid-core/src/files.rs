//! Reading a whole file that must be small, with a limit checked before and while reading.
//! A model or catalog file that is a device (`/dev/zero`), a FIFO or a huge file is refused
//! at once instead of being read until memory runs out.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Why a capped read failed.
#[derive(Debug, thiserror::Error)]
pub enum CappedReadError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("is not a regular file")]
    NotRegular,
    #[error("is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
}

/// The bytes of `path` (symlinks followed), if it is a regular file of at most `limit` bytes.
pub fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, CappedReadError> {
    read_capped_file(File::open(path)?, limit)
}

/// The bytes of an open file, if it is a regular file of at most `limit` bytes.
pub fn read_capped_file(file: File, limit: u64) -> Result<Vec<u8>, CappedReadError> {
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(CappedReadError::NotRegular);
    }
    if meta.len() > limit {
        return Err(CappedReadError::TooLarge { limit });
    }
    // The size can change between the check and the read (a file still being written):
    // never read more than one byte past the limit.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(CappedReadError::TooLarge { limit });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_oversized_files_are_refused_without_reading_them() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 2000]).unwrap();
        assert!(matches!(
            read_capped(&big, 1000),
            Err(CappedReadError::TooLarge { limit: 1000 })
        ));
        assert_eq!(read_capped(&big, 2000).unwrap().len(), 2000);
        #[cfg(unix)]
        {
            let zero = dir.path().join("zero");
            std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
            assert!(matches!(
                read_capped(&zero, 1 << 30),
                Err(CappedReadError::NotRegular)
            ));
        }
        assert!(matches!(
            read_capped(&dir.path().join("absent"), 10),
            Err(CappedReadError::Io(_))
        ));
    }
}
