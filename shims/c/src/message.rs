//! The calling thread's last error message, for `pmem2_errormsg()`.
//!
//! The text is written when someone can see it. Until the thread first asks for the pointer,
//! nobody can hold it, so a failure is kept as a value and its text written by
//! `pmem2_errormsg()`: a thread that never reads its messages never pays for formatting them.
//! Once the pointer is out, the caller may keep it and read it after a later failure, so from
//! then on every failure writes its text at once, in place, as libpmem2 does. Recording a
//! failure never allocates.
//!
//! The text lives in a buffer of its own, allocated by the thread's first `pmem2_errormsg()`
//! and freed when the thread exits; the thread-local keeps only the failure and the buffer's
//! address. That keeps the library's thread-local block small (under 256 bytes, asserted by
//! `tests/tls_model.rs`), so when the library is loaded after the program started, glibc can
//! place it in its static TLS reserve (512 bytes shared by all such libraries), and the
//! TLS-descriptor accesses that `scripts/build-capi.sh` compiles become a fixed offset from
//! the thread pointer rather than a `__tls_get_addr`-style lookup: about 2 ns of a failing
//! `pmem2_source_from_fd`, 1.08× → 1.06× the bare `fcntl` (docs/benchmarks.md). With the
//! 1 KiB text inside, the block did not fit and every access took the slow path.
//!
//! # Thread exit
//!
//! The thread-local has no destructor (it needs no drop: a kept failure owns no memory), so
//! it is usable until the thread is gone, and reaching it involves no check of a
//! destructor's registration. The buffer is freed by the destructor of a pthread key
//! instead. glibc runs a thread's thread-local destructors (`__call_tls_dtors`, which Rust's
//! use) first, then its pthread key destructors, in rounds while destructors set keys again
//! (at most `PTHREAD_DESTRUCTOR_ITERATIONS`, 4), each round in the keys' order. A program's
//! key destructor may call the library. With a Rust thread-local destructor, a thread that
//! failed there after using the library found its message freed (`pmem2_errormsg()` gave
//! ""), and a thread whose first call was there registered a destructor that never ran (its
//! buffer and glibc's record of the destructor were lost).
//!
//! Our key's destructor keeps the buffer through the first round it runs in (it sets the
//! key again), so every key destructor of that round, whichever its key's place, sees the
//! thread's messages; it frees the buffer the next time it runs. A `pmem2_errormsg()` after
//! that (from a destructor of a later round, one that set its key again) gets a fixed message
//! saying the text was freed, rather than a new buffer nothing might free. A thread whose
//! first `pmem2_errormsg()` comes in the third round or later (destructors set keys again
//! twice before) may still lose its buffer: there may be no round left to free it in.
//!
//! Two consequences of the key. Its destructor must still be mapped when any thread that
//! set it exits, so the shared library makes itself `RTLD_NODELETE` when it creates the key
//! (a Rust thread-local destructor kept it loaded the same way); `dlclose` then leaves it
//! loaded. And the thread that calls `exit` (usually the main thread) runs no key destructors,
//! so the library's own destructor (`.fini_array`) frees that thread's buffer; a later
//! `pmem2_errormsg()` on it gets the fixed message. (On Windows the buffer is freed by a Rust
//! thread-local destructor, run from the TLS callbacks; there are no key destructors after
//! them.)

use std::cell::RefCell;
use std::ffi::{CStr, c_char};
use std::fmt::{self, Write};
use std::mem::{self, ManuallyDrop};
use std::ptr::NonNull;

use pmem2_source::sysfs::SysfsText;
use pmem2_source::{DeviceNumber, Errno, Error};

use crate::{Failure, hidden};

/// Bytes per message, NUL included; longer messages are cut.
pub(crate) const CAPACITY: usize = 1024;

/// A message's text, NUL-terminated.
type Text = [u8; CAPACITY];

/// What `pmem2_errormsg()` returns when the thread's text buffer cannot be allocated. The
/// failure stays kept, for a later call to write.
const NO_MEMORY: &CStr = c"pmem2_errormsg: out of memory for the message text";

