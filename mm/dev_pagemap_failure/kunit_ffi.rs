// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of the C entry points (`ffi.rs`) on real dax_devices and pagemaps: defined
//! errnos for bad arguments, dispatch, death, hand-over and routes. Suite
//! `dev_pagemap_failure_ffi`; the fixtures are in `kunit.rs`.

use kernel::prelude::*;

#[kunit_tests(dev_pagemap_failure_ffi)]
mod tests {
    use core::ffi::c_void;

    use kernel::{
        bindings,
        ffi::c_int,
        memremap::{DevPagemap, PhysRange},
        page::PAGE_SIZE,
        prelude::*,
        sync::atomic::Relaxed,
    };

    use crate::ffi::claim::{
        dax_failure_detach, dax_failure_register, dax_failure_replace, dax_failure_synchronize,
        dax_failure_unregister,
    };
    use crate::ffi::failure::{dax_failure_notify, dax_failure_route, dev_pagemap_failure};
    use crate::kunit::{Recorder, SyncOps, RECORD_OPS};
    use crate::outcome::NOT_HANDLED;
    use crate::phys_to_pfns;
    use crate::range::{Range, RangeError};

    const PAGE: u64 = PAGE_SIZE as u64;

    const TOP: u64 = u64::MAX;

    /// A pagemap laid out by hand, as a driver would before `memremap_pages()`.
    fn pagemap(first: u64, last: u64) -> bindings::dev_pagemap {
        // SAFETY: `dev_pagemap` is a C struct of integers, pointers and unions of those, for
        // which all-zero bits are valid values (NULL pointers, zero counts); C code allocates
        // pagemaps with kzalloc() for the same reason.
        let mut pgmap: bindings::dev_pagemap = unsafe { core::mem::zeroed() };
        pgmap.nr_range = 1;
        // SAFETY: Writing the `range` variant of the plain-data union.
        unsafe {
            *pgmap.__bindgen_anon_1.range.as_mut() = bindings::range {
                start: first,
                end: last,
            };
        }
        pgmap
    }

    #[test]
    fn pagemap_ranges_become_pfn_ranges() {
        let mut pgmap = pagemap(0x1_0000_0000, 0x1_0000_0000 + 16 * PAGE - 1);
        // SAFETY: `pgmap` lives on this stack frame for the whole test and has one range.
        let dp = unsafe { DevPagemap::from_raw(&raw const pgmap) };
        assert!(dp.is_some());
        let Some(dp) = dp else {
            return;
        };
        assert_eq!(dp.nr_range(), 1);
        let mut ranges = dp.ranges().map(phys_to_pfns);
        assert_eq!(ranges.next(), Some(Range::new(0x10_0000, 0x10_0010)));
        assert_eq!(ranges.next(), None);
        assert!(!dp.has_memory_failure());
        // Without a ranged operation the driver keeps the upstream path.
        // SAFETY: as above.
        let ret = unsafe { dev_pagemap_failure(&raw mut pgmap, 0) };
        assert_eq!(ret, NOT_HANDLED.to_errno());
    }

    #[test]
    fn bad_pagemaps_are_rejected() {
        assert_eq!(
            phys_to_pfns(PhysRange {
                first: 0x1000,
                last: 0x1fff + 1
            }),
            Err(RangeError::Unaligned)
        );
        assert_eq!(
            phys_to_pfns(PhysRange {
                first: 0x2000,
                last: 0x0fff
            }),
            Err(RangeError::Empty)
        );
        // SAFETY: a null pagemap is explicitly allowed.
        let ret = unsafe { dev_pagemap_failure(core::ptr::null_mut(), 0) };
        assert_eq!(ret, EINVAL.to_errno());
    }
    /// A fresh dax_device with no driver, as device-dax allocates them.
    struct TestDax(*mut bindings::dax_device);

    impl TestDax {
        fn new() -> Result<Self> {
            // SAFETY: A NULL `ops` makes a device-dax style dax_device; no private data.
            let dax_dev = unsafe { bindings::alloc_dax(core::ptr::null_mut(), core::ptr::null()) };
            // SAFETY: Pointer test only.
            if unsafe { bindings::IS_ERR(dax_dev.cast_const().cast()) } {
                return Err(ENOMEM);
            }
            Ok(Self(dax_dev))
        }

        fn register(&self, offset: u64, len: u64, rec: &Recorder) -> c_int {
            // SAFETY: The device is live; `RECORD_OPS` is static and `rec` outlives the claim
            // (every test unregisters, or the device dies, before `rec` goes away).
            unsafe {
                dax_failure_register(self.0, offset, len, &raw const RECORD_OPS.0, rec.data())
            }
        }

