//! `pmem2-source [--json] [--write] [PATH…]`: for each path, can it be a libpmem2 data
//! source, and if not, why? With no path: the same for every Device DAX on the machine.
//!
//! Judges each path before opening it (`O_PATH` and `fstat`, and for a character device its
//! sysfs `subsystem` link, exactly as `pmem2_source_from_fd` judges a descriptor), opens only
//! a regular file or a Device DAX (read-only, or read-write with `--write`), creates a source
//! from that descriptor as `pmem2_source_from_fd` would, asks it its size, alignment and NUMA
//! node, and prints one line per path (text, or a JSON object with `--json`). The exit status
//! is 0 only if every path is usable. A checker must not change what it checks: see
//! `located.rs` for what is never opened, and why.

// The command inspects Linux descriptors and lists Device DAX devices: Linux only. On Windows
// it only says so.
#[cfg(not(windows))]
mod inspect;
#[cfg(not(windows))]
mod listing;
#[cfg(not(windows))]
mod located;
#[cfg(not(windows))]
mod output;
#[cfg(not(windows))]
mod units;

#[cfg(not(windows))]
use std::io::{self, Write};
#[cfg(not(windows))]
use std::path::{Path, PathBuf};
#[cfg(not(windows))]
use std::process::ExitCode;

#[cfg(not(windows))]
use clap::Parser;
#[cfg(not(windows))]
use clap::builder::{OsStringValueParser, TypedValueParser};

#[cfg(not(windows))]
use crate::inspect::{Access, inspect};
#[cfg(not(windows))]
use crate::listing::{DAX_BUS_DEVICES, Listing, Target, dax_devices};
#[cfg(not(windows))]
use crate::output::{Record, text_line};

#[cfg(not(windows))]
const AFTER_HELP: &str = "\
Output, one line per PATH:
  PATH: regular file on device MAJ:MIN, inode N (opened read-only), size SIZE, alignment SIZE
  PATH: Device DAX MAJ:MIN (opened read-only), size SIZE, alignment SIZE, NUMA node N
  PATH: NAME (CODE): MESSAGE
where SIZE is human-readable and exact: 6.3 KiB (6483 bytes), 2 MiB (2097152 bytes) (binary
units; a decimal means rounded). NUMA node is left out when the source is on no NVDIMM
region. NAME and CODE are libpmem2's error code (PMEM2_E_INVALID_FILE_TYPE (-100005), …) or
-errno (ENOENT (-2), …), and MESSAGE says what was wrong. If the source was created but a
query failed, that field reads `size: NAME (CODE): MESSAGE` (or alignment, NUMA node) and the
path is not usable. In PATH (and a device name), a backslash is written \\\\, newline, tab and
carriage return \\n, \\t, \\r, and other control characters, Unicode line separators and
bidirectional controls, and bytes that are not UTF-8, \\xHH per byte (ESC is \\x1b): one line
per PATH, and nothing in it acts on the terminal.

What is opened: nothing is opened before it is judged. Each PATH is resolved with O_PATH
(which opens no file: no device driver, no FIFO, no inotify event) and judged from its fstat,
as pmem2_source_from_fd judges a descriptor, with the same codes and messages: a directory,
FIFO, socket, block device, or character device whose sysfs subsystem is not dax, is reported
without ever being opened (so `pmem2-source /dev/*` opens no device but a Device DAX). Only a
regular file or a Device DAX is then opened, through /proc/self/fd/N (the very file judged,
even if PATH is renamed or re-linked meanwhile), read-only by default, with O_NOCTTY and
O_NONBLOCK; with --write, read-write instead (a regular file opened read-write fires
IN_CLOSE_WRITE and breaks leases; on overlayfs it is copied up). Without /proc mounted, a file
is judged but not opened: `open read-only: /proc/self/fd: …`.

