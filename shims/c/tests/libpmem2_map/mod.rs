//! libpmem2's mapping functions over a source of ours: the mixed tests load our
//! `libpmem2_source.so` and Debian's `libpmem2.so.1` side by side (see `support`), make a
//! source with *our* functions and map it with *libpmem2's* `pmem2_map_new`.
#![allow(dead_code)] // each test file uses a different part

use std::ffi::{c_int, c_void};
use std::ptr::null_mut;

use crate::support::{Delete, Library, SourceApi};

pub type SourceQuery = unsafe extern "C" fn(*const c_void, *mut usize) -> c_int;
pub type ConfigNew = unsafe extern "C" fn(*mut *mut c_void) -> c_int;
pub type SetGranularity = unsafe extern "C" fn(*mut c_void, c_int) -> c_int;
pub type MapNew = unsafe extern "C" fn(*mut *mut c_void, *const c_void, *const c_void) -> c_int;
pub type MapGetAddress = unsafe extern "C" fn(*mut c_void) -> *mut c_void;
pub type MapGetSize = unsafe extern "C" fn(*mut c_void) -> usize;
pub type PersistFn = unsafe extern "C" fn(*const c_void, usize);
pub type GetPersistFn = unsafe extern "C" fn(*mut c_void) -> Option<PersistFn>;

/// `PMEM2_GRANULARITY_PAGE` of libpmem2's `enum pmem2_granularity`.
pub const PMEM2_GRANULARITY_PAGE: c_int = 2;

/// Source calls that must succeed, over either implementation's [`SourceApi`].
pub trait MustSucceed {
    /// A new source for `fd`.
    fn fd_source(&self, fd: c_int) -> *mut c_void;
    /// A new anonymous source of `size` bytes.
    fn anon_source(&self, size: usize) -> *mut c_void;
    /// Deletes `src`.
    ///
    /// # Safety
    /// `src` came from this implementation and is not used afterwards.
    unsafe fn delete_source(&self, src: *mut c_void);
}

impl MustSucceed for SourceApi {
    fn fd_source(&self, fd: c_int) -> *mut c_void {
        let mut src = null_mut();
        let code = self.source_from_fd(&mut src, fd);
        assert_eq!(code, 0, "from_fd: {}", self.message());
        src
    }

    fn anon_source(&self, size: usize) -> *mut c_void {
        let mut src = null_mut();
        let code = self.source_from_anon(&mut src, size);
        assert_eq!(code, 0, "from_anon: {}", self.message());
        src
    }

    unsafe fn delete_source(&self, mut src: *mut c_void) {
        // SAFETY: `src` is a live source of this implementation, given up here (caller's
        // promise).
        assert_eq!(unsafe { self.source_delete(&mut src) }, 0);
        assert!(src.is_null());
    }
}

/// libpmem2's mapping functions, and its source accessors.
pub struct MapApi {
    pub config_new: ConfigNew,
    pub config_delete: Delete,
    pub set_granularity: SetGranularity,
    pub map_new: MapNew,
    pub map_delete: Delete,
    pub get_address: MapGetAddress,
    pub get_size: MapGetSize,
    pub get_persist_fn: GetPersistFn,
    pub source_size: SourceQuery,
    pub source_alignment: SourceQuery,
}

impl MapApi {
    pub fn load(lib: &Library) -> MapApi {
        MapApi {
            // SAFETY: `int (struct pmem2_config **)`.
            config_new: unsafe { lib.get::<ConfigNew>(c"pmem2_config_new") },
            // SAFETY: `int (struct pmem2_config **)`.
            config_delete: unsafe { lib.get::<Delete>(c"pmem2_config_delete") },
            // SAFETY: `int (struct pmem2_config *, enum pmem2_granularity)`; the enum is an int.
            set_granularity: unsafe {
                lib.get::<SetGranularity>(c"pmem2_config_set_required_store_granularity")
            },
            // SAFETY: `int (struct pmem2_map **, const struct pmem2_config *,
            // const struct pmem2_source *)`.
            map_new: unsafe { lib.get::<MapNew>(c"pmem2_map_new") },
            // SAFETY: `int (struct pmem2_map **)`.
            map_delete: unsafe { lib.get::<Delete>(c"pmem2_map_delete") },
            // SAFETY: `void *(struct pmem2_map *)`.
            get_address: unsafe { lib.get::<MapGetAddress>(c"pmem2_map_get_address") },
            // SAFETY: `size_t (struct pmem2_map *)`.
            get_size: unsafe { lib.get::<MapGetSize>(c"pmem2_map_get_size") },
            // SAFETY: `pmem2_persist_fn (struct pmem2_map *)`, a nullable function pointer.
            get_persist_fn: unsafe { lib.get::<GetPersistFn>(c"pmem2_get_persist_fn") },
            // SAFETY: `int (const struct pmem2_source *, size_t *)`.
            source_size: unsafe { lib.get::<SourceQuery>(c"pmem2_source_size") },
            // SAFETY: `int (const struct pmem2_source *, size_t *)`.
            source_alignment: unsafe { lib.get::<SourceQuery>(c"pmem2_source_alignment") },
        }
    }
}

