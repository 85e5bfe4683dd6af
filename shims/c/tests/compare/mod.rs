//! Differential testing against libpmem2: both libraries loaded side by side (their
//! `pmem2_source_*` functions a [`SourceApi`] each), one observation of a
//! `pmem2_source_from_fd` call, and the rules that compare them.
//!
//! Shared by the `differential*.rs` tests; needs `mod support;` and `mod common;` beside it.
//! [`queries`]: the same for the queries on a source (size, alignment, …, mcsafe I/O).
//!
//! Messages: libpmem2 keeps the last message of each thread and never clears it, and some
//! failures set none. To tell a fresh message from stale text, every observation first
//! provokes a known one (`get_fd` on an anonymous source), makes the call, and reads the
//! message again: unchanged means the call set none.
#![allow(dead_code)] // each test binary uses a different part

pub mod queries;

use std::ffi::c_int;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::process::ExitCode;
use std::sync::OnceLock;

use pmem2_source::codes::PMEM2_E_FILE_DESCRIPTOR_NOT_SET;

use crate::common::fake_sysfs::{Scenario, cannot_run, enter_or_exit, run_scenarios};
use crate::common::{TempDir, skip};
use crate::support::{self, Library, SourceApi, Src};

/// What `get_fd` on an anonymous source says, in both libraries.
pub const FD_NOT_SET: &str = "File descriptor is not set, source type does not support fd";

/// A value no allocator returns, stored in `*src` before a call to prove the call sets it.
pub fn garbage() -> *mut Src {
    std::ptr::without_provenance_mut(0x5a5a_5a5a_5a5a_5a50)
}

/// A library kept open for the whole test binary, with its source functions.
struct Loaded {
    api: SourceApi,
    _library: Library,
}

impl Loaded {
    fn open(name: &'static str, path: &str) -> Result<Loaded, String> {
        let library = Library::open(path)?;
        Ok(Loaded {
            api: SourceApi::load(name, &library),
            _library: library,
        })
    }
}

/// Leaves [`FD_NOT_SET`] as the thread's message in `api`'s library, and checks it is there.
pub fn provoke_known_message(api: &SourceApi) {
    let mut src = std::ptr::null_mut();
    assert_eq!(
        api.source_from_anon(&mut src, 1),
        0,
        "{}: from_anon",
        api.name
    );
    let mut fd: c_int = -7;
    // SAFETY: `src` is the live anonymous source just made.
    let code = unsafe { api.source_get_fd(src, &mut fd) };
    assert_eq!(
        code, PMEM2_E_FILE_DESCRIPTOR_NOT_SET,
        "{}: get_fd",
        api.name
    );
    // SAFETY: `src` is live and given up here.
    let deleted = unsafe { api.source_delete(&mut src) };
    assert_eq!(deleted, 0, "{}: delete", api.name);
    assert_eq!(api.message(), FD_NOT_SET, "{}: provoked message", api.name);
}

/// What the last call left as the thread's message in `api`'s library, [`provoke_known_message`]
/// having been called before it.
pub fn message_since_provoked(api: &SourceApi) -> Message {
    let text = api.message();
    if text == FD_NOT_SET {
        Message::Unchanged
    } else {
        Message::Set(text)
    }
}

/// Our `libpmem2_source.so` (built on first use).
pub fn ours() -> &'static SourceApi {
    static OURS: OnceLock<Loaded> = OnceLock::new();
    &OURS
        .get_or_init(|| {
            let path = support::our_shared_library();
            Loaded::open("ours", path.to_str().expect("UTF-8 target path"))
                .unwrap_or_else(|e| panic!("loading our library: {e}"))
        })
        .api
}

/// Debian's libpmem2 1.12.1, or why it cannot be loaded.
pub fn reference() -> Result<&'static SourceApi, String> {
    static REFERENCE: OnceLock<Result<Loaded, String>> = OnceLock::new();
    REFERENCE
        .get_or_init(|| Loaded::open("libpmem2", support::REFERENCE_LIBRARY))
        .as_ref()
        .map(|loaded| &loaded.api)
        .map_err(Clone::clone)
}

/// The reference library, or `None` after saying why `test` is skipped (a failure in CI).
pub fn reference_or_skip(test: &str) -> Option<&'static SourceApi> {
    match reference() {
        Ok(api) => Some(api),
        Err(why) => {
            skip(
                test,
                &format!("the reference libpmem2 cannot be loaded: {why}"),
            );
            None
        }
    }
}

