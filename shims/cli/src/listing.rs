//! With no PATH: every Device DAX on the machine, from `/sys/bus/dax/devices`.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::located::Located;
use crate::output::escape;

/// Where the kernel lists the devices on the dax bus (one entry per device, `dax0.0`, …).
pub const DAX_BUS_DEVICES: &str = "/sys/bus/dax/devices";

/// A path to check: given on the command line, or a listed Device DAX.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// What is opened.
    pub path: PathBuf,
    /// For a listed device: its name on the dax bus (`dax0.0`).
    pub dax_device: Option<OsString>,
}

impl Target {
    pub fn path(path: PathBuf) -> Target {
        Target {
            path,
            dax_device: None,
        }
    }

    /// The name of the path in the text output: the path, and for a listed device reached
    /// by another name than its own, that name too (`/dev/char/251:0 (dax0.0)`); each
    /// [`escape`]d.
    pub fn label(&self) -> String {
        let path = escape(self.path.as_os_str().as_bytes());
        match &self.dax_device {
            Some(name) if self.path.file_name() != Some(name.as_os_str()) => {
                format!("{path} ({})", escape(name.as_bytes()))
            }
            _ => path,
        }
    }
}

/// What the listing found.
#[derive(Debug, PartialEq, Eq)]
pub enum Listing {
    /// The devices, by name.
    Devices(Vec<Target>),
    /// The directory is there but empty.
    Empty,
    /// There is no such directory (no dax bus: the kernel has no Device DAX support loaded).
    Missing,
}

/// The Device DAX devices listed in `dir` (normally [`DAX_BUS_DEVICES`]), sorted by name.
///
/// Each is opened as `/dev/NAME`; where there is no such node (udev names it otherwise),
/// `/dev/char/M:m` (udev's link by number, M:m from the entry's `dev` attribute) if that
/// exists. Failing both, `/dev/NAME` is reported (and fails to open).
pub fn dax_devices(dir: &Path) -> io::Result<Listing> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Listing::Missing),
        Err(err) => return Err(err),
    };
    let mut names = entries
        .map(|entry| entry.map(|entry| entry.file_name()))
        .collect::<io::Result<Vec<_>>>()?;
    if names.is_empty() {
        return Ok(Listing::Empty);
    }
    names.sort();
    let devices = names
        .into_iter()
        .map(|name| Target {
            path: device_node(Path::new("/dev"), &dir.join(&name), &name),
            dax_device: Some(name),
        })
        .collect();
    Ok(Listing::Devices(devices))
}

/// `dev/NAME`, or `dev/char/M:m` if only that exists.
fn device_node(dev: &Path, entry: &Path, name: &OsString) -> PathBuf {
    let by_name = dev.join(name);
    if by_name.symlink_metadata().is_ok() {
        return by_name;
    }
    let attribute = read_attribute(&entry.join("dev"), DEV_ATTRIBUTE_MAX);
    let by_number = attribute.as_deref().and_then(|bytes| {
        let text = std::str::from_utf8(bytes).ok()?;
        device_number(text).map(|number| dev.join("char").join(number))
    });
    match by_number {
        Some(path) if path.symlink_metadata().is_ok() => path,
        _ => by_name,
    }
}

/// The longest `dev` attribute, `4294967295:4294967295\n`, is 22 bytes.
const DEV_ATTRIBUTE_MAX: u64 = 32;

/// The contents of the small sysfs attribute at `path`, if it is a regular file of at most
/// `limit` bytes. Anything else is `None` without being opened (a FIFO would block the read,
/// or lose a writer its data), or after reading at most `limit + 1` bytes (a link to
/// `/dev/zero` would never end): see [`crate::located`].
fn read_attribute(path: &Path, limit: u64) -> Option<Vec<u8>> {
    let located = Located::new(path).ok()?;
    if !located.metadata().is_file() {
        return None;
    }
    let file = located.reopen(false).ok()?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= limit).then_some(bytes)
}

