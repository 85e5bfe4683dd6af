//! Stress: 8 threads create and delete sources in one fixed-capacity [`StaticPool`] at once.
//!
//! Four *modest* threads each hold one or two sources at a time (create, check, delete); four
//! *greedy* threads each take slots until the pool says it is exhausted, then give them all
//! back, so exhaustion is hit on every greedy round. Checked throughout:
//!
//! - no slot is handed out twice: every live slot is claimed in an owner table indexed by its
//!   address (a claim of a slot somebody else holds fails), and each source carries a tag
//!   unique to its owner and attempt, read back right after creation and again just before
//!   deletion (a slot shared by two owners would show the other's tag);
//! - every slot lies inside the pool;
//! - every failure is [`Error::NoMemory`], code `-ENOMEM` (-12), message included;
//! - no slot is lost: afterwards `in_use()` is 0, allocations equal deallocations (a
//!   [`CountingAlloc`] around the pool), and the pool hands out exactly its capacity again.
//!
//! Cycles per thread: `PMEM2_STRESS_ITERATIONS` (default 200,000, about 2-5 s for the whole
//! test in a debug build on 2 cores; under Miri 40). The long run of docs/hardening.md:
//! `PMEM2_STRESS_ITERATIONS=100000 cargo test --release --test static_pool_stress`.

use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use pmem2_source::sys::scripted::ScriptedKernel;
use pmem2_source::{CountingAlloc, Error, Source, SourceBox, StaticPool};

const THREADS: usize = 8;
const GREEDY_THREADS: usize = 4;
const CAPACITY: usize = 16;

/// Cycles per thread when `PMEM2_STRESS_ITERATIONS` is not set.
const DEFAULT_ITERATIONS: u64 = if cfg!(miri) { 40 } else { 200_000 };

type Pool = CountingAlloc<&'static StaticPool<CAPACITY>>;

/// One word of the owner table per `Source`-aligned address inside the pool.
const TABLE_LEN: usize = size_of::<StaticPool<CAPACITY>>() / align_of::<Source>();

static SLOTS: StaticPool<CAPACITY> = StaticPool::new();

/// The pool's test harness: the pool (counted), who owns which slot, and what was seen.
struct Harness {
    pool: Pool,
    /// `owners[i]` is the tag of the source living at the `i`-th aligned word of `SLOTS`, or 0.
    owners: [AtomicU64; TABLE_LEN],
    exhaustions: AtomicUsize,
    creations: AtomicUsize,
}

static HARNESS: Harness = Harness {
    pool: CountingAlloc::new(&SLOTS),
    owners: [const { AtomicU64::new(0) }; TABLE_LEN],
    exhaustions: AtomicUsize::new(0),
    creations: AtomicUsize::new(0),
};

type PoolBox = SourceBox<&'static Pool>;

fn iterations() -> u64 {
    match std::env::var("PMEM2_STRESS_ITERATIONS") {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("PMEM2_STRESS_ITERATIONS={text:?} is not a count")),
        Err(_) => DEFAULT_ITERATIONS,
    }
}

/// A tag no other owner or attempt uses: thread in the high bits, attempt below (never 0).
fn tag(thread: usize, attempt: u64) -> u64 {
    ((thread as u64 + 1) << 48) | (attempt & ((1 << 48) - 1))
}

/// The owner-table index of the slot `source` lives in; panics for memory outside the pool.
fn slot_of(source: &PoolBox) -> usize {
    let base = &raw const SLOTS as usize;
    let address = &raw const **source as usize;
    let offset = address
        .checked_sub(base)
        .filter(|&offset| offset + size_of::<Source>() <= size_of::<StaticPool<CAPACITY>>())
        .unwrap_or_else(|| panic!("slot {address:#x} lies outside the pool at {base:#x}"));
    assert_eq!(offset % align_of::<Source>(), 0, "misaligned slot");
    offset / align_of::<Source>()
}

/// Records a failed creation, which must be exhaustion reported as -ENOMEM.
fn exhausted(err: &Error) {
    assert_eq!(*err, Error::NoMemory);
    assert_eq!(err.code(), -12);
    assert_eq!(
        err.to_string(),
        "cannot allocate a pmem2_source: out of memory"
    );
    HARNESS.exhaustions.fetch_add(1, Ordering::Relaxed);
}

/// A source fresh from the pool: claims its slot for `tag` (which must be free) and checks the
/// source reads back as written.
fn claim(source: &PoolBox, tag: u64, expected: &Source) {
    assert_eq!(&**source, expected, "read back right after creation");
    let slot = slot_of(source);
    if let Err(holder) =
        HARNESS.owners[slot].compare_exchange(0, tag, Ordering::AcqRel, Ordering::Acquire)
    {
        panic!("slot {slot} handed out twice: held by {holder:#x}, given to {tag:#x}");
    }
    HARNESS.creations.fetch_add(1, Ordering::Relaxed);
}

