//! The copy routines, the recovery, and the handler's installation, forwarding and removal.
//!
//! Every test here touches the process-wide `SIGBUS` disposition (a copy installs our handler,
//! some tests install their own), so they run one at a time under [`serial`]. The scenarios in
//! which the process must die run in a child process (this test binary, re-run with
//! [`SCENARIO`] set).

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::MutexGuard;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicUsize};
use std::thread;
use std::time::{Duration, Instant};

use super::*;

/// The environment variable naming the scenario [`child_process_scenario`] plays.
const SCENARIO: &str = "PMEM2_SOURCE_STD_MCSAFE_SCENARIO";

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).expect("page size")
}

/// The byte at `offset` of a fresh [`Truncated`] file.
fn pattern(offset: usize) -> u8 {
    (offset.wrapping_mul(7) ^ (offset >> 8)) as u8
}

/// A file of two pages, mapped shared and writable, then truncated to one page: touching the
/// second page of the mapping raises `SIGBUS` (`BUS_ADRERR`). The file is unlinked at once;
/// the descriptor and the mapping keep it alive.
struct Truncated {
    file: File,
    map: *mut u8,
    page: usize,
}

impl Truncated {
    fn new() -> Truncated {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let page = page_size();
        let path = std::env::temp_dir().join(format!(
            "pmem2-source-std-mcsafe-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .expect("create the test file");
        std::fs::remove_file(&path).expect("unlink the test file");
        let contents: Vec<u8> = (0..2 * page).map(pattern).collect();
        file.write_all_at(&contents, 0).expect("fill the test file");
        // SAFETY: a new shared mapping at an address the kernel picks; nothing else uses it.
        let map = unsafe {
            libc::mmap(
                ptr::null_mut(),
                2 * page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(map, libc::MAP_FAILED, "mmap");
        file.set_len(page as u64).expect("truncate to one page");
        Truncated {
            file,
            map: map.cast(),
            page,
        }
    }

    /// The first byte of the second page, which is past the end of the file.
    fn boundary(&self) -> *mut u8 {
        self.map.wrapping_add(self.page)
    }

    /// `len` bytes of the file from `offset` (through `pread`, not the mapping).
    fn file_bytes(&self, offset: usize, len: usize) -> Vec<u8> {
        let mut bytes = vec![0; len];
        self.file
            .read_exact_at(&mut bytes, offset as u64)
            .expect("pread");
        bytes
    }
}

impl Drop for Truncated {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, which nothing uses any more.
        let ret = unsafe { libc::munmap(self.map.cast(), 2 * self.page) };
        assert_eq!(ret, 0, "munmap");
    }
}

fn set_action(handler: libc::sighandler_t, flags: c_int, mask: &[c_int]) -> libc::sigaction {
    let mut action = empty_action();
    action.sa_sigaction = handler;
    action.sa_flags = flags;
    for &signal in mask {
        // SAFETY: adds a valid signal to an initialised set.
        unsafe { libc::sigaddset(&mut action.sa_mask, signal) };
    }
    restore_action(&action)
}

/// Installs `action` for `SIGBUS`; returns the one it replaced.
fn restore_action(action: &libc::sigaction) -> libc::sigaction {
    let mut old = empty_action();
    // SAFETY: installs a valid disposition for SIGBUS.
    let ret = unsafe { libc::sigaction(libc::SIGBUS, action, &mut old) };
    assert_eq!(ret, 0, "sigaction");
    old
}

fn current() -> libc::sigaction {
    query().expect("sigaction query")
}

fn assert_same(a: &libc::sigaction, b: &libc::sigaction) {
    assert_eq!(a.sa_sigaction, b.sa_sigaction, "handler");
    assert_eq!(a.sa_flags, b.sa_flags, "flags");
    assert!(same_mask(a, b), "mask");
}

// What the test handlers saw.
static CALLS: AtomicUsize = AtomicUsize::new(0);
static LAST_CODE: AtomicI32 = AtomicI32::new(0);
static LAST_ADDR: AtomicUsize = AtomicUsize::new(0);
/// A descriptor the test handlers `ftruncate` to `FIX_LEN` (repairing the fault), or -1.
static FIX_FD: AtomicI32 = AtomicI32::new(-1);
static FIX_LEN: AtomicI64 = AtomicI64::new(0);

fn reset_records(fix: Option<&Truncated>) {
    CALLS.store(0, Ordering::SeqCst);
    LAST_CODE.store(0, Ordering::SeqCst);
    LAST_ADDR.store(0, Ordering::SeqCst);
    match fix {
        Some(mapping) => {
            FIX_LEN.store(2 * mapping.page as i64, Ordering::SeqCst);
            FIX_FD.store(mapping.file.as_raw_fd(), Ordering::SeqCst);
        }
        None => FIX_FD.store(-1, Ordering::SeqCst),
    }
}

fn repair() {
    let fd = FIX_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: ftruncate is async-signal-safe; `fd` is a test file's open descriptor.
        unsafe { libc::ftruncate(fd, FIX_LEN.load(Ordering::SeqCst)) };
    }
}

/// A three-argument handler: records the call, then repairs the fault if asked to.
extern "C" fn recording_handler(_signal: c_int, info: *mut libc::siginfo_t, _context: *mut c_void) {
    CALLS.fetch_add(1, Ordering::SeqCst);
    // SAFETY: the kernel (or our forwarder, passing the kernel's) gives a valid siginfo_t.
    let info = unsafe { &*info };
    LAST_CODE.store(info.si_code, Ordering::SeqCst);
    if info.si_code > 0 {
        // SAFETY: a kernel-generated SIGBUS carries the fault address.
        let addr = unsafe { info.si_addr() };
        LAST_ADDR.store(addr as usize, Ordering::SeqCst);
    }
    repair();
}

/// A one-argument handler: records the call, then repairs the fault if asked to.
extern "C" fn plain_handler(_signal: c_int) {
    CALLS.fetch_add(1, Ordering::SeqCst);
    repair();
}

fn recording() -> libc::sighandler_t {
    recording_handler as extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) as usize
}

fn plain() -> libc::sighandler_t {
    plain_handler as extern "C" fn(c_int) as usize
}

fn touch(address: *const u8) -> u8 {
    // SAFETY: the address is inside a live test mapping; if it is past the end of the file
    // the read raises SIGBUS, which is what the calling test is about.
    unsafe { address.read_volatile() }
}

#[test]
fn copies_match_std() {
    let _serial = serial();
    let before = current();
    let source: Vec<u8> = (0..300).map(|i| (i * 31 + 7) as u8).collect();
    for len in 0..=257 {
        for src_offset in 0..8 {
            for dst_offset in 0..8 {
                let expected = &source[src_offset..src_offset + len];
                let mut dst = vec![0xa5u8; len + 16];
                let window = &mut dst[dst_offset..dst_offset + len];
                // SAFETY: `source` is readable for `len` bytes from `src_offset`.
                let read = unsafe { read(window, source[src_offset..].as_ptr()) };
                assert_eq!(read, Ok(()), "read {len} {src_offset} {dst_offset}");
                assert_eq!(&dst[dst_offset..dst_offset + len], expected);
                assert!(dst[..dst_offset].iter().all(|&b| b == 0xa5), "before");
                assert!(dst[dst_offset + len..].iter().all(|&b| b == 0xa5), "after");

                let mut dst = vec![0x5au8; len + 16];
                let target = dst[dst_offset..].as_mut_ptr();
                // SAFETY: `target` is writable for `len` bytes, apart from `source`.
                let written = unsafe { write(target, expected) };
                assert_eq!(written, Ok(()), "write {len} {src_offset} {dst_offset}");
                assert_eq!(&dst[dst_offset..dst_offset + len], expected);
                assert!(dst[..dst_offset].iter().all(|&b| b == 0x5a), "before");
                assert!(dst[dst_offset + len..].iter().all(|&b| b == 0x5a), "after");
            }
        }
    }
    assert_same(&before, &current());
}

#[test]
fn every_flush_kind_the_cpu_has_works() {
    let _serial = serial();
    let mut buffer = vec![7u8; 4096];
    let kinds: &[usize] = if flush_kind() > 0 {
        &[0, flush_kind()]
    } else {
        &[0]
    };
    let _armed = Armed::new().expect("install");
    for &kind in kinds {
        for (start, len) in [(0, 1), (1, 63), (63, 2), (5, 4000), (4095, 1), (0, 4096)] {
            let addr = buffer[start..].as_mut_ptr();
            // SAFETY: flushes cache lines of `buffer` (and its neighbours), which changes no
            // memory contents.
            assert_eq!(unsafe { mc_flush(kind, addr, len) }, 0, "kind {kind}");
        }
    }
    assert!(buffer.iter().all(|&b| b == 7));
}

#[test]
fn faults_are_recovered_with_the_exact_count() {
    let _serial = serial();
    let before = current();
    let mapping = Truncated::new();
    let page = mapping.page;

    // Entirely past the end: nothing is copied.
    let mut buffer = [0u8; 100];
    // SAFETY: the range is inside the live mapping (past the end of the file).
    let read_past = unsafe { read(&mut buffer, mapping.boundary().wrapping_add(5)) };
    assert_eq!(read_past, Err(CopyError::Copy { not_copied: 100 }));
    // SAFETY: as above.
    let write_past = unsafe { write(mapping.boundary().wrapping_add(3), &buffer) };
    assert_eq!(write_past, Err(CopyError::Copy { not_copied: 100 }));

    // Starting in the file and running past its end: the part in the file is copied, and
    // the count is exactly the part past the end, whatever the alignment.
    for head in [1, 2, 7, 8, 9, 13, 24, 31, 32, 33, 63, 64, 65, 100, 255] {
        for tail in [1, 7, 8, 9, 33, 64, 100] {
            let start = mapping.boundary().wrapping_sub(head);
            let expected = mapping.file_bytes(page - head, head);
            let mut dst = vec![0u8; head + tail];
            // SAFETY: the range is inside the live mapping.
            let read = unsafe { read(&mut dst, start) };
            assert_eq!(
                read,
                Err(CopyError::Copy { not_copied: tail }),
                "read {head}+{tail}"
            );
            assert_eq!(&dst[..head], &expected[..], "read {head}+{tail}");

            let data: Vec<u8> = (0..head + tail).map(|i| (i ^ head ^ 0x3c) as u8).collect();
            // SAFETY: as above.
            let written = unsafe { write(start, &data) };
            assert_eq!(
                written,
                Err(CopyError::Copy { not_copied: tail }),
                "write {head}+{tail}"
            );
            assert_eq!(
                mapping.file_bytes(page - head, head),
                &data[..head],
                "write {head}+{tail}"
            );
        }
    }

    // Within the file, right up to its end: no fault.
    let mut dst = vec![0u8; 77];
    // SAFETY: the range is inside the live mapping and the file.
    let read = unsafe { read(&mut dst, mapping.boundary().wrapping_sub(77)) };
    assert_eq!(read, Ok(()));
    assert_same(&before, &current());
}

// x86_64 only: there the write-back instructions fault like a load. On aarch64 hardware a DC
// to an unmapped page faults too, but qemu-user (the only aarch64 these tests have run on)
// does not model that, and the test would fail there for the emulator's sake.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_fault_while_flushing_is_recovered() {
    let _serial = serial();
    let mapping = Truncated::new();
    let _armed = Armed::new().expect("install");
    // SAFETY: flushing a page of the live mapping past the end of the file: a SIGBUS,
    // recovered.
    let flushed = unsafe { mc_flush(flush_kind(), mapping.boundary(), 64) };
    assert_ne!(flushed, 0);
}

