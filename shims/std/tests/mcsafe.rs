//! `StdSyscalls`' machine-check-safe copies, alone and under the core's Device DAX I/O.
//!
//! No real Device DAX exists here, so a truncated regular file stands in for a bad block: a
//! shared mapping of it raises `SIGBUS` past the end of the file, as a poisoned page of a
//! Device DAX does. For the end-to-end tests, [`FakeDax`] answers the questions that make a
//! source a Device DAX (`fstat`, sysfs) from a scripted kernel and does the mapping and the
//! copies for real with `StdSyscalls`.
//!
//! The tests share the process-wide `SIGBUS` disposition, so they run one at a time.

#![cfg(not(windows))] // Linux only: scripts/wine-tests.sh has the Windows tests.

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use pmem2_source::sys::scripted::ScriptedKernel;
use pmem2_source::sys::{FileStat, MappingCopyError, Syscalls};
use pmem2_source::{Errno, codes};
use pmem2_source_std::StdSyscalls;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

const PAGE: usize = 4096;

/// A new, already unlinked, read-write file of `len` bytes of a known pattern.
fn scratch_file(len: usize) -> File {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "pmem2-source-std-mcsafe-it-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .expect("create");
    std::fs::remove_file(&path).expect("unlink");
    let contents: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    file.write_all_at(&contents, 0).expect("fill");
    file
}

/// The `SIGBUS` disposition now: (handler, flags).
fn disposition() -> (usize, i32) {
    // SAFETY: all zeroes is a valid `sigaction` (SIG_DFL, no flags, empty mask).
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: only reads the disposition.
    let ret = unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut action) };
    assert_eq!(ret, 0);
    (action.sa_sigaction, action.sa_flags)
}

/// A mapping of `len` bytes of `file` from StdSyscalls, unmapped on drop.
struct Mapping {
    addr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(file: &File, len: usize, writable: bool) -> Mapping {
        let addr = StdSyscalls
            .map_shared(file.as_raw_fd(), 0, len, writable)
            .expect("map_shared");
        Mapping { addr, len }
    }

    fn at(&self, offset: usize) -> NonNull<u8> {
        assert!(offset < self.len);
        // SAFETY: `offset` is inside the mapping (checked above).
        unsafe { self.addr.add(offset) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping from `new`, which nothing uses any more.
        unsafe { StdSyscalls.unmap(self.addr, self.len) }.expect("unmap");
    }
}

#[test]
fn copies_through_a_real_mapping() {
    let _serial = serial();
    let before = disposition();
    let file = scratch_file(2 * PAGE);
    let mapping = Mapping::new(&file, 2 * PAGE, true);

    let mut buf = vec![0u8; 300];
    // SAFETY: 300 bytes from 4000 are inside the two-page mapping.
    let read = unsafe { StdSyscalls.copy_from_mapping(&mut buf, mapping.at(4000)) };
    assert_eq!(read, Ok(()));
    let expected: Vec<u8> = (4000..4300).map(|i| (i % 251) as u8).collect();
    assert_eq!(buf, expected);

    let data: Vec<u8> = (0..300).map(|i| (i * 3) as u8).collect();
    // SAFETY: as above, and the mapping is writable.
    let written = unsafe { StdSyscalls.copy_to_mapping(mapping.at(4000), &data) };
    assert_eq!(written, Ok(()));
    let mut back = vec![0u8; 300];
    file.read_exact_at(&mut back, 4000).expect("pread");
    assert_eq!(back, data);
    assert_eq!(disposition(), before);
}

#[test]
fn a_sigbus_is_a_machine_check_error() {
    let _serial = serial();
    let before = disposition();
    let file = scratch_file(2 * PAGE);
    let mapping = Mapping::new(&file, 2 * PAGE, true);
    file.set_len(PAGE as u64).expect("truncate");

    let mut buf = vec![0u8; 100];
    // SAFETY: inside the mapping (past the end of the file: SIGBUS).
    let read = unsafe { StdSyscalls.copy_from_mapping(&mut buf, mapping.at(PAGE + 8)) };
    assert_eq!(read, Err(MappingCopyError::MachineCheck));
    // SAFETY: as above; the mapping is writable.
    let written = unsafe { StdSyscalls.copy_to_mapping(mapping.at(PAGE + 8), &buf) };
    assert_eq!(written, Err(MappingCopyError::MachineCheck));

    // Running from the file into the truncated page: an error, and the part in the file done.
    let mut buf = vec![0u8; 200];
    // SAFETY: inside the mapping.
    let read = unsafe { StdSyscalls.copy_from_mapping(&mut buf, mapping.at(PAGE - 50)) };
    assert_eq!(read, Err(MappingCopyError::MachineCheck));
    let expected: Vec<u8> = (PAGE - 50..PAGE).map(|i| (i % 251) as u8).collect();
    assert_eq!(&buf[..50], &expected[..]);
    let data = vec![0xeeu8; 200];
    // SAFETY: inside the mapping, which is writable.
    let written = unsafe { StdSyscalls.copy_to_mapping(mapping.at(PAGE - 50), &data) };
    assert_eq!(written, Err(MappingCopyError::MachineCheck));
    let mut back = vec![0u8; 50];
    file.read_exact_at(&mut back, (PAGE - 50) as u64)
        .expect("pread");
    assert_eq!(back, vec![0xee; 50]);

    assert_eq!(disposition(), before, "no handler left behind");
}

/// A Device DAX as far as the core can tell — `fstat`, the `subsystem` link and sysfs come
/// from a scripted kernel (a 2-page device aligned to pages) — whose mappings and copies are
/// real: `map_shared` maps the descriptor it is given, a regular file.
struct FakeDax {
    kernel: ScriptedKernel,
}

const RDEV: u64 = 0xfc01; // 252:1

impl FakeDax {
    fn new() -> FakeDax {
        let kernel = ScriptedKernel::char_device(RDEV)
            .with_file("/sys/dev/char/252:1/size", b"8192\n")
            .with_file("/sys/dev/char/252:1/align", b"4096\n");
        FakeDax { kernel }
    }
}

impl Syscalls for FakeDax {
    fn fcntl_getfl(&self, fd: i32) -> Result<u32, Errno> {
        self.kernel.fcntl_getfl(fd)
    }

