// SPDX-License-Identifier: GPL-2.0

//! What the test files share.

use dev_pagemap_failure_host::range::Range;
use proptest::prelude::ProptestConfig;

/// Cases per property test: 4096 for `cargo test` (make check), or
/// `DPF_PROPTEST_CASES` (`make fuzz` runs 10^6).
pub fn config() -> ProptestConfig {
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

pub fn r(start: u64, end: u64) -> Range {
    Range::new(start, end).unwrap()
}