/// Maps `src` (one of ours) with libpmem2, page granularity; checks the size; calls `use_it`
/// with the mapping and libpmem2's persist function; unmaps.
///
/// # Safety
/// `src` is a live source of ours whose size is `size` bytes.
pub unsafe fn with_libpmem2_mapping(
    libpmem2: &SourceApi,
    map_api: &MapApi,
    src: *mut c_void,
    size: usize,
    use_it: impl FnOnce(&mut [u8], PersistFn),
) {
    let mut cfg = null_mut();
    // SAFETY: `cfg` is a valid out-pointer.
    let code = unsafe { (map_api.config_new)(&mut cfg) };
    assert_eq!(code, 0, "pmem2_config_new: {}", libpmem2.message());
    // SAFETY: `cfg` is libpmem2's live config.
    let code = unsafe { (map_api.set_granularity)(cfg, PMEM2_GRANULARITY_PAGE) };
    assert_eq!(
        code,
        0,
        "set_required_store_granularity: {}",
        libpmem2.message()
    );

    let mut map = null_mut();
    // SAFETY: `map` is a valid out-pointer, `cfg` libpmem2's config, `src` a live source
    // whose first 40 bytes have libpmem2's layout (what this test proves).
    let code = unsafe { (map_api.map_new)(&mut map, cfg, src) };
    assert_eq!(
        code,
        0,
        "libpmem2's pmem2_map_new rejected our source: {}",
        libpmem2.message()
    );
    // SAFETY: `map` is libpmem2's live mapping.
    let address = unsafe { (map_api.get_address)(map) };
    // SAFETY: as above.
    let mapped = unsafe { (map_api.get_size)(map) };
    assert!(!address.is_null());
    assert_eq!(mapped, size, "pmem2_map_get_size");
    // SAFETY: as above.
    let persist = unsafe { (map_api.get_persist_fn)(map) }.expect("a persist function");
    // SAFETY: libpmem2 mapped `mapped` readable and writable bytes at `address` (the default
    // protection), nothing else refers to them, and they stay mapped until map_delete below.
    let bytes = unsafe { std::slice::from_raw_parts_mut(address.cast::<u8>(), mapped) };
    use_it(bytes, persist);

    // SAFETY: `map` is live and not used afterwards (the slice above is gone).
    let code = unsafe { (map_api.map_delete)(&mut map) };
    assert_eq!(code, 0, "pmem2_map_delete: {}", libpmem2.message());
    assert!(map.is_null());
    // SAFETY: `cfg` is live and not used afterwards.
    let code = unsafe { (map_api.config_delete)(&mut cfg) };
    assert_eq!(code, 0, "pmem2_config_delete: {}", libpmem2.message());
    assert!(cfg.is_null());
}

/// libpmem2's `pmem2_source_size` and `pmem2_source_alignment` on our source.
pub fn libpmem2_size_and_alignment(map_api: &MapApi, src: *mut c_void) -> (usize, usize) {
    let (mut size, mut alignment) = (0, 0);
    // SAFETY: `src` is a live source with libpmem2's layout; `size` is a valid out-pointer.
    let code = unsafe { (map_api.source_size)(src, &mut size) };
    assert_eq!(code, 0, "libpmem2's pmem2_source_size on our source");
    // SAFETY: as above.
    let code = unsafe { (map_api.source_alignment)(src, &mut alignment) };
    assert_eq!(code, 0, "libpmem2's pmem2_source_alignment on our source");
    (size, alignment)
}
