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
    ffi::c_int,
    new_mutex, new_srcu,
    prelude::*,
    rbtree::{RBTree, RBTreeNodeReservation},
    str::{BStr, CStr},
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, Mutex, Srcu,
    },
};

use super::range::{split, Range, RangeError, Segment};

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

/// Who owns a claim: the `ops` and `data` a registrant passed to `dax_failure_register()`.
#[derive(Clone, Copy)]
pub(crate) struct Owner {
    ops: *const bindings::dax_failure_ops,
    data: *mut c_void,
}

// SAFETY: An `Owner` is only two pointers that the registrant promised (see `Owner::new`) stay
// valid until its claim is unregistered; the handler they lead to may be called from any task.
unsafe impl Send for Owner {}

// SAFETY: As above; `Owner` has no interior mutability.
unsafe impl Sync for Owner {}

impl Owner {
    /// Wraps a registrant's handler.
    ///
    /// # Safety
    ///
    /// `ops` must point to a `struct dax_failure_ops` whose `notify_failure` is set, and `ops`,
    /// its `name` and `data` must stay valid until the claim made with this owner has been
    /// unregistered (or the registry freed).
    pub(crate) unsafe fn new(ops: *const bindings::dax_failure_ops, data: *mut c_void) -> Self {
        Self { ops, data }
    }