/// What `pmem2_errormsg()` returns when no pthread key can be created to free the thread's
/// text buffer when the thread exits (the process has used up `PTHREAD_KEYS_MAX`). The
/// failure stays kept.
#[cfg(not(windows))]
const NO_KEY: &CStr =
    c"pmem2_errormsg: no pthread key left to free the message text at thread exit";

/// What `pmem2_errormsg()` returns once the thread's exit has freed its text buffer (asked
/// from a pthread key destructor of a later round than the one that kept it).
const TEXT_FREED: &CStr = c"pmem2_errormsg: this thread is exiting and its message text was \
    freed (the failure's code was returned)";

/// In which of its runs the key destructor frees the thread's text buffer (see the module
/// documentation): the second, so the first round it runs in keeps it.
const RELEASE_RUN: u8 = 2;

/// One thread's message.
struct LastMessage {
    /// The last failure, when its text is not in `text` yet (only while `text` is `None`).
    unwritten: Unwritten,
    /// The text, once `pmem2_errormsg()` has handed out its address on this thread: a leaked
    /// `Box<Text>`, so the address stays put and the 1 KiB stays out of the thread-local
    /// block; the thread's value of [`text_key`], whose destructor ([`release_text`]) frees it
    /// as the thread exits.
    text: Option<NonNull<Text>>,
    /// How many times [`release_text`] has run on this thread (it runs only as it exits).
    releases: u8,
    /// The fingerprint of the hidden libpmem2's message when ours last failed on this thread
    /// (`crate::hidden`); `None` without a hidden libpmem2 or a failure of ours.
    hidden_at_failure: Option<u64>,
}

/// The thread-local's type: it must need no drop, because a thread-local with a destructor is
/// no longer usable once that destructor ran, and, first used in a pthread key destructor,
/// registers one that never runs. Never dropping a `LastMessage` loses nothing: the text
/// buffer is freed by [`release_text`], and a kept failure owns no memory (numbers, static
/// strings, and the core's errors, whose texts are inline).
type Slot = RefCell<ManuallyDrop<LastMessage>>;

const _: () = assert!(
    !mem::needs_drop::<Slot>(),
    "the thread-local must need no drop"
);

/// A failure whose text is not written yet.
enum Unwritten {
    Nothing,
    /// A failure of `from_fd` that carries at most a number.
    Brief(Brief),
    /// A character device that is not Device DAX, such as `/dev/null`: its two fields, for
    /// the reason a [`Brief`] exists. Kept as a whole cloned `Error` (the clone, then a
    /// `memcpy` of it), it cost a failing `pmem2_source_from_fd` on `/dev/null` about 1 % of
    /// its time (docs/benchmarks.md).
    NotDeviceDax {
        device: DeviceNumber,
        subsystem: SysfsText,
    },
    Other(Failure),
}

/// The failures of `from_fd` that carry at most a number, as that number. Kept as a whole
/// `Error`, they were copied all 104 bytes at once, with loads wider than the stores that had
/// just written them, which the CPU cannot forward: 3-5 ns of a failing
/// `pmem2_source_from_fd` (measured against benches/c/minimal_source.c). A `Brief` is a tag
/// and a number, read and written as such.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Brief {
    NegativeFd(i32),
    Fcntl(Errno),
    WriteOnly,
    NoAccessMode,
    PathOnly,
    Fstat(Errno),
    Directory,
    UnsupportedFileType(u32),
}

impl Brief {
    fn of(err: &Error) -> Option<Brief> {
        Some(match *err {
            Error::NegativeFd { fd } => Brief::NegativeFd(fd),
            Error::Fcntl { errno } => Brief::Fcntl(errno),
            Error::WriteOnly => Brief::WriteOnly,
            Error::NoAccessMode => Brief::NoAccessMode,
            Error::PathOnly => Brief::PathOnly,
            Error::Fstat { errno } => Brief::Fstat(errno),
            Error::Directory => Brief::Directory,
            Error::UnsupportedFileType { file_type_bits } => {
                Brief::UnsupportedFileType(file_type_bits)
            }
            _ => return None,
        })
    }

