//! The cases, their contenders, the checks made before timing, and the tables.

// Shared with the tests: the staged sysfs (`fake_sysfs`) and loading both libraries with
// dlopen (`support`).
#[path = "../../../tests/common/mod.rs"]
mod common;
#[path = "../../../shims/c/tests/support/mod.rs"]
mod support;

use std::ffi::{CString, c_int};
use std::hint::black_box;
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::ptr::null_mut;
use std::time::Duration;

use pmem2_source::codes::{PMEM2_E_INVALID_FILE_HANDLE, PMEM2_E_INVALID_FILE_TYPE};
use pmem2_source::sysfs::{LINK_TARGET_CAPACITY, SysfsPath};
use pmem2_source::{DeviceNumber, Source};
use pmem2_source_benches::fake_dax;
use pmem2_source_benches::fixtures::Fixtures;
use pmem2_source_benches::floor::{self, Stat};
use pmem2_source_benches::timing::{self, Batch};

use self::common::fake_sysfs::{SYS_DEV_CHAR, enter_or_exit, on_tmpfs_at};
use self::support::{Library, SourceApi, Src};

/// Who runs a batch.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Who {
    Floor,
    OursC,
    OursRust,
    Libpmem2,
    /// `benches/c/minimal_source.c`: the least a C-ABI `from_fd` can do, with a default
    /// (`__tls_get_addr`) thread-local for its error.
    MinimalC,
    /// The same with an initial-exec thread-local.
    MinimalCStaticTls,
    /// The same with a thread-local reached through a TLS descriptor (`-mtls-dialect=gnu2`),
    /// as our C library's are: x86_64 only.
    MinimalCTlsDescriptor,
}

impl Who {
    const ALL: [Who; 7] = [
        Who::Floor,
        Who::OursC,
        Who::OursRust,
        Who::Libpmem2,
        Who::MinimalC,
        Who::MinimalCStaticTls,
        Who::MinimalCTlsDescriptor,
    ];

    fn slug(self) -> &'static str {
        match self {
            Who::Floor => "floor",
            Who::OursC => "c",
            Who::OursRust => "rust",
            Who::Libpmem2 => "libpmem2",
            Who::MinimalC => "minimal",
            Who::MinimalCStaticTls => "minimal-static-tls",
            Who::MinimalCTlsDescriptor => "minimal-tlsdesc",
        }
    }
}

/// One row of the table: a call on one kind of descriptor, and its contenders.
struct Case<'a> {
    /// Short name for `--cases` and `--callgrind`.
    slug: &'static str,
    /// What is called, e.g. `from_fd`.
    call: &'static str,
    /// On what, e.g. `regular file`.
    on: &'static str,
    /// The floor's syscalls, e.g. `fcntl + fstat`.
    syscalls: &'static str,
    /// Why libpmem2 has no column here, if it has none.
    no_reference: Option<&'static str>,
    contenders: Vec<(Who, Batch<'a>)>,
}

/// A measured case.
struct Measured {
    call: &'static str,
    on: &'static str,
    syscalls: &'static str,
    no_reference: Option<&'static str>,
    batch: usize,
    samples: Vec<(Who, Vec<f64>)>,
}

impl Measured {
    fn samples(&self, who: Who) -> Option<&[f64]> {
        self.samples
            .iter()
            .find(|(w, _)| *w == who)
            .map(|(_, s)| s.as_slice())
    }

    fn median(&self, who: Who) -> Option<f64> {
        self.samples(who).map(timing::median)
    }

    fn ratio(&self, a: Who, b: Who) -> Option<f64> {
        Some(self.median(a)? / self.median(b)?)
    }
}

struct Options {
    rounds: usize,
    batch: Duration,
    cases: Option<Vec<String>>,
    callgrind: Option<(String, Who, usize)>,
}

