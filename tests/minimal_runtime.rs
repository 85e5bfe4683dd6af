//! The minimal-runtime example (`examples/minimal-runtime`): a `#![no_std]`, `#![no_main]`
//! static executable with its own `_start` and no libc, which classifies its standard input
//! with the core and exits with a status that encodes the answer (0 regular file, 1 Device
//! DAX, 100 + n for `PMEM2_E_*` code -(100000 + n), the errno for a small -errno, 99 else).
//!
//! The example is its own cargo workspace (it needs `panic = "abort"` and its own link flags),
//! so this test builds it with a nested cargo, once for all the tests here, into its own target
//! directory (`<target>/minimal-runtime`): a different directory takes a different build lock,
//! so the nested build does not wait for the outer `cargo test`, which holds the outer one.

#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Exit statuses, as documented in examples/minimal-runtime/README.md.
const REGULAR: i32 = 0;
const INVALID_FILE_HANDLE: i32 = 104;
const INVALID_FILE_TYPE: i32 = 105;

/// An upper bound on the binary's size (unstripped); a static glibc alone is ~800 KiB.
const MAX_SIZE: u64 = 64 * 1024;

/// The bound on the stripped binary (issue 6): 6952 bytes measured with Rust 1.95 on x86_64.
const MAX_STRIPPED_SIZE: u64 = 16 * 1024;

/// The bound on the peak stack use of `Source::from_fd` in this build (`--stack`): 792 bytes
/// measured for a character device, the deepest path (x86_64, Rust 1.95, `opt-level = "s"`);
/// 320 for a regular file or a directory, 176 for a closed descriptor.
const MAX_FROM_FD_STACK: usize = 2048;

/// Builds the example (once per test process) and returns the path of the binary. A failed
/// build fails every test that needs the binary, each with the build's output, without
/// building again.
fn binary() -> &'static Path {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match BINARY.get_or_init(build) {
        Ok(path) => path,
        Err(message) => panic!("{message}"),
    }
}

