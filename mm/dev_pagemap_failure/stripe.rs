// SPDX-License-Identifier: GPL-2.0

//! Device-mapper stripe layout: which ranges of an upper device a failure of a lower device
//! affects.
//!
//! Pure, like [`crate::range`], and compiled by the same host test crate: no allocation, no
//! locking, no kernel or `std` API, no panics and no unchecked arithmetic.
//!
//! [`Stripes`] is the geometry of a striped target (a linear target is one stripe whose
//! chunk is the whole target); [`Placement`] puts one lower device in it as one member; its
//! [`Placement::upper_ranges`] turns a failure of the lower device into the ranges of the upper
//! device it affects.

use core::cmp::min;

use crate::range::{Range, RangeError};

/// The geometry of a device-mapper striped target: its data is spread over `stripes` members
/// in chunks of `chunk` units, round robin. Chunk `c` of the target (counted from its start)
/// is chunk `c / stripes` of member `c % stripes`, as in drivers/md/dm-stripe.c. Every
/// quantity is in one unit (bytes or sectors); dm allows any stripe count and chunk size for
/// which each member holds a whole number of chunks, powers of two or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stripes {
    /// The target's range in the device-mapper device.
    target: Range,
    /// The part of each member that the target maps, in the member's own space: from 0, and
    /// `stripes` times shorter than the target.
    member_space: Range,
    stripes: u64,
    chunk: u64,
}

impl Stripes {
    /// Checks a geometry: at least one stripe, a non-zero chunk, members holding a non-zero
    /// whole number of chunks, and a target that fits below `u64::MAX`. Fails with
    /// [`RangeError::Empty`], [`RangeError::Unaligned`] or [`RangeError::Overflow`].
    pub fn new(
        target_start: u64,
        member_len: u64,
        stripes: u64,
        chunk: u64,
    ) -> Result<Self, RangeError> {
        if stripes == 0 || chunk == 0 || member_len == 0 {
            return Err(RangeError::Empty);
        }
        if member_len % chunk != 0 {
            return Err(RangeError::Unaligned);
        }
        let len = member_len
            .checked_mul(stripes)
            .ok_or(RangeError::Overflow)?;
        let target = Range::from_len(target_start, len)?;
        Ok(Self {
            target,
            member_space: Range::from_len(0, member_len)?,
            stripes,
            chunk,
        })
    }

    /// The target's range in the device-mapper device.
    pub fn target(&self) -> Range {
        self.target
    }

    /// The part of each member that the target maps, in the member's own space (0 is the
    /// first unit the target uses).
    pub fn member_space(&self) -> Range {
        self.member_space
    }

    /// The ranges of the device-mapper device that a failure of `member` affects. `failure`
    /// is in the member's space; the part outside [`Stripes::member_space`] is ignored. The
    /// ranges come in ascending order, disjoint and not adjacent, one per chunk of the member
    /// touched (pieces that happen to be contiguous, as with one stripe, are merged).
    ///
    /// Fails with [`RangeError::OutOfRange`] if `member` is not a member.
    pub fn member_to_target(
        &self,
        member: u64,
        failure: Range,
    ) -> Result<StripeRanges, RangeError> {
        if member >= self.stripes {
            return Err(RangeError::OutOfRange);
        }
        let (next, end) = match failure.intersect(&self.member_space) {
            Some(part) => (part.start(), part.end()),
            None => (0, 0),
        };
        Ok(StripeRanges {
            geometry: *self,
            member,
            next,
            end,
        })
    }

    /// The target range that holds member `member`'s unit `offset` and the rest of its chunk,
    /// up to member offset `end`; returns the range and the member offset after it.
    fn piece(&self, member: u64, offset: u64, end: u64) -> Result<(Range, u64), RangeError> {
        let chunk_in_member = offset / self.chunk;
        let within = offset % self.chunk;
        let chunk_end = chunk_in_member
            .checked_add(1)
            .and_then(|c| c.checked_mul(self.chunk))
            .ok_or(RangeError::Overflow)?;
        let piece_end = min(end, chunk_end);
        let target_chunk = chunk_in_member
            .checked_mul(self.stripes)
            .and_then(|c| c.checked_add(member))
            .ok_or(RangeError::Overflow)?;
        let start = target_chunk
            .checked_mul(self.chunk)
            .and_then(|s| s.checked_add(within))
            .and_then(|s| s.checked_add(self.target.start()))
            .ok_or(RangeError::Overflow)?;
        let len = piece_end
            .checked_sub(offset)
            .ok_or(RangeError::OutOfRange)?;
        Ok((Range::from_len(start, len)?, piece_end))
    }
}

