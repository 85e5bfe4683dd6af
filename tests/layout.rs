//! The bytes of a `Source` are libpmem2 1.12.1's `struct pmem2_source` (SPEC §8): type at 0,
//! file type at 8, fd or size at 16, `st_rdev` at 24, `st_dev` at 32; ours: `st_ino` at 40,
//! `st_ctime` at 48 (seconds) and 56 (nanoseconds), and 4 bytes of zero padding at 60.

#![cfg(not(windows))] // Linux only: scripts/wine-tests.sh has the Windows tests.

mod common;

use std::mem::size_of;

use common::{TempDir, libc_fstat, must_open, raw};
use pmem2_source::Source;

/// `enum pmem2_source_type` and `enum pmem2_file_type` values.
const PMEM2_SOURCE_ANON: u32 = 1;
const PMEM2_SOURCE_FD: u32 = 2;
const PMEM2_FTYPE_REG: u32 = 1;

/// libpmem2's 40 bytes and ours.
const SIZE: usize = 64;

fn bytes_of(source: &Source) -> [u8; SIZE] {
    assert_eq!(size_of::<Source>(), SIZE);
    // SAFETY: `source` is a live, aligned Source of size_of::<Source>() bytes, borrowed for
    // the whole read. Source is repr(C) with explicit padding fields (kind_padding,
    // file_type_padding, and the 8-byte fd/size union), so all bytes are initialised.
    let bytes = unsafe {
        std::slice::from_raw_parts(source as *const Source as *const u8, size_of::<Source>())
    };
    bytes.try_into().expect("the whole source")
}

fn u32_at(bytes: &[u8; SIZE], offset: usize) -> u32 {
    u32::from_ne_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"))
}

fn i32_at(bytes: &[u8; SIZE], offset: usize) -> i32 {
    i32::from_ne_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8; SIZE], offset: usize) -> u64 {
    u64::from_ne_bytes(bytes[offset..offset + 8].try_into().expect("8 bytes"))
}

#[test]
fn fd_source_has_libpmem2_layout() {
    let dir = TempDir::new("layout");
    let fd = must_open(&dir.file("data", b"layout"), libc::O_RDWR);
    let source = Source::from_fd(raw(&fd)).expect("regular file");
    let st = libc_fstat(raw(&fd));
    let bytes = bytes_of(&source);

    assert_eq!(u32_at(&bytes, 0), PMEM2_SOURCE_FD, "type");
    assert_eq!(u32_at(&bytes, 4), 0, "padding after type");
    assert_eq!(u32_at(&bytes, 8), PMEM2_FTYPE_REG, "ftype");
    assert_eq!(u32_at(&bytes, 12), 0, "padding after ftype");
    assert_eq!(i32_at(&bytes, 16), raw(&fd), "fd");
    assert_eq!(u32_at(&bytes, 20), 0, "rest of the fd/size union");
    assert_eq!(u64_at(&bytes, 24), st.st_rdev, "st_rdev");
    assert_eq!(u64_at(&bytes, 32), st.st_dev, "st_dev");
    assert_eq!(
        u64_at(&bytes, 40),
        st.st_ino,
        "st_ino (ours, after libpmem2's 40 bytes)"
    );
    assert_eq!(
        u64_at(&bytes, 48) as i64,
        st.st_ctime,
        "st_ctime seconds (ours)"
    );
    assert_eq!(
        i64::from(u32_at(&bytes, 56)),
        st.st_ctime_nsec,
        "st_ctime nanoseconds (ours)"
    );
    assert_eq!(u32_at(&bytes, 60), 0, "padding at the end");
}

#[test]
fn anon_source_has_libpmem2_layout() {
    let source = Source::anon(12345);
    let bytes = bytes_of(&source);
    assert_eq!(u32_at(&bytes, 0), PMEM2_SOURCE_ANON, "type");
    assert_eq!(u32_at(&bytes, 8), 0, "no file type");
    assert_eq!(u64_at(&bytes, 16), 12345, "size");
    let mut zeroed = bytes;
    zeroed[0..4].fill(0);
    zeroed[16..24].fill(0);
    assert_eq!(zeroed, [0u8; SIZE], "everything else is zero");

    let huge = bytes_of(&Source::anon(usize::MAX));
    assert_eq!(u64_at(&huge, 16), u64::MAX);
}
