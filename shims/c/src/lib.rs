//! libpmem2's source functions with libpmem2's C ABI: `libpmem2_source.so` / `.a` and
//! `include/pmem2_source.h`.
//!
//! Each function is a thin adapter over the `pmem2-source` core: check the pointers C hands
//! in, call the core, translate the result (`0` or the core's [`code`](pmem2_source::Error::code))
//! and store the message of a failure for [`pmem2_errormsg`]. Nothing unwinds out: a panic
//! (which the core never produces) becomes `PMEM2_E_UNKNOWN` with a message.
//!
//! Sources are created with the core's raw-syscall backend; the queries and the mcsafe I/O run
//! on [`StdSyscalls`], which adds the page size from `sysconf` and the machine-check-safe copy
//! for Device DAX. Out-parameters are written only on success.
//!
//! On Windows the functions are libpmem2's Windows set: `pmem2_source_from_handle`,
//! `pmem2_source_get_handle`, and `pmem2_source_from_fd` through the C runtime's
//! `_get_osfhandle` (module `windows`); `pmem2_source_get_fd` does not exist there. Everything
//! runs on the core's Win32 backend.
//!
//! # Safety
//!
//! The C caller promises what C can only document: pointers are NULL or valid and aligned for
//! their type, and a `struct pmem2_source *` passed in came from this library's
//! `pmem2_source_from_fd`/`pmem2_source_from_anon` and was not deleted since. Within those
//! promises every function is sound, and NULL is always handled.

mod allocator;
mod hidden;
mod message;
#[cfg(windows)]
mod windows;

use std::ffi::{c_char, c_int, c_void};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::{NonNull, null_mut};

#[cfg(not(windows))]
use pmem2_source::sys::Linux;
use pmem2_source::{Errno, Error, IoDirection, Source, SourceBox, SourceKind, codes};
use pmem2_source_std::StdSyscalls;

use crate::allocator::{AllocFailure, AllocFuncs, CAlloc};

/// Why a C-ABI call failed: the core's errors, plus the boundary's own.
enum Failure {
    Core(pmem2_source::Error),
    NullArgument {
        function: &'static str,
        argument: &'static str,
    },
    /// `buf == NULL` for a transfer of `size > 0` bytes.
    NullBuffer {
        function: &'static str,
        size: usize,
    },
    /// A transfer of more than `isize::MAX` bytes (no C object is that large) whose range lies
    /// within the source: only a Device DAX claiming an absurd size gets here.
    BufferTooLarge {
        function: &'static str,
        size: usize,
    },
    /// An answer that does not fit the C type of its out-parameter (a size beyond `size_t`:
    /// impossible on 64-bit targets).
    DoesNotFit {
        function: &'static str,
        what: &'static str,
        value: u64,
    },
    AllocatorFixed,
    /// The malloc function registered with `pmem2_source_set_funcs` returned `address`, not
    /// aligned for a source; the block went back to the registered free function.
    MisalignedAllocation {
        address: usize,
    },
    Panicked {
        function: &'static str,
    },
}

impl Failure {
    fn code(&self) -> c_int {
        match self {
            Failure::Core(err) => err.code(),
            Failure::NullArgument { .. }
            | Failure::NullBuffer { .. }
            | Failure::BufferTooLarge { .. } => -Errno::EINVAL.raw(),
            Failure::DoesNotFit { .. } => -Errno::EOVERFLOW.raw(),
            Failure::AllocatorFixed => -Errno::EBUSY.raw(),
            // Memory that cannot be used is no memory: what libpmem2's callers handle for an
            // allocation that fails.
            Failure::MisalignedAllocation { .. } => -Errno::ENOMEM.raw(),
            Failure::Panicked { .. } => codes::PMEM2_E_UNKNOWN,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Directly, not through `write!`: one level of `core::fmt` less per message.
            Failure::Core(err) => fmt::Display::fmt(err, f),
            Failure::NullArgument { function, argument } => {
                write!(f, "{function}: {argument} must not be NULL")
            }
            Failure::NullBuffer { function, size } => {
                write!(f, "{function}: buf must not be NULL when size is {size}")
            }
            Failure::BufferTooLarge { function, size } => write!(
                f,
                "{function}: size {size} is larger than any buffer can be (at most {} bytes)",
                isize::MAX
            ),
            Failure::DoesNotFit {
                function,
                what,
                value,
            } => write!(f, "{function}: the {what} ({value}) does not fit in size_t"),
            Failure::AllocatorFixed => f.write_str(
                "pmem2_source_set_funcs: the allocator is already fixed (functions were set \
                 before, or a source was already allocated); nothing changed",
            ),
            Failure::MisalignedAllocation { address } => write!(
                f,
                "cannot allocate a pmem2_source: the malloc function set with \
                 pmem2_source_set_funcs returned {address:#x} for {} bytes, which is not \
                 aligned to {} bytes as a pmem2_source must be (the block was passed back to \
                 the free function)",
                size_of::<Source>(),
                align_of::<Source>()
            ),
            Failure::Panicked { function } => {
                write!(f, "{function}: internal error (panic); please report it")
            }
        }
    }
}

impl From<pmem2_source::Error> for Failure {
    fn from(err: pmem2_source::Error) -> Failure {
        Failure::Core(err)
    }
}

