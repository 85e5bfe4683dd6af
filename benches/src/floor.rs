//! The bare-syscall floor: the kernel work a call cannot avoid, issued with the same syscall
//! instructions (`sc`) and the same numbers as the core's `Linux` backend, with every
//! argument prepared in advance (the sysfs path is formatted once, outside the timed loop).
//!
//! Each function returns the raw kernel return value (`-errno` in `-4095..=-1` on failure),
//! which the harness checks once before timing and otherwise only passes to `black_box`.
//!
//! # Safety
//!
//! Every pointer handed to the kernel is a live buffer of the stated length owned by the
//! caller for the duration of the call; a syscall has no other effect on Rust memory.

use std::ffi::CStr;
use std::mem::MaybeUninit;

/// A buffer for `fstat`, of the kernel's `struct stat` size (glibc's is the same on the
/// architectures the core calls `FSTAT` on directly; the core's tests assert it).
pub type Stat = MaybeUninit<libc::stat>;

/// `fcntl(fd, F_GETFL)`.
#[inline(always)]
pub fn fcntl_getfl(fd: i32) -> isize {
    // SAFETY: F_GETFL takes no pointer and only reads the descriptor table.
    (unsafe { sc::syscall!(FCNTL, fd, libc::F_GETFL) }) as isize
}

/// `fstat(fd, st)`.
#[inline(always)]
pub fn fstat(fd: i32, st: &mut Stat) -> isize {
    // SAFETY: `st` is a writable `struct stat`, live for the call.
    (unsafe { sc::syscall!(FSTAT, fd, st.as_mut_ptr()) }) as isize
}

/// `readlinkat(AT_FDCWD, path, buf, buf.len())`.
#[inline(always)]
pub fn readlinkat(path: &CStr, buf: &mut [u8]) -> isize {
    // SAFETY: `path` is NUL-terminated and `buf` writable for `buf.len()` bytes.
    (unsafe {
        sc::syscall!(
            READLINKAT,
            libc::AT_FDCWD,
            path.as_ptr(),
            buf.as_mut_ptr(),
            buf.len()
        )
    }) as isize
}

/// `openat(AT_FDCWD, path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC)`, the
/// core's flags for a sysfs attribute.
#[inline(always)]
pub fn open_read_only(path: &CStr) -> isize {
    let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_NOFOLLOW;
    // SAFETY: `path` is NUL-terminated and only read during the call.
    (unsafe {
        sc::syscall!(
            OPENAT,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags | libc::O_CLOEXEC
        )
    }) as isize
}

/// `read(fd, buf, buf.len())`.
#[inline(always)]
pub fn read(fd: i32, buf: &mut [u8]) -> isize {
    // SAFETY: `buf` is writable for `buf.len()` bytes during the call.
    (unsafe { sc::syscall!(READ, fd, buf.as_mut_ptr(), buf.len()) }) as isize
}

/// `close(fd)`.
#[inline(always)]
pub fn close(fd: i32) -> isize {
    // SAFETY: closing a descriptor touches no memory of ours.
    (unsafe { sc::syscall!(CLOSE, fd) }) as isize
}

/// What reading a sysfs attribute takes, as the core does it: `openat`, `fstat` (only a
/// regular file is read: a FIFO or a device put in a staged tree is refused), `read` until the
/// end of the file (two reads for a short attribute: the text, then 0), `close`. Returns the
/// number of bytes read, or the first negative return.
#[inline(always)]
pub fn read_attribute(path: &CStr, buf: &mut [u8]) -> isize {
    let fd = open_read_only(path);
    if fd < 0 {
        return fd;
    }
    let fd = fd as i32;
    let mut st = Stat::uninit();
    let checked = fstat(fd, &mut st);
    if checked < 0 {
        close(fd);
        return checked;
    }
    let mut filled = 0usize;
    let outcome = loop {
        let Some(rest) = buf.get_mut(filled..).filter(|rest| !rest.is_empty()) else {
            break filled as isize;
        };
        match read(fd, rest) {
            0 => break filled as isize,
            n if n < 0 => break n,
            n => filled += n as usize,
        }
    };
    close(fd);
    outcome
}
