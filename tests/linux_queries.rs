//! The query and I/O methods of `Source` on the running kernel (`size`, `alignment`,
//! `numa_node`, `device_id`, `device_usc`, `pread_mcsafe`, `pwrite_mcsafe`) for a regular file
//! and an anonymous source: each answers exactly as its `_with` form over `sys::Linux`, and
//! with what the file is.

#![cfg(not(windows))] // Linux only: scripts/wine-tests.sh has the Windows tests.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::{TempDir, must_open, raw};
use pmem2_source::sys::Linux;
use pmem2_source::{Error, IoDirection, Source, Unsupported, codes};

/// Whether the block device holding `path` is an NVDIMM namespace (its sysfs `device`, or the
/// parent's for a partition, has subsystem `nd`): then the region answers differ.
fn on_nvdimm(path: &Path) -> bool {
    let dev = std::fs::metadata(path).expect("metadata").dev();
    let block = format!("/sys/dev/block/{}:{}", libc::major(dev), libc::minor(dev));
    ["device/subsystem", "../device/subsystem"]
        .iter()
        .any(|link| {
            std::fs::read_link(Path::new(&block).join(link))
                .is_ok_and(|target| target.file_name().is_some_and(|name| name == "nd"))
        })
}

#[test]
fn a_regular_file_on_the_running_kernel() {
    let dir = TempDir::new("linux-queries");
    let path = dir.file("data", b"0123456789");
    let fd = must_open(&path, libc::O_RDWR);
    let source = Source::from_fd(raw(&fd)).expect("a regular file");

    assert_eq!(source.size(), Ok(10));
    assert_eq!(source.size(), source.size_with(&Linux));
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    assert_eq!(source.alignment().map(|a| a as i64), Ok(page as i64));

    source.pwrite_mcsafe(b"ab", 4).expect("write");
    let mut buf = [0u8; 6];
    source.pread_mcsafe(&mut buf, 2).expect("read");
    assert_eq!(&buf, b"23ab67");
    assert_eq!(std::fs::read(&path).expect("read back"), b"0123ab6789");
    let beyond = source.pwrite_mcsafe(b"xyz", 8).expect_err("past the end");
    assert_eq!(
        beyond,
        Error::OutOfRange {
            direction: IoDirection::Write,
            len: 3,
            offset: 8,
            source_size: 10
        }
    );
    assert_eq!(
        source.pread_mcsafe(&mut buf, 8),
        source.pread_mcsafe_with(&Linux, &mut buf, 8)
    );

    assert_eq!(source.numa_node(), source.numa_node_with(&Linux));
    assert_eq!(source.device_id(None), source.device_id_with(&Linux, None));
    assert_eq!(source.device_usc(), source.device_usc_with(&Linux));
    if on_nvdimm(&path) {
        eprintln!(
            "{} is on an NVDIMM namespace: region answers not checked",
            path.display()
        );
        return;
    }
    assert_eq!(source.numa_node(), Err(Error::RegionNotFound));
    let no_id = source.device_id(None).expect_err("no NVDIMM");
    assert_eq!(no_id, Error::NotSupported(Unsupported::NoDeviceId));
    assert_eq!(no_id.code(), codes::PMEM2_E_NOSUPP);
    let mut id = [0xffu8; 8];
    assert_eq!(source.device_id(Some(&mut id)), Err(no_id));
    assert_eq!(id, [0xff; 8], "untouched");
    assert_eq!(
        source.device_usc(),
        Err(Error::NotSupported(Unsupported::NoUsc))
    );
}

#[test]
fn an_anonymous_source_on_the_running_kernel() {
    let anon = Source::anon(1 << 20);
    assert_eq!(anon.size(), Ok(1 << 20));
    assert_eq!(anon.alignment(), anon.alignment_with(&Linux));
    assert_eq!(
        anon.numa_node(),
        Err(Error::NotSupported(Unsupported::AnonymousNumaNode))
    );
    assert_eq!(
        anon.device_id(None),
        Err(Error::NotSupported(Unsupported::AnonymousDeviceId))
    );
    assert_eq!(
        anon.device_usc(),
        Err(Error::NotSupported(Unsupported::AnonymousUsc))
    );
    assert_eq!(anon.pread_mcsafe(&mut [0; 4], 0), Err(Error::IoSourceType));
    assert_eq!(anon.pwrite_mcsafe(&[0; 4], 0), Err(Error::IoSourceType));
}

/// A sysfs file reports a size of 4096 whatever it holds: a read of that size ends early, and
/// the message says so rather than that the file shrank.
#[test]
fn a_sysfs_file_holds_less_than_its_size() {
    let path = Path::new("/sys/devices/system/cpu/online");
    let Ok(file) = std::fs::File::open(path) else {
        return common::skip("a sysfs file", "no /sys/devices/system/cpu/online");
    };
    let held = std::fs::read(path).expect("read").len();
    let size = file.metadata().expect("metadata").len();
    assert!(held < 100 && size == 4096, "{held} bytes held, size {size}");
    let source = Source::from_fd(std::os::fd::AsRawFd::as_raw_fd(&file)).expect("a regular file");
    let mut buf = vec![0u8; 4096];
    let err = source.pread_mcsafe(&mut buf, 0).expect_err("ends early");
    assert_eq!(err.code(), codes::PMEM2_E_LENGTH_OUT_OF_RANGE);
    assert_eq!(
        err.to_string(),
        format!(
            "the file ended at offset {held} during the read, although its size is 4096 bytes: \
             its contents are shorter than its size (as in sysfs and procfs)"
        )
    );
}