    /// The owner's name, for logs and debugfs.
    pub(crate) fn name(&self) -> &CStr {
        // SAFETY: `ops` is valid by the invariant of `Owner::new`.
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

    /// Calls the owner's handler for `range` (bytes of the dax_device).
    ///
    /// # Safety
    ///
    /// The caller is inside the SRCU read-side section of the registry that holds the claim,
    /// and found the claim there, so the claim has not been unregistered yet.
    unsafe fn notify(
        &self,
        dax_dev: *mut bindings::dax_device,
        range: Range,
        flags: c_int,
    ) -> c_int {
        // SAFETY: `ops` is valid (invariant of `Owner::new`) and stays valid while the claim is
        // registered, which the caller guarantees for the duration of the call.
        let Some(notify) = (unsafe { (*self.ops).notify_failure }) else {
            return EOPNOTSUPP.to_errno();
        };
        // SAFETY: The handler's contract is the C one documented in
        // include/linux/dev_pagemap_failure.h; `data` is what the owner registered.
        unsafe { notify(dax_dev, self.data, range.start(), range.len(), flags) }
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

/// What the registry mutex protects.
struct Claims {
    /// Claims keyed by the first byte after them (unique, since claims are non-empty and
    /// pairwise disjoint), so that the claim covering a byte is found in one descent.
    tree: RBTree<u64, Claim>,
    /// The device is gone: no new claims, no more dispatches.
    dead: bool,
    name: [u8; NAME_LEN],
}

impl Claims {
    /// The part from `pos` on of the claim that covers `pos`, or else the first claim after
    /// `pos`, if it starts before `end`; with `untold_only`, the first such claim that has not
    /// seen a removal yet. Marks it as having seen the removal if `pre_remove`.
    ///
    /// Clipping at `pos` keeps what a dispatch sees sorted and disjoint even when claims
    /// change between two lookups (a claim unregistered while its handler ran, and a new one
    /// registered over its tail).
    fn next_from(
        &mut self,
        pos: u64,
        end: u64,
        pre_remove: bool,
        untold_only: bool,
    ) -> Option<(Range, Owner)> {
        // Claims are keyed by their end, so the first claim ending after `pos` is found in one
        // descent: it covers `pos` or, claims being disjoint, is the first one after it. No
        // claim ends after `u64::MAX`.
        let mut cursor = self.tree.cursor_lower_bound_mut(&pos.checked_add(1)?)?;
        loop {
            let (_, claim) = cursor.current_mut();
            if claim.range.end() <= pos || claim.range.start() >= end {
                return None;
            }
            if !(untold_only && claim.pre_removed) {
                if pre_remove {
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
        // The only candidate is the first claim ending after `range` starts: every claim before
        // it ends at or before that, and every claim after it starts after the candidate, so
        // it overlaps `range` only if the candidate does.
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

/// How a dispatch went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Handler calls made, one per claim that overlapped the failure.
    pub(crate) calls: u64,
    /// Parts of the failure that nobody claimed.
    pub(crate) unclaimed: u64,
    /// Handler calls that declined the failure (`-EOPNOTSUPP`); their parts went to the
    /// fallback like unclaimed ones.
    pub(crate) declined: u64,
    /// The first error a handler or the fallback returned.
    pub(crate) error: Option<c_int>,
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
    /// call per claim with exactly the overlapping part, and passes the parts nobody claims
    /// to `unclaimed`, in ascending order.
    ///
    /// Fails with [`ClaimError::Dead`] if the device is gone.
    ///
    /// # Safety
    ///
    /// `dax_dev` is the dax_device this registry belongs to, valid for the duration of the
    /// call; it is passed to the handlers.
    pub(crate) unsafe fn dispatch(
        &self,
        dax_dev: *mut bindings::dax_device,
        failure: Range,
        mf_flags: c_int,
        unclaimed: impl FnMut(Range) -> Result<(), c_int>,
        trace: impl FnMut(&Owner, Range, c_int),
    ) -> Result<Outcome, ClaimError> {
        let _srcu = self.srcu.read_lock();
        if self.claims.lock().dead {
            return Err(ClaimError::Dead);
        }
        // SAFETY: We are inside `srcu`; `dax_dev` is the caller's guarantee.
        Ok(unsafe { self.deliver(dax_dev, failure, mf_flags, false, unclaimed, trace) })
    }

    /// The body of [`Registry::dispatch`] and [`Registry::kill`]: with `untold_only`, claims
    /// that have seen a removal are passed over (their parts count as unclaimed).
    ///
    /// # Safety
    ///
    /// The caller is inside `self.srcu`, and `dax_dev` is as for [`Registry::dispatch`].
    unsafe fn deliver(
        &self,
        dax_dev: *mut bindings::dax_device,
        failure: Range,
        mf_flags: c_int,
        untold_only: bool,
        mut unclaimed: impl FnMut(Range) -> Result<(), c_int>,
        mut trace: impl FnMut(&Owner, Range, c_int),
    ) -> Outcome {
        let pre_remove = mf_flags & bindings::mf_flags_MF_MEM_PRE_REMOVE as c_int != 0;
        // Look the claims up one at a time, dropping the mutex in between, so that handlers
        // run without it; `split` checks that what we hand it is sorted and disjoint.
        let mut pos = failure.start();
        let claims = core::iter::from_fn(|| {
            // A claim that reached the end of the failure was the last one: no lookup.
            if pos >= failure.end() {
                return None;
            }
            let next = self
                .claims
                .lock()
                .next_from(pos, failure.end(), pre_remove, untold_only);
            if let Some((range, _)) = next {
                pos = range.end();
            }
            next
        });
        let mut outcome = Outcome::default();
        for segment in split(failure, claims) {
            let result = match segment {
                Ok(Segment::Claimed { range, owner }) => {
                    outcome.calls += 1;
                    self.stats.dispatches.add(1, Relaxed);
                    self.stats.dispatched_bytes.add(range.len(), Relaxed);
                    // SAFETY: The caller is inside `srcu` and we found the claim after it
                    // entered.
                    let ret = unsafe { owner.notify(dax_dev, range, mf_flags) };
                    trace(&owner, range, ret);
                    if ret == EOPNOTSUPP.to_errno() {
                        // The owner declines (e.g. XFS cannot look poison up without
                        // rmapbt): the range is as good as unclaimed.
                        outcome.declined += 1;
                        unclaimed(range)
                    } else if ret < 0 {
                        self.stats.handler_errors.add(1, Relaxed);
                        Err(ret)
                    } else {
                        Ok(())
                    }
                }
                Ok(Segment::Unclaimed(range)) => {
                    outcome.unclaimed += 1;
                    unclaimed(range)
                }
                // `next_from` clips every claim at the position reached, so what `split` sees
                // is sorted and disjoint; this cannot happen.
                Err(_) => Err(EIO.to_errno()),
            };
            if let Err(e) = result {
                outcome.error.get_or_insert(e);
            }
        }
        outcome
    }

    /// Marks the device gone, after announcing the removal to every owner that has not heard
    /// of it yet, and waits for in-flight dispatches.
    ///
    /// # Safety
    ///
    /// As for [`Registry::dispatch`].
    pub(crate) unsafe fn kill(
        &self,
        dax_dev: *mut bindings::dax_device,
        trace: impl FnMut(&Owner, Range, c_int),
    ) {
        // Dead first: a claim registered while we walk must fail rather than miss the news.
        self.claims.lock().dead = true;
        {
            let _srcu = self.srcu.read_lock();
            let everything = Range::EVERYTHING;
            let flags = bindings::mf_flags_MF_MEM_PRE_REMOVE as c_int;
            // SAFETY: We are inside `srcu`; `dax_dev` is the caller's guarantee.
            unsafe { self.deliver(dax_dev, everything, flags, true, |_| Ok(()), trace) };
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
