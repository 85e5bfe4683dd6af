//! The syscall seam: the three kernel calls a source needs, behind the [`Syscalls`] trait.
//!
//! Every entry point of the crate is generic over `S: Syscalls`, so the decision logic never
//! knows whether it talks to Linux ([`Linux`], the default where it exists), the scripted fake
//! kernel of the tests (`ScriptedKernel`, feature `testing`), or an embedder's own
//! backend (a unikernel, a sandbox). Dispatch is static: a ZST backend costs nothing.
//!
//! Values follow the Linux ABI whatever the backend: `F_GETFL` flags and `st_mode` bits as in
//! `<fcntl.h>`/`<sys/stat.h>`, errno numbers of the target architecture.

use core::ffi::CStr;

use crate::error::Errno;

with_linux_backend! {
    #[allow(unsafe_code)]
    mod linux;
    pub use linux::Linux;
}

#[cfg(any(test, feature = "testing"))]
pub mod scripted;

/// Linux ABI constants the decision logic uses, re-exported from `linux-raw-sys` under their
/// C names.
pub mod consts {
    pub use linux_raw_sys::general::{
        O_ACCMODE, O_PATH, O_RDONLY, O_RDWR, O_WRONLY, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK,
        S_IFMT, S_IFREG, S_IFSOCK,
    };
}

/// What [`Syscalls::fstat`] reports: the few fields of `struct stat` a source uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct FileStat {
    /// `st_mode`: file type bits (`S_IFMT`) and permissions.
    pub mode: u32,
    /// `st_rdev`: the device a device file stands for.
    pub rdev: u64,
    /// `st_dev`: the device holding the file.
    pub dev: u64,
    /// `st_ino`: the inode number.
    pub ino: u64,
    /// `st_size`: the size in bytes (0 for most special files).
    pub size: i64,
}

/// The kernel calls a source needs.
///
/// Implementations must report failures as the errno the kernel would give; they must not
/// retry or reinterpret (the decision logic maps errnos to libpmem2's codes).
pub trait Syscalls {
    /// `fcntl(fd, F_GETFL)`: the file status flags and access mode.
    fn fcntl_getfl(&self, fd: i32) -> Result<u32, Errno>;

    /// `fstat(fd)`.
    fn fstat(&self, fd: i32) -> Result<FileStat, Errno>;

    /// `readlinkat(AT_FDCWD, path, buf, buf.len())`: copies the link target (not
    /// NUL-terminated, silently truncated to `buf.len()`) and returns how many bytes it wrote.
    fn readlink(&self, path: &CStr, buf: &mut [u8]) -> Result<usize, Errno>;
}

impl<S: Syscalls + ?Sized> Syscalls for &S {
    fn fcntl_getfl(&self, fd: i32) -> Result<u32, Errno> {
        (**self).fcntl_getfl(fd)
    }

    fn fstat(&self, fd: i32) -> Result<FileStat, Errno> {
        (**self).fstat(fd)
    }

    fn readlink(&self, path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
        (**self).readlink(path, buf)
    }
}
