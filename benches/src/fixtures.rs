//! The descriptors the benches ask about, opened once and kept open for the whole run.

use std::os::fd::{OwnedFd, RawFd};
use std::path::Path;

use crate::common::{TempDir, must_open, surely_closed_fd};

/// A scratch directory with a regular file, and descriptors of every kind a case needs.
#[derive(Debug)]
pub struct Fixtures {
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
    /// Removed when the fixtures are dropped, after the descriptors above are closed.
    _dir: TempDir,
}

impl Fixtures {
    /// The size of [`regular`](Self::regular).
    pub const REGULAR_SIZE: u64 = 4096;

    /// Opens everything; panics with the reason if anything fails.
    pub fn new() -> Fixtures {
        let dir = TempDir::new("bench");
        let file = dir.file("data", &[0u8; Self::REGULAR_SIZE as usize]);
        Fixtures {
            regular: must_open(&file, libc::O_RDWR),
            write_only: must_open(&file, libc::O_WRONLY),
            directory: must_open(dir.path(), libc::O_RDONLY | libc::O_DIRECTORY),
            dev_null: must_open(Path::new("/dev/null"), libc::O_RDWR),
            closed: surely_closed_fd(),
            _dir: dir,
        }
    }
}

impl Default for Fixtures {
    fn default() -> Fixtures {
        Fixtures::new()
    }
}
