//! The Windows decision logic (SPEC §6) on the scripted kernel, on any host: what
//! `from_handle`, the queries and handle I/O answer for every Win32 answer, and which calls
//! they make. The same logic on real handles runs under Wine (`tests/windows.rs`).

extern crate std;
use std::string::ToString;

use crate::codes::*;
use crate::sys::scripted::{Call, ScriptedKernel};
use crate::sys::{
    FILE_ATTRIBUTE_DIRECTORY, FileInformation, INVALID_HANDLE_VALUE, RawHandle, Syscalls,
};
use crate::test_support::assert_failure;
use crate::{Error, FileType, IoDirection, Source, SourceBox, SourceKind, Unsupported, Win32Error};

const HANDLE: RawHandle = core::ptr::without_provenance_mut(0x7c);

fn source(kernel: &ScriptedKernel) -> Source {
    Source::from_handle_with(kernel, HANDLE).expect("the scripted file")
}

#[test]
fn a_file_handle_takes_one_call() {
    let kernel = ScriptedKernel::windows_file();
    let source = source(&kernel);
    assert_eq!(source.kind(), SourceKind::Handle);
    assert_eq!(source.file_type(), Some(FileType::Regular));
    assert_eq!(source.handle(), Ok(HANDLE));
    assert_eq!(source.fd(), Err(Error::FileDescriptorNotSet));
    assert_eq!(source.anon_size(), None);
    assert_eq!(
        (source.rdev(), source.dev(), source.ino()),
        (None, None, None)
    );
    assert_eq!(
        kernel.calls().as_slice(),
        [Call::FileInformation { handle: 0x7c }]
    );
    assert_eq!(
        std::format!("{source:?}"),
        "Source { handle: 0x7c, file_type: Some(Regular), volume_serial_number: 305441741, \
         file_index: 42 }"
    );
}

#[test]
fn invalid_handle_value_makes_no_call() {
    let kernel = ScriptedKernel::windows_file();
    assert_failure(
        Source::from_handle_with(&kernel, INVALID_HANDLE_VALUE),
        PMEM2_E_INVALID_FILE_HANDLE,
        "Invalid file handle has been passed",
    );
    assert!(kernel.calls().is_empty());
}

#[test]
fn directories_are_an_invalid_file_type() {
    for attributes in [
        FILE_ATTRIBUTE_DIRECTORY,
        FILE_ATTRIBUTE_DIRECTORY | 0x20 | 0x400,
    ] {
        let kernel = ScriptedKernel::windows_file().with_attributes(attributes);
        assert_failure(
            Source::from_handle_with(&kernel, HANDLE),
            PMEM2_E_INVALID_FILE_TYPE,
            "using directory doesn't make any sense in context of pmem2",
        );
    }
    // Any other attribute is a regular file: hidden, read-only, sparse, compressed, …
    let kernel = ScriptedKernel::windows_file().with_attributes(0x1 | 0x2 | 0x200 | 0x800);
    assert_eq!(source(&kernel).file_type(), Some(FileType::Regular));
}

/// libpmem2's `pmem2_win_stat` and `pmem2_lasterror_to_err`: `ERROR_INVALID_HANDLE` is an
/// invalid handle; the mapped errors are `-errno` (the C runtime's numbers); the rest
/// `PMEM2_E_UNKNOWN`.
#[test]
fn win32_errors_map_as_libpmem2_maps_them() {
    let cases = [
        (
            6,
            PMEM2_E_INVALID_FILE_HANDLE,
            "PMEM2_E_INVALID_FILE_HANDLE",
            "The handle is invalid.",
        ),
        (5, -13, "EACCES", "Access is denied."),
        (
            2,
            -2,
            "ENOENT",
            "The system cannot find the file specified.",
        ),
        (
            8,
            -12,
            "ENOMEM",
            "Not enough memory resources are available to process this command.",
        ),
        (50, -129, "ENOTSUP", "The request is not supported."),
        (87, -22, "EINVAL", "The parameter is incorrect."),
        (4, -24, "EMFILE", "The system cannot open the file."),
        (
            120,
            PMEM2_E_UNKNOWN,
            "PMEM2_E_UNKNOWN",
            "This function is not supported on this system.",
        ),
        (1117, PMEM2_E_UNKNOWN, "PMEM2_E_UNKNOWN", "Win32 error 1117"),
    ];
    for (raw, code, name, text) in cases {
        let error = Win32Error::from_raw(raw);
        let kernel = ScriptedKernel::windows_file().with_file_information(Err(error));
        let err = Source::from_handle_with(&kernel, HANDLE).expect_err("fails");
        assert_eq!(
            err,
            Error::Win32 {
                call: "GetFileInformationByHandle",
                error
            }
        );
        assert_eq!((err.code(), err.name()), (code, name), "error {raw}");
        assert_eq!(
            err.to_string(),
            std::format!("GetFileInformationByHandle: {text}")
        );
    }
}

