//! The libpmem2 this library hides, when both are in one process.
//!
//! Loaded ahead of Debian's libpmem2 (`LD_PRELOAD`, or linked before it), this library's
//! `pmem2_errormsg` and `pmem2_perror` are the ones the whole process calls, also after a
//! failure of one of libpmem2's own functions (`pmem2_map_new`, `pmem2_config_*`, …), whose
//! message only libpmem2 holds. So `pmem2_errormsg` gives the message of whichever library
//! failed last on the calling thread (`message.rs`), and this module finds the hidden
//! library's `pmem2_errormsg` and tells when its message changed.
//!
//! The hidden function is the next definition after ours in the lookup order
//! (`dlsym(RTLD_NEXT)`), looked up once per process, at the first failure or message asked
//! for. None is found when libpmem2 is not loaded, when ours is loaded with
//! `dlopen(RTLD_LOCAL)` (its own scope holds only its dependencies) and when libpmem2 comes
//! first (then it hides ours). A libpmem2 that a program `dlopen`s with `RTLD_GLOBAL` after
//! that first lookup is not seen.
//!
//! libpmem2 keeps one message buffer per thread and never clears it, so a failure of
//! libpmem2 shows only as a change of its text: its fingerprint is taken whenever ours fails.
//! A libpmem2 failure that leaves exactly the text it already held cannot be told from none.
//! Asking libpmem2 for its message on a thread where it never failed makes it allocate the
//! thread's 8 KiB message buffer, as its own first failure there would (its key destructor
//! frees it when the thread exits); libpmem2 aborts the process if that allocation fails, on
//! its own failure as on ours.

use std::ffi::{CStr, c_char};
use std::sync::atomic::{AtomicUsize, Ordering};

/// `const char *pmem2_errormsg(void)`.
type Errormsg = unsafe extern "C" fn() -> *const c_char;

/// [`HIDDEN_ERRORMSG`] before the lookup.
const NOT_LOOKED_UP: usize = 0;
/// [`HIDDEN_ERRORMSG`] when the lookup found nothing.
const NONE: usize = 1;

/// The hidden `pmem2_errormsg`'s address, or one of the two states above.
static HIDDEN_ERRORMSG: AtomicUsize = AtomicUsize::new(NOT_LOOKED_UP);

/// The hidden library's `pmem2_errormsg`, if there is one. Inlined: every failure of ours
/// asks.
#[inline]
fn errormsg() -> Option<Errormsg> {
    let mut found = HIDDEN_ERRORMSG.load(Ordering::Acquire);
    if found == NOT_LOOKED_UP {
        found = look_up();
        HIDDEN_ERRORMSG.store(found, Ordering::Release);
    }
    if found == NONE {
        return None;
    }
    // SAFETY: `found` is the address dlsym gave for `pmem2_errormsg` in a loaded library,
    // which has this type in libpmem2's ABI.
    Some(unsafe { std::mem::transmute::<usize, Errormsg>(found) })
}

/// Looks the hidden `pmem2_errormsg` up (threads that race here find the same answer).
#[cfg(not(windows))]
#[cold]
fn look_up() -> usize {
    // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name only searches the objects loaded
    // after the caller's, which is this library's code.
    let next = unsafe { libc::dlsym(libc::RTLD_NEXT, c"pmem2_errormsg".as_ptr()) };
    let ours = crate::pmem2_errormsg as extern "C" fn() -> *const c_char;
    if next.is_null() || std::ptr::eq(next, ours as *const std::ffi::c_void) {
        NONE
    } else {
        next as usize
    }
}

/// On Windows a DLL's functions are bound to the DLL by name: no library hides another's.
#[cfg(windows)]
fn look_up() -> usize {
    NONE
}

/// What the hidden library's message for the calling thread is, as a fingerprint: `None`
/// when there is no hidden library.
#[inline]
pub(crate) fn fingerprint() -> Option<u64> {
    let errormsg = errormsg()?;
    // SAFETY: libpmem2's pmem2_errormsg takes nothing and returns the thread's NUL-terminated
    // message buffer.
    let text = unsafe { errormsg() };
    Some(fingerprint_of(text))
}

/// The hidden library's message, if there is a hidden library whose message for the calling
/// thread no longer has the fingerprint `at_our_failure` (taken when ours last failed on the
/// thread; `None` if ours has not failed since the lookup): then it failed after ours.
pub(crate) fn newer_message(at_our_failure: Option<u64>) -> Option<*const c_char> {
    let errormsg = errormsg()?;
    // SAFETY: as in `fingerprint`.
    let text = unsafe { errormsg() };
    if text.is_null() || at_our_failure == Some(fingerprint_of(text)) {
        return None;
    }
    Some(text)
}

/// FNV-1a over the text's bytes and its address (a thread's buffer stays put).
#[inline(never)]
fn fingerprint_of(text: *const c_char) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = 0xcbf2_9ce4_8422_2325_u64 ^ text as usize as u64;
    if text.is_null() {
        return hash;
    }
    // SAFETY: not NULL, so the NUL-terminated message buffer libpmem2 returned.
    let bytes = unsafe { CStr::from_ptr(text) }.to_bytes();
    for &byte in bytes {
        hash = (hash ^ u64::from(byte)).wrapping_mul(PRIME);
    }
    hash
}
