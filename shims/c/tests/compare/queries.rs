//! Differential testing of what a source answers — `pmem2_source_size`, `_alignment`,
//! `_numa_node`, `_device_id`, `_device_usc`, `_pread_mcsafe`, `_pwrite_mcsafe` — against
//! libpmem2.
//!
//! A [`Case`] names where the source comes from (a descriptor or an anonymous size), how the
//! world is set up before each library makes its source and changed after (the file grows,
//! the descriptor number is reused, …), one [`Query`], and what both libraries must answer
//! ([`Expect`]). Each library runs the whole case in turn — set up, make its source, change,
//! ask, delete — so both see the same world. Out-parameters and buffers are preset
//! ([`UNTOUCHED`], [`FILL`]) to show what a call wrote; messages are read against a provoked
//! one (see the parent module).
//!
//! Needs `mod common;` beside `mod compare;` (pipes for [`observe_in_child`]).

use std::ffi::c_int;
use std::fmt;
use std::io::{Read, Write};
use std::os::fd::RawFd;
use std::panic::AssertUnwindSafe;

use super::{Message, all_passed, garbage, message_since_provoked, ours, provoke_known_message};
use pmem2_source::codes::{PMEM2_E_DAX_REGION_NOT_FOUND, PMEM2_E_NOSUPP};

use crate::common::pipe;
use crate::support::{SourceApi, Src};

/// What every numeric out-parameter holds before the call: a call that leaves it alone
/// leaves this.
pub const UNTOUCHED: i128 = 0x5a5a_5a5a;

/// What every read buffer holds before the call.
pub const FILL: u8 = 0xa5;

/// What `device_id`'s buffer holds before the call (its last byte is a NUL).
pub const ID_FILL: u8 = b'Z';

/// What a call left to look at.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// A numeric out-parameter after the call (preset to [`UNTOUCHED`]).
    Number(i128),
    /// A buffer after the call: a read buffer (preset to [`FILL`]), or the file's contents
    /// after a write.
    Bytes(Vec<u8>),
    /// `device_id` with a buffer: `*len` and the buffer after the call.
    Id { len: i128, bytes: Vec<u8> },
    /// Nothing to look at (a NULL buffer; the contents of a closed descriptor or of an
    /// anonymous source).
    Nothing,
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Number(UNTOUCHED) => f.write_str("untouched"),
            Value::Number(n) => write!(f, "{n}"),
            Value::Bytes(bytes) => write!(f, "b\"{}\"", bytes.escape_ascii()),
            Value::Id { len, bytes } => write!(f, "len {len}, b\"{}\"", bytes.escape_ascii()),
            Value::Nothing => f.write_str("nothing"),
        }
    }
}

/// The [`Value`] of an out-parameter the call left alone.
pub fn untouched() -> Value {
    Value::Number(UNTOUCHED)
}

/// `n` stored in the out-parameter.
pub fn number(n: impl Into<i128>) -> Value {
    Value::Number(n.into())
}

/// `bytes` in the buffer (or the file) after the call.
pub fn bytes(bytes: impl AsRef<[u8]>) -> Value {
    Value::Bytes(bytes.as_ref().to_vec())
}

/// A read buffer of `len` bytes the call did not touch.
pub fn unread(len: usize) -> Value {
    Value::Bytes(vec![FILL; len])
}

/// The `device_id` buffer of `capacity` bytes as preset, and `*len` as given.
pub fn id_untouched(capacity: usize) -> Value {
    Value::Id {
        len: capacity as i128,
        bytes: id_buffer(capacity),
    }
}

fn id_buffer(capacity: usize) -> Vec<u8> {
    let mut buffer = vec![ID_FILL; capacity];
    if let Some(last) = buffer.last_mut() {
        *last = 0;
    }
    buffer
}

/// Read or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Read,
    Write,
}

/// One call on a live source.
#[derive(Clone, Debug)]
pub enum Query {
    Size,
    Alignment,
    NumaNode,
    /// `device_id(src, NULL, &len)`.
    DeviceIdLength,
    /// `device_id(src, buf, &len)` with a `capacity`-byte buffer and `len = capacity`.
    DeviceId {
        capacity: usize,
    },
    DeviceUsc,
    /// `pread_mcsafe(src, buf, len, offset)` into a buffer of `buffer` bytes preset to
    /// [`FILL`]. `len > buffer` only for a length beyond every source, which both libraries
    /// reject before the buffer is touched.
    Pread {
        buffer: usize,
        len: usize,
        offset: usize,
    },
    /// `pwrite_mcsafe(src, data, data.len(), offset)`; the value is the file's contents after
    /// it (through `/proc/self/fd/N`).
    Pwrite {
        data: Vec<u8>,
        offset: usize,
    },
    /// A query with a NULL out-parameter, where libpmem2 returns an error before it would
    /// write through it (elsewhere it crashes).
    NullOut(NullOut),
    /// `pread_mcsafe`/`pwrite_mcsafe` with `buf == NULL`.
    Null {
        direction: Direction,
        len: usize,
        offset: usize,
    },
}

