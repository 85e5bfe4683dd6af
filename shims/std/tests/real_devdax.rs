//! The std shim on a real Device DAX (`PMEM2_DEVDAX`, see `tests/common/real_devdax.rs` in the
//! repository root): the queries, and `pread_mcsafe`/`pwrite_mcsafe` through the SIGBUS-safe
//! copy of `src/mcsafe.rs` over real mappings of the device — small, across an alignment
//! boundary, and spanning several aligned blocks — each checked against an independent
//! `mmap` of the device.
//!
//! Writes stay in this test's own 8 MiB of the device (`regions::STD_MIB`). The tests share
//! the process-wide `SIGBUS` disposition, so they run one at a time.
//!
//! Skipped, with the reason on stderr, where `PMEM2_DEVDAX` is not set: CI runs this inside
//! the guest of `tests/devdax-vm/run.sh`.

#![cfg(not(windows))] // Linux only: scripts/wine-tests.sh has the Windows tests.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::sync::{Mutex, MutexGuard, PoisonError};

use common::real_devdax::{RealDevdax, pattern, read_through_mmap, regions, report};
use pmem2_source_std::{Error, FileType, Source, codes};

const MIB: u64 = 1 << 20;
const REGION_START: u64 = regions::STD_MIB * MIB;
const REGION_END: u64 = (regions::STD_MIB + regions::LEN_MIB) * MIB;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn open_rw(device: &RealDevdax) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(&device.path)
        .unwrap_or_else(|e| panic!("open {}: {e}", device.path.display()))
}

/// The `SIGBUS` disposition now: (handler, flags).
fn sigbus_disposition() -> (usize, i32) {
    // SAFETY: all zeroes is a valid `sigaction` (SIG_DFL, no flags, empty mask).
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: only reads the disposition.
    let ret = unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut action) };
    assert_eq!(ret, 0, "sigaction: {}", io::Error::last_os_error());
    (action.sa_sigaction, action.sa_flags)
}

/// Writes `data` at `offset` with `pwrite_mcsafe`, reads it back with `pread_mcsafe` (whole
/// and in two pieces), and compares both with an independent mapping of the device.
fn round_trip(device: &RealDevdax, source: &Source<'_>, what: &str, offset: u64, data: &[u8]) {
    assert!(
        offset >= REGION_START && offset + data.len() as u64 <= REGION_END,
        "{what}: stays in this test's region"
    );
    source
        .pwrite_mcsafe(data, offset)
        .unwrap_or_else(|e| panic!("{what}: pwrite_mcsafe: {e}"));
    let mut back = vec![0u8; data.len()];
    source
        .pread_mcsafe(&mut back, offset)
        .unwrap_or_else(|e| panic!("{what}: pread_mcsafe: {e}"));
    assert!(back == data, "{what}: pread_mcsafe reads what was written");

    let half = data.len() / 2;
    let (first, second) = back.split_at_mut(half);
    first.fill(0);
    second.fill(0);
    source.pread_mcsafe(first, offset).expect("first half");
    source
        .pread_mcsafe(second, offset + half as u64)
        .expect("second half");
    assert!(back == data, "{what}: read in two pieces");

    let aligned = offset - offset % device.alignment;
    let head = (offset - aligned) as usize;
    let mapped = read_through_mmap(device, aligned, head + data.len());
    assert!(
        &mapped[head..] == data,
        "{what}: an independent mapping sees the bytes written"
    );
}

#[test]
fn queries_through_the_std_shim() {
    let Some(device) = RealDevdax::from_env("queries_through_the_std_shim") else {
        return;
    };
    let file = open_rw(&device);
    let source = Source::try_from(&file).expect("from_fd");
    assert_eq!(source.file_type(), Some(FileType::DeviceDax));
    assert_eq!(source.size().ok(), Some(device.size), "size");
    assert_eq!(
        source.alignment().ok().map(|a| a as u64),
        Some(device.alignment),
        "alignment"
    );
    assert_eq!(source.size(), Ok(source.as_core().size().expect("core")));
    assert_eq!(
        source.numa_node(),
        source.as_core().numa_node().map_err(Error::from)
    );
    report("std numa_node", format!("{:?}", source.numa_node()));
    report("std device_id", format!("{:?}", source.device_id()));
    report("std device_usc", format!("{:?}", source.device_usc()));
}

