//! SPEC §8 in practice: one process loads our `libpmem2_source.so` and Debian's
//! `libpmem2.so.1` (both `dlopen(RTLD_NOW | RTLD_LOCAL)`, so neither's symbols interpose on
//! the other's), and sources made by *our* functions are mapped by *libpmem2's*
//! `pmem2_map_new`: a 16 MiB regular file, whose mapping writes reach the file, and a 4 MiB
//! anonymous source. libpmem2's own source accessors read our struct, and the first 40 bytes
//! of our source equal libpmem2's for the same descriptor.

#![cfg(not(windows))] // Linux only: scripts/wine-tests.sh has the Windows tests.

mod cprog;
mod libpmem2_map;
mod support;

use std::ffi::c_void;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt};

use cprog::Workdir;
use libpmem2_map::{
    MapApi, MustSucceed, PersistFn, libpmem2_size_and_alignment, with_libpmem2_mapping,
};
use support::{Library, REFERENCE_LIBRARY, SourceApi};

const MIB: usize = 1 << 20;

/// Both libraries, or `None` (skipped; a failure in CI) without Debian's libpmem2.
fn load(test: &str) -> Option<(Library, Library)> {
    let ours = Library::open(support::our_shared_library().to_str().expect("UTF-8 path"))
        .expect("dlopen our library");
    match Library::open(REFERENCE_LIBRARY) {
        Ok(libpmem2) => Some((ours, libpmem2)),
        Err(error) => {
            assert!(!support::in_ci(), "{test}: {error} (required when CI=true)");
            eprintln!("SKIPPED {test}: {error} (libpmem2 is required when CI=true)");
            None
        }
    }
}

/// The source functions of both libraries (kept open by the caller).
fn source_apis(ours: &Library, libpmem2: &Library) -> (SourceApi, SourceApi) {
    (
        SourceApi::load("ours", ours),
        SourceApi::load("libpmem2", libpmem2),
    )
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).expect("page size")
}

fn file_of(work: &Workdir, size: usize) -> File {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(work.join("file"))
        .expect("create the file");
    file.set_len(u64::try_from(size).expect("size")) // ftruncate
        .expect("ftruncate");
    file
}

#[test]
fn libpmem2_maps_our_regular_file_source() {
    let Some((ours_lib, libpmem2_lib)) = load("libpmem2_maps_our_regular_file_source") else {
        return;
    };
    let (ours, libpmem2) = source_apis(&ours_lib, &libpmem2_lib);
    let map_api = MapApi::load(&libpmem2_lib);
    let work = Workdir::new("mixed-file");
    let size = 16 * MIB;
    let file = file_of(&work, size);
    let src = ours.fd_source(file.as_raw_fd());

    assert_eq!(
        libpmem2_size_and_alignment(&map_api, src),
        (size, page_size()),
        "libpmem2's pmem2_source_size and pmem2_source_alignment on our source"
    );
    let head = b"written through libpmem2's mapping of our source";
    let tail_offset = size - 4096 + 17;
    let use_mapping = |bytes: &mut [u8], persist: PersistFn| {
        bytes[..head.len()].copy_from_slice(head);
        bytes[tail_offset..tail_offset + 4].copy_from_slice(b"tail");
        // SAFETY: both ranges lie inside the mapping persist belongs to.
        unsafe { persist(bytes.as_ptr().cast(), head.len()) };
        // SAFETY: as above.
        unsafe { persist(bytes[tail_offset..].as_ptr().cast(), 4) };

        let mut read = vec![0u8; head.len()];
        file.read_exact_at(&mut read, 0).expect("pread");
        assert_eq!(read, head, "the write through the mapping reached the file");
        let mut tail = [0u8; 4];
        file.read_exact_at(&mut tail, u64::try_from(tail_offset).expect("offset"))
            .expect("pread");
        assert_eq!(&tail, b"tail");

        // And the other way: a pwrite shows in the shared mapping.
        file.write_all_at(b"pwrite", 4096).expect("pwrite");
        assert_eq!(&bytes[4096..4102], b"pwrite");
    };
    // SAFETY: `src` is our live source of `size` bytes.
    unsafe { with_libpmem2_mapping(&libpmem2, &map_api, src, size, use_mapping) };
    // SAFETY: our live source, not used afterwards.
    unsafe { ours.delete_source(src) };
    // The descriptor is still ours to use.
    let mut read = [0u8; 6];
    file.read_exact_at(&mut read, 4096).expect("fd still open");
    assert_eq!(&read, b"pwrite");
}