/// Runs the body of `function`: `Ok(())` → 0; a failure stores its message and returns its
/// code; a panic is caught and reported, never unwound into C.
fn call(function: &'static str, body: impl FnOnce() -> Result<(), Failure>) -> c_int {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => 0,
        Ok(Err(failure)) => fail(failure),
        Err(_) => fail(Failure::Panicked { function }),
    }
}

/// Records `failure` as the thread's message and returns its code. Out of line, so that the
/// success path of every function stays as small as it was without it (benches/compare).
#[cold]
#[inline(never)]
fn fail(failure: Failure) -> c_int {
    let code = failure.code();
    message::record(failure);
    code
}

/// [`fail`] for an error of the core, read where the core put it. The core writes an error
/// field by field; moving the whole value right after reads it back with wide loads, which
/// the CPU cannot forward from those narrow stores. The two moves this replaced cost a
/// failing `from_fd` up to 8 % (O_WRONLY: 1.19× → 1.11× the bare `fcntl`; benches/compare);
/// `record_core` keeps the common failures as a `message::Brief` for the same reason.
#[cold]
#[inline(never)]
fn fail_core(err: &pmem2_source::Error) -> c_int {
    message::record_core(err);
    err.code()
}

/// `src` as the live source it points to; NULL is [`Failure::NullArgument`].
///
/// # Safety
/// `src` is NULL or a live source from this library, which stays live while the reference is
/// used.
unsafe fn live_source<'a>(
    function: &'static str,
    src: *const Source,
) -> Result<&'a Source, Failure> {
    // SAFETY: NULL or a live source (caller's guarantee).
    unsafe { src.as_ref() }.ok_or(Failure::NullArgument {
        function,
        argument: "src",
    })
}

/// `ptr`, which must not be NULL.
fn non_null<T>(
    function: &'static str,
    argument: &'static str,
    ptr: *mut T,
) -> Result<NonNull<T>, Failure> {
    NonNull::new(ptr).ok_or(Failure::NullArgument { function, argument })
}

/// A query of `function`: `src` is checked for NULL, `ask` answers, and the answer is stored
/// in `*out` (never read, so it may be uninitialised). `out` is checked for NULL only then,
/// where libpmem2 writes through it: every error libpmem2 returns before that is returned
/// here too, and `-EINVAL` only where libpmem2 would write through NULL.
///
/// # Safety
/// `src` is NULL or a live source from this library; `out` is NULL or valid for writes of a
/// `T`.
unsafe fn answer<T>(
    function: &'static str,
    src: *const Source,
    argument: &'static str,
    out: *mut T,
    ask: impl FnOnce(&Source) -> Result<T, Failure>,
) -> c_int {
    call(function, || {
        // SAFETY: NULL or a live source (caller's guarantee).
        let source = unsafe { live_source(function, src) }?;
        let value = ask(source)?;
        let out = non_null(function, argument, out)?;
        // SAFETY: not NULL, so valid for writes of a T (caller's guarantee).
        unsafe { out.as_ptr().write(value) };
        Ok(())
    })
}

/// A size for a `size_t` out-parameter.
fn to_size_t(function: &'static str, what: &'static str, value: u64) -> Result<usize, Failure> {
    usize::try_from(value).map_err(|_| Failure::DoesNotFit {
        function,
        what,
        value,
    })
}

// `size_t` converts to `u64` without loss on every target Rust supports; `as u64` below
// relies on it.
const _: () = assert!(usize::BITS <= u64::BITS);

/// Where the caller's `buf` of `size` bytes starts, for a transfer in `direction` at `offset`:
/// `None` for an empty transfer (then `buf` may be NULL). A NULL `buf` with `size > 0`, or more
/// than `isize::MAX` bytes (no slice can describe them), gets the checks that need no buffer
/// first ([`without_buffer`]).
fn transfer_buffer(
    function: &'static str,
    source: &Source,
    direction: IoDirection,
    buf: *mut c_void,
    size: usize,
    offset: u64,
) -> Result<Option<NonNull<u8>>, Failure> {
    if size == 0 {
        return Ok(None);
    }
    let Some(start) = NonNull::new(buf.cast::<u8>()) else {
        let null = Failure::NullBuffer { function, size };
        return Err(without_buffer(source, direction, size, offset, null));
    };
    if isize::try_from(size).is_err() {
        let too_large = Failure::BufferTooLarge { function, size };
        return Err(without_buffer(source, direction, size, offset, too_large));
    }
    Ok(Some(start))
}

/// The answer to a transfer that cannot be made with the caller's buffer (NULL, or more than
/// `isize::MAX` bytes): the core's checks that need no buffer, in its order, which is
/// libpmem2's (an anonymous source is not supported; the size of the source, its errors
/// included; the range, beyond which every source no larger than `isize::MAX` bytes ends);
/// `unusable` only when they all pass, where libpmem2 would copy.
fn without_buffer(
    source: &Source,
    direction: IoDirection,
    size: usize,
    offset: u64,
    unusable: Failure,
) -> Failure {
    if source.kind() == SourceKind::Anonymous {
        return Error::IoSourceType.into();
    }
    let source_size = match source.size_with(&StdSyscalls) {
        Ok(source_size) => source_size,
        Err(err) => return err.into(),
    };
    let len = size as u64;
    match source_size.checked_sub(offset) {
        Some(remaining) if len <= remaining => unusable,
        _ => Error::OutOfRange {
            direction,
            len,
            offset,
            source_size,
        }
        .into(),
    }
}

