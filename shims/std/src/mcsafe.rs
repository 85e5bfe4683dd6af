//! Machine-check-safe copies between a Device DAX mapping and a buffer: a `SIGBUS` during the
//! copy (a poisoned cache line consumed, a page that no longer exists) ends the copy with an
//! error instead of killing the process.
//!
//! # Design
//!
//! The copy loops and the cache flush are written in assembly (below, x86_64 and aarch64) and
//! laid out as one contiguous block of code, `[begin, fixup)`, followed by a *fixup* label. They
//! are leaf routines: they use only caller-saved registers, never the stack, and keep the number
//! of bytes still to do in one register (`rdx` / `x2`). The fixup moves that register into the
//! return register and returns.
//!
//! While a copy is in flight anywhere in the process, our `SIGBUS` handler is installed. When
//! it sees a synchronous fault (`si_code` `BUS_ADRERR`, `BUS_OBJERR` or `BUS_MCEERR_AR`) whose
//! saved program counter lies in `[begin, fixup)`, it rewrites that saved program counter in the
//! `ucontext_t` to the fixup and returns. On `sigreturn` the kernel restores the thread's
//! registers from the `ucontext_t`, so the faulting thread resumes at the fixup with exactly the
//! register state it had at the fault, and the routine returns the non-zero count of bytes not
//! done to its Rust caller, as an ordinary function return. No per-thread state is needed: the
//! faulting thread's own registers are what get redirected.
//!
//! Every other `SIGBUS` (another thread's unrelated fault, a `kill`) is passed on to the
//! disposition that was installed before ours, as the kernel would have delivered it.
//!
//! # Why the recovery is sound
//!
//! * The fault is synchronous and precise: the faulting instruction had no effect on registers,
//!   and the saved context is the state just before it. The kernel restores the whole register
//!   state (stack pointer and return address included) from the context on `sigreturn`.
//! * The routines touch nothing but caller-saved registers and the two buffers they were given.
//!   At any instruction inside them, the callee-saved registers, the stack pointer and the
//!   return address (`[rsp]` on x86_64, `x30` on aarch64) are those of the call, so a `ret`
//!   from the fixup is a normal return of the `extern "C"` function: no Rust frame is skipped,
//!   nothing is unwound, nothing like `longjmp` crosses Rust code. (This also keeps an x86
//!   shadow stack consistent.)
//! * To the Rust caller the routine is an opaque foreign call that may have written any byte of
//!   the destination, which it may: every byte pattern is a valid `u8`.
//! * The handler is async-signal-safe: it reads atomics and an immutable, never-freed snapshot
//!   of the disposition its entry point forwards to, calls `sigaction`/`raise` (async-signal-safe) and the previous
//!   handler; it neither allocates nor locks.
//!
//! # Installation
//!
//! A process-wide count under a [`Mutex`]: the first copy in flight installs the handler
//! (saving the previous `sigaction` exactly), the last one to finish puts the saved one back,
//! so no handler of ours is left installed when no copy runs (but see below). The handler's
//! view of the previous disposition is a leaked snapshot published before the handler is
//! installed; a snapshot is never changed or freed, so a late `SIGBUS` still being delivered
//! to our handler after it was uninstalled reads valid data. One snapshot exists per distinct
//! previous disposition ever seen, so the leak is bounded.
//!
//! Other code in the process may use `SIGBUS` the same way (libpmem2's own `pread_mcsafe`
//! does): save the disposition, install its handler, later put back what it saved. If it
//! saves while one of our copies runs, what it saves, and may put back at any later time, is
//! our handler. So the rule is that the disposition a copy saves, forwards to and restores is
//! never our own handler, and each installed instance of our handler says what it stands
//! for: the handler has [`ENTRIES`] entry points, identical but for the slot of `PREVIOUS`
//! each forwards to, and an entry installed over a disposition forwards to that one. An entry
//! is installed again for the same disposition, and otherwise the least recently installed
//! entry is reused. Then:
//!
//! * If the first copy finds an instance of ours installed (someone saved it during an
//!   earlier copy and put it back after that copy ended), it takes it for the disposition
//!   that instance forwards to: that is what the copy saves, forwards to and restores.
//! * When the last copy ends and finds an instance of ours, it puts back what that instance
//!   stands for: the saved disposition if it is the copy's own instance, or what an older
//!   instance was installed over, if someone who had replaced ours has put it back meanwhile.
//! * When the last copy ends and finds someone else's handler (ours was replaced during the
//!   copy), that stands.
//!
//! So when no copy runs, the process is in one of three states: (1) the program's own
//! disposition is installed (the usual case); (2) someone replaced our handler during a copy
//! and has not put back what they saved: their handler is installed, as it would be without
//! us; (3) they have put back what they saved, an instance of our handler: it passes every
//! `SIGBUS` on to the disposition it was installed over (the program's, as in the first
//! state), exactly as below, and only a `sigaction` query sees our handler instead of the
//! program's. The third state lasts until the next copy ends, which puts the program's
//! disposition back. It is exact as long as at most [`ENTRIES`] distinct dispositions were
//! ever under our handler; beyond that an instance put back long after it was saved may have
//! had its entry reused for a newer disposition, and stands for that one.
//!
//! Our handler runs with the previous action's signal mask and `SA_NODEFER`, plus
//! `SA_SIGINFO | SA_ONSTACK`. A forwarded signal goes to the previous handler with the same
//! arguments (after an `SA_RESETHAND` reset, as the kernel would do); to `SIG_DFL` by making
//! that the disposition and letting the fault happen again (or raising a signal that was
//! sent), so the process dies of it as before, core dump included; to `SIG_IGN` by dropping it,
//! unless it is a fault, which the kernel never lets a process ignore.
//!
//! During a copy `SIGBUS` is also unblocked in the calling thread: the kernel does not deliver
//! a fault to a handler while `SIGBUS` is blocked but kills the process instead.
//!
//! # Pending signals
//!
//! A thread that blocks `SIGBUS` (as every thread of a program that collects its signals
//! through `signalfd` or `sigwaitinfo` does) may have a `SIGBUS` pending when a copy starts,
//! on its own queue (`raise`, `pthread_kill`) or the process's (`kill`). Unblocking would
//! deliver it there and then, to our handler, which passes it on to the disposition (at
//! `SIG_DFL`, the process dies). Leaving `SIGBUS` blocked is no way out: a fault while it is
//! blocked kills the process whether or not one is pending (the kernel does not queue the
//! fault behind the pending one; it resets the disposition to `SIG_DFL`, unblocks `SIGBUS`,
//! and the pending signal kills). So a copy first takes the pending `SIGBUS`es off their
//! queues (`rt_sigtimedwait`, not waiting: a non-real-time signal is queued at most once on
//! the thread's queue and once on the process's; which queue a lone one is on is read from
//! `/proc/thread-self/status`), runs with `SIGBUS` unblocked as any other (a fault in it is
//! an error, not death), blocks `SIGBUS` again and queues each again on the queue it came
//! from with the `siginfo_t` it had (`rt_tgsigqueueinfo`, `rt_sigqueueinfo`). Afterwards the
//! same signals are pending, and the mask is as before. The differences from not copying:
//!
//! * While the copy runs, those signals are not pending: another thread's `sigpending`,
//!   `sigwaitinfo` or `signalfd` read in that time does not see them.
//! * The kernel lets only a process's main thread queue a `siginfo_t` of `kill` or of its
//!   own (`si_code` ≥ 0) on the process: a copy in another thread sends such a signal again
//!   with `kill`, so its `si_pid` and `si_uid` become this process's.
//! * Without `/proc`, a lone pending `SIGBUS`'s queue is guessed from its `si_code`: the
//!   thread's for `SI_TKILL` and the kernel's codes, else the process's (so one sent with
//!   `pthread_sigqueue` comes back on the process's queue).
//!
//! The cache write-back after a write is inside the protected range too: a write-back
//! instruction faults like a load on a page that has gone away meanwhile.
//!
//! # Limitations
//!
//! * While a copy runs, the `SIGBUS` disposition must not be changed by anyone else: a fault
//!   in the copy would reach their handler. (A change is noticed when the last copy ends,
//!   and left in place; an instance of ours put back later is dealt with as described under
//!   "Installation".)
//! * A `SIGBUS` sent to the process while a copy runs in a thread that blocks it can be
//!   delivered to that thread, which has it unblocked for the copy, and is passed on to the
//!   disposition like any foreign `SIGBUS` (it is not left pending).
//! * A forwarded one-shot (`SA_RESETHAND`) handler resets `SIGBUS` to `SIG_DFL` for the whole
//!   process, so a copy still running in another thread is no longer protected.
//! * The copies are not async-signal-safe (they take a mutex) and must not be called from a
//!   signal handler, nor in the child of a multithreaded `fork` before `exec`.
//! * The x86_64 write-back steps by 64 bytes, the cache line size of every x86_64 CPU (as
//!   PMDK assumes); aarch64 reads the smallest line size from `CTR_EL0`.