#[test]
fn libpmem2_maps_our_anonymous_source() {
    let Some((ours_lib, libpmem2_lib)) = load("libpmem2_maps_our_anonymous_source") else {
        return;
    };
    let (ours, libpmem2) = source_apis(&ours_lib, &libpmem2_lib);
    let map_api = MapApi::load(&libpmem2_lib);
    let size = 4 * MIB;
    let src = ours.anon_source(size);
    assert_eq!(
        libpmem2_size_and_alignment(&map_api, src),
        (size, page_size())
    );
    let use_mapping = |bytes: &mut [u8], persist: PersistFn| {
        assert!(
            bytes.iter().all(|&b| b == 0),
            "anonymous memory starts zeroed"
        );
        for (i, byte) in bytes.iter_mut().enumerate().step_by(4096) {
            *byte = (i / 4096) as u8;
        }
        // SAFETY: the whole mapping.
        unsafe { persist(bytes.as_ptr().cast(), bytes.len()) };
        assert!(
            bytes
                .iter()
                .enumerate()
                .step_by(4096)
                .all(|(i, &b)| b == (i / 4096) as u8)
        );
    };
    // SAFETY: `src` is our live anonymous source of `size` bytes.
    unsafe { with_libpmem2_mapping(&libpmem2, &map_api, src, size, use_mapping) };
    // SAFETY: our live source, not used afterwards.
    unsafe { ours.delete_source(src) };
}

/// libpmem2's 40-byte `struct pmem2_source` fields, read from the start of a source.
#[derive(Debug, PartialEq, Eq)]
struct Layout {
    kind: u32,       // enum pmem2_source_type at 0
    file_type: u32,  // enum pmem2_file_type at 8 (FD sources)
    fd_or_size: u64, // int fd or size_t size at 16
    st_rdev: u64,    // at 24 (FD sources)
    st_dev: u64,     // at 32 (FD sources)
}

fn layout(src: *mut c_void, fd_source: bool) -> Layout {
    let src = src.cast_const();
    // Field by field: libpmem2 leaves the padding (and, for anonymous sources, the file
    // fields) uninitialized, so no slice over all 40 bytes.
    let u32_at = |offset: usize| {
        // SAFETY: both implementations allocate at least 40 bytes per source, aligned like
        // malloc's, and initialize the fields this test reads.
        unsafe { src.wrapping_byte_add(offset).cast::<u32>().read() }
    };
    let u64_at = |offset: usize| {
        // SAFETY: as above.
        unsafe { src.wrapping_byte_add(offset).cast::<u64>().read() }
    };
    if fd_source {
        Layout {
            kind: u32_at(0),
            file_type: u32_at(8),
            fd_or_size: u64::from(u32_at(16)),
            st_rdev: u64_at(24),
            st_dev: u64_at(32),
        }
    } else {
        Layout {
            kind: u32_at(0),
            file_type: 0,
            fd_or_size: u64_at(16),
            st_rdev: 0,
            st_dev: 0,
        }
    }
}

#[test]
fn our_first_40_bytes_are_libpmem2s() {
    let Some((ours_lib, libpmem2_lib)) = load("our_first_40_bytes_are_libpmem2s") else {
        return;
    };
    let (ours, libpmem2) = source_apis(&ours_lib, &libpmem2_lib);
    let work = Workdir::new("mixed-layout");
    let file = file_of(&work, 8192);
    let fd = file.as_raw_fd();
    let metadata = file.metadata().expect("fstat");

    let (our_src, their_src) = (ours.fd_source(fd), libpmem2.fd_source(fd));
    let expected = Layout {
        kind: 2,      // PMEM2_SOURCE_FD
        file_type: 1, // PMEM2_FTYPE_REG
        fd_or_size: u64::try_from(fd).expect("fd"),
        st_rdev: metadata.rdev(),
        st_dev: metadata.dev(),
    };
    assert_eq!(layout(their_src, true), expected, "libpmem2's fd source");
    assert_eq!(layout(our_src, true), expected, "our fd source");
    // SAFETY: each source goes back to the implementation that made it.
    unsafe { ours.delete_source(our_src) };
    // SAFETY: as above.
    unsafe { libpmem2.delete_source(their_src) };

    let size = 123_456_789;
    let (our_src, their_src) = (ours.anon_source(size), libpmem2.anon_source(size));
    let expected = Layout {
        kind: 1, // PMEM2_SOURCE_ANON
        file_type: 0,
        fd_or_size: u64::try_from(size).expect("size"),
        st_rdev: 0,
        st_dev: 0,
    };
    assert_eq!(
        layout(their_src, false),
        expected,
        "libpmem2's anonymous source"
    );
    assert_eq!(layout(our_src, false), expected, "our anonymous source");
    // SAFETY: as above.
    unsafe { ours.delete_source(our_src) };
    // SAFETY: as above.
    unsafe { libpmem2.delete_source(their_src) };
}