fn build() -> Result<PathBuf, String> {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/minimal-runtime");
    // CARGO_TARGET_TMPDIR is `<target dir>/tmp`, wherever the target dir is (CARGO_TARGET_DIR
    // or --target-dir included).
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR has a parent")
        .join("minimal-runtime");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let output = match Command::new(&cargo)
        // The example's .cargo/config.toml (`-C relocation-model=static`) applies only when
        // cargo runs from its directory.
        .current_dir(&example)
        .args([
            "build",
            "--release",
            "--locked",
            "--quiet",
            "--manifest-path",
        ])
        .arg(example.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // Flags meant for the outer build (coverage instrumentation, sanitizers, `-D
        // warnings`) would replace the example's own and may need a runtime it does not
        // have; a target set for the outer build is not the host this test runs the binary on.
        // `cargo llvm-cov` instruments through a rustc wrapper rather than RUSTFLAGS, and the
        // profiler runtime needs libc: the nested build goes without wrappers too.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .stdin(Stdio::null())
        .output()
    {
        Ok(output) => output,
        Err(err) => return Err(format!("cannot run {cargo:?}: {err}")),
    };
    if !output.status.success() {
        return Err(format!(
            "building examples/minimal-runtime failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        ));
    }
    let binary = target_dir.join("release/minimal-runtime");
    if !binary.is_file() {
        return Err(format!("no binary at {}", binary.display()));
    }
    Ok(binary)
}

/// Runs the binary with the given standard input and returns its exit status.
fn status_with(mut command: Command, stdin: Stdio) -> i32 {
    let status = command
        .stdin(stdin)
        .status()
        .expect("run examples/minimal-runtime");
    match status.code() {
        Some(code) => code,
        None => panic!("minimal-runtime was killed by signal {:?}", status.signal()),
    }
}

fn run(stdin: impl Into<Stdio>) -> i32 {
    status_with(Command::new(binary()), stdin.into())
}

#[test]
fn regular_file_is_0() {
    let file = File::open("Cargo.toml").expect("open Cargo.toml");
    assert_eq!(run(file), REGULAR);
}

#[test]
fn directory_is_invalid_file_type() {
    let dir = File::open(".").expect("open the repository directory");
    assert_eq!(run(dir), INVALID_FILE_TYPE);
}

#[test]
fn dev_null_is_invalid_file_type() {
    // A character device whose subsystem is "mem", not "dax".
    assert_eq!(run(Stdio::null()), INVALID_FILE_TYPE);
}

#[test]
fn pipe_is_invalid_file_type() {
    assert_eq!(run(Stdio::piped()), INVALID_FILE_TYPE);
}

#[test]
fn write_only_is_invalid_file_handle() {
    // The access mode is checked before the file type.
    let dev_null = OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .expect("open /dev/null write-only");
    assert_eq!(run(dev_null), INVALID_FILE_HANDLE);
}

/// Makes `command` run with descriptor 0 closed.
fn close_stdin(command: &mut Command) {
    let close = || {
        // SAFETY: runs in the child after fork, before exec; close(2) is async-signal-safe,
        // allocates nothing and touches no memory of ours. Descriptor 0 is the child's own
        // copy, already set up by std, so closing it leaves the parent's untouched.
        if unsafe { libc::close(0) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    // SAFETY: the closure only calls close(2) (see above), which is safe between fork and
    // exec even in a multi-threaded parent.
    unsafe { command.pre_exec(close) };
}

#[test]
fn closed_stdin_is_invalid_file_handle() {
    let mut command = Command::new(binary());
    close_stdin(&mut command);
    // fcntl(0, F_GETFL) fails with EBADF.
    assert_eq!(status_with(command, Stdio::inherit()), INVALID_FILE_HANDLE);
}

#[test]
fn runs_are_deterministic() {
    for _ in 0..3 {
        assert_eq!(run(File::open("Cargo.toml").expect("open")), REGULAR);
        assert_eq!(run(Stdio::null()), INVALID_FILE_TYPE);
    }
}

/// The fields of an ELF64 little-endian file that say how it is loaded.
#[derive(Debug)]
struct ElfSummary {
    e_type: u16,
    e_machine: u16,
    entry: u64,
    /// `(p_type, p_flags, p_vaddr, p_memsz)` of every program header.
    segments: Vec<(u32, u32, u64, u64)>,
}

const ET_EXEC: u16 = 2;
const EM_X86_64: u16 = 62;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PF_X: u32 = 1;

/// Parses the ELF header and program headers by hand (the ELF64 layout of `elf(5)`).
fn parse_elf(bytes: &[u8]) -> ElfSummary {
    let u16_at = |at: usize| u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap());
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    assert_eq!(&bytes[..4], b"\x7fELF", "ELF magic");
    assert_eq!(bytes[4], 2, "ELFCLASS64");
    assert_eq!(bytes[5], 1, "ELFDATA2LSB");
    let phoff = usize::try_from(u64_at(32)).unwrap();
    let phentsize = usize::from(u16_at(54));
    let phnum = usize::from(u16_at(56));
    assert!(phentsize >= 56, "program header entry size {phentsize}");
    let segments = (0..phnum)
        .map(|i| {
            let at = phoff + i * phentsize;
            (u32_at(at), u32_at(at + 4), u64_at(at + 16), u64_at(at + 40))
        })
        .collect();
    ElfSummary {
        e_type: u16_at(16),
        e_machine: u16_at(18),
        entry: u64_at(24),
        segments,
    }
}

#[test]
fn binary_is_static_libc_free_and_small() {
    let path = binary();
    let bytes = std::fs::read(path).expect("read the binary");
    let elf = parse_elf(&bytes);
    println!("{}: {} bytes, {elf:x?}", path.display(), bytes.len());
    assert_eq!(elf.e_machine, EM_X86_64);
    assert_eq!(elf.e_type, ET_EXEC, "a fixed-address (non-PIE) executable");
    let types: Vec<u32> = elf.segments.iter().map(|s| s.0).collect();
    assert!(!types.contains(&PT_INTERP), "no dynamic loader: {types:?}");
    assert!(
        !types.contains(&PT_DYNAMIC),
        "no dynamic section: {types:?}"
    );
    assert!(
        elf.segments.iter().any(|&(p_type, flags, vaddr, memsz)| {
            p_type == PT_LOAD && flags & PF_X != 0 && (vaddr..vaddr + memsz).contains(&elf.entry)
        }),
        "the entry point {:#x} is in an executable segment",
        elf.entry
    );
    for needle in [&b"libc.so"[..], b"GLIBC_", b"ld-linux"] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "{:?} in the binary",
            String::from_utf8_lossy(needle)
        );
    }
    assert!(
        (bytes.len() as u64) < MAX_SIZE,
        "{} bytes, expected under {MAX_SIZE}",
        bytes.len()
    );
}

#[test]
fn stripped_binary_is_under_16_kib() {
    let stripped = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("minimal-runtime-stripped-{}", std::process::id()));
    let status = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(binary())
        .status()
        .expect("run strip (binutils)");
    assert!(status.success(), "strip: {status}");
    let size = std::fs::metadata(&stripped).expect("stripped binary").len();
    let _ = std::fs::remove_file(&stripped);
    println!("stripped: {size} bytes");
    assert!(
        size < MAX_STRIPPED_SIZE,
        "{size} bytes stripped, expected under {MAX_STRIPPED_SIZE}"
    );
}

/// `command` (`minimal-runtime --stack`) with `stdin`: the peak stack use of `from_fd` it
/// printed, and its exit status.
fn peak_stack(mut command: Command, stdin: Stdio) -> (usize, i32) {
    let output = command
        .stdin(stdin)
        .output()
        .expect("run minimal-runtime --stack");
    let text = String::from_utf8_lossy(&output.stdout);
    let bytes = text
        .strip_prefix("from_fd stack: ")
        .and_then(|rest| rest.strip_suffix(" bytes\n"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output {text:?}"));
    let status = output.status.code().expect("exited");
    (bytes, status)
}

#[test]
fn peak_stack_of_from_fd_is_bounded() {
    let stack_mode = || {
        let mut command = Command::new(binary());
        command.arg("--stack");
        command
    };
    let mut closed = stack_mode();
    close_stdin(&mut closed);
    let mut deepest = 0;
    for (what, command, stdin, status) in [
        (
            "regular file",
            stack_mode(),
            Stdio::from(File::open("Cargo.toml").expect("open")),
            REGULAR,
        ),
        ("/dev/null", stack_mode(), Stdio::null(), INVALID_FILE_TYPE),
        (
            "directory",
            stack_mode(),
            Stdio::from(File::open(".").expect("open")),
            INVALID_FILE_TYPE,
        ),
        (
            "closed stdin",
            closed,
            Stdio::inherit(),
            INVALID_FILE_HANDLE,
        ),
    ] {
        let (bytes, got) = peak_stack(command, stdin);
        println!("{what}: from_fd used {bytes} bytes of stack");
        assert_eq!(got, status, "{what}: the answer under --stack");
        // The call's own frame and return address at least: the measurement saw the call.
        assert!(
            bytes >= 64,
            "{what}: {bytes} bytes is too little to be a measurement"
        );
        assert!(
            bytes <= MAX_FROM_FD_STACK,
            "{what}: {bytes} bytes, bound {MAX_FROM_FD_STACK}"
        );
        deepest = deepest.max(bytes);
    }
    println!("deepest: {deepest} bytes");
}
