//! Judging a file before opening it, and opening exactly the file judged.
//!
//! Opening a file can change it or the system: opening a FIFO releases a writer blocked in
//! its own `open`, opening a character device runs its driver (`/dev/watchdog` arms the
//! watchdog), opening a regular file read-write fires `IN_CLOSE_WRITE`, breaks leases, and
//! on overlayfs copies the whole file up. So a path is first resolved with `O_PATH`, which
//! opens nothing (no driver, no FIFO, no inotify event), and judged from that descriptor's
//! `fstat`. Only what is to be opened — a regular file, a Device DAX — is then reopened
//! through `/proc/self/fd/N`: that magic link is the very inode resolved, so swapping the
//! path between the judging and the opening (a rename or symlink race) cannot get another
//! file opened. The reopened descriptor's `st_dev`, `st_ino`, `st_rdev` and file type are
//! compared with those judged all the same.
//!
//! Without `/proc` there is no way to reopen the resolved inode (short of
//! `open_by_handle_at`, which needs `CAP_DAC_READ_SEARCH`), and opening the path a second
//! time would reopen the race; so that is reported as a failure ([`ReopenError::NoProc`]),
//! not worked around.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A path resolved to an inode without opening the file itself: an `O_PATH` descriptor and
/// its `fstat`.
#[derive(Debug)]
pub struct Located {
    path_fd: File,
    metadata: Metadata,
}

/// Why [`Located::reopen`] did not give a descriptor.
#[derive(Debug)]
pub enum ReopenError {
    /// The `open` of `/proc/self/fd/N` failed (permissions, a read-only file system, …).
    Open(io::Error),
    /// There is no `/proc/self/fd` (no procfs mounted): the judged file cannot be reopened.
    NoProc(io::Error),
    /// The descriptor opened is not the file judged (should not happen through the magic
    /// link; it would take a `/proc` that is not procfs).
    Changed,
}

/// Why [`Located::new`] failed: the `open` (`O_PATH`) or the `fstat`.
#[derive(Debug)]
pub enum LocateError {
    Open(io::Error),
    Fstat(io::Error),
}

impl Located {
    /// `open(path, O_PATH | O_CLOEXEC)` (following symbolic links, as `open` does) and
    /// `fstat` of that descriptor.
    pub fn new(path: &Path) -> Result<Located, LocateError> {
        // With O_PATH the kernel ignores every flag but O_CLOEXEC, O_DIRECTORY and
        // O_NOFOLLOW, and the access mode (std's read(true) is O_RDONLY, 0).
        let path_fd = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH)
            .open(path)
            .map_err(LocateError::Open)?;
        let metadata = path_fd.metadata().map_err(LocateError::Fstat)?;
        Ok(Located { path_fd, metadata })
    }

    /// The `fstat` of the resolved inode: what is judged.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Opens the resolved inode for reading (and writing if `write`), never as a
    /// controlling terminal, and without blocking (a lease, a mandatory lock): `O_RDONLY` or
    /// `O_RDWR`, `| O_NOCTTY | O_NONBLOCK | O_CLOEXEC`.
    pub fn reopen(&self, write: bool) -> Result<File, ReopenError> {
        let magic_link = PathBuf::from(format!("/proc/self/fd/{}", self.path_fd.as_raw_fd()));
        let file = OpenOptions::new()
            .read(true)
            .write(write)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(&magic_link)
            .map_err(|err| {
                // The link of a descriptor held open exists whenever procfs is mounted (even
                // for an unlinked file), so ENOENT means no procfs.
                if err.kind() == io::ErrorKind::NotFound && !Path::new("/proc/self/fd").is_dir() {
                    ReopenError::NoProc(err)
                } else {
                    ReopenError::Open(err)
                }
            })?;
        let opened = file.metadata().map_err(ReopenError::Open)?;
        if same_file(&opened, &self.metadata) {
            Ok(file)
        } else {
            Err(ReopenError::Changed)
        }
    }
}

/// Same device, inode, file type and (for a device file) device number.
fn same_file(a: &Metadata, b: &Metadata) -> bool {
    let identity = |m: &Metadata| (m.dev(), m.ino(), m.mode() & libc::S_IFMT, m.rdev());
    identity(a) == identity(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopens_the_file_resolved_even_after_the_path_changed() {
        let dir =
            std::env::temp_dir().join(format!("pmem2-source-cli-located-{}", std::process::id()));
        std::fs::create_dir(&dir).expect("mkdir");
        let (path, other) = (dir.join("path"), dir.join("other"));
        std::fs::write(&path, "judged").expect("write");
        std::fs::write(&other, "swapped in").expect("write");
        let located = Located::new(&path).expect("O_PATH");
        std::fs::rename(&other, &path).expect("swap");
        let reopened = located.reopen(false).map(|file| {
            let mut text = String::new();
            io::Read::read_to_string(&mut &file, &mut text).map(|_| text)
        });
        std::fs::remove_dir_all(&dir).expect("clean up");
        assert_eq!(reopened.expect("reopen").expect("read"), "judged");
    }

    #[test]
    fn missing_paths_fail_to_locate() {
        for path in ["", "/nonexistent/pmem2-source-located"] {
            let err = Located::new(Path::new(path)).expect_err("no such path");
            assert!(
                matches!(&err, LocateError::Open(e) if e.kind() == io::ErrorKind::NotFound),
                "{path:?}: {err:?}"
            );
        }
    }
}
