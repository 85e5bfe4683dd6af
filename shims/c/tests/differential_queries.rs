//! Differential conformance of what a source answers — `pmem2_source_size`, `_alignment`,
//! `_numa_node`, `_device_id`, `_device_usc`, `_pread_mcsafe`, `_pwrite_mcsafe` — on regular
//! files (a read-write and a read-only descriptor, a memfd, a procfs file, an empty file, a
//! file that changes size, a descriptor closed or reused after the source was made) and on
//! anonymous sources, through Debian's libpmem2 1.12.1 and through our `libpmem2_source.so`,
//! both loaded with `dlopen` into this process (see `compare/queries.rs`).
//!
//! `Expect::Same`: both give the same code, leave the same out-value or buffer, and on failure
//! set the same fresh message. `Expect::Diverges`: a deliberate difference, each library's
//! answer spelled out. This machine has no NVDIMM, so libpmem2's libndctl finds no region
//! behind any file: NUMA node, device id and unsafe shutdown count fail in both.
//!
//! Without the reference library the tests say `skipped` on stderr and pass, except with
//! `CI=true`, where they fail.

#![cfg(not(windows))] // Linux only: scripts/wine-tests.sh has the Windows tests.

#[path = "../../../tests/common/mod.rs"]
mod common;
mod compare;
mod support;

use std::ffi::c_int;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

use common::{TempDir, memfd, must_open, surely_closed_fd};
use compare::queries::{
    Case, Direction, Expect, ID_CAPACITY, NullOut, Origin, Query, Row, Value, bytes, contents,
    fails, id_untouched, number, ok, pread, pwrite, run_cases, unread, untouched, without_nvdimm,
};
use compare::{Workbench, garbage, ours, reference_or_skip};
use pmem2_source::codes::{
    PMEM2_E_INVALID_FILE_HANDLE, PMEM2_E_LENGTH_OUT_OF_RANGE, PMEM2_E_NOSUPP,
    PMEM2_E_SOURCE_TYPE_NOT_SUPPORTED,
};

const OUT_OF_RANGE: c_int = PMEM2_E_LENGTH_OUT_OF_RANGE;
const NOSUPP: c_int = PMEM2_E_NOSUPP;

const ANON_NUMA: &str = "Anonymous sources are not bound to numa nodes.";
const ANON_ID: &str = "Anonymous source does not have device id";
const ANON_USC: &str = "Anonymous source does not support unsafe shutdown count";
const ANON_IO: &str = "operation doesn't support provided source type, only sources created \
                       from file descriptor or file handle are supported";
const FSTAT_CLOSED: &str = "fstat: Bad file descriptor";

const WHY_WRITE_WORD: &str = "SPEC §5 (ours): a write's message says \"write\"; libpmem2's \
                              says \"read\" for both";
const WHY_PAST_END: &str = "SPEC §5 (ours): an offset past the end is rejected; libpmem2's \
                            size - offset underflows, so it reads nothing (or writes past the \
                            end, growing the file) and returns 0";
const WHY_REUSED: &str = "SPEC §5 (ours): the descriptor number now refers to another file, \
                          which we notice (st_dev/st_ino); libpmem2 answers for the other file";
const WHY_NULL_BUF: &str = "(ours) buf == NULL with size > 0 is -EINVAL with a message; \
                            libpmem2 hands NULL to pread/pwrite(2), which say EFAULT";

/// The message for a range that starts within the source and ends past it (libpmem2's
/// wording, which calls what remains after the offset "the file length").
fn beyond_length(direction: &str, len: usize, offset: usize, remaining: usize) -> String {
    format!(
        "size of {direction} {len} from offset {offset} goes beyond the file length {remaining}"
    )
}

/// Our message for an offset past the end of the source.
fn past_end(direction: &str, offset: usize, size: usize) -> String {
    format!("offset {offset} of {direction} is beyond the end of the source ({size} bytes)")
}

