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
    ffi::{c_int, c_long},
    prelude::*,
    str::CStr,
    sync::{Arc, ArcBorrow},
};

use crate::claims::Name;
use crate::outcome::{Delivery, Fallback, Settlement};
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
/// registry if it has one. Only [`with_dax_device`] makes one, for the duration of a closure.
///
/// # Invariants
///
/// `raw` is a live dax_device and `registry` is its registry, or `None` if it had none when the
/// entry point began.
pub(crate) struct DaxDevice {
    raw: *mut bindings::dax_device,
    registry: Option<Arc<Registry>>,
}

impl DaxDevice {
    /// The device's registry, if it has one: a device without one has never been claimed.
    pub(crate) fn registry(&self) -> Option<&Registry> {
        self.registry.as_deref()
    }

    /// The device's registry, or [`ClaimError::Unknown`] if it has none and so no claims: for
    /// the entry points that act on an existing claim.
    pub(crate) fn claims(&self) -> Result<&Registry, ClaimError> {
        self.registry().ok_or(ClaimError::Unknown)
    }

    /// The device's registry, made if it has none yet: for a new claim.
    pub(crate) fn claims_or_new(&self) -> Result<Arc<Registry>, ClaimError> {
        if let Some(registry) = &self.registry {
            return Ok(registry.clone());
        }
        // SAFETY: `raw` is live (type invariant).
        unsafe { registry_of(self.raw) }.map_err(|e| {
            if e == ENXIO {
                ClaimError::Dead
            } else {
                ClaimError::NoMemory
            }
        })
    }

    /// The device's name (after its block device), for logs.
    pub(crate) fn name(&self) -> Name {
        // SAFETY: `raw` is live (type invariant).
        unsafe { name_of(self.raw) }
    }

    /// [`Registry::dispatch`] on this device; a device without a registry has no claims, and
    /// all of `failure` goes to `fallback`.
    pub(crate) fn dispatch(
        &self,
        failure: Range,
        flags: MfFlags,
        settlement: &mut Settlement,
        fallback: Option<Fallback<'_, '_>>,
    ) -> Result<(), ClaimError> {
        let Some(registry) = &self.registry else {
            settlement.record(failure, Delivery::Unclaimed, fallback);
            return Ok(());
        };
        // SAFETY: `raw` is live and `registry` is its registry (type invariant).
        unsafe { registry.dispatch(self.raw, failure, flags, settlement, fallback) }
    }
}

/// The name of `raw` (its block device's, empty before `dax_add_host()`).
///
/// # Safety
///
/// `raw` is a live dax_device the caller holds a reference to for the duration of the call.
unsafe fn name_of(raw: *mut bindings::dax_device) -> Name {
    // SAFETY: `raw` is live (the caller's guarantee); `dax_failure_name()` gives a
    // NUL-terminated array in it, which is copied before the call returns.
    let name = unsafe { CStr::from_char_ptr(bindings::dax_failure_name(raw)) };
    Name::new(name.to_bytes())
}

/// What a dax_device holds in place of a registry (see `dax_failure_registry()` in
/// drivers/dax/super.c).
enum Slot {
    /// No registry yet: nothing ever claimed a byte of the device.
    Empty,
    /// The device was killed before it had a registry.
    Dead,
    /// The registry, with a reference of our own.
    Live(Arc<Registry>),
}

/// What `raw` holds in place of a registry.
///
/// # Safety
///
/// `raw` is a live dax_device the caller holds a reference to for the duration of the call.
unsafe fn slot(raw: *mut bindings::dax_device) -> Slot {
    // SAFETY: `raw` is live (the caller's guarantee).
    let registry = unsafe { bindings::dax_failure_registry(raw) };
    if registry.is_null() {
        return Slot::Empty;
    }
    // SAFETY: Pointer test only.
    if unsafe { bindings::IS_ERR(registry.cast()) } {
        return Slot::Dead;
    }
    // SAFETY: drivers/dax/super.c keeps in each dax_device the pointer that
    // `install()` installed (an `Arc<Registry>` turned into a raw pointer), and the
    // acquire in `dax_failure_registry()` pairs with the fully ordered exchange that installed
    // it; it is released by `dax_failure_registry_free()` only when the dax_device is freed,
    // after the caller's reference is gone. The borrow ends within this statement, with a
    // reference of our own taken.
    Slot::Live(unsafe { ArcBorrow::from_raw(registry.cast::<Registry>()) }.into())
}

/// Installs `new` (a pointer from `Arc::into_raw()`, or an `ERR_PTR()` for a device killed
/// without a registry) in `raw` if it has nothing yet; returns whether it did.
///
/// # Safety
///
/// `raw` is a live dax_device the caller holds a reference to for the duration of the call.
unsafe fn install(raw: *mut bindings::dax_device, new: *const Registry) -> bool {
    // SAFETY: `raw` is live (the caller's guarantee); the exchange only stores `new` where
    // there was NULL.
    unsafe { bindings::dax_failure_registry_install(raw, new.cast_mut().cast()) }.is_null()
}

