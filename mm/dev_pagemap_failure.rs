// SPDX-License-Identifier: GPL-2.0

//! Ranged memory failure for device memory.
//!
//! When a pmem/CXL/NVDIMM device goes away, or a large range of it is poisoned, every DAX
//! mapping of it must be revoked. Upstream does that one page at a time through
//! `memory_failure()`. Here, agents that own ranges of a dax_device (filesystems,
//! device-mapper, test modules) claim them in a per-device [`registry::Registry`], and a
//! failure is handed to the owner of each claimed part in one call; the pfn-at-a-time walk is
//! left only for the parts nobody claimed.
//!
//! * [`dev_pagemap_failure`]: a driver whose device memory is going away calls it once.
//! * [`dax_failure_notify_pfns`]: the pmem driver's pagemap `memory_failure` operation, so
//!   `memory_failure()` and `memory_failure_range()` reach the same dispatch.
//! * `dax_failure_register()`/`dax_failure_unregister()`: claims, for C owners.
//!
//! The pure arithmetic lives in [`range`], which is also compiled and tested on the host.
//! See Documentation/mm/dev_pagemap_failure.rst.

use core::ffi::c_void;

use kernel::{
    bindings, debugfs,
    ffi::{c_char, c_int, c_long, c_ulong},
    fmt,
    memremap::{DevPagemap, PhysRange},
    new_spinlock,
    page::PAGE_SHIFT,
    prelude::*,
    str::CStr,
    sync::{atomic::Relaxed, Arc, ArcBorrow, SpinLock},
    tracepoint::declare_trace,
};

// The crate root is this file, so the module paths are spelled out.
#[path = "dev_pagemap_failure/range.rs"]
pub mod range;
#[path = "dev_pagemap_failure/registry.rs"]
mod registry;

use range::{Range, RangeError};
use registry::{ClaimError, Name, Outcome, Owner, Registry};

module! {
    type: DevPagemapFailureModule,
    name: "dev_pagemap_failure",
    authors: ["dev_pagemap_failure developers"],
    description: "Ranged memory failure for device memory",
    license: "GPL",
    params: {
        inject_lockdep_bug: bool {
            default: false,
            description: "Test only: take two locks in both orders at boot, so that lockdep \
                          must report it",
        },
    },
}

declare_trace! {
    /// One call to an owner's handler: device, byte range, `MF_*` flags, owner, result.
    unsafe fn dax_failure_dispatch(dev: *const c_char, offset: u64, len: u64, flags: c_int,
                                   owner: *const c_char, ret: c_int);
}

kernel::sync::global_lock! {
    // SAFETY: `init()` is called from the module initializer, before `REGISTRIES_READY` is set;
    // nothing locks it before `REGISTRIES_READY` is seen set.
    unsafe(uninit) static REGISTRIES: Mutex<KVec<Arc<Registry>>> = KVec::new();
}

/// Whether [`REGISTRIES`] is initialised. The core is built in and initialises before drivers
/// probe, so in practice every registry is listed; one allocated earlier is simply not shown
/// in debugfs.
static REGISTRIES_READY: kernel::sync::atomic::Atomic<bool> =
    kernel::sync::atomic::Atomic::new(false);

struct DevPagemapFailureModule {
    _devices: Pin<KBox<debugfs::File<DevicesFile>>>,
    _inject: Option<Pin<KBox<debugfs::File<InjectRangeFile>>>>,
    _bench_lookup: Option<Pin<KBox<debugfs::File<BenchLookupFile>>>>,
    _last_failure: Pin<KBox<debugfs::File<LastFailureFile>>>,
    _dir: debugfs::Dir,
}

impl kernel::Module for DevPagemapFailureModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // SAFETY: Called once, before `REGISTRIES_READY` allows any use.
        unsafe { REGISTRIES.init() };
        REGISTRIES_READY.store(true, kernel::sync::atomic::Release);
        if module_parameters::inject_lockdep_bug.value() {
            inject_lockdep_bug()?;
        }
        let dir = debugfs::Dir::new(c"dev_pagemap_failure");
        let devices = KBox::pin_init(
            dir.read_callback_file(c"devices", DevicesFile, &DevicesFile::show),
            GFP_KERNEL,
        )?;
        let inject = if cfg!(CONFIG_DEV_PAGEMAP_FAILURE_INJECT) {
            Some(KBox::pin_init(
                dir.write_callback_file(c"inject_range", InjectRangeFile, &InjectRangeFile::write),
                GFP_KERNEL,
            )?)
        } else {
            None
        };
        let bench_lookup = if cfg!(CONFIG_DEV_PAGEMAP_FAILURE_INJECT) {
            Some(KBox::pin_init(
                dir.read_write_callback_file(
                    c"bench_lookup",
                    BenchLookupFile::new(),
                    &BenchLookupFile::show,
                    &BenchLookupFile::write,
                ),
                GFP_KERNEL,
            )?)
        } else {
            None
        };
        let last_failure = KBox::pin_init(
            dir.read_callback_file(c"last_failure_ns", LastFailureFile, &LastFailureFile::show),
            GFP_KERNEL,
        )?;
        Ok(Self {
            _devices: devices,
            _inject: inject,
            _bench_lookup: bench_lookup,
            _last_failure: last_failure,
            _dir: dir,
        })
    }
}

/// `/sys/kernel/debug/dev_pagemap_failure/devices`: one line of counters per dax_device, then
/// one line per claim.
struct DevicesFile;

impl DevicesFile {
    fn show(_: &Self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !REGISTRIES_READY.load(kernel::sync::atomic::Acquire) {
            return Ok(());
        }
        let registries = REGISTRIES.lock();
        for registry in registries.iter() {
            let stats = &registry.stats;
            let state = if registry.is_dead() { "dead" } else { "live" };
            let name = registry.name();
            writeln!(
                f,
                "{} state={} claims={} dispatches={} dispatched_bytes={} \
                     fallback_pages={} handler_errors={}",
                core::str::from_utf8(name.as_bstr()).unwrap_or("?"),
                state,
                stats.claims.load(Relaxed),
                stats.dispatches.load(Relaxed),
                stats.dispatched_bytes.load(Relaxed),
                stats.fallback_pages.load(Relaxed),
                stats.handler_errors.load(Relaxed),
            )?;
            let mut result = Ok(());
            registry.for_each_claim(|range, owner| {
                if result.is_ok() {
                    result = writeln!(
                        f,
                        "  claim {:#x}-{:#x} {}",
                        range.start(),
                        range.end(),
                        owner.name().to_str().unwrap_or("?")
                    );
                }
            });
            result?;
        }
        Ok(())
    }
}

/// `/sys/kernel/debug/dev_pagemap_failure/last_failure_ns`: how long the last
/// `dev_pagemap_failure()` call took, so that a benchmark can tell the revocation from the
/// rest of a driver's teardown.
struct LastFailureFile;

impl LastFailureFile {
    fn show(_: &Self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", LAST_FAILURE_NS.load(Relaxed))
    }
}

/// `/sys/kernel/debug/dev_pagemap_failure/inject_range`: writing `PFN NR_PAGES` (decimal or
/// `0x` hex) calls `memory_failure_range(PFN, NR_PAGES, MF_SW_SIMULATED)`, as
/// mm/hwpoison-inject.c's `corrupt-pfn` does for one page; the write fails with its error.
/// For tests and benchmarks: only with `CONFIG_DEV_PAGEMAP_FAILURE_INJECT`, and debugfs is
/// root-only.
struct InjectRangeFile;

impl InjectRangeFile {
    fn write(_: &Self, reader: &mut kernel::uaccess::UserSliceReader) -> Result {
        let mut buf = [0u8; 64];
        let len = reader.len();
        if len == 0 || len > buf.len() {
            return Err(EINVAL);
        }
        reader.read_slice(&mut buf[..len])?;
        let text = core::str::from_utf8(&buf[..len]).map_err(|_| EINVAL)?;
        let mut words = text.split_ascii_whitespace();
        let (Some(pfn), Some(nr_pages), None) = (words.next(), words.next(), words.next()) else {
            return Err(EINVAL);
        };
        let pfn = c_ulong::try_from(parse_u64(pfn)?).map_err(|_| EINVAL)?;
        let nr_pages = c_ulong::try_from(parse_u64(nr_pages)?).map_err(|_| EINVAL)?;
        let flags = bindings::mf_flags_MF_SW_SIMULATED as c_int;
        // SAFETY: `memory_failure_range()` validates its arguments.
        let ret = unsafe { bindings::memory_failure_range(pfn, nr_pages, flags) };
        kernel::error::to_result(ret)
    }
}

