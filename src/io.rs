//! `pmem2_source_pread_mcsafe` / `pmem2_source_pwrite_mcsafe`: I/O that reports a bad block
//! as `PMEM2_E_IO_FAIL` instead of dying of it.
//!
//! A regular file goes through `pread`/`pwrite` (the kernel turns a machine check into
//! `EIO`), looping over short transfers and `EINTR`. A Device DAX has no read/write: the
//! needed range, widened to the device alignment, is mapped, copied with the backend's
//! machine-check-safe copy, and unmapped.

use crate::error::{Errno, Error, Unsupported};
use crate::source::{FileType, Source, SourceKind};
use crate::sys::{Buffer, MappingCopyError, RawHandle, Syscalls, copy_through_mapping};

impl Source {
    /// `pmem2_source_pread_mcsafe`: fills `buf` from the source at `offset`.
    ///
    /// Anonymous source: [`Error::IoSourceType`]. A range not within the source (including an
    /// `offset` past the end, where libpmem2 silently reads nothing): [`Error::OutOfRange`].
    /// A bad block: [`Error::IoFailed`] (regular file, `EIO`) or [`Error::MachineCheck`]
    /// (Device DAX, `SIGBUS`), both `PMEM2_E_IO_FAIL`.
    ///
    /// ```
    /// use pmem2_source::Source;
    /// use std::os::fd::AsRawFd;
    ///
    /// let file = std::fs::File::open("Cargo.toml").unwrap();
    /// let source = Source::from_fd(file.as_raw_fd()).unwrap();
    /// let mut start = [0u8; 11];
    /// source.pread_mcsafe(&mut start, 0).unwrap();
    /// assert_eq!(&start, b"[workspace]");
    /// ```
    pub fn pread_mcsafe_with<S: Syscalls + ?Sized>(
        &self,
        sys: &S,
        buf: &mut [u8],
        offset: u64,
    ) -> Result<(), Error> {
        self.transfer(sys, Buffer::Read(buf), offset)
    }

    /// `pmem2_source_pwrite_mcsafe`: writes `buf` to the source at `offset`; the checks are
    /// those of [`pread_mcsafe_with`](Self::pread_mcsafe_with). A Device DAX write is flushed
    /// from the CPU caches before this returns.
    pub fn pwrite_mcsafe_with<S: Syscalls + ?Sized>(
        &self,
        sys: &S,
        buf: &[u8],
        offset: u64,
    ) -> Result<(), Error> {
        self.transfer(sys, Buffer::Write(buf), offset)
    }

    fn transfer<S: Syscalls + ?Sized>(
        &self,
        sys: &S,
        buffer: Buffer<'_>,
        offset: u64,
    ) -> Result<(), Error> {
        match self.kind() {
            SourceKind::Anonymous => return Err(Error::IoSourceType),
            SourceKind::Unrecognized => return Err(self.unrecognized_type().into()),
            SourceKind::Fd | SourceKind::Handle => {}
        }
        let direction = buffer.direction();
        let len = buffer.len() as u64;
        // The size, and so the descriptor, before the file type, in libpmem2's order.
        let source_size = self.size_with(sys)?;
        let out_of_range = Error::OutOfRange {
            direction,
            len,
            offset,
            source_size,
        };
        match source_size.checked_sub(offset) {
            Some(remaining) if len <= remaining => {}
            _ => return Err(out_of_range),
        }
        if let Some((handle, ..)) = self.handle_parts() {
            return handle_transfer(sys, handle, buffer, offset);
        }
        match self.fd_parts()? {
            Some((fd, FileType::Regular)) => file_transfer(sys, fd, buffer, offset),
            Some((fd, FileType::DeviceDax)) => self.device_dax_transfer(sys, fd, buffer, offset),
            None => Err(Error::IoSourceType),
        }
    }