/// Our message for a descriptor that now refers to another file.
fn file_changed(fd: RawFd) -> String {
    format!(
        "fd {fd} now refers to a different file than when the source was created (its device \
         or inode changed: the descriptor was closed and its number reused)"
    )
}

/// Both reads fail alike: `len` bytes at `offset` end past the `remaining` bytes.
fn read_beyond(len: usize, offset: usize, remaining: usize) -> Expect {
    let message = beyond_length("read", len, offset, remaining);
    Expect::Same(fails(OUT_OF_RANGE, message, unread(len)))
}

/// Both writes fail alike, the file staying `file`, but libpmem2 calls the write a read.
fn write_beyond(len: usize, offset: usize, remaining: usize, file: &str) -> Expect {
    let message = |direction| beyond_length(direction, len, offset, remaining);
    Expect::Diverges {
        ours: fails(OUT_OF_RANGE, message("write"), bytes(file)),
        reference: fails(OUT_OF_RANGE, message("read"), bytes(file)),
        why: WHY_WRITE_WORD,
    }
}

/// A transfer of `len > 0` bytes with `buf == NULL`.
fn null_buffer(direction: Direction, len: usize) -> (Query, Expect) {
    let (function, call) = match direction {
        Direction::Read => ("pmem2_source_pread_mcsafe", "pread"),
        Direction::Write => ("pmem2_source_pwrite_mcsafe", "pwrite"),
    };
    let query = Query::Null {
        direction,
        len,
        offset: 0,
    };
    let ours = format!("{function}: buf must not be NULL when size is {len}");
    let expect = Expect::Diverges {
        ours: fails(-libc::EINVAL, ours, Value::Nothing),
        reference: fails(
            -libc::EFAULT,
            format!("{call}: Bad address"),
            Value::Nothing,
        ),
        why: WHY_NULL_BUF,
    };
    (query, expect)
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).expect("sysconf(_SC_PAGESIZE)")
}

/// Both succeed with the page size.
fn page_aligned() -> Expect {
    Expect::Same(ok(number(page_size() as i128)))
}

/// The size (which must show `size`), the alignment (the page size), and what no NVDIMM
/// behind a regular file means.
fn size_and_more(size: Expect) -> Vec<Row> {
    let mut rows = vec![
        ("size", Query::Size, size),
        ("alignment", Query::Alignment, page_aligned()),
    ];
    rows.extend(without_nvdimm());
    rows
}

/// Puts `contents` into the file behind `fd` (opened anew through `/proc/self/fd`).
fn rewrite(fd: RawFd, contents: &[u8]) {
    std::fs::write(format!("/proc/self/fd/{fd}"), contents)
        .unwrap_or_else(|e| panic!("rewrite the file of fd {fd}: {e}"));
}

/// Sets the length of the file behind `fd`.
fn resize(fd: RawFd, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{fd}"))
        .and_then(|file| file.set_len(len))
        .unwrap_or_else(|e| panic!("resize the file of fd {fd}: {e}"));
}

/// `dup2(from, to)`: `to` now refers to `from`'s file.
fn dup2(from: RawFd, to: RawFd) {
    // SAFETY: dup2 takes descriptor numbers only; `to` is a number this test owns.
    let ret = unsafe { libc::dup2(from, to) };
    assert_eq!(ret, to, "dup2: {}", std::io::Error::last_os_error());
}

/// One test's cases.
type Queries = Workbench<Case>;

impl Queries {
    /// A new file `name` holding `contents`, opened with `flags`, kept open until the end.
    fn file(&mut self, name: &str, contents: &[u8], flags: c_int) -> RawFd {
        let path = self.dir.file(name, contents);
        self.keep(must_open(&path, flags))
    }

    /// `rows` on descriptor `fd`, named `<what>: <row>`; `prepare` runs before each library
    /// makes its source, `then` after.
    fn on_fd(
        &mut self,
        what: &str,
        fd: RawFd,
        rows: impl IntoIterator<Item = Row>,
        prepare: impl Fn() + Clone + 'static,
        then: impl Fn() + Clone + 'static,
    ) {
        for (name, query, expect) in rows {
            let case = Case::new(format!("{what}: {name}"), Origin::Fd(fd), query, expect);
            self.rows
                .push(case.prepared(prepare.clone()).then(then.clone()));
        }
    }

