//! The `pmem2-source` command on real paths.

#![cfg(not(windows))] // Linux only: scripts/wine-tests.sh has the Windows tests.

#[path = "../../../tests/common/mod.rs"]
mod common;
mod support;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{TempDir, make_fifo, messages};
use serde_json::{Value, json};
use support::{
    Inotify, device, error_of, json_lines, page_size, page_size_text, run, run_with_closed_pipe,
    stderr_text, stdout_lines,
};

const DIRECTORY: &str = "cannot set fd to directory in pmem2_source_from_fd";
const NULL_NOT_DAX: &str = "character device 1:3 is not Device DAX: its subsystem is \"mem\"";
const NO_SUCH_PATH: &str = "/nonexistent/pmem2-source-test";

/// `PATH: regular file on device M:m, inode N (opened read-only)`, for the file at `path`.
fn regular_prefix(path: &str) -> String {
    regular_prefix_opened(path, "read-only")
}

/// `PATH: regular file on device M:m, inode N (opened ACCESS)`.
fn regular_prefix_opened(path: &str, access: &str) -> String {
    let meta = std::fs::metadata(path).expect("stat");
    format!(
        "{path}: regular file on device {}, inode {} (opened {access})",
        device(meta.dev()),
        meta.ino()
    )
}

#[test]
fn regular_file_shows_size_and_alignment() {
    let dir = TempDir::new("cli-size");
    let file = dir.file("data", &[7; 6483]);
    let path = file.to_str().expect("utf-8 temp path");
    let output = run(&[path]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        stdout_lines(&output),
        [format!(
            "{}, size 6.3 KiB (6483 bytes), alignment {}",
            regular_prefix(path),
            page_size_text()
        )]
    );
}

#[test]
fn exact_sizes_have_no_decimal() {
    let dir = TempDir::new("cli-exact");
    let empty = dir.file("empty", b"");
    let one = dir.file("one", b"x");
    let mib = dir.join("mib");
    std::fs::File::create(&mib)
        .and_then(|file| file.set_len(3 << 20))
        .expect("3 MiB sparse file");
    let paths = [&empty, &one, &mib].map(|path| path.to_str().expect("utf-8").to_owned());
    let output = run(&paths);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let alignment = page_size_text();
    assert_eq!(
        stdout_lines(&output),
        [
            format!(
                "{}, size 0 B (0 bytes), alignment {alignment}",
                regular_prefix(&paths[0])
            ),
            format!(
                "{}, size 1 B (1 byte), alignment {alignment}",
                regular_prefix(&paths[1])
            ),
            format!(
                "{}, size 3 MiB (3145728 bytes), alignment {alignment}",
                regular_prefix(&paths[2])
            ),
        ]
    );
}

