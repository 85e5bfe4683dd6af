//! Fuzz target 5: random sequences of C-ABI calls on our library alone — NULL pointers,
//! double delete, pool exhaustion, failing and misaligned allocations, calls on sources that
//! live in slots freed and handed out again — checked against a model of what each call must
//! answer. No crash, no leak, no lost or doubly handed-out slot.
//!
//! How it reaches our code: the C ABI's Rust functions (`shims/c/src/lib.rs`, unchanged) are
//! compiled into this binary as an rlib (`fuzz/capi-rlib`), so AddressSanitizer and the
//! coverage instrumentation see them; no libpmem2 is loaded here (see capi-rlib/Cargo.toml).
//!
//! The process registers, once, a malloc/free pair over a `StaticPool<4>`
//! (`pmem2_source_set_funcs`). Freed slots are poisoned for AddressSanitizer, so a use of a
//! deleted source is reported even though the pool is not heap memory. The harness itself
//! never uses a deleted pointer: each of its source variables is NULL or live, and `delete`
//! goes through the variable (which the call sets to NULL), so a second delete is `&NULL`.
//!
//! Oracle: the model knows every descriptor, which file each refers to now and each file's
//! contents, so it predicts every code, every out-value and every byte read. After every
//! operation each live source must still answer for what it was made from, and the pool must
//! hold exactly the live sources; at the end of an input everything is deleted and the pool
//! must be empty.
#![no_main]
#![feature(cfg_sanitize)]

use std::collections::BTreeSet;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::ptr::{null_mut, NonNull};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, Once, OnceLock};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use pmem2_source::codes::{
    PMEM2_E_DAX_REGION_NOT_FOUND, PMEM2_E_FILE_DESCRIPTOR_NOT_SET, PMEM2_E_INVALID_FILE_HANDLE,
    PMEM2_E_INVALID_FILE_TYPE, PMEM2_E_LENGTH_OUT_OF_RANGE, PMEM2_E_NOSUPP,
    PMEM2_E_SOURCE_TYPE_NOT_SUPPORTED,
};
use pmem2_source::{Source, SourceAlloc, StaticPool};
use pmem2_source_capi::{
    pmem2_errormsg, pmem2_source_alignment, pmem2_source_delete, pmem2_source_device_id,
    pmem2_source_device_usc, pmem2_source_from_anon, pmem2_source_from_fd, pmem2_source_get_fd,
    pmem2_source_numa_node, pmem2_source_pread_mcsafe, pmem2_source_pwrite_mcsafe,
    pmem2_source_set_funcs, pmem2_source_size,
};

const EINVAL: c_int = -libc::EINVAL;
const ENOMEM: c_int = -libc::ENOMEM;
const EBUSY: c_int = -libc::EBUSY;
const EBADF: c_int = -libc::EBADF;

// ---------------------------------------------------------------------------------------
// The allocator: a StaticPool<4> behind a C malloc/free pair
// ---------------------------------------------------------------------------------------

/// Slots for sources: the 5th live source is -ENOMEM.
const POOL_SLOTS: usize = 4;
static POOL: StaticPool<POOL_SLOTS> = StaticPool::new();

/// What the next `pool_malloc` does (set by `Op::FailNextAllocation` / `MisalignNext…`).
static NEXT_ALLOCATION: AtomicU8 = AtomicU8::new(NORMAL);
const NORMAL: u8 = 0;
const FAIL: u8 = 1;
const MISALIGN: u8 = 2;

/// Slot addresses handed out by `pool_malloc` and not yet freed: a slot handed out twice, or
/// a free of something not handed out, is a bug.
static OUTSTANDING: Mutex<BTreeSet<usize>> = Mutex::new(BTreeSet::new());

#[cfg(sanitize = "address")]
unsafe extern "C" {
    fn __asan_poison_memory_region(addr: *const c_void, size: usize);
    fn __asan_unpoison_memory_region(addr: *const c_void, size: usize);
}

/// Marks a free slot unusable (AddressSanitizer reports any access until it is handed out).
fn poison(slot: NonNull<Source>) {
    #[cfg(sanitize = "address")]
    // SAFETY: the slot is memory of the static pool, `size_of::<Source>()` bytes; poisoning
    // only changes ASan's shadow memory.
    unsafe {
        __asan_poison_memory_region(slot.as_ptr().cast(), size_of::<Source>());
    }
    #[cfg(not(sanitize = "address"))]
    let _ = slot;
}

fn unpoison(slot: NonNull<Source>) {
    #[cfg(sanitize = "address")]
    // SAFETY: as in `poison`.
    unsafe {
        __asan_unpoison_memory_region(slot.as_ptr().cast(), size_of::<Source>());
    }
    #[cfg(not(sanitize = "address"))]
    let _ = slot;
}