    fn fstat(&self, fd: i32) -> Result<FileStat, Errno> {
        self.kernel.fstat(fd)
    }

    fn readlink(&self, path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
        self.kernel.readlink(path, buf)
    }

    fn open_read_only(&self, path: &CStr) -> Result<i32, Errno> {
        self.kernel.open_read_only(path)
    }

    fn read(&self, fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
        self.kernel.read(fd, buf)
    }

    fn close(&self, fd: i32) -> Result<(), Errno> {
        self.kernel.close(fd)
    }

    fn page_size(&self) -> Result<usize, Errno> {
        self.kernel.page_size()
    }

    fn map_shared(
        &self,
        fd: i32,
        offset: u64,
        len: usize,
        writable: bool,
    ) -> Result<NonNull<u8>, Errno> {
        StdSyscalls.map_shared(fd, offset, len, writable)
    }

    unsafe fn unmap(&self, addr: NonNull<u8>, len: usize) -> Result<(), Errno> {
        // SAFETY: the caller's guarantee, passed on.
        unsafe { StdSyscalls.unmap(addr, len) }
    }

    unsafe fn copy_from_mapping(
        &self,
        dst: &mut [u8],
        src: NonNull<u8>,
    ) -> Result<(), MappingCopyError> {
        // SAFETY: the caller's guarantee, passed on.
        unsafe { StdSyscalls.copy_from_mapping(dst, src) }
    }

    unsafe fn copy_to_mapping(&self, dst: NonNull<u8>, src: &[u8]) -> Result<(), MappingCopyError> {
        // SAFETY: the caller's guarantee, passed on.
        unsafe { StdSyscalls.copy_to_mapping(dst, src) }
    }
}

#[test]
fn device_dax_round_trip_through_the_core() {
    let _serial = serial();
    let before = disposition();
    let dax = FakeDax::new();
    let file = scratch_file(2 * PAGE);
    let source = pmem2_source::Source::from_fd_with(&dax, file.as_raw_fd()).expect("devdax");
    assert_eq!(source.size_with(&dax), Ok(8192));
    assert_eq!(source.alignment_with(&dax), Ok(4096));

    for (offset, len) in [
        (0usize, 1usize),
        (4000, 300),
        (4095, 2),
        (7, 8185),
        (8191, 1),
    ] {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + offset) as u8).collect();
        source
            .pwrite_mcsafe_with(&dax, &data, offset as u64)
            .expect("pwrite_mcsafe");
        let mut back = vec![0u8; len];
        source
            .pread_mcsafe_with(&dax, &mut back, offset as u64)
            .expect("pread_mcsafe");
        assert_eq!(back, data, "{offset}+{len}");
        let mut in_file = vec![0u8; len];
        file.read_exact_at(&mut in_file, offset as u64)
            .expect("pread");
        assert_eq!(in_file, data, "{offset}+{len} reached the file");
    }
    let mut nothing = [0u8; 0];
    assert_eq!(source.pread_mcsafe_with(&dax, &mut nothing, 8192), Ok(()));
    let err = source
        .pread_mcsafe_with(&dax, &mut [0u8; 2], 8191)
        .expect_err("past the end");
    assert_eq!(err.code(), codes::PMEM2_E_LENGTH_OUT_OF_RANGE);
    assert_eq!(disposition(), before);
}

#[test]
fn a_bad_block_is_pmem2_e_io_fail() {
    let _serial = serial();
    let before = disposition();
    let dax = FakeDax::new();
    let file = scratch_file(2 * PAGE);
    let source = pmem2_source::Source::from_fd_with(&dax, file.as_raw_fd()).expect("devdax");
    // The second page of the "device" becomes a bad block.
    file.set_len(PAGE as u64).expect("truncate");

    for (offset, len) in [(PAGE + 10, 100), (PAGE - 50, 100), (0, 2 * PAGE)] {
        let mut buf = vec![0u8; len];
        let err = source
            .pread_mcsafe_with(&dax, &mut buf, offset as u64)
            .expect_err("bad block");
        assert_eq!(err.code(), codes::PMEM2_E_IO_FAIL, "read {offset}+{len}");
        assert_eq!(
            err.to_string(),
            "physical I/O error occurred, possible bad block"
        );
        let err = source
            .pwrite_mcsafe_with(&dax, &buf, offset as u64)
            .expect_err("bad block");
        assert_eq!(err.code(), codes::PMEM2_E_IO_FAIL, "write {offset}+{len}");
        assert_eq!(
            err.to_string(),
            "physical I/O error occurred, possible bad block"
        );
    }
    // The good page still works.
    let mut buf = vec![0u8; 64];
    assert_eq!(source.pread_mcsafe_with(&dax, &mut buf, 100), Ok(()));
    assert_eq!(disposition(), before, "no handler left behind");
}

#[test]
fn regular_files_still_use_pread() {
    let _serial = serial();
    let file = scratch_file(100);
    let source = pmem2_source_std::Source::try_from(&file).expect("regular");
    let mut buf = [0u8; 10];
    source.pread_mcsafe(&mut buf, 90).expect("pread_mcsafe");
    let expected: Vec<u8> = (90..100).map(|i| (i % 251) as u8).collect();
    assert_eq!(&buf[..], &expected[..]);
}
