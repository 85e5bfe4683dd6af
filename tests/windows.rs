//! The core on Windows (run under Wine by `scripts/wine-tests.sh`): `Source::from_handle` and
//! the queries through the `sys::Windows` backend on real handles — regular files opened
//! read-write and read-only, a directory, a mutex, an event, `INVALID_HANDLE_VALUE`, NULL and
//! (in a child process) a closed handle — and the allocated form's `-ENOMEM`.

#![cfg(windows)]

#[path = "windows_common/mod.rs"]
mod common;

use std::fs::File;
use std::os::windows::io::{AsRawHandle, RawHandle};

use common::{Scratch, allocation_granularity, event, in_child_process, mutex, open_directory};
use pmem2_source::sys::{INVALID_HANDLE_VALUE, Windows};
use pmem2_source::{
    CountingAlloc, Error, FailingAlloc, FileType, Source, SourceBox, SourceKind, StaticPool,
    Win32Error, codes,
};

/// A length that is not a multiple of anything.
const LEN: usize = 12_345;

fn assert_failure<T: std::fmt::Debug>(result: Result<T, Error>, code: i32, message: &str) {
    let err = result.expect_err("expected a failure");
    assert_eq!(
        (err.code(), err.to_string().as_str()),
        (code, message),
        "{err:?}"
    );
}

fn check_regular(file: &File) {
    let handle = file.as_raw_handle();
    let source = Source::from_handle(handle).expect("a regular file");
    assert_eq!(source.kind(), SourceKind::Handle);
    assert_eq!(source.file_type(), Some(FileType::Regular));
    assert_eq!(source.handle(), Ok(handle));
    assert_eq!(source.fd(), Err(Error::FileDescriptorNotSet));
    assert_eq!(source.size(), Ok(LEN as u64));
    assert_eq!(source.alignment(), Ok(allocation_granularity()));
}

#[test]
fn regular_files_read_write_and_read_only() {
    let scratch = Scratch::new("core-regular");
    let path = scratch.file("data", &common::pattern(LEN));
    let read_write = common::open_read_write(&path);
    check_regular(&read_write);
    let read_only = File::open(&path).expect("open read-only");
    check_regular(&read_only);
}

#[test]
fn size_follows_the_file() {
    let scratch = Scratch::new("core-size");
    let file = File::create(scratch.dir.join("grows")).expect("create");
    let source = Source::from_handle(file.as_raw_handle()).expect("source");
    assert_eq!(source.size(), Ok(0));
    file.set_len(3 << 30).expect("set_len to 3 GiB (sparse)");
    assert_eq!(source.size(), Ok(3 << 30), "beyond 32 bits");
}

/// Under Wine (and Windows) the granularity is 64 KiB; whatever it is, every source reports
/// it, anonymous ones included.
#[test]
fn alignment_is_the_allocation_granularity() {
    let granularity = allocation_granularity();
    assert!(
        granularity.is_power_of_two() && granularity >= 4096,
        "{granularity}"
    );
    assert_eq!(Source::anon(1).alignment(), Ok(granularity));
}

#[test]
fn a_directory_is_an_invalid_file_type() {
    let scratch = Scratch::new("core-dir");
    let dir = open_directory(&scratch.dir);
    assert_failure(
        Source::from_handle(dir.as_raw_handle()),
        codes::PMEM2_E_INVALID_FILE_TYPE,
        "using directory doesn't make any sense in context of pmem2",
    );
}

#[test]
fn mutexes_and_events_are_invalid_file_handles() {
    for (what, handle) in [("mutex", mutex()), ("event", event())] {
        let err = Source::from_handle(handle.as_raw_handle()).expect_err(what);
        assert_eq!(
            err,
            Error::Win32 {
                call: "GetFileInformationByHandle",
                error: Win32Error::INVALID_HANDLE
            },
            "{what}"
        );
        assert_eq!(err.code(), codes::PMEM2_E_INVALID_FILE_HANDLE, "{what}");
        assert_eq!(
            err.to_string(),
            "GetFileInformationByHandle: The handle is invalid."
        );
    }
}

#[test]
fn invalid_and_null_handles() {
    assert_failure(
        Source::from_handle(INVALID_HANDLE_VALUE),
        codes::PMEM2_E_INVALID_FILE_HANDLE,
        "Invalid file handle has been passed",
    );
    assert_failure(
        Source::from_handle(std::ptr::null_mut()),
        codes::PMEM2_E_INVALID_FILE_HANDLE,
        "GetFileInformationByHandle: The handle is invalid.",
    );
}

/// A handle that was closed: creating a source of it, and asking the size of a source whose
/// handle was closed since.
#[test]
fn closed_handles() {
    in_child_process("closed_handles", || {
        let scratch = Scratch::new("core-closed");
        let file = File::open(scratch.file("data", b"abc")).expect("open");
        let source = Source::from_handle(file.as_raw_handle()).expect("source");
        let stale: RawHandle = file.as_raw_handle();
        drop(file);
        let invalid = "GetFileInformationByHandle: The handle is invalid.";
        assert_failure(
            Source::from_handle(stale),
            codes::PMEM2_E_INVALID_FILE_HANDLE,
            invalid,
        );
        assert_failure(source.size(), codes::PMEM2_E_INVALID_FILE_HANDLE, invalid);
    });
}

