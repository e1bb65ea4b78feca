// SPDX-License-Identifier: GPL-2.0

//! The C entry points that hand a failure to the owners: of a dax_device's bytes, through a
//! stacking driver's route, of a pagemap's pages, and of a whole pagemap.

use core::cell::Cell;

use kernel::{
    bindings,
    ffi::{c_int, c_long, c_uint, c_ulong},
    memremap::DevPagemap,
    page::PAGE_SHIFT,
    prelude::*,
};

use super::{errno, with_dax_device, MfFlags};
use crate::outcome::{Settlement, NOT_HANDLED};
use crate::range::{granule, mask_shift, Range};
use crate::{mode, route, Mode};

/// Hands the failure of `[offset, offset + len)` of `dax_dev` to the owners of the claims it
/// overlaps, one call per claim. This entry has no pfns to fall back on (see
/// [`dax_failure_notify_pfns`]): parts nobody takes are the caller's to handle.
///
/// Returns 0 if owners took all of it, the first handler error, `-EOPNOTSUPP`
/// ([`NOT_HANDLED`]) if some part was not taken (unclaimed, or declined), `-EINVAL` for an
/// empty or overflowing range, `-ENXIO` if the device is gone.
///
/// # Safety
///
/// `dax_dev` is null or a live dax_device the caller holds a reference to.
#[export]
pub(crate) unsafe extern "C" fn dax_failure_notify(
    dax_dev: *mut bindings::dax_device,
    offset: u64,
    len: u64,
    mf_flags: c_int,
) -> c_int {
    let Ok(failure) = Range::from_len(offset, len) else {
        return errno(Err(EINVAL));
    };
    // The failure enters here: the mode is read once and travels in its flags.
    let flags = MfFlags::from_raw(mf_flags).with(mode().flags());
    // SAFETY: `dax_dev` is null or live (the caller's guarantee).
    let result = unsafe {
        with_dax_device(dax_dev, |dev| {
            let mut settlement = Settlement::default();
            dev.dispatch(failure, flags, &mut settlement, None)?;
            settlement.result()
        })
    };
    errno(result.and_then(|result| result))
}

/// Passes a failure of `[offset, offset + len)` of a lower dax_device up through a stacking
/// driver's `route` (see [`route::pass_up`]).
///
/// Returns 0 if owners above took all of the failure, the first error of one, `-EOPNOTSUPP`
/// ([`NOT_HANDLED`]) if any part of it was not taken (the lower device then runs its fallback
/// for the claim's range), `-EINVAL` for a malformed route or failure.
///
/// # Safety
///
/// `route` is null or valid for the duration of the call, and `route.upper` is null or a
/// live dax_device that stays alive for the duration of the call.
#[export]
pub(crate) unsafe extern "C" fn dax_failure_route(
    route: *const bindings::dax_failure_route,
    offset: u64,
    len: u64,
    mf_flags: c_int,
) -> c_int {
    let flags = MfFlags::from_raw(mf_flags);
    // In mode `off`, as without this feature, nothing above a stacking driver hears of a
    // failure; the failure's flags say which mode it entered in.
    if !flags.is_ranged() {
        return errno(Err(NOT_HANDLED));
    }
    // SAFETY: `route` is null or valid (the caller's guarantee).
    let Some(route) = (unsafe { route.as_ref() }) else {
        pr_err_ratelimited!("NULL route\n");
        return errno(Err(EINVAL));
    };
    let checked = Range::from_len(offset, len)
        .and_then(|failure| route::Route::new(route).map(|checked| (failure, checked)));
    let (failure, checked) = match checked {
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
            return errno(Err(EINVAL));
        }
    };
    // SAFETY: `route.upper` is null or live (the caller's guarantee).
    let result = unsafe {
        with_dax_device(route.upper, |upper| {
            route::pass_up(&checked, upper, failure, flags)
        })
    };
    // The device above is gone: nobody there can take the failure.
    errno(result.unwrap_or(Err(NOT_HANDLED)))
}

