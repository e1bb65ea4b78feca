// SPDX-License-Identifier: GPL-2.0

//! A printk rate limit of its own for each call site, as `pr_err_ratelimited()` gives C: at
//! most [`BURST`] lines every [`INTERVAL_NS`] from one site, so that a caller repeating one
//! bad request cannot silence the logs of another.

use kernel::{
    sync::atomic::{Atomic, Relaxed},
    time::{ClockSource, Monotonic},
};

/// Lines a call site may print in one interval (`DEFAULT_RATELIMIT_BURST`).
const BURST: u32 = 10;

/// The interval, 5 s (`DEFAULT_RATELIMIT_INTERVAL`).
const INTERVAL_NS: i64 = 5_000_000_000;

/// The rate limit state of one call site; lock-free, so it may be used under any lock.
/// Two tasks racing at the turn of an interval may let a line or two more through.
pub(crate) struct Ratelimit {
    /// When the current interval began (`CLOCK_MONOTONIC`, ns); 0 before the first line.
    begin: Atomic<i64>,
    /// Lines asked for in the current interval.
    asked: Atomic<u32>,
}

impl Ratelimit {
    /// A call site that has printed nothing yet.
    pub(crate) const fn new() -> Self {
        Self {
            begin: Atomic::new(0),
            asked: Atomic::new(0),
        }
    }

    /// Whether one more line may be printed now.
    pub(crate) fn allow(&self) -> bool {
        let now = Monotonic::ktime_get();
        let begin = self.begin.load(Relaxed);
        if begin == 0 || now.saturating_sub(begin) >= INTERVAL_NS {
            // One task opens the new interval; the others count in it.
            if self.begin.cmpxchg(begin, now.max(1), Relaxed).is_ok() {
                self.asked.store(0, Relaxed);
            }
        }
        self.asked.fetch_add(1, Relaxed) < BURST
    }
}

/// `pr_err!` under the rate limit of its call site: for errors a caller can trigger in a loop.
macro_rules! pr_err_ratelimited {
    ($($arg:tt)*) => {{
        static SITE: $crate::ratelimit::Ratelimit = $crate::ratelimit::Ratelimit::new();
        if SITE.allow() {
            pr_err!($($arg)*);
        }
    }};
}

/// `pr_warn!` under the rate limit of its call site.
macro_rules! pr_warn_ratelimited {
    ($($arg:tt)*) => {{
        static SITE: $crate::ratelimit::Ratelimit = $crate::ratelimit::Ratelimit::new();
        if SITE.allow() {
            pr_warn!($($arg)*);
        }
    }};
}
