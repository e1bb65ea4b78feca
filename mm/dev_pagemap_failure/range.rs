// SPDX-License-Identifier: GPL-2.0

//! Range algebra for ranged memory failure.
//!
//! Everything here is pure: no allocation, no locking, no kernel or `std` API, no panics and
//! no unchecked arithmetic. The kernel includes this file as a module of
//! `mm/dev_pagemap_failure.rs`; the host crate in `tools/testing/dev_pagemap_failure/`
//! compiles the very same file with `#[path]` and tests it against a naive model, thousands of
//! cases a second. The stripe layout of device-mapper targets, built on it, is
//! [`crate::stripe`].
//!
//! A [`Range`] is half-open, `[start, end)`, and never empty. Its unit is whatever the caller
//! uses consistently (bytes of a dax_device, or page frame numbers). The last value `u64::MAX`
//! itself cannot be inside a range; no device or pfn space reaches it, and this keeps every
//! length representable in a `u64`.

use core::cmp::{max, min};

/// Why a range could not be built or converted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeError {
    /// The range would hold nothing (zero length, or `end <= start`).
    Empty,
    /// `start + len`, or a unit conversion, does not fit in a `u64`.
    Overflow,
    /// A bound is not a multiple of the unit being converted to.
    Unaligned,
    /// The claims given to [`split`] were not sorted and disjoint.
    UnsortedClaims,
    /// A value lies outside the range it must be translated from.
    OutOfRange,
}

/// A non-empty half-open range `[start, end)`.
///
/// # Invariants
///
/// `start < end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    start: u64,
    end: u64,
}

impl Range {
    /// `[0, u64::MAX)`: every value a range can hold.
    pub const EVERYTHING: Range = Range {
        start: 0,
        end: u64::MAX,
    };

    /// Creates `[start, end)`; fails with [`RangeError::Empty`] unless `start < end`.
    pub const fn new(start: u64, end: u64) -> Result<Self, RangeError> {
        if start < end {
            // INVARIANT: checked just above.
            Ok(Self { start, end })
        } else {
            Err(RangeError::Empty)
        }
    }

    /// Creates `[start, start + len)`, checking for a zero length and for overflow.
    pub const fn from_len(start: u64, len: u64) -> Result<Self, RangeError> {
        if len == 0 {
            return Err(RangeError::Empty);
        }
        match start.checked_add(len) {
            Some(end) => Self::new(start, end),
            None => Err(RangeError::Overflow),
        }
    }

    /// Creates `[first, last]` from inclusive bounds, as in the kernel's `struct range`.
    pub const fn from_inclusive(first: u64, last: u64) -> Result<Self, RangeError> {
        if last < first {
            return Err(RangeError::Empty);
        }
        match last.checked_add(1) {
            Some(end) => Self::new(first, end),
            None => Err(RangeError::Overflow),
        }
    }

    /// The first value in the range.
    pub const fn start(&self) -> u64 {
        self.start
    }

    /// The first value after the range.
    pub const fn end(&self) -> u64 {
        self.end
    }

    /// The number of values in the range; never zero.
    // A `Range` is never empty, so an `is_empty()` could only return false.
    #[allow(clippy::len_without_is_empty)]
    pub const fn len(&self) -> u64 {
        // No underflow: `start < end` by the type invariant.
        self.end - self.start
    }

    /// The overlap of two ranges, if any.
    pub fn intersect(&self, other: &Range) -> Option<Range> {
        Range::new(max(self.start, other.start), min(self.end, other.end)).ok()
    }

    /// Whether the two ranges share at least one value.
    pub fn overlaps(&self, other: &Range) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// Whether `other` lies entirely inside this range.
    pub fn contains(&self, other: &Range) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    /// Moves this range from the space of `from` into the space of `to`: the value at distance
    /// `d` from `from.start()` becomes `to.start() + d`. This is how a pfn range becomes a
    /// device offset range, or a range of a device below device-mapper one of the dm device.
    ///
    /// Fails with [`RangeError::OutOfRange`] unless this range lies inside `from`, and with
    /// [`RangeError::Overflow`] if the result does not fit in `to`.
    pub fn translate(&self, from: &Range, to: &Range) -> Result<Range, RangeError> {
        if !from.contains(self) {
            return Err(RangeError::OutOfRange);
        }
        // No underflow: `from.start <= self.start` and `self.end <= from.end` just above.
        let start = to
            .start
            .checked_add(self.start - from.start)
            .ok_or(RangeError::Overflow)?;
        let end = start.checked_add(self.len()).ok_or(RangeError::Overflow)?;
        if end > to.end {
            return Err(RangeError::Overflow);
        }
        Range::new(start, end)
    }

