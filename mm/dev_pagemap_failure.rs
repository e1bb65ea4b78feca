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
//! One concept per file:
//!
//! * this file: the module, the [`Mode`] a test kernel can choose, and the two ways a failure
//!   enters: [`revoke_pagemap`] (the body of `dev_pagemap_failure()`, which a driver whose
//!   device memory goes away calls once) and [`notify_pfns`] (the pmem driver's pagemap
//!   `memory_failure` operation, which `memory_failure()` and `memory_failure_range()` reach);
//! * [`registry`]: the registry of one dax_device and the claim lifecycle;
//! * [`claims`]: the claims under the registry mutex, and the lookups;
//! * [`owner`]: who owns a claim, and the call of its handler;
//! * [`dispatch`]: a failure handed to the owners of the claims it overlaps;
//! * [`outcome`]: what became of each part of a failure, which parts the fallback handles and
//!   what the caller is told, decided in one place;
//! * [`route`]: failures passed up through stacking drivers (device-mapper);
//! * [`range`] and [`stripe`]: the pure range arithmetic and dm stripe layout, also compiled
//!   and tested on the host;
//! * [`ffi`]: every C entry point, every conversion of a raw C pointer or errno;
//! * [`debugfs`]: the read-only `devices` file;
//! * [`ratelimit`]: a log rate limit per call site;
//! * `testing` (`CONFIG_DEV_PAGEMAP_FAILURE_TEST`), `kunit`, `kunit_registry` and
//!   `kunit_ffi` (`CONFIG_DEV_PAGEMAP_FAILURE_KUNIT_TEST`): test interfaces and tests, not
//!   built into a production kernel.
//!
//! See Documentation/mm/dev_pagemap_failure.rst.

use kernel::{
    memremap::{DevPagemap, PhysRange},
    page::PAGE_SHIFT,
    prelude::*,
    sync::atomic::Relaxed,
};

// The crate root is this file, so the module paths are spelled out. The rate-limited log
// macros come first so that every module can use them.
#[macro_use]
#[path = "dev_pagemap_failure/ratelimit.rs"]
mod ratelimit;

#[path = "dev_pagemap_failure/claims.rs"]
mod claims;
#[path = "dev_pagemap_failure/debugfs.rs"]
mod debugfs;
#[path = "dev_pagemap_failure/dispatch.rs"]
mod dispatch;
#[path = "dev_pagemap_failure/ffi.rs"]
mod ffi;
#[cfg(CONFIG_DEV_PAGEMAP_FAILURE_KUNIT_TEST)]
#[path = "dev_pagemap_failure/kunit.rs"]
mod kunit;
#[cfg(CONFIG_DEV_PAGEMAP_FAILURE_KUNIT_TEST)]
#[path = "dev_pagemap_failure/kunit_ffi.rs"]
mod kunit_ffi;
#[cfg(CONFIG_DEV_PAGEMAP_FAILURE_KUNIT_TEST)]
#[path = "dev_pagemap_failure/kunit_registry.rs"]
mod kunit_registry;
#[path = "dev_pagemap_failure/outcome.rs"]
mod outcome;
#[path = "dev_pagemap_failure/owner.rs"]
mod owner;
#[path = "dev_pagemap_failure/range.rs"]
pub mod range;
#[path = "dev_pagemap_failure/registry.rs"]
mod registry;
#[path = "dev_pagemap_failure/route.rs"]
mod route;
#[path = "dev_pagemap_failure/stripe.rs"]
pub mod stripe;
#[cfg(CONFIG_DEV_PAGEMAP_FAILURE_TEST)]
#[path = "dev_pagemap_failure/testing.rs"]
mod testing;

use ffi::{DaxDevice, MfFlags};
use outcome::{Delivery, Settlement, NOT_HANDLED};
use range::{Range, RangeError};

module! {
    type: DevPagemapFailureModule,
    name: "dev_pagemap_failure",
    authors: ["dev_pagemap_failure developers"],
    description: "Ranged memory failure for device memory",
    license: "GPL",
}

struct DevPagemapFailureModule {
    _debugfs: debugfs::Files,
}

impl kernel::Module for DevPagemapFailureModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(Self {
            // SAFETY: The module initializer runs once.
            _debugfs: unsafe { debugfs::Files::new() }?,
        })
    }
}

/// How failures are delivered. Only a test kernel (`CONFIG_DEV_PAGEMAP_FAILURE_TEST`) has a
/// choice, `dev_pagemap_failure.mode`, to measure the old paths beside the ranged one; every
/// other kernel is [`Mode::Ranged`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Upstream: the holder is told of a removal, nothing else changes.
    #[cfg_attr(not(CONFIG_DEV_PAGEMAP_FAILURE_TEST), allow(dead_code))]
    Off,
    /// `dev_pagemap_failure()` walks the device one page at a time.
    #[cfg_attr(not(CONFIG_DEV_PAGEMAP_FAILURE_TEST), allow(dead_code))]
    Pfn,
    /// One call per claim.
    Ranged,
}

/// The mode now. Each failure reads it once, where it enters (the entry points in [`ffi`],
/// `memory_failure()` and `memory_failure_range()` in C); a failure that entered in mode `off`
/// carries `MF_UPSTREAM` ([`Mode::flags`]) to everything below: the pmem driver's operation,
/// routes, owners. A write to the parameter during a removal cannot mix the paths.
#[cfg(CONFIG_DEV_PAGEMAP_FAILURE_TEST)]
fn mode() -> Mode {
    use kernel::bindings;

    // SAFETY: Reads an integer parameter.
    match unsafe { bindings::dev_pagemap_failure_mode() } {
        bindings::dev_pagemap_failure_mode_DPF_MODE_OFF => Mode::Off,
        bindings::dev_pagemap_failure_mode_DPF_MODE_PFN => Mode::Pfn,
        _ => Mode::Ranged,
    }
}

