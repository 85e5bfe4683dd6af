//! `Source::from_fd` against the real kernel: every kind of descriptor Linux hands out, each
//! case checking the exact code and message, or for a success the file type, `fd()` and the
//! device/inode numbers `libc::fstat` reports (SPEC §2–§4).
//!
//! The tests run in parallel threads of one process, so no case relies on which descriptor
//! number the kernel hands out next.

#![cfg(not(windows))] // Linux only: scripts/wine-tests.sh has the Windows tests.

mod common;

use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

use common::messages::{
    ANON_INODE, BLOCK, CLOSED, DIRECTORY, FIFO, NO_ACCESS_MODE, PATH_ONLY, SOCKET, WRITE_ONLY,
    negative_fd_message, not_dax_message,
};
use common::{
    DriverlessDevice, MEM_DEVICES, TempDir, c_path, file_type_bits, in_ci, is_open, is_root,
    libc_fstat, loop_device, make_fifo, manifest_file, memfd, must_open, nofile_soft_limit, open,
    open_pty, owned, pipe, raw, skip, socket_pair, surely_closed_fd,
};
use pmem2_source::codes::{
    PMEM2_E_FILE_DESCRIPTOR_NOT_SET, PMEM2_E_INVALID_FILE_HANDLE, PMEM2_E_INVALID_FILE_TYPE,
};
use pmem2_source::sys::{FileStat, Linux, Syscalls};
use pmem2_source::sysfs::SysfsText;
use pmem2_source::{
    CountingAlloc, DeviceNumber, Errno, Error, FailingAlloc, FileType, Global, Source, SourceBox,
    SourceKind, StaticPool,
};

/// `from_fd` must fail with exactly `expected`, whose code and message are given too so the
/// test states the public values, not only the variant.
fn assert_fails(case: &str, fd: RawFd, expected: Error, code: i32, message: &str) {
    let was_open = fd >= 0 && is_open(fd);
    let err = match Source::from_fd(fd) {
        Ok(source) => panic!("{case}: expected {message:?}, got {source:?}"),
        Err(err) => err,
    };
    assert_eq!(err, expected, "{case}");
    assert_eq!(err.code(), code, "{case}: code of {err:?}");
    assert_eq!(err.to_string(), message, "{case}: message of {err:?}");
    // Bad descriptors stay closed and open ones open: from_fd never closes anything.
    assert_eq!(fd >= 0 && is_open(fd), was_open, "{case}: fd state changed");
}

/// `from_fd` must succeed with `file_type` and record what `libc::fstat` reports.
fn assert_source(case: &str, fd: RawFd, file_type: FileType) -> Source {
    let source = Source::from_fd(fd).unwrap_or_else(|err| panic!("{case}: {err} ({err:?})"));
    let st = libc_fstat(fd);
    assert_eq!(source.kind(), SourceKind::Fd, "{case}");
    assert_eq!(source.file_type(), Some(file_type), "{case}");
    assert_eq!(source.fd(), Ok(fd), "{case}");
    assert_eq!(
        source.dev(),
        Some(DeviceNumber::from_raw(st.st_dev)),
        "{case}"
    );
    assert_eq!(source.ino(), Some(st.st_ino), "{case}");
    assert_eq!(
        source.rdev(),
        Some(DeviceNumber::from_raw(st.st_rdev)),
        "{case}"
    );
    assert_eq!(source.anon_size(), None, "{case}");
    assert!(is_open(fd), "{case}: the source closed its fd");
    source
}

fn not_dax(major: u32, minor: u32, subsystem: &str) -> Error {
    Error::NotDeviceDax {
        device: DeviceNumber::from_raw(libc::makedev(major, minor)),
        subsystem: SysfsText::new(subsystem.as_bytes()),
    }
}

fn unsupported(bits: u32) -> Error {
    Error::UnsupportedFileType {
        file_type_bits: bits,
    }
}

fn closed(errno: Errno) -> Error {
    Error::Fcntl { errno }
}