/// Checks the source still holds what its owner wrote, gives up the claim, then deletes it
/// (in that order: once deleted, another thread may rightly be handed the slot).
fn release(source: PoolBox, tag: u64, expected: &Source) {
    assert_eq!(&*source, expected, "overwritten while held");
    let slot = slot_of(&source);
    if let Err(holder) =
        HARNESS.owners[slot].compare_exchange(tag, 0, Ordering::AcqRel, Ordering::Acquire)
    {
        panic!("slot {slot} of {tag:#x} was claimed by {holder:#x} meanwhile");
    }
    let mut slot = Some(source);
    SourceBox::delete(&mut slot);
    assert!(slot.is_none());
}

/// Create, check, delete; odd threads keep one source across cycles (two live at a time),
/// and every fourth source comes from a scripted descriptor (its number is the tag).
fn modest(thread: usize, cycles: u64) {
    let kernel = ScriptedKernel::regular_file();
    let mut kept: Option<(PoolBox, u64, Source)> = None;
    for attempt in 1..=cycles {
        let tag = tag(thread, attempt);
        let created = if attempt % 4 == 0 {
            let fd = (tag as i32) & i32::MAX;
            SourceBox::from_fd_in(&kernel, fd, &HARNESS.pool)
                .map(|source| (source, Source::from_fd_with(&kernel, fd).expect("scripted")))
        } else {
            SourceBox::anon_in(tag as usize, &HARNESS.pool)
                .map(|source| (source, Source::anon(tag as usize)))
        };
        match created {
            Ok((source, expected)) => {
                claim(&source, tag, &expected);
                if thread % 2 == 1 {
                    if let Some((old, old_tag, old_expected)) =
                        kept.replace((source, tag, expected))
                    {
                        release(old, old_tag, &old_expected);
                    }
                } else {
                    release(source, tag, &expected);
                }
            }
            Err(err) => exhausted(&err),
        }
    }
    if let Some((source, tag, expected)) = kept {
        release(source, tag, &expected);
    }
}

/// Takes slots until the pool is exhausted, then frees them all; `cycles` creations in all.
fn greedy(thread: usize, cycles: u64) {
    let mut held: Vec<(PoolBox, u64, Source)> = Vec::with_capacity(CAPACITY);
    let mut attempt = 0;
    while attempt < cycles {
        attempt += 1;
        let tag = tag(thread, attempt);
        match SourceBox::anon_in(tag as usize, &HARNESS.pool) {
            Ok(source) => {
                let expected = Source::anon(tag as usize);
                claim(&source, tag, &expected);
                held.push((source, tag, expected));
                assert!(held.len() <= CAPACITY, "more sources than slots");
                continue;
            }
            Err(err) => exhausted(&err),
        }
        for (source, tag, expected) in held.drain(..) {
            release(source, tag, &expected);
        }
    }
    for (source, tag, expected) in held.drain(..) {
        release(source, tag, &expected);
    }
}

#[test]
fn eight_threads_share_a_static_pool() {
    let cycles = iterations();
    let start_line = Barrier::new(THREADS);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let start_line = &start_line;
            scope.spawn(move || {
                start_line.wait();
                if thread < GREEDY_THREADS {
                    greedy(thread, cycles);
                } else {
                    modest(thread, cycles);
                }
            });
        }
    });
    let elapsed = started.elapsed();

    let pool = &HARNESS.pool;
    let creations = HARNESS.creations.load(Ordering::Relaxed);
    let exhaustions = HARNESS.exhaustions.load(Ordering::Relaxed);
    assert_eq!(
        creations + exhaustions,
        THREADS * cycles as usize,
        "every attempt counted"
    );
    assert_eq!(SLOTS.in_use(), 0, "a slot was lost");
    assert_eq!(
        (pool.allocations(), pool.failures(), pool.deallocations()),
        (creations, exhaustions, creations)
    );
    assert!(
        HARNESS
            .owners
            .iter()
            .all(|owner| owner.load(Ordering::Relaxed) == 0),
        "a claim outlived its source"
    );
    if cycles > CAPACITY as u64 {
        assert!(
            exhaustions >= GREEDY_THREADS,
            "every greedy thread hits exhaustion"
        );
    }

    // Every slot is still there, each exactly once.
    let all: Vec<PoolBox> = (0..CAPACITY)
        .map(|i| SourceBox::anon_in(i, pool).expect("a free slot"))
        .collect();
    let mut slots: Vec<usize> = all.iter().map(slot_of).collect();
    slots.sort_unstable();
    slots.dedup();
    assert_eq!(slots.len(), CAPACITY, "distinct slots");
    assert_eq!(SourceBox::anon_in(0, pool).map(drop), Err(Error::NoMemory));
    drop(all);
    assert_eq!(SLOTS.in_use(), 0);

    let attempts = THREADS as f64 * cycles as f64;
    eprintln!(
        "static pool stress: {THREADS} threads x {cycles} cycles, capacity {CAPACITY}: \
         {creations} created, {exhaustions} exhausted in {:.2} s ({:.0} cycles/s)",
        elapsed.as_secs_f64(),
        attempts / elapsed.as_secs_f64()
    );
}