/// `malloc` for the C ABI: one pool slot (the C ABI asks only for one `struct pmem2_source`).
unsafe extern "C" fn pool_malloc(size: usize) -> *mut c_void {
    assert_eq!(size, size_of::<Source>(), "the C ABI allocates one source");
    match NEXT_ALLOCATION.swap(NORMAL, Ordering::SeqCst) {
        FAIL => return null_mut(),
        how => {
            let Some(slot) = (&POOL).allocate() else {
                return null_mut();
            };
            unpoison(slot);
            let fresh = OUTSTANDING.lock().unwrap().insert(slot.as_ptr() as usize);
            assert!(fresh, "slot {slot:p} handed out twice");
            if how == MISALIGN {
                // Not aligned for a source: the C ABI must give it back and fail.
                return slot.as_ptr().cast::<u8>().wrapping_add(1).cast();
            }
            slot.as_ptr().cast()
        }
    }
}

/// `free` for the C ABI.
unsafe extern "C" fn pool_free(ptr: *mut c_void) {
    if ptr.is_null() {
        return;
    }
    let mut address = ptr as usize;
    if address % align_of::<Source>() == 1 {
        address -= 1; // the misaligned pointer of MISALIGN
    }
    let removed = OUTSTANDING.lock().unwrap().remove(&address);
    assert!(
        removed,
        "free of {ptr:p}, which pool_malloc did not hand out (or freed twice)"
    );
    let slot = NonNull::new(address as *mut Source).expect("not NULL");
    // SAFETY: `slot` came from POOL.allocate (it was outstanding) and is released once.
    unsafe { (&POOL).deallocate(slot) };
    poison(slot);
}

/// Registers the pool pair before the first allocation (once per process).
fn register_allocator() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // Poison every slot: none is handed out yet.
        let mut taken = Vec::new();
        while let Some(slot) = (&POOL).allocate() {
            taken.push(slot);
        }
        for slot in taken {
            // SAFETY: just allocated from POOL, released once.
            unsafe { (&POOL).deallocate(slot) };
            poison(slot);
        }
        // SAFETY: the pair behaves like malloc/free for the only size the C ABI asks for, and
        // lives for the whole process.
        let code = unsafe { pmem2_source_set_funcs(Some(pool_malloc), Some(pool_free)) };
        assert_eq!(code, 0, "pmem2_source_set_funcs: {}", message());
    });
}

// ---------------------------------------------------------------------------------------
// The descriptors of one input
// ---------------------------------------------------------------------------------------

/// The descriptor numbers the operations name.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
enum FdRef {
    /// A memfd's number; `Op::Retarget`/`Close`/`Restore` change what it refers to.
    Memfd,
    FileRw,
    FileRo,
    DevNull,
    Directory,
    PipeWrite,
    PipeRead,
    Closed,
    Minus1,
    IntMin,
    IntMax,
    Million,
}

/// A regular file the model keeps the contents of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileId {
    Memfd,
    OtherMemfd,
    File,
}

/// What the memfd's number refers to now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MemfdNumber {
    Original,
    Other,
    Closed,
}

/// A scratch directory for the regular file, made once per process.
fn scratch_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // tmpfs where there is one: rewriting the file for every input must not hit a disk.
        let base = std::env::var_os("PMEM2_FUZZ_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::path::Path::new("/dev/shm")
                    .is_dir()
                    .then(|| PathBuf::from("/dev/shm"))
            })
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("pmem2-fuzz-capi-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the scratch directory");
        // SAFETY: registers a function with no preconditions, run once at exit.
        unsafe { libc::atexit(remove_scratch) };
        dir
    })
}

/// Removes the scratch directory when the fuzzer exits (not after a crash: then it stays for
/// inspection).
extern "C" fn remove_scratch() {
    let _ = std::fs::remove_dir_all(scratch_dir());
}

fn owned(fd: RawFd, what: &str) -> OwnedFd {
    assert!(fd >= 0, "{what}: {}", std::io::Error::last_os_error());
    // SAFETY: just returned open by the kernel; nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn memfd_with(contents: &[u8]) -> OwnedFd {
    // SAFETY: the name is a NUL-terminated string.
    let fd = unsafe { libc::memfd_create(c"pmem2-fuzz".as_ptr(), libc::MFD_CLOEXEC) };
    let fd = owned(fd, "memfd_create");
    write_all_at(fd.as_raw_fd(), contents, 0);
    fd
}

fn write_all_at(fd: RawFd, data: &[u8], offset: i64) {
    if data.is_empty() {
        return;
    }
    // SAFETY: `data` is valid for reads of its length.
    let n = unsafe { libc::pwrite(fd, data.as_ptr().cast(), data.len(), offset) };
    assert_eq!(
        n,
        data.len() as isize,
        "pwrite: {}",
        std::io::Error::last_os_error()
    );
}

fn open(path: &CStr, flags: c_int) -> OwnedFd {
    // SAFETY: `path` is NUL-terminated.
    let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) };
    owned(fd, "open")
}

/// Every descriptor of one input, closed when it is dropped.
struct Fixture {
    memfd: OwnedFd,
    /// Keeps the original memfd while its number refers to something else.
    memfd_saved: OwnedFd,
    other_memfd: OwnedFd,
    file_rw: OwnedFd,
    file_ro: OwnedFd,
    dev_null: OwnedFd,
    directory: OwnedFd,
    pipe_read: OwnedFd,
    pipe_write: OwnedFd,
    closed: RawFd,
    memfd_number: MemfdNumber,
}