    fn error(self) -> Error {
        match self {
            Brief::NegativeFd(fd) => Error::NegativeFd { fd },
            Brief::Fcntl(errno) => Error::Fcntl { errno },
            Brief::WriteOnly => Error::WriteOnly,
            Brief::NoAccessMode => Error::NoAccessMode,
            Brief::PathOnly => Error::PathOnly,
            Brief::Fstat(errno) => Error::Fstat { errno },
            Brief::Directory => Error::Directory,
            Brief::UnsupportedFileType(file_type_bits) => {
                Error::UnsupportedFileType { file_type_bits }
            }
        }
    }
}

/// Replaces `text` with `failure`'s message, cut to fit.
fn write(text: &mut [u8; CAPACITY], failure: &Failure) {
    match failure {
        Failure::Core(err) => write_core(text, err),
        _ => write_formatted(text, failure),
    }
}

/// [`write`] for an error of the core: the common failures of `from_fd` without `core::fmt`
/// (`Error::write_message`), the others formatted.
fn write_core(text: &mut [u8; CAPACITY], err: &Error) {
    let (room, _) = text.split_at_mut(CAPACITY - 1);
    match err.write_message(room) {
        Some(len) if len < CAPACITY => text[len] = 0,
        _ => write_formatted(text, err),
    }
}

fn write_formatted(text: &mut [u8; CAPACITY], message: &dyn fmt::Display) {
    let (room, _) = text.split_at_mut(CAPACITY - 1);
    let mut writer = Truncating {
        buffer: room,
        len: 0,
    };
    let _ = write!(writer, "{message}");
    let len = writer.len;
    text[len] = 0;
}

thread_local! {
    static LAST_MESSAGE: Slot = const {
        RefCell::new(ManuallyDrop::new(LastMessage {
            unwritten: Unwritten::Nothing,
            text: None,
            releases: 0,
            hidden_at_failure: None,
        }))
    };
}

/// Runs `update` on the calling thread's message. If formatting a message somehow re-entered
/// here, it does not run: the old message stays rather than a panic crossing the C boundary.
/// (The thread-local has no destructor, so it is there until the thread is gone.)
fn update(update: impl FnOnce(&mut LastMessage)) {
    let _ = LAST_MESSAGE.try_with(|cell| {
        if let Ok(mut last) = cell.try_borrow_mut() {
            update(&mut last);
        }
    });
}

/// Makes `failure` the calling thread's last message.
pub(crate) fn record(failure: Failure) {
    update(|last| {
        last.hidden_at_failure = hidden::fingerprint();
        match last.text {
            // SAFETY: the thread's own live text buffer (see `LastMessage::text`); no other
            // reference to it exists while the thread-local is borrowed.
            Some(mut text) => write(unsafe { text.as_mut() }, &failure),
            None => last.unwritten = Unwritten::Other(failure),
        }
    });
}

/// [`record`] for an error of the core, read where the core put it (see `fail_core`): the
/// common failures of `from_fd` as a [`Brief`], the others by [`keep_not_brief`].
pub(crate) fn record_core(err: &Error) {
    update(|last| {
        last.hidden_at_failure = hidden::fingerprint();
        match last.text {
            // SAFETY: as in `record`.
            Some(mut text) => write_core(unsafe { text.as_mut() }, err),
            None => match Brief::of(err) {
                Some(brief) => last.unwritten = Unwritten::Brief(brief),
                None => keep_not_brief(&mut last.unwritten, err),
            },
        }
    });
}

/// [`record_core`] for the failures that are not a [`Brief`]. Out of line, so that the
/// `Brief` arm stays a tag and a number stored: inlined, LLVM merged both arms into one copy of
/// a whole `Unwritten` through the stack (a closed descriptor: 104 instructions per call out
/// of line, 128 inlined; docs/benchmarks.md).
#[inline(never)]
fn keep_not_brief(unwritten: &mut Unwritten, err: &Error) {
    *unwritten = match err {
        Error::NotDeviceDax { device, subsystem } => Unwritten::NotDeviceDax {
            device: *device,
            subsystem: subsystem.clone(),
        },
        _ => Unwritten::Other(Failure::Core(err.clone())),
    }
}

/// The calling thread's message as a C string ("" before the first failure), its text written
/// first if it was not yet. From here on the thread's failures write their text at once.
/// When a libpmem2 hidden by this library failed after ours on this thread (or ours never
/// did), its message instead (`crate::hidden`).
pub(crate) fn as_ptr() -> *const c_char {
    as_ptr_with(new_text)
}