/// `/sys/kernel/debug/dev_pagemap_failure/bench_lookup`: the cost of dispatching one failed
/// page as a function of the number of claims on a device. Writing `CLAIMS ITERATIONS` builds
/// a private registry (no device) with CLAIMS one-page claims on every other page, then
/// dispatches a one-page failure ITERATIONS times, each into another claim, to a handler that
/// does nothing; reading gives `claims=N iterations=N ns_per_dispatch=N` of the last run. For
/// benchmarks only (`CONFIG_DEV_PAGEMAP_FAILURE_INJECT`, root-only debugfs).
struct BenchLookupFile {
    claims: kernel::sync::atomic::Atomic<u64>,
    iterations: kernel::sync::atomic::Atomic<u64>,
    ns_per_dispatch: kernel::sync::atomic::Atomic<u64>,
}

/// The largest claim count `bench_lookup` accepts.
const BENCH_MAX_CLAIMS: u64 = 1 << 20;

/// The benchmark claimants' handler: does nothing.
extern "C" fn bench_handler(
    _dax_dev: *mut bindings::dax_device,
    _data: *mut c_void,
    _offset: u64,
    _len: u64,
    _flags: c_int,
) -> c_int {
    0
}

/// The ops of the benchmark claims.
struct BenchOps(bindings::dax_failure_ops);

// SAFETY: The ops are immutable and the name is a static string.
unsafe impl Sync for BenchOps {}

static BENCH_OPS: BenchOps = BenchOps(bindings::dax_failure_ops {
    // `as_char_ptr()` is not const; the kernel's `c_char` is `u8`, hence the cast.
    #[allow(clippy::disallowed_methods)]
    name: c"bench".as_ptr().cast(),
    notify_failure: Some(bench_handler),
});

impl BenchLookupFile {
    fn new() -> Self {
        use kernel::sync::atomic::Atomic;
        Self {
            claims: Atomic::new(0),
            iterations: Atomic::new(0),
            ns_per_dispatch: Atomic::new(0),
        }
    }

    fn show(this: &Self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "claims={} iterations={} ns_per_dispatch={}",
            this.claims.load(Relaxed),
            this.iterations.load(Relaxed),
            this.ns_per_dispatch.load(Relaxed)
        )
    }

    fn write(this: &Self, reader: &mut kernel::uaccess::UserSliceReader) -> Result {
        let mut buf = [0u8; 64];
        let len = reader.len();
        if len == 0 || len > buf.len() {
            return Err(EINVAL);
        }
        reader.read_slice(&mut buf[..len])?;
        let text = core::str::from_utf8(&buf[..len]).map_err(|_| EINVAL)?;
        let mut words = text.split_ascii_whitespace();
        let (Some(claims), Some(iterations), None) = (words.next(), words.next(), words.next())
        else {
            return Err(EINVAL);
        };
        let (claims, iterations) = (parse_u64(claims)?, parse_u64(iterations)?);
        if claims == 0 || claims > BENCH_MAX_CLAIMS || iterations == 0 {
            return Err(EINVAL);
        }
        let page = 1u64 << PAGE_SHIFT;
        let registry = Registry::new()?;
        // SAFETY: `BENCH_OPS` is static and has a handler; `data` is never dereferenced.
        let owner = unsafe { Owner::new(&raw const BENCH_OPS.0, core::ptr::null_mut()) };
        // No overflow below: `k < claims <= 2^20`, so `k * 2 * page < 2^33`.
        for k in 0..claims {
            let range = Range::from_len(k * 2 * page, page).map_err(|_| EINVAL)?;
            registry.register(range, owner).map_err(Error::from)?;
            kernel::task::might_sleep();
        }
        // A stride that is prime to any claim count below it visits the claims in a scattered
        // order, so that no cache line of the tree stays hot by accident.
        let stride = 7919 % claims;
        let mut k = 0u64;
        let start = kernel::time::Instant::<kernel::time::Monotonic>::now();
        for _ in 0..iterations {
            let failure = Range::from_len(k * 2 * page, page).map_err(|_| EINVAL)?;
            // SAFETY: The handler ignores the device; no device is passed.
            unsafe {
                registry.dispatch(core::ptr::null_mut(), failure, 0, |_| Ok(()), |_, _, _| {})
            }
            .map_err(Error::from)?;
            k = (k + stride.max(1)) % claims;
        }
        let ns = start.elapsed().as_nanos();
        let per = u64::try_from(ns).unwrap_or(0) / iterations;
        this.claims.store(claims, Relaxed);
        this.iterations.store(iterations, Relaxed);
        this.ns_per_dispatch.store(per, Relaxed);
        Ok(())
    }
}

/// Parses a decimal or `0x`-prefixed hexadecimal `u64`.
fn parse_u64(word: &str) -> Result<u64> {
    let parsed = match word.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => word.parse(),
    };
    parsed.map_err(|_| EINVAL)
}

/// `pr_err!` under the kernel's printk rate limit: for errors a caller can trigger in a loop.
macro_rules! pr_err_ratelimited {
    ($($arg:tt)*) => {
        if printk_ratelimit() {
            pr_err!($($arg)*);
        }
    };
}

/// `pr_warn!` under the kernel's printk rate limit.
macro_rules! pr_warn_ratelimited {
    ($($arg:tt)*) => {
        if printk_ratelimit() {
            pr_warn!($($arg)*);
        }
    };
}

/// Whether the kernel's printk rate limit lets one more message through.
fn printk_ratelimit() -> bool {
    // SAFETY: `__printk_ratelimit()` only reads the NUL-terminated name it is given.
    unsafe { bindings::__printk_ratelimit(c"dev_pagemap_failure".as_char_ptr()) != 0 }
}

/// The runtime mode, from `dev_pagemap_failure.mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Off,
    Pfn,
    Ranged,
}

fn mode() -> Mode {
    // SAFETY: Reads an integer parameter.
    match unsafe { bindings::dev_pagemap_failure_mode() } {
        bindings::dev_pagemap_failure_mode_DPF_MODE_OFF => Mode::Off,
        bindings::dev_pagemap_failure_mode_DPF_MODE_PFN => Mode::Pfn,
        _ => Mode::Ranged,
    }
}

/// The registry of `dax_dev`.
///
/// # Safety
///
/// `dax_dev` is null or a dax_device from `alloc_dax()` that the caller keeps alive (holds a
/// reference to) for `'a`.
unsafe fn registry_of<'a>(dax_dev: *mut bindings::dax_device) -> Result<ArcBorrow<'a, Registry>> {
    if dax_dev.is_null() {
        pr_err_ratelimited!("NULL dax_device\n");
        return Err(EINVAL);
    }
    // SAFETY: `dax_dev` is live (the caller's guarantee).
    let raw = unsafe { bindings::dax_failure_registry(dax_dev) };
    if raw.is_null() {
        return Err(ENXIO);
    }
    // SAFETY: drivers/dax/super.c stores in each dax_device the pointer that
    // `dax_failure_registry_alloc()` returned (an `Arc<Registry>` turned into a raw pointer),
    // and releases it with `dax_failure_registry_free()` only when the dax_device is freed,
    // after the caller's reference is gone.
    Ok(unsafe { ArcBorrow::from_raw(raw.cast::<Registry>()) })
}

/// Emits the dispatch tracepoint for one handler call.
fn trace(dev: &Name, owner: &Owner, range: Range, flags: c_int, ret: c_int) {
    // SAFETY: Both strings are NUL-terminated and outlive the call.
    unsafe {
        dax_failure_dispatch(
            dev.as_char_ptr(),
            range.start(),
            range.len(),
            flags,
            owner.name().as_char_ptr(),
            ret,
        )
    };
}

/// A claim's range from the C arguments: non-empty, no overflow, page-aligned.
fn claim_range(offset: u64, len: u64) -> Result<Range, RangeError> {
    let range = Range::from_len(offset, len)?;
    range.scale_down(PAGE_SHIFT as u32)?;
    Ok(range)
}

fn errno(e: impl Into<Error>) -> c_int {
    e.into().to_errno()
}

/// Claims `[offset, offset + len)` of `dax_dev` for `ops`/`data`.
///
/// Returns 0, or `-EINVAL` for a zero, unaligned or overflowing range or missing handler,
/// `-EBUSY` if the range overlaps a claim, `-ENXIO` if the device is gone, `-ENOMEM`.
///
/// # Safety
///
/// `dax_dev` is null or a live dax_device the caller holds a reference to; `ops` is null or a
/// valid `struct dax_failure_ops`, which with its name and `data` stays valid until the claim
/// is unregistered.
#[export]
pub unsafe extern "C" fn dax_failure_register(
    dax_dev: *mut bindings::dax_device,
    offset: u64,
    len: u64,
    ops: *const bindings::dax_failure_ops,
    data: *mut c_void,
) -> c_int {
    // SAFETY: `ops` is null or valid, and with `data` stays valid while claimed (the caller's
    // guarantee).
    let owner = match unsafe { owner_of(ops, data, offset, len) } {
        Ok(owner) => owner,
        Err(e) => return e,
    };
    let who = owner.name().to_str().unwrap_or("?");
    // SAFETY: `dax_dev` is null or live (the caller's guarantee).
    unsafe {
        claim_op(dax_dev, offset, len, "claim", who, |registry, range| {
            registry.register(range, owner)
        })
    }
}

