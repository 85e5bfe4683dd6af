//! `pmem2_source_from_fd(0)` in a static Linux executable with no libc and no Rust runtime.
//!
//! The binary has its own `_start`, classifies whatever its standard input (descriptor 0) is
//! with [`pmem2_source::Source::from_fd`], moves the result into a [`SourceBox`] from a
//! [`StaticPool`] in static memory (allocation with no heap), and exits with a status that
//! encodes the answer. Everything it needs that a C runtime would otherwise supply is in this
//! file: the entry point, `memcpy`/`memmove`/`memset`/`memcmp`/`bcmp`, the panic handler and
//! `exit_group`. It proves that the core needs nothing but the kernel.
//!
//! ```text
//! $ minimal-runtime < Cargo.toml; echo $?     # 0    regular file
//! $ minimal-runtime < /dev/dax0.0; echo $?    # 1    Device DAX
//! $ minimal-runtime < /; echo $?              # 105  PMEM2_E_INVALID_FILE_TYPE (directory)
//! $ minimal-runtime < /dev/null; echo $?      # 105  PMEM2_E_INVALID_FILE_TYPE (not DAX)
//! $ minimal-runtime <&-; echo $?              # 104  PMEM2_E_INVALID_FILE_HANDLE (closed)
//! ```
//!
//! # Exit status
//!
//! | status | meaning |
//! |---|---|
//! | 0 | a regular file |
//! | 1 | a Device DAX character device |
//! | 1..=99 | `-errno` from the call, the errno itself (e.g. 2 = `ENOENT` when `/sys` is missing, 12 = `ENOMEM` when the pool is exhausted) |
//! | 99 | any other return code (also errno 99, `EADDRNOTAVAIL`, which the call never gives) |
//! | 100..=199 | a `PMEM2_E_*` code `-(100000 + n)`, as `100 + n`: 104 = `PMEM2_E_INVALID_FILE_HANDLE`, 105 = `PMEM2_E_INVALID_FILE_TYPE` |
//! | 250 | a panic (the core is built panic-free, so this is a bug) |
//!
//! Status 1 is also `EPERM`; the call gives `-EPERM` only if a security module forbids reading
//! the device's sysfs link, which on real systems is `EACCES` instead.
//!
//! # Peak stack use: `--stack`
//!
//! `minimal-runtime --stack` measures how much stack `Source::from_fd(0)` uses: it paints a
//! 16 KiB static buffer with a byte pattern, switches the stack pointer to the top of it,
//! calls `from_fd` there, switches back, and finds the lowest byte that no longer holds the
//! pattern. It does this twice, with two patterns (a byte written with the pattern's own value
//! would go unseen), prints `from_fd stack: N bytes` (the larger) on standard output, and
//! exits with the status of the answer, as without the flag. N counts everything below the
//! call's return address: `from_fd`, what it calls, and the syscalls' arguments (the kernel
//! runs on its own stack).
//!
//! # Building
//!
//! Run cargo from this directory (so `.cargo/config.toml` applies), for the host target:
//! `cargo build --release`. `build.rs` links with `-nostartfiles -nostdlib -static -no-pie`.

#![no_std]
#![no_main]

use core::ffi::c_int;
use core::panic::PanicInfo;

use pmem2_source::{FileType, Source, SourceBox, StaticPool};

/// Status for a regular file.
const REGULAR: u8 = 0;
/// Status for a Device DAX character device.
const DEVICE_DAX: u8 = 1;
/// Status for a return code with no status of its own.
const OTHER: u8 = 99;
/// Status after a panic.
const PANIC: u8 = 250;

/// The one slot the allocated form needs: no heap anywhere in this process.
static POOL: StaticPool<1> = StaticPool::new();

/// The exit status for a libpmem2 return code (see the crate docs).
const fn error_status(code: i32) -> u8 {
    match code {
        // PMEM2_E_* codes are -(100000 + n); n < 100 fits 100..=199.
        -100_099..=-100_000 => (100 + (-100_000 - code)) as u8,
        // -errno with a small errno: the errno itself.
        -99..=-1 => (-code) as u8,
        _ => OTHER,
    }
}