use std::ffi::{c_int, c_void};
use std::mem;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

/// The assembly symbol `pmem2_source_std_<major>_<minor>_<patch>_mcsafe_<name>`: global (so
/// Rust can name it) but hidden (not exported from a shared library), and versioned so that
/// two semver-incompatible copies of this crate in one program do not collide.
macro_rules! symbol {
    ($name:literal) => {
        concat!(
            "pmem2_source_std_",
            env!("CARGO_PKG_VERSION_MAJOR"),
            "_",
            env!("CARGO_PKG_VERSION_MINOR"),
            "_",
            env!("CARGO_PKG_VERSION_PATCH"),
            "_mcsafe_",
            $name
        )
    };
}

/// The directives that start a global, hidden function `symbol!($name)`.
macro_rules! function {
    ($name:literal) => {
        concat!(
            ".globl ",
            symbol!($name),
            "\n.hidden ",
            symbol!($name),
            "\n.type ",
            symbol!($name),
            ", %function\n",
            symbol!($name),
            ":"
        )
    };
}

/// A global, hidden label `symbol!($name)` that is not a function (no type, no size).
macro_rules! global_label {
    ($name:literal) => {
        concat!(
            ".globl ",
            symbol!($name),
            "\n.hidden ",
            symbol!($name),
            "\n",
            symbol!($name),
            ":"
        )
    };
}

/// The directive that ends function `symbol!($name)`.
macro_rules! end_function {
    ($name:literal) => {
        concat!(".size ", symbol!($name), ", . - ", symbol!($name))
    };
}