/// Which query [`Query::NullOut`] makes.
#[derive(Clone, Copy, Debug)]
pub enum NullOut {
    /// `numa_node(src, NULL)`.
    NumaNode,
    /// `device_id(src, NULL, NULL)`.
    DeviceIdLength,
    /// `device_usc(src, NULL)`.
    DeviceUsc,
}

/// `pread_mcsafe` of `len` bytes at `offset` into a buffer of `len` bytes.
pub fn pread(len: usize, offset: usize) -> Query {
    Query::Pread {
        buffer: len,
        len,
        offset,
    }
}

/// `pwrite_mcsafe` of `data` at `offset`.
pub fn pwrite(data: &[u8], offset: usize) -> Query {
    Query::Pwrite {
        data: data.to_vec(),
        offset,
    }
}

/// Where a case's source comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Fd(RawFd),
    Anon(usize),
}

/// The contents of the file behind descriptor `fd`, opened anew through `/proc/self/fd`
/// (so also for an `O_RDONLY` descriptor or a memfd); `Nothing` if it is not open.
pub fn contents(fd: RawFd) -> Value {
    std::fs::read(format!("/proc/self/fd/{fd}")).map_or(Value::Nothing, Value::Bytes)
}

impl Query {
    /// Makes the call on `src`, a live source of `api` from `origin`.
    fn ask(&self, api: &SourceApi, src: *mut Src, origin: Origin) -> (c_int, Value) {
        match self {
            Query::Size | Query::Alignment => {
                let function = if matches!(self, Query::Size) {
                    api.size
                } else {
                    api.alignment
                };
                let mut out = UNTOUCHED as usize;
                // SAFETY: `src` is a live source of `api`; `out` is valid for writes.
                let code = unsafe { function(src, &mut out) };
                (code, Value::Number(out as i128))
            }
            Query::NumaNode => {
                let mut out = UNTOUCHED as c_int;
                // SAFETY: `src` is a live source of `api`; `out` is valid for writes.
                let code = unsafe { (api.numa_node)(src, &mut out) };
                (code, number(out))
            }
            Query::DeviceIdLength => {
                let mut len = UNTOUCHED as usize;
                // SAFETY: `src` is a live source of `api`; NULL `id` asks for the length,
                // which goes to `len`, valid for reads and writes.
                let code = unsafe { (api.device_id)(src, std::ptr::null_mut(), &mut len) };
                (code, Value::Number(len as i128))
            }
            Query::DeviceId { capacity } => {
                let mut buffer = id_buffer(*capacity);
                let mut len = *capacity;
                // SAFETY: `src` is a live source of `api`; `buffer` is valid for writes of
                // `len` bytes, and a NUL-terminated string (libpmem2 appends to it).
                let code = unsafe { (api.device_id)(src, buffer.as_mut_ptr().cast(), &mut len) };
                let len = len as i128;
                (code, Value::Id { len, bytes: buffer })
            }
            Query::DeviceUsc => {
                let mut out = UNTOUCHED as u64;
                // SAFETY: `src` is a live source of `api`; `out` is valid for writes.
                let code = unsafe { (api.device_usc)(src, &mut out) };
                (code, number(out))
            }
            Query::Pread {
                buffer,
                len,
                offset,
            } => {
                let mut buf = vec![FILL; *buffer];
                // SAFETY: `src` is a live source of `api`; `buf` is valid for writes of `len`
                // bytes, or (`len` beyond every source, see `Query::Pread`) is never touched.
                let code =
                    unsafe { (api.pread_mcsafe)(src, buf.as_mut_ptr().cast(), *len, *offset) };
                (code, Value::Bytes(buf))
            }
            Query::Pwrite { data, offset } => {
                let mut data = data.clone();
                let (buf, len) = (data.as_mut_ptr().cast(), data.len());
                // SAFETY: `src` is a live source of `api`; `buf` is valid for reads of `len`
                // bytes.
                let code = unsafe { (api.pwrite_mcsafe)(src, buf, len, *offset) };
                let value = match origin {
                    Origin::Fd(fd) => contents(fd),
                    Origin::Anon(_) => Value::Nothing,
                };
                (code, value)
            }
            Query::NullOut(which) => {
                let null: *mut std::ffi::c_char = std::ptr::null_mut();
                // `src` is a live source of `api`; the cases are those where both libraries
                // return before they would write through the NULL out-parameter.
                let code = match which {
                    // SAFETY: as said above.
                    NullOut::NumaNode => unsafe { (api.numa_node)(src, null.cast()) },
                    // SAFETY: as said above.
                    NullOut::DeviceIdLength => unsafe { (api.device_id)(src, null, null.cast()) },
                    // SAFETY: as said above.
                    NullOut::DeviceUsc => unsafe { (api.device_usc)(src, null.cast()) },
                };
                (code, Value::Nothing)
            }
            Query::Null {
                direction,
                len,
                offset,
            } => {
                let function = match direction {
                    Direction::Read => api.pread_mcsafe,
                    Direction::Write => api.pwrite_mcsafe,
                };
                // SAFETY: `src` is a live source of `api`; both libraries check the range
                // before using `buf`, and pass NULL to pread/pwrite(2), which return EFAULT.
                let code = unsafe { function(src, std::ptr::null_mut(), *len, *offset) };
                (code, Value::Nothing)
            }
        }
    }
}

