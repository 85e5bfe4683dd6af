//! Fuzz target 4: sequences of real descriptors — every kind of the fd matrix, random open
//! flags, closed numbers, numbers reused for other files — through Debian's libpmem2 1.12.1
//! and through our `libpmem2_source.so`, both `dlopen(RTLD_NOW | RTLD_LOCAL)`ed into this
//! process. Both must give the same return codes (and out-values, bytes read, `*src`, and —
//! where libpmem2 sets a fresh one — messages in our words), except for SPEC's documented
//! "(ours)" divergences, which [`expect_from_fd`] and the query rules spell out one by one.
//!
//! Our library: `$PMEM2_SOURCE_SO`, else `../target/release/libpmem2_source.so` relative to
//! this crate (`cargo build --release -p pmem2-source-capi`, which scripts/fuzz.sh does).
//! libpmem2: `$PMEM2_REFERENCE_SO`, else `/usr/lib/x86_64-linux-gnu/libpmem2.so.1`. Either
//! missing is a loud failure. This binary must not link our C ABI (`pmem2-source-capi-rlib`):
//! its `pmem2_*` symbols could interpose on libpmem2's; `load` checks both resolve apart.
//!
//! Never handed to libpmem2, which crashes on them (ours gets them in `capi_sequences`):
//! NULL `src`, NULL out-parameters, `delete(NULL)`; Device DAX size/alignment (libndctl
//! SIGSEGV without an NVDIMM namespace — no Device DAX source is made for libpmem2 at all);
//! lengths larger than the buffer unless the range check rejects them in both.
//!
//! The divergences encoded (SPEC "(ours)", README's table), and where:
//! - from_fd on an `O_PATH` descriptor or access mode 3: ours `PMEM2_E_INVALID_FILE_HANDLE`,
//!   libpmem2 judges the file type (a source for a regular file) — [`expect_from_fd`];
//! - messages libpmem2 does not set (fd < 0, a character device that is not Device DAX,
//!   `device_id` without NVDIMMs): ours must set one, nothing to compare; `realpath` →
//!   `readlink` in ours — [`check_messages`], [`in_our_words`];
//! - `size` after the number was reused for another file (device/inode changed): ours
//!   `PMEM2_E_INVALID_FILE_HANDLE`, libpmem2 the other file's size; `pread/pwrite_mcsafe`
//!   likewise (libpmem2 does I/O on the other file, its result unchecked) — `Run::query`,
//!   `Run::transfer`;
//! - `pread/pwrite_mcsafe` with the offset past the end: ours `PMEM2_E_LENGTH_OUT_OF_RANGE`,
//!   libpmem2's remainder underflows (0 or pread/pwrite(2)'s -errno; out of range only when
//!   even the underflowed remainder is short);
//! - a range past the end of a write: the same code, ours says "write" where libpmem2 says
//!   "read";
//! - `buf == NULL` with `size > 0`: ours `-EINVAL` first; libpmem2 unchecked (its checks, then
//!   EFAULT from the kernel);
//! - `device_usc` failing: ours leaves `*usc` alone, libpmem2 zeroes it.
//!
//! Ours runs first in each mcsafe pair, so a write past the end that libpmem2 performs (and
//! ours refuses) cannot change what ours saw.
//!
//! Every descriptor lives in a scratch directory made once per process (on /dev/shm when it
//! exists: the files are reset for every input); everything an input opened or made is closed
//! and deleted at its end; the operations per input are capped. `PMEM2_FUZZ_TRACE=1` prints
//! every operation and both answers.
#![no_main]

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

// libpmem2's codes (SPEC §1), spelled out: this binary links nothing of ours.
const INVALID_FILE_HANDLE: c_int = -100004;
const INVALID_FILE_TYPE: c_int = -100005;
const LENGTH_OUT_OF_RANGE: c_int = -100030;
const FILE_DESCRIPTOR_NOT_SET: c_int = -100035;
const SOURCE_TYPE_NOT_SUPPORTED: c_int = -100036;

const EINVAL: c_int = -libc::EINVAL;
const EBADF: c_int = -libc::EBADF;

const FD_NOT_SET: &str = "File descriptor is not set, source type does not support fd";

// ---------------------------------------------------------------------------------------
// The two libraries
// ---------------------------------------------------------------------------------------

type Src = c_void;

/// One library's `pmem2_source_*` functions.
#[derive(Clone, Copy)]
struct Api {
    name: &'static str,
    from_fd: unsafe extern "C" fn(*mut *mut Src, c_int) -> c_int,
    from_anon: unsafe extern "C" fn(*mut *mut Src, usize) -> c_int,
    get_fd: unsafe extern "C" fn(*const Src, *mut c_int) -> c_int,
    delete: unsafe extern "C" fn(*mut *mut Src) -> c_int,
    errormsg: unsafe extern "C" fn() -> *const c_char,
    size: unsafe extern "C" fn(*const Src, *mut usize) -> c_int,
    alignment: unsafe extern "C" fn(*const Src, *mut usize) -> c_int,
    numa_node: unsafe extern "C" fn(*const Src, *mut c_int) -> c_int,
    device_id: unsafe extern "C" fn(*const Src, *mut c_char, *mut usize) -> c_int,
    device_usc: unsafe extern "C" fn(*const Src, *mut u64) -> c_int,
    pread: unsafe extern "C" fn(*mut Src, *mut c_void, usize, usize) -> c_int,
    pwrite: unsafe extern "C" fn(*mut Src, *mut c_void, usize, usize) -> c_int,
}