// x86_64 (System V): rdi, rsi, rdx are the arguments, rax the result; rax, rcx, r8, r9 are the
// scratch registers used. The side that may fault is accessed with 8-byte-aligned loads or
// stores (a single byte before alignment and after the last word), like Linux's
// `copy_mc_fragile`: no access straddles a cache line or a page, so a fault means the whole
// accessed word is bad and the count in rdx is exact, and no `rep movs` is used (on some CPUs
// a machine check during a fast-string copy is not recoverable).
#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".pushsection .text.pmem2_source_std_mcsafe,\"ax\",%progbits",
    ".p2align 4",
    global_label!("begin"),
    // copy_read(dst: rdi, src: rsi, len: rdx) -> rax: bytes not copied (0: all).
    // Loads from src (the mapping) are aligned; rdx drops after each store, so at a fault it
    // is exactly the bytes not yet stored.
    function!("copy_read"),
    "2:",
    "test rdx, rdx",
    "jz 9f",
    "test sil, 7",
    "jz 3f",
    "movzx eax, byte ptr [rsi]",
    "mov byte ptr [rdi], al",
    "inc rsi",
    "inc rdi",
    "dec rdx",
    "jmp 2b",
    "3:",
    "cmp rdx, 32",
    "jb 4f",
    "mov rax, qword ptr [rsi]",
    "mov qword ptr [rdi], rax",
    "sub rdx, 8",
    "mov rcx, qword ptr [rsi + 8]",
    "mov qword ptr [rdi + 8], rcx",
    "sub rdx, 8",
    "mov r8, qword ptr [rsi + 16]",
    "mov qword ptr [rdi + 16], r8",
    "sub rdx, 8",
    "mov r9, qword ptr [rsi + 24]",
    "mov qword ptr [rdi + 24], r9",
    "sub rdx, 8",
    "add rsi, 32",
    "add rdi, 32",
    "jmp 3b",
    "4:",
    "cmp rdx, 8",
    "jb 5f",
    "mov rax, qword ptr [rsi]",
    "mov qword ptr [rdi], rax",
    "add rsi, 8",
    "add rdi, 8",
    "sub rdx, 8",
    "jmp 4b",
    "5:",
    "test rdx, rdx",
    "jz 9f",
    "movzx eax, byte ptr [rsi]",
    "mov byte ptr [rdi], al",
    "inc rsi",
    "inc rdi",
    "dec rdx",
    "jmp 5b",
    "9:",
    "xor eax, eax",
    "ret",
    end_function!("copy_read"),
    // copy_write(dst: rdi, src: rsi, len: rdx) -> rax: bytes not copied (0: all).
    // Stores to dst (the mapping) are aligned; rdx drops after each store.
    ".p2align 4",
    function!("copy_write"),
    "2:",
    "test rdx, rdx",
    "jz 9f",
    "test dil, 7",
    "jz 3f",
    "movzx eax, byte ptr [rsi]",
    "mov byte ptr [rdi], al",
    "inc rsi",
    "inc rdi",
    "dec rdx",
    "jmp 2b",
    "3:",
    "cmp rdx, 32",
    "jb 4f",
    "mov rax, qword ptr [rsi]",
    "mov rcx, qword ptr [rsi + 8]",
    "mov r8, qword ptr [rsi + 16]",
    "mov r9, qword ptr [rsi + 24]",
    "mov qword ptr [rdi], rax",
    "sub rdx, 8",
    "mov qword ptr [rdi + 8], rcx",
    "sub rdx, 8",
    "mov qword ptr [rdi + 16], r8",
    "sub rdx, 8",
    "mov qword ptr [rdi + 24], r9",
    "sub rdx, 8",
    "add rsi, 32",
    "add rdi, 32",
    "jmp 3b",
    "4:",
    "cmp rdx, 8",
    "jb 5f",
    "mov rax, qword ptr [rsi]",
    "mov qword ptr [rdi], rax",
    "add rsi, 8",
    "add rdi, 8",
    "sub rdx, 8",
    "jmp 4b",
    "5:",
    "test rdx, rdx",
    "jz 9f",
    "movzx eax, byte ptr [rsi]",
    "mov byte ptr [rdi], al",
    "inc rsi",
    "inc rdi",
    "dec rdx",
    "jmp 5b",
    "9:",
    "xor eax, eax",
    "ret",
    end_function!("copy_write"),
    // flush(kind: rdi, addr: rsi, len: rdx) -> rax: 0, or non-zero after a fault.
    // Writes back every 64-byte line of [addr, addr + len) with clflush (kind 0), clflushopt
    // (1) or clwb (2), then sfence. rdx counts the bytes from the current line to the end.
    ".p2align 4",
    function!("flush"),
    "test rdx, rdx",
    "jz 9f",
    "lea rax, [rsi + rdx]",
    "and rsi, -64",
    "mov rdx, rax",
    "sub rdx, rsi",
    "cmp rdi, 2",
    "je 4f",
    "cmp rdi, 1",
    "je 3f",
    "2:",
    "clflush byte ptr [rsi]",
    "add rsi, 64",
    "sub rdx, 64",
    "ja 2b",
    "jmp 8f",
    "3:",
    "clflushopt byte ptr [rsi]",
    "add rsi, 64",
    "sub rdx, 64",
    "ja 3b",
    "jmp 8f",
    "4:",
    "clwb byte ptr [rsi]",
    "add rsi, 64",
    "sub rdx, 64",
    "ja 4b",
    "8:",
    "sfence",
    "9:",
    "xor eax, eax",
    "ret",
    end_function!("flush"),
    // The end of the protected range. Reached only by the signal handler rewriting the saved
    // rip of a fault in [begin, fixup): returns the bytes not done, with the routine's stack.
    function!("fixup"),
    "mov rax, rdx",
    "ret",
    end_function!("fixup"),
    ".popsection",
);

