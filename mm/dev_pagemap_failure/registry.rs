// SPDX-License-Identifier: GPL-2.0

//! The claims on one dax_device and the dispatch of failures to their owners.
//!
//! An exclusive claim (a filesystem's) owns its bytes and overlaps no other claim; shared
//! claims (device-mapper's routes) may overlap one another, never an exclusive one. A failure
//! reaches every claim it overlaps once, with exactly the overlapping part.
//!
//! # Locking
//!
//! A [`Registry`] has two synchronisation objects with separate jobs:
//!
//! * `claims`, a mutex, protects the tree of claims and the `dead` flag. It is held only to
//!   look up, insert or remove claims: O(log n) work, never across an owner's handler, never
//!   across an allocation (registration reserves its tree node before taking it).
//! * `srcu` makes teardown wait for handlers. [`Registry::dispatch`] enters an SRCU read-side
//!   section before its first lookup and leaves it after its last handler returns; handlers
//!   run inside it and may sleep. [`Registry::unregister`] removes the claim under the mutex,
//!   so no later lookup can find it, then waits for an SRCU grace period, which ends only when
//!   every dispatch that might have found the claim has returned. Hence after `unregister`
//!   returns, the claim's handler is not running and never runs again.
//!
//! A handler must therefore not unregister a claim of the registry that is calling it (it
//! would wait for itself); it may register and unregister claims of other registries, which
//! is what device-mapper's handler does when it passes a failure up the stack.

use core::ffi::c_void;

use kernel::{
    bindings,
    ffi::{c_char, c_int},
    new_mutex, new_srcu,
    prelude::*,
    rbtree::{RBTree, RBTreeNodeReservation},
    str::{BStr, CStr},
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, Mutex, Srcu,
    },
    tracepoint::declare_trace,
};

use crate::outcome::{Delivery, Fallback, Settlement};
use crate::range::{split, Coalesce, Overlay, Range, RangeError, Segment};

declare_trace! {
    /// One call to an owner's handler: device, byte range, `MF_*` flags, owner, result.
    unsafe fn dax_failure_dispatch(dev: *const c_char, offset: u64, len: u64, flags: c_int,
                                   owner: *const c_char, ret: c_int);
}

/// Length of the name shown in logs and debugfs, including the terminating NUL.
pub(crate) const NAME_LEN: usize = 32;

/// A device name: NUL-terminated, at most `NAME_LEN - 1` bytes.
#[derive(Clone, Copy)]
pub(crate) struct Name([u8; NAME_LEN]);

impl Name {
    /// The name without its NUL.
    pub(crate) fn as_bstr(&self) -> &BStr {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(NAME_LEN - 1);
        BStr::from_bytes(&self.0[..len])
    }

    /// The NUL-terminated name, for C.
    pub(crate) fn as_char_ptr(&self) -> *const kernel::ffi::c_char {
        self.0.as_ptr()
    }
}

/// The handler of a claim's owner, as `struct dax_failure_ops` declares it.
type Handler =
    unsafe extern "C" fn(*mut bindings::dax_device, *mut c_void, u64, u64, c_int) -> c_int;

/// Who owns a claim: the `ops` and `data` a registrant passed to `dax_failure_register()`.
///
/// # Invariants
///
/// `ops` points to a `struct dax_failure_ops` whose handler is `notify` and whose `shared` is
/// `shared`, and `ops`, its `name` and `data` stay valid until the claim made with this owner
/// has been removed from its registry and the registry's SRCU grace period that follows has
/// ended.
#[derive(Clone, Copy)]
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
    /// must stay valid until the claim made with this owner has been removed from its registry
    /// and the registry's SRCU grace period that follows has ended ([`Registry::unregister`]
    /// or [`Registry::synchronize`] returned), or the registry has been freed.
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
        // SAFETY: `ops` is valid by the type invariant.
        let name = unsafe { (*self.ops).name };
        if name.is_null() {
            return c"(unnamed)";
        }
        // SAFETY: `name` is a NUL-terminated string that lives as long as `ops`.
        unsafe { CStr::from_char_ptr(name) }
    }

    /// The `data` the owner registered with; identifies a claim together with its range.
    fn data(&self) -> *mut c_void {
        self.data
    }

    /// Calls the owner's handler for `range` (bytes of the dax_device); returns what it
    /// returned.
    ///
    /// # Safety
    ///
    /// The caller is inside the SRCU read-side section of the registry that holds the claim,
    /// and found the claim there after entering it, so the grace period that would end the
    /// owner's validity has not ended.
    unsafe fn notify(
        &self,
        dax_dev: *mut bindings::dax_device,
        range: Range,
        flags: c_int,
    ) -> c_int {
        // SAFETY: By the type invariant and the caller's guarantee `ops` and `data` are still
        // valid; the handler's contract is the C one documented in
        // include/linux/dev_pagemap_failure.h, and `data` is what the owner registered.
        unsafe { (self.notify)(dax_dev, self.data, range.start(), range.len(), flags) }
    }
}

