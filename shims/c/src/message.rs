//! The calling thread's last error message, for `pmem2_errormsg()`.
//!
//! A fixed, NUL-terminated buffer per thread: setting a message allocates nothing, and the
//! pointer handed to C stays valid for the life of the thread (its contents change on the
//! thread's next failure, as with libpmem2).

use std::cell::RefCell;
use std::ffi::c_char;
use std::fmt::{self, Write};

/// Bytes per message, NUL included; longer messages are cut.
pub(crate) const CAPACITY: usize = 1024;

thread_local! {
    static LAST_MESSAGE: RefCell<[u8; CAPACITY]> = const { RefCell::new([0; CAPACITY]) };
}

/// Replaces the calling thread's message with `message`, cut to fit.
pub(crate) fn set(message: &dyn fmt::Display) {
    set_bytes(|room| {
        let mut writer = Truncating {
            buffer: room,
            len: 0,
        };
        let _ = write!(writer, "{message}");
        Some(writer.len)
    });
}

/// Replaces the calling thread's message with the bytes `write` puts at the start of the
/// buffer it is given (room for the message, the NUL aside), returning their length. If it
/// returns `None`, the message is left empty and this returns `false`: call [`set`] then.
/// Without `core::fmt` in between, for `pmem2_source::Error::write_message`.
pub(crate) fn set_bytes(write: impl FnOnce(&mut [u8]) -> Option<usize>) -> bool {
    // try_with/try_borrow_mut: during thread teardown, or if formatting a message somehow
    // re-entered here, keep the old message rather than panic across the C boundary.
    LAST_MESSAGE
        .try_with(|cell| {
            let Ok(mut buffer) = cell.try_borrow_mut() else {
                return false;
            };
            let (room, _) = buffer.split_at_mut(CAPACITY - 1);
            match write(room) {
                Some(len) if len < CAPACITY => {
                    buffer[len] = 0;
                    true
                }
                _ => {
                    buffer[0] = 0;
                    false
                }
            }
        })
        .unwrap_or(false)
}

/// The calling thread's message as a C string ("" before the first failure).
pub(crate) fn as_ptr() -> *const c_char {
    LAST_MESSAGE
        .try_with(|cell| cell.as_ptr().cast::<c_char>().cast_const())
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

    use super::*;

    fn current() -> String {
        // SAFETY: as_ptr returns this thread's NUL-terminated buffer (or a static "").
        unsafe { CStr::from_ptr(as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn empty_until_set_then_replaced() {
        assert_eq!(current(), "");
        set(&"first");
        assert_eq!(current(), "first");
        set(&format_args!("second {}", 2));
        assert_eq!(current(), "second 2");
        assert!(set_bytes(|buf| {
            buf[..5].copy_from_slice(b"third");
            Some(5)
        }));
        assert_eq!(current(), "third");
        // Declined, after writing: no half-written message is left.
        assert!(!set_bytes(|buf| {
            buf[..3].copy_from_slice(b"xyz");
            None
        }));
        assert_eq!(current(), "");
        // A length past the room is declined too.
        assert!(!set_bytes(|_| Some(CAPACITY)));
        assert_eq!(current(), "");
    }

    #[test]
    fn long_messages_are_cut_and_terminated() {
        let long = "x".repeat(CAPACITY * 2);
        set(&long);
        assert_eq!(current().len(), CAPACITY - 1);
        set(&"short");
        assert_eq!(current(), "short");
    }

    #[test]
    fn threads_have_their_own_message() {
        set(&"main");
        std::thread::spawn(|| {
            assert_eq!(current(), "");
            set(&"other");
            assert_eq!(current(), "other");
        })
        .join()
        .expect("thread");
        assert_eq!(current(), "main");
    }
}
