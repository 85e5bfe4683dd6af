//! The Windows C ABI called from Rust (run under Wine by `scripts/wine-tests.sh`):
//! `pmem2_source_from_handle` on files, a directory, a mutex, an event and
//! `INVALID_HANDLE_VALUE`; `pmem2_source_from_fd` on C runtime descriptors (valid, -1,
//! closed, 1000000); `pmem2_source_get_handle`; the queries; `-ENOMEM`.

#[path = "../../../../tests/windows_common/mod.rs"]
mod common;

use std::ffi::{CStr, c_int, c_void};
use std::fs::File;
use std::os::windows::io::AsRawHandle;
use std::ptr::{NonNull, null_mut};

use common::{Scratch, allocation_granularity, crt_close, crt_open, in_child_process};
use pmem2_source::codes::{self, *};

use super::*;
use crate::{
    pmem2_errormsg, pmem2_source_alignment, pmem2_source_delete, pmem2_source_device_id,
    pmem2_source_device_usc, pmem2_source_from_anon, pmem2_source_numa_node,
    pmem2_source_pread_mcsafe, pmem2_source_pwrite_mcsafe, pmem2_source_set_funcs,
    pmem2_source_size,
};

const LEN: usize = 5_000;

fn last_message() -> String {
    // SAFETY: pmem2_errormsg returns a NUL-terminated string owned by this thread.
    unsafe { CStr::from_ptr(pmem2_errormsg()) }
        .to_string_lossy()
        .into_owned()
}

/// `pmem2_source_from_handle` into a slot that held garbage: (code, source).
fn from_handle(handle: Handle) -> (c_int, *mut Source) {
    let mut src: *mut Source = NonNull::dangling().as_ptr();
    // SAFETY: `src` is a valid out-pointer (its old value is overwritten, not read).
    let code = unsafe { pmem2_source_from_handle(&mut src, handle) };
    (code, src)
}

/// `pmem2_source_from_fd` into a slot that held garbage: (code, source).
fn from_fd(fd: c_int) -> (c_int, *mut Source) {
    let mut src: *mut Source = NonNull::dangling().as_ptr();
    // SAFETY: as in `from_handle`.
    let code = unsafe { pmem2_source_from_fd(&mut src, fd) };
    (code, src)
}

/// A failure: the code, the message, and `*src` left NULL.
fn assert_failure((code, src): (c_int, *mut Source), expected: c_int, message: &str) {
    assert_eq!((code, last_message().as_str()), (expected, message));
    assert!(src.is_null(), "*src is NULL after a failure");
}

fn get_handle(src: *const Source) -> Handle {
    let mut handle: Handle = null_mut();
    // SAFETY: `src` is live, `handle` writable.
    assert_eq!(unsafe { pmem2_source_get_handle(src, &mut handle) }, 0);
    handle
}

fn delete(mut src: *mut Source) {
    // SAFETY: `src` is a live source of ours, given up here.
    assert_eq!(unsafe { pmem2_source_delete(&mut src) }, 0);
    assert!(src.is_null());
}

/// A source of `handle`: its handle, size and alignment through the C ABI.
fn check_file_source(src: *mut Source, handle: Handle) {
    assert!(!src.is_null());
    assert_eq!(get_handle(src), handle);
    // SAFETY: `src` is live; NULL `h` is allowed, and is where libpmem2 would write.
    let code = unsafe { pmem2_source_get_handle(src, null_mut()) };
    assert_eq!(
        (code, last_message().as_str()),
        (-22, "pmem2_source_get_handle: h must not be NULL")
    );
    let mut size = 0usize;
    // SAFETY: `src` is live, `size` writable.
    assert_eq!(unsafe { pmem2_source_size(src, &mut size) }, 0);
    assert_eq!(size, LEN);
    let mut alignment = 0usize;
    // SAFETY: as above.
    assert_eq!(unsafe { pmem2_source_alignment(src, &mut alignment) }, 0);
    assert_eq!(alignment, allocation_granularity());
    delete(src);
}

