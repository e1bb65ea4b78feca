// SPDX-License-Identifier: GPL-2.0

//! The dispatch of a failure to the owners of the claims it overlaps: one call per claim, with
//! exactly the overlapping part, and what became of each part recorded in a [`Settlement`].
//!
//! Claims are looked up one at a time under the registry mutex, which is dropped before the
//! handler runs. Each call is counted in flight on its claim by a [`Call`] from the lookup
//! until the handler has returned; teardown waits for exactly those counts (see
//! [`crate::registry`]).

use kernel::{
    bindings,
    ffi::{c_char, c_int},
    prelude::*,
    sync::{atomic::Relaxed, Arc},
    tracepoint::declare_trace,
};

use crate::claims::{Claim, Claims, Name, Pass, SharedKey};
use crate::ffi::MfFlags;
use crate::outcome::{Delivery, Fallback, Settlement};
use crate::range::{split, Coalesce, Overlay, Range, Segment};
use crate::registry::{ClaimError, Registry};

declare_trace! {
    /// One call to an owner's handler: device, byte range, `MF_*` flags, owner, result.
    unsafe fn dax_failure_dispatch(dev: *const c_char, offset: u64, len: u64, flags: c_int,
                                   owner: *const c_char, ret: c_int);
}

/// A call of a claim's handler in flight, from the lookup that found the claim to the end of
/// the handler; uncounted when dropped.
///
/// # Invariants
///
/// The call is counted in `claim`'s calls in flight ([`Claims::begin_call`]), so neither
/// `Registry::unregister` nor `Registry::synchronize` returns while it lives: the claim's
/// owner stays valid for as long as the `Call` can lend it.
struct Call<'r> {
    registry: &'r Registry,
    claim: Arc<Claim>,
}

impl<'r> Call<'r> {
    /// Counts a call of `claim`, which a lookup in `claims`, the registry's locked claims,
    /// just found.
    fn begin(registry: &'r Registry, claims: &mut Claims, claim: Arc<Claim>) -> Self {
        claims.begin_call(&claim);
        // INVARIANT: counted just above.
        Self { registry, claim }
    }

    /// Calls the owner for `range` and returns what became of it; counts and traces the call.
    ///
    /// # Safety
    ///
    /// `dax_dev` is as for [`Registry::dispatch`].
    unsafe fn run(
        &self,
        dax_dev: *mut bindings::dax_device,
        name: &Name,
        range: Range,
        flags: MfFlags,
    ) -> Delivery {
        let stats = &self.registry.stats;
        stats.dispatches.add(1, Relaxed);
        stats.dispatched_bytes.add(range.len(), Relaxed);
        let owner = &self.claim.owner;
        // SAFETY: The call is counted in flight (type invariant); `dax_dev` is the caller's
        // guarantee.
        let result = unsafe { owner.notify(dax_dev, range, flags) };
        let ret = match result {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        };
        // SAFETY: Both strings are NUL-terminated and outlive the call: the name is ours, the
        // owner's stays valid while the call is counted (type invariant).
        unsafe {
            dax_failure_dispatch(
                name.as_char_ptr(),
                range.start(),
                range.len(),
                flags.raw(),
                owner.name().as_char_ptr(),
                ret,
            )
        };
        let delivery = Delivery::of(result);
        if let Delivery::Failed(_) = delivery {
            stats.handler_errors.add(1, Relaxed);
        }
        delivery
    }
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        let mut claims = self.registry.claims.lock();
        if claims.end_call(&self.claim) {
            self.registry.calls_done.notify_all();
        }
    }
}

/// A dispatch in progress; `Registry::kill` waits until none is.
///
/// # Invariants
///
/// Counted in the registry's `dispatches`.
struct Section<'r>(&'r Registry);

impl<'r> Section<'r> {
    /// Enters a dispatch of `registry`, unless its device is gone; returns the device's name.
    fn enter(registry: &'r Registry) -> Result<(Self, Name), ClaimError> {
        let mut claims = registry.claims.lock();
        if claims.dead {
            return Err(ClaimError::Dead);
        }
        claims.dispatches += 1;
        // INVARIANT: counted just above.
        Ok((Self(registry), claims.name))
    }
}

impl Drop for Section<'_> {
    fn drop(&mut self) {
        let mut claims = self.0.claims.lock();
        claims.dispatches = claims.dispatches.saturating_sub(1);
        if claims.dead && claims.dispatches == 0 {
            self.0.calls_done.notify_all();
        }
    }
}

impl Registry {
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
    /// call; it is passed to the handlers. With `CONFIG_DEV_PAGEMAP_FAILURE_TEST` it may be
    /// null for a registry of no device whose handlers do not use it (benchmarks, tests).
    pub(crate) unsafe fn dispatch(
        &self,
        dax_dev: *mut bindings::dax_device,
        failure: Range,
        flags: MfFlags,
        settlement: &mut Settlement,
        fallback: Option<Fallback<'_, '_>>,
    ) -> Result<(), ClaimError> {
        let (_section, name) = Section::enter(self)?;
        let pass = if flags.is_removal() {
            Pass::Removal
        } else {
            Pass::Failure
        };
        // SAFETY: The caller's guarantee.
        unsafe { self.deliver(dax_dev, &name, failure, flags, pass, settlement, fallback) };
        Ok(())
    }