/// The registry of `raw`, made and installed if it has none yet: a device pays for one only
/// from its first claim. `ENXIO` if the device was killed without one; `ENOMEM`.
///
/// # Safety
///
/// `raw` is a live dax_device from `alloc_dax()` the caller holds a reference to for the
/// duration of the call.
unsafe fn registry_of(raw: *mut bindings::dax_device) -> Result<Arc<Registry>> {
    // SAFETY: `raw` is live (the caller's guarantee), here and below.
    match unsafe { slot(raw) } {
        Slot::Live(registry) => return Ok(registry),
        Slot::Dead => return Err(ENXIO),
        Slot::Empty => {}
    }
    let registry = Registry::new()?;
    // SAFETY: As above. `dax_add_host()`, which names the device, precedes every claim.
    registry.set_name(unsafe { name_of(raw) });
    debugfs::list(&registry)?;
    let device_ref = registry.clone().into_raw();
    // SAFETY: As above.
    if unsafe { install(raw, device_ref) } {
        return Ok(registry);
    }
    // Another claim, or the kill, got there first: use what it installed.
    // SAFETY: `device_ref` came from `Arc::into_raw()` above and was not installed.
    drop(unsafe { Arc::from_raw(device_ref) });
    debugfs::unlist(&registry);
    // SAFETY: As above.
    match unsafe { slot(raw) } {
        Slot::Live(registry) => Ok(registry),
        Slot::Dead | Slot::Empty => Err(ENXIO),
    }
}

/// Runs `f` with the dax_device behind `raw`; `-EINVAL` (logged) for NULL, `-ENXIO` for a
/// device killed before it had a registry. `f` cannot keep the [`DaxDevice`]: it lives only as
/// long as the C caller's reference, which outlasts the entry point.
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
    let registry = match unsafe { slot(raw) } {
        Slot::Live(registry) => Some(registry),
        Slot::Empty => None,
        Slot::Dead => return Err(ENXIO),
    };
    // INVARIANT: `raw` is live for the duration of this call and `registry` is its registry,
    // if it has one.
    Ok(f(&DaxDevice { raw, registry }))
}

/// `ERR_PTR(e)`: what a dax_device killed without a registry holds in its place.
fn err_ptr<T>(e: Error) -> *const T {
    // SAFETY: `ERR_PTR()` only encodes the errno in a pointer value.
    unsafe { bindings::ERR_PTR(e.to_errno() as c_long) }
        .cast_const()
        .cast()
}

/// Drops the registry of a dax_device that is being freed.
///
/// # Safety
///
/// `raw` is what a dax_device that is gone held in place of a registry: null, an `ERR_PTR()`,
/// or the registry that `registry_of()` installed.
#[export]
pub(crate) unsafe extern "C" fn dax_failure_registry_free(
    raw: *mut bindings::dax_failure_registry,
) {
    // SAFETY: Pointer tests only.
    if raw.is_null() || unsafe { bindings::IS_ERR(raw.cast()) } {
        return;
    }
    // SAFETY: `raw` came from `Arc::into_raw()` in `registry_of()` and this is
    // the matching release (the caller's guarantee).
    let registry = unsafe { Arc::from_raw(raw.cast_const().cast::<Registry>()) };
    debugfs::unlist(&registry);
}

/// The device is going away: announces the removal to every claim that has not been told yet
/// (one call each) and refuses claims and dispatches from now on. In mode `off` this is what
/// upstream's `kill_dax()` does for the holder. A device without a registry has no claim to
/// tell: it is marked dead without one, so that a claim racing with the kill fails.
///
/// # Safety
///
/// `dax_dev` is null or a live dax_device the caller holds a reference to.
#[export]
pub(crate) unsafe extern "C" fn dax_failure_kill(dax_dev: *mut bindings::dax_device) {
    if dax_dev.is_null() {
        return;
    }
    // SAFETY: `dax_dev` is live (the caller's guarantee), here and below.
    let slot = match unsafe { slot(dax_dev) } {
        Slot::Empty => {
            // SAFETY: As above.
            if unsafe { install(dax_dev, err_ptr(ENXIO)) } {
                return;
            }
            // A claim installed a registry first: kill that.
            // SAFETY: As above.
            unsafe { slot(dax_dev) }
        }
        slot => slot,
    };
    if let Slot::Live(registry) = slot {
        // SAFETY: `dax_dev` is live and `registry` is its registry.
        unsafe { registry.kill(dax_dev, mode().flags()) };
    }
}
