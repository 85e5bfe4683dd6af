//! The std shim on Windows (run under Wine by `scripts/wine-tests.sh`): `Source<'h>` borrowing
//! a `BorrowedHandle<'h>`, `TryFrom<&File>`, and the `io::Error` of each failure.

#![cfg(windows)]

#[path = "../../../tests/windows_common/mod.rs"]
mod common;

use std::fs::File;
use std::io;
use std::os::windows::io::{AsHandle, AsRawHandle};

use common::{Scratch, allocation_granularity, event, mutex, open_directory};
use pmem2_source_std::{Error, FileType, Source, SourceKind, codes};

#[test]
fn a_file_through_try_from_and_as_handle() {
    let scratch = Scratch::new("std-file");
    let file = File::open(scratch.file("data", &common::pattern(777))).expect("open");
    let source = Source::try_from(&file).expect("a regular file");
    assert_eq!(source.kind(), SourceKind::Handle);
    assert_eq!(source.file_type(), Some(FileType::Regular));
    assert_eq!(
        source.handle().expect("handle").as_raw_handle(),
        file.as_raw_handle()
    );
    assert_eq!(source.size(), Ok(777));
    assert_eq!(source.alignment(), Ok(allocation_granularity()));
    let again = Source::from_handle(file.as_handle()).expect("from_handle");
    assert_eq!(again, source);
    assert_eq!(Source::try_from(file.as_handle()), Ok(source));
    assert!(format!("{source:?}").contains("handle"), "{source:?}");
}

#[test]
fn failures_keep_their_code_and_kind() {
    let scratch = Scratch::new("std-failures");
    let dir = open_directory(&scratch.dir);
    let err = Source::from_handle(dir.as_handle()).expect_err("a directory");
    assert_eq!(err.code(), codes::PMEM2_E_INVALID_FILE_TYPE);
    let io: io::Error = err.into();
    assert_eq!(io.kind(), io::ErrorKind::IsADirectory);
    assert_eq!(Error::code_of(&io), Some(codes::PMEM2_E_INVALID_FILE_TYPE));

    for handle in [mutex(), event()] {
        let err = Source::from_handle(handle.as_handle()).expect_err("not a file");
        assert_eq!(err.code(), codes::PMEM2_E_INVALID_FILE_HANDLE);
        assert_eq!(err.name(), "PMEM2_E_INVALID_FILE_HANDLE");
        assert_eq!(io::Error::from(err).kind(), io::ErrorKind::InvalidInput);
    }

    let err = Source::anon(1).handle().expect_err("anonymous");
    assert_eq!(err.code(), codes::PMEM2_E_FILE_HANDLE_NOT_SET);
    assert_eq!(io::Error::from(err).kind(), io::ErrorKind::Unsupported);
    assert_eq!(Source::anon(1).alignment(), Ok(allocation_granularity()));
}