fn dlerror() -> String {
    // SAFETY: dlerror returns NULL or a C string.
    let text = unsafe { libc::dlerror() };
    if text.is_null() {
        return "unknown error".into();
    }
    // SAFETY: non-NULL, NUL-terminated.
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

/// The path of the shared object defining `address` (dladdr).
fn defined_in(address: *const c_void) -> String {
    // SAFETY: Dl_info is plain data; dladdr fills it in.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is valid for writes.
    if unsafe { libc::dladdr(address, &mut info) } == 0 || info.dli_fname.is_null() {
        return "?".into();
    }
    // SAFETY: dli_fname is a NUL-terminated path.
    unsafe { CStr::from_ptr(info.dli_fname) }
        .to_string_lossy()
        .into_owned()
}

/// Opens `path` with `dlopen(RTLD_NOW | RTLD_LOCAL)` for the life of the process.
fn load(name: &'static str, path: &str) -> Api {
    let c_path = CString::new(path).expect("no NUL in the path");
    // SAFETY: a valid C string; RTLD_LOCAL keeps the two implementations apart.
    let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(
        !handle.is_null(),
        "cannot load {name} from {path}: {}",
        dlerror()
    );
    let symbol = |symbol: &CStr| -> *mut c_void {
        // SAFETY: handle is live; symbol is a C string.
        let address = unsafe { libc::dlsym(handle, symbol.as_ptr()) };
        assert!(!address.is_null(), "{path}: no {symbol:?}: {}", dlerror());
        let home = defined_in(address);
        let want = std::fs::canonicalize(path).unwrap_or_else(|_| PathBuf::from(path));
        let home_canonical = std::fs::canonicalize(&home).unwrap_or_else(|_| PathBuf::from(&home));
        assert_eq!(
            home_canonical, want,
            "{name}: {symbol:?} resolves into {home}, not {path} (interposed?)"
        );
        address
    };
    macro_rules! function {
        ($symbol:literal) => {
            // SAFETY: the symbol is libpmem2's function of this prototype (<libpmem2.h>),
            // which both libraries implement; function pointers are data-pointer sized.
            unsafe { std::mem::transmute(symbol($symbol)) }
        };
    }
    Api {
        name,
        from_fd: function!(c"pmem2_source_from_fd"),
        from_anon: function!(c"pmem2_source_from_anon"),
        get_fd: function!(c"pmem2_source_get_fd"),
        delete: function!(c"pmem2_source_delete"),
        errormsg: function!(c"pmem2_errormsg"),
        size: function!(c"pmem2_source_size"),
        alignment: function!(c"pmem2_source_alignment"),
        numa_node: function!(c"pmem2_source_numa_node"),
        device_id: function!(c"pmem2_source_device_id"),
        device_usc: function!(c"pmem2_source_device_usc"),
        pread: function!(c"pmem2_source_pread_mcsafe"),
        pwrite: function!(c"pmem2_source_pwrite_mcsafe"),
    }
}

/// Ours and libpmem2, loaded once.
fn apis() -> &'static (Api, Api) {
    static APIS: OnceLock<(Api, Api)> = OnceLock::new();
    APIS.get_or_init(|| {
        let ours = std::env::var("PMEM2_SOURCE_SO").unwrap_or_else(|_| {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../target/release/libpmem2_source.so"
            )
            .into()
        });
        assert!(
            Path::new(&ours).is_file(),
            "our library {ours} does not exist: run `cargo build --release -p \
             pmem2-source-capi` in the repository (scripts/fuzz.sh does), or set \
             PMEM2_SOURCE_SO"
        );
        let reference = std::env::var("PMEM2_REFERENCE_SO")
            .unwrap_or_else(|_| "/usr/lib/x86_64-linux-gnu/libpmem2.so.1".into());
        assert!(
            Path::new(&reference).exists(),
            "libpmem2 {reference} does not exist: apt-get install libpmem2-dev (1.12.1), or \
             set PMEM2_REFERENCE_SO"
        );
        let apis = (load("ours", &ours), load("libpmem2", &reference));
        assert_ne!(
            apis.0.from_fd as usize, apis.1.from_fd as usize,
            "ours and libpmem2 resolve to the same pmem2_source_from_fd"
        );
        apis
    })
}

impl Api {
    fn message(&self) -> String {
        // SAFETY: both libraries return the calling thread's NUL-terminated buffer (or NULL).
        let text = unsafe { (self.errormsg)() };
        if text.is_null() {
            return String::new();
        }
        // SAFETY: non-NULL, NUL-terminated.
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned()
    }

    /// Leaves [`FD_NOT_SET`] as the thread's message, so a call's fresh message can be told
    /// from stale text.
    fn provoke(&self) {
        let mut src = std::ptr::null_mut();
        // SAFETY: `src` is valid for writes.
        assert_eq!(
            unsafe { (self.from_anon)(&mut src, 1) },
            0,
            "{}: from_anon",
            self.name
        );
        let mut fd = -7;
        // SAFETY: `src` is live; `fd` valid.
        let code = unsafe { (self.get_fd)(src, &mut fd) };
        assert_eq!(
            code, FILE_DESCRIPTOR_NOT_SET,
            "{}: get_fd of anon",
            self.name
        );
        // SAFETY: `src` is live and given up.
        assert_eq!(unsafe { (self.delete)(&mut src) }, 0);
        assert_eq!(
            self.message(),
            FD_NOT_SET,
            "{}: provoked message",
            self.name
        );
    }

    /// The message a call left after [`provoke`](Self::provoke): `None` if it set none.
    fn fresh_message(&self) -> Option<String> {
        let text = self.message();
        (text != FD_NOT_SET).then_some(text)
    }
}

// ---------------------------------------------------------------------------------------
// Scratch files
// ---------------------------------------------------------------------------------------

/// Regular files an input can open, reset at the start of every input.
const FILES: [(&str, &[u8]); 4] = [
    ("hello", b"hello"),
    ("page", &[0x5a; 4097]),
    ("empty", b""),
    ("hex", b"0123456789abcdef"),
];

struct Scratch {
    dir: PathBuf,
}

fn scratch() -> &'static Scratch {
    static SCRATCH: OnceLock<Scratch> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        // tmpfs where there is one: resetting the files for every input must not hit a disk.
        let base = std::env::var_os("PMEM2_FUZZ_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                Path::new("/dev/shm")
                    .is_dir()
                    .then(|| PathBuf::from("/dev/shm"))
            })
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("pmem2-fuzz-diff-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        let fifo = c_path(&dir.join("fifo"));
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0, "mkfifo");
        std::os::unix::fs::symlink(dir.join("hello"), dir.join("link")).expect("symlink");
        // SAFETY: registers a function with no preconditions, run once at exit.
        unsafe { libc::atexit(remove_scratch) };
        Scratch { dir }
    })
}

/// Removes the scratch directory when the fuzzer exits (not after a crash: then it stays for
/// inspection).
extern "C" fn remove_scratch() {
    let _ = std::fs::remove_dir_all(&scratch().dir);
}

impl Scratch {
    fn reset(&self) {
        for (name, contents) in FILES {
            std::fs::write(self.dir.join(name), contents).expect("reset a scratch file");
        }
    }
}

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL in the path")
}

fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// The input
// ---------------------------------------------------------------------------------------