/// [`as_ptr`], allocating the thread's text buffer with `allocate` when it has none.
fn as_ptr_with(allocate: fn() -> Option<Box<Text>>) -> *const c_char {
    LAST_MESSAGE
        .try_with(|cell| {
            let Ok(mut last) = cell.try_borrow_mut() else {
                return c"".as_ptr();
            };
            let last = &mut *last;
            if let Some(theirs) = hidden::newer_message(last.hidden_at_failure) {
                return theirs;
            }
            let mut text = match last.text {
                Some(text) => text,
                None if last.releases >= RELEASE_RUN => return TEXT_FREED.as_ptr(),
                None => match new_text_freed_at_exit(allocate) {
                    Ok(text) => *last.text.insert(text),
                    Err(message) => return message.as_ptr(),
                },
            };
            // SAFETY: the thread's own live text buffer; no other reference to it exists while
            // the thread-local is borrowed.
            let text = unsafe { text.as_mut() };
            match mem::replace(&mut last.unwritten, Unwritten::Nothing) {
                Unwritten::Nothing => {}
                Unwritten::Brief(brief) => write_core(text, &brief.error()),
                Unwritten::NotDeviceDax { device, subsystem } => {
                    write_core(text, &Error::NotDeviceDax { device, subsystem })
                }
                Unwritten::Other(failure) => write(text, &failure),
            }
            text.as_ptr().cast::<c_char>()
        })
        .unwrap_or(c"".as_ptr())
}

/// A new text buffer from `allocate`, arranged to be freed when the thread exits; or the
/// fixed message saying why there is none.
fn new_text_freed_at_exit(
    allocate: fn() -> Option<Box<Text>>,
) -> Result<NonNull<Text>, &'static CStr> {
    let text = NonNull::from(Box::leak(allocate().ok_or(NO_MEMORY)?));
    match at_exit::free_at_exit(text) {
        Ok(()) => Ok(text),
        Err(message) => {
            // SAFETY: `text` was leaked from a Box just above and is referenced nowhere else.
            drop(unsafe { Box::from_raw(text.as_ptr()) });
            Err(message)
        }
    }
}

/// Takes the calling thread's text buffer out of its thread-local, to free, as the thread
/// exits; `None` if it has none or if `release` says to keep it for now. From then on, its
/// `pmem2_errormsg()` gets [`TEXT_FREED`].
fn take_text_at_exit(release: impl FnOnce(&mut LastMessage) -> bool) -> Option<NonNull<Text>> {
    LAST_MESSAGE
        .try_with(|cell| {
            // Cannot fail: no code of ours is running on this thread while a destructor
            // runs. If it did, the buffer is left rather than freed while in use.
            let mut last = cell.try_borrow_mut().ok()?;
            last.text?;
            if !release(&mut last) {
                return None;
            }
            last.releases = RELEASE_RUN;
            last.text.take()
        })
        .ok()
        .flatten()
}

/// Frees a text buffer [`take_text_at_exit`] took.
fn free_text(text: NonNull<Text>) {
    // SAFETY: the buffer was leaked from a Box by `new_text_freed_at_exit`; the thread-local
    // no longer holds it, and the pointer handed out by pmem2_errormsg is valid only while
    // the thread lives.
    drop(unsafe { Box::from_raw(text.as_ptr()) });
}

/// Freeing the text buffer as the thread exits, with a pthread key (see the module
/// documentation).
#[cfg(not(windows))]
mod at_exit {
    use std::ffi::{CStr, c_void};
    use std::mem;
    use std::ptr::{self, NonNull};
    use std::sync::OnceLock;

    use super::{NO_KEY, NO_MEMORY, RELEASE_RUN, Text};

