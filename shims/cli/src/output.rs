//! The two output formats: a line of text, or a JSON object, per path.

use std::fmt::Display;
use std::os::unix::ffi::OsStrExt;

use pmem2_source_std::{Error, FileType, codes};
use serde::Serialize;

use crate::inspect::{Outcome, Report};
use crate::listing::Target;
use crate::units::bytes_both_ways;

/// Bytes from outside the program (a path, a device name) as text that shows what they are
/// and cannot act on a terminal or forge a line, in the manner of `ls --quoting-style=escape`:
/// a backslash is `\\`; newline, tab and carriage return are `\n`, `\t`, `\r`; every other
/// control character (C0, DEL, C1), the Unicode line and paragraph separators and the
/// bidirectional-text controls are `\xHH` for each of their UTF-8 bytes (ESC is `\x1b`);
/// and a byte that is not part of valid UTF-8 is `\xHH` too. Any other character is itself.
///
/// The one rendering of such bytes in the text output; the core's messages escape what they
/// quote from sysfs in the same style (`\n`, `\xHH`, `\\`). JSON output does not use it.
pub fn escape(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => text.push_str("\\\\"),
                '\n' => text.push_str("\\n"),
                '\t' => text.push_str("\\t"),
                '\r' => text.push_str("\\r"),
                c if must_escape(c) => {
                    for &byte in c.encode_utf8(&mut [0; 4]).as_bytes() {
                        push_hex(&mut text, byte);
                    }
                }
                c => text.push(c),
            }
        }
        for &byte in chunk.invalid() {
            push_hex(&mut text, byte);
        }
    }
    text
}

fn push_hex(text: &mut String, byte: u8) {
    text.push_str(&format!("\\x{byte:02x}"));
}

/// Control characters, and the invisible characters that move text around on a terminal:
/// line and paragraph separators, and the bidirectional marks, embeddings, overrides and
/// isolates (which can show a line in another order than its bytes).
fn must_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `NAME (CODE): MESSAGE`; an unknown code is named `unknown error`.
fn failure(code: i32, message: impl Display) -> String {
    let name = codes::name(code).unwrap_or("unknown error");
    format!("{name} ({code}): {message}")
}

/// The text line for one path.
pub fn text_line(target: &Target, outcome: &Outcome) -> String {
    let label = target.label();
    match outcome {
        Outcome::Failed { errno, message } => {
            format!("{label}: {}", failure(-errno.raw(), message))
        }
        Outcome::Rejected(err) => format!("{label}: {}", failure(err.code(), err)),
        Outcome::Created(report) => format!("{label}: {}", describe(report)),
    }
}

fn describe(report: &Report) -> String {
    let field = |name: &str, value: String| format!("{name} {value}");
    let field_error = |name: &str, err: &Error| format!("{name}: {}", failure(err.code(), err));
    let size = match &report.size {
        Ok(size) => field("size", bytes_both_ways(*size)),
        Err(err) => field_error("size", err),
    };
    let alignment = match &report.alignment {
        Ok(alignment) => field("alignment", bytes_both_ways(*alignment as u64)),
        Err(err) => field_error("alignment", err),
    };
    let numa_node = match &report.numa_node {
        Ok(None) => String::new(),
        Ok(Some(-1)) => ", NUMA node -1 (no affinity reported)".to_string(),
        Ok(Some(node)) => format!(", NUMA node {node}"),
        Err(err) => format!(", {}", field_error("NUMA node", err)),
    };
    let access = report.access.as_str();
    format!(
        "{} (opened {access}), {size}, {alignment}{numa_node}",
        what(report)
    )
}

/// `regular file on device M:m, inode N` or `Device DAX M:m`.
fn what(report: &Report) -> String {
    let or_unknown = |value: Option<String>| value.unwrap_or_else(|| "?".to_string());
    let device = or_unknown(report.device.map(|device| device.to_string()));
    match report.file_type {
        Some(FileType::DeviceDax) => format!("Device DAX {device}"),
        Some(FileType::Regular) => {
            let inode = or_unknown(report.inode.map(|inode| inode.to_string()));
            format!("regular file on device {device}, inode {inode}")
        }
        None => "source of unknown type".to_string(),
    }
}

/// A failure in JSON: `{"code":…,"name":…,"message":…}` (`name` is null for a code with no
/// known name).
#[derive(Debug, Serialize)]
pub struct JsonError {
    code: i32,
    name: Option<&'static str>,
    message: String,
}

impl JsonError {
    fn new(code: i32, message: impl Display) -> JsonError {
        JsonError {
            code,
            name: codes::name(code),
            message: message.to_string(),
        }
    }

    fn of(err: &Error) -> JsonError {
        JsonError::new(err.code(), err)
    }
}

