//! libpmem2's source functions with libpmem2's C ABI: `libpmem2_source.so` / `.a` and
//! `include/pmem2_source.h`.
//!
//! Each function is a thin adapter over the `pmem2-source` core: check the pointers C hands
//! in, call the core, translate the result (`0` or the core's [`code`](pmem2_source::Error::code))
//! and store the message of a failure for [`pmem2_errormsg`]. Nothing unwinds out: a panic
//! (which the core never produces) becomes `PMEM2_E_UNKNOWN` with a message.
//!
//! # Safety
//!
//! The C caller promises what C can only document: pointers are NULL or valid and aligned for
//! their type, and a `struct pmem2_source *` passed in came from this library's
//! `pmem2_source_from_fd`/`pmem2_source_from_anon` and was not deleted since. Within those
//! promises every function is sound, and NULL is always handled.

mod allocator;
mod message;

use std::ffi::{c_char, c_int, c_void};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::{NonNull, null_mut};

use pmem2_source::sys::Linux;
use pmem2_source::{Errno, Source, SourceBox, codes};

use crate::allocator::{AllocFuncs, CAlloc};

/// Why a C-ABI call failed: the core's errors, plus the boundary's own.
enum Failure {
    Core(pmem2_source::Error),
    NullArgument {
        function: &'static str,
        argument: &'static str,
    },
    AllocatorFixed,
    Panicked {
        function: &'static str,
    },
}

impl Failure {
    fn code(&self) -> c_int {
        match self {
            Failure::Core(err) => err.code(),
            Failure::NullArgument { .. } => -Errno::EINVAL.raw(),
            Failure::AllocatorFixed => -Errno::EBUSY.raw(),
            Failure::Panicked { .. } => codes::PMEM2_E_UNKNOWN,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Core(err) => write!(f, "{err}"),
            Failure::NullArgument { function, argument } => {
                write!(f, "{function}: {argument} must not be NULL")
            }
            Failure::AllocatorFixed => f.write_str(
                "pmem2_source_set_funcs: the allocator is already fixed (functions were set \
                 before, or a source was already allocated); nothing changed",
            ),
            Failure::Panicked { function } => {
                write!(f, "{function}: internal error (panic); please report it")
            }
        }
    }
}

impl From<pmem2_source::Error> for Failure {
    fn from(err: pmem2_source::Error) -> Failure {
        Failure::Core(err)
    }
}

/// Runs the body of `function`: `Ok(())` → 0; a failure stores its message and returns its
/// code; a panic is caught and reported, never unwound into C.
fn call(function: &'static str, body: impl FnOnce() -> Result<(), Failure>) -> c_int {
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return 0,
        Ok(Err(failure)) => failure,
        Err(_) => Failure::Panicked { function },
    };
    message::set(&failure);
    failure.code()
}

/// Stores a new source in `*src` (set to NULL first, so it stays NULL on failure).
///
/// # Safety
/// `src` is NULL or valid for writes.
unsafe fn create(
    function: &'static str,
    src: *mut *mut Source,
    make: impl FnOnce() -> Result<SourceBox<CAlloc>, pmem2_source::Error>,
) -> c_int {
    call(function, || {
        // SAFETY: NULL or valid for writes (caller's guarantee).
        let slot = unsafe { src.as_mut() }.ok_or(Failure::NullArgument {
            function,
            argument: "src",
        })?;
        *slot = null_mut();
        let (ptr, CAlloc) = make()?.into_raw();
        *slot = ptr.as_ptr();
        Ok(())
    })
}

/// `int pmem2_source_from_fd(struct pmem2_source **src, int fd)`: validates `fd` and creates
/// a source referring to it.
///
/// # Safety
/// `src` is NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem2_source_from_fd(src: *mut *mut Source, fd: c_int) -> c_int {
    // SAFETY: `src` is passed on under the caller's guarantee.
    unsafe {
        create("pmem2_source_from_fd", src, || {
            SourceBox::from_fd_in(&Linux, fd, CAlloc)
        })
    }
}

/// `int pmem2_source_from_anon(struct pmem2_source **src, size_t size)`: an anonymous source.
///
/// # Safety
/// `src` is NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem2_source_from_anon(src: *mut *mut Source, size: usize) -> c_int {
    // SAFETY: `src` is passed on under the caller's guarantee.
    unsafe {
        create("pmem2_source_from_anon", src, || {
            SourceBox::anon_in(size, CAlloc)
        })
    }
}

/// `int pmem2_source_get_fd(const struct pmem2_source *src, int *fd)`.
///
/// # Safety
/// `src` is NULL or a live source from this library; `fd` is NULL or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem2_source_get_fd(src: *const Source, fd: *mut c_int) -> c_int {
    const FUNCTION: &str = "pmem2_source_get_fd";
    call(FUNCTION, || {
        // SAFETY: NULL or a live source (caller's guarantee).
        let source = unsafe { src.as_ref() }.ok_or(Failure::NullArgument {
            function: FUNCTION,
            argument: "src",
        })?;
        // SAFETY: NULL or valid for writes (caller's guarantee).
        let out = unsafe { fd.as_mut() }.ok_or(Failure::NullArgument {
            function: FUNCTION,
            argument: "fd",
        })?;
        *out = source.fd()?;
        Ok(())
    })
}

/// `int pmem2_source_delete(struct pmem2_source **src)`: frees `*src`, sets it to NULL,
/// returns 0. NULL `src` and NULL `*src` are no-ops. The descriptor is not closed.
///
/// # Safety
/// `src` is NULL or valid for reads and writes; `*src` is NULL or a live source from this
/// library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem2_source_delete(src: *mut *mut Source) -> c_int {
    call("pmem2_source_delete", || {
        // SAFETY: NULL or valid for reads and writes (caller's guarantee).
        let Some(slot) = (unsafe { src.as_mut() }) else {
            return Ok(());
        };
        if let Some(ptr) = NonNull::new(*slot) {
            // SAFETY: a live source from this library was allocated by CAlloc (into_raw in
            // `create`), and the caller gives up its pointer here.
            drop(unsafe { SourceBox::from_raw_in(ptr, CAlloc) });
        }
        *slot = null_mut();
        Ok(())
    })
}