/// The iterator returned by [`Stripes::member_to_target`].
pub struct StripeRanges {
    geometry: Stripes,
    member: u64,
    /// The next unit of the member's failure to map, and the end of the failure.
    next: u64,
    end: u64,
}

impl Iterator for StripeRanges {
    type Item = Result<Range, RangeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let mut merged: Option<Range> = None;
        while self.next < self.end {
            let (piece, after) = match self.geometry.piece(self.member, self.next, self.end) {
                Ok(step) => step,
                Err(e) => {
                    self.next = self.end;
                    return Some(Err(e));
                }
            };
            merged = match merged {
                Some(range) if range.end() != piece.start() => break,
                // Contiguous and ascending: `range.start() < piece.end()`.
                Some(range) => match Range::new(range.start(), piece.end()) {
                    Ok(range) => Some(range),
                    Err(e) => {
                        self.next = self.end;
                        return Some(Err(e));
                    }
                },
                None => Some(piece),
            };
            self.next = after;
        }
        merged.map(Ok)
    }
}

/// Where one part of a lower device sits in a stacking driver's (device-mapper's) device: the
/// part of the lower device that starts at `lower_start` is member `member` of a striped
/// target (see [`Stripes`]). A linear target is one stripe whose chunk is the whole part.
///
/// A failure of the lower device becomes failures of the upper device: see
/// [`Placement::upper_ranges`]. Every quantity is in one unit (bytes, in the kernel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The part of the lower device that is the member.
    lower: Range,
    member: u64,
    geometry: Stripes,
}

impl Placement {
    /// Checks a placement: `member` must be one of the geometry's members and the part of the
    /// lower device it maps must fit below `u64::MAX` ([`RangeError::OutOfRange`],
    /// [`RangeError::Overflow`]).
    pub fn new(lower_start: u64, geometry: Stripes, member: u64) -> Result<Self, RangeError> {
        if member >= geometry.stripes {
            return Err(RangeError::OutOfRange);
        }
        let lower = Range::from_len(lower_start, geometry.member_space.len())?;
        Ok(Self {
            lower,
            member,
            geometry,
        })
    }

    /// The part of the lower device that is the member.
    pub fn lower(&self) -> Range {
        self.lower
    }

    /// The target's range in the upper device.
    pub fn target(&self) -> Range {
        self.geometry.target()
    }

    /// The ranges of the upper device that a failure of the lower device affects, ascending
    /// and disjoint. The part of `failure` outside [`Placement::lower`] is ignored (nothing if
    /// they do not overlap). For a `removal` of the lower device that covers all of
    /// [`Placement::lower`], the whole target in one range, even for a striped target whose other
    /// members are fine: the target cannot work without this member, and its owner gets one
    /// call instead of one per chunk. Otherwise (and always for poison, which must not reach
    /// the healthy chunks of the other members) one range per chunk touched, merged where
    /// they meet, as for a linear target.
    pub fn upper_ranges(&self, failure: Range, removal: bool) -> UpperRanges {
        let lower = self.lower();
        let Some(part) = failure.intersect(&lower) else {
            return UpperRanges::Done;
        };
        if removal && part == lower {
            return UpperRanges::Whole(self.target());
        }
        let in_member = part
            .translate(&lower, &self.geometry.member_space)
            .and_then(|in_member| self.geometry.member_to_target(self.member, in_member));
        match in_member {
            Ok(chunks) => UpperRanges::Chunks(chunks),
            // `member` was checked by `new()` and `part` lies inside `lower`.
            Err(e) => UpperRanges::Failed(e),
        }
    }
}

/// The iterator returned by [`Placement::upper_ranges`].
pub enum UpperRanges {
    /// Nothing (more) to yield.
    Done,
    /// One range, the whole target.
    Whole(Range),
    /// One range per chunk touched.
    Chunks(StripeRanges),
    /// An error, yielded once.
    Failed(RangeError),
}

impl Iterator for UpperRanges {
    type Item = Result<Range, RangeError>;

    fn next(&mut self) -> Option<Self::Item> {
        match core::mem::replace(self, UpperRanges::Done) {
            UpperRanges::Done => None,
            UpperRanges::Whole(range) => Some(Ok(range)),
            UpperRanges::Failed(e) => Some(Err(e)),
            UpperRanges::Chunks(mut chunks) => {
                let next = chunks.next();
                if next.is_some() {
                    *self = UpperRanges::Chunks(chunks);
                }
                next
            }
        }
    }
}