    fn device_dax_transfer<S: Syscalls + ?Sized>(
        &self,
        sys: &S,
        fd: i32,
        buffer: Buffer<'_>,
        offset: u64,
    ) -> Result<(), Error> {
        let direction = buffer.direction();
        if buffer.len() == 0 {
            return Ok(());
        }
        let alignment = self.alignment_with(sys)? as u64;
        // The range was checked against the device size, so these cannot overflow; checked
        // anyway, as the device size is whatever sysfs said.
        let too_far = Error::OutOfRange {
            direction,
            len: buffer.len() as u64,
            offset,
            source_size: u64::MAX,
        };
        let start = offset - offset % alignment;
        let end = offset
            .checked_add(buffer.len() as u64)
            .ok_or(too_far.clone())?;
        let end = end
            .div_ceil(alignment)
            .checked_mul(alignment)
            .ok_or(too_far.clone())?;
        let map_len = usize::try_from(end - start).map_err(|_| too_far)?;
        let copied =
            copy_through_mapping(sys, fd, start, map_len, (offset - start) as usize, buffer)
                .map_err(|(call, errno)| Error::Mapping { call, errno })?;
        match copied {
            Ok(()) => Ok(()),
            Err(MappingCopyError::MachineCheck) => Err(Error::MachineCheck { direction }),
            Err(MappingCopyError::Unsupported) => {
                Err(Error::NotSupported(Unsupported::MachineCheckSafeCopy))
            }
        }
    }
}

/// How many `EINTR`s in one transfer are retried before `-EINTR` is returned.
pub(crate) const MAX_INTERRUPTIONS: u32 = 64;

/// `pread`/`pwrite` until the whole buffer is transferred.
///
/// An empty buffer still makes one call, as libpmem2's single `pread`/`pwrite` does: the
/// kernel checks the descriptor even for 0 bytes (`EBADF` for a write to a read-only
/// descriptor, `ESPIPE` for a file that cannot be written at an offset, such as
/// `/proc/self/status`), and that answer is libpmem2's.
fn file_transfer<S: Syscalls + ?Sized>(
    sys: &S,
    fd: i32,
    mut buffer: Buffer<'_>,
    offset: u64,
) -> Result<(), Error> {
    let direction = buffer.direction();
    let mut done = 0usize;
    let mut interrupted = 0;
    loop {
        let at = offset + done as u64;
        let result = match &mut buffer {
            Buffer::Read(buf) => sys.pread(fd, buf.get_mut(done..).unwrap_or_default(), at),
            Buffer::Write(buf) => sys.pwrite(fd, buf.get(done..).unwrap_or_default(), at),
        };
        match result {
            Ok(0) if buffer.len() > 0 => {
                // Whether the file shrank or never held what its size says, its size now
                // tells: one more call, on this failure only.
                let size_now = sys
                    .fstat(fd)
                    .ok()
                    .and_then(|stat| u64::try_from(stat.size).ok());
                return Err(Error::UnexpectedEnd {
                    direction,
                    offset: at,
                    size_now,
                });
            }
            // A backend claiming more than it was given ends the loop, not memory safety.
            Ok(n) => done = done.saturating_add(n),
            // Retried, but not forever: a backend that only ever says EINTR gets it reported.
            Err(Errno::EINTR) if interrupted < MAX_INTERRUPTIONS => {
                interrupted += 1;
                continue;
            }
            Err(Errno::EIO) => return Err(Error::IoFailed { direction }),
            Err(errno) => return Err(Error::Io { direction, errno }),
        }
        if done >= buffer.len() {
            return Ok(());
        }
    }
}

