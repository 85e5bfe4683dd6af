//! Fuzz target `sysfs_number`: arbitrary bytes as the contents of a sysfs number attribute
//! (a Device DAX's `size` and `align`, SPEC §5), and of the other sysfs texts the crate
//! parses (`numa_node`, a DIMM's `nfit/id`, a region's `mappingN`).
//!
//! Properties, checked against reference models written here (they never call the crate's
//! parsers to decide the answer):
//! - `parse_decimal` accepts exactly: one or more ASCII digits (no sign, no spaces) whose
//!   value fits a `u64`, followed by exactly one newline; it returns that value;
//! - `parse_signed_decimal` is the same with an optional leading `-`, for values that fit an
//!   `i64`;
//! - `parse_word_line` accepts one non-empty line of printable, non-space ASCII and its
//!   newline; `parse_mapping_dimm` the part of such a line before its first comma when that
//!   is a plausible, short sysfs name other than `.` and `..`;
//! - through the scripted kernel, a Device DAX whose `size`/`align`/`numa_node` file holds
//!   these bytes gets the value or exactly the documented error code, and every sysfs file
//!   opened is closed again. The one documented limit: contents of `ATTRIBUTE_CAPACITY` (64)
//!   bytes or more fill the read buffer, may be cut, and are rejected.

#![no_main]

mod models;

use libfuzzer_sys::fuzz_target;
use pmem2_source::sys::scripted::{MAX_SCRIPTED_FILE, ScriptedKernel};
use pmem2_source::sysfs::{
    ATTRIBUTE_CAPACITY, SysfsText, parse_decimal, parse_mapping_dimm, parse_signed_decimal,
    parse_word_line,
};
use pmem2_source::{Error, Source, codes};

/// The model of a signed sysfs number: an optional `-`, then an unsigned number; the value
/// must fit an `i64` (so `-9223372036854775808` does, `9223372036854775808` does not).
fn model_signed(text: &[u8]) -> Option<i64> {
    match text.split_first() {
        Some((b'-', magnitude)) => {
            let magnitude = i128::from(models::unsigned_number(magnitude)?);
            i64::try_from(-magnitude).ok()
        }
        _ => i64::try_from(models::unsigned_number(text)?).ok(),
    }
}

/// The model of a word line: printable ASCII other than space (0x21–0x7e), at least one,
/// then one newline.
fn model_word_line(text: &[u8]) -> Option<&[u8]> {
    let (&last, word) = text.split_last()?;
    let printable = |b: &u8| (0x21..=0x7e).contains(b);
    (last == b'\n' && !word.is_empty() && word.iter().all(printable)).then_some(word)
}

/// The model of a `mappingN` line: a word line with a comma; the DIMM name before the first
/// comma is 1–24 bytes of letters, digits, `.`, `_` and `-`, and not `.` or `..` (which name
/// a directory rather than a DIMM in it).
fn model_mapping_dimm(text: &[u8]) -> Option<&[u8]> {
    let line = model_word_line(text)?;
    let comma = line.iter().position(|&b| b == b',')?;
    let name = &line[..comma];
    let plausible = |b: &u8| b.is_ascii_alphanumeric() || b".-_".contains(b);
    let directory = name == b"." || name == b"..";
    let fits = !name.is_empty() && name.len() <= SysfsText::CAPACITY;
    (fits && !directory && name.iter().all(plausible)).then_some(name)
}

const DAX_RDEV: u64 = 0xfc00; // 252:0
const DAX_DIR: &str = "/sys/dev/char/252:0";

fn show(text: &[u8]) -> String {
    text.escape_ascii().to_string()
}

fuzz_target!(|data: &[u8]| {
    let unsigned = models::unsigned_number(data);
    assert_eq!(parse_decimal(data), unsigned, "{:?}", show(data));
    if let Some(value) = unsigned {
        // The only accepted spellings: the value's own digits, possibly zero-padded.
        let canonical = format!("{value}\n");
        let padding = data.len() - canonical.len();
        assert!(data[..padding].iter().all(|&b| b == b'0'));
        assert_eq!(&data[padding..], canonical.as_bytes());
    }
    let signed = model_signed(data);
    assert_eq!(parse_signed_decimal(data), signed, "{:?}", show(data));
    // Consistency of the two: without a sign they agree wherever an i64 can hold the value.
    if data.first() != Some(&b'-') {
        assert_eq!(
            parse_signed_decimal(data),
            parse_decimal(data).and_then(|v| i64::try_from(v).ok())
        );
    }
    assert_eq!(
        parse_word_line(data),
        model_word_line(data),
        "{:?}",
        show(data)
    );
    assert_eq!(
        parse_mapping_dimm(data),
        model_mapping_dimm(data),
        "{:?}",
        show(data)
    );

    // Through the scripted kernel: a Device DAX whose size, align and numa_node files hold
    // these bytes (a scripted file keeps at most MAX_SCRIPTED_FILE bytes).
    let contents = &data[..data.len().min(MAX_SCRIPTED_FILE)];
    let kernel = ScriptedKernel::char_device(DAX_RDEV)
        .with_file(&format!("{DAX_DIR}/size"), contents)
        .with_file(&format!("{DAX_DIR}/align"), contents)
        .with_file(&format!("{DAX_DIR}/numa_node"), contents);
    let source = Source::from_fd_with(&kernel, 3).expect("the scripted Device DAX");
    let kept = SysfsText::new(contents);
    // What the queries parse: the whole file, if it is shorter than the read buffer.
    let whole = (contents.len() < ATTRIBUTE_CAPACITY).then_some(contents);

    let size = source.size_with(&kernel);
    assert_eq!(kernel.open_descriptors(), 0, "size leaked a sysfs fd");
    match whole.and_then(models::unsigned_number) {
        Some(value) => assert_eq!(size, Ok(value)),
        None => {
            let err = size.expect_err("malformed size");
            assert_eq!(err.code(), codes::PMEM2_E_INVALID_SIZE_FORMAT);
            assert!(matches!(&err, Error::InvalidSize { text, .. } if *text == kept));
            assert!(!err.to_string().is_empty());
        }
    }

    let alignment = source.alignment_with(&kernel);
    assert_eq!(kernel.open_descriptors(), 0, "alignment leaked a sysfs fd");
    match whole.and_then(models::unsigned_number) {
        Some(value) if value.is_power_of_two() => {
            assert_eq!(alignment, Ok(value as usize));
        }
        Some(_) => {
            let err = alignment.expect_err("not a power of two");
            assert_eq!(err.code(), codes::PMEM2_E_INVALID_ALIGNMENT_VALUE);
            assert!(!err.to_string().is_empty());
        }
        None => {
            let err = alignment.expect_err("malformed alignment");
            assert_eq!(err.code(), codes::PMEM2_E_INVALID_ALIGNMENT_FORMAT);
            assert!(matches!(&err, Error::InvalidAlignment { text, .. } if *text == kept));
            assert!(!err.to_string().is_empty());
        }
    }

    let node = source.numa_node_with(&kernel);
    assert_eq!(kernel.open_descriptors(), 0, "numa_node leaked a sysfs fd");
    // A node number, or -1 for "no affinity"; no other negative number.
    match whole
        .and_then(model_signed)
        .and_then(|node| i32::try_from(node).ok())
        .filter(|&node| node >= -1)
    {
        Some(value) => assert_eq!(node, Ok(value)),
        None => {
            let err = node.expect_err("malformed numa_node");
            assert_eq!(err.code(), codes::PMEM2_E_INVALID_DEV_FORMAT);
            assert!(!err.to_string().is_empty());
        }
    }
});
