// SPDX-License-Identifier: GPL-2.0

//! The registry of one dax_device: who claims which bytes, and the claim lifecycle.
//!
//! A dax_device gets its registry with its first claim (see `registry_of()` in
//! [`crate::ffi`]); a device that is never claimed has none and pays for none.
//!
//! # Locking
//!
//! A [`Registry`] has a mutex and a condition variable:
//!
//! * `claims`, the mutex, protects the [`Claims`]: the trees, each claim's calls in flight,
//!   the count of dispatches in progress and the `dead` flag. It is held only for O(log n)
//!   work: to look up, insert or remove a claim, and to begin or end a call. Never across an
//!   owner's handler, never across an allocation (registration allocates before taking it).
//! * `calls_done` is where teardown waits, with the mutex released while it sleeps. A
//!   dispatch counts each call of a handler in flight on its claim before it drops the mutex,
//!   and uncounts it after the handler returns ([`crate::dispatch`]).
//!   [`Registry::unregister`] takes the claim out of its tree, so no later lookup finds it,
//!   then waits until the calls in flight of that claim, and of no other, have ended. After
//!   it returns the claim's handler is not running and never runs again, while the handlers of
//!   other claims of the same device may still be running.
//!
//! A handler must therefore not unregister its own claim (it would wait for itself), nor kill
//! its own device; it may register and unregister other claims, of any registry, which is
//! what device-mapper's handler does when it passes a failure up the stack.
//!
//! Every registry's mutex and condition variable are of one lockdep class each: no code path
//! holds two registry mutexes at once (the mutex is dropped before any handler runs, and a
//! handler is where one registry reaches another), so lockdep needs no nesting annotation, and
//! one class lets it check the rule across all devices.

use core::ffi::c_void;

use kernel::{
    new_condvar, new_mutex,
    prelude::*,
    rbtree::RBTreeNodeReservation,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, CondVar, Mutex,
    },
};

use crate::claims::{Claim, Claims, Name};
use crate::owner::Owner;
use crate::range::{Range, RangeError};

/// Counters shown in debugfs; monotonic except `claims`.
pub(crate) struct Stats {
    /// Claims currently registered.
    pub(crate) claims: Atomic<i64>,
    /// Calls made to owners' handlers.
    pub(crate) dispatches: Atomic<u64>,
    /// Bytes handed to owners' handlers.
    pub(crate) dispatched_bytes: Atomic<u64>,
    /// Pages nobody claimed that went to the pfn-at-a-time fallback.
    pub(crate) fallback_pages: Atomic<u64>,
    /// Handler calls that returned an error.
    pub(crate) handler_errors: Atomic<u64>,
}

impl Stats {
    fn new() -> Self {
        Self {
            claims: Atomic::new(0),
            dispatches: Atomic::new(0),
            dispatched_bytes: Atomic::new(0),
            fallback_pages: Atomic::new(0),
            handler_errors: Atomic::new(0),
        }
    }
}

/// Failures of the registry's own operations, each mapped to one errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClaimError {
    /// Zero, unaligned or overflowing range, or an owner without a handler: `-EINVAL`.
    Invalid(RangeError),
    /// The range overlaps a claim it may not overlap, or the same owner data claims it
    /// already: `-EBUSY`.
    Overlap,
    /// No claim with that range and data: `-ENOENT`.
    Unknown,
    /// The device is gone: `-ENXIO`.
    Dead,
    /// No memory for the claim: `-ENOMEM`.
    NoMemory,
}

impl ClaimError {
    /// The errno's name, for log lines.
    pub(crate) fn errno_name(&self) -> &'static str {
        match self {
            ClaimError::Invalid(_) => "-EINVAL",
            ClaimError::Overlap => "-EBUSY",
            ClaimError::Unknown => "-ENOENT",
            ClaimError::Dead => "-ENXIO",
            ClaimError::NoMemory => "-ENOMEM",
        }
    }
}

impl From<ClaimError> for Error {
    fn from(e: ClaimError) -> Error {
        match e {
            ClaimError::Invalid(_) => EINVAL,
            ClaimError::Overlap => EBUSY,
            ClaimError::Unknown => ENOENT,
            ClaimError::Dead => ENXIO,
            ClaimError::NoMemory => ENOMEM,
        }
    }
}

/// The owners of the ranges of one dax_device.
#[pin_data]
pub(crate) struct Registry {
    #[pin]
    pub(crate) claims: Mutex<Claims>,
    /// Woken when a call ends that teardown may wait for, see [`Claims::end_call`].
    #[pin]
    pub(crate) calls_done: CondVar,
    pub(crate) stats: Stats,
}