/// The owner behind the C arguments of a claim, or `-EINVAL` (logged) without a handler.
///
/// # Safety
///
/// `ops` is null or a valid `struct dax_failure_ops`, which with its name and `data` stays
/// valid until the claim made with the owner is unregistered.
unsafe fn owner_of(
    ops: *const bindings::dax_failure_ops,
    data: *mut c_void,
    offset: u64,
    len: u64,
) -> Result<Owner, c_int> {
    // SAFETY: `ops` is null or valid (the caller's guarantee).
    if ops.is_null() || unsafe { (*ops).notify_failure }.is_none() {
        pr_err_ratelimited!(
            "claim [{:#x}, +{:#x}) without a handler: -EINVAL\n",
            offset,
            len
        );
        return Err(errno(EINVAL));
    }
    // SAFETY: `ops` has a handler and the caller keeps `ops` and `data` valid while claimed.
    Ok(unsafe { Owner::new(ops, data) })
}

/// Gives the claim of exactly `[offset, offset + len)` that was made with `old_data` to
/// `ops`/`data`, atomically: a failure dispatched meanwhile reaches the old owner or the new
/// one, never neither. For device-mapper, which hands its claims from the old table to the
/// new one. Does not wait for a call of the old owner's handler in flight (it may sleep on
/// I/O to a suspended dm device): [`dax_failure_synchronize`] does, and `old_data` must stay
/// valid until it returns.
///
/// Returns 0, `-EINVAL` for a bad range or a missing handler, `-ENOENT` if no such claim
/// exists.
///
/// # Safety
///
/// As for [`dax_failure_register`] for the new owner.
#[export]
pub unsafe extern "C" fn dax_failure_replace(
    dax_dev: *mut bindings::dax_device,
    offset: u64,
    len: u64,
    old_data: *mut c_void,
    ops: *const bindings::dax_failure_ops,
    data: *mut c_void,
) -> c_int {
    // SAFETY: As for `dax_failure_register()` (the caller's guarantee).
    let owner = match unsafe { owner_of(ops, data, offset, len) } {
        Ok(owner) => owner,
        Err(e) => return e,
    };
    let who = owner.name().to_str().unwrap_or("?");
    // SAFETY: `dax_dev` is null or live (the caller's guarantee).
    unsafe {
        claim_op(dax_dev, offset, len, "hand over", who, |registry, range| {
            registry.replace(range, old_data, owner)
        })
    }
}

/// Removes the claim of exactly `[offset, offset + len)` made with `data`, after waiting for
/// any call of its handler in flight; the handler is never called again.
///
/// Returns 0, `-EINVAL` for a bad range, `-ENOENT` if no such claim exists.
///
/// # Safety
///
/// `dax_dev` is null or a live dax_device the caller holds a reference to. Must not be called
/// from a handler of the same device.
#[export]
pub unsafe extern "C" fn dax_failure_unregister(
    dax_dev: *mut bindings::dax_device,
    offset: u64,
    len: u64,
    data: *mut c_void,
) -> c_int {
    // SAFETY: `dax_dev` is null or live (the caller's guarantee).
    unsafe {
        claim_op(
            dax_dev,
            offset,
            len,
            "unregister",
            "its owner",
            |registry, range| registry.unregister(range, data),
        )
    }
}

/// Removes the claim of exactly `[offset, offset + len)` made with `data` without waiting for
/// a call of its handler in flight; [`dax_failure_synchronize`] waits for it, and `data` must
/// stay valid until then. For callers that must not sleep on the handlers.
///
/// Returns 0, `-EINVAL` for a bad range, `-ENOENT` if no such claim exists.
///
/// # Safety
///
/// `dax_dev` is null or a live dax_device the caller holds a reference to.
#[export]
pub unsafe extern "C" fn dax_failure_detach(
    dax_dev: *mut bindings::dax_device,
    offset: u64,
    len: u64,
    data: *mut c_void,
) -> c_int {
    // SAFETY: `dax_dev` is null or live (the caller's guarantee).
    unsafe {
        claim_op(
            dax_dev,
            offset,
            len,
            "detach",
            "its owner",
            |registry, range| registry.detach(range, data),
        )
    }
}

/// Waits until every call of a handler of `dax_dev` that started before has returned: after
/// [`dax_failure_replace`] or [`dax_failure_detach`], the old owner is never called again.
///
/// # Safety
///
/// `dax_dev` is null or a dax_device the caller holds a reference to. Must not be called from
/// a handler of the same device.
#[export]
pub unsafe extern "C" fn dax_failure_synchronize(dax_dev: *mut bindings::dax_device) {
    // SAFETY: `dax_dev` is null or referenced (the caller's guarantee).
    if let Ok(registry) = unsafe { registry_of(dax_dev) } {
        registry.synchronize();
    }
}

/// What the claim entry points share: finds the registry of `dax_dev`, checks the range, runs
/// `op`, and on failure logs one rate-limited line (`pmem0: cannot claim [0x0, +0x2000) for
/// xfs: Overlap, -EBUSY`). Returns 0 or the negative errno.
///
/// # Safety
///
/// `dax_dev` is null or a live dax_device the caller holds a reference to.
unsafe fn claim_op(
    dax_dev: *mut bindings::dax_device,
    offset: u64,
    len: u64,
    verb: &str,
    who: &str,
    op: impl FnOnce(&Registry, Range) -> Result<(), ClaimError>,
) -> c_int {
    kernel::error::from_result(|| {
        // SAFETY: `dax_dev` is null or live (the caller's guarantee).
        let registry = unsafe { registry_of(dax_dev) }?;
        claim_range(offset, len)
            .map_err(ClaimError::Invalid)
            .and_then(|range| op(&registry, range))
            .map_err(|e| {
                pr_err_ratelimited!(
                    "{}: cannot {} [{:#x}, +{:#x}) for {}: {:?}, {}\n",
                    registry.name().as_bstr(),
                    verb,
                    offset,
                    len,
                    who,
                    e,
                    e.errno_name()
                );
                Error::from(e)
            })?;
        Ok(0)
    })
}

/// The result a caller sees for a dispatch: the first error, else `-EOPNOTSUPP` if nobody
/// handled anything (no claim, or every owner declined, and no fallback ran), else 0.
fn outcome_errno(outcome: &Outcome, fallback_ran: bool) -> c_int {
    match outcome.error {
        Some(e) => e,
        None if outcome.calls == outcome.declined && !fallback_ran => errno(EOPNOTSUPP),
        None => 0,
    }
}

/// Hands the failure of `[offset, offset + len)` of `dax_dev` to the owners of the claims it
/// overlaps, one call per claim. Parts nobody claims are counted and otherwise ignored: this
/// entry has no pfns to fall back on (see [`dax_failure_notify_pfns`]).
///
/// Returns 0, the first handler error, `-EOPNOTSUPP` if no claim overlaps, `-EINVAL` for an
/// empty or overflowing range, `-ENXIO` if the device is gone.
///
/// # Safety
///
/// `dax_dev` is null or a live dax_device the caller holds a reference to.
#[export]
pub unsafe extern "C" fn dax_failure_notify(
    dax_dev: *mut bindings::dax_device,
    offset: u64,
    len: u64,
    mf_flags: c_int,
) -> c_int {
    // SAFETY: `dax_dev` is null or live (the caller's guarantee).
    let ret = unsafe { registry_of(dax_dev) }.and_then(|registry| {
        let failure = Range::from_len(offset, len).map_err(|_| EINVAL)?;
        let dev = registry.name();
        // SAFETY: `dax_dev` is the device of `registry` and live.
        let outcome = unsafe {
            registry.dispatch(
                dax_dev,
                failure,
                mf_flags,
                |_| Ok(()),
                |owner, range, ret| trace(&dev, owner, range, mf_flags, ret),
            )
        }
        .map_err(Error::from)?;
        Ok(outcome_errno(&outcome, false))
    });
    ret.unwrap_or_else(|e| e.to_errno())
}