    /// `rows` on descriptor `fd`, whose file is reset to `reset` before each library's turn.
    fn on_file(&mut self, what: &str, fd: RawFd, reset: &'static [u8], rows: Vec<Row>) {
        self.on_fd(what, fd, rows, move || rewrite(fd, reset), || {});
    }

    /// Size, alignment, and what no NVDIMM behind it means, of descriptor `fd`: a regular
    /// file of `size` bytes.
    fn fd_queries(&mut self, what: &str, fd: RawFd, size: usize) {
        let rows = size_and_more(Expect::Same(ok(number(size as i128))));
        self.on_fd(what, fd, rows, || {}, || {});
    }

    /// Runs every case through both libraries; reports all failing cases at once.
    fn run(self) {
        if let Err(failures) = run_cases(&self.rows, self.reference) {
            panic!("{}: {failures}", self.test);
        }
    }
}

#[test]
fn queries_on_regular_files() {
    let Some(mut q) = Queries::new("queries-regular") else {
        return;
    };
    let hello = q.file("hello", b"hello", libc::O_RDWR);
    q.fd_queries("O_RDWR file", hello, 5);
    let read_only = q.file("read-only", b"hello", libc::O_RDONLY);
    q.fd_queries("O_RDONLY file", read_only, 5);
    let memfd = q.keep(memfd());
    rewrite(memfd, b"abcdefgh");
    q.fd_queries("memfd", memfd, 8);
    let status = q.keep(must_open(Path::new("/proc/self/status"), libc::O_RDONLY));
    q.fd_queries("/proc/self/status (size 0)", status, 0);
    let empty = q.file("empty", b"", libc::O_RDWR);
    q.fd_queries("empty file", empty, 0);

    // The size is asked again each time: a file that changed after the source was made.
    let changing = q.file("changing", b"hello", libc::O_RDWR);
    let reset = move || rewrite(changing, b"hello");
    let size = |len: u64| vec![("size", Query::Size, Expect::Same(ok(number(len))))];
    q.on_fd(
        "file grown to 4097 bytes after from_fd",
        changing,
        size(4097),
        reset,
        move || resize(changing, 4097),
    );
    let mut rows = size(2);
    rows.push(("pread of 5 at 0", pread(5, 0), read_beyond(5, 0, 2)));
    q.on_fd(
        "file shrunk to 2 bytes after from_fd",
        changing,
        rows,
        reset,
        move || resize(changing, 2),
    );
    q.run();
}