/// One test's cases (`rows`), and what they need until they ran: the reference library, the
/// descriptors they use, a scratch directory.
pub struct Workbench<R> {
    pub test: &'static str,
    pub reference: &'static SourceApi,
    pub rows: Vec<R>,
    open: Vec<OwnedFd>,
    pub dir: TempDir,
}

impl<R> Workbench<R> {
    /// `None` (after saying why) if the reference library cannot be loaded.
    pub fn new(test: &'static str) -> Option<Workbench<R>> {
        Some(Workbench {
            test,
            reference: reference_or_skip(test)?,
            rows: Vec::new(),
            open: Vec::new(),
            dir: TempDir::new(test),
        })
    }

    /// Keeps `fd` open until the workbench is dropped; its number.
    pub fn keep(&mut self, fd: OwnedFd) -> RawFd {
        let raw = fd.as_raw_fd();
        self.open.push(fd);
        raw
    }

    /// Panics with `failures` (all failing rows, one a line), if there are any.
    pub fn report(&self, failures: Vec<String>) {
        if let Err(failures) = all_passed(failures, self.rows.len()) {
            panic!("{}: {failures}", self.test);
        }
    }
}

/// `failures` (one per failing case, of `total`) as one error, or `Ok` if there are none.
pub fn all_passed(failures: Vec<String>, total: usize) -> Result<(), String> {
    if failures.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} of {total} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    ))
}

/// `main` of a `harness = false` test on a staged `/sys/dev/char` (`fake_sysfs`): loads the
/// reference library (or says why the test cannot run), enters the private mount namespace,
/// loads ours, and runs `scenarios` (see `fake_sysfs::run_scenarios`), handing `real` and
/// `check` the reference library.
pub fn run_on_fake_sysfs<E>(
    scenarios: &[Scenario<E>],
    real: impl Fn(&'static SourceApi, &OwnedFd) -> Result<(), String>,
    check: impl Fn(&'static SourceApi, &Scenario<E>, &OwnedFd) -> Result<(), String>,
) -> ExitCode {
    let reference = match reference() {
        Ok(api) => api,
        Err(why) => return cannot_run(&format!("the reference libpmem2 cannot be loaded: {why}")),
    };
    if let Err(status) = enter_or_exit() {
        return status;
    }
    ours(); // built (nested cargo) and loaded once, before the first scenario
    run_scenarios(
        scenarios,
        |null| real(reference, null),
        |scenario, null| check(reference, scenario, null),
    )
}

/// What a call left as the thread's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// The provoked text is still there: the call set no message.
    Unchanged,
    Set(String),
}

/// Everything one library did with one `pmem2_source_from_fd` call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    pub code: c_int,
    /// `*src` was NULL after the call.
    pub src_null: bool,
    pub message: Message,
    /// On success: `get_fd`'s code and fd, and `delete`'s code and whether `*src` was NULL
    /// after it.
    pub get_fd: Option<(c_int, c_int)>,
    pub delete: Option<(c_int, bool)>,
}

/// Calls `api.from_fd` on `fd` with `*src` preset to garbage, reads the message against a
/// provoked one, and on success asks `get_fd` and deletes the source with `api`'s own delete.
pub fn observe(api: &SourceApi, fd: RawFd) -> Observation {
    provoke_known_message(api);
    let mut src = garbage();
    let code = api.source_from_fd(&mut src, fd);
    let src_null = src.is_null();
    let message = message_since_provoked(api);
    let (mut get_fd, mut delete) = (None, None);
    if code == 0 && !src_null {
        let mut out: c_int = -7;
        // SAFETY: from_fd succeeded, so `src` is a live source of `api`.
        let got = unsafe { api.source_get_fd(src, &mut out) };
        get_fd = Some((got, out));
        // SAFETY: `src` is live and given up here.
        let deleted = unsafe { api.source_delete(&mut src) };
        delete = Some((deleted, src.is_null()));
    }
    Observation {
        code,
        src_null,
        message,
        get_fd,
        delete,
    }
}

/// One library's answer for a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// 0, a source whose `get_fd` gives the fd back, deleted with 0; the message untouched.
    Source,
    /// `code`, `*src` NULL, and this message (`None`: no message set, stale text stays;
    /// only libpmem2 does that).
    Fails(c_int, Option<String>),
}

/// Succeeds with a source.
pub fn source() -> Answer {
    Answer::Source
}

/// Fails with `code` and exactly `message`.
pub fn fails(code: c_int, message: impl Into<String>) -> Answer {
    Answer::Fails(code, Some(message.into()))
}