fn usage(why: &str) -> ! {
    eprintln!(
        "{why}\nusage: compare [--rounds N] [--batch-us N] [--cases slug,slug] \
         [--callgrind CASE floor|c|rust|libpmem2|minimal|minimal-static-tls|minimal-tlsdesc CALLS]"
    );
    std::process::exit(2)
}

fn parse_options() -> Options {
    let mut options = Options {
        rounds: 201,
        batch: Duration::from_micros(1000),
        cases: None,
        callgrind: None,
    };
    let mut args = std::env::args().skip(1);
    let number = |value: Option<String>, what: &str| -> usize {
        value
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| usage(&format!("{what} needs a number")))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            // cargo bench passes --bench to every bench binary.
            "--bench" => {}
            "--rounds" => options.rounds = number(args.next(), "--rounds").max(1),
            "--batch-us" => {
                options.batch = Duration::from_micros(number(args.next(), "--batch-us") as u64)
            }
            "--cases" => {
                let list = args.next().unwrap_or_else(|| usage("--cases needs a list"));
                options.cases = Some(list.split(',').map(str::to_owned).collect());
            }
            "--callgrind" => {
                let case = args
                    .next()
                    .unwrap_or_else(|| usage("--callgrind needs a case"));
                let who = args.next().unwrap_or_default();
                let who = Who::ALL
                    .into_iter()
                    .find(|w| w.slug() == who)
                    .unwrap_or_else(|| usage(&format!("no contender {who:?}")));
                let calls = number(args.next(), "--callgrind … CALLS");
                options.cases = Some(vec![case.clone()]);
                options.callgrind = Some((case, who, calls));
            }
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    options
}

/// Both libraries and the builds of the minimal C `from_fd`, loaded with dlopen side by side.
struct Apis {
    ours: SourceApi,
    reference: Option<SourceApi>,
    minimal: MinimalApi,
    minimal_static_tls: MinimalApi,
    /// Built on x86_64 only (elsewhere descriptors are the default, or not offered).
    minimal_tls_descriptor: Option<MinimalApi>,
    _libraries: Vec<Library>,
}

/// `benches/c/minimal_source.c` as built by `benches/build.rs`.
#[derive(Clone, Copy)]
struct MinimalApi {
    from_fd: support::FromFd,
    delete: support::Delete,
    last_error: unsafe extern "C" fn() -> c_int,
}

impl MinimalApi {
    fn load(library: &Library) -> MinimalApi {
        // Each type is the prototype in minimal_source.c (whose `struct minimal_source` is
        // opaque here, like `Src`).
        MinimalApi {
            // SAFETY: see above.
            from_fd: unsafe { library.get(c"minimal_source_from_fd") },
            // SAFETY: see above.
            delete: unsafe { library.get(c"minimal_source_delete") },
            // SAFETY: see above.
            last_error: unsafe { library.get(c"minimal_source_last_error") },
        }
    }
}

/// Loads one build of the minimal C `from_fd` from the build script's output.
fn load_minimal(file: &str, libraries: &mut Vec<Library>) -> MinimalApi {
    let path = format!("{}/{file}", env!("OUT_DIR"));
    let library = Library::open(&path).unwrap_or_else(|e| panic!("loading {file}: {e}"));
    let api = MinimalApi::load(&library);
    libraries.push(library);
    api
}

fn load_libraries() -> Apis {
    let path = support::our_shared_library();
    let ours_library = Library::open(path.to_str().expect("UTF-8 path"))
        .unwrap_or_else(|e| panic!("loading our library: {e}"));
    let ours = SourceApi::load("ours", &ours_library);
    let mut libraries = vec![ours_library];
    let reference = match Library::open(support::REFERENCE_LIBRARY) {
        Ok(library) => {
            let api = SourceApi::load("libpmem2", &library);
            libraries.push(library);
            Some(api)
        }
        Err(why) => {
            println!("libpmem2 columns left empty: {why}");
            None
        }
    };
    let minimal = load_minimal("libminimal_source.so", &mut libraries);
    let minimal_static_tls = load_minimal("libminimal_source_static_tls.so", &mut libraries);
    let minimal_tls_descriptor = cfg!(target_arch = "x86_64")
        .then(|| load_minimal("libminimal_source_tlsdesc.so", &mut libraries));
    Apis {
        ours,
        reference,
        minimal,
        minimal_static_tls,
        minimal_tls_descriptor,
        _libraries: libraries,
    }
}