/// The descriptor number is closed, or closed and reused for another file, between
/// `from_fd` and the query.
#[test]
fn queries_after_the_descriptor_changed() {
    let Some(mut q) = Queries::new("queries-changed-fd") else {
        return;
    };
    // Reused: `reused` is dup2'ed back to "hello" before each library makes its source,
    // then to the other file ("other file!").
    let reused = q.file("reused", b"hello", libc::O_RDWR);
    let original = q.keep(must_open(&q.dir.join("reused"), libc::O_RDWR));
    let other = q.file("other", b"other file!", libc::O_RDWR);
    let changed = |value| fails(PMEM2_E_INVALID_FILE_HANDLE, file_changed(reused), value);
    let diverges = |ours, reference| Expect::Diverges {
        ours,
        reference,
        why: WHY_REUSED,
    };
    let mut rows = size_and_more(diverges(changed(untouched()), ok(number(11))));
    rows.push((
        "pread of 5 at 0",
        pread(5, 0),
        diverges(changed(unread(5)), ok(bytes("other"))),
    ));
    rows.push((
        "pwrite of \"AB\" at 0 (the value: the other file afterwards)",
        pwrite(b"AB", 0),
        diverges(changed(bytes("other file!")), ok(bytes("ABher file!"))),
    ));
    let prepare = move || {
        dup2(original, reused);
        rewrite(reused, b"hello");
        rewrite(other, b"other file!");
    };
    q.on_fd(
        "descriptor reused for another file",
        reused,
        rows,
        prepare,
        move || dup2(other, reused),
    );

    // Closed: a number far above what the tests open, so nothing reuses it meanwhile.
    let closed = surely_closed_fd();
    let keep = q.file("closed", b"hello", libc::O_RDWR);
    let closed_fd = |value| Expect::Same(fails(PMEM2_E_INVALID_FILE_HANDLE, FSTAT_CLOSED, value));
    let mut rows = size_and_more(closed_fd(untouched()));
    rows.push(("pread of 1 at 0", pread(1, 0), closed_fd(unread(1))));
    let close = move || {
        // SAFETY: `closed` is the number dup2'ed by `prepare`, owned by this case.
        let ret = unsafe { libc::close(closed) };
        assert_eq!(ret, 0, "close({closed})");
    };
    q.on_fd(
        "descriptor closed after from_fd",
        closed,
        rows,
        move || dup2(keep, closed),
        close,
    );
    q.run();
}

#[test]
fn mcsafe_reads_and_writes_on_regular_files() {
    let Some(mut q) = Queries::new("queries-mcsafe") else {
        return;
    };
    let fd = q.file("hello", b"hello", libc::O_RDWR);
    let (null_read, null_read_expect) = null_buffer(Direction::Read, 3);
    let (null_write, null_write_expect) = null_buffer(Direction::Write, 3);
    let rows = vec![
        (
            "pread of 5 at 0",
            pread(5, 0),
            Expect::Same(ok(bytes("hello"))),
        ),
        (
            "pread of 3 at 1",
            pread(3, 1),
            Expect::Same(ok(bytes("ell"))),
        ),
        ("pread of 0 at 0", pread(0, 0), Expect::Same(ok(bytes("")))),
        (
            "pread of 0 at the end",
            pread(0, 5),
            Expect::Same(ok(bytes(""))),
        ),
        ("pread of 1 at the end", pread(1, 5), read_beyond(1, 5, 0)),
        (
            "pread of 4 at 2 (one byte past the end)",
            pread(4, 2),
            read_beyond(4, 2, 3),
        ),
        (
            "pread of SIZE_MAX at 0 (into 16 bytes, never touched)",
            Query::Pread {
                buffer: 16,
                len: usize::MAX,
                offset: 0,
            },
            Expect::Same(fails(
                OUT_OF_RANGE,
                beyond_length("read", usize::MAX, 0, 5),
                unread(16),
            )),
        ),
        (
            "pread of 2 at 7 (offset past the end)",
            pread(2, 7),
            Expect::Diverges {
                ours: fails(OUT_OF_RANGE, past_end("read", 7, 5), unread(2)),
                reference: ok(unread(2)),
                why: WHY_PAST_END,
            },
        ),
        (
            "pread of 0 at 7 (offset past the end)",
            pread(0, 7),
            Expect::Diverges {
                ours: fails(OUT_OF_RANGE, past_end("read", 7, 5), bytes("")),
                reference: ok(bytes("")),
                why: WHY_PAST_END,
            },
        ),
        (
            "pread of 0 into NULL",
            Query::Null {
                direction: Direction::Read,
                len: 0,
                offset: 0,
            },
            Expect::Same(ok(Value::Nothing)),
        ),
        ("pread of 3 into NULL", null_read, null_read_expect),
        (
            "pwrite of \"AB\" at 1",
            pwrite(b"AB", 1),
            Expect::Same(ok(bytes("hABlo"))),
        ),
        (
            "pwrite of \"AB\" at 3 (up to the end)",
            pwrite(b"AB", 3),
            Expect::Same(ok(bytes("helAB"))),
        ),
        (
            "pwrite of 0 bytes at the end",
            pwrite(b"", 5),
            Expect::Same(ok(bytes("hello"))),
        ),
        (
            "pwrite of \"xyz\" at the end",
            pwrite(b"xyz", 5),
            write_beyond(3, 5, 0, "hello"),
        ),
        (
            "pwrite of \"AB\" at 4 (one byte past the end)",
            pwrite(b"AB", 4),
            write_beyond(2, 4, 1, "hello"),
        ),
        (
            "pwrite of \"AB\" at 7 (offset past the end)",
            pwrite(b"AB", 7),
            Expect::Diverges {
                ours: fails(OUT_OF_RANGE, past_end("write", 7, 5), bytes("hello")),
                reference: ok(bytes("hello\0\0AB")),
                why: WHY_PAST_END,
            },
        ),
        ("pwrite of 3 from NULL", null_write, null_write_expect),
    ];
    q.on_file("\"hello\" O_RDWR", fd, b"hello", rows);

    let read_only = q.file("read-only", b"hello", libc::O_RDONLY);
    let rows = vec![
        (
            "pread of 5 at 0",
            pread(5, 0),
            Expect::Same(ok(bytes("hello"))),
        ),
        (
            "pwrite of \"AB\" at 0",
            pwrite(b"AB", 0),
            Expect::Same(fails(
                -libc::EBADF,
                "pwrite: Bad file descriptor",
                bytes("hello"),
            )),
        ),
    ];
    q.on_file("\"hello\" O_RDONLY", read_only, b"hello", rows);

    let memfd = q.keep(memfd());
    let rows = vec![
        (
            "pread of 8 at 0",
            pread(8, 0),
            Expect::Same(ok(bytes("abcdefgh"))),
        ),
        (
            "pwrite of \"XY\" at 6",
            pwrite(b"XY", 6),
            Expect::Same(ok(bytes("abcdefXY"))),
        ),
    ];
    q.on_file("memfd", memfd, b"abcdefgh", rows);

    // procfs reports size 0: nothing can be read through the mcsafe functions.
    let status = q.keep(must_open(Path::new("/proc/self/status"), libc::O_RDONLY));
    let rows = [("pread of 3 at 0", pread(3, 0), read_beyond(3, 0, 0))];
    q.on_fd("/proc/self/status", status, rows, || {}, || {});

    let empty = q.file("empty", b"", libc::O_RDWR);
    let rows = vec![
        ("pread of 1 at 0", pread(1, 0), read_beyond(1, 0, 0)),
        (
            "pwrite of \"A\" at 0",
            pwrite(b"A", 0),
            write_beyond(1, 0, 0, ""),
        ),
    ];
    q.on_file("empty file", empty, b"", rows);
    q.run();
}

