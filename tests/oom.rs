//! Out of memory at every point: each entry point that allocates (`SourceBox::new_in`,
//! `from_fd_in`, `anon_in`) runs in a sequence of creations with an allocator that fails
//! exactly the n-th allocation, for every n. The failing creation is `-ENOMEM` with its
//! message and takes no memory; every other creation is unaffected; a creation that fails
//! before allocating (a bad descriptor) neither allocates nor counts; and when everything is
//! dropped, every allocation has been freed exactly once.

use std::cell::Cell;
use std::ptr::NonNull;

use pmem2_source::sys::scripted::{Call, ScriptedKernel};
use pmem2_source::{
    Errno, Error, FileType, Global, Source, SourceAlloc, SourceBox, StaticPool, codes,
};

/// Wraps an allocator: forwards every call, except that allocation number `fail_at` (1-based)
/// returns `None`; with `sticky`, so does every later one. Counts what passes through.
#[derive(Debug)]
struct FailNth<A> {
    inner: A,
    fail_at: usize,
    sticky: bool,
    attempts: Cell<usize>,
    allocations: Cell<usize>,
    frees: Cell<usize>,
}

impl<A> FailNth<A> {
    fn new(inner: A, fail_at: usize, sticky: bool) -> FailNth<A> {
        FailNth {
            inner,
            fail_at,
            sticky,
            attempts: Cell::new(0),
            allocations: Cell::new(0),
            frees: Cell::new(0),
        }
    }

    fn live(&self) -> usize {
        self.allocations.get() - self.frees.get()
    }
}

// SAFETY: every call is forwarded to `inner` unchanged, or answered `None` without touching
// `inner`; counting has no effect on the memory.
unsafe impl<A: SourceAlloc> SourceAlloc for FailNth<A> {
    fn allocate(&self) -> Option<NonNull<Source>> {
        let attempt = self.attempts.get() + 1;
        self.attempts.set(attempt);
        if attempt == self.fail_at || (self.sticky && attempt > self.fail_at) {
            return None;
        }
        let ptr = self.inner.allocate()?;
        self.allocations.set(self.allocations.get() + 1);
        Some(ptr)
    }

    unsafe fn deallocate(&self, ptr: NonNull<Source>) {
        self.frees.set(self.frees.get() + 1);
        // SAFETY: the caller's guarantee for `ptr` is passed on unchanged.
        unsafe { self.inner.deallocate(ptr) }
    }
}

/// One creation of the sequence.
#[derive(Clone, Copy, Debug)]
enum Step {
    New(usize),
    Anon(usize),
    RegularFile(i32),
    DeviceDax(i32),
    /// A closed descriptor: fails with `PMEM2_E_INVALID_FILE_HANDLE` before allocating.
    ClosedFd(i32),
    /// A directory: fails with `PMEM2_E_INVALID_FILE_TYPE` before allocating.
    Directory(i32),
}

impl Step {
    fn allocates(self) -> bool {
        !matches!(self, Step::ClosedFd(_) | Step::Directory(_))
    }

    fn kernel(self) -> ScriptedKernel {
        match self {
            Step::DeviceDax(_) => ScriptedKernel::char_device(0xfc00),
            Step::ClosedFd(_) => ScriptedKernel::regular_file().with_fcntl(Err(Errno::EBADF)),
            Step::Directory(_) => ScriptedKernel::regular_file().with_mode(0o040755),
            _ => ScriptedKernel::regular_file(),
        }
    }

    /// Creates the source with `alloc`; also returns the scripted kernel's calls.
    fn run<A: SourceAlloc>(self, alloc: A) -> (Result<SourceBox<A>, Error>, Vec<Call>) {
        let kernel = self.kernel();
        let result = match self {
            Step::New(size) => SourceBox::new_in(Source::anon(size), alloc),
            Step::Anon(size) => SourceBox::anon_in(size, alloc),
            Step::RegularFile(fd)
            | Step::DeviceDax(fd)
            | Step::ClosedFd(fd)
            | Step::Directory(fd) => SourceBox::from_fd_in(&kernel, fd, alloc),
        };
        (result, kernel.calls().to_vec())
    }

    /// The source the step makes when memory is there, or its own (non-memory) error.
    fn expected(self) -> Result<Source, Error> {
        match self {
            Step::New(size) | Step::Anon(size) => Ok(Source::anon(size)),
            Step::RegularFile(fd)
            | Step::DeviceDax(fd)
            | Step::ClosedFd(fd)
            | Step::Directory(fd) => Source::from_fd_with(&self.kernel(), fd),
        }
    }
}

/// Every kind of creation, twice, with non-allocating failures in between.
const SEQUENCE: [Step; 10] = [
    Step::Anon(4096),
    Step::RegularFile(3),
    Step::ClosedFd(4),
    Step::DeviceDax(5),
    Step::New(0),
    Step::Directory(6),
    Step::RegularFile(7),
    Step::Anon(usize::MAX),
    Step::New(1 << 21),
    Step::DeviceDax(8),
];