#[test]
fn regular_file_handles_read_write_and_read_only() {
    let scratch = Scratch::new("capi-handles");
    let path = scratch.file("data", &common::pattern(LEN));
    let read_write = common::open_read_write(&path);
    let read_only = File::open(&path).expect("open read-only");
    for file in [&read_write, &read_only] {
        let (code, src) = from_handle(file.as_raw_handle());
        assert_eq!(code, 0, "{}", last_message());
        check_file_source(src, file.as_raw_handle());
    }
}

#[test]
fn directories_mutexes_events_and_invalid_handles_fail() {
    let scratch = Scratch::new("capi-not-files");
    let dir = common::open_directory(&scratch.dir);
    assert_failure(
        from_handle(dir.as_raw_handle()),
        PMEM2_E_INVALID_FILE_TYPE,
        "using directory doesn't make any sense in context of pmem2",
    );
    for handle in [common::mutex(), common::event()] {
        assert_failure(
            from_handle(handle.as_raw_handle()),
            PMEM2_E_INVALID_FILE_HANDLE,
            "GetFileInformationByHandle: The handle is invalid.",
        );
    }
    assert_failure(
        from_handle(INVALID_HANDLE_VALUE),
        PMEM2_E_INVALID_FILE_HANDLE,
        "Invalid file handle has been passed",
    );
    // SAFETY: NULL `src` is allowed.
    let code = unsafe { pmem2_source_from_handle(null_mut(), INVALID_HANDLE_VALUE) };
    assert_eq!(
        (code, last_message().as_str()),
        (-22, "pmem2_source_from_handle: src must not be NULL")
    );
}

#[test]
fn get_handle_of_anonymous_sources_and_null_arguments() {
    let mut src: *mut Source = null_mut();
    // SAFETY: `src` is a valid out-pointer.
    assert_eq!(unsafe { pmem2_source_from_anon(&mut src, 4096) }, 0);
    let mut handle: Handle = INVALID_HANDLE_VALUE;
    // SAFETY: `src` is live, `handle` writable.
    let code = unsafe { pmem2_source_get_handle(src, &mut handle) };
    assert_eq!(
        (code, last_message().as_str()),
        (
            PMEM2_E_FILE_HANDLE_NOT_SET,
            "File handle is not set, source type does not support file handles"
        )
    );
    assert_eq!(handle, INVALID_HANDLE_VALUE, "untouched");
    // SAFETY: NULL `h` is allowed. libpmem2 refuses the anonymous source before it would
    // write through `h`.
    let code = unsafe { pmem2_source_get_handle(src, null_mut()) };
    assert_eq!(
        (code, last_message().as_str()),
        (
            PMEM2_E_FILE_HANDLE_NOT_SET,
            "File handle is not set, source type does not support file handles"
        )
    );
    let mut alignment = 0usize;
    // SAFETY: `src` is live, `alignment` writable.
    assert_eq!(unsafe { pmem2_source_alignment(src, &mut alignment) }, 0);
    assert_eq!(alignment, allocation_granularity(), "anonymous too");
    delete(src);
}

#[test]
fn crt_descriptors_valid_negative_and_unknown() {
    let scratch = Scratch::new("capi-fds");
    let path = scratch.file("data", &common::pattern(LEN));
    for flags in [libc::O_RDWR, libc::O_RDONLY] {
        let fd = crt_open(&path, flags);
        let (code, src) = from_fd(fd);
        assert_eq!(code, 0, "{}", last_message());
        // SAFETY: `_get_osfhandle` of a descriptor of ours.
        let handle = unsafe { libc::get_osfhandle(fd) } as Handle;
        check_file_source(src, handle);
        crt_close(fd);
    }
    assert_failure(
        from_fd(-1),
        PMEM2_E_INVALID_FILE_HANDLE,
        "Invalid file descriptor value -1",
    );
    assert_failure(
        from_fd(i32::MIN),
        PMEM2_E_INVALID_FILE_HANDLE,
        &format!("Invalid file descriptor value {}", i32::MIN),
    );
    assert_failure(
        from_fd(1_000_000),
        PMEM2_E_INVALID_FILE_HANDLE,
        "_get_osfhandle(1000000): Bad file descriptor",
    );
}