        fn unregister(&self, offset: u64, len: u64, rec: &Recorder) -> c_int {
            // SAFETY: The device is live.
            unsafe { dax_failure_unregister(self.0, offset, len, rec.data()) }
        }

        fn notify(&self, offset: u64, len: u64, flags: c_int) -> c_int {
            // SAFETY: The device is live.
            unsafe { dax_failure_notify(self.0, offset, len, flags) }
        }

        fn kill(&self) {
            // SAFETY: The device is live; `kill_dax()` may be called more than once.
            unsafe { bindings::kill_dax(self.0) };
        }

        /// What the device holds in place of a registry: NULL, an `ERR_PTR()`, or one.
        fn registry(&self) -> *mut bindings::dax_failure_registry {
            // SAFETY: The device is live.
            unsafe { bindings::dax_failure_registry(self.0) }
        }
    }

    impl Drop for TestDax {
        fn drop(&mut self) {
            self.kill();
            // SAFETY: Drops the reference `alloc_dax()` returned; the device was killed.
            unsafe { bindings::put_dax(self.0) };
        }
    }

    #[test]
    fn registration_errors_have_defined_errnos() -> Result {
        // The recorders outlive the device, whose teardown may still call them.
        let (a, b) = (Recorder::new(), Recorder::new());
        let dax = TestDax::new()?;
        assert_eq!(dax.register(0x1000, 0, &a), EINVAL.to_errno());
        assert_eq!(dax.register(0x1000, 0x800, &a), EINVAL.to_errno());
        assert_eq!(dax.register(0x800, 0x1000, &a), EINVAL.to_errno());
        assert_eq!(dax.register(TOP & !0xfff, 0x2000, &a), EINVAL.to_errno());
        // SAFETY: The device is live; a NULL ops is what is being tested.
        let ret = unsafe { dax_failure_register(dax.0, 0, 0x1000, core::ptr::null(), a.data()) };
        assert_eq!(ret, EINVAL.to_errno());
        // SAFETY: A NULL device is what is being tested.
        let ret = unsafe {
            dax_failure_register(
                core::ptr::null_mut(),
                0,
                0x1000,
                &raw const RECORD_OPS.0,
                a.data(),
            )
        };
        assert_eq!(ret, EINVAL.to_errno());

        assert_eq!(dax.register(0x1000, 0x1000, &a), 0);
        assert_eq!(dax.register(0, 0x2000, &b), EBUSY.to_errno());
        assert_eq!(dax.register(0x1000, 0x1000, &b), EBUSY.to_errno());
        assert_eq!(dax.register(0, TOP & !0xfff, &b), EBUSY.to_errno());
        // Adjacent on both sides is fine.
        assert_eq!(dax.register(0, 0x1000, &b), 0);
        assert_eq!(dax.unregister(0, 0x1000, &b), 0);
        assert_eq!(dax.register(0x2000, 0x1000, &b), 0);

        assert_eq!(dax.unregister(0x3000, 0x1000, &a), ENOENT.to_errno());
        assert_eq!(dax.unregister(0x1000, 0x1000, &b), ENOENT.to_errno());
        assert_eq!(dax.unregister(0x1000, 0x2000, &a), ENOENT.to_errno());
        assert_eq!(dax.unregister(0x1000, 0, &a), EINVAL.to_errno());

        // One call per claim through the C entry point: 0 when the owners took all of it.
        assert_eq!(dax.notify(0x1000, 0x2000, 0), 0);
        assert_eq!(
            (a.seen(), b.seen()),
            ((1, 0x1000, 0x1000), (1, 0x2000, 0x1000))
        );
        // A part nobody claims is the caller's to handle: not handled, the owners still told.
        assert_eq!(dax.notify(0, 0x4000, 0), NOT_HANDLED.to_errno());
        assert_eq!(
            (a.seen(), b.seen()),
            ((2, 0x1000, 0x1000), (2, 0x2000, 0x1000))
        );
        assert_eq!(dax.notify(0x3000, 0x1000, 0), NOT_HANDLED.to_errno());
        assert_eq!(dax.notify(TOP, 2, 0), EINVAL.to_errno());

        // Death announces the removal once to each claim, then refuses everything but
        // unregistration.
        dax.kill();
        // The removal enters at kill_dax(): in mode ranged (the tests' mode) it carries no
        // MF_UPSTREAM to the owners.
        let pre_remove = bindings::mf_flags_MF_MEM_PRE_REMOVE as i32;
        assert_eq!(
            (a.seen(), a.flags.load(Relaxed)),
            ((3, 0x1000, 0x1000), pre_remove)
        );
        assert_eq!(
            (b.seen(), b.flags.load(Relaxed)),
            ((3, 0x2000, 0x1000), pre_remove)
        );
        assert_eq!(dax.register(0x8000, 0x1000, &a), ENXIO.to_errno());
        assert_eq!(dax.notify(0, 0x4000, 0), ENXIO.to_errno());
        dax.kill();
        assert_eq!((a.seen().0, b.seen().0), (3, 3));
        assert_eq!(dax.unregister(0x1000, 0x1000, &a), 0);
        assert_eq!(dax.unregister(0x2000, 0x1000, &b), 0);
        Ok(())
    }