    /// Marks the device gone, after telling every claim not told yet of the removal
    /// (`MF_MEM_PRE_REMOVE` and `flags`), and waits for the dispatches in progress.
    ///
    /// # Safety
    ///
    /// As for [`Registry::dispatch`].
    pub(crate) unsafe fn kill(&self, dax_dev: *mut bindings::dax_device, flags: MfFlags) {
        // Dead first: a claim registered while we walk must fail rather than miss the news.
        let name = {
            let mut claims = self.claims.lock();
            claims.dead = true;
            claims.name
        };
        // What the owners answer changes nothing: the device is gone either way.
        let mut ignored = Settlement::default();
        // SAFETY: The caller's guarantee.
        unsafe {
            self.deliver(
                dax_dev,
                &name,
                Range::EVERYTHING,
                flags.removal(),
                Pass::Untold,
                &mut ignored,
                None,
            )
        };
        let mut claims = self.claims.lock();
        while claims.dispatches > 0 {
            self.calls_done.wait(&mut claims);
        }
    }

    /// The body of [`Registry::dispatch`] and [`Registry::kill`].
    ///
    /// # Safety
    ///
    /// `dax_dev` is as for [`Registry::dispatch`].
    #[allow(clippy::too_many_arguments)]
    unsafe fn deliver(
        &self,
        dax_dev: *mut bindings::dax_device,
        name: &Name,
        failure: Range,
        flags: MfFlags,
        pass: Pass,
        settlement: &mut Settlement,
        mut fallback: Option<Fallback<'_, '_>>,
    ) {
        // Look the claims up one at a time, dropping the mutex in between, so that handlers
        // run without it; `split` checks that what we hand it is sorted and disjoint.
        let mut pos = failure.start();
        let calls = core::iter::from_fn(|| {
            // A claim that reached the end of the failure was the last one: no lookup.
            if pos >= failure.end() {
                return None;
            }
            let mut claims = self.claims.lock();
            let (range, claim) = claims.next_from(pos, failure.end(), pass)?;
            pos = range.end();
            Some((range, Call::begin(self, &mut claims, claim)))
        });
        for segment in split(failure, calls) {
            let (part, delivery) = match segment {
                Ok(Segment::Claimed { range, owner: call }) => {
                    // SAFETY: The caller's guarantee.
                    (range, unsafe { call.run(dax_dev, name, range, flags) })
                }
                Ok(Segment::Unclaimed(range)) => {
                    // No exclusive claim here; shared ones may cover it.
                    // SAFETY: The caller's guarantee.
                    unsafe {
                        self.deliver_shared(
                            dax_dev,
                            name,
                            range,
                            flags,
                            pass,
                            settlement,
                            fallback.as_deref_mut(),
                        )
                    };
                    continue;
                }
                // `next_from` clips every claim at the position reached, so what `split` sees
                // is sorted and disjoint; this cannot happen.
                Err(_) => (failure, Delivery::Failed(EIO)),
            };
            settlement.record(part, delivery, fallback.as_deref_mut());
        }
    }

    /// The next shared claim after `after` that overlaps `within`, with its call counted.
    fn next_shared(
        &self,
        after: Option<SharedKey>,
        within: &Range,
        pass: Pass,
    ) -> Option<(SharedKey, Range, Call<'_>)> {
        let mut claims = self.claims.lock();
        let (key, claim) = claims.next_shared(after, within, pass)?;
        let range = claim.range;
        Some((key, range, Call::begin(self, &mut claims, claim)))
    }

    /// Hands the part `within` of a failure, which no exclusive claim touches, to the owners
    /// of the shared claims that overlap it, one call per claim with its part, and sends to
    /// `fallback` what no claim covers or an owner declined ([`Overlay`]).
    ///
    /// # Safety
    ///
    /// `dax_dev` is as for [`Registry::dispatch`].
    #[allow(clippy::too_many_arguments)]
    unsafe fn deliver_shared(
        &self,
        dax_dev: *mut bindings::dax_device,
        name: &Name,
        within: Range,
        flags: MfFlags,
        pass: Pass,
        settlement: &mut Settlement,
        mut fallback: Option<Fallback<'_, '_>>,
    ) {
        let mut walk = Overlay::new(within);
        let mut stretches = Coalesce::default();
        let mut unhandled = |settlement: &mut Settlement, part: Range| {
            if let Some(stretch) = stretches.push(part) {
                settlement.fallback(stretch, fallback.as_deref_mut());
            }
        };
        let mut after = None;
        // Lookups in key order, so the claims come sorted by start, as `Overlay` needs, and
        // each is found once however the claims change between lookups. The lookup is a
        // statement of its own, so that the mutex is dropped before the handler runs.
        while let Some((key, claim, call)) = self.next_shared(after, &within, pass) {
            after = Some(key);
            let (part, uncovered) = walk.enter(claim);
            if let Some(uncovered) = uncovered {
                settlement.count(Delivery::Unclaimed);
                unhandled(settlement, uncovered);
            }
            // `next_shared` only finds claims that overlap `within`.
            let Some(part) = part else { continue };
            // SAFETY: The caller's guarantee.
            let delivery = unsafe { call.run(dax_dev, name, part, flags) };
            settlement.count(delivery);
            if delivery == Delivery::Declined {
                unhandled(settlement, part);
            }
        }
        if let Some(uncovered) = walk.tail() {
            settlement.count(Delivery::Unclaimed);
            unhandled(settlement, uncovered);
        }
        if let Some(stretch) = stretches.finish() {
            settlement.fallback(stretch, fallback);
        }
    }
}