    /// Converts a range of `1 << shift` sized units (e.g. pages) into the finer unit (e.g.
    /// bytes), failing with [`RangeError::Overflow`] if the result does not fit.
    pub fn scale_up(&self, shift: u32) -> Result<Range, RangeError> {
        let start = checked_shl(self.start, shift)?;
        let end = checked_shl(self.end, shift)?;
        Range::new(start, end)
    }

    /// Converts a range of a fine unit (e.g. bytes) into `1 << shift` sized units (e.g.
    /// pages). Both bounds must be multiples of the unit, otherwise this fails with
    /// [`RangeError::Unaligned`].
    pub fn scale_down(&self, shift: u32) -> Result<Range, RangeError> {
        if shift >= u64::BITS {
            return Err(RangeError::Overflow);
        }
        let mask = (1u64 << shift) - 1;
        if self.start & mask != 0 || self.end & mask != 0 {
            return Err(RangeError::Unaligned);
        }
        Range::new(self.start >> shift, self.end >> shift)
    }
}

/// The aligned granule of `1 << shift` units that holds `value`, clamped to `within`: the
/// range a memory error reported with a coarse address may have hit (the least significant
/// valid address bit of a machine check's `MCi_MISC`, a firmware record's address mask),
/// limited to the device memory that holds `value`.
///
/// Fails with [`RangeError::OutOfRange`] unless `value` lies inside `within`, and with
/// [`RangeError::Overflow`] if `shift` is 64 or more.
pub fn granule(value: u64, shift: u32, within: &Range) -> Result<Range, RangeError> {
    if value < within.start || value >= within.end {
        return Err(RangeError::OutOfRange);
    }
    if shift >= u64::BITS {
        return Err(RangeError::Overflow);
    }
    let start = value & !((1u64 << shift) - 1);
    // A granule that would end at 2^64 ends at `within`'s end, which is at most `u64::MAX`.
    let end = start.saturating_add(1u64 << shift);
    // Not empty: `value` lies in both ranges.
    Range::new(max(start, within.start), min(end, within.end))
}

/// The granularity, as a shift, of an address whose valid bits `mask` gives (a UEFI CPER
/// memory error section's physical address mask: `!0 << 12` for 4 KiB): its lowest set bit.
/// Fails with [`RangeError::Empty`] for a mask with no valid bit.
pub fn mask_shift(mask: u64) -> Result<u32, RangeError> {
    if mask == 0 {
        return Err(RangeError::Empty);
    }
    Ok(mask.trailing_zeros())
}

/// `value << shift`, or [`RangeError::Overflow`] if any set bit would be shifted out.
fn checked_shl(value: u64, shift: u32) -> Result<u64, RangeError> {
    if shift >= u64::BITS || value.leading_zeros() < shift {
        return Err(RangeError::Overflow);
    }
    Ok(value << shift)
}

/// One piece of a failure range, as produced by [`split`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment<T> {
    /// `range` lies inside the claim owned by `owner`.
    Claimed {
        /// The part of the failure range inside the claim.
        range: Range,
        /// The claim's owner, as given to [`split`].
        owner: T,
    },
    /// Nobody claims `range`.
    Unclaimed(Range),
}

/// Splits `failure` into the parts covered by `claims` and the parts nobody claims.
///
/// `claims` yields `(range, owner)` pairs sorted by start and pairwise disjoint. It may start
/// at any claim that ends after `failure.start()` (claims entirely before the failure are
/// skipped) and is not consumed past the first claim that starts at or after `failure.end()`.
///
/// The segments come in ascending order, cover `failure` exactly once, and no two adjacent
/// segments are both unclaimed. Each claim yields at most one segment, so dispatching the
/// segments makes one call per claim. If the claims turn out not to be sorted and disjoint the
/// iterator yields `Err(RangeError::UnsortedClaims)` once and then ends.
pub fn split<T, I>(failure: Range, claims: I) -> Split<T, I::IntoIter>
where
    I: IntoIterator<Item = (Range, T)>,
{
    Split {
        failure,
        next: failure.start,
        prev_claim_end: 0,
        pending: None,
        claims: claims.into_iter(),
        done: false,
    }
}

/// The iterator returned by [`split`].
pub struct Split<T, I> {
    failure: Range,
    /// The first value of `failure` not yet yielded.
    next: u64,
    /// The end of the last claim taken from `claims`, to check their order.
    prev_claim_end: u64,
    /// A claim taken from `claims` whose segment comes after the gap just yielded.
    pending: Option<(Range, T)>,
    claims: I,
    done: bool,
}