/// `from_fd` through a C ABI, then `delete` on success: the contender, after checking the
/// library answers `expected`.
fn c_from_fd<'a>(api: SourceApi, fd: c_int, expected: c_int) -> Batch<'a> {
    let mut src: *mut Src = null_mut();
    let code = api.source_from_fd(&mut src, fd);
    assert_eq!(code, expected, "{}: from_fd({fd})", api.name);
    // SAFETY: `src` is NULL or the live source just made, given up here.
    unsafe { api.source_delete(&mut src) };
    timed_c_from_fd(api.from_fd, api.delete, fd)
}

/// The minimal C `from_fd` (see `Who::MinimalC`), after checking it answers `expected` and,
/// on failure, records it as the thread's last error.
fn minimal_from_fd<'a>(api: MinimalApi, fd: c_int, expected: c_int) -> Batch<'a> {
    let mut src: *mut Src = null_mut();
    // SAFETY: `src` is valid for writes; any fd number is accepted.
    let code = unsafe { (api.from_fd)(&mut src, fd) };
    assert_eq!(code, expected, "minimal C: from_fd({fd})");
    if code == 0 {
        assert!(!src.is_null(), "minimal C: from_fd({fd}) made no source");
        // SAFETY: `src` is the live source just made, given up here.
        unsafe { (api.delete)(&mut src) };
    } else {
        assert!(src.is_null(), "minimal C: from_fd({fd}) left *src set");
        // SAFETY: takes no arguments and reads this thread's variable.
        assert_eq!(unsafe { (api.last_error)() }, code, "minimal C: last error");
    }
    timed_c_from_fd(api.from_fd, api.delete, fd)
}

/// The timed loop of a C-ABI `from_fd` + `delete` on success.
fn timed_c_from_fd<'a>(from_fd: support::FromFd, delete: support::Delete, fd: c_int) -> Batch<'a> {
    Box::new(move |n| {
        for _ in 0..n {
            let mut src: *mut Src = null_mut();
            // SAFETY: `src` is valid for writes; any fd number is accepted.
            let code = unsafe { from_fd(&mut src, black_box(fd)) };
            if code == 0 {
                // SAFETY: `src` is the live source just made, given up here.
                unsafe { delete(&mut src) };
            }
            black_box(code);
        }
    })
}

/// `Source::from_fd` by value, after checking it answers `expected`.
fn rust_from_fd<'a>(fd: c_int, expected: c_int) -> Batch<'a> {
    let code = Source::from_fd(fd).map_or_else(|e| e.code(), |_| 0);
    assert_eq!(code, expected, "Source::from_fd({fd})");
    Box::new(move |n| {
        for _ in 0..n {
            // The answer is observed where it was returned (`black_box` of a reference), as a
            // caller's `match` would read it. `black_box` of the value itself copies all of
            // it, with loads wider than the stores that just wrote it, which cannot be
            // forwarded: that copy alone cost up to 10 % of a failing call.
            black_box(&Source::from_fd(black_box(fd)));
        }
    })
}