    /// A dax_device pays for a registry only from its first claim: every device-mapper device
    /// has a dax_device, and most are never claimed. One killed before that refuses claims and
    /// failures as a dead registry does.
    #[test]
    fn the_first_claim_makes_the_registry() -> Result {
        let a = Recorder::new();
        let dax = TestDax::new()?;
        assert!(dax.registry().is_null());
        // Bad claims, failures, unknown claims and waits make none.
        assert_eq!(dax.register(0x1000, 0, &a), EINVAL.to_errno());
        assert_eq!(dax.notify(0, 0x1000, 0), NOT_HANDLED.to_errno());
        assert_eq!(dax.unregister(0, 0x1000, &a), ENOENT.to_errno());
        // SAFETY: The device is live.
        unsafe { dax_failure_synchronize(dax.0) };
        assert!(dax.registry().is_null());

        assert_eq!(dax.register(0, 0x1000, &a), 0);
        let registry = dax.registry();
        assert!(!registry.is_null());
        assert_eq!(dax.notify(0, 0x1000, 0), 0);
        assert_eq!(a.seen(), (1, 0, 0x1000));
        // The device keeps it, claimed or not, until it is freed.
        assert_eq!(dax.unregister(0, 0x1000, &a), 0);
        assert_eq!(dax.register(0x1000, 0x1000, &a), 0);
        assert_eq!(dax.registry(), registry);
        assert_eq!(dax.unregister(0x1000, 0x1000, &a), 0);

        let dead = TestDax::new()?;
        dead.kill();
        // SAFETY: Pointer test only.
        assert!(unsafe { bindings::IS_ERR(dead.registry().cast_const().cast()) });
        assert_eq!(dead.register(0, 0x1000, &a), ENXIO.to_errno());
        assert_eq!(dead.notify(0, 0x1000, 0), ENXIO.to_errno());
        assert_eq!(dead.unregister(0, 0x1000, &a), ENXIO.to_errno());
        assert_eq!(a.seen().0, 1);
        Ok(())
    }

    /// The route claimants' handler, as device-mapper's: passes the failure up the route.
    ///
    /// # Safety
    ///
    /// `data` points to a live `struct dax_failure_route` whose upper device is live.
    unsafe extern "C" fn route_handler(
        _dax_dev: *mut bindings::dax_device,
        data: *mut c_void,
        offset: u64,
        len: u64,
        flags: c_int,
    ) -> c_int {
        // SAFETY: Every route claim is made with a pointer to a live route as `data`.
        unsafe { dax_failure_route(data.cast_const().cast(), offset, len, flags) }
    }

    static ROUTE_OPS: SyncOps = SyncOps(bindings::dax_failure_ops {
        #[allow(clippy::disallowed_methods)]
        name: c"kunit-route".as_ptr().cast(),
        notify_failure: Some(route_handler),
        shared: true,
    });

