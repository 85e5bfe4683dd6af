//! Shared by the C-ABI integration tests: building and locating `libpmem2_source.so`/`.a`,
//! loading shared libraries with `dlopen` the way a C program would, and the
//! `pmem2_source_*` functions of a loaded library ([`SourceApi`]).
#![allow(dead_code)] // each test file uses a different part

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::fmt;
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

/// Names a prebuilt `libpmem2_source.so` to test instead of building one: the Device DAX
/// guest of `tests/devdax-vm/run.sh` has the test binaries but no cargo.
pub const OUR_LIBRARY_VAR: &str = "PMEM2_SOURCE_SO";

/// Path of our shared library: `$PMEM2_SOURCE_SO` if set, else built on first use.
pub fn our_shared_library() -> PathBuf {
    if let Some(path) = std::env::var_os(OUR_LIBRARY_VAR) {
        return PathBuf::from(path);
    }
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

/// `struct pmem2_source`, opaque to both libraries' callers.
pub type Src = c_void;

/// `int pmem2_source_from_fd(struct pmem2_source **src, int fd)`.
pub type FromFd = unsafe extern "C" fn(*mut *mut Src, c_int) -> c_int;
/// `int pmem2_source_from_anon(struct pmem2_source **src, size_t size)`.
pub type FromAnon = unsafe extern "C" fn(*mut *mut Src, usize) -> c_int;
/// `int pmem2_source_get_fd(const struct pmem2_source *src, int *fd)`.
pub type GetFd = unsafe extern "C" fn(*const Src, *mut c_int) -> c_int;
/// `int pmem2_source_delete(struct pmem2_source **src)`, and libpmem2's other
/// `int pmem2_*_delete(struct pmem2_* **)` functions.
pub type Delete = unsafe extern "C" fn(*mut *mut Src) -> c_int;
/// `const char *pmem2_errormsg(void)`.
pub type ErrorMsg = unsafe extern "C" fn() -> *const c_char;
/// `int pmem2_source_size(const struct pmem2_source *src, size_t *size)`, and
/// `pmem2_source_alignment`, which has the same type.
pub type SizeQuery = unsafe extern "C" fn(*const Src, *mut usize) -> c_int;
/// `int pmem2_source_numa_node(const struct pmem2_source *src, int *numa_node)`.
pub type NumaNode = unsafe extern "C" fn(*const Src, *mut c_int) -> c_int;
/// `int pmem2_source_device_id(const struct pmem2_source *src, char *id, size_t *len)`.
pub type DeviceId = unsafe extern "C" fn(*const Src, *mut c_char, *mut usize) -> c_int;
/// `int pmem2_source_device_usc(const struct pmem2_source *src, uint64_t *usc)`.
pub type DeviceUsc = unsafe extern "C" fn(*const Src, *mut u64) -> c_int;
/// `int pmem2_source_pread_mcsafe(struct pmem2_source *src, void *buf, size_t size,
/// size_t offset)`, and `pmem2_source_pwrite_mcsafe`, which has the same type.
pub type Mcsafe = unsafe extern "C" fn(*mut Src, *mut c_void, usize, usize) -> c_int;

/// One library's source functions (ours or libpmem2's), resolved with `dlsym`.
///
/// Holds only the function pointers: the [`Library`] they came from must outlive every
/// call, which the caller sees to by keeping it alive.
#[derive(Clone, Copy)]
pub struct SourceApi {
    /// Which library, for messages: `"ours"` or `"libpmem2"`.
    pub name: &'static str,
    pub from_fd: FromFd,
    pub from_anon: FromAnon,
    pub get_fd: GetFd,
    pub delete: Delete,
    pub errormsg: ErrorMsg,
    pub size: SizeQuery,
    pub alignment: SizeQuery,
    pub numa_node: NumaNode,
    pub device_id: DeviceId,
    pub device_usc: DeviceUsc,
    pub pread_mcsafe: Mcsafe,
    pub pwrite_mcsafe: Mcsafe,
}

impl fmt::Debug for SourceApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl SourceApi {
    /// Resolves the source functions of `library`, which must implement libpmem2's source
    /// API (`<libpmem2.h>`): our `libpmem2_source.so` or libpmem2 itself. Panics on a
    /// missing symbol.
    pub fn load(name: &'static str, library: &Library) -> SourceApi {
        SourceApi {
            name,
            // SAFETY: `FromFd` is <libpmem2.h>'s prototype of the symbol, which `library`
            // implements (see above); likewise for the others below.
            from_fd: unsafe { library.get::<FromFd>(c"pmem2_source_from_fd") },
            // SAFETY: `FromAnon` is the symbol's prototype.
            from_anon: unsafe { library.get::<FromAnon>(c"pmem2_source_from_anon") },
            // SAFETY: `GetFd` is the symbol's prototype.
            get_fd: unsafe { library.get::<GetFd>(c"pmem2_source_get_fd") },
            // SAFETY: `Delete` is the symbol's prototype.
            delete: unsafe { library.get::<Delete>(c"pmem2_source_delete") },
            // SAFETY: `ErrorMsg` is the symbol's prototype.
            errormsg: unsafe { library.get::<ErrorMsg>(c"pmem2_errormsg") },
            // SAFETY: `SizeQuery` is the symbol's prototype.
            size: unsafe { library.get::<SizeQuery>(c"pmem2_source_size") },
            // SAFETY: `SizeQuery` is the symbol's prototype.
            alignment: unsafe { library.get::<SizeQuery>(c"pmem2_source_alignment") },
            // SAFETY: `NumaNode` is the symbol's prototype.
            numa_node: unsafe { library.get::<NumaNode>(c"pmem2_source_numa_node") },
            // SAFETY: `DeviceId` is the symbol's prototype.
            device_id: unsafe { library.get::<DeviceId>(c"pmem2_source_device_id") },
            // SAFETY: `DeviceUsc` is the symbol's prototype.
            device_usc: unsafe { library.get::<DeviceUsc>(c"pmem2_source_device_usc") },
            // SAFETY: `Mcsafe` is the symbol's prototype.
            pread_mcsafe: unsafe { library.get::<Mcsafe>(c"pmem2_source_pread_mcsafe") },
            // SAFETY: `Mcsafe` is the symbol's prototype.
            pwrite_mcsafe: unsafe { library.get::<Mcsafe>(c"pmem2_source_pwrite_mcsafe") },
        }
    }

    /// `pmem2_errormsg()`: the calling thread's message buffer.
    pub fn message_ptr(&self) -> *const c_char {
        // SAFETY: pmem2_errormsg takes no arguments and has no preconditions.
        unsafe { (self.errormsg)() }
    }

    /// A copy of the calling thread's message. Panics if `pmem2_errormsg` returns NULL.
    pub fn message(&self) -> String {
        let text = self.message_ptr();
        assert!(
            !text.is_null(),
            "{}: pmem2_errormsg returned NULL",
            self.name
        );
        // SAFETY: non-NULL, and both libraries return the calling thread's NUL-terminated
        // buffer, which only this thread's calls change; it makes none while this copies it.
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned()
    }

    /// `pmem2_source_from_fd(src, fd)`.
    pub fn source_from_fd(&self, src: &mut *mut Src, fd: c_int) -> c_int {
        // SAFETY: `src` is valid for writes; both libraries accept any fd number.
        unsafe { (self.from_fd)(src, fd) }
    }

    /// `pmem2_source_from_anon(src, size)`.
    pub fn source_from_anon(&self, src: &mut *mut Src, size: usize) -> c_int {
        // SAFETY: `src` is valid for writes; both libraries accept any size.
        unsafe { (self.from_anon)(src, size) }
    }

    /// `pmem2_source_get_fd(src, fd)`.
    ///
    /// # Safety
    /// `src` is a live source of this library.
    pub unsafe fn source_get_fd(&self, src: *const Src, fd: &mut c_int) -> c_int {
        // SAFETY: `src` is live (caller's promise) and `fd` valid for writes.
        unsafe { (self.get_fd)(src, fd) }
    }

    /// `pmem2_source_delete(src)`.
    ///
    /// # Safety
    /// `*src` is NULL or a live source of this library, given up here.
    pub unsafe fn source_delete(&self, src: &mut *mut Src) -> c_int {
        // SAFETY: `src` is valid for reads and writes; `*src` per the caller's promise.
        unsafe { (self.delete)(src) }
    }
}