impl<T, I> Split<T, I>
where
    I: Iterator<Item = (Range, T)>,
{
    /// Ends the iteration, yielding the unclaimed tail of the failure range if there is one.
    fn finish(&mut self) -> Option<Result<Segment<T>, RangeError>> {
        self.done = true;
        Range::new(self.next, self.failure.end)
            .ok()
            .map(|tail| Ok(Segment::Unclaimed(tail)))
    }

    fn next_claim(&mut self) -> Option<Result<(Range, T), RangeError>> {
        if let Some(claim) = self.pending.take() {
            return Some(Ok(claim));
        }
        let (range, owner) = self.claims.next()?;
        if range.start < self.prev_claim_end {
            return Some(Err(RangeError::UnsortedClaims));
        }
        self.prev_claim_end = range.end;
        Some(Ok((range, owner)))
    }
}

impl<T, I> Iterator for Split<T, I>
where
    I: Iterator<Item = (Range, T)>,
{
    type Item = Result<Segment<T>, RangeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            let (claim, owner) = match self.next_claim() {
                None => return self.finish(),
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Some(Ok(claim)) => claim,
            };
            if claim.end <= self.next {
                // Entirely before what is left of the failure.
                continue;
            }
            if claim.start >= self.failure.end {
                return self.finish();
            }
            if claim.start > self.next {
                // A gap before this claim; the claim's own segment comes next time.
                let gap = Range {
                    start: self.next,
                    end: claim.start,
                };
                self.next = claim.start;
                self.pending = Some((claim, owner));
                return Some(Ok(Segment::Unclaimed(gap)));
            }
            let end = min(claim.end, self.failure.end);
            let range = Range {
                start: self.next,
                end,
            };
            self.next = end;
            if end == self.failure.end {
                self.done = true;
            }
            return Some(Ok(Segment::Claimed { range, owner }));
        }
    }
}

/// Walks the claims that may overlap one another (those of stacking drivers) over a range
/// `within` that no exclusive claim touches, to find what goes to the fallback.
///
/// Each such claim gets one call with its part of `within`, and a value of `within` goes to
/// the fallback if no claim covers it or if an owner of a claim that covers it declined. Feed
/// the claims in order of start to [`Overlay::enter`], which returns the claim's part and the
/// values before it that no claim covers; [`Overlay::tail`] gives those after the last claim.
/// Merge those and the declined parts with a [`Coalesce`].
///
/// Claims out of order are not an error: a value they cover may then be reported uncovered
/// too, which sends it to the fallback once more than needed, never less.
pub struct Overlay {
    within: Range,
    /// Every value of `within` below this is covered by a claim entered so far.
    covered: u64,
}

impl Overlay {
    /// Starts the walk over `within`.
    pub fn new(within: Range) -> Self {
        Self {
            within,
            covered: within.start,
        }
    }

    /// Enters the next claim: returns its part inside `within` (`None` if it has none, then
    /// nobody is to be called), and the values before that part that no claim entered so far
    /// covers, if any.
    pub fn enter(&mut self, claim: Range) -> (Option<Range>, Option<Range>) {
        let Some(part) = claim.intersect(&self.within) else {
            return (None, None);
        };
        let uncovered = Range::new(self.covered, part.start).ok();
        self.covered = max(self.covered, part.end);
        (Some(part), uncovered)
    }

    /// The values after every claim entered that no claim covers, if any.
    pub fn tail(&self) -> Option<Range> {
        Range::new(self.covered, self.within.end).ok()
    }
}

/// Merges the parts of a failure bound for the fallback, so that it runs once per stretch.
///
/// Parts pushed in order of start come out sorted, disjoint and with a gap between any two,
/// covering exactly the values pushed. A part that starts before the one being grown is
/// passed on as it is: every value still comes out, some perhaps twice.
#[derive(Default)]
pub struct Coalesce {
    pending: Option<Range>,
}

impl Coalesce {
    /// Adds `part`; returns a stretch that can no longer grow, if any.
    pub fn push(&mut self, part: Range) -> Option<Range> {
        match self.pending {
            Some(p) if p.start <= part.start && part.start <= p.end => {
                // INVARIANT: `p.start < p.end <= max(p.end, part.end)`.
                self.pending = Some(Range {
                    start: p.start,
                    end: max(p.end, part.end),
                });
                None
            }
            done => {
                self.pending = Some(part);
                done
            }
        }
    }

    /// The last stretch, if any.
    pub fn finish(self) -> Option<Range> {
        self.pending
    }
}
