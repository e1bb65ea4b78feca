// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of the registry on private registries (suite `dev_pagemap_failure_registry`):
//! dispatch, shared claims, hand-over, and teardown racing handlers in flight. The fixtures are
//! in `kunit.rs`.

use kernel::prelude::*;

#[kunit_tests(dev_pagemap_failure_registry)]
mod tests {
    use kernel::{
        prelude::*,
        sync::atomic::{Acquire, Atomic, Relaxed, Release},
        sync::Arc,
        time::{delay::fsleep, Delta},
        workqueue,
    };

    use crate::ffi::MfFlags;
    use crate::kunit::{r, Recorder};
    use crate::outcome::{Settlement, NOT_HANDLED};
    use crate::range::Range;
    use crate::registry::{ClaimError, Registry};
    const TOP: u64 = u64::MAX;

    /// Dispatches `failure` on `registry` (no dax_device: the test handler ignores it) and
    /// returns what became of it and the parts that went to the fallback.
    fn dispatch(registry: &Registry, failure: Range) -> (Settlement, KVec<Range>) {
        dispatch_flags(registry, failure, MfFlags::NONE)
    }

    /// [`dispatch`] with `MF_*` flags.
    fn dispatch_flags(
        registry: &Registry,
        failure: Range,
        flags: MfFlags,
    ) -> (Settlement, KVec<Range>) {
        let mut gaps = KVec::new();
        let mut settlement = Settlement::default();
        let mut fallback = |gap| -> Result { gaps.push(gap, GFP_KERNEL).map_err(|_| ENOMEM) };
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
        assert_eq!(outcome.result(), Ok(()));
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

    /// What a registry costs: one allocation of this size and nothing per CPU (no SRCU of its
    /// own), so that a device-mapper device with no DAX claims pays only this.
    #[test]
    fn registry_is_small_and_has_no_per_cpu_state() {
        let bytes = core::mem::size_of::<Registry>();
        pr_info!("registry: {} bytes, nothing per CPU\n", bytes);
        // A mutex, a condition variable, two tree roots, counters and a 32-byte name; with
        // lockdep's maps and the mutex debugging fields a debug kernel's is larger.
        let limit = if cfg!(CONFIG_DEBUG_LOCK_ALLOC) {
            512
        } else {
            256
        };
        assert!(bytes <= limit);
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

    /// Teardown waits for its own claim only: while one owner's handler is held (as XFS's is,
    /// waiting for a pinned page to be released), another owner of the same device
    /// unregisters at once, and a detached claim's `synchronize` does not wait for it either.
    #[test]
    fn unregister_does_not_wait_for_another_claims_handler() -> Result {
        let shared = Shared::new()?;
        let (held, quick) = (r!(0x1000, 0x2000), r!(0x4000, 0x5000));
        assert_eq!(shared.registry.register(held, shared.rec.owner()?), Ok(()));
        assert_eq!(
            shared.registry.register(quick, shared.other.owner()?),
            Ok(())
        );
        shared.rec.hold.store(true, Release);
        let s = shared.clone();
        workqueue::system_long().try_spawn(GFP_KERNEL, move || {
            let (outcome, _) = dispatch(&s.registry, r!(0x1000, 0x2000));
            if outcome.taken != 1 {
                s.errors.add(1, Relaxed);
            }
            s.done.fetch_add(1, Release);
        })?;
        assert!(wait_until(5000, || shared.rec.entered.load(Acquire)));
        // Returns while the other handler is held; a wait for it would last HOLD_LIMIT_MS.
        assert_eq!(
            shared.registry.unregister(quick, shared.other.data()),
            Ok(())
        );
        assert_eq!(
            shared.registry.register(quick, shared.other.owner()?),
            Ok(())
        );
        assert_eq!(shared.registry.detach(quick, shared.other.data()), Ok(()));
        shared.registry.synchronize();
        assert!(shared.rec.hold.load(Acquire));
        assert_eq!(shared.done.load(Acquire), 0);
        shared.rec.hold.store(false, Release);
        assert!(wait_until(5000, || shared.done.load(Acquire) == 1));
        assert_eq!(shared.registry.unregister(held, shared.rec.data()), Ok(()));
        assert_eq!(shared.errors.load(Relaxed), 0);
        assert_eq!(shared.rec.held_too_long.load(Relaxed), 0);
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
        assert_eq!((outcome.taken, outcome.result()), (4, Ok(())));
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
        b.ret.store(NOT_HANDLED.to_errno(), Relaxed);
        let (outcome, gaps) = dispatch(&registry, r!(0x1800, 0x2800));
        assert_eq!((outcome.taken, outcome.declined), (2, 1));
        assert_eq!(a.seen(), (2, 0x1800, 0x1000));
        assert_eq!(b.seen(), (2, 0x1800, 0x1000));
        assert_eq!(c.seen(), (2, 0x2000, 0x800));
        assert_eq!(&gaps[..], &[r!(0x1800, 0x2800)]);
        b.ret.store(0, Relaxed);

        // A removal announced over part of the device, then the device dying: every claim
        // hears of the removal exactly once.
        let removal = MfFlags::NONE.removal();
        let (outcome, _) = dispatch_flags(&registry, r!(0x1000, 0x2000), removal);
        assert_eq!(outcome.taken, 2);
        // SAFETY: The test handler does not use the dax_device.
        unsafe { registry.kill(core::ptr::null_mut(), MfFlags::NONE) };
        assert_eq!(
            (a.seen().0, b.seen().0, c.seen().0, fs.seen().0),
            (3, 3, 3, 2)
        );
        assert_eq!(c.seen(), (3, 0x2000, 0x3000));
        assert!(MfFlags::from_raw(c.flags.load(Relaxed)).is_removal());
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
