// SPDX-License-Identifier: GPL-2.0

//! The owner of a claim: the `struct dax_failure_ops` and `data` a registrant passed to
//! `dax_failure_register()`, and the one place that calls the owner's handler.

use core::ffi::c_void;

use kernel::{bindings, error::to_result, ffi::c_int, prelude::*, str::CStr};

use crate::ffi::MfFlags;
use crate::range::Range;

/// The handler of a claim's owner, as `struct dax_failure_ops` declares it.
type Handler =
    unsafe extern "C" fn(*mut bindings::dax_device, *mut c_void, u64, u64, c_int) -> c_int;

/// Who owns a claim.
///
/// An `Owner` is neither `Copy` nor `Clone`: it moves into its claim, and safe code reaches it
/// only through a borrow of the claim that cannot outlive what keeps the pointers valid (the
/// registry mutex while the claim is registered, or a call in flight, see
/// `crate::dispatch::Call`).
///
/// # Invariants
///
/// `ops` points to a `struct dax_failure_ops` whose handler is `notify` and whose `shared` is
/// `shared`; `ops`, its `name` and `data` stay valid while the claim made with this owner is
/// registered and, after it leaves its registry, until the registry has waited for the calls
/// of its handler in flight (`Registry::unregister` or `Registry::synchronize` returned).
pub(crate) struct Owner {
    ops: *const bindings::dax_failure_ops,
    notify: Handler,
    data: *mut c_void,
    shared: bool,
}

// SAFETY: An `Owner` is only pointers that the registrant promised (see `Owner::new`) stay
// valid while its claim is registered; the handler they lead to may be called from any task.
unsafe impl Send for Owner {}

// SAFETY: As above; `Owner` has no interior mutability.
unsafe impl Sync for Owner {}

impl Owner {
    /// Wraps a registrant's handler; `None` if `ops` has no handler.
    ///
    /// # Safety
    ///
    /// `ops` must point to a valid `struct dax_failure_ops`, and `ops`, its `name` and `data`
    /// must stay valid while the claim made with this owner is registered and, after it leaves
    /// its registry, until the registry has waited for the calls of its handler in flight
    /// (`Registry::unregister` or `Registry::synchronize` returned), or the registry has been
    /// freed.
    pub(crate) unsafe fn new(
        ops: *const bindings::dax_failure_ops,
        data: *mut c_void,
    ) -> Option<Self> {
        // SAFETY: `ops` is valid (the caller's guarantee).
        let (notify, shared) = unsafe { ((*ops).notify_failure?, (*ops).shared) };
        // INVARIANT: `notify` and `shared` are those of `ops`; validity is the caller's
        // guarantee.
        Some(Self {
            ops,
            notify,
            data,
            shared,
        })
    }

    /// Whether the owner passes failures on (a stacking driver), so that its claims may
    /// overlap other shared claims; see `shared` in `struct dax_failure_ops`.
    pub(crate) fn is_shared(&self) -> bool {
        self.shared
    }

    /// The owner's name, for logs and debugfs.
    pub(crate) fn name(&self) -> &CStr {
        // SAFETY: `ops` is valid by the type invariant: whoever lends `&self` keeps the claim
        // registered or its call in flight for the borrow.
        unsafe { name_of(self.ops) }
    }

    /// The `data` the owner registered with; identifies a claim together with its range.
    /// Compared, never dereferenced.
    pub(crate) fn data(&self) -> *mut c_void {
        self.data
    }

    /// Calls the owner's handler for `range` (bytes of the dax_device): `Ok` if it handled
    /// it, else its error (`EOPNOTSUPP` to decline).
    ///
    /// # Safety
    ///
    /// The claim of this owner is registered or has this call counted in flight (see
    /// `crate::dispatch::Call`), so its registrant has not been told that the owner is free,
    /// and `dax_dev` is the registry's dax_device (or null for a registry of no device whose
    /// handlers do not use it).
    pub(crate) unsafe fn notify(
        &self,
        dax_dev: *mut bindings::dax_device,
        range: Range,
        flags: MfFlags,
    ) -> Result {
        #[cfg(CONFIG_DEV_PAGEMAP_FAILURE_TEST)]
        crate::testing::delay_owner(flags);
        // SAFETY: By the type invariant and the caller's guarantee `ops` and `data` are still
        // valid; the handler's contract is the C one documented in
        // include/linux/dev_pagemap_failure.h, and `data` is what the owner registered.
        let ret =
            unsafe { (self.notify)(dax_dev, self.data, range.start(), range.len(), flags.raw()) };
        to_result(ret)
    }
}

/// The name in `ops`, or `(unnamed)`.
///
/// # Safety
///
/// `ops` points to a valid `struct dax_failure_ops` whose name stays valid for `'a`.
pub(crate) unsafe fn name_of<'a>(ops: *const bindings::dax_failure_ops) -> &'a CStr {
    // SAFETY: `ops` is valid (the caller's guarantee).
    let name = unsafe { (*ops).name };
    if name.is_null() {
        return c"(unnamed)";
    }
    // SAFETY: `name` is a NUL-terminated string valid for `'a` (the caller's guarantee).
    unsafe { CStr::from_char_ptr(name) }
}