/// Hands the failure of `nr_pages` pages from `pfn` to their owners: the pmem driver's
/// pagemap `memory_failure` operation (see [`crate::notify_pfns`]). `base_pfn` is the pfn of
/// byte 0 of `dax_dev`. A removal that every owner took, with nothing left to the fallback,
/// then waits until no page cache holds the pages (`dev_pagemap_failure_wait_evicted()`).
///
/// # Safety
///
/// `dax_dev` is null or a live dax_device the caller holds a reference to; `pgmap` is the live
/// pagemap whose pages back it and `[pfn, pfn + nr_pages)` lies inside it.
#[export]
pub(crate) unsafe extern "C" fn dax_failure_notify_pfns(
    dax_dev: *mut bindings::dax_device,
    pgmap: *mut bindings::dev_pagemap,
    base_pfn: c_ulong,
    pfn: c_ulong,
    nr_pages: c_ulong,
    mf_flags: c_int,
) -> c_int {
    let Ok(pfns) = Range::from_len(pfn as u64, nr_pages as u64) else {
        return errno(Err(EINVAL));
    };
    let flags = MfFlags::from_raw(mf_flags);
    let used_fallback = Cell::new(false);
    // The pfn-at-a-time fallback for the pages nobody took.
    let mut unclaimed = |pages: Range| -> Result {
        if !pfns.contains(&pages) {
            return Err(EINVAL);
        }
        used_fallback.set(true);
        // SAFETY: `pgmap` is live and `pages` lies in `pfns`, which lies inside it (the
        // caller's guarantee).
        let ret: c_long = unsafe {
            bindings::memory_failure_dev_pagemap_unclaimed(
                pgmap,
                pages.start() as c_ulong,
                pages.len() as c_ulong,
                mf_flags,
            )
        };
        if ret >= 0 {
            return Ok(());
        }
        // A negative `long` is an errno, which fits in an `int`.
        Err(c_int::try_from(ret).map_or(EINVAL, Error::from_errno))
    };
    // SAFETY: `dax_dev` is null or live (the caller's guarantee).
    let done = unsafe {
        with_dax_device(dax_dev, |dev| {
            let result = crate::notify_pfns(dev, base_pfn as u64, pfns, flags, &mut unclaimed);
            // Every owner of the pages revoked its mappings, and nothing went to the fallback
            // (which leaves page cache entries of filesystems that do not claim): what page
            // cache still holds the pages is being evicted. Wait for it before the pages go.
            let wait = result.is_ok() && !used_fallback.get() && flags.is_removal();
            (result, wait.then(|| dev.name()))
        })
    };
    let (result, name) = match done {
        Ok(done) => done,
        Err(e) => return e.to_errno(),
    };
    if let Some(name) = name {
        // SAFETY: `pgmap` is live (the caller's guarantee) and `name` is NUL-terminated.
        unsafe { bindings::dev_pagemap_failure_wait_evicted(pgmap, name.as_char_ptr()) };
    }
    errno(result)
}

/// Revokes all mappings of the device memory behind `pgmap` (see [`crate::revoke_pagemap`]).
///
/// # Safety
///
/// `pgmap` must be null or point to a `struct dev_pagemap` between `memremap_pages()` and
/// `memunmap_pages()`, valid for the duration of the call.
#[export]
pub(crate) unsafe extern "C" fn dev_pagemap_failure(
    pgmap: *mut bindings::dev_pagemap,
    mf_flags: c_int,
) -> c_int {
    // SAFETY: The caller guarantees that `pgmap` is null or a live pagemap for the duration
    // of this call.
    let Some(pagemap) = (unsafe { DevPagemap::from_raw(pgmap) }) else {
        pr_err_ratelimited!("NULL pagemap\n");
        return errno(Err(EINVAL));
    };
    // The failure enters here: the mode is read once and travels in its flags.
    let mode = mode();
    let flags = MfFlags::from_raw(mf_flags).with(mode.flags());
    let deliver = |pfns: Range| -> Result {
        let inside = pagemap
            .ranges()
            .any(|phys| crate::phys_to_pfns(phys).is_ok_and(|range| range.contains(&pfns)));
        if !inside {
            return Err(EINVAL);
        }
        // SAFETY: The pagemap is live (the caller's guarantee) and `pfns` lies in one of its
        // ranges (checked just above).
        kernel::error::to_result(unsafe {
            bindings::memory_failure_dev_pagemap_range(
                pgmap,
                pfns.start() as c_ulong,
                pfns.len() as c_ulong,
                flags.raw(),
            )
        })
    };
    errno(crate::revoke_pagemap(&pagemap, mode, deliver))
}

