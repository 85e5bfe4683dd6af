//! [`Win32Error`]: a `GetLastError()` code, with libpmem2's mapping to `errno`.

use core::fmt;

/// A Win32 error code, as `GetLastError()` returns it after a failed call.
///
/// [`errno`](Self::errno) is the mapping libpmem2 applies (`util_lasterror_to_errno` in PMDK's
/// `util_windows.c`, used by `pmem2_lasterror_to_err`): a handful of codes become an `errno`
/// value of the Windows C runtime, every other code has none (libpmem2 then returns
/// `PMEM2_E_UNKNOWN`).
///
/// ```
/// use pmem2_source::Win32Error;
///
/// let e = Win32Error::ACCESS_DENIED;
/// assert_eq!(e.raw(), 5);
/// assert_eq!(e.name(), Some("ERROR_ACCESS_DENIED"));
/// assert_eq!(e.errno(), Some(13)); // EACCES
/// assert_eq!(e.to_string(), "Access is denied.");
/// assert_eq!(Win32Error::from_raw(1117).errno(), None);
/// assert_eq!(Win32Error::from_raw(1117).to_string(), "Win32 error 1117");
/// ```
///
/// # References
/// - PMDK `src/core/util_windows.c` (`Lasterror_to_errno`), `src/libpmem2/pmem2_utils.c`
/// - "System Error Codes (0-499)", "(500-999)", "(1000-1299)" in the Win32 documentation
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Win32Error(u32);

/// `(code, name, FormatMessage text, errno in the Windows C runtime's numbering, its name)`.
///
/// The errno values of the Microsoft C runtime (and mingw-w64's `errno.h`): `ENOENT` 2,
/// `ENOMEM` 12, `EACCES` 13, `EINVAL` 22, `EMFILE` 24, `ENOTSUP` 129.
type Entry = (u32, &'static str, &'static str, Option<(i32, &'static str)>);

const ENOENT: Option<(i32, &str)> = Some((2, "ENOENT"));
const ENOMEM: Option<(i32, &str)> = Some((12, "ENOMEM"));
const EACCES: Option<(i32, &str)> = Some((13, "EACCES"));
const EINVAL: Option<(i32, &str)> = Some((22, "EINVAL"));
const EMFILE: Option<(i32, &str)> = Some((24, "EMFILE"));
const ENOTSUP: Option<(i32, &str)> = Some((129, "ENOTSUP"));

macro_rules! win32_errors {
    ($($name:ident = $value:literal, $text:literal, $errno:expr;)*) => {
        impl Win32Error {
            $(
                #[doc = concat!("`ERROR_", stringify!($name), "` (", stringify!($value), ")")]
                pub const $name: Win32Error = Win32Error($value);
            )*
        }

        const TABLE: &[Entry] = &[
            $(($value, concat!("ERROR_", stringify!($name)), $text, $errno),)*
        ];
    };
}

win32_errors! {
    INVALID_FUNCTION = 1, "Incorrect function.", EINVAL;
    FILE_NOT_FOUND = 2, "The system cannot find the file specified.", ENOENT;
    PATH_NOT_FOUND = 3, "The system cannot find the path specified.", ENOENT;
    TOO_MANY_OPEN_FILES = 4, "The system cannot open the file.", EMFILE;
    ACCESS_DENIED = 5, "Access is denied.", EACCES;
    INVALID_HANDLE = 6, "The handle is invalid.", EINVAL;
    NOT_ENOUGH_MEMORY = 8, "Not enough memory resources are available to process this command.", ENOMEM;
    INVALID_ACCESS = 12, "The access code is invalid.", EACCES;
    OUTOFMEMORY = 14, "Not enough memory resources are available to complete this operation.", ENOMEM;
    HANDLE_EOF = 38, "Reached the end of the file.", None;
    NOT_SUPPORTED = 50, "The request is not supported.", ENOTSUP;
    INVALID_PARAMETER = 87, "The parameter is incorrect.", EINVAL;
    CALL_NOT_IMPLEMENTED = 120, "This function is not supported on this system.", None;
    LOCK_FAILED = 167, "Unable to lock a region of a file.", EACCES;
    INVALID_ADDRESS = 487, "Attempt to access invalid address.", EINVAL;
    IO_PENDING = 997, "Overlapped I/O operation is in progress.", None;
    MAPPED_ALIGNMENT = 1132, "The base address or the file offset specified does not have the proper alignment.", EINVAL;
}

impl Win32Error {
    /// Wraps a raw `GetLastError()` value.
    pub const fn from_raw(code: u32) -> Win32Error {
        Win32Error(code)
    }

    /// The raw code.
    pub const fn raw(self) -> u32 {
        self.0
    }

    fn entry(self) -> Option<&'static Entry> {
        TABLE.iter().find(|entry| entry.0 == self.0)
    }

    /// The symbolic name (`"ERROR_INVALID_HANDLE"`) of the codes this crate knows.
    pub fn name(self) -> Option<&'static str> {
        self.entry().map(|entry| entry.1)
    }

    /// The `errno` libpmem2 maps this code to, in the Windows C runtime's numbering (`EACCES`
    /// 13, `ENOTSUP` 129, …); `None` where libpmem2 has no mapping.
    pub fn errno(self) -> Option<i32> {
        self.entry()
            .and_then(|entry| entry.3)
            .map(|(errno, _)| errno)
    }

    /// The name of [`errno`](Self::errno) (`"EACCES"`).
    pub fn errno_name(self) -> Option<&'static str> {
        self.entry().and_then(|entry| entry.3).map(|(_, name)| name)
    }
}

impl fmt::Display for Win32Error {
    /// The system's English message for the known codes (`FormatMessage`'s text), otherwise
    /// `Win32 error N`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.entry() {
            Some(entry) => f.write_str(entry.2),
            None => write!(f, "Win32 error {}", self.0),
        }
    }
}

impl fmt::Debug for Win32Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "Win32Error({name})"),
            None => write!(f, "Win32Error({})", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;

    /// libpmem2's whole `Lasterror_to_errno` table, and nothing else mapped.
    #[test]
    fn mapping_is_libpmem2s() {
        let expected = [
            (1, 22),
            (2, 2),
            (3, 2),
            (4, 24),
            (5, 13),
            (6, 22),
            (8, 12),
            (12, 13),
            (14, 12),
            (50, 129),
            (87, 22),
            (167, 13),
            (487, 22),
            (1132, 22),
        ];
        for (code, errno) in expected {
            assert_eq!(
                Win32Error::from_raw(code).errno(),
                Some(errno),
                "code {code}"
            );
        }
        let mapped = TABLE.iter().filter(|entry| entry.3.is_some()).count();
        assert_eq!(mapped, expected.len());
        for code in [0, 38, 120, 997, 1117, 15999, 16000, u32::MAX] {
            assert_eq!(Win32Error::from_raw(code).errno(), None, "code {code}");
        }
    }

    #[test]
    fn names_texts_and_debug() {
        let e = Win32Error::NOT_SUPPORTED;
        assert_eq!(
            (e.name(), e.errno_name()),
            (Some("ERROR_NOT_SUPPORTED"), Some("ENOTSUP"))
        );
        assert_eq!(e.to_string(), "The request is not supported.");
        assert_eq!(std::format!("{e:?}"), "Win32Error(ERROR_NOT_SUPPORTED)");
        assert_eq!(
            std::format!("{:?}", Win32Error::from_raw(7)),
            "Win32Error(7)"
        );
        assert_eq!(Win32Error::from_raw(7).name(), None);
        assert_eq!(Win32Error::from_raw(7).raw(), 7);
    }
}
