//! Files opened by a handle confined to one directory (the service's data directory).
//!
//! A path checked first and opened afterwards can be swapped for a symbolic link in
//! between (check-then-open). So the directory is opened once and every file is opened
//! *relative to that handle*, with the kernel refusing to follow any symbolic link and to
//! leave the directory: on Linux `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, and where
//! that call is missing (kernels before 5.6, some sandboxes) one `openat(O_NOFOLLOW)` per
//! path component. What is opened is then checked on the handle (`fstat`): a regular file.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The caller's path is not acceptable; the message says why (it quotes the path as
    /// given, never anything read from the disk).
    #[error("{0}")]
    Refused(String),
    #[error("the data directory {dir} cannot be opened: {source}")]
    Dir {
        dir: String,
        #[source]
        source: io::Error,
    },
    #[error("'{path}' cannot be opened: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// How a file is looked up under the directory handle (both refuse links and `..`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// `openat2` when the kernel has it, else [`Strategy::PerComponent`].
    Best,
    /// One `openat(O_NOFOLLOW)` per component: the fallback, selectable for tests.
    PerComponent,
}

/// An open directory; files are opened beneath it only.
#[derive(Debug)]
pub struct DataDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl DataDir {
    /// Opens the directory itself (the configured path; a link *to* the data directory, set
    /// up by whoever configured it, is followed once here and never below it).
    pub fn open(path: &Path) -> Result<DataDir, OpenError> {
        use rustix::fs::{Mode, OFlags, CWD};
        let fd = rustix::fs::openat(
            CWD,
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| OpenError::Dir {
            dir: path.display().to_string(),
            source: e.into(),
        })?;
        Ok(DataDir {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens a regular file for reading, given as a path relative to the directory (an
    /// absolute path is accepted when it names something inside it lexically).
    pub fn open_file(&self, raw: &str) -> Result<File, OpenError> {
        self.open_file_with(raw, Strategy::Best)
    }

    pub fn open_file_with(&self, raw: &str, strategy: Strategy) -> Result<File, OpenError> {
        let rel = self.relative(raw)?;
        let fd = match strategy {
            Strategy::Best => match open_beneath(&self.fd, &rel) {
                Err(e) if openat2_missing(&e) => open_per_component(&self.fd, &rel),
                other => other,
            },
            Strategy::PerComponent => open_per_component(&self.fd, &rel),
        }
        .map_err(|e| explain(raw, e))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| OpenError::Io {
            path: raw.to_string(),
            source: e.into(),
        })?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
            return Err(OpenError::Refused(format!("'{raw}' is not a regular file")));
        }
        // Opened non-blocking so that a FIFO could not stall the open; reads block again.
        rustix::fs::fcntl_setfl(&fd, rustix::fs::OFlags::empty()).map_err(|e| OpenError::Io {
            path: raw.to_string(),
            source: e.into(),
        })?;
        Ok(File::from(fd))
    }

    /// The path below the directory: no `..`, no empty path, absolute only inside.
    fn relative(&self, raw: &str) -> Result<PathBuf, OpenError> {
        if raw.trim().is_empty() {
            return Err(OpenError::Refused(
                "is required: a path relative to the data directory".into(),
            ));
        }
        if raw.contains('\0') {
            return Err(OpenError::Refused("contains a NUL character".into()));
        }
        let p = Path::new(raw);
        if p.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(OpenError::Refused(format!("'{raw}' may not contain '..'")));
        }
        let rel = if p.is_absolute() {
            let canonical = self.path.canonicalize().ok();
            p.strip_prefix(&self.path)
                .ok()
                .or_else(|| canonical.as_deref().and_then(|c| p.strip_prefix(c).ok()))
                .ok_or_else(|| {
                    OpenError::Refused(format!("'{raw}' is outside the data directory"))
                })?
                .to_path_buf()
        } else {
            p.to_path_buf()
        };
        let rel: PathBuf = rel
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        if rel.as_os_str().is_empty() {
            return Err(OpenError::Refused(format!("'{raw}' is not a file")));
        }
        Ok(rel)
    }
}

fn file_flags() -> rustix::fs::OFlags {
    use rustix::fs::OFlags;
    OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::NONBLOCK
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn open_beneath(dir: &OwnedFd, rel: &Path) -> rustix::io::Result<OwnedFd> {
    use rustix::fs::{Mode, ResolveFlags};
    rustix::fs::openat2(
        dir,
        rel,
        file_flags(),
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn open_beneath(_dir: &OwnedFd, _rel: &Path) -> rustix::io::Result<OwnedFd> {
    Err(rustix::io::Errno::NOSYS)
}

/// `openat2` is absent (ENOSYS) or filtered by a sandbox (EPERM, EACCES is a real answer).
fn openat2_missing(e: &rustix::io::Errno) -> bool {
    *e == rustix::io::Errno::NOSYS || *e == rustix::io::Errno::PERM
}

/// Walks the path one component at a time; each directory and the file itself are opened
/// with `O_NOFOLLOW`, so no component can be a link and `..` was refused before.
fn open_per_component(dir: &OwnedFd, rel: &Path) -> rustix::io::Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    let parts: Vec<&std::ffi::OsStr> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s),
            _ => None,
        })
        .collect();
    let (last, dirs) = parts.split_last().ok_or(rustix::io::Errno::INVAL)?;
    let mut current: Option<OwnedFd> = None;
    for part in dirs {
        let base = current.as_ref().unwrap_or(dir);
        let next = rustix::fs::openat(
            base,
            *part,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        current = Some(next);
    }
    rustix::fs::openat(
        current.as_ref().unwrap_or(dir),
        *last,
        file_flags(),
        Mode::empty(),
    )
}

fn explain(raw: &str, e: rustix::io::Errno) -> OpenError {
    use rustix::io::Errno;
    let refused = |why: &str| OpenError::Refused(format!("'{raw}' {why}"));
    match e {
        Errno::NOENT => refused("is not a file in the data directory"),
        // ELOOP: a link where O_NOFOLLOW or RESOLVE_NO_SYMLINKS refuse one; ENOTDIR: a
        // directory component is a link (O_DIRECTORY|O_NOFOLLOW) or a file; EXDEV: the
        // path would leave the directory.
        Errno::LOOP | Errno::MLINK => refused(
            "is a symbolic link or passes through one; links are not followed in the data directory",
        ),
        Errno::NOTDIR => refused("passes through something that is not a directory"),
        Errno::XDEV => refused("is outside the data directory"),
        Errno::ISDIR => refused("is not a file"),
        other => OpenError::Io {
            path: raw.to_string(),
            source: other.into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn both() -> [Strategy; 2] {
        [Strategy::Best, Strategy::PerComponent]
    }

    #[test]
    fn files_inside_open_links_and_escapes_do_not() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        std::fs::write(data.join("sub/visits.csv"), "inside").unwrap();
        std::fs::write(root.path().join("secret.csv"), "SECRET").unwrap();
        std::os::unix::fs::symlink(root.path().join("secret.csv"), data.join("link.csv")).unwrap();
        std::os::unix::fs::symlink(root.path(), data.join("up")).unwrap();
        std::os::unix::fs::symlink("sub/visits.csv", data.join("inner-link.csv")).unwrap();
        let dir = DataDir::open(&data).unwrap();
        let abs_inside = data.join("sub/visits.csv").display().to_string();
        let abs_outside = root.path().join("secret.csv").display().to_string();
        for s in both() {
            for good in ["sub/visits.csv", "./sub//visits.csv", abs_inside.as_str()] {
                let mut text = String::new();
                dir.open_file_with(good, s)
                    .unwrap_or_else(|e| panic!("{good}: {e}"))
                    .read_to_string(&mut text)
                    .unwrap();
                assert_eq!(text, "inside");
            }
            for bad in [
                "link.csv",
                "inner-link.csv",
                "up/secret.csv",
                "../secret.csv",
                "sub/../../secret.csv",
                abs_outside.as_str(),
                "",
                "sub",
                "missing.csv",
            ] {
                let e = dir.open_file_with(bad, s).unwrap_err();
                assert!(matches!(e, OpenError::Refused(_)), "{s:?} {bad}: {e:?}");
                assert!(!e.to_string().contains("SECRET"));
            }
        }
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let root = tempfile::tempdir().unwrap();
        let fifo = root.path().join("pipe.csv");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let dir = DataDir::open(root.path()).unwrap();
        for s in both() {
            let e = dir.open_file_with("pipe.csv", s).unwrap_err();
            assert!(e.to_string().contains("not a regular file"), "{e}");
        }
    }
}
