//! A source's descriptor number closed and reused for another file, on the real kernel: on
//! ext4 (a loop-mounted image), where the new file also gets the old one's inode number, and
//! on tmpfs, where it does not. The queries must refuse to answer for the other file
//! (`PMEM2_E_INVALID_FILE_HANDLE`), and must go on answering for the same file changed since.
//!
//! `harness = false`: `main` runs single-threaded, which `unshare(CLONE_NEWNS)` for the whole
//! process wants; the file systems are mounted in that private namespace, so nothing is seen
//! by the host and everything goes away with the process. Needs root, `mkfs.ext4` and a loop
//! device; without them the test says `skipped` and passes, except in CI (`CI=true`), where it
//! fails.
//!
//! Output: one line per case, `ok - <name>` or `FAIL - <name>: <details>`; exit status 1 if
//! any failed.

#![cfg_attr(windows, no_main)]
#![cfg(not(windows))]

mod common;

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Duration;

use common::fake_sysfs::{Report, cannot_run, enter_or_exit, on_tmpfs_at};
use common::{TempDir, libc_fstat};
use pmem2_source::codes::PMEM2_E_INVALID_FILE_HANDLE;
use pmem2_source::{Error, Source};

const CONTENTS: &[u8] = b"the file the source was made from";
const OTHER: &[u8] = b"another file, which took over the descriptor number";

/// Creates `path` (it must not exist), writes `contents`, and returns it open read-write.
fn create(path: &Path, contents: &[u8]) -> Result<OwnedFd, String> {
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| format!("create {}: {e}", path.display()))?;
    std::io::Write::write_all(&mut file, contents).map_err(|e| format!("write: {e}"))?;
    Ok(OwnedFd::from(file))
}

/// The answers of every query that reads the file, each as the code and message or the value.
fn answers(source: &Source) -> [Result<String, (i32, String)>; 3] {
    let fail = |err: Error| (err.code(), err.to_string());
    let mut buf = [0u8; 7];
    [
        source.size().map(|size| size.to_string()).map_err(fail),
        source
            .pread_mcsafe(&mut buf, 0)
            .map(|()| String::from_utf8_lossy(&buf).into_owned())
            .map_err(fail),
        source
            .pwrite_mcsafe(b"WRITTEN", 0)
            .map(|()| "written".to_owned())
            .map_err(fail),
    ]
}

/// Whether the new file was given the old one's inode number.
#[derive(Clone, Copy, PartialEq, Debug)]
enum InodeNumber {
    Reused,
    New,
}

/// Makes a source of a new file in `dir`, closes the descriptor, deletes the file, waits
/// `pause`, creates another file at the same path under the same descriptor number, and checks
/// that every query refuses the other file, which keeps its contents.
fn recreated(path: &Path, pause: Duration, inode: InodeNumber) -> Result<(), String> {
    let first = create(path, CONTENTS)?;
    let (fd, ino) = (first.as_raw_fd(), libc_fstat(first.as_raw_fd()).st_ino);
    let source = Source::from_fd(fd).map_err(|e| format!("from_fd: {e}"))?;
    drop(first);
    fs::remove_file(path).map_err(|e| format!("unlink: {e}"))?;
    std::thread::sleep(pause);
    let second = create(path, OTHER)?;
    if second.as_raw_fd() != fd {
        return Err(format!(
            "the new file got fd {}, not {fd}",
            second.as_raw_fd()
        ));
    }
    let reused = libc_fstat(fd).st_ino == ino;
    let observed = if reused {
        InodeNumber::Reused
    } else {
        InodeNumber::New
    };
    if observed != inode {
        return Err(format!(
            "expected the inode number {inode:?}, it was {observed:?} ({ino})"
        ));
    }
    let message = match inode {
        InodeNumber::Reused => format!(
            "fd {fd} now refers to a different file than when the source was created (a file \
             with the same device and inode number, created after the source was: the \
             descriptor was closed and its number reused, and the inode number too)"
        ),
        InodeNumber::New => format!(
            "fd {fd} now refers to a different file than when the source was created (its \
             device or inode changed: the descriptor was closed and its number reused)"
        ),
    };
    let refused = Err((PMEM2_E_INVALID_FILE_HANDLE, message));
    let got = answers(&source);
    if got != [refused.clone(), refused.clone(), refused] {
        return Err(format!("size, pread, pwrite answered {got:?}"));
    }
    let now = fs::read(path).map_err(|e| format!("read back: {e}"))?;
    if now != OTHER {
        return Err(format!(
            "the other file now holds {:?}",
            String::from_utf8_lossy(&now)
        ));
    }
    Ok(())
}