// ---------------------------------------------------------------------------------------
// Regular files and access modes
// ---------------------------------------------------------------------------------------

#[test]
fn regular_file_readable_modes_are_accepted() {
    let dir = TempDir::new("modes");
    let path = dir.file("data", b"hello");
    for (case, flags) in [
        ("O_RDWR", libc::O_RDWR),
        ("O_RDONLY", libc::O_RDONLY),
        ("O_RDWR|O_APPEND", libc::O_RDWR | libc::O_APPEND),
        ("O_RDONLY|O_NONBLOCK", libc::O_RDONLY | libc::O_NONBLOCK),
        ("O_RDWR|O_SYNC", libc::O_RDWR | libc::O_SYNC),
    ] {
        let fd = must_open(&path, flags);
        assert_source(case, raw(&fd), FileType::Regular);
    }
}

#[test]
fn regular_file_write_only_is_rejected() {
    let dir = TempDir::new("wronly");
    let path = dir.file("data", b"hello");
    for (case, flags) in [
        ("O_WRONLY", libc::O_WRONLY),
        ("O_WRONLY|O_APPEND", libc::O_WRONLY | libc::O_APPEND),
    ] {
        let fd = must_open(&path, flags);
        assert_fails(
            case,
            raw(&fd),
            Error::WriteOnly,
            PMEM2_E_INVALID_FILE_HANDLE,
            WRITE_ONLY,
        );
    }
}

#[test]
fn regular_file_o_path_is_rejected() {
    // (ours) libpmem2 accepts an O_PATH descriptor and fails later, at map or pread time.
    let dir = TempDir::new("opath");
    let path = dir.file("data", b"hello");
    let fd = must_open(&path, libc::O_PATH);
    assert_fails(
        "O_PATH regular file",
        raw(&fd),
        Error::PathOnly,
        PMEM2_E_INVALID_FILE_HANDLE,
        PATH_ONLY,
    );
}

#[test]
fn access_mode_three_is_rejected() {
    // Linux's open(2) accepts access mode 3 (it checks read and write permission and grants
    // neither); F_GETFL reports the 3. (ours) libpmem2 would accept it.
    let dir = TempDir::new("mode3");
    let path = dir.file("data", b"hello");
    let fd = must_open(&path, libc::O_ACCMODE);
    assert_fails(
        "access mode 3 regular file",
        raw(&fd),
        Error::NoAccessMode,
        PMEM2_E_INVALID_FILE_HANDLE,
        NO_ACCESS_MODE,
    );
    let null = must_open(Path::new("/dev/null"), libc::O_ACCMODE);
    assert_fails(
        "access mode 3 /dev/null",
        raw(&null),
        Error::NoAccessMode,
        PMEM2_E_INVALID_FILE_HANDLE,
        NO_ACCESS_MODE,
    );
}

#[test]
fn unlinked_file_and_dup_are_regular() {
    let dir = TempDir::new("unlinked");
    let path = dir.file("data", b"hello");
    let fd = must_open(&path, libc::O_RDWR);
    std::fs::remove_file(&path).expect("unlink");
    assert_eq!(libc_fstat(raw(&fd)).st_nlink, 0);
    let original = assert_source("unlinked file", raw(&fd), FileType::Regular);

    let dup = fd.try_clone().expect("dup");
    assert_ne!(raw(&dup), raw(&fd));
    let copy = assert_source("dup of the unlinked file", raw(&dup), FileType::Regular);
    assert_eq!(
        copy.fd(),
        Ok(raw(&dup)),
        "the dup's own number, not the original's"
    );
    assert_eq!((copy.dev(), copy.ino()), (original.dev(), original.ino()));
}

#[test]
fn memfd_is_regular() {
    let fd = memfd();
    assert_eq!(file_type_bits(raw(&fd)), libc::S_IFREG);
    assert_source("memfd", raw(&fd), FileType::Regular);
}

