//! The Windows backend: Win32 calls through `windows-sys`. This is the only file of the core
//! that calls Windows.
//!
//! # Safety
//!
//! Each call passes a handle value (which Windows validates: a closed or foreign handle is an
//! error, never undefined behaviour) and pointers to live, correctly sized structures and
//! buffers of the caller's for the duration of the call; Windows writes through them and
//! keeps none of them after the call returns (an overlapped transfer is waited for before
//! its buffer and `OVERLAPPED` go out of scope).
//!
//! # References
//! - `GetFileInformationByHandle`, `GetSystemInfo`, `ReadFile`, `WriteFile`,
//!   `GetOverlappedResult`, `GetLastError` (Win32 API documentation)

#![allow(
    clippy::not_unsafe_ptr_arg_deref,
    reason = "a HANDLE is a value that Windows validates; nothing here dereferences it"
)]

use core::ffi::CStr;

use windows_sys::Win32::Foundation::{GetLastError, HANDLE};
use windows_sys::Win32::Storage::FileSystem::{
    BY_HANDLE_FILE_INFORMATION, GetFileInformationByHandle, ReadFile, WriteFile,
};
use windows_sys::Win32::System::IO::{
    GetOverlappedResult, OVERLAPPED, OVERLAPPED_0, OVERLAPPED_0_0,
};
use windows_sys::Win32::System::SystemInformation::{GetSystemInfo, SYSTEM_INFO};

use super::{FileInformation, FileStat, RawHandle, Syscalls};
use crate::error::{Errno, Win32Error};

/// The running Windows system, called through `windows-sys`.
///
/// It answers the Windows calls of [`Syscalls`] (file information, allocation granularity,
/// positional handle I/O); the Linux calls (`fcntl`, `fstat`, `readlink`, sysfs) fail with
/// `ENOSYS`, as nothing on Windows asks for them.
///
/// ```
/// use pmem2_source::sys::{Syscalls, Windows};
/// use std::os::windows::io::AsRawHandle;
///
/// let file = std::fs::File::open("Cargo.toml").unwrap();
/// let info = Windows.file_information(file.as_raw_handle()).unwrap();
/// assert_eq!(info.size, file.metadata().unwrap().len());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Windows;

/// `GetLastError()` after a failed call.
fn last_error() -> Win32Error {
    // SAFETY: GetLastError only reads the calling thread's last-error value.
    Win32Error::from_raw(unsafe { GetLastError() })
}

/// `GetSystemInfo()`.
fn system_info() -> SYSTEM_INFO {
    let mut info = SYSTEM_INFO::default();
    // SAFETY: `info` is a writable SYSTEM_INFO for the whole call; GetSystemInfo cannot fail.
    unsafe { GetSystemInfo(&mut info) };
    info
}

/// An `OVERLAPPED` that asks for a transfer at byte `offset` (no event: a synchronous handle
/// completes the call, an asynchronous one is waited for on the handle itself).
fn at_offset(offset: u64) -> OVERLAPPED {
    OVERLAPPED {
        Anonymous: OVERLAPPED_0 {
            Anonymous: OVERLAPPED_0_0 {
                // The low and high halves of the offset.
                Offset: offset as u32,
                OffsetHigh: (offset >> 32) as u32,
            },
        },
        ..OVERLAPPED::default()
    }
}

/// The outcome of a `ReadFile`/`WriteFile` that returned `ok` with `done` bytes: on an
/// asynchronous handle (`ERROR_IO_PENDING`) waits for it with `GetOverlappedResult`. The end
/// of the file (`ERROR_HANDLE_EOF`, what a read past the end at an offset reports) is 0 bytes.
fn completion(
    handle: HANDLE,
    ok: i32,
    done: u32,
    overlapped: &OVERLAPPED,
) -> Result<usize, Win32Error> {
    let error = match ok {
        0 => last_error(),
        _ => return Ok(done as usize),
    };
    let error = match error {
        Win32Error::IO_PENDING => {
            let mut waited = 0u32;
            // SAFETY: `overlapped` is the live OVERLAPPED of the pending transfer (its buffer
            // lives in the caller's frame, which waits here until the transfer completes), and
            // `waited` is writable.
            let ok = unsafe { GetOverlappedResult(handle, overlapped, &mut waited, 1) };
            if ok != 0 {
                return Ok(waited as usize);
            }
            last_error()
        }
        error => error,
    };
    match error {
        Win32Error::HANDLE_EOF => Ok(0),
        error => Err(error),
    }
}