// The encoding, checked when this file compiles.
const _: () = {
    use pmem2_source::codes::*;
    assert!(error_status(PMEM2_E_INVALID_FILE_TYPE) == 105);
    assert!(error_status(PMEM2_E_INVALID_FILE_HANDLE) == 104);
    assert!(error_status(PMEM2_E_UNKNOWN) == 100);
    assert!(error_status(PMEM2_E_IO_FAIL) == 137);
    assert!(error_status(-2) == 2);
    assert!(error_status(-12) == 12);
    assert!(error_status(-100) == OTHER);
    assert!(error_status(-100_100) == OTHER);
    assert!(error_status(0) == OTHER);
    assert!(error_status(1) == OTHER);
    assert!(error_status(i32::MIN) == OTHER);
};

/// Classifies descriptor 0 and returns the exit status.
fn run() -> u8 {
    let source = match Source::from_fd(0) {
        Ok(source) => source,
        Err(err) => return error_status(err.code()),
    };
    // The allocated form, from static memory. Exhaustion is -ENOMEM, status 12.
    let boxed = match SourceBox::new_in(source, &POOL) {
        Ok(boxed) => boxed,
        Err(err) => return error_status(err.code()),
    };
    match (boxed.fd(), boxed.file_type()) {
        (Ok(0), Some(FileType::Regular)) => REGULAR,
        (Ok(0), Some(FileType::DeviceDax)) => DEVICE_DAX,
        _ => OTHER,
    }
}

/// `--stack`: see the crate docs.
mod stack {
    use core::cell::UnsafeCell;
    use core::sync::atomic::{AtomicI32, Ordering};

    use pmem2_source::Source;

    /// Far more than `from_fd` needs; the test asserts a bound well below this.
    const SIZE: usize = 16 * 1024;

    /// The stack `from_fd` runs on, 16-byte aligned as the ABI wants at a call.
    #[repr(C, align(16))]
    struct Stack(UnsafeCell<[u8; SIZE]>);

    // SAFETY: only the single thread of this process touches it, and never while a reference
    // to it exists (it is used through raw pointers only).
    unsafe impl Sync for Stack {}

    static STACK: Stack = Stack(UnsafeCell::new([0; SIZE]));

    /// What the measured call answered: 0, or its error code.
    static ANSWER: AtomicI32 = AtomicI32::new(0);

    /// The measured call, run on [`STACK`].
    extern "C" fn measured() {
        let code = match Source::from_fd(0) {
            Ok(_) => 0,
            Err(err) => err.code(),
        };
        ANSWER.store(code, Ordering::Relaxed);
    }

    /// Calls `f` with the stack pointer at `top`, and restores it.
    ///
    /// # Safety
    ///
    /// `top` is 16-byte aligned and the end of writable memory that nothing else uses, large
    /// enough for `f`.
    unsafe fn call_on_stack(top: *mut u8, f: extern "C" fn()) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the old stack pointer is kept in r12, which the C ABI makes `f` preserve,
        // and put back after the call; `top` is suitable (caller's guarantee), and `call`
        // leaves rsp % 16 == 8 at `f`'s entry, as the ABI requires. Every register `f` may
        // change is declared clobbered.
        unsafe {
            core::arch::asm!(
                "mov r12, rsp",
                "mov rsp, {top}",
                "call {f}",
                "mov rsp, r12",
                top = in(reg) top,
                f = in(reg) f,
                out("r12") _,
                clobber_abi("C"),
            );
        }
        #[cfg(target_arch = "aarch64")]
        // SAFETY: as on x86_64, with x20 (callee-saved) holding the old stack pointer; sp is
        // 16-byte aligned at the call, and `blr` puts the return address in x30 (clobbered).
        unsafe {
            core::arch::asm!(
                "mov x20, sp",
                "mov sp, {top}",
                "blr {f}",
                "mov sp, x20",
                top = in(reg) top,
                f = in(reg) f,
                out("x20") _,
                clobber_abi("C"),
            );
        }
    }

    /// Fills the stack with `pattern`, runs [`measured`] on it, and returns how many bytes
    /// from the top were written.
    fn depth_with(pattern: u8) -> usize {
        let base = STACK.0.get().cast::<u8>();
        for i in 0..SIZE {
            // SAFETY: `i < SIZE`, inside the static buffer, which nothing else uses now.
            unsafe { base.wrapping_add(i).write_volatile(pattern) };
        }
        // SAFETY: one past the end of the buffer, which is 16-byte aligned and a multiple of
        // 16 bytes long; nothing else uses it.
        unsafe { call_on_stack(base.wrapping_add(SIZE), measured) };
        let lowest = (0..SIZE)
            // SAFETY: `i < SIZE`, inside the buffer, no longer in use.
            .find(|&i| unsafe { base.wrapping_add(i).read_volatile() } != pattern)
            .unwrap_or(SIZE);
        SIZE - lowest
    }

    /// The peak stack use of `Source::from_fd(0)`, and its answer.
    pub(super) fn measure() -> (usize, i32) {
        let depth = depth_with(0xa5).max(depth_with(0x5a));
        (depth, ANSWER.load(Ordering::Relaxed))
    }
}

