//! The decision `pmem2_source_from_fd` makes, in libpmem2's order of checks (SPEC §2–§3),
//! and `pmem2_source_from_handle`'s on Windows (SPEC §6).
//!
//! Pure logic over a [`Syscalls`] backend: one `fcntl`, one `fstat`, and for character devices
//! one `readlink`. Nothing is allocated; the sysfs path and the link target live in fixed
//! buffers on the stack.

use crate::error::{Errno, Error};
use crate::source::{FileType, Source};
use crate::sys::consts::{O_ACCMODE, O_PATH, O_WRONLY, S_IFCHR, S_IFDIR, S_IFMT, S_IFREG};
use crate::sys::{
    FILE_ATTRIBUTE_DIRECTORY, FileInformation, FileStat, INVALID_HANDLE_VALUE, RawHandle, Syscalls,
};
use crate::sysfs::{
    DeviceNumber, LINK_TARGET_CAPACITY, PathBuffer, SubsystemLink, SysfsPath, SysfsText,
    classify_link_target,
};

/// Access mode 3: neither `O_RDONLY` (0), `O_WRONLY` (1) nor `O_RDWR` (2). Linux grants such
/// a descriptor neither read nor write (it is used by some drivers for ioctl-only opens).
const NO_ACCESS_MODE: u32 = 3;

pub(crate) fn classify_fd<S: Syscalls + ?Sized>(sys: &S, fd: i32) -> Result<Source, Error> {
    if fd < 0 {
        return Err(Error::NegativeFd { fd });
    }
    // This code runs right after a syscall, when the CPU's branch predictors have lost much
    // of its history to the kernel's, and a taken branch costs a resteer of the front end.
    // So the common case (a readable regular file) falls straight through, each answer is
    // judged by one test, and the failures are laid out of line (`cold_path`). Measured with
    // the comparison harness (`benches/compare`), this took the time above the bare
    // syscalls for a regular file from 5 % to 2 % (docs/benchmarks.md).
    let flags = sys.fcntl_getfl(fd);
    if !matches!(flags, Ok(flags) if readable(flags)) {
        return Err(access_failure(flags));
    }
    let stat = match sys.fstat(fd) {
        Ok(stat) => stat,
        Err(errno) => return Err(fstat_failure(errno)),
    };
    let file_type = judge_stat(sys, &stat)?;
    Ok(Source::fd_source(fd, file_type, &stat))
}

/// The file-type half of [`classify_fd`]: what the file `stat` describes can be, judged from
/// its `stat` alone (and for a character device, its sysfs `subsystem` link). Shared with
/// [`Source::file_type_from_stat_with`], which judges a file before anyone opens it.
///
/// Always inlined: in `classify_fd` it is the fast path's one test, laid out as it was.
#[inline(always)]
pub(crate) fn judge_stat<S: Syscalls + ?Sized>(
    sys: &S,
    stat: &FileStat,
) -> Result<FileType, Error> {
    if stat.mode & S_IFMT == S_IFREG {
        Ok(FileType::Regular)
    } else {
        // Not rare, but laid out of line too: a character device's readlink costs
        // microseconds, and a directory is a failure.
        core::hint::cold_path();
        file_type_of(sys, stat)
    }
}

/// `pmem2_source_from_handle` (SPEC §6): not `INVALID_HANDLE_VALUE`, then one
/// `GetFileInformationByHandle`, and not a directory.
pub(crate) fn classify_handle<S: Syscalls + ?Sized>(
    sys: &S,
    handle: RawHandle,
) -> Result<Source, Error> {
    if handle == INVALID_HANDLE_VALUE {
        return Err(Error::InvalidHandleValue);
    }
    let info = handle_information(sys, handle)?;
    Ok(Source::handle_source(handle, &info))
}

/// libpmem2's `pmem2_win_stat`: `GetFileInformationByHandle`, and a directory is refused.
pub(crate) fn handle_information<S: Syscalls + ?Sized>(
    sys: &S,
    handle: RawHandle,
) -> Result<FileInformation, Error> {
    let info = sys.file_information(handle).map_err(|error| Error::Win32 {
        call: "GetFileInformationByHandle",
        error,
    })?;
    if info.attributes & FILE_ATTRIBUTE_DIRECTORY != 0 {
        return Err(Error::DirectoryHandle);
    }
    Ok(info)
}

