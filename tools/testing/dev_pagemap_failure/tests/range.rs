// SPDX-License-Identifier: GPL-2.0

//! Tests of `mm/dev_pagemap_failure/range.rs`: hand-written edge cases, and
//! property tests against a naive model that walks every unit of a small
//! universe, placed anywhere in the u64 space (including against u64::MAX).

use dev_pagemap_failure_host::range::{
    split, Coalesce, Overlay, Range, RangeError, Route, Segment, Stripes,
};
use proptest::prelude::*;

/// Cases per property test: 4096 for `cargo test` (make check), or
/// `DPF_PROPTEST_CASES` (`make fuzz` runs 10^6).
fn config() -> ProptestConfig {
    let cases = match std::env::var("DPF_PROPTEST_CASES") {
        Ok(v) => v
            .parse()
            .expect("DPF_PROPTEST_CASES must be a number of cases"),
        Err(_) => 4096,
    };
    let mut config = ProptestConfig::with_cases(cases);
    // Miri isolates the tests from the file system: no regression file.
    if cfg!(miri) {
        config.failure_persistence = None;
    }
    config
}

fn r(start: u64, end: u64) -> Range {
    Range::new(start, end).unwrap()
}

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

/// The naive inverse of a striped geometry (`stripes` members, chunks of `chunk`, as
/// dm-stripe.c maps them): member and member offset of unit `offset` of a target that is
/// `len` long; `None` outside it.
fn model_target_to_member(stripes: u64, chunk: u64, len: u64, offset: u64) -> Option<(u64, u64)> {
    (offset < len).then(|| {
        let c = offset / chunk;
        (c % stripes, c / stripes * chunk + offset % chunk)
    })
}

/// A linear route: `len` units of the lower device from `lower_start` appear at
/// `target_start` of the upper device (one stripe whose chunk is the whole part, as
/// drivers/md/dm-dax-failure.c describes dm-linear).
fn linear(lower_start: u64, target_start: u64, len: u64) -> Result<Route, RangeError> {
    Route::new(lower_start, Stripes::new(target_start, len, 1, len)?, 0)
}

/// A route with its parameters, so that the tests can invert it with the naive model.
struct Params {
    lower_start: u64,
    stripes: u64,
    chunk: u64,
    member: u64,
}

impl Params {
    /// Where unit `upper` of the upper device lives in the lower device, if on the route's
    /// member; `Err` outside the target.
    fn lower_of(&self, route: &Route, upper: u64) -> Result<Option<u64>, RangeError> {
        let target = route.target();
        if upper < target.start() || upper >= target.end() {
            return Err(RangeError::OutOfRange);
        }
        let (m, off) = model_target_to_member(
            self.stripes,
            self.chunk,
            target.len(),
            upper - target.start(),
        )
        .ok_or(RangeError::OutOfRange)?;
        Ok((m == self.member).then(|| self.lower_start + off))
    }
}