/// Stores a new source in `*src` (set to NULL first, so it stays NULL on failure).
///
/// # Safety
/// `src` is NULL or valid for writes.
unsafe fn create(
    function: &'static str,
    src: *mut *mut Source,
    make: impl FnOnce() -> Result<Source, pmem2_source::Error>,
) -> c_int {
    // SAFETY: NULL or valid for writes (caller's guarantee).
    let Some(slot) = (unsafe { src.as_mut() }) else {
        return fail(Failure::NullArgument {
            function,
            argument: "src",
        });
    };
    *slot = null_mut();
    // Errors by reference, where the core put them (see `fail_core`); the unwinding guard
    // around all of it, so that only the code passes through it.
    let made = catch_unwind(AssertUnwindSafe(|| {
        let source = match make() {
            Ok(source) => source,
            Err(ref err) => return fail_core(err),
        };
        // What `SourceBox::new_in(source, CAlloc)` and `into_raw` do, with the reason an
        // allocation failed kept for the message.
        let ptr = match CAlloc.try_allocate() {
            Ok(ptr) => ptr,
            Err(AllocFailure::OutOfMemory) => return fail_core(&pmem2_source::Error::NoMemory),
            Err(AllocFailure::Misaligned { address }) => {
                return fail(Failure::MisalignedAllocation { address });
            }
        };
        // SAFETY: `try_allocate` returned memory valid and aligned for one Source that nothing
        // else uses (as `SourceAlloc::allocate` does); writing does not read the uninitialised
        // contents. `pmem2_source_delete` frees it with `SourceBox::from_raw_in(ptr, CAlloc)`,
        // whose contract admits a pointer from the allocator with a Source written to it.
        unsafe { ptr.as_ptr().write(source) };
        *slot = ptr.as_ptr();
        0
    }));
    made.unwrap_or_else(|_| fail(Failure::Panicked { function }))
}

/// `int pmem2_source_from_fd(struct pmem2_source **src, int fd)`: validates `fd` and creates
/// a source referring to it. (Windows: see `windows::pmem2_source_from_fd`.)
///
/// # Safety
/// `src` is NULL or valid for writes.
#[cfg(not(windows))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem2_source_from_fd(src: *mut *mut Source, fd: c_int) -> c_int {
    // SAFETY: `src` is passed on under the caller's guarantee.
    unsafe {
        create("pmem2_source_from_fd", src, || {
            Source::from_fd_with(&Linux, fd)
        })
    }
}

/// `int pmem2_source_from_anon(struct pmem2_source **src, size_t size)`: an anonymous source.
///
/// # Safety
/// `src` is NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem2_source_from_anon(src: *mut *mut Source, size: usize) -> c_int {
    // SAFETY: `src` is passed on under the caller's guarantee.
    unsafe { create("pmem2_source_from_anon", src, || Ok(Source::anon(size))) }
}

/// `int pmem2_source_get_fd(const struct pmem2_source *src, int *fd)` (not on Windows, where
/// libpmem2 has `pmem2_source_get_handle` instead).
///
/// # Safety
/// `src` is NULL or a live source from this library; `fd` is NULL or valid for writes.
#[cfg(not(windows))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem2_source_get_fd(src: *const Source, fd: *mut c_int) -> c_int {
    // SAFETY: the pointers are passed on under the caller's guarantee, which is `answer`'s.
    unsafe {
        answer("pmem2_source_get_fd", src, "fd", fd, |source| {
            Ok(source.fd()?)
        })
    }
}

/// `int pmem2_source_size(const struct pmem2_source *src, size_t *size)`: the size in bytes
/// (anonymous: as given; regular file: `st_size` now; Device DAX: its sysfs `size`).
///
/// # Safety
/// `src` is NULL or a live source from this library; `size` is NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem2_source_size(src: *const Source, size: *mut usize) -> c_int {
    const FUNCTION: &str = "pmem2_source_size";
    // SAFETY: the pointers are passed on under the caller's guarantee, which is `answer`'s.
    unsafe {
        answer(FUNCTION, src, "size", size, |source| {
            to_size_t(FUNCTION, "size", source.size_with(&StdSyscalls)?)
        })
    }
}

/// `int pmem2_source_alignment(const struct pmem2_source *src, size_t *alignment)`: the page
/// size, or a Device DAX's alignment.
///
/// # Safety
/// `src` is NULL or a live source from this library; `alignment` is NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem2_source_alignment(
    src: *const Source,
    alignment: *mut usize,
) -> c_int {
    // SAFETY: the pointers are passed on under the caller's guarantee, which is `answer`'s.
    unsafe {
        answer(
            "pmem2_source_alignment",
            src,
            "alignment",
            alignment,
            |source| match source.alignment_with(&StdSyscalls) {
                // libpmem2 stores the alignment before it checks it is a power of two.
                Err(Error::AlignmentNotPowerOfTwo { .. }) if alignment.is_null() => {
                    Err(Failure::NullArgument {
                        function: "pmem2_source_alignment",
                        argument: "alignment",
                    })
                }
                other => Ok(other?),
            },
        )
    }
}

