//! `pmem2-source PATH…`: for each path, can it be a libpmem2 data source, and if not, why?
//!
//! Opens each path (read-write, falling back to read-only), creates a source from the
//! descriptor exactly as `pmem2_source_from_fd` would, and prints one line per path. The exit
//! status is 0 only if every path is usable.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use pmem2_source_std::{Errno, Error, FileType, Source};

const AFTER_HELP: &str = "\
Output, one line per PATH:
  PATH: regular file on device MAJ:MIN, inode N (opened read-write)
  PATH: Device DAX MAJ:MIN (opened read-only)
  PATH: NAME (CODE): MESSAGE
where NAME and CODE are libpmem2's error code (PMEM2_E_INVALID_FILE_TYPE (-100005), …)
or -errno (ENOENT (-2), …), and MESSAGE says what was wrong.

Exit status: 0 if every PATH is usable, 1 if any is not, 2 on a usage error.";

/// Tells whether each PATH can be a persistent-memory data source (libpmem2's
/// pmem2_source_from_fd): a regular file or a Device DAX, and if not, why not.
#[derive(Parser, Debug)]
#[command(name = "pmem2-source", version, about, after_help = AFTER_HELP)]
struct Args {
    /// Files or devices to check; each is opened read-write, or read-only if that fails.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

/// How a path was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    ReadWrite,
    ReadOnly,
}

/// What happened to one path.
enum Outcome {
    Usable { description: String, access: Access },
    OpenFailed { errno: Errno },
    Rejected(Error),
}

fn open(path: &Path) -> io::Result<(File, Access)> {
    let mut options = OpenOptions::new();
    // Never block on a FIFO, never become the controlling terminal of a tty.
    options
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    match options.clone().write(true).open(path) {
        Ok(file) => Ok((file, Access::ReadWrite)),
        Err(_) => options.open(path).map(|file| (file, Access::ReadOnly)),
    }
}

fn inspect(path: &Path) -> Outcome {
    let (file, access) = match open(path) {
        Ok(opened) => opened,
        Err(err) => {
            let errno = Errno::from_raw(err.raw_os_error().unwrap_or(libc::EINVAL));
            return Outcome::OpenFailed { errno };
        }
    };
    match Source::try_from(&file) {
        Ok(source) => Outcome::Usable {
            description: describe(&source),
            access,
        },
        Err(err) => Outcome::Rejected(err),
    }
}

fn describe(source: &Source<'_>) -> String {
    let unknown = || "?".to_string();
    match source.file_type() {
        Some(FileType::DeviceDax) => {
            let rdev = source.rdev().map_or_else(unknown, |dev| dev.to_string());
            format!("Device DAX {rdev}")
        }
        Some(FileType::Regular) => {
            let dev = source.dev().map_or_else(unknown, |dev| dev.to_string());
            let ino = source.ino().map_or_else(unknown, |ino| ino.to_string());
            format!("regular file on device {dev}, inode {ino}")
        }
        None => "source of unknown type".to_string(),
    }
}

fn line(path: &Path, outcome: &Outcome) -> String {
    let path = path.display();
    match outcome {
        Outcome::Usable {
            description,
            access,
        } => {
            let access = match access {
                Access::ReadWrite => "read-write",
                Access::ReadOnly => "read-only",
            };
            format!("{path}: {description} (opened {access})")
        }
        Outcome::OpenFailed { errno } => {
            let name = errno.name().unwrap_or("unknown error");
            format!("{path}: {name} ({}): open: {errno}", -errno.raw())
        }
        Outcome::Rejected(err) => format!("{path}: {} ({}): {err}", err.name(), err.code()),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut stdout = io::stdout().lock();
    let mut all_usable = true;
    for path in &args.paths {
        let outcome = inspect(path);
        all_usable &= matches!(outcome, Outcome::Usable { .. });
        // A closed pipe (`| head`) ends the output; it is not worth a panic.
        if writeln!(stdout, "{}", line(path, &outcome)).is_err() {
            return ExitCode::FAILURE;
        }
    }
    if all_usable {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_need_a_path() {
        assert!(Args::try_parse_from(["pmem2-source"]).is_err());
        let args = Args::try_parse_from(["pmem2-source", "a", "b"]).expect("two paths");
        assert_eq!(args.paths, [PathBuf::from("a"), PathBuf::from("b")]);
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }

    #[test]
    fn open_failure_line() {
        let outcome = Outcome::OpenFailed {
            errno: Errno::ENOENT,
        };
        assert_eq!(
            line(Path::new("/x"), &outcome),
            "/x: ENOENT (-2): open: No such file or directory"
        );
        let outcome = Outcome::OpenFailed {
            errno: Errno::from_raw(4000),
        };
        assert_eq!(
            line(Path::new("/x"), &outcome),
            "/x: unknown error (-4000): open: Unknown error 4000"
        );
    }
}
