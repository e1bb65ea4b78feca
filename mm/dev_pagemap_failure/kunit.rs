// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of the core, only with `CONFIG_DEV_PAGEMAP_FAILURE_KUNIT_TEST`: the range
//! algebra once more in the kernel and the outcome table (suite `dev_pagemap_failure`). The
//! registry on private registries is tested in `kunit_registry.rs` (suite
//! `dev_pagemap_failure_registry`), the C entry points on real dax_devices in `kunit_ffi.rs`
//! (suite `dev_pagemap_failure_ffi`). The fixtures below are shared by all three.

use core::ffi::c_void;

use kernel::{
    bindings,
    ffi::c_int,
    prelude::*,
    sync::atomic::{Acquire, Atomic, Relaxed, Release},
    time::{delay::fsleep, Delta},
};

use crate::owner::Owner;

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

/// A range literal, checked when the test is compiled rather than when it runs.
macro_rules! r {
    ($start:expr, $end:expr) => {{
        const RANGE: $crate::range::Range = match $crate::range::Range::new($start, $end) {
            Ok(range) => range,
            Err(_) => panic!("empty range literal"),
        };
        RANGE
    }};
}
pub(crate) use r;

#[kunit_tests(dev_pagemap_failure)]
mod tests {
    use kernel::prelude::*;

    use crate::outcome::{Delivery, Settlement, NOT_HANDLED};
    use crate::range::{split, Range, RangeError, Segment};
    const TOP: u64 = u64::MAX;

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
        let eio = EIO;
        assert_eq!(NOT_HANDLED, EOPNOTSUPP);
        assert_eq!(Delivery::of(Ok(())), Delivery::Taken);
        assert_eq!(Delivery::of(Err(NOT_HANDLED)), Delivery::Declined);
        assert_eq!(Delivery::of(Err(eio)), Delivery::Failed(eio));

        // Nothing delivered, or a part left without a fallback: not handled.
        let mut settlement = Settlement::default();
        assert_eq!(settlement.result(), Err(NOT_HANDLED));
        settlement.record(part, Delivery::Taken, None);
        assert_eq!(settlement.result(), Ok(()));
        settlement.record(part, Delivery::Declined, None);
        assert_eq!(settlement.result(), Err(NOT_HANDLED));

        // The fallback gets exactly the declined and unclaimed parts; the first error wins.
        let mut seen = 0u64;
        let mut fallback = |range: Range| -> Result {
            seen += range.len();
            Ok(())
        };
        let mut settlement = Settlement::default();
        settlement.record(part, Delivery::Taken, Some(&mut fallback));
        settlement.record(r!(0x1000, 0x3000), Delivery::Unclaimed, Some(&mut fallback));
        settlement.record(r!(0x3000, 0x4000), Delivery::Declined, Some(&mut fallback));
        assert_eq!(settlement.result(), Ok(()));
        settlement.record(part, Delivery::Failed(eio), Some(&mut fallback));
        settlement.record(part, Delivery::Failed(ENOMEM), Some(&mut fallback));
        assert_eq!(settlement.result(), Err(eio));
        assert_eq!(
            (settlement.taken, settlement.unclaimed, settlement.declined),
            (1, 1, 1)
        );
        assert_eq!(seen, 0x3000);
        let mut failing = |_: Range| -> Result { Err(eio) };
        let mut settlement = Settlement::default();
        settlement.record(part, Delivery::Unclaimed, Some(&mut failing));
        assert_eq!(settlement.result(), Err(eio));
    }
}
