//! The syscalls `pmem2_source_from_fd` makes on the real kernel, seen by `strace`: through our
//! `libpmem2_source.so` exactly `fcntl` + `fstat` for a regular file or a directory, `+
//! readlinkat` for a character device, and `fcntl` alone for a closed or write-only
//! descriptor (issue 6); and, for comparison, what Debian's libpmem2 1.12.1 makes for the
//! same calls, printed, and checked to be no fewer.
//!
//! `tests/syscall_counts.rs` counts the core's calls through a wrapping backend; this test
//! watches the process from outside, so that nothing the C ABI adds (its message buffer,
//! `malloc`, thread-local storage) can hide a syscall.
//!
//! How: this binary runs itself under `strace -f` with `--child`. The child loads both
//! libraries and makes each call twice: once to warm up (first-use work such as setting up
//! `malloc`'s arena or the thread-local message buffer is not a cost per call), then between
//! two marker syscalls, `close(-N)` and `close(-N-1)`, which fail harmlessly and stand out in
//! the trace by their argument. The parent reads the trace and takes the calls the child's
//! thread made between each pair of markers.

// Linux only: on Windows an empty crate, which checks but does not link (the Windows tests
// are elsewhere: scripts/wine-tests.sh).
#![cfg_attr(windows, no_main)]
#![cfg(not(windows))]

#[path = "../../../tests/common/mod.rs"]
mod common;
mod compare;
mod support;

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::process::{Command, ExitCode};

use common::{TempDir, in_ci, must_open, skip, surely_closed_fd};
use support::SourceApi;

/// The cases, with the syscalls our library must make for each, in order.
const CASES: [(&str, &[&str]); 5] = [
    ("regular file", &["fcntl", "fstat"]),
    ("/dev/null", &["fcntl", "fstat", "readlinkat"]),
    ("closed descriptor", &["fcntl"]),
    ("O_WRONLY file", &["fcntl"]),
    ("directory", &["fcntl", "fstat"]),
];

/// The two libraries, in the order the child calls them.
const LIBRARIES: [&str; 2] = ["ours", "libpmem2"];

/// The first marker's descriptor, negated; each (case, library) pair uses two in turn.
const FIRST_MARKER: i32 = 7_000_000;

fn marker(case: usize, library: usize, end: bool) -> i32 {
    -(FIRST_MARKER + 4 * case as i32 + 2 * library as i32 + i32::from(end))
}

/// Opens the descriptors of [`CASES`], in order; the `OwnedFd`s keep them open.
fn descriptors(dir: &TempDir) -> (Vec<RawFd>, Vec<OwnedFd>) {
    let regular = must_open(&dir.file("data", b"0123456789"), libc::O_RDWR);
    let null = must_open("/dev/null".as_ref(), libc::O_RDWR);
    let write_only = must_open(&dir.file("wo", b"x"), libc::O_WRONLY);
    let directory = must_open(dir.path(), libc::O_RDONLY);
    let fds = vec![
        regular.as_raw_fd(),
        null.as_raw_fd(),
        surely_closed_fd(),
        write_only.as_raw_fd(),
        directory.as_raw_fd(),
    ];
    (fds, vec![regular, null, write_only, directory])
}

/// One `pmem2_source_from_fd` (and `delete` on success, outside the markers).
fn call(api: &SourceApi, fd: RawFd, markers: Option<(i32, i32)>) {
    let mut src = std::ptr::null_mut();
    if let Some((start, _)) = markers {
        // SAFETY: closing a negative descriptor fails with EBADF and touches nothing.
        unsafe { libc::close(start) };
    }
    let code = api.source_from_fd(&mut src, fd);
    if let Some((_, end)) = markers {
        // SAFETY: as above.
        unsafe { libc::close(end) };
    }
    if code == 0 {
        // SAFETY: `src` is the live source this library just made, given up here.
        let deleted = unsafe { api.source_delete(&mut src) };
        assert_eq!(deleted, 0, "{}: delete", api.name);
    } else {
        assert!(src.is_null(), "{}: *src after a failure", api.name);
    }
}

