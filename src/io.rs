//! `pmem2_source_pread_mcsafe` / `pmem2_source_pwrite_mcsafe`: I/O that reports a bad block
//! as `PMEM2_E_IO_FAIL` instead of dying of it.
//!
//! A regular file goes through `pread`/`pwrite` (the kernel turns a machine check into
//! `EIO`), looping over short transfers and `EINTR`. A Device DAX has no read/write: the
//! needed range, widened to the device alignment, is mapped, copied with the backend's
//! machine-check-safe copy, and unmapped.

use crate::error::{Errno, Error, Unsupported};
use crate::source::{FileType, Source};
use crate::sys::{Buffer, MappingCopyError, Syscalls, copy_through_mapping};

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
        let Some((fd, file_type, _)) = self.fd_parts() else {
            return Err(Error::IoSourceType);
        };
        let direction = buffer.direction();
        let len = buffer.len() as u64;
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
        match file_type {
            FileType::Regular => file_transfer(sys, fd, buffer, offset),
            FileType::DeviceDax => self.device_dax_transfer(sys, fd, buffer, offset),
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

/// `pread`/`pwrite` until the whole buffer is transferred.
fn file_transfer<S: Syscalls + ?Sized>(
    sys: &S,
    fd: i32,
    mut buffer: Buffer<'_>,
    offset: u64,
) -> Result<(), Error> {
    let direction = buffer.direction();
    let mut done = 0usize;
    while done < buffer.len() {
        let at = offset + done as u64;
        let result = match &mut buffer {
            Buffer::Read(buf) => sys.pread(fd, buf.get_mut(done..).unwrap_or_default(), at),
            Buffer::Write(buf) => sys.pwrite(fd, buf.get(done..).unwrap_or_default(), at),
        };
        match result {
            Ok(0) => {
                return Err(Error::UnexpectedEnd {
                    direction,
                    offset: at,
                });
            }
            // A backend claiming more than it was given ends the loop, not memory safety.
            Ok(n) => done = done.saturating_add(n),
            Err(Errno::EINTR) => {}
            Err(Errno::EIO) => return Err(Error::IoFailed { direction }),
            Err(errno) => return Err(Error::Io { direction, errno }),
        }
    }
    Ok(())
}
