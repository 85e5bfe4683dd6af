//! libpmem2's data sources — `pmem2_source_from_fd`, `pmem2_source_from_anon`,
//! `pmem2_source_get_fd`, `pmem2_source_delete` — as a `#![no_std]` core over raw Linux
//! syscalls.
//!
//! A *source* says what a persistent-memory mapping will map: anonymous memory, a regular file
//! (on a DAX file system or not), or a Device DAX character device (`/dev/daxX.Y`). Creating
//! one from a descriptor validates it and classifies it, giving the same answers as PMDK's
//! libpmem2 1.12.1, error codes included ([`codes`]), with fewer syscalls and where libpmem2
//! crashes or stays silent, a proper error.
//!
//! # What this crate does
//!
//! - [`Source::from_fd`] / [`Source::from_fd_with`]: one `fcntl(F_GETFL)`, one `fstat`, and
//!   for character devices one `readlinkat` of `/sys/dev/char/M:m/subsystem`, in libpmem2's
//!   order of checks. Regular file → [`FileType::Regular`]; a character device whose subsystem
//!   is `dax` → [`FileType::DeviceDax`]; everything else a documented [`Error`].
//! - The queries of SPEC §5: [`Source::size_with`], [`Source::alignment_with`],
//!   [`Source::numa_node_with`], [`Source::device_id_with`], [`Source::device_usc_with`] (from
//!   sysfs for Device DAX and NVDIMMs), and [`Source::pread_mcsafe_with`] /
//!   [`Source::pwrite_mcsafe_with`].
//! - [`Source::anon`], [`Source::fd`] (`get_fd`), and the allocated form [`SourceBox`] with a
//!   caller-chosen allocator ([`Global`] with feature `alloc`, [`StaticPool`] with no heap at
//!   all, test allocators).
//! - Windows (SPEC §6): [`Source::from_handle_with`] validates a file handle with one
//!   `GetFileInformationByHandle` (libpmem2's codes: `INVALID_HANDLE_VALUE`, closed and
//!   non-file handles → `PMEM2_E_INVALID_FILE_HANDLE`, a directory →
//!   `PMEM2_E_INVALID_FILE_TYPE`, other Win32 errors → libpmem2's `-errno` or
//!   `PMEM2_E_UNKNOWN`, see [`Win32Error`]); [`Source::handle`] is `get_handle`; size from
//!   the file information, alignment the allocation granularity. The Win32 calls are in the
//!   `sys::Windows` backend (Windows targets); the logic runs on any host against the scripted
//!   kernel. Tested under Wine, not on Windows.
//! - Errors are values: [`Error::code`] is libpmem2's return code, `Display` its message.
//!
//! # What it does not do
//!
//! - No global state: no `errno`, no "last error message" (the C shim keeps that per thread).
//! - No libc, no allocation unless you ask for a [`SourceBox`], no panics.
//! - It never closes or duplicates the descriptor: a [`Source`] borrows it, and the caller
//!   keeps it open while the source is in use.
//! - No mapping API (`pmem2_map_new` and friends are libpmem2's, not a source's).
//! - No libndctl: Device DAX and NVDIMM facts come from sysfs.
//! - No signal handling: Device DAX `pread_mcsafe`/`pwrite_mcsafe` need a backend whose copy
//!   survives SIGBUS ([`sys::Syscalls::copy_from_mapping`]); the bare [`sys::Linux`] backend
//!   has none and answers `PMEM2_E_NOSUPP`, `pmem2-source-std`'s `StdSyscalls` has one.
//!
//! # Backends
//!
//! Every entry point is generic over [`sys::Syscalls`]. On Linux (x86_64, aarch64, riscv64)
//! [`sys::Linux`] issues the syscalls directly through the `sc` crate; on Windows
//! `sys::Windows` makes the Win32 calls through `windows-sys`; on any other target the crate
//! still builds, and the embedder supplies a backend. Feature `testing` adds
//! `sys::scripted::ScriptedKernel`, a fake kernel for tests and fuzzing.
//!
//! ```
//! use pmem2_source::{codes, FileType, Source};
//! use std::os::fd::AsRawFd;
//!
//! let file = std::fs::File::open("Cargo.toml").unwrap();
//! let source = Source::from_fd(file.as_raw_fd()).unwrap();
//! assert_eq!(source.file_type(), Some(FileType::Regular));
//! assert_eq!(source.fd(), Ok(file.as_raw_fd()));
//!
//! let dir = std::fs::File::open(".").unwrap();
//! let err = Source::from_fd(dir.as_raw_fd()).unwrap_err();
//! assert_eq!(err.code(), codes::PMEM2_E_INVALID_FILE_TYPE);
//! assert_eq!(err.to_string(), "cannot set fd to directory in pmem2_source_from_fd");
//! ```
//!
//! # References
//! - `pmem2_source_from_fd(3)`, `libpmem2(7)` (PMDK 1.12.1)
//! - PMDK `src/libpmem2/source_posix.c`, `pmem2_utils_linux.c`

#![no_std]
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

#[cfg(feature = "alloc")]
extern crate alloc as heap;

/// Keeps items only where the raw-syscall [`sys::Linux`] backend exists: Linux on x86_64,
/// aarch64 and riscv64 (the `sc` dependency is gated the same way in `Cargo.toml`).
macro_rules! with_linux_backend {
    ($($item:item)*) => {$(
        #[cfg(all(
            target_os = "linux",
            any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "riscv64")
        ))]
        $item
    )*};
}

/// Keeps items only where the crate has a backend of its own: [`sys::Linux`] (see
/// `with_linux_backend`) or, on Windows, `sys::Windows`.
macro_rules! with_native_backend {
    ($($item:item)*) => {$(
        #[cfg(any(
            windows,
            all(
                target_os = "linux",
                any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "riscv64")
            )
        ))]
        $item
    )*};
}

#[allow(unsafe_code)]
mod alloc;
mod classify;
mod error;
mod io;
mod query;
mod source;
#[allow(unsafe_code)] // the syscall seam: unsafe trait methods for raw mappings
pub mod sys;
pub mod sysfs;
#[cfg(test)]
mod test_support;
#[cfg(test)]
#[allow(unsafe_code)] // reads the bytes of a source to check its layout
mod windows_tests;

#[cfg(feature = "alloc")]
pub use crate::alloc::Global;
pub use crate::alloc::{CountingAlloc, FailingAlloc, SourceAlloc, SourceBox, StaticPool};
pub use crate::error::{Errno, Error, IoDirection, Unsupported, Win32Error, codes};
pub use crate::source::{FileType, Source, SourceKind};
pub use crate::sysfs::DeviceNumber;