/// One library's answer to a case: the code, what the call left, the message.
#[derive(Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: c_int,
    pub value: Value,
    pub message: Message,
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.code, self.value)?;
        match &self.message {
            Message::Unchanged => f.write_str(", no message"),
            Message::Set(text) => write!(f, ", {text:?}"),
        }
    }
}

/// Success, leaving `value` and the message alone.
pub fn ok(value: Value) -> Reply {
    Reply {
        code: 0,
        value,
        message: Message::Unchanged,
    }
}

/// Fails with `code` and exactly `message`, leaving `value`.
pub fn fails(code: c_int, message: impl Into<String>, value: Value) -> Reply {
    Reply {
        code,
        value,
        message: Message::Set(message.into()),
    }
}

/// Fails with `code` and sets no message (libpmem2 only), leaving `value`.
pub fn fails_silently(code: c_int, value: Value) -> Reply {
    Reply {
        code,
        value,
        message: Message::Unchanged,
    }
}

/// What a case must show.
#[derive(Clone, Debug)]
pub enum Expect {
    /// Both libraries give this reply. A failure carries a message, libpmem2's and ours the
    /// same text (a failure libpmem2 sets no message for is a divergence).
    Same(Reply),
    /// A documented difference: each library's reply.
    Diverges {
        ours: Reply,
        reference: Reply,
        why: &'static str,
    },
    /// libpmem2 is killed by `signal` (it runs the case in a forked child, see
    /// [`observe_in_child`]); ours gives `ours`.
    ReferenceDies {
        ours: Reply,
        signal: c_int,
        why: &'static str,
    },
}

