//! Differential testing against libpmem2: both libraries' `pmem2_source_*` functions side by
//! side, one observation of a `pmem2_source_from_fd` call, and the rules that compare them.
//!
//! Shared by `differential.rs` and `differential_devdax.rs`; needs `mod support;` beside it.
//!
//! Messages: libpmem2 keeps the last message of each thread and never clears it, and some
//! failures set none. To tell a fresh message from stale text, every observation first
//! provokes a known one (`get_fd` on an anonymous source), makes the call, and reads the
//! message again: unchanged means the call set none.
#![allow(dead_code)] // each test binary uses a different part

use std::ffi::{CStr, c_char, c_int, c_void};
use std::fmt;
use std::os::fd::RawFd;
use std::sync::OnceLock;

use pmem2_source::codes::PMEM2_E_FILE_DESCRIPTOR_NOT_SET;

use crate::support::{self, Library};

/// `struct pmem2_source`, opaque to both libraries' callers.
pub type Src = c_void;

type FromFd = unsafe extern "C" fn(*mut *mut Src, c_int) -> c_int;
type FromAnon = unsafe extern "C" fn(*mut *mut Src, usize) -> c_int;
type GetFd = unsafe extern "C" fn(*const Src, *mut c_int) -> c_int;
type Delete = unsafe extern "C" fn(*mut *mut Src) -> c_int;
type ErrorMsg = unsafe extern "C" fn() -> *const c_char;

/// What `get_fd` on an anonymous source says, in both libraries.
pub const FD_NOT_SET: &str = "File descriptor is not set, source type does not support fd";

/// A value no allocator returns, stored in `*src` before a call to prove the call sets it.
pub fn garbage() -> *mut Src {
    std::ptr::without_provenance_mut(0x5a5a_5a5a_5a5a_5a50)
}

/// One library's source functions, resolved with `dlsym`.
pub struct Api {
    pub name: &'static str,
    pub from_fd: FromFd,
    pub from_anon: FromAnon,
    pub get_fd: GetFd,
    pub delete: Delete,
    pub errormsg: ErrorMsg,
    _library: Library,
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl Api {
    fn load(name: &'static str, path: &str) -> Result<Api, String> {
        let library = Library::open(path)?;
        // SAFETY (each `get`): the types are the prototypes of <libpmem2.h>, which both
        // libraries implement.
        Ok(Api {
            name,
            // SAFETY: see above.
            from_fd: unsafe { library.get::<FromFd>(c"pmem2_source_from_fd") },
            // SAFETY: see above.
            from_anon: unsafe { library.get::<FromAnon>(c"pmem2_source_from_anon") },
            // SAFETY: see above.
            get_fd: unsafe { library.get::<GetFd>(c"pmem2_source_get_fd") },
            // SAFETY: see above.
            delete: unsafe { library.get::<Delete>(c"pmem2_source_delete") },
            // SAFETY: see above.
            errormsg: unsafe { library.get::<ErrorMsg>(c"pmem2_errormsg") },
            _library: library,
        })
    }

    /// `pmem2_errormsg()` of the calling thread.
    pub fn message(&self) -> String {
        // SAFETY: pmem2_errormsg takes nothing.
        let text = unsafe { (self.errormsg)() };
        assert!(
            !text.is_null(),
            "{}: pmem2_errormsg returned NULL",
            self.name
        );
        // SAFETY: non-NULL, and both libraries return a NUL-terminated string that stays
        // valid until the thread's next failing call.
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned()
    }

    /// `pmem2_source_from_fd(src, fd)`.
    pub fn source_from_fd(&self, src: &mut *mut Src, fd: RawFd) -> c_int {
        // SAFETY: `src` is valid for writes; both libraries accept any fd number.
        unsafe { (self.from_fd)(src, fd) }
    }

    /// `pmem2_source_from_anon(src, size)`.
    pub fn source_from_anon(&self, src: &mut *mut Src, size: usize) -> c_int {
        // SAFETY: `src` is valid for writes.
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

    /// Leaves [`FD_NOT_SET`] as the thread's message, and checks it is there.
    pub fn provoke_known_message(&self) {
        let mut src = std::ptr::null_mut();
        assert_eq!(
            self.source_from_anon(&mut src, 1),
            0,
            "{}: from_anon",
            self.name
        );
        let mut fd: c_int = -7;
        // SAFETY: `src` is the live anonymous source just made.
        let code = unsafe { self.source_get_fd(src, &mut fd) };
        assert_eq!(
            code, PMEM2_E_FILE_DESCRIPTOR_NOT_SET,
            "{}: get_fd",
            self.name
        );
        // SAFETY: `src` is live and given up here.
        let deleted = unsafe { self.source_delete(&mut src) };
        assert_eq!(deleted, 0, "{}: delete", self.name);
        assert_eq!(
            self.message(),
            FD_NOT_SET,
            "{}: provoked message",
            self.name
        );
    }
}

/// Our `libpmem2_source.so` (built on first use).
pub fn ours() -> &'static Api {
    static OURS: OnceLock<Api> = OnceLock::new();
    OURS.get_or_init(|| {
        let path = support::our_shared_library();
        Api::load("ours", path.to_str().expect("UTF-8 target path"))
            .unwrap_or_else(|e| panic!("loading our library: {e}"))
    })
}

/// Debian's libpmem2 1.12.1, or why it cannot be loaded.
pub fn reference() -> Result<&'static Api, String> {
    static REFERENCE: OnceLock<Result<Api, String>> = OnceLock::new();
    REFERENCE
        .get_or_init(|| Api::load("libpmem2", support::REFERENCE_LIBRARY))
        .as_ref()
        .map_err(Clone::clone)
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
pub fn observe(api: &Api, fd: RawFd) -> Observation {
    api.provoke_known_message();
    let mut src = garbage();
    let code = api.source_from_fd(&mut src, fd);
    let src_null = src.is_null();
    let text = api.message();
    let message = if text == FD_NOT_SET {
        Message::Unchanged
    } else {
        Message::Set(text)
    };
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
pub fn differ(name: &str, expect: &Expect, fd: RawFd, reference: &Api) -> Result<(), String> {
    let theirs = observe(reference, fd);
    let ours = observe(ours(), fd);
    println!(
        "# {name} (fd {fd}): libpmem2 {} {:?} | ours {} {:?}",
        theirs.code, theirs.message, ours.code, ours.message
    );
    compare(expect, fd, &ours, &theirs)
}