/// The route's layout, checked: [`range::Route`] for a translating target, or `None` for a
/// target whose layout is unknown, with the part of the lower device it maps and its target.
fn route_layout(
    route: &bindings::dax_failure_route,
) -> Result<(Option<range::Route>, Range, Range), RangeError> {
    let lower = Range::from_len(route.lower_start, route.lower_len)?;
    let target = Range::from_len(route.target_start, route.target_len)?;
    if route.chunk == 0 {
        return Ok((None, lower, target));
    }
    let geometry = range::Stripes::new(
        route.target_start,
        route.lower_len,
        route.stripes.into(),
        route.chunk,
    )?;
    let layout = range::Route::new(route.lower_start, geometry, route.member.into())?;
    if layout.target() != target {
        return Err(RangeError::OutOfRange);
    }
    Ok((Some(layout), lower, target))
}

/// Passes a failure of `[offset, offset + len)` of a lower dax_device up through a stacking
/// driver's `route`: translated into the ranges of the upper device it affects (exact chunks
/// of a striped target; the whole target when a removal covers all the target uses of the
/// lower device, see [`range::Route::upper_ranges`]) and dispatched through the upper
/// device's registry, so that whoever claimed those ranges (a filesystem, another stacking
/// driver) receives them. A target whose layout is unknown (`chunk == 0`) passes every
/// failure on over its whole range, with a log line.
///
/// Returns 0 if owners above took all of the failure, the first error of one, or
/// `-EOPNOTSUPP` if any part of it was not taken (nobody above claims it, or its owner
/// declined; and in mode `off`, where, as upstream, nothing above a stacking driver hears of
/// it): the lower device then runs its fallback for the claim's range.
///
/// # Safety
///
/// `route` is null or valid for the duration of the call, and `route.upper` is a live
/// dax_device that stays alive for the duration of the call.
#[export]
pub unsafe extern "C" fn dax_failure_route(
    route: *const bindings::dax_failure_route,
    offset: u64,
    len: u64,
    mf_flags: c_int,
) -> c_int {
    // SAFETY: `route` is null or valid (the caller's guarantee).
    let Some(route) = (unsafe { route.as_ref() }) else {
        pr_err_ratelimited!("NULL route\n");
        return errno(EINVAL);
    };
    if mode() == Mode::Off {
        return errno(EOPNOTSUPP);
    }
    let layout = Range::from_len(offset, len).and_then(|failure| {
        route_layout(route).map(|(layout, lower, target)| (failure, layout, lower, target))
    });
    let (failure, layout, lower, target) = match layout {
        Ok(parts) => parts,
        Err(e) => {
            pr_err_ratelimited!(
                "bad route or failure [{:#x}, +{:#x}) of [{:#x}, +{:#x}): {:?}\n",
                offset,
                len,
                route.lower_start,
                route.lower_len,
                e
            );
            return errno(EINVAL);
        }
    };
    let removal = mf_flags & bindings::mf_flags_MF_MEM_PRE_REMOVE as c_int != 0;
    let ranges = match layout {
        Some(layout) => layout.upper_ranges(failure, removal),
        None if failure.overlaps(&lower) => {
            pr_warn_ratelimited!(
                "target layout unknown: failure [{:#x}, +{:#x}) passed on over the whole \
                 target [{:#x}, +{:#x})\n",
                failure.start(),
                failure.len(),
                target.start(),
                target.len()
            );
            range::RouteRanges::Whole(target)
        }
        None => range::RouteRanges::Done,
    };
    // SAFETY: `route.upper` is live (the caller's guarantee).
    let registry = match unsafe { registry_of(route.upper) } {
        Ok(registry) => registry,
        // The device above is gone: nobody there can take the failure.
        Err(_) => return errno(EOPNOTSUPP),
    };
    let dev = registry.name();
    let (mut taken, mut unhandled, mut first_error) = (false, false, None);
    for upper in ranges {
        let Ok(upper) = upper else {
            first_error.get_or_insert(errno(EINVAL));
            continue;
        };
        // SAFETY: `route.upper` is the device of `registry` and live.
        let outcome = unsafe {
            registry.dispatch(
                route.upper,
                upper,
                mf_flags,
                |_| {
                    unhandled = true;
                    Ok(())
                },
                |owner, range, ret| trace(&dev, owner, range, mf_flags, ret),
            )
        };
        match outcome {
            Ok(outcome) => {
                if let Some(e) = outcome.error {
                    first_error.get_or_insert(e);
                }
                taken |= outcome.calls > outcome.declined;
            }
            Err(_) => unhandled = true,
        }
        // A large poison of a striped target is one range per chunk.
        // SAFETY: Process context, no lock held.
        unsafe { bindings::dev_pagemap_failure_cond_resched() };
    }
    // A part nobody above took (no claim there, or its owner declined) is this layer's to
    // decline, so that the device below runs its fallback for it: pages nobody maps are
    // skipped there, and pages handled twice are harmless.
    match first_error {
        Some(e) => e,
        None if taken && !unhandled => 0,
        None => errno(EOPNOTSUPP),
    }
}

/// The largest pfn count: pfns are physical addresses shifted right by `PAGE_SHIFT`.
const PFN_LIMIT: u64 = u64::MAX >> PAGE_SHIFT;

/// Hands the failure of `nr_pages` pages from `pfn` to their owners: the pmem driver's
/// pagemap `memory_failure` operation. `base_pfn` is the pfn of byte 0 of `dax_dev`; pages
/// below it hold the device's metadata, which nobody maps, and are skipped. Claimed parts go
/// to their owners, one call per claim; unclaimed parts go page by page to
/// `memory_failure_dev_pagemap_unclaimed()`, which skips pages nobody maps.
///
/// In mode `off` this behaves as upstream: the failure goes to the claims (the holder) and
/// nothing runs for unclaimed parts; `-EOPNOTSUPP` then sends single-page failures to the
/// generic handler in mm/memory-failure.c.
///
/// # Safety
///
/// `dax_dev` is null or a live dax_device the caller holds a reference to; `pgmap` is the live
/// pagemap whose pages back it and `[pfn, pfn + nr_pages)` lies inside it.
#[export]
pub unsafe extern "C" fn dax_failure_notify_pfns(
    dax_dev: *mut bindings::dax_device,
    pgmap: *mut bindings::dev_pagemap,
    base_pfn: c_ulong,
    pfn: c_ulong,
    nr_pages: c_ulong,
    mf_flags: c_int,
) -> c_int {
    let mode = mode();
    // SAFETY: `dax_dev` is null or live (the caller's guarantee).
    let ret = unsafe { registry_of(dax_dev) }.and_then(|registry| {
        let pfns = Range::from_len(pfn as u64, nr_pages as u64).map_err(|_| EINVAL)?;
        let from = Range::new(base_pfn as u64, PFN_LIMIT).map_err(|_| EINVAL)?;
        let to = Range::from_len(0, from.len()).map_err(|_| EINVAL)?;
        // Pages below `base_pfn` are the device's metadata.
        let Some(data) = pfns.intersect(&from) else {
            return Err(ENXIO);
        };
        let bytes = data
            .translate(&from, &to)
            .and_then(|pages| pages.scale_up(PAGE_SHIFT as u32))
            .map_err(|_| EINVAL)?;
        let dev = registry.name();
        let mut fallback_ran = false;
        let unclaimed = |bytes: Range| -> Result<(), c_int> {
            if mode == Mode::Off {
                return Ok(());
            }
            fallback_ran = true;
            let pages = bytes
                .scale_down(PAGE_SHIFT as u32)
                .and_then(|pages| pages.translate(&to, &from))
                .map_err(|_| errno(EINVAL))?;
            registry.stats.fallback_pages.add(pages.len(), Relaxed);
            // SAFETY: `pgmap` is live and the pfns are inside it (the caller's guarantee).
            let ret: c_long = unsafe {
                bindings::memory_failure_dev_pagemap_unclaimed(
                    pgmap,
                    pages.start() as c_ulong,
                    pages.len() as c_ulong,
                    mf_flags,
                )
            };
            if ret < 0 {
                Err(ret as c_int)
            } else {
                Ok(())
            }
        };
        // SAFETY: `dax_dev` is the device of `registry` and live.
        let outcome = unsafe {
            registry.dispatch(dax_dev, bytes, mf_flags, unclaimed, |owner, range, ret| {
                trace(&dev, owner, range, mf_flags, ret)
            })
        }
        .map_err(Error::from)?;
        Ok(outcome_errno(
            &outcome,
            mode != Mode::Off && outcome.unclaimed + outcome.declined > 0,
        ))
    });
    ret.unwrap_or_else(|e| e.to_errno())
}

/// Converts one physical range of a pagemap into a pfn range.
fn phys_to_pfns(phys: PhysRange) -> Result<Range, RangeError> {
    Range::from_inclusive(phys.first, phys.last)?.scale_down(PAGE_SHIFT as u32)
}

