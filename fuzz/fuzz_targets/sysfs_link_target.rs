//! Fuzz target `sysfs_link_target`: arbitrary bytes as the target of a character device's
//! `/sys/dev/char/M:m/subsystem` link (SPEC §3).
//!
//! Properties, checked against a reference model written here (it splits the bytes on `/`;
//! it does not call the crate's parsers):
//! - nothing panics, whatever the bytes;
//! - `last_component` is the last `/`-separated part once trailing empty and `.` parts
//!   (trailing `/` and `/.`) are dropped;
//! - `classify_link_target` says Device DAX exactly when that last component is `dax` and the
//!   bytes do not fill the buffer; a full buffer (possibly truncated) is never DAX, whatever
//!   it ends in; otherwise it names the last component;
//! - `Source::from_fd_with` over a character device whose link reads back these bytes gives
//!   the same decision, with the documented error code, after exactly fcntl, fstat and one
//!   readlink of the right path with the whole buffer.

#![no_main]

mod models;

use libfuzzer_sys::fuzz_target;
use pmem2_source::sys::scripted::{Call, ScriptedKernel};
use pmem2_source::sysfs::{
    LINK_TARGET_CAPACITY, SubsystemLink, SysfsText, classify_link_target, last_component,
};
use pmem2_source::{DeviceNumber, Error, FileType, Source, codes};

/// The model of the decision over `target` read into a buffer of `capacity` bytes.
fn model_classify(target: &[u8], capacity: usize) -> SubsystemLink<'_> {
    if target.len() >= capacity {
        SubsystemLink::PossiblyTruncated
    } else if models::last_component(target) == b"dax" {
        SubsystemLink::DeviceDax
    } else {
        SubsystemLink::Other(models::last_component(target))
    }
}

/// The device the character device stands for: 252:0 or a number taken from the input, so
/// the sysfs path is exercised too.
fn device_for(data: &[u8]) -> u64 {
    match data.first() {
        Some(&first) if first & 1 == 1 => {
            data.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, &byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
            })
        }
        _ => 0xfc00,
    }
}

/// glibc's `major()`/`minor()` as `sys/sysmacros.h` defines them.
fn subsystem_path(rdev: u64) -> String {
    let major = ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0x0000_0fff);
    let minor = ((rdev >> 12) & 0xffff_ff00) | (rdev & 0x0000_00ff);
    format!("/sys/dev/char/{major}:{minor}/subsystem")
}

fuzz_target!(|data: &[u8]| {
    assert_eq!(
        last_component(data),
        models::last_component(data),
        "last component of {:?}",
        data.escape_ascii().to_string()
    );

    for capacity in [
        LINK_TARGET_CAPACITY,
        data.len(),
        data.len() + 1,
        data.len().saturating_sub(1),
        0,
    ] {
        let got = classify_link_target(data, capacity);
        assert_eq!(
            got,
            model_classify(data, capacity),
            "{:?} in {capacity} bytes",
            data.escape_ascii().to_string()
        );
        if got == SubsystemLink::DeviceDax {
            assert!(data.len() < capacity && models::last_component(data) == b"dax");
        }
    }

    // The same bytes as the answer of the kernel's readlink, through from_fd. The kernel
    // copies what fits into the crate's buffer of LINK_TARGET_CAPACITY bytes.
    let rdev = device_for(data);
    let kernel = ScriptedKernel::char_device(rdev).with_readlink(Ok(data));
    let result = Source::from_fd_with(&kernel, 7);
    let device = DeviceNumber::from_raw(rdev);
    match model_classify(data, LINK_TARGET_CAPACITY) {
        SubsystemLink::DeviceDax => {
            let source = result.expect("a link ending in dax is Device DAX");
            assert_eq!(source.file_type(), Some(FileType::DeviceDax));
            assert_eq!(source.rdev(), Some(device));
            assert_eq!(source.fd(), Ok(7));
        }
        SubsystemLink::Other(name) => {
            let err = result.expect_err("not Device DAX");
            assert_eq!(err.code(), codes::PMEM2_E_INVALID_FILE_TYPE);
            assert_eq!(
                err,
                Error::NotDeviceDax {
                    device,
                    subsystem: SysfsText::new(name),
                }
            );
            assert!(!err.to_string().is_empty());
        }
        SubsystemLink::PossiblyTruncated => {
            let err = result.expect_err("a full buffer is never DAX");
            assert_eq!(err, Error::SysfsLinkTooLong { device });
            assert_eq!(err.code(), codes::PMEM2_E_INVALID_FILE_TYPE);
            assert!(!err.to_string().is_empty());
        }
    }
    let calls = kernel.calls();
    let expected_path = subsystem_path(rdev);
    match calls.as_slice() {
        [
            Call::FcntlGetfl { fd: 7 },
            Call::Fstat { fd: 7 },
            Call::Readlink { path, buffer_len },
        ] => {
            assert_eq!(path.as_str(), expected_path);
            assert_eq!(*buffer_len, LINK_TARGET_CAPACITY);
        }
        other => panic!("unexpected syscalls {other:?}"),
    }
    assert_eq!(kernel.open_descriptors(), 0);
});