/// Writes `text` to standard output (`write(2)` on descriptor 1; a short or failed write is
/// not retried: this is a report, not data).
fn print(text: &[u8]) {
    // SAFETY: `text` is readable for its length during the call.
    unsafe { sc::syscall!(WRITE, 1, text.as_ptr(), text.len()) };
}

/// `n` in decimal, into `buf`; the digits are its last bytes.
fn decimal(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut used = 0;
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
        used += 1;
        if n == 0 {
            break;
        }
    }
    buf.get(buf.len() - used..).unwrap_or_default()
}

/// `--stack`: measures, prints, and returns the exit status of the answer.
fn run_stack_mode() -> u8 {
    let (depth, code) = stack::measure();
    let mut digits = [0u8; 20];
    print(b"from_fd stack: ");
    print(decimal(depth, &mut digits));
    print(b" bytes\n");
    if code == 0 {
        REGULAR
    } else {
        error_status(code)
    }
}

/// Whether the first argument is `--stack`.
///
/// # Safety
///
/// `initial_stack` is where the kernel put `argc`, followed by the `argv` pointers (the
/// process entry state of the System V ABI).
unsafe fn stack_mode_requested(initial_stack: *const usize) -> bool {
    // SAFETY: argc is the first word of the initial stack (caller's guarantee).
    let argc = unsafe { initial_stack.read() };
    if argc < 2 {
        return false;
    }
    // SAFETY: argv[1] exists (argc >= 2) and is the third word: argc, argv[0], argv[1].
    let arg = unsafe { initial_stack.wrapping_add(2).read() } as *const u8;
    let wanted = b"--stack\0";
    // Compares up to and including the terminating NUL of `wanted`; stops at the argument's
    // own NUL, so nothing past its end is read.
    for (i, &want) in wanted.iter().enumerate() {
        // SAFETY: bytes `0..=i` of the NUL-terminated argument exist: none before `i` was NUL
        // (each matched a non-NUL byte of `wanted`).
        if unsafe { arg.wrapping_add(i).read() } != want {
            return false;
        }
    }
    true
}

/// Ends the process with `status` (`exit_group(2)`: every thread, no clean-up to run).
fn exit(status: u8) -> ! {
    // SAFETY: exit_group takes no pointer and touches no Rust memory; it does not return.
    unsafe { sc::syscall!(EXIT_GROUP, status) };
    // Not reached: the kernel never returns from exit_group.
    loop {
        core::hint::spin_loop();
    }
}

/// The Rust entry point, called by [`_start`] with the initial stack pointer (where the kernel
/// put `argc`, then `argv`, `envp` and the auxiliary vector; only `argv[1]` is read, for
/// `--stack`).
extern "C" fn entry(initial_stack: *const usize) -> ! {
    // SAFETY: `_start` passes the stack pointer the kernel started the process with.
    if unsafe { stack_mode_requested(initial_stack) } {
        exit(run_stack_mode())
    }
    exit(run())
}