/// The contenders of a `from_fd` case: the floor, ours twice, libpmem2 if loaded, and each
/// build of the minimal C `from_fd`.
fn from_fd_contenders<'a>(
    apis: &Apis,
    fd: c_int,
    expected: c_int,
    floor: Batch<'a>,
) -> Vec<(Who, Batch<'a>)> {
    let mut contenders = vec![
        (Who::Floor, floor),
        (Who::OursC, c_from_fd(apis.ours, fd, expected)),
        (Who::OursRust, rust_from_fd(fd, expected)),
    ];
    if let Some(reference) = apis.reference {
        contenders.push((Who::Libpmem2, c_from_fd(reference, fd, expected)));
    }
    contenders.push((Who::MinimalC, minimal_from_fd(apis.minimal, fd, expected)));
    contenders.push((
        Who::MinimalCStaticTls,
        minimal_from_fd(apis.minimal_static_tls, fd, expected),
    ));
    if let Some(minimal) = apis.minimal_tls_descriptor {
        contenders.push((
            Who::MinimalCTlsDescriptor,
            minimal_from_fd(minimal, fd, expected),
        ));
    }
    contenders
}

/// Floor: `fcntl` alone (a closed or write-only descriptor), after checking it gives
/// `check`'s answer.
fn floor_fcntl<'a>(fd: c_int, check: impl Fn(isize) -> bool) -> Batch<'a> {
    let ret = floor::fcntl_getfl(fd);
    assert!(check(ret), "floor: fcntl({fd}) = {ret}");
    Box::new(move |n| {
        for _ in 0..n {
            black_box(floor::fcntl_getfl(black_box(fd)));
        }
    })
}

/// Floor: `fcntl` + `fstat`.
fn floor_fcntl_fstat<'a>(fd: c_int) -> Batch<'a> {
    let mut st = Stat::uninit();
    assert!(floor::fcntl_getfl(fd) >= 0, "floor: fcntl({fd})");
    assert_eq!(floor::fstat(fd, &mut st), 0, "floor: fstat({fd})");
    Box::new(move |n| {
        for _ in 0..n {
            black_box(floor::fcntl_getfl(black_box(fd)));
            black_box(floor::fstat(black_box(fd), &mut st));
        }
    })
}

/// The path the core reads for character device `fd`, formatted by the core's own code, and
/// checked to be the one the fake Device DAX stages for `/dev/null`.
fn subsystem_path(fd: c_int) -> CString {
    let mut st = Stat::uninit();
    assert_eq!(floor::fstat(fd, &mut st), 0);
    // SAFETY: fstat succeeded, so the kernel filled in the whole struct.
    let rdev = unsafe { st.assume_init() }.st_rdev;
    let path = SysfsPath::char_subsystem(DeviceNumber::from_raw(rdev)).to_string();
    let path = CString::new(path).expect("no NUL");
    assert_eq!(path.as_c_str(), fake_dax::SUBSYSTEM, "/dev/null is 1:3");
    path
}

/// Floor: `fcntl` + `fstat` + `readlinkat` of the `subsystem` link into a buffer of the size
/// the core uses; checks the link target ends in `want`.
fn floor_character_device<'a>(fd: c_int, want: &str) -> Batch<'a> {
    let path = subsystem_path(fd);
    let mut st = Stat::uninit();
    let mut target = [0u8; LINK_TARGET_CAPACITY];
    let len = floor::readlinkat(&path, &mut target);
    assert!(len > 0, "floor: readlinkat {path:?} = {len}");
    let text = String::from_utf8_lossy(&target[..len as usize]).into_owned();
    assert!(text.ends_with(want), "floor: {path:?} -> {text:?}");
    Box::new(move |n| {
        for _ in 0..n {
            black_box(floor::fcntl_getfl(black_box(fd)));
            black_box(floor::fstat(black_box(fd), &mut st));
            black_box(floor::readlinkat(&path, &mut target));
        }
    })
}