fn stripe_ranges(g: &Stripes, member: u64, failure: Range) -> Vec<Range> {
    g.member_to_target(member, failure)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

#[test]
fn stripes_geometry_is_checked() {
    assert_eq!(Stripes::new(0, 8, 0, 4), Err(RangeError::Empty));
    assert_eq!(Stripes::new(0, 8, 2, 0), Err(RangeError::Empty));
    assert_eq!(Stripes::new(0, 0, 2, 4), Err(RangeError::Empty));
    assert_eq!(Stripes::new(0, 10, 2, 4), Err(RangeError::Unaligned));
    assert_eq!(
        Stripes::new(0, 1 << 63, 2, 1 << 62),
        Err(RangeError::Overflow)
    );
    assert_eq!(
        Stripes::new(u64::MAX - 15, 8, 2, 4),
        Err(RangeError::Overflow)
    );
    let top = Stripes::new(u64::MAX - 16, 8, 2, 4).unwrap();
    assert_eq!(top.target(), r(u64::MAX - 16, u64::MAX));
    let g = Stripes::new(0, 8, 3, 4).unwrap();
    assert_eq!(
        g.member_to_target(3, r(0, 1)).err(),
        Some(RangeError::OutOfRange)
    );
}

#[test]
fn stripes_one_range_per_chunk() {
    // 3 members, chunks of 4, 8 units per member: target chunks 0 1 2 | 3 4 5 live on
    // members 0 1 2 | 0 1 2.
    let g = Stripes::new(100, 8, 3, 4).unwrap();
    assert_eq!(g.target(), r(100, 124));
    assert_eq!(
        stripe_ranges(&g, 1, r(2, 7)),
        vec![r(106, 108), r(116, 119)]
    );
    assert_eq!(
        stripe_ranges(&g, 0, r(0, 8)),
        vec![r(100, 104), r(112, 116)]
    );
    assert_eq!(g.member_space(), r(0, 8));
    // Outside the member's mapped part: nothing.
    assert_eq!(stripe_ranges(&g, 2, r(8, 20)), vec![]);
    assert_eq!(model_target_to_member(3, 4, 24, 17), Some((1, 5)));
    assert_eq!(stripe_ranges(&g, 1, r(5, 6)), vec![r(117, 118)]);
}

#[test]
fn one_stripe_merges_into_one_range() {
    let g = Stripes::new(1000, 30, 1, 3).unwrap();
    assert_eq!(stripe_ranges(&g, 0, r(2, 25)), vec![r(1002, 1025)]);
}

#[test]
fn stripes_at_the_top_of_u64() {
    // Chunk 5, 2 stripes, 10 per member: the target ends exactly at u64::MAX.
    let g = Stripes::new(u64::MAX - 20, 10, 2, 5).unwrap();
    assert_eq!(
        stripe_ranges(&g, 1, r(0, 10)),
        vec![r(u64::MAX - 15, u64::MAX - 10), r(u64::MAX - 5, u64::MAX)]
    );
}

/// The naive model: every unit of the target, mapped forward with dm-stripe's formula.
fn stripes_model(
    start: u64,
    member_len: u64,
    stripes: u64,
    chunk: u64,
    member: u64,
    f: Range,
) -> Vec<u64> {
    (0..member_len * stripes)
        .filter(|t| {
            let c = t / chunk;
            c % stripes == member && {
                let off = c / stripes * chunk + t % chunk;
                f.start() <= off && off < f.end()
            }
        })
        .map(|t| start + t)
        .collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn stripes_match_model(
        stripes in 1u64..6, chunk in 1u64..7, chunks in 1u64..6,
        place in prop_oneof![Just(0u64), Just(1u64 << 60), Just(u64::MAX)],
        member_pick in 0u64..6, fs in 0u64..40, fl in 1u64..40,
    ) {
        let member_len = chunk * chunks;
        let len = member_len * stripes;
        // Place the target at 0, in the middle, or ending exactly at u64::MAX.
        let start = if place == u64::MAX { u64::MAX - len } else { place };
        let g = Stripes::new(start, member_len, stripes, chunk).unwrap();
        let member = member_pick % stripes;
        let failure = r(fs, fs + fl);
        let ranges = stripe_ranges(&g, member, failure);
        let units: Vec<u64> = ranges.iter().flat_map(|x| x.start()..x.end()).collect();
        prop_assert_eq!(&units, &stripes_model(start, member_len, stripes, chunk, member, failure));
        for pair in ranges.windows(2) {
            prop_assert!(pair[0].end() < pair[1].start(), "ascending, disjoint, not adjacent");
        }
        for x in &ranges {
            prop_assert!(g.target().contains(x));
            // Round trip: every unit maps back into the failure on the same member.
            for t in [x.start(), x.end() - 1] {
                let (m, off) = model_target_to_member(stripes, chunk, len, t - start).unwrap();
                prop_assert_eq!(m, member);
                prop_assert!(failure.start() <= off && off < failure.end());
            }
            if stripes > 1 {
                prop_assert!(x.len() <= chunk, "one chunk per range");
            }
        }
        prop_assert_eq!(g.member_space(), r(0, member_len));
    }
}

/// The upper ranges of a removal of `failure`.
fn route_ranges(route: &Route, failure: Range) -> Vec<Range> {
    route
        .upper_ranges(failure, true)
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// The upper ranges of poison in `failure`.
fn poison_ranges(route: &Route, failure: Range) -> Vec<Range> {
    route
        .upper_ranges(failure, false)
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

#[test]
fn route_checks_its_member_and_lower_part() {
    let g = Stripes::new(0, 8, 2, 4).unwrap();
    assert_eq!(Route::new(0, g, 2), Err(RangeError::OutOfRange));
    assert_eq!(Route::new(u64::MAX - 7, g, 1), Err(RangeError::Overflow));
    assert!(Route::new(u64::MAX - 8, g, 1).is_ok());
    assert_eq!(linear(0, 0, 0), Err(RangeError::Empty));
    assert_eq!(linear(u64::MAX - 1, 0, 2), Err(RangeError::Overflow));
}

#[test]
fn linear_route_shifts_and_clips() {
    // 100 units of the lower device from 50 appear at 1000 of the upper one.
    let route = linear(50, 1000, 100).unwrap();
    let params = Params {
        lower_start: 50,
        stripes: 1,
        chunk: 100,
        member: 0,
    };
    assert_eq!(route.lower(), r(50, 150));
    assert_eq!(route.target(), r(1000, 1100));
    assert_eq!(route_ranges(&route, r(60, 70)), vec![r(1010, 1020)]);
    // Clipped to the part the target maps.
    assert_eq!(route_ranges(&route, r(0, 55)), vec![r(1000, 1005)]);
    assert_eq!(route_ranges(&route, r(140, 4000)), vec![r(1090, 1100)]);
    // Outside: nothing, so the lower device's fallback keeps it.
    assert_eq!(route_ranges(&route, r(0, 50)), vec![]);
    assert_eq!(route_ranges(&route, r(150, 151)), vec![]);
    // The whole device going away: the whole target, once.
    assert_eq!(route_ranges(&route, Range::EVERYTHING), vec![r(1000, 1100)]);
    assert_eq!(params.lower_of(&route, 1010), Ok(Some(60)));
    assert_eq!(params.lower_of(&route, 1100), Err(RangeError::OutOfRange));
}

#[test]
fn striped_route_exact_chunks_or_whole_target() {
    // 3 members with chunks of 4 and 8 units each, target at 100; member 1 lives at 20 of
    // its lower device. Target chunks 0 1 2 | 3 4 5 are on members 0 1 2 | 0 1 2.
    let route = Route::new(20, Stripes::new(100, 8, 3, 4).unwrap(), 1).unwrap();
    let params = Params {
        lower_start: 20,
        stripes: 3,
        chunk: 4,
        member: 1,
    };
    assert_eq!(route.lower(), r(20, 28));
    assert_eq!(
        route_ranges(&route, r(22, 27)),
        vec![r(106, 108), r(116, 119)]
    );
    assert_eq!(route_ranges(&route, r(21, 22)), vec![r(105, 106)]);
    // All of the member going away: the whole target, one call.
    assert_eq!(route_ranges(&route, r(20, 28)), vec![r(100, 124)]);
    assert_eq!(route_ranges(&route, r(0, 1 << 40)), vec![r(100, 124)]);
    // All of the member poisoned: only its chunks, the other members' stay usable.
    assert_eq!(
        poison_ranges(&route, r(20, 28)),
        vec![r(104, 108), r(116, 120)]
    );
    assert_eq!(params.lower_of(&route, 118), Ok(Some(26)));
    assert_eq!(params.lower_of(&route, 112), Ok(None));
}

#[test]
fn routes_at_the_top_of_u64() {
    // The lower part and the target both end exactly at u64::MAX.
    let g = Stripes::new(u64::MAX - 20, 10, 2, 5).unwrap();
    let route = Route::new(u64::MAX - 10, g, 1).unwrap();
    assert_eq!(route.lower(), r(u64::MAX - 10, u64::MAX));
    assert_eq!(
        route_ranges(&route, r(u64::MAX - 9, u64::MAX)),
        vec![r(u64::MAX - 14, u64::MAX - 10), r(u64::MAX - 5, u64::MAX)]
    );
    assert_eq!(
        route_ranges(&route, Range::EVERYTHING),
        vec![r(u64::MAX - 20, u64::MAX)]
    );
    let linear = linear(u64::MAX - 3, u64::MAX - 3, 3).unwrap();
    assert_eq!(
        route_ranges(&linear, r(u64::MAX - 2, u64::MAX - 1)),
        vec![r(u64::MAX - 2, u64::MAX - 1)]
    );
}

proptest! {
    #![proptest_config(config())]

    /// Every unit of the target whose lower unit failed is reported, nothing else is, unless
    /// a removal covers the member, which reports the whole target once; stripe counts and
    /// chunk sizes are not powers of two, and the lower part and the target sit at 0, in the
    /// middle or against u64::MAX.
    #[test]
    fn route_round_trips(
        stripes in 1u64..7, chunk in 1u64..9, chunks in 1u64..5,
        lower_place in prop_oneof![Just(0u64), Just(1u64 << 50), Just(u64::MAX)],
        upper_place in prop_oneof![Just(0u64), Just(3u64 << 40), Just(u64::MAX)],
        member_pick in 0u64..7, fs in 0u64..80, fl in 1u64..80, removal_pick in any::<bool>(),
    ) {
        let member_len = chunk * chunks;
        let len = member_len * stripes;
        let target_start = if upper_place == u64::MAX { u64::MAX - len } else { upper_place };
        let lower_start = if lower_place == u64::MAX { u64::MAX - member_len } else { lower_place };
        let g = Stripes::new(target_start, member_len, stripes, chunk).unwrap();
        let route = Route::new(lower_start, g, member_pick % stripes).unwrap();
        let params = Params { lower_start, stripes, chunk, member: member_pick % stripes };
        // The failure is placed around the lower part: before, across or inside it.
        let base = lower_start.saturating_sub(20);
        let Ok(failure) = Range::from_len(base.saturating_add(fs), fl) else {
            return Ok(());
        };
        let removal = removal_pick;
        let got: Vec<Range> = route
            .upper_ranges(failure, removal)
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        for pair in got.windows(2) {
            prop_assert!(pair[0].end() < pair[1].start(), "ascending, disjoint, not adjacent");
        }
        let units: Vec<u64> = got.iter().flat_map(|x| x.start()..x.end()).collect();
        if removal && failure.contains(&route.lower()) {
            prop_assert_eq!(got, vec![route.target()]);
        } else {
            // Exactly the units whose lower unit failed, for poison even when all did.
            let model: Vec<u64> = (route.target().start()..route.target().end())
                .filter(|&t| match params.lower_of(&route, t).unwrap() {
                    Some(l) => failure.start() <= l && l < failure.end(),
                    None => false,
                })
                .collect();
            prop_assert_eq!(units, model);
        }
    }
}

/// What a dispatch over overlapping claims sends to the fallback, as [`Overlay`] and
/// [`Coalesce`] compute it in mm/dev_pagemap_failure/registry.rs: the claims are entered in
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
