// SPDX-License-Identifier: GPL-2.0

//! Test and benchmark interfaces, only with `CONFIG_DEV_PAGEMAP_FAILURE_TEST`: files in the
//! root-only `/sys/kernel/debug/dev_pagemap_failure/` that the kselftests, `make check` and
//! `make bench` use. A production kernel has none of them.
//!
//! * `inject_range` (write `PFN NR_PAGES`): `memory_failure_range(PFN, NR_PAGES,
//!   MF_SW_SIMULATED)`, as mm/hwpoison-inject.c's `corrupt-pfn` does for one page; the write
//!   fails with its error.
//! * `queue_pfns` (write `PFN NR_PAGES`): `memory_failure_queue()` for each page from PFN, with
//!   interrupts off, as a firmware-first platform's error handler (GHES) queues a burst of error
//!   records, one pfn each; `MF_SW_SIMULATED`. At most [`QUEUE_MAX_PAGES`].
//! * `queue_error` (write `PHYS MASK`): `memory_failure_queue_mask()` with interrupts off, as
//!   GHES queues an action-optional memory error record whose physical address mask is MASK;
//!   `MF_SW_SIMULATED`.
//! * `owner_delay_ms` (write `MS`): the next poison handed to an owner waits MS milliseconds
//!   first, as an owner that reads its metadata from a suspended device does; a removal does
//!   not wait. At most [`OWNER_DELAY_MAX_MS`].
//! * `bench_lookup` (write `CLAIMS ITERATIONS`, read the result): the cost of dispatching one
//!   failed page with CLAIMS claims on a private registry.
//! * `hold_claims` (write `REGISTRIES CLAIMS`): makes REGISTRIES private registries (no
//!   device), gives the first of them CLAIMS one-page claims, and holds them until the next
//!   write (`0 0` frees them), so that `make bench` can read from the slab counters what a
//!   registry and a claim cost. At most [`BENCH_MAX_CLAIMS`] of each.
//! * `last_failure_ns` (read): how long the last `dev_pagemap_failure()` took, so that a
//!   benchmark can tell the revocation from the rest of a driver's teardown.

use kernel::{
    bindings, debugfs,
    ffi::{c_int, c_ulong},
    fmt, new_mutex,
    page::PAGE_SHIFT,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, Mutex,
    },
    time::{Instant, Monotonic},
    uaccess::UserSliceReader,
};

use crate::ffi::MfFlags;
use crate::outcome::Settlement;
use crate::owner::Owner;
use crate::range::Range;
use crate::registry::Registry;

/// The test files; removed when dropped.
pub(crate) struct Files {
    _inject: Pin<KBox<debugfs::File<InjectRangeFile>>>,
    _queue: Pin<KBox<debugfs::File<QueuePfnsFile>>>,
    _queue_error: Pin<KBox<debugfs::File<QueueErrorFile>>>,
    _owner_delay: Pin<KBox<debugfs::File<OwnerDelayFile>>>,
    _bench_lookup: Pin<KBox<debugfs::File<BenchLookupFile>>>,
    _hold_claims: Pin<KBox<debugfs::File<HoldClaimsFile>>>,
    _last_failure: Pin<KBox<debugfs::File<LastFailureFile>>>,
}

impl Files {
    /// Creates the test files in `dir`.
    pub(crate) fn new(dir: &debugfs::Dir) -> Result<Self> {
        Ok(Self {
            _inject: KBox::pin_init(
                dir.write_callback_file(c"inject_range", InjectRangeFile, &InjectRangeFile::write),
                GFP_KERNEL,
            )?,
            _queue: KBox::pin_init(
                dir.write_callback_file(c"queue_pfns", QueuePfnsFile, &QueuePfnsFile::write),
                GFP_KERNEL,
            )?,
            _queue_error: KBox::pin_init(
                dir.write_callback_file(c"queue_error", QueueErrorFile, &QueueErrorFile::write),
                GFP_KERNEL,
            )?,
            _owner_delay: KBox::pin_init(
                dir.write_callback_file(c"owner_delay_ms", OwnerDelayFile, &OwnerDelayFile::write),
                GFP_KERNEL,
            )?,
            _bench_lookup: KBox::pin_init(
                dir.read_write_callback_file(
                    c"bench_lookup",
                    BenchLookupFile::new(),
                    &BenchLookupFile::show,
                    &BenchLookupFile::write,
                ),
                GFP_KERNEL,
            )?,
            _hold_claims: KBox::pin_init(
                dir.write_callback_file(
                    c"hold_claims",
                    HoldClaimsFile::new(),
                    &HoldClaimsFile::write,
                ),
                GFP_KERNEL,
            )?,
            _last_failure: KBox::pin_init(
                dir.read_callback_file(c"last_failure_ns", LastFailureFile, &LastFailureFile::show),
                GFP_KERNEL,
            )?,
        })
    }
}