/// The JSON object for one path (serialized as one line).
#[derive(Debug, Serialize)]
pub struct Record {
    /// The path, with any bytes that are not UTF-8 replaced by U+FFFD…
    path: String,
    /// …in which case these are its exact bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    path_bytes: Option<Vec<u8>>,
    /// For a listed device: its name on the dax bus.
    #[serde(skip_serializing_if = "Option::is_none")]
    dax_device: Option<String>,
    usable: bool,
    #[serde(flatten)]
    details: Details,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Details {
    Created(Box<Created>),
    Failed { error: JsonError },
}

#[derive(Debug, Serialize)]
struct Created {
    file_type: Option<&'static str>,
    device: Option<String>,
    inode: Option<u64>,
    access: &'static str,
    size: Option<u64>,
    alignment: Option<usize>,
    numa_node: Option<i32>,
    #[serde(skip_serializing_if = "FieldErrors::is_empty")]
    errors: FieldErrors,
}

/// The queries that failed on a created source, each with its error.
#[derive(Debug, Default, Serialize)]
struct FieldErrors {
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<JsonError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alignment: Option<JsonError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    numa_node: Option<JsonError>,
}

impl FieldErrors {
    fn is_empty(&self) -> bool {
        self.size.is_none() && self.alignment.is_none() && self.numa_node.is_none()
    }
}

/// The value of a query, or `None` with its error recorded in `slot`.
fn answer<T: Copy>(result: &Result<T, Error>, slot: &mut Option<JsonError>) -> Option<T> {
    match result {
        Ok(value) => Some(*value),
        Err(err) => {
            *slot = Some(JsonError::of(err));
            None
        }
    }
}

impl Record {
    pub fn new(target: &Target, outcome: &Outcome) -> Record {
        let bytes = target.path.as_os_str().as_bytes();
        let path = String::from_utf8_lossy(bytes).into_owned();
        let path_bytes = std::str::from_utf8(bytes).is_err().then(|| bytes.to_vec());
        let details = match outcome {
            Outcome::Failed { errno, message } => Details::Failed {
                error: JsonError::new(-errno.raw(), message),
            },
            Outcome::Rejected(err) => Details::Failed {
                error: JsonError::of(err),
            },
            Outcome::Created(report) => Details::Created(Box::new(created(report))),
        };
        Record {
            path,
            path_bytes,
            dax_device: target
                .dax_device
                .as_ref()
                .map(|name| name.to_string_lossy().into_owned()),
            usable: outcome.usable(),
            details,
        }
    }

    /// The object on one line (no newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a Record always serializes")
    }
}