/// Revokes all mappings of the device memory behind `pgmap`.
///
/// Called once by a driver whose device memory is going away (`MF_MEM_PRE_REMOVE` in
/// `mf_flags`) before the memory is handed back. In mode `ranged` each range of the pagemap
/// goes to the driver's `memory_failure` operation in one call, which hands each owner its
/// part in one call; in mode `pfn` every page goes on its own.
///
/// Returns 0 when every page was handled, the first error of an owner or of the fallback,
/// `-EINVAL` for a pagemap whose ranges are not page-aligned or overflow, and `-EOPNOTSUPP` in
/// mode `off` or if the driver has no `memory_failure` operation: the caller then keeps the
/// upstream path (`kill_dax()` notifies the holder).
///
/// # Safety
///
/// `pgmap` must be null or point to a `struct dev_pagemap` between `memremap_pages()` and
/// `memunmap_pages()`, valid for the duration of the call.
#[export]
pub unsafe extern "C" fn dev_pagemap_failure(
    pgmap: *mut bindings::dev_pagemap,
    mf_flags: c_int,
) -> c_int {
    let start = kernel::time::Instant::<kernel::time::Monotonic>::now();
    // SAFETY: The caller's guarantee, passed on.
    let ret = unsafe { revoke_pagemap(pgmap, mf_flags) };
    let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(0);
    LAST_FAILURE_NS.store(ns, Relaxed);
    ret
}

/// How long the last [`dev_pagemap_failure`] call took, in nanoseconds: the revocation alone,
/// without the rest of the driver's teardown. In debugfs as `last_failure_ns`.
static LAST_FAILURE_NS: kernel::sync::atomic::Atomic<u64> = kernel::sync::atomic::Atomic::new(0);

/// The body of [`dev_pagemap_failure`].
///
/// # Safety
///
/// As for [`dev_pagemap_failure`].
unsafe fn revoke_pagemap(pgmap: *mut bindings::dev_pagemap, mf_flags: c_int) -> c_int {
    // SAFETY: The caller guarantees that `pgmap` is null or a live pagemap for the duration
    // of this call.
    let Some(pgmap) = (unsafe { DevPagemap::from_raw(pgmap) }) else {
        pr_err_ratelimited!("NULL pagemap\n");
        return errno(EINVAL);
    };
    let mode = mode();
    if mode == Mode::Off || !pgmap.has_memory_failure() {
        return errno(EOPNOTSUPP);
    }
    let mut first_error = None;
    for phys in pgmap.ranges() {
        let pfns = match phys_to_pfns(phys) {
            Ok(pfns) => pfns,
            Err(e) => {
                pr_err_ratelimited!(
                    "bad pagemap range [{:#x}, {:#x}]: {:?}\n",
                    phys.first,
                    phys.last,
                    e
                );
                return errno(EINVAL);
            }
        };
        let ret = match mode {
            // SAFETY: The pagemap is live and `pfns` is one of its ranges.
            Mode::Ranged => unsafe {
                bindings::memory_failure_dev_pagemap_range(
                    pgmap.as_raw(),
                    pfns.start() as c_ulong,
                    pfns.len() as c_ulong,
                    mf_flags,
                )
            },
            _ => {
                let mut ret = 0;
                for pfn in pfns.start()..pfns.end() {
                    // SAFETY: The pagemap is live and `pfn` lies in one of its ranges.
                    let r = unsafe {
                        bindings::memory_failure_dev_pagemap_range(
                            pgmap.as_raw(),
                            pfn as c_ulong,
                            1,
                            mf_flags,
                        )
                    };
                    if r < 0 && r != errno(ENXIO) && ret == 0 {
                        ret = r;
                    }
                    kernel::task::might_sleep();
                }
                ret
            }
        };
        if ret < 0 {
            first_error.get_or_insert(ret);
        }
    }
    first_error.unwrap_or(0)
}

/// `ERR_PTR(e)`, for C callers that take a pointer or an error.
fn err_ptr<T>(e: Error) -> *mut T {
    // SAFETY: `ERR_PTR()` only encodes the errno in a pointer value.
    unsafe { bindings::ERR_PTR(e.to_errno() as c_long) }.cast()
}

/// Creates the registry of a new dax_device; drivers/dax/super.c keeps the pointer.
///
/// Returns an `ERR_PTR()` on failure.
#[export]
pub extern "C" fn dax_failure_registry_alloc() -> *mut bindings::dax_failure_registry {
    let registry = match Registry::new() {
        Ok(registry) => registry,
        Err(e) => return err_ptr(e),
    };
    if REGISTRIES_READY.load(kernel::sync::atomic::Acquire) {
        let mut registries = REGISTRIES.lock();
        if let Err(e) = registries.push(registry.clone(), GFP_KERNEL) {
            return err_ptr(e.into());
        }
    }
    registry.into_raw().cast_mut().cast()
}

/// Drops the registry of a dax_device that is being freed.
///
/// # Safety
///
/// `raw` is null, an `ERR_PTR()`, or a pointer from [`dax_failure_registry_alloc`] not yet
/// freed, and the dax_device that held it is gone.
#[export]
pub unsafe extern "C" fn dax_failure_registry_free(raw: *mut bindings::dax_failure_registry) {
    // SAFETY: Pointer tests only.
    if raw.is_null() || unsafe { bindings::IS_ERR(raw.cast()) } {
        return;
    }
    // SAFETY: `raw` came from `Arc::into_raw()` in `dax_failure_registry_alloc()` and this is
    // the matching release (the caller's guarantee).
    let registry = unsafe { Arc::from_raw(raw.cast_const().cast::<Registry>()) };
    if REGISTRIES_READY.load(kernel::sync::atomic::Acquire) {
        let mut registries = REGISTRIES.lock();
        if let Some(i) = registries.iter().position(|r| Arc::ptr_eq(r, &registry)) {
            // The list's reference; ours is dropped below.
            let _ = registries.remove(i);
        }
    }
}

/// The device is going away: announces the removal to every claim that has not been told yet
/// (one call each) and refuses claims and dispatches from now on. In mode `off` only the
/// removal is announced, to every claim, as upstream's `kill_dax()` does for the holder.
///
/// # Safety
///
/// `dax_dev` is null or a live dax_device the caller holds a reference to.
#[export]
pub unsafe extern "C" fn dax_failure_kill(dax_dev: *mut bindings::dax_device) {
    // SAFETY: `dax_dev` is null or live (the caller's guarantee).
    if let Ok(registry) = unsafe { registry_of(dax_dev) } {
        let dev = registry.name();
        let flags = bindings::mf_flags_MF_MEM_PRE_REMOVE as c_int;
        // SAFETY: `dax_dev` is the device of `registry` and live.
        unsafe {
            registry.kill(dax_dev, |owner, range, ret| {
                trace(&dev, owner, range, flags, ret)
            })
        };
    }
}

/// Names the registry of `dax_dev` after its block device, for logs and debugfs.
///
/// # Safety
///
/// `dax_dev` is null or a live dax_device; `name` is null or a NUL-terminated string.
#[export]
pub unsafe extern "C" fn dax_failure_set_name(
    dax_dev: *mut bindings::dax_device,
    name: *const c_char,
) {
    if name.is_null() {
        return;
    }
    // SAFETY: `name` is a NUL-terminated string (the caller's guarantee).
    let name = unsafe { CStr::from_char_ptr(name) };
    // SAFETY: `dax_dev` is null or live (the caller's guarantee).
    if let Ok(registry) = unsafe { registry_of(dax_dev) } {
        registry.set_name(name.to_bytes());
    }
}

#[pin_data]
struct LockPair {
    #[pin]
    a: SpinLock<()>,
    #[pin]
    b: SpinLock<()>,
}

/// Takes two locks in both orders, one after the other. This cannot deadlock by itself, but it
/// is exactly the inversion that lockdep exists to report; the test harness uses it to prove
/// that a splat turns `make check` red.
fn inject_lockdep_bug() -> Result {
    pr_warn!("inject_lockdep_bug=1: taking two locks in both orders on purpose\n");
    let pair = KBox::pin_init(
        pin_init!(LockPair {
            a <- new_spinlock!(()),
            b <- new_spinlock!(()),
        }),
        GFP_KERNEL,
    )?;
    {
        let _a = pair.a.lock();
        let _b = pair.b.lock();
    }
    {
        let _b = pair.b.lock();
        let _a = pair.a.lock();
    }
    Ok(())
}

#[cfg(CONFIG_DEV_PAGEMAP_FAILURE_KUNIT_TEST)]
#[kunit_tests(dev_pagemap_failure)]
mod tests {
    use super::range::{split, Segment};
    use super::*;
    use kernel::{
        page::PAGE_SIZE,
        sync::atomic::{Acquire, Atomic, Release},
        time::{delay::fsleep, Delta},
        workqueue,
    };