/// One claim: `range` of the device belongs to `owner`.
struct Claim {
    range: Range,
    owner: Owner,
    /// Whether a `MF_MEM_PRE_REMOVE` failure has been delivered to this claim already, so
    /// that device teardown does not announce the removal twice.
    pre_removed: bool,
}

/// Which claims a lookup finds, and whether it marks them as told of a removal.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Every claim; nothing is marked (poison).
    Failure,
    /// Every claim, each marked as told (a removal).
    Removal,
    /// Only claims not yet told of a removal, each then marked (the device dying).
    UntoldRemoval,
}

/// The key of a shared claim: its start, its end and a serial number that tells apart claims
/// of the same range. Ordered by start first.
type SharedKey = (u64, u64, u64);

/// What the registry mutex protects.
///
/// # Invariants
///
/// * The claims in `tree` (exclusive owners) are pairwise disjoint, and each is stored under
///   the key `claim.range.end()`, the first byte after it (unique, since claims are non-empty
///   and disjoint). So the first claim whose key exceeds a byte covers that byte or is the
///   first claim after it, and the tree's order is the claims' order.
/// * The claims in `shared` (owners that pass failures on) may overlap one another but no
///   claim in `tree`. Each is stored under `(start, end, serial)` with a `serial` below
///   `next_serial` used by no other claim, so no two have the same key, and no two have the
///   same range and owner data.
struct Claims {
    /// The exclusive claims, keyed by their end.
    tree: RBTree<u64, Claim>,
    /// The shared claims, in order of start.
    shared: RBTree<SharedKey, Claim>,
    next_serial: u64,
    /// The device is gone: no new claims, no more dispatches.
    dead: bool,
    name: [u8; NAME_LEN],
}

impl Claims {
    /// The part from `pos` on of the claim that covers `pos`, or else the first claim after
    /// `pos`, if it starts before `end`; with [`Pass::UntoldRemoval`], the first such claim
    /// that has not been told of a removal yet. A removal pass marks the claim as told.
    ///
    /// Clipping at `pos` keeps what a dispatch sees sorted and disjoint even when claims
    /// change between two lookups (a claim unregistered while its handler ran, and a new one
    /// registered over its tail).
    fn next_from(&mut self, pos: u64, end: u64, pass: Pass) -> Option<(Range, Owner)> {
        // By the type invariant the first claim ending after `pos` covers `pos` or is the
        // first one after it, and is found in one descent. No claim ends after `u64::MAX`.
        let mut cursor = self.tree.cursor_lower_bound_mut(&pos.checked_add(1)?)?;
        loop {
            let (_, claim) = cursor.current_mut();
            if claim.range.end() <= pos || claim.range.start() >= end {
                return None;
            }
            if !(pass == Pass::UntoldRemoval && claim.pre_removed) {
                if pass != Pass::Failure {
                    claim.pre_removed = true;
                }
                let range = Range::new(claim.range.start().max(pos), claim.range.end()).ok()?;
                return Some((range, claim.owner));
            }
            cursor = cursor.move_next()?;
        }
    }

