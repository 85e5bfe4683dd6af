//! Differential conformance: every descriptor of the core's fd matrix (`tests/fd_matrix.rs`)
//! through Debian's libpmem2 1.12.1 and through our `libpmem2_source.so`, both loaded with
//! `dlopen(RTLD_NOW | RTLD_LOCAL)` into this process.
//!
//! Each row is one case: a descriptor and an [`Expect`]. `Expect::Same(code)`: both return
//! `code`; on success both sources give the fd back and delete cleanly; on failure both leave
//! `*src` NULL (it is preset to garbage) and libpmem2's fresh message is ours too, in our
//! words (`readlink` for `realpath`). `Expect::Diverges`: one of SPEC's "(ours)" differences,
//! each library's answer spelled out. Where libpmem2 sets no message (stale text stays), the
//! row is a divergence with our exact message.
//!
//! Without the reference library the tests say `skipped` on stderr and pass, except with
//! `CI=true`, where they fail.

#![cfg(not(windows))] // Linux only: scripts/wine-tests.sh has the Windows tests.

#[path = "../../../tests/common/mod.rs"]
mod common;
mod compare;
mod support;

use std::ffi::c_int;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use common::messages::{
    BLOCK, DIRECTORY, NO_ACCESS_MODE, PATH_ONLY, negative_fd_message, not_dax_message,
};
use common::{
    DriverlessDevice, MEM_DEVICES, anonymous_inodes, file_type_bits, is_root, libc_fstat,
    loop_device, make_fifo, memfd, must_open, nofile_soft_limit, open_pty, owned, pipe, raw, skip,
    socket_pair, surely_closed_fd,
};
use compare::{
    Answer, Expect, FD_NOT_SET, Workbench, differ, fails, fails_silently, garbage, ours,
    reference_or_skip, source,
};
use pmem2_source::codes::{
    PMEM2_E_FILE_DESCRIPTOR_NOT_SET, PMEM2_E_INVALID_FILE_HANDLE, PMEM2_E_INVALID_FILE_TYPE,
};

const INVALID_HANDLE: c_int = PMEM2_E_INVALID_FILE_HANDLE;
const INVALID_TYPE: c_int = PMEM2_E_INVALID_FILE_TYPE;
const ENOENT: c_int = -libc::ENOENT;

const WHY_O_PATH: &str = "SPEC §2.4 (ours): O_PATH permits no I/O, so we reject it at the \
                          access-mode check; libpmem2 goes on and judges the file type";
const WHY_MODE_3: &str = "SPEC §2.4 (ours): access mode 3 permits neither reading nor \
                          writing; libpmem2 accepts it";
const WHY_NEGATIVE: &str = "SPEC §2.2 (ours): libpmem2 sets no message for fd < 0";
const WHY_NOT_DAX: &str =
    "SPEC §3 (ours): libpmem2 sets no message for a character device that is not Device DAX";

struct Row {
    name: String,
    fd: RawFd,
    expect: Expect,
}

/// One test's cases.
type Matrix = Workbench<Row>;

impl Matrix {
    /// A case on an open descriptor, kept open until the matrix ran.
    fn case(&mut self, name: impl Into<String>, fd: OwnedFd, expect: Expect) {
        let fd = self.keep(fd);
        self.number(name, fd, expect);
    }

    /// A case on a bare number (negative, closed, beyond the table).
    fn number(&mut self, name: impl Into<String>, fd: RawFd, expect: Expect) {
        self.rows.push(Row {
            name: name.into(),
            fd,
            expect,
        });
    }

    /// One case per row: `path` opened with the row's flags, named `<what> <flags>`.
    fn opens(&mut self, what: &str, path: &Path, rows: impl IntoIterator<Item = (c_int, Expect)>) {
        for (flags, expect) in rows {
            self.case(
                format!("{what} {}", flag_names(flags)),
                must_open(path, flags),
                expect,
            );
        }
    }

    /// Runs every row through both libraries; reports all failing rows at once.
    fn run(self) {
        let failures: Vec<String> = self
            .rows
            .iter()
            .filter_map(|row| {
                differ(&row.name, &row.expect, row.fd, self.reference)
                    .err()
                    .map(|e| format!("{} (fd {}): {e}", row.name, row.fd))
            })
            .collect();
        self.report(failures);
    }
}