/// `const char *pmem2_errormsg(void)`: the calling thread's last error message.
#[unsafe(no_mangle)]
pub extern "C" fn pmem2_errormsg() -> *const c_char {
    message::as_ptr()
}

/// `int pmem2_source_set_funcs(void *(*malloc_func)(size_t), void (*free_func)(void *))`:
/// our extension; allocate sources with the caller's pair. Once, before the first allocation.
///
/// # Safety
/// The functions behave like `malloc` and `free` (any size; memory aligned like malloc's, or
/// NULL; free accepts what malloc returned) and stay callable for the life of the process.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pmem2_source_set_funcs(
    malloc_func: Option<unsafe extern "C" fn(usize) -> *mut c_void>,
    free_func: Option<unsafe extern "C" fn(*mut c_void)>,
) -> c_int {
    const FUNCTION: &str = "pmem2_source_set_funcs";
    call(FUNCTION, || {
        let malloc = malloc_func.ok_or(Failure::NullArgument {
            function: FUNCTION,
            argument: "malloc_func",
        })?;
        let free = free_func.ok_or(Failure::NullArgument {
            function: FUNCTION,
            argument: "free_func",
        })?;
        if allocator::install(AllocFuncs { malloc, free }) {
            Ok(())
        } else {
            Err(Failure::AllocatorFixed)
        }
    })
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;

    fn last_message() -> String {
        // SAFETY: pmem2_errormsg returns a NUL-terminated string owned by this thread.
        unsafe { CStr::from_ptr(pmem2_errormsg()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn null_arguments_are_einval_with_a_message() {
        // SAFETY: NULL is allowed for every pointer argument.
        let code = unsafe { pmem2_source_from_fd(null_mut(), 0) };
        assert_eq!(code, -libc::EINVAL);
        assert_eq!(last_message(), "pmem2_source_from_fd: src must not be NULL");
        // SAFETY: as above.
        let code = unsafe { pmem2_source_from_anon(null_mut(), 1) };
        assert_eq!(code, -libc::EINVAL);
        assert_eq!(
            last_message(),
            "pmem2_source_from_anon: src must not be NULL"
        );
        // SAFETY: as above.
        let code = unsafe { pmem2_source_get_fd(std::ptr::null(), null_mut()) };
        assert_eq!(code, -libc::EINVAL);
        assert_eq!(last_message(), "pmem2_source_get_fd: src must not be NULL");
        // SAFETY: as above.
        assert_eq!(unsafe { pmem2_source_delete(null_mut()) }, 0);
        // SAFETY: as above.
        let code = unsafe { pmem2_source_set_funcs(None, Some(libc::free)) };
        assert_eq!(code, -libc::EINVAL);
        assert_eq!(
            last_message(),
            "pmem2_source_set_funcs: malloc_func must not be NULL"
        );
    }

    #[test]
    fn anon_source_round_trip() {
        let mut src: *mut Source = null_mut();
        // SAFETY: `src` is a valid out-pointer.
        assert_eq!(unsafe { pmem2_source_from_anon(&mut src, 4096) }, 0);
        assert!(!src.is_null());
        let mut fd: c_int = -7;
        // SAFETY: `src` is live, `fd` valid.
        let code = unsafe { pmem2_source_get_fd(src, &mut fd) };
        assert_eq!(code, codes::PMEM2_E_FILE_DESCRIPTOR_NOT_SET);
        assert_eq!(fd, -7, "untouched");
        assert_eq!(
            last_message(),
            "File descriptor is not set, source type does not support fd"
        );
        // SAFETY: `src` is live; NULL `fd` is allowed.
        let code = unsafe { pmem2_source_get_fd(src, null_mut()) };
        assert_eq!(code, -libc::EINVAL);
        assert_eq!(last_message(), "pmem2_source_get_fd: fd must not be NULL");
        // SAFETY: `src` is live, then NULL.
        assert_eq!(unsafe { pmem2_source_delete(&mut src) }, 0);
        assert!(src.is_null());
        // SAFETY: `*src` is NULL now.
        assert_eq!(unsafe { pmem2_source_delete(&mut src) }, 0);
    }

    #[test]
    fn failure_sets_null_and_success_keeps_the_message() {
        let mut src: *mut Source = NonNull::dangling().as_ptr();
        // SAFETY: `src` is a valid out-pointer (its old value is overwritten, not read).
        let code = unsafe { pmem2_source_from_fd(&mut src, -1) };
        assert_eq!(code, codes::PMEM2_E_INVALID_FILE_HANDLE);
        assert!(src.is_null());
        let failure = last_message();
        assert_eq!(
            failure,
            "invalid file descriptor value -1 (descriptors are never negative)"
        );
        // SAFETY: `src` is a valid out-pointer.
        assert_eq!(unsafe { pmem2_source_from_anon(&mut src, 1) }, 0);
        assert_eq!(last_message(), failure, "success leaves the message alone");
        // SAFETY: `src` is live.
        assert_eq!(unsafe { pmem2_source_delete(&mut src) }, 0);
    }

    #[test]
    fn panics_become_unknown() {
        let code = call("test_function", || panic!("boom"));
        assert_eq!(code, codes::PMEM2_E_UNKNOWN);
        assert_eq!(
            last_message(),
            "test_function: internal error (panic); please report it"
        );
    }
}