#[test]
fn the_handler_is_installed_only_while_copies_run() {
    let _serial = serial();
    let original = current();
    assert!(!is_ours(original.sa_sigaction));
    let custom = set_action(
        recording(),
        libc::SA_SIGINFO | libc::SA_RESTART,
        &[libc::SIGUSR1],
    );
    assert_same(&custom, &original);
    let installed = current();
    reset_records(None);
    {
        let _armed = Armed::new().expect("install");
        let ours = current();
        assert!(is_ours(ours.sa_sigaction));
        assert_same(&underneath(&ours), &installed);
        assert_eq!(
            ours.sa_flags & (libc::SA_SIGINFO | libc::SA_ONSTACK),
            libc::SA_SIGINFO | libc::SA_ONSTACK
        );
        // SAFETY: sigismember only reads the set.
        let mirrored = unsafe { libc::sigismember(&ours.sa_mask, libc::SIGUSR1) };
        assert_eq!(mirrored, 1, "the previous handler's mask is ours");
        {
            let _nested = Armed::new().expect("count");
            assert_eq!(current().sa_sigaction, ours.sa_sigaction);
        }
        assert_eq!(
            current().sa_sigaction,
            ours.sa_sigaction,
            "still one in flight"
        );
    }
    assert_same(&current(), &installed);

    // A fault inside a copy is ours: the custom handler is not called, and it is back after.
    let mapping = Truncated::new();
    let mut buffer = [0u8; 10];
    // SAFETY: inside the live mapping, past the end of the file.
    let read = unsafe { read(&mut buffer, mapping.boundary()) };
    assert_eq!(read, Err(CopyError::Copy { not_copied: 10 }));
    assert_eq!(CALLS.load(Ordering::SeqCst), 0);
    assert_same(&current(), &installed);

    restore_action(&original);
    assert_same(&current(), &original);
}

