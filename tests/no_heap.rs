//! The by-value API allocates nothing: `Source::from_fd` on every kind of descriptor (success
//! and each failure), the queries and `get_fd` on the result, and formatting nothing either,
//! under a counting `#[global_allocator]`.
//!
//! The counter is per thread (a `const` thread-local `Cell`, which itself allocates nothing),
//! so the test harness's own threads and output do not disturb it.

#![cfg(not(windows))] // Linux only: scripts/wine-tests.sh has the Windows tests.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use common::{TempDir, must_open, raw, surely_closed_fd};
use pmem2_source::{Error, FileType, Source};

/// The system allocator, counting this thread's allocations and reallocations.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: allocations during thread teardown are not ours to count.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only a
// thread-local integer.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's guarantees are passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's guarantees are passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: the caller's guarantees are passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's guarantees are passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// How many times `f` allocated on this thread, and its result.
fn allocations_in<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let before = ALLOCATIONS.with(Cell::get);
    let result = f();
    (ALLOCATIONS.with(Cell::get) - before, result)
}

#[test]
fn the_counter_sees_allocations() {
    let (n, v) = allocations_in(|| vec![1u8; 100]);
    assert_eq!((n, v.len()), (1, 100));
}

#[test]
fn from_fd_and_queries_allocate_nothing() {
    let dir = TempDir::new("no-heap");
    let file = must_open(&dir.file("data", &[7u8; 4096]), libc::O_RDWR);
    let (n, source) = allocations_in(|| Source::from_fd(raw(&file)));
    assert_eq!(n, 0, "from_fd of a regular file");
    let source = source.expect("regular file");
    assert_eq!(source.file_type(), Some(FileType::Regular));
    let (n, answers) = allocations_in(|| {
        let mut buf = [0u8; 16];
        (
            source.fd(),
            source.size(),
            source.alignment(),
            source.numa_node().is_err(),
            source.pread_mcsafe(&mut buf, 8),
            buf,
        )
    });
    assert_eq!(n, 0, "queries of a regular-file source");
    assert_eq!(
        answers,
        (Ok(raw(&file)), Ok(4096), Ok(4096), true, Ok(()), [7u8; 16])
    );
    let (n, anon) = allocations_in(|| Source::anon(1 << 21).size());
    assert_eq!((n, anon), (0, Ok(1 << 21)), "an anonymous source");
}

#[test]
fn every_failure_of_from_fd_allocates_nothing() {
    let dir = TempDir::new("no-heap-failures");
    let path = dir.file("data", b"x");
    let write_only = must_open(&path, libc::O_WRONLY);
    let o_path = must_open(&path, libc::O_PATH);
    let directory = must_open(dir.path(), libc::O_RDONLY | libc::O_DIRECTORY);
    let dev_null = must_open(Path::new("/dev/null"), libc::O_RDWR);
    let (reader, _writer) = common::pipe();
    let closed = surely_closed_fd();
    for (what, fd) in [
        ("negative", -1),
        ("closed", closed),
        ("O_WRONLY", raw(&write_only)),
        ("O_PATH", raw(&o_path)),
        ("directory", raw(&directory)),
        ("/dev/null (character device, not DAX)", raw(&dev_null)),
        ("pipe", raw(&reader)),
    ] {
        let (n, result): (usize, Result<Source, Error>) = allocations_in(|| Source::from_fd(fd));
        assert_eq!(n, 0, "from_fd of {what}");
        let err = result.expect_err(what);
        // The error is a value: its code, and writing its message into a fixed buffer, need
        // no heap either.
        let (n, code) = allocations_in(|| {
            use std::io::Write;
            let mut text = [0u8; 256];
            let written = write!(&mut text[..], "{err}").is_ok();
            (err.code(), written)
        });
        assert_eq!(n, 0, "code and message of {what}");
        assert!(code.0 < 0 && code.1, "{what}: {code:?}");
    }
}