    /// The first shared claim after the one keyed `after` (from the first one if `None`) that
    /// overlaps `within`, with its key; with [`Pass::UntoldRemoval`], the first such claim not
    /// told of a removal yet. A removal pass marks it as told.
    ///
    /// Shared claims may overlap, so one that starts before `within` may still reach into it:
    /// the walk starts at the first shared claim and skips those that end before `within`.
    /// Only stacking drivers make shared claims, a few per device.
    fn next_shared(
        &mut self,
        after: Option<SharedKey>,
        within: &Range,
        pass: Pass,
    ) -> Option<(SharedKey, Range, Owner)> {
        let mut cursor = match after {
            Some(key) => self.shared.cursor_lower_bound_mut(&key)?,
            None => self.shared.cursor_front_mut()?,
        };
        loop {
            let (&key, claim) = cursor.current_mut();
            if claim.range.start() >= within.end() {
                return None;
            }
            if Some(key) != after
                && claim.range.end() > within.start()
                && !(pass == Pass::UntoldRemoval && claim.pre_removed)
            {
                if pass != Pass::Failure {
                    claim.pre_removed = true;
                }
                return Some((key, claim.range, claim.owner));
            }
            cursor = cursor.move_next()?;
        }
    }

    /// Whether `range` overlaps an exclusive claim.
    fn overlaps_exclusive(&self, range: &Range) -> bool {
        // The only candidate is the first claim ending after `range` starts (type invariant):
        // every claim before it ends at or before that, and every claim after it starts after
        // the candidate, so it overlaps `range` only if the candidate does.
        range
            .start()
            .checked_add(1)
            .and_then(|after_start| self.tree.cursor_lower_bound(&after_start))
            .is_some_and(|cursor| cursor.current().1.range.overlaps(range))
    }

    /// Whether `range` overlaps a shared claim.
    fn overlaps_shared(&self, range: &Range) -> bool {
        self.shared
            .iter()
            .take_while(|(_, claim)| claim.range.start() < range.end())
            .any(|(_, claim)| claim.range.overlaps(range))
    }

    /// The key of the shared claim of exactly `range` made with `data`.
    fn find_shared(&mut self, range: &Range, data: *mut c_void) -> Option<SharedKey> {
        // Only the mutable cursor moves.
        let mut cursor = self
            .shared
            .cursor_lower_bound_mut(&(range.start(), range.end(), 0))?;
        loop {
            let (&key, claim) = cursor.current();
            if claim.range != *range {
                return None;
            }
            if claim.owner.data() == data {
                return Some(key);
            }
            cursor = cursor.move_next()?;
        }
    }
}

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

/// The owners of the ranges of one dax_device.
#[pin_data]
pub(crate) struct Registry {
    #[pin]
    claims: Mutex<Claims>,
    #[pin]
    srcu: Srcu,
    pub(crate) stats: Stats,
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

impl Registry {
    /// Creates an empty registry for a new dax_device.
    pub(crate) fn new() -> Result<Arc<Self>> {
        let mut name = [0u8; NAME_LEN];
        name[..3].copy_from_slice(b"dax");
        Arc::pin_init(
            try_pin_init!(Self {
                claims <- new_mutex!(Claims {
                    tree: RBTree::new(),
                    shared: RBTree::new(),
                    next_serial: 0,
                    dead: false,
                    name,
                }),
                srcu <- new_srcu!(),
                stats: Stats::new(),
            }),
            GFP_KERNEL,
        )
    }

    /// Names the device (e.g. after its block device) for logs and debugfs.
    pub(crate) fn set_name(&self, name: &[u8]) {
        let mut claims = self.claims.lock();
        let len = name.len().min(NAME_LEN - 1);
        claims.name = [0; NAME_LEN];
        claims.name[..len].copy_from_slice(&name[..len]);
    }

    /// A copy of the device's name (the mutex is not held once this returns).
    pub(crate) fn name(&self) -> Name {
        Name(self.claims.lock().name)
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
        let claim = Claim {
            range,
            owner,
            pre_removed: false,
        };
        if owner.is_shared() {
            return self.register_shared(claim);
        }
        // Allocate before locking, so that the mutex is never held across reclaim.
        let reservation =
            RBTreeNodeReservation::new(GFP_KERNEL).map_err(|_| ClaimError::NoMemory)?;
        let mut claims = self.claims.lock();
        if claims.dead {
            return Err(ClaimError::Dead);
        }
        if claims.overlaps_exclusive(&range) || claims.overlaps_shared(&range) {
            return Err(ClaimError::Overlap);
        }
        // INVARIANT: `range` overlaps no claim (checked above) and is keyed by its end.
        claims
            .tree
            .insert(reservation.into_node(range.end(), claim));
        self.stats.claims.add(1, Relaxed);
        Ok(())
    }