/// `int pmem2_source_numa_node(const struct pmem2_source *src, int *numa_node)`.
///
/// # Safety
/// `src` is NULL or a live source from this library; `numa_node` is NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem2_source_numa_node(
    src: *const Source,
    numa_node: *mut c_int,
) -> c_int {
    // SAFETY: the pointers are passed on under the caller's guarantee, which is `answer`'s.
    unsafe {
        answer(
            "pmem2_source_numa_node",
            src,
            "numa_node",
            numa_node,
            |source| Ok(source.numa_node_with(&StdSyscalls)?),
        )
    }
}

/// `int pmem2_source_device_usc(const struct pmem2_source *src, uint64_t *usc)`: the unsafe
/// shutdown count. `*usc` is untouched on failure (libpmem2 zeroes it first).
///
/// # Safety
/// `src` is NULL or a live source from this library; `usc` is NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem2_source_device_usc(src: *const Source, usc: *mut u64) -> c_int {
    // SAFETY: the pointers are passed on under the caller's guarantee, which is `answer`'s.
    unsafe {
        answer("pmem2_source_device_usc", src, "usc", usc, |source| {
            // libpmem2 zeroes `*usc` right after refusing an anonymous source, before it
            // looks for the NVDIMMs.
            if source.kind() != SourceKind::Anonymous {
                non_null("pmem2_source_device_usc", "usc", usc)?;
            }
            Ok(source.device_usc_with(&StdSyscalls)?)
        })
    }
}

/// `int pmem2_source_device_id(const struct pmem2_source *src, char *id, size_t *len)`, with
/// libpmem2's length protocol: `id == NULL` stores the length the id needs (NUL included) in
/// `*len`; otherwise the id and a NUL are written to `id` if `*len` bytes hold them, else
/// `PMEM2_E_BUFFER_TOO_SMALL` (nothing written). `*len` is written only when `id` is NULL.
///
/// # Safety
/// `src` is NULL or a live source from this library; `len` is NULL or valid for reads and
/// writes; `id` is NULL or valid for writes of `*len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem2_source_device_id(
    src: *const Source,
    id: *mut c_char,
    len: *mut usize,
) -> c_int {
    const FUNCTION: &str = "pmem2_source_device_id";
    call(FUNCTION, || {
        // SAFETY: NULL or a live source (caller's guarantee).
        let source = unsafe { live_source(FUNCTION, src) }?;
        let Some(len) = NonNull::new(len) else {
            // libpmem2 reads or writes `*len` only once it has found the NVDIMMs and their
            // ids: its errors come first.
            source.device_id_with(&StdSyscalls, None)?;
            return Err(Failure::NullArgument {
                function: FUNCTION,
                argument: "len",
            });
        };
        let Some(id) = NonNull::new(id.cast::<u8>()) else {
            let needed = source.device_id_with(&StdSyscalls, None)?;
            // SAFETY: not NULL, so valid for writes (caller's guarantee).
            unsafe { len.as_ptr().write(needed) };
            return Ok(());
        };
        // SAFETY: not NULL, so valid for reads; with an `id`, `*len` is its size (caller's
        // guarantee).
        let capacity = unsafe { len.as_ptr().read() };
        // No C object is larger than isize::MAX bytes, so a larger `*len` overstates the
        // buffer: only what a real buffer can hold is described.
        let capacity = capacity.min(isize::MAX as usize);
        // SAFETY: `id` is valid for writes of `*len` ≥ `capacity` bytes (caller's guarantee),
        // which stays so for this call, and `capacity` ≤ isize::MAX.
        let buffer = unsafe { std::slice::from_raw_parts_mut(id.as_ptr(), capacity) };
        source.device_id_with(&StdSyscalls, Some(buffer))?;
        Ok(())
    })
}

/// `pmem2_source_pread_mcsafe` (`Read`: into `buf`) and `pmem2_source_pwrite_mcsafe`
/// (`Write`: from `buf`): `src` and `buf` are checked, and the core transfers `size` bytes at
/// `offset`. `buf` may be NULL when `size` is 0.
///
/// # Safety
/// `src` is NULL or a live source from this library; `buf` is NULL or valid for `size` bytes
/// of writes (`Read`) or reads (`Write`), which nothing else accesses (`Read`) or writes
/// (`Write`) during the call.
unsafe fn mcsafe(
    function: &'static str,
    direction: IoDirection,
    src: *const Source,
    buf: *mut c_void,
    size: usize,
    offset: usize,
) -> c_int {
    call(function, || {
        // SAFETY: NULL or a live source (caller's guarantee).
        let source = unsafe { live_source(function, src) }?;
        let offset = offset as u64;
        let start = transfer_buffer(function, source, direction, buf, size, offset)?;
        match (direction, start) {
            (IoDirection::Read, None) => source.pread_mcsafe_with(&StdSyscalls, &mut [], offset)?,
            (IoDirection::Write, None) => source.pwrite_mcsafe_with(&StdSyscalls, &[], offset)?,
            (IoDirection::Read, Some(start)) => {
                // SAFETY: `buf` is valid for writes of `size` bytes, which nothing else
                // accesses during the call (caller's guarantee); `size` ≤ isize::MAX
                // (`transfer_buffer` checked).
                let buffer = unsafe { std::slice::from_raw_parts_mut(start.as_ptr(), size) };
                source.pread_mcsafe_with(&StdSyscalls, buffer, offset)?;
            }
            (IoDirection::Write, Some(start)) => {
                // SAFETY: `buf` is valid for reads of `size` bytes, which nothing writes
                // during the call (caller's guarantee); `size` ≤ isize::MAX (checked).
                let buffer = unsafe { std::slice::from_raw_parts(start.as_ptr(), size) };
                source.pwrite_mcsafe_with(&StdSyscalls, buffer, offset)?;
            }
        }
        Ok(())
    })
}

