// SPDX-License-Identifier: GPL-2.0

//! Tests of `mm/dev_pagemap_failure/stripe.rs`: hand-written edge cases, and
//! property tests against dm-stripe's formula applied to every unit of a small
//! target, placed anywhere in the u64 space (including against u64::MAX).

use dev_pagemap_failure_host::range::{Range, RangeError};
use dev_pagemap_failure_host::stripe::{Placement, Stripes};
use proptest::prelude::*;

mod common;
use common::{config, r};

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
fn linear(lower_start: u64, target_start: u64, len: u64) -> Result<Placement, RangeError> {
    Placement::new(lower_start, Stripes::new(target_start, len, 1, len)?, 0)
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
    fn lower_of(&self, route: &Placement, upper: u64) -> Result<Option<u64>, RangeError> {
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
fn route_ranges(route: &Placement, failure: Range) -> Vec<Range> {
    route
        .upper_ranges(failure, true)
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// The upper ranges of poison in `failure`.
fn poison_ranges(route: &Placement, failure: Range) -> Vec<Range> {
    route
        .upper_ranges(failure, false)
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

#[test]
fn route_checks_its_member_and_lower_part() {
    let g = Stripes::new(0, 8, 2, 4).unwrap();
    assert_eq!(Placement::new(0, g, 2), Err(RangeError::OutOfRange));
    assert_eq!(
        Placement::new(u64::MAX - 7, g, 1),
        Err(RangeError::Overflow)
    );
    assert!(Placement::new(u64::MAX - 8, g, 1).is_ok());
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
    let route = Placement::new(20, Stripes::new(100, 8, 3, 4).unwrap(), 1).unwrap();
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
    let route = Placement::new(u64::MAX - 10, g, 1).unwrap();
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
        let route = Placement::new(lower_start, g, member_pick % stripes).unwrap();
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
