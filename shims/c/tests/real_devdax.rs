//! Our `libpmem2_source.so` against Debian's libpmem2 1.12.1 on a real Device DAX
//! (`PMEM2_DEVDAX`, see `tests/common/real_devdax.rs` in the repository root), where
//! libpmem2 finds the NVDIMM namespace behind the device through libndctl:
//!
//! - `from_fd`, `size` and `alignment` agree, and are the namespace's;
//! - what each answers for `numa_node`, `device_id` and `device_usc` (printed as
//!   `REPORT` lines, and checked against the sysfs attributes behind them), including how
//!   `device_id` treats a buffer that already holds a string (libpmem2 appends to it);
//! - `pread_mcsafe`/`pwrite_mcsafe`: each library reads what the other wrote, across an
//!   alignment boundary; a range that ends past the end is refused by both; an offset past
//!   the end kills libpmem2 (SIGSEGV, in a forked child) and is refused by ours;
//! - libpmem2's `pmem2_map_new` maps a source of ours, and what it writes persists: with
//!   `PMEM2_DEVDAX_PERSIST=write:TOKEN` a record holding TOKEN is written through the
//!   mapping (first bytes and last page of the device) and persisted; with `read:TOKEN`, a
//!   later boot of the same NVDIMM image reads it back, through our `pread_mcsafe` and
//!   through a new mapping.
//!
//! `PMEM2_SOURCE_SO` names the library to test (the guest has no cargo to build one).
//!
//! `harness = false`: libpmem2's calls that may crash run in a forked child
//! (`compare::queries::observe_in_child`), which wants a single-threaded process. Prints
//! `ok - NAME` or `FAIL - NAME` per test (a failure's panic message on stderr) and a
//! libtest-style `test result:` line.
//!
//! Skipped, with the reason on stderr, where `PMEM2_DEVDAX` is not set: CI runs this inside
//! the guest of `tests/devdax-vm/run.sh`.

// Linux only: on Windows an empty crate, which checks but does not link (the Windows tests
// are elsewhere: scripts/wine-tests.sh).
#![cfg_attr(windows, no_main)]
#![cfg(not(windows))]

#[path = "../../../tests/common/mod.rs"]
mod common;
mod compare;
mod libpmem2_map;
mod support;

use std::ffi::{c_int, c_void};
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::process::ExitCode;

use common::real_devdax::{RealDevdax, pattern, read_through_mmap, regions, report};
use compare::queries::{
    Case, Expect, NO_USC, Origin, Query, Reply, Row, Value, fails, number, ok, run_case, untouched,
};
use compare::{differ, ours, reference};
use libpmem2_map::{MapApi, MustSucceed, PersistFn, libpmem2_size_and_alignment};
use pmem2_source::codes::{PMEM2_E_LENGTH_OUT_OF_RANGE, PMEM2_E_NOSUPP};
use support::{Library, SourceApi, Src};

const MIB: u64 = 1 << 20;

/// Selects the persistence stage: `write:TOKEN` or `read:TOKEN` (unset: neither; the record
/// is written and read back within this run).
const PERSIST_VAR: &str = "PMEM2_DEVDAX_PERSIST";

fn open_rw(device: &RealDevdax) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(&device.path)
        .unwrap_or_else(|e| panic!("open {}: {e}", device.path.display()))
}

/// libpmem2's source functions; it must load wherever a real Device DAX is.
fn libpmem2() -> &'static SourceApi {
    reference().unwrap_or_else(|e| panic!("libpmem2 is required with a real Device DAX: {e}"))
}

