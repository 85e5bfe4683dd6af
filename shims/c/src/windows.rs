//! The Windows functions of the C ABI: `pmem2_source_from_handle`, `pmem2_source_get_handle`,
//! and `pmem2_source_from_fd` through the C runtime's `_get_osfhandle`, as libpmem2's
//! `source_windows.c` has them.
//!
//! # Safety
//!
//! As for the whole library (see the crate root); the C runtime calls take only a
//! descriptor number.

use std::ffi::{c_int, c_void};

use pmem2_source::sys::{INVALID_HANDLE_VALUE, Windows};
use pmem2_source::{Errno, Error, Source};

use crate::{answer, create};

/// A Win32 `HANDLE`.
pub type Handle = *mut c_void;

unsafe extern "C" {
    /// The C runtime's `errno` location for the calling thread (msvcrt and the UCRT).
    fn _errno() -> *mut c_int;
}

/// The calling thread's `errno` slot of the C runtime.
fn errno_slot() -> *mut c_int {
    // SAFETY: `_errno` has no preconditions and returns the calling thread's errno location.
    unsafe { _errno() }
}

/// The Win32 handle behind C runtime descriptor `fd`: `_get_osfhandle`, whose failure (a
/// closed or never opened descriptor) is `-1` with `errno` `EBADF`.
///
/// The windows-gnu targets link msvcrt.dll, whose `_get_osfhandle` answers so for any bad
/// number (seen under Wine: 1000000, closed descriptors). The UCRT's (MSVC targets) first
/// calls the invalid-parameter handler, which by default ends the process (libpmem2, built
/// for it, calls its own check dead code): there a do-nothing handler is installed for this
/// thread around the call.
fn crt_handle(fd: c_int) -> Result<Handle, Error> {
    if fd < 0 {
        return Err(Error::NegativeCrtFd { fd });
    }
    let errno = errno_slot();
    // SAFETY: the thread's own errno slot, valid for the life of the thread.
    unsafe { errno.write(0) };
    // SAFETY: `_get_osfhandle` takes a number and reads the C runtime's descriptor table.
    let handle = invalid_parameter::ignored(|| unsafe { libc::get_osfhandle(fd) });
    if handle != INVALID_HANDLE_VALUE.addr() as isize {
        return Ok(std::ptr::without_provenance_mut(handle as usize));
    }
    // SAFETY: as above.
    let errno = match unsafe { errno.read() } {
        0 => Errno::EBADF,
        errno => Errno::from_raw(errno),
    };
    Err(Error::CrtFd { fd, errno })
}

/// The UCRT's invalid-parameter handler, replaced for the calling thread while a C runtime
/// call that may reject its argument runs.
#[cfg(target_env = "msvc")]
mod invalid_parameter {
    use std::ffi::c_uint;

    type Handler = Option<unsafe extern "C" fn(*const u16, *const u16, *const u16, c_uint, usize)>;

    unsafe extern "C" {
        fn _set_thread_local_invalid_parameter_handler(handler: Handler) -> Handler;
    }

    /// Returns, so the C runtime function returns its error (-1, errno EBADF).
    unsafe extern "C" fn ignore(_: *const u16, _: *const u16, _: *const u16, _: c_uint, _: usize) {}

    /// Runs `call` with [`ignore`] as this thread's handler, then puts the previous one back.
    pub(super) fn ignored<T>(call: impl FnOnce() -> T) -> T {
        // SAFETY: sets this thread's handler only; `ignore` lives for the whole program.
        let previous = unsafe { _set_thread_local_invalid_parameter_handler(Some(ignore)) };
        let result = call();
        // SAFETY: as above, restoring what was there.
        unsafe { _set_thread_local_invalid_parameter_handler(previous) };
        result
    }
}

/// msvcrt.dll calls no handler that ends the process (see [`crt_handle`]).
#[cfg(not(target_env = "msvc"))]
mod invalid_parameter {
    /// Runs `call`.
    pub(super) fn ignored<T>(call: impl FnOnce() -> T) -> T {
        call()
    }
}

/// `int pmem2_source_from_fd(struct pmem2_source **src, int fd)` on Windows: the descriptor's
/// handle from `_get_osfhandle`, then as [`pmem2_source_from_handle`]. A negative `fd` is
/// `PMEM2_E_INVALID_FILE_HANDLE` (`Invalid file descriptor value -1`), so is a descriptor the
/// C runtime does not know (closed, or never opened).
///
/// # Safety
/// `src` is NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem2_source_from_fd(src: *mut *mut Source, fd: c_int) -> c_int {
    // SAFETY: `src` is passed on under the caller's guarantee.
    unsafe {
        create("pmem2_source_from_fd", src, || {
            Source::from_handle_with(&Windows, crt_handle(fd)?)
        })
    }
}

/// `int pmem2_source_from_handle(struct pmem2_source **src, HANDLE handle)`: validates the
/// file handle (`GetFileInformationByHandle`; not a directory) and creates a source referring
/// to it. The handle is neither duplicated nor closed.
///
/// # Safety
/// `src` is NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem2_source_from_handle(src: *mut *mut Source, handle: Handle) -> c_int {
    // SAFETY: `src` is passed on under the caller's guarantee.
    unsafe {
        create("pmem2_source_from_handle", src, || {
            Source::from_handle_with(&Windows, handle)
        })
    }
}

/// `int pmem2_source_get_handle(const struct pmem2_source *src, HANDLE *h)`:
/// `PMEM2_E_FILE_HANDLE_NOT_SET` for an anonymous source (`*h` untouched).
///
/// # Safety
/// `src` is NULL or a live source from this library; `h` is NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem2_source_get_handle(src: *const Source, h: *mut Handle) -> c_int {
    // SAFETY: the pointers are passed on under the caller's guarantee, which is `answer`'s.
    unsafe {
        answer("pmem2_source_get_handle", src, "h", h, |source| {
            Ok(source.handle()?)
        })
    }
}

#[cfg(test)]
mod tests;
