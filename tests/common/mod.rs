//! Helpers shared by the integration tests that run against the real kernel.
//!
//! Every test binary includes this module with `mod common;` and uses a different subset of
//! it, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod fake_sysfs;
pub mod real_devdax;

/// The core's messages, as the tests spell them out.
pub mod messages {
    pub const WRITE_ONLY: &str = "fd must be open with O_RDONLY or O_RDWR";
    pub const PATH_ONLY: &str =
        "fd must be open with O_RDONLY or O_RDWR; it was opened with O_PATH, which permits no I/O";
    pub const NO_ACCESS_MODE: &str = "fd must be open with O_RDONLY or O_RDWR; its access mode \
                                      is 3, which permits neither reading nor writing";
    pub const CLOSED: &str = "fcntl: Bad file descriptor";
    pub const DIRECTORY: &str = "cannot set fd to directory in pmem2_source_from_fd";
    pub const FIFO: &str = "file type 010000 not supported";
    pub const SOCKET: &str = "file type 0140000 not supported";
    pub const BLOCK: &str = "file type 060000 not supported";
    pub const ANON_INODE: &str = "file type 00 not supported";

    /// The message for a character device that is not Device DAX.
    pub fn not_dax_message(major: u32, minor: u32, subsystem: &str) -> String {
        format!(
            "character device {major}:{minor} is not Device DAX: its subsystem is \"{subsystem}\""
        )
    }

    /// The message for a negative descriptor number.
    pub fn negative_fd_message(fd: i32) -> String {
        format!("invalid file descriptor value {fd} (descriptors are never negative)")
    }
}

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, CString};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use pmem2_source::Errno;
use pmem2_source::sys::{FileStat, Linux, Syscalls, Timestamp};

/// The real kernel, with every call counted and logged (the counting wrapper of the brief:
/// it forwards each call to [`Linux`] unchanged).
#[derive(Debug, Default)]
pub struct CountingLinux {
    calls: Cell<usize>,
    log: RefCell<Vec<String>>,
}

impl CountingLinux {
    pub fn new() -> CountingLinux {
        CountingLinux::default()
    }

    /// How many syscalls went through so far.
    pub fn calls(&self) -> usize {
        self.calls.get()
    }

    /// Every call so far, in order, e.g. `fstat(5)`,
    /// `readlink("/sys/dev/char/1:3/subsystem", 256)` or `open("/sys/dev/char/1:3/size")`.
    pub fn log(&self) -> Vec<String> {
        self.log.borrow().clone()
    }

    fn record(&self, entry: String) {
        self.calls.set(self.calls.get() + 1);
        self.log.borrow_mut().push(entry);
    }
}

impl Syscalls for CountingLinux {
    fn fcntl_getfl(&self, fd: i32) -> Result<u32, Errno> {
        self.record(format!("fcntl_getfl({fd})"));
        Linux.fcntl_getfl(fd)
    }

    fn fstat(&self, fd: i32) -> Result<FileStat, Errno> {
        self.record(format!("fstat({fd})"));
        Linux.fstat(fd)
    }

    fn readlink(&self, path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
        self.record(format!("readlink({path:?}, {})", buf.len()));
        Linux.readlink(path, buf)
    }

    fn birth_time(&self, fd: i32) -> Result<Option<Timestamp>, Errno> {
        self.record(format!("birth_time({fd})"));
        Linux.birth_time(fd)
    }

    fn open_read_only(&self, path: &CStr) -> Result<i32, Errno> {
        self.record(format!("open({path:?})"));
        Linux.open_read_only(path)
    }

    fn read(&self, fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
        self.record(format!("read({fd}, {})", buf.len()));
        Linux.read(fd, buf)
    }

    fn close(&self, fd: i32) -> Result<(), Errno> {
        self.record(format!("close({fd})"));
        Linux.close(fd)
    }

    fn page_size(&self) -> Result<usize, Errno> {
        self.record("page_size()".to_owned());
        Linux.page_size()
    }
}

/// A NUL-terminated copy of `path`.
pub fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).expect("paths have no interior NUL")
}