    /// [`Registry::register`] of a shared claim.
    fn register_shared(&self, claim: Claim) -> Result<(), ClaimError> {
        let reservation =
            RBTreeNodeReservation::new(GFP_KERNEL).map_err(|_| ClaimError::NoMemory)?;
        let mut claims = self.claims.lock();
        if claims.dead {
            return Err(ClaimError::Dead);
        }
        if claims.overlaps_exclusive(&claim.range)
            || claims
                .find_shared(&claim.range, claim.owner.data())
                .is_some()
        {
            return Err(ClaimError::Overlap);
        }
        let serial = claims.next_serial;
        // Registrations are serialised by the mutex and each takes one serial: 2^64 of them
        // do not happen, but never reuse one.
        claims.next_serial = serial.checked_add(1).ok_or(ClaimError::NoMemory)?;
        let key = (claim.range.start(), claim.range.end(), serial);
        // INVARIANT: the claim overlaps no exclusive claim and repeats no range and data
        // (checked above); its serial is new.
        claims.shared.insert(reservation.into_node(key, claim));
        self.stats.claims.add(1, Relaxed);
        Ok(())
    }

    /// Removes the claim of exactly `range` made with `data`, and waits until no handler call
    /// for it is in flight.
    pub(crate) fn unregister(&self, range: Range, data: *mut c_void) -> Result<(), ClaimError> {
        self.detach(range, data)?;
        // No lookup can find the claim any more; wait for the ones that already did.
        self.synchronize();
        Ok(())
    }

    /// Gives the claim of exactly `range` made with `old_data` to `owner`, in one step under
    /// the mutex: every lookup finds the old owner or the new one, never neither, so a failure
    /// cannot fall between them. Whether the claim has heard of a removal carries over. The
    /// old claim must be shared if and only if `owner` is, and `owner` must not claim
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
        let mut claims = self.claims.lock();
        if owner.is_shared() {
            let key = claims
                .find_shared(&range, old_data)
                .ok_or(ClaimError::Unknown)?;
            if owner.data() != old_data && claims.find_shared(&range, owner.data()).is_some() {
                return Err(ClaimError::Overlap);
            }
            let claim = claims.shared.get_mut(&key).ok_or(ClaimError::Unknown)?;
            // INVARIANT: same range and key; the new data claims no other claim of the range
            // (checked above).
            claim.owner = owner;
            return Ok(());
        }
        match claims.tree.get_mut(&range.end()) {
            Some(claim) if claim.range == range && claim.owner.data() == old_data => {
                claim.owner = owner;
                Ok(())
            }
            _ => Err(ClaimError::Unknown),
        }
    }

    /// Removes the claim of exactly `range` made with `data`, like [`Registry::unregister`],
    /// but without waiting for a call of its handler in flight: for callers that must not
    /// sleep on the handlers (device-mapper swapping tables while its device is suspended,
    /// which a handler's I/O may be waiting for). [`Registry::synchronize`] waits; `data`
    /// must stay valid until then.
    pub(crate) fn detach(&self, range: Range, data: *mut c_void) -> Result<(), ClaimError> {
        let mut claims = self.claims.lock();
        match claims.tree.get(&range.end()) {
            Some(claim) if claim.range == range && claim.owner.data() == data => {
                claims.tree.remove(&range.end());
            }
            _ => {
                let key = claims
                    .find_shared(&range, data)
                    .ok_or(ClaimError::Unknown)?;
                claims.shared.remove(&key);
            }
        }
        drop(claims);
        self.stats.claims.add(-1, Relaxed);
        Ok(())
    }

    /// Waits until every handler call that started before is done: after
    /// [`Registry::replace`] or [`Registry::detach`], the old owner is never called again.
    pub(crate) fn synchronize(&self) {
        self.srcu.synchronize();
    }

