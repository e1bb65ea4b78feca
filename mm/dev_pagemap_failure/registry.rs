// SPDX-License-Identifier: GPL-2.0

//! The claims on one dax_device and the dispatch of failures to their owners.
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
use crate::range::{split, Range, RangeError, Segment};

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
/// `ops` points to a `struct dax_failure_ops` whose handler is `notify`, and `ops`, its `name`
/// and `data` stay valid until the claim made with this owner has been removed from its
/// registry and the registry's SRCU grace period that follows has ended.
#[derive(Clone, Copy)]
pub(crate) struct Owner {
    ops: *const bindings::dax_failure_ops,
    notify: Handler,
    data: *mut c_void,
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
        let notify = unsafe { (*ops).notify_failure }?;
        // INVARIANT: `notify` is the handler of `ops`; validity is the caller's guarantee.
        Some(Self { ops, notify, data })
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

/// What the registry mutex protects.
///
/// # Invariants
///
/// The claims in `tree` are pairwise disjoint, and each is stored under the key
/// `claim.range.end()`, the first byte after it (unique, since claims are non-empty and
/// disjoint). So the first claim whose key exceeds a byte covers that byte or is the first
/// claim after it, and the tree's order is the claims' order.
struct Claims {
    /// The claims, keyed by their end.
    tree: RBTree<u64, Claim>,
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

    /// Whether `range` overlaps a claim already in the tree.
    fn overlaps(&self, range: &Range) -> bool {
        // The only candidate is the first claim ending after `range` starts (type invariant):
        // every claim before it ends at or before that, and every claim after it starts after
        // the candidate, so it overlaps `range` only if the candidate does.
        range
            .start()
            .checked_add(1)
            .and_then(|after_start| self.tree.cursor_lower_bound(&after_start))
            .is_some_and(|cursor| cursor.current().1.range.overlaps(range))
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
    /// The range overlaps a claim: `-EBUSY`.
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

    /// Claims `range` (bytes of the device) for `owner`.
    pub(crate) fn register(&self, range: Range, owner: Owner) -> Result<(), ClaimError> {
        // Allocate before locking, so that the mutex is never held across reclaim.
        let reservation =
            RBTreeNodeReservation::new(GFP_KERNEL).map_err(|_| ClaimError::NoMemory)?;
        let mut claims = self.claims.lock();
        if claims.dead {
            return Err(ClaimError::Dead);
        }
        if claims.overlaps(&range) {
            return Err(ClaimError::Overlap);
        }
        let claim = Claim {
            range,
            owner,
            pre_removed: false,
        };
        // INVARIANT: `range` overlaps no claim (checked above) and is keyed by its end.
        claims
            .tree
            .insert(reservation.into_node(range.end(), claim));
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
    /// cannot fall between them. Whether the claim has heard of a removal carries over.
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
        {
            let mut claims = self.claims.lock();
            match claims.tree.get_mut(&range.end()) {
                Some(claim) if claim.range == range && claim.owner.data() == old_data => {
                    claim.owner = owner;
                }
                _ => return Err(ClaimError::Unknown),
            }
        }
        Ok(())
    }

    /// Removes the claim of exactly `range` made with `data`, like [`Registry::unregister`],
    /// but without waiting for a call of its handler in flight: for callers that must not
    /// sleep on the handlers (device-mapper swapping tables while its device is suspended,
    /// which a handler's I/O may be waiting for). [`Registry::synchronize`] waits; `data`
    /// must stay valid until then.
    pub(crate) fn detach(&self, range: Range, data: *mut c_void) -> Result<(), ClaimError> {
        let mut claims = self.claims.lock();
        match claims.tree.get(&range.end()) {
            Some(claim) if claim.range == range && claim.owner.data() == data => {}
            _ => return Err(ClaimError::Unknown),
        }
        claims.tree.remove(&range.end());
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
    /// is one (see [`Settlement::record`]).
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
                    self.stats.dispatches.add(1, Relaxed);
                    self.stats.dispatched_bytes.add(range.len(), Relaxed);
                    // SAFETY: The caller is inside `srcu` and we found the claim after it
                    // entered.
                    let ret = unsafe { owner.notify(dax_dev, range, mf_flags) };
                    trace(name, &owner, range, mf_flags, ret);
                    let delivery = Delivery::of_errno(ret);
                    if let Delivery::Failed(_) = delivery {
                        self.stats.handler_errors.add(1, Relaxed);
                    }
                    (range, delivery)
                }
                Ok(Segment::Unclaimed(range)) => (range, Delivery::Unclaimed),
                // `next_from` clips every claim at the position reached, so what `split` sees
                // is sorted and disjoint; this cannot happen.
                Err(_) => (failure, Delivery::Failed(EIO.to_errno())),
            };
            settlement.record(part, delivery, fallback.as_deref_mut());
        }
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

    /// Calls `f` for each claim, in order, under the mutex (for debugfs).
    pub(crate) fn for_each_claim(&self, mut f: impl FnMut(Range, &Owner)) {
        let claims = self.claims.lock();
        for (_, claim) in claims.tree.iter() {
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
