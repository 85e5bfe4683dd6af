//! The allocated form of a source: [`SourceBox`], and the allocators it can use.
//!
//! Rust callers normally keep a [`Source`] by value and allocate nothing. A stable pointer
//! (the C ABI's `struct pmem2_source *`, or any caller that must hand a source around by
//! address) comes from a [`SourceBox`], which allocates exactly one `Source` through a
//! [`SourceAlloc`] chosen by the caller and frees it through the same one:
//!
//! - [`Global`] (feature `alloc`): the Rust global allocator;
//! - [`StaticPool`]: a fixed array of slots in a `static`, guarded by a spin lock; needs no heap
//!   at all and reports exhaustion as `-ENOMEM`. Its memory is inside it, so it allocates
//!   through a shared reference (`&POOL`), never by value;
//! - [`FailingAlloc`] and [`CountingAlloc`]: for tests — every allocation fails; or every
//!   allocation and free is counted, to prove nothing leaks.
//!
//! # Safety
//!
//! This module holds the crate's unsafe allocator code: the [`SourceAlloc`] contract, raw
//! pointer ownership in [`SourceBox`], and the slot bookkeeping of [`StaticPool`]. Each
//! unsafe block says which part of the contract makes it sound.

use core::cell::UnsafeCell;
use core::fmt;
use core::mem::{ManuallyDrop, MaybeUninit};
use core::ops::Deref;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::error::Error;
use crate::source::Source;
use crate::sys::Syscalls;

/// An allocator of [`Source`] structs.
///
/// # Safety
///
/// Implementations must uphold:
/// - [`allocate`](Self::allocate) returns either `None` or a pointer that is aligned for
///   `Source`, valid for reads and writes of one `Source`, and used by nothing else until it is
///   passed to [`deallocate`](Self::deallocate) of the same allocator;
/// - `deallocate` only releases the memory; it does not read the `Source`;
/// - moving the allocator value does not invalidate memory it handed out: a [`SourceBox`]
///   keeps its allocator by value and moves with it. An allocator whose memory lies inside
///   the allocator value itself (like [`StaticPool`]) therefore implements this trait for a
///   shared reference to it, not for itself (as `core::alloc::Allocator` asks too).
pub unsafe trait SourceAlloc {
    /// Memory for one `Source` (uninitialised), or `None` when none is available.
    fn allocate(&self) -> Option<NonNull<Source>>;

    /// Releases memory obtained from [`allocate`](Self::allocate).
    ///
    /// # Safety
    ///
    /// `ptr` came from `allocate` on this same allocator and has not been released since.
    unsafe fn deallocate(&self, ptr: NonNull<Source>);
}

// SAFETY: forwards to `A`, which upholds the contract; a shared reference changes nothing
// about where memory comes from or goes to.
unsafe impl<A: SourceAlloc + ?Sized> SourceAlloc for &A {
    fn allocate(&self) -> Option<NonNull<Source>> {
        (**self).allocate()
    }

    unsafe fn deallocate(&self, ptr: NonNull<Source>) {
        // SAFETY: the caller's guarantee for `ptr` is passed on unchanged.
        unsafe { (**self).deallocate(ptr) }
    }
}

/// A [`Source`] in memory from allocator `A`, freed through `A` when dropped.
///
/// ```
/// use pmem2_source::{SourceBox, StaticPool};
///
/// static POOL: StaticPool<2> = StaticPool::new();
///
/// let a = SourceBox::new_in(pmem2_source::Source::anon(4096), &POOL).unwrap();
/// let b = SourceBox::anon_in(8192, &POOL).unwrap();
/// // The pool is exhausted: -ENOMEM.
/// assert_eq!(SourceBox::anon_in(1, &POOL).unwrap_err().code(), -12);
/// assert_eq!(a.anon_size(), Some(4096));
/// drop(b);
/// assert!(SourceBox::anon_in(1, &POOL).is_ok());
/// ```
pub struct SourceBox<A: SourceAlloc> {
    ptr: NonNull<Source>,
    alloc: A,
}