#[test]
fn procfs_file_is_regular() {
    let fd = must_open(Path::new("/proc/self/status"), libc::O_RDONLY);
    let st = libc_fstat(raw(&fd));
    assert_eq!(st.st_size, 0, "procfs files report size 0");
    assert_source("/proc/self/status", raw(&fd), FileType::Regular);
}

// ---------------------------------------------------------------------------------------
// Numbers that are not open descriptors
// ---------------------------------------------------------------------------------------

#[test]
fn negative_numbers() {
    for fd in [-1, -2, i32::MIN] {
        assert_fails(
            &format!("fd {fd}"),
            fd,
            Error::NegativeFd { fd },
            PMEM2_E_INVALID_FILE_HANDLE,
            &negative_fd_message(fd),
        );
    }
}

#[test]
fn closed_descriptor() {
    // How the number is made safe against the parallel test threads: see surely_closed_fd.
    let number = surely_closed_fd();
    assert_fails(
        "closed fd",
        number,
        closed(Errno::EBADF),
        PMEM2_E_INVALID_FILE_HANDLE,
        CLOSED,
    );
}

#[test]
fn numbers_beyond_the_table() {
    let limit = nofile_soft_limit();
    let mut numbers = vec![1_000_000, i32::MAX];
    // The first number the process may not open at all (fs.nr_open caps it at 2^20 here).
    if let Ok(at_limit) = i32::try_from(limit) {
        numbers.push(at_limit);
    }
    for fd in numbers {
        assert!(!is_open(fd), "{fd} must not be open");
        assert_fails(
            &format!("fd {fd}"),
            fd,
            closed(Errno::EBADF),
            PMEM2_E_INVALID_FILE_HANDLE,
            CLOSED,
        );
    }
}

// ---------------------------------------------------------------------------------------
// Directories, FIFOs, pipes, sockets, anonymous inodes
// ---------------------------------------------------------------------------------------

#[test]
fn directory() {
    let dir = TempDir::new("dir");
    let fd = must_open(dir.path(), libc::O_RDONLY | libc::O_DIRECTORY);
    assert_eq!(file_type_bits(raw(&fd)), libc::S_IFDIR);
    assert_fails(
        "directory O_RDONLY",
        raw(&fd),
        Error::Directory,
        PMEM2_E_INVALID_FILE_TYPE,
        DIRECTORY,
    );
    let path_fd = must_open(dir.path(), libc::O_PATH | libc::O_DIRECTORY);
    // (ours) libpmem2 would go on to fstat and report the directory.
    assert_fails(
        "directory O_PATH",
        raw(&path_fd),
        Error::PathOnly,
        PMEM2_E_INVALID_FILE_HANDLE,
        PATH_ONLY,
    );
}

#[test]
fn fifo() {
    let dir = TempDir::new("fifo");
    let path = dir.join("fifo");
    make_fifo(&path);
    // O_NONBLOCK: an open of a FIFO would otherwise wait for the other end.
    for (case, flags) in [
        ("FIFO O_RDWR|O_NONBLOCK", libc::O_RDWR | libc::O_NONBLOCK),
        (
            "FIFO O_RDONLY|O_NONBLOCK",
            libc::O_RDONLY | libc::O_NONBLOCK,
        ),
    ] {
        let fd = must_open(&path, flags);
        assert_eq!(file_type_bits(raw(&fd)), libc::S_IFIFO);
        assert_fails(
            case,
            raw(&fd),
            unsupported(libc::S_IFIFO),
            PMEM2_E_INVALID_FILE_TYPE,
            FIFO,
        );
    }
}

#[test]
fn pipe_ends() {
    let (read_end, write_end) = pipe();
    assert_fails(
        "pipe read end",
        raw(&read_end),
        unsupported(libc::S_IFIFO),
        PMEM2_E_INVALID_FILE_TYPE,
        FIFO,
    );
    // The access mode is checked before the file type.
    assert_fails(
        "pipe write end",
        raw(&write_end),
        Error::WriteOnly,
        PMEM2_E_INVALID_FILE_HANDLE,
        WRITE_ONLY,
    );
}