/// The same file, changed after the source was made (its `st_ctime` moves): written through
/// another descriptor, made longer, its mode changed. Every query still answers for it.
fn changed_since(path: &Path) -> Result<(), String> {
    let fd = create(path, CONTENTS)?;
    let source = Source::from_fd(fd.as_raw_fd()).map_err(|e| format!("from_fd: {e}"))?;
    let before = libc_fstat(fd.as_raw_fd());
    std::thread::sleep(Duration::from_millis(20));
    let longer = [CONTENTS, b" and more"].concat();
    fs::write(path, &longer).map_err(|e| format!("write: {e}"))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o640))
        .map_err(|e| format!("chmod: {e}"))?;
    let after = libc_fstat(fd.as_raw_fd());
    if (after.st_ctime, after.st_ctime_nsec) == (before.st_ctime, before.st_ctime_nsec) {
        return Err("st_ctime did not move: the case tests nothing".to_owned());
    }
    let got = answers(&source);
    let expected = [
        Ok(longer.len().to_string()),
        Ok("the fil".to_owned()),
        Ok("written".to_owned()),
    ];
    if got != expected {
        return Err(format!("size, pread, pwrite answered {got:?}"));
    }
    Ok(())
}

/// Every case on the file system at `dir`, each on a file of its own.
fn cases(dir: &Path, inode: InodeNumber) -> Vec<(&'static str, Result<(), String>)> {
    vec![
        (
            "deleted and recreated at once",
            recreated(&dir.join("at-once"), Duration::ZERO, inode),
        ),
        (
            "deleted and recreated 20 ms later",
            recreated(&dir.join("later"), Duration::from_millis(20), inode),
        ),
        (
            "the same file, changed since",
            changed_since(&dir.join("changed")),
        ),
    ]
}

/// Runs `command`, or says how it failed.
fn run(command: &mut Command) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?}: {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// An ext4 image of 16 MiB under `scratch`, loop-mounted at `scratch/ext4`.
fn mount_ext4(scratch: &TempDir) -> Result<std::path::PathBuf, String> {
    let image = scratch.join("ext4.img");
    let file = fs::File::create(&image).map_err(|e| format!("create image: {e}"))?;
    file.set_len(16 << 20)
        .map_err(|e| format!("size image: {e}"))?;
    run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image))?;
    let mount_point = scratch.join("ext4");
    fs::create_dir(&mount_point).map_err(|e| format!("mkdir: {e}"))?;
    run(Command::new("mount")
        .args(["-t", "ext4", "-o", "loop"])
        .arg(&image)
        .arg(&mount_point))?;
    Ok(mount_point)
}

fn main() -> ExitCode {
    if let Err(status) = enter_or_exit() {
        return status;
    }
    let scratch = TempDir::new("fd-reuse");
    let ext4 = match mount_ext4(&scratch) {
        Ok(mount_point) => mount_point,
        Err(why) => return cannot_run(&format!("no ext4 file system to test on: {why}")),
    };
    let mut report = Report::default();
    for (name, outcome) in cases(&ext4, InodeNumber::Reused) {
        report.record(&format!("ext4: {name}"), outcome);
    }
    report.record("ext4: unmounted", run(Command::new("umount").arg(&ext4)));

    let tmpfs = scratch.join("tmpfs");
    fs::create_dir(&tmpfs).expect("mkdir tmpfs");
    let target = CString::new(tmpfs.as_os_str().as_bytes()).expect("no NUL in the path");
    let mut on_tmpfs = Vec::new();
    let mounted = on_tmpfs_at(&target, false, &|_| Ok(()), || {
        on_tmpfs = cases(&tmpfs, InodeNumber::New);
        Ok(())
    });
    for (name, outcome) in on_tmpfs {
        report.record(&format!("tmpfs: {name}"), outcome);
    }
    report.record("tmpfs: mounted and unmounted", mounted);
    report.finish()
}