/// A named query, and what it must show.
pub type Row = (&'static str, Query, Expect);

pub const UNKNOWN_REGION: &str = "unknown region";
pub const NO_DEVICE_ID: &str =
    "device id is not available for this source: no NVDIMM with an nfit/id backs it";
pub const NO_USC: &str = "Unsafe shutdown count is not supported for this source";

const WHY_ID_SILENT: &str = "SPEC §7 (ours): every failure sets a message; libpmem2 sets none \
                             when no NVDIMM backs the source";
const WHY_USC_ZEROED: &str = "(ours) out-parameters are untouched on failure; libpmem2 sets \
                              *usc = 0 before it looks for the NVDIMMs";

/// The capacity of the `device_id` buffer the rows offer.
pub const ID_CAPACITY: usize = 64;

/// What both libraries answer when no NVDIMM backs a file or Device DAX (on this machine:
/// every one): NUMA node, device id (its length, and into a buffer), unsafe shutdown count.
pub fn without_nvdimm() -> Vec<Row> {
    vec![
        (
            "numa_node",
            Query::NumaNode,
            Expect::Same(fails(
                PMEM2_E_DAX_REGION_NOT_FOUND,
                UNKNOWN_REGION,
                untouched(),
            )),
        ),
        (
            "device_id length",
            Query::DeviceIdLength,
            Expect::Diverges {
                ours: fails(PMEM2_E_NOSUPP, NO_DEVICE_ID, untouched()),
                reference: fails_silently(PMEM2_E_NOSUPP, untouched()),
                why: WHY_ID_SILENT,
            },
        ),
        (
            "device_id into a buffer",
            Query::DeviceId {
                capacity: ID_CAPACITY,
            },
            Expect::Diverges {
                ours: fails(PMEM2_E_NOSUPP, NO_DEVICE_ID, id_untouched(ID_CAPACITY)),
                reference: fails_silently(PMEM2_E_NOSUPP, id_untouched(ID_CAPACITY)),
                why: WHY_ID_SILENT,
            },
        ),
        (
            "device_usc",
            Query::DeviceUsc,
            Expect::Diverges {
                ours: fails(PMEM2_E_NOSUPP, NO_USC, untouched()),
                reference: fails(PMEM2_E_NOSUPP, NO_USC, number(0)),
                why: WHY_USC_ZEROED,
            },
        ),
        // Both libraries fail before they would store the answer, so NULL is no error yet.
        (
            "numa_node into NULL",
            Query::NullOut(NullOut::NumaNode),
            Expect::Same(fails(
                PMEM2_E_DAX_REGION_NOT_FOUND,
                UNKNOWN_REGION,
                Value::Nothing,
            )),
        ),
        (
            "device_id length into NULL",
            Query::NullOut(NullOut::DeviceIdLength),
            Expect::Diverges {
                ours: fails(PMEM2_E_NOSUPP, NO_DEVICE_ID, Value::Nothing),
                reference: fails_silently(PMEM2_E_NOSUPP, Value::Nothing),
                why: WHY_ID_SILENT,
            },
        ),
    ]
}

/// Sets the world up, or changes it, for a case; run once for each library.
pub type Hook = Box<dyn Fn()>;

/// One query on one source, and what both libraries must answer.
pub struct Case {
    pub name: String,
    pub origin: Origin,
    /// Before each library makes its source: put the world in the case's starting state.
    pub prepare: Option<Hook>,
    /// After the source is made, before the query.
    pub then: Option<Hook>,
    pub query: Query,
    pub expect: Expect,
}

impl Case {
    pub fn new(name: impl Into<String>, origin: Origin, query: Query, expect: Expect) -> Case {
        Case {
            name: name.into(),
            origin,
            prepare: None,
            then: None,
            query,
            expect,
        }
    }

    /// Runs `prepare` before each library makes its source.
    pub fn prepared(mut self, prepare: impl Fn() + 'static) -> Case {
        self.prepare = Some(Box::new(prepare));
        self
    }

    /// Runs `then` between making the source and the query.
    pub fn then(mut self, then: impl Fn() + 'static) -> Case {
        self.then = Some(Box::new(then));
        self
    }
}

/// Runs `case` through `api`: set up, make the source, change, provoke a known message,
/// ask, read the message, delete the source.
pub fn observe(api: &SourceApi, case: &Case) -> Result<Reply, String> {
    if let Some(prepare) = &case.prepare {
        prepare();
    }
    let mut src = garbage();
    let made = match case.origin {
        Origin::Fd(fd) => api.source_from_fd(&mut src, fd),
        Origin::Anon(size) => api.source_from_anon(&mut src, size),
    };
    if made != 0 || src.is_null() {
        return Err(format!(
            "{}: making the source from {:?} failed: {made}, {:?}",
            api.name,
            case.origin,
            api.message()
        ));
    }
    if let Some(then) = &case.then {
        then();
    }
    provoke_known_message(api);
    let (code, value) = case.query.ask(api, src, case.origin);
    let message = message_since_provoked(api);
    // SAFETY: `src` is the live source made above, given up here.
    let deleted = unsafe { api.source_delete(&mut src) };
    if deleted != 0 || !src.is_null() {
        return Err(format!("{}: delete returned {deleted}", api.name));
    }
    Ok(Reply {
        code,
        value,
        message,
    })
}

/// How a forked child running a case ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Killed by this signal.
    Killed(c_int),
    /// It finished: what it answered, and its wait status.
    Finished(String),
}

/// Runs `observe(api, case)` in a forked child, which writes its answer to a pipe and exits;
/// reports how it ended. For a call that crashes the process.
///
/// Only for single-threaded processes (the `harness = false` tests): a child of a
/// multi-threaded process may only make async-signal-safe calls. The child makes no core
/// dump (`PR_SET_DUMPABLE` 0).
pub fn observe_in_child(api: &SourceApi, case: &Case) -> Result<Ended, String> {
    let (read_end, write_end) = pipe();
    // SAFETY: fork has no preconditions; the process is single-threaded (see above), so the
    // child may run any code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        drop(read_end);
        // SAFETY: PR_SET_DUMPABLE takes integers only.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong) };
        // Nothing may unwind out of the child into the parent's code.
        let observed = std::panic::catch_unwind(AssertUnwindSafe(|| observe(api, case)));
        let answer = match observed {
            Ok(Ok(reply)) => format!("{reply:?}"),
            Ok(Err(e)) => format!("error: {e}"),
            Err(_) => "panicked".to_string(),
        };
        let _ = std::fs::File::from(write_end).write_all(answer.as_bytes());
        // SAFETY: _exit ends the child at once, without running the parent's exit handlers
        // or flushing buffers it shares with the parent.
        unsafe { libc::_exit(0) }
    }
    drop(write_end);
    let mut answer = String::new();
    let read = std::fs::File::from(read_end).read_to_string(&mut answer);
    let mut status: c_int = 0;
    // SAFETY: `pid` is our child and `status` is valid for writes.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    if waited != pid {
        return Err(format!("waitpid: {}", std::io::Error::last_os_error()));
    }
    read.map_err(|e| format!("reading the child's answer: {e}"))?;
    if libc::WIFSIGNALED(status) {
        Ok(Ended::Killed(libc::WTERMSIG(status)))
    } else {
        Ok(Ended::Finished(format!(
            "{answer} (wait status {status:#x})"
        )))
    }
}