/// `int pmem2_source_pread_mcsafe(struct pmem2_source *src, void *buf, size_t size,
/// size_t offset)`: reads `size` bytes at `offset` into `buf`; a bad block is
/// `PMEM2_E_IO_FAIL`, not a crash. `buf` may be NULL when `size` is 0.
///
/// # Safety
/// `src` is NULL or a live source from this library; `buf` is NULL or valid for writes of
/// `size` bytes, and nothing else accesses it during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem2_source_pread_mcsafe(
    src: *mut Source,
    buf: *mut c_void,
    size: usize,
    offset: usize,
) -> c_int {
    const FUNCTION: &str = "pmem2_source_pread_mcsafe";
    // SAFETY: the caller's guarantees are `mcsafe`'s for a read.
    unsafe { mcsafe(FUNCTION, IoDirection::Read, src, buf, size, offset) }
}

/// `int pmem2_source_pwrite_mcsafe(struct pmem2_source *src, void *buf, size_t size,
/// size_t offset)`: writes `size` bytes from `buf` at `offset` (libpmem2's prototype: `buf` is
/// not `const`, but only read). `buf` may be NULL when `size` is 0.
///
/// # Safety
/// `src` is NULL or a live source from this library; `buf` is NULL or valid for reads of
/// `size` bytes, and nothing writes it during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem2_source_pwrite_mcsafe(
    src: *mut Source,
    buf: *mut c_void,
    size: usize,
    offset: usize,
) -> c_int {
    const FUNCTION: &str = "pmem2_source_pwrite_mcsafe";
    // SAFETY: the caller's guarantees are `mcsafe`'s for a write.
    unsafe { mcsafe(FUNCTION, IoDirection::Write, src, buf, size, offset) }
}

/// `int pmem2_source_delete(struct pmem2_source **src)`: frees `*src`, sets it to NULL,
/// returns 0. NULL `src` and NULL `*src` are no-ops. The descriptor is not closed.
///
/// # Safety
/// `src` is NULL or valid for reads and writes; `*src` is NULL or a live source from this
/// library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem2_source_delete(src: *mut *mut Source) -> c_int {
    call("pmem2_source_delete", || {
        // SAFETY: NULL or valid for reads and writes (caller's guarantee).
        let Some(slot) = (unsafe { src.as_mut() }) else {
            return Ok(());
        };
        if let Some(ptr) = NonNull::new(*slot) {
            // SAFETY: a live source from this library was allocated by CAlloc, with a Source
            // written to it (`create`), and the caller gives up its pointer here.
            drop(unsafe { SourceBox::from_raw_in(ptr, CAlloc) });
        }
        *slot = null_mut();
        Ok(())
    })
}

/// `const char *pmem2_errormsg(void)`: the calling thread's last error message.
#[unsafe(no_mangle)]
pub extern "C" fn pmem2_errormsg() -> *const c_char {
    message::as_ptr()
}

/// `int pmem2_source_set_funcs(void *(*malloc_func)(size_t), void (*free_func)(void *))`:
/// our extension; allocate sources with the caller's pair. Once, before the first allocation.
///
/// # Safety
/// The functions behave like `malloc` and `free` (any size; memory aligned like malloc's, or
/// NULL; free accepts what malloc returned) and stay callable for the life of the process.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem2_source_set_funcs(
    malloc_func: Option<unsafe extern "C" fn(usize) -> *mut c_void>,
    free_func: Option<unsafe extern "C" fn(*mut c_void)>,
) -> c_int {
    const FUNCTION: &str = "pmem2_source_set_funcs";
    call(FUNCTION, || {
        let malloc = malloc_func.ok_or(Failure::NullArgument {
            function: FUNCTION,
            argument: "malloc_func",
        })?;
        let free = free_func.ok_or(Failure::NullArgument {
            function: FUNCTION,
            argument: "free_func",
        })?;
        if allocator::install(AllocFuncs { malloc, free }) {
            Ok(())
        } else {
            Err(Failure::AllocatorFixed)
        }
    })
}

#[cfg(all(test, not(windows)))]
mod tests {
    use std::ffi::CStr;

    use super::*;
    use pmem2_source::Unsupported;

