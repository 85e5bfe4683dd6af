//! The C library's thread-locals, as `scripts/build-capi.sh` builds it for installing and
//! benchmarking (release, TLS descriptors on x86_64):
//! - its thread-local block is small enough for glibc's static TLS reserve for dlopen'ed
//!   libraries (512 bytes by default, shared by all of them);
//! - on x86_64 it reaches its thread-locals through TLS descriptors, never `__tls_get_addr`;
//! - `tests/c/tls_model.c` dlopens it: with the reserve at its default, glibc resolves the
//!   descriptor to static TLS (the fast path, docs/benchmarks.md); with the reserve at zero
//!   (`GLIBC_TUNABLES`), to a dynamic lookup, and loading still works. Either way, 4 threads
//!   each read their own messages, and under valgrind no thread's message buffer leaks.

#![cfg(target_os = "linux")]

mod cprog;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use cprog::{Workdir, c_source, describe, require, run, run_ok};

/// The most thread-local bytes the library may have: half of glibc's default optional static
/// TLS reserve (`glibc.rtld.optional_static_tls`, 512), leaving the rest to other libraries.
const MAX_TLS_BYTES: u64 = 256;

/// `target/release/libpmem2_source.so`, built once per test binary by `scripts/build-capi.sh`
/// in this run's target directory (where `scripts/bench.sh` builds it too).
fn release_library() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target_dir = support::profile_dir()
            .parent()
            .expect("target/<profile> has a parent")
            .to_path_buf();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-capi.sh");
        run_ok(
            Command::new("bash")
                .arg(script)
                .args(["--quiet", "--target-dir"])
                .arg(&target_dir),
        );
        let library = target_dir.join("release/libpmem2_source.so");
        assert!(library.is_file(), "{} was not built", library.display());
        library
    })
}

/// The hex offsets of the `R_X86_64_TLSDESC` relocations in `relocations` (`readelf -rW`).
fn tls_descriptors(relocations: &str) -> Vec<String> {
    relocations
        .lines()
        .filter(|line| line.contains("R_X86_64_TLSDESC"))
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn the_thread_local_block_fits_the_static_reserve() {
    if !require("readelf", "the_thread_local_block_fits_the_static_reserve") {
        return;
    }
    let headers = cprog::readelf(&["-lW"], release_library());
    // "  TLS  Offset VirtAddr PhysAddr FileSiz MemSiz Flg Align"
    let tls: Vec<&str> = headers
        .lines()
        .map(str::split_whitespace)
        .filter_map(|mut fields| (fields.next() == Some("TLS")).then(|| fields.collect()))
        .next()
        .unwrap_or_else(|| panic!("no TLS program header:\n{headers}"));
    let mem_size = tls
        .get(4)
        .and_then(|hex| u64::from_str_radix(hex.trim_start_matches("0x"), 16).ok())
        .unwrap_or_else(|| panic!("unreadable TLS header {tls:?}"));
    assert!(
        mem_size <= MAX_TLS_BYTES,
        "the thread-local block is {mem_size} bytes, more than {MAX_TLS_BYTES}: glibc may not \
         fit it in static TLS (shims/c/src/message.rs says why it must stay small)"
    );
}

#[cfg(target_arch = "x86_64")]
#[test]
fn thread_locals_are_reached_through_descriptors() {
    if !require("readelf", "thread_locals_are_reached_through_descriptors") {
        return;
    }
    let relocations = cprog::readelf(&["-rW"], release_library());
    assert!(
        !tls_descriptors(&relocations).is_empty(),
        "no R_X86_64_TLSDESC relocation: scripts/build-capi.sh's -enable-tlsdesc had no effect"
    );
    assert!(
        !relocations.contains("__tls_get_addr"),
        "some thread-local is still reached through __tls_get_addr:\n{relocations}"
    );
}

/// Compiles tls_model.c against our header; it dlopens the library named on its command line.
fn build_program(work: &Workdir) -> PathBuf {
    cprog::build(
        work,
        "tls_model",
        [
            c_source("tls_model.c").into_os_string(),
            format!("-I{}", support::our_include_dir().display()).into(),
            format!("-I{}", c_source("").display()).into(),
            "-pthread".into(),
            "-ldl".into(),
        ],
    )
}

/// The program's arguments: the library and its TLS descriptor's offset ("none" if it has
/// none, as on other architectures, where the program cannot tell the outcome).
fn program_args(library: &Path) -> Vec<String> {
    let descriptor = tls_descriptors(&cprog::readelf(&["-rW"], library))
        .into_iter()
        .next()
        .unwrap_or_else(|| "none".to_owned());
    vec![library.display().to_string(), descriptor]
}

/// Asserts the program passed every check and says which TLS it found (`expected` on
/// x86_64; it cannot tell elsewhere).
#[track_caller]
fn assert_passed(output: &Output, expected: &str) {
    cprog::assert_checks_passed(output, "tls_model");
    let found = if cfg!(target_arch = "x86_64") {
        expected
    } else {
        "unknown"
    };
    assert!(
        cprog::text(&output.stdout)
            .lines()
            .any(|line| line == format!("tls: {found}")),
        "expected \"tls: {found}\"\n{}",
        describe(output)
    );
}

/// Runs the program on the release library with glibc's optional static TLS reserve at
/// `reserve` bytes (`None`: glibc's default) and asserts it passed, finding `expected` TLS.
fn run_with_reserve(test: &str, reserve: Option<usize>, expected: &str) {
    if !require("gcc", test) || !require("readelf", test) {
        return;
    }
    let work = Workdir::new(test);
    let exe = build_program(&work);
    let mut command = Command::new(&exe);
    command.args(program_args(release_library()));
    match reserve {
        Some(bytes) => command.env(
            "GLIBC_TUNABLES",
            format!("glibc.rtld.optional_static_tls={bytes}"),
        ),
        None => command.env_remove("GLIBC_TUNABLES"),
    };
    assert_passed(&run(&mut command), expected);
}

#[test]
fn loaded_with_room_the_block_is_static_and_messages_are_per_thread() {
    run_with_reserve(
        "loaded_with_room_the_block_is_static_and_messages_are_per_thread",
        None,
        "static",
    );
}

#[test]
fn loaded_without_room_the_block_is_dynamic_and_messages_are_per_thread() {
    run_with_reserve(
        "loaded_without_room_the_block_is_dynamic_and_messages_are_per_thread",
        Some(0),
        "dynamic",
    );
}

/// Each thread's message buffer, allocated by its first `pmem2_errormsg()`, is freed when the
/// thread exits: a buffer left behind would be "definitely lost".
#[test]
fn message_buffers_do_not_outlive_their_threads() {
    const TEST: &str = "message_buffers_do_not_outlive_their_threads";
    if !require("gcc", TEST) || !require("readelf", TEST) || !require("valgrind", TEST) {
        return;
    }
    let work = Workdir::new("tls-valgrind");
    let exe = build_program(&work);
    let log_path = work.join("valgrind.log");
    let output = cprog::run_under_valgrind(&exe, program_args(release_library()), &log_path);
    let log = cprog::assert_valgrind_clean(&output, &log_path);
    assert!(
        log.contains("definitely lost: 0 bytes") || log.contains("All heap blocks were freed"),
        "{log}"
    );
    assert_passed(&output, "static");
}