/// The cases that need no staged sysfs.
fn real_cases<'a>(apis: &Apis, fixtures: &Fixtures) -> Vec<Case<'a>> {
    let regular = fixtures.regular.as_raw_fd();
    let dev_null = fixtures.dev_null.as_raw_fd();
    let closed = fixtures.closed;
    let write_only = fixtures.write_only.as_raw_fd();
    let directory = fixtures.directory.as_raw_fd();
    let mut cases = vec![
        Case {
            slug: "regular",
            call: "from_fd",
            on: "regular file",
            syscalls: "fcntl + fstat",
            no_reference: None,
            contenders: from_fd_contenders(apis, regular, 0, floor_fcntl_fstat(regular)),
        },
        Case {
            slug: "dev-null",
            call: "from_fd",
            on: "/dev/null (character device, not DAX)",
            syscalls: "fcntl + fstat + readlinkat",
            no_reference: None,
            contenders: from_fd_contenders(
                apis,
                dev_null,
                PMEM2_E_INVALID_FILE_TYPE,
                floor_character_device(dev_null, "/mem"),
            ),
        },
        Case {
            slug: "closed",
            call: "from_fd",
            on: "closed fd",
            syscalls: "fcntl",
            no_reference: None,
            contenders: from_fd_contenders(
                apis,
                closed,
                PMEM2_E_INVALID_FILE_HANDLE,
                floor_fcntl(closed, |ret| ret == -(libc::EBADF as isize)),
            ),
        },
        Case {
            slug: "write-only",
            call: "from_fd",
            on: "O_WRONLY file",
            syscalls: "fcntl",
            no_reference: None,
            contenders: from_fd_contenders(
                apis,
                write_only,
                PMEM2_E_INVALID_FILE_HANDLE,
                floor_fcntl(write_only, |ret| {
                    ret >= 0 && ret as i32 & libc::O_ACCMODE == libc::O_WRONLY
                }),
            ),
        },
        Case {
            slug: "directory",
            call: "from_fd",
            on: "directory",
            syscalls: "fcntl + fstat",
            no_reference: None,
            contenders: from_fd_contenders(
                apis,
                directory,
                PMEM2_E_INVALID_FILE_TYPE,
                floor_fcntl_fstat(directory),
            ),
        },
    ];
    cases.extend(query_cases(apis, regular, QueryOn::RegularFile));
    cases
}

/// The cases on the fake Device DAX (`/dev/null` with `/sys/dev/char/1:3` staged).
fn fake_dax_cases<'a>(apis: &Apis, fixtures: &Fixtures) -> Vec<Case<'a>> {
    let dax = fixtures.dev_null.as_raw_fd();
    let mut cases = vec![Case {
        slug: "fake-dax",
        call: "from_fd",
        on: "fake Device DAX (tmpfs sysfs)",
        syscalls: "fcntl + fstat + readlinkat",
        no_reference: None,
        contenders: from_fd_contenders(apis, dax, 0, floor_character_device(dax, "/dax")),
    }];
    cases.extend(query_cases(apis, dax, QueryOn::FakeDax));
    cases
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum QueryOn {
    RegularFile,
    FakeDax,
}

/// A live source of `api` for `fd`, deleted when the harness ends (never: it lives as long
/// as the process, like the libraries).
fn c_source(api: SourceApi, fd: c_int) -> *mut Src {
    let mut src: *mut Src = null_mut();
    assert_eq!(api.source_from_fd(&mut src, fd), 0, "{}: from_fd", api.name);
    src
}

/// A `size_t` query (`pmem2_source_size` or `pmem2_source_alignment`) of a C ABI, after
/// checking it answers `expected`.
fn c_query<'a>(
    api: SourceApi,
    query: support::SizeQuery,
    src: *mut Src,
    expected: usize,
) -> Batch<'a> {
    let mut value = 0usize;
    // SAFETY: `src` is a live source of this library; `value` is valid for writes.
    let code = unsafe { query(src, &mut value) };
    assert_eq!((code, value), (0, expected), "{}: query", api.name);
    Box::new(move |n| {
        for _ in 0..n {
            // SAFETY: as above.
            black_box(unsafe { query(black_box(src), &mut value) });
        }
    })
}