    /// Hands `failure` (bytes of the device) to the owners of the claims it overlaps, one
    /// call per claim with exactly the overlapping part, and records in `settlement` what
    /// became of each part, in ascending order: parts nobody takes go to `fallback` if there
    /// is one (see [`Settlement::record`]). Where shared claims overlap, a byte goes to the
    /// fallback if an owner of a claim covering it declined.
    ///
    /// Fails with [`ClaimError::Dead`] if the device is gone.
    ///
    /// # Safety
    ///
    /// `dax_dev` is the dax_device this registry belongs to, valid for the duration of the
    /// call; it is passed to the handlers. It may be null for a registry of no device whose
    /// handlers do not use it (benchmarks, tests).
    pub(crate) unsafe fn dispatch(
        &self,
        dax_dev: *mut bindings::dax_device,
        failure: Range,
        mf_flags: c_int,
        settlement: &mut Settlement,
        fallback: Option<Fallback<'_, '_>>,
    ) -> Result<(), ClaimError> {
        let _srcu = self.srcu.read_lock();
        let name = {
            let claims = self.claims.lock();
            if claims.dead {
                return Err(ClaimError::Dead);
            }
            Name(claims.name)
        };
        let removal = mf_flags & bindings::mf_flags_MF_MEM_PRE_REMOVE as c_int != 0;
        let pass = if removal {
            Pass::Removal
        } else {
            Pass::Failure
        };
        // SAFETY: We are inside `srcu`; `dax_dev` is the caller's guarantee.
        unsafe {
            self.deliver(
                dax_dev, &name, failure, mf_flags, pass, settlement, fallback,
            )
        };
        Ok(())
    }

    /// The body of [`Registry::dispatch`] and [`Registry::kill`].
    ///
    /// # Safety
    ///
    /// The caller is inside `self.srcu`, and `dax_dev` is as for [`Registry::dispatch`].
    #[allow(clippy::too_many_arguments)]
    unsafe fn deliver(
        &self,
        dax_dev: *mut bindings::dax_device,
        name: &Name,
        failure: Range,
        mf_flags: c_int,
        pass: Pass,
        settlement: &mut Settlement,
        mut fallback: Option<Fallback<'_, '_>>,
    ) {
        // Look the claims up one at a time, dropping the mutex in between, so that handlers
        // run without it; `split` checks that what we hand it is sorted and disjoint.
        let mut pos = failure.start();
        let claims = core::iter::from_fn(|| {
            // A claim that reached the end of the failure was the last one: no lookup.
            if pos >= failure.end() {
                return None;
            }
            let next = self.claims.lock().next_from(pos, failure.end(), pass);
            if let Some((range, _)) = next {
                pos = range.end();
            }
            next
        });
        for segment in split(failure, claims) {
            let (part, delivery) = match segment {
                Ok(Segment::Claimed { range, owner }) => {
                    // SAFETY: The caller is inside `srcu` and we found the claim after it
                    // entered.
                    let delivery = unsafe { self.call(dax_dev, name, &owner, range, mf_flags) };
                    (range, delivery)
                }
                Ok(Segment::Unclaimed(range)) => {
                    // No exclusive claim here; shared ones may cover it.
                    // SAFETY: The caller's guarantees.
                    unsafe {
                        self.deliver_shared(
                            dax_dev,
                            name,
                            range,
                            mf_flags,
                            pass,
                            settlement,
                            fallback.as_deref_mut(),
                        )
                    };
                    continue;
                }
                // `next_from` clips every claim at the position reached, so what `split` sees
                // is sorted and disjoint; this cannot happen.
                Err(_) => (failure, Delivery::Failed(EIO.to_errno())),
            };
            settlement.record(part, delivery, fallback.as_deref_mut());
        }
    }

