//! The core on a real Device DAX (`PMEM2_DEVDAX`, see `tests/common/real_devdax.rs`): what
//! `Source` over the raw-syscall `Linux` backend answers for the device a real kernel made of
//! an (emulated) NVDIMM, checked against the size and alignment the namespace was created
//! with and against sysfs read independently.
//!
//! Skipped, with the reason on stderr, where `PMEM2_DEVDAX` is not set: CI runs this inside
//! the guest of `tests/devdax-vm/run.sh`.

#![cfg(not(windows))] // Linux only: scripts/wine-tests.sh has the Windows tests.

mod common;

use std::os::unix::fs::MetadataExt;

use common::real_devdax::{RealDevdax, report};
use common::{CountingLinux, must_open, raw};
use pmem2_source::sys::Linux;
use pmem2_source::{DeviceNumber, Error, FileType, IoDirection, Source, Unsupported, codes};

#[test]
fn from_fd_is_device_dax_in_three_syscalls() {
    let Some(device) = RealDevdax::from_env("from_fd_is_device_dax_in_three_syscalls") else {
        return;
    };
    for (flags, name) in [(libc::O_RDWR, "O_RDWR"), (libc::O_RDONLY, "O_RDONLY")] {
        let fd = must_open(&device.path, flags);
        let kernel = CountingLinux::new();
        let source = Source::from_fd_with(&kernel, raw(&fd))
            .unwrap_or_else(|e| panic!("from_fd({name}): {e}"));
        assert_eq!(source.file_type(), Some(FileType::DeviceDax), "{name}");
        assert_eq!(source.fd(), Ok(raw(&fd)));
        let rdev = source.rdev().expect("an fd source records st_rdev");
        assert_eq!(
            (rdev.major(), rdev.minor()),
            (device.major, device.minor),
            "{name}: st_rdev"
        );
        let metadata = std::fs::metadata(&device.path).expect("stat the device");
        assert_eq!(
            source.dev(),
            Some(DeviceNumber::from_raw(metadata.dev())),
            "{name}: st_dev"
        );
        let subsystem = format!(
            "readlink(\"/sys/dev/char/{}:{}/subsystem\", 256)",
            device.major, device.minor
        );
        assert_eq!(
            kernel.log(),
            [
                format!("fcntl_getfl({})", raw(&fd)),
                format!("fstat({})", raw(&fd)),
                subsystem
            ],
            "{name}: the syscalls of from_fd"
        );
    }
    let target = std::fs::read_link(format!(
        "/sys/dev/char/{}:{}/subsystem",
        device.major, device.minor
    ))
    .expect("readlink subsystem");
    report("core subsystem link", target.display());
}

#[test]
fn size_and_alignment_are_the_namespaces() {
    let Some(device) = RealDevdax::from_env("size_and_alignment_are_the_namespaces") else {
        return;
    };
    let fd = must_open(&device.path, libc::O_RDWR);
    let source = Source::from_fd(raw(&fd)).expect("from_fd");
    assert_eq!(source.size(), Ok(device.size), "size");
    assert_eq!(source.size(), source.size_with(&Linux));
    assert_eq!(
        source.size().map(|s| s.to_string()),
        Ok(device.attribute("size"))
    );
    let alignment = source.alignment().expect("alignment");
    assert_eq!(alignment as u64, device.alignment, "alignment");
    assert_eq!(alignment.to_string(), device.attribute("align"));
    report("core size", device.size);
    report("core alignment", alignment);
}

#[test]
fn numa_node_device_id_and_usc() {
    let Some(device) = RealDevdax::from_env("numa_node_device_id_and_usc") else {
        return;
    };
    let fd = must_open(&device.path, libc::O_RDONLY);
    let source = Source::from_fd(raw(&fd)).expect("from_fd");

    let node = source.numa_node();
    report("core numa_node", format!("{node:?}"));
    let own: i32 = device.attribute("numa_node").parse().expect("numa_node");
    assert_eq!(node, Ok(own), "the device's own numa_node attribute");

    report("core region DIMMs", format!("{:?}", device.dimms()));
    let needed = source.device_id(None);
    let mut id = vec![0xa5u8; 256];
    let written = source.device_id(Some(&mut id));
    let text = written.map(|len| String::from_utf8_lossy(&id[..len - 1]).into_owned());
    report("core device_id", format!("{text:?}"));
    match device.dimm_attributes("id") {
        Some(ids) => {
            let expected = ids.concat();
            assert_eq!(needed, Ok(expected.len() + 1), "device_id length");
            assert_eq!(text, Ok(expected), "device_id: the DIMMs' nfit/id");
            assert_eq!(id[needed.expect("checked") - 1], 0, "NUL-terminated");
        }
        None => {
            let nosupp = Error::NotSupported(Unsupported::NoDeviceId);
            assert_eq!(needed, Err(nosupp.clone()), "a DIMM without nfit/id");
            assert_eq!(text, Err(nosupp));
        }
    }

    let usc = source.device_usc();
    report("core device_usc", format!("{usc:?}"));
    match device.dimm_attributes("dirty_shutdown") {
        Some(counts) => {
            let sum = counts
                .iter()
                .map(|c| c.parse::<u64>().expect("dirty_shutdown is a number"))
                .sum();
            assert_eq!(usc, Ok(sum), "the DIMMs' nfit/dirty_shutdown");
        }
        None => {
            let err = usc.expect_err("a DIMM without nfit/dirty_shutdown");
            assert_eq!(err, Error::NotSupported(Unsupported::NoUsc));
            assert_eq!(err.code(), codes::PMEM2_E_NOSUPP);
        }
    }
}

#[test]
fn mcsafe_io_without_a_safe_copy_is_not_supported() {
    let Some(device) = RealDevdax::from_env("mcsafe_io_without_a_safe_copy_is_not_supported")
    else {
        return;
    };
    let fd = must_open(&device.path, libc::O_RDWR);
    let source = Source::from_fd(raw(&fd)).expect("from_fd");
    let mut buf = [0x5au8; 64];
    let err = source
        .pread_mcsafe(&mut buf, 4096)
        .expect_err("the bare Linux backend has no SIGBUS-safe copy");
    assert_eq!(err, Error::NotSupported(Unsupported::MachineCheckSafeCopy));
    assert_eq!(err.code(), codes::PMEM2_E_NOSUPP);
    assert_eq!(buf, [0x5a; 64], "the buffer is untouched");
    let err = source.pwrite_mcsafe(&buf, 4096).expect_err("no safe copy");
    assert_eq!(err, Error::NotSupported(Unsupported::MachineCheckSafeCopy));

    // The range is checked first, against the device's size.
    let err = source
        .pread_mcsafe(&mut buf, device.size - 32)
        .expect_err("past the end");
    assert_eq!(
        err,
        Error::OutOfRange {
            direction: IoDirection::Read,
            len: 64,
            offset: device.size - 32,
            source_size: device.size
        }
    );
    assert_eq!(err.code(), codes::PMEM2_E_LENGTH_OUT_OF_RANGE);
}
