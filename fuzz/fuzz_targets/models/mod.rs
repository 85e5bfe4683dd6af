//! Reference models shared by the fuzz targets: written from SPEC, independently of the
//! crate's code they check, and once, so that two targets cannot hold two versions.

// Each target uses part of it. (A directory, because scripts/fuzz.sh takes every
// `fuzz_targets/*.rs` for a target.)
#![allow(dead_code)]

/// The last component of a link target: split on `/`, drop trailing empty and `.` parts (but
/// never the first part: a lone `.` stays `.`, and `/.` ends in the empty part before it).
pub fn last_component(target: &[u8]) -> &[u8] {
    let mut parts: Vec<&[u8]> = target.split(|&byte| byte == b'/').collect();
    while parts.len() > 1 && matches!(parts.last(), Some(&(b"" | b"."))) {
        parts.pop();
    }
    parts.last().copied().unwrap_or_default()
}

/// An unsigned sysfs number (SPEC §5): one or more ASCII digits, then one newline; the value
/// by digit count and wide arithmetic (no overflow can go unnoticed in a `u128` of at most 20
/// significant digits).
pub fn unsigned_number(text: &[u8]) -> Option<u64> {
    let (&last, digits) = text.split_last()?;
    if last != b'\n' || digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let first_significant = digits.iter().position(|&b| b != b'0');
    let significant = first_significant.map_or(&[][..], |start| &digits[start..]);
    if significant.len() > 20 {
        return None;
    }
    let value = significant
        .iter()
        .fold(0u128, |value, &b| value * 10 + u128::from(b - b'0'));
    u64::try_from(value).ok()
}