    const PAGE: u64 = PAGE_SIZE as u64;

    const TOP: u64 = u64::MAX;

    /// A range literal, checked when the test is compiled rather than when it runs.
    macro_rules! r {
        ($start:expr, $end:expr) => {{
            const RANGE: Range = match Range::new($start, $end) {
                Ok(range) => range,
                Err(_) => panic!("empty range literal"),
            };
            RANGE
        }};
    }

    #[test]
    fn range_constructors_are_checked() {
        assert_eq!(Range::from_len(5, 0), Err(RangeError::Empty));
        assert_eq!(Range::from_len(u64::MAX, 1), Err(RangeError::Overflow));
        assert_eq!(
            Range::from_inclusive(0, u64::MAX),
            Err(RangeError::Overflow)
        );
        assert_eq!(
            Range::from_len(0, u64::MAX).map(|range| range.len()),
            Ok(u64::MAX)
        );
    }

    #[test]
    fn split_yields_claims_and_gaps_in_order() {
        let claims = [(r!(10, 20), 1u32), (r!(30, 40), 2u32)];
        let mut it = split(r!(0, 50), claims.iter().copied());
        assert_eq!(it.next(), Some(Ok(Segment::Unclaimed(r!(0, 10)))));
        assert_eq!(
            it.next(),
            Some(Ok(Segment::Claimed {
                range: r!(10, 20),
                owner: 1
            }))
        );
        assert_eq!(it.next(), Some(Ok(Segment::Unclaimed(r!(20, 30)))));
        assert_eq!(
            it.next(),
            Some(Ok(Segment::Claimed {
                range: r!(30, 40),
                owner: 2
            }))
        );
        assert_eq!(it.next(), Some(Ok(Segment::Unclaimed(r!(40, 50)))));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn split_at_the_top_of_u64() {
        let claims = [(r!(TOP - 10, TOP), ())];
        let mut it = split(r!(TOP - 20, TOP), claims.iter().copied());
        assert_eq!(
            it.next(),
            Some(Ok(Segment::Unclaimed(r!(TOP - 20, TOP - 10))))
        );
        assert_eq!(
            it.next(),
            Some(Ok(Segment::Claimed {
                range: r!(TOP - 10, TOP),
                owner: ()
            }))
        );
        assert_eq!(it.next(), None);
    }

    /// A pagemap laid out by hand, as a driver would before `memremap_pages()`.
    fn pagemap(first: u64, last: u64) -> bindings::dev_pagemap {
        // SAFETY: `dev_pagemap` is a C struct of integers, pointers and unions of those, for
        // which all-zero bits are valid values (NULL pointers, zero counts); C code allocates
        // pagemaps with kzalloc() for the same reason.
        let mut pgmap: bindings::dev_pagemap = unsafe { core::mem::zeroed() };
        pgmap.nr_range = 1;
        // SAFETY: Writing the `range` variant of the plain-data union.
        unsafe {
            *pgmap.__bindgen_anon_1.range.as_mut() = bindings::range {
                start: first,
                end: last,
            };
        }
        pgmap
    }

    #[test]
    fn pagemap_ranges_become_pfn_ranges() {
        let mut pgmap = pagemap(0x1_0000_0000, 0x1_0000_0000 + 16 * PAGE - 1);
        // SAFETY: `pgmap` lives on this stack frame for the whole test and has one range.
        let dp = unsafe { DevPagemap::from_raw(&raw const pgmap) };
        assert!(dp.is_some());
        let Some(dp) = dp else {
            return;
        };
        assert_eq!(dp.nr_range(), 1);
        let mut ranges = dp.ranges().map(phys_to_pfns);
        assert_eq!(ranges.next(), Some(Ok(r!(0x10_0000, 0x10_0010))));
        assert_eq!(ranges.next(), None);
        assert!(!dp.has_memory_failure());
        // Without a ranged operation the driver keeps the upstream path.
        // SAFETY: as above.
        let ret = unsafe { dev_pagemap_failure(&raw mut pgmap, 0) };
        assert_eq!(ret, EOPNOTSUPP.to_errno());
    }

    #[test]
    fn bad_pagemaps_are_rejected() {
        assert_eq!(
            phys_to_pfns(PhysRange {
                first: 0x1000,
                last: 0x1fff + 1
            }),
            Err(RangeError::Unaligned)
        );
        assert_eq!(
            phys_to_pfns(PhysRange {
                first: 0x2000,
                last: 0x0fff
            }),
            Err(RangeError::Empty)
        );
        // SAFETY: a null pagemap is explicitly allowed.
        let ret = unsafe { dev_pagemap_failure(core::ptr::null_mut(), 0) };
        assert_eq!(ret, EINVAL.to_errno());
    }

    /// What a test claimant saw; the claim's `data` points to it.
    struct Recorder {
        calls: Atomic<u64>,
        offset: Atomic<u64>,
        len: Atomic<u64>,
        flags: Atomic<i32>,
        /// Set by the handler on entry.
        entered: Atomic<bool>,
        /// While set, the handler sleeps before returning.
        hold: Atomic<bool>,
    }

    impl Recorder {
        fn new() -> Self {
            Self {
                calls: Atomic::new(0),
                offset: Atomic::new(0),
                len: Atomic::new(0),
                flags: Atomic::new(0),
                entered: Atomic::new(false),
                hold: Atomic::new(false),
            }
        }

        fn data(&self) -> *mut c_void {
            core::ptr::from_ref(self).cast_mut().cast()
        }

        fn owner(&self) -> Owner {
            // SAFETY: `RECORD_OPS` is static and has a handler; every test unregisters or
            // drops the registry before its recorder goes away.
            unsafe { Owner::new(&raw const RECORD_OPS.0, self.data()) }
        }

        fn seen(&self) -> (u64, u64, u64) {
            (
                self.calls.load(Relaxed),
                self.offset.load(Relaxed),
                self.len.load(Relaxed),
            )
        }
    }

    /// The test claimants' handler.
    ///
    /// # Safety
    ///
    /// `data` points to a live [`Recorder`].
    unsafe extern "C" fn record(
        _dax_dev: *mut bindings::dax_device,
        data: *mut c_void,
        offset: u64,
        len: u64,
        flags: c_int,
    ) -> c_int {
        // SAFETY: Every test claim is made with a pointer to a live `Recorder` as `data`.
        let rec = unsafe { &*data.cast_const().cast::<Recorder>() };
        rec.offset.store(offset, Relaxed);
        rec.len.store(len, Relaxed);
        rec.flags.store(flags, Relaxed);
        rec.calls.add(1, Relaxed);
        rec.entered.store(true, Release);
        while rec.hold.load(Acquire) {
            fsleep(Delta::from_millis(1));
        }
        0
    }

    struct SyncOps(bindings::dax_failure_ops);

    // SAFETY: The ops are immutable and the name is a static string.
    unsafe impl Sync for SyncOps {}

    static RECORD_OPS: SyncOps = SyncOps(bindings::dax_failure_ops {
        // `as_char_ptr()` is not const; the kernel's `c_char` is `u8`, hence the cast.
        #[allow(clippy::disallowed_methods)]
        name: c"kunit".as_ptr().cast(),
        notify_failure: Some(record),
    });

    /// Dispatches `failure` on `registry` (no dax_device: the test handler ignores it) and
    /// returns the outcome and the unclaimed ranges.
    fn dispatch(registry: &Registry, failure: Range) -> (Outcome, KVec<Range>) {
        let mut gaps = KVec::new();
        // SAFETY: The test handler does not use the dax_device.
        let outcome = unsafe {
            registry.dispatch(
                core::ptr::null_mut(),
                failure,
                0,
                |gap| gaps.push(gap, GFP_KERNEL).map_err(|_| ENOMEM.to_errno()),
                |_, _, _| {},
            )
        };
        assert!(outcome.is_ok());
        (outcome.unwrap_or_default(), gaps)
    }

    #[test]
    fn each_claimant_gets_exactly_its_subrange_once() -> Result {
        let registry = Registry::new()?;
        let (a, b) = (Recorder::new(), Recorder::new());
        assert_eq!(registry.register(r!(0x1000, 0x3000), a.owner()), Ok(()));
        assert_eq!(registry.register(r!(0x5000, 0x8000), b.owner()), Ok(()));

        let (outcome, gaps) = dispatch(&registry, r!(0, 0x9000));
        assert_eq!(outcome.calls, 2);
        assert_eq!(outcome.error, None);
        assert_eq!(a.seen(), (1, 0x1000, 0x2000));
        assert_eq!(b.seen(), (1, 0x5000, 0x3000));
        assert_eq!(
            &gaps[..],
            &[r!(0, 0x1000), r!(0x3000, 0x5000), r!(0x8000, 0x9000)]
        );

        // A failure that starts inside one claim and ends inside the next.
        let (outcome, gaps) = dispatch(&registry, r!(0x2000, 0x6000));
        assert_eq!(outcome.calls, 2);
        assert_eq!(a.seen(), (2, 0x2000, 0x1000));
        assert_eq!(b.seen(), (2, 0x5000, 0x1000));
        assert_eq!(&gaps[..], &[r!(0x3000, 0x5000)]);

        // Entirely in the gap: nobody is called.
        let (outcome, gaps) = dispatch(&registry, r!(0x3000, 0x4000));
        assert_eq!(outcome.calls, 0);
        assert_eq!(&gaps[..], &[r!(0x3000, 0x4000)]);
        assert_eq!((a.seen().0, b.seen().0), (2, 2));

        assert_eq!(registry.unregister(r!(0x1000, 0x3000), a.data()), Ok(()));
        assert_eq!(registry.unregister(r!(0x5000, 0x8000), b.data()), Ok(()));
        assert_eq!(registry.stats.claims.load(Relaxed), 0);
        Ok(())
    }

    #[test]
    fn claims_at_the_top_of_u64() -> Result {
        let registry = Registry::new()?;
        let rec = Recorder::new();
        let top = r!(TOP - 0x2fff, TOP);
        // Not page-aligned at the end, but the registry itself only needs non-empty ranges.
        assert_eq!(registry.register(top, rec.owner()), Ok(()));
        let (outcome, gaps) = dispatch(&registry, r!(0, TOP));
        assert_eq!(outcome.calls, 1);
        assert_eq!(rec.seen(), (1, TOP - 0x2fff, 0x2fff));
        assert_eq!(&gaps[..], &[r!(0, TOP - 0x2fff)]);
        assert_eq!(registry.unregister(top, rec.data()), Ok(()));
        Ok(())
    }

    /// A fresh dax_device with no driver, as device-dax allocates them.
    struct TestDax(*mut bindings::dax_device);

    impl TestDax {
        fn new() -> Result<Self> {
            // SAFETY: A NULL `ops` makes a device-dax style dax_device; no private data.
            let dax_dev = unsafe { bindings::alloc_dax(core::ptr::null_mut(), core::ptr::null()) };
            // SAFETY: Pointer test only.
            if unsafe { bindings::IS_ERR(dax_dev.cast_const().cast()) } {
                return Err(ENOMEM);
            }
            Ok(Self(dax_dev))
        }

        fn register(&self, offset: u64, len: u64, rec: &Recorder) -> c_int {
            // SAFETY: The device is live; `RECORD_OPS` is static and `rec` outlives the claim
            // (every test unregisters, or the device dies, before `rec` goes away).
            unsafe {
                dax_failure_register(self.0, offset, len, &raw const RECORD_OPS.0, rec.data())
            }
        }

        fn unregister(&self, offset: u64, len: u64, rec: &Recorder) -> c_int {
            // SAFETY: The device is live.
            unsafe { dax_failure_unregister(self.0, offset, len, rec.data()) }
        }

        fn notify(&self, offset: u64, len: u64, flags: c_int) -> c_int {
            // SAFETY: The device is live.
            unsafe { dax_failure_notify(self.0, offset, len, flags) }
        }

        fn kill(&self) {
            // SAFETY: The device is live; `kill_dax()` may be called more than once.
            unsafe { bindings::kill_dax(self.0) };
        }
    }

    impl Drop for TestDax {
        fn drop(&mut self) {
            self.kill();
            // SAFETY: Drops the reference `alloc_dax()` returned; the device was killed.
            unsafe { bindings::put_dax(self.0) };
        }
    }

    #[test]
    fn registration_errors_have_defined_errnos() -> Result {
        // The recorders outlive the device, whose teardown may still call them.
        let (a, b) = (Recorder::new(), Recorder::new());
        let dax = TestDax::new()?;
        assert_eq!(dax.register(0x1000, 0, &a), EINVAL.to_errno());
        assert_eq!(dax.register(0x1000, 0x800, &a), EINVAL.to_errno());
        assert_eq!(dax.register(0x800, 0x1000, &a), EINVAL.to_errno());
        assert_eq!(dax.register(TOP & !0xfff, 0x2000, &a), EINVAL.to_errno());
        // SAFETY: The device is live; a NULL ops is what is being tested.
        let ret = unsafe { dax_failure_register(dax.0, 0, 0x1000, core::ptr::null(), a.data()) };
        assert_eq!(ret, EINVAL.to_errno());
        // SAFETY: A NULL device is what is being tested.
        let ret = unsafe {
            dax_failure_register(
                core::ptr::null_mut(),
                0,
                0x1000,
                &raw const RECORD_OPS.0,
                a.data(),
            )
        };
        assert_eq!(ret, EINVAL.to_errno());

        assert_eq!(dax.register(0x1000, 0x1000, &a), 0);
        assert_eq!(dax.register(0, 0x2000, &b), EBUSY.to_errno());
        assert_eq!(dax.register(0x1000, 0x1000, &b), EBUSY.to_errno());
        assert_eq!(dax.register(0, TOP & !0xfff, &b), EBUSY.to_errno());
        // Adjacent on both sides is fine.
        assert_eq!(dax.register(0, 0x1000, &b), 0);
        assert_eq!(dax.unregister(0, 0x1000, &b), 0);
        assert_eq!(dax.register(0x2000, 0x1000, &b), 0);

        assert_eq!(dax.unregister(0x3000, 0x1000, &a), ENOENT.to_errno());
        assert_eq!(dax.unregister(0x1000, 0x1000, &b), ENOENT.to_errno());
        assert_eq!(dax.unregister(0x1000, 0x2000, &a), ENOENT.to_errno());
        assert_eq!(dax.unregister(0x1000, 0, &a), EINVAL.to_errno());

        // One call per claim through the C entry point; nothing claimed is -EOPNOTSUPP.
        assert_eq!(dax.notify(0, 0x4000, 0), 0);
        assert_eq!(
            (a.seen(), b.seen()),
            ((1, 0x1000, 0x1000), (1, 0x2000, 0x1000))
        );
        assert_eq!(dax.notify(0x3000, 0x1000, 0), EOPNOTSUPP.to_errno());
        assert_eq!(dax.notify(TOP, 2, 0), EINVAL.to_errno());

        // Death announces the removal once to each claim, then refuses everything but
        // unregistration.
        dax.kill();
        let pre_remove = bindings::mf_flags_MF_MEM_PRE_REMOVE as i32;
        assert_eq!(
            (a.seen(), a.flags.load(Relaxed)),
            ((2, 0x1000, 0x1000), pre_remove)
        );
        assert_eq!(
            (b.seen(), b.flags.load(Relaxed)),
            ((2, 0x2000, 0x1000), pre_remove)
        );
        assert_eq!(dax.register(0x8000, 0x1000, &a), ENXIO.to_errno());
        assert_eq!(dax.notify(0, 0x4000, 0), ENXIO.to_errno());
        dax.kill();
        assert_eq!((a.seen().0, b.seen().0), (2, 2));
        assert_eq!(dax.unregister(0x1000, 0x1000, &a), 0);
        assert_eq!(dax.unregister(0x2000, 0x1000, &b), 0);
        Ok(())
    }

    /// The route claimants' handler, as device-mapper's: passes the failure up the route.
    ///
    /// # Safety
    ///
    /// `data` points to a live `struct dax_failure_route` whose upper device is live.
    unsafe extern "C" fn route(
        _dax_dev: *mut bindings::dax_device,
        data: *mut c_void,
        offset: u64,
        len: u64,
        flags: c_int,
    ) -> c_int {
        // SAFETY: Every route claim is made with a pointer to a live route as `data`.
        unsafe { dax_failure_route(data.cast_const().cast(), offset, len, flags) }
    }

    static ROUTE_OPS: SyncOps = SyncOps(bindings::dax_failure_ops {
        #[allow(clippy::disallowed_methods)]
        name: c"kunit-route".as_ptr().cast(),
        notify_failure: Some(route),
    });

    #[test]
    fn failures_climb_a_striped_route() -> Result {
        // The recorders and the route outlive the devices, whose teardown may still call them.
        let (top, a, b) = (Recorder::new(), Recorder::new(), Recorder::new());
        // Member 1 of a 2-way stripe with 8 KiB chunks: 32 KiB of the lower device from
        // 64 KiB; the target is the first 64 KiB of the upper device.
        let mut route = bindings::dax_failure_route {
            upper: core::ptr::null_mut(),
            lower_start: 0x10000,
            lower_len: 0x8000,
            target_start: 0,
            target_len: 0x10000,
            chunk: 0x2000,
            stripes: 2,
            member: 1,
        };
        let (lower, upper) = (TestDax::new()?, TestDax::new()?);
        route.upper = upper.0;
        let route_data = (&raw mut route).cast::<c_void>();
        assert_eq!(upper.register(0, 0x100000, &top), 0);
        // SAFETY: Both devices are live; `route` outlives the claim (unregistered below).
        let ret = unsafe {
            dax_failure_register(lower.0, 0x10000, 0x8000, &raw const ROUTE_OPS.0, route_data)
        };
        assert_eq!(ret, 0);

        // Chunk 1 of the member is chunk 3 of the target.
        assert_eq!(lower.notify(0x12000, 0x1000, 0), 0);
        assert_eq!(top.seen(), (1, 0x6000, 0x1000));
        // Outside the route: nobody above, so the lower device sees -EOPNOTSUPP.
        assert_eq!(lower.notify(0x20000, 0x1000, 0), EOPNOTSUPP.to_errno());
        assert_eq!(top.seen().0, 1);
        // All of the member poisoned: its four chunks, not the other member's.
        assert_eq!(lower.notify(0, 0x100000, 0), 0);
        assert_eq!(top.seen(), (5, 0xe000, 0x2000));
        // All of the member going away: the whole target, in one call.
        let pre_remove = bindings::mf_flags_MF_MEM_PRE_REMOVE as i32;
        assert_eq!(lower.notify(0, 0x100000, pre_remove), 0);
        assert_eq!(top.seen(), (6, 0, 0x10000));

        // A malformed route is refused with -EINVAL, never translated.
        route.member = 2;
        // SAFETY: `route` is valid and its upper device live.
        let ret = unsafe { dax_failure_route(&raw const route, 0x12000, 0x1000, 0) };
        assert_eq!(ret, EINVAL.to_errno());

        // Atomic hand-over of a claim: the new owner gets the failure, the old one not.
        assert_eq!(upper.unregister(0, 0x100000, &top), 0);
        assert_eq!(upper.register(0x20000, 0x1000, &a), 0);
        // SAFETY: The device is live; `RECORD_OPS` is static and `b` outlives the claim.
        let ret = unsafe {
            dax_failure_replace(
                upper.0,
                0x20000,
                0x1000,
                a.data(),
                &raw const RECORD_OPS.0,
                b.data(),
            )
        };
        assert_eq!(ret, 0);
        // SAFETY: As above; `a` no longer owns the claim, so this must fail.
        let ret = unsafe {
            dax_failure_replace(
                upper.0,
                0x20000,
                0x1000,
                a.data(),
                &raw const RECORD_OPS.0,
                b.data(),
            )
        };
        assert_eq!(ret, ENOENT.to_errno());
        // SAFETY: The device is live and this is not one of its handlers.
        unsafe { dax_failure_synchronize(upper.0) };
        assert_eq!(upper.notify(0x20000, 0x1000, 0), 0);
        assert_eq!((a.seen().0, b.seen()), (0, (1, 0x20000, 0x1000)));
        // Detached, the claim is gone at once: the range is unclaimed.
        // SAFETY: The device is live; `b` outlives the claim.
        let ret = unsafe { dax_failure_detach(upper.0, 0x20000, 0x1000, b.data()) };
        assert_eq!(ret, 0);
        assert_eq!(upper.notify(0x20000, 0x1000, 0), EOPNOTSUPP.to_errno());
        assert_eq!(upper.unregister(0x20000, 0x1000, &b), ENOENT.to_errno());

        // SAFETY: The device is live.
        let ret = unsafe { dax_failure_unregister(lower.0, 0x10000, 0x8000, route_data) };
        assert_eq!(ret, 0);
        Ok(())
    }

    /// Sleeps until `cond` holds, for at most about `ms` milliseconds.
    fn wait_until(ms: u32, cond: impl Fn() -> bool) -> bool {
        for _ in 0..ms {
            if cond() {
                return true;
            }
            fsleep(Delta::from_millis(1));
        }
        cond()
    }

    /// Releases a held handler when dropped, so that a failed assertion cannot leave a work
    /// item waiting forever.
    struct HoldGuard<'a>(&'a Recorder);