#[derive(Arbitrary, Clone, Copy, Debug)]
enum Access {
    ReadOnly,
    ReadWrite,
    WriteOnly,
    /// O_PATH
    Path,
    /// Access mode 3 (O_ACCMODE): neither read nor write.
    Mode3,
}

impl Access {
    fn flags(self) -> c_int {
        match self {
            Access::ReadOnly => libc::O_RDONLY,
            Access::ReadWrite => libc::O_RDWR,
            Access::WriteOnly => libc::O_WRONLY,
            Access::Path => libc::O_PATH,
            Access::Mode3 => libc::O_ACCMODE,
        }
    }
}

/// A descriptor to open.
#[derive(Arbitrary, Clone, Copy, Debug)]
enum Kind {
    Regular {
        file: u8,
        access: Access,
        append: bool,
    },
    Directory {
        path: bool,
    },
    /// A FIFO (O_NONBLOCK: an open would otherwise wait for the other end).
    Fifo {
        access: Access,
    },
    PipeRead,
    PipeWrite,
    Socket,
    EventFd,
    Epoll,
    TimerFd,
    Memfd {
        len: u8,
    },
    ProcStatus,
    DevNull {
        access: Access,
    },
    DevZero {
        access: Access,
    },
    PtySlave,
    PtyMaster,
    /// The symlink itself: O_PATH | O_NOFOLLOW.
    Symlink,
    /// The file behind the symlink, opened through it.
    ThroughSymlink,
}