/// Regression for the fuzz input `differential_real_fds/zero-length-pwrite-proc-self-status`:
/// a transfer of 0 bytes still makes libpmem2's one `pread`/`pwrite`, and the kernel's answer
/// for the descriptor is the answer (we returned 0 without asking).
#[test]
fn fuzz_differential_real_fds_zero_length_pwrite_on_proc_self_status() {
    let Some(mut q) = Queries::new("queries-zero-length") else {
        return;
    };
    let empty_write = || Query::Null {
        direction: Direction::Write,
        len: 0,
        offset: 0,
    };
    let status = q.keep(must_open(Path::new("/proc/self/status"), libc::O_RDONLY));
    let illegal_seek = fails(-libc::ESPIPE, "pwrite: Illegal seek", Value::Nothing);
    let rows = [
        (
            "pwrite of 0 bytes at 0",
            empty_write(),
            Expect::Same(illegal_seek),
        ),
        (
            "pread of 0 bytes at 0",
            pread(0, 0),
            Expect::Same(ok(bytes(""))),
        ),
    ];
    q.on_fd("/proc/self/status", status, rows, || {}, || {});
    let read_only = q.file("read-only", b"hello", libc::O_RDONLY);
    let bad_descriptor = fails(-libc::EBADF, "pwrite: Bad file descriptor", bytes("hello"));
    let rows = [
        (
            "pwrite of 0 bytes at 0",
            pwrite(b"", 0),
            Expect::Same(bad_descriptor.clone()),
        ),
        (
            "pwrite of 0 bytes at the end",
            pwrite(b"", 5),
            Expect::Same(bad_descriptor),
        ),
    ];
    q.on_file("\"hello\" O_RDONLY", read_only, b"hello", rows.to_vec());
    q.run();
}