#[test]
fn a_raised_sigbus_is_forwarded() {
    let _serial = serial();
    let original = current();
    set_action(recording(), libc::SA_SIGINFO, &[]);
    reset_records(None);
    {
        let _armed = Armed::new().expect("install");
        // SAFETY: raising SIGBUS, which the recording handler (through ours) handles.
        assert_eq!(unsafe { libc::raise(libc::SIGBUS) }, 0);
    }
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(LAST_CODE.load(Ordering::SeqCst), libc::SI_TKILL);
    assert_eq!(current().sa_sigaction, recording());
    restore_action(&original);
}

#[test]
fn an_unrelated_fault_reaches_the_previous_handler() {
    let _serial = serial();
    let original = current();
    let mapping = Truncated::new();
    set_action(recording(), libc::SA_SIGINFO, &[]);
    reset_records(Some(&mapping));
    {
        let _armed = Armed::new().expect("install");
        // Not inside the copy routines: passed on. The handler grows the file again (with
        // zeroes), so the retried read succeeds.
        assert_eq!(touch(mapping.boundary().wrapping_add(10)), 0);
    }
    let calls = CALLS.load(Ordering::SeqCst);
    let code = LAST_CODE.load(Ordering::SeqCst);
    let addr = LAST_ADDR.load(Ordering::SeqCst);
    reset_records(None);
    restore_action(&original);
    assert_eq!(calls, 1);
    assert_eq!(code, libc::BUS_ADRERR);
    assert_eq!(addr, mapping.boundary().wrapping_add(10) as usize);
}

