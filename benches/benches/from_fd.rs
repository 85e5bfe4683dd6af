//! Criterion benches of the Rust API's `from_fd`: by value (`Source::from_fd`), and allocated
//! (`SourceBox::from_fd_in`, dropped again) with the global allocator and with a
//! `StaticPool`, for
//!
//! - a regular file (`fcntl` + `fstat`),
//! - `/dev/null`: a character device that is not Device DAX (`+ readlinkat`),
//! - a fake Device DAX: `/dev/null` with `/sys/dev/char/1:3` staged on a tmpfs in a private
//!   mount namespace (root only; otherwise skipped, and the reason is printed), also with
//!   `size` and `alignment`,
//! - the failure paths: a closed descriptor, an `O_WRONLY` one, a directory.
//!
//! `cargo bench -p pmem2-source-benches --bench from_fd [-- FILTER]`. The comparison with
//! libpmem2 and the bare syscalls is `benches/compare` (`scripts/bench.sh`).

#[cfg(target_os = "linux")]
#[path = "../../tests/common/mod.rs"]
mod common;

#[cfg(target_os = "linux")]
mod linux {
    use std::hint::black_box;
    use std::os::fd::{AsRawFd, RawFd};
    use std::time::Duration;

    use criterion::Criterion;
    use pmem2_source::sys::Linux;
    use pmem2_source::{Global, Source, SourceBox, StaticPool};
    use pmem2_source_benches::fake_dax;
    use pmem2_source_benches::fixtures::Fixtures;

    use crate::common::fake_sysfs::{SYS_DEV_CHAR, enter_or_exit, on_tmpfs_at};

    /// One slot is all a bench needs: each source is dropped before the next is made.
    static POOL: StaticPool<1> = StaticPool::new();

    /// The three forms of `from_fd` on `fd`, in group `name`. `ok` says whether the call
    /// succeeds there (checked once before timing). Each answer is observed by reference
    /// (`observe`) and dropped in the timed loop, the allocated forms' memory freed.
    fn forms(c: &mut Criterion, name: &str, fd: RawFd, ok: bool) {
        assert_eq!(Source::from_fd(fd).is_ok(), ok, "{name}: from_fd({fd})");
        let mut group = c.benchmark_group(name);
        group.bench_function("by_value", |b| {
            b.iter(|| observe(&Source::from_fd(black_box(fd))))
        });
        group.bench_function("global_alloc", |b| {
            b.iter(|| observe(&SourceBox::from_fd_in(&Linux, black_box(fd), Global)))
        });
        group.bench_function("static_pool", |b| {
            b.iter(|| observe(&SourceBox::from_fd_in(&Linux, black_box(fd), &POOL)))
        });
        group.finish();
        assert_eq!(POOL.in_use(), 0, "every pooled source was dropped");
    }

    /// Hides `answer` from the optimiser where it lies. Returning it to criterion instead
    /// would copy the whole `Result` (over 100 bytes) with loads wider than the stores that
    /// just wrote it, which the CPU cannot forward: a cost of the bench, not of the call
    /// (benches/compare measured it at up to 10 % of a failing `from_fd`).
    fn observe<T>(answer: &T) {
        black_box(answer);
    }

    /// `size` and `alignment` of the source made from `fd`, in group `name`, after checking
    /// their answers.
    fn queries(c: &mut Criterion, name: &str, fd: RawFd, size: u64, alignment: usize) {
        let source = Source::from_fd(fd).expect(name);
        assert_eq!(source.size(), Ok(size), "{name}: size");
        assert_eq!(source.alignment(), Ok(alignment), "{name}: alignment");
        let mut group = c.benchmark_group(name);
        group.bench_function("size", |b| b.iter(|| observe(&black_box(&source).size())));
        group.bench_function("alignment", |b| {
            b.iter(|| observe(&black_box(&source).alignment()))
        });
        group.finish();
    }

    fn fake_device_dax(c: &mut Criterion, fixtures: &Fixtures) {
        let fd = fixtures.dev_null.as_raw_fd();
        forms(c, "from_fd/fake_device_dax", fd, true);
        let (size, alignment) = (fake_dax::SIZE_BYTES, fake_dax::ALIGN_BYTES);
        queries(c, "query/fake_device_dax", fd, size, alignment);
    }

    pub fn main() {
        // The private mount namespace first, while the process has one thread; without root
        // this prints why the fake Device DAX is skipped.
        let namespace = enter_or_exit().is_ok();
        let fixtures = Fixtures::new();
        let mut c = Criterion::default()
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .configure_from_args();

        for (name, fd, ok) in [
            ("from_fd/regular_file", fixtures.regular.as_raw_fd(), true),
            ("from_fd/dev_null", fixtures.dev_null.as_raw_fd(), false),
            ("from_fd/closed_fd", fixtures.closed, false),
            ("from_fd/write_only", fixtures.write_only.as_raw_fd(), false),
            ("from_fd/directory", fixtures.directory.as_raw_fd(), false),
        ] {
            forms(&mut c, name, fd, ok);
        }

        let regular = fixtures.regular.as_raw_fd();
        queries(
            &mut c,
            "query/regular_file",
            regular,
            Fixtures::REGULAR_SIZE,
            4096,
        );

        if namespace {
            let staged = on_tmpfs_at(SYS_DEV_CHAR, false, &fake_dax::stage, || {
                fake_device_dax(&mut c, &fixtures);
                Ok(())
            });
            if let Err(why) = staged {
                panic!("fake Device DAX: {why}");
            }
        } else {
            println!("from_fd/fake_device_dax skipped: it needs root (a private mount namespace)");
        }
        c.final_summary();
    }
}

#[cfg(target_os = "linux")]
fn main() {
    linux::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("these benches need Linux");
}