/// Reads a write of exactly `N` decimal or `0x` hexadecimal `u64`s; `-EINVAL` otherwise.
fn read_numbers<const N: usize>(reader: &mut UserSliceReader) -> Result<[u64; N]> {
    let mut buf = [0u8; 64];
    let len = reader.len();
    if len == 0 || len > buf.len() {
        return Err(EINVAL);
    }
    reader.read_slice(&mut buf[..len])?;
    let text = core::str::from_utf8(&buf[..len]).map_err(|_| EINVAL)?;
    let mut words = text.split_ascii_whitespace();
    let mut numbers = [0u64; N];
    for number in &mut numbers {
        *number = parse_u64(words.next().ok_or(EINVAL)?)?;
    }
    if words.next().is_some() {
        return Err(EINVAL);
    }
    Ok(numbers)
}

/// Parses a decimal or `0x`-prefixed hexadecimal `u64`.
fn parse_u64(word: &str) -> Result<u64> {
    let parsed = match word.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => word.parse(),
    };
    parsed.map_err(|_| EINVAL)
}

/// `inject_range`.
struct InjectRangeFile;

impl InjectRangeFile {
    fn write(_: &Self, reader: &mut UserSliceReader) -> Result {
        let [pfn, nr_pages] = read_numbers(reader)?;
        let pfn = c_ulong::try_from(pfn).map_err(|_| EINVAL)?;
        let nr_pages = c_ulong::try_from(nr_pages).map_err(|_| EINVAL)?;
        let flags = bindings::mf_flags_MF_SW_SIMULATED as c_int;
        // SAFETY: `memory_failure_range()` validates its arguments.
        let ret = unsafe { bindings::memory_failure_range(pfn, nr_pages, flags) };
        kernel::error::to_result(ret)
    }
}

/// The most pages one write to `queue_pfns` queues: 1 GiB of 4 KiB pages, which the benchmark
/// uses; more would keep interrupts off for too long.
const QUEUE_MAX_PAGES: u64 = 1 << 18;

/// `queue_pfns`.
struct QueuePfnsFile;

impl QueuePfnsFile {
    fn write(_: &Self, reader: &mut UserSliceReader) -> Result {
        let [pfn, nr_pages] = read_numbers(reader)?;
        if nr_pages == 0 || nr_pages > QUEUE_MAX_PAGES {
            return Err(EINVAL);
        }
        let end = pfn.checked_add(nr_pages).ok_or(EINVAL)?;
        let pfns = c_ulong::try_from(pfn).map_err(|_| EINVAL)?
            ..c_ulong::try_from(end).map_err(|_| EINVAL)?;
        let flags = bindings::mf_flags_MF_SW_SIMULATED as c_int;
        // The whole burst arrives before this CPU's worker can run, as from an interrupt handler.
        let _irqs_off = kernel::interrupt::local_interrupt_disable();
        for pfn in pfns {
            // SAFETY: `memory_failure_queue()` takes any pfn in any context; the worker checks it.
            unsafe { bindings::memory_failure_queue(pfn, flags) };
        }
        Ok(())
    }
}

/// `queue_error`.
struct QueueErrorFile;

impl QueueErrorFile {
    fn write(_: &Self, reader: &mut UserSliceReader) -> Result {
        let [phys, mask] = read_numbers(reader)?;
        let flags = bindings::mf_flags_MF_SW_SIMULATED as c_int;
        // As from GHES's interrupt handler: the worker cannot run before the record is queued.
        let _irqs_off = kernel::interrupt::local_interrupt_disable();
        // SAFETY: `memory_failure_queue_mask()` takes any address and mask in any context; the
        // worker checks them.
        unsafe { bindings::memory_failure_queue_mask(phys, mask, flags) };
        Ok(())
    }
}

/// The longest `owner_delay_ms` takes: a minute.
const OWNER_DELAY_MAX_MS: u64 = 60_000;

/// How long the next poison handed to an owner waits first, in milliseconds; 0: no wait.
static OWNER_DELAY_MS: Atomic<u64> = Atomic::new(0);

/// `owner_delay_ms`.
struct OwnerDelayFile;

impl OwnerDelayFile {
    fn write(_: &Self, reader: &mut UserSliceReader) -> Result {
        let [ms] = read_numbers(reader)?;
        if ms > OWNER_DELAY_MAX_MS {
            return Err(EINVAL);
        }
        OWNER_DELAY_MS.store(ms, Relaxed);
        Ok(())
    }
}

/// Called before each owner's handler: the first poison after a write to `owner_delay_ms`
/// sleeps that long.
pub(crate) fn delay_owner(flags: MfFlags) {
    if flags.is_removal() {
        return;
    }
    // At most `OWNER_DELAY_MAX_MS`: always an `i64`.
    if let Ok(ms @ 1..) = i64::try_from(OWNER_DELAY_MS.xchg(0, Relaxed)) {
        kernel::time::delay::fsleep(kernel::time::Delta::from_millis(ms));
    }
}