/// A descriptor number for from_fd.
#[derive(Arbitrary, Clone, Copy, Debug)]
enum Pick {
    /// The number of the n-th descriptor this input opened (open, closed, or reused since).
    Slot(u8),
    Minus1,
    IntMin,
    Million,
    IntMax,
    /// RLIMIT_NOFILE (never open).
    NoFileLimit,
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum Len {
    Small(u8),
    /// `usize::MAX` (only where both libraries must reject the range; else cut to 255).
    Max,
    AboveIsizeMax,
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum Offset {
    Small(u8),
    AtEnd,
    PastEnd(u8),
    Max,
    OffTMax,
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum Query {
    GetFd,
    Size,
    Alignment,
    NumaNode,
    DeviceIdLength,
    DeviceId {
        capacity: u8,
    },
    DeviceUsc,
    Pread {
        len: Len,
        offset: Offset,
        null_buf: bool,
    },
    Pwrite {
        len: Len,
        offset: Offset,
        null_buf: bool,
        byte: u8,
    },
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum AnonSize {
    Small(u16),
    Max,
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum Op {
    Open(Kind),
    Close {
        slot: u8,
    },
    /// `dup2(slot from, number of slot to)`: the number now refers to another file.
    Dup2 {
        from: u8,
        to: u8,
    },
    /// Sets the length of the regular file behind a slot (through /proc/self/fd).
    Resize {
        slot: u8,
        len: u16,
    },
    FromFd(Pick),
    FromAnon(AnonSize),
    Query {
        source: u8,
        query: Query,
    },
    /// Deletes a pair of sources (again: `delete(&NULL)` in both).
    Delete {
        source: u8,
    },
}

const MAX_OPS: usize = 48;
const MAX_SLOTS: usize = 16;
const MAX_SOURCES: usize = 8;
/// Lengths that are not "huge" are cut to this (the buffer is that long).
const MAX_LEN: usize = 255;

// ---------------------------------------------------------------------------------------
// What a descriptor number is now
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FdState {
    Negative,
    Closed,
    Open { flags: c_int, stat: Stat },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stat {
    mode: u32,
    size: i64,
    dev: u64,
    ino: u64,
    rdev: u64,
}

fn state_of(fd: RawFd) -> FdState {
    if fd < 0 {
        return FdState::Negative;
    }
    // SAFETY: F_GETFL takes no pointer.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        assert_eq!(errno(), libc::EBADF, "fcntl({fd})");
        return FdState::Closed;
    }
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is writable.
    let ret = unsafe { libc::fstat(fd, st.as_mut_ptr()) };
    assert_eq!(ret, 0, "fstat({fd}) of an open descriptor");
    // SAFETY: fstat filled it in.
    let st = unsafe { st.assume_init() };
    FdState::Open {
        flags,
        stat: Stat {
            mode: st.st_mode & libc::S_IFMT,
            size: st.st_size,
            dev: st.st_dev,
            ino: st.st_ino,
            rdev: st.st_rdev,
        },
    }
}

/// What the file type decides (SPEC §2.6, §3), the access mode aside: 0 for a regular file,
/// `None` for a Device DAX (excluded: libpmem2 crashes in its queries).
fn by_type(stat: &Stat) -> Option<c_int> {
    match stat.mode {
        libc::S_IFREG => Some(0),
        libc::S_IFCHR => {
            let link = format!(
                "/sys/dev/char/{}:{}/subsystem",
                libc::major(stat.rdev),
                libc::minor(stat.rdev)
            );
            match std::fs::read_link(&link) {
                Ok(target) if target.file_name().is_some_and(|name| name == "dax") => None,
                Ok(_) => Some(INVALID_FILE_TYPE),
                Err(e) => Some(-e.raw_os_error().unwrap_or(0)),
            }
        }
        _ => Some(INVALID_FILE_TYPE),
    }
}

/// What from_fd must answer in (ours, libpmem2), per SPEC §2; `None` for a Device DAX.
fn expect_from_fd(state: &FdState) -> Option<(c_int, c_int)> {
    match state {
        FdState::Negative | FdState::Closed => Some((INVALID_FILE_HANDLE, INVALID_FILE_HANDLE)),
        FdState::Open { flags, stat } => {
            let typed = by_type(stat)?;
            if flags & libc::O_PATH != 0 {
                // (ours) O_PATH is rejected at the access-mode check; libpmem2 judges the type.
                return Some((INVALID_FILE_HANDLE, typed));
            }
            match flags & libc::O_ACCMODE {
                libc::O_WRONLY => Some((INVALID_FILE_HANDLE, INVALID_FILE_HANDLE)),
                // (ours) access mode 3 is rejected; libpmem2 accepts it.
                libc::O_ACCMODE => Some((INVALID_FILE_HANDLE, typed)),
                _ => Some((typed, typed)),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// One input
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Made {
    Anon(usize),
    /// From descriptor number `fd`, then open on the file `stat` with `flags` (shown in
    /// failure messages).
    Fd {
        fd: RawFd,
        #[allow(dead_code)]
        flags: c_int,
        stat: Stat,
    },
}

/// The same from_fd/from_anon call in both libraries: either may hold a source (libpmem2
/// alone for O_PATH and mode 3).
#[derive(Debug)]
struct Pair {
    ours: *mut Src,
    theirs: *mut Src,
    made: Made,
    deleted: bool,
}

struct Run {
    ours: Api,
    theirs: Api,
    /// Descriptor numbers in the order opened (a closed one may be reused by a later open).
    slots: Vec<RawFd>,
    /// Numbers this input holds open (closed at the end).
    open: Vec<RawFd>,
    pairs: Vec<Pair>,
    trace: bool,
}

/// One library's answer to a query.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Reply {
    code: c_int,
    /// The out-value, or the bytes read.
    value: Vec<u8>,
    message: Option<String>,
}

/// libpmem2's message in our words (SPEC §3: we readlink where libpmem2 calls realpath).
fn in_our_words(theirs: &str) -> String {
    match theirs.strip_prefix("realpath \"") {
        Some(rest) => format!("readlink \"{rest}"),
        None => theirs.to_string(),
    }
}

impl Run {
    fn new() -> Run {
        let (ours, theirs) = *apis();
        Run {
            ours,
            theirs,
            slots: Vec::new(),
            open: Vec::new(),
            pairs: Vec::new(),
            trace: std::env::var_os("PMEM2_FUZZ_TRACE").is_some(),
        }
    }

    fn hold(&mut self, fd: RawFd) {
        if !self.open.contains(&fd) {
            self.open.push(fd);
        }
    }

    fn open_path(&mut self, path: &Path, flags: c_int) -> Option<RawFd> {
        let c = c_path(path);
        // SAFETY: a NUL-terminated path.
        let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
        (fd >= 0).then_some(fd)
    }

    /// Opens a descriptor of `kind`; its number becomes the next slot. Returns the number
    /// (`None` if the open failed, e.g. O_WRONLY on a FIFO without reader).
    fn open(&mut self, kind: Kind) -> Option<RawFd> {
        let dir = &scratch().dir;
        let mut pair = [-1; 2];
        let (fd, companion) = match kind {
            Kind::Regular {
                file,
                access,
                append,
            } => {
                let (name, _) = FILES[file as usize % FILES.len()];
                let append = if append { libc::O_APPEND } else { 0 };
                (
                    self.open_path(&dir.join(name), access.flags() | append)?,
                    None,
                )
            }
            Kind::Directory { path } => {
                let flags = if path { libc::O_PATH } else { libc::O_RDONLY };
                (self.open_path(dir, flags | libc::O_DIRECTORY)?, None)
            }
            Kind::Fifo { access } => {
                let flags = match access {
                    Access::Mode3 => libc::O_RDWR, // mode 3 on a FIFO: EINVAL-ish; use O_RDWR
                    other => other.flags(),
                };
                (
                    self.open_path(&dir.join("fifo"), flags | libc::O_NONBLOCK)?,
                    None,
                )
            }
            Kind::PipeRead | Kind::PipeWrite => {
                // SAFETY: `pair` is writable for two ints.
                let ret =
                    unsafe { libc::pipe2(pair.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
                if ret != 0 {
                    return None;
                }
                match kind {
                    Kind::PipeRead => (pair[0], Some(pair[1])),
                    _ => (pair[1], Some(pair[0])),
                }
            }
            Kind::Socket => {
                // SAFETY: `pair` is writable for two ints.
                let ret = unsafe {
                    libc::socketpair(
                        libc::AF_UNIX,
                        libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                        0,
                        pair.as_mut_ptr(),
                    )
                };
                if ret != 0 {
                    return None;
                }
                (pair[0], Some(pair[1]))
            }
            // SAFETY (these three): the calls take integers only.
            Kind::EventFd => (
                unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) },
                None,
            ),
            Kind::Epoll => (unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) }, None),
            Kind::TimerFd => (
                unsafe {
                    libc::timerfd_create(
                        libc::CLOCK_MONOTONIC,
                        libc::TFD_CLOEXEC | libc::TFD_NONBLOCK,
                    )
                },
                None,
            ),
            Kind::Memfd { len } => {
                // SAFETY: a NUL-terminated name.
                let fd = unsafe { libc::memfd_create(c"pmem2-fuzz".as_ptr(), libc::MFD_CLOEXEC) };
                if fd >= 0 {
                    let data: Vec<u8> = (0..len).collect();
                    // SAFETY: `data` is valid for reads of its length.
                    unsafe { libc::pwrite(fd, data.as_ptr().cast(), data.len(), 0) };
                }
                (fd, None)
            }
            Kind::ProcStatus => (
                self.open_path(Path::new("/proc/self/status"), libc::O_RDONLY)?,
                None,
            ),
            Kind::DevNull { access } => (
                self.open_path(Path::new("/dev/null"), access.flags())?,
                None,
            ),
            Kind::DevZero { access } => (
                self.open_path(Path::new("/dev/zero"), access.flags())?,
                None,
            ),
            Kind::PtySlave | Kind::PtyMaster => {
                let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NONBLOCK;
                // SAFETY: flags only.
                let master = unsafe { libc::posix_openpt(flags) };
                if master < 0 {
                    return None;
                }
                // SAFETY: descriptor arguments only.
                unsafe {
                    libc::grantpt(master);
                    libc::unlockpt(master);
                }
                let mut name = [0 as c_char; 64];
                // SAFETY: `name` is writable for its length.
                let ret = unsafe { libc::ptsname_r(master, name.as_mut_ptr(), name.len()) };
                // SAFETY: ptsname_r NUL-terminated it on success.
                let path = (ret == 0).then(|| unsafe { CStr::from_ptr(name.as_ptr()) }.to_owned());
                let slave = path.map_or(-1, |path| {
                    // SAFETY: a NUL-terminated path.
                    unsafe { libc::open(path.as_ptr(), flags) }
                });
                match kind {
                    Kind::PtyMaster => (master, (slave >= 0).then_some(slave)),
                    _ if slave >= 0 => (slave, Some(master)),
                    _ => {
                        // SAFETY: our own descriptor.
                        unsafe { libc::close(master) };
                        return None;
                    }
                }
            }
            Kind::Symlink => (
                self.open_path(&dir.join("link"), libc::O_PATH | libc::O_NOFOLLOW)?,
                None,
            ),
            Kind::ThroughSymlink => (self.open_path(&dir.join("link"), libc::O_RDWR)?, None),
        };
        if let Some(other) = companion {
            // The other end is not needed: its number becomes free for the next open.
            // SAFETY: our own descriptor.
            unsafe { libc::close(other) };
        }
        if fd < 0 {
            return None;
        }
        self.hold(fd);
        Some(fd)
    }

    fn slot(&self, n: u8) -> Option<RawFd> {
        (!self.slots.is_empty()).then(|| self.slots[n as usize % self.slots.len()])
    }

    fn pick(&self, pick: Pick) -> RawFd {
        match pick {
            Pick::Slot(n) => self.slot(n).unwrap_or(-1),
            Pick::Minus1 => -1,
            Pick::IntMin => i32::MIN,
            Pick::Million => 1_000_000,
            Pick::IntMax => i32::MAX,
            Pick::NoFileLimit => {
                let mut limit = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                // SAFETY: `limit` is writable.
                unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
                i32::try_from(limit.rlim_cur).unwrap_or(i32::MAX)
            }
        }
    }

    fn run(&mut self, op: Op) {
        let start = std::time::Instant::now();
        self.step(op);
        if self.trace {
            eprintln!("op {op:?} ({:?})", start.elapsed());
        }
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Open(kind) => {
                if self.slots.len() < MAX_SLOTS {
                    if let Some(fd) = self.open(kind) {
                        self.slots.push(fd);
                    }
                }
            }
            Op::Close { slot } => {
                let fd = self.slot(slot).unwrap_or(-1);
                if let Some(i) = self.open.iter().position(|&open| open == fd) {
                    self.open.swap_remove(i);
                    // SAFETY: a number this input holds open.
                    assert_eq!(unsafe { libc::close(fd) }, 0, "close({fd})");
                }
            }
            Op::Dup2 { from, to } => {
                let (from, to) = (self.slot(from).unwrap_or(-1), self.slot(to).unwrap_or(-1));
                if from != to && to >= 0 && self.open.contains(&from) {
                    // SAFETY: `to` is a number this input opened (held, or closed by it).
                    let ret = unsafe { libc::dup3(from, to, libc::O_CLOEXEC) };
                    assert_eq!(ret, to, "dup3({from}, {to}): {}", errno());
                    self.hold(to);
                }
            }
            Op::Resize { slot, len } => {
                let fd = self.slot(slot).unwrap_or(-1);
                if !self.open.contains(&fd) {
                    return;
                }
                let FdState::Open { stat, flags } = state_of(fd) else {
                    return;
                };
                if stat.mode == libc::S_IFREG && flags & libc::O_PATH == 0 {
                    let file = std::fs::OpenOptions::new()
                        .write(true)
                        .open(format!("/proc/self/fd/{fd}"));
                    if let Ok(file) = file {
                        let _ = file.set_len(u64::from(len));
                    }
                }
            }
            Op::FromFd(pick) => {
                let fd = self.pick(pick);
                self.from_fd(fd);
            }
            Op::FromAnon(size) => {
                let size = match size {
                    AnonSize::Small(n) => n as usize,
                    AnonSize::Max => usize::MAX,
                };
                self.from_anon(size);
            }
            Op::Query { source, query } => {
                if !self.pairs.is_empty() {
                    let i = source as usize % self.pairs.len();
                    self.query(i, query);
                }
            }
            Op::Delete { source } => {
                if !self.pairs.is_empty() {
                    let i = source as usize % self.pairs.len();
                    self.delete(i);
                }
            }
        }
    }

    fn from_fd(&mut self, fd: RawFd) {
        let state = state_of(fd);
        let Some((want_ours, want_theirs)) = expect_from_fd(&state) else {
            return; // a Device DAX: excluded
        };
        let made = |api: &Api| {
            api.provoke();
            let mut src: *mut Src = std::ptr::without_provenance_mut(0x5a5a_5a5a_5a5a_5a50);
            // SAFETY: `src` is valid for writes; any fd number is allowed.
            let code = unsafe { (api.from_fd)(&mut src, fd) };
            (code, src, api.fresh_message())
        };
        let (ours_code, ours_src, ours_message) = made(&self.ours);
        let (theirs_code, theirs_src, theirs_message) = made(&self.theirs);
        let what = format!("from_fd({fd}) on {state:?}");
        if self.trace {
            eprintln!("  {what}: ours {ours_code} {ours_message:?} | libpmem2 {theirs_code} {theirs_message:?}");
        }
        assert_eq!(
            (ours_code, theirs_code),
            (want_ours, want_theirs),
            "{what}: (ours, libpmem2) codes; messages {ours_message:?} / {theirs_message:?}"
        );
        for (who, code, src) in [
            ("ours", ours_code, ours_src),
            ("libpmem2", theirs_code, theirs_src),
        ] {
            assert_eq!(
                src.is_null(),
                code != 0,
                "{what}: {who} returned {code} with *src {src:p}"
            );
        }
        check_messages(
            &what,
            ours_code,
            &ours_message,
            theirs_code,
            &theirs_message,
            false,
        );
        let FdState::Open { flags, stat } = state else {
            return;
        };
        if (ours_code == 0 || theirs_code == 0) && self.pairs.len() < MAX_SOURCES {
            self.pairs.push(Pair {
                ours: ours_src,
                theirs: theirs_src,
                made: Made::Fd { fd, flags, stat },
                deleted: false,
            });
        } else {
            // No room to keep them: delete at once.
            for (api, mut src) in [(self.ours, ours_src), (self.theirs, theirs_src)] {
                // SAFETY: NULL or a live source of `api`, given up.
                assert_eq!(unsafe { (api.delete)(&mut src) }, 0);
            }
        }
    }

    fn from_anon(&mut self, size: usize) {
        let mut made = [std::ptr::null_mut(); 2];
        for (api, src) in [self.ours, self.theirs].iter().zip(&mut made) {
            // SAFETY: `src` is valid for writes.
            let code = unsafe { (api.from_anon)(src, size) };
            assert_eq!(code, 0, "{}: from_anon({size})", api.name);
            assert!(!src.is_null());
        }
        if self.pairs.len() < MAX_SOURCES {
            self.pairs.push(Pair {
                ours: made[0],
                theirs: made[1],
                made: Made::Anon(size),
                deleted: false,
            });
        } else {
            for (api, mut src) in [(self.ours, made[0]), (self.theirs, made[1])] {
                // SAFETY: a live source of `api`, given up.
                assert_eq!(unsafe { (api.delete)(&mut src) }, 0);
            }
        }
    }

    fn delete(&mut self, i: usize) {
        let pair = &mut self.pairs[i];
        for (api, src) in [(self.ours, &mut pair.ours), (self.theirs, &mut pair.theirs)] {
            // SAFETY: NULL or a live source of `api`, given up here.
            let code = unsafe { (api.delete)(src) };
            assert_eq!(code, 0, "{}: delete", api.name);
            assert!(src.is_null(), "{}: delete leaves *src NULL", api.name);
        }
        pair.deleted = true;
    }

    /// Asks both libraries `query` on pair `i` (when both hold a source) and compares.
    fn query(&mut self, i: usize, query: Query) {
        let pair = &self.pairs[i];
        if pair.ours.is_null() || pair.theirs.is_null() {
            return; // deleted, or libpmem2's alone (O_PATH, mode 3): nothing to compare
        }
        let (ours_src, theirs_src, made) = (pair.ours, pair.theirs, pair.made);
        // What the descriptor is now, next to what it was when the sources were made.
        let now = match made {
            Made::Anon(_) => Now::Anon,
            Made::Fd { fd, stat, .. } => match state_of(fd) {
                FdState::Open {
                    stat: current,
                    flags,
                } => {
                    if (current.dev, current.ino) == (stat.dev, stat.ino) {
                        Now::Same {
                            size: current.size,
                            flags,
                        }
                    } else {
                        Now::Changed { size: current.size }
                    }
                }
                _ => Now::Closed,
            },
        };
        let what = format!("{query:?} on {made:?}, now {now:?}");
        match query {
            Query::Pread {
                len,
                offset,
                null_buf,
            } => {
                self.transfer(
                    &what, ours_src, theirs_src, made, now, len, offset, null_buf, None,
                );
                return;
            }
            Query::Pwrite {
                len,
                offset,
                null_buf,
                byte,
            } => {
                self.transfer(
                    &what,
                    ours_src,
                    theirs_src,
                    made,
                    now,
                    len,
                    offset,
                    null_buf,
                    Some(byte),
                );
                return;
            }
            _ => {}
        }
        let ask = |api: &Api, src: *mut Src| -> Reply {
            api.provoke();
            const MARK: u64 = 0x5a5a_5a5a_5a5a_5a5a;
            let (code, value) = match query {
                Query::GetFd => {
                    let mut out = MARK as c_int;
                    // SAFETY: `src` is live; `out` valid.
                    let code = unsafe { (api.get_fd)(src, &mut out) };
                    (code, out.to_ne_bytes().to_vec())
                }
                Query::Size | Query::Alignment => {
                    let f = if matches!(query, Query::Size) {
                        api.size
                    } else {
                        api.alignment
                    };
                    let mut out = MARK as usize;
                    // SAFETY: `src` is live; `out` valid.
                    let code = unsafe { f(src, &mut out) };
                    (code, out.to_ne_bytes().to_vec())
                }
                Query::NumaNode => {
                    let mut out = MARK as c_int;
                    // SAFETY: `src` is live; `out` valid.
                    let code = unsafe { (api.numa_node)(src, &mut out) };
                    (code, out.to_ne_bytes().to_vec())
                }
                Query::DeviceIdLength => {
                    let mut len = MARK as usize;
                    // SAFETY: `src` is live; NULL id asks for the length into `len`.
                    let code = unsafe { (api.device_id)(src, std::ptr::null_mut(), &mut len) };
                    (code, len.to_ne_bytes().to_vec())
                }
                Query::DeviceId { capacity } => {
                    let capacity = capacity as usize % 80 + 1;
                    let mut buffer = vec![b'Z'; capacity];
                    buffer[capacity - 1] = 0; // a C string: libpmem2 appends to it
                    let mut len = capacity;
                    // SAFETY: `src` is live; `buffer` is valid for `len` bytes.
                    let code =
                        unsafe { (api.device_id)(src, buffer.as_mut_ptr().cast(), &mut len) };
                    buffer.extend_from_slice(&len.to_ne_bytes());
                    (code, buffer)
                }
                Query::DeviceUsc => {
                    let mut out = MARK;
                    // SAFETY: `src` is live; `out` valid.
                    let code = unsafe { (api.device_usc)(src, &mut out) };
                    (code, out.to_ne_bytes().to_vec())
                }
                Query::Pread { .. } | Query::Pwrite { .. } => unreachable!(),
            };
            Reply {
                code,
                value,
                message: api.fresh_message(),
            }
        };
        let ours = ask(&self.ours, ours_src);
        let theirs = ask(&self.theirs, theirs_src);
        if self.trace {
            eprintln!("  {what}: ours {ours:?} | libpmem2 {theirs:?}");
        }
        // The rules: the same reply, except where SPEC documents a divergence.
        let page = page_size().to_ne_bytes().to_vec();
        match (query, now) {
            (Query::GetFd, Now::Anon) => {
                let want = (
                    FILE_DESCRIPTOR_NOT_SET,
                    (0x5a5a_5a5a as c_int).to_ne_bytes().to_vec(),
                );
                same(&what, &ours, &theirs, Some(want));
            }
            (Query::GetFd, _) => {
                let Made::Fd { fd, .. } = made else {
                    unreachable!()
                };
                same(&what, &ours, &theirs, Some((0, fd.to_ne_bytes().to_vec())));
            }
            (Query::Size, Now::Anon) => {
                let Made::Anon(size) = made else {
                    unreachable!()
                };
                same(
                    &what,
                    &ours,
                    &theirs,
                    Some((0, size.to_ne_bytes().to_vec())),
                );
            }
            (Query::Size, Now::Same { size, .. }) => {
                same(
                    &what,
                    &ours,
                    &theirs,
                    Some((0, (size as usize).to_ne_bytes().to_vec())),
                );
            }
            (Query::Size, Now::Closed) => {
                same(&what, &ours, &theirs, None);
                assert_eq!(ours.code, INVALID_FILE_HANDLE, "{what}");
            }
            (Query::Size, Now::Changed { size }) => {
                // (ours) the number now refers to another file: we say so; libpmem2 answers
                // the other file's size.
                assert_eq!(ours.code, INVALID_FILE_HANDLE, "{what}: ours {ours:?}");
                assert_eq!(
                    ours.value,
                    (0x5a5a_5a5a_5a5a_5a5a_usize).to_ne_bytes(),
                    "{what}"
                );
                assert_eq!(
                    (theirs.code, theirs.value.clone()),
                    (0, (size as usize).to_ne_bytes().to_vec()),
                    "{what}: libpmem2 {theirs:?}"
                );
            }
            (Query::Alignment, _) => same(&what, &ours, &theirs, Some((0, page))),
            (Query::DeviceUsc, Now::Anon) | (Query::NumaNode, _) => {
                same(&what, &ours, &theirs, None)
            }
            (Query::DeviceIdLength | Query::DeviceId { .. }, _) => {
                // Same code and nothing written; (ours) libpmem2 sets no message when no
                // NVDIMM backs a file.
                assert_eq!(
                    (ours.code, &ours.value),
                    (theirs.code, &theirs.value),
                    "{what}"
                );
                assert_ne!(ours.code, 0, "{what}: no NVDIMM here");
                if let Some(text) = &theirs.message {
                    assert_eq!(ours.message.as_deref(), Some(text.as_str()), "{what}");
                }
                assert!(
                    ours.message.is_some(),
                    "{what}: ours failed without a message"
                );
            }
            (Query::DeviceUsc, _) => {
                // (ours) *usc stays untouched on failure; libpmem2 zeroes it first.
                assert_eq!(ours.code, theirs.code, "{what}: {ours:?} / {theirs:?}");
                assert_ne!(ours.code, 0, "{what}: no NVDIMM here");
                assert_eq!(
                    ours.value,
                    0x5a5a_5a5a_5a5a_5a5a_u64.to_ne_bytes(),
                    "{what}"
                );
                assert_eq!(theirs.value, 0u64.to_ne_bytes(), "{what}");
                check_messages(
                    &what,
                    ours.code,
                    &ours.message,
                    theirs.code,
                    &theirs.message,
                    false,
                );
            }
            (Query::Pread { .. } | Query::Pwrite { .. }, _) => unreachable!(),
        }
    }

    /// pread (`byte == None`) or pwrite of `len` copies of `byte`: ours first, then
    /// libpmem2, on the same descriptor.
    #[allow(clippy::too_many_arguments)]
    fn transfer(
        &mut self,
        what: &str,
        ours_src: *mut Src,
        theirs_src: *mut Src,
        made: Made,
        now: Now,
        len: Len,
        offset: Offset,
        null_buf: bool,
        byte: Option<u8>,
    ) {
        let size = match (made, now) {
            (Made::Anon(size), _) => size as u64,
            (_, Now::Same { size, .. } | Now::Changed { size }) => size as u64,
            _ => 0,
        };
        let offset = match offset {
            Offset::Small(n) => u64::from(n),
            Offset::AtEnd => size,
            Offset::PastEnd(n) => size.saturating_add(u64::from(n) + 1),
            Offset::Max => u64::MAX,
            Offset::OffTMax => i64::MAX as u64,
        };
        let offset = offset as usize;
        let range_fails_in_both = matches!(now, Now::Same { .. }) && (offset as u64) <= size;
        let len = match len {
            Len::Small(n) => n as usize,
            // Huge lengths only where both must reject the range before touching the buffer
            // (libpmem2 would read into it otherwise).
            Len::Max if range_fails_in_both => usize::MAX,
            Len::AboveIsizeMax if range_fails_in_both => isize::MAX as usize + 1,
            _ => MAX_LEN,
        };
        let buffer_len = len.min(MAX_LEN);
        let write = byte.is_some();
        let is_o_append = matches!(now, Now::Same { flags, .. } if flags & libc::O_APPEND != 0);
        let contents = |fd: RawFd| -> Option<Vec<u8>> {
            let path = format!("/proc/self/fd/{fd}");
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_file() && meta.len() <= 1 << 20 => std::fs::read(&path).ok(),
                _ => None,
            }
        };
        let fd = match made {
            Made::Fd { fd, .. } => Some(fd),
            Made::Anon(_) => None,
        };
        let call = |api: &Api, src: *mut Src| -> (Reply, Option<Vec<u8>>) {
            let mut buffer = vec![byte.unwrap_or(0xa5); buffer_len];
            let buf: *mut c_void = if null_buf {
                std::ptr::null_mut()
            } else {
                buffer.as_mut_ptr().cast()
            };
            api.provoke();
            // SAFETY: `src` is live; `buf` is NULL or valid for `len` bytes — or `len` is huge
            // and both libraries reject the range before touching it (see above). A NULL
            // buffer only reaches pread/pwrite(2), which say EFAULT.
            let code = unsafe {
                if write {
                    (api.pwrite)(src, buf, len, offset)
                } else {
                    (api.pread)(src, buf, len, offset)
                }
            };
            let message = api.fresh_message();
            let after = fd.and_then(contents);
            (
                Reply {
                    code,
                    value: buffer,
                    message,
                },
                after,
            )
        };
        let (ours, ours_after) = call(&self.ours, ours_src);
        let (theirs, theirs_after) = call(&self.theirs, theirs_src);
        let what = format!("{what}: len {len}, offset {offset}, size {size}");
        if self.trace {
            eprintln!(
                "  {what}: ours {} {:?} | libpmem2 {} {:?}",
                ours.code, ours.message, theirs.code, theirs.message
            );
        }
        let ours_failed_alone = |code: c_int, why: &str| {
            assert_eq!(ours.code, code, "{what}: ours {ours:?} ({why})");
            assert!(
                ours.message.is_some(),
                "{what}: ours failed without a message"
            );
            if !write {
                assert!(
                    ours.value.iter().all(|&b| b == 0xa5),
                    "{what}: ours wrote into buf"
                );
            }
        };
        match now {
            Now::Anon | Now::Closed => {
                let want = match now {
                    Now::Anon => SOURCE_TYPE_NOT_SUPPORTED,
                    _ => INVALID_FILE_HANDLE,
                };
                assert_eq!((ours.code, theirs.code), (want, want), "{what}");
                check_messages(
                    &what,
                    ours.code,
                    &ours.message,
                    theirs.code,
                    &theirs.message,
                    false,
                );
            }
            Now::Changed { .. } => {
                // (ours) the number refers to another file now; libpmem2 reads/writes that
                // one, with whatever pread/pwrite(2) say.
                ours_failed_alone(INVALID_FILE_HANDLE, "descriptor reused");
            }
            Now::Same { flags, .. } => {
                let offset = offset as u64;
                let in_range = offset <= size && (len as u64) <= size - offset;
                if null_buf && len > 0 && in_range {
                    // (ours) -EINVAL where libpmem2, having checked the source and the range
                    // as ours did, hands NULL to pread/pwrite(2).
                    ours_failed_alone(EINVAL, "buf == NULL");
                    return;
                }
                if offset > size {
                    // (ours) an offset past the end is rejected; libpmem2's size - offset
                    // underflows: it reads nothing or writes past the end, and returns what
                    // pread/pwrite(2) say.
                    ours_failed_alone(LENGTH_OUT_OF_RANGE, "offset past the end");
                    if len as u64 > size.wrapping_sub(offset) {
                        // Even the underflowed remainder is too short.
                        assert_eq!(
                            theirs.code, LENGTH_OUT_OF_RANGE,
                            "{what}: libpmem2 {theirs:?}"
                        );
                    } else {
                        // 0, or -errno of pread/pwrite(2) (EBADF, EINVAL, EFBIG, ESPIPE past
                        // off_t's end…), never one of libpmem2's own codes.
                        assert!(
                            (-4095..=0).contains(&theirs.code),
                            "{what}: libpmem2 {theirs:?}"
                        );
                    }
                    return;
                }
                // Out of range: both reject it. In range: whatever the one pread/pwrite(2) of
                // libpmem2 says (0; EBADF for a write to a read-only descriptor, even of 0
                // bytes; ESPIPE for a procfs file…), ours the same.
                // The number may now hold another descriptor of the same file (dup2), with
                // another access mode: what it permits is what the kernel checks.
                let mode = flags & libc::O_ACCMODE;
                let permitted = flags & libc::O_PATH == 0
                    && if write {
                        mode == libc::O_WRONLY || mode == libc::O_RDWR
                    } else {
                        mode == libc::O_RDONLY || mode == libc::O_RDWR
                    };
                let want = if !in_range {
                    Some(LENGTH_OUT_OF_RANGE)
                } else if !permitted {
                    // EBADF; ESPIPE first for procfs files.
                    assert!(
                        [EBADF, -libc::ESPIPE].contains(&theirs.code),
                        "{what}: {theirs:?}"
                    );
                    None
                } else {
                    stat_mode_regular_file_answer(&what, &theirs)
                };
                assert_eq!(
                    ours.code, theirs.code,
                    "{what}: ours {ours:?} | libpmem2 {theirs:?}"
                );
                if let Some(want) = want {
                    assert_eq!(
                        ours.code, want,
                        "{what}: ours {ours:?} | libpmem2 {theirs:?}"
                    );
                }
                let want = ours.code;
                // Both read the same bytes (nothing changed the file in between).
                assert_eq!(ours.value, theirs.value, "{what}: buffers");
                if write && want == 0 && !is_o_append {
                    // The same bytes at the same place: the second write changed nothing.
                    assert_eq!(
                        ours_after, theirs_after,
                        "{what}: file after ours / after libpmem2"
                    );
                }
                // (ours) a failing write's message says "write"; libpmem2's says "read".
                check_messages(
                    &what,
                    ours.code,
                    &ours.message,
                    theirs.code,
                    &theirs.message,
                    write,
                );
            }
        }
    }

    /// Deletes everything and closes every descriptor this input opened.
    fn finish(&mut self) {
        for i in 0..self.pairs.len() {
            self.delete(i);
        }
        for fd in self.open.drain(..) {
            // SAFETY: a number this input holds open.
            unsafe { libc::close(fd) };
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Now {
    Anon,
    /// Still the file the sources were made on.
    Same {
        size: i64,
        flags: c_int,
    },
    /// Open, on another file (the number was closed and reused).
    Changed {
        size: i64,
    },
    Closed,
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// An in-range transfer on a file both libraries can read (and, for a write, write): 0,
/// unless the file refuses I/O at an offset (procfs: ESPIPE), which libpmem2's answer shows.
fn stat_mode_regular_file_answer(what: &str, theirs: &Reply) -> Option<c_int> {
    match theirs.code {
        0 => Some(0),
        code if code == -libc::ESPIPE => None,
        code => panic!("{what}: an in-range transfer failed in libpmem2 with {code}: {theirs:?}"),
    }
}

/// Both replies are the same (code, value), and `want` if given; messages per
/// [`check_messages`].
fn same(what: &str, ours: &Reply, theirs: &Reply, want: Option<(c_int, Vec<u8>)>) {
    assert_eq!(
        (ours.code, &ours.value),
        (theirs.code, &theirs.value),
        "{what}: ours {ours:?} | libpmem2 {theirs:?}"
    );
    if let Some((code, value)) = want {
        assert_eq!(
            (ours.code, ours.value.clone()),
            (code, value),
            "{what}: ours {ours:?}"
        );
    }
    check_messages(
        what,
        ours.code,
        &ours.message,
        theirs.code,
        &theirs.message,
        false,
    );
}

/// Every failure of ours sets a message; a success leaves it alone. Where both fail alike and
/// libpmem2 set a fresh message, ours is the same in our words (`readlink`; `write` for
/// `write_word`).
fn check_messages(
    what: &str,
    ours_code: c_int,
    ours: &Option<String>,
    theirs_code: c_int,
    theirs: &Option<String>,
    write_word: bool,
) {
    if ours_code == 0 {
        assert_eq!(ours, &None, "{what}: ours succeeded but set a message");
        return;
    }
    let Some(ours_text) = ours else {
        // get_fd of an anonymous source sets exactly the provoked text.
        assert_eq!(
            ours_code, FILE_DESCRIPTOR_NOT_SET,
            "{what}: ours failed without a message"
        );
        return;
    };
    assert!(!ours_text.is_empty(), "{what}: ours set an empty message");
    let Some(theirs_text) = theirs else {
        return;
    };
    if ours_code == theirs_code {
        let mut want = in_our_words(theirs_text);
        if write_word {
            want = want.replacen("size of read", "size of write", 1);
        }
        assert_eq!(ours_text, &want, "{what}: messages");
    }
}

fuzz_target!(|ops: Vec<Op>| {
    scratch().reset();
    let mut run = Run::new();
    for op in ops.into_iter().take(MAX_OPS) {
        run.run(op);
    }
    run.finish();
});