/// At most this many bytes per call (a transfer length is a `DWORD`); the caller loops.
fn call_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

impl Syscalls for Windows {
    fn fcntl_getfl(&self, _fd: i32) -> Result<u32, Errno> {
        Err(Errno::ENOSYS)
    }

    fn fstat(&self, _fd: i32) -> Result<FileStat, Errno> {
        Err(Errno::ENOSYS)
    }

    fn readlink(&self, _path: &CStr, _buf: &mut [u8]) -> Result<usize, Errno> {
        Err(Errno::ENOSYS)
    }

    /// `GetSystemInfo`'s `dwPageSize`.
    fn page_size(&self) -> Result<usize, Errno> {
        Ok(system_info().dwPageSize as usize)
    }

    /// `GetSystemInfo`'s `dwAllocationGranularity`: where Windows places mapped views.
    fn allocation_granularity(&self) -> Result<usize, Errno> {
        Ok(system_info().dwAllocationGranularity as usize)
    }

    fn file_information(&self, handle: RawHandle) -> Result<FileInformation, Win32Error> {
        let mut info = BY_HANDLE_FILE_INFORMATION::default();
        // SAFETY: `info` is a writable BY_HANDLE_FILE_INFORMATION for the whole call; the
        // handle is only a value Windows checks.
        let ok = unsafe { GetFileInformationByHandle(handle, &mut info) };
        if ok == 0 {
            return Err(last_error());
        }
        let high_low = |high: u32, low: u32| (u64::from(high) << 32) | u64::from(low);
        Ok(FileInformation {
            attributes: info.dwFileAttributes,
            volume_serial_number: info.dwVolumeSerialNumber,
            file_index: high_low(info.nFileIndexHigh, info.nFileIndexLow),
            size: high_low(info.nFileSizeHigh, info.nFileSizeLow),
        })
    }

    fn read_handle_at(
        &self,
        handle: RawHandle,
        buf: &mut [u8],
        offset: u64,
    ) -> Result<usize, Win32Error> {
        let overlapped = at_offset(offset);
        let mut done = 0u32;
        // SAFETY: `buf` is writable for at least `call_len(buf.len())` bytes, `done` is
        // writable, and both they and `overlapped` outlive the transfer (`completion` waits
        // for a pending one before this frame ends).
        let ok = unsafe {
            ReadFile(
                handle,
                buf.as_mut_ptr(),
                call_len(buf.len()),
                &mut done,
                (&raw const overlapped).cast_mut(),
            )
        };
        completion(handle, ok, done, &overlapped)
    }

