//! What a source can tell about itself (SPEC §5): size, alignment, NUMA node, device id and
//! unsafe-shutdown count — Device DAX and NVDIMM facts read from sysfs, never from libndctl.
//!
//! Sysfs is reached from the device number the source recorded at creation:
//! `/sys/dev/char/M:m` for a Device DAX, `/sys/dev/block/M:m` for the device holding a
//! regular file. Parents are reached with `..` (the kernel resolves it in the directory the
//! link points to), so no path is ever resolved here.

use crate::error::{Errno, Error, Unsupported};
use crate::source::{FileType, Source, SourceKind, Unrecognized};
use crate::sys::{FileInformation, FileStat, RawHandle, Syscalls};
use crate::sysfs::{
    ATTRIBUTE_CAPACITY, DeviceNumber, LINK_TARGET_CAPACITY, PathBuffer, SysfsFailure,
    SysfsOperation, SysfsPath, SysfsRoot, SysfsText, char_device_depth_below_sys, last_component,
    parse_decimal, parse_mapping_dimm, parse_signed_decimal, parse_word_line, read_attribute,
};

/// How many parent directories are searched for `dax_region/align`, a `numa_node` or an
/// NVDIMM region, at most: fewer where `/sys` is nearer. Real trees need two or three.
pub const MAX_ANCESTORS: u8 = 8;

/// How many `mappingN` attributes of a region are read at most (a region interleaves a
/// handful of DIMMs).
const MAX_MAPPINGS: u16 = 64;

impl Source {
    /// `pmem2_source_size`: the size in bytes.
    ///
    /// Anonymous: the size given. Fd: `fstat` again (a descriptor that now refers to another
    /// file — device or inode changed, [`Error::FileChanged`], or the same inode number on a
    /// file born since, [`Error::FileReplaced`] — is refused); a regular file's
    /// `st_size`; a Device DAX's `/sys/dev/char/M:m/size`. Handle (Windows):
    /// `GetFileInformationByHandle` again, with the errors of
    /// [`from_handle_with`](Self::from_handle_with) and [`Error::HandleChanged`] for a handle
    /// value that now refers to another file; the file size.
    ///
    /// ```
    /// use pmem2_source::sys::scripted::ScriptedKernel;
    /// use pmem2_source::Source;
    ///
    /// let kernel = ScriptedKernel::char_device(0xfc00).with_file("/sys/dev/char/252:0/size", b"262144000\n");
    /// let dax = Source::from_fd_with(&kernel, 3).unwrap();
    /// assert_eq!(dax.size_with(&kernel), Ok(262144000));
    /// assert_eq!(Source::anon(4096).size_with(&kernel), Ok(4096));
    /// ```
    pub fn size_with<S: Syscalls + ?Sized>(&self, sys: &S) -> Result<u64, Error> {
        if let Some(handle) = self.handle_parts() {
            return Ok(self.current_information(sys, handle)?.size);
        }
        let fd = match self.kind() {
            SourceKind::Anonymous => return Ok(self.anon_size().unwrap_or_default() as u64),
            SourceKind::Unrecognized => return Err(self.unrecognized_type().into()),
            // (A handle source was answered above.)
            SourceKind::Fd | SourceKind::Handle => self.fd_value(),
        };
        // The descriptor before the file type, as libpmem2 asks: a closed descriptor in a
        // source with a file type field nobody wrote is still reported as closed.
        let stat = self.current_stat(sys, fd)?;
        match self.recognized_file_type()? {
            FileType::Regular => {
                u64::try_from(stat.size).map_err(|_| Error::NegativeFileSize { size: stat.size })
            }
            FileType::DeviceDax => {
                let path = self.dax_attribute(0, "size");
                let contents = read_text(sys, &path)?;
                contents
                    .whole()
                    .and_then(parse_decimal)
                    .ok_or_else(|| Error::InvalidSize {
                        path,
                        text: contents.text(),
                    })
            }
        }
    }

    /// `pmem2_source_alignment`: the alignment a mapping of this source needs.
    ///
    /// Anonymous, regular file and handle: the system's allocation granularity
    /// ([`Syscalls::allocation_granularity`]: the page size on Linux, `GetSystemInfo`'s
    /// `dwAllocationGranularity` on Windows). Device DAX: its `align` attribute, or on
    /// kernels without one, `dax_region/align` in the nearest of its ancestor directories
    /// that has one. Not a power of two: [`Error::AlignmentNotPowerOfTwo`].
    pub fn alignment_with<S: Syscalls + ?Sized>(&self, sys: &S) -> Result<usize, Error> {
        let alignment = match self.fd_parts()? {
            Some((_, FileType::DeviceDax)) => self.device_dax_alignment(sys)?,
            _ => {
                let granularity = sys
                    .allocation_granularity()
                    .map_err(|errno| Error::PageSize { errno })?;
                granularity as u64
            }
        };
        if !alignment.is_power_of_two() {
            return Err(Error::AlignmentNotPowerOfTwo { alignment });
        }
        usize::try_from(alignment).map_err(|_| Error::AlignmentNotPowerOfTwo { alignment })
    }

    /// `pmem2_source_numa_node`: the NUMA node of the memory behind the source.
    ///
    /// Device DAX: its `numa_node` attribute (or the nearest ancestor's). Regular file on a
    /// pmem block device (fsdax): the NVDIMM namespace's `numa_node`. Anything else:
    /// [`Error::RegionNotFound`] (`PMEM2_E_DAX_REGION_NOT_FOUND`); anonymous and Windows
    /// handle: `PMEM2_E_NOSUPP`. `-1` means the platform reports no affinity.
    pub fn numa_node_with<S: Syscalls + ?Sized>(&self, sys: &S) -> Result<i32, Error> {
        if self.kind() == SourceKind::Handle {
            return Err(Error::NotSupported(Unsupported::HandleNumaNode));
        }
        let Some((_, file_type)) = self.fd_parts()? else {
            return Err(Error::NotSupported(Unsupported::AnonymousNumaNode));
        };
        let (path, contents) = match file_type {
            FileType::DeviceDax => self.nearest_dax_attribute(sys, "numa_node")?,
            FileType::Regular => {
                let namespace = self.fsdax_namespace(sys)?.ok_or(Error::RegionNotFound)?;
                let path = namespace.path("numa_node");
                let contents = read_text(sys, &path)?;
                (path, contents)
            }
        };
        // Node numbers are never negative; -1 is how the kernel says "no affinity".
        contents
            .whole()
            .and_then(parse_signed_decimal)
            .and_then(|node| i32::try_from(node).ok())
            .filter(|&node| node >= -1)
            .ok_or_else(|| Error::InvalidDeviceAttribute {
                path,
                text: contents.text(),
            })
    }

