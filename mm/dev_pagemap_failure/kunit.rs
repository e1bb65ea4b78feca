// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of the core, only with `CONFIG_DEV_PAGEMAP_FAILURE_KUNIT_TEST`: the range
//! algebra once more in the kernel, and the registry on private registries (suite
//! `dev_pagemap_failure`); the C entry points on real dax_devices are in `kunit_ffi.rs`
//! (suite `dev_pagemap_failure_ffi`). The fixtures below are shared by both.

use core::ffi::c_void;

use kernel::{
    bindings,
    ffi::c_int,
    prelude::*,
    sync::atomic::{Acquire, Atomic, Relaxed, Release},
    time::{delay::fsleep, Delta},
};

use crate::registry::Owner;

/// What a test claimant saw; the claim's `data` points to it.
pub(crate) struct Recorder {
    pub(crate) calls: Atomic<u64>,
    pub(crate) offset: Atomic<u64>,
    pub(crate) len: Atomic<u64>,
    pub(crate) flags: Atomic<i32>,
    /// Set by the handler on entry.
    pub(crate) entered: Atomic<bool>,
    /// While set, the handler sleeps before returning, for at most [`HOLD_LIMIT_MS`].
    pub(crate) hold: Atomic<bool>,
    /// Calls that gave up holding after [`HOLD_LIMIT_MS`].
    pub(crate) held_too_long: Atomic<u32>,
    /// What the handler returns.
    pub(crate) ret: Atomic<i32>,
}

impl Recorder {
    pub(crate) fn new() -> Self {
        Self {
            calls: Atomic::new(0),
            offset: Atomic::new(0),
            len: Atomic::new(0),
            flags: Atomic::new(0),
            entered: Atomic::new(false),
            hold: Atomic::new(false),
            held_too_long: Atomic::new(0),
            ret: Atomic::new(0),
        }
    }

    pub(crate) fn data(&self) -> *mut c_void {
        core::ptr::from_ref(self).cast_mut().cast()
    }

    pub(crate) fn owner(&self) -> Result<Owner> {
        // SAFETY: `RECORD_OPS` is static; every test unregisters or drops the registry
        // before its recorder goes away.
        unsafe { Owner::new(&raw const RECORD_OPS.0, self.data()) }.ok_or(EINVAL)
    }

    /// The recorder as the owner of a shared claim, like a stacking driver's.
    pub(crate) fn shared_owner(&self) -> Result<Owner> {
        // SAFETY: As for `owner()`.
        unsafe { Owner::new(&raw const SHARED_RECORD_OPS.0, self.data()) }.ok_or(EINVAL)
    }

    pub(crate) fn seen(&self) -> (u64, u64, u64) {
        (
            self.calls.load(Relaxed),
            self.offset.load(Relaxed),
            self.len.load(Relaxed),
        )
    }
}

/// How long a held handler waits for `hold` to clear. A failed KUnit assertion ends the test's
/// thread without running destructors, so nothing may rely on the test to release a handler: it
/// releases itself, and the test counts that as a failure (`held_too_long`).
pub(crate) const HOLD_LIMIT_MS: u32 = 10_000;

/// The test claimants' handler.
///
/// # Safety
///
/// `data` points to a live [`Recorder`].
unsafe extern "C" fn record(
    _dax_dev: *mut bindings::dax_device,
    data: *mut c_void,
    offset: u64,
    len: u64,
    flags: c_int,
) -> c_int {
    // SAFETY: Every test claim is made with a pointer to a live `Recorder` as `data`.
    let rec = unsafe { &*data.cast_const().cast::<Recorder>() };
    rec.offset.store(offset, Relaxed);
    rec.len.store(len, Relaxed);
    rec.flags.store(flags, Relaxed);
    rec.calls.add(1, Relaxed);
    rec.entered.store(true, Release);
    let mut waited = 0;
    while rec.hold.load(Acquire) {
        if waited == HOLD_LIMIT_MS {
            rec.held_too_long.add(1, Relaxed);
            break;
        }
        fsleep(Delta::from_millis(1));
        waited += 1;
    }
    rec.ret.load(Relaxed)
}

pub(crate) struct SyncOps(pub(crate) bindings::dax_failure_ops);

// SAFETY: The ops are immutable and the name is a static string.
unsafe impl Sync for SyncOps {}