/// The granularity, as a shift, of an error address whose valid bits `mask` gives (a UEFI
/// CPER memory error section's physical address mask), for `memory_failure_queue_mask()`: 0
/// for a mask with no valid bit, which names no granule.
///
/// Context: Any context, NMI included: it only computes.
#[export]
pub(crate) extern "C" fn memory_failure_mask_shift(mask: u64) -> c_uint {
    mask_shift(mask).unwrap_or(0)
}

/// Fails the device memory that a platform error with a coarse address may have hit: the
/// aligned granule of `1 << shift` bytes around the physical address `phys` (a machine check
/// whose `MCi_MISC` gives an address LSB above the page, a firmware record with a coarse
/// address mask), within the range of the pagemap that holds `phys`, through
/// `memory_failure_range()`, which reaches each owner of it once.
///
/// Returns what `memory_failure_range()` returned; `-EOPNOTSUPP` ([`NOT_HANDLED`]) if no
/// pagemap holds `phys` (ordinary RAM: the caller keeps its own path) or in a test kernel's
/// mode `off`; `-EINVAL` for a `shift` of 64 or more.
///
/// Context: Process context; may sleep for as long as the owners' work takes (without
/// `mf_mutex`: see `memory_failure_dev_pagemap_range()`).
#[export]
pub(crate) extern "C" fn memory_failure_granule(
    phys: u64,
    shift: c_uint,
    mf_flags: c_int,
) -> c_int {
    if mode() == Mode::Off {
        return errno(Err(NOT_HANDLED));
    }
    let page_shift = PAGE_SHIFT as u32;
    let shift = shift.max(page_shift);
    let pfn = phys >> page_shift;
    // SAFETY: `get_dev_pagemap()` takes a reference on the pagemap that holds `pfn`, if any.
    let pgmap = unsafe { bindings::get_dev_pagemap(pfn as c_ulong) };
    // SAFETY: A pagemap that `get_dev_pagemap()` returned stays live, its ranges fixed, until
    // the reference is dropped below.
    let Some(pagemap) = (unsafe { DevPagemap::from_raw(pgmap) }) else {
        return errno(Err(NOT_HANDLED));
    };
    let pages = pagemap.ranges().find_map(|bytes| {
        let bytes = Range::from_inclusive(bytes.first, bytes.last).ok()?;
        Some(granule(phys, shift, &bytes).and_then(|g| g.scale_down(page_shift)))
    });
    // SAFETY: `pgmap` holds the reference `get_dev_pagemap()` took; `pagemap` is not used
    // after this.
    unsafe { bindings::dev_pagemap_failure_put_pagemap(pgmap) };
    let pfns = match pages {
        Some(Ok(pfns)) => pfns,
        Some(Err(e)) => {
            pr_err_ratelimited!("no granule of 2^{} bytes at {:#x}: {:?}\n", shift, phys, e);
            return errno(Err(EINVAL));
        }
        None => return errno(Err(NOT_HANDLED)),
    };
    pr_warn_ratelimited!(
        "error at {:#x} with 2^{} byte granularity: failing pfns [{:#x}, {:#x})\n",
        phys,
        shift,
        pfns.start(),
        pfns.end()
    );
    // SAFETY: `memory_failure_range()` takes any pfns; pages that are no longer device memory
    // go through `memory_failure()` one by one.
    unsafe {
        bindings::memory_failure_range(pfns.start() as c_ulong, pfns.len() as c_ulong, mf_flags)
    }
}