With --json, one JSON object per line instead:
  {\"path\":\"README.md\",\"usable\":true,\"file_type\":\"regular\",\"device\":\"254:0\",
   \"inode\":1234,\"access\":\"read-only\",\"size\":6483,\"alignment\":4096,\"numa_node\":null}
  {\"path\":\"/tmp\",\"usable\":false,\"error\":{\"code\":-100005,
   \"name\":\"PMEM2_E_INVALID_FILE_TYPE\",\"message\":\"…\"}}
file_type is \"regular\" or \"devdax\"; device is the device holding a regular file, or the
Device DAX itself; access is \"read-only\" or (--write) \"read-write\"; numa_node is null when
unknown. A query that failed on a created source is null, with its error under \"errors\"
({\"size\":{\"code\":…,\"name\":…,\"message\":…}}, also \"alignment\", \"numa_node\");
\"errors\" is absent when none failed. An error's \"name\" is null for an unknown code. A path
that is not UTF-8 has U+FFFD in \"path\" and its exact bytes in \"path_bytes\" (an array of
numbers); JSON strings escape control characters as JSON does.

With no PATH: every Device DAX listed in /sys/bus/dax/devices, opened as /dev/NAME (or
/dev/char/MAJ:MIN if only that exists) and reported the same way; JSON objects also carry
\"dax_device\":\"NAME\". If there is none, says so (with --json: on stderr) and exits 0.

Exit status: 0 if every PATH (or listed device) is usable, or none is listed; 1 if any is
not, or the listing failed, or the output could not be written (a closed pipe ends the
output quietly); 2 on a usage error. An empty PATH is a path like any other (ENOENT).";

/// Tells whether each PATH can be a persistent-memory data source (libpmem2's
/// pmem2_source_from_fd): a regular file or a Device DAX, and if not, why not; with its size,
/// alignment and NUMA node. Judges each PATH before opening it, and opens only a regular file
/// or a Device DAX, read-only unless --write.
#[cfg(not(windows))]
#[derive(Parser, Debug)]
#[command(name = "pmem2-source", version, about, after_help = AFTER_HELP)]
struct Args {
    /// One JSON object per line (JSON Lines) instead of text.
    #[arg(long)]
    json: bool,

    /// Open each regular file or Device DAX read-write instead of read-only, to check write
    /// access too (a failure to open it read-write is reported, and it is not usable).
    #[arg(long)]
    write: bool,

    /// Files or devices to check; each is judged before it is opened, and opened (read-only
    /// unless --write) only if it is a regular file or a Device DAX. None: every Device DAX
    /// on the machine.
    // Not clap's PathBuf parser, which refuses an empty value: "" is a missing path.
    #[arg(value_name = "PATH", value_parser = OsStringValueParser::new().map(PathBuf::from))]
    paths: Vec<PathBuf>,
}

/// Writes `line` and a newline to stderr; a stderr that cannot be written to (a closed
/// pipe) is not worth a panic, and the exit status already says what happened.
#[cfg(not(windows))]
fn warn(line: &str) {
    let _ = writeln!(io::stderr(), "{line}");
}

/// What to check: the paths given, or the Device DAX devices listed; `Err` is the exit status
/// when there is nothing to check.
#[cfg(not(windows))]
fn targets(args: &Args) -> Result<Vec<Target>, ExitCode> {
    if !args.paths.is_empty() {
        return Ok(args.paths.iter().cloned().map(Target::path).collect());
    }
    let none_because = match dax_devices(Path::new(DAX_BUS_DEVICES)) {
        Ok(Listing::Devices(devices)) => return Ok(devices),
        Ok(Listing::Empty) => "is empty",
        Ok(Listing::Missing) => "does not exist",
        Err(err) => {
            warn(&format!(
                "pmem2-source: cannot list Device DAX devices: {DAX_BUS_DEVICES}: {err}"
            ));
            return Err(ExitCode::FAILURE);
        }
    };
    let note = format!("no Device DAX devices found ({DAX_BUS_DEVICES} {none_because})");
    // With --json, stdout holds only JSON objects.
    let written = if args.json {
        writeln!(io::stderr(), "pmem2-source: {note}")
    } else {
        writeln!(io::stdout(), "{note}")
    };
    Err(if written.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(not(windows))]
fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(err) => {
            // --help and --version land here too (exit code 0). A closed stdout or stderr
            // loses the text, not the status.
            let _ = err.print();
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
        }
    };
    let targets = match targets(&args) {
        Ok(targets) => targets,
        Err(status) => return status,
    };
    let access = if args.write {
        Access::ReadWrite
    } else {
        Access::ReadOnly
    };
    let mut stdout = io::stdout().lock();
    let mut all_usable = true;
    for target in &targets {
        let outcome = inspect(&target.path, access);
        all_usable &= outcome.usable();
        let line = if args.json {
            Record::new(target, &outcome).to_line()
        } else {
            text_line(target, &outcome)
        };
        // A closed pipe (`| head`) ends the output; it is not worth a panic.
        if writeln!(stdout, "{line}").is_err() {
            return ExitCode::FAILURE;
        }
    }
    // Anything still buffered is written now, where a failure can still set the status.
    if stdout.flush().is_err() {
        return ExitCode::FAILURE;
    }
    if all_usable {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(windows)]
fn main() -> std::process::ExitCode {
    use std::io::Write;
    // A stderr that cannot be written to is not worth a panic.
    let _ = writeln!(
        std::io::stderr(),
        "pmem2-source: this command inspects Linux file descriptors; it does not run on Windows"
    );
    std::process::ExitCode::from(2)
}

#[cfg(all(test, not(windows)))]
mod tests {
    use super::*;

    #[test]
    fn args() {
        let args = Args::try_parse_from(["pmem2-source"]).expect("no path: the listing");
        assert!(args.paths.is_empty() && !args.json && !args.write);
        let args = Args::try_parse_from(["pmem2-source", "--write", ""]).expect("an empty path");
        assert_eq!(args.paths, [PathBuf::new()]);
        assert!(args.write);
        let args = Args::try_parse_from(["pmem2-source", "a", "--json", "b"]).expect("two paths");
        assert_eq!(args.paths, [PathBuf::from("a"), PathBuf::from("b")]);
        assert!(args.json);
        assert!(Args::try_parse_from(["pmem2-source", "--jsn"]).is_err());
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