/// Out of line: `fstat` failing on a descriptor `fcntl` just accepted is all but unheard of
/// (`cold_path` alone did not move this branch out of the way).
#[cold]
#[inline(never)]
pub(crate) fn fstat_failure(errno: Errno) -> Error {
    Error::Fstat { errno }
}

/// [`check_access_mode`] passes, in one test: the bit of the access mode that `O_WRONLY` (1)
/// and mode 3 set and the readable modes, `O_RDONLY` (0) and `O_RDWR` (2), do not; and
/// `O_PATH`.
#[inline]
fn readable(flags: u32) -> bool {
    const ACCESS_MODE_WRITE_BIT: u32 = 1;
    flags & (ACCESS_MODE_WRITE_BIT | O_PATH) == 0
}

/// Why `fcntl` or the access mode rules the descriptor out, given that one of them does. Out
/// of line, like [`fstat_failure`].
#[cold]
#[inline(never)]
fn access_failure(flags: Result<u32, Errno>) -> Error {
    match flags {
        Err(errno) => Error::Fcntl { errno },
        Ok(flags) => check_access_mode(flags).err().unwrap_or(Error::PathOnly),
    }
}

/// The descriptor must allow reading: `O_RDONLY` or `O_RDWR`, not `O_PATH`.
fn check_access_mode(flags: u32) -> Result<(), Error> {
    match flags & O_ACCMODE {
        O_WRONLY => Err(Error::WriteOnly),
        NO_ACCESS_MODE => Err(Error::NoAccessMode),
        _ if flags & O_PATH != 0 => Err(Error::PathOnly),
        _ => Ok(()),
    }
}

fn file_type_of<S: Syscalls + ?Sized>(sys: &S, stat: &FileStat) -> Result<FileType, Error> {
    match stat.mode & S_IFMT {
        S_IFREG => Ok(FileType::Regular),
        S_IFDIR => Err(Error::Directory),
        S_IFCHR => device_dax_check(sys, DeviceNumber::from_raw(stat.rdev)),
        file_type_bits => Err(Error::UnsupportedFileType { file_type_bits }),
    }
}