/// Fails with `code` and sets no message (libpmem2 only).
pub fn fails_silently(code: c_int) -> Answer {
    Answer::Fails(code, None)
}

/// What a case must show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Both return this code (0: a source). On failure libpmem2 sets a message and ours is
    /// the same, in our words (see [`in_our_words`]).
    Same(c_int),
    /// A documented difference (SPEC "(ours)", README's table): each library's own answer.
    Diverges {
        ours: Answer,
        reference: Answer,
        why: &'static str,
    },
}

/// libpmem2's message as we word it: ours reads the sysfs link with `readlink` where
/// libpmem2 calls `realpath` (SPEC §3), and says so.
pub fn in_our_words(reference: &str) -> String {
    match reference.strip_prefix("realpath \"") {
        Some(rest) => format!("readlink \"{rest}"),
        None => reference.to_string(),
    }
}

/// Checks one library's observation against `answer` for descriptor `fd`.
fn check_answer(
    who: &str,
    observed: &Observation,
    answer: &Answer,
    fd: RawFd,
) -> Result<(), String> {
    let wrong = |what: &str| Err(format!("{who}: {what}; observed {observed:?}"));
    match answer {
        Answer::Source => {
            if observed.code != 0 {
                return wrong("want 0 (a source)");
            }
            if observed.src_null {
                return wrong("returned 0 but left *src NULL");
            }
            if observed.get_fd != Some((0, fd)) {
                return wrong(&format!("get_fd must give (0, {fd})"));
            }
            if observed.delete != Some((0, true)) {
                return wrong("delete must return 0 and set *src to NULL");
            }
            if observed.message != Message::Unchanged {
                return wrong("success must leave the message alone");
            }
        }
        Answer::Fails(code, message) => {
            if observed.code != *code {
                return wrong(&format!("want code {code}"));
            }
            if !observed.src_null {
                return wrong("*src must be NULL after a failure");
            }
            let want = match message {
                Some(text) => Message::Set(text.clone()),
                None => Message::Unchanged,
            };
            if observed.message != want {
                return wrong(&format!("want message {want:?}"));
            }
        }
    }
    Ok(())
}

/// Checks both observations of descriptor `fd` against `expect`.
pub fn compare(
    expect: &Expect,
    fd: RawFd,
    ours: &Observation,
    reference: &Observation,
) -> Result<(), String> {
    // Whatever the case: every failure of ours carries a message.
    if ours.code != 0 && !matches!(&ours.message, Message::Set(text) if !text.is_empty()) {
        return Err(format!("ours failed without a message: {ours:?}"));
    }
    match expect {
        Expect::Same(code) if reference.code != *code || ours.code != *code => Err(format!(
            "want {code} from both, got libpmem2 {}, ours {}; observed libpmem2 {reference:?}, \
             ours {ours:?}",
            reference.code, ours.code
        )),
        Expect::Same(0) => {
            check_answer("libpmem2", reference, &Answer::Source, fd)?;
            check_answer("ours", ours, &Answer::Source, fd)
        }
        Expect::Same(code) => {
            let Message::Set(text) = &reference.message else {
                return Err(format!(
                    "libpmem2 set no message (stale text stays), so this is a divergence: \
                     write the row as Expect::Diverges; observed {reference:?}"
                ));
            };
            let libpmem2 = Answer::Fails(*code, Some(text.clone()));
            check_answer("libpmem2", reference, &libpmem2, fd)?;
            let our = Answer::Fails(*code, Some(in_our_words(text)));
            check_answer("ours", ours, &our, fd)
        }
        Expect::Diverges {
            ours: our_answer,
            reference: reference_answer,
            why,
        } => {
            assert_ne!(our_answer, reference_answer, "a divergence must differ");
            assert!(
                !matches!(our_answer, Answer::Fails(_, None)),
                "ours always sets a message"
            );
            check_answer("libpmem2", reference, reference_answer, fd)
                .and_then(|()| check_answer("ours", ours, our_answer, fd))
                .map_err(|e| format!("{e} (divergence: {why})"))
        }
    }
}

/// Observes `fd` through both libraries and compares. The line printed (seen with
/// `--nocapture`) shows both answers.
pub fn differ(name: &str, expect: &Expect, fd: RawFd, reference: &SourceApi) -> Result<(), String> {
    let theirs = observe(reference, fd);
    let ours = observe(ours(), fd);
    println!(
        "# {name} (fd {fd}): libpmem2 {} {:?} | ours {} {:?}",
        theirs.code, theirs.message, ours.code, ours.message
    );
    compare(expect, fd, &ours, &theirs)
}