// SAFETY: a SourceBox owns its Source exclusively (like Box), and Source is plain data; moving
// it to another thread is sound when the allocator may be used from there.
unsafe impl<A: SourceAlloc + Send> Send for SourceBox<A> {}
// SAFETY: `&SourceBox` only gives `&Source` (plain data) and `&A`.
unsafe impl<A: SourceAlloc + Sync> Sync for SourceBox<A> {}

impl<A: SourceAlloc> SourceBox<A> {
    /// Moves `source` into memory from `alloc`. Fails with [`Error::NoMemory`] (`-ENOMEM`)
    /// when the allocator has none.
    pub fn new_in(source: Source, alloc: A) -> Result<SourceBox<A>, Error> {
        let ptr = alloc.allocate().ok_or(Error::NoMemory)?;
        // SAFETY: `allocate` returned memory valid and aligned for one Source that nothing
        // else uses (SourceAlloc contract); writing does not read the uninitialised contents.
        unsafe { ptr.as_ptr().write(source) };
        Ok(SourceBox { ptr, alloc })
    }

    /// `pmem2_source_from_fd` into allocated memory: validates and classifies `fd` first
    /// (no allocation happens for a bad descriptor), then allocates.
    #[inline]
    pub fn from_fd_in<S: Syscalls + ?Sized>(
        sys: &S,
        fd: i32,
        alloc: A,
    ) -> Result<SourceBox<A>, Error> {
        SourceBox::new_in(Source::from_fd_with(sys, fd)?, alloc)
    }

    /// `pmem2_source_from_handle` into allocated memory: validates `handle` first (no
    /// allocation happens for a bad handle), then allocates.
    pub fn from_handle_in<S: Syscalls + ?Sized>(
        sys: &S,
        handle: crate::sys::RawHandle,
        alloc: A,
    ) -> Result<SourceBox<A>, Error> {
        SourceBox::new_in(Source::from_handle_with(sys, handle)?, alloc)
    }

    /// `pmem2_source_from_anon` into allocated memory.
    pub fn anon_in(size: usize, alloc: A) -> Result<SourceBox<A>, Error> {
        SourceBox::new_in(Source::anon(size), alloc)
    }

    /// `pmem2_source_delete`: frees the source in `slot`, if any, and leaves `None` behind,
    /// so deleting twice is harmless. The descriptor is not closed.
    ///
    /// ```
    /// # use pmem2_source::{SourceBox, StaticPool};
    /// static POOL: StaticPool<1> = StaticPool::new();
    /// let mut slot = Some(SourceBox::anon_in(10, &POOL).unwrap());
    /// SourceBox::delete(&mut slot);
    /// SourceBox::delete(&mut slot);
    /// assert!(slot.is_none());
    /// assert_eq!(POOL.in_use(), 0);
    /// ```
    pub fn delete(slot: &mut Option<SourceBox<A>>) {
        drop(slot.take());
    }

    /// The allocator this source came from.
    pub fn allocator(&self) -> &A {
        &self.alloc
    }

    /// Gives up ownership: returns the pointer and the allocator that must free it (via
    /// [`from_raw_in`](Self::from_raw_in)). For handing a source across the C ABI.
    pub fn into_raw(self) -> (NonNull<Source>, A) {
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped or used again, so moving the allocator out of it
        // leaves exactly one owner.
        let alloc = unsafe { core::ptr::read(&this.alloc) };
        (this.ptr, alloc)
    }

    /// Takes ownership of a pointer from [`into_raw`](Self::into_raw) back.
    ///
    /// # Safety
    ///
    /// `ptr` and `alloc` came from one `into_raw` call (or `ptr` from `alloc.allocate()` with a
    /// `Source` written to it), and nothing else owns `ptr` any more.
    pub unsafe fn from_raw_in(ptr: NonNull<Source>, alloc: A) -> SourceBox<A> {
        SourceBox { ptr, alloc }
    }
}

impl<A: SourceAlloc> Deref for SourceBox<A> {
    type Target = Source;