/// A character device is Device DAX iff its sysfs `subsystem` link ends in `dax`.
///
/// Not inlined: its buffers (the path, the link target) would otherwise make the stack frame
/// of `classify_fd`, and the registers it saves, those of every call, the regular file's too.
#[inline(never)]
fn device_dax_check<S: Syscalls + ?Sized>(
    sys: &S,
    device: DeviceNumber,
) -> Result<FileType, Error> {
    let unreadable = |errno: Errno| match errno {
        // The entry exists but is not a link: libpmem2's realpath resolves it to itself,
        // whose last component is "subsystem", not "dax".
        Errno::EINVAL => Error::SysfsNotALink { device },
        errno => Error::SysfsUnreadable { device, errno },
    };
    let mut path_buffer = PathBuffer::new();
    let path = SysfsPath::char_subsystem(device)
        .write_c_str(&mut path_buffer)
        .map_err(unreadable)?;
    let mut target = [0u8; LINK_TARGET_CAPACITY];
    let len = sys.readlink(path, &mut target).map_err(unreadable)?;
    // A backend claiming more bytes than the buffer holds is treated as a full buffer.
    let filled = target.get(..len).unwrap_or(&target);
    match classify_link_target(filled, LINK_TARGET_CAPACITY) {
        SubsystemLink::DeviceDax => Ok(FileType::DeviceDax),
        SubsystemLink::Other(name) => Err(Error::NotDeviceDax {
            device,
            subsystem: SysfsText::new(name),
        }),
        SubsystemLink::PossiblyTruncated => Err(Error::SysfsLinkTooLong { device }),
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;
    use crate::codes::*;
    use crate::sys::consts::{O_RDONLY, O_RDWR, S_IFBLK, S_IFIFO, S_IFLNK, S_IFSOCK};
    use crate::sys::scripted::{Call, ScriptedKernel};

    const DAX_RDEV: u64 = 0xfc00; // 252:0

    fn from_fd(kernel: &ScriptedKernel, fd: i32) -> Result<Source, Error> {
        Source::from_fd_with(kernel, fd)
    }

    fn assert_error(result: Result<Source, Error>, code: i32, message: &str) {
        let err = result.expect_err("expected a failure");
        assert_eq!(err.code(), code, "{err:?}");
        assert_eq!(err.to_string(), message);
    }

    #[test]
    fn regular_file_takes_two_syscalls() {
        let kernel = ScriptedKernel::regular_file();
        let source = from_fd(&kernel, 5).expect("regular file");
        assert_eq!(source.fd(), Ok(5));
        assert_eq!(source.file_type(), Some(FileType::Regular));
        assert_eq!(source.dev(), Some(DeviceNumber::from_raw(0x801)));
        assert_eq!(source.ino(), Some(12));
        assert_eq!(source.rdev(), Some(DeviceNumber::from_raw(0)));
        assert_eq!(
            kernel.calls().as_slice(),
            [Call::FcntlGetfl { fd: 5 }, Call::Fstat { fd: 5 }]
        );
    }

    /// The fast path's one test agrees with the access-mode rules for every access mode,
    /// with and without `O_PATH` and other flags.
    #[test]
    fn readable_is_check_access_mode() {
        for mode in 0..=3 {
            for extra in [0, O_PATH, 0o2000, 0o4000, 0o100000, 0o2000000, !3] {
                let flags = mode | extra;
                assert_eq!(
                    readable(flags),
                    check_access_mode(flags).is_ok(),
                    "flags {flags:#o}"
                );
                if !readable(flags) {
                    assert_eq!(
                        Err(access_failure(Ok(flags))),
                        check_access_mode(flags),
                        "flags {flags:#o}"
                    );
                }
            }
        }
    }

    #[test]
    fn read_only_and_append_are_accepted() {
        for flags in [O_RDONLY, O_RDWR, O_RDWR | 0o2000, O_RDONLY | 0o4000] {
            let kernel = ScriptedKernel::regular_file().with_fcntl(Ok(flags));
            assert!(from_fd(&kernel, 3).is_ok(), "flags {flags:#o}");
        }
    }

    #[test]
    fn negative_fd_makes_no_syscall() {
        for fd in [-1, i32::MIN] {
            let kernel = ScriptedKernel::regular_file();
            let message =
                std::format!("invalid file descriptor value {fd} (descriptors are never negative)");
            assert_error(from_fd(&kernel, fd), PMEM2_E_INVALID_FILE_HANDLE, &message);
            assert!(kernel.calls().is_empty());
        }
    }

    #[test]
    fn fcntl_failures() {
        let kernel = ScriptedKernel::regular_file().with_fcntl(Err(Errno::EBADF));
        assert_error(
            from_fd(&kernel, 9),
            PMEM2_E_INVALID_FILE_HANDLE,
            "fcntl: Bad file descriptor",
        );
        assert_eq!(kernel.calls().len(), 1, "a closed fd costs one syscall");
        let kernel = ScriptedKernel::regular_file().with_fcntl(Err(Errno::EINTR));
        assert_error(
            from_fd(&kernel, 9),
            -libc::EINTR,
            "fcntl: Interrupted system call",
        );
        let kernel = ScriptedKernel::regular_file().with_fcntl(Err(Errno::EACCES));
        assert_error(
            from_fd(&kernel, 9),
            -libc::EACCES,
            "fcntl: Permission denied",
        );
    }

    #[test]
    fn access_mode_is_checked_before_the_file_type() {
        // A directory opened O_WRONLY cannot exist, but the order must still be: mode first.
        let kernel = ScriptedKernel::regular_file()
            .with_fcntl(Ok(O_WRONLY))
            .with_mode(S_IFDIR);
        assert_error(
            from_fd(&kernel, 3),
            PMEM2_E_INVALID_FILE_HANDLE,
            "fd must be open with O_RDONLY or O_RDWR",
        );
        assert_eq!(kernel.calls().len(), 1, "no fstat after a bad access mode");
    }

    #[test]
    fn o_path_and_access_mode_three_are_rejected() {
        let kernel = ScriptedKernel::regular_file().with_fcntl(Ok(O_PATH));
        let err = from_fd(&kernel, 3).expect_err("O_PATH");
        assert_eq!(err, Error::PathOnly);
        assert_eq!(err.code(), PMEM2_E_INVALID_FILE_HANDLE);
        assert!(err.to_string().contains("O_PATH"), "{err}");

        let kernel = ScriptedKernel::regular_file().with_fcntl(Ok(O_ACCMODE));
        let err = from_fd(&kernel, 3).expect_err("mode 3");
        assert_eq!(err, Error::NoAccessMode);
        assert_eq!(err.code(), PMEM2_E_INVALID_FILE_HANDLE);
        assert!(err.to_string().contains("access mode is 3"), "{err}");
    }

    #[test]
    fn fstat_failures() {
        for (errno, code, text) in [
            (
                Errno::EBADF,
                PMEM2_E_INVALID_FILE_HANDLE,
                "fstat: Bad file descriptor",
            ),
            (Errno::EIO, -libc::EIO, "fstat: Input/output error"),
            (
                Errno::EOVERFLOW,
                -libc::EOVERFLOW,
                "fstat: Value too large for defined data type",
            ),
            (
                Errno::ENOMEM,
                -libc::ENOMEM,
                "fstat: Cannot allocate memory",
            ),
        ] {
            let kernel = ScriptedKernel::regular_file().with_fstat(Err(errno));
            assert_error(from_fd(&kernel, 3), code, text);
        }
    }

    #[test]
    fn directories_and_other_types() {
        let kernel = ScriptedKernel::regular_file().with_mode(S_IFDIR | 0o755);
        assert_error(
            from_fd(&kernel, 3),
            PMEM2_E_INVALID_FILE_TYPE,
            "cannot set fd to directory in pmem2_source_from_fd",
        );
        for (mode, text) in [
            (S_IFIFO | 0o600, "file type 010000 not supported"),
            (S_IFSOCK | 0o777, "file type 0140000 not supported"),
            (S_IFBLK | 0o660, "file type 060000 not supported"),
            (S_IFLNK | 0o777, "file type 0120000 not supported"),
            (0o600, "file type 00 not supported"),
        ] {
            let kernel = ScriptedKernel::regular_file().with_mode(mode);
            assert_error(from_fd(&kernel, 3), PMEM2_E_INVALID_FILE_TYPE, text);
            assert_eq!(kernel.calls().len(), 2, "no readlink for {mode:#o}");
        }
    }

    /// Judging a `stat` alone gives exactly what `from_fd` gives for a readable descriptor of
    /// that file, for every file type, with `from_fd`'s calls minus `fcntl` and `fstat`.
    #[test]
    fn judging_a_stat_is_from_fd_without_the_descriptor() {
        let char_device = |link: Result<&'static [u8], Errno>| {
            ScriptedKernel::char_device(DAX_RDEV).with_readlink(link)
        };
        let mut kernels = std::vec![
            char_device(Ok(b"../../bus/dax")),
            char_device(Ok(b"../../../../class/mem")),
            char_device(Err(Errno::ENOENT)),
            char_device(Err(Errno::EINVAL)),
        ];
        for mode in [S_IFREG, S_IFDIR, S_IFIFO, S_IFSOCK, S_IFBLK, S_IFLNK, 0] {
            kernels.push(ScriptedKernel::regular_file().with_mode(mode | 0o640));
        }
        for kernel in kernels {
            let from_fd = from_fd(&kernel, 3).map(|source| source.file_type());
            let stat = kernel.fstat(3).expect("the scripted stat");
            let before = kernel.calls().len();
            let judged = Source::file_type_from_stat_with(&kernel, &stat);
            assert_eq!(judged.map(Some), from_fd, "mode {:#o}", stat.mode);
            let judging = kernel.calls()[before..].to_vec();
            let from_fd_calls = kernel.calls()[2..before - 1].to_vec();
            assert_eq!(judging, from_fd_calls, "mode {:#o}", stat.mode);
        }
    }

    #[test]
    fn device_dax_takes_three_syscalls_and_the_right_path() {
        let kernel = ScriptedKernel::char_device(DAX_RDEV);
        let source = from_fd(&kernel, 4).expect("dax");
        assert_eq!(source.file_type(), Some(FileType::DeviceDax));
        assert_eq!(source.rdev(), Some(DeviceNumber::from_raw(DAX_RDEV)));
        let calls = kernel.calls();
        assert_eq!(calls.len(), 3);
        assert_eq!(
            calls[2],
            Call::Readlink {
                path: heapless::String::try_from("/sys/dev/char/252:0/subsystem").unwrap(),
                buffer_len: LINK_TARGET_CAPACITY,
            }
        );
    }

    #[test]
    fn old_kernels_class_dax_is_dax_too() {
        let kernel =
            ScriptedKernel::char_device(DAX_RDEV).with_readlink(Ok(b"../../../../class/dax"));
        assert_eq!(
            from_fd(&kernel, 4).map(|s| s.file_type()),
            Ok(Some(FileType::DeviceDax))
        );
    }

    #[test]
    fn other_character_devices() {
        let kernel = ScriptedKernel::char_device(0x103).with_readlink(Ok(b"../../../../class/mem"));
        assert_error(
            from_fd(&kernel, 4),
            PMEM2_E_INVALID_FILE_TYPE,
            "character device 1:3 is not Device DAX: its subsystem is \"mem\"",
        );
        let kernel = ScriptedKernel::char_device(0x103).with_readlink(Ok(b"../../bus/daxx"));
        assert_eq!(
            from_fd(&kernel, 4).map_err(|e| e.code()),
            Err(PMEM2_E_INVALID_FILE_TYPE)
        );
        let kernel = ScriptedKernel::char_device(0x103).with_readlink(Ok(b""));
        assert_error(
            from_fd(&kernel, 4),
            PMEM2_E_INVALID_FILE_TYPE,
            "character device 1:3 is not Device DAX: its subsystem is \"\"",
        );
    }

    #[test]
    fn readlink_failures_are_errnos() {
        for (errno, text) in [
            (Errno::ENOENT, "No such file or directory"),
            (Errno::EACCES, "Permission denied"),
            (Errno::ENOMEM, "Cannot allocate memory"),
            (Errno::ELOOP, "Too many levels of symbolic links"),
        ] {
            let kernel = ScriptedKernel::char_device(0x8800).with_readlink(Err(errno));
            let message = std::format!("readlink \"/sys/dev/char/136:0/subsystem\": {text}");
            assert_error(from_fd(&kernel, 4), -errno.raw(), &message);
        }
    }

    #[test]
    fn subsystem_that_is_not_a_link() {
        let kernel = ScriptedKernel::char_device(DAX_RDEV).with_readlink(Err(Errno::EINVAL));
        assert_error(
            from_fd(&kernel, 4),
            PMEM2_E_INVALID_FILE_TYPE,
            "\"/sys/dev/char/252:0/subsystem\" is not a symbolic link, so character device \
             252:0 is not Device DAX",
        );
    }

    #[test]
    fn a_full_buffer_is_never_dax() {
        // A target of exactly the buffer size, and a longer one, both ending in "dax".
        for extra in [0, 1, 100] {
            let mut target = std::vec![b'a'; LINK_TARGET_CAPACITY + extra - 4];
            target.extend_from_slice(b"/dax");
            let kernel = ScriptedKernel::char_device(DAX_RDEV).with_readlink(Ok(&target));
            let err = from_fd(&kernel, 4).expect_err("possibly truncated");
            assert_eq!(
                err,
                Error::SysfsLinkTooLong {
                    device: DeviceNumber::from_raw(DAX_RDEV)
                }
            );
            assert_eq!(err.code(), PMEM2_E_INVALID_FILE_TYPE);
            assert!(
                err.to_string().contains("does not fit in 255 bytes"),
                "{err}"
            );
        }
        // One byte shorter fits, and is DAX.
        let mut target = std::vec![b'a'; LINK_TARGET_CAPACITY - 5];
        target.extend_from_slice(b"/dax");
        let kernel = ScriptedKernel::char_device(DAX_RDEV).with_readlink(Ok(&target));
        assert!(from_fd(&kernel, 4).is_ok());
    }

    #[test]
    fn huge_device_numbers_format_fully() {
        let kernel = ScriptedKernel::char_device(u64::MAX).with_readlink(Err(Errno::ENOENT));
        assert_error(
            from_fd(&kernel, 4),
            -libc::ENOENT,
            "readlink \"/sys/dev/char/4294967295:4294967295/subsystem\": No such file or directory",
        );
    }

    #[test]
    fn a_lying_backend_cannot_overrun() {
        struct Liar;
        impl Syscalls for Liar {
            fn fcntl_getfl(&self, _: i32) -> Result<u32, Errno> {
                Ok(O_RDWR)
            }
            fn fstat(&self, _: i32) -> Result<FileStat, Errno> {
                Ok(FileStat {
                    mode: S_IFCHR,
                    ..FileStat::default()
                })
            }
            fn readlink(&self, _: &core::ffi::CStr, buf: &mut [u8]) -> Result<usize, Errno> {
                Ok(buf.len() + 10)
            }
        }
        let err = Source::from_fd_with(&Liar, 1).expect_err("claims more than the buffer");
        assert!(matches!(err, Error::SysfsLinkTooLong { .. }));
    }
}
