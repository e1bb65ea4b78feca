// SPDX-License-Identifier: GPL-2.0

//! The C entry points that claim, hand over and release ranges of a dax_device.

use core::ffi::c_void;

use kernel::{bindings, ffi::c_int, page::PAGE_SHIFT, prelude::*};

use super::{errno, with_dax_device, DaxDevice};
use crate::owner::{self, Owner};
use crate::range::{Range, RangeError};
use crate::registry::ClaimError;

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
) -> Result<Owner> {
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
        EINVAL
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
    op: impl FnOnce(&DaxDevice, Range) -> Result<(), ClaimError>,
) -> c_int {
    // SAFETY: `dax_dev` is null or live (the caller's guarantee).
    let ret = unsafe {
        with_dax_device(dax_dev, |dev| {
            claim_range(offset, len)
                .map_err(ClaimError::Invalid)
                .and_then(|range| op(dev, range))
                .map_err(|e| {
                    pr_err_ratelimited!(
                        "{}: cannot {} [{:#x}, +{:#x}) for {}: {:?}, {}\n",
                        dev.name().as_bstr(),
                        verb,
                        offset,
                        len,
                        who,
                        e,
                        e.errno_name()
                    );
                    Error::from(e)
                })
        })
    };
    errno(ret.and_then(|ret| ret))
}

/// What the entry points that give a range to an owner share: the owner of `ops`/`data` (or
/// `-EINVAL`, logged), then [`claim_op`], with `op` given the owner.
///
/// # Safety
///
/// `dax_dev` is null or a live dax_device the caller holds a reference to; `ops` is null or a
/// valid `struct dax_failure_ops`, which with its name and `data` stays valid until the claim
/// made with the owner is unregistered.
unsafe fn claim_for(
    dax_dev: *mut bindings::dax_device,
    offset: u64,
    len: u64,
    ops: *const bindings::dax_failure_ops,
    data: *mut c_void,
    verb: &str,
    op: impl FnOnce(&DaxDevice, Range, Owner) -> Result<(), ClaimError>,
) -> c_int {
    // SAFETY: `ops` is null or valid, and with `data` stays valid while claimed (the caller's
    // guarantee).
    let owner = match unsafe { owner_of(ops, data, offset, len) } {
        Ok(owner) => owner,
        Err(e) => return e.to_errno(),
    };
    // SAFETY: `ops` is valid (`owner_of()` found a handler in it), and so is its name, for
    // the duration of this call (the caller's guarantee).
    let who = unsafe { owner::name_of(ops) }.to_str().unwrap_or("?");
    // SAFETY: `dax_dev` is null or live (the caller's guarantee).
    unsafe {
        claim_op(dax_dev, offset, len, verb, who, |dev, range| {
            op(dev, range, owner)
        })
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
    // SAFETY: `dax_dev` is null or live; `ops` is null or valid, and with `data` stays valid
    // while claimed (the caller's guarantee).
    unsafe {
        claim_for(
            dax_dev,
            offset,
            len,
            ops,
            data,
            "claim",
            |dev, range, owner| dev.claims_or_new()?.register(range, owner),
        )
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
/// exists, `-ENXIO` if the device was killed before anything claimed it.
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
    unsafe {
        claim_for(
            dax_dev,
            offset,
            len,
            ops,
            data,
            "hand over",
            |dev, range, owner| dev.claims()?.replace(range, old_data, owner),
        )
    }
}

/// Removes the claim of exactly `[offset, offset + len)` made with `data`, after waiting for
/// any call of its handler in flight; the handler is never called again.
///
/// Returns 0, `-EINVAL` for a bad range, `-ENOENT` if no such claim exists, `-ENXIO` if the
/// device was killed before anything claimed it.
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
            |dev, range| dev.claims()?.unregister(range, data),
        )
    }
}

/// Removes the claim of exactly `[offset, offset + len)` made with `data` without waiting for
/// a call of its handler in flight; [`dax_failure_synchronize`] waits for it, and the owner's
/// `ops`, its name and `data` must stay valid until then. For callers that must not sleep on
/// the handlers.
///
/// Returns 0, `-EINVAL` for a bad range, `-ENOENT` if no such claim exists, `-ENXIO` if the
/// device was killed before anything claimed it.
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
        claim_op(dax_dev, offset, len, "detach", "its owner", |dev, range| {
            dev.claims()?.detach(range, data)
        })
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
    let _ = unsafe {
        with_dax_device(dax_dev, |dev| {
            if let Some(registry) = dev.registry() {
                registry.synchronize();
            }
        })
    };
}