#[test]
fn size_asks_again_and_checks_the_file() {
    let kernel = ScriptedKernel::windows_file().with_data(&[1; 1234]);
    let made = source(&kernel);
    assert_eq!(made.size_with(&kernel), Ok(1234));
    assert_eq!(
        kernel.calls().len(),
        2,
        "one more GetFileInformationByHandle"
    );
    let huge = ScriptedKernel::windows_file().with_file_information(Ok(FileInformation {
        size: 5 << 40,
        ..kernel.file_information(HANDLE).expect("info")
    }));
    assert_eq!(made.size_with(&huge), Ok(5 << 40));

    let closed =
        ScriptedKernel::windows_file().with_file_information(Err(Win32Error::INVALID_HANDLE));
    assert_failure(
        made.size_with(&closed),
        PMEM2_E_INVALID_FILE_HANDLE,
        "GetFileInformationByHandle: The handle is invalid.",
    );
    for other in [
        FileInformation {
            file_index: 43,
            ..FileInformation::default()
        },
        FileInformation {
            file_index: 42,
            volume_serial_number: 1,
            ..FileInformation::default()
        },
    ] {
        let reused = ScriptedKernel::windows_file().with_file_information(Ok(other));
        assert_failure(
            made.size_with(&reused),
            PMEM2_E_INVALID_FILE_HANDLE,
            "handle 0x7c now refers to a different file than when the source was created (its \
             volume or file index changed: the handle was closed and its value reused)",
        );
    }
    let now_a_directory = ScriptedKernel::windows_file().with_attributes(FILE_ATTRIBUTE_DIRECTORY);
    assert_eq!(
        made.size_with(&now_a_directory),
        Err(Error::DirectoryHandle)
    );
}

/// Windows' alignment is the allocation granularity for every source, anonymous ones too.
#[test]
fn alignment_is_the_allocation_granularity() {
    let kernel = ScriptedKernel::windows_file();
    assert_eq!(source(&kernel).alignment_with(&kernel), Ok(65536));
    assert_eq!(Source::anon(1).alignment_with(&kernel), Ok(65536));
    assert_eq!(kernel.calls().last(), Some(&Call::AllocationGranularity));
    let odd = ScriptedKernel::windows_file().with_granularity(65535);
    assert_failure(
        source(&kernel).alignment_with(&odd),
        PMEM2_E_INVALID_ALIGNMENT_VALUE,
        "alignment (65535) has to be a power of two",
    );
    // Without its own answer a backend's granularity is its page size (Linux).
    let linux = ScriptedKernel::regular_file().with_page_size(Ok(16384));
    assert_eq!(Source::anon(1).alignment_with(&linux), Ok(16384));
    assert_eq!(linux.calls().as_slice(), [Call::PageSize]);
}

#[test]
fn device_queries_are_not_supported_for_handles() {
    let kernel = ScriptedKernel::windows_file();
    let source = source(&kernel);
    let unsupported = |what| Error::NotSupported(what);
    assert_eq!(
        source.numa_node_with(&kernel),
        Err(unsupported(Unsupported::HandleNumaNode))
    );
    assert_eq!(
        source.device_id_with(&kernel, None),
        Err(unsupported(Unsupported::HandleDeviceId))
    );
    assert_eq!(
        source.device_usc_with(&kernel),
        Err(unsupported(Unsupported::HandleUsc))
    );
    assert_eq!(kernel.calls().len(), 1, "no call for them");
    for what in [
        Unsupported::HandleNumaNode,
        Unsupported::HandleDeviceId,
        Unsupported::HandleUsc,
    ] {
        let err = Error::NotSupported(what);
        assert_eq!(err.code(), PMEM2_E_NOSUPP);
        assert!(err.to_string().contains("Windows"), "{err}");
    }
}