    /// Makes `text` the thread's value of [`text_key`], whose destructor frees it.
    pub(super) fn free_at_exit(text: NonNull<Text>) -> Result<(), &'static CStr> {
        let key = text_key().ok_or(NO_KEY)?;
        // SAFETY: `key` is a live key; the value is only ever passed back to `release_text`.
        if unsafe { libc::pthread_setspecific(key, text.as_ptr().cast()) } == 0 {
            Ok(())
        } else {
            // pthread_setspecific fails only for want of memory for its own table.
            Err(NO_MEMORY)
        }
    }

    /// The process's pthread key whose destructor frees a thread's text buffer; `None` if it
    /// cannot be created.
    fn text_key() -> Option<libc::pthread_key_t> {
        static KEY: OnceLock<Option<libc::pthread_key_t>> = OnceLock::new();
        *KEY.get_or_init(|| {
            stay_loaded();
            let mut key: libc::pthread_key_t = 0;
            // SAFETY: creates a key with a destructor that accepts any value we set.
            let created = unsafe { libc::pthread_key_create(&mut key, Some(release_text)) };
            (created == 0).then_some(key)
        })
    }

    /// Keeps this shared library loaded for good (`RTLD_NODELETE`): glibc calls a key's
    /// destructor as each thread that set it exits, and `release_text` must still be mapped
    /// then, even if the program `dlclose`s the library first. (A Rust thread-local destructor
    /// pins its library by itself; a key's does not.) Statically linked, the program's own
    /// file is found, and nothing changes.
    fn stay_loaded() {
        let mut info = mem::MaybeUninit::<libc::Dl_info>::zeroed();
        let ours = release_text as unsafe extern "C" fn(*mut c_void);
        // SAFETY: dladdr only writes `info`, and only reads the address.
        let found = unsafe { libc::dladdr(ours as *const c_void, info.as_mut_ptr()) };
        if found == 0 {
            return;
        }
        // SAFETY: dladdr succeeded, so it filled `info`.
        let file = unsafe { info.assume_init() }.dli_fname;
        if file.is_null() {
            return;
        }
        let flags = libc::RTLD_NOW | libc::RTLD_NOLOAD | libc::RTLD_NODELETE;
        // SAFETY: `file` is the NUL-terminated name of our loaded object; RTLD_NOLOAD only
        // looks it up (it is loaded: this code runs from it), adding RTLD_NODELETE to it.
        let handle = unsafe { libc::dlopen(file, flags) };
        if !handle.is_null() {
            // SAFETY: drops the reference dlopen just took; the library stays (RTLD_NODELETE).
            unsafe { libc::dlclose(handle) };
        }
    }

    /// [`text_key`]'s destructor, run by glibc as the thread exits, with the thread's text
    /// buffer: the first time, it sets the key again, keeping the buffer through this round
    /// of key destructors; the next time, it frees it (see the module documentation).
    unsafe extern "C" fn release_text(value: *mut c_void) {
        let text = super::take_text_at_exit(|last| {
            if last.text.is_none_or(|text| text.as_ptr().cast() != value) {
                return false; // never: the key's value is always the thread's buffer
            }
            last.releases = last.releases.saturating_add(1);
            let keep = last.releases < RELEASE_RUN
                && text_key().is_some_and(|key| {
                    // SAFETY: sets the key again to the same buffer, as a destructor may.
                    unsafe { libc::pthread_setspecific(key, value) == 0 }
                });
            !keep
        });
        if let Some(text) = text {
            super::free_text(text);
        }
    }

    /// Frees the text buffer of the thread that runs the library's destructors: at `exit`,
    /// the thread calling it (usually the main thread), whose key destructors never run. The
    /// program's `atexit` handlers and C++ static destructors have run by then; a later
    /// `pmem2_errormsg()` on this thread gets the fixed message.
    extern "C" fn release_at_exit() {
        if let Some(text) = super::take_text_at_exit(|_| true) {
            if let Some(key) = text_key() {
                // SAFETY: clears the thread's value of our key, so its destructor does not
                // see the buffer freed here.
                unsafe { libc::pthread_setspecific(key, ptr::null()) };
            }
            super::free_text(text);
        }
    }

    /// [`release_at_exit`] among the library's destructors.
    #[used]
    #[unsafe(link_section = ".fini_array")]
    static RELEASE_AT_EXIT: extern "C" fn() = release_at_exit;
}