/// `open(2)` flags by name: `O_RDWR|O_APPEND`, `O_PATH|O_NOFOLLOW`, `access mode 3`.
fn flag_names(flags: c_int) -> String {
    let mut names = vec![match flags & libc::O_ACCMODE {
        _ if flags & libc::O_PATH != 0 => "O_PATH",
        libc::O_RDONLY => "O_RDONLY",
        libc::O_WRONLY => "O_WRONLY",
        libc::O_RDWR => "O_RDWR",
        _ => "access mode 3",
    }];
    for (bit, name) in [
        (libc::O_APPEND, "O_APPEND"),
        (libc::O_NONBLOCK, "O_NONBLOCK"),
        (libc::O_SYNC, "O_SYNC"),
        (libc::O_DIRECTORY, "O_DIRECTORY"),
        (libc::O_NOFOLLOW, "O_NOFOLLOW"),
    ] {
        if flags & bit == bit {
            names.push(name);
        }
    }
    names.join("|")
}

/// O_PATH: ours rejects it at the access-mode check; libpmem2 answers `reference`.
fn o_path(reference: Answer) -> Expect {
    Expect::Diverges {
        ours: fails(INVALID_HANDLE, PATH_ONLY),
        reference,
        why: WHY_O_PATH,
    }
}

/// Access mode 3: ours rejects it; libpmem2 answers `reference`.
fn mode_3(reference: Answer) -> Expect {
    Expect::Diverges {
        ours: fails(INVALID_HANDLE, NO_ACCESS_MODE),
        reference,
        why: WHY_MODE_3,
    }
}

/// A character device that is not Device DAX: same code, only ours sets a message.
fn not_dax(major: u32, minor: u32, subsystem: &str) -> Expect {
    Expect::Diverges {
        ours: fails(INVALID_TYPE, not_dax_message(major, minor, subsystem)),
        reference: fails_silently(INVALID_TYPE),
        why: WHY_NOT_DAX,
    }
}

#[test]
fn regular_files() {
    let Some(mut m) = Matrix::new("differential-regular") else {
        return;
    };
    let file = m.dir.file("data", b"hello");
    m.opens(
        "regular file",
        &file,
        [
            (libc::O_RDWR, Expect::Same(0)),
            (libc::O_RDONLY, Expect::Same(0)),
            (libc::O_RDWR | libc::O_APPEND, Expect::Same(0)),
            (libc::O_RDONLY | libc::O_NONBLOCK, Expect::Same(0)),
            (libc::O_RDWR | libc::O_SYNC, Expect::Same(0)),
            (libc::O_WRONLY, Expect::Same(INVALID_HANDLE)),
            (
                libc::O_WRONLY | libc::O_APPEND,
                Expect::Same(INVALID_HANDLE),
            ),
            (libc::O_PATH, o_path(source())),
            (libc::O_ACCMODE, mode_3(source())),
        ],
    );

    let unlinked = m.dir.file("unlinked", b"x");
    let fd = must_open(&unlinked, libc::O_RDWR);
    std::fs::remove_file(&unlinked).expect("unlink");
    m.case(
        "dup of an unlinked file",
        fd.try_clone().expect("dup"),
        Expect::Same(0),
    );
    m.case("unlinked file", fd, Expect::Same(0));
    m.case("memfd", memfd(), Expect::Same(0));
    let status = must_open(Path::new("/proc/self/status"), libc::O_RDONLY);
    m.case("/proc/self/status", status, Expect::Same(0));

    let link = m.dir.join("link");
    std::os::unix::fs::symlink(&file, &link).expect("symlink");
    let symlink_type = fails(INVALID_TYPE, "file type 0120000 not supported");
    m.opens(
        "symlink",
        &link,
        [
            (libc::O_RDONLY, Expect::Same(0)),
            (libc::O_PATH | libc::O_NOFOLLOW, o_path(symlink_type)),
        ],
    );
    m.run();
}

#[test]
fn numbers_that_are_not_open_descriptors() {
    let Some(mut m) = Matrix::new("differential-numbers") else {
        return;
    };
    for fd in [-1, -2, i32::MIN] {
        m.number(
            format!("fd {fd}"),
            fd,
            Expect::Diverges {
                ours: fails(INVALID_HANDLE, negative_fd_message(fd)),
                reference: fails_silently(INVALID_HANDLE),
                why: WHY_NEGATIVE,
            },
        );
    }
    m.number(
        "closed fd",
        surely_closed_fd(),
        Expect::Same(INVALID_HANDLE),
    );
    m.number("fd 1000000", 1_000_000, Expect::Same(INVALID_HANDLE));
    m.number("fd i32::MAX", i32::MAX, Expect::Same(INVALID_HANDLE));
    if let Ok(limit) = i32::try_from(nofile_soft_limit()) {
        m.number("fd RLIMIT_NOFILE", limit, Expect::Same(INVALID_HANDLE));
    }
    m.run();
}