    fn deref(&self) -> &Source {
        // SAFETY: `ptr` holds an initialised Source owned by this box until drop.
        unsafe { self.ptr.as_ref() }
    }
}

impl<A: SourceAlloc> Drop for SourceBox<A> {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `self.alloc.allocate()` and is released exactly once, here.
        // Source is Copy, so there is nothing to drop in place first.
        unsafe { self.alloc.deallocate(self.ptr) }
    }
}

impl<A: SourceAlloc> fmt::Debug for SourceBox<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SourceBox").field(&**self).finish()
    }
}

/// The Rust global allocator (feature `alloc`).
///
/// ```
/// use pmem2_source::{Global, SourceBox};
///
/// let source = SourceBox::anon_in(4096, Global).unwrap();
/// assert_eq!(source.anon_size(), Some(4096));
/// ```
#[cfg(feature = "alloc")]
#[derive(Clone, Copy, Debug, Default)]
pub struct Global;

#[cfg(feature = "alloc")]
const SOURCE_LAYOUT: core::alloc::Layout = core::alloc::Layout::new::<Source>();

// SAFETY: memory comes from the global allocator with Source's layout and goes back with the
// same layout; `alloc` returns null (→ None) on failure rather than aborting.
#[cfg(feature = "alloc")]
unsafe impl SourceAlloc for Global {
    fn allocate(&self) -> Option<NonNull<Source>> {
        // SAFETY: Source's layout has a non-zero size.
        NonNull::new(unsafe { heap::alloc::alloc(SOURCE_LAYOUT) }.cast::<Source>())
    }

    unsafe fn deallocate(&self, ptr: NonNull<Source>) {
        // SAFETY: `ptr` came from `alloc` with this layout (caller's guarantee).
        unsafe { heap::alloc::dealloc(ptr.as_ptr().cast::<u8>(), SOURCE_LAYOUT) }
    }
}

/// `N` source slots in static memory, handed out under a spin lock: allocation with no heap.
///
/// Exhaustion is an ordinary failure (`-ENOMEM`). Slots are found by a linear scan, so keep
/// `N` modest (tens, not thousands).
///
/// ```
/// use pmem2_source::{SourceBox, StaticPool};
///
/// static POOL: StaticPool<8> = StaticPool::new();
/// let source = SourceBox::anon_in(1 << 21, &POOL).unwrap();
/// assert_eq!(POOL.in_use(), 1);
/// drop(source);
/// assert_eq!(POOL.in_use(), 0);
/// ```
pub struct StaticPool<const N: usize> {
    slots: [UnsafeCell<MaybeUninit<Source>>; N],
    in_use: spin::Mutex<[bool; N]>,
}

// SAFETY: a slot's memory is only reachable through the pointer `allocate` hands out while its
// `in_use` flag is set, and flags change only under the mutex, so no two owners ever share a
// slot, whatever thread they are on.
unsafe impl<const N: usize> Sync for StaticPool<N> {}

/// Regression (found by Miri): a pool used by value moved into its [`SourceBox`], leaving the
/// box pointing into the pool's old place — a dangling pointer from safe code. The pool is
/// now [`SourceAlloc`] only through a shared reference, so these do not compile:
///
/// ```compile_fail
/// use pmem2_source::{SourceBox, StaticPool};
///
/// let source = SourceBox::anon_in(1, StaticPool::<1>::new());
/// ```
///
/// ```compile_fail
/// use pmem2_source::{CountingAlloc, SourceBox, StaticPool};
///
/// let source = SourceBox::anon_in(1, CountingAlloc::new(StaticPool::<1>::new()));
/// ```
///
/// and this does:
///
/// ```
/// use pmem2_source::{CountingAlloc, SourceBox, StaticPool};
///
/// let pool = StaticPool::<1>::new();
/// let counting = CountingAlloc::new(&pool);
/// let source = SourceBox::anon_in(1, &counting).unwrap();
/// assert_eq!((source.anon_size(), pool.in_use()), (Some(1), 1));
/// ```
#[cfg(doctest)]
pub struct StaticPoolByValueIsNotAnAllocator;

