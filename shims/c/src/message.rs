//! The calling thread's last error message, for `pmem2_errormsg()`.
//!
//! A fixed, NUL-terminated buffer per thread: recording a failure allocates nothing, and the
//! pointer handed to C stays valid for the life of the thread (its contents change on the
//! thread's next failure, as with libpmem2).
//!
//! The text is written when someone can see it. Until the thread first asks for the pointer,
//! nobody can hold it, so a failure is kept as a value and its text written by
//! `pmem2_errormsg()`: a thread that never reads its messages never pays for formatting them.
//! Once the pointer is out, the caller may keep it and read it after a later failure, so from
//! then on every failure writes its text at once, in place, as libpmem2 does.

use std::cell::RefCell;
use std::ffi::c_char;
use std::fmt::{self, Write};
use std::mem;

use pmem2_source::{Errno, Error};

use crate::Failure;

/// Bytes per message, NUL included; longer messages are cut.
pub(crate) const CAPACITY: usize = 1024;

/// One thread's message. `repr(C)` with `text` first: a pointer to the whole is a pointer to
/// the text, which is how C gets it without `unsafe` here.
#[repr(C)]
struct LastMessage {
    text: [u8; CAPACITY],
    /// The last failure, when its text is not in `text` yet (only before `pointer_given`).
    unwritten: Unwritten,
    /// `pmem2_errormsg()` has handed out `text`'s address on this thread.
    pointer_given: bool,
}

/// A failure whose text is not written yet.
enum Unwritten {
    Nothing,
    /// A failure of `from_fd` that carries at most a number.
    Brief(Brief),
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
    static LAST_MESSAGE: RefCell<LastMessage> = const {
        RefCell::new(LastMessage {
            text: [0; CAPACITY],
            unwritten: Unwritten::Nothing,
            pointer_given: false,
        })
    };
}

/// Runs `update` on the calling thread's message. During thread teardown, or if formatting a
/// message somehow re-entered here, it does not run: the old message stays rather than a panic
/// crossing the C boundary.
fn update(update: impl FnOnce(&mut LastMessage)) {
    let _ = LAST_MESSAGE.try_with(|cell| {
        if let Ok(mut last) = cell.try_borrow_mut() {
            update(&mut last);
        }
    });
}

/// Makes `failure` the calling thread's last message.
pub(crate) fn record(failure: Failure) {
    update(|last| match last.pointer_given {
        true => write(&mut last.text, &failure),
        false => last.unwritten = Unwritten::Other(failure),
    });
}

/// [`record`] for an error of the core, read where the core put it (see `fail_core`): the
/// common failures of `from_fd` as a [`Brief`], the others cloned.
pub(crate) fn record_core(err: &Error) {
    update(|last| match last.pointer_given {
        true => write_core(&mut last.text, err),
        false => {
            last.unwritten = match Brief::of(err) {
                Some(brief) => Unwritten::Brief(brief),
                None => Unwritten::Other(Failure::Core(err.clone())),
            }
        }
    });
}

/// The calling thread's message as a C string ("" before the first failure), its text written
/// first if it was not yet. From here on the thread's failures write their text at once.
pub(crate) fn as_ptr() -> *const c_char {
    LAST_MESSAGE
        .try_with(|cell| {
            if let Ok(mut last) = cell.try_borrow_mut() {
                let last = &mut *last;
                match mem::replace(&mut last.unwritten, Unwritten::Nothing) {
                    Unwritten::Nothing => {}
                    Unwritten::Brief(brief) => write_core(&mut last.text, &brief.error()),
                    Unwritten::Other(failure) => write(&mut last.text, &failure),
                }
                last.pointer_given = true;
            }
            cell.as_ptr().cast::<c_char>().cast_const()
        })
        .unwrap_or(c"".as_ptr())
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

    /// Each test runs on a thread of its own (libtest), so starts with the pointer not given.
    fn pointer_given() -> bool {
        LAST_MESSAGE.with(|cell| cell.borrow().pointer_given)
    }

    fn null_argument(function: &'static str) -> Failure {
        Failure::NullArgument {
            function,
            argument: "src",
        }
    }

    /// The failures kept as a `Brief`, and some that are not (cloned whole instead).
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
                LAST_MESSAGE.with(|cell| assert_eq!(cell.borrow().text[0], 0));
                assert_eq!(current(), err.to_string());
            })
            .join()
            .expect("thread");
        }
    }

    #[test]
    fn the_last_failure_before_the_first_read_is_the_one_written() {
        assert!(!pointer_given());
        record(null_argument("first"));
        record(Failure::Core(Error::Fcntl {
            errno: Errno::EBADF,
        }));
        // Nothing written yet: the text appears when asked for.
        LAST_MESSAGE.with(|cell| assert_eq!(cell.borrow().text[0], 0));
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
}
