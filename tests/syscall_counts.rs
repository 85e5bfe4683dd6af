//! How many syscalls `Source::from_fd` makes on the real kernel (SPEC §2): a counting wrapper
//! around `pmem2_source::sys::Linux` forwards and logs every call.

#![cfg(not(windows))] // Linux only: scripts/wine-tests.sh has the Windows tests.

mod common;

use std::path::Path;

use common::{CountingLinux, TempDir, c_path, must_open, raw, surely_closed_fd};
use pmem2_source::{Error, FileType, Source};

/// Runs `from_fd` through the counting wrapper, checks it answers exactly as the plain
/// `Source::from_fd` does, and returns the answer and the call log.
fn counted(fd: i32) -> (Result<Source, Error>, Vec<String>) {
    let kernel = CountingLinux::new();
    let result = Source::from_fd_with(&kernel, fd);
    assert_eq!(result, Source::from_fd(fd), "fd {fd}: same answer as Linux");
    assert_eq!(kernel.calls(), kernel.log().len());
    (result, kernel.log())
}

fn fcntl_fstat(fd: i32) -> Vec<String> {
    vec![format!("fcntl_getfl({fd})"), format!("fstat({fd})")]
}

#[test]
fn regular_file_takes_two() {
    let dir = TempDir::new("count-reg");
    let fd = must_open(&dir.file("data", b"x"), libc::O_RDWR);
    let (result, log) = counted(raw(&fd));
    assert_eq!(result.map(|s| s.file_type()), Ok(Some(FileType::Regular)));
    assert_eq!(log, fcntl_fstat(raw(&fd)));
}

#[test]
fn character_device_takes_three() {
    let fd = must_open(Path::new("/dev/null"), libc::O_RDWR);
    let (result, log) = counted(raw(&fd));
    assert_eq!(
        result.map_err(|e| e.to_string()),
        Err("character device 1:3 is not Device DAX: its subsystem is \"mem\"".to_owned())
    );
    let mut expected = fcntl_fstat(raw(&fd));
    expected.push("readlink(\"/sys/dev/char/1:3/subsystem\", 256)".to_owned());
    assert_eq!(log, expected);
}

#[test]
fn closed_fd_takes_one() {
    let number = surely_closed_fd();
    let (result, log) = counted(number);
    assert_eq!(
        result.map_err(|e| e.to_string()),
        Err("fcntl: Bad file descriptor".to_owned())
    );
    assert_eq!(log, [format!("fcntl_getfl({number})")]);
    let (_, log) = counted(i32::MAX);
    assert_eq!(log.len(), 1);
}

#[test]
fn negative_fd_takes_none() {
    for fd in [-1, i32::MIN] {
        let (result, log) = counted(fd);
        assert_eq!(result, Err(Error::NegativeFd { fd }));
        assert_eq!(log, Vec::<String>::new());
    }
}

#[test]
fn write_only_and_o_path_take_one() {
    let dir = TempDir::new("count-wronly");
    let path = dir.file("data", b"x");
    for (flags, expected) in [
        (libc::O_WRONLY, Error::WriteOnly),
        (libc::O_WRONLY | libc::O_APPEND, Error::WriteOnly),
        (libc::O_PATH, Error::PathOnly),
        (libc::O_ACCMODE, Error::NoAccessMode),
    ] {
        let fd = must_open(&path, flags);
        let (result, log) = counted(raw(&fd));
        assert_eq!(result, Err(expected), "flags {flags:#o}");
        assert_eq!(log, [format!("fcntl_getfl({})", raw(&fd))]);
    }
}

#[test]
fn directory_and_fifo_take_two() {
    let dir = TempDir::new("count-dir");
    let fd = must_open(dir.path(), libc::O_RDONLY | libc::O_DIRECTORY);
    let (result, log) = counted(raw(&fd));
    assert_eq!(result, Err(Error::Directory));
    assert_eq!(log, fcntl_fstat(raw(&fd)));

    let fifo = dir.join("fifo");
    let c = c_path(&fifo);
    // SAFETY: `c` is a live NUL-terminated path.
    let ret = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(ret, 0, "mkfifo: {}", std::io::Error::last_os_error());
    let fd = must_open(&fifo, libc::O_RDWR | libc::O_NONBLOCK);
    let (result, log) = counted(raw(&fd));
    assert_eq!(
        result,
        Err(Error::UnsupportedFileType {
            file_type_bits: libc::S_IFIFO
        })
    );
    assert_eq!(log, fcntl_fstat(raw(&fd)));
}