pub(crate) static RECORD_OPS: SyncOps = SyncOps(bindings::dax_failure_ops {
    // `as_char_ptr()` is not const; the kernel's `c_char` is `u8`, hence the cast.
    #[allow(clippy::disallowed_methods)]
    name: c"kunit".as_ptr().cast(),
    notify_failure: Some(record),
    shared: false,
});

pub(crate) static SHARED_RECORD_OPS: SyncOps = SyncOps(bindings::dax_failure_ops {
    #[allow(clippy::disallowed_methods)]
    name: c"kunit-shared".as_ptr().cast(),
    notify_failure: Some(record),
    shared: true,
});

#[kunit_tests(dev_pagemap_failure)]
mod tests {
    use kernel::{
        bindings,
        ffi::c_int,
        prelude::*,
        sync::atomic::{Acquire, Atomic, Relaxed, Release},
        sync::Arc,
        time::{delay::fsleep, Delta},
        workqueue,
    };

    use super::Recorder;
    use crate::outcome::{not_handled, Delivery, Settlement};
    use crate::range::{split, Range, RangeError, Segment};
    use crate::registry::{ClaimError, Registry};
    const TOP: u64 = u64::MAX;

    /// A range literal, checked when the test is compiled rather than when it runs.
    macro_rules! r {
        ($start:expr, $end:expr) => {{
            const RANGE: Range = match Range::new($start, $end) {
                Ok(range) => range,
                Err(_) => panic!("empty range literal"),
            };
            RANGE
        }};
    }

    #[test]
    fn range_constructors_are_checked() {
        assert_eq!(Range::from_len(5, 0), Err(RangeError::Empty));
        assert_eq!(Range::from_len(u64::MAX, 1), Err(RangeError::Overflow));
        assert_eq!(
            Range::from_inclusive(0, u64::MAX),
            Err(RangeError::Overflow)
        );
        assert_eq!(
            Range::from_len(0, u64::MAX).map(|range| range.len()),
            Ok(u64::MAX)
        );
    }