#[test]
fn handle_io_is_positional_and_complete() {
    let kernel = ScriptedKernel::windows_file()
        .with_data(&[0; 100])
        .with_max_transfer(3);
    let source = source(&kernel);
    assert_eq!(source.pwrite_mcsafe_with(&kernel, b"abcdefg", 10), Ok(()));
    let mut back = [0u8; 9];
    assert_eq!(source.pread_mcsafe_with(&kernel, &mut back, 9), Ok(()));
    assert_eq!(&back, b"\0abcdefg\0");
    let calls = kernel.calls();
    assert!(calls.contains(&Call::WriteHandle { len: 7, offset: 10 }));
    assert!(
        calls.contains(&Call::WriteHandle { len: 1, offset: 16 }),
        "{calls:?}"
    );
    assert!(
        calls.contains(&Call::ReadHandle { len: 3, offset: 15 }),
        "{calls:?}"
    );
    assert_eq!(
        source.pread_mcsafe_with(&kernel, &mut [], 100),
        Ok(()),
        "empty at the end"
    );

    assert_failure(
        source.pread_mcsafe_with(&kernel, &mut [0; 2], 99),
        PMEM2_E_LENGTH_OUT_OF_RANGE,
        "size of read 2 from offset 99 goes beyond the file length 1",
    );
    let denied = ScriptedKernel::windows_file().with_handle_io_error(Win32Error::ACCESS_DENIED);
    let err = source
        .pwrite_mcsafe_with(&denied, b"x", 0)
        .expect_err("denied");
    assert_eq!(
        (err.code(), err.name(), err.to_string().as_str()),
        (-13, "EACCES", "WriteFile: Access is denied.")
    );
    let broken = ScriptedKernel::windows_file().with_handle_io_error(Win32Error::from_raw(23));
    assert_failure(
        source.pread_mcsafe_with(&broken, &mut [0; 1], 0),
        PMEM2_E_UNKNOWN,
        "ReadFile: Win32 error 23",
    );
}

/// Through a reference to the backend (as generic code holding `&S` passes it), every
/// Windows call is forwarded: the same answers, the same calls.
#[test]
fn references_to_backends_forward_the_windows_calls() {
    let run = |kernel: &ScriptedKernel, by_reference: bool| {
        let sys: &dyn Syscalls = if by_reference { &kernel } else { kernel };
        let source = Source::from_handle_with(sys, HANDLE).expect("source");
        let mut back = [0u8; 3];
        let answers = std::format!(
            "{:?} {:?} {:?} {:?} {:?}",
            source.size_with(sys),
            source.alignment_with(sys),
            source.pwrite_mcsafe_with(sys, b"abc", 5),
            source.pread_mcsafe_with(sys, &mut back, 5),
            sys.page_size(),
        );
        (answers, back, kernel.calls())
    };
    let direct = run(&ScriptedKernel::windows_file(), false);
    assert_eq!(run(&ScriptedKernel::windows_file(), true), direct);
    assert_eq!(&direct.1, b"abc");
}

/// A backend with none of the Windows calls: they are "not implemented" (`PMEM2_E_UNKNOWN`).
#[test]
fn backends_without_the_windows_calls() {
    struct Linuxish(ScriptedKernel);
    impl Syscalls for Linuxish {
        fn fcntl_getfl(&self, fd: i32) -> Result<u32, crate::Errno> {
            self.0.fcntl_getfl(fd)
        }
        fn fstat(&self, fd: i32) -> Result<crate::sys::FileStat, crate::Errno> {
            self.0.fstat(fd)
        }
        fn readlink(&self, path: &core::ffi::CStr, buf: &mut [u8]) -> Result<usize, crate::Errno> {
            self.0.readlink(path, buf)
        }
    }
    /// Answers the file information, and nothing else of Windows.
    struct InformationOnly(ScriptedKernel);
    impl Syscalls for InformationOnly {
        fn fcntl_getfl(&self, fd: i32) -> Result<u32, crate::Errno> {
            self.0.fcntl_getfl(fd)
        }
        fn fstat(&self, fd: i32) -> Result<crate::sys::FileStat, crate::Errno> {
            self.0.fstat(fd)
        }
        fn readlink(&self, path: &core::ffi::CStr, buf: &mut [u8]) -> Result<usize, crate::Errno> {
            self.0.readlink(path, buf)
        }
        fn file_information(&self, handle: RawHandle) -> Result<FileInformation, Win32Error> {
            self.0.file_information(handle)
        }
    }
    assert_failure(
        Source::from_handle_with(&Linuxish(ScriptedKernel::windows_file()), HANDLE),
        PMEM2_E_UNKNOWN,
        "GetFileInformationByHandle: This function is not supported on this system.",
    );
    let sys = InformationOnly(ScriptedKernel::windows_file());
    let source = Source::from_handle_with(&sys, HANDLE).expect("source");
    assert_failure(
        source.pread_mcsafe_with(&sys, &mut [0; 1], 0),
        PMEM2_E_UNKNOWN,
        "ReadFile: This function is not supported on this system.",
    );
}