/// Windows: `ReadFile`/`WriteFile` at an offset until the whole buffer is transferred
/// (libpmem2 makes one call at the file pointer and ignores the offset; positional I/O is
/// what the function promises).
fn handle_transfer<S: Syscalls + ?Sized>(
    sys: &S,
    handle: RawHandle,
    mut buffer: Buffer<'_>,
    offset: u64,
) -> Result<(), Error> {
    let direction = buffer.direction();
    let mut done = 0usize;
    while done < buffer.len() {
        let at = offset + done as u64;
        let (call, result) = match &mut buffer {
            Buffer::Read(buf) => (
                "ReadFile",
                sys.read_handle_at(handle, buf.get_mut(done..).unwrap_or_default(), at),
            ),
            Buffer::Write(buf) => (
                "WriteFile",
                sys.write_handle_at(handle, buf.get(done..).unwrap_or_default(), at),
            ),
        };
        match result {
            Ok(0) => {
                let size_now = sys.file_information(handle).ok().map(|info| info.size);
                return Err(Error::UnexpectedEnd {
                    direction,
                    offset: at,
                    size_now,
                });
            }
            Ok(n) => done = done.saturating_add(n),
            Err(error) => return Err(Error::Win32 { call, error }),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::string::ToString;

    use super::*;
    use crate::IoDirection;
    use crate::codes::*;
    use crate::sys::FileStat;
    use crate::sys::scripted::{Call, ScriptedKernel};
    use crate::test_support::assert_failure;

    fn numbered(len: usize) -> std::vec::Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn anonymous_sources_have_no_io() {
        let kernel = ScriptedKernel::regular_file();
        let message = "operation doesn't support provided source type, only sources created from \
                       file descriptor or file handle are supported";
        assert_failure(
            Source::anon(10).pread_mcsafe_with(&kernel, &mut [0; 4], 0),
            PMEM2_E_SOURCE_TYPE_NOT_SUPPORTED,
            message,
        );
        assert_failure(
            Source::anon(10).pwrite_mcsafe_with(&kernel, &[0; 4], 0),
            PMEM2_E_SOURCE_TYPE_NOT_SUPPORTED,
            message,
        );
        assert!(kernel.calls().is_empty());
    }

    #[test]
    fn regular_file_round_trip_over_short_transfers() {
        let kernel = ScriptedKernel::regular_file()
            .with_data(&numbered(100))
            .with_max_transfer(7);
        let file = Source::from_fd_with(&kernel, 3).expect("source");
        let mut buf = [0u8; 50];
        file.pread_mcsafe_with(&kernel, &mut buf, 25).expect("read");
        assert_eq!(&buf[..], &numbered(100)[25..75]);
        file.pwrite_mcsafe_with(&kernel, b"hello, persistent world", 77)
            .expect("write");
        assert_eq!(&kernel.data()[77..100], b"hello, persistent world");
        let preads = kernel
            .calls()
            .iter()
            .filter(|c| matches!(c, Call::Pread { .. }))
            .count();
        assert_eq!(preads, 8, "50 bytes, 7 at a time");
    }

    #[test]
    fn ranges_must_lie_within_the_source() {
        let kernel = ScriptedKernel::regular_file().with_data(&numbered(100));
        let file = Source::from_fd_with(&kernel, 3).expect("source");
        assert_eq!(
            file.pread_mcsafe_with(&kernel, &mut [], 100),
            Ok(()),
            "empty, at the end"
        );
        assert_eq!(
            file.pread_mcsafe_with(&kernel, &mut [0; 100], 0),
            Ok(()),
            "all of it"
        );
        assert_failure(
            file.pread_mcsafe_with(&kernel, &mut [0; 11], 90),
            PMEM2_E_LENGTH_OUT_OF_RANGE,
            "size of read 11 from offset 90 goes beyond the file length 10",
        );
        assert_failure(
            file.pwrite_mcsafe_with(&kernel, &[0; 11], 90),
            PMEM2_E_LENGTH_OUT_OF_RANGE,
            "size of write 11 from offset 90 goes beyond the file length 10",
        );
        let mut untouched = [0xaa; 4];
        assert_failure(
            file.pread_mcsafe_with(&kernel, &mut untouched, 101),
            PMEM2_E_LENGTH_OUT_OF_RANGE,
            "offset 101 of read is beyond the end of the source (100 bytes)",
        );
        assert_eq!(untouched, [0xaa; 4]);
        assert_failure(
            file.pread_mcsafe_with(&kernel, &mut [], u64::MAX),
            PMEM2_E_LENGTH_OUT_OF_RANGE,
            "offset 18446744073709551615 of read is beyond the end of the source (100 bytes)",
        );
    }

    #[test]
    fn io_errors() {
        let make = |errno| ScriptedKernel::regular_file().with_io_errno(errno);
        let kernel = make(Errno::EIO);
        let file = Source::from_fd_with(&kernel, 3).expect("source");
        assert_failure(
            file.pread_mcsafe_with(&kernel, &mut [0; 4], 0),
            PMEM2_E_IO_FAIL,
            "physical I/O error occurred on read operation, possible bad block",
        );
        assert_failure(
            file.pwrite_mcsafe_with(&kernel, &[0; 4], 0),
            PMEM2_E_IO_FAIL,
            "physical I/O error occurred on write operation, possible bad block",
        );
        let kernel = make(Errno::EBADF);
        assert_failure(
            file.pwrite_mcsafe_with(&kernel, &[0; 4], 0),
            -9,
            "pwrite: Bad file descriptor",
        );
        // EINTR is retried, but a backend that only ever says EINTR does not hang us.
        let kernel = make(Errno::EINTR);
        assert_failure(
            file.pread_mcsafe_with(&kernel, &mut [0; 4], 0),
            -4,
            "pread: Interrupted system call",
        );
        let attempts = kernel
            .calls()
            .iter()
            .filter(|c| matches!(c, Call::Pread { .. }))
            .count();
        assert_eq!(attempts as u32, MAX_INTERRUPTIONS + 1);
    }

    /// Regression for the fuzz input `differential_real_fds/zero-length-pwrite-proc-self-status`
    /// (a source on `/proc/self/status`, then `pwrite_mcsafe` of 0 bytes at 0): libpmem2 makes
    /// its one `pwrite` even for 0 bytes and returns the kernel's `-ESPIPE`; we returned 0
    /// without asking. An empty transfer now makes one call, and its error is the answer.
    #[test]
    fn fuzz_differential_real_fds_zero_length_pwrite_on_proc_self_status() {
        let espipe = Errno::from_raw(29);
        let kernel = ScriptedKernel::regular_file().with_io_errno(espipe);
        let file = Source::from_fd_with(&kernel, 3).expect("source");
        assert_failure(
            file.pwrite_mcsafe_with(&kernel, &[], 0),
            -29,
            "pwrite: Illegal seek",
        );
        let kernel = ScriptedKernel::regular_file().with_io_errno(Errno::EBADF);
        assert_failure(
            file.pwrite_mcsafe_with(&kernel, &[], 0),
            -9,
            "pwrite: Bad file descriptor",
        );
        assert_failure(
            file.pread_mcsafe_with(&kernel, &mut [], 0),
            -9,
            "pread: Bad file descriptor",
        );
        let transfers = |kernel: &ScriptedKernel| {
            kernel
                .calls()
                .iter()
                .filter(|c| matches!(c, Call::Pread { len: 0, .. } | Call::Pwrite { len: 0, .. }))
                .count()
        };
        assert_eq!(transfers(&kernel), 2, "one call per empty transfer");
        // Where the kernel agrees, an empty transfer succeeds with that one call; an
        // interrupted one is retried, not taken for done.
        let kernel = ScriptedKernel::regular_file().with_data(&numbered(10));
        assert_eq!(file.pread_mcsafe_with(&kernel, &mut [], 10), Ok(()));
        assert_eq!(file.pwrite_mcsafe_with(&kernel, &[], 0), Ok(()));
        assert_eq!(transfers(&kernel), 2);
        let kernel = ScriptedKernel::regular_file().with_io_errno(Errno::EINTR);
        assert_failure(
            file.pwrite_mcsafe_with(&kernel, &[], 0),
            -4,
            "pwrite: Interrupted system call",
        );
        assert_eq!(transfers(&kernel) as u32, MAX_INTERRUPTIONS + 1);
    }

    /// The file ends before its size says: a file that reports more than it holds (sysfs and
    /// procfs) is told apart from one that shrank, by its size when it ended.
    #[test]
    fn a_file_that_ends_early_says_why() {
        // fstat says 4096 bytes, and still does when the read ends, but only 100 are there.
        let kernel = ScriptedKernel::regular_file().with_data(&numbered(100));
        let stat = kernel.fstat(3).expect("stat");
        let kernel = kernel.with_fstat(Ok(FileStatExt::sized(stat, 4096)));
        let file = Source::from_fd_with(&kernel, 3).expect("source");
        assert_failure(
            file.pread_mcsafe_with(&kernel, &mut [0; 200], 0),
            PMEM2_E_LENGTH_OUT_OF_RANGE,
            "the file ended at offset 100 during the read, although its size is 4096 bytes: \
             its contents are shorter than its size (as in sysfs and procfs)",
        );
        // A file that shrank between the size check and the read.
        struct Shrinking(ScriptedKernel, core::cell::Cell<u32>);
        impl Syscalls for Shrinking {
            fn fcntl_getfl(&self, fd: i32) -> Result<u32, Errno> {
                self.0.fcntl_getfl(fd)
            }
            fn fstat(&self, fd: i32) -> Result<FileStat, Errno> {
                let calls = self.1.get();
                self.1.set(calls + 1);
                let stat = self.0.fstat(fd)?;
                Ok(if calls < 2 {
                    stat.sized(4096)
                } else {
                    stat.sized(60)
                })
            }
            fn readlink(&self, path: &core::ffi::CStr, buf: &mut [u8]) -> Result<usize, Errno> {
                self.0.readlink(path, buf)
            }
            fn pread(&self, fd: i32, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
                self.0.pread(fd, buf, offset)
            }
        }
        let shrinking = Shrinking(
            ScriptedKernel::regular_file().with_data(&numbered(100)),
            core::cell::Cell::new(0),
        );
        let file = Source::from_fd_with(&shrinking, 3).expect("source");
        assert_failure(
            file.pread_mcsafe_with(&shrinking, &mut [0; 200], 0),
            PMEM2_E_LENGTH_OUT_OF_RANGE,
            "the file ended at offset 100 during the read: it shrank to 60 bytes meanwhile",
        );
        // No size to be had: both reasons are named.
        let err = Error::UnexpectedEnd {
            direction: IoDirection::Write,
            offset: 7,
            size_now: None,
        };
        assert_eq!(
            err.to_string(),
            "the file ended at offset 7 during the write (it shrank meanwhile, or its contents \
             are shorter than its size)"
        );
    }

    trait FileStatExt {
        fn sized(self, size: i64) -> Self;
    }

    impl FileStatExt for crate::sys::FileStat {
        fn sized(self, size: i64) -> Self {
            crate::sys::FileStat { size, ..self }
        }
    }

    fn dax_kernel() -> ScriptedKernel {
        ScriptedKernel::char_device(0xfc00)
            .with_data(&numbered(4096))
            .with_file("/sys/dev/char/252:0/size", b"4096\n")
            .with_file("/sys/dev/char/252:0/align", b"2048\n")
    }

    #[test]
    fn device_dax_maps_the_aligned_range() {
        let kernel = dax_kernel();
        let dax = Source::from_fd_with(&kernel, 3).expect("source");
        let mut buf = [0u8; 20];
        dax.pread_mcsafe_with(&kernel, &mut buf, 2040)
            .expect("read across an alignment boundary");
        assert_eq!(&buf[..], &numbered(4096)[2040..2060]);
        let io: std::vec::Vec<Call> = kernel
            .calls()
            .into_iter()
            .filter(|c| {
                matches!(
                    c,
                    Call::Map { .. } | Call::CopyFromMapping { .. } | Call::Unmap { .. }
                )
            })
            .collect();
        assert_eq!(
            io,
            [
                Call::Map {
                    offset: 0,
                    len: 4096,
                    writable: false
                },
                Call::CopyFromMapping { len: 20 },
                Call::Unmap { len: 4096 },
            ]
        );
        dax.pwrite_mcsafe_with(&kernel, b"dax!", 2048)
            .expect("write");
        assert_eq!(&kernel.data()[2048..2052], b"dax!");
        assert!(kernel.calls().contains(&Call::Map {
            offset: 2048,
            len: 2048,
            writable: true
        }));
        assert_eq!(kernel.open_descriptors(), 0);
    }

    #[test]
    fn device_dax_io_failures() {
        let kernel = dax_kernel().with_copy(Err(MappingCopyError::MachineCheck));
        let dax = Source::from_fd_with(&kernel, 3).expect("source");
        assert_failure(
            dax.pread_mcsafe_with(&kernel, &mut [0; 8], 0),
            PMEM2_E_IO_FAIL,
            "physical I/O error occurred, possible bad block",
        );
        assert!(
            matches!(kernel.calls().last(), Some(Call::Unmap { .. })),
            "unmapped after the fault"
        );
        let kernel = dax_kernel().with_copy(Err(MappingCopyError::Unsupported));
        let err = dax
            .pwrite_mcsafe_with(&kernel, &[0; 8], 0)
            .expect_err("no safe copy");
        assert_eq!(err, Error::NotSupported(Unsupported::MachineCheckSafeCopy));
        assert_eq!(err.code(), PMEM2_E_NOSUPP);
        let kernel = dax_kernel().with_map_errno(Errno::ENOMEM);
        assert_failure(
            dax.pread_mcsafe_with(&kernel, &mut [0; 8], 0),
            -12,
            "mmap: Cannot allocate memory",
        );
        // Nothing to copy: no mapping at all.
        let kernel = dax_kernel();
        assert_eq!(dax.pread_mcsafe_with(&kernel, &mut [], 10), Ok(()));
        assert!(!kernel.calls().iter().any(|c| matches!(c, Call::Map { .. })));
    }
}