#[test]
fn special_files() {
    let Some(mut m) = Matrix::new("differential-special") else {
        return;
    };
    let dir = m.dir.path().to_path_buf();
    let directory = fails(INVALID_TYPE, DIRECTORY);
    m.opens(
        "directory",
        &dir,
        [
            (
                libc::O_RDONLY | libc::O_DIRECTORY,
                Expect::Same(INVALID_TYPE),
            ),
            (libc::O_PATH | libc::O_DIRECTORY, o_path(directory)),
        ],
    );
    let fifo = m.dir.join("fifo");
    make_fifo(&fifo);
    // O_NONBLOCK: an open of a FIFO would otherwise wait for the other end.
    m.opens(
        "FIFO",
        &fifo,
        [
            (libc::O_RDWR | libc::O_NONBLOCK, Expect::Same(INVALID_TYPE)),
            (
                libc::O_RDONLY | libc::O_NONBLOCK,
                Expect::Same(INVALID_TYPE),
            ),
        ],
    );
    let (read_end, write_end) = pipe();
    m.case("pipe read end", read_end, Expect::Same(INVALID_TYPE));
    m.case("pipe write end", write_end, Expect::Same(INVALID_HANDLE));
    for end in socket_pair() {
        m.case("unix socket", end, Expect::Same(INVALID_TYPE));
    }
    for (name, fd) in anonymous_inodes() {
        m.case(name, fd, Expect::Same(INVALID_TYPE));
    }
    let pid = libc::c_long::from(std::process::id());
    // SAFETY: pidfd_open takes two integers, passed as the `long`s syscall(2) reads.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_long) };
    match owned(pidfd as RawFd) {
        // Since Linux 6.9 pidfds live in pidfs: no file type bits, "file type 00".
        Ok(fd) if file_type_bits(raw(&fd)) == libc::S_IFREG => {
            m.case("pidfd", fd, Expect::Same(0));
        }
        Ok(fd) => m.case("pidfd", fd, Expect::Same(INVALID_TYPE)),
        Err(e) => skip("pidfd", &format!("pidfd_open: {e}")),
    }
    m.run();
}

#[test]
fn devices() {
    let Some(mut m) = Matrix::new("differential-devices") else {
        return;
    };
    for (path, flags, minor) in MEM_DEVICES {
        m.opens(path, Path::new(path), [(flags, not_dax(1, minor, "mem"))]);
    }
    m.opens(
        "/dev/null",
        Path::new("/dev/null"),
        [
            (libc::O_WRONLY, Expect::Same(INVALID_HANDLE)),
            (libc::O_PATH, o_path(fails_silently(INVALID_TYPE))),
            (libc::O_ACCMODE, mode_3(fails_silently(INVALID_TYPE))),
        ],
    );

    let pty = open_pty();
    let rdev = libc_fstat(raw(&pty.slave)).st_rdev;
    let entry = format!("/sys/dev/char/{}:{}", libc::major(rdev), libc::minor(rdev));
    assert!(
        std::fs::symlink_metadata(&entry).is_err(),
        "{entry} must not exist"
    );
    // devpts registers no sysfs entry: both -ENOENT, "realpath"/"readlink" "<entry>/subsystem".
    m.case("pty slave", pty.slave, Expect::Same(ENOENT));
    m.case("pty master", pty.master, not_dax(5, 2, "tty"));

    if is_root() {
        let device = loop_device().unwrap_or_else(|e| panic!("no block device: {e}"));
        let fd = must_open(&device, libc::O_RDONLY);
        assert_eq!(file_type_bits(raw(&fd)), libc::S_IFBLK);
        m.case("loop device O_RDONLY", fd, Expect::Same(INVALID_TYPE));
        let fd = must_open(&device, libc::O_PATH);
        m.case("loop device O_PATH", fd, o_path(fails(INVALID_TYPE, BLOCK)));
    } else {
        skip("loop device", "opening /dev/loopN needs root");
    }

    match DriverlessDevice::make(&m.dir, "nodriver") {
        Ok(device) => {
            let entry = device.sysfs_entry();
            assert!(std::fs::symlink_metadata(&entry).is_err(), "{entry} exists");
            let message = format!("realpath \"{entry}/subsystem\": No such file or directory");
            let fd = must_open(&device.path, libc::O_PATH);
            m.case(
                "driverless character device O_PATH",
                fd,
                o_path(fails(ENOENT, message)),
            );
        }
        Err(e) if e.raw_os_error() == Some(libc::EPERM) && !is_root() => {
            skip("driverless character device", "mknod needs root");
        }
        Err(e) => panic!("mknod: {e}"),
    }
    m.run();
}