/// A file that shrank between the size check and the transfer.
#[test]
fn a_short_handle_transfer_is_the_end_of_the_file() {
    struct Shrunk(ScriptedKernel);
    impl Syscalls for Shrunk {
        fn fcntl_getfl(&self, fd: i32) -> Result<u32, crate::Errno> {
            self.0.fcntl_getfl(fd)
        }
        fn fstat(&self, fd: i32) -> Result<crate::sys::FileStat, crate::Errno> {
            self.0.fstat(fd)
        }
        fn readlink(&self, path: &core::ffi::CStr, buf: &mut [u8]) -> Result<usize, crate::Errno> {
            self.0.readlink(path, buf)
        }
        fn file_information(&self, handle: RawHandle) -> Result<FileInformation, Win32Error> {
            self.0.file_information(handle)
        }
        fn read_handle_at(&self, _: RawHandle, _: &mut [u8], _: u64) -> Result<usize, Win32Error> {
            Ok(0)
        }
    }
    let shrunk = Shrunk(ScriptedKernel::windows_file());
    let source = Source::from_handle_with(&shrunk, HANDLE).expect("source");
    assert_eq!(
        source.pread_mcsafe_with(&shrunk, &mut [0; 4], 8),
        Err(Error::UnexpectedEnd {
            direction: IoDirection::Read,
            offset: 8,
            size_now: Some(4096)
        })
    );
    // A backend without handle I/O says so.
    assert_failure(
        source.pwrite_mcsafe_with(&shrunk, &[1], 0),
        PMEM2_E_UNKNOWN,
        "WriteFile: This function is not supported on this system.",
    );
}

#[test]
fn get_handle_of_other_sources() {
    assert_failure(
        Source::anon(10).handle(),
        PMEM2_E_FILE_HANDLE_NOT_SET,
        "File handle is not set, source type does not support file handles",
    );
    let kernel = ScriptedKernel::regular_file();
    let fd = Source::from_fd_with(&kernel, 3).expect("fd source");
    assert_eq!(fd.handle(), Err(Error::FileHandleNotSet));
}

#[test]
fn allocation_failure_and_bad_handles() {
    let kernel = ScriptedKernel::windows_file();
    let err =
        SourceBox::from_handle_in(&kernel, HANDLE, crate::FailingAlloc).expect_err("no memory");
    assert_eq!((err.code(), err), (-12, Error::NoMemory));
    let pool = crate::StaticPool::<1>::new();
    let counting = crate::CountingAlloc::new(&pool);
    let err =
        SourceBox::from_handle_in(&kernel, INVALID_HANDLE_VALUE, &counting).expect_err("invalid");
    assert_eq!(err, Error::InvalidHandleValue);
    assert_eq!(
        counting.failures() + counting.allocations(),
        0,
        "nothing asked"
    );
    let boxed = SourceBox::from_handle_in(&kernel, HANDLE, &counting).expect("allocated");
    assert_eq!(boxed.handle(), Ok(HANDLE));
}

/// The C runtime descriptor errors of `pmem2_source_from_fd` on Windows (made in the C shim).
#[test]
fn crt_descriptor_errors() {
    assert_failure(
        Err::<(), _>(Error::NegativeCrtFd { fd: -1 }),
        PMEM2_E_INVALID_FILE_HANDLE,
        "Invalid file descriptor value -1",
    );
    assert_failure(
        Err::<(), _>(Error::CrtFd {
            fd: 7,
            errno: crate::Errno::EBADF,
        }),
        PMEM2_E_INVALID_FILE_HANDLE,
        "_get_osfhandle(7): Bad file descriptor",
    );
    assert_failure(
        Err::<(), _>(Error::CrtFd {
            fd: 7,
            errno: crate::Errno::EINVAL,
        }),
        -22,
        "_get_osfhandle(7): Invalid argument",
    );
}

/// libpmem2's Windows `struct pmem2_source`: type 3 at 0, file type 1 at 8, HANDLE at 16.
#[test]
#[cfg(target_pointer_width = "64")]
fn handle_sources_keep_libpmem2s_windows_layout() {
    let kernel = ScriptedKernel::windows_file();
    let made = source(&kernel);
    // SAFETY: Source is repr(C) plain data of 64 bytes without padding.
    let bytes: [u8; 64] = unsafe { core::mem::transmute(made) };
    let word = |at: usize| {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(&bytes[at..at + 8]);
        u64::from_ne_bytes(raw)
    };
    assert_eq!((word(0), word(8), word(16)), (3, 1, 0x7c));
}