impl<const N: usize> StaticPool<N> {
    /// An empty pool (usable in a `static`).
    pub const fn new() -> StaticPool<N> {
        StaticPool {
            slots: [const { UnsafeCell::new(MaybeUninit::uninit()) }; N],
            in_use: spin::Mutex::new([false; N]),
        }
    }

    /// How many sources the pool can hold.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// How many slots are handed out right now.
    pub fn in_use(&self) -> usize {
        self.in_use.lock().iter().filter(|&&used| used).count()
    }

    fn slot_index(&self, ptr: NonNull<Source>) -> Option<usize> {
        let offset = (ptr.as_ptr() as usize).checked_sub(self.slots.as_ptr() as usize)?;
        let size = core::mem::size_of::<Source>();
        let index = offset / size;
        (offset % size == 0 && index < N).then_some(index)
    }
}

impl<const N: usize> Default for StaticPool<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Debug for StaticPool<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticPool")
            .field("capacity", &N)
            .field("in_use", &self.in_use())
            .finish()
    }
}

// SAFETY: see `impl Sync`: a slot is handed out only while free, marked used under the lock,
// and marked free again only by `deallocate` of that same slot. Slots are `MaybeUninit<Source>`
// in an `UnsafeCell`, so they are aligned for Source and writable through the pointer. The
// implementing type is a reference: moving it leaves the pool, and so the slots, in place, and
// the borrow keeps the pool alive and unmoved while any source from it exists.
unsafe impl<const N: usize> SourceAlloc for &StaticPool<N> {
    fn allocate(&self) -> Option<NonNull<Source>> {
        let mut in_use = self.in_use.lock();
        let index = in_use.iter().position(|&used| !used)?;
        let slot = self.slots.get(index)?;
        *in_use.get_mut(index)? = true;
        NonNull::new(slot.get().cast::<Source>())
    }

    unsafe fn deallocate(&self, ptr: NonNull<Source>) {
        // A pointer from elsewhere breaks the caller's contract; ignoring it is the least
        // harmful answer (it cannot free somebody else's slot).
        if let Some(index) = self.slot_index(ptr)
            && let Some(used) = self.in_use.lock().get_mut(index)
        {
            *used = false;
        }
    }
}

/// An allocator that always fails: every allocation is `-ENOMEM`.
///
/// ```
/// use pmem2_source::{FailingAlloc, SourceBox};
///
/// assert_eq!(SourceBox::anon_in(1, FailingAlloc).unwrap_err().code(), -12);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct FailingAlloc;

// SAFETY: never hands out memory, so there is nothing to uphold.
unsafe impl SourceAlloc for FailingAlloc {
    fn allocate(&self) -> Option<NonNull<Source>> {
        None
    }

    unsafe fn deallocate(&self, _ptr: NonNull<Source>) {}
}

/// Wraps another allocator and counts what passes through it, to prove that every
/// allocation is freed exactly once.
///
/// ```
/// use pmem2_source::{CountingAlloc, SourceBox, StaticPool};
///
/// let pool = StaticPool::<2>::new();
/// let counting = CountingAlloc::new(&pool);
/// let source = SourceBox::anon_in(1, &counting).unwrap();
/// drop(source);
/// assert_eq!((counting.allocations(), counting.deallocations()), (1, 1));
/// ```
#[derive(Debug, Default)]
pub struct CountingAlloc<A> {
    inner: A,
    allocations: AtomicUsize,
    failures: AtomicUsize,
    deallocations: AtomicUsize,
}

impl<A> CountingAlloc<A> {
    /// Counts what goes through `inner`.
    pub const fn new(inner: A) -> CountingAlloc<A> {
        CountingAlloc {
            inner,
            allocations: AtomicUsize::new(0),
            failures: AtomicUsize::new(0),
            deallocations: AtomicUsize::new(0),
        }
    }

    /// Successful allocations so far.
    pub fn allocations(&self) -> usize {
        self.allocations.load(Ordering::SeqCst)
    }