#[test]
fn a_one_argument_handler_is_forwarded_to() {
    let _serial = serial();
    let original = current();
    let mapping = Truncated::new();
    set_action(plain(), 0, &[]);
    reset_records(Some(&mapping));
    {
        let _armed = Armed::new().expect("install");
        let _ = touch(mapping.boundary());
    }
    let calls = CALLS.load(Ordering::SeqCst);
    reset_records(None);
    let after = current();
    restore_action(&original);
    assert_eq!(calls, 1);
    assert_eq!(after.sa_sigaction, plain());
}

#[test]
fn a_one_shot_handler_is_reset_as_the_kernel_would() {
    let _serial = serial();
    let original = current();
    let mapping = Truncated::new();
    set_action(recording(), libc::SA_SIGINFO | libc::SA_RESETHAND, &[]);
    reset_records(Some(&mapping));
    let during;
    {
        let _armed = Armed::new().expect("install");
        let _ = touch(mapping.boundary());
        during = current();
    }
    let calls = CALLS.load(Ordering::SeqCst);
    reset_records(None);
    let after = current();
    restore_action(&original);
    assert_eq!(calls, 1);
    assert_eq!(during.sa_sigaction, libc::SIG_DFL);
    // The one shot is spent: SIG_DFL stays, neither ours nor the handler comes back.
    assert_eq!(after.sa_sigaction, libc::SIG_DFL);
}

#[test]
fn a_thread_that_blocks_sigbus_still_recovers() {
    let _serial = serial();
    let before = current();
    thread::spawn(|| {
        let set = sigbus_set();
        // SAFETY: changes this test thread's mask only.
        let ret = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, ptr::null_mut()) };
        assert_eq!(ret, 0);
        let mapping = Truncated::new();
        let mut buffer = [0u8; 16];
        // SAFETY: inside the live mapping, past the end of the file.
        let read = unsafe { read(&mut buffer, mapping.boundary()) };
        assert_eq!(read, Err(CopyError::Copy { not_copied: 16 }));
        let mut mask = empty_action().sa_mask;
        // SAFETY: only reads this thread's mask.
        let ret = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, ptr::null(), &mut mask) };
        assert_eq!(ret, 0);
        // SAFETY: sigismember only reads the set.
        let blocked = unsafe { libc::sigismember(&mask, libc::SIGBUS) };
        assert_eq!(blocked, 1, "blocked again after the copy");
    })
    .join()
    .expect("thread");
    assert_same(&before, &current());
}