    impl Drop for HoldGuard<'_> {
        fn drop(&mut self) {
            self.0.hold.store(false, Release);
        }
    }

    /// State shared between a test and its work items.
    struct Shared {
        registry: Arc<Registry>,
        rec: Recorder,
        done: Atomic<u32>,
        errors: Atomic<u32>,
    }

    #[test]
    fn unregister_waits_for_the_handler_in_flight() -> Result {
        let shared = Arc::new(
            Shared {
                registry: Registry::new()?,
                rec: Recorder::new(),
                done: Atomic::new(0),
                errors: Atomic::new(0),
            },
            GFP_KERNEL,
        )?;
        let claim = r!(0x1000, 0x2000);
        assert_eq!(shared.registry.register(claim, shared.rec.owner()), Ok(()));
        shared.rec.hold.store(true, Release);
        let _release = HoldGuard(&shared.rec);

        let s = shared.clone();
        workqueue::system_long().try_spawn(GFP_KERNEL, move || {
            let (outcome, _) = dispatch(&s.registry, r!(0, 0x3000));
            if outcome.calls != 1 {
                s.errors.add(1, Relaxed);
            }
            s.done.fetch_add(1, Release);
        })?;
        assert!(wait_until(5000, || shared.rec.entered.load(Acquire)));

        let s = shared.clone();
        workqueue::system_long().try_spawn(GFP_KERNEL, move || {
            if s.registry
                .unregister(r!(0x1000, 0x2000), s.rec.data())
                .is_err()
            {
                s.errors.add(1, Relaxed);
            }
            s.done.fetch_add(1, Release);
        })?;
        // The handler is held: neither the dispatch nor the unregistration may finish.
        fsleep(Delta::from_millis(100));
        assert_eq!(shared.done.load(Acquire), 0);
        // New dispatches no longer find the claim, even while the old one is in flight.
        assert!(wait_until(5000, || shared
            .registry
            .stats
            .claims
            .load(Relaxed)
            == 0));
        let (outcome, _) = dispatch(&shared.registry, r!(0, 0x3000));
        assert_eq!(outcome.calls, 0);

        shared.rec.hold.store(false, Release);
        assert!(wait_until(5000, || shared.done.load(Acquire) == 2));
        assert_eq!(shared.errors.load(Relaxed), 0);
        assert_eq!(shared.rec.calls.load(Relaxed), 1);
        let (outcome, _) = dispatch(&shared.registry, r!(0, 0x3000));
        assert_eq!(outcome.calls, 0);
        assert_eq!(shared.rec.calls.load(Relaxed), 1);
        Ok(())
    }

    #[test]
    fn claim_churn_during_dispatch() -> Result {
        const WORKERS: u64 = 3;
        const ROUNDS: u64 = 200;
        let shared = Arc::new(
            Shared {
                registry: Registry::new()?,
                rec: Recorder::new(),
                done: Atomic::new(0),
                errors: Atomic::new(0),
            },
            GFP_KERNEL,
        )?;
        for worker in 0..WORKERS {
            let s = shared.clone();
            workqueue::system_long().try_spawn(GFP_KERNEL, move || {
                for round in 0..ROUNDS {
                    // Each worker owns its own slots, so registration never conflicts.
                    let start = (round % 8 * WORKERS + worker) * 0x1000;
                    let range = match Range::from_len(start, 0x1000) {
                        Ok(range) => range,
                        Err(_) => return,
                    };
                    if s.registry.register(range, s.rec.owner()).is_err()
                        || s.registry.unregister(range, s.rec.data()).is_err()
                    {
                        s.errors.add(1, Relaxed);
                    }
                }
                s.done.fetch_add(1, Release);
            })?;
        }
        let mut dispatches = 0u64;
        while shared.done.load(Acquire) < WORKERS as u32 {
            let (outcome, gaps) = dispatch(&shared.registry, r!(0, 0x100_0000));
            // Every part is either handed to a claim or reported unclaimed, never both.
            let unclaimed: u64 = gaps.iter().map(|gap| gap.len()).sum();
            assert!(unclaimed + outcome.calls * 0x1000 == 0x100_0000);
            dispatches += 1;
            if dispatches > 100_000 {
                break;
            }
        }
        assert!(wait_until(10_000, || shared.done.load(Acquire) == WORKERS as u32));
        assert_eq!(shared.errors.load(Relaxed), 0);
        assert_eq!(shared.registry.stats.claims.load(Relaxed), 0);
        let (outcome, _) = dispatch(&shared.registry, r!(0, 0x100_0000));
        assert_eq!(outcome.calls, 0);
        Ok(())
    }
}