/// `reply` must be `want`.
fn check_reply(who: &str, reply: &Reply, want: &Reply) -> Result<(), String> {
    if reply == want {
        Ok(())
    } else {
        Err(format!("{who}: want {want:?}; got {reply:?}"))
    }
}

/// The name of a signal (`SIGSEGV`), for messages.
fn signal_name(signal: c_int) -> String {
    // SAFETY: strsignal returns a valid C string for any number (glibc's static or
    // thread-local buffer), read at once on this thread.
    let text = unsafe { libc::strsignal(signal) };
    if text.is_null() {
        return format!("signal {signal}");
    }
    // SAFETY: non-NULL, NUL-terminated (see above).
    let text = unsafe { std::ffi::CStr::from_ptr(text) }.to_string_lossy();
    format!("signal {signal} ({text})")
}

/// Runs `case` through libpmem2 (`reference`) and ours and checks both against its
/// [`Expect`]. The line printed (seen with `--nocapture`) shows both answers.
pub fn run_case(case: &Case, reference: &SourceApi) -> Result<(), String> {
    let theirs = match &case.expect {
        Expect::ReferenceDies { .. } => match observe_in_child(reference, case)? {
            Ended::Killed(signal) => Err(signal),
            Ended::Finished(answer) => {
                return Err(format!(
                    "libpmem2 did not die but answered {answer} (ours: {:?})",
                    observe(ours(), case)
                ));
            }
        },
        _ => Ok(observe(reference, case)?),
    };
    let our = observe(ours(), case)?;
    let shown = match &theirs {
        Ok(reply) => format!("{reply:?}"),
        Err(signal) => format!("killed by {}", signal_name(*signal)),
    };
    println!("# {}: libpmem2 {shown} | ours {our:?}", case.name);
    if our.code != 0 && !matches!(&our.message, Message::Set(text) if !text.is_empty()) {
        return Err(format!("ours failed without a message: {our:?}"));
    }
    match (&case.expect, theirs) {
        (Expect::Same(want), Ok(theirs)) => {
            if want.code != 0 && want.message == Message::Unchanged {
                return Err(
                    "a failure libpmem2 sets no message for is a divergence: write the case \
                     as Expect::Diverges"
                        .to_string(),
                );
            }
            check_reply("libpmem2", &theirs, want)?;
            check_reply("ours", &our, want)
        }
        (
            Expect::Diverges {
                ours: want_ours,
                reference: want_theirs,
                why,
            },
            Ok(theirs),
        ) => {
            if want_ours == want_theirs {
                return Err(format!("a divergence must differ: both {want_ours:?}"));
            }
            check_reply("libpmem2", &theirs, want_theirs)
                .and_then(|()| check_reply("ours", &our, want_ours))
                .map_err(|e| format!("{e} (divergence: {why})"))
        }
        (
            Expect::ReferenceDies {
                ours: want_ours,
                signal,
                why,
            },
            Err(killed_by),
        ) => {
            if killed_by != *signal {
                return Err(format!(
                    "libpmem2 was killed by {}, want {} ({why})",
                    signal_name(killed_by),
                    signal_name(*signal)
                ));
            }
            check_reply("ours", &our, want_ours)
        }
        (expect, theirs) => unreachable!("{expect:?} observed as {theirs:?}"),
    }
}

/// Runs every case; all failures at once, one line each.
pub fn run_cases(cases: &[Case], reference: &SourceApi) -> Result<(), String> {
    let failures = cases
        .iter()
        .filter_map(|case| {
            run_case(case, reference)
                .err()
                .map(|e| format!("{}: {e}", case.name))
        })
        .collect();
    all_passed(failures, cases.len())
}