// ---------------------------------------------------------------------------------------
// Anonymous sources, delete, NULL pointers
// ---------------------------------------------------------------------------------------

#[test]
fn anonymous_sources() {
    let Some(reference) = reference_or_skip("differential anonymous sources") else {
        return;
    };
    let closed = surely_closed_fd();
    for size in [0, 1, 4096, usize::MAX] {
        let mut answers = Vec::new();
        for api in [reference, ours()] {
            let mut src = garbage();
            assert_eq!(
                api.source_from_anon(&mut src, size),
                0,
                "{api:?}: from_anon({size})"
            );
            assert!(!src.is_null(), "{api:?}: from_anon({size}) gave NULL");
            // A different message first, so the one get_fd leaves is known to be fresh.
            let mut other = garbage();
            assert_eq!(api.source_from_fd(&mut other, closed), INVALID_HANDLE);
            assert_eq!(api.message(), "fcntl: Bad file descriptor", "{api:?}");
            let mut fd: c_int = -7;
            // SAFETY: `src` is the live anonymous source of `api` made above.
            let code = unsafe { api.source_get_fd(src, &mut fd) };
            answers.push((code, fd, api.message()));
            // SAFETY: `src` is live and given up here.
            assert_eq!(unsafe { api.source_delete(&mut src) }, 0, "{api:?}: delete");
            assert!(src.is_null(), "{api:?}: delete leaves *src NULL");
        }
        let want = (PMEM2_E_FILE_DESCRIPTOR_NOT_SET, -7, FD_NOT_SET.to_string());
        assert_eq!(answers, [want.clone(), want], "size {size}: libpmem2, ours");
    }
}

#[test]
fn delete_of_a_null_source_is_a_no_op() {
    let Some(reference) = reference_or_skip("differential delete(&NULL)") else {
        return;
    };
    for api in [reference, ours()] {
        let mut src = std::ptr::null_mut();
        for _ in 0..2 {
            // SAFETY: `*src` is NULL, which delete accepts.
            assert_eq!(unsafe { api.source_delete(&mut src) }, 0, "{api:?}");
            assert!(src.is_null(), "{api:?}");
        }
    }
}

/// NULL pointers: ours only, libpmem2 dereferences them and crashes (SPEC §2.1, §4).
#[test]
fn null_pointers_are_einval_in_ours() {
    let api = ours();
    let einval = -libc::EINVAL;
    let file = std::fs::File::open(common::manifest_file()).expect("open Cargo.toml");

    // SAFETY: NULL `src` is allowed by our library.
    let code = unsafe { (api.from_fd)(std::ptr::null_mut(), file.as_raw_fd()) };
    assert_eq!(
        (code, api.message()),
        (einval, "pmem2_source_from_fd: src must not be NULL".into())
    );

    let mut fd: c_int = -7;
    // SAFETY: NULL `src` is allowed by our library; `fd` is valid for writes.
    let code = unsafe { (api.get_fd)(std::ptr::null(), &mut fd) };
    assert_eq!(
        (code, fd, api.message()),
        (
            einval,
            -7,
            "pmem2_source_get_fd: src must not be NULL".into()
        )
    );

    let mut src = garbage();
    assert_eq!(api.source_from_fd(&mut src, file.as_raw_fd()), 0);
    // SAFETY: `src` is a live source of ours; NULL `fd` is allowed by our library.
    let code = unsafe { (api.get_fd)(src, std::ptr::null_mut()) };
    assert_eq!(
        (code, api.message()),
        (einval, "pmem2_source_get_fd: fd must not be NULL".into())
    );
    // SAFETY: `src` is live and given up here.
    assert_eq!(unsafe { api.source_delete(&mut src) }, 0);

    // SAFETY: NULL `src` is allowed by our library.
    let code = unsafe { (api.delete)(std::ptr::null_mut()) };
    assert_eq!(code, 0);
}
