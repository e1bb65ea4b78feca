// SPDX-License-Identifier: GPL-2.0

//! The C entry points of the core, declared in include/linux/dev_pagemap_failure.h and
//! exported to modules by mm/dev_pagemap_failure_helpers.c.
//!
//! This file is the only place where the core turns C's raw pointers into Rust values: each
//! entry point checks its arguments, converts them (a [`DaxDevice`] for a `struct dax_device
//! *`, an [`Owner`] for ops and data, a [`Range`] for an offset and a length), and calls the
//! safe code that does the work. Every bad argument gets a defined errno, and the ones a
//! caller can repeat in a loop a rate-limited log line.

use core::{cell::Cell, ffi::c_void};

use kernel::{
    bindings,
    ffi::{c_char, c_int, c_long, c_ulong},
    memremap::DevPagemap,
    page::PAGE_SHIFT,
    prelude::*,
    str::CStr,
    sync::{Arc, ArcBorrow},
};

use crate::outcome::{Fallback, Settlement};
use crate::range::{Range, RangeError};
use crate::registry::{ClaimError, Owner, Registry};
use crate::{debugfs, mode, route};

fn errno(e: impl Into<Error>) -> c_int {
    e.into().to_errno()
}

/// A dax_device that the C caller of an entry point keeps alive, with a reference to its
/// registry. Only [`with_dax_device`] makes one, for the duration of a closure.
///
/// # Invariants
///
/// `raw` is a live dax_device and `registry` is its registry.
pub(crate) struct DaxDevice {
    raw: *mut bindings::dax_device,
    registry: Arc<Registry>,
}

impl DaxDevice {
    /// The device's registry.
    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// [`Registry::dispatch`] on this device.
    pub(crate) fn dispatch(
        &self,
        failure: Range,
        mf_flags: c_int,
        settlement: &mut Settlement,
        fallback: Option<Fallback<'_, '_>>,
    ) -> Result<(), ClaimError> {
        // SAFETY: `raw` is live and `registry` is its registry (type invariant).
        unsafe {
            self.registry
                .dispatch(self.raw, failure, mf_flags, settlement, fallback)
        }
    }

    /// [`Registry::kill`] on this device; the removal enters here, so the mode is read here.
    fn kill(&self) {
        // SAFETY: `raw` is live and `registry` is its registry (type invariant).
        unsafe { self.registry.kill(self.raw, mode().flags()) }
    }
}

/// Runs `f` with the dax_device behind `raw`; `-EINVAL` (logged) for NULL, `-ENXIO` for a
/// device without a registry. `f` cannot keep the [`DaxDevice`]: it lives only as long as the
/// C caller's reference, which outlasts the entry point.
///
/// # Safety
///
/// `raw` is null or a dax_device from `alloc_dax()` that the caller holds a reference to for
/// the duration of the call.
unsafe fn with_dax_device<R>(
    raw: *mut bindings::dax_device,
    f: impl FnOnce(&DaxDevice) -> R,
) -> Result<R> {
    if raw.is_null() {
        pr_err_ratelimited!("NULL dax_device\n");
        return Err(EINVAL);
    }
    // SAFETY: `raw` is live (the caller's guarantee).
    let registry = unsafe { bindings::dax_failure_registry(raw) };
    if registry.is_null() {
        return Err(ENXIO);
    }
    // SAFETY: drivers/dax/super.c stores in each dax_device the pointer that
    // `dax_failure_registry_alloc()` returned (an `Arc<Registry>` turned into a raw pointer),
    // and releases it with `dax_failure_registry_free()` only when the dax_device is freed,
    // after the caller's reference is gone; the borrow ends within this statement, with a
    // reference of our own taken.
    let registry: Arc<Registry> =
        unsafe { ArcBorrow::from_raw(registry.cast::<Registry>()) }.into();
    // INVARIANT: `raw` is live for the duration of this call and `registry` is its registry.
    Ok(f(&DaxDevice { raw, registry }))
}