// aarch64 (AAPCS64): x0, x1, x2 are the arguments, x0 the result; x3..x6 are the scratch
// registers used; x30 (the return address) is never touched. As on x86_64, the mapping side is
// accessed with single 8-byte-aligned words after a byte-wise head (no LDP/STP there: a
// 16-byte pair may straddle a page). DC CVAP is spelled as its generic SYS form, which
// assembles without the `ccpp` target feature.
#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    ".pushsection .text.pmem2_source_std_mcsafe,\"ax\",%progbits",
    ".p2align 4",
    global_label!("begin"),
    // copy_read(dst: x0, src: x1, len: x2) -> x0: bytes not copied (0: all).
    function!("copy_read"),
    "2:",
    "cbz x2, 9f",
    "tst x1, #7",
    "b.eq 3f",
    "ldrb w3, [x1]",
    "strb w3, [x0]",
    "add x1, x1, #1",
    "add x0, x0, #1",
    "sub x2, x2, #1",
    "b 2b",
    "3:",
    "cmp x2, #32",
    "b.lo 4f",
    "ldr x3, [x1]",
    "str x3, [x0]",
    "sub x2, x2, #8",
    "ldr x4, [x1, #8]",
    "str x4, [x0, #8]",
    "sub x2, x2, #8",
    "ldr x5, [x1, #16]",
    "str x5, [x0, #16]",
    "sub x2, x2, #8",
    "ldr x6, [x1, #24]",
    "str x6, [x0, #24]",
    "sub x2, x2, #8",
    "add x1, x1, #32",
    "add x0, x0, #32",
    "b 3b",
    "4:",
    "cmp x2, #8",
    "b.lo 5f",
    "ldr x3, [x1]",
    "str x3, [x0]",
    "add x1, x1, #8",
    "add x0, x0, #8",
    "sub x2, x2, #8",
    "b 4b",
    "5:",
    "cbz x2, 9f",
    "ldrb w3, [x1]",
    "strb w3, [x0]",
    "add x1, x1, #1",
    "add x0, x0, #1",
    "sub x2, x2, #1",
    "b 5b",
    "9:",
    "mov x0, #0",
    "ret",
    end_function!("copy_read"),
    // copy_write(dst: x0, src: x1, len: x2) -> x0: bytes not copied (0: all).
    ".p2align 4",
    function!("copy_write"),
    "2:",
    "cbz x2, 9f",
    "tst x0, #7",
    "b.eq 3f",
    "ldrb w3, [x1]",
    "strb w3, [x0]",
    "add x1, x1, #1",
    "add x0, x0, #1",
    "sub x2, x2, #1",
    "b 2b",
    "3:",
    "cmp x2, #32",
    "b.lo 4f",
    "ldp x3, x4, [x1]",
    "ldp x5, x6, [x1, #16]",
    "str x3, [x0]",
    "sub x2, x2, #8",
    "str x4, [x0, #8]",
    "sub x2, x2, #8",
    "str x5, [x0, #16]",
    "sub x2, x2, #8",
    "str x6, [x0, #24]",
    "sub x2, x2, #8",
    "add x1, x1, #32",
    "add x0, x0, #32",
    "b 3b",
    "4:",
    "cmp x2, #8",
    "b.lo 5f",
    "ldr x3, [x1]",
    "str x3, [x0]",
    "add x1, x1, #8",
    "add x0, x0, #8",
    "sub x2, x2, #8",
    "b 4b",
    "5:",
    "cbz x2, 9f",
    "ldrb w3, [x1]",
    "strb w3, [x0]",
    "add x1, x1, #1",
    "add x0, x0, #1",
    "sub x2, x2, #1",
    "b 5b",
    "9:",
    "mov x0, #0",
    "ret",
    end_function!("copy_write"),
    // flush(kind: x0, addr: x1, len: x2) -> x0: 0, or non-zero after a fault.
    // Cleans every data cache line (size from CTR_EL0.DminLine) of [addr, addr + len) to the
    // point of coherency (DC CVAC, kind 0) or of persistence (DC CVAP, kind 1), then DSB ISH.
    // x2 counts the bytes from the current line to the end.
    ".p2align 4",
    function!("flush"),
    "cbz x2, 9f",
    "mrs x3, ctr_el0",
    "ubfx x3, x3, #16, #4",
    "mov x4, #4",
    "lsl x4, x4, x3",
    "add x5, x1, x2",
    "sub x6, x4, #1",
    "bic x1, x1, x6",
    "sub x2, x5, x1",
    "cbnz x0, 3f",
    "2:",
    "dc cvac, x1",
    "add x1, x1, x4",
    "subs x2, x2, x4",
    "b.hi 2b",
    "b 8f",
    "3:",
    "sys #3, c7, c12, #1, x1",
    "add x1, x1, x4",
    "subs x2, x2, x4",
    "b.hi 3b",
    "8:",
    "dsb ish",
    "9:",
    "mov x0, #0",
    "ret",
    end_function!("flush"),
    function!("fixup"),
    "mov x0, x2",
    "ret",
    end_function!("fixup"),
    ".popsection",
);

unsafe extern "C" {
    /// The start of the protected code (the same address as `copy_read`). Not callable.
    #[link_name = symbol!("begin")]
    fn mc_begin();

    /// The end of the protected code and the recovery entry. Not callable.
    #[link_name = symbol!("fixup")]
    fn mc_fixup();

    /// Copies `len` bytes from `src` to `dst`, `src` accessed with aligned loads. Returns 0,
    /// or after a recovered fault the bytes not copied, `r` (1 ≤ r ≤ len): the first
    /// `len - r` bytes of `dst` hold the source's.
    #[link_name = symbol!("copy_read")]
    fn mc_copy_read(dst: *mut u8, src: *const u8, len: usize) -> usize;

    /// As `mc_copy_read`, `dst` accessed with aligned stores.
    #[link_name = symbol!("copy_write")]
    fn mc_copy_write(dst: *mut u8, src: *const u8, len: usize) -> usize;

    /// Writes back the cache lines of `[addr, addr + len)` with flush `kind` and fences.
    /// Returns 0, or non-zero after a recovered fault.
    #[link_name = symbol!("flush")]
    fn mc_flush(kind: usize, addr: *mut u8, len: usize) -> usize;
}

/// Why a machine-check-safe copy did not complete.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum CopyError {
    /// A `SIGBUS` during the copy was recovered. The first `len - not_copied` bytes of the
    /// destination hold the source's bytes; the rest may be partly written.
    Copy {
        /// At least 1.
        not_copied: usize,
    },
    /// All bytes were copied, but writing them back from the caches faulted.
    Flush,
    /// The `SIGBUS` handler could not be installed (`sigaction` failed).
    NoHandler,
}

/// Copies `dst.len()` bytes from `src` into `dst`, recovering from a `SIGBUS` while reading.
///
/// # Safety
///
/// `src` is valid for reads of `dst.len()` bytes (memory that may fault with `SIGBUS`, such as
/// a shared file mapping, is fine; memory that may fault otherwise is not).
pub(crate) unsafe fn read(dst: &mut [u8], src: *const u8) -> Result<(), CopyError> {
    if dst.is_empty() {
        return Ok(());
    }
    let _armed = Armed::new()?;
    let _unblocked = Unblocked::new();
    let len = dst.len();
    // SAFETY: `dst` is writable for `len` bytes (a `&mut [u8]`); `src` is readable for `len`
    // bytes (the caller's promise); a SIGBUS on either is recovered while `_armed` lives.
    let not_copied = unsafe { mc_copy_read(dst.as_mut_ptr(), src, len) };
    done(not_copied, len)
}

/// Copies `src` to `dst` and writes the cache lines back to memory, recovering from a
/// `SIGBUS` while writing or flushing.
///
/// # Safety
///
/// `dst` is valid for writes of `src.len()` bytes (as for [`read`]) and does not overlap `src`.
pub(crate) unsafe fn write(dst: *mut u8, src: &[u8]) -> Result<(), CopyError> {
    if src.is_empty() {
        return Ok(());
    }
    let _armed = Armed::new()?;
    let _unblocked = Unblocked::new();
    let len = src.len();
    // SAFETY: `src` is readable for `len` bytes (a `&[u8]`); `dst` is writable for `len` bytes
    // (the caller's promise); a SIGBUS on either is recovered while `_armed` lives.
    let not_copied = unsafe { mc_copy_write(dst, src.as_ptr(), len) };
    done(not_copied, len)?;
    // SAFETY: flushing only writes back cache lines that hold `dst`'s bytes (whole lines, so
    // possibly neighbouring bytes too, which does not change memory contents); a SIGBUS is
    // recovered while `_armed` lives.
    let flushed = unsafe { mc_flush(flush_kind(), dst, len) };
    if flushed == 0 {
        Ok(())
    } else {
        Err(CopyError::Flush)
    }
}

