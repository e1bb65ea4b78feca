// SPDX-License-Identifier: GPL-2.0

//! Tests of `mm/dev_pagemap_failure/range.rs`: hand-written edge cases, and
//! property tests against a naive model that walks every unit of a small
//! universe, placed anywhere in the u64 space (including against u64::MAX).

use dev_pagemap_failure_host::range::{
    granule, mask_shift, split, Coalesce, Overlay, Range, RangeError, Segment,
};
use proptest::prelude::*;

mod common;
use common::{config, r};

fn collect(failure: Range, claims: &[(Range, usize)]) -> Vec<Result<Segment<usize>, RangeError>> {
    split(failure, claims.iter().copied()).collect()
}

#[test]
fn constructors_reject_empty_and_overflow() {
    assert_eq!(Range::new(5, 5), Err(RangeError::Empty));
    assert_eq!(Range::new(6, 5), Err(RangeError::Empty));
    assert_eq!(Range::from_len(5, 0), Err(RangeError::Empty));
    assert_eq!(Range::from_len(u64::MAX, 1), Err(RangeError::Overflow));
    assert_eq!(Range::from_len(1, u64::MAX), Err(RangeError::Overflow));
    assert_eq!(Range::from_len(0, u64::MAX), Ok(r(0, u64::MAX)));
    assert_eq!(
        Range::from_len(u64::MAX - 1, 1),
        Ok(r(u64::MAX - 1, u64::MAX))
    );
    assert_eq!(
        Range::from_inclusive(0, u64::MAX),
        Err(RangeError::Overflow)
    );
    assert_eq!(Range::from_inclusive(7, 6), Err(RangeError::Empty));
    assert_eq!(Range::from_inclusive(0x1000, 0x1fff), Ok(r(0x1000, 0x2000)));
    assert_eq!(r(0, u64::MAX).len(), u64::MAX);
}

#[test]
fn scaling_is_checked() {
    assert_eq!(r(1, 2).scale_up(12), Ok(r(4096, 8192)));
    assert_eq!(r(1, 1 << 52).scale_up(12), Err(RangeError::Overflow));
    assert_eq!(r(1, 1 << 51).scale_up(12), Ok(r(4096, 1 << 63)));
    assert_eq!(r(1, 2).scale_up(64), Err(RangeError::Overflow));
    assert_eq!(r(4096, 8192).scale_down(12), Ok(r(1, 2)));
    assert_eq!(r(4096, 8193).scale_down(12), Err(RangeError::Unaligned));
    assert_eq!(r(4095, 8192).scale_down(12), Err(RangeError::Unaligned));
    assert_eq!(r(0, 4095).scale_down(12), Err(RangeError::Unaligned));
    assert_eq!(r(0, 4096).scale_down(64), Err(RangeError::Overflow));
}

#[test]
fn intersect() {
    assert_eq!(r(0, 10).intersect(&r(5, 20)), Some(r(5, 10)));
    assert_eq!(r(0, 10).intersect(&r(10, 20)), None);
    assert_eq!(r(0, u64::MAX).intersect(&r(3, 4)), Some(r(3, 4)));
}

#[test]
fn split_without_claims_is_one_unclaimed_segment() {
    assert_eq!(
        collect(r(0, u64::MAX), &[]),
        vec![Ok(Segment::Unclaimed(r(0, u64::MAX)))]
    );
}

#[test]
fn split_two_claims_and_gaps() {
    let claims = [(r(10, 20), 1), (r(30, 40), 2)];
    assert_eq!(
        collect(r(0, 50), &claims),
        vec![
            Ok(Segment::Unclaimed(r(0, 10))),
            Ok(Segment::Claimed {
                range: r(10, 20),
                owner: 1
            }),
            Ok(Segment::Unclaimed(r(20, 30))),
            Ok(Segment::Claimed {
                range: r(30, 40),
                owner: 2
            }),
            Ok(Segment::Unclaimed(r(40, 50))),
        ]
    );
    // Clipped to the failure at both ends, touching claims stay separate.
    let claims = [(r(0, 20), 1), (r(20, 40), 2)];
    assert_eq!(
        collect(r(15, 25), &claims),
        vec![
            Ok(Segment::Claimed {
                range: r(15, 20),
                owner: 1
            }),
            Ok(Segment::Claimed {
                range: r(20, 25),
                owner: 2
            }),
        ]
    );
}

