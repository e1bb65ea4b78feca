// SPDX-License-Identifier: GPL-2.0

//! Failures through stacking drivers (device-mapper).
//!
//! A stacking driver claims, on each lower dax_device, the part a target of its live table
//! uses, and hands every failure there to [`pass_up`] with the target's route: the failure is
//! translated into the ranges of the upper device that it affects and dispatched through the
//! upper device's registry, so that whoever claimed those ranges (a filesystem, another
//! stacking driver) receives them. What was not taken above is the lower device's to fall
//! back on: [`pass_up`] then answers "not handled" and the lower registry records the route's
//! claim as declined (see [`crate::outcome`]).

use kernel::{bindings, ffi::c_int, prelude::*};

use crate::ffi::DaxDevice;
use crate::outcome::{self, Delivery, Settlement};
use crate::range::{self, Range, RangeError, RouteRanges};

/// A stacking driver's route, checked.
pub(crate) struct Layout {
    /// How the target maps the lower device, or `None` if its layout is unknown.
    layout: Option<range::Route>,
    /// The part of the lower device the target uses.
    lower: Range,
    /// The target's range in the upper device.
    target: Range,
}

impl Layout {
    /// Checks a `struct dax_failure_route`: [`range::Route`] for a translating target
    /// (`chunk != 0`), or an unknown layout.
    pub(crate) fn new(route: &bindings::dax_failure_route) -> Result<Self, RangeError> {
        let lower = Range::from_len(route.lower_start, route.lower_len)?;
        let target = Range::from_len(route.target_start, route.target_len)?;
        if route.chunk == 0 {
            return Ok(Self {
                layout: None,
                lower,
                target,
            });
        }
        let geometry = range::Stripes::new(
            route.target_start,
            route.lower_len,
            route.stripes.into(),
            route.chunk,
        )?;
        let layout = range::Route::new(route.lower_start, geometry, route.member.into())?;
        if layout.target() != target {
            return Err(RangeError::OutOfRange);
        }
        Ok(Self {
            layout: Some(layout),
            lower,
            target,
        })
    }

    /// The ranges of the upper device that `failure` of the lower device affects: exact
    /// chunks, or the whole target when a removal covers all the target uses of the lower
    /// device (see [`range::Route::upper_ranges`]). A target whose layout is unknown passes a
    /// removal on over its whole range, with a log line ([`pass_up`] declines its poison).
    fn upper_ranges(&self, failure: Range, removal: bool) -> RouteRanges {
        match self.layout {
            Some(layout) => layout.upper_ranges(failure, removal),
            None if failure.overlaps(&self.lower) => {
                pr_warn_ratelimited!(
                    "target layout unknown: failure [{:#x}, +{:#x}) passed on over the whole \
                     target [{:#x}, +{:#x})\n",
                    failure.start(),
                    failure.len(),
                    self.target.start(),
                    self.target.len()
                );
                RouteRanges::Whole(self.target)
            }
            None => RouteRanges::Done,
        }
    }
}

/// What a route answers when there is nobody above to take a failure: not handled, so the
/// lower device falls back.
pub(crate) fn nobody_above() -> c_int {
    outcome::not_handled()
}

/// Passes a failure of the lower device through `layout` to the owners of `upper`. (In mode
/// `off` nothing above a stacking driver hears of a failure, as upstream: the entry point
/// answers [`nobody_above`] without calling this.)
///
/// Returns 0 if owners above took all of it, the first error of one, or "not handled"
/// ([`outcome::not_handled`]) if any part of it was not taken: nobody above claims it, or its
/// owner declined.
pub(crate) fn pass_up(
    layout: &Layout,
    upper: &DaxDevice,
    failure: Range,
    mf_flags: c_int,
) -> c_int {
    let removal = mf_flags & bindings::mf_flags_MF_MEM_PRE_REMOVE as c_int != 0;
    if layout.layout.is_none() && !removal {
        // Which pages above a poisoned page of a target of unknown layout stands for is
        // unknown, and the whole target would shut a filesystem down for one page: decline,
        // and the lower device's fallback handles exactly the poisoned pages.
        return outcome::not_handled();
    }
    // No fallback up here: what is not taken is the lower device's to handle.
    let mut settlement = Settlement::default();
    for part in layout.upper_ranges(failure, removal) {
        match part {
            Ok(part) => {
                if upper
                    .dispatch(part, mf_flags, &mut settlement, None)
                    .is_err()
                {
                    // The device above died meanwhile: nobody there takes the part.
                    settlement.record(part, Delivery::Unclaimed, None);
                }
            }
            Err(_) => settlement.record(failure, Delivery::Failed(EINVAL.to_errno()), None),
        }
        // A large poison of a striped target is one range per chunk.
        // SAFETY: Handlers run in process context and may sleep: we are inside the SRCU
        // read-side sections of the registries below (which allow sleeping) and under no
        // spinlock.
        unsafe { bindings::dev_pagemap_failure_cond_resched() };
    }
    settlement.errno()
}
