//! Where C-ABI sources live: `malloc`/`free`, or the pair registered once with
//! `pmem2_source_set_funcs` before the first allocation.
//!
//! # Safety
//!
//! The functions are C function pointers: `malloc` and `free`, or the caller's pair, which the
//! header documents must behave like them. A source is freed by the same pair that allocated
//! it because the pair is fixed by the first allocation (`spin::Once`) and never changes.

use std::ffi::c_void;
use std::ptr::NonNull;

use pmem2_source::{Source, SourceAlloc};

/// A `malloc`/`free` pair.
#[derive(Clone, Copy)]
pub(crate) struct AllocFuncs {
    pub(crate) malloc: unsafe extern "C" fn(usize) -> *mut c_void,
    pub(crate) free: unsafe extern "C" fn(*mut c_void),
}

static FUNCS: spin::Once<AllocFuncs> = spin::Once::new();

/// The pair in force, fixing libc's if none was registered.
fn funcs() -> &'static AllocFuncs {
    FUNCS.call_once(|| AllocFuncs {
        malloc: libc::malloc,
        free: libc::free,
    })
}

/// Installs `funcs` if no pair is fixed yet; `false` (and no change) otherwise.
pub(crate) fn install(funcs: AllocFuncs) -> bool {
    let mut installed = false;
    FUNCS.call_once(|| {
        installed = true;
        funcs
    });
    installed
}

/// The allocator of every source the C ABI hands out.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CAlloc;

/// Why [`CAlloc::try_allocate`] has no memory for a source.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum AllocFailure {
    /// The malloc function returned NULL.
    OutOfMemory,
    /// The malloc function returned `address`, which is not aligned for a source (only a
    /// caller's function can: malloc's memory is aligned for any type). It was passed back
    /// to the matching free function.
    Misaligned { address: usize },
}

impl CAlloc {
    /// Memory for one source (uninitialised) from the fixed malloc-like function, or why
    /// there is none.
    pub(crate) fn try_allocate(self) -> Result<NonNull<Source>, AllocFailure> {
        let funcs = funcs();
        // SAFETY: calling malloc (or a function documented to behave like it) with a size.
        let raw = unsafe { (funcs.malloc)(size_of::<Source>()) };
        let ptr = NonNull::new(raw.cast::<Source>()).ok_or(AllocFailure::OutOfMemory)?;
        if ptr.as_ptr().is_aligned() {
            return Ok(ptr);
        }
        // SAFETY: `raw` came from this pair's malloc and is not used after this.
        unsafe { (funcs.free)(raw) };
        Err(AllocFailure::Misaligned {
            address: raw as usize,
        })
    }
}

// SAFETY: memory comes from the fixed malloc-like function and goes back to the matching free
// (the pair never changes once fixed). A pointer not aligned for Source is returned to free
// and reported as a failed allocation, so only aligned memory is handed out.
unsafe impl SourceAlloc for CAlloc {
    fn allocate(&self) -> Option<NonNull<Source>> {
        self.try_allocate().ok()
    }

    unsafe fn deallocate(&self, ptr: NonNull<Source>) {
        // SAFETY: `ptr` came from `allocate` (caller's guarantee), i.e. from the fixed pair's
        // malloc, and is released once.
        unsafe { (funcs().free)(ptr.as_ptr().cast::<c_void>()) }
    }
}