    #[test]
    fn split_yields_claims_and_gaps_in_order() {
        let claims = [(r!(10, 20), 1u32), (r!(30, 40), 2u32)];
        let mut it = split(r!(0, 50), claims.iter().copied());
        assert_eq!(it.next(), Some(Ok(Segment::Unclaimed(r!(0, 10)))));
        assert_eq!(
            it.next(),
            Some(Ok(Segment::Claimed {
                range: r!(10, 20),
                owner: 1
            }))
        );
        assert_eq!(it.next(), Some(Ok(Segment::Unclaimed(r!(20, 30)))));
        assert_eq!(
            it.next(),
            Some(Ok(Segment::Claimed {
                range: r!(30, 40),
                owner: 2
            }))
        );
        assert_eq!(it.next(), Some(Ok(Segment::Unclaimed(r!(40, 50)))));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn split_at_the_top_of_u64() {
        let claims = [(r!(TOP - 10, TOP), ())];
        let mut it = split(r!(TOP - 20, TOP), claims.iter().copied());
        assert_eq!(
            it.next(),
            Some(Ok(Segment::Unclaimed(r!(TOP - 20, TOP - 10))))
        );
        assert_eq!(
            it.next(),
            Some(Ok(Segment::Claimed {
                range: r!(TOP - 10, TOP),
                owner: ()
            }))
        );
        assert_eq!(it.next(), None);
    }
    /// The table of `outcome.rs`: what each delivery means for the fallback and the caller.
    #[test]
    fn outcomes_settle_as_documented() {
        let part = r!(0, 0x1000);
        let eio = EIO.to_errno();
        assert_eq!(not_handled(), EOPNOTSUPP.to_errno());
        assert_eq!(Delivery::of_errno(0), Delivery::Taken);
        assert_eq!(Delivery::of_errno(1), Delivery::Taken);
        assert_eq!(Delivery::of_errno(not_handled()), Delivery::Declined);
        assert_eq!(Delivery::of_errno(eio), Delivery::Failed(eio));

        // Nothing delivered, or a part left without a fallback: not handled.
        let mut settlement = Settlement::default();
        assert_eq!(settlement.errno(), not_handled());
        settlement.record(part, Delivery::Taken, None);
        assert_eq!(settlement.errno(), 0);
        settlement.record(part, Delivery::Declined, None);
        assert_eq!(settlement.errno(), not_handled());

        // The fallback gets exactly the declined and unclaimed parts; the first error wins.
        let mut seen = 0u64;
        let mut fallback = |range: Range| -> Result<(), c_int> {
            seen += range.len();
            Ok(())
        };
        let mut settlement = Settlement::default();
        settlement.record(part, Delivery::Taken, Some(&mut fallback));
        settlement.record(r!(0x1000, 0x3000), Delivery::Unclaimed, Some(&mut fallback));
        settlement.record(r!(0x3000, 0x4000), Delivery::Declined, Some(&mut fallback));
        assert_eq!(settlement.errno(), 0);
        settlement.record(part, Delivery::Failed(eio), Some(&mut fallback));
        settlement.record(
            part,
            Delivery::Failed(ENOMEM.to_errno()),
            Some(&mut fallback),
        );
        assert_eq!(settlement.errno(), eio);
        assert_eq!(
            (settlement.taken, settlement.unclaimed, settlement.declined),
            (1, 1, 1)
        );
        assert_eq!(seen, 0x3000);
        let mut failing = |_: Range| -> Result<(), c_int> { Err(eio) };
        let mut settlement = Settlement::default();
        settlement.record(part, Delivery::Unclaimed, Some(&mut failing));
        assert_eq!(settlement.errno(), eio);
    }

    /// Dispatches `failure` on `registry` (no dax_device: the test handler ignores it) and
    /// returns what became of it and the parts that went to the fallback.
    fn dispatch(registry: &Registry, failure: Range) -> (Settlement, KVec<Range>) {
        dispatch_flags(registry, failure, 0)
    }

    /// [`dispatch`] with `MF_*` flags.
    fn dispatch_flags(
        registry: &Registry,
        failure: Range,
        flags: c_int,
    ) -> (Settlement, KVec<Range>) {
        let mut gaps = KVec::new();
        let mut settlement = Settlement::default();
        let mut fallback = |gap| -> Result<(), c_int> {
            gaps.push(gap, GFP_KERNEL).map_err(|_| ENOMEM.to_errno())
        };
        // SAFETY: The test handler does not use the dax_device.
        let ret = unsafe {
            registry.dispatch(
                core::ptr::null_mut(),
                failure,
                flags,
                &mut settlement,
                Some(&mut fallback),
            )
        };
        assert!(ret.is_ok());
        (settlement, gaps)
    }

    #[test]
    fn each_claimant_gets_exactly_its_subrange_once() -> Result {
        let registry = Registry::new()?;
        let (a, b) = (Recorder::new(), Recorder::new());
        assert_eq!(registry.register(r!(0x1000, 0x3000), a.owner()?), Ok(()));
        assert_eq!(registry.register(r!(0x5000, 0x8000), b.owner()?), Ok(()));

        let (outcome, gaps) = dispatch(&registry, r!(0, 0x9000));
        assert_eq!(outcome.taken, 2);
        assert_eq!(outcome.errno(), 0);
        assert_eq!(a.seen(), (1, 0x1000, 0x2000));
        assert_eq!(b.seen(), (1, 0x5000, 0x3000));
        assert_eq!(
            &gaps[..],
            &[r!(0, 0x1000), r!(0x3000, 0x5000), r!(0x8000, 0x9000)]
        );

        // A failure that starts inside one claim and ends inside the next.
        let (outcome, gaps) = dispatch(&registry, r!(0x2000, 0x6000));
        assert_eq!(outcome.taken, 2);
        assert_eq!(a.seen(), (2, 0x2000, 0x1000));
        assert_eq!(b.seen(), (2, 0x5000, 0x1000));
        assert_eq!(&gaps[..], &[r!(0x3000, 0x5000)]);

        // Entirely in the gap: nobody is called.
        let (outcome, gaps) = dispatch(&registry, r!(0x3000, 0x4000));
        assert_eq!(outcome.taken, 0);
        assert_eq!(&gaps[..], &[r!(0x3000, 0x4000)]);
        assert_eq!((a.seen().0, b.seen().0), (2, 2));

        assert_eq!(registry.unregister(r!(0x1000, 0x3000), a.data()), Ok(()));
        assert_eq!(registry.unregister(r!(0x5000, 0x8000), b.data()), Ok(()));
        assert_eq!(registry.stats.claims.load(Relaxed), 0);
        Ok(())
    }

    #[test]
    fn claims_at_the_top_of_u64() -> Result {
        let registry = Registry::new()?;
        let rec = Recorder::new();
        let top = r!(TOP - 0x2fff, TOP);
        // Not page-aligned at the end, but the registry itself only needs non-empty ranges.
        assert_eq!(registry.register(top, rec.owner()?), Ok(()));
        let (outcome, gaps) = dispatch(&registry, r!(0, TOP));
        assert_eq!(outcome.taken, 1);
        assert_eq!(rec.seen(), (1, TOP - 0x2fff, 0x2fff));
        assert_eq!(&gaps[..], &[r!(0, TOP - 0x2fff)]);
        assert_eq!(registry.unregister(top, rec.data()), Ok(()));
        Ok(())
    }

    /// Sleeps until `cond` holds, for at most about `ms` milliseconds.
    fn wait_until(ms: u32, cond: impl Fn() -> bool) -> bool {
        for _ in 0..ms {
            if cond() {
                return true;
            }
            fsleep(Delta::from_millis(1));
        }
        cond()
    }

    /// State shared between a test and its work items.
    struct Shared {
        registry: Arc<Registry>,
        rec: Recorder,
        /// The owner a replacement hands a claim to.
        other: Recorder,
        started: Atomic<u32>,
        done: Atomic<u32>,
        errors: Atomic<u32>,
    }

    impl Shared {
        fn new() -> Result<Arc<Self>> {
            Ok(Arc::new(
                Shared {
                    registry: Registry::new()?,
                    rec: Recorder::new(),
                    other: Recorder::new(),
                    started: Atomic::new(0),
                    done: Atomic::new(0),
                    errors: Atomic::new(0),
                },
                GFP_KERNEL,
            )?)
        }
    }

    #[test]
    fn unregister_waits_for_the_handler_in_flight() -> Result {
        let shared = Shared::new()?;
        let claim = r!(0x1000, 0x2000);
        assert_eq!(shared.registry.register(claim, shared.rec.owner()?), Ok(()));
        // Released below; if an assertion fails first, the handler releases itself after
        // `HOLD_LIMIT_MS` (the test's thread ends without running destructors).
        shared.rec.hold.store(true, Release);

        let s = shared.clone();
        workqueue::system_long().try_spawn(GFP_KERNEL, move || {
            let (outcome, _) = dispatch(&s.registry, r!(0, 0x3000));
            if outcome.taken != 1 {
                s.errors.add(1, Relaxed);
            }
            s.done.fetch_add(1, Release);
        })?;
        assert!(wait_until(5000, || shared.rec.entered.load(Acquire)));

        let s = shared.clone();
        workqueue::system_long().try_spawn(GFP_KERNEL, move || {
            if s.registry
                .unregister(r!(0x1000, 0x2000), s.rec.data())
                .is_err()
            {
                s.errors.add(1, Relaxed);
            }
            s.done.fetch_add(1, Release);
        })?;
        // The handler is held: neither the dispatch nor the unregistration may finish.
        fsleep(Delta::from_millis(100));
        assert_eq!(shared.done.load(Acquire), 0);
        // New dispatches no longer find the claim, even while the old one is in flight.
        assert!(wait_until(5000, || shared
            .registry
            .stats
            .claims
            .load(Relaxed)
            == 0));
        let (outcome, _) = dispatch(&shared.registry, r!(0, 0x3000));
        assert_eq!(outcome.taken, 0);

        shared.rec.hold.store(false, Release);
        assert!(wait_until(5000, || shared.done.load(Acquire) == 2));
        assert_eq!(shared.errors.load(Relaxed), 0);
        assert_eq!(shared.rec.calls.load(Relaxed), 1);
        assert_eq!(shared.rec.held_too_long.load(Relaxed), 0);
        let (outcome, _) = dispatch(&shared.registry, r!(0, 0x3000));
        assert_eq!(outcome.taken, 0);
        assert_eq!(shared.rec.calls.load(Relaxed), 1);
        Ok(())
    }

    /// Registry churn: 4 workers make 10^5 registrations, replacements and removals between
    /// them while the test dispatches over all their slots without a pause. Every dispatch
    /// accounts for each byte once (taken by a claim or left unclaimed: exclusive claims never
    /// overlap), and dispatches found claims while the churn ran, so the two overlapped.
    #[test]
    fn registry_churn_overlaps_dispatch() -> Result {
        const WORKERS: u64 = 4;
        const SLOTS: u64 = 8;
        const OPS: u64 = 100_000;
        // Three operations a round: register, replace, detach (or unregister).
        const ROUNDS: u64 = OPS.div_ceil(3 * WORKERS);
        const SPAN: u64 = SLOTS * WORKERS * 0x1000;
        let shared = Shared::new()?;
        for worker in 0..WORKERS {
            let s = shared.clone();
            workqueue::system_long().try_spawn(GFP_KERNEL, move || {
                s.started.fetch_add(1, Release);
                for round in 0..ROUNDS {
                    // Each worker owns its own slots, so registration never conflicts.
                    let start = (round % SLOTS * WORKERS + worker) * 0x1000;
                    let (Ok(range), Ok(first), Ok(second)) = (
                        Range::from_len(start, 0x1000),
                        s.rec.owner(),
                        s.other.owner(),
                    ) else {
                        s.errors.add(1, Relaxed);
                        break;
                    };
                    let ok = s.registry.register(range, first).is_ok()
                        && s.registry.replace(range, s.rec.data(), second).is_ok()
                        // Mostly without waiting for the handlers, as dm does at a swap.
                        && if round % 64 == 0 {
                            s.registry.unregister(range, s.other.data()).is_ok()
                        } else {
                            s.registry.detach(range, s.other.data()).is_ok()
                        };
                    if !ok {
                        s.errors.add(1, Relaxed);
                    }
                }
                s.registry.synchronize();
                s.done.fetch_add(1, Release);
            })?;
        }
        assert!(wait_until(10_000, || shared.started.load(Acquire) > 0));
        let (mut dispatches, mut overlapped, mut miscounted) = (0u64, 0u64, 0u64);
        while shared.done.load(Acquire) < WORKERS as u32 && dispatches < 10_000_000 {
            let (outcome, gaps) = dispatch(&shared.registry, r!(0, SPAN));
            let unclaimed: u64 = gaps.iter().map(|gap| gap.len()).sum();
            if unclaimed + outcome.taken * 0x1000 != SPAN {
                miscounted += 1;
            }
            if outcome.taken > 0 {
                overlapped += 1;
            }
            dispatches += 1;
        }
        assert!(wait_until(60_000, || shared.done.load(Acquire) == WORKERS as u32));
        pr_info!(
            "registry churn: {} operations, {} dispatches, {} of them found claims\n",
            3 * ROUNDS * WORKERS,
            dispatches,
            overlapped
        );
        assert_eq!(miscounted, 0);
        assert!(overlapped > 0);
        assert_eq!(shared.errors.load(Relaxed), 0);
        assert_eq!(shared.registry.stats.claims.load(Relaxed), 0);
        let (outcome, _) = dispatch(&shared.registry, r!(0, SPAN));
        assert_eq!(outcome.taken, 0);
        Ok(())
    }

    /// Two routes over the same bytes and a third over part of them, as two dm devices (or
    /// two targets of one table) over one pmem range give, next to a filesystem's claim.
    #[test]
    fn shared_claims_overlap_and_each_hears_once() -> Result {
        let registry = Registry::new()?;
        let (a, b, c, fs) = (
            Recorder::new(),
            Recorder::new(),
            Recorder::new(),
            Recorder::new(),
        );
        let ab = r!(0x1000, 0x3000);
        assert_eq!(registry.register(ab, a.shared_owner()?), Ok(()));
        assert_eq!(registry.register(ab, b.shared_owner()?), Ok(()));
        assert_eq!(
            registry.register(r!(0x2000, 0x5000), c.shared_owner()?),
            Ok(())
        );
        assert_eq!(registry.register(r!(0x6000, 0x7000), fs.owner()?), Ok(()));
        // Owners of the bytes overlap nothing; the same route cannot claim twice.
        let other = Recorder::new();
        assert_eq!(
            registry.register(r!(0x2000, 0x3000), other.owner()?),
            Err(ClaimError::Overlap)
        );
        assert_eq!(
            registry.register(r!(0x6000, 0x8000), other.shared_owner()?),
            Err(ClaimError::Overlap)
        );
        assert_eq!(
            registry.register(ab, a.shared_owner()?),
            Err(ClaimError::Overlap)
        );
        assert_eq!(registry.stats.claims.load(Relaxed), 4);

        // Poison over all of them: one call each, with exactly its part.
        let (outcome, gaps) = dispatch(&registry, r!(0, 0x8000));
        assert_eq!((outcome.taken, outcome.errno()), (4, 0));
        assert_eq!(a.seen(), (1, 0x1000, 0x2000));
        assert_eq!(b.seen(), (1, 0x1000, 0x2000));
        assert_eq!(c.seen(), (1, 0x2000, 0x3000));
        assert_eq!(fs.seen(), (1, 0x6000, 0x1000));
        assert_eq!(
            &gaps[..],
            &[r!(0, 0x1000), r!(0x5000, 0x6000), r!(0x7000, 0x8000)]
        );

        // One route declines (nobody above it took the failure): what it covers goes to the
        // fallback once, though the other routes took it.
        b.ret.store(not_handled(), Relaxed);
        let (outcome, gaps) = dispatch(&registry, r!(0x1800, 0x2800));
        assert_eq!((outcome.taken, outcome.declined), (2, 1));
        assert_eq!(a.seen(), (2, 0x1800, 0x1000));
        assert_eq!(b.seen(), (2, 0x1800, 0x1000));
        assert_eq!(c.seen(), (2, 0x2000, 0x800));
        assert_eq!(&gaps[..], &[r!(0x1800, 0x2800)]);
        b.ret.store(0, Relaxed);

        // A removal announced over part of the device, then the device dying: every claim
        // hears of the removal exactly once.
        let removal = bindings::mf_flags_MF_MEM_PRE_REMOVE as c_int;
        let (outcome, _) = dispatch_flags(&registry, r!(0x1000, 0x2000), removal);
        assert_eq!(outcome.taken, 2);
        // SAFETY: The test handler does not use the dax_device.
        unsafe { registry.kill(core::ptr::null_mut(), 0) };
        assert_eq!(
            (a.seen().0, b.seen().0, c.seen().0, fs.seen().0),
            (3, 3, 3, 2)
        );
        assert_eq!(c.seen(), (3, 0x2000, 0x3000));
        assert_ne!(c.flags.load(Relaxed) & removal, 0);
        Ok(())
    }

    #[test]
    fn shared_claims_are_told_apart_by_their_data() -> Result {
        let registry = Registry::new()?;
        let (a, b, next) = (Recorder::new(), Recorder::new(), Recorder::new());
        let range = r!(0x1000, 0x2000);
        assert_eq!(registry.register(range, a.shared_owner()?), Ok(()));
        assert_eq!(registry.register(range, b.shared_owner()?), Ok(()));
        // A table reload hands a's claim over; b's stays.
        assert_eq!(
            registry.replace(range, a.data(), next.shared_owner()?),
            Ok(())
        );
        assert_eq!(
            registry.replace(range, a.data(), next.shared_owner()?),
            Err(ClaimError::Unknown)
        );
        // Not to an owner that claims the range already, nor across kinds.
        assert_eq!(
            registry.replace(range, next.data(), b.shared_owner()?),
            Err(ClaimError::Overlap)
        );
        assert_eq!(
            registry.replace(range, b.data(), b.owner()?),
            Err(ClaimError::Unknown)
        );
        let (outcome, _) = dispatch(&registry, range);
        assert_eq!(outcome.taken, 2);
        assert_eq!((a.seen().0, b.seen().0, next.seen().0), (0, 1, 1));
        assert_eq!(
            registry.unregister(range, a.data()),
            Err(ClaimError::Unknown)
        );
        assert_eq!(registry.detach(range, b.data()), Ok(()));
        assert_eq!(registry.unregister(range, next.data()), Ok(()));
        assert_eq!(registry.stats.claims.load(Relaxed), 0);
        let (outcome, gaps) = dispatch(&registry, range);
        assert_eq!(outcome.taken, 0);
        assert_eq!(&gaps[..], &[range]);
        Ok(())
    }
}