/// A claim's range from the C arguments: non-empty, no overflow, page-aligned.
fn claim_range(offset: u64, len: u64) -> Result<Range, RangeError> {
    let range = Range::from_len(offset, len)?;
    range.scale_down(PAGE_SHIFT as u32)?;
    Ok(range)
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
    let owner = if ops.is_null() {
        None
    } else {
        // SAFETY: `ops` is valid, and with `data` stays valid while claimed (the caller's
        // guarantee).
        unsafe { Owner::new(ops, data) }
    };
    owner.ok_or_else(|| {
        pr_err_ratelimited!(
            "claim [{:#x}, +{:#x}) without a handler: -EINVAL\n",
            offset,
            len
        );
        errno(EINVAL)
    })
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
    // SAFETY: `dax_dev` is null or live (the caller's guarantee).
    let ret = unsafe {
        with_dax_device(dax_dev, |dev| {
            let registry = dev.registry();
            claim_range(offset, len)
                .map_err(ClaimError::Invalid)
                .and_then(|range| op(registry, range))
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
                    errno(e)
                })
        })
    };
    match ret {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => e,
        Err(e) => e.to_errno(),
    }
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
pub(crate) unsafe extern "C" fn dax_failure_register(
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

/// Gives the claim of exactly `[offset, offset + len)` that was made with `old_data` to
/// `ops`/`data`, atomically: a failure dispatched meanwhile reaches the old owner or the new
/// one, never neither. For device-mapper, which hands its claims from the old table to the
/// new one. Does not wait for a call of the old owner's handler in flight (it may sleep on
/// I/O to a suspended dm device): [`dax_failure_synchronize`] does, and the old owner's `ops`,
/// its name and `old_data` must stay valid until it returns.
///
/// Returns 0, `-EINVAL` for a bad range or a missing handler, `-ENOENT` if no such claim
/// exists.
///
/// # Safety
///
/// As for [`dax_failure_register`] for the new owner.
#[export]
pub(crate) unsafe extern "C" fn dax_failure_replace(
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
pub(crate) unsafe extern "C" fn dax_failure_unregister(
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
/// a call of its handler in flight; [`dax_failure_synchronize`] waits for it, and the owner's
/// `ops`, its name and `data` must stay valid until then. For callers that must not sleep on
/// the handlers.
///
/// Returns 0, `-EINVAL` for a bad range, `-ENOENT` if no such claim exists.
///
/// # Safety
///
/// `dax_dev` is null or a live dax_device the caller holds a reference to.
#[export]
pub(crate) unsafe extern "C" fn dax_failure_detach(
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
pub(crate) unsafe extern "C" fn dax_failure_synchronize(dax_dev: *mut bindings::dax_device) {
    // SAFETY: `dax_dev` is null or referenced (the caller's guarantee).
    let _ = unsafe { with_dax_device(dax_dev, |dev| dev.registry().synchronize()) };
}

/// Hands the failure of `[offset, offset + len)` of `dax_dev` to the owners of the claims it
/// overlaps, one call per claim. This entry has no pfns to fall back on (see
/// [`dax_failure_notify_pfns`]): parts nobody takes are the caller's to handle.
///
/// Returns 0 if owners took all of it, the first handler error, "not handled"
/// ([`crate::outcome::not_handled`]) if some part was not taken (unclaimed, or declined), `-EINVAL`
/// for an empty or overflowing range, `-ENXIO` if the device is gone.
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
        return errno(EINVAL);
    };
    // The failure enters here: the mode is read once and travels in its flags.
    let mf_flags = mf_flags | mode().flags();
    // SAFETY: `dax_dev` is null or live (the caller's guarantee).
    let ret = unsafe {
        with_dax_device(dax_dev, |dev| {
            let mut settlement = Settlement::default();
            dev.dispatch(failure, mf_flags, &mut settlement, None)
                .map(|()| settlement.errno())
        })
    };
    match ret {
        Ok(Ok(ret)) => ret,
        Ok(Err(e)) => errno(e),
        Err(e) => e.to_errno(),
    }
}

/// Passes a failure of `[offset, offset + len)` of a lower dax_device up through a stacking
/// driver's `route` (see [`route::pass_up`]).
///
/// Returns 0 if owners above took all of the failure, the first error of one, "not handled"
/// ([`crate::outcome::not_handled`]) if any part of it was not taken (the lower device then runs
/// its fallback for the claim's range), `-EINVAL` for a malformed route or failure.
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
    // In mode `off`, as upstream, nothing above a stacking driver hears of a failure; the
    // failure's flags say which mode it entered in.
    if !crate::is_ranged(mf_flags) {
        return route::nobody_above();
    }
    // SAFETY: `route` is null or valid (the caller's guarantee).
    let Some(route) = (unsafe { route.as_ref() }) else {
        pr_err_ratelimited!("NULL route\n");
        return errno(EINVAL);
    };
    let layout = Range::from_len(offset, len)
        .and_then(|failure| route::Layout::new(route).map(|layout| (failure, layout)));
    let (failure, layout) = match layout {
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
    // SAFETY: `route.upper` is null or live (the caller's guarantee).
    let ret = unsafe {
        with_dax_device(route.upper, |upper| {
            route::pass_up(&layout, upper, failure, mf_flags)
        })
    };
    // The device above is gone: nobody there can take the failure.
    ret.unwrap_or_else(|_| route::nobody_above())
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
        return errno(EINVAL);
    };
    let fell_back = Cell::new(false);
    // The pfn-at-a-time fallback for the pages nobody took.
    let mut unclaimed = |pages: Range| -> Result<(), c_int> {
        if !pfns.contains(&pages) {
            return Err(errno(EINVAL));
        }
        fell_back.set(true);
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
        if ret < 0 {
            Err(ret as c_int)
        } else {
            Ok(())
        }
    };
    // SAFETY: `dax_dev` is null or live (the caller's guarantee).
    let ret = unsafe {
        with_dax_device(dax_dev, |dev| {
            let ret = crate::notify_pfns(dev, base_pfn as u64, pfns, mf_flags, &mut unclaimed)
                .unwrap_or_else(|e| e.to_errno());
            // Every owner of the pages revoked its mappings, and nothing went to the fallback
            // (which leaves page cache entries of filesystems that do not claim): what page
            // cache still holds the pages is being evicted. Wait for it before the pages go.
            // Only a removal pays for the name (the registry's mutex), never poison.
            let removal = mf_flags & bindings::mf_flags_MF_MEM_PRE_REMOVE as c_int != 0;
            let wait = ret == 0 && !fell_back.get() && removal;
            (ret, wait.then(|| dev.registry().name()))
        })
    };
    let (ret, name) = match ret {
        Ok(done) => done,
        Err(e) => return e.to_errno(),
    };
    if let Some(name) = name {
        // SAFETY: `pgmap` is live (the caller's guarantee) and `name` is NUL-terminated.
        unsafe { bindings::dev_pagemap_failure_wait_evicted(pgmap, name.as_char_ptr()) };
    }
    ret
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
        return errno(EINVAL);
    };
    // The failure enters here: the mode is read once and travels in its flags.
    let mode = mode();
    let mf_flags = mf_flags | mode.flags();
    let deliver = |pfns: Range| -> c_int {
        let inside = pagemap
            .ranges()
            .any(|phys| crate::phys_to_pfns(phys).is_ok_and(|range| range.contains(&pfns)));
        if !inside {
            return errno(EINVAL);
        }
        // SAFETY: The pagemap is live (the caller's guarantee) and `pfns` lies in one of its
        // ranges (checked just above).
        unsafe {
            bindings::memory_failure_dev_pagemap_range(
                pgmap,
                pfns.start() as c_ulong,
                pfns.len() as c_ulong,
                mf_flags,
            )
        }
    };
    crate::revoke_pagemap(&pagemap, mode, deliver)
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
pub(crate) extern "C" fn dax_failure_registry_alloc() -> *mut bindings::dax_failure_registry {
    let registry = match Registry::new() {
        Ok(registry) => registry,
        Err(e) => return err_ptr(e),
    };
    if let Err(e) = debugfs::list(&registry) {
        return err_ptr(e);
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
pub(crate) unsafe extern "C" fn dax_failure_registry_free(
    raw: *mut bindings::dax_failure_registry,
) {
    // SAFETY: Pointer tests only.
    if raw.is_null() || unsafe { bindings::IS_ERR(raw.cast()) } {
        return;
    }
    // SAFETY: `raw` came from `Arc::into_raw()` in `dax_failure_registry_alloc()` and this is
    // the matching release (the caller's guarantee).
    let registry = unsafe { Arc::from_raw(raw.cast_const().cast::<Registry>()) };
    debugfs::unlist(&registry);
}

/// The device is going away: announces the removal to every claim that has not been told yet
/// (one call each) and refuses claims and dispatches from now on. In mode `off` this is what
/// upstream's `kill_dax()` does for the holder.
///
/// # Safety
///
/// `dax_dev` is null or a live dax_device the caller holds a reference to.
#[export]
pub(crate) unsafe extern "C" fn dax_failure_kill(dax_dev: *mut bindings::dax_device) {
    // SAFETY: `dax_dev` is null or live (the caller's guarantee).
    let _ = unsafe { with_dax_device(dax_dev, DaxDevice::kill) };
}

/// Names the registry of `dax_dev` after its block device, for logs and debugfs.
///
/// # Safety
///
/// `dax_dev` is null or a live dax_device; `name` is null or a NUL-terminated string.
#[export]
pub(crate) unsafe extern "C" fn dax_failure_set_name(
    dax_dev: *mut bindings::dax_device,
    name: *const c_char,
) {
    if name.is_null() {
        return;
    }
    // SAFETY: `name` is a NUL-terminated string (the caller's guarantee).
    let name = unsafe { CStr::from_char_ptr(name) };
    // SAFETY: `dax_dev` is null or live (the caller's guarantee).
    let _ = unsafe { with_dax_device(dax_dev, |dev| dev.registry().set_name(name.to_bytes())) };
}