#[test]
fn concurrent_copies_from_eight_threads() {
    let _serial = serial();
    let before = current();
    let threads: Vec<_> = (0..8usize)
        .map(|t| {
            thread::spawn(move || {
                let mapping = Truncated::new();
                let page = mapping.page;
                // The first half of the page is only read; writes go to the second half.
                for i in 0..3000usize {
                    let len = 1 + (i * 37 + t * 11) % 200;
                    let head = 1 + (i * 13 + t * 5) % 200;
                    match i % 4 {
                        0 => {
                            let offset = (i * 7) % (page / 2 - 200);
                            let mut dst = vec![0u8; len];
                            // SAFETY: inside the mapping and the file.
                            let read = unsafe { read(&mut dst, mapping.map.wrapping_add(offset)) };
                            assert_eq!(read, Ok(()));
                            let expected: Vec<u8> = (offset..offset + len).map(pattern).collect();
                            assert_eq!(dst, expected);
                        }
                        1 => {
                            let start = mapping.boundary().wrapping_sub(head);
                            let expected = mapping.file_bytes(page - head, head);
                            let mut dst = vec![0u8; head + len];
                            // SAFETY: inside the mapping.
                            let read = unsafe { read(&mut dst, start) };
                            assert_eq!(read, Err(CopyError::Copy { not_copied: len }));
                            assert_eq!(&dst[..head], &expected[..]);
                        }
                        2 => {
                            let offset = page / 2 + (i * 3) % (page / 2 - 200);
                            let data: Vec<u8> = (0..len).map(|k| (k + i + t) as u8).collect();
                            // SAFETY: inside the mapping and the file.
                            let written = unsafe { write(mapping.map.wrapping_add(offset), &data) };
                            assert_eq!(written, Ok(()));
                            let mut back = vec![0u8; len];
                            // SAFETY: as above.
                            let read = unsafe { read(&mut back, mapping.map.wrapping_add(offset)) };
                            assert_eq!(read, Ok(()));
                            assert_eq!(back, data);
                        }
                        _ => {
                            let start = mapping.boundary().wrapping_sub(head);
                            let data: Vec<u8> = (0..head + len).map(|k| (k * i) as u8).collect();
                            // SAFETY: inside the mapping.
                            let written = unsafe { write(start, &data) };
                            assert_eq!(written, Err(CopyError::Copy { not_copied: len }));
                            assert_eq!(mapping.file_bytes(page - head, head), &data[..head]);
                        }
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("copying thread");
    }
    let state = INSTALLATION.lock().unwrap_or_else(PoisonError::into_inner);
    assert_eq!(state.active, 0);
    assert!(state.saved.is_none());
    drop(state);
    assert_same(&before, &current());
}

/// What a child process did.
struct Output {
    status: ExitStatus,
    stdout: String,
}

/// The environment variable holding a command to run the test binary with (such as
/// `qemu-aarch64 -L /usr/aarch64-linux-gnu` when the tests run in an emulator), if any.
const RUNNER: &str = "PMEM2_SOURCE_STD_TEST_RUNNER";

/// Runs [`child_process_scenario`] in a child process; kills it (and fails) if it has not
/// ended after a minute (a fault that is neither recovered nor fatal would loop forever).
fn run_scenario(scenario: &str) -> Output {
    run_child("mcsafe::tests::child_process_scenario", scenario)
}

/// Runs the test `test` of this binary (one that plays the scenario in [`SCENARIO`]) in a
/// child process, as [`run_scenario`] does.
fn run_child(test: &str, scenario: &str) -> Output {
    spawn_child(test, scenario, false)
}

/// As [`run_child`], the child starting with every signal blocked (in all its threads: they
/// inherit the mask), as a program that handles signals through `signalfd` runs.
fn run_child_all_blocked(test: &str, scenario: &str) -> Output {
    spawn_child(test, scenario, true)
}

fn spawn_child(test: &str, scenario: &str, block_all: bool) -> Output {
    let exe = std::env::current_exe().expect("test binary");
    let runner = std::env::var(RUNNER).unwrap_or_default();
    let mut runner = runner.split_whitespace();
    let mut command = match runner.next() {
        Some(program) => {
            let mut command = Command::new(program);
            command.args(runner).arg(exe);
            command
        }
        None => Command::new(exe),
    };
    if block_all {
        use std::os::unix::process::CommandExt;
        let block_everything = || {
            let mut all = empty_action().sa_mask;
            // SAFETY: fills an initialised set.
            unsafe { libc::sigfillset(&mut all) };
            // SAFETY: sets the (only) thread's mask of the child.
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &all, ptr::null_mut()) };
            Ok(())
        };
        // SAFETY: runs in the child between fork and exec, after std reset the signal mask,
        // and calls only async-signal-safe functions.
        unsafe { command.pre_exec(block_everything) };
    }
    let mut child = command
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(SCENARIO, scenario)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run the test binary");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{scenario}: the child process hangs");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let mut stdout = String::new();
    if let Some(mut pipe) = child.stdout.take() {
        let _ = pipe.read_to_string(&mut stdout);
    }
    Output { status, stdout }
}

fn assert_killed_by_sigbus(scenario: &str) {
    let output = run_scenario(scenario);
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGBUS),
        "{scenario}: {:?}\n{}",
        output.status,
        output.stdout
    );
}

/// The scenario this process runs as a child (the `SCENARIO` variable), with its core size
/// limit lowered so that a child that dies leaves no core file; `None` in an ordinary test
/// run.
fn child_scenario() -> Option<String> {
    let scenario = std::env::var(SCENARIO).ok()?;
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: lowers this process's core size limit.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };
    Some(scenario)
}

/// In a child process: sets up the disposition the scenario names, installs our handler
/// (as a copy in flight would), then faults or raises `SIGBUS` outside the copy routines.
/// Does nothing in an ordinary test run.
#[test]
fn child_process_scenario() {
    let Some(scenario) = child_scenario() else {
        return;
    };
    let (disposition, raise) = scenario.split_once('-').expect("disposition-event");
    match disposition {
        "default" => {
            set_action(libc::SIG_DFL, 0, &[]);
        }
        "ignored" => {
            set_action(libc::SIG_IGN, 0, &[]);
        }
        "std" => {
            // Whatever the Rust runtime installed (its stack-overflow handler).
            println!("previous handler: {:#x}", current().sa_sigaction);
        }
        other => panic!("unknown disposition {other}"),
    }
    let mapping = Truncated::new();
    let armed = Armed::new().expect("install");
    match raise {
        "fault" => {
            let _ = touch(mapping.boundary());
        }
        "raise" => {
            // SAFETY: raising SIGBUS is what the scenario is about.
            unsafe { libc::raise(libc::SIGBUS) };
        }
        "copy" => {
            let mut buffer = [0u8; 8];
            // SAFETY: inside the live mapping, past the end of the file.
            let read = unsafe { read(&mut buffer, mapping.boundary()) };
            assert_eq!(read, Err(CopyError::Copy { not_copied: 8 }));
        }
        other => panic!("unknown event {other}"),
    }
    drop(armed);
    println!("survived {scenario}");
}

#[test]
fn an_unrelated_fault_with_the_default_disposition_kills() {
    assert_killed_by_sigbus("default-fault");
}

#[test]
fn an_unrelated_fault_under_the_std_runtime_handler_kills() {
    assert_killed_by_sigbus("std-fault");
}

