// SPDX-License-Identifier: GPL-2.0

//! What became of a failure, and the one decision that follows from it: which bytes go to the
//! pfn-at-a-time fallback and what the caller is told.
//!
//! Every path that hands out a failure (a registry's dispatch, the pmem driver's pagemap
//! operation, a device-mapper route, [`crate::dev_pagemap_failure`]) records each part of it
//! as a [`Delivery`] in one [`Settlement`], and returns [`Settlement::result`]:
//!
//! | the part                        | [`Delivery`] | fallback, if the path has one | caller sees |
//! |---------------------------------|--------------|-------------------------------|-------------|
//! | an owner handled it (returns 0) | `Taken`      | no                            | 0           |
//! | an owner returns `-EOPNOTSUPP`  | `Declined`   | runs for exactly that part    | 0 or (1)    |
//! | nobody claims it                | `Unclaimed`  | runs for exactly that part    | 0 or (1)    |
//! | an owner returns an error `e`   | `Failed(e)`  | no                            | first `e`   |
//!
//! (1): 0 if the fallback ran; `-EOPNOTSUPP` ([`NOT_HANDLED`]) if the path has none. A
//! fallback that fails makes its error the caller's, like an owner's.
//!
//! So `-EOPNOTSUPP` has one meaning everywhere, coming in and going out: *not (all) handled
//! here; the caller's own fallback applies*. An owner returns it to decline; the core returns
//! it when some part was neither taken by an owner nor handled by a fallback, and the caller
//! (the device below a route, `memory_failure_range()`, `memory_failure()`) then runs its own
//! fallback for the range. Handling a page twice is harmless: the fallback skips pages nobody
//! maps, and revoking a revoked mapping finds nothing.

use kernel::prelude::*;

use crate::range::Range;

/// What became of one part of a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Its owner handled it.
    Taken,
    /// Its owner declined it (`-EOPNOTSUPP`), e.g. XFS without a reverse map asked about
    /// poison: as good as unclaimed.
    Declined,
    /// Nobody claims it.
    Unclaimed,
    /// Its owner failed with this error.
    Failed(Error),
}

impl Delivery {
    /// What a handler's (or a driver operation's) result means.
    pub(crate) fn of(result: Result) -> Self {
        match result {
            Ok(()) => Delivery::Taken,
            Err(e) if e == NOT_HANDLED => Delivery::Declined,
            Err(e) => Delivery::Failed(e),
        }
    }
}

/// The error of a failure that was not (all) handled.
pub(crate) const NOT_HANDLED: Error = EOPNOTSUPP;

/// The pfn-at-a-time fallback of a path, for the parts nobody took: called with the part (in
/// the unit of the path's failure), returns its error if it failed. Borrowed for `'a`, it may
/// itself borrow for `'f`.
pub(crate) type Fallback<'a, 'f> = &'a mut (dyn FnMut(Range) -> Result + 'f);

/// What became of all the parts of one failure, recorded part by part.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Settlement {
    /// Parts an owner took.
    pub(crate) taken: u64,
    /// Parts an owner declined.
    pub(crate) declined: u64,
    /// Parts nobody claims.
    pub(crate) unclaimed: u64,
    /// Parts recorded, of every kind.
    parts: u64,
    /// Whether a declined or unclaimed part was left without a fallback.
    unhandled: bool,
    /// The first error of an owner or of the fallback.
    error: Option<Error>,
}

impl Settlement {
    /// Records what became of `part`. A part nobody took goes to `fallback` if the path has
    /// one; without one it is left to the caller.
    pub(crate) fn record(
        &mut self,
        part: Range,
        delivery: Delivery,
        fallback: Option<Fallback<'_, '_>>,
    ) {
        self.count(delivery);
        if let Delivery::Declined | Delivery::Unclaimed = delivery {
            self.fallback(part, fallback);
        }
    }

    /// Counts a delivery without acting on it: for parts of overlapping claims, whose
    /// fallback is decided for the union of what they leave (see `Registry::deliver_shared`),
    /// and then handed to [`Settlement::fallback`].
    pub(crate) fn count(&mut self, delivery: Delivery) {
        self.parts += 1;
        match delivery {
            Delivery::Taken => self.taken += 1,
            Delivery::Declined => self.declined += 1,
            Delivery::Unclaimed => self.unclaimed += 1,
            Delivery::Failed(e) => {
                self.error.get_or_insert(e);
            }
        }
    }

    /// Sends `part`, which nobody took, to `fallback`, or leaves it to the caller if the
    /// path has none.
    pub(crate) fn fallback(&mut self, part: Range, fallback: Option<Fallback<'_, '_>>) {
        match fallback {
            Some(fallback) => {
                if let Err(e) = fallback(part) {
                    self.error.get_or_insert(e);
                }
            }
            None => self.unhandled = true,
        }
    }

    /// What the caller of the path is told: the first error, else [`NOT_HANDLED`] if a part
    /// was neither taken nor handled by a fallback (or nothing was delivered at all), else
    /// `Ok`.
    pub(crate) fn result(&self) -> Result {
        match self.error {
            Some(e) => Err(e),
            None if self.unhandled || self.parts == 0 => Err(NOT_HANDLED),
            None => Ok(()),
        }
    }
}
