//! Running the `pmem2-source` binary and reading what it printed (shared by the CLI tests).
#![allow(dead_code)]

use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// Runs the binary with `args`, stdin closed off (`/dev/null`), and collects its output.
pub fn run<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pmem2-source"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run pmem2-source")
}

/// Stdout, line by line.
pub fn stdout_lines(output: &Output) -> Vec<String> {
    String::from_utf8(output.stdout.clone())
        .expect("utf-8 output")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Stdout as JSON Lines: one object per line, each parsed.
pub fn json_lines(output: &Output) -> Vec<Value> {
    stdout_lines(output)
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

pub fn stderr_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `MAJ:MIN` of a `dev_t`.
pub fn device(dev: u64) -> String {
    format!("{}:{}", libc::major(dev), libc::minor(dev))
}

/// The page size: the alignment of every regular file.
pub fn page_size() -> u64 {
    // SAFETY: sysconf takes an integer and touches no memory of ours.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(page).expect("a page size")
}

/// How the command prints the page size (4 KiB, 16 KiB or 64 KiB: always whole KiB).
pub fn page_size_text() -> String {
    let page = page_size();
    assert_eq!(page % 1024, 0, "page size {page}");
    format!("{} KiB ({page} bytes)", page / 1024)
}

/// The object's `error` (or `errors.FIELD`) as `(code, name, message)`.
pub fn error_of(error: &Value) -> (i64, &str, &str) {
    (
        error["code"].as_i64().expect("code"),
        error["name"].as_str().expect("name"),
        error["message"].as_str().expect("message"),
    )
}

/// Runs the binary with `args`, stdin `/dev/null`, and stdout (`which` = 1) or stderr (2)
/// the write end of a pipe whose read end is already closed: every write to it fails with
/// EPIPE. The other stream is collected.
pub fn run_with_closed_pipe<S: AsRef<OsStr>>(which: i32, args: &[S]) -> Output {
    let (read_end, write_end) = crate::common::pipe();
    drop(read_end);
    let mut command = Command::new(env!("CARGO_BIN_EXE_pmem2-source"));
    command.args(args).stdin(Stdio::null());
    match which {
        1 => command.stdout(Stdio::from(write_end)),
        2 => command.stderr(Stdio::from(write_end)),
        _ => panic!("stream {which}"),
    };
    command.output().expect("run pmem2-source")
}

/// An inotify instance watching paths for `mask` (non-blocking, so [`Inotify::events`]
/// returns what is queued and no more).
#[derive(Debug)]
pub struct Inotify {
    fd: OwnedFd,
}

impl Inotify {
    pub fn new() -> Inotify {
        // SAFETY: inotify_init1 takes flags only.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        Inotify {
            fd: crate::common::owned(fd).expect("inotify_init1"),
        }
    }

    /// Watches `path` itself (not following a final symbolic link) for `mask`.
    pub fn watch(&self, path: &Path, mask: u32) {
        let c = CString::new(path.as_os_str().as_bytes()).expect("no NUL in the path");
        // SAFETY: `c` is a live NUL-terminated string.
        let wd = unsafe {
            libc::inotify_add_watch(self.fd.as_raw_fd(), c.as_ptr(), mask | libc::IN_DONT_FOLLOW)
        };
        assert!(
            wd >= 0,
            "inotify_add_watch {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
    }

    /// The masks of the events queued so far.
    pub fn events(&self) -> Vec<u32> {
        let mut buf = [0u8; 4096];
        let mut masks = Vec::new();
        loop {
            // SAFETY: `buf` is writable for its whole length for the duration of the call.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                let err = std::io::Error::last_os_error();
                assert!(
                    n == 0 || err.kind() == std::io::ErrorKind::WouldBlock,
                    "read inotify: {err}"
                );
                return masks;
            }
            let mut events = &buf[..usize::try_from(n).expect("n > 0")];
            // struct inotify_event: int wd; uint32_t mask, cookie, len; char name[len].
            while events.len() >= 16 {
                let field =
                    |at: usize| u32::from_ne_bytes(events[at..at + 4].try_into().expect("4 bytes"));
                masks.push(field(4));
                let name_len = usize::try_from(field(12)).expect("u32 fits");
                events = &events[(16 + name_len).min(events.len())..];
            }
        }
    }
}
