//! What a source can tell about itself (SPEC §5): size, alignment, NUMA node, device id and
//! unsafe-shutdown count — Device DAX and NVDIMM facts read from sysfs, never from libndctl.
//!
//! Sysfs is reached from the device number the source recorded at creation:
//! `/sys/dev/char/M:m` for a Device DAX, `/sys/dev/block/M:m` for the device holding a
//! regular file. Parents are reached with `..` (the kernel resolves it in the directory the
//! link points to), so no path is ever resolved here.

use crate::error::{Errno, Error, Unsupported};
use crate::source::{FileType, Source, SourceKind};
use crate::sys::{FileStat, Syscalls};
use crate::sysfs::{
    ATTRIBUTE_CAPACITY, DeviceNumber, LINK_TARGET_CAPACITY, PathBuffer, SysfsFailure,
    SysfsOperation, SysfsPath, SysfsRoot, SysfsText, last_component, parse_decimal,
    parse_mapping_dimm, parse_signed_decimal, parse_word_line, read_attribute,
};

/// How many parent directories are searched for `dax_region/align`, a `numa_node` or an
/// NVDIMM region. Real trees need two or three.
pub const MAX_ANCESTORS: u8 = 8;

/// How many `mappingN` attributes of a region are read at most (a region interleaves a
/// handful of DIMMs).
const MAX_MAPPINGS: u16 = 64;

