//! Assertions shared by the unit tests.

extern crate std;
use std::string::ToString;

use crate::Error;

/// `result` is a failure with exactly this code and message.
pub(crate) fn assert_failure<T: core::fmt::Debug>(
    result: Result<T, Error>,
    code: i32,
    message: &str,
) {
    let err = result.expect_err("expected a failure");
    assert_eq!(
        (err.code(), err.to_string().as_str()),
        (code, message),
        "{err:?}"
    );
}