#[test]
fn queries_on_anonymous_sources() {
    let Some(mut q) = Queries::new("queries-anon") else {
        return;
    };
    let not_supported = |message, value| Expect::Same(fails(NOSUPP, message, value));
    let no_io = |value| Expect::Same(fails(PMEM2_E_SOURCE_TYPE_NOT_SUPPORTED, ANON_IO, value));
    for size in [0, 1, 4096, usize::MAX] {
        let rows = [
            ("size", Query::Size, Expect::Same(ok(number(size as i128)))),
            ("alignment", Query::Alignment, page_aligned()),
            (
                "numa_node",
                Query::NumaNode,
                not_supported(ANON_NUMA, untouched()),
            ),
            (
                "device_id length",
                Query::DeviceIdLength,
                not_supported(ANON_ID, untouched()),
            ),
            (
                "device_id into a buffer",
                Query::DeviceId {
                    capacity: ID_CAPACITY,
                },
                not_supported(ANON_ID, id_untouched(ID_CAPACITY)),
            ),
            // libpmem2 looks at the type before it zeroes *usc.
            (
                "device_usc",
                Query::DeviceUsc,
                not_supported(ANON_USC, untouched()),
            ),
            ("pread of 1 at 0", pread(1, 0), no_io(unread(1))),
            ("pwrite of 1 at 0", pwrite(b"A", 0), no_io(Value::Nothing)),
            // libpmem2 refuses an anonymous source before it would store an answer, so a
            // NULL out-parameter is no error yet.
            (
                "numa_node into NULL",
                Query::NullOut(NullOut::NumaNode),
                not_supported(ANON_NUMA, Value::Nothing),
            ),
            (
                "device_id length into NULL",
                Query::NullOut(NullOut::DeviceIdLength),
                not_supported(ANON_ID, Value::Nothing),
            ),
            (
                "device_usc into NULL",
                Query::NullOut(NullOut::DeviceUsc),
                not_supported(ANON_USC, Value::Nothing),
            ),
        ];
        for (name, query, expect) in rows {
            let name = format!("anonymous {size}: {name}");
            q.rows
                .push(Case::new(name, Origin::Anon(size), query, expect));
        }
    }
    q.run();
}

/// A shared mapping of a file, unmapped on drop.
struct Mapping {
    addr: *mut u8,
    len: usize,
}

impl Mapping {
    fn new(fd: RawFd, len: usize) -> Mapping {
        // SAFETY: a new shared mapping of `len` bytes of `fd` at an address the kernel picks;
        // nothing else is affected.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        assert_ne!(
            addr,
            libc::MAP_FAILED,
            "mmap: {}",
            std::io::Error::last_os_error()
        );
        Mapping {
            addr: addr.cast(),
            len,
        }
    }

    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: the mapping is `len` bytes, readable and writable, alive while `self` is,
        // and only reached through `self` in this thread (the libraries use the descriptor).
        unsafe { std::slice::from_raw_parts_mut(self.addr, self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `addr`/`len` are the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.addr.cast(), self.len) };
    }
}

