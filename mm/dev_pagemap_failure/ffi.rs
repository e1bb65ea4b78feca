// SPDX-License-Identifier: GPL-2.0

//! The C entry points of the core, declared in include/linux/dev_pagemap_failure.h and
//! exported to modules by mm/dev_pagemap_failure_helpers.c.
//!
//! This module (this file, `ffi/claim.rs` and `ffi/failure.rs`) is the only place where the
//! core turns C's raw pointers into Rust values: each entry point checks its arguments,
//! converts them (a [`DaxDevice`] for a `struct dax_device *`, an
//! [`Owner`](crate::owner::Owner) for ops and data, a [`Range`] for an offset and a length,
//! [`MfFlags`] for `int mf_flags`), and calls the safe code that does the work, which returns
//! a [`Result`]; only here does an error become a C errno. Every bad argument gets a defined
//! errno, and the ones a caller can repeat in a loop a rate-limited log line.

use kernel::{
    bindings,
    ffi::{c_char, c_int, c_long},
    prelude::*,
    str::CStr,
    sync::{Arc, ArcBorrow},
};

use crate::outcome::{Fallback, Settlement};
use crate::range::Range;
use crate::registry::{ClaimError, Registry};
use crate::{debugfs, mode};

// The entry points, by what they do: claims, and failures.
#[path = "ffi/claim.rs"]
pub(crate) mod claim;
#[path = "ffi/failure.rs"]
pub(crate) mod failure;

/// The C return value of a result: 0 or a negative errno.
pub(crate) fn errno<E: Into<Error>>(result: Result<(), E>) -> c_int {
    match result {
        Ok(()) => 0,
        Err(e) => e.into().to_errno(),
    }
}

/// The `MF_*` flags of a failure (`int mf_flags` in C), as the core reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MfFlags(c_int);

impl MfFlags {
    /// No flags: poison.
    pub(crate) const NONE: Self = Self(0);

    /// `MF_UPSTREAM`: the failure entered in mode `off`. 0 without
    /// `CONFIG_DEV_PAGEMAP_FAILURE_TEST`.
    pub(crate) const UPSTREAM: Self = Self(bindings::mf_flags_MF_UPSTREAM as c_int);

    /// `MF_MEM_PRE_REMOVE`: the memory is going away.
    const REMOVAL: Self = Self(bindings::mf_flags_MF_MEM_PRE_REMOVE as c_int);

    /// The flags a C caller passed.
    pub(crate) fn from_raw(raw: c_int) -> Self {
        Self(raw)
    }

    /// The flags for C.
    pub(crate) fn raw(self) -> c_int {
        self.0
    }

    /// Both sets of flags.
    pub(crate) fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// These flags, and `MF_MEM_PRE_REMOVE`.
    pub(crate) fn removal(self) -> Self {
        self.with(Self::REMOVAL)
    }

    /// Whether the memory is going away (`MF_MEM_PRE_REMOVE`), rather than poisoned.
    pub(crate) fn is_removal(self) -> bool {
        self.0 & Self::REMOVAL.0 != 0
    }

    /// Whether the failure entered with the ranged core on: no `MF_UPSTREAM`, which is always
    /// so in a kernel without the test option.
    pub(crate) fn is_ranged(self) -> bool {
        self.0 & Self::UPSTREAM.0 == 0
    }
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
        flags: MfFlags,
        settlement: &mut Settlement,
        fallback: Option<Fallback<'_, '_>>,
    ) -> Result<(), ClaimError> {
        // SAFETY: `raw` is live and `registry` is its registry (type invariant).
        unsafe {
            self.registry
                .dispatch(self.raw, failure, flags, settlement, fallback)
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
pub(crate) unsafe fn with_dax_device<R>(
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