#[test]
fn an_unrelated_fault_kills_even_if_sigbus_is_ignored() {
    assert_killed_by_sigbus("ignored-fault");
}

#[test]
fn a_raised_sigbus_with_the_default_disposition_kills() {
    assert_killed_by_sigbus("default-raise");
}

#[test]
fn a_raised_sigbus_that_is_ignored_is_ignored() {
    let output = run_scenario("ignored-raise");
    assert!(output.status.success(), "{:?}", output.status);
    assert!(output.stdout.contains("survived ignored-raise"));
}

#[test]
fn a_fault_in_a_copy_is_survived_with_the_default_disposition() {
    let output = run_scenario("default-copy");
    assert!(output.status.success(), "{:?}", output.status);
    assert!(output.stdout.contains("survived default-copy"));
}

/// A handler standing for another library's (libpmem2's `pread_mcsafe` installs its own
/// around its copies): counts its calls.
extern "C" fn other_library_handler(
    _signal: c_int,
    _info: *mut libc::siginfo_t,
    _context: *mut c_void,
) {
    OTHER_CALLS.fetch_add(1, Ordering::SeqCst);
}

static OTHER_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Another library's use of `SIGBUS`: it saves the disposition it finds, installs its own
/// handler, and later puts back what it saved.
struct OtherLibrary {
    saved: Option<libc::sigaction>,
}

impl OtherLibrary {
    fn new() -> OtherLibrary {
        OtherLibrary { saved: None }
    }

    fn save(&mut self) {
        self.saved = Some(current());
    }

    fn install(&self) {
        let handler = other_library_handler as SigactionFn as libc::sighandler_t;
        set_action(handler, libc::SA_SIGINFO, &[]);
    }

    fn restore(&mut self) {
        restore_action(&self.saved.take().expect("saved"));
    }
}

/// In a child process: the program installs its own handler U, then our copies and another
/// library's save/install/restore of `SIGBUS` interleave in the order the scenario names.
/// After the last copy, an unrelated `SIGBUS` must reach U, and U must be the disposition.
/// Does nothing in an ordinary test run.
#[test]
fn child_process_interleaving() {
    let Some(scenario) = child_scenario() else {
        return;
    };
    set_action(
        recording(),
        libc::SA_SIGINFO | libc::SA_RESTART,
        &[libc::SIGUSR2],
    );
    let program = current();
    reset_records(None);
    let mut other = OtherLibrary::new();
    // Each letter is one step: `a`/`d` arm/disarm one copy of ours (a copy in flight), `s`
    // the other library saves the disposition, `i` installs its handler, `r` restores what
    // it saved.
    let mut copies = Vec::new();
    for step in scenario.chars() {
        match step {
            'a' => copies.push(Armed::new().expect("install")),
            'd' => drop(copies.pop().expect("a copy in flight")),
            's' => other.save(),
            'i' => other.install(),
            'r' => other.restore(),
            other => panic!("unknown step {other}"),
        }
    }
    assert!(copies.is_empty(), "{scenario}: every copy ends");
    // An unrelated SIGBUS now, with no copy in flight: the program's handler gets it, even if
    // an instance of our handler is still installed (put back by the other library).
    // SAFETY: raising SIGBUS, which the program's handler handles.
    assert_eq!(unsafe { libc::raise(libc::SIGBUS) }, 0);
    assert_eq!(CALLS.load(Ordering::SeqCst), 1, "{scenario}: U called");
    // A later copy, which faults and is recovered.
    let mapping = Truncated::new();
    let mut buffer = [0u8; 8];
    // SAFETY: inside the live mapping, past the end of the file.
    let read = unsafe { read(&mut buffer, mapping.boundary()) };
    assert_eq!(read, Err(CopyError::Copy { not_copied: 8 }));
    assert_eq!(
        CALLS.load(Ordering::SeqCst),
        1,
        "{scenario}: the copy's fault is ours"
    );
    // After it, the program's handler is the disposition again, and gets an unrelated SIGBUS.
    // SAFETY: raising SIGBUS, which the program's handler handles.
    assert_eq!(unsafe { libc::raise(libc::SIGBUS) }, 0);
    assert_eq!(CALLS.load(Ordering::SeqCst), 2, "{scenario}: U called");
    assert_eq!(OTHER_CALLS.load(Ordering::SeqCst), 0, "{scenario}");
    assert_same(&current(), &program);
    println!("survived {scenario}");
}

fn assert_interleaving_survives(scenario: &str) {
    let output = run_child("mcsafe::tests::child_process_interleaving", scenario);
    assert!(
        output.status.success() && output.stdout.contains(&format!("survived {scenario}")),
        "{scenario}: {:?}\n{}",
        output.status,
        output.stdout
    );
}