#[test]
fn unix_socket() {
    for fd in socket_pair() {
        assert_fails(
            "socketpair end",
            raw(&fd),
            unsupported(libc::S_IFSOCK),
            PMEM2_E_INVALID_FILE_TYPE,
            SOCKET,
        );
    }
}

#[test]
fn anonymous_inodes() {
    let cases = common::anonymous_inodes();
    for (case, fd) in &cases {
        assert_eq!(file_type_bits(raw(fd)), 0, "{case} has no file type bits");
        assert_fails(
            case,
            raw(fd),
            unsupported(0),
            PMEM2_E_INVALID_FILE_TYPE,
            ANON_INODE,
        );
    }
}

#[test]
fn pidfd_follows_its_file_type() {
    let pid = libc::c_long::from(std::process::id());
    // SAFETY: pidfd_open takes two integers (our own pid, no flags), passed as the `long`s
    // syscall(2) reads.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_long) };
    let fd = match owned(fd as RawFd) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            return skip("pidfd", "pidfd_open is not available (Linux < 5.3)");
        }
        Err(e) => panic!("pidfd_open: {e}"),
    };
    // Since Linux 6.9 pidfds live in pidfs; on 6.18 the inode mode is 0700 with no file type
    // bits (like an anonymous inode), so the answer is "file type 00". Follow whatever this
    // kernel reports, with the exact message for that type.
    match file_type_bits(raw(&fd)) {
        libc::S_IFREG => {
            assert_source("pidfd (S_IFREG)", raw(&fd), FileType::Regular);
        }
        bits => assert_fails(
            "pidfd",
            raw(&fd),
            unsupported(bits),
            PMEM2_E_INVALID_FILE_TYPE,
            &format!("file type 0{bits:o} not supported"),
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Character and block devices
// ---------------------------------------------------------------------------------------

#[test]
fn dev_null_and_friends_are_not_device_dax() {
    for (path, flags, minor) in MEM_DEVICES {
        let fd = must_open(Path::new(path), flags);
        let rdev = libc_fstat(raw(&fd)).st_rdev;
        assert_eq!((libc::major(rdev), libc::minor(rdev)), (1, minor), "{path}");
        assert_fails(
            &format!("{path} {flags:#o}"),
            raw(&fd),
            not_dax(1, minor, "mem"),
            PMEM2_E_INVALID_FILE_TYPE,
            &not_dax_message(1, minor, "mem"),
        );
    }
    // The exact text the brief asks for, spelled out once.
    let null = must_open(Path::new("/dev/null"), libc::O_RDWR);
    assert_eq!(
        Source::from_fd(raw(&null)).map_err(|e| e.to_string()),
        Err("character device 1:3 is not Device DAX: its subsystem is \"mem\"".to_owned())
    );
}

#[test]
fn dev_null_write_only_fails_the_mode_check() {
    let fd = must_open(Path::new("/dev/null"), libc::O_WRONLY);
    assert_fails(
        "/dev/null O_WRONLY",
        raw(&fd),
        Error::WriteOnly,
        PMEM2_E_INVALID_FILE_HANDLE,
        WRITE_ONLY,
    );
    let fd = must_open(Path::new("/dev/null"), libc::O_PATH);
    assert_fails(
        "/dev/null O_PATH",
        raw(&fd),
        Error::PathOnly,
        PMEM2_E_INVALID_FILE_HANDLE,
        PATH_ONLY,
    );
}

#[test]
fn pty_slave_has_no_sysfs_entry() {
    // A real-kernel -ENOENT: an openable character device that has no /sys/dev/char entry
    // (devpts registers no device with sysfs).
    let pty = open_pty();
    let rdev = libc_fstat(raw(&pty.slave)).st_rdev;
    let (major, minor) = (libc::major(rdev), libc::minor(rdev));
    assert!(
        (136..=143).contains(&major),
        "{}: Unix98 pty slave major, got {major}",
        pty.slave_path.display()
    );
    let entry = format!("/sys/dev/char/{major}:{minor}");
    assert_eq!(
        std::fs::symlink_metadata(&entry)
            .map_err(|e| e.kind())
            .err(),
        Some(std::io::ErrorKind::NotFound),
        "{entry} must not exist"
    );
    assert_fails(
        "pty slave",
        raw(&pty.slave),
        Error::SysfsUnreadable {
            device: DeviceNumber::from_raw(rdev),
            errno: Errno::ENOENT,
        },
        -libc::ENOENT,
        &format!("readlink \"{entry}/subsystem\": No such file or directory"),
    );
    assert_eq!(
        Source::from_fd(raw(&pty.slave)).map_err(|e| e.name()),
        Err("ENOENT")
    );
}

#[test]
fn pty_master_is_a_tty_not_device_dax() {
    let pty = open_pty();
    let rdev = libc_fstat(raw(&pty.master)).st_rdev;
    assert_eq!((libc::major(rdev), libc::minor(rdev)), (5, 2), "/dev/ptmx");
    assert_fails(
        "pty master",
        raw(&pty.master),
        not_dax(5, 2, "tty"),
        PMEM2_E_INVALID_FILE_TYPE,
        &not_dax_message(5, 2, "tty"),
    );
}

#[test]
fn block_device() {
    if !is_root() {
        return skip("block device", "opening /dev/loopN needs root");
    }
    let path = loop_device().unwrap_or_else(|e| panic!("no block device to test with: {e}"));
    let fd = must_open(&path, libc::O_RDONLY);
    assert_eq!(
        file_type_bits(raw(&fd)),
        libc::S_IFBLK,
        "{}",
        path.display()
    );
    assert_fails(
        "loop device O_RDONLY",
        raw(&fd),
        unsupported(libc::S_IFBLK),
        PMEM2_E_INVALID_FILE_TYPE,
        BLOCK,
    );
    let fd = must_open(&path, libc::O_PATH);
    assert_eq!(file_type_bits(raw(&fd)), libc::S_IFBLK);
    // (ours) libpmem2 would go on and report "file type 060000 not supported".
    assert_fails(
        "loop device O_PATH",
        raw(&fd),
        Error::PathOnly,
        PMEM2_E_INVALID_FILE_HANDLE,
        PATH_ONLY,
    );
}

#[test]
fn symlink_itself_via_o_path() {
    let dir = TempDir::new("symlink");
    let target = dir.file("target", b"x");
    let link = dir.join("link");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let fd = must_open(&link, libc::O_PATH | libc::O_NOFOLLOW);
    assert_eq!(file_type_bits(raw(&fd)), libc::S_IFLNK, "the link itself");
    // (ours) O_PATH is rejected first; libpmem2 would say "file type 0120000 not supported".
    assert_fails(
        "symlink O_PATH|O_NOFOLLOW",
        raw(&fd),
        Error::PathOnly,
        PMEM2_E_INVALID_FILE_HANDLE,
        PATH_ONLY,
    );
    // Opened normally, the link is followed to the regular file.
    let fd = must_open(&link, libc::O_RDONLY);
    assert_source("through the symlink", raw(&fd), FileType::Regular);
}

/// Pretends every descriptor is readable (clears `O_PATH`), to follow the path libpmem2
/// takes with an O_PATH descriptor on the real kernel.
struct IgnoreOPath;

impl Syscalls for IgnoreOPath {
    fn fcntl_getfl(&self, fd: i32) -> Result<u32, Errno> {
        Linux
            .fcntl_getfl(fd)
            .map(|flags| flags & !(libc::O_PATH as u32))
    }

    fn fstat(&self, fd: i32) -> Result<FileStat, Errno> {
        Linux.fstat(fd)
    }

    fn readlink(&self, path: &std::ffi::CStr, buf: &mut [u8]) -> Result<usize, Errno> {
        Linux.readlink(path, buf)
    }
}

#[test]
fn character_device_without_a_driver() {
    let dir = TempDir::new("mknod");
    let device = match DriverlessDevice::make(&dir, "nodriver") {
        Ok(device) => device,
        Err(err) if err.raw_os_error() == Some(libc::EPERM) && !is_root() => {
            return skip("character device without a driver", "mknod needs root");
        }
        Err(err) => panic!("mknod: {err}"),
    };
    let (path, rdev) = (&device.path, device.rdev);
    let c = c_path(path);

    // Opening it for I/O asks the (missing) driver: ENXIO, or EACCES on a nodev mount.
    let mut vfs = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a live path and `vfs` a writable struct statvfs.
    let ret = unsafe { libc::statvfs(c.as_ptr(), vfs.as_mut_ptr()) };
    assert_eq!(ret, 0, "statvfs: {}", std::io::Error::last_os_error());
    // SAFETY: statvfs succeeded and filled in the struct.
    let nodev = unsafe { vfs.assume_init() }.f_flag & libc::ST_NODEV != 0;
    let expected_errno = if nodev { libc::EACCES } else { libc::ENXIO };
    assert_eq!(
        open(path, libc::O_RDWR)
            .map(drop)
            .map_err(|e| e.raw_os_error()),
        Err(Some(expected_errno)),
        "open {} O_RDWR",
        path.display()
    );

    // O_PATH does not involve the driver.
    let fd = must_open(path, libc::O_PATH);
    let st = libc_fstat(raw(&fd));
    assert_eq!(
        (st.st_mode & libc::S_IFMT, st.st_rdev),
        (libc::S_IFCHR, rdev)
    );
    // Ours: O_PATH is rejected before fstat. libpmem2 does not reject O_PATH; it goes on to
    // the Device-DAX check, finds no /sys/dev/char/<major>:0 and returns -ENOENT.
    assert_fails(
        "driverless char device O_PATH",
        raw(&fd),
        Error::PathOnly,
        PMEM2_E_INVALID_FILE_HANDLE,
        PATH_ONLY,
    );
    // libpmem2's path on this very descriptor, through a backend that hides O_PATH.
    let entry = device.sysfs_entry();
    assert!(std::fs::symlink_metadata(&entry).is_err(), "{entry} exists");
    let err = Source::from_fd_with(&IgnoreOPath, raw(&fd)).expect_err("no sysfs entry");
    assert_eq!(err.code(), -libc::ENOENT, "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("readlink \"{entry}/subsystem\": No such file or directory")
    );
}

// ---------------------------------------------------------------------------------------
// Ownership of the descriptor, get_fd, allocated sources
// ---------------------------------------------------------------------------------------

#[test]
fn a_source_never_closes_its_fd() {
    let file = std::fs::File::open(manifest_file()).expect("open Cargo.toml");
    let fd = file.as_raw_fd();
    {
        let source = Source::from_fd(fd).expect("regular file");
        assert_eq!(source.fd(), Ok(fd));
        let copy = source;
        assert_eq!(copy.fd(), Ok(fd));
    }
    assert!(is_open(fd), "dropping a Source must not close the fd");
    {
        let boxed = SourceBox::from_fd_in(&Linux, fd, Global).expect("regular file");
        assert_eq!(boxed.fd(), Ok(fd));
        let mut slot = Some(boxed);
        SourceBox::delete(&mut slot);
        SourceBox::delete(&mut slot);
        assert!(slot.is_none());
    }
    assert!(is_open(fd), "deleting a SourceBox must not close the fd");
    // The descriptor is still fully usable: read from it.
    let mut byte = [0u8; 1];
    // SAFETY: `byte` is writable for 1 byte, live for the call.
    let n = unsafe { libc::pread(fd, byte.as_mut_ptr().cast(), 1, 0) };
    assert_eq!((n, byte[0]), (1, b'['), "Cargo.toml starts with '['");
}

#[test]
fn anonymous_source_has_no_fd() {
    let anon = Source::anon(12345);
    assert_eq!(anon.kind(), SourceKind::Anonymous);
    let err = anon.fd().expect_err("anon has no fd");
    assert_eq!(err, Error::FileDescriptorNotSet);
    assert_eq!(err.code(), PMEM2_E_FILE_DESCRIPTOR_NOT_SET);
    assert_eq!(
        err.to_string(),
        "File descriptor is not set, source type does not support fd"
    );
}

#[test]
fn source_box_allocations_balance() {
    let dir = TempDir::new("box");
    let path = dir.file("data", b"hello");
    let file = must_open(&path, libc::O_RDWR);
    let directory = must_open(dir.path(), libc::O_RDONLY | libc::O_DIRECTORY);
    let null = must_open(Path::new("/dev/null"), libc::O_RDWR);

    let counting = CountingAlloc::new(Global);
    {
        let source = SourceBox::from_fd_in(&Linux, raw(&file), &counting).expect("regular");
        assert_eq!(source.fd(), Ok(raw(&file)));
        assert_eq!(source.file_type(), Some(FileType::Regular));
        assert_eq!(*source, Source::from_fd(raw(&file)).expect("regular"));
        assert_eq!((counting.allocations(), counting.live()), (1, 1));
        // Failures are decided before anything is allocated.
        for (fd, code) in [
            (raw(&directory), PMEM2_E_INVALID_FILE_TYPE),
            (raw(&null), PMEM2_E_INVALID_FILE_TYPE),
            (-1, PMEM2_E_INVALID_FILE_HANDLE),
        ] {
            let err = SourceBox::from_fd_in(&Linux, fd, &counting).expect_err("bad fd");
            assert_eq!(err.code(), code, "{err:?}");
        }
        assert_eq!((counting.allocations(), counting.failures()), (1, 0));
    }
    assert_eq!(
        (
            counting.allocations(),
            counting.deallocations(),
            counting.live()
        ),
        (1, 1, 0)
    );

    let slots = StaticPool::<2>::new();
    let pool = CountingAlloc::new(&slots);
    for _ in 0..5 {
        let a = SourceBox::from_fd_in(&Linux, raw(&file), &pool).expect("slot 1");
        let b = SourceBox::from_fd_in(&Linux, raw(&file), &pool).expect("slot 2");
        let err = SourceBox::from_fd_in(&Linux, raw(&file), &pool).expect_err("pool full");
        assert_eq!((err.code(), err), (-libc::ENOMEM, Error::NoMemory));
        assert_eq!(*a, *b);
    }
    assert_eq!(
        (pool.allocations(), pool.deallocations(), pool.failures()),
        (10, 10, 5)
    );
    assert_eq!(slots.in_use(), 0);
}

#[test]
fn failing_allocator_gives_enomem() {
    let dir = TempDir::new("failalloc");
    let path = dir.file("data", b"hello");
    let file = must_open(&path, libc::O_RDWR);
    let err = SourceBox::from_fd_in(&Linux, raw(&file), FailingAlloc).expect_err("no memory");
    assert_eq!(err, Error::NoMemory);
    assert_eq!(err.code(), -12);
    assert_eq!(err.name(), "ENOMEM");
    assert_eq!(
        err.to_string(),
        "cannot allocate a pmem2_source: out of memory"
    );
    // A bad descriptor is reported as such: classification comes before allocation.
    let counting = CountingAlloc::new(FailingAlloc);
    let wronly = must_open(&path, libc::O_WRONLY);
    let err = SourceBox::from_fd_in(&Linux, raw(&wronly), &counting).expect_err("O_WRONLY");
    assert_eq!(err, Error::WriteOnly);
    assert_eq!(counting.failures(), 0, "no allocation attempted");
    let err = SourceBox::from_fd_in(&Linux, raw(&file), &counting).expect_err("no memory");
    assert_eq!(err.code(), -libc::ENOMEM);
    assert_eq!((counting.allocations(), counting.failures()), (0, 1));
    assert!(is_open(raw(&file)));
}

#[test]
fn ci_runs_as_root() {
    // The suite is meant to run as root in CI; anything less would skip cases silently.
    if in_ci() {
        assert!(is_root(), "CI=true but not running as root");
    }
}