/// The handle value closed and reused for another file: the size of the other file is not
/// the source's.
#[test]
fn a_reused_handle_value_is_noticed() {
    in_child_process("a_reused_handle_value_is_noticed", || {
        let scratch = Scratch::new("core-reused");
        let first = File::open(scratch.file("first", b"abc")).expect("open");
        let source = Source::from_handle(first.as_raw_handle()).expect("source");
        drop(first);
        // Windows hands out the lowest free slot again: the next handle has the same value.
        let second = File::open(scratch.file("second", b"abcdef")).expect("open");
        let reused = second.as_raw_handle() == source.handle().expect("handle");
        eprintln!("the handle value was reused: {reused}");
        let err = source.size().expect_err("not the same file");
        assert_eq!(err.code(), codes::PMEM2_E_INVALID_FILE_HANDLE, "{err}");
        if reused {
            assert!(matches!(err, Error::HandleChanged { .. }), "{err:?}");
        }
    });
}

#[test]
fn get_handle_of_handle_and_anonymous_sources() {
    let scratch = Scratch::new("core-get");
    let file = File::open(scratch.file("data", b"x")).expect("open");
    let source = Source::from_handle(file.as_raw_handle()).expect("source");
    assert_eq!(source.handle(), Ok(file.as_raw_handle()));
    assert_failure(
        Source::anon(4096).handle(),
        codes::PMEM2_E_FILE_HANDLE_NOT_SET,
        "File handle is not set, source type does not support file handles",
    );
}

#[test]
fn allocation_failure_is_enomem_and_bad_handles_allocate_nothing() {
    let scratch = Scratch::new("core-alloc");
    let file = File::open(scratch.file("data", b"x")).expect("open");
    let err = SourceBox::from_handle_in(&Windows, file.as_raw_handle(), FailingAlloc)
        .expect_err("no memory");
    assert_eq!((err.code(), err), (-12, Error::NoMemory));
    let pool = StaticPool::<1>::new();
    let counting = CountingAlloc::new(&pool);
    let boxed =
        SourceBox::from_handle_in(&Windows, file.as_raw_handle(), &counting).expect("allocated");
    assert_eq!(boxed.handle(), Ok(file.as_raw_handle()));
    drop(boxed);
    let event = event();
    let err = SourceBox::from_handle_in(&Windows, event.as_raw_handle(), &counting)
        .expect_err("not a file");
    assert_eq!(err.code(), codes::PMEM2_E_INVALID_FILE_HANDLE);
    assert_eq!(
        (counting.allocations(), counting.failures()),
        (1, 0),
        "nothing asked for the event"
    );
    assert_eq!(counting.live(), 0);
}

/// libpmem2's Windows struct: type 3 at 0, file type 1 at 8, the HANDLE at 16.
#[test]
fn layout_is_libpmem2s_on_windows() {
    let scratch = Scratch::new("core-layout");
    let file = File::open(scratch.file("data", b"x")).expect("open");
    let source = Source::from_handle(file.as_raw_handle()).expect("source");
    // SAFETY: Source is repr(C), 64 plain bytes without padding holes of unknown value.
    let bytes: [u8; 64] = unsafe { std::mem::transmute(source) };
    let word = |at: usize| u64::from_ne_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    assert_eq!(word(0), 3);
    assert_eq!(word(8), 1);
    assert_eq!(word(16), file.as_raw_handle() as u64);
}

#[test]
fn mcsafe_io_through_the_handle() {
    let scratch = Scratch::new("core-io");
    let path = scratch.file("data", &common::pattern(LEN));
    let file = common::open_read_write(&path);
    let source = Source::from_handle(file.as_raw_handle()).expect("source");
    source.pwrite_mcsafe(b"hello", 10_000).expect("write");
    let mut back = [0u8; 7];
    source.pread_mcsafe(&mut back, 9_999).expect("read");
    assert_eq!(
        &back,
        &[
            common::pattern(LEN)[9_999],
            b'h',
            b'e',
            b'l',
            b'l',
            b'o',
            common::pattern(LEN)[10_005]
        ]
    );
    assert_eq!(
        std::fs::read(&path).expect("read back")[10_000..10_005],
        *b"hello"
    );
    let err = source
        .pread_mcsafe(&mut [0; 2], LEN as u64 - 1)
        .expect_err("past the end");
    assert_eq!(err.code(), codes::PMEM2_E_LENGTH_OUT_OF_RANGE);

    let read_only = File::open(&path).expect("open read-only");
    let source = Source::from_handle(read_only.as_raw_handle()).expect("source");
    let err = source.pwrite_mcsafe(b"x", 0).expect_err("read-only handle");
    assert_eq!(
        err,
        Error::Win32 {
            call: "WriteFile",
            error: Win32Error::ACCESS_DENIED
        }
    );
    assert_eq!((err.code(), err.name()), (-13, "EACCES"));
    assert_eq!(err.to_string(), "WriteFile: Access is denied.");
}

#[test]
fn device_queries_are_not_supported_on_windows() {
    let scratch = Scratch::new("core-device");
    let file = File::open(scratch.file("data", b"x")).expect("open");
    let source = Source::from_handle(file.as_raw_handle()).expect("source");
    for err in [
        source.numa_node().expect_err("numa"),
        source.device_id(None).expect_err("id"),
        source.device_usc().expect_err("usc"),
    ] {
        assert_eq!(err.code(), codes::PMEM2_E_NOSUPP, "{err}");
        assert!(err.to_string().contains("Windows"), "{err}");
    }
}