impl Fixture {
    fn new(memfd: &[u8], other: &[u8], file: &[u8]) -> Fixture {
        let path = scratch_dir().join("file");
        std::fs::write(&path, file).expect("write the scratch file");
        let c_path = std::ffi::CString::new(path.into_os_string().into_encoded_bytes())
            .expect("no NUL in the path");
        let c_dir = std::ffi::CString::new(scratch_dir().as_os_str().as_encoded_bytes())
            .expect("no NUL in the path");
        let memfd = memfd_with(memfd);
        // SAFETY: F_DUPFD_CLOEXEC takes an integer.
        let saved = unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
        let mut fds = [-1; 2];
        // SAFETY: `fds` is writable for two ints.
        let ret = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
        assert_eq!(ret, 0, "pipe2");
        // A number far above what is open, closed at once.
        // SAFETY: F_DUPFD_CLOEXEC takes an integer.
        let high = unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 4000) };
        let closed = owned(high, "F_DUPFD").as_raw_fd();
        Fixture {
            memfd_saved: owned(saved, "F_DUPFD"),
            memfd,
            other_memfd: memfd_with(other),
            file_rw: open(&c_path, libc::O_RDWR),
            file_ro: open(&c_path, libc::O_RDONLY),
            dev_null: open(c"/dev/null", libc::O_RDWR),
            directory: open(&c_dir, libc::O_RDONLY | libc::O_DIRECTORY),
            pipe_read: owned(fds[0], "pipe read end"),
            pipe_write: owned(fds[1], "pipe write end"),
            closed,
            memfd_number: MemfdNumber::Original,
        }
    }

    fn number(&self, fd: FdRef) -> RawFd {
        match fd {
            FdRef::Memfd => self.memfd.as_raw_fd(),
            FdRef::FileRw => self.file_rw.as_raw_fd(),
            FdRef::FileRo => self.file_ro.as_raw_fd(),
            FdRef::DevNull => self.dev_null.as_raw_fd(),
            FdRef::Directory => self.directory.as_raw_fd(),
            FdRef::PipeWrite => self.pipe_write.as_raw_fd(),
            FdRef::PipeRead => self.pipe_read.as_raw_fd(),
            FdRef::Closed => self.closed,
            FdRef::Minus1 => -1,
            FdRef::IntMin => i32::MIN,
            FdRef::IntMax => i32::MAX,
            FdRef::Million => 1_000_000,
        }
    }

    /// Points the memfd's number at `to` (dup2), or closes it.
    fn set_memfd_number(&mut self, to: MemfdNumber) {
        let number = self.memfd.as_raw_fd();
        let from = match to {
            MemfdNumber::Original => self.memfd_saved.as_raw_fd(),
            MemfdNumber::Other => self.other_memfd.as_raw_fd(),
            MemfdNumber::Closed => {
                if self.memfd_number != MemfdNumber::Closed {
                    // SAFETY: the number is the fixture's own (owned by `self.memfd`, which is
                    // dup2'ed back open before it is dropped).
                    assert_eq!(unsafe { libc::close(number) }, 0, "close");
                }
                self.memfd_number = to;
                return;
            }
        };
        // SAFETY: dup2 onto the fixture's own number.
        let ret = unsafe { libc::dup3(from, number, libc::O_CLOEXEC) };
        assert_eq!(ret, number, "dup3: {}", std::io::Error::last_os_error());
        self.memfd_number = to;
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // `self.memfd` closes its number: make it open (on anything) so that close succeeds.
        if self.memfd_number == MemfdNumber::Closed {
            self.set_memfd_number(MemfdNumber::Original);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------

/// How many source variables the harness has (more than the pool holds).
const VARS: usize = 6;

#[derive(Arbitrary, Clone, Copy, Debug)]
enum Var {
    /// A NULL `src` (or `struct pmem2_source **` for delete).
    Null,
    /// Variable `n % VARS`: NULL (never made, or deleted) or a live source.
    Slot(u8),
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum Len {
    Small(u8),
    /// `usize::MAX`: more than any buffer; the library must not touch it.
    Max,
    /// `isize::MAX + 1`: the smallest size that cannot be a slice.
    AboveIsizeMax,
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum Offset {
    Small(u8),
    /// The size of the file the source is on (when the model knows it), else 0.
    AtEnd,
    /// Past the end by n + 1.
    PastEnd(u8),
    Max,
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum AnonSize {
    Small(u16),
    Zero,
    Max,
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum IdBuffer {
    /// `id == NULL`: asks for the length.
    Null,
    /// A buffer of n bytes, `*len = n`.
    Bytes(u8),
}

#[derive(Arbitrary, Clone, Debug)]
enum Op {
    FromFd {
        var: Var,
        fd: FdRef,
    },
    FromAnon {
        var: Var,
        size: AnonSize,
    },
    GetFd {
        var: Var,
        null_out: bool,
    },
    Size {
        var: Var,
        null_out: bool,
    },
    Alignment {
        var: Var,
        null_out: bool,
    },
    NumaNode {
        var: Var,
        null_out: bool,
    },
    DeviceId {
        var: Var,
        id: IdBuffer,
        null_len: bool,
    },
    DeviceUsc {
        var: Var,
        null_out: bool,
    },
    Pread {
        var: Var,
        len: Len,
        offset: Offset,
        null_buf: bool,
    },
    Pwrite {
        var: Var,
        data: Vec<u8>,
        len: Len,
        offset: Offset,
        null_buf: bool,
    },
    Delete {
        var: Var,
    },
    /// Reads `pmem2_errormsg()`.
    ErrorMessage,
    /// `pmem2_source_set_funcs` again (too late: -EBUSY), or with NULL functions (-EINVAL).
    SetFuncs {
        null_malloc: bool,
        null_free: bool,
    },
    /// The next allocation fails.
    FailNextAllocation,
    /// The next allocation returns a pointer not aligned for a source.
    MisalignNextAllocation,
    /// The memfd's number now refers to another memfd.
    Retarget,
    /// The memfd's number is closed.
    Close,
    /// The memfd's number refers to the original memfd again.
    Restore,
    /// from_fd (and delete) on another thread: the same answer there, its message its own,
    /// and this thread's message untouched.
    OtherThread {
        fd: FdRef,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    memfd: Vec<u8>,
    other_memfd: Vec<u8>,
    file: Vec<u8>,
    ops: Vec<Op>,
}

const MAX_OPS: usize = 64;
const MAX_CONTENTS: usize = 96;

// ---------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Made {
    Anon(usize),
    /// From descriptor `fd` (which the source must give back), on file `file` at the time.
    Fd {
        fd: FdRef,
        number: RawFd,
        file: FileId,
    },
}

#[derive(Clone, Copy, Debug)]
struct Live {
    ptr: *mut Source,
    made: Made,
}

struct Model {
    fixture: Fixture,
    vars: [*mut Source; VARS],
    live: [Option<Live>; VARS],
    contents: [Vec<u8>; 3],
    /// `PMEM2_FUZZ_TRACE` set: print every operation and its code.
    trace: bool,
}

fn file_index(file: FileId) -> usize {
    match file {
        FileId::Memfd => 0,
        FileId::OtherMemfd => 1,
        FileId::File => 2,
    }
}

/// The calling thread's message.
fn message() -> String {
    // SAFETY: pmem2_errormsg returns this thread's NUL-terminated buffer.
    let text = unsafe { CStr::from_ptr(pmem2_errormsg()) };
    text.to_string_lossy().into_owned()
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// What a query on a source must answer, when it gets as far as the source.
enum Want<T> {
    Ok(T),
    Fails(c_int),
}

impl Model {
    fn new(input: &Input) -> Model {
        let cut = |bytes: &Vec<u8>| bytes[..bytes.len().min(MAX_CONTENTS)].to_vec();
        let contents = [cut(&input.memfd), cut(&input.other_memfd), cut(&input.file)];
        Model {
            fixture: Fixture::new(&contents[0], &contents[1], &contents[2]),
            vars: [null_mut(); VARS],
            live: [None; VARS],
            contents,
            trace: std::env::var_os("PMEM2_FUZZ_TRACE").is_some(),
        }
    }

    fn live_count(&self) -> usize {
        self.live.iter().flatten().count()
    }

    /// Which file descriptor `fd` refers to now (`None`: closed, or not a regular file).
    fn file_of(&self, fd: FdRef) -> Option<FileId> {
        match fd {
            FdRef::Memfd => match self.fixture.memfd_number {
                MemfdNumber::Original => Some(FileId::Memfd),
                MemfdNumber::Other => Some(FileId::OtherMemfd),
                MemfdNumber::Closed => None,
            },
            FdRef::FileRw | FdRef::FileRo => Some(FileId::File),
            _ => None,
        }
    }

    /// What from_fd on `fd` must answer (before allocation).
    fn classify(&self, fd: FdRef) -> Result<FileId, c_int> {
        match fd {
            FdRef::Memfd | FdRef::FileRw | FdRef::FileRo => {
                self.file_of(fd).ok_or(PMEM2_E_INVALID_FILE_HANDLE)
            }
            FdRef::DevNull | FdRef::Directory | FdRef::PipeRead => Err(PMEM2_E_INVALID_FILE_TYPE),
            FdRef::PipeWrite
            | FdRef::Closed
            | FdRef::Minus1
            | FdRef::IntMin
            | FdRef::IntMax
            | FdRef::Million => Err(PMEM2_E_INVALID_FILE_HANDLE),
        }
    }

    /// The source in variable `var`, or NULL.
    fn src(&self, var: Var) -> *mut Source {
        match var {
            Var::Null => null_mut(),
            Var::Slot(n) => self.vars[n as usize % VARS],
        }
    }

    fn live_of(&self, var: Var) -> Option<Live> {
        match var {
            Var::Null => None,
            Var::Slot(n) => self.live[n as usize % VARS],
        }
    }

    /// The size a source must report now, or its failure (`Err`).
    fn size_of(&self, made: Made) -> Result<usize, c_int> {
        match made {
            Made::Anon(size) => Ok(size),
            Made::Fd { fd, file, .. } => match self.file_of(fd) {
                Some(now) if now == file => Ok(self.contents[file_index(file)].len()),
                _ => Err(PMEM2_E_INVALID_FILE_HANDLE),
            },
        }
    }

    /// The source a creation stores into: variable `var` if it is free, else the first free
    /// one (a live source is never overwritten: that would leak it), else none.
    fn free_var(&self, var: Var) -> Option<usize> {
        let Var::Slot(n) = var else { return None };
        let n = n as usize % VARS;
        if self.live[n].is_none() {
            return Some(n);
        }
        (0..VARS).find(|&i| self.live[i].is_none())
    }

    /// Runs one operation and checks its answer against the model.
    fn run(&mut self, op: &Op) {
        let before = message();
        let (code, what) = self.step(op);
        if self.trace {
            eprintln!("op {what} -> {code}");
        }
        let after = message();
        if code == 0 {
            assert_eq!(
                after, before,
                "{what}: success must leave the message alone"
            );
        } else {
            assert!(
                !after.is_empty(),
                "{what}: failed ({code}) without a message"
            );
            assert!(after.len() < 1024, "{what}: message longer than the buffer");
        }
        self.check_live(&what);
    }

    /// Makes the call of `op`; returns its code and a description for failures.
    fn step(&mut self, op: &Op) -> (c_int, String) {
        let what = format!("{op:?}");
        let code = match *op {
            Op::FromFd { var, fd } => {
                let number = self.fixture.number(fd);
                let want = self.classify(fd).map(|file| Made::Fd { fd, number, file });
                // SAFETY: `src` is NULL or valid for writes.
                self.create(var, &what, want, |src| unsafe {
                    pmem2_source_from_fd(src, number)
                })
            }
            Op::FromAnon { var, size } => {
                let size = match size {
                    AnonSize::Small(n) => n as usize,
                    AnonSize::Zero => 0,
                    AnonSize::Max => usize::MAX,
                };
                let want = Ok(Made::Anon(size));
                // SAFETY: `src` is NULL or valid for writes.
                self.create(var, &what, want, |src| unsafe {
                    pmem2_source_from_anon(src, size)
                })
            }
            Op::GetFd { var, null_out } => {
                let want = self.live_of(var).map(|live| match live.made {
                    Made::Anon(_) => Want::Fails(PMEM2_E_FILE_DESCRIPTOR_NOT_SET),
                    Made::Fd { number, .. } => Want::Ok(number),
                });
                // SAFETY: the source is NULL or live; the out-pointer NULL or valid.
                self.query(var, null_out, want, &what, |src, out| unsafe {
                    pmem2_source_get_fd(src, out)
                })
            }
            Op::Size { var, null_out } => {
                let want = self.live_of(var).map(|live| match self.size_of(live.made) {
                    Ok(size) => Want::Ok(size),
                    Err(code) => Want::Fails(code),
                });
                // SAFETY: as above.
                self.query(var, null_out, want, &what, |src, out| unsafe {
                    pmem2_source_size(src, out)
                })
            }
            Op::Alignment { var, null_out } => {
                let want = self.live_of(var).map(|_| Want::Ok(page_size()));
                // SAFETY: as above.
                self.query(var, null_out, want, &what, |src, out| unsafe {
                    pmem2_source_alignment(src, out)
                })
            }
            Op::NumaNode { var, null_out } => {
                // No NVDIMM on the fuzzing machines: no region behind any file.
                let want = self.live_of(var).map(|live| match live.made {
                    Made::Anon(_) => Want::Fails(PMEM2_E_NOSUPP),
                    Made::Fd { .. } => Want::Fails(PMEM2_E_DAX_REGION_NOT_FOUND),
                });
                // SAFETY: as above.
                self.query(var, null_out, want, &what, |src, out: *mut c_int| unsafe {
                    pmem2_source_numa_node(src, out)
                })
            }
            Op::DeviceUsc { var, null_out } => {
                // libpmem2 zeroes `*usc` before it looks for NVDIMMs, after refusing an
                // anonymous source.
                let want = self.live_of(var).map(|live| match live.made {
                    Made::Fd { .. } if null_out => Want::Fails(EINVAL),
                    _ => Want::Fails(PMEM2_E_NOSUPP),
                });
                // SAFETY: as above.
                self.query(var, null_out, want, &what, |src, out: *mut u64| unsafe {
                    pmem2_source_device_usc(src, out)
                })
            }
            Op::DeviceId { var, id, null_len } => self.device_id(var, id, null_len, &what),
            Op::Pread {
                var,
                len,
                offset,
                null_buf,
            } => self.transfer(var, None, len, offset, null_buf, &what),
            Op::Pwrite {
                var,
                ref data,
                len,
                offset,
                null_buf,
            } => self.transfer(var, Some(data), len, offset, null_buf, &what),
            Op::Delete { var } => {
                let code = match var {
                    // SAFETY: NULL is accepted.
                    Var::Null => unsafe { pmem2_source_delete(null_mut()) },
                    Var::Slot(n) => {
                        let n = n as usize % VARS;
                        // SAFETY: the variable is NULL or a live source, given up here.
                        let code = unsafe { pmem2_source_delete(&mut self.vars[n]) };
                        assert!(self.vars[n].is_null(), "{what}: delete leaves *src NULL");
                        self.live[n] = None;
                        code
                    }
                };
                assert_eq!(code, 0, "{what}");
                code
            }
            Op::ErrorMessage => {
                let text = message();
                assert!(text.len() < 1024, "{what}: {text:?}");
                0
            }
            Op::SetFuncs {
                null_malloc,
                null_free,
            } => {
                let malloc = (!null_malloc).then_some(pool_malloc as unsafe extern "C" fn(_) -> _);
                let free = (!null_free).then_some(pool_free as unsafe extern "C" fn(_));
                // SAFETY: the pair (where given) is the registered one; it is refused anyway.
                let code = unsafe { pmem2_source_set_funcs(malloc, free) };
                let want = if null_malloc || null_free {
                    EINVAL
                } else {
                    EBUSY
                };
                assert_eq!(code, want, "{what}: {}", message());
                code
            }
            Op::FailNextAllocation => {
                NEXT_ALLOCATION.store(FAIL, Ordering::SeqCst);
                0
            }
            Op::MisalignNextAllocation => {
                NEXT_ALLOCATION.store(MISALIGN, Ordering::SeqCst);
                0
            }
            Op::Retarget => {
                self.fixture.set_memfd_number(MemfdNumber::Other);
                0
            }
            Op::Close => {
                self.fixture.set_memfd_number(MemfdNumber::Closed);
                0
            }
            Op::Restore => {
                self.fixture.set_memfd_number(MemfdNumber::Original);
                0
            }
            Op::OtherThread { fd } => {
                let number = self.fixture.number(fd);
                let injected = NEXT_ALLOCATION.load(Ordering::SeqCst) != NORMAL;
                let want = match self.classify(fd) {
                    Ok(_) if self.live_count() >= POOL_SLOTS || injected => ENOMEM,
                    Ok(_) => 0,
                    Err(code) => code,
                };
                let (code, before, text) = on_other_thread(number);
                assert_eq!(code, want, "{what} on another thread: {text:?}");
                if code == 0 {
                    assert_eq!(text, before, "{what}: success leaves that thread's message");
                } else {
                    assert!(!text.is_empty(), "{what}: the other thread's message");
                }
                0 // this thread made no call: its message must be unchanged
            }
        };
        (code, what)
    }

    /// from_fd/from_anon (`call`) into variable `var` (NULL: `src == NULL`), with `*src`
    /// preset to garbage; `want` is what the source must be, or the classification's failure.
    fn create(
        &mut self,
        var: Var,
        what: &str,
        want: Result<Made, c_int>,
        call: impl FnOnce(*mut *mut Source) -> c_int,
    ) -> c_int {
        let Some(n) = self.free_var(var) else {
            if matches!(var, Var::Null) {
                let code = call(null_mut());
                assert_eq!(code, EINVAL, "{what}: src == NULL");
                return code;
            }
            return 0; // every variable holds a live source: nothing to store into
        };
        let mut src: *mut Source = std::ptr::without_provenance_mut(0x5a5a_5a5a_5a5a_5a58);
        let live_before = self.live_count();
        let injected = NEXT_ALLOCATION.load(Ordering::SeqCst) != NORMAL;
        let code = call(&mut src);
        let want = match want {
            // Allocation happens only after a successful classification.
            Ok(_) if live_before >= POOL_SLOTS || injected => Err(ENOMEM),
            Ok(made) => Ok(made),
            Err(code) => Err(code),
        };
        match want {
            Ok(made) if code == 0 => {
                assert!(!src.is_null(), "{what}: 0 but *src is NULL");
                assert!(src.is_aligned(), "{what}: misaligned source {src:p}");
                for live in self.live.iter().flatten() {
                    assert_ne!(live.ptr, src, "{what}: a live source's slot was handed out");
                }
                self.vars[n] = src;
                self.live[n] = Some(Live { ptr: src, made });
            }
            Ok(made) => panic!("{what}: want a source {made:?}, got {code}: {}", message()),
            // A full pool, or an injected failed or misaligned allocation: -ENOMEM.
            Err(want) => {
                assert_eq!(code, want, "{what}: {}", message());
                assert!(src.is_null(), "{what}: *src must be NULL after a failure");
            }
        }
        // An injected failure is consumed by the allocation, which happens only after a
        // successful classification; clear it either way so it does not leak to later ops.
        NEXT_ALLOCATION.store(NORMAL, Ordering::SeqCst);
        code
    }

    /// A query writing one `T` to an out-parameter preset to a marker; `want` is the answer
    /// for a live source (`None`: the variable is NULL, so the call gets `src == NULL`).
    fn query<T: Copy + PartialEq + std::fmt::Debug + Marker>(
        &mut self,
        var: Var,
        null_out: bool,
        want: Option<Want<T>>,
        what: &str,
        call: impl FnOnce(*const Source, *mut T) -> c_int,
    ) -> c_int {
        let src = self.src(var);
        let mut out = T::MARKER;
        let out_ptr = if null_out { null_mut() } else { &raw mut out };
        let code = call(src, out_ptr);
        let (want_code, want_out) = match want {
            None => (EINVAL, T::MARKER),
            // A NULL out-parameter is refused only where libpmem2 would store the answer:
            // its errors before that come first.
            Some(Want::Ok(_)) if null_out => (EINVAL, T::MARKER),
            Some(Want::Ok(value)) => (0, value),
            Some(Want::Fails(code)) => (code, T::MARKER),
        };
        assert_eq!(
            (code, out),
            (want_code, want_out),
            "{what}: code and out-value (message {:?})",
            message()
        );
        code
    }

    fn device_id(&mut self, var: Var, id: IdBuffer, null_len: bool, what: &str) -> c_int {
        let src = self.src(var);
        let capacity = match id {
            IdBuffer::Null => 0,
            IdBuffer::Bytes(n) => n as usize,
        };
        let mut buffer = vec![b'Z'; capacity];
        let id_ptr: *mut c_char = match id {
            IdBuffer::Null => null_mut(),
            IdBuffer::Bytes(_) => buffer.as_mut_ptr().cast(),
        };
        let mut len = capacity;
        let len_ptr = if null_len { null_mut() } else { &raw mut len };
        // SAFETY: `src` is NULL or live; `id` is NULL or valid for `*len` bytes; `len` NULL or
        // valid.
        let code = unsafe { pmem2_source_device_id(src, id_ptr, len_ptr) };
        // No NVDIMM on the fuzzing machines: libpmem2 fails before it touches `*len`, also
        // a NULL one.
        let want = if src.is_null() {
            EINVAL
        } else {
            PMEM2_E_NOSUPP
        };
        assert_eq!(code, want, "{what}: {}", message());
        assert_eq!(len, capacity, "{what}: *len untouched");
        assert!(buffer.iter().all(|&b| b == b'Z'), "{what}: id untouched");
        code
    }

    /// pread (`data == None`) or pwrite of `data` (cut or padded to the length).
    fn transfer(
        &mut self,
        var: Var,
        data: Option<&Vec<u8>>,
        len: Len,
        offset: Offset,
        null_buf: bool,
        what: &str,
    ) -> c_int {
        let src = self.src(var);
        let live = self.live_of(var);
        let known_size = live.and_then(|live| self.size_of(live.made).ok());
        let len = match len {
            Len::Small(n) => n as usize,
            Len::Max => usize::MAX,
            Len::AboveIsizeMax => isize::MAX as usize + 1,
        };
        let end = known_size.unwrap_or(0);
        let offset = match offset {
            Offset::Small(n) => n as usize,
            Offset::AtEnd => end,
            Offset::PastEnd(n) => end.saturating_add(n as usize + 1),
            Offset::Max => usize::MAX,
        };
        // A real buffer for small lengths; 16 bytes for the huge ones, which the library must
        // reject without touching (no source is that large).
        let buffer_len = if len > isize::MAX as usize { 16 } else { len };
        let mut buffer: Vec<u8> = match data {
            Some(data) => (0..buffer_len)
                .map(|i| data.get(i).copied().unwrap_or(i as u8))
                .collect(),
            None => vec![0xa5; buffer_len],
        };
        let original = buffer.clone();
        let buf: *mut c_void = if null_buf {
            null_mut()
        } else {
            buffer.as_mut_ptr().cast()
        };
        let write = data.is_some();
        // SAFETY: `src` is NULL or live; `buf` is NULL or valid for `len` bytes — or, for the
        // huge lengths, never touched (see above).
        let code = unsafe {
            if write {
                pmem2_source_pwrite_mcsafe(src, buf, len, offset)
            } else {
                pmem2_source_pread_mcsafe(src, buf, len, offset)
            }
        };
        let want = match live {
            None => EINVAL,
            Some(Live {
                made: Made::Anon(_),
                ..
            }) => PMEM2_E_SOURCE_TYPE_NOT_SUPPORTED,
            Some(Live { made, .. }) => match self.size_of(made) {
                Err(code) => code,
                Ok(size) if offset > size || len > size - offset => PMEM2_E_LENGTH_OUT_OF_RANGE,
                // The checks libpmem2 makes before it copies come first.
                Ok(_) if null_buf && len > 0 => EINVAL,
                Ok(_)
                    if write
                        && matches!(
                            made,
                            Made::Fd {
                                fd: FdRef::FileRo,
                                ..
                            }
                        ) =>
                {
                    EBADF
                }
                Ok(_) => 0,
            },
        };
        assert_eq!(
            code,
            want,
            "{what} (len {len}, offset {offset}): {}",
            message()
        );
        if code == 0 && len > 0 {
            let Some(Live {
                made: Made::Fd { file, .. },
                ..
            }) = live
            else {
                unreachable!("only a file source transfers bytes")
            };
            let contents = &mut self.contents[file_index(file)];
            if write {
                contents[offset..offset + len].copy_from_slice(&buffer);
            } else {
                assert_eq!(buffer, contents[offset..offset + len], "{what}: bytes read");
            }
        } else if !write {
            assert_eq!(
                buffer, original,
                "{what}: a failed read leaves the buffer alone"
            );
        }
        code
    }

    /// Every live source still answers for what it was made from; the pool holds exactly the
    /// live sources.
    fn check_live(&self, what: &str) {
        let mut pointers = BTreeSet::new();
        for (n, live) in self.live.iter().enumerate() {
            let Some(live) = live else {
                assert!(self.vars[n].is_null(), "{what}: variable {n} not NULL");
                continue;
            };
            assert_eq!(self.vars[n], live.ptr, "{what}: variable {n}");
            assert!(
                pointers.insert(live.ptr as usize),
                "{what}: two live sources share a slot"
            );
            let mut fd: c_int = -7;
            // SAFETY: `live.ptr` is a live source; `fd` valid.
            let code = unsafe { pmem2_source_get_fd(live.ptr, &mut fd) };
            match live.made {
                Made::Anon(size) => {
                    assert_eq!((code, fd), (PMEM2_E_FILE_DESCRIPTOR_NOT_SET, -7), "{what}");
                    let mut got = 0usize;
                    // SAFETY: as above.
                    let code = unsafe { pmem2_source_size(live.ptr, &mut got) };
                    assert_eq!((code, got), (0, size), "{what}: anonymous size");
                }
                Made::Fd { number, .. } => {
                    assert_eq!((code, fd), (0, number), "{what}: variable {n} lost its fd");
                }
            }
        }
        assert_eq!(
            POOL.in_use(),
            pointers.len(),
            "{what}: pool slots in use vs live sources"
        );
        let outstanding = OUTSTANDING.lock().unwrap();
        assert_eq!(
            *outstanding, pointers,
            "{what}: slots handed out vs live sources"
        );
    }

    /// Deletes every live source; the pool must be empty afterwards.
    fn finish(mut self) {
        for n in 0..VARS {
            // SAFETY: each variable is NULL or a live source, given up here.
            let code = unsafe { pmem2_source_delete(&mut self.vars[n]) };
            assert_eq!(code, 0);
            assert!(self.vars[n].is_null());
            self.live[n] = None;
        }
        assert_eq!(
            POOL.in_use(),
            0,
            "slots lost: the pool is not empty at the end"
        );
        assert!(
            OUTSTANDING.lock().unwrap().is_empty(),
            "slots still outstanding at the end"
        );
        NEXT_ALLOCATION.store(NORMAL, Ordering::SeqCst);
    }
}

/// from_fd on `number` (then delete) on a second, long-lived thread (one thread per operation
/// would make AddressSanitizer's per-thread bookkeeping grow without bound): the code, that
/// thread's message before the call, and after it.
fn on_other_thread(number: RawFd) -> (c_int, String, String) {
    type Channels = (
        std::sync::mpsc::Sender<RawFd>,
        std::sync::mpsc::Receiver<(c_int, String, String)>,
    );
    static WORKER: OnceLock<Mutex<Channels>> = OnceLock::new();
    let worker = WORKER.get_or_init(|| {
        let (jobs, job) = std::sync::mpsc::channel::<RawFd>();
        let (reply, replies) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            assert_eq!(message(), "", "a new thread starts with no message");
            for number in job {
                let before = message();
                let mut src = null_mut();
                // SAFETY: `src` is valid for writes.
                let code = unsafe { pmem2_source_from_fd(&mut src, number) };
                let text = message();
                // SAFETY: NULL or the live source just made, given up here.
                assert_eq!(unsafe { pmem2_source_delete(&mut src) }, 0);
                if reply.send((code, before, text)).is_err() {
                    break;
                }
            }
        });
        Mutex::new((jobs, replies))
    });
    let channels = worker.lock().unwrap();
    channels.0.send(number).expect("the other thread is gone");
    channels.1.recv().expect("the other thread answered")
}

/// The value an out-parameter holds before a call: a call that leaves it alone leaves this.
trait Marker {
    const MARKER: Self;
}

impl Marker for c_int {
    const MARKER: c_int = 0x5a5a_5a5a;
}

impl Marker for usize {
    const MARKER: usize = 0x5a5a_5a5a_5a5a_5a5a;
}

impl Marker for u64 {
    const MARKER: u64 = 0x5a5a_5a5a_5a5a_5a5a;
}

fuzz_target!(|input: Input| {
    register_allocator();
    let mut model = Model::new(&input);
    for op in input.ops.iter().take(MAX_OPS) {
        model.run(op);
    }
    model.finish();
});