    /// `pmem2_source_device_id`: the ids (`nfit/id`) of the NVDIMMs behind the source,
    /// concatenated, with libpmem2's length protocol: with no buffer, returns the length the
    /// id needs including its NUL; with one, writes the id and a NUL into it and returns that
    /// length ([`Error::BufferTooSmall`] if it does not fit; then nothing is written).
    ///
    /// No NVDIMM region behind the source, or a DIMM without `nfit/id`: `PMEM2_E_NOSUPP`;
    /// a Windows handle too (libpmem2 asks the volume's storage device there; we do not).
    pub fn device_id_with<S: Syscalls + ?Sized>(
        &self,
        sys: &S,
        out: Option<&mut [u8]>,
    ) -> Result<usize, Error> {
        match self.kind() {
            SourceKind::Anonymous => {
                return Err(Error::NotSupported(Unsupported::AnonymousDeviceId));
            }
            SourceKind::Handle => return Err(Error::NotSupported(Unsupported::HandleDeviceId)),
            SourceKind::Unrecognized => return Err(self.unrecognized_type().into()),
            SourceKind::Fd => {}
        }
        let region = self
            .region(sys)?
            .ok_or(Error::NotSupported(Unsupported::NoDeviceId))?;
        // First pass measures, second pass writes: nothing is written unless it all fits.
        let mut needed = 1;
        region.for_each_dimm(sys, "nfit/id", Unsupported::NoDeviceId, |text| {
            needed += parse_word_line(text)?.len();
            Some(())
        })?;
        let Some(out) = out else {
            return Ok(needed);
        };
        if out.len() < needed {
            return Err(Error::BufferTooSmall { needed });
        }
        let mut written = 0;
        region.for_each_dimm(sys, "nfit/id", Unsupported::NoDeviceId, |text| {
            let id = parse_word_line(text)?;
            let end = written + id.len();
            out.get_mut(written..end)?.copy_from_slice(id);
            written = end;
            Some(())
        })?;
        // A DIMM id that grew between the passes would not fit the measured length.
        match out.get_mut(written) {
            Some(nul) if written < needed => *nul = 0,
            _ => {
                return Err(Error::BufferTooSmall {
                    needed: written + 1,
                });
            }
        }
        Ok(written + 1)
    }

    /// `pmem2_source_device_usc`: the sum of the unsafe-shutdown counts
    /// (`nfit/dirty_shutdown`) of the NVDIMMs behind the source.
    ///
    /// No NVDIMM region behind the source, or a DIMM without the attribute: `PMEM2_E_NOSUPP`;
    /// a Windows handle too (libpmem2 asks the volume's storage device there; we do not).
    pub fn device_usc_with<S: Syscalls + ?Sized>(&self, sys: &S) -> Result<u64, Error> {
        match self.kind() {
            SourceKind::Anonymous => return Err(Error::NotSupported(Unsupported::AnonymousUsc)),
            SourceKind::Handle => return Err(Error::NotSupported(Unsupported::HandleUsc)),
            SourceKind::Unrecognized => return Err(self.unrecognized_type().into()),
            SourceKind::Fd => {}
        }
        let region = self
            .region(sys)?
            .ok_or(Error::NotSupported(Unsupported::NoUsc))?;
        // Each count is checked as it is read; the sum only after all are (an overflow is
        // not the fault of the DIMM whose count was added last).
        let mut sum = Some(0u64);
        region.for_each_dimm(sys, "nfit/dirty_shutdown", Unsupported::NoUsc, |text| {
            let count = parse_decimal(text)?;
            sum = sum.and_then(|sum| sum.checked_add(count));
            Some(())
        })?;
        sum.ok_or(Error::UnsafeShutdownCountOverflow)
    }

    /// The fd and file type of an fd source; `None` for an anonymous or handle source. A type
    /// or file type field that no constructor writes is an error: nothing is answered for a
    /// source whose fields are not understood.
    pub(crate) fn fd_parts(&self) -> Result<Option<(i32, FileType)>, Unrecognized> {
        match self.kind() {
            SourceKind::Fd => Ok(Some((self.fd_value(), self.recognized_file_type()?))),
            SourceKind::Unrecognized => Err(self.unrecognized_type()),
            SourceKind::Anonymous | SourceKind::Handle => Ok(None),
        }
    }

    /// `fstat` of the descriptor, which must still be the file the source was made from.
    ///
    /// The same device and inode number are not enough: once the file is closed and deleted,
    /// ext4 and XFS give its inode number to the next file created, and the descriptor number
    /// to the next file opened. But a file is never born after its own `st_ctime`, so when
    /// the `st_ctime` differs from the recorded one, the birth time decides: a file born after
    /// the recorded `st_ctime` is another file. An unchanged `st_ctime` needs no second call:
    /// whatever file this is, it was born no later than that.
    fn current_stat<S: Syscalls + ?Sized>(&self, sys: &S, fd: i32) -> Result<FileStat, Error> {
        // Out of line, as in `from_fd`: the answer falls through (see `classify.rs`).
        let stat = match sys.fstat(fd) {
            Ok(stat) => stat,
            Err(errno) => return Err(crate::classify::fstat_failure(errno)),
        };
        let recorded = (self.dev().map(DeviceNumber::raw), self.ino());
        if recorded != (Some(stat.dev), Some(stat.ino)) {
            return Err(Error::FileChanged { fd });
        }
        if self.ctime() != Some(stat.ctime) {
            self.check_birth(sys, fd)?;
        }
        Ok(stat)
    }

    /// Fails if the file `fd` refers to was born after the recorded `st_ctime`. Without a
    /// birth time (a file system that keeps none; a kernel or sandbox without `statx`), the
    /// file is taken to be the same.
    #[cold]
    fn check_birth<S: Syscalls + ?Sized>(&self, sys: &S, fd: i32) -> Result<(), Error> {
        match sys.birth_time(fd) {
            Ok(Some(birth)) if self.ctime().is_some_and(|ctime| birth > ctime) => {
                Err(Error::FileReplaced { fd })
            }
            Ok(_) | Err(Errno::ENOSYS | Errno::EPERM) => Ok(()),
            Err(errno) => Err(Error::BirthTime { errno }),
        }
    }

    /// `GetFileInformationByHandle` of the handle, which must still be the file the source
    /// was made from.
    fn current_information<S: Syscalls + ?Sized>(
        &self,
        sys: &S,
        (handle, volume, index): (RawHandle, u32, u64),
    ) -> Result<FileInformation, Error> {
        let info = crate::classify::handle_information(sys, handle)?;
        if (info.volume_serial_number, info.file_index) != (volume, index) {
            return Err(Error::HandleChanged {
                handle: handle.addr(),
            });
        }
        Ok(info)
    }

