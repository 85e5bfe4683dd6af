//! What the Windows tests of the core, the std shim and the C ABI share: scratch files,
//! handles that are not files (a directory opened with `FILE_FLAG_BACKUP_SEMANTICS`, a mutex,
//! an event), C runtime descriptors, and probes run in a child process.
//!
//! They run under Wine on the Linux CI machine (`scripts/wine-tests.sh`), not on Windows.
//!
//! # Safety
//! Each Win32 call gets live, NUL-terminated wide strings and null optional pointers; each
//! handle it returns is owned by an `OwnedHandle` at once.

#![allow(dead_code, unsafe_code)] // each test crate uses a part

use std::ffi::CString;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{FromRawHandle, OwnedHandle};
use std::path::{Path, PathBuf};
use std::process::Command;

use windows_sys::Win32::Foundation::{GENERIC_READ, HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_FLAG_BACKUP_SEMANTICS, FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE,
    OPEN_EXISTING,
};
use windows_sys::Win32::System::SystemInformation::{GetSystemInfo, SYSTEM_INFO};
use windows_sys::Win32::System::Threading::{CreateEventW, CreateMutexW};

/// A directory of this test process's own under the temporary directory, removed when
/// dropped.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "pmem2-source-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        Scratch { dir }
    }

    /// A file named `name` holding `contents`.
    pub fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).expect("write a scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The file at `path`, opened for reading and writing.
pub fn open_read_write(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open read-write")
}

/// `n` bytes of a known pattern.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn wide(path: &Path) -> Vec<u16> {
    path.as_os_str().encode_wide().chain([0]).collect()
}

/// Takes ownership of a handle a Win32 call returned (`what` names the call on failure).
fn owned(handle: HANDLE, what: &str) -> OwnedHandle {
    assert!(
        !handle.is_null() && handle != INVALID_HANDLE_VALUE,
        "{what}: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a valid handle just returned to us, owned by nothing else.
    unsafe { OwnedHandle::from_raw_handle(handle) }
}

/// A directory opened as a handle: `CreateFileW` with `FILE_FLAG_BACKUP_SEMANTICS`, the only
/// way to open one.
pub fn open_directory(path: &Path) -> OwnedHandle {
    let name = wide(path);
    // SAFETY: `name` is NUL-terminated and lives for the call; no security attributes or
    // template.
    let handle = unsafe {
        CreateFileW(
            name.as_ptr(),
            GENERIC_READ,
            FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
            std::ptr::null(),
            OPEN_EXISTING,
            FILE_FLAG_BACKUP_SEMANTICS,
            std::ptr::null_mut(),
        )
    };
    owned(handle, "CreateFileW of a directory")
}

/// An unnamed mutex.
pub fn mutex() -> OwnedHandle {
    // SAFETY: no security attributes, not owned, no name.
    let handle = unsafe { CreateMutexW(std::ptr::null(), 0, std::ptr::null()) };
    owned(handle, "CreateMutexW")
}

/// An unnamed manual-reset event.
pub fn event() -> OwnedHandle {
    // SAFETY: no security attributes, no name.
    let handle = unsafe { CreateEventW(std::ptr::null(), 1, 0, std::ptr::null()) };
    owned(handle, "CreateEventW")
}

/// `GetSystemInfo`'s `dwAllocationGranularity`.
pub fn allocation_granularity() -> usize {
    let mut info = SYSTEM_INFO::default();
    // SAFETY: `info` is writable for the call.
    unsafe { GetSystemInfo(&mut info) };
    info.dwAllocationGranularity as usize
}

/// A C runtime descriptor: `_open(path, flags | O_BINARY | O_NOINHERIT)`. Not inheritable,
/// so a child process of a concurrently running test does not keep the file open.
pub fn crt_open(path: &Path, flags: i32) -> i32 {
    let name = CString::new(path.to_str().expect("an ASCII scratch path")).expect("no NUL");
    // SAFETY: `name` is NUL-terminated; no mode argument without O_CREAT.
    let fd = unsafe { libc::open(name.as_ptr(), flags | libc::O_BINARY | libc::O_NOINHERIT) };
    assert!(fd >= 0, "_open {}", path.display());
    fd
}

/// `_close(fd)`.
pub fn crt_close(fd: i32) {
    // SAFETY: closing a descriptor of ours touches no memory.
    assert_eq!(unsafe { libc::close(fd) }, 0, "_close({fd})");
}

/// Set in the child process that runs one test's probe.
const CHILD: &str = "PMEM2_SOURCE_WINDOWS_CHILD";

/// Runs `probe` in a child process: this test executable again, running only the test
/// `test` (its full name, e.g. `tests::closed_handle`), with [`CHILD`] set. For probes that
/// use stale handle or descriptor values: in this process another test thread may meanwhile
/// get the same value for a file of its own. The parent checks that the child's one test
/// passed.
pub fn in_child_process(test: &str, probe: impl FnOnce()) {
    if std::env::var_os(CHILD).is_some_and(|name| name == test) {
        probe();
        return;
    }
    let exe = std::env::current_exe().expect("the test executable");
    let output = Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, test)
        .output()
        .expect("run the child process");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child for {test}: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}