/// The mode of a kernel without the test interfaces: always ranged.
#[cfg(not(CONFIG_DEV_PAGEMAP_FAILURE_TEST))]
fn mode() -> Mode {
    Mode::Ranged
}

impl Mode {
    /// The `MF_*` flags a failure that entered in this mode carries: `MF_UPSTREAM` if off.
    fn flags(self) -> MfFlags {
        match self {
            Mode::Off => MfFlags::UPSTREAM,
            Mode::Pfn | Mode::Ranged => MfFlags::NONE,
        }
    }
}

/// The largest pfn count: pfns are physical addresses shifted right by `PAGE_SHIFT`.
const PFN_LIMIT: u64 = u64::MAX >> PAGE_SHIFT;

/// Hands the failure of the pages `pfns` of `dev` to their owners: the pmem driver's pagemap
/// `memory_failure` operation. `base_pfn` is the pfn of byte 0 of the device; pages below it
/// hold the device's metadata, which nobody maps, and are skipped (`-ENXIO` if that is all of
/// them). Claimed parts go to their owners, one call per claim; the parts nobody takes go to
/// `unclaimed_pages`, the pfn-at-a-time fallback, which skips pages nobody maps.
///
/// A failure that entered in mode `off` (`MF_UPSTREAM`) behaves as upstream: it goes to the
/// claims (the holder), no fallback runs, and a part nobody took makes the result "not
/// handled" ([`NOT_HANDLED`]), which sends a single-page failure to the generic
/// handler in mm/memory-failure.c.
fn notify_pfns(
    dev: &DaxDevice,
    base_pfn: u64,
    pfns: Range,
    flags: MfFlags,
    unclaimed_pages: &mut dyn FnMut(Range) -> Result,
) -> Result {
    let from = Range::new(base_pfn, PFN_LIMIT).map_err(|_| EINVAL)?;
    let to = Range::from_len(0, from.len()).map_err(|_| EINVAL)?;
    // Pages below `base_pfn` are the device's metadata.
    let data = pfns.intersect(&from).ok_or(ENXIO)?;
    let bytes = data
        .translate(&from, &to)
        .and_then(|pages| pages.scale_up(PAGE_SHIFT as u32))
        .map_err(|_| EINVAL)?;
    let stats = dev.registry().map(|registry| &registry.stats);
    let mut fallback = |bytes: Range| -> Result {
        let pages = bytes
            .scale_down(PAGE_SHIFT as u32)
            .and_then(|pages| pages.translate(&to, &from))
            .map_err(|_| EINVAL)?;
        if let Some(stats) = stats {
            stats.fallback_pages.add(pages.len(), Relaxed);
        }
        unclaimed_pages(pages)
    };
    let fallback: Option<outcome::Fallback<'_, '_>> = if flags.is_ranged() {
        Some(&mut fallback)
    } else {
        None
    };
    let mut settlement = Settlement::default();
    dev.dispatch(bytes, flags, &mut settlement, fallback)?;
    settlement.result()
}

/// Converts one physical range of a pagemap into a pfn range.
fn phys_to_pfns(phys: PhysRange) -> Result<Range, RangeError> {
    Range::from_inclusive(phys.first, phys.last)?.scale_down(PAGE_SHIFT as u32)
}

/// Revokes all mappings of the device memory behind `pgmap`: the body of
/// `dev_pagemap_failure()`.
///
/// Called once by a driver whose device memory is going away (with `MF_MEM_PRE_REMOVE`)
/// before the memory is handed back. In mode `ranged` each range of the pagemap goes to
/// `deliver` (the driver's `memory_failure` operation, with the caller's flags) in one call,
/// which hands each owner its part in one call; in mode `pfn` every page goes on its own.
///
/// Returns `Ok` when every page was handled, the first error of an owner or of the fallback,
/// `EINVAL` for a pagemap whose ranges are not page-aligned or overflow, and [`NOT_HANDLED`]
/// in mode `off`, if the driver has no `memory_failure` operation, or if it left a part
/// unhandled: the caller then keeps the path without this feature (`kill_dax()` notifies the
/// holder).
fn revoke_pagemap(
    pgmap: &DevPagemap<'_>,
    mode: Mode,
    mut deliver: impl FnMut(Range) -> Result,
) -> Result {
    #[cfg(CONFIG_DEV_PAGEMAP_FAILURE_TEST)]
    let _timer = testing::FailureTimer::start();
    if mode == Mode::Off || !pgmap.has_memory_failure() {
        return Err(NOT_HANDLED);
    }
    let mut settlement = Settlement::default();
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
                return Err(EINVAL);
            }
        };
        if mode == Mode::Ranged {
            settlement.record(pfns, Delivery::of(deliver(pfns)), None);
            continue;
        }
        for pfn in pfns.start()..pfns.end() {
            // Cannot fail: `pfn < pfns.end()`, so `pfn + 1` does not overflow.
            let Ok(page) = Range::from_len(pfn, 1) else {
                continue;
            };
            let result = deliver(page);
            // The pagemap's first pages hold the device's metadata, which nobody maps.
            if result != Err(ENXIO) {
                settlement.record(page, Delivery::of(result), None);
            }
            kernel::task::might_sleep();
        }
    }
    settlement.result()
}