/// `--child`: the calls, each once to warm up and once between markers.
fn child() -> ExitCode {
    let dir = TempDir::new("syscalls-traced");
    let (fds, _open) = descriptors(&dir);
    let apis = [
        compare::ours(),
        compare::reference().expect("the parent checked it loads"),
    ];
    for (case, &fd) in fds.iter().enumerate() {
        for (library, api) in apis.iter().enumerate() {
            call(api, fd, None);
            let markers = (marker(case, library, false), marker(case, library, true));
            call(api, fd, Some(markers));
        }
    }
    ExitCode::SUCCESS
}

/// The syscall names of `trace` (`strace -f` output: `PID name(args) = ret`) made by the
/// thread that made the `close(start)` marker, after it and before `close(end)`.
fn between_markers(trace: &str, start: i32, end: i32) -> Result<Vec<String>, String> {
    let start_call = format!("close({start})");
    let end_call = format!("close({end})");
    let split = |line: &str| -> Option<(String, String)> {
        let (pid, call) = line.split_once(' ')?;
        Some((pid.to_owned(), call.trim_start().to_owned()))
    };
    let mut lines = trace.lines().filter_map(split);
    let (pid, _) = lines
        .by_ref()
        .find(|(_, call)| call.starts_with(&start_call))
        .ok_or_else(|| format!("no {start_call} in the trace"))?;
    let mut names = Vec::new();
    for (_, call) in lines.filter(|(line_pid, _)| *line_pid == pid) {
        if call.starts_with(&end_call) {
            return Ok(names);
        }
        let name = call.split('(').next().unwrap_or_default();
        names.push(name.to_owned());
    }
    Err(format!("no {end_call} after {start_call} in the trace"))
}

fn parent() -> Result<(), String> {
    const TEST: &str = "syscalls_traced";
    if compare::reference_or_skip(TEST).is_none() {
        return Ok(());
    }
    if Command::new("strace").arg("-V").output().is_err() {
        skip(
            TEST,
            "strace is not installed (scripts/setup.sh installs it)",
        );
        return Ok(());
    }
    // Built (and its path known) before tracing: the child must not build anything.
    let _ = compare::ours();
    let dir = TempDir::new("syscalls-traced-log");
    let log = dir.join("trace");
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let output = Command::new("strace")
        .args(["-f", "-qq", "-o"])
        .arg(&log)
        .arg(&exe)
        .arg("--child")
        .output()
        .map_err(|e| format!("running strace: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("ptrace") && !in_ci() {
            skip(TEST, &format!("strace cannot trace here: {stderr}"));
            return Ok(());
        }
        return Err(format!("traced child: {}: {stderr}", output.status));
    }
    let trace = std::fs::read_to_string(&log).map_err(|e| format!("reading the trace: {e}"))?;
    let mut failures = Vec::new();
    for (case, (what, expected)) in CASES.iter().enumerate() {
        let mut seen = Vec::new();
        for library in 0..LIBRARIES.len() {
            let calls = between_markers(
                &trace,
                marker(case, library, false),
                marker(case, library, true),
            )?;
            seen.push(calls);
        }
        let (ours, theirs) = (&seen[0], &seen[1]);
        println!(
            "{what}: ours {} syscalls {ours:?}; libpmem2 {} {theirs:?}",
            ours.len(),
            theirs.len()
        );
        if ours != expected {
            failures.push(format!("{what}: ours made {ours:?}, expected {expected:?}"));
        }
        if theirs.len() < ours.len() {
            failures.push(format!(
                "{what}: libpmem2 made fewer syscalls ({theirs:?}) than ours ({ours:?})"
            ));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

fn main() -> ExitCode {
    if std::env::args().any(|arg| arg == "--child") {
        return child();
    }
    match parent() {
        Ok(()) => {
            println!("syscalls_traced: ok");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("syscalls_traced: FAILED\n{why}");
            ExitCode::FAILURE
        }
    }
}