    /// The device number of this Device DAX (`st_rdev`).
    fn dax_device(&self) -> DeviceNumber {
        self.rdev().unwrap_or(DeviceNumber::from_raw(0))
    }

    /// `/sys/dev/char/M:m` for this Device DAX.
    fn dax_root(&self) -> SysfsRoot {
        SysfsRoot::CharDevice(self.dax_device())
    }

    /// `/sys/dev/char/M:m/` + `../` × `ups` + `attribute` for this Device DAX.
    fn dax_attribute(&self, ups: u8, attribute: &'static str) -> SysfsPath {
        SysfsPath::new(self.dax_root(), attribute).up(ups)
    }

    /// The steps up from `first_up` that a search of this Device DAX's ancestors takes: at
    /// most [`MAX_ANCESTORS`], and never as far as `/sys` (see
    /// [`char_device_depth_below_sys`]), which is read only once the search goes up.
    fn dax_ancestors<'a, S: Syscalls + ?Sized>(
        &'a self,
        sys: &'a S,
        first_up: u8,
    ) -> impl Iterator<Item = u8> + 'a {
        let mut highest = None;
        (first_up..=MAX_ANCESTORS).take_while(move |&ups| {
            ups == 0
                || ups
                    <= *highest.get_or_insert_with(|| {
                        char_device_depth_below_sys(sys, self.dax_device()).saturating_sub(1)
                    })
        })
    }

    fn device_dax_alignment<S: Syscalls + ?Sized>(&self, sys: &S) -> Result<u64, Error> {
        let own = self.dax_attribute(0, "align");
        let found = match read_optional(sys, &own)? {
            Some(contents) => Some((own, contents)),
            None => self.nearest_dax_attribute_from(sys, 1, "dax_region/align")?,
        };
        let device = self.dax_device();
        let (path, contents) = found.ok_or(Error::AlignmentNotFound { device })?;
        contents
            .whole()
            .and_then(parse_decimal)
            .ok_or_else(|| Error::InvalidAlignment {
                path,
                text: contents.text(),
            })
    }

    /// The attribute in the device directory or the nearest ancestor that has it;
    /// [`Error::RegionNotFound`] if none has.
    fn nearest_dax_attribute<S: Syscalls + ?Sized>(
        &self,
        sys: &S,
        attribute: &'static str,
    ) -> Result<(SysfsPath, Attribute), Error> {
        self.nearest_dax_attribute_from(sys, 0, attribute)?
            .ok_or(Error::RegionNotFound)
    }

    fn nearest_dax_attribute_from<S: Syscalls + ?Sized>(
        &self,
        sys: &S,
        first_up: u8,
        attribute: &'static str,
    ) -> Result<Option<(SysfsPath, Attribute)>, Error> {
        for ups in self.dax_ancestors(sys, first_up) {
            let path = self.dax_attribute(ups, attribute);
            if let Some(contents) = read_optional(sys, &path)? {
                return Ok(Some((path, contents)));
            }
        }
        Ok(None)
    }

    /// For a regular file: the NVDIMM namespace directory behind the block device holding
    /// it (`/sys/dev/block/M:m/device`, or `…/../device` for a partition), if its
    /// subsystem is `nd`.
    fn fsdax_namespace<S: Syscalls + ?Sized>(&self, sys: &S) -> Result<Option<SysfsDir>, Error> {
        let Some(device) = self.dev() else {
            return Ok(None);
        };
        for ups in 0..=1 {
            let namespace = SysfsDir {
                root: SysfsRoot::BlockDevice(device),
                ups,
                prefix: "device/",
            };
            let link = namespace.path("subsystem");
            let mut path_buffer = PathBuffer::new();
            let Ok(c_path) = link.as_c_str(&mut path_buffer) else {
                return Ok(None);
            };
            let mut target = [0u8; LINK_TARGET_CAPACITY];
            // Any failure (no such block device in sysfs: tmpfs, overlayfs, NFS…; not a
            // partition) means "not on an NVDIMM namespace".
            if let Ok(len) = sys.readlink(c_path, &mut target)
                && len < LINK_TARGET_CAPACITY
            {
                let filled = target.get(..len).unwrap_or_default();
                return Ok((last_component(filled) == b"nd").then_some(namespace));
            }
        }
        Ok(None)
    }

    /// The NVDIMM region directory behind the source: for a Device DAX the nearest ancestor
    /// with a `mappings` attribute; for a regular file the parent of its fsdax namespace.
    fn region<S: Syscalls + ?Sized>(&self, sys: &S) -> Result<Option<SysfsDir>, Error> {
        match self.recognized_file_type()? {
            FileType::DeviceDax => {
                for ups in self.dax_ancestors(sys, 0) {
                    let dir = SysfsDir {
                        root: self.dax_root(),
                        ups,
                        prefix: "",
                    };
                    if read_optional(sys, &dir.path("mappings"))?.is_some() {
                        return Ok(Some(dir));
                    }
                }
                Ok(None)
            }
            FileType::Regular => Ok(self.fsdax_namespace(sys)?.map(|namespace| SysfsDir {
                prefix: "device/../",
                ..namespace
            })),
        }
    }
}

/// A sysfs directory named relative to a device: root, `../` × `ups`, then `prefix`.
#[derive(Clone, Debug)]
struct SysfsDir {
    root: SysfsRoot,
    ups: u8,
    prefix: &'static str,
}

impl SysfsDir {
    fn path(&self, attribute: &'static str) -> SysfsPath {
        SysfsPath::new(self.root.clone(), attribute)
            .up(self.ups)
            .below(self.prefix)
    }

    /// Calls `visit` with the contents of `attribute` (e.g. `nfit/id`) of every DIMM of this
    /// region, in `mappingN` order. A DIMM without the attribute is `missing`; contents
    /// `visit` rejects (returns `None` for) are [`Error::InvalidDeviceAttribute`].
    fn for_each_dimm<S: Syscalls + ?Sized>(
        &self,
        sys: &S,
        attribute: &'static str,
        missing: Unsupported,
        mut visit: impl FnMut(&[u8]) -> Option<()>,
    ) -> Result<(), Error> {
        let mappings_path = self.path("mappings");
        let mappings = read_text(sys, &mappings_path)?;
        let count = mappings
            .whole()
            .and_then(parse_decimal)
            .and_then(|count| u16::try_from(count).ok())
            .filter(|&count| count <= MAX_MAPPINGS)
            .ok_or_else(|| Error::InvalidDeviceAttribute {
                path: mappings_path,
                text: mappings.text(),
            })?;
        for index in 0..count {
            let mapping_path = self.path("mapping").indexed(index);
            let mapping = read_text(sys, &mapping_path)?;
            let Some(dimm) = mapping.whole().and_then(parse_mapping_dimm) else {
                return Err(Error::InvalidDeviceAttribute {
                    path: mapping_path,
                    text: mapping.text(),
                });
            };
            let path = SysfsPath::new(SysfsRoot::NdDevice(SysfsText::new(dimm)), attribute);
            let contents = read_optional(sys, &path)?.ok_or(Error::NotSupported(missing))?;
            if contents.whole().and_then(&mut visit).is_none() {
                return Err(Error::InvalidDeviceAttribute {
                    path,
                    text: contents.text(),
                });
            }
        }
        Ok(())
    }
}