fn done(not_copied: usize, len: usize) -> Result<(), CopyError> {
    if not_copied == 0 {
        Ok(())
    } else {
        debug_assert!(not_copied <= len, "{not_copied} bytes left of {len}");
        Err(CopyError::Copy { not_copied })
    }
}

/// The cache write-back instruction `mc_flush` uses: on x86_64 0 = `clflush`, 1 =
/// `clflushopt`, 2 = `clwb` (the best the CPU has, as PMDK picks); on aarch64 0 = `DC CVAC`,
/// 1 = `DC CVAP` (when the CPU has FEAT_DPB).
fn flush_kind() -> usize {
    static KIND: OnceLock<usize> = OnceLock::new();
    *KIND.get_or_init(detect_flush_kind)
}

#[cfg(target_arch = "x86_64")]
fn detect_flush_kind() -> usize {
    use std::arch::x86_64::{__cpuid, __cpuid_count};
    const CLFLUSHOPT: u32 = 1 << 23;
    const CLWB: u32 = 1 << 24;
    if __cpuid(0).eax < 7 {
        return 0;
    }
    let features = __cpuid_count(7, 0).ebx;
    if features & CLWB != 0 {
        2
    } else if features & CLFLUSHOPT != 0 {
        1
    } else {
        0
    }
}

#[cfg(target_arch = "aarch64")]
fn detect_flush_kind() -> usize {
    usize::from(std::arch::is_aarch64_feature_detected!("dpb"))
}

/// The `SIGBUS` handler's signature (`SA_SIGINFO`).
type SigactionFn = extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void);

/// How many entry points our handler has (see "Installation" in the module documentation).
const ENTRIES: usize = 4;

/// An entry point of our handler: [`on_sigbus`] for entry `$entry`.
macro_rules! entry {
    ($entry:literal) => {{
        extern "C" fn entry(signal: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
            on_sigbus($entry, signal, info, context);
        }
        entry as SigactionFn
    }};
}

/// Our handler's entry points: the same handler, told which entry the kernel called, so each
/// installed instance of our handler forwards to the disposition in its own [`PREVIOUS`] slot.
/// (The functions differ in the constant they pass, so no linker folds them into one.)
static ENTRY_POINTS: [SigactionFn; ENTRIES] = [entry!(0), entry!(1), entry!(2), entry!(3)];

/// The address of entry `entry` as `sa_sigaction` holds it.
fn entry_handler(entry: usize) -> libc::sighandler_t {
    ENTRY_POINTS[entry] as libc::sighandler_t
}

/// Which of our entry points `handler` is, if any.
fn entry_of(handler: libc::sighandler_t) -> Option<usize> {
    (0..ENTRIES).find(|&entry| entry_handler(entry) == handler)
}

/// Whether `handler` is one of our entry points.
fn is_ours(handler: libc::sighandler_t) -> bool {
    entry_of(handler).is_some()
}

/// The process-wide installation state.
struct Installation {
    /// Copies in flight.
    active: usize,
    /// The disposition our handler replaced (exactly as `sigaction` returned it, or what the
    /// instance of ours that it replaced stood for), put back when `active` drops to 0.
    saved: Option<libc::sigaction>,
    /// The entry point installed for the copies in flight.
    entry: usize,
    /// When each entry point was last installed (a count of installations), to reuse the
    /// least recently installed one.
    installed_at: [u64; ENTRIES],
    /// Installations so far.
    installations: u64,
    /// Every snapshot published so far (never freed; one per distinct disposition).
    snapshots: Vec<&'static libc::sigaction>,
}

static INSTALLATION: Mutex<Installation> = Mutex::new(Installation {
    active: 0,
    saved: None,
    entry: 0,
    installed_at: [0; ENTRIES],
    installations: 0,
    snapshots: Vec::new(),
});

/// What each entry point passes foreign `SIGBUS`es on to: a leaked, immutable snapshot of the
/// disposition that entry was last installed over, published before the entry is installed.
/// Null until the entry's first installation. Never one of our own entry points.
static PREVIOUS: [AtomicPtr<libc::sigaction>; ENTRIES] =
    [const { AtomicPtr::new(ptr::null_mut()) }; ENTRIES];

/// The disposition entry `entry` forwards to (`SIG_DFL` if it was never installed).
fn forwarded_by(entry: usize) -> libc::sigaction {
    let snapshot = PREVIOUS[entry].load(Ordering::Acquire);
    if snapshot.is_null() {
        empty_action()
    } else {
        // SAFETY: published snapshots are leaked and never written after publication; the
        // Acquire load pairs with the Release store that published this one.
        unsafe { *snapshot }
    }
}

/// What the disposition `action` amounts to: itself, or, if it is an instance of our handler,
/// the disposition that instance forwards to. Never one of our entry points.
fn underneath(action: &libc::sigaction) -> libc::sigaction {
    match entry_of(action.sa_sigaction) {
        Some(entry) => forwarded_by(entry),
        None => *action,
    }
}

/// Keeps our handler installed while it lives: one copy in flight.
struct Armed(());