#[test]
fn another_library_replacing_ours_during_a_copy_and_restoring_it_after() {
    // The sequence of the issue: it saves ours and installs its own while our copy runs; our
    // copy ends and leaves its handler; it then puts ours back with no copy in flight.
    assert_interleaving_survives("asidr");
    // The same, then our handler stays installed through more copies of ours.
    assert_interleaving_survives("asidradad");
    // Two overlapping copies, the other library between them.
    assert_interleaving_survives("asaiddr");
}

#[test]
fn another_library_saving_ours_during_a_copy_and_installing_after() {
    // It saved ours while a copy ran, installs its own after ours put U back, restores ours.
    assert_interleaving_survives("asdir");
    assert_interleaving_survives("asdirad");
}

#[test]
fn another_library_around_or_inside_our_copies() {
    // Entirely inside one copy of ours.
    assert_interleaving_survives("asird");
    // Entirely around one copy of ours.
    assert_interleaving_survives("siadr");
    // It saved U before our copy and restores U during it.
    assert_interleaving_survives("siard");
    // Ours saved U and installed; it saves ours, installs its own, our copy ends, and a new
    // copy of ours starts (over its handler) before it restores.
    assert_interleaving_survives("asidard");
    // As above, but the new copy ends before it restores.
    assert_interleaving_survives("asidadr");
    assert_interleaving_survives("asidadrad");
    // Two copies of ours in flight when it saves, one when it restores.
    assert_interleaving_survives("aasidrd");
}

#[test]
fn more_distinct_dispositions_than_entry_points() {
    let _serial = serial();
    let original = current();
    // Each a different disposition (the same handler, a different mask): each copy forwards
    // to and restores its own, also once the entry points are reused.
    for round in 0..2 * ENTRIES {
        let signal = libc::SIGRTMIN() + round as c_int;
        set_action(recording(), libc::SA_SIGINFO, &[signal]);
        let program = current();
        {
            let _armed = Armed::new().expect("install");
            let ours = current();
            assert!(is_ours(ours.sa_sigaction), "round {round}");
            assert_same(&underneath(&ours), &program);
        }
        assert_same(&current(), &program);
    }
    let distinct: std::collections::HashSet<_> = (0..ENTRIES).map(entry_handler).collect();
    assert_eq!(
        distinct.len(),
        ENTRIES,
        "the entry points are distinct functions"
    );
    restore_action(&original);
}

/// This thread's signal mask.
fn thread_mask() -> libc::sigset_t {
    let mut mask = empty_action().sa_mask;
    // SAFETY: only reads this thread's mask.
    let ret = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, ptr::null(), &mut mask) };
    assert_eq!(ret, 0);
    mask
}

fn same_set(a: &libc::sigset_t, b: &libc::sigset_t) -> bool {
    (1..=64).all(|signal| {
        // SAFETY: sigismember only reads the set.
        let in_a = unsafe { libc::sigismember(a, signal) };
        // SAFETY: as above.
        let in_b = unsafe { libc::sigismember(b, signal) };
        in_a == in_b
    })
}