#[test]
fn split_at_the_top_of_the_u64_space() {
    let top = u64::MAX;
    let claims = [(r(top - 10, top), 7)];
    assert_eq!(
        collect(r(top - 20, top), &claims),
        vec![
            Ok(Segment::Unclaimed(r(top - 20, top - 10))),
            Ok(Segment::Claimed {
                range: r(top - 10, top),
                owner: 7
            }),
        ]
    );
}

#[test]
fn split_does_not_read_claims_past_the_failure() {
    let mut taken = 0;
    let claims = [
        (r(0, 10), 0),
        (r(10, 20), 1),
        (r(20, 30), 2),
        (r(30, 40), 3),
    ];
    let it = claims.iter().copied().inspect(|_| taken += 1);
    let segs: Vec<_> = split(r(5, 15), it).collect();
    assert_eq!(segs.len(), 2);
    assert_eq!(taken, 2);
}

#[test]
fn split_reports_unsorted_or_overlapping_claims_once() {
    let claims = [(r(10, 20), 1), (r(15, 30), 2)];
    assert_eq!(
        collect(r(0, 50), &claims),
        vec![
            Ok(Segment::Unclaimed(r(0, 10))),
            Ok(Segment::Claimed {
                range: r(10, 20),
                owner: 1
            }),
            Err(RangeError::UnsortedClaims),
        ]
    );
    let claims = [(r(30, 40), 1), (r(10, 20), 2)];
    let segs = collect(r(0, 50), &claims);
    assert_eq!(segs.last(), Some(&Err(RangeError::UnsortedClaims)));
}

/// The naive model: owner of every unit, run-length encoded.
fn model(failure: (u64, u64), claims: &[(u64, u64)]) -> Vec<(u64, u64, Option<usize>)> {
    let mut out: Vec<(u64, u64, Option<usize>)> = Vec::new();
    for u in failure.0..failure.1 {
        let owner = claims.iter().position(|&(s, e)| s <= u && u < e);
        match out.last_mut() {
            Some(last) if last.2 == owner && last.1 == u => last.1 = u + 1,
            _ => out.push((u, u + 1, owner)),
        }
    }
    out
}

/// Disjoint sorted claims in a universe of `n` units, from sorted cut points.
fn claims_strategy(n: u64) -> impl Strategy<Value = Vec<(u64, u64)>> {
    proptest::collection::btree_set(0..=n, 0..12).prop_map(|cuts| {
        let cuts: Vec<u64> = cuts.into_iter().collect();
        // Consecutive cut points delimit claims; every third gap is left
        // unclaimed, so the claims both touch and leave holes.
        cuts.windows(2)
            .enumerate()
            .filter(|(i, _)| i % 3 != 2)
            .map(|(_, w)| (w[0], w[1]))
            .collect()
    })
}

const N: u64 = 64;