/// Runs `rows` on `fd` through both libraries; all failures at once.
fn run_rows(fd: c_int, rows: Vec<Row>) {
    let failures: Vec<String> = rows
        .into_iter()
        .filter_map(|(name, query, expect)| {
            let case = Case::new(name, Origin::Fd(fd), query, expect);
            run_case(&case, libpmem2())
                .err()
                .map(|e| format!("{name}: {e}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn from_fd_agrees_with_libpmem2(device: &RealDevdax) {
    let file = open_rw(device);
    let read_only = File::open(&device.path).expect("open read-only");
    for (what, fd) in [
        ("O_RDWR", file.as_raw_fd()),
        ("O_RDONLY", read_only.as_raw_fd()),
    ] {
        differ(
            &format!("from_fd({what} {})", device.path.display()),
            &compare::Expect::Same(0),
            fd,
            libpmem2(),
        )
        .unwrap_or_else(|e| panic!("from_fd({what}): {e}"));
    }
    report("from_fd ours / libpmem2", "0 / 0 (O_RDWR and O_RDONLY)");
}

fn size_and_alignment_agree_with_libpmem2(device: &RealDevdax) {
    let file = open_rw(device);
    let both = |n: u64| Expect::Same(ok(number(n)));
    run_rows(
        file.as_raw_fd(),
        vec![
            ("size", Query::Size, both(device.size)),
            ("alignment", Query::Alignment, both(device.alignment)),
        ],
    );
    report("size ours / libpmem2", format!("{0} / {0}", device.size));
    report(
        "alignment ours / libpmem2",
        format!("{0} / {0}", device.alignment),
    );
}

/// One library's `(code, value, message)` for a query, for the report.
fn answer(api: &SourceApi, fd: c_int, query: Query) -> Reply {
    let case = Case::new(
        "report",
        Origin::Fd(fd),
        query,
        Expect::Same(ok(untouched())),
    );
    compare::queries::observe(api, &case).unwrap_or_else(|e| panic!("{e}"))
}

/// `device_id(src, buf, &len)` with `*len = capacity`, into a 256-byte buffer that holds
/// `preset` (a NUL-terminated string, at most `capacity` bytes with its NUL) and zeroes after
/// it, so a library that appends to the string already there, or writes past `capacity`,
/// shows it without overflowing anything. Returns the code, `*len` after, and the buffer up
/// to its last non-zero byte.
fn device_id_into(
    api: &SourceApi,
    fd: c_int,
    capacity: usize,
    preset: &str,
) -> (c_int, usize, String) {
    assert!(preset.len() < capacity && capacity <= 128);
    let mut buffer = [0u8; 256];
    buffer[..preset.len()].copy_from_slice(preset.as_bytes());
    let mut src: *mut Src = std::ptr::null_mut();
    assert_eq!(api.source_from_fd(&mut src, fd), 0, "{}: from_fd", api.name);
    let mut len = capacity;
    // SAFETY: `src` is a live source of `api`; `buffer` is valid for writes of 256 ≥ `len`
    // bytes (twice `len` at least: what an append to `preset` can reach) and holds a
    // NUL-terminated string.
    let code = unsafe { (api.device_id)(src, buffer.as_mut_ptr().cast(), &mut len) };
    // SAFETY: live, given up here.
    assert_eq!(unsafe { api.source_delete(&mut src) }, 0);
    let end = buffer.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let shown = buffer[..end].escape_ascii().to_string();
    (code, len, shown)
}

const WHY_USC_ZEROED: &str = "(ours) out-parameters are untouched on failure; libpmem2 sets \
                              *usc = 0 first";

/// NUMA node, device id and unsafe shutdown count, checked against sysfs read here: the
/// device's `numa_node`, and the `nfit/id` and `nfit/dirty_shutdown` of its region's DIMMs.
/// On QEMU's emulated NVDIMM the DIMM has an id (`8680-56341200`) but no
/// `nfit/dirty_shutdown`; legacy (memmap) pmem has a region with no DIMMs at all, so an empty
/// id and a count of 0 in both libraries.
fn numa_node_device_id_and_usc_of_both(device: &RealDevdax) {
    let file = open_rw(device);
    let fd = file.as_raw_fd();
    let (ours, theirs) = (ours(), libpmem2());
    for (what, query) in [
        ("numa_node", Query::NumaNode),
        ("device_id length", Query::DeviceIdLength),
        ("device_usc", Query::DeviceUsc),
    ] {
        report(
            &format!("{what} ours / libpmem2"),
            format!(
                "{:?} / {:?}",
                answer(ours, fd, query.clone()),
                answer(theirs, fd, query)
            ),
        );
    }

    let node: i64 = device.attribute("numa_node").parse().expect("numa_node");
    let ids = device
        .dimm_attributes("id")
        .unwrap_or_else(|| panic!("a DIMM without nfit/id: {:?}", device.dimms()));
    let id = ids.concat();
    let needed = id.len() + 1;
    let usc = match device.dimm_attributes("dirty_shutdown") {
        Some(counts) => {
            let sum: u64 = counts
                .iter()
                .map(|c| c.parse::<u64>().expect("dirty_shutdown is a number"))
                .sum();
            Expect::Same(ok(number(sum)))
        }
        None => Expect::Diverges {
            ours: fails(PMEM2_E_NOSUPP, NO_USC, untouched()),
            reference: fails(PMEM2_E_NOSUPP, NO_USC, number(0)),
            why: WHY_USC_ZEROED,
        },
    };
    run_rows(
        fd,
        vec![
            ("numa_node", Query::NumaNode, Expect::Same(ok(number(node)))),
            (
                "device_id length",
                Query::DeviceIdLength,
                Expect::Same(ok(number(needed as u64))),
            ),
            ("device_usc", Query::DeviceUsc, usc),
        ],
    );

    // Into an empty string (what a zeroed buffer holds), both write the id; *len stays.
    for capacity in [needed, 64] {
        let want = (0, capacity, id.clone());
        let (our, their) = (
            device_id_into(ours, fd, capacity, ""),
            device_id_into(theirs, fd, capacity, ""),
        );
        report(
            &format!("device_id into {capacity} zeroed bytes ours / libpmem2"),
            format!("{our:?} / {their:?}"),
        );
        assert_eq!(our, want, "ours: device_id into {capacity} zeroed bytes");
        assert_eq!(
            their, want,
            "libpmem2: device_id into {capacity} zeroed bytes"
        );
    }
    // Into a buffer already holding a string, libpmem2 appends the id to it (strncat), past
    // the `*len` bytes it was given; ours writes the id from the first byte.
    for capacity in [needed.max(2), 64] {
        let preset = "Z".repeat(capacity - 1);
        let (our, their) = (
            device_id_into(ours, fd, capacity, &preset),
            device_id_into(theirs, fd, capacity, &preset),
        );
        report(
            &format!(
                "device_id into {capacity} bytes holding {} Zs ours / libpmem2",
                capacity - 1
            ),
            format!("{our:?} / {their:?}"),
        );
        let mut ours_want = id.as_bytes().to_vec();
        ours_want.push(0);
        ours_want.extend_from_slice(&preset.as_bytes()[(id.len() + 1).min(preset.len())..]);
        while ours_want.last() == Some(&0) {
            ours_want.pop();
        }
        assert_eq!(
            our,
            (0, capacity, ours_want.escape_ascii().to_string()),
            "ours writes the id and its NUL at the start"
        );
        assert_eq!(
            their,
            (0, capacity, format!("{preset}{id}")),
            "libpmem2 appends the id to the string in the buffer (write past *len if it \
             holds one)"
        );
    }
}

/// `len` bytes at `offset` through `api`'s `pread_mcsafe`.
fn pread(api: &SourceApi, src: *mut Src, offset: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    // SAFETY: `src` is a live source of `api`; `buf` is valid for writes of `len` bytes.
    let code = unsafe { (api.pread_mcsafe)(src, buf.as_mut_ptr().cast(), len, offset as usize) };
    assert_eq!(
        code,
        0,
        "{}: pread_mcsafe({len} at {offset}): {}",
        api.name,
        api.message()
    );
    buf
}

/// `data` at `offset` through `api`'s `pwrite_mcsafe`.
fn pwrite(api: &SourceApi, src: *mut Src, offset: u64, data: &[u8]) {
    let mut data = data.to_vec();
    let len = data.len();
    // SAFETY: `src` is a live source of `api`; `data` is valid for reads of `len` bytes.
    let code = unsafe {
        (api.pwrite_mcsafe)(
            src,
            data.as_mut_ptr().cast::<c_void>(),
            len,
            offset as usize,
        )
    };
    assert_eq!(
        code,
        0,
        "{}: pwrite_mcsafe({len} at {offset}): {}",
        api.name,
        api.message()
    );
}

fn each_library_reads_what_the_other_wrote(device: &RealDevdax) {
    let file = open_rw(device);
    let fd = file.as_raw_fd();
    let (ours, theirs) = (ours(), libpmem2());
    let (our_src, their_src) = (ours.fd_source(fd), theirs.fd_source(fd));
    let start = regions::CAPI_MIB * MIB;
    let align = device.alignment;
    assert!(align <= 2 * MIB, "the region holds 4 aligned blocks");

    // Ours writes across an alignment boundary; both read it.
    let offset = start + align - 1000;
    let data = pattern(5, 5000);
    pwrite(ours, our_src, offset, &data);
    assert!(
        pread(theirs, their_src, offset, data.len()) == data,
        "libpmem2 reads ours"
    );
    assert!(
        pread(ours, our_src, offset, data.len()) == data,
        "ours reads ours"
    );

    // libpmem2 writes; ours reads it, also in a range starting before it.
    let offset = start + 3 * align + 17;
    let data = pattern(6, 3000);
    pwrite(theirs, their_src, offset, &data);
    assert!(
        pread(ours, our_src, offset, data.len()) == data,
        "ours reads libpmem2's"
    );
    let wider = pread(ours, our_src, offset - 17, data.len() + 17);
    assert!(wider[17..] == data[..], "a wider read");

    let mapped = read_through_mmap(device, start + 3 * align, 17 + data.len());
    assert!(
        mapped[17..] == data[..],
        "an independent mapping sees libpmem2's write"
    );
    // SAFETY: the source goes back to the library that made it, and is not used again.
    unsafe { ours.delete_source(our_src) };
    // SAFETY: as above.
    unsafe { theirs.delete_source(their_src) };
    report(
        "mcsafe ours <-> libpmem2",
        format!("ok (alignment {align})"),
    );

    // Past the end: both refuse alike (libpmem2 calls a write a read, as on regular files).
    let beyond = |direction: &str| {
        format!(
            "size of {direction} 64 from offset {} goes beyond the file length 32",
            device.size - 32
        )
    };
    run_rows(
        fd,
        vec![
            (
                "pread past the end",
                compare::queries::pread(64, (device.size - 32) as usize),
                Expect::Same(fails(
                    PMEM2_E_LENGTH_OUT_OF_RANGE,
                    beyond("read"),
                    compare::queries::unread(64),
                )),
            ),
            (
                "pwrite past the end",
                compare::queries::pwrite(&[7; 64], (device.size - 32) as usize),
                Expect::Diverges {
                    ours: fails(PMEM2_E_LENGTH_OUT_OF_RANGE, beyond("write"), Value::Nothing),
                    reference: fails(PMEM2_E_LENGTH_OUT_OF_RANGE, beyond("read"), Value::Nothing),
                    why: "libpmem2 words a write past the end as a read",
                },
            ),
        ],
    );
}

/// The persistence record: what the first boot writes and the second reads back.
fn record(token: &str) -> Vec<u8> {
    format!("pmem2-source devdax-vm persistence record {token}\n").into_bytes()
}

/// Where the record goes: the first bytes, and 17 bytes into the last page.
fn record_offsets(size: u64) -> [usize; 2] {
    [0, (size - 4096 + 17) as usize]
}

fn libpmem2_maps_our_source_and_the_data_persists(device: &RealDevdax) {
    let stage = std::env::var(PERSIST_VAR).ok();
    let (mode, token) = match stage.as_deref().and_then(|s| s.split_once(':')) {
        Some((mode @ ("write" | "read"), token)) => (mode, token.to_string()),
        None if stage.is_none() => ("write", "in-boot".to_string()),
        _ => panic!("{PERSIST_VAR}={stage:?}: want write:TOKEN or read:TOKEN"),
    };
    let record = record(&token);
    let offsets = record_offsets(device.size);
    let library = Library::open(support::REFERENCE_LIBRARY).expect("dlopen libpmem2");
    let map_api = MapApi::load(&library);
    let file = open_rw(device);
    let ours = ours();
    let src = ours.fd_source(file.as_raw_fd());

    assert_eq!(
        libpmem2_size_and_alignment(&map_api, src),
        (device.size as usize, device.alignment as usize),
        "libpmem2's pmem2_source_size and pmem2_source_alignment on our Device DAX source"
    );

    if mode == "read" {
        for &offset in &offsets {
            let found = pread(ours, src, offset as u64, record.len());
            assert!(
                found == record,
                "the record at {offset}, written by the previous boot: found {:?}",
                String::from_utf8_lossy(&found)
            );
        }
    }

    let scratch = (regions::MAPPING_MIB * MIB) as usize;
    let data = pattern(8, 1 << 20);
    let use_mapping = |bytes: &mut [u8], persist: PersistFn| {
        if mode == "read" {
            for &offset in &offsets {
                assert!(
                    bytes[offset..offset + record.len()] == record[..],
                    "the mapping shows the record at {offset}"
                );
            }
        } else {
            for &offset in &offsets {
                bytes[offset..offset + record.len()].copy_from_slice(&record);
                // SAFETY: the range lies inside the mapping `persist` belongs to.
                unsafe { persist(bytes[offset..].as_ptr().cast(), record.len()) };
            }
        }
        bytes[scratch..scratch + data.len()].copy_from_slice(&data);
        // SAFETY: as above.
        unsafe { persist(bytes[scratch..].as_ptr().cast(), data.len()) };
    };
    let libpmem2 = libpmem2();
    // SAFETY: `src` is our live source of the device, `device.size` bytes.
    unsafe {
        libpmem2_map::with_libpmem2_mapping(
            libpmem2,
            &map_api,
            src,
            device.size as usize,
            use_mapping,
        )
    };

    // After the mapping is gone: our pread_mcsafe and an independent mapping see the writes.
    for &offset in &offsets {
        assert!(
            pread(ours, src, offset as u64, record.len()) == record,
            "record at {offset}"
        );
    }
    assert!(
        pread(ours, src, scratch as u64, data.len()) == data,
        "the scratch data"
    );
    let mapped = read_through_mmap(device, 0, record.len());
    assert!(mapped == record, "an independent mapping sees the record");
    // SAFETY: our live source, not used afterwards.
    unsafe { ours.delete_source(src) };
    let done = if mode == "read" { "read back" } else { "wrote" };
    report(
        "persistence",
        format!("{done} record {token:?} at offsets {offsets:?}"),
    );
}

const WHY_PAST_END_CRASH: &str = "libpmem2 1.12.1 does not check an offset past the end \
                                  of a Device DAX: it copies to or from beyond its mapping of \
                                  the device and dies of SIGSEGV; ours refuses the range";
const WHY_PAST_END_EMPTY: &str = "(ours) an offset past the end is out of range even for 0 \
                                  bytes; libpmem2 transfers nothing and returns 0";

/// Transfers at offsets at and past the end of the device. libpmem2's crash is expected, in
/// a forked child.
fn offsets_past_the_end(device: &RealDevdax) {
    let file = open_rw(device);
    let size = device.size as usize;
    let past = size + 4096;
    let beyond = |direction: &str, offset: usize| {
        format!("offset {offset} of {direction} is beyond the end of the source ({size} bytes)")
    };
    let at_the_end = format!("size of read 64 from offset {size} goes beyond the file length 0");
    run_rows(
        file.as_raw_fd(),
        vec![
            (
                "pread_mcsafe of 64 at the size",
                compare::queries::pread(64, size),
                Expect::Same(fails(
                    PMEM2_E_LENGTH_OUT_OF_RANGE,
                    at_the_end,
                    compare::queries::unread(64),
                )),
            ),
            (
                "pread_mcsafe of 64 at size + 4096",
                compare::queries::pread(64, past),
                Expect::ReferenceDies {
                    ours: fails(
                        PMEM2_E_LENGTH_OUT_OF_RANGE,
                        beyond("read", past),
                        compare::queries::unread(64),
                    ),
                    signal: libc::SIGSEGV,
                    why: WHY_PAST_END_CRASH,
                },
            ),
            (
                "pwrite_mcsafe of 64 at size + 4096",
                compare::queries::pwrite(&[7; 64], past),
                Expect::ReferenceDies {
                    ours: fails(
                        PMEM2_E_LENGTH_OUT_OF_RANGE,
                        beyond("write", past),
                        Value::Nothing,
                    ),
                    signal: libc::SIGSEGV,
                    why: WHY_PAST_END_CRASH,
                },
            ),
            (
                "pread_mcsafe of 0 at size + 1",
                compare::queries::pread(0, size + 1),
                Expect::Diverges {
                    ours: fails(
                        PMEM2_E_LENGTH_OUT_OF_RANGE,
                        beyond("read", size + 1),
                        compare::queries::unread(0),
                    ),
                    reference: ok(compare::queries::unread(0)),
                    why: WHY_PAST_END_EMPTY,
                },
            ),
        ],
    );
    report(
        "past the end: libpmem2 pread/pwrite_mcsafe at size + 4096",
        "killed by SIGSEGV (ours: PMEM2_E_LENGTH_OUT_OF_RANGE)",
    );
}

/// The tests, in order: the persistence record is written (or read back) before anything
/// else could touch the device.
/// A test of this file: its name, and the function given the device.
type Test = (&'static str, fn(&RealDevdax));

const TESTS: [Test; 6] = [
    (
        "libpmem2_maps_our_source_and_the_data_persists",
        libpmem2_maps_our_source_and_the_data_persists,
    ),
    ("from_fd_agrees_with_libpmem2", from_fd_agrees_with_libpmem2),
    (
        "size_and_alignment_agree_with_libpmem2",
        size_and_alignment_agree_with_libpmem2,
    ),
    (
        "numa_node_device_id_and_usc_of_both",
        numa_node_device_id_and_usc_of_both,
    ),
    (
        "each_library_reads_what_the_other_wrote",
        each_library_reads_what_the_other_wrote,
    ),
    ("offsets_past_the_end", offsets_past_the_end),
];

fn main() -> ExitCode {
    let Some(device) = RealDevdax::from_env("real_devdax (C ABI, every test)") else {
        return ExitCode::SUCCESS;
    };
    let mut failed = 0;
    for (name, test) in TESTS {
        // The panic message goes to stderr through the default hook.
        match std::panic::catch_unwind(|| test(&device)) {
            Ok(()) => println!("ok - {name}"),
            Err(_) => {
                failed += 1;
                println!("FAIL - {name}");
            }
        }
    }
    let verdict = if failed == 0 { "ok" } else { "FAILED" };
    println!(
        "test result: {verdict}. {} passed; {failed} failed",
        TESTS.len() - failed
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