/// How long the last `dev_pagemap_failure()` call took, in nanoseconds.
static LAST_FAILURE_NS: Atomic<u64> = Atomic::new(0);

/// Times one `dev_pagemap_failure()` call: started on entry, recorded in `last_failure_ns`
/// when dropped.
pub(crate) struct FailureTimer(Instant<Monotonic>);

impl FailureTimer {
    pub(crate) fn start() -> Self {
        Self(Instant::now())
    }
}

impl Drop for FailureTimer {
    fn drop(&mut self) {
        let ns = u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(0);
        LAST_FAILURE_NS.store(ns, Relaxed);
    }
}

/// `last_failure_ns`.
struct LastFailureFile;

impl LastFailureFile {
    fn show(_: &Self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", LAST_FAILURE_NS.load(Relaxed))
    }
}

/// `bench_lookup`: writing `CLAIMS ITERATIONS` builds a private registry (no device) with
/// CLAIMS one-page claims on every other page, then dispatches a one-page failure ITERATIONS
/// times, each into another claim, to a handler that does nothing; reading gives
/// `claims=N iterations=N ns_per_dispatch=N` of the last run.
struct BenchLookupFile {
    claims: Atomic<u64>,
    iterations: Atomic<u64>,
    ns_per_dispatch: Atomic<u64>,
}

/// The largest claim count `bench_lookup` accepts.
const BENCH_MAX_CLAIMS: u64 = 1 << 20;

/// The benchmark claimants' handler: does nothing.
extern "C" fn bench_handler(
    _dax_dev: *mut bindings::dax_device,
    _data: *mut core::ffi::c_void,
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
    shared: false,
});

/// A private registry (no device) with `claims` one-page claims on every other page, of
/// owners whose handler does nothing; `claims` is at most [`BENCH_MAX_CLAIMS`].
fn bench_registry(claims: u64) -> Result<Arc<Registry>> {
    if claims > BENCH_MAX_CLAIMS {
        return Err(EINVAL);
    }
    let page = 1u64 << PAGE_SHIFT;
    let registry = Registry::new()?;
    // No overflow below: `k < claims <= 2^20`, so `k * 2 * page < 2^33`.
    for k in 0..claims {
        // SAFETY: `BENCH_OPS` is static; `data` is never dereferenced.
        let owner = unsafe { Owner::new(&raw const BENCH_OPS.0, core::ptr::null_mut()) };
        let owner = owner.ok_or(EINVAL)?;
        let range = Range::from_len(k * 2 * page, page).map_err(|_| EINVAL)?;
        registry.register(range, owner).map_err(Error::from)?;
        kernel::task::might_sleep();
    }
    Ok(registry)
}

impl BenchLookupFile {
    fn new() -> Self {
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

    fn write(this: &Self, reader: &mut UserSliceReader) -> Result {
        let [claims, iterations] = read_numbers(reader)?;
        if claims == 0 || claims > BENCH_MAX_CLAIMS || iterations == 0 {
            return Err(EINVAL);
        }
        let page = 1u64 << PAGE_SHIFT;
        let registry = bench_registry(claims)?;
        // A stride that is prime to any claim count below it visits the claims in a scattered
        // order, so that no cache line of the tree stays hot by accident.
        let stride = (7919 % claims).max(1);
        let mut k = 0u64;
        let start = Instant::<Monotonic>::now();
        for _ in 0..iterations {
            let failure = Range::from_len(k * 2 * page, page).map_err(|_| EINVAL)?;
            let mut settlement = Settlement::default();
            // SAFETY: The handler ignores the device; no device is passed.
            unsafe {
                registry.dispatch(
                    core::ptr::null_mut(),
                    failure,
                    MfFlags::NONE,
                    &mut settlement,
                    None,
                )
            }
            .map_err(Error::from)?;
            k = (k + stride) % claims;
        }
        let ns = start.elapsed().as_nanos();
        let per = u64::try_from(ns).unwrap_or(0) / iterations;
        this.claims.store(claims, Relaxed);
        this.iterations.store(iterations, Relaxed);
        this.ns_per_dispatch.store(per, Relaxed);
        Ok(())
    }
}

/// `hold_claims`: the registries of the last write, held until the next.
#[pin_data]
struct HoldClaimsFile {
    #[pin]
    held: Mutex<KVec<Arc<Registry>>>,
}

impl HoldClaimsFile {
    fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            held <- new_mutex!(KVec::new()),
        })
    }

    fn write(this: &Self, reader: &mut UserSliceReader) -> Result {
        let [registries, claims] = read_numbers(reader)?;
        if registries > BENCH_MAX_CLAIMS || (claims > 0 && registries == 0) {
            return Err(EINVAL);
        }
        // The old ones go first, so that the counters see only the new ones.
        let mut held = this.held.lock();
        held.clear();
        for i in 0..registries {
            let registry = bench_registry(if i == 0 { claims } else { 0 })?;
            held.push(registry, GFP_KERNEL)?;
        }
        Ok(())
    }
}