impl Armed {
    fn new() -> Result<Armed, CopyError> {
        let mut state = INSTALLATION.lock().unwrap_or_else(PoisonError::into_inner);
        if state.active == 0 {
            let current = query().ok_or(CopyError::NoHandler)?;
            // If an instance of ours is installed while no copy runs, someone who saved it
            // during a copy has put it back: it stands for what it was installed over, which
            // is what this installation replaces (never our own handler).
            let mut previous = underneath(&current);
            let entry = state.entry_for(&previous);
            let ours = our_action(entry, &previous);
            let mut replaced = empty_action();
            // SAFETY: installs a valid action for SIGBUS; the handler is sound at any time
            // (see the module documentation) and its PREVIOUS slot was published above.
            if unsafe { libc::sigaction(libc::SIGBUS, &ours, &mut replaced) } != 0 {
                return Err(CopyError::NoHandler);
            }
            let replaced = underneath(&replaced);
            if !same_action(&replaced, &previous) {
                // Someone changed SIGBUS between the query and ours: pass theirs on.
                state.publish(entry, &replaced);
                previous = replaced;
            }
            state.saved = Some(previous);
            state.entry = entry;
        }
        state.active += 1;
        Ok(Armed(()))
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        let mut state = INSTALLATION.lock().unwrap_or_else(PoisonError::into_inner);
        state.active -= 1;
        if state.active > 0 {
            return;
        }
        let Some(saved) = state.saved.take() else {
            return;
        };
        // Put back what the instance of ours that is installed stands for: the saved action
        // if it is the one installed for these copies, or, if someone replaced ours during
        // the copies and has put back an instance of ours they saved earlier, what that one
        // was installed over. If no instance of ours is installed, someone replaced it
        // meanwhile (or a forwarded one-shot or fatal SIGBUS reset it to SIG_DFL), and that
        // newer choice stands.
        let restore = match query() {
            None => Some(saved),
            Some(current) => match entry_of(current.sa_sigaction) {
                Some(entry) if entry == state.entry => Some(saved),
                Some(entry) => Some(forwarded_by(entry)),
                None => None,
            },
        };
        if let Some(restore) = restore {
            // SAFETY: restores an action sigaction returned when one of ours was installed.
            let _ = unsafe { libc::sigaction(libc::SIGBUS, &restore, ptr::null_mut()) };
        }
    }
}

impl Installation {
    /// The entry point to install over `previous`, its PREVIOUS slot published: the one
    /// already forwarding to the same disposition if any (so an instance of it that someone
    /// saved still stands for the same thing), else an unused one, else the least recently
    /// installed.
    fn entry_for(&mut self, previous: &libc::sigaction) -> usize {
        let same = (0..ENTRIES).find(|&entry| {
            let snapshot = PREVIOUS[entry].load(Ordering::Acquire);
            // SAFETY: as in `forwarded_by`.
            !snapshot.is_null() && same_action(unsafe { &*snapshot }, previous)
        });
        let entry = same.unwrap_or_else(|| {
            (0..ENTRIES)
                .min_by_key(|&entry| self.installed_at[entry])
                .unwrap_or(0)
        });
        self.installations += 1;
        self.installed_at[entry] = self.installations;
        if same.is_none() {
            self.publish(entry, previous);
        }
        entry
    }

    /// Makes `action` the disposition entry `entry` forwards to, reusing an earlier snapshot
    /// of the same disposition.
    fn publish(&mut self, entry: usize, action: &libc::sigaction) {
        debug_assert!(!is_ours(action.sa_sigaction), "forwarding to ourselves");
        let snapshot = match self.snapshots.iter().find(|s| same_action(s, action)) {
            Some(snapshot) => *snapshot,
            None => {
                let snapshot: &'static libc::sigaction = Box::leak(Box::new(*action));
                self.snapshots.push(snapshot);
                snapshot
            }
        };
        PREVIOUS[entry].store(ptr::from_ref(snapshot).cast_mut(), Ordering::Release);
    }
}

/// Keeps `SIGBUS` unblocked in this thread while it lives. A fault raised while `SIGBUS` is
/// blocked is not delivered to any handler: the kernel resets the disposition to `SIG_DFL` and
/// kills the process. Threads that block every signal (a common pattern, leaving signals to
/// one dedicated thread) would otherwise die of a bad block.
///
/// A `SIGBUS` that is pending (blocked) when the copy starts would be delivered the moment it
/// is unblocked; so it is first taken off its queue, and queued again as it was once `SIGBUS`
/// is blocked again (see "Pending signals" in the module documentation).
struct Unblocked {
    /// Whether `SIGBUS` was blocked before, to block it again.
    was_blocked: bool,
    /// The pending `SIGBUS`es taken off their queues, to queue again.
    taken: Taken,
}

impl Unblocked {
    fn new() -> Unblocked {
        // Only a blocked signal can be pending (sigpending reports the pending signals that
        // are blocked), so this is empty whenever SIGBUS is not blocked.
        let taken = if sigbus_pending() {
            Taken::take()
        } else {
            Taken::NONE
        };
        let set = sigbus_set();
        let mut old = empty_action().sa_mask;
        // SAFETY: changes only this thread's signal mask; `old` receives the previous one.
        let ret = unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, &mut old) };
        // SAFETY: sigismember only reads the set.
        let was_blocked = ret == 0 && unsafe { libc::sigismember(&old, libc::SIGBUS) } == 1;
        Unblocked { was_blocked, taken }
    }
}

impl Drop for Unblocked {
    fn drop(&mut self) {
        if self.was_blocked {
            let set = sigbus_set();
            // SAFETY: changes only this thread's signal mask.
            let _ = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, ptr::null_mut()) };
        }
        self.taken.queue_again();
    }
}

/// The `SIGBUS`es that were pending when a copy started: at most one on this thread's own
/// queue and one on the process's (a non-real-time signal is queued at most once on each),
/// each with the `siginfo_t` it was sent with.
struct Taken {
    thread: Option<libc::siginfo_t>,
    process: Option<libc::siginfo_t>,
}

impl Taken {
    const NONE: Taken = Taken {
        thread: None,
        process: None,
    };

    /// Takes the pending `SIGBUS`es off their queues, noting which queue each came from.
    fn take() -> Taken {
        let queues = PendingQueues::read();
        let Some(first) = take_one() else {
            // Another thread took it (a signal-handling thread), or it was never there.
            return Taken::NONE;
        };
        if sigbus_pending() {
            // The kernel takes a thread's own pending signals before the process's: the first
            // came from this thread's queue, the one still pending is on the process's.
            return Taken {
                thread: Some(first),
                process: take_one(),
            };
        }
        let from_thread = match queues {
            Some(queues) if queues.thread || queues.process => queues.thread,
            // Without /proc, guessed from how it was sent: tkill/tgkill (raise, pthread_kill)
            // and the kernel's own SIGBUSes go to a thread, kill and sigqueue to the process.
            _ => first.si_code == libc::SI_TKILL || first.si_code > 0,
        };
        if from_thread {
            Taken {
                thread: Some(first),
                process: None,
            }
        } else {
            Taken {
                thread: None,
                process: Some(first),
            }
        }
    }

