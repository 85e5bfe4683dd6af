//! Byte counts for people: binary units, exact when possible.

/// The units, each 1024 times the one before.
const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];

/// `bytes` in the largest binary unit it reaches (B, KiB, MiB, GiB, TiB): a whole number
/// when it is an exact multiple of that unit (`4 KiB`, `250 MiB`), otherwise rounded to one
/// decimal (`6.3 KiB`; `1.0 MiB` for 1048575 bytes — the decimal says it is not exact).
pub fn human_bytes(bytes: u64) -> String {
    let mut exponent = 0;
    while exponent + 1 < UNITS.len() && bytes >> (10 * (exponent + 1)) != 0 {
        exponent += 1;
    }
    let unit = 1u128 << (10 * exponent);
    let exact = u128::from(bytes);
    if exact % unit == 0 {
        return format!("{} {}", exact / unit, UNITS[exponent]);
    }
    let mut tenths = rounded_tenths(exact, unit);
    // 1023.96 KiB rounds to 1024.0 KiB: say 1.0 MiB instead.
    if tenths >= 10 * 1024 && exponent + 1 < UNITS.len() {
        exponent += 1;
        tenths = rounded_tenths(exact, unit << 10);
    }
    format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[exponent])
}

/// `value / unit` in tenths, rounded half up.
fn rounded_tenths(value: u128, unit: u128) -> u128 {
    (value * 10 + unit / 2) / unit
}

/// `6.3 KiB (6483 bytes)`: the human form and the exact count.
pub fn bytes_both_ways(bytes: u64) -> String {
    let noun = if bytes == 1 { "byte" } else { "bytes" };
    format!("{} ({bytes} {noun})", human_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `human_bytes` of each count is the text beside it.
    fn check(cases: &[(u64, &str)]) {
        for &(bytes, want) in cases {
            assert_eq!(human_bytes(bytes), want, "{bytes} bytes");
        }
    }

    #[test]
    fn below_one_kib_is_plain_bytes() {
        check(&[(0, "0 B"), (1, "1 B"), (1023, "1023 B")]);
    }

    #[test]
    fn exact_multiples_have_no_decimal() {
        check(&[
            (1024, "1 KiB"),
            (4096, "4 KiB"),
            (2 << 20, "2 MiB"),
            (262_144_000, "250 MiB"),
            (3 << 30, "3 GiB"),
            (5 << 40, "5 TiB"),
            // TiB is the largest unit: 1 PiB is 1024 TiB.
            (1 << 50, "1024 TiB"),
        ]);
    }

    #[test]
    fn others_get_one_rounded_decimal() {
        check(&[
            (1025, "1.0 KiB"),
            (1536, "1.5 KiB"),
            (6483, "6.3 KiB"),
            // 1.25 KiB rounds half up; 1.2 KiB and a byte is still 1.2.
            (1280, "1.3 KiB"),
            (1229, "1.2 KiB"),
            ((1 << 30) + (1 << 29), "1.5 GiB"),
            ((1 << 40) + 1, "1.0 TiB"),
        ]);
    }

    #[test]
    fn rounding_up_to_the_next_unit_moves_to_it() {
        check(&[
            (1_048_575, "1.0 MiB"),
            (1_048_524, "1023.9 KiB"),
            ((1 << 40) - 1, "1.0 TiB"),
        ]);
    }

    #[test]
    fn the_largest_values_stay_in_tib() {
        check(&[
            (u64::MAX, "16777216.0 TiB"),
            (u64::MAX - (1 << 40) + 1, "16777215 TiB"),
        ]);
    }

    #[test]
    fn both_ways() {
        let cases = [
            (6483, "6.3 KiB (6483 bytes)"),
            (4096, "4 KiB (4096 bytes)"),
            (1, "1 B (1 byte)"),
            (0, "0 B (0 bytes)"),
        ];
        for (bytes, want) in cases {
            assert_eq!(bytes_both_ways(bytes), want);
        }
    }
}