    fn write_handle_at(
        &self,
        handle: RawHandle,
        buf: &[u8],
        offset: u64,
    ) -> Result<usize, Win32Error> {
        let overlapped = at_offset(offset);
        let mut done = 0u32;
        // SAFETY: `buf` is readable for at least `call_len(buf.len())` bytes; otherwise as in
        // `read_handle_at`.
        let ok = unsafe {
            WriteFile(
                handle,
                buf.as_ptr(),
                call_len(buf.len()),
                &mut done,
                (&raw const overlapped).cast_mut(),
            )
        };
        completion(handle, ok, done, &overlapped)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::os::windows::io::AsRawHandle;

    use windows_sys::Win32::Foundation as win;

    use super::*;
    use crate::sys::{FILE_ATTRIBUTE_DIRECTORY, INVALID_HANDLE_VALUE};

    #[test]
    fn constants_match_windows_sys() {
        assert_eq!(INVALID_HANDLE_VALUE, win::INVALID_HANDLE_VALUE);
        assert_eq!(
            FILE_ATTRIBUTE_DIRECTORY,
            windows_sys::Win32::Storage::FileSystem::FILE_ATTRIBUTE_DIRECTORY
        );
        let pairs = [
            (Win32Error::INVALID_FUNCTION, win::ERROR_INVALID_FUNCTION),
            (Win32Error::FILE_NOT_FOUND, win::ERROR_FILE_NOT_FOUND),
            (Win32Error::PATH_NOT_FOUND, win::ERROR_PATH_NOT_FOUND),
            (
                Win32Error::TOO_MANY_OPEN_FILES,
                win::ERROR_TOO_MANY_OPEN_FILES,
            ),
            (Win32Error::ACCESS_DENIED, win::ERROR_ACCESS_DENIED),
            (Win32Error::INVALID_HANDLE, win::ERROR_INVALID_HANDLE),
            (Win32Error::NOT_ENOUGH_MEMORY, win::ERROR_NOT_ENOUGH_MEMORY),
            (Win32Error::INVALID_ACCESS, win::ERROR_INVALID_ACCESS),
            (Win32Error::OUTOFMEMORY, win::ERROR_OUTOFMEMORY),
            (Win32Error::HANDLE_EOF, win::ERROR_HANDLE_EOF),
            (Win32Error::NOT_SUPPORTED, win::ERROR_NOT_SUPPORTED),
            (Win32Error::INVALID_PARAMETER, win::ERROR_INVALID_PARAMETER),
            (
                Win32Error::CALL_NOT_IMPLEMENTED,
                win::ERROR_CALL_NOT_IMPLEMENTED,
            ),
            (Win32Error::LOCK_FAILED, win::ERROR_LOCK_FAILED),
            (Win32Error::INVALID_ADDRESS, win::ERROR_INVALID_ADDRESS),
            (Win32Error::IO_PENDING, win::ERROR_IO_PENDING),
            (Win32Error::MAPPED_ALIGNMENT, win::ERROR_MAPPED_ALIGNMENT),
        ];
        for (ours, theirs) in pairs {
            assert_eq!(ours.raw(), theirs, "{ours:?}");
        }
    }

    /// The Windows C runtime's errno numbers that libpmem2's mapping produces.
    #[test]
    fn crt_errno_numbers_match_libc() {
        assert_eq!(Win32Error::FILE_NOT_FOUND.errno(), Some(libc::ENOENT));
        assert_eq!(Win32Error::NOT_ENOUGH_MEMORY.errno(), Some(libc::ENOMEM));
        assert_eq!(Win32Error::ACCESS_DENIED.errno(), Some(libc::EACCES));
        assert_eq!(Win32Error::INVALID_PARAMETER.errno(), Some(libc::EINVAL));
        assert_eq!(Win32Error::TOO_MANY_OPEN_FILES.errno(), Some(libc::EMFILE));
        assert_eq!(Win32Error::NOT_SUPPORTED.errno(), Some(libc::ENOTSUP));
        assert_eq!(Errno::EBADF.raw(), libc::EBADF);
    }

    #[test]
    fn granularity_and_page_size() {
        let info = system_info();
        assert_eq!(
            Windows.allocation_granularity(),
            Ok(info.dwAllocationGranularity as usize)
        );
        assert_eq!(Windows.page_size(), Ok(info.dwPageSize as usize));
        assert_eq!(Windows.fstat(0), Err(Errno::ENOSYS));
        assert_eq!(Windows.fcntl_getfl(0), Err(Errno::ENOSYS));
        assert_eq!(Windows.readlink(c"x", &mut [0; 4]), Err(Errno::ENOSYS));
    }

    #[test]
    fn positional_io_round_trip() {
        let dir = std::env::temp_dir();
        let path = dir.join(std::format!("pmem2-source-windows-{}", std::process::id()));
        std::fs::write(&path, b"0123456789").expect("write");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .expect("open");
        let handle = file.as_raw_handle();
        let mut buf = [0u8; 4];
        assert_eq!(Windows.read_handle_at(handle, &mut buf, 6), Ok(4));
        assert_eq!(&buf, b"6789");
        assert_eq!(
            Windows.read_handle_at(handle, &mut buf, 8),
            Ok(2),
            "short at the end"
        );
        assert_eq!(
            Windows.read_handle_at(handle, &mut buf, 10),
            Ok(0),
            "at the end"
        );
        assert_eq!(
            Windows.read_handle_at(handle, &mut buf, 99),
            Ok(0),
            "past the end"
        );
        assert_eq!(Windows.write_handle_at(handle, b"ab", 2), Ok(2));
        assert_eq!(Windows.read_handle_at(handle, &mut buf, 0), Ok(4));
        assert_eq!(&buf, b"01ab");
        let info = Windows.file_information(handle).expect("information");
        assert_eq!(info.size, 10);
        assert_eq!(info.attributes & FILE_ATTRIBUTE_DIRECTORY, 0);
        drop(file);
        std::fs::remove_file(&path).expect("clean up");
    }
}