/// Wraps a descriptor a libc call just returned, or reports the call's errno.
pub fn owned(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned open by the kernel to this caller, and nothing else owns
    // it; the OwnedFd closes it exactly once.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `open(path, flags | O_CLOEXEC, 0o600)`.
pub fn open(path: &Path, flags: i32) -> io::Result<OwnedFd> {
    let c = c_path(path);
    // SAFETY: `c` is a live NUL-terminated string; the mode argument is the variadic
    // `mode_t` that open(2) reads when O_CREAT or O_TMPFILE is given.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, 0o600 as libc::c_uint) };
    owned(fd)
}

/// `open`, panicking with the path and the error on failure.
pub fn must_open(path: &Path, flags: i32) -> OwnedFd {
    open(path, flags).unwrap_or_else(|e| panic!("open {} ({flags:#o}): {e}", path.display()))
}

/// `fstat` through libc: the reference the crate's answers are compared with.
pub fn libc_fstat(fd: RawFd) -> libc::stat {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is a writable `struct stat`, live for the whole call.
    let ret = unsafe { libc::fstat(fd, st.as_mut_ptr()) };
    assert_eq!(ret, 0, "fstat({fd}): {}", io::Error::last_os_error());
    // SAFETY: fstat succeeded, so it filled in the whole struct.
    unsafe { st.assume_init() }
}

/// The package's Cargo.toml: a regular file that is always there.
pub fn manifest_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")
}

/// The soft `RLIMIT_NOFILE`: descriptors at or above it can never be open.
pub fn nofile_soft_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a writable `struct rlimit`, live for the call.
    let ret = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(ret, 0, "getrlimit: {}", io::Error::last_os_error());
    limit.rlim_cur
}

/// A descriptor number that is surely closed, and stays so while the caller uses it.
///
/// The tests run in parallel threads and the kernel hands out the lowest free number, so a
/// descriptor closed by one test could be reused at once by another. `F_DUPFD` with a floor
/// of 10000 gives a number far above anything the tests hold open, and after closing it
/// nothing comes near it again. RLIMIT_NOFILE is 20000 on the CI machine (`ulimit -n`), so
/// the floor is valid there; with a smaller limit, half of it is still far above what the
/// tests open.
pub fn surely_closed_fd() -> RawFd {
    let floor = i32::try_from(nofile_soft_limit() / 2)
        .unwrap_or(i32::MAX)
        .min(10_000);
    let file = std::fs::File::open(manifest_file()).expect("open Cargo.toml");
    // SAFETY: F_DUPFD_CLOEXEC takes an integer and only changes the descriptor table.
    let dup = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_DUPFD_CLOEXEC, floor) };
    let number = owned(dup).expect("F_DUPFD_CLOEXEC").as_raw_fd(); // closed again here
    assert!(number >= floor, "F_DUPFD gave {number} < {floor}");
    assert!(!is_open(number), "{number} must be closed now");
    number
}

/// `fcntl(fd, F_GETFD)`: succeeds exactly when `fd` is open.
pub fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD takes no pointer and only reads the descriptor table.
    let ret = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    ret >= 0
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    let euid = unsafe { libc::geteuid() };
    euid == 0
}

/// CI runs the suite as root and nothing may be skipped there.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true")
}

/// For a case that cannot run here (not root, no such device): panics in CI, where nothing
/// may be skipped, and otherwise says so on stderr. Returns so the caller can `return`.
pub fn skip(case: &str, why: &str) {
    assert!(!in_ci(), "{case}: cannot run in CI: {why}");
    // Straight to the stderr handle: libtest captures eprintln!, and a skip must be visible.
    let _ = writeln!(io::stderr().lock(), "skipped {case}: {why}");
}

/// A fresh directory under `std::env::temp_dir()`, removed with everything in it on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("pmem2-source-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir(&path)
            .unwrap_or_else(|e| panic!("create temp dir {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Creates a regular file `name` holding `contents`.
    pub fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.join(name);
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            eprintln!("warning: removing {}: {e}", self.path.display());
        }
    }
}