/// Stale values, in a child process: a closed C runtime descriptor, a closed handle.
#[test]
fn closed_descriptors_and_handles() {
    in_child_process("windows::tests::closed_descriptors_and_handles", || {
        let scratch = Scratch::new("capi-closed");
        let path = scratch.file("data", b"abc");
        let fd = crt_open(&path, libc::O_RDONLY);
        crt_close(fd);
        assert_failure(
            from_fd(fd),
            PMEM2_E_INVALID_FILE_HANDLE,
            &format!("_get_osfhandle({fd}): Bad file descriptor"),
        );
        let file = File::open(&path).expect("open");
        let stale = file.as_raw_handle();
        drop(file);
        assert_failure(
            from_handle(stale),
            PMEM2_E_INVALID_FILE_HANDLE,
            "GetFileInformationByHandle: The handle is invalid.",
        );
    });
}

unsafe extern "C" fn no_memory(_size: usize) -> *mut c_void {
    null_mut()
}

/// A malloc that fails, registered first thing in a child process (the allocator of a
/// process is fixed by its first allocation).
#[test]
fn allocation_failure_is_enomem() {
    in_child_process("windows::tests::allocation_failure_is_enomem", || {
        // SAFETY: the pair behaves like malloc and free (the one never allocates).
        let code = unsafe { pmem2_source_set_funcs(Some(no_memory), Some(libc::free)) };
        assert_eq!(code, 0);
        let scratch = Scratch::new("capi-enomem");
        let file = File::open(scratch.file("data", b"abc")).expect("open");
        assert_failure(
            from_handle(file.as_raw_handle()),
            -12,
            "cannot allocate a pmem2_source: out of memory",
        );
        let fd = crt_open(&scratch.dir.join("data"), libc::O_RDONLY);
        assert_failure(
            from_fd(fd),
            -12,
            "cannot allocate a pmem2_source: out of memory",
        );
        crt_close(fd);
        // A bad handle fails before anything is allocated.
        assert_failure(
            from_handle(common::event().as_raw_handle()),
            PMEM2_E_INVALID_FILE_HANDLE,
            "GetFileInformationByHandle: The handle is invalid.",
        );
    });
}

#[test]
fn queries_and_mcsafe_io() {
    let scratch = Scratch::new("capi-queries");
    let path = scratch.file("data", &common::pattern(LEN));
    let file = common::open_read_write(&path);
    let (code, mut src) = from_handle(file.as_raw_handle());
    assert_eq!(code, 0);
    let mut node = 0;
    // SAFETY: `src` is live and each out-parameter writable (here and below).
    let code = unsafe { pmem2_source_numa_node(src, &mut node) };
    assert_eq!(code, PMEM2_E_NOSUPP, "{}", last_message());
    let mut usc = 0u64;
    // SAFETY: as above.
    let code = unsafe { pmem2_source_device_usc(src, &mut usc) };
    assert_eq!(code, PMEM2_E_NOSUPP, "{}", last_message());
    let mut len = 0usize;
    // SAFETY: as above.
    let code = unsafe { pmem2_source_device_id(src, null_mut(), &mut len) };
    assert_eq!(code, PMEM2_E_NOSUPP, "{}", last_message());

    let mut data = *b"WINE";
    // SAFETY: `data` is valid for 4 bytes.
    let code = unsafe { pmem2_source_pwrite_mcsafe(src, data.as_mut_ptr().cast(), 4, 100) };
    assert_eq!(code, 0, "{}", last_message());
    let mut back = [0u8; 6];
    // SAFETY: `back` is valid for 6 bytes.
    let code = unsafe { pmem2_source_pread_mcsafe(src, back.as_mut_ptr().cast(), 6, 99) };
    assert_eq!(code, 0, "{}", last_message());
    let pattern = common::pattern(LEN);
    assert_eq!(back, [pattern[99], b'W', b'I', b'N', b'E', pattern[104]]);
    // SAFETY: as above.
    let code = unsafe { pmem2_source_pread_mcsafe(src, back.as_mut_ptr().cast(), 6, LEN - 1) };
    assert_eq!(code, codes::PMEM2_E_LENGTH_OUT_OF_RANGE);
    // SAFETY: `src` is live and given up here.
    assert_eq!(unsafe { pmem2_source_delete(&mut src) }, 0);
}