proptest! {
    #![proptest_config(config())]

    #[test]
    fn split_matches_model(
        claims in claims_strategy(N),
        (a, b) in (0..N).prop_flat_map(|a| (Just(a), a + 1..=N)),
        scale_shift in prop_oneof![Just(0u32), Just(12u32), 0u32..50],
        place in prop_oneof![Just(0u8), Just(1u8), Just(2u8)],
        skip in 0usize..4,
    ) {
        let scale = 1u64 << scale_shift;
        // Where the universe sits: at 0, in the middle, or ending at u64::MAX.
        let span = N * scale;
        let base = match place { 0 => 0, 1 => 1u64 << 60, _ => u64::MAX - span };
        let to_abs = |u: u64| base + u * scale;

        let failure = r(to_abs(a), to_abs(b));
        let abs_claims: Vec<(Range, usize)> =
            claims.iter().enumerate().map(|(i, &(s, e))| (r(to_abs(s), to_abs(e)), i)).collect();
        // A caller may start the claim iterator at any claim ending at or before the failure.
        let first = abs_claims
            .iter()
            .position(|(c, _)| c.end() > failure.start())
            .unwrap_or(abs_claims.len());
        let start_at = first.saturating_sub(skip);

        let claims_from_start = abs_claims[start_at..].iter().copied();
        let got: Vec<(u64, u64, Option<usize>)> = split(failure, claims_from_start)
            .map(|s| match s.unwrap() {
                Segment::Claimed { range, owner } => (range.start(), range.end(), Some(owner)),
                Segment::Unclaimed(range) => (range.start(), range.end(), None),
            })
            .collect();
        let want: Vec<(u64, u64, Option<usize>)> = model((a, b), &claims)
            .into_iter()
            .map(|(s, e, o)| (to_abs(s), to_abs(e), o))
            .collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn from_len_is_exact_or_an_error(start in any::<u64>(), len in any::<u64>()) {
        match Range::from_len(start, len) {
            Ok(range) => {
                prop_assert_eq!(range.start(), start);
                prop_assert_eq!(range.len(), len);
                prop_assert!(range.end() > start);
            }
            Err(RangeError::Empty) => prop_assert_eq!(len, 0),
            Err(RangeError::Overflow) => prop_assert!(start.checked_add(len).is_none()),
            Err(e) => prop_assert!(false, "unexpected {:?}", e),
        }
    }

    #[test]
    fn scale_round_trips(start in any::<u64>(), len in 1u64..1 << 20, shift in 0u32..64) {
        let Ok(range) = Range::from_len(start, len) else { return Ok(()) };
        match range.scale_up(shift) {
            Ok(up) => {
                prop_assert_eq!(up.scale_down(shift), Ok(range));
                prop_assert_eq!(up.len() >> shift, range.len());
            }
            Err(e) => {
                prop_assert_eq!(e, RangeError::Overflow);
                prop_assert!(u128::from(range.end()) << shift > u128::from(u64::MAX));
            }
        }
    }
}

#[test]
fn translate_moves_between_spaces() {
    // pfns 0x100000..0x140000 of a pagemap are device offsets 0..1 GiB in pages.
    let pfns = r(0x100000, 0x140000);
    let dev = r(0, 0x40000);
    assert_eq!(
        r(0x100010, 0x100020).translate(&pfns, &dev),
        Ok(r(0x10, 0x20))
    );
    assert_eq!(pfns.translate(&pfns, &dev), Ok(dev));
    assert_eq!(
        r(0xfffff, 0x100001).translate(&pfns, &dev),
        Err(RangeError::OutOfRange)
    );
    assert_eq!(
        r(0x13ffff, 0x140001).translate(&pfns, &dev),
        Err(RangeError::OutOfRange)
    );
    // The target space is too small, or sits against u64::MAX.
    assert_eq!(
        r(0, 10).translate(&r(0, 10), &r(5, 10)),
        Err(RangeError::Overflow)
    );
    let top = u64::MAX;
    assert_eq!(
        r(0, 10).translate(&r(0, 10), &r(top - 10, top)),
        Ok(r(top - 10, top))
    );
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn overlaps_and_contains_match_model(
        a in 0u64..64, la in 1u64..16,
        b in 0u64..64, lb in 1u64..16,
    ) {
        let (x, y) = (r(a, a + la), r(b, b + lb));
        let shared = (a..a + la).any(|v| (b..b + lb).contains(&v));
        prop_assert_eq!(x.overlaps(&y), shared);
        prop_assert_eq!(y.overlaps(&x), shared);
        prop_assert_eq!(x.contains(&y), (b..b + lb).all(|v| (a..a + la).contains(&v)));
        prop_assert_eq!(x.intersect(&y).is_some(), shared);
    }

    #[test]
    fn translate_round_trips(
        from_start in any::<u64>(), from_len in 1u64..1 << 40,
        to_start in any::<u64>(), off in any::<u64>(), len in 1u64..1 << 20,
    ) {
        let Ok(from) = Range::from_len(from_start, from_len) else { return Ok(()) };
        let Ok(to) = Range::from_len(to_start, from_len) else { return Ok(()) };
        let Ok(piece) = Range::from_len(from_start.wrapping_add(off % from_len), len) else {
            return Ok(());
        };
        match piece.translate(&from, &to) {
            Ok(moved) => {
                prop_assert!(from.contains(&piece));
                prop_assert_eq!(moved.len(), piece.len());
                prop_assert_eq!(moved.start() - to.start(), piece.start() - from.start());
                prop_assert_eq!(moved.translate(&to, &from), Ok(piece));
            }
            Err(e) => {
                prop_assert_eq!(e, RangeError::OutOfRange);
                prop_assert!(!from.contains(&piece));
            }
        }
    }
}

/// What a dispatch over overlapping claims sends to the fallback, as [`Overlay`] and
/// [`Coalesce`] compute it in mm/dev_pagemap_failure/dispatch.rs: the claims are entered in
/// the order given, and `declined[i]` says whether the owner of claim `i` declined its part.
/// Returns the parts each claim was called with and the stretches for the fallback.
fn overlay(
    within: Range,
    claims: &[(u64, u64)],
    declined: &[bool],
) -> (Vec<Option<(u64, u64)>>, Vec<(u64, u64)>) {
    let mut walk = Overlay::new(within);
    let mut merge = Coalesce::default();
    let mut stretches = Vec::new();
    let mut parts = Vec::new();
    let mut push = |merge: &mut Coalesce, part: Range| {
        if let Some(done) = merge.push(part) {
            stretches.push((done.start(), done.end()));
        }
    };
    for (&(s, e), &declined) in claims.iter().zip(declined) {
        let (part, uncovered) = walk.enter(r(s, e));
        if let Some(uncovered) = uncovered {
            push(&mut merge, uncovered);
        }
        parts.push(part.map(|p| (p.start(), p.end())));
        if let (Some(part), true) = (part, declined) {
            push(&mut merge, part);
        }
    }
    if let Some(tail) = walk.tail() {
        push(&mut merge, tail);
    }
    if let Some(done) = merge.finish() {
        stretches.push((done.start(), done.end()));
    }
    (parts, stretches)
}

/// The naive model: every unit of `within` that no claim covers or a declining claim covers.
fn overlay_model(within: (u64, u64), claims: &[(u64, u64)], declined: &[bool]) -> Vec<u64> {
    (within.0..within.1)
        .filter(|&u| {
            let covering = claims
                .iter()
                .zip(declined)
                .filter(|((s, e), _)| *s <= u && u < *e);
            let mut any = false;
            for (_, &d) in covering {
                if d {
                    return true;
                }
                any = true;
            }
            !any
        })
        .collect()
}

#[test]
fn overlay_two_routes_over_one_range() {
    // Two claims of the same bytes, a third overlapping the second's tail: each is called
    // once with its own part; only what a decliner covers goes to the fallback.
    let claims = [(0x1000, 0x3000), (0x1000, 0x3000), (0x2000, 0x5000)];
    let (parts, stretches) = overlay(r(0, 0x4000), &claims, &[false, true, false]);
    assert_eq!(
        parts,
        [
            Some((0x1000, 0x3000)),
            Some((0x1000, 0x3000)),
            Some((0x2000, 0x4000))
        ]
    );
    assert_eq!(stretches, [(0, 0x3000)]);
    // Nobody declines: only the uncovered head.
    let (_, stretches) = overlay(r(0, 0x4000), &claims, &[false; 3]);
    assert_eq!(stretches, [(0, 0x1000)]);
    // A claim outside the range is not called.
    let (parts, stretches) = overlay(r(0x6000, 0x7000), &claims, &[true; 3]);
    assert_eq!(parts, [None, None, None]);
    assert_eq!(stretches, [(0x6000, 0x7000)]);
}

#[test]
fn overlay_at_the_top_of_u64() {
    let top = u64::MAX;
    let claims = [(top - 0x3000, top), (top - 0x2000, top - 0x1000)];
    let (parts, stretches) = overlay(r(top - 0x4000, top), &claims, &[false, true]);
    assert_eq!(
        parts,
        [
            Some((top - 0x3000, top)),
            Some((top - 0x2000, top - 0x1000))
        ]
    );
    assert_eq!(
        stretches,
        [(top - 0x4000, top - 0x3000), (top - 0x2000, top - 0x1000)]
    );
}

/// Claims that may overlap, sorted by start, in a universe of `n` units.
fn overlapping_claims(n: u64) -> impl Strategy<Value = Vec<((u64, u64), bool)>> {
    proptest::collection::vec(
        (
            (0..n).prop_flat_map(move |s| (Just(s), s + 1..=n)),
            any::<bool>(),
        ),
        0..10,
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn overlay_matches_model(
        mut claims in overlapping_claims(N),
        (a, b) in (0..N).prop_flat_map(|a| (Just(a), a + 1..=N)),
        sorted in prop_oneof![3 => Just(true), 1 => Just(false)],
        top in any::<bool>(),
    ) {
        if sorted {
            claims.sort_by_key(|&((s, e), _)| (s, e));
        }
        let base = if top { u64::MAX - N } else { 0 };
        let (ranges, declined): (Vec<(u64, u64)>, Vec<bool>) = claims.iter().copied().unzip();
        let abs: Vec<(u64, u64)> = ranges.iter().map(|&(s, e)| (base + s, base + e)).collect();
        let (parts, stretches) = overlay(r(base + a, base + b), &abs, &declined);

        // Every claim is called once with exactly its part of the range.
        for (&(s, e), part) in ranges.iter().zip(&parts) {
            let want = (s.max(a), e.min(b));
            let want = (want.0 < want.1).then_some((base + want.0, base + want.1));
            prop_assert_eq!(*part, want);
        }
        let want: Vec<u64> = overlay_model((a, b), &ranges, &declined)
            .into_iter()
            .map(|u| base + u)
            .collect();
        let mut got: Vec<u64> = stretches.iter().flat_map(|&(s, e)| s..e).collect();
        if sorted {
            // Exactly the model's units, in stretches with a gap between any two.
            for w in stretches.windows(2) {
                prop_assert!(w[0].1 < w[1].0);
            }
            prop_assert_eq!(got, want);
        } else {
            // Out of order: never less than the model, nothing outside the range.
            got.sort_unstable();
            got.dedup();
            for u in &want {
                prop_assert!(got.binary_search(u).is_ok());
            }
            prop_assert!(got.iter().all(|&u| base + a <= u && u < base + b));
        }
    }
}

#[test]
fn granule_of_a_coarse_address() {
    // A 2 MiB granule (MCi_MISC LSB 21) of a pagemap at 4 GiB.
    let pmem = r(0x1_0000_0000, 0x1_4000_0000);
    assert_eq!(
        granule(0x1_0023_4567, 21, &pmem),
        Ok(r(0x1_0020_0000, 0x1_0040_0000))
    );
    // Clamped to the pagemap at both ends.
    let small = r(0x1_0010_0000, 0x1_0030_0000);
    assert_eq!(
        granule(0x1_0023_4567, 21, &small),
        Ok(r(0x1_0020_0000, 0x1_0030_0000))
    );
    assert_eq!(
        granule(0x1_0010_0000, 21, &small),
        Ok(r(0x1_0010_0000, 0x1_0020_0000))
    );
    // A granule of the whole space, and one that would end at 2^64.
    assert_eq!(granule(5, 63, &r(1, 9)), Ok(r(1, 9)));
    assert_eq!(
        granule(u64::MAX - 1, 12, &r(u64::MAX - 0x1800, u64::MAX)),
        Ok(r(u64::MAX - 0xfff, u64::MAX))
    );
    assert_eq!(granule(9, 12, &r(1, 9)), Err(RangeError::OutOfRange));
    assert_eq!(granule(0, 12, &r(1, 9)), Err(RangeError::OutOfRange));
    assert_eq!(granule(5, 64, &r(1, 9)), Err(RangeError::Overflow));
}

#[test]
fn shift_of_an_address_mask() {
    assert_eq!(mask_shift(!0 << 12), Ok(12));
    assert_eq!(mask_shift(0x0000_ffff_ffe0_0000), Ok(21));
    assert_eq!(mask_shift(1 << 63), Ok(63));
    assert_eq!(mask_shift(!0), Ok(0));
    assert_eq!(mask_shift(0), Err(RangeError::Empty));
}

proptest! {
    #![proptest_config(config())]

    /// The granule against a naive model: the values of `within` that share `value`'s bits
    /// above `shift`.
    #[test]
    fn granule_matches_model(
        base in any::<u64>(),
        len in 1u64..1 << 16,
        at in any::<u64>(),
        shift in 0u32..70,
    ) {
        let within = match Range::from_len(base, len) {
            Ok(range) => range,
            Err(_) => Range::new(base.min(u64::MAX - len), u64::MAX).unwrap(),
        };
        let value = within.start() + at % within.len();
        match granule(value, shift, &within) {
            Ok(g) => {
                prop_assert!(shift < 64);
                let same = |v: u64| (v >> shift) == (value >> shift);
                prop_assert!(g.start() <= value && value < g.end());
                prop_assert!(within.contains(&g));
                // Every value of `within` with the same granule bits, and no other.
                prop_assert!(g.start() == within.start() || !same(g.start() - 1));
                prop_assert!(g.end() == within.end() || !same(g.end()));
                prop_assert!(same(g.start()) && same(g.end() - 1));
            }
            Err(e) => {
                prop_assert_eq!(e, RangeError::Overflow);
                prop_assert!(shift >= 64);
            }
        }
    }
}