    fn last_message() -> String {
        // SAFETY: pmem2_errormsg returns a NUL-terminated string owned by this thread.
        unsafe { CStr::from_ptr(pmem2_errormsg()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn null_arguments_are_einval_with_a_message() {
        // SAFETY: NULL is allowed for every pointer argument.
        let code = unsafe { pmem2_source_from_fd(null_mut(), 0) };
        assert_eq!(code, -libc::EINVAL);
        assert_eq!(last_message(), "pmem2_source_from_fd: src must not be NULL");
        // SAFETY: as above.
        let code = unsafe { pmem2_source_from_anon(null_mut(), 1) };
        assert_eq!(code, -libc::EINVAL);
        assert_eq!(
            last_message(),
            "pmem2_source_from_anon: src must not be NULL"
        );
        // SAFETY: as above.
        let code = unsafe { pmem2_source_get_fd(std::ptr::null(), null_mut()) };
        assert_eq!(code, -libc::EINVAL);
        assert_eq!(last_message(), "pmem2_source_get_fd: src must not be NULL");
        // SAFETY: as above.
        assert_eq!(unsafe { pmem2_source_delete(null_mut()) }, 0);
        // SAFETY: as above.
        let code = unsafe { pmem2_source_set_funcs(None, Some(libc::free)) };
        assert_eq!(code, -libc::EINVAL);
        assert_eq!(
            last_message(),
            "pmem2_source_set_funcs: malloc_func must not be NULL"
        );
    }

    #[test]
    fn anon_source_round_trip() {
        let mut src: *mut Source = null_mut();
        // SAFETY: `src` is a valid out-pointer.
        assert_eq!(unsafe { pmem2_source_from_anon(&mut src, 4096) }, 0);
        assert!(!src.is_null());
        let mut fd: c_int = -7;
        // SAFETY: `src` is live, `fd` valid.
        let code = unsafe { pmem2_source_get_fd(src, &mut fd) };
        assert_eq!(code, codes::PMEM2_E_FILE_DESCRIPTOR_NOT_SET);
        assert_eq!(fd, -7, "untouched");
        assert_eq!(
            last_message(),
            "File descriptor is not set, source type does not support fd"
        );
        // SAFETY: `src` is live, then NULL.
        assert_eq!(unsafe { pmem2_source_delete(&mut src) }, 0);
        assert!(src.is_null());
        // SAFETY: `*src` is NULL now.
        assert_eq!(unsafe { pmem2_source_delete(&mut src) }, 0);
    }

    #[test]
    fn failure_sets_null_and_success_keeps_the_message() {
        let mut src: *mut Source = NonNull::dangling().as_ptr();
        // SAFETY: `src` is a valid out-pointer (its old value is overwritten, not read).
        let code = unsafe { pmem2_source_from_fd(&mut src, -1) };
        assert_eq!(code, codes::PMEM2_E_INVALID_FILE_HANDLE);
        assert!(src.is_null());
        let failure = last_message();
        assert_eq!(
            failure,
            "invalid file descriptor value -1 (descriptors are never negative)"
        );
        // SAFETY: `src` is a valid out-pointer.
        assert_eq!(unsafe { pmem2_source_from_anon(&mut src, 1) }, 0);
        assert_eq!(last_message(), failure, "success leaves the message alone");
        // SAFETY: `src` is live.
        assert_eq!(unsafe { pmem2_source_delete(&mut src) }, 0);
    }

    #[test]
    fn messages_are_the_last_failures_and_a_held_pointer_follows_them() {
        let fail_with = |fd: c_int| {
            let mut src: *mut Source = null_mut();
            // SAFETY: `src` is a valid out-pointer.
            let code = unsafe { pmem2_source_from_fd(&mut src, fd) };
            assert_eq!(code, codes::PMEM2_E_INVALID_FILE_HANDLE);
        };
        let negative = |fd: c_int| {
            format!("invalid file descriptor value {fd} (descriptors are never negative)")
        };
        // Two failures before this thread first reads its message: the second is the one.
        fail_with(-1);
        fail_with(-2);
        assert_eq!(last_message(), negative(-2));
        // A pointer kept from then on shows each later failure, without another call.
        let held = pmem2_errormsg();
        let read_held = || {
            // SAFETY: `held` is this thread's NUL-terminated message, live while it is.
            unsafe { CStr::from_ptr(held) }
                .to_string_lossy()
                .into_owned()
        };
        fail_with(-3);
        assert_eq!(read_held(), negative(-3));
        let mut src: *mut Source = null_mut();
        // SAFETY: `src` is a valid out-pointer.
        assert_eq!(unsafe { pmem2_source_from_anon(&mut src, 1) }, 0);
        assert_eq!(
            read_held(),
            negative(-3),
            "success leaves the message alone"
        );
        // SAFETY: `src` is live.
        assert_eq!(unsafe { pmem2_source_delete(&mut src) }, 0);
        // SAFETY: NULL is allowed for `src`.
        let code = unsafe { pmem2_source_from_fd(null_mut(), 0) };
        assert_eq!(code, -libc::EINVAL);
        assert_eq!(read_held(), "pmem2_source_from_fd: src must not be NULL");
    }

    #[test]
    fn a_panic_while_creating_is_unknown_and_leaves_src_null() {
        let mut src: *mut Source = NonNull::dangling().as_ptr();
        // SAFETY: `src` is a valid out-pointer.
        let code = unsafe { create("test_create", &mut src, || panic!("boom")) };
        assert_eq!(code, codes::PMEM2_E_UNKNOWN);
        assert!(src.is_null());
        assert_eq!(
            last_message(),
            "test_create: internal error (panic); please report it"
        );
    }

    #[test]
    fn panics_become_unknown() {
        let code = call("test_function", || panic!("boom"));
        assert_eq!(code, codes::PMEM2_E_UNKNOWN);
        assert_eq!(
            last_message(),
            "test_function: internal error (panic); please report it"
        );
    }

    /// A source of ours on a fresh 5-byte file ("hello"); the file stays open while it lives.
    fn file_source(name: &str) -> (std::fs::File, *mut Source) {
        use std::os::fd::AsRawFd;
        let path = std::env::temp_dir().join(format!(
            "pmem2-source-capi-unit-{name}-{}",
            std::process::id()
        ));
        std::fs::write(&path, b"hello").expect("write the scratch file");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .expect("open the scratch file");
        std::fs::remove_file(&path).expect("unlink the scratch file");
        let mut src: *mut Source = null_mut();
        // SAFETY: `src` is a valid out-pointer.
        let code = unsafe { pmem2_source_from_fd(&mut src, file.as_raw_fd()) };
        assert_eq!(code, 0);
        (file, src)
    }

    #[test]
    fn queries_answer_for_a_regular_file() {
        let (_file, mut src) = file_source("queries");
        let mut size = 7usize;
        // SAFETY: `src` is live, `size` valid.
        assert_eq!(unsafe { pmem2_source_size(src, &mut size) }, 0);
        assert_eq!(size, 5);
        let mut alignment = 7usize;
        // SAFETY: as above.
        assert_eq!(unsafe { pmem2_source_alignment(src, &mut alignment) }, 0);
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        assert_eq!(alignment as libc::c_long, page);

        let mut buf = *b"....";
        // SAFETY: `buf` is valid for 4 bytes.
        let code = unsafe { pmem2_source_pread_mcsafe(src, buf.as_mut_ptr().cast(), 4, 1) };
        assert_eq!((code, &buf), (0, b"ello"));
        let mut data = *b"J";
        // SAFETY: `data` is valid for 1 byte.
        let code = unsafe { pmem2_source_pwrite_mcsafe(src, data.as_mut_ptr().cast(), 1, 0) };
        assert_eq!(code, 0);
        // SAFETY: `buf` is valid for 4 bytes.
        let code = unsafe { pmem2_source_pread_mcsafe(src, buf.as_mut_ptr().cast(), 4, 0) };
        assert_eq!((code, &buf), (0, b"Jell"));
        // SAFETY: `src` is live and given up here.
        assert_eq!(unsafe { pmem2_source_delete(&mut src) }, 0);
    }

    /// A NULL out-parameter or buffer is `-EINVAL` only where libpmem2 would write through
    /// it (or copy into or from it); the errors libpmem2 returns before that come first.
    #[test]
    fn null_out_parameters_are_einval_only_where_libpmem2_would_use_them() {
        let (_file, file) = file_source("nulls");
        let mut anon = null_mut();
        // SAFETY: `anon` is a valid out-pointer.
        assert_eq!(unsafe { pmem2_source_from_anon(&mut anon, 8) }, 0);
        let gives = |case: &str, code: c_int, expected: (c_int, String)| {
            assert_eq!((code, last_message()), expected, "{case}");
        };
        let einval = |text: &str| (-libc::EINVAL, text.to_string());
        let error = |err: Error| (err.code(), err.to_string());
        let nosupp = |what| error(Error::NotSupported(what));
        let mut id = [0 as c_char; 4];
        let id = id.as_mut_ptr();
        let beyond = Error::OutOfRange {
            direction: IoDirection::Read,
            len: 3,
            offset: 4,
            source_size: 5,
        };
        // Every call below passes NULL, which is allowed for every pointer argument, live
        // sources (`file`, `anon`), and sizes > 0 only with NULL buffers, which are never used
        // to touch memory. On a regular file on no NVDIMM, the answer is what libpmem2 gives
        // before it would write through NULL.
        // SAFETY: see above.
        let code = unsafe { pmem2_source_size(file, null_mut()) };
        gives(
            "file size",
            code,
            einval("pmem2_source_size: size must not be NULL"),
        );
        // SAFETY: see above.
        let code = unsafe { pmem2_source_size(anon, null_mut()) };
        gives(
            "anon size",
            code,
            einval("pmem2_source_size: size must not be NULL"),
        );
        // SAFETY: see above.
        let code = unsafe { pmem2_source_alignment(file, null_mut()) };
        gives(
            "file alignment",
            code,
            einval("pmem2_source_alignment: alignment must not be NULL"),
        );
        // SAFETY: see above.
        let code = unsafe { pmem2_source_alignment(anon, null_mut()) };
        gives(
            "anon alignment",
            code,
            einval("pmem2_source_alignment: alignment must not be NULL"),
        );
        // SAFETY: see above.
        let code = unsafe { pmem2_source_get_fd(file, null_mut()) };
        gives(
            "file fd",
            code,
            einval("pmem2_source_get_fd: fd must not be NULL"),
        );
        // SAFETY: see above.
        let code = unsafe { pmem2_source_get_fd(anon, null_mut()) };
        gives("anon fd", code, error(Error::FileDescriptorNotSet));
        // SAFETY: see above.
        let code = unsafe { pmem2_source_numa_node(file, null_mut()) };
        gives("file numa", code, error(Error::RegionNotFound));
        // SAFETY: see above.
        let code = unsafe { pmem2_source_numa_node(anon, null_mut()) };
        gives("anon numa", code, nosupp(Unsupported::AnonymousNumaNode));
        // SAFETY: see above.
        let code = unsafe { pmem2_source_device_id(file, null_mut(), null_mut()) };
        gives("file id", code, nosupp(Unsupported::NoDeviceId));
        // SAFETY: see above.
        let code = unsafe { pmem2_source_device_id(file, id, null_mut()) };
        gives(
            "file id into a buffer",
            code,
            nosupp(Unsupported::NoDeviceId),
        );
        // SAFETY: see above.
        let code = unsafe { pmem2_source_device_id(anon, null_mut(), null_mut()) };
        gives("anon id", code, nosupp(Unsupported::AnonymousDeviceId));
        // SAFETY: see above.
        let code = unsafe { pmem2_source_device_usc(file, null_mut()) };
        gives(
            "file usc (libpmem2 zeroes *usc before it looks for NVDIMMs)",
            code,
            einval("pmem2_source_device_usc: usc must not be NULL"),
        );
        // SAFETY: see above.
        let code = unsafe { pmem2_source_device_usc(anon, null_mut()) };
        gives("anon usc", code, nosupp(Unsupported::AnonymousUsc));
        // SAFETY: see above.
        let code = unsafe { pmem2_source_pwrite_mcsafe(file, null_mut(), 3, 0) };
        gives(
            "file pwrite within the file",
            code,
            einval("pmem2_source_pwrite_mcsafe: buf must not be NULL when size is 3"),
        );
        // SAFETY: see above.
        let code = unsafe { pmem2_source_pread_mcsafe(file, null_mut(), 3, 4) };
        gives("file pread beyond its end", code, error(beyond));
        // SAFETY: see above.
        let code = unsafe { pmem2_source_pread_mcsafe(anon, null_mut(), 3, 0) };
        gives("anon pread", code, error(Error::IoSourceType));
        // SAFETY: see above.
        let code = unsafe { pmem2_source_size(std::ptr::null(), &mut 0) };
        gives(
            "size of NULL",
            code,
            einval("pmem2_source_size: src must not be NULL"),
        );
        // SAFETY: see above.
        let code = unsafe { pmem2_source_pread_mcsafe(null_mut(), null_mut(), 0, 0) };
        gives(
            "pread of NULL",
            code,
            einval("pmem2_source_pread_mcsafe: src must not be NULL"),
        );
        // SAFETY: see above.
        let code = unsafe { pmem2_source_pread_mcsafe(file, null_mut(), 0, 5) };
        assert_eq!(code, 0, "pread of 0 bytes at the end into NULL");
        // SAFETY: see above.
        let code = unsafe { pmem2_source_pwrite_mcsafe(file, null_mut(), 0, 0) };
        assert_eq!(code, 0, "pwrite of 0 bytes from NULL");

        let mut usc = 7u64;
        // SAFETY: `file` is live, `usc` valid.
        let code = unsafe { pmem2_source_device_usc(file, &mut usc) };
        assert_eq!(
            (code, usc),
            (codes::PMEM2_E_NOSUPP, 7),
            "untouched on failure"
        );
        for mut src in [file, anon] {
            // SAFETY: the sources are live and given up here.
            assert_eq!(unsafe { pmem2_source_delete(&mut src) }, 0);
        }
    }

    /// More than isize::MAX bytes cannot be a slice: the answer the core would give, without
    /// one.
    #[test]
    fn oversized_transfers_get_the_cores_answer() {
        let (_file, mut src) = file_source("oversized");
        let mut byte = 0u8;
        let buf: *mut c_void = (&raw mut byte).cast();
        // SAFETY: the size is never used to touch `buf` (it cannot be a real buffer's).
        let code = unsafe { pmem2_source_pread_mcsafe(src, buf, usize::MAX, 0) };
        assert_eq!(code, codes::PMEM2_E_LENGTH_OUT_OF_RANGE);
        assert_eq!(
            last_message(),
            format!(
                "size of read {} from offset 0 goes beyond the file length 5",
                usize::MAX
            )
        );
        // SAFETY: as above.
        let code = unsafe { pmem2_source_pwrite_mcsafe(src, buf, usize::MAX, 9) };
        assert_eq!(code, codes::PMEM2_E_LENGTH_OUT_OF_RANGE);
        assert_eq!(
            last_message(),
            "offset 9 of write is beyond the end of the source (5 bytes)"
        );
        // SAFETY: `src` is live and given up here.
        assert_eq!(unsafe { pmem2_source_delete(&mut src) }, 0);

        // SAFETY: `src` is a valid out-pointer.
        assert_eq!(unsafe { pmem2_source_from_anon(&mut src, usize::MAX) }, 0);
        // SAFETY: as above.
        let code = unsafe { pmem2_source_pread_mcsafe(src, buf, usize::MAX, 0) };
        assert_eq!(code, codes::PMEM2_E_SOURCE_TYPE_NOT_SUPPORTED);
        // SAFETY: `src` is live and given up here.
        assert_eq!(unsafe { pmem2_source_delete(&mut src) }, 0);

        let huge = Failure::BufferTooLarge {
            function: "f",
            size: usize::MAX,
        };
        assert_eq!(huge.code(), -libc::EINVAL);
        assert_eq!(
            huge.to_string(),
            format!(
                "f: size {} is larger than any buffer can be (at most {} bytes)",
                usize::MAX,
                isize::MAX
            )
        );
    }

    /// A size beyond `size_t` (impossible on 64-bit targets) is an error, not a panic.
    #[test]
    fn sizes_beyond_size_t_are_eoverflow() {
        assert_eq!(to_size_t("f", "size", 5).ok(), Some(5));
        let failure = Failure::DoesNotFit {
            function: "pmem2_source_size",
            what: "size",
            value: u64::MAX,
        };
        assert_eq!(failure.code(), -libc::EOVERFLOW);
        assert_eq!(
            failure.to_string(),
            format!(
                "pmem2_source_size: the size ({}) does not fit in size_t",
                u64::MAX
            )
        );
    }
}