    /// Allocation attempts that failed so far.
    pub fn failures(&self) -> usize {
        self.failures.load(Ordering::SeqCst)
    }

    /// Deallocations so far.
    pub fn deallocations(&self) -> usize {
        self.deallocations.load(Ordering::SeqCst)
    }

    /// Allocations not yet freed.
    pub fn live(&self) -> usize {
        self.allocations().saturating_sub(self.deallocations())
    }

    /// The wrapped allocator.
    pub fn inner(&self) -> &A {
        &self.inner
    }
}

// SAFETY: forwards every call to `inner` unchanged; counting has no effect on the memory.
unsafe impl<A: SourceAlloc> SourceAlloc for CountingAlloc<A> {
    fn allocate(&self) -> Option<NonNull<Source>> {
        let ptr = self.inner.allocate();
        let counter = if ptr.is_some() {
            &self.allocations
        } else {
            &self.failures
        };
        counter.fetch_add(1, Ordering::SeqCst);
        ptr
    }

    unsafe fn deallocate(&self, ptr: NonNull<Source>) {
        self.deallocations.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the caller's guarantee for `ptr` is passed on unchanged.
        unsafe { self.inner.deallocate(ptr) }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;
    use crate::codes::PMEM2_E_INVALID_FILE_HANDLE;
    use crate::sys::scripted::ScriptedKernel;
    use crate::{Errno, FileType};

    #[test]
    fn failing_allocator_gives_enomem_after_classifying() {
        let counting = CountingAlloc::new(FailingAlloc);
        let kernel = ScriptedKernel::regular_file();
        let err = SourceBox::from_fd_in(&kernel, 3, &counting).expect_err("no memory");
        assert_eq!(err, Error::NoMemory);
        assert_eq!(err.code(), -libc::ENOMEM);
        assert_eq!(
            err.to_string(),
            "cannot allocate a pmem2_source: out of memory"
        );
        assert_eq!(
            kernel.calls().len(),
            2,
            "classification happens before allocation"
        );
        assert_eq!(
            (counting.allocations(), counting.failures(), counting.live()),
            (0, 1, 0)
        );
    }

    #[test]
    fn bad_descriptor_allocates_nothing() {
        let pool = StaticPool::<1>::new();
        let counting = CountingAlloc::new(&pool);
        let kernel = ScriptedKernel::regular_file().with_fcntl(Err(Errno::EBADF));
        let err = SourceBox::from_fd_in(&kernel, 3, &counting).expect_err("closed");
        assert_eq!(err.code(), PMEM2_E_INVALID_FILE_HANDLE);
        assert_eq!(counting.allocations() + counting.failures(), 0);
    }

    #[test]
    fn counting_sees_balanced_allocations() {
        let pool = StaticPool::<4>::new();
        let counting = CountingAlloc::new(&pool);
        let kernel = ScriptedKernel::char_device(0xfc00);
        {
            let dax = SourceBox::from_fd_in(&kernel, 7, &counting).expect("dax");
            assert_eq!(dax.file_type(), Some(FileType::DeviceDax));
            assert_eq!(dax.fd(), Ok(7));
            let mut slot = Some(SourceBox::anon_in(5, &counting).expect("anon"));
            assert_eq!(counting.live(), 2);
            SourceBox::delete(&mut slot);
            SourceBox::delete(&mut slot);
            assert_eq!(counting.live(), 1);
        }
        assert_eq!((counting.allocations(), counting.deallocations()), (2, 2));
        assert_eq!(counting.inner().in_use(), 0);
    }

    #[test]
    fn pool_hands_out_distinct_slots_and_reuses_them() {
        let pool = StaticPool::<3>::new();
        let boxes: std::vec::Vec<_> = (0..3)
            .map(|i| SourceBox::anon_in(i, &pool).expect("slot"))
            .collect();
        let mut addresses: std::vec::Vec<_> =
            boxes.iter().map(|b| b.ptr.as_ptr() as usize).collect();
        addresses.sort_unstable();
        addresses.dedup();
        assert_eq!(addresses.len(), 3);
        assert_eq!(
            SourceBox::anon_in(9, &pool).map(|_| ()),
            Err(Error::NoMemory)
        );
        for (i, b) in boxes.iter().enumerate() {
            assert_eq!(b.anon_size(), Some(i), "no slot overwritten another");
        }
        drop(boxes);
        assert_eq!(pool.in_use(), 0);
        assert!(SourceBox::anon_in(9, &pool).is_ok());
    }

    #[test]
    fn pool_ignores_foreign_pointers() {
        let pool = StaticPool::<2>::new();
        let handle = &pool;
        let held = SourceBox::anon_in(1, handle).expect("slot");
        let mut outside = Source::anon(0);
        let inside_but_misaligned =
            NonNull::new(held.ptr.as_ptr().cast::<u8>().wrapping_add(1).cast());
        // SAFETY: deliberately breaks the contract to check the pool does not free a slot
        // it did not hand out for this pointer; the pool never dereferences the pointer.
        unsafe {
            handle.deallocate(NonNull::from(&mut outside));
        }
        if let Some(ptr) = inside_but_misaligned {
            // SAFETY: as above.
            unsafe { handle.deallocate(ptr) };
        }
        assert_eq!(pool.in_use(), 1);
    }

    /// Regression for the pool moved into its own box (see `StaticPoolByValueIsNotAnAllocator`):
    /// boxes and the allocator handles in them move freely, between threads too, while the
    /// pool stays put.
    #[test]
    fn pool_boxes_and_handles_move_freely() {
        static POOL: StaticPool<3> = StaticPool::new();
        let pool = StaticPool::<2>::new();
        let counting = CountingAlloc::new(&pool);
        let boxes = std::vec![
            SourceBox::anon_in(11, &counting).expect("slot"),
            SourceBox::anon_in(22, &counting).expect("slot"),
        ];
        let moved: std::vec::Vec<_> = boxes.into_iter().rev().collect();
        assert_eq!(moved[0].anon_size(), Some(22));
        assert_eq!(moved[1].anon_size(), Some(11));
        let sent = SourceBox::anon_in(33, &POOL).expect("slot");
        let handed_over = std::thread::spawn(move || {
            let (ptr, handle) = sent.into_raw();
            // SAFETY: `ptr` and `handle` come from one into_raw call.
            let source = unsafe { SourceBox::from_raw_in(ptr, handle) };
            assert_eq!(source.anon_size(), Some(33));
            source
        })
        .join()
        .expect("thread");
        assert_eq!(handed_over.anon_size(), Some(33));
        assert_eq!(POOL.in_use(), 1);
        drop(handed_over);
        drop(moved);
        assert_eq!((POOL.in_use(), pool.in_use(), counting.live()), (0, 0, 0));
    }

    #[test]
    fn pool_and_box_describe_themselves() {
        let pool = StaticPool::<3>::default();
        assert_eq!(pool.capacity(), 3);
        let source = SourceBox::anon_in(5, &pool).expect("slot");
        assert!(
            core::ptr::eq(*source.allocator(), &pool),
            "the box's own pool"
        );
        assert_eq!(
            std::format!("{pool:?}"),
            "StaticPool { capacity: 3, in_use: 1 }"
        );
        assert_eq!(
            std::format!("{source:?}"),
            "SourceBox(Source { anon_size: Some(5) })"
        );
    }

    #[test]
    fn into_raw_and_back() {
        let pool = StaticPool::<1>::new();
        let counting = CountingAlloc::new(&pool);
        let (ptr, alloc) = SourceBox::anon_in(77, &counting).expect("slot").into_raw();
        assert_eq!(counting.live(), 1);
        // SAFETY: ptr and alloc come from one into_raw call.
        let again = unsafe { SourceBox::from_raw_in(ptr, alloc) };
        assert_eq!(again.anon_size(), Some(77));
        drop(again);
        assert_eq!(counting.live(), 0);
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn global_allocator_round_trip() {
        let source = SourceBox::anon_in(3, Global).expect("heap");
        assert_eq!(source.anon_size(), Some(3));
    }
}
