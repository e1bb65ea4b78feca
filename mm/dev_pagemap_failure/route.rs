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

use kernel::{bindings, prelude::*};

use crate::ffi::{DaxDevice, MfFlags};
use crate::outcome::{Delivery, Settlement, NOT_HANDLED};
use crate::range::{Range, RangeError};
use crate::stripe::{Placement, Stripes, UpperRanges};

/// A stacking driver's route (`struct dax_failure_route`), checked.
pub(crate) struct Route {
    /// Where the lower device sits in the target, or `None` if the target's layout is unknown.
    placement: Option<Placement>,
    /// The part of the lower device the target uses.
    lower: Range,
    /// The target's range in the upper device.
    target: Range,
}

impl Route {
    /// Checks a `struct dax_failure_route`: a [`Placement`] for a translating target
    /// (`chunk != 0`), or an unknown layout.
    pub(crate) fn new(route: &bindings::dax_failure_route) -> Result<Self, RangeError> {
        let lower = Range::from_len(route.lower_start, route.lower_len)?;
        let target = Range::from_len(route.target_start, route.target_len)?;
        if route.chunk == 0 {
            return Ok(Self {
                placement: None,
                lower,
                target,
            });
        }
        let geometry = Stripes::new(
            route.target_start,
            route.lower_len,
            route.stripes.into(),
            route.chunk,
        )?;
        let placement = Placement::new(route.lower_start, geometry, route.member.into())?;
        if placement.target() != target {
            return Err(RangeError::OutOfRange);
        }
        Ok(Self {
            placement: Some(placement),
            lower,
            target,
        })
    }

    /// The ranges of the upper device that `failure` of the lower device affects: exact
    /// chunks, or the whole target when a removal covers all the target uses of the lower
    /// device (see [`Placement::upper_ranges`]). A target whose layout is unknown passes a
    /// removal on over its whole range, with a log line ([`pass_up`] declines its poison).
    fn upper_ranges(&self, failure: Range, removal: bool) -> UpperRanges {
        match self.placement {
            Some(placement) => placement.upper_ranges(failure, removal),
            None if failure.overlaps(&self.lower) => {
                pr_warn_ratelimited!(
                    "target layout unknown: failure [{:#x}, +{:#x}) passed on over the whole \
                     target [{:#x}, +{:#x})\n",
                    failure.start(),
                    failure.len(),
                    self.target.start(),
                    self.target.len()
                );
                UpperRanges::Whole(self.target)
            }
            None => UpperRanges::Done,
        }
    }
}

/// Passes a failure of the lower device through `route` to the owners of `upper`. (In mode
/// `off` nothing above a stacking driver hears of a failure, as without this feature: the
/// entry point answers [`NOT_HANDLED`] without calling this.)
///
/// Returns `Ok` if owners above took all of it, the first error of one, or [`NOT_HANDLED`] if
/// any part of it was not taken: nobody above claims it, or its owner declined.
pub(crate) fn pass_up(route: &Route, upper: &DaxDevice, failure: Range, flags: MfFlags) -> Result {
    let removal = flags.is_removal();
    if route.placement.is_none() && !removal {
        // Which pages above a poisoned page of a target of unknown layout stands for is
        // unknown, and the whole target would shut a filesystem down for one page: decline,
        // and the lower device's fallback handles exactly the poisoned pages.
        return Err(NOT_HANDLED);
    }
    // No fallback up here: what is not taken is the lower device's to handle.
    let mut settlement = Settlement::default();
    for part in route.upper_ranges(failure, removal) {
        match part {
            Ok(part) => {
                if upper.dispatch(part, flags, &mut settlement, None).is_err() {
                    // The device above died meanwhile: nobody there takes the part.
                    settlement.record(part, Delivery::Unclaimed, None);
                }
            }
            Err(_) => settlement.record(failure, Delivery::Failed(EINVAL), None),
        }
        // A large poison of a striped target is one range per chunk.
        // SAFETY: Handlers run in process context and may sleep, and we hold no lock.
        unsafe { bindings::dev_pagemap_failure_cond_resched() };
    }
    settlement.result()
}