impl Registry {
    /// Creates an empty registry for a new dax_device.
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(Self {
                claims <- new_mutex!(Claims::new()),
                calls_done <- new_condvar!(),
                stats: Stats::new(),
            }),
            GFP_KERNEL,
        )
    }

    /// Names the device (e.g. after its block device) for logs and debugfs.
    pub(crate) fn set_name(&self, name: Name) {
        self.claims.lock().name = name;
    }

    /// A copy of the device's name (the mutex is not held once this returns).
    pub(crate) fn name(&self) -> Name {
        self.claims.lock().name
    }

    /// Whether the device is gone.
    pub(crate) fn is_dead(&self) -> bool {
        self.claims.lock().dead
    }

    /// Claims `range` (bytes of the device) for `owner`: an exclusive claim if the owner owns
    /// the bytes, which then overlaps no other claim; a shared one if it passes failures on
    /// ([`Owner::is_shared`]), which overlaps no exclusive claim but may overlap other shared
    /// ones.
    pub(crate) fn register(&self, range: Range, owner: Owner) -> Result<(), ClaimError> {
        let shared = owner.is_shared();
        // Allocate before locking, so that the mutex is never held across reclaim.
        let claim =
            Arc::new(Claim::new(range, owner), GFP_KERNEL).map_err(|_| ClaimError::NoMemory)?;
        if shared {
            return self.register_shared(claim);
        }
        let reservation =
            RBTreeNodeReservation::new(GFP_KERNEL).map_err(|_| ClaimError::NoMemory)?;
        let mut claims = self.claims.lock();
        if claims.dead {
            return Err(ClaimError::Dead);
        }
        if claims.overlaps_exclusive(&range) || claims.overlaps_shared(&range) {
            return Err(ClaimError::Overlap);
        }
        claims.insert_exclusive(reservation.into_node(range.end(), claim));
        self.stats.claims.add(1, Relaxed);
        Ok(())
    }

    /// [`Registry::register`] of a shared claim.
    fn register_shared(&self, claim: Arc<Claim>) -> Result<(), ClaimError> {
        let reservation =
            RBTreeNodeReservation::new(GFP_KERNEL).map_err(|_| ClaimError::NoMemory)?;
        let range = claim.range;
        let mut claims = self.claims.lock();
        if claims.dead {
            return Err(ClaimError::Dead);
        }
        if claims.overlaps_exclusive(&range)
            || claims.find_shared(&range, claim.owner.data()).is_some()
        {
            return Err(ClaimError::Overlap);
        }
        let serial = claims.take_serial().ok_or(ClaimError::NoMemory)?;
        let key = (range.start(), range.end(), serial);
        claims.insert_shared(reservation.into_node(key, claim));
        self.stats.claims.add(1, Relaxed);
        Ok(())
    }

    /// Removes the claim of exactly `range` made with `data`, and waits until no call of its
    /// handler is in flight. Calls of other claims' handlers do not hold it up.
    pub(crate) fn unregister(&self, range: Range, data: *mut c_void) -> Result<(), ClaimError> {
        let mut claims = self.claims.lock();
        let claim = claims.remove(&range, data).ok_or(ClaimError::Unknown)?;
        self.stats.claims.add(-1, Relaxed);
        // No lookup can find the claim any more; wait for the calls that already did.
        while claim.calls() > 0 {
            self.calls_done.wait(&mut claims);
        }
        Ok(())
    }

    /// Removes the claim of exactly `range` made with `data`, like [`Registry::unregister`],
    /// but without waiting for a call of its handler in flight: for callers that must not
    /// sleep on the handlers (device-mapper swapping tables while its device is suspended,
    /// which a handler's I/O may be waiting for). [`Registry::synchronize`] waits; `data`
    /// must stay valid until then.
    pub(crate) fn detach(&self, range: Range, data: *mut c_void) -> Result<(), ClaimError> {
        self.claims
            .lock()
            .remove(&range, data)
            .ok_or(ClaimError::Unknown)?;
        self.stats.claims.add(-1, Relaxed);
        Ok(())
    }

    /// Gives the claim of exactly `range` made with `old_data` to `owner`, in one step under
    /// the mutex: every lookup finds the old owner or the new one, never neither, so a failure
    /// cannot fall between them. Whether the claim has been told of the removal carries over.
    /// The old claim must be shared if and only if `owner` is, and `owner` must not claim
    /// `range` already.
    ///
    /// Does not wait: a call of the old owner's handler that found the claim before may still
    /// be running. [`Registry::synchronize`] waits for it; the old owner's data must stay
    /// valid until then.
    pub(crate) fn replace(
        &self,
        range: Range,
        old_data: *mut c_void,
        owner: Owner,
    ) -> Result<(), ClaimError> {
        let new_data = owner.data();
        let claim =
            Arc::new(Claim::new(range, owner), GFP_KERNEL).map_err(|_| ClaimError::NoMemory)?;
        let mut claims = self.claims.lock();
        if claims.replace(old_data, claim).is_some() {
            return Ok(());
        }
        let shared_taken = new_data != old_data
            && claims.find_shared(&range, old_data).is_some()
            && claims.find_shared(&range, new_data).is_some();
        Err(if shared_taken {
            ClaimError::Overlap
        } else {
            ClaimError::Unknown
        })
    }

    /// Waits until no call is in flight of a claim that has left (by [`Registry::replace`],
    /// [`Registry::detach`] or [`Registry::unregister`]) before: the old owners are never
    /// called again.
    pub(crate) fn synchronize(&self) {
        let mut claims = self.claims.lock();
        while claims.left_calls() > 0 {
            self.calls_done.wait(&mut claims);
        }
    }

    /// Calls `f` for each claim under the mutex (for debugfs): the exclusive ones in order,
    /// then the shared ones in order.
    pub(crate) fn for_each_claim(&self, mut f: impl FnMut(Range, &Owner)) {
        // The borrow of each owner ends with the mutex held: the claim is registered.
        self.claims
            .lock()
            .for_each(|claim| f(claim.range, &claim.owner));
    }
}