/// `size` and `alignment` on `fd`.
fn query_cases<'a>(apis: &Apis, fd: c_int, on: QueryOn) -> Vec<Case<'a>> {
    let (size, align, on_text, size_slug, align_slug) = match on {
        QueryOn::RegularFile => (
            Fixtures::REGULAR_SIZE,
            4096usize,
            "regular file",
            "size-regular",
            "align-regular",
        ),
        QueryOn::FakeDax => (
            fake_dax::SIZE_BYTES,
            fake_dax::ALIGN_BYTES,
            "fake Device DAX (tmpfs sysfs)",
            "size-fake-dax",
            "align-fake-dax",
        ),
    };
    let rust = Source::from_fd(fd).expect("Source::from_fd");
    assert_eq!(rust.size(), Ok(size), "Source::size");
    assert_eq!(rust.alignment(), Ok(align), "Source::alignment");
    let ours = c_source(apis.ours, fd);
    let reference = match on {
        QueryOn::RegularFile => apis.reference.map(|api| (api, c_source(api, fd))),
        QueryOn::FakeDax => None,
    };
    let no_reference = match on {
        QueryOn::RegularFile => None,
        QueryOn::FakeDax => Some("SIGSEGV"),
    };

    let mut size_contenders: Vec<(Who, Batch<'a>)> = Vec::new();
    let mut align_contenders: Vec<(Who, Batch<'a>)> = Vec::new();
    let size_syscalls;
    let align_syscalls;
    match on {
        QueryOn::RegularFile => {
            let mut st = Stat::uninit();
            assert_eq!(floor::fstat(fd, &mut st), 0);
            size_contenders.push((
                Who::Floor,
                Box::new(move |n| {
                    for _ in 0..n {
                        black_box(floor::fstat(black_box(fd), &mut st));
                    }
                }),
            ));
            size_syscalls = "fstat";
            align_syscalls = "none";
        }
        QueryOn::FakeDax => {
            let mut st = Stat::uninit();
            let mut text = [0u8; pmem2_source::sysfs::ATTRIBUTE_CAPACITY];
            assert_eq!(floor::fstat(fd, &mut st), 0);
            let len = floor::read_attribute(fake_dax::SIZE, &mut text);
            assert_eq!(&text[..len.max(0) as usize], format!("{size}\n").as_bytes());
            size_contenders.push((
                Who::Floor,
                Box::new(move |n| {
                    for _ in 0..n {
                        black_box(floor::fstat(black_box(fd), &mut st));
                        black_box(floor::read_attribute(fake_dax::SIZE, &mut text));
                    }
                }),
            ));
            let mut text = [0u8; pmem2_source::sysfs::ATTRIBUTE_CAPACITY];
            let len = floor::read_attribute(fake_dax::ALIGN, &mut text);
            assert_eq!(
                &text[..len.max(0) as usize],
                format!("{align}\n").as_bytes()
            );
            align_contenders.push((
                Who::Floor,
                Box::new(move |n| {
                    for _ in 0..n {
                        black_box(floor::read_attribute(fake_dax::ALIGN, &mut text));
                    }
                }),
            ));
            size_syscalls = "fstat + openat + fstat + 2 read + close";
            align_syscalls = "openat + fstat + 2 read + close";
        }
    }
    size_contenders.push((
        Who::OursC,
        c_query(apis.ours, apis.ours.size, ours, size as usize),
    ));
    align_contenders.push((
        Who::OursC,
        c_query(apis.ours, apis.ours.alignment, ours, align),
    ));
    size_contenders.push((
        Who::OursRust,
        Box::new(move |n| {
            for _ in 0..n {
                // By reference: see `rust_from_fd`.
                black_box(&black_box(&rust).size());
            }
        }),
    ));
    align_contenders.push((
        Who::OursRust,
        Box::new(move |n| {
            for _ in 0..n {
                black_box(&black_box(&rust).alignment());
            }
        }),
    ));
    if let Some((api, src)) = reference {
        size_contenders.push((Who::Libpmem2, c_query(api, api.size, src, size as usize)));
        align_contenders.push((Who::Libpmem2, c_query(api, api.alignment, src, align)));
    }
    vec![
        Case {
            slug: size_slug,
            call: "size",
            on: on_text,
            syscalls: size_syscalls,
            no_reference,
            contenders: size_contenders,
        },
        Case {
            slug: align_slug,
            call: "alignment",
            on: on_text,
            syscalls: align_syscalls,
            no_reference,
            contenders: align_contenders,
        },
    ]
}

/// Times every selected case (or runs the one `--callgrind` contender).
fn run_cases(cases: Vec<Case<'_>>, options: &Options, out: &mut Vec<Measured>) {
    for mut case in cases {
        if let Some(selected) = &options.cases
            && !selected.iter().any(|slug| slug == case.slug)
        {
            continue;
        }
        if let Some((_, who, calls)) = options.callgrind {
            let (_, run) = case
                .contenders
                .iter_mut()
                .find(|(w, _)| *w == who)
                .unwrap_or_else(|| usage(&format!("case {} has no {who:?}", case.slug)));
            callgrind_batch(&mut **run, calls);
            println!("ran {calls} calls of {} {:?}", case.slug, who);
            continue;
        }
        // Size the batch on ours (the C ABI), the contender every case has.
        let batch = {
            let (_, run) = case
                .contenders
                .iter_mut()
                .find(|(w, _)| *w == Who::OursC)
                .expect("every case has ours");
            timing::calibrate(&mut **run, options.batch)
        };
        let (whos, mut runs): (Vec<Who>, Vec<Batch<'_>>) = case.contenders.into_iter().unzip();
        let samples = timing::interleaved(&mut runs, batch, options.rounds);
        eprintln!(
            "measured {} ({} × {batch} calls each)",
            case.slug, options.rounds
        );
        out.push(Measured {
            call: case.call,
            on: case.on,
            syscalls: case.syscalls,
            no_reference: case.no_reference,
            batch,
            samples: whos.into_iter().zip(samples).collect(),
        });
    }
}

/// The batch `valgrind --tool=callgrind --collect-atstart=no
/// --toggle-collect='*callgrind_batch*'` counts.
#[inline(never)]
fn callgrind_batch(run: &mut dyn FnMut(usize), calls: usize) {
    run(calls);
}

fn ns(value: Option<f64>) -> String {
    match value {
        Some(v) if v < 100.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.0}"),
        None => "—".to_owned(),
    }
}

fn ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v:.2}×"))
}

