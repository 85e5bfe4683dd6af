//! Shared by the C-ABI integration tests: building and locating `libpmem2_source.so`/`.a`,
//! and loading shared libraries with `dlopen` the way a C program would.
#![allow(dead_code)] // each test file uses a different part

use std::ffi::{CStr, CString, c_void};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// `target/<profile>`: where cargo puts this package's libraries.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test binary>
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// Builds the cdylib and staticlib (cargo does not build them for integration tests, which
/// link only rlibs) once per test binary, and returns `target/<profile>`.
///
/// Nested cargo in the same target directory is fine here: the outer `cargo test` releases
/// its build lock before it runs test binaries.
pub fn built_libraries() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = profile_dir();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let mut command = Command::new(cargo);
        command.args(["build", "--quiet", "-p", "pmem2-source-capi", "--lib"]);
        if dir.file_name().is_some_and(|name| name == "release") {
            command.arg("--release");
        }
        let output = command.output().expect("run cargo build");
        assert!(
            output.status.success(),
            "building libpmem2_source failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        for name in ["libpmem2_source.so", "libpmem2_source.a"] {
            assert!(
                dir.join(name).is_file(),
                "{} was not built",
                dir.join(name).display()
            );
        }
        dir
    })
}

/// Path of our shared library (built on first use).
pub fn our_shared_library() -> PathBuf {
    built_libraries().join("libpmem2_source.so")
}

/// Path of our static library (built on first use).
pub fn our_static_library() -> PathBuf {
    built_libraries().join("libpmem2_source.a")
}

/// The include directory holding `pmem2_source.h`.
pub fn our_include_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("include")
}

/// Debian's libpmem2 1.12.1, the reference.
pub const REFERENCE_LIBRARY: &str = "libpmem2.so.1";

/// True when running in CI, where a missing reference or tool is a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true")
}

/// A library opened with `dlopen(RTLD_NOW | RTLD_LOCAL)`; closed on drop.
pub struct Library {
    handle: *mut c_void,
    name: String,
}

// SAFETY: a dlopen handle may be used from any thread (dlsym and dlclose are thread-safe).
unsafe impl Send for Library {}
// SAFETY: as above; the handle is never mutated.
unsafe impl Sync for Library {}

impl Library {
    /// Opens `name` (a path, or a soname searched like `dlopen` does).
    pub fn open(name: &str) -> Result<Library, String> {
        let c_name = CString::new(name).map_err(|e| e.to_string())?;
        // SAFETY: c_name is a valid C string; RTLD_LOCAL keeps the library's symbols out of
        // the global scope, so two implementations of one API can be loaded side by side.
        let handle = unsafe { libc::dlopen(c_name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            return Err(format!("dlopen {name}: {}", dlerror()));
        }
        Ok(Library {
            handle,
            name: name.to_string(),
        })
    }

    /// The address of `symbol`, cast to the function pointer type `F`.
    ///
    /// # Safety
    /// `F` must be the C signature of `symbol` (an `unsafe extern "C" fn`).
    pub unsafe fn get<F: Copy>(&self, symbol: &CStr) -> F {
        assert_eq!(
            size_of::<F>(),
            size_of::<*mut c_void>(),
            "F must be a function pointer"
        );
        // SAFETY: handle is live; symbol is a valid C string.
        let address = unsafe { libc::dlsym(self.handle, symbol.as_ptr()) };
        assert!(
            !address.is_null(),
            "{}: no symbol {symbol:?}: {}",
            self.name,
            dlerror()
        );
        // SAFETY: F is a function pointer type of the symbol's signature (caller's promise),
        // and function pointers have the size and representation of a data pointer here.
        unsafe { std::mem::transmute_copy::<*mut c_void, F>(&address) }
    }
}

impl Drop for Library {
    fn drop(&mut self) {
        // SAFETY: handle came from dlopen and is closed once.
        unsafe { libc::dlclose(self.handle) };
    }
}

fn dlerror() -> String {
    // SAFETY: dlerror returns NULL or a valid C string describing the last dl* failure.
    let text = unsafe { libc::dlerror() };
    if text.is_null() {
        return "unknown error".to_string();
    }
    // SAFETY: non-NULL, NUL-terminated (see above).
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}