    #[test]
    fn failures_climb_a_striped_route() -> Result {
        // The recorders and the route outlive the devices, whose teardown may still call them.
        let (top, a, b) = (Recorder::new(), Recorder::new(), Recorder::new());
        // Member 1 of a 2-way stripe with 8 KiB chunks: 32 KiB of the lower device from
        // 64 KiB; the target is the first 64 KiB of the upper device.
        let mut route = bindings::dax_failure_route {
            upper: core::ptr::null_mut(),
            lower_start: 0x10000,
            lower_len: 0x8000,
            target_start: 0,
            target_len: 0x10000,
            chunk: 0x2000,
            stripes: 2,
            member: 1,
        };
        let (lower, upper) = (TestDax::new()?, TestDax::new()?);
        route.upper = upper.0;
        let route_data = (&raw mut route).cast::<c_void>();
        assert_eq!(upper.register(0, 0x100000, &top), 0);
        // SAFETY: Both devices are live; `route` outlives the claim (unregistered below).
        let ret = unsafe {
            dax_failure_register(lower.0, 0x10000, 0x8000, &raw const ROUTE_OPS.0, route_data)
        };
        assert_eq!(ret, 0);

        // Chunk 1 of the member is chunk 3 of the target.
        assert_eq!(lower.notify(0x12000, 0x1000, 0), 0);
        assert_eq!(top.seen(), (1, 0x6000, 0x1000));
        // Outside the route: nobody above, so the lower device sees not handled.
        assert_eq!(lower.notify(0x20000, 0x1000, 0), NOT_HANDLED.to_errno());
        assert_eq!(top.seen().0, 1);
        // All of the member poisoned: its four chunks, not the other member's.
        assert_eq!(lower.notify(0x10000, 0x8000, 0), 0);
        assert_eq!(top.seen(), (5, 0xe000, 0x2000));
        // All of the member going away: the whole target, in one call; the rest of the lower
        // device is nobody's, so the lower device hears not handled for it.
        let pre_remove = bindings::mf_flags_MF_MEM_PRE_REMOVE as i32;
        assert_eq!(
            lower.notify(0, 0x100000, pre_remove),
            NOT_HANDLED.to_errno()
        );
        assert_eq!(top.seen(), (6, 0, 0x10000));

        // The mode a failure entered in travels in its flags: a route sees only those. One
        // that entered in mode `off` (MF_UPSTREAM) is not passed up, whatever the mode is now.
        let upstream = bindings::mf_flags_MF_UPSTREAM as i32;
        // SAFETY: `route` is valid and its upper device live.
        let ret = unsafe { dax_failure_route(&raw const route, 0x12000, 0x1000, upstream) };
        assert_eq!(ret, NOT_HANDLED.to_errno());
        assert_eq!(top.seen().0, 6);
        // SAFETY: As above.
        let ret = unsafe { dax_failure_route(&raw const route, 0x12000, 0x1000, 0) };
        assert_eq!(ret, 0);
        assert_eq!(top.seen(), (7, 0x6000, 0x1000));
        assert_eq!(top.flags.load(Relaxed) & upstream, 0);

        // A malformed route is refused with -EINVAL, never translated.
        route.member = 2;
        // SAFETY: `route` is valid and its upper device live.
        let ret = unsafe { dax_failure_route(&raw const route, 0x12000, 0x1000, 0) };
        assert_eq!(ret, EINVAL.to_errno());

        // Atomic hand-over of a claim: the new owner gets the failure, the old one not.
        assert_eq!(upper.unregister(0, 0x100000, &top), 0);
        assert_eq!(upper.register(0x20000, 0x1000, &a), 0);
        // SAFETY: The device is live; `RECORD_OPS` is static and `b` outlives the claim.
        let ret = unsafe {
            dax_failure_replace(
                upper.0,
                0x20000,
                0x1000,
                a.data(),
                &raw const RECORD_OPS.0,
                b.data(),
            )
        };
        assert_eq!(ret, 0);
        // SAFETY: As above; `a` no longer owns the claim, so this must fail.
        let ret = unsafe {
            dax_failure_replace(
                upper.0,
                0x20000,
                0x1000,
                a.data(),
                &raw const RECORD_OPS.0,
                b.data(),
            )
        };
        assert_eq!(ret, ENOENT.to_errno());
        // SAFETY: The device is live and this is not one of its handlers.
        unsafe { dax_failure_synchronize(upper.0) };
        assert_eq!(upper.notify(0x20000, 0x1000, 0), 0);
        assert_eq!((a.seen().0, b.seen()), (0, (1, 0x20000, 0x1000)));
        // Detached, the claim is gone at once: the range is unclaimed.
        // SAFETY: The device is live; `b` outlives the claim.
        let ret = unsafe { dax_failure_detach(upper.0, 0x20000, 0x1000, b.data()) };
        assert_eq!(ret, 0);
        assert_eq!(upper.notify(0x20000, 0x1000, 0), NOT_HANDLED.to_errno());
        assert_eq!(upper.unregister(0x20000, 0x1000, &b), ENOENT.to_errno());

        // SAFETY: The device is live.
        let ret = unsafe { dax_failure_unregister(lower.0, 0x10000, 0x8000, route_data) };
        assert_eq!(ret, 0);
        Ok(())
    }
}
