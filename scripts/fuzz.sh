#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make fuzz: the range algebra (mm/dev_pagemap_failure/range.rs, compiled
# by the host crate) against its naive models with DPF_FUZZ_CASES cases per
# property test (default 10^6, release build), then Miri over the host
# crate's hand-written tests if a nightly toolchain with miri is there or
# installs through rustup; if not, the exact error is printed. Reports the
# case count; fails if a property or Miri fails.
. "$(dirname "$0")/common.sh"

cases=${DPF_FUZZ_CASES:-1000000}
[[ $cases =~ ^[1-9][0-9]*$ ]] || die "DPF_FUZZ_CASES must be a positive number, not '$cases'"
host=$DPF_TOP/tools/testing/dev_pagemap_failure
logs=$DPF_OUT/fuzz
mkdir -p "$logs"

# The property tests are the functions inside the proptest! blocks.
mapfile -t props < <(awk '/^proptest! \{/ { on = 1; next } on && /^\}/ { on = 0 }
	on && match($0, /fn [a-z_0-9]+\(/) { print substr($0, RSTART + 3, RLENGTH - 4) }' \
	"$host/tests/range.rs")
[ ${#props[@]} -gt 0 ] || die "no property tests found in $host/tests/range.rs"

log "fuzz: ${#props[@]} property tests x $cases cases (release build)"
t0=$(date +%s)
if ! (cd "$host" && DPF_PROPTEST_CASES=$cases CARGO_TARGET_DIR=$DPF_OUT/host-target \
	cargo test --release --locked --test range -- "${props[@]}" --exact 2>&1) \
	> "$logs/proptest.log"; then
	grep -E 'panicked|minimal failing input|^test .* FAILED' "$logs/proptest.log" | head -n 20
	die "a property failed (log: $logs/proptest.log)"
fi
t1=$(date +%s)
ran=$(grep -c '^test .* ok$' "$logs/proptest.log")
[ "$ran" -eq ${#props[@]} ] || die "ran $ran of ${#props[@]} property tests (log: $logs/proptest.log)"
log "fuzz: $ran property tests x $cases cases = $((ran * cases)) cases, all passed, $((t1 - t0)) s"

# Miri needs a nightly toolchain; try to get one, and say exactly why not.
if ! cargo +nightly miri --version > "$logs/miri.log" 2>&1; then
	if ! rustup toolchain install nightly --profile minimal --component miri \
		>> "$logs/miri.log" 2>&1; then
		log "miri: not run: 'rustup toolchain install nightly --component miri' failed:"
		grep -E 'error' "$logs/miri.log" | head -n 3 | sed 's/^/    /'
		exit 0
	fi
fi
log "miri: $(cargo +nightly miri --version 2>&1)"
# The hand-written tests, the edge cases near 0 and u64::MAX among them:
# proptest's runner under Miri takes minutes for two cases of the smallest
# property, and the properties ran natively above.
skips=()
for p in "${props[@]}"; do
	skips+=(--skip "$p")
done
if (cd "$host" && CARGO_TARGET_DIR=$DPF_OUT/miri-target \
	cargo +nightly miri test --locked -- "${skips[@]}" 2>&1) > "$logs/miri-test.log"; then
	log "miri: $(grep -o '[0-9]* passed; [0-9]* failed' "$logs/miri-test.log" | sort -rn | head -n1)" \
		"(the hand-written tests of the host crate, under Miri)"
else
	tail -n 20 "$logs/miri-test.log"
	die "miri found a problem (log: $logs/miri-test.log)"
fi
