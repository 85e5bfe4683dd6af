//! The descriptors the benches ask about, opened once and kept open for the whole run.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A scratch directory with a regular file, and descriptors of every kind a case needs.
#[derive(Debug)]
pub struct Fixtures {
    dir: PathBuf,
    /// A regular file of [`REGULAR_SIZE`](Self::REGULAR_SIZE) bytes, `O_RDWR`.
    pub regular: OwnedFd,
    /// The same file `O_WRONLY` (rejected at the access-mode check, after one `fcntl`).
    pub write_only: OwnedFd,
    /// The scratch directory, `O_RDONLY | O_DIRECTORY` (rejected after `fcntl` + `fstat`).
    pub directory: OwnedFd,
    /// `/dev/null`, `O_RDWR`: a character device (1:3) whose subsystem is `mem`, or a fake
    /// Device DAX where the harness staged `/sys/dev/char/1:3`.
    pub dev_null: OwnedFd,
    /// A descriptor number that is closed (and stays closed: the benches are
    /// single-threaded and open nothing while they run).
    pub closed: RawFd,
}

impl Fixtures {
    /// The size of [`regular`](Self::regular).
    pub const REGULAR_SIZE: u64 = 4096;

    /// Opens everything; panics with the reason if anything fails.
    pub fn new() -> Fixtures {
        let dir = std::env::temp_dir().join(format!("pmem2-source-bench-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let file = dir.join("data");
        fs::write(&file, [0u8; Self::REGULAR_SIZE as usize])
            .unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
        let regular = open(&file, libc::O_RDWR);
        let write_only = open(&file, libc::O_WRONLY);
        let directory = open(&dir, libc::O_RDONLY | libc::O_DIRECTORY);
        let dev_null = open(Path::new("/dev/null"), libc::O_RDWR);
        // Far above anything this process opens, and closed again at once.
        // SAFETY: F_DUPFD_CLOEXEC takes an integer and only changes the descriptor table.
        let dup = unsafe { libc::fcntl(regular.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 1000) };
        let closed = owned(dup, "F_DUPFD_CLOEXEC").as_raw_fd(); // closed here
        Fixtures {
            dir,
            regular,
            write_only,
            directory,
            dev_null,
            closed,
        }
    }
}

impl Default for Fixtures {
    fn default() -> Fixtures {
        Fixtures::new()
    }
}

impl Drop for Fixtures {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `open(path, flags | O_CLOEXEC)`, panicking with the path and the error on failure.
pub fn open(path: &Path, flags: i32) -> OwnedFd {
    let c = CString::new(path.as_os_str().as_bytes()).expect("paths have no NUL");
    // SAFETY: `c` is a live NUL-terminated string; no O_CREAT, so no mode argument is read.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
    owned(fd, &format!("open {} ({flags:#o})", path.display()))
}

fn owned(fd: RawFd, what: &str) -> OwnedFd {
    assert!(fd >= 0, "{what}: {}", io::Error::last_os_error());
    // SAFETY: `fd` was just returned open by the kernel, and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