/// The 10th, 50th and 90th percentiles of the per-round ratios `a / b`.
fn spread(m: &Measured, a: Who, b: Who) -> String {
    match (m.samples(a), m.samples(b)) {
        (Some(a), Some(b)) => {
            let r = timing::paired_ratios(a, b);
            format!(
                "{:.2}–{:.2}–{:.2}",
                timing::quantile(&r, 0.1),
                timing::quantile(&r, 0.5),
                timing::quantile(&r, 0.9)
            )
        }
        _ => "—".to_owned(),
    }
}

/// The `from_fd` rows again, against the minimal C `from_fd`: what a C-ABI function costs
/// beyond the floor before any work of ours, and what ours costs beyond that.
fn print_minimal_table(measured: &[Measured]) {
    println!();
    println!(
        "The least a C-ABI `from_fd` can do (`benches/c/minimal_source.c`, loaded with dlopen \
         like ours; its error code kept in a `__thread` variable of the default model, reached \
         through a TLS descriptor as ours are, or of the initial-exec model):"
    );
    println!();
    println!(
        "| call | on | floor ns | minimal C ns | minimal C, TLS descriptor ns \
         | minimal C, initial-exec TLS ns | ours, C ABI ns | minimal C / floor \
         | TLS descriptor / floor | initial-exec / floor | C ABI / floor \
         | C ABI / minimal C, TLS descriptor: 10th–50th–90th |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for m in measured
        .iter()
        .filter(|m| m.samples(Who::MinimalC).is_some())
    {
        println!(
            "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            m.call,
            m.on,
            ns(m.median(Who::Floor)),
            ns(m.median(Who::MinimalC)),
            ns(m.median(Who::MinimalCTlsDescriptor)),
            ns(m.median(Who::MinimalCStaticTls)),
            ns(m.median(Who::OursC)),
            ratio(m.ratio(Who::MinimalC, Who::Floor)),
            ratio(m.ratio(Who::MinimalCTlsDescriptor, Who::Floor)),
            ratio(m.ratio(Who::MinimalCStaticTls, Who::Floor)),
            ratio(m.ratio(Who::OursC, Who::Floor)),
            spread(m, Who::OursC, Who::MinimalCTlsDescriptor),
        );
    }
}

fn print_tables(measured: &[Measured], options: &Options) {
    println!();
    println!(
        "| call | on | floor: syscalls | floor ns | ours, C ABI ns | ours, Rust ns | libpmem2 ns \
         | C ABI / floor | Rust / floor | libpmem2 / floor | libpmem2 / C ABI |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for m in measured {
        let reference = match m.no_reference {
            Some(why) => format!("— ({why})"),
            None => ns(m.median(Who::Libpmem2)),
        };
        println!(
            "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            m.call,
            m.on,
            m.syscalls,
            ns(m.median(Who::Floor)),
            ns(m.median(Who::OursC)),
            ns(m.median(Who::OursRust)),
            reference,
            ratio(m.ratio(Who::OursC, Who::Floor)),
            ratio(m.ratio(Who::OursRust, Who::Floor)),
            ratio(m.ratio(Who::Libpmem2, Who::Floor)),
            ratio(m.ratio(Who::Libpmem2, Who::OursC)),
        );
    }
    print_minimal_table(measured);
    println!();
    println!(
        "Medians of {} interleaved rounds; ns per call. Spread of the per-round ratios \
         (10th–50th–90th percentile) and the batch size:",
        options.rounds
    );
    println!();
    println!("| call | on | calls per batch | C ABI / floor | Rust / floor | libpmem2 / C ABI |");
    println!("|---|---|---:|---|---|---|");
    for m in measured {
        let spread = |a: Who, b: Who| spread(m, a, b);
        println!(
            "| `{}` | {} | {} | {} | {} | {} |",
            m.call,
            m.on,
            m.batch,
            spread(Who::OursC, Who::Floor),
            spread(Who::OursRust, Who::Floor),
            spread(Who::Libpmem2, Who::OursC),
        );
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

pub fn main() -> ExitCode {
    let options = parse_options();
    // The private mount namespace first, while this process has one thread.
    let namespace = enter_or_exit().is_ok();
    let apis = load_libraries();
    let fixtures = Fixtures::new();
    eprintln!("load average before: {}", load_average());
    let mut measured = Vec::new();
    run_cases(real_cases(&apis, &fixtures), &options, &mut measured);
    let wants_fake_dax = options
        .cases
        .as_ref()
        .is_none_or(|cases| cases.iter().any(|c| c.contains("fake-dax")));
    if !namespace {
        println!("fake Device DAX rows skipped: they need root (a private mount namespace)");
    } else if wants_fake_dax {
        let staged = on_tmpfs_at(SYS_DEV_CHAR, false, &fake_dax::stage, || {
            run_cases(fake_dax_cases(&apis, &fixtures), &options, &mut measured);
            Ok(())
        });
        if let Err(why) = staged {
            println!("FAIL - fake Device DAX: {why}");
            return ExitCode::FAILURE;
        }
    }
    eprintln!("load average after: {}", load_average());
    if options.callgrind.is_none() {
        print_tables(&measured, &options);
    }
    ExitCode::SUCCESS
}