impl Source {
    /// `pmem2_source_size`: the size in bytes.
    ///
    /// Anonymous: the size given. Fd: `fstat` again (a descriptor that now refers to another
    /// file — device or inode changed — is [`Error::FileChanged`]); a regular file's
    /// `st_size`; a Device DAX's `/sys/dev/char/M:m/size`.
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
        let Some((fd, file_type, _)) = self.fd_parts() else {
            return Ok(self.anon_size().unwrap_or_default() as u64);
        };
        let stat = self.current_stat(sys, fd)?;
        match file_type {
            FileType::Regular => {
                u64::try_from(stat.size).map_err(|_| Error::NegativeFileSize { size: stat.size })
            }
            FileType::DeviceDax => {
                let path = self.dax_attribute(0, "size");
                let text = read_text(sys, &path)?;
                parse_decimal(text.as_bytes()).ok_or(Error::InvalidSize { path, text })
            }
        }
    }

    /// `pmem2_source_alignment`: the alignment a mapping of this source needs.
    ///
    /// Anonymous and regular file: the page size. Device DAX: its `align` attribute, or on
    /// kernels without one, `dax_region/align` in the nearest of its ancestor directories
    /// that has one. Not a power of two: [`Error::AlignmentNotPowerOfTwo`].
    pub fn alignment_with<S: Syscalls + ?Sized>(&self, sys: &S) -> Result<usize, Error> {
        let alignment = match self.fd_parts() {
            Some((_, FileType::DeviceDax, _)) => self.device_dax_alignment(sys)?,
            _ => {
                let page = sys.page_size().map_err(|errno| Error::PageSize { errno })?;
                page as u64
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
    /// [`Error::RegionNotFound`] (`PMEM2_E_DAX_REGION_NOT_FOUND`); anonymous:
    /// `PMEM2_E_NOSUPP`. `-1` means the platform reports no affinity.
    pub fn numa_node_with<S: Syscalls + ?Sized>(&self, sys: &S) -> Result<i32, Error> {
        let Some((_, file_type, _)) = self.fd_parts() else {
            return Err(Error::NotSupported(Unsupported::AnonymousNumaNode));
        };
        let (path, text) = match file_type {
            FileType::DeviceDax => self.nearest_dax_attribute(sys, "numa_node")?,
            FileType::Regular => {
                let namespace = self.fsdax_namespace(sys)?.ok_or(Error::RegionNotFound)?;
                let path = namespace.path("numa_node");
                let text = read_text(sys, &path)?;
                (path, text)
            }
        };
        parse_signed_decimal(text.as_bytes())
            .and_then(|node| i32::try_from(node).ok())
            .ok_or(Error::InvalidDeviceAttribute { path, text })
    }

    /// `pmem2_source_device_id`: the ids (`nfit/id`) of the NVDIMMs behind the source,
    /// concatenated, with libpmem2's length protocol: with no buffer, returns the length the
    /// id needs including its NUL; with one, writes the id and a NUL into it and returns that
    /// length ([`Error::BufferTooSmall`] if it does not fit; then nothing is written).
    ///
    /// No NVDIMM region behind the source, or a DIMM without `nfit/id`: `PMEM2_E_NOSUPP`.
    pub fn device_id_with<S: Syscalls + ?Sized>(
        &self,
        sys: &S,
        out: Option<&mut [u8]>,
    ) -> Result<usize, Error> {
        if self.kind() == SourceKind::Anonymous {
            return Err(Error::NotSupported(Unsupported::AnonymousDeviceId));
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
    /// No NVDIMM region behind the source, or a DIMM without the attribute: `PMEM2_E_NOSUPP`.
    pub fn device_usc_with<S: Syscalls + ?Sized>(&self, sys: &S) -> Result<u64, Error> {
        if self.kind() == SourceKind::Anonymous {
            return Err(Error::NotSupported(Unsupported::AnonymousUsc));
        }
        let region = self
            .region(sys)?
            .ok_or(Error::NotSupported(Unsupported::NoUsc))?;
        let mut sum = 0u64;
        region.for_each_dimm(sys, "nfit/dirty_shutdown", Unsupported::NoUsc, |text| {
            sum = sum.checked_add(parse_decimal(text)?)?;
            Some(())
        })?;
        Ok(sum)
    }

    /// The fd, file type and recorded device numbers of an fd source.
    pub(crate) fn fd_parts(&self) -> Option<(i32, FileType, DeviceNumber)> {
        let fd = self.fd().ok()?;
        Some((fd, self.file_type()?, self.rdev()?))
    }

    /// `fstat` of the descriptor, which must still be the file the source was made from.
    fn current_stat<S: Syscalls + ?Sized>(&self, sys: &S, fd: i32) -> Result<FileStat, Error> {
        let stat = sys.fstat(fd).map_err(|errno| Error::Fstat { errno })?;
        let recorded = (self.dev().map(DeviceNumber::raw), self.ino());
        if recorded != (Some(stat.dev), Some(stat.ino)) {
            return Err(Error::FileChanged { fd });
        }
        Ok(stat)
    }

    /// `/sys/dev/char/M:m/` + `../` × `ups` + `attribute` for this Device DAX.
    fn dax_attribute(&self, ups: u8, attribute: &'static str) -> SysfsPath {
        let device = self.rdev().unwrap_or(DeviceNumber::from_raw(0));
        SysfsPath::new(SysfsRoot::CharDevice(device), attribute).up(ups)
    }

    fn device_dax_alignment<S: Syscalls + ?Sized>(&self, sys: &S) -> Result<u64, Error> {
        let own = self.dax_attribute(0, "align");
        let found = match read_optional(sys, &own)? {
            Some(text) => Some((own, text)),
            None => self.nearest_dax_attribute_from(sys, 1, "dax_region/align")?,
        };
        let device = self.rdev().unwrap_or(DeviceNumber::from_raw(0));
        let (path, text) = found.ok_or(Error::AlignmentNotFound { device })?;
        parse_decimal(text.as_bytes()).ok_or(Error::InvalidAlignment { path, text })
    }

    /// The attribute in the device directory or the nearest ancestor that has it;
    /// [`Error::RegionNotFound`] if none has.
    fn nearest_dax_attribute<S: Syscalls + ?Sized>(
        &self,
        sys: &S,
        attribute: &'static str,
    ) -> Result<(SysfsPath, SysfsText), Error> {
        self.nearest_dax_attribute_from(sys, 0, attribute)?
            .ok_or(Error::RegionNotFound)
    }

    fn nearest_dax_attribute_from<S: Syscalls + ?Sized>(
        &self,
        sys: &S,
        first_up: u8,
        attribute: &'static str,
    ) -> Result<Option<(SysfsPath, SysfsText)>, Error> {
        for ups in first_up..=MAX_ANCESTORS {
            let path = self.dax_attribute(ups, attribute);
            if let Some(text) = read_optional(sys, &path)? {
                return Ok(Some((path, text)));
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
        match self.file_type() {
            Some(FileType::DeviceDax) => {
                let Some(device) = self.rdev() else {
                    return Ok(None);
                };
                for ups in 0..=MAX_ANCESTORS {
                    let dir = SysfsDir {
                        root: SysfsRoot::CharDevice(device),
                        ups,
                        prefix: "",
                    };
                    if read_optional(sys, &dir.path("mappings"))?.is_some() {
                        return Ok(Some(dir));
                    }
                }
                Ok(None)
            }
            Some(FileType::Regular) => Ok(self.fsdax_namespace(sys)?.map(|namespace| SysfsDir {
                prefix: "device/../",
                ..namespace
            })),
            None => Ok(None),
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
        let count = parse_decimal(mappings.as_bytes())
            .and_then(|count| u16::try_from(count).ok())
            .filter(|&count| count <= MAX_MAPPINGS)
            .ok_or(Error::InvalidDeviceAttribute {
                path: mappings_path,
                text: mappings,
            })?;
        for index in 0..count {
            let mapping_path = self.path("mapping").indexed(index);
            let mapping = read_text(sys, &mapping_path)?;
            let Some(dimm) = parse_mapping_dimm(mapping.as_bytes()) else {
                return Err(Error::InvalidDeviceAttribute {
                    path: mapping_path,
                    text: mapping,
                });
            };
            let path = SysfsPath::new(SysfsRoot::NdDevice(SysfsText::new(dimm)), attribute);
            let text = read_optional(sys, &path)?.ok_or(Error::NotSupported(missing))?;
            if visit(text.as_bytes()).is_none() {
                return Err(Error::InvalidDeviceAttribute { path, text });
            }
        }
        Ok(())
    }
}

/// The contents of the attribute at `path` (cut to [`SysfsText::CAPACITY`] bytes, which no
/// valid value reaches).
fn read_text<S: Syscalls + ?Sized>(sys: &S, path: &SysfsPath) -> Result<SysfsText, Error> {
    let mut buf = [0; ATTRIBUTE_CAPACITY];
    read_attribute(sys, path, &mut buf)
        .map(SysfsText::new)
        .map_err(Error::Sysfs)
}

/// Like [`read_text`], but `None` if the attribute does not exist (`ENOENT` on open).
fn read_optional<S: Syscalls + ?Sized>(
    sys: &S,
    path: &SysfsPath,
) -> Result<Option<SysfsText>, Error> {
    match read_text(sys, path) {
        Ok(text) => Ok(Some(text)),
        Err(Error::Sysfs(SysfsFailure {
            operation: SysfsOperation::Open,
            errno: Errno::ENOENT,
            ..
        })) => Ok(None),
        Err(err) => Err(err),
    }
}