/// The process entry point (`e_entry`): the kernel jumps here with the stack holding `argc`,
/// `argv`, `envp` and the auxiliary vector, and no return address.
///
/// It marks the outermost frame (frame pointer and, on aarch64, link register zero), keeps
/// the stack 16-byte aligned as the C ABI requires at a call, and calls [`entry`], which never
/// returns. There is nothing to initialise: no libc, no TLS, no relocations (a non-PIE static
/// executable), no constructors.
// SAFETY: the body is only the assembly below, which is a complete function: it never
// returns, so it needs no prologue or epilogue, and it reads nothing but the stack pointer.
#[unsafe(naked)]
// SAFETY: `_start` is the only symbol of that name in the link (`-nostartfiles` leaves out
// crt1.o, which would define another).
#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    #[cfg(target_arch = "x86_64")]
    core::arch::naked_asm!(
        // The outermost frame: debuggers and unwinders stop at a zero frame pointer.
        "xor ebp, ebp",
        // First argument: where argc is.
        "mov rdi, rsp",
        // The kernel starts us 16-byte aligned; make sure, so that after the `call` pushes
        // the return address, `entry` sees the ABI's rsp % 16 == 8.
        "and rsp, -16",
        "call {entry}",
        // `entry` never returns; trap if it somehow does.
        "ud2",
        entry = sym entry,
    );
    #[cfg(target_arch = "aarch64")]
    core::arch::naked_asm!(
        // The outermost frame: zero frame pointer and link register.
        "mov x29, #0",
        "mov x30, #0",
        // First argument: where argc is. sp is always 16-byte aligned on aarch64.
        "mov x0, sp",
        "bl {entry}",
        // `entry` never returns; trap if it somehow does.
        "brk #1",
        entry = sym entry,
    );
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("minimal-runtime has a _start for x86_64 and aarch64 only");

#[panic_handler]
fn panic(_info: &PanicInfo<'_>) -> ! {
    exit(PANIC)
}

/// The unwinding personality routine that the precompiled `core` (built for unwinding) names
/// in its unwind tables. Release builds drop those references (LTO and `--gc-sections`); a dev
/// build keeps them and would not link without this symbol. Nothing can call it: with
/// `panic = "abort"` nothing unwinds, and no unwinder is linked in. Were it called anyway, it
/// ends the process like a panic.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() -> ! {
    exit(PANIC)
}

/// `getauxval(3)`, which on aarch64 `compiler_builtins` names in two constructors
/// (`init_have_lse_atomics`, `__init_cpu_features`, compiler-rt's CPU feature detection): the
/// link needs the symbol. Only a C runtime runs `.init_array` constructors, so nothing here
/// calls it; were it called, 0 means "no hardware capabilities", and the atomics keep their
/// always-correct load/store-exclusive fallback.
#[cfg(target_arch = "aarch64")]
#[unsafe(no_mangle)]
pub extern "C" fn getauxval(_type: core::ffi::c_ulong) -> core::ffi::c_ulong {
    0
}

// The memory functions the compiler calls for copies, fills and comparisons; libc would
// provide them. Each is written so that the compiler cannot recognise it as the idiom it
// implements and turn it back into a call to itself: x86_64 uses the string instructions
// (`rep movsb`, `rep stosb`, fast on every CPU since Ivy Bridge), every other loop reads and
// writes through volatile accesses, which the compiler must perform one by one, as written.
//
// SAFETY (each `#[unsafe(no_mangle)]` below, and on `rust_eh_personality` and `getauxval`): no
// other definition of these names is linked, since `-nostdlib` leaves out libc and libgcc, and
// each has the C signature its callers expect.

/// `memcpy(3)`.
///
/// # Safety
///
/// `src` is readable and `dest` writable for `n` bytes, and the two ranges do not overlap.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees both ranges; without overlap any copy order is valid.
    unsafe { copy_forward(dest, src, n) };
    dest
}