#[test]
fn mcsafe_round_trips_on_the_device() {
    let Some(device) = RealDevdax::from_env("mcsafe_round_trips_on_the_device") else {
        return;
    };
    let _serial = serial();
    let before = sigbus_disposition();
    let file = open_rw(&device);
    let source = Source::try_from(&file).expect("from_fd");
    let align = device.alignment;
    assert!(
        align <= 2 * MIB,
        "the region holds two aligned blocks (alignment {align})"
    );

    round_trip(
        &device,
        &source,
        "small, inside one aligned block",
        REGION_START + 100,
        &pattern(1, 300),
    );
    let boundary = REGION_START + align;
    round_trip(
        &device,
        &source,
        "across an alignment boundary",
        boundary - 1000,
        &pattern(2, 5000),
    );
    round_trip(
        &device,
        &source,
        "3 MiB + 123 bytes over several aligned blocks",
        REGION_START + 2 * align + 4096 + 7,
        &pattern(3, 3 * MIB as usize + 123),
    );
    round_trip(
        &device,
        &source,
        "one byte at the region's last byte",
        REGION_END - 1,
        &[0xc3],
    );

    // Zero bytes anywhere within the device, even at its end.
    source
        .pread_mcsafe(&mut [], device.size)
        .expect("0 bytes at the end");
    source.pwrite_mcsafe(&[], REGION_START).expect("0 bytes");

    assert_eq!(
        sigbus_disposition(),
        before,
        "no SIGBUS handler is left installed after the copies"
    );
    report("std mcsafe round trip", format!("ok (alignment {align})"));
}

#[test]
fn pread_mcsafe_reads_what_a_mapping_wrote() {
    let Some(device) = RealDevdax::from_env("pread_mcsafe_reads_what_a_mapping_wrote") else {
        return;
    };
    let _serial = serial();
    let file = open_rw(&device);
    let source = Source::try_from(&file).expect("from_fd");
    let offset = REGION_END - device.alignment;
    let len = usize::try_from(device.alignment).expect("alignment");
    let data = pattern(4, len);
    // SAFETY: a new shared writable mapping of the device; nothing else is at the address the
    // kernel picks.
    let address = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            i64::try_from(offset).expect("offset"),
        )
    };
    assert_ne!(address, libc::MAP_FAILED, "{}", io::Error::last_os_error());
    // SAFETY: the mapping is writable for `len` bytes and `data` is a distinct buffer.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), address.cast::<u8>(), len) };
    // SAFETY: the mapping made above, no longer used.
    assert_eq!(unsafe { libc::munmap(address, len) }, 0);

    let mut back = vec![0u8; len];
    source
        .pread_mcsafe(&mut back, offset)
        .expect("pread_mcsafe");
    assert!(back == data, "pread_mcsafe sees the mapping's writes");
}

#[test]
fn out_of_range_transfers_are_refused() {
    let Some(device) = RealDevdax::from_env("out_of_range_transfers_are_refused") else {
        return;
    };
    let _serial = serial();
    let file = open_rw(&device);
    let source = Source::try_from(&file).expect("from_fd");
    let mut buf = [0x77u8; 32];
    let err = source
        .pread_mcsafe(&mut buf, device.size - 16)
        .expect_err("past the end");
    assert_eq!(err.code(), codes::PMEM2_E_LENGTH_OUT_OF_RANGE);
    assert_eq!(buf, [0x77; 32], "untouched");
    let err = source
        .pwrite_mcsafe(&buf, device.size + 4096)
        .expect_err("beyond the end");
    assert_eq!(err.code(), codes::PMEM2_E_LENGTH_OUT_OF_RANGE);
    let io: io::Error = err.into();
    assert_eq!(
        Error::code_of(&io),
        Some(codes::PMEM2_E_LENGTH_OUT_OF_RANGE)
    );
}
