//! `pmem2_errormsg()` is per thread, through the C ABI (our `.so`, dlopen'ed): 8 threads
//! × 10,000 iterations alternate failing calls, whose message is the thread's own, with
//! succeeding calls, which must leave the message alone. Any message another thread wrote,
//! or a success that changed it, is a mismatch; there must be none.

#![cfg(not(windows))] // Linux only: scripts/wine-tests.sh has the Windows tests.

mod support;

use std::ffi::c_int;
use std::ptr::null_mut;
use std::sync::Barrier;

use support::{Library, SourceApi};

const THREADS: usize = 8;
const ITERATIONS: usize = 10_000;
const PMEM2_E_INVALID_FILE_HANDLE: c_int = -100_004;
const PMEM2_E_FILE_DESCRIPTOR_NOT_SET: c_int = -100_035;
const NOT_SET_MESSAGE: &str = "File descriptor is not set, source type does not support fd";

/// What one thread saw.
#[derive(Debug, Default)]
struct Tally {
    mismatches: usize,
    failures_checked: usize,
    successes_checked: usize,
    first_mismatch: Option<String>,
    message_buffer: usize,
}

impl Tally {
    fn mismatch(&mut self, what: impl FnOnce() -> String) {
        self.mismatches += 1;
        if self.first_mismatch.is_none() {
            self.first_mismatch = Some(what());
        }
    }
}

fn worker(api: SourceApi, index: usize, start: &Barrier, end: &Barrier) -> Tally {
    let mut tally = Tally::default();
    let fd = -c_int::try_from(index + 1).expect("small index");
    let own = format!("invalid file descriptor value {fd} (descriptors are never negative)");

    let mut anon = null_mut();
    assert_eq!(api.source_from_anon(&mut anon, 4096), 0);
    tally.message_buffer = api.message_ptr() as usize;

    start.wait();
    for iteration in 0..ITERATIONS {
        // A failure with this thread's message: from_fd with its own negative fd, or (every
        // other iteration) get_fd on its anonymous source.
        let (code, expected_code, expected) = if iteration % 2 == 0 {
            let mut src = null_mut();
            let code = api.source_from_fd(&mut src, fd);
            if !src.is_null() {
                tally.mismatch(|| format!("thread {index}: from_fd({fd}) set src"));
            }
            (code, PMEM2_E_INVALID_FILE_HANDLE, own.as_str())
        } else {
            let mut out: c_int = 0;
            // SAFETY: `anon` is this thread's live source, `out` a valid out-pointer.
            let code = unsafe { api.source_get_fd(anon, &mut out) };
            (code, PMEM2_E_FILE_DESCRIPTOR_NOT_SET, NOT_SET_MESSAGE)
        };
        tally.failures_checked += 1;
        let message = api.message();
        if code != expected_code || message != expected {
            tally.mismatch(|| {
                format!(
                    "thread {index} iteration {iteration}: failure {code} {message:?}, \
                     expected {expected_code} {expected:?}"
                )
            });
        }

        // A success must leave the message alone.
        let mut src = null_mut();
        let created = api.source_from_anon(&mut src, iteration);
        // SAFETY: `src` is NULL or the live source just created.
        let deleted = unsafe { api.source_delete(&mut src) };
        tally.successes_checked += 1;
        let message = api.message();
        if created != 0 || deleted != 0 || message != expected {
            tally.mismatch(|| {
                format!(
                    "thread {index} iteration {iteration}: success ({created}, {deleted}) \
                     left {message:?}, expected {expected:?} unchanged"
                )
            });
        }
    }
    if api.message_ptr() as usize != tally.message_buffer {
        tally.mismatch(|| format!("thread {index}: pmem2_errormsg() moved"));
    }
    // Keep every thread (and its message buffer) alive until all have finished, so the
    // buffers compared below existed at the same time.
    end.wait();
    // SAFETY: this thread's live source, not used afterwards.
    assert_eq!(unsafe { api.source_delete(&mut anon) }, 0);
    tally
}

#[test]
fn error_messages_are_per_thread() {
    let path = support::our_shared_library();
    let lib = Library::open(path.to_str().expect("UTF-8 path")).expect("dlopen our library");
    let api = SourceApi::load("ours", &lib);
    let (start, end) = (Barrier::new(THREADS), Barrier::new(THREADS));
    let started = std::time::Instant::now();
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|index| {
                let (start, end) = (&start, &end);
                scope.spawn(move || worker(api, index, start, end))
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("worker thread"))
            .collect()
    });
    let elapsed = started.elapsed();

    let mismatches: usize = tallies.iter().map(|tally| tally.mismatches).sum();
    let first: Vec<&str> = tallies
        .iter()
        .filter_map(|tally| tally.first_mismatch.as_deref())
        .collect();
    assert_eq!(mismatches, 0, "first mismatch per thread: {first:#?}");
    for tally in &tallies {
        assert_eq!(tally.failures_checked, ITERATIONS);
        assert_eq!(tally.successes_checked, ITERATIONS);
    }
    let mut buffers: Vec<usize> = tallies.iter().map(|tally| tally.message_buffer).collect();
    buffers.sort_unstable();
    buffers.dedup();
    assert_eq!(buffers.len(), THREADS, "one message buffer per thread");
    eprintln!(
        "{THREADS} threads × {ITERATIONS} iterations (2 checks each): {elapsed:?}, 0 mismatches"
    );
}