/// `memmove(3)`: like [`memcpy`], but the ranges may overlap.
///
/// # Safety
///
/// `src` is readable and `dest` writable for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // Copying forwards is correct unless `dest` starts inside the source range after `src`.
    if (dest as usize).wrapping_sub(src as usize) >= n {
        // SAFETY: the caller guarantees both ranges, and a forward copy reads every source
        // byte before it can be overwritten (dest is below src, or the ranges are disjoint).
        unsafe { copy_forward(dest, src, n) };
    } else {
        // SAFETY: the caller guarantees both ranges; copying backwards reads every source
        // byte before it can be overwritten when dest is above src.
        unsafe { copy_backward(dest, src, n) };
    }
    dest
}

/// `memset(3)`: sets `n` bytes at `dest` to `c as u8`.
///
/// # Safety
///
/// `dest` is writable for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dest: *mut u8, c: c_int, n: usize) -> *mut u8 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `rep stosb` stores al into rcx bytes from [rdi], ascending (direction flag
    // clear per the ABI); the caller guarantees the range. No flags, no stack.
    unsafe {
        core::arch::asm!(
            "rep stosb",
            inout("rcx") n => _,
            inout("rdi") dest => _,
            in("al") c as u8,
            options(nostack, preserves_flags),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    for i in 0..n {
        // SAFETY: `i < n` and the caller guarantees `dest` is writable for `n` bytes.
        unsafe { dest.wrapping_add(i).write_volatile(c as u8) };
    }
    dest
}

/// `memcmp(3)`: compares `n` bytes as unsigned chars; negative, zero or positive.
///
/// # Safety
///
/// `a` and `b` are readable for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> c_int {
    for i in 0..n {
        // SAFETY: `i < n` and the caller guarantees `a` is readable for `n` bytes.
        let x = unsafe { a.wrapping_add(i).read_volatile() };
        // SAFETY: as above, for `b`.
        let y = unsafe { b.wrapping_add(i).read_volatile() };
        if x != y {
            return c_int::from(x) - c_int::from(y);
        }
    }
    0
}

/// `bcmp(3)`: zero if the `n` bytes are equal, non-zero otherwise (LLVM emits it for `==`).
///
/// # Safety
///
/// `a` and `b` are readable for `n` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> c_int {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}

/// Copies `n` bytes, lowest address first, with `rep movsb`.
///
/// # Safety
///
/// `src` is readable and `dest` writable for `n` bytes; if they overlap, `dest <= src`.
#[cfg(target_arch = "x86_64")]
unsafe fn copy_forward(dest: *mut u8, src: *const u8, n: usize) {
    // SAFETY: `rep movsb` copies rcx bytes from [rsi] to [rdi] with the architectural result
    // of a byte-by-byte copy, ascending because the ABI guarantees the direction flag is clear
    // at a call (so it is also right for an overlap with dest below src); the caller
    // guarantees both ranges. It changes no flags and does not touch the stack.
    unsafe {
        core::arch::asm!(
            "rep movsb",
            inout("rcx") n => _,
            inout("rdi") dest => _,
            inout("rsi") src => _,
            options(nostack, preserves_flags),
        );
    }
}

/// Copies `n` bytes, lowest address first, one volatile access at a time.
///
/// # Safety
///
/// `src` is readable and `dest` writable for `n` bytes; if they overlap, `dest <= src`.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn copy_forward(dest: *mut u8, src: *const u8, n: usize) {
    for i in 0..n {
        // SAFETY: `i < n`, within the caller's readable range.
        let byte = unsafe { src.wrapping_add(i).read_volatile() };
        // SAFETY: `i < n`, within the caller's writable range.
        unsafe { dest.wrapping_add(i).write_volatile(byte) };
    }
}

/// Copies `n` bytes, highest address first, one volatile access at a time.
///
/// # Safety
///
/// `src` is readable and `dest` writable for `n` bytes; if they overlap, `dest >= src`.
unsafe fn copy_backward(dest: *mut u8, src: *const u8, n: usize) {
    for i in (0..n).rev() {
        // SAFETY: `i < n`, within the caller's readable range.
        let byte = unsafe { src.wrapping_add(i).read_volatile() };
        // SAFETY: `i < n`, within the caller's writable range.
        unsafe { dest.wrapping_add(i).write_volatile(byte) };
    }
}