    /// Queues the taken signals again, each on the queue it came from with its `siginfo_t`.
    /// `SIGBUS` must be blocked again in this thread.
    fn queue_again(&mut self) {
        // SAFETY: getpid and gettid cannot fail.
        let pid = unsafe { libc::getpid() };
        if let Some(info) = self.thread.take() {
            // SAFETY: gettid cannot fail.
            let tid = unsafe { libc::gettid() };
            // SAFETY: queues SIGBUS on this thread with a siginfo_t the kernel produced; a
            // thread may queue any siginfo_t on itself.
            let _ = unsafe {
                libc::syscall(
                    libc::SYS_rt_tgsigqueueinfo,
                    pid,
                    tid,
                    libc::SIGBUS,
                    &info as *const libc::siginfo_t,
                )
            };
        }
        if let Some(info) = self.process.take() {
            // SAFETY: queues SIGBUS on this process with a siginfo_t the kernel produced.
            let queued = unsafe {
                libc::syscall(
                    libc::SYS_rt_sigqueueinfo,
                    pid,
                    libc::SIGBUS,
                    &info as *const libc::siginfo_t,
                )
            };
            if queued != 0 {
                // The kernel lets only the main thread queue a kill's or the kernel's
                // siginfo_t (si_code >= 0) on its process: sent again as kill sends it, the
                // same signal on the same queue, from this process.
                // SAFETY: sends SIGBUS to this process, where it stays pending until a thread
                // unblocks it, as the original did.
                let _ = unsafe { libc::kill(pid, libc::SIGBUS) };
            }
        }
    }
}

/// Whether a `SIGBUS` is pending (and blocked) for this thread, on its own queue or the
/// process's.
fn sigbus_pending() -> bool {
    let mut pending = empty_action().sa_mask;
    // SAFETY: only writes the pending set into `pending`.
    let ret = unsafe { libc::sigpending(&mut pending) };
    // SAFETY: sigismember only reads the set.
    ret == 0 && unsafe { libc::sigismember(&pending, libc::SIGBUS) } == 1
}

/// Takes one pending `SIGBUS` off this thread's queue or else the process's, without waiting.
/// The system call itself, because glibc's `sigtimedwait` reports `SI_TKILL` as `SI_USER`, and
/// the exact `siginfo_t` is what is queued again.
fn take_one() -> Option<libc::siginfo_t> {
    /// The kernel's signal set size (64 signals) that `rt_sigtimedwait` expects.
    const KERNEL_SIGSET_SIZE: usize = 8;
    let set = sigbus_set();
    // SAFETY: siginfo_t is plain data; all zeroes is a valid value.
    let mut info: libc::siginfo_t = unsafe { mem::zeroed() };
    let no_wait = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: the set, the siginfo_t and the timeout are valid for the call; the kernel reads
    // the first 8 bytes of the set (signals 1 to 64) and writes the siginfo_t.
    let signal = unsafe {
        libc::syscall(
            libc::SYS_rt_sigtimedwait,
            &set as *const libc::sigset_t,
            &mut info as *mut libc::siginfo_t,
            &no_wait as *const libc::timespec,
            KERNEL_SIGSET_SIZE,
        )
    };
    (signal == libc::c_long::from(libc::SIGBUS)).then_some(info)
}

/// Whether a `SIGBUS` is pending on this thread's own queue and on its process's.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct PendingQueues {
    thread: bool,
    process: bool,
}

impl PendingQueues {
    /// As `/proc/thread-self/status` says (`SigPnd`, `ShdPnd`); `None` if it cannot be read.
    fn read() -> Option<PendingQueues> {
        let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
        let has_sigbus = |field: &str| -> Option<bool> {
            let line = status.lines().find_map(|line| line.strip_prefix(field))?;
            let bits = u64::from_str_radix(line.trim(), 16).ok()?;
            Some(bits & (1 << (libc::SIGBUS - 1)) != 0)
        };
        Some(PendingQueues {
            thread: has_sigbus("SigPnd:")?,
            process: has_sigbus("ShdPnd:")?,
        })
    }
}

/// The signal set holding just `SIGBUS`.
fn sigbus_set() -> libc::sigset_t {
    let mut set = empty_action().sa_mask;
    // SAFETY: adds a valid signal number to an initialised (empty) set.
    let _ = unsafe { libc::sigaddset(&mut set, libc::SIGBUS) };
    set
}

/// Our handler's action: `SA_SIGINFO | SA_ONSTACK`, and the previous action's signal mask and
/// `SA_NODEFER`, so a forwarded signal runs its handler with the signals blocked that the
/// kernel would have blocked.
fn our_action(entry: usize, previous: &libc::sigaction) -> libc::sigaction {
    let mut ours = empty_action();
    ours.sa_sigaction = entry_handler(entry);
    ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | (previous.sa_flags & libc::SA_NODEFER);
    ours.sa_mask = previous.sa_mask;
    ours
}

/// `SIG_DFL`, no flags, an empty mask.
fn empty_action() -> libc::sigaction {
    // SAFETY: `sigaction` is plain data (integers, a signal set, an optional function
    // pointer); all zeroes is SIG_DFL with no flags, an empty mask and no restorer.
    unsafe { mem::zeroed() }
}

/// The current `SIGBUS` disposition.
fn query() -> Option<libc::sigaction> {
    let mut current = empty_action();
    // SAFETY: only reads the disposition into `current`.
    let ret = unsafe { libc::sigaction(libc::SIGBUS, ptr::null(), &mut current) };
    (ret == 0).then_some(current)
}

/// Whether two actions are the same handler with the same flags and mask.
fn same_action(a: &libc::sigaction, b: &libc::sigaction) -> bool {
    a.sa_sigaction == b.sa_sigaction && a.sa_flags == b.sa_flags && same_mask(a, b)
}