fn created(report: &Report) -> Created {
    let mut errors = FieldErrors::default();
    let size = answer(&report.size, &mut errors.size);
    let alignment = answer(&report.alignment, &mut errors.alignment);
    let numa_node = answer(&report.numa_node, &mut errors.numa_node).flatten();
    Created {
        file_type: report.file_type.map(|file_type| match file_type {
            FileType::Regular => "regular",
            FileType::DeviceDax => "devdax",
        }),
        device: report.device.map(|device| device.to_string()),
        inode: report.inode,
        access: report.access.as_str(),
        size,
        alignment,
        numa_node,
        errors,
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::path::PathBuf;

    use pmem2_source_std::{DeviceNumber, Errno};

    use super::*;
    use crate::inspect::Access;

    fn target(path: &str) -> Target {
        Target::path(PathBuf::from(path))
    }

    fn with(report: Report) -> Outcome {
        Outcome::Created(Box::new(report))
    }

    fn dax_report() -> Report {
        Report {
            file_type: Some(FileType::DeviceDax),
            device: Some(DeviceNumber::from_raw(libc::makedev(251, 0))),
            inode: Some(7),
            access: Access::ReadWrite,
            size: Ok(262_144_000),
            alignment: Ok(2 << 20),
            numa_node: Ok(Some(1)),
        }
    }

    #[test]
    fn open_failure() {
        let outcome = Outcome::failed("open", Errno::ENOENT);
        assert_eq!(
            text_line(&target("/x"), &outcome),
            "/x: ENOENT (-2): open: No such file or directory"
        );
        assert_eq!(
            Record::new(&target("/x"), &outcome).to_line(),
            r#"{"path":"/x","usable":false,"error":{"code":-2,"name":"ENOENT","message":"open: No such file or directory"}}"#
        );
        let outcome = Outcome::failed("open", Errno::from_raw(4000));
        assert_eq!(
            text_line(&target("/x"), &outcome),
            "/x: unknown error (-4000): open: Unknown error 4000"
        );
        assert_eq!(
            Record::new(&target("/x"), &outcome).to_line(),
            r#"{"path":"/x","usable":false,"error":{"code":-4000,"name":null,"message":"open: Unknown error 4000"}}"#
        );
    }

    #[test]
    fn device_dax() {
        let outcome = with(dax_report());
        assert!(outcome.usable());
        assert_eq!(
            text_line(&target("/dev/dax0.0"), &outcome),
            "/dev/dax0.0: Device DAX 251:0 (opened read-write), size 250 MiB (262144000 bytes), \
             alignment 2 MiB (2097152 bytes), NUMA node 1"
        );
        assert_eq!(
            Record::new(&target("/dev/dax0.0"), &outcome).to_line(),
            r#"{"path":"/dev/dax0.0","usable":true,"file_type":"devdax","device":"251:0","inode":7,"access":"read-write","size":262144000,"alignment":2097152,"numa_node":1}"#
        );
    }

    #[test]
    fn numa_node_unknown_or_none_reported() {
        let unknown = with(Report {
            numa_node: Ok(None),
            ..dax_report()
        });
        assert!(unknown.usable());
        assert!(text_line(&target("d"), &unknown).ends_with("alignment 2 MiB (2097152 bytes)"));
        assert!(
            Record::new(&target("d"), &unknown)
                .to_line()
                .ends_with(r#""numa_node":null}"#)
        );
        let none = with(Report {
            numa_node: Ok(Some(-1)),
            ..dax_report()
        });
        assert!(text_line(&target("d"), &none).ends_with(", NUMA node -1 (no affinity reported)"));
    }

    #[test]
    fn field_errors() {
        let bad_size = pmem2_source_std::Error::from(pmem2_source::Error::FileChanged { fd: 3 });
        let outcome = with(Report {
            size: Err(bad_size.clone()),
            numa_node: Err(bad_size.clone()),
            ..dax_report()
        });
        assert!(!outcome.usable());
        let message = bad_size.to_string();
        let code = bad_size.code();
        let name = bad_size.name();
        assert_eq!(
            text_line(&target("d"), &outcome),
            format!(
                "d: Device DAX 251:0 (opened read-write), size: {name} ({code}): {message}, \
                 alignment 2 MiB (2097152 bytes), NUMA node: {name} ({code}): {message}"
            )
        );
        let error = format!(r#"{{"code":{code},"name":"{name}","message":"{message}"}}"#);
        assert_eq!(
            Record::new(&target("d"), &outcome).to_line(),
            format!(
                r#"{{"path":"d","usable":false,"file_type":"devdax","device":"251:0","inode":7,"access":"read-write","size":null,"alignment":2097152,"numa_node":null,"errors":{{"size":{error},"numa_node":{error}}}}}"#
            )
        );
    }

    #[test]
    fn paths_are_escaped_and_non_utf8_kept_exactly() {
        let outcome = Outcome::failed("open", Errno::ENOENT);
        let quoted = Record::new(&target("a\"b\\c\nd"), &outcome).to_line();
        assert!(
            quoted.starts_with(r#"{"path":"a\"b\\c\nd","usable":false"#),
            "{quoted}"
        );
        let raw = Target::path(PathBuf::from(OsStr::from_bytes(b"x\xffy")));
        let line = Record::new(&raw, &outcome).to_line();
        assert!(
            line.starts_with("{\"path\":\"x\u{fffd}y\",\"path_bytes\":[120,255,121],\"usable\""),
            "{line}"
        );
        // The text output shows the byte itself, escaped.
        assert_eq!(text_line(&raw, &outcome).split(':').next(), Some("x\\xffy"));
    }

    #[test]
    fn escaping() {
        let cases: [(&[u8], &str); 9] = [
            (
                b"plain /dev/dax0.0 caf\xc3\xa9",
                "plain /dev/dax0.0 caf\u{e9}",
            ),
            (b"a\nb\tc\rd", "a\\nb\\tc\\rd"),
            (b"back\\slash \\n", "back\\\\slash \\\\n"),
            (b"\x1b[31mred\x07\x00\x7f", "\\x1b[31mred\\x07\\x00\\x7f"),
            // C1 controls (CSI, NEL) as their UTF-8 bytes; a lone continuation byte too.
            ("\u{9b}2J\u{85}".as_bytes(), "\\xc2\\x9b2J\\xc2\\x85"),
            (b"\xff\xfe\x80", "\\xff\\xfe\\x80"),
            // A truncated sequence, then ASCII.
            (b"\xe2\x82x", "\\xe2\\x82x"),
            // Bidirectional override and line separator.
            (
                "a\u{202e}b\u{2028}c".as_bytes(),
                "a\\xe2\\x80\\xaeb\\xe2\\x80\\xa8c",
            ),
            (b"", ""),
        ];
        for (bytes, want) in cases {
            assert_eq!(escape(bytes), want, "{bytes:?}");
        }
    }

    #[test]
    fn listed_devices_carry_their_name() {
        let listed = Target {
            path: PathBuf::from("/dev/char/251:0"),
            dax_device: Some("dax0.0".into()),
        };
        let outcome = with(dax_report());
        assert!(text_line(&listed, &outcome).starts_with("/dev/char/251:0 (dax0.0): Device DAX"));
        assert!(
            Record::new(&listed, &outcome)
                .to_line()
                .starts_with(r#"{"path":"/dev/char/251:0","dax_device":"dax0.0","usable":true,"#)
        );
    }
}