/// `fd` as a raw number, for the `Source::from_fd` calls.
pub fn raw(fd: &OwnedFd) -> RawFd {
    fd.as_raw_fd()
}

/// `st_mode & S_IFMT` of `fd`.
pub fn file_type_bits(fd: RawFd) -> u32 {
    libc_fstat(fd).st_mode & libc::S_IFMT
}

/// Memory devices (character major 1, subsystem `mem`) to open: path, access mode, minor.
pub const MEM_DEVICES: [(&str, i32, u32); 6] = [
    ("/dev/null", libc::O_RDWR, 3),
    ("/dev/null", libc::O_RDONLY, 3),
    ("/dev/zero", libc::O_RDWR, 5),
    ("/dev/zero", libc::O_RDONLY, 5),
    ("/dev/full", libc::O_RDWR, 7),
    ("/dev/urandom", libc::O_RDONLY, 9),
];

/// `mkfifo(path, 0600)`, panicking on failure.
pub fn make_fifo(path: &Path) {
    let c = c_path(path);
    // SAFETY: `c` is a live NUL-terminated path.
    let ret = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(
        ret,
        0,
        "mkfifo {}: {}",
        path.display(),
        io::Error::last_os_error()
    );
}

/// A pipe: `(read end, write end)`.
pub fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [-1; 2];
    // SAFETY: `fds` is a writable array of two ints, live for the call.
    let ret = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(ret, 0, "pipe2: {}", io::Error::last_os_error());
    (
        owned(fds[0]).expect("read end"),
        owned(fds[1]).expect("write end"),
    )
}

/// Both ends of a connected `AF_UNIX` stream socket pair.
pub fn socket_pair() -> [OwnedFd; 2] {
    let mut fds = [-1; 2];
    // SAFETY: `fds` is a writable array of two ints, live for the call.
    let ret = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    assert_eq!(ret, 0, "socketpair: {}", io::Error::last_os_error());
    fds.map(|fd| owned(fd).expect("socket"))
}

/// A memfd: a regular file in no file system.
pub fn memfd() -> OwnedFd {
    // SAFETY: the name is a live NUL-terminated string.
    let fd = unsafe { libc::memfd_create(c"pmem2-source-test".as_ptr(), libc::MFD_CLOEXEC) };
    owned(fd).expect("memfd_create")
}

/// Descriptors on anonymous inodes (no file type bits): eventfd, epoll, timerfd, signalfd,
/// inotify.
pub fn anonymous_inodes() -> Vec<(&'static str, OwnedFd)> {
    let mut cases: Vec<(&str, OwnedFd)> = Vec::new();

    // SAFETY: eventfd takes two integers.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    cases.push(("eventfd", owned(fd).expect("eventfd")));

    // SAFETY: epoll_create1 takes one integer.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    cases.push(("epoll", owned(fd).expect("epoll_create1")));

    // SAFETY: timerfd_create takes two integers.
    let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_CLOEXEC) };
    cases.push(("timerfd", owned(fd).expect("timerfd_create")));

    let mut mask = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: `mask` is a writable sigset_t; sigemptyset initialises all of it.
    let ret = unsafe { libc::sigemptyset(mask.as_mut_ptr()) };
    assert_eq!(ret, 0);
    // SAFETY: sigemptyset succeeded, so the set is initialised.
    let mask = unsafe { mask.assume_init() };
    // SAFETY: `mask` is a live, initialised sigset_t (empty: the fd never reports anything).
    let fd = unsafe { libc::signalfd(-1, &mask, libc::SFD_CLOEXEC) };
    cases.push(("signalfd", owned(fd).expect("signalfd")));

    // SAFETY: inotify_init1 takes one integer.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    cases.push(("inotify", owned(fd).expect("inotify_init1")));

    cases
}

/// A pseudo-terminal pair; the master is `/dev/ptmx` (5:2), the slave `/dev/pts/N` (136+:N).
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    pub slave_path: PathBuf,
}