/// Freeing the text buffer as the thread exits, with a thread-local destructor (Windows runs
/// them from its TLS callbacks, with no pthread keys to come after).
#[cfg(windows)]
mod at_exit {
    use std::ffi::CStr;
    use std::ptr::NonNull;

    use super::Text;

    /// Frees the thread's text buffer when dropped, as the thread exits.
    struct Owner;

    impl Drop for Owner {
        fn drop(&mut self) {
            if let Some(text) = super::take_text_at_exit(|_| true) {
                super::free_text(text);
            }
        }
    }

    thread_local! {
        static OWNER: Owner = const { Owner };
    }

    /// Registers [`Owner`]'s destructor on this thread (its first use does).
    pub(super) fn free_at_exit(_text: NonNull<Text>) -> Result<(), &'static CStr> {
        OWNER.try_with(|_| ()).map_err(|_| super::TEXT_FREED)
    }
}

/// An empty text buffer, or `None` when the allocator refuses (never an abort: a C caller
/// asked for its message).
fn new_text() -> Option<Box<Text>> {
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(CAPACITY).ok()?;
    bytes.resize(CAPACITY, 0);
    bytes.into_boxed_slice().try_into().ok()
}

/// Writes into a byte buffer, dropping what does not fit.
struct Truncating<'a> {
    buffer: &'a mut [u8],
    len: usize,
}