fn same_mask(a: &libc::sigaction, b: &libc::sigaction) -> bool {
    (1..=64).all(|signal| {
        // SAFETY: sigismember only reads the set.
        let in_a = unsafe { libc::sigismember(&a.sa_mask, signal) };
        // SAFETY: as above.
        let in_b = unsafe { libc::sigismember(&b.sa_mask, signal) };
        in_a == in_b
    })
}

/// The `si_code`s of a synchronous memory fault that our copy recovers from.
fn recoverable(code: c_int) -> bool {
    matches!(
        code,
        libc::BUS_ADRERR | libc::BUS_OBJERR | libc::BUS_MCEERR_AR
    )
}

/// The `si_code`s the kernel uses for a `SIGBUS` raised by the faulting instruction itself
/// (forced: delivered even when blocked or ignored, and raised again if the instruction is
/// retried).
fn synchronous(code: c_int) -> bool {
    recoverable(code) || code == libc::BUS_ADRALN
}

/// The `SIGBUS` handler, called through entry point `entry`.
fn on_sigbus(entry: usize, signal: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    let code = if info.is_null() {
        0
    } else {
        // SAFETY: for an SA_SIGINFO handler the kernel passes a valid siginfo_t.
        unsafe { (*info).si_code }
    };
    if recoverable(code) && !context.is_null() && redirect_to_fixup(context.cast()) {
        return;
    }
    forward(entry, signal, info, context, synchronous(code));
}

/// Moves a thread stopped by a fault inside the copy routines to the fixup; false if its
/// program counter is elsewhere.
fn redirect_to_fixup(context: *mut libc::ucontext_t) -> bool {
    let begin = mc_begin as unsafe extern "C" fn() as usize as u64;
    let fixup = mc_fixup as unsafe extern "C" fn() as usize as u64;
    let saved = saved_pc(context);
    // SAFETY: `context` is the interrupted thread's ucontext_t, which the kernel passed to
    // this SA_SIGINFO handler; nothing else accesses it while the handler runs.
    let pc = unsafe { saved.read() };
    if !(begin..fixup).contains(&pc) {
        return false;
    }
    // SAFETY: as above; sigreturn resumes the thread at the fixup with all its other
    // registers as they were at the fault (see the module documentation).
    unsafe { saved.write(fixup) };
    true
}

/// Where the interrupted thread's program counter is saved in `context`.
/// (Pointer arithmetic only: nothing is dereferenced here.)
#[cfg(target_arch = "x86_64")]
fn saved_pc(context: *mut libc::ucontext_t) -> *mut u64 {
    let offset = mem::offset_of!(libc::ucontext_t, uc_mcontext.gregs)
        + libc::REG_RIP as usize * mem::size_of::<libc::greg_t>();
    context.cast::<u8>().wrapping_add(offset).cast::<u64>()
}

/// (Pointer arithmetic only: nothing is dereferenced here.)
#[cfg(target_arch = "aarch64")]
fn saved_pc(context: *mut libc::ucontext_t) -> *mut u64 {
    let offset = mem::offset_of!(libc::ucontext_t, uc_mcontext.pc);
    context.cast::<u8>().wrapping_add(offset).cast::<u64>()
}

/// Passes a `SIGBUS` that is not ours to the disposition entry `entry` replaced, as the kernel
/// would have delivered it.
fn forward(
    entry: usize,
    signal: c_int,
    info: *mut libc::siginfo_t,
    context: *mut c_void,
    synchronous: bool,
) {
    let errno = SavedErrno::save();
    let previous = PREVIOUS[entry].load(Ordering::Acquire);
    let (handler, flags) = if previous.is_null() {
        (libc::SIG_DFL, 0)
    } else {
        // SAFETY: published snapshots are leaked, never written after publication and never
        // freed; the Acquire load pairs with the Release store that published this one.
        let previous = unsafe { &*previous };
        (previous.sa_sigaction, previous.sa_flags)
    };
    if handler == libc::SIG_IGN && !synchronous {
        // The kernel discards an ignored signal that is not a forced fault.
    } else if handler == libc::SIG_DFL || handler == libc::SIG_IGN || is_ours(handler) {
        // The default action (a forced fault kills even when ignored): make it the
        // disposition, then let the signal happen again — a fault by retrying the
        // instruction, anything else by raising it (pending until this handler returns,
        // unless SA_NODEFER).
        reset_to_default();
        if !synchronous {
            // SAFETY: raise is async-signal-safe.
            let _ = unsafe { libc::raise(signal) };
        }
    } else {
        if flags & libc::SA_RESETHAND != 0 {
            reset_to_default();
        }
        if flags & libc::SA_SIGINFO != 0 {
            // SAFETY: an SA_SIGINFO disposition holds a three-argument handler.
            let previous: unsafe extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) =
                unsafe { mem::transmute::<libc::sighandler_t, _>(handler) };
            // SAFETY: called as the kernel would call it, with this signal's arguments.
            unsafe { previous(signal, info, context) };
        } else {
            // SAFETY: any other disposition that is not SIG_DFL/SIG_IGN is a one-argument
            // handler.
            let previous: unsafe extern "C" fn(c_int) =
                unsafe { mem::transmute::<libc::sighandler_t, _>(handler) };
            // SAFETY: called as the kernel would call it.
            unsafe { previous(signal) };
        }
    }
    errno.restore();
}

/// Sets `SIGBUS` to `SIG_DFL` (async-signal-safe).
fn reset_to_default() {
    let default = empty_action();
    // SAFETY: installs SIG_DFL; sigaction is async-signal-safe.
    let _ = unsafe { libc::sigaction(libc::SIGBUS, &default, ptr::null_mut()) };
}

/// The thread's `errno`, kept across the forwarding so the interrupted code does not see it
/// change.
struct SavedErrno(c_int);

impl SavedErrno {
    fn save() -> SavedErrno {
        // SAFETY: __errno_location returns the calling thread's errno, always valid.
        let location = unsafe { libc::__errno_location() };
        // SAFETY: as above.
        SavedErrno(unsafe { location.read() })
    }

    fn restore(self) {
        // SAFETY: as in `save`.
        let location = unsafe { libc::__errno_location() };
        // SAFETY: as above.
        unsafe { location.write(self.0) };
    }
}

#[cfg(test)]
mod tests;