    /// Hands the part `within` of a failure, which no exclusive claim touches, to the owners
    /// of the shared claims that overlap it, one call per claim with its part, and sends to
    /// `fallback` what no claim covers or an owner declined ([`Overlay`]).
    ///
    /// # Safety
    ///
    /// As for [`Registry::deliver`].
    #[allow(clippy::too_many_arguments)]
    unsafe fn deliver_shared(
        &self,
        dax_dev: *mut bindings::dax_device,
        name: &Name,
        within: Range,
        mf_flags: c_int,
        pass: Pass,
        settlement: &mut Settlement,
        mut fallback: Option<Fallback<'_, '_>>,
    ) {
        let mut walk = Overlay::new(within);
        let mut stretches = Coalesce::default();
        let mut fall_back = |settlement: &mut Settlement, part: Range| {
            if let Some(stretch) = stretches.push(part) {
                settlement.fall_back(stretch, fallback.as_deref_mut());
            }
        };
        let mut after = None;
        // Lookups in key order, so the claims come sorted by start, as `Overlay` needs, and
        // each is found once however the claims change between lookups.
        loop {
            // A statement of its own, so that the guard is dropped before the handler runs
            // (in a `while let` condition it would live for the whole body).
            let next = self.claims.lock().next_shared(after, &within, pass);
            let Some((key, claim, owner)) = next else {
                break;
            };
            after = Some(key);
            let (part, uncovered) = walk.enter(claim);
            if let Some(uncovered) = uncovered {
                settlement.count(Delivery::Unclaimed);
                fall_back(settlement, uncovered);
            }
            // `next_shared` only finds claims that overlap `within`.
            let Some(part) = part else { continue };
            // SAFETY: The caller is inside `srcu` and we found the claim after it entered.
            let delivery = unsafe { self.call(dax_dev, name, &owner, part, mf_flags) };
            settlement.count(delivery);
            if delivery == Delivery::Declined {
                fall_back(settlement, part);
            }
        }
        if let Some(uncovered) = walk.tail() {
            settlement.count(Delivery::Unclaimed);
            fall_back(settlement, uncovered);
        }
        if let Some(stretch) = stretches.finish() {
            settlement.fall_back(stretch, fallback);
        }
    }

    /// Calls `owner` for `range`, counts and traces the call, and returns what became of it.
    ///
    /// # Safety
    ///
    /// The caller is inside `self.srcu` and found the claim of `owner` after entering it;
    /// `dax_dev` is as for [`Registry::dispatch`].
    unsafe fn call(
        &self,
        dax_dev: *mut bindings::dax_device,
        name: &Name,
        owner: &Owner,
        range: Range,
        mf_flags: c_int,
    ) -> Delivery {
        self.stats.dispatches.add(1, Relaxed);
        self.stats.dispatched_bytes.add(range.len(), Relaxed);
        // SAFETY: The caller's guarantee.
        let ret = unsafe { owner.notify(dax_dev, range, mf_flags) };
        trace(name, owner, range, mf_flags, ret);
        let delivery = Delivery::of_errno(ret);
        if let Delivery::Failed(_) = delivery {
            self.stats.handler_errors.add(1, Relaxed);
        }
        delivery
    }

    /// Marks the device gone, after announcing the removal (`MF_MEM_PRE_REMOVE` and
    /// `mf_flags`) to every owner that has not heard of it yet, and waits for in-flight
    /// dispatches.
    ///
    /// # Safety
    ///
    /// As for [`Registry::dispatch`].
    pub(crate) unsafe fn kill(&self, dax_dev: *mut bindings::dax_device, mf_flags: c_int) {
        // Dead first: a claim registered while we walk must fail rather than miss the news.
        let name = {
            let mut claims = self.claims.lock();
            claims.dead = true;
            Name(claims.name)
        };
        {
            let _srcu = self.srcu.read_lock();
            let flags = bindings::mf_flags_MF_MEM_PRE_REMOVE as c_int | mf_flags;
            // What the owners answer changes nothing: the device is gone either way.
            let mut ignored = Settlement::default();
            // SAFETY: We are inside `srcu`; `dax_dev` is the caller's guarantee.
            unsafe {
                self.deliver(
                    dax_dev,
                    &name,
                    Range::EVERYTHING,
                    flags,
                    Pass::UntoldRemoval,
                    &mut ignored,
                    None,
                )
            };
        }
        self.srcu.synchronize();
    }

    /// Calls `f` for each claim under the mutex (for debugfs): the exclusive ones in order,
    /// then the shared ones in order.
    pub(crate) fn for_each_claim(&self, mut f: impl FnMut(Range, &Owner)) {
        let claims = self.claims.lock();
        let exclusive = claims.tree.values();
        for claim in Iterator::chain(exclusive, claims.shared.values()) {
            f(claim.range, &claim.owner);
        }
    }
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