pub fn open_pty() -> Pty {
    // SAFETY: posix_openpt takes flags only.
    let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    let master = owned(master).expect("posix_openpt");
    // SAFETY: grantpt takes a descriptor only.
    let ret = unsafe { libc::grantpt(master.as_raw_fd()) };
    assert_eq!(ret, 0, "grantpt: {}", io::Error::last_os_error());
    // SAFETY: unlockpt takes a descriptor only.
    let ret = unsafe { libc::unlockpt(master.as_raw_fd()) };
    assert_eq!(ret, 0, "unlockpt: {}", io::Error::last_os_error());
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: `name` is writable for its full length; ptsname_r (unlike ptsname) is thread
    // safe and NUL-terminates within that length on success.
    let ret = unsafe { libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) };
    assert_eq!(ret, 0, "ptsname_r: {}", io::Error::from_raw_os_error(ret));
    let slave_path = PathBuf::from(
        // c_char is i8 on x86_64 and u8 on aarch64; from_ne_bytes converts either.
        CStr::from_bytes_until_nul(&name.map(|c| u8::from_ne_bytes(c.to_ne_bytes())))
            .expect("NUL-terminated")
            .to_str()
            .expect("UTF-8 pts path"),
    );
    let slave = must_open(&slave_path, libc::O_RDWR | libc::O_NOCTTY);
    Pty {
        master,
        slave,
        slave_path,
    }
}

/// A block device to open: `/dev/loop0`, or a free loop device from `/dev/loop-control`.
pub fn loop_device() -> Result<PathBuf, String> {
    use std::os::unix::fs::FileTypeExt;
    let loop0 = PathBuf::from("/dev/loop0");
    if std::fs::metadata(&loop0).is_ok_and(|m| m.file_type().is_block_device()) {
        return Ok(loop0);
    }
    // <linux/loop.h>: LOOP_CTL_GET_FREE finds (or creates) an unbound loop device.
    const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
    let control = open(Path::new("/dev/loop-control"), libc::O_RDWR)
        .map_err(|e| format!("no /dev/loop0, and /dev/loop-control: {e}"))?;
    // SAFETY: LOOP_CTL_GET_FREE takes no argument pointer.
    let n = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) };
    if n < 0 {
        return Err(format!("LOOP_CTL_GET_FREE: {}", io::Error::last_os_error()));
    }
    Ok(PathBuf::from(format!("/dev/loop{n}")))
}

/// Character majors with a registered driver, from `/proc/devices`.
pub fn registered_char_majors() -> Vec<u32> {
    let text = std::fs::read_to_string("/proc/devices").expect("read /proc/devices");
    text.lines()
        .skip_while(|line| !line.starts_with("Character devices:"))
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.split_whitespace().next()?.parse().ok())
        .collect()
}

/// A character device node whose major no driver has registered (so it has no
/// `/sys/dev/char` entry either).
#[derive(Debug)]
pub struct DriverlessDevice {
    pub path: PathBuf,
    pub rdev: libc::dev_t,
}

impl DriverlessDevice {
    /// `mknod dir/name c <major> 0`, with the first local/experimental major
    /// (Documentation/admin-guide/devices.txt: 60–63, 120–127, 240–254) that no driver has
    /// registered. The error is mknod's (EPERM without root).
    pub fn make(dir: &TempDir, name: &str) -> io::Result<DriverlessDevice> {
        let registered = registered_char_majors();
        assert!(registered.contains(&1), "/proc/devices lists mem (1)");
        let major = (60..=63)
            .chain(120..=127)
            .chain(240..=254)
            .find(|m| !registered.contains(m))
            .expect("a character major without a driver");
        let path = dir.join(name);
        let c = c_path(&path);
        let rdev = libc::makedev(major, 0);
        // SAFETY: `c` is a live NUL-terminated path.
        let ret = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, rdev) };
        if ret != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(DriverlessDevice { path, rdev })
    }

    pub fn major(&self) -> u32 {
        libc::major(self.rdev)
    }

    /// `/sys/dev/char/<major>:0`, which must not exist.
    pub fn sysfs_entry(&self) -> String {
        format!("/sys/dev/char/{}:0", self.major())
    }
}