/// In a child process started with every signal blocked and `SIGBUS` at `SIG_DFL`: makes
/// `SIGBUS` pending on this thread's queue (`raise`), the process's (`kill`) or both, then
/// copies, with and without a fault. Every copy answers; afterwards the same `SIGBUS`es are
/// pending on the same queues, with the same `siginfo_t`, and the mask is unchanged. Does
/// nothing in an ordinary test run.
#[test]
fn child_process_pending_sigbus() {
    let Some(scenario) = child_scenario() else {
        return;
    };
    set_action(libc::SIG_DFL, 0, &[]);
    let mask = thread_mask();
    // SAFETY: sigismember only reads the set.
    let blocked = unsafe { libc::sigismember(&mask, libc::SIGBUS) };
    assert_eq!(blocked, 1, "blocked");
    // `queued`: sent with a value (pthread_sigqueue, sigqueue), so with si_code SI_QUEUE for
    // both queues.
    let (on_thread, on_process, queued) = match scenario.as_str() {
        "thread" => (true, false, false),
        "process" => (false, true, false),
        "both" => (true, true, false),
        "thread-queued" => (true, false, true),
        "process-queued" => (false, true, true),
        other => panic!("unknown scenario {other}"),
    };
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() };
    let value = |n: usize| libc::sigval {
        sival_ptr: ptr::without_provenance_mut(n),
    };
    // SIGBUS is blocked in every thread: each stays pending where it is sent.
    match (on_thread, queued) {
        // SAFETY: sends SIGBUS to this thread.
        (true, false) => assert_eq!(unsafe { libc::raise(libc::SIGBUS) }, 0),
        (true, true) => {
            // SAFETY: pthread_self cannot fail.
            let this_thread = unsafe { libc::pthread_self() };
            // SAFETY: sends SIGBUS to this thread, with a value.
            let sent = unsafe { libc::pthread_sigqueue(this_thread, libc::SIGBUS, value(7)) };
            assert_eq!(sent, 0);
        }
        _ => {}
    }
    match (on_process, queued) {
        // SAFETY: sends SIGBUS to this process.
        (true, false) => assert_eq!(unsafe { libc::kill(pid, libc::SIGBUS) }, 0),
        // SAFETY: as above, with a value.
        (true, true) => assert_eq!(unsafe { libc::sigqueue(pid, libc::SIGBUS, value(9)) }, 0),
        _ => {}
    }
    let expected = PendingQueues {
        thread: on_thread,
        process: on_process,
    };
    assert!(sigbus_pending(), "pending before");
    // Under an emulator (qemu-user), /proc shows the emulator's own pending signals, not
    // the emulated program's: then only that a SIGBUS is pending is checked.
    let proc_shows_queues = PendingQueues::read() == Some(expected);
    if !proc_shows_queues {
        println!("note: /proc does not show the pending SIGBUS; its queues are not checked");
    }
    let still_pending = |when: &str| {
        if proc_shows_queues {
            assert_eq!(PendingQueues::read(), Some(expected), "{scenario}: {when}");
        } else {
            assert!(sigbus_pending(), "{scenario}: {when}");
        }
    };

    let mapping = Truncated::new();
    let page = mapping.page;
    let mut buffer = [0u8; 64];
    // SAFETY: inside the live mapping and the file.
    let read_ok = unsafe { read(&mut buffer, mapping.map) };
    assert_eq!(read_ok, Ok(()), "{scenario}");
    assert_eq!(buffer.to_vec(), mapping.file_bytes(0, 64));
    still_pending("after a read");
    assert!(
        same_set(&thread_mask(), &mask),
        "{scenario}: mask after a read"
    );

    // SAFETY: inside the live mapping, running past the end of the file.
    let read_bad = unsafe { read(&mut buffer, mapping.boundary().wrapping_sub(8)) };
    assert_eq!(
        read_bad,
        Err(CopyError::Copy { not_copied: 56 }),
        "{scenario}"
    );
    still_pending("after a fault");
    assert!(
        same_set(&thread_mask(), &mask),
        "{scenario}: mask after a fault"
    );

    let data = [0x5au8; 64];
    // SAFETY: inside the live mapping and the file.
    let write_ok = unsafe { write(mapping.map.wrapping_add(128), &data) };
    assert_eq!(write_ok, Ok(()), "{scenario}");
    assert_eq!(mapping.file_bytes(128, 64), data.to_vec());
    // SAFETY: inside the live mapping, past the end of the file.
    let write_bad = unsafe { write(mapping.boundary(), &data) };
    assert_eq!(
        write_bad,
        Err(CopyError::Copy { not_copied: 64 }),
        "{scenario}"
    );
    still_pending("after writes");
    assert!(
        same_set(&thread_mask(), &mask),
        "{scenario}: mask after writes"
    );
    assert_eq!(page, mapping.page);

    // The signals themselves: a raise is SI_TKILL, a kill SI_USER, a queued one SI_QUEUE with
    // its value, all from this process.
    let check = |queue: &str, sent_with: c_int, value: usize| {
        let info = take_one().unwrap_or_else(|| panic!("{scenario}: the {queue} SIGBUS"));
        let code = if queued { libc::SI_QUEUE } else { sent_with };
        assert_eq!(info.si_code, code, "{scenario}: {queue}");
        // SAFETY: a SIGBUS sent by tgkill, kill or a queueing call carries the sender's pid.
        assert_eq!(unsafe { info.si_pid() }, pid, "{scenario}: {queue}");
        if queued {
            // SAFETY: a queued SIGBUS carries its value.
            let sent = unsafe { info.si_value() }.sival_ptr as usize;
            assert_eq!(sent, value, "{scenario}: {queue}");
        }
    };
    if on_thread {
        check("thread's", libc::SI_TKILL, 7);
    }
    if on_process {
        check("process's", libc::SI_USER, 9);
    }
    assert!(!sigbus_pending(), "{scenario}: nothing more");
    println!("survived {scenario}");
}

fn assert_pending_sigbus_survives(scenario: &str) {
    let output = run_child_all_blocked("mcsafe::tests::child_process_pending_sigbus", scenario);
    assert!(
        output.status.success() && output.stdout.contains(&format!("survived {scenario}")),
        "{scenario}: {:?}\n{}",
        output.status,
        output.stdout
    );
    // Natively, /proc shows the queues, and they are checked.
    if std::env::var_os(RUNNER).is_none() {
        assert!(
            !output.stdout.contains("note: /proc does not show"),
            "{scenario}: {}",
            output.stdout
        );
    }
}

#[test]
fn a_sigbus_pending_on_the_thread_stays_pending_through_copies() {
    assert_pending_sigbus_survives("thread");
}

#[test]
fn a_sigbus_pending_on_the_process_stays_pending_through_copies() {
    assert_pending_sigbus_survives("process");
}

#[test]
fn sigbuses_pending_on_both_queues_stay_pending_through_copies() {
    assert_pending_sigbus_survives("both");
}

#[test]
fn a_queued_sigbus_pending_stays_pending_with_its_value_through_copies() {
    assert_pending_sigbus_survives("thread-queued");
    assert_pending_sigbus_survives("process-queued");
}
