// SPDX-License-Identifier: GPL-2.0

//! Host build of the kernel's pure range algebra and stripe layout, for `cargo test`.
//!
//! The files are compiled exactly as the kernel compiles it; nothing here may
//! add to or change it.

#![no_std]

#[path = "../../../../mm/dev_pagemap_failure/range.rs"]
pub mod range;
#[path = "../../../../mm/dev_pagemap_failure/stripe.rs"]
pub mod stripe;