impl Write for Truncating<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let room = self.buffer.len() - self.len;
        let kept = &text.as_bytes()[..text.len().min(room)];
        self.buffer[self.len..self.len + kept.len()].copy_from_slice(kept);
        self.len += kept.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use pmem2_source::{Errno, Error};

    use super::*;

    fn current() -> String {
        // SAFETY: as_ptr returns this thread's NUL-terminated buffer (or a static "").
        unsafe { CStr::from_ptr(as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    /// Whether this thread has a text buffer, which it gets when it first asks for the
    /// pointer. Each test runs on a thread of its own (libtest), so starts without one.
    fn pointer_given() -> bool {
        LAST_MESSAGE.with(|cell| cell.borrow().text.is_some())
    }

    fn null_argument(function: &'static str) -> Failure {
        Failure::NullArgument {
            function,
            argument: "src",
        }
    }

    /// The failures kept as a `Brief`, and some that are not (kept field by field, or cloned
    /// whole).
    fn brief_and_other_errors() -> (Vec<Error>, Vec<Error>) {
        let brief = vec![
            Error::NegativeFd { fd: -7 },
            Error::Fcntl {
                errno: Errno::EBADF,
            },
            Error::WriteOnly,
            Error::NoAccessMode,
            Error::PathOnly,
            Error::Fstat { errno: Errno::EIO },
            Error::Directory,
            Error::UnsupportedFileType {
                file_type_bits: 0o010000,
            },
        ];
        let device = pmem2_source::DeviceNumber::from_raw(0x103);
        let other = vec![
            Error::NotDeviceDax {
                device,
                subsystem: pmem2_source::sysfs::SysfsText::new(b"mem"),
            },
            Error::SysfsUnreadable {
                device,
                errno: Errno::ENOENT,
            },
            Error::NoMemory,
        ];
        (brief, other)
    }

    #[test]
    fn briefs_give_back_the_error_they_were_made_of() {
        let (brief, other) = brief_and_other_errors();
        for err in brief {
            let kept = Brief::of(&err).unwrap_or_else(|| panic!("{err:?} is not brief"));
            assert_eq!(kept.error(), err);
        }
        for err in other {
            assert_eq!(Brief::of(&err), None, "{err:?}");
        }
    }

    /// Each kind of kept failure, on a thread that has not asked for the pointer yet, reads
    /// back as the error's own message when it is asked for.
    #[test]
    fn kept_failures_are_written_as_their_messages() {
        let (brief, other) = brief_and_other_errors();
        for err in brief.into_iter().chain(other) {
            std::thread::spawn(move || {
                record_core(&err);
                assert!(!pointer_given(), "recording allocated the text");
                assert_eq!(current(), err.to_string());
            })
            .join()
            .expect("thread");
        }
    }

    /// A character device that is not Device DAX (`/dev/null`, the common one) is kept as its
    /// two fields, not as a cloned `Error`.
    #[test]
    fn not_device_dax_is_kept_by_its_fields() {
        let err = Error::NotDeviceDax {
            device: DeviceNumber::from_raw(0x103),
            subsystem: SysfsText::new(b"mem"),
        };
        record_core(&err);
        LAST_MESSAGE.with(|cell| match &cell.borrow().unwritten {
            Unwritten::NotDeviceDax { device, subsystem } => {
                assert_eq!(*device, DeviceNumber::from_raw(0x103));
                assert_eq!(subsystem.as_bytes(), b"mem");
            }
            _ => panic!("not kept by its fields"),
        });
        assert_eq!(current(), err.to_string());
    }

    #[test]
    fn the_last_failure_before_the_first_read_is_the_one_written() {
        assert!(!pointer_given());
        record(null_argument("first"));
        record(Failure::Core(Error::Fcntl {
            errno: Errno::EBADF,
        }));
        // Nothing written yet (there is nowhere to write it): the text appears when asked for.
        assert!(!pointer_given());
        assert_eq!(current(), "fcntl: Bad file descriptor");
        assert!(pointer_given());
    }

    #[test]
    fn empty_until_a_failure_then_replaced() {
        assert_eq!(current(), "");
        record(null_argument("first"));
        assert_eq!(current(), "first: src must not be NULL");
        record(Failure::Core(Error::Directory));
        assert_eq!(current(), Error::Directory.to_string());
        record(Failure::AllocatorFixed);
        assert!(current().starts_with("pmem2_source_set_funcs: the allocator is already fixed"));
    }

    #[test]
    fn a_held_pointer_shows_later_failures() {
        record(null_argument("before"));
        let held = as_ptr();
        let read = || {
            // SAFETY: `held` is this thread's NUL-terminated buffer, live while the thread is.
            unsafe { CStr::from_ptr(held) }.to_str().unwrap().to_owned()
        };
        assert_eq!(read(), "before: src must not be NULL");
        // Written at once now, without another pmem2_errormsg() call.
        record(Failure::Core(Error::WriteOnly));
        assert_eq!(read(), Error::WriteOnly.to_string());
        record(null_argument("after"));
        assert_eq!(read(), "after: src must not be NULL");
        assert_eq!(as_ptr(), held);
    }

    #[test]
    fn long_messages_are_cut_and_terminated() {
        let long: &'static str = Box::leak("x".repeat(CAPACITY * 2).into_boxed_str());
        record(null_argument(long));
        assert_eq!(current(), "x".repeat(CAPACITY - 1));
        record(null_argument("short"));
        assert_eq!(current(), "short: src must not be NULL");
    }

    #[test]
    fn threads_have_their_own_message() {
        record(null_argument("main"));
        assert_eq!(current(), "main: src must not be NULL");
        std::thread::spawn(|| {
            assert!(!pointer_given());
            assert_eq!(current(), "");
            record(null_argument("other"));
            assert_eq!(current(), "other: src must not be NULL");
        })
        .join()
        .expect("thread");
        assert_eq!(current(), "main: src must not be NULL");
    }

    /// No text buffer to be had: a fixed message saying so, and the failure stays kept, for
    /// the first call that gets a buffer to write.
    #[test]
    fn without_memory_for_the_text_the_failure_waits() {
        record(null_argument("kept"));
        // SAFETY: as_ptr_with returns a NUL-terminated static or this thread's buffer.
        let answer = unsafe { CStr::from_ptr(as_ptr_with(|| None)) };
        assert_eq!(answer, NO_MEMORY);
        assert!(!pointer_given());
        record_core(&Error::Directory);
        // SAFETY: as above.
        let answer = unsafe { CStr::from_ptr(as_ptr_with(|| None)) };
        assert_eq!(answer, NO_MEMORY);
        assert_eq!(current(), Error::Directory.to_string());
        assert!(pointer_given());
    }

    /// The buffer is the one allocation, made once per thread, and outlives later failures.
    #[test]
    fn the_text_is_allocated_once() {
        assert_eq!(current(), "");
        let first = as_ptr();
        record(null_argument("again"));
        assert_eq!(as_ptr_with(|| panic!("allocated a second buffer")), first);
        assert_eq!(current(), "again: src must not be NULL");
    }
}
