//! Helpers shared by the integration tests that run against the real kernel.
//!
//! Every test binary includes this module with `mod common;` and uses a different subset of
//! it, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, CString};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use pmem2_source::Errno;
use pmem2_source::sys::{FileStat, Linux, Syscalls};

/// The real kernel, with every call counted and logged (the counting wrapper of the brief:
/// it forwards each call to [`Linux`] unchanged).
#[derive(Debug, Default)]
pub struct CountingLinux {
    calls: Cell<usize>,
    log: RefCell<Vec<String>>,
}

impl CountingLinux {
    pub fn new() -> CountingLinux {
        CountingLinux::default()
    }

    /// How many syscalls went through so far.
    pub fn calls(&self) -> usize {
        self.calls.get()
    }

    /// Every call so far, in order, e.g. `fstat(5)` or
    /// `readlink("/sys/dev/char/1:3/subsystem", 256)`.
    pub fn log(&self) -> Vec<String> {
        self.log.borrow().clone()
    }

    fn record(&self, entry: String) {
        self.calls.set(self.calls.get() + 1);
        self.log.borrow_mut().push(entry);
    }
}

impl Syscalls for CountingLinux {
    fn fcntl_getfl(&self, fd: i32) -> Result<u32, Errno> {
        self.record(format!("fcntl_getfl({fd})"));
        Linux.fcntl_getfl(fd)
    }

    fn fstat(&self, fd: i32) -> Result<FileStat, Errno> {
        self.record(format!("fstat({fd})"));
        Linux.fstat(fd)
    }

    fn readlink(&self, path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
        self.record(format!("readlink({path:?}, {})", buf.len()));
        Linux.readlink(path, buf)
    }
}

/// A NUL-terminated copy of `path`.
pub fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("paths have no interior NUL")
}

/// Wraps a descriptor a libc call just returned, or reports the call's errno.
pub fn owned(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned open by the kernel to this caller, and nothing else owns
    // it; the OwnedFd closes it exactly once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `open(path, flags | O_CLOEXEC, 0o600)`.
pub fn open(path: &Path, flags: i32) -> io::Result<OwnedFd> {
    let c = c_path(path);
    // SAFETY: `c` is a live NUL-terminated string; the mode argument is the variadic
    // `mode_t` that open(2) reads when O_CREAT or O_TMPFILE is given.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, 0o600 as libc::c_uint) };
    owned(fd)
}

/// `open`, panicking with the path and the error on failure.
pub fn must_open(path: &Path, flags: i32) -> OwnedFd {
    open(path, flags).unwrap_or_else(|e| panic!("open {} ({flags:#o}): {e}", path.display()))
}

/// `fstat` through libc: the reference the crate's answers are compared with.
pub fn libc_fstat(fd: RawFd) -> libc::stat {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is a writable `struct stat`, live for the whole call.
    let ret = unsafe { libc::fstat(fd, st.as_mut_ptr()) };
    assert_eq!(ret, 0, "fstat({fd}): {}", io::Error::last_os_error());
    // SAFETY: fstat succeeded, so it filled in the whole struct.
    unsafe { st.assume_init() }
}

/// The package's Cargo.toml: a regular file that is always there.
pub fn manifest_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")
}

/// The soft `RLIMIT_NOFILE`: descriptors at or above it can never be open.
pub fn nofile_soft_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a writable `struct rlimit`, live for the call.
    let ret = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(ret, 0, "getrlimit: {}", io::Error::last_os_error());
    limit.rlim_cur
}

/// A descriptor number that is surely closed, and stays so while the caller uses it.
///
/// The tests run in parallel threads and the kernel hands out the lowest free number, so a
/// descriptor closed by one test could be reused at once by another. `F_DUPFD` with a floor
/// of 10000 gives a number far above anything the tests hold open, and after closing it
/// nothing comes near it again. RLIMIT_NOFILE is 20000 on the CI machine (`ulimit -n`), so
/// the floor is valid there; with a smaller limit, half of it is still far above what the
/// tests open.
pub fn surely_closed_fd() -> RawFd {
    let floor = i32::try_from(nofile_soft_limit() / 2)
        .unwrap_or(i32::MAX)
        .min(10_000);
    let file = std::fs::File::open(manifest_file()).expect("open Cargo.toml");
    // SAFETY: F_DUPFD_CLOEXEC takes an integer and only changes the descriptor table.
    let dup = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_DUPFD_CLOEXEC, floor) };
    let number = owned(dup).expect("F_DUPFD_CLOEXEC").as_raw_fd(); // closed again here
    assert!(number >= floor, "F_DUPFD gave {number} < {floor}");
    assert!(!is_open(number), "{number} must be closed now");
    number
}

/// `fcntl(fd, F_GETFD)`: succeeds exactly when `fd` is open.
pub fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD takes no pointer and only reads the descriptor table.
    let ret = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    ret >= 0
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    let euid = unsafe { libc::geteuid() };
    euid == 0
}

/// CI runs the suite as root and nothing may be skipped there.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true")
}

/// For a case that cannot run here (not root, no such device): panics in CI, where nothing
/// may be skipped, and otherwise says so on stderr. Returns so the caller can `return`.
pub fn skip(case: &str, why: &str) {
    assert!(!in_ci(), "{case}: cannot run in CI: {why}");
    // Straight to the stderr handle: libtest captures eprintln!, and a skip must be visible.
    let _ = writeln!(io::stderr().lock(), "skipped {case}: {why}");
}

/// A fresh directory under `std::env::temp_dir()`, removed with everything in it on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("pmem2-source-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir(&path)
            .unwrap_or_else(|e| panic!("create temp dir {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Creates a regular file `name` holding `contents`.
    pub fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.join(name);
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            eprintln!("warning: removing {}: {e}", self.path.display());
        }
    }
}

/// `fd` as a raw number, for the `Source::from_fd` calls.
pub fn raw(fd: &OwnedFd) -> RawFd {
    fd.as_raw_fd()
}