#[test]
fn one_line_per_path_and_failure_status() {
    let output = run(&["Cargo.toml", "/dev/null", "/tmp", NO_SUCH_PATH]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let lines = stdout_lines(&output);
    assert_eq!(lines.len(), 4, "{lines:?}");
    let size = std::fs::metadata("Cargo.toml").expect("stat").len();
    assert!(
        lines[0].starts_with(&format!("{}, size ", regular_prefix("Cargo.toml"))),
        "{lines:?}"
    );
    assert!(
        lines[0].ends_with(&format!(" ({size} bytes), alignment {}", page_size_text())),
        "{lines:?}"
    );
    assert_eq!(
        lines[1],
        format!("/dev/null: PMEM2_E_INVALID_FILE_TYPE (-100005): {NULL_NOT_DAX}")
    );
    // A directory is judged from its stat, never opened.
    assert_eq!(
        lines[2],
        format!("/tmp: PMEM2_E_INVALID_FILE_TYPE (-100005): {DIRECTORY}")
    );
    assert_eq!(
        lines[3],
        format!("{NO_SUCH_PATH}: ENOENT (-2): open: No such file or directory")
    );
    assert!(output.stderr.is_empty(), "{}", stderr_text(&output));
}

#[test]
fn json_lines_field_by_field() {
    let dir = TempDir::new("cli-json");
    let file = dir.file("data", &[0; 5000]);
    let path = file.to_str().expect("utf-8 temp path");
    let meta = std::fs::metadata(path).expect("stat");
    let output = run(&["--json", path, "/tmp", NO_SUCH_PATH, "/dev/null"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(output.stderr.is_empty(), "{}", stderr_text(&output));
    let objects = json_lines(&output);
    assert_eq!(objects.len(), 4, "{objects:?}");

    let usable = &objects[0];
    assert_eq!(usable["path"], path);
    assert_eq!(usable["usable"], true);
    assert_eq!(usable["file_type"], "regular");
    assert_eq!(usable["device"], device(meta.dev()));
    assert_eq!(usable["inode"], meta.ino());
    assert_eq!(usable["access"], "read-only");
    assert_eq!(usable["size"], 5000);
    assert_eq!(usable["alignment"], page_size());
    // A temp file is on no NVDIMM region: no NUMA node, and that is no error.
    assert_eq!(usable["numa_node"], Value::Null);
    let keys: Vec<&str> = usable
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut want = [
        "path",
        "usable",
        "file_type",
        "device",
        "inode",
        "access",
        "size",
        "alignment",
        "numa_node",
    ];
    want.sort_unstable();
    assert_eq!(keys, want, "no errors, path_bytes or dax_device here");

    let failures = [
        ("/tmp", -100_005, "PMEM2_E_INVALID_FILE_TYPE", DIRECTORY),
        (
            NO_SUCH_PATH,
            -2,
            "ENOENT",
            "open: No such file or directory",
        ),
        (
            "/dev/null",
            -100_005,
            "PMEM2_E_INVALID_FILE_TYPE",
            NULL_NOT_DAX,
        ),
    ];
    for (object, (path, code, name, message)) in objects[1..].iter().zip(failures) {
        assert_eq!(object["path"], path);
        assert_eq!(object["usable"], false);
        assert_eq!(
            error_of(&object["error"]),
            (code, name, message),
            "{object}"
        );
        assert_eq!(object.as_object().expect("object").len(), 3, "{object}");
    }
}

#[test]
fn json_keeps_odd_paths() {
    let dir = TempDir::new("cli-odd");
    let quoted = dir.file("say \"hi\"\\\n\t", b"hello");
    let raw = dir.path().join(OsStr::from_bytes(b"caf\xe9"));
    std::fs::write(&raw, b"latin-1").expect("write non-UTF-8 name");
    let output = run(&[OsStr::new("--json"), quoted.as_os_str(), raw.as_os_str()]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let objects = json_lines(&output);
    assert_eq!(objects[0]["path"], quoted.to_str().expect("utf-8"));
    assert_eq!(objects[0]["size"], 5);
    assert!(objects[0].get("path_bytes").is_none());
    let lossy = raw.to_string_lossy();
    assert!(lossy.ends_with("caf\u{fffd}"), "{lossy}");
    assert_eq!(objects[1]["path"], json!(lossy));
    assert_eq!(objects[1]["path_bytes"], json!(raw.as_os_str().as_bytes()));
    assert_eq!(objects[1]["size"], 7);
}

#[test]
fn fifo_does_not_block() {
    let dir = TempDir::new("cli-fifo");
    let fifo = dir.join("fifo");
    make_fifo(&fifo);
    let fifo_arg = fifo.to_str().expect("utf-8 temp path");
    let output = run(&[fifo_arg]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stdout_lines(&output),
        [format!(
            "{fifo_arg}: PMEM2_E_INVALID_FILE_TYPE (-100005): file type 010000 not supported"
        )]
    );
}

/// With no PATH the command lists the machine's Device DAX devices; where there are none
/// (every CI machine), it says so and exits 0. `tests/fake_devdax.rs` stages some.
#[test]
fn no_path_lists_the_device_dax_devices() {
    let bus = Path::new("/sys/bus/dax/devices");
    let entries = std::fs::read_dir(bus).map(|dir| dir.count());
    let text = run::<&str>(&[]);
    let json = run(&["--json"]);
    match entries {
        Ok(0) | Err(_) => {
            let why = if entries.is_ok() {
                "is empty"
            } else {
                "does not exist"
            };
            let note = format!("no Device DAX devices found (/sys/bus/dax/devices {why})");
            assert_eq!(text.status.code(), Some(0), "{text:?}");
            assert_eq!(stdout_lines(&text), [note.as_str()]);
            assert!(text.stderr.is_empty(), "{}", stderr_text(&text));
            assert_eq!(json.status.code(), Some(0), "{json:?}");
            assert!(json.stdout.is_empty(), "{json:?}");
            assert_eq!(stderr_text(&json), format!("pmem2-source: {note}\n"));
        }
        Ok(count) => {
            assert_eq!(stdout_lines(&text).len(), count, "{text:?}");
            let objects = json_lines(&json);
            assert_eq!(objects.len(), count, "{json:?}");
            assert!(
                objects
                    .iter()
                    .all(|object| object["dax_device"].is_string())
            );
        }
    }
}

#[test]
fn help_and_version() {
    let help = run(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("Usage: pmem2-source [OPTIONS] [PATH]..."),
        "{text}"
    );
    for documented in [
        "--json",
        "\"errors\"",
        "path_bytes",
        "/sys/bus/dax/devices",
        "Exit status: 0 if every PATH (or listed device) is usable",
        // Item by item: what is opened and how, and the escaping of the text output.
        "--write",
        "(opened read-only)",
        "without ever being opened",
        "/proc/self/fd/N",
        "ESC is \\x1b",
        "or the output could not be written",
    ] {
        assert!(text.contains(documented), "{documented}: {text}");
    }

    let version = run(&["--version"]);
    assert_eq!(version.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("pmem2-source {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn unknown_option_is_a_usage_error() {
    let output = run(&["--jsn", "Cargo.toml"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    assert!(stderr_text(&output).contains("unexpected argument '--jsn'"));
}

/// Opening a regular file read-write fires `IN_CLOSE_WRITE` (and breaks leases, and copies it
/// up on overlayfs): by default it is opened read-only; `--write` opens it read-write.
#[test]
fn regular_files_are_opened_read_only_unless_write() {
    let dir = TempDir::new("cli-read-only");
    let file = dir.file("data", &[1; 100]);
    let path = file.to_str().expect("utf-8 temp path");
    let watch = Inotify::new();
    watch.watch(
        &file,
        libc::IN_OPEN | libc::IN_CLOSE_WRITE | libc::IN_CLOSE_NOWRITE,
    );
    let tail = format!(", size 100 B (100 bytes), alignment {}", page_size_text());

    let output = run(&[path]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        stdout_lines(&output),
        [format!(
            "{}{tail}",
            regular_prefix_opened(path, "read-only")
        )]
    );
    assert_eq!(
        watch.events(),
        [libc::IN_OPEN, libc::IN_CLOSE_NOWRITE],
        "one read-only open"
    );

    let output = run(&["--write", "--json", path]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(json_lines(&output)[0]["access"], "read-write");
    assert_eq!(watch.events(), [libc::IN_OPEN, libc::IN_CLOSE_WRITE]);
    let output = run(&["--write", path]);
    assert_eq!(
        stdout_lines(&output),
        [format!(
            "{}{tail}",
            regular_prefix_opened(path, "read-write")
        )]
    );
}

/// What `pmem2_source_from_fd` refuses is judged from `stat` (and a character device from its
/// sysfs link) and never opened: no `IN_OPEN` on a FIFO, a socket, a directory, a character
/// device that is not Device DAX, or a block device, and the same codes and messages as
/// `from_fd` (which the old open-first code did not give a socket: it cannot be opened).
#[test]
fn nothing_refused_is_opened() {
    let dir = TempDir::new("cli-never-opened");
    let fifo = dir.join("fifo");
    make_fifo(&fifo);
    let socket = dir.join("socket");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    let directory = dir.join("directory");
    std::fs::create_dir(&directory).expect("mkdir");
    let mut cases = vec![
        (fifo, messages::FIFO.to_owned()),
        (socket, messages::SOCKET.to_owned()),
        (directory, messages::DIRECTORY.to_owned()),
    ];
    // Device nodes of our own (the host's /dev/zero is opened by others): /dev/zero's 1:5,
    // and loop's 7:0. Only root can make them.
    let zero_node = dir.join("zero");
    let block_node = dir.join("block");
    let made = mknod(&zero_node, libc::S_IFCHR, libc::makedev(1, 5))
        .and_then(|()| mknod(&block_node, libc::S_IFBLK, libc::makedev(7, 0)));
    match made {
        Ok(()) => {
            // The message from_fd gives /dev/zero (1:5): its sysfs subsystem is mem (or, with
            // no sysfs, the readlink failure).
            let zero = std::fs::File::open("/dev/zero").expect("open /dev/zero");
            let message = pmem2_source_std::Source::try_from(&zero)
                .expect_err("/dev/zero is not Device DAX")
                .to_string();
            cases.push((zero_node, message));
            cases.push((block_node, messages::BLOCK.to_owned()));
        }
        Err(err) => common::skip("nothing_refused_is_opened (device nodes)", &err.to_string()),
    }
    let watch = Inotify::new();
    for (path, _) in &cases {
        watch.watch(path, libc::IN_OPEN);
    }
    let paths: Vec<&str> = cases
        .iter()
        .map(|(path, _)| path.to_str().expect("utf-8 temp path"))
        .collect();
    let output = run(&paths);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let want: Vec<String> = cases
        .iter()
        .zip(&paths)
        .map(|((_, message), path)| {
            format!("{path}: PMEM2_E_INVALID_FILE_TYPE (-100005): {message}")
        })
        .collect();
    assert_eq!(stdout_lines(&output), want);
    assert_eq!(watch.events(), [] as [u32; 0], "nothing may be opened");
}

/// `mknod(path, kind | 0600, rdev)`.
fn mknod(path: &Path, kind: libc::mode_t, rdev: libc::dev_t) -> std::io::Result<()> {
    let c = common::c_path(path);
    // SAFETY: `c` is a live NUL-terminated path.
    let ret = unsafe { libc::mknod(c.as_ptr(), kind | 0o600, rdev) };
    if ret == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// What is judged is what is opened: a path that a thread keeps flipping between a regular
/// file and a FIFO (by renaming symbolic links over it) while the command checks it over and
/// over is either the regular file, opened read-only, or the FIFO, refused, and the FIFO is
/// never opened (no `IN_OPEN`; its writer, blocked in `open`, stays blocked).
#[test]
fn a_path_swapped_between_judging_and_opening_never_opens_what_was_refused() {
    const RUNS: usize = 100;
    const PATHS_PER_RUN: usize = 50;
    const MAX_FLIPS: usize = 50_000_000;
    let dir = TempDir::new("cli-race");
    let file = dir.file("file", b"regular");
    let fifo = dir.join("fifo");
    make_fifo(&fifo);
    let path = dir.join("path");
    std::os::unix::fs::symlink("file", &path).expect("symlink");
    let watch = Inotify::new();
    watch.watch(&fifo, libc::IN_OPEN);

    // The writer: released only by an open for reading.
    let released_by_the_test = Arc::new(AtomicBool::new(false));
    let writer = {
        let (fifo, by_test) = (fifo.clone(), Arc::clone(&released_by_the_test));
        std::thread::spawn(move || {
            let opened = std::fs::OpenOptions::new().write(true).open(&fifo);
            (opened.is_ok(), by_test.load(Ordering::SeqCst))
        })
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (dir, path, stop) = (dir.path().to_owned(), path.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut flips = 0;
            while flips < MAX_FLIPS && !stop.load(Ordering::Relaxed) {
                let (target, link) = if flips % 2 == 0 {
                    ("fifo", dir.join("to-fifo"))
                } else {
                    ("file", dir.join("to-file"))
                };
                let _ = std::fs::remove_file(&link);
                std::os::unix::fs::symlink(target, &link).expect("symlink");
                std::fs::rename(&link, &path).expect("rename over the path");
                flips += 1;
            }
            flips
        })
    };

    let path_arg = path.to_str().expect("utf-8 temp path");
    let args = vec![path_arg; PATHS_PER_RUN];
    let meta = std::fs::metadata(&file).expect("stat");
    let regular = format!(
        "{path_arg}: regular file on device {}, inode {} (opened read-only), size 7 B (7 bytes), \
         alignment {}",
        device(meta.dev()),
        meta.ino(),
        page_size_text()
    );
    let refused = format!(
        "{path_arg}: PMEM2_E_INVALID_FILE_TYPE (-100005): {}",
        messages::FIFO
    );
    let (mut unexpected, mut seen_regular, mut seen_refused) = (Vec::new(), 0, 0);
    for _ in 0..RUNS {
        let output = run(&args);
        let lines = stdout_lines(&output);
        assert_eq!(lines.len(), PATHS_PER_RUN, "{output:?}");
        for line in lines {
            if line == regular {
                seen_regular += 1;
            } else if line == refused {
                seen_refused += 1;
            } else {
                unexpected.push(line);
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let flips = flipper.join().expect("flipper");
    let opens = watch.events();

    // Release the writer (and only now) to end its thread.
    released_by_the_test.store(true, Ordering::SeqCst);
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .expect("open the FIFO to release the writer");
    let (writer_opened, released_by_test) = writer.join().expect("writer");
    drop(reader);

    // How the race went (which side each check saw depends on timing, so it is not asserted).
    eprintln!("{flips} flips; {seen_regular} regular file, {seen_refused} FIFO");
    assert!(flips > 0, "the path was never flipped");
    assert_eq!(
        unexpected,
        [] as [String; 0],
        "other lines than the two expected"
    );
    assert_eq!(opens, [] as [u32; 0], "the FIFO was opened ({flips} flips)");
    assert!(
        writer_opened && released_by_test,
        "the writer was released before the end"
    );
}

/// Paths are escaped in the text output: a newline cannot forge a second report line, and
/// an ESC sequence or a byte that is not UTF-8 does not reach the terminal.
#[test]
fn labels_are_escaped() {
    let dir = TempDir::new("cli-escape");
    let forged = b"x\ndax0.0: Device DAX 251:0 (opened read-only), size 1 GiB \
                   (1073741824 bytes), alignment 2 MiB (2097152 bytes)\x1b[2J\xff\\n\t\r";
    let file = dir.path().join(OsStr::from_bytes(forged));
    std::fs::write(&file, b"abc").expect("write");
    let missing = dir
        .path()
        .join(OsStr::from_bytes(b"gone\n\x1b]0;title\x07\xc2\x9b"));
    let output = run(&[file.as_os_str(), missing.as_os_str()]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let dir_text = dir.path().to_str().expect("utf-8 temp path");
    let meta = std::fs::metadata(&file).expect("stat");
    assert_eq!(
        stdout_lines(&output),
        [
            format!(
                "{dir_text}/x\\ndax0.0: Device DAX 251:0 (opened read-only), size 1 GiB \
                 (1073741824 bytes), alignment 2 MiB (2097152 bytes)\\x1b[2J\\xff\\\\n\\t\\r: \
                 regular file on device {}, inode {} (opened read-only), size 3 B (3 bytes), \
                 alignment {}",
                device(meta.dev()),
                meta.ino(),
                page_size_text()
            ),
            format!(
                "{dir_text}/gone\\n\\x1b]0;title\\x07\\xc2\\x9b: ENOENT (-2): open: No such file \
                 or directory"
            ),
        ]
    );
    // JSON keeps the exact text, in JSON's own escapes (and the bytes of a path that is
    // not UTF-8).
    let json = run(&[OsStr::new("--json"), missing.as_os_str(), file.as_os_str()]);
    let objects = json_lines(&json);
    assert_eq!(objects.len(), 2, "{json:?}");
    assert_eq!(objects[0]["path"], missing.to_str().expect("UTF-8"));
    assert!(objects[0].get("path_bytes").is_none(), "{}", objects[0]);
    assert_eq!(objects[1]["path"], json!(file.to_string_lossy()));
    assert_eq!(objects[1]["path_bytes"], json!(file.as_os_str().as_bytes()));
}

/// An empty path is a missing path, not a usage error.
#[test]
fn empty_path_is_enoent() {
    let output = run(&["", "--json"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let objects = json_lines(&output);
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0]["path"], "");
    assert_eq!(
        error_of(&objects[0]["error"]),
        (-2, "ENOENT", "open: No such file or directory")
    );
    let output = run(&[""]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(
        stdout_lines(&output),
        [": ENOENT (-2): open: No such file or directory"]
    );
    assert!(output.stderr.is_empty(), "{}", stderr_text(&output));
}

/// A closed stdout ends the output quietly: exit status 1 (the output was not written), no
/// panic message.
#[test]
fn closed_stdout_ends_quietly() {
    for args in [
        &["Cargo.toml", "Cargo.toml"][..],
        &["--json", "Cargo.toml"],
        &["/dev/null"],
    ] {
        let output = run_with_closed_pipe(1, args);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {output:?}");
        assert!(
            output.stderr.is_empty(),
            "{args:?}: {}",
            stderr_text(&output)
        );
    }
    // --help still exits 0, and a usage error 2.
    let output = run_with_closed_pipe(1, &["--help"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(output.stderr.is_empty(), "{}", stderr_text(&output));
    let output = run_with_closed_pipe(2, &["--jsn"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
}