/// What pwrite_mcsafe writes is seen through a shared mapping of the file, and what is
/// written through the mapping is what pread_mcsafe reads — in both libraries.
#[test]
fn mcsafe_round_trip_through_a_mapping() {
    let Some(reference) = reference_or_skip("mcsafe round trip through a mapping") else {
        return;
    };
    let dir = TempDir::new("queries-mapping");
    let page = page_size();
    let path = dir.file("mapped", &vec![0u8; 2 * page]);
    let fd = must_open(&path, libc::O_RDWR);
    let mut mapping = Mapping::new(fd.as_raw_fd(), 2 * page);
    let written: Vec<u8> = (0..100u8).collect();
    let start = page - 50; // across the page boundary
    let mut answers = Vec::new();
    for api in [reference, ours()] {
        mapping.bytes().fill(0);
        let mut src = garbage();
        assert_eq!(
            api.source_from_fd(&mut src, fd.as_raw_fd()),
            0,
            "{api:?}: from_fd"
        );

        let mut data = written.clone();
        // SAFETY: `src` is a live source of `api`; `data` is valid for reads of its length.
        let code = unsafe { (api.pwrite_mcsafe)(src, data.as_mut_ptr().cast(), data.len(), start) };
        let seen = mapping.bytes()[start..start + 100].to_vec();

        let pattern: Vec<u8> = (0..100u8).map(|n| n.wrapping_mul(7) ^ 0x5a).collect();
        mapping.bytes()[3000..3100].copy_from_slice(&pattern);
        let mut read = vec![0u8; 100];
        // SAFETY: `src` is a live source of `api`; `read` is valid for writes of its length.
        let read_code =
            unsafe { (api.pread_mcsafe)(src, read.as_mut_ptr().cast(), read.len(), 3000) };
        // SAFETY: `src` is live and given up here.
        assert_eq!(unsafe { api.source_delete(&mut src) }, 0, "{api:?}: delete");

        assert_eq!(
            (code, &seen),
            (0, &written),
            "{api:?}: pwrite_mcsafe, seen through the mapping"
        );
        assert_eq!(
            (read_code, &read),
            (0, &pattern),
            "{api:?}: pread_mcsafe of what the mapping wrote"
        );
        answers.push((code, seen, read_code, read));
    }
    assert_eq!(answers[0], answers[1], "libpmem2, ours");
    assert_eq!(
        contents(fd.as_raw_fd()),
        bytes(mapping.bytes()),
        "the file is the mapping"
    );
}

/// A source built by hand in C, as PMDK's `pmem2_perror` test builds one: type FD, descriptor
/// -1, the file type left uninitialised. libpmem2 asks `fstat` before it looks at the file
/// type, so both libraries report the descriptor; neither answers a size. (With an open
/// descriptor libpmem2 would abort on the unknown file type: not asked here.)
#[test]
fn a_hand_built_source_with_a_closed_descriptor_gets_the_fstat_error() {
    let Some(reference) = reference_or_skip("a_hand_built_source") else {
        return;
    };
    const FD_SOURCE: u64 = 2;
    let mut hand_built = [0xa5a5_a5a5_a5a5_a5a5u64; 8];
    hand_built[0] = FD_SOURCE;
    hand_built[2] = u64::from((-1i32) as u32) | 0xa5a5_a5a5_0000_0000;
    let src = hand_built.as_mut_ptr().cast();
    let answers = [reference, ours()].map(|api| {
        compare::provoke_known_message(api);
        let mut size = 7usize;
        let mut buf = [0u8; 4];
        // SAFETY: `src` points to 64 bytes laid out as a source of either library (type at 0,
        // file type at 8, fd at 16); `size` is valid for writes.
        let size_code = unsafe { (api.size)(src, &mut size) };
        // SAFETY: as above; `buf` is valid for writes of its length.
        let read_code = unsafe { (api.pread_mcsafe)(src, buf.as_mut_ptr().cast(), buf.len(), 0) };
        (
            size_code,
            size,
            read_code,
            compare::message_since_provoked(api),
        )
    });
    let expected = (
        PMEM2_E_INVALID_FILE_HANDLE,
        7,
        PMEM2_E_INVALID_FILE_HANDLE,
        compare::Message::Set(FSTAT_CLOSED.into()),
    );
    assert_eq!(answers, [expected.clone(), expected]);
}