fn allocating_steps() -> usize {
    SEQUENCE.iter().filter(|step| step.allocates()).count()
}

/// Runs the whole sequence with allocation `fail_at` failing (and, if `sticky`, every later
/// one); checks each step's outcome, then that dropping everything frees everything.
fn run_sequence<A: SourceAlloc>(inner: A, fail_at: usize, sticky: bool) -> FailNth<A> {
    let alloc = FailNth::new(inner, fail_at, sticky);
    let mut kept = Vec::new();
    let mut allocating = 0;
    for (index, step) in SEQUENCE.into_iter().enumerate() {
        let what = format!("step {index} ({step:?}), failing allocation {fail_at}");
        let live_before = alloc.live();
        let (result, calls) = step.run(&alloc);
        if !step.allocates() {
            let err = step.expected().expect_err("a failing step");
            assert_eq!(result.map(drop), Err(err), "{what}");
            assert_eq!(alloc.live(), live_before, "{what}: nothing allocated");
            continue;
        }
        allocating += 1;
        let fails = allocating == fail_at || (sticky && allocating > fail_at);
        if fails {
            let err = result.map(drop).expect_err(&what);
            assert_eq!(err, Error::NoMemory, "{what}");
            assert_eq!(err.code(), -12, "{what}");
            assert_eq!(err.name(), "ENOMEM", "{what}");
            assert_eq!(
                err.to_string(),
                "cannot allocate a pmem2_source: out of memory",
                "{what}"
            );
            assert_eq!(
                alloc.live(),
                live_before,
                "{what}: a failed creation holds nothing"
            );
        } else {
            let source = result.unwrap_or_else(|err| panic!("{what}: {err}"));
            assert_eq!(Ok(*source), step.expected(), "{what}");
            assert_eq!(alloc.live(), live_before + 1, "{what}");
            kept.push(source);
        }
        // The descriptor is classified completely before memory is asked for.
        let syscalls = match step {
            Step::RegularFile(_) => 2,
            Step::DeviceDax(_) => 3,
            _ => 0,
        };
        assert_eq!(calls.len(), syscalls, "{what}: {calls:?}");
    }
    assert_eq!(
        alloc.attempts.get(),
        allocating_steps(),
        "one allocation per creation"
    );
    let succeeded = kept.len();
    for source in &kept {
        assert!(source.anon_size().is_some() || source.file_type().is_some());
    }
    drop(kept);
    assert_eq!(alloc.allocations.get(), succeeded);
    assert_eq!(alloc.frees.get(), succeeded, "allocations == frees");
    alloc
}

#[test]
fn every_allocation_failing_once_in_a_static_pool() {
    let k = allocating_steps();
    assert_eq!(k, 8);
    for n in 1..=k + 1 {
        let pool = StaticPool::<8>::new();
        let alloc = run_sequence(&pool, n, false);
        assert_eq!(pool.in_use(), 0, "failing allocation {n}: a slot leaked");
        let failed = usize::from(n <= k);
        assert_eq!(alloc.allocations.get(), k - failed);
    }
}

#[test]
fn every_allocation_failing_once_on_the_heap() {
    let k = allocating_steps();
    for n in 1..=k + 1 {
        let alloc = run_sequence(Global, n, false);
        assert_eq!(alloc.live(), 0, "failing allocation {n}");
    }
}

#[test]
fn memory_running_out_for_good_at_every_point() {
    let k = allocating_steps();
    for n in 1..=k {
        let pool = StaticPool::<8>::new();
        let alloc = run_sequence(&pool, n, true);
        assert_eq!(
            alloc.allocations.get(),
            n - 1,
            "failing from allocation {n}"
        );
        assert_eq!(pool.in_use(), 0);
    }
}

/// A full pool is the same `-ENOMEM`, after the descriptor was classified; a bad descriptor's
/// own error comes first.
#[test]
fn a_full_pool_fails_the_same_way() {
    let pool = StaticPool::<7>::new();
    let held: Vec<_> = (0..7)
        .map(|i| SourceBox::anon_in(i, &pool).expect("slot"))
        .collect();
    let kernel = ScriptedKernel::char_device(0xfc00);
    let err = SourceBox::from_fd_in(&kernel, 9, &pool).expect_err("pool full");
    assert_eq!((err.code(), err.name()), (-12, "ENOMEM"));
    assert_eq!(kernel.calls().len(), 3, "classified first");
    let err = SourceBox::from_fd_in(
        &ScriptedKernel::regular_file().with_mode(0o010600),
        9,
        &pool,
    )
    .expect_err("a FIFO");
    assert_eq!(
        err.code(),
        codes::PMEM2_E_INVALID_FILE_TYPE,
        "the descriptor's error wins over the full pool"
    );
    drop(held);
    assert_eq!(pool.in_use(), 0);
    let dax = SourceBox::from_fd_in(&kernel, 9, &pool).expect("room again");
    assert_eq!(dax.file_type(), Some(FileType::DeviceDax));
}