/// An attribute's contents as read: all of them, or the first [`ATTRIBUTE_CAPACITY`] bytes
/// of a longer file.
struct Attribute {
    buf: [u8; ATTRIBUTE_CAPACITY],
    len: usize,
}

impl Attribute {
    /// The whole contents, for a parser; `None` if they filled the buffer and so may have
    /// been cut (a cut copy could parse as a different, valid value). Parsing never looks at
    /// the shortened [`SysfsText`] an error message keeps.
    fn whole(&self) -> Option<&[u8]> {
        self.buf
            .get(..self.len)
            .filter(|_| self.len < ATTRIBUTE_CAPACITY)
    }

    /// The contents (cut to [`SysfsText::CAPACITY`] bytes) for an error message.
    fn text(&self) -> SysfsText {
        SysfsText::new(self.buf.get(..self.len).unwrap_or_default())
    }
}

/// The contents of the attribute at `path`.
fn read_text<S: Syscalls + ?Sized>(sys: &S, path: &SysfsPath) -> Result<Attribute, Error> {
    let mut buf = [0; ATTRIBUTE_CAPACITY];
    let len = read_attribute(sys, path, &mut buf)
        .map_err(Error::Sysfs)?
        .len();
    Ok(Attribute { buf, len })
}

/// Like [`read_text`], but `None` if the attribute does not exist (`ENOENT` on open).
fn read_optional<S: Syscalls + ?Sized>(
    sys: &S,
    path: &SysfsPath,
) -> Result<Option<Attribute>, Error> {
    match read_text(sys, path) {
        Ok(contents) => Ok(Some(contents)),
        Err(Error::Sysfs(SysfsFailure {
            operation: SysfsOperation::Open,
            errno: Errno::ENOENT,
            ..
        })) => Ok(None),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;
    use crate::codes::*;
    use crate::sys::scripted::{FileScript, ScriptedKernel};
    use crate::test_support::assert_failure;

    const DAX: u64 = 0xfc00; // 252:0
    const DAX_DIR: &str = "/sys/dev/char/252:0";

    fn dax_kernel() -> ScriptedKernel {
        ScriptedKernel::char_device(DAX)
    }

    fn source(kernel: &ScriptedKernel) -> Source {
        Source::from_fd_with(kernel, 3).expect("the scripted source")
    }

    fn attr(name: &str) -> std::string::String {
        std::format!("{DAX_DIR}/{name}")
    }

    #[test]
    fn size_of_anonymous_and_regular_sources() {
        let kernel = ScriptedKernel::regular_file().with_data(&[7; 1234]);
        assert_eq!(
            Source::anon(usize::MAX).size_with(&kernel),
            Ok(usize::MAX as u64)
        );
        assert_eq!(source(&kernel).size_with(&kernel), Ok(1234));
    }

    /// The descriptor refers to a file with the recorded device and inode number: the birth
    /// time is asked only when `st_ctime` moved, and a file born after the recorded
    /// `st_ctime` is another file (ext4 and XFS hand a freed inode number out again).
    #[test]
    fn a_reused_inode_number_is_told_apart_by_the_birth_time() {
        use crate::sys::Timestamp;
        use crate::sys::scripted::{Call, SCRIPTED_CTIME};
        let made = source(&ScriptedKernel::regular_file());
        let later = |nsec| Timestamp {
            nsec: SCRIPTED_CTIME.nsec + nsec,
            ..SCRIPTED_CTIME
        };
        let asked = |kernel: &ScriptedKernel| {
            kernel
                .calls()
                .iter()
                .filter(|call| matches!(call, Call::BirthTime { fd: 3 }))
                .count()
        };
        let replaced = "fd 3 now refers to a different file than when the source was created (a \
                        file with the same device and inode number, created after the source \
                        was: the descriptor was closed and its number reused, and the inode \
                        number too)";

        // Unchanged: fstat alone answers.
        let unchanged = ScriptedKernel::regular_file().with_birth_time(Ok(Some(later(1))));
        assert_eq!(made.size_with(&unchanged), Ok(4096));
        assert_eq!(asked(&unchanged), 0, "st_ctime unchanged: no statx");

        // Changed since (written, chmod'ed), born before: the same file.
        for birth in [
            Some(SCRIPTED_CTIME),
            Some(Timestamp { sec: 0, nsec: 0 }),
            None,
        ] {
            let changed = ScriptedKernel::regular_file()
                .with_ctime(later(7))
                .with_birth_time(Ok(birth));
            assert_eq!(made.size_with(&changed), Ok(4096), "born {birth:?}");
            assert_eq!(asked(&changed), 1);
        }

        // Born after the recorded st_ctime, even by a nanosecond or in a new second: another
        // file, for every query that reads the file.
        for birth in [
            later(1),
            Timestamp {
                sec: SCRIPTED_CTIME.sec + 1,
                nsec: 0,
            },
        ] {
            let kernel = ScriptedKernel::regular_file()
                .with_ctime(later(2))
                .with_birth_time(Ok(Some(birth)));
            let code = PMEM2_E_INVALID_FILE_HANDLE;
            assert_failure(made.size_with(&kernel), code, replaced);
            let mut buf = [0u8; 4];
            assert_failure(made.pread_mcsafe_with(&kernel, &mut buf, 0), code, replaced);
            assert_failure(made.pwrite_mcsafe_with(&kernel, b"x", 0), code, replaced);
            assert_eq!(kernel.data().first(), Some(&0), "nothing written");
        }

        // No birth time to be had: taken as the same file. A failing statx is an error.
        for errno in [Errno::ENOSYS, Errno::EPERM] {
            let kernel = ScriptedKernel::regular_file()
                .with_ctime(later(2))
                .with_birth_time(Err(errno));
            assert_eq!(made.size_with(&kernel), Ok(4096), "{errno:?}");
        }
        let closed = ScriptedKernel::regular_file()
            .with_ctime(later(2))
            .with_birth_time(Err(Errno::EBADF));
        assert_failure(
            made.size_with(&closed),
            PMEM2_E_INVALID_FILE_HANDLE,
            "statx: Bad file descriptor",
        );
        let failing = ScriptedKernel::regular_file()
            .with_ctime(later(2))
            .with_birth_time(Err(Errno::EIO));
        assert_failure(made.size_with(&failing), -5, "statx: Input/output error");
    }

    #[test]
    fn size_refetches_fstat_and_checks_the_file() {
        let kernel = ScriptedKernel::regular_file();
        let made = source(&kernel);
        let moved = ScriptedKernel::regular_file().with_fstat(Ok(FileStat {
            ino: 13,
            ..kernel.fstat(3).expect("stat")
        }));
        assert_failure(
            made.size_with(&moved),
            PMEM2_E_INVALID_FILE_HANDLE,
            "fd 3 now refers to a different file than when the source was created (its device \
             or inode changed: the descriptor was closed and its number reused)",
        );
        let closed = ScriptedKernel::regular_file().with_fstat(Err(Errno::EBADF));
        assert_failure(
            made.size_with(&closed),
            PMEM2_E_INVALID_FILE_HANDLE,
            "fstat: Bad file descriptor",
        );
        let failing = ScriptedKernel::regular_file().with_fstat(Err(Errno::EIO));
        assert_failure(made.size_with(&failing), -5, "fstat: Input/output error");
        let negative = ScriptedKernel::regular_file().with_fstat(Ok(FileStat {
            size: -1,
            ..kernel.fstat(3).expect("stat")
        }));
        assert_failure(
            made.size_with(&negative),
            PMEM2_E_INVALID_FILE_HANDLE,
            "kernel says size of regular file is negative (-1)",
        );
    }

    #[test]
    fn device_dax_size_from_sysfs() {
        let kernel = dax_kernel().with_file(&attr("size"), b"262144000\n");
        assert_eq!(source(&kernel).size_with(&kernel), Ok(262_144_000));
        assert_eq!(kernel.open_descriptors(), 0, "the attribute was closed");
    }

    #[test]
    fn malformed_device_dax_sizes() {
        for (text, shown) in [
            (&b"12abc\n"[..], "12abc\\n"),
            (b"", ""),
            (b"123", "123"),
            (b"-1\n", "-1\\n"),
            (b"18446744073709551616\n", "18446744073709551616\\n"),
            (b"1\n\x00", "1\\n\\x00"),
        ] {
            let kernel = dax_kernel().with_file(&attr("size"), text);
            let message = std::format!(
                "invalid size in \"{DAX_DIR}/size\": \"{shown}\" is not a decimal number and a \
                 newline"
            );
            assert_failure(
                source(&kernel).size_with(&kernel),
                PMEM2_E_INVALID_SIZE_FORMAT,
                &message,
            );
            assert_eq!(kernel.open_descriptors(), 0);
        }
        // Longer than what is kept: cut, and marked so.
        let kernel = dax_kernel().with_file(&attr("size"), &[b'9'; 40]);
        let err = source(&kernel).size_with(&kernel).expect_err("too long");
        assert!(
            err.to_string().contains("999999999999999999999999...\""),
            "{err}"
        );
    }

    #[test]
    fn unreadable_device_dax_size() {
        let kernel = dax_kernel();
        let message = std::format!("open \"{DAX_DIR}/size\": No such file or directory");
        assert_failure(source(&kernel).size_with(&kernel), -2, &message);
        let kernel =
            dax_kernel().with_file_script(&attr("size"), FileScript::ReadFails(Errno::EIO));
        let message = std::format!("read \"{DAX_DIR}/size\": Input/output error");
        assert_failure(source(&kernel).size_with(&kernel), -5, &message);
        assert_eq!(
            kernel.open_descriptors(),
            0,
            "closed after a failed read too"
        );
        let kernel =
            dax_kernel().with_file_script(&attr("size"), FileScript::OpenFails(Errno::EACCES));
        assert_eq!(
            source(&kernel).size_with(&kernel).map_err(|e| e.code()),
            Err(-13)
        );
    }

    #[test]
    fn alignment_of_pages() {
        let kernel = ScriptedKernel::regular_file().with_page_size(Ok(16384));
        assert_eq!(source(&kernel).alignment_with(&kernel), Ok(16384));
        assert_eq!(Source::anon(1).alignment_with(&kernel), Ok(16384));
        let kernel = ScriptedKernel::regular_file().with_page_size(Err(Errno::ENOSYS));
        assert_failure(
            Source::anon(1).alignment_with(&kernel),
            -38,
            "cannot find out the page size: Function not implemented",
        );
        let kernel = ScriptedKernel::regular_file().with_page_size(Ok(3000));
        assert_failure(
            Source::anon(1).alignment_with(&kernel),
            PMEM2_E_INVALID_ALIGNMENT_VALUE,
            "alignment (3000) has to be a power of two",
        );
    }

    #[test]
    fn device_dax_alignment_from_its_align_attribute() {
        let kernel = dax_kernel().with_file(&attr("align"), b"2097152\n");
        assert_eq!(source(&kernel).alignment_with(&kernel), Ok(2_097_152));
        for (text, code, message) in [
            (
                &b"0\n"[..],
                PMEM2_E_INVALID_ALIGNMENT_VALUE,
                "alignment (0) has to be a power of two".to_string(),
            ),
            (
                b"3\n",
                PMEM2_E_INVALID_ALIGNMENT_VALUE,
                "alignment (3) has to be a power of two".to_string(),
            ),
            (
                b"2M\n",
                PMEM2_E_INVALID_ALIGNMENT_FORMAT,
                std::format!(
                    "invalid alignment in \"{DAX_DIR}/align\": \"2M\\n\" is not a decimal number \
                     and a newline"
                ),
            ),
        ] {
            let kernel = dax_kernel().with_file(&attr("align"), text);
            assert_failure(source(&kernel).alignment_with(&kernel), code, &message);
        }
    }

    /// `/sys/dev/char/252:0` as a link to a device directory `depth` below `/sys`.
    fn dax_at_depth(depth: usize) -> ScriptedKernel {
        let target = std::format!("../../devices{}/dax0.0", "/d".repeat(depth - 2));
        dax_kernel().with_link(DAX_DIR, Ok(target.as_bytes()))
    }

    #[test]
    fn device_dax_alignment_falls_back_to_the_nearest_dax_region() {
        let deep = usize::from(MAX_ANCESTORS) + 2;
        for ups in 1..=MAX_ANCESTORS {
            let region = std::format!("{DAX_DIR}/{}dax_region/align", "../".repeat(ups.into()));
            let kernel = dax_at_depth(deep).with_file(&region, b"4096\n");
            assert_eq!(
                source(&kernel).alignment_with(&kernel),
                Ok(4096),
                "{region}"
            );
        }
        // The nearest wins.
        let kernel = dax_kernel()
            .with_file(&attr("../../dax_region/align"), b"4096\n")
            .with_file(&attr("../dax_region/align"), b"65536\n");
        assert_eq!(source(&kernel).alignment_with(&kernel), Ok(65536));
        // Too far up is not searched.
        let too_far = std::format!("{DAX_DIR}/{}dax_region/align", "../".repeat(9));
        let kernel = dax_at_depth(deep + 5).with_file(&too_far, b"4096\n");
        assert_failure(
            source(&kernel).alignment_with(&kernel),
            -2,
            "cannot read the alignment of Device DAX 252:0: neither /sys/dev/char/252:0/align \
             nor a dax_region/align in one of its 8 nearest ancestor directories below /sys \
             exists",
        );
        // An unreadable own attribute is an error, not a reason to look elsewhere.
        let kernel = dax_kernel()
            .with_file_script(&attr("align"), FileScript::OpenFails(Errno::EACCES))
            .with_file(&attr("../dax_region/align"), b"4096\n");
        let message = std::format!("open \"{DAX_DIR}/align\": Permission denied");
        assert_failure(source(&kernel).alignment_with(&kernel), -13, &message);
    }

    /// Ancestors are searched up to the directory just below `/sys`, never `/sys` itself or
    /// above it (`..` of `/sys` is `/`): the depth comes from the device's link, read once,
    /// and only when the search goes up.
    #[test]
    fn ancestor_searches_stop_below_the_sysfs_root() {
        use crate::sys::scripted::Call;
        let opened_ups = |kernel: &ScriptedKernel| -> std::vec::Vec<usize> {
            kernel
                .calls()
                .iter()
                .filter_map(|call| match call {
                    Call::Open { path } => Some(path.matches("../").count()),
                    _ => None,
                })
                .collect()
        };
        let links_read = |kernel: &ScriptedKernel| {
            kernel
                .calls()
                .iter()
                .filter(|call| matches!(call, Call::Readlink { path, .. } if path == DAX_DIR))
                .count()
        };
        let hmem = |kernel: ScriptedKernel| {
            kernel.with_link(DAX_DIR, Ok(b"../../devices/platform/hmem.0/dax0.0"))
        };
        // hmem: /sys/devices/platform/hmem.0/dax0.0, 4 below /sys: 3 steps up at most.
        let kernel = hmem(dax_kernel());
        assert_eq!(
            source(&kernel).numa_node_with(&kernel),
            Err(Error::RegionNotFound)
        );
        assert_eq!(opened_ups(&kernel), [0, 1, 2, 3]);
        assert_eq!(links_read(&kernel), 1);
        let kernel = hmem(dax_kernel());
        assert!(source(&kernel).alignment_with(&kernel).is_err());
        assert_eq!(
            opened_ups(&kernel),
            [0, 1, 2, 3],
            "align, then dax_region/align"
        );
        let kernel = hmem(dax_kernel());
        let _ = source(&kernel).device_usc_with(&kernel);
        assert_eq!(opened_ups(&kernel), [0, 1, 2, 3], "mappings");
        // Found in the device's own directory: the link is not read.
        let kernel = hmem(dax_kernel()).with_file(&attr("numa_node"), b"0\n");
        assert_eq!(source(&kernel).numa_node_with(&kernel), Ok(0));
        assert_eq!(links_read(&kernel), 0);
        // The file at /sys (4 up) or at / (5 up) is never opened.
        for ups in [4, 5] {
            let above = std::format!("{DAX_DIR}/{}numa_node", "../".repeat(ups));
            let kernel = hmem(dax_kernel()).with_file(&above, b"0\n");
            assert_eq!(
                source(&kernel).numa_node_with(&kernel),
                Err(Error::RegionNotFound)
            );
        }
        // A staged tree's plain directory /sys/dev/char/252:0 is 3 below: 2 steps.
        let kernel = dax_kernel();
        assert_eq!(
            source(&kernel).numa_node_with(&kernel),
            Err(Error::RegionNotFound)
        );
        assert_eq!(opened_ups(&kernel), [0, 1, 2]);
        // A link that leaves /sys, is absolute, or may have been cut: the device's own
        // directory only.
        let cut = [b'd'; LINK_TARGET_CAPACITY];
        for target in [&b"../../../etc/dax0.0"[..], b"/sys/devices/dax0.0", &cut] {
            let kernel = dax_kernel().with_link(DAX_DIR, Ok(target));
            assert_eq!(
                source(&kernel).numa_node_with(&kernel),
                Err(Error::RegionNotFound)
            );
            assert_eq!(opened_ups(&kernel), [0], "{target:?}");
        }
    }

    #[test]
    fn numa_node_of_a_device_dax() {
        let kernel = dax_kernel().with_file(&attr("numa_node"), b"1\n");
        assert_eq!(source(&kernel).numa_node_with(&kernel), Ok(1));
        let kernel = dax_kernel().with_file(&attr("numa_node"), b"-1\n");
        assert_eq!(source(&kernel).numa_node_with(&kernel), Ok(-1));
        let kernel = dax_kernel().with_file(&attr("../numa_node"), b"2\n");
        assert_eq!(
            source(&kernel).numa_node_with(&kernel),
            Ok(2),
            "the region's"
        );
        let kernel = dax_kernel();
        assert_failure(
            source(&kernel).numa_node_with(&kernel),
            PMEM2_E_DAX_REGION_NOT_FOUND,
            "unknown region",
        );
        // Out of range, and negative numbers other than -1 ("no affinity"): not nodes.
        for text in ["2147483648", "-2", "-2147483648"] {
            let kernel =
                dax_kernel().with_file(&attr("numa_node"), std::format!("{text}\n").as_bytes());
            let message =
                std::format!("unexpected contents of \"{DAX_DIR}/numa_node\": \"{text}\\n\"");
            assert_failure(
                source(&kernel).numa_node_with(&kernel),
                PMEM2_E_INVALID_DEV_FORMAT,
                &message,
            );
        }
        assert_failure(
            Source::anon(1).numa_node_with(&kernel),
            PMEM2_E_NOSUPP,
            "Anonymous sources are not bound to numa nodes.",
        );
    }

    #[test]
    fn numa_node_of_a_file_on_fsdax() {
        let file = || ScriptedKernel::regular_file();
        // A whole pmem disk: /sys/dev/block/8:1/device is the namespace.
        let kernel = file()
            .with_link(
                "/sys/dev/block/8:1/device/subsystem",
                Ok(b"../../../bus/nd"),
            )
            .with_file("/sys/dev/block/8:1/device/numa_node", b"0\n");
        assert_eq!(source(&kernel).numa_node_with(&kernel), Ok(0));
        // A partition: its parent has the device link.
        let kernel = file()
            .with_link(
                "/sys/dev/block/8:1/../device/subsystem",
                Ok(b"../../../bus/nd"),
            )
            .with_file("/sys/dev/block/8:1/../device/numa_node", b"1\n");
        assert_eq!(source(&kernel).numa_node_with(&kernel), Ok(1));
        // Not NVDIMM (virtio, NVMe, tmpfs with no block device at all): unknown region.
        let virtio = file()
            .with_link(
                "/sys/dev/block/8:1/device/subsystem",
                Ok(b"../../../bus/virtio"),
            )
            .with_file("/sys/dev/block/8:1/device/numa_node", b"0\n");
        for kernel in [virtio, file()] {
            assert_failure(
                source(&kernel).numa_node_with(&kernel),
                PMEM2_E_DAX_REGION_NOT_FOUND,
                "unknown region",
            );
        }
    }

    /// A Device DAX whose region (two levels up) interleaves two DIMMs.
    fn dax_with_region(ids: [&[u8]; 2], usc: [&[u8]; 2]) -> ScriptedKernel {
        let mut kernel = dax_kernel()
            .with_file(&attr("../../mappings"), b"2\n")
            .with_file(&attr("../../mapping0"), b"nmem0,0,134217728,0\n")
            .with_file(&attr("../../mapping1"), b"nmem1,0,134217728,1\n");
        for (dimm, (id, usc)) in ["nmem0", "nmem1"].iter().zip(ids.iter().zip(usc)) {
            let dir = std::format!("/sys/bus/nd/devices/{dimm}/nfit");
            kernel = kernel.with_file(&std::format!("{dir}/id"), id);
            kernel = kernel.with_file(&std::format!("{dir}/dirty_shutdown"), usc);
        }
        kernel
    }

    #[test]
    fn device_id_length_protocol() {
        let kernel = dax_with_region(
            [b"8089-a2-1740-00000539\n", b"8089-a2-1740-0000053a\n"],
            [b"1\n", b"2\n"],
        );
        let dax = source(&kernel);
        assert_eq!(dax.device_id_with(&kernel, None), Ok(43));
        let mut exact = [0xffu8; 43];
        assert_eq!(dax.device_id_with(&kernel, Some(&mut exact)), Ok(43));
        assert_eq!(&exact[..42], b"8089-a2-1740-000005398089-a2-1740-0000053a");
        assert_eq!(exact[42], 0);
        let mut short = [0xffu8; 42];
        assert_failure(
            dax.device_id_with(&kernel, Some(&mut short)),
            PMEM2_E_BUFFER_TOO_SMALL,
            "the buffer is too small: the device id needs 43 bytes",
        );
        assert!(short.iter().all(|&b| b == 0xff), "nothing written");
        assert_eq!(dax.device_usc_with(&kernel), Ok(3));
        assert_eq!(kernel.open_descriptors(), 0);
    }

    /// A backend whose DIMM ids change between `device_id`'s measuring pass and its writing
    /// pass: `before` answers until the first DIMM's `nfit/id` is opened a second time, then
    /// `after` answers everything.
    struct IdChangesMidway {
        before: ScriptedKernel,
        after: ScriptedKernel,
        id_opens: core::cell::Cell<u32>,
    }

    impl IdChangesMidway {
        fn now(&self) -> &ScriptedKernel {
            if self.id_opens.get() > 1 {
                &self.after
            } else {
                &self.before
            }
        }
    }

    impl Syscalls for IdChangesMidway {
        fn fcntl_getfl(&self, fd: i32) -> Result<u32, Errno> {
            self.now().fcntl_getfl(fd)
        }
        fn fstat(&self, fd: i32) -> Result<FileStat, Errno> {
            self.now().fstat(fd)
        }
        fn readlink(&self, path: &core::ffi::CStr, buf: &mut [u8]) -> Result<usize, Errno> {
            self.now().readlink(path, buf)
        }
        fn open_read_only(&self, path: &core::ffi::CStr) -> Result<i32, Errno> {
            if path.to_bytes() == b"/sys/bus/nd/devices/nmem0/nfit/id" {
                self.id_opens.set(self.id_opens.get() + 1);
            }
            self.now().open_read_only(path)
        }
        fn read(&self, fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
            self.now().read(fd, buf)
        }
        fn close(&self, fd: i32) -> Result<(), Errno> {
            self.now().close(fd)
        }
    }

    #[test]
    fn device_id_that_grows_between_the_passes_does_not_overrun() {
        // Measured: 6 bytes and the NUL. Written: 7 bytes, which leave no room for the NUL.
        let grown = IdChangesMidway {
            before: dax_with_region([b"abcd\n", b"ef\n"], [b"0\n", b"0\n"]),
            after: dax_with_region([b"abcde\n", b"ef\n"], [b"0\n", b"0\n"]),
            id_opens: core::cell::Cell::new(0),
        };
        let dax = Source::from_fd_with(&grown, 3).expect("the scripted source");
        let mut roomy = [0xffu8; 16];
        assert_failure(
            dax.device_id_with(&grown, Some(&mut roomy)),
            PMEM2_E_BUFFER_TOO_SMALL,
            "the buffer is too small: the device id needs 8 bytes",
        );
        assert_eq!(&roomy[..7], b"abcdeef", "what was read");
        assert!(roomy[7..].iter().all(|&b| b == 0xff), "nothing past it");
        // Grown past the caller's buffer: refused before anything lands outside it.
        let grown = IdChangesMidway {
            before: dax_with_region([b"abcd\n", b"ef\n"], [b"0\n", b"0\n"]),
            after: dax_with_region([b"abcdefghij\n", b"ef\n"], [b"0\n", b"0\n"]),
            id_opens: core::cell::Cell::new(0),
        };
        let mut exact = [0xffu8; 7];
        assert_eq!(
            dax.device_id_with(&grown, Some(&mut exact))
                .map_err(|e| e.code()),
            Err(PMEM2_E_INVALID_DEV_FORMAT)
        );
        assert_eq!(exact, [0xff; 7], "nothing written");
        assert_eq!(grown.after.open_descriptors(), 0);
    }

    #[test]
    fn device_id_and_usc_need_nvdimms() {
        let kernel = dax_kernel();
        let dax = source(&kernel);
        assert_failure(
            dax.device_id_with(&kernel, None),
            PMEM2_E_NOSUPP,
            "device id is not available for this source: no NVDIMM with an nfit/id backs it",
        );
        assert_failure(
            dax.device_usc_with(&kernel),
            PMEM2_E_NOSUPP,
            "Unsafe shutdown count is not supported for this source",
        );
        assert_failure(
            Source::anon(1).device_id_with(&kernel, None),
            PMEM2_E_NOSUPP,
            "Anonymous source does not have device id",
        );
        assert_failure(
            Source::anon(1).device_usc_with(&kernel),
            PMEM2_E_NOSUPP,
            "Anonymous source does not support unsafe shutdown count",
        );
        // A region without NFIT DIMMs (e820 / memmap= pmem): no DIMMs, empty id, no shutdowns.
        let kernel = dax_kernel().with_file(&attr("../mappings"), b"0\n");
        let dax = source(&kernel);
        assert_eq!(dax.device_id_with(&kernel, None), Ok(1));
        assert_eq!(dax.device_usc_with(&kernel), Ok(0));
        // A DIMM without the nfit attributes.
        let kernel = dax_kernel()
            .with_file(&attr("../mappings"), b"1\n")
            .with_file(&attr("../mapping0"), b"nmem0,0,1,0\n");
        let dax = source(&kernel);
        assert_eq!(
            dax.device_id_with(&kernel, None).map_err(|e| e.code()),
            Err(PMEM2_E_NOSUPP)
        );
        assert_eq!(
            dax.device_usc_with(&kernel).map_err(|e| e.code()),
            Err(PMEM2_E_NOSUPP)
        );
    }

    #[test]
    fn malformed_region_attributes() {
        let kernel = dax_kernel().with_file(&attr("../mappings"), b"x\n");
        let message = std::format!("unexpected contents of \"{DAX_DIR}/../mappings\": \"x\\n\"");
        assert_failure(
            source(&kernel).device_usc_with(&kernel),
            PMEM2_E_INVALID_DEV_FORMAT,
            &message,
        );
        let kernel = dax_kernel()
            .with_file(&attr("../mappings"), b"1\n")
            .with_file(&attr("../mapping0"), b"../../etc,0,1,0\n");
        assert_eq!(
            source(&kernel)
                .device_usc_with(&kernel)
                .map_err(|e| e.code()),
            Err(PMEM2_E_INVALID_DEV_FORMAT)
        );
        let kernel = dax_with_region([b"id0\n", b"id1\n"], [b"18446744073709551615\n", b"1\n"]);
        assert_failure(
            source(&kernel).device_usc_with(&kernel),
            PMEM2_E_INVALID_DEV_FORMAT,
            "the unsafe shutdown counts of the DIMMs behind the source add up to more than \
             18446744073709551615",
        );
        // A malformed count after the overflow is still named.
        let kernel = dax_with_region([b"id0\n", b"id1\n"], [b"18446744073709551615\n", b"x\n"]);
        let err = source(&kernel)
            .device_usc_with(&kernel)
            .expect_err("malformed");
        assert!(err.to_string().contains("\"x\\n\""), "{err}");
        let kernel = dax_with_region([b"id 0\n", b"id1\n"], [b"0\n", b"0\n"]);
        assert_eq!(
            source(&kernel)
                .device_id_with(&kernel, None)
                .map_err(|e| e.code()),
            Err(PMEM2_E_INVALID_DEV_FORMAT)
        );
    }

    #[test]
    fn fsdax_region_is_the_namespace_parent() {
        let kernel = ScriptedKernel::regular_file()
            .with_link(
                "/sys/dev/block/8:1/device/subsystem",
                Ok(b"../../../bus/nd"),
            )
            .with_file("/sys/dev/block/8:1/device/../mappings", b"1\n")
            .with_file("/sys/dev/block/8:1/device/../mapping0", b"nmem3,0,1,0\n")
            .with_file("/sys/bus/nd/devices/nmem3/nfit/dirty_shutdown", b"7\n");
        assert_eq!(source(&kernel).device_usc_with(&kernel), Ok(7));
    }
    // Found by the `sysfs_number` fuzz target: attributes were parsed from the copy an error
    // message keeps (cut to SysfsText::CAPACITY = 24 bytes), not from what was read.

    /// `"0" × 24, "\n"` (25 bytes): a valid number, rejected because the cut copy had lost
    /// its newline.
    #[test]
    fn regression_size_24_zeros_newline() {
        let mut text = [b'0'; 25];
        text[24] = b'\n';
        let kernel = dax_kernel().with_file(&attr("size"), &text);
        assert_eq!(source(&kernel).size_with(&kernel), Ok(0));
    }

    /// `"0" × 23, "\n0\n", "0" × 7, "\n0\n"`: not a number and a newline, accepted as 0
    /// because the cut copy ended right after the first newline.
    #[test]
    fn regression_size_23_zeros_newline_0_newline_7_zeros_newline_0_newline() {
        let text = b"00000000000000000000000\n0\n0000000\n0\n";
        let kernel = dax_kernel()
            .with_file(&attr("size"), text)
            .with_file(&attr("align"), text)
            .with_file(&attr("numa_node"), text);
        let dax = source(&kernel);
        assert_eq!(
            dax.size_with(&kernel).map_err(|e| e.code()),
            Err(PMEM2_E_INVALID_SIZE_FORMAT)
        );
        assert_eq!(
            dax.alignment_with(&kernel).map_err(|e| e.code()),
            Err(PMEM2_E_INVALID_ALIGNMENT_FORMAT)
        );
        assert_eq!(
            dax.numa_node_with(&kernel).map_err(|e| e.code()),
            Err(PMEM2_E_INVALID_DEV_FORMAT)
        );
    }

    /// The same cut broke real `mappingN` lines longer than 24 bytes (a DIMM's second region
    /// starts at a large offset): `"nmem1,1073741824,137438953472,0\n"` is 32 bytes.
    #[test]
    fn regression_mapping_nmem1_1073741824_137438953472_0() {
        let kernel = dax_kernel()
            .with_file(&attr("../mappings"), b"1\n")
            .with_file(&attr("../mapping0"), b"nmem1,1073741824,137438953472,0\n")
            .with_file("/sys/bus/nd/devices/nmem1/nfit/dirty_shutdown", b"5\n");
        assert_eq!(source(&kernel).device_usc_with(&kernel), Ok(5));
    }

    /// Contents that fill the whole read buffer may be cut, so they are never parsed.
    #[test]
    fn an_attribute_filling_the_buffer_is_rejected() {
        let mut text = [b'0'; ATTRIBUTE_CAPACITY];
        text[ATTRIBUTE_CAPACITY - 2] = b'7';
        text[ATTRIBUTE_CAPACITY - 1] = b'\n';
        let kernel = dax_kernel().with_file(&attr("size"), &text);
        assert_eq!(
            source(&kernel).size_with(&kernel).map_err(|e| e.code()),
            Err(PMEM2_E_INVALID_SIZE_FORMAT)
        );
        let kernel = dax_kernel().with_file(&attr("size"), &text[1..]);
        assert_eq!(source(&kernel).size_with(&kernel), Ok(7));
    }
}