/// The `M:m` in a `dev` attribute (`"251:0\n"`), if it is one.
fn device_number(text: &str) -> Option<&str> {
    let number = text.strip_suffix('\n').unwrap_or(text);
    let (major, minor) = number.split_once(':')?;
    let decimal = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    (decimal(major) && decimal(minor)).then_some(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_attribute() {
        assert_eq!(device_number("251:0\n"), Some("251:0"));
        assert_eq!(device_number("1:3"), Some("1:3"));
        assert_eq!(device_number("1:3\n\n"), None);
        assert_eq!(device_number(":3\n"), None);
        assert_eq!(device_number("1:\n"), None);
        assert_eq!(device_number("../1:3\n"), None);
        assert_eq!(device_number("1:3:4\n"), None);
    }

    #[test]
    fn labels() {
        let given = Target::path(PathBuf::from("/dev/dax0.0"));
        assert_eq!(given.label(), "/dev/dax0.0");
        let listed = Target {
            path: PathBuf::from("/dev/dax0.0"),
            dax_device: Some("dax0.0".into()),
        };
        assert_eq!(listed.label(), "/dev/dax0.0");
        let by_number = Target {
            path: PathBuf::from("/dev/char/251:0"),
            dax_device: Some("dax0.0".into()),
        };
        assert_eq!(by_number.label(), "/dev/char/251:0 (dax0.0)");
    }

    #[test]
    fn node_by_name_then_by_number() {
        let root =
            std::env::temp_dir().join(format!("pmem2-source-cli-node-{}", std::process::id()));
        let (dev, entry) = (root.join("dev"), root.join("dax0.0"));
        fs::create_dir_all(dev.join("char")).expect("mkdir dev/char");
        fs::create_dir(&entry).expect("mkdir entry");
        let name = OsString::from("dax0.0");
        let node = || device_node(&dev, &entry, &name);
        // No dev attribute, no node: /dev/NAME.
        let neither = node();
        fs::write(entry.join("dev"), "251:0\n").expect("dev");
        let still_neither = node();
        fs::write(dev.join("char/251:0"), "").expect("char/251:0");
        let by_number = node();
        fs::write(dev.join("dax0.0"), "").expect("dax0.0");
        let by_name = node();
        fs::remove_dir_all(&root).expect("clean up");
        assert_eq!(neither, dev.join("dax0.0"));
        assert_eq!(still_neither, dev.join("dax0.0"));
        assert_eq!(by_number, dev.join("char/251:0"));
        assert_eq!(by_name, dev.join("dax0.0"));
    }

    /// `device_node` with an entry whose `dev` attribute is `make`'s, and no `dev/NAME`
    /// node: run in a thread, with a watchdog so that a read that never ends fails the test
    /// instead of hanging it.
    fn node_with_dev_attribute(tag: &str, make: fn(&Path)) -> PathBuf {
        let root = std::env::temp_dir().join(format!(
            "pmem2-source-cli-attr-{tag}-{}",
            std::process::id()
        ));
        let (dev, entry) = (root.join("dev"), root.join("dax0.0"));
        fs::create_dir_all(dev.join("char")).expect("mkdir dev/char");
        fs::create_dir(&entry).expect("mkdir entry");
        // Were the attribute read, it would name this node.
        fs::write(dev.join("char/1:3"), "").expect("char/1:3");
        make(&entry.join("dev"));
        let (sender, receiver) = std::sync::mpsc::channel();
        let (dev_in, entry_in) = (dev.clone(), entry.clone());
        std::thread::spawn(move || {
            let node = device_node(&dev_in, &entry_in, &OsString::from("dax0.0"));
            let _ = sender.send(node);
        });
        let node = receiver.recv_timeout(std::time::Duration::from_secs(60));
        let _ = fs::remove_dir_all(&root);
        let node = node.unwrap_or_else(|_| panic!("{tag}: reading the dev attribute never ended"));
        assert_eq!(
            node,
            dev.join("dax0.0"),
            "{tag}: the attribute must not be used"
        );
        node
    }

    /// A `dev` attribute that is a FIFO, a link to `/dev/zero`, or a regular file holding
    /// more than a device number is not read (or not past its bound): `/dev/NAME` is
    /// reported.
    #[test]
    fn dev_attribute_must_be_a_small_regular_file() {
        node_with_dev_attribute("fifo", |path| {
            let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("no NUL");
            // SAFETY: `c_path` is a live NUL-terminated string.
            let ret = unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) };
            assert_eq!(ret, 0, "mkfifo: {}", io::Error::last_os_error());
        });
        node_with_dev_attribute("zero", |path| {
            std::os::unix::fs::symlink("/dev/zero", path).expect("symlink");
        });
        node_with_dev_attribute("long", |path| {
            fs::write(path, format!("1:3\n{}", "\n".repeat(100))).expect("write");
        });
        // Within the bound it is read.
        let root =
            std::env::temp_dir().join(format!("pmem2-source-cli-attr-ok-{}", std::process::id()));
        fs::create_dir_all(root.join("dev/char")).expect("mkdir");
        fs::create_dir(root.join("e")).expect("mkdir");
        fs::write(root.join("dev/char/1:3"), "").expect("char/1:3");
        fs::write(root.join("e/dev"), "1:3\n").expect("dev");
        let node = device_node(&root.join("dev"), &root.join("e"), &"dax0.0".into());
        fs::remove_dir_all(&root).expect("clean up");
        assert_eq!(node, root.join("dev/char/1:3"));
    }

    /// A missing directory, an empty one, and one with entries (their nodes do not exist
    /// in /dev, so each is reported as `/dev/NAME`).
    #[test]
    fn listing_a_directory() {
        let dir =
            std::env::temp_dir().join(format!("pmem2-source-cli-list-{}", std::process::id()));
        assert_eq!(dax_devices(&dir).expect("missing"), Listing::Missing);
        fs::create_dir(&dir).expect("mkdir");
        assert_eq!(dax_devices(&dir).expect("empty"), Listing::Empty);
        for name in ["pmem2-test-dax1.0", "pmem2-test-dax0.0"] {
            fs::create_dir(dir.join(name)).expect("mkdir entry");
            fs::write(dir.join(name).join("dev"), "4095:1048575\n").expect("dev");
        }
        let listing = dax_devices(&dir);
        fs::remove_dir_all(&dir).expect("clean up");
        let targets = ["pmem2-test-dax0.0", "pmem2-test-dax1.0"].map(|name| Target {
            path: Path::new("/dev").join(name),
            dax_device: Some(name.into()),
        });
        assert_eq!(listing.expect("listed"), Listing::Devices(targets.to_vec()));
    }
}
