// SPDX-License-Identifier: GPL-2.0

//! Ranged memory failure for device memory.
//!
//! When a pmem/CXL/NVDIMM device goes away, or a large range of it is poisoned, every DAX
//! mapping of it must be revoked. Upstream does that one page at a time through
//! `memory_failure()`. This object is the core of the ranged replacement: the pmem driver calls
//! [`dev_pagemap_failure`] once, and the failure is handed to whoever owns each part of the
//! device in one call per owner, with the pfn-at-a-time walk left only for unowned memory.
//!
//! The pure arithmetic lives in [`range`], which is also compiled and tested on the host.
//!
//! Status: this is the skeleton. It translates the pagemap into pfn ranges and splits them
//! against the device's owners, but the owner registry does not exist yet, so every page is
//! unclaimed and [`dev_pagemap_failure`] returns `-EOPNOTSUPP`: the caller keeps the upstream
//! behaviour. See Documentation/mm/dev_pagemap_failure.rst.

use kernel::{
    bindings,
    ffi::c_int,
    memremap::{DevPagemap, PhysRange},
    new_spinlock,
    page::PAGE_SHIFT,
    prelude::*,
    sync::SpinLock,
};

// The crate root is this file, so the module path is spelled out.
#[path = "dev_pagemap_failure/range.rs"]
pub mod range;

use range::{split, Range, RangeError, Segment};

module! {
    type: DevPagemapFailureModule,
    name: "dev_pagemap_failure",
    authors: ["dev_pagemap_failure developers"],
    description: "Ranged memory failure for device memory",
    license: "GPL",
    params: {
        inject_lockdep_bug: bool {
            default: false,
            description: "Test only: take two locks in both orders at boot, so that lockdep \
                          must report it",
        },
    },
}

struct DevPagemapFailureModule;

impl kernel::Module for DevPagemapFailureModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        if module_parameters::inject_lockdep_bug.value() {
            inject_lockdep_bug()?;
        }
        Ok(Self)
    }
}

#[pin_data]
struct LockPair {
    #[pin]
    a: SpinLock<()>,
    #[pin]
    b: SpinLock<()>,
}

/// Takes two locks in both orders, one after the other. This cannot deadlock by itself, but it
/// is exactly the inversion that lockdep exists to report; the test harness uses it to prove
/// that a splat turns `make check` red.
fn inject_lockdep_bug() -> Result {
    pr_warn!("inject_lockdep_bug=1: taking two locks in both orders on purpose\n");
    let pair = KBox::pin_init(
        pin_init!(LockPair {
            a <- new_spinlock!(()),
            b <- new_spinlock!(()),
        }),
        GFP_KERNEL,
    )?;
    {
        let _a = pair.a.lock();
        let _b = pair.b.lock();
    }
    {
        let _b = pair.b.lock();
        let _a = pair.a.lock();
    }
    Ok(())
}

/// The pages of one failure, as found by [`pagemap_failure_pages`].
#[derive(Debug, Default, PartialEq, Eq)]
struct FailurePages {
    /// Pages inside an owner's claim, handed to that owner.
    claimed: u64,
    /// Pages nobody claimed, left to the pfn-at-a-time path.
    unclaimed: u64,
    /// Ranges the pagemap has.
    ranges: usize,
}

/// Converts one physical range of a pagemap into a pfn range.
fn phys_to_pfns(phys: PhysRange) -> Result<Range, RangeError> {
    Range::from_inclusive(phys.first, phys.last)?.scale_down(PAGE_SHIFT as u32)
}

/// Splits every range of `pgmap` against the device's claims and counts the pages on each
/// side.
///
/// No owner can register yet, so the claims are empty and all pages are unclaimed.
fn pagemap_failure_pages(pgmap: &DevPagemap) -> Result<FailurePages, RangeError> {
    let mut pages = FailurePages::default();
    for phys in pgmap.ranges() {
        let pfns = phys_to_pfns(phys)?;
        pages.ranges += 1;
        for segment in split(pfns, core::iter::empty::<(Range, ())>()) {
            let (count, range) = match segment? {
                Segment::Claimed { range, .. } => (&mut pages.claimed, range),
                Segment::Unclaimed(range) => (&mut pages.unclaimed, range),
            };
            *count = count.checked_add(range.len()).ok_or(RangeError::Overflow)?;
        }
    }
    Ok(pages)
}

/// Revokes all mappings of the device memory behind `pgmap`.
///
/// Called once by a driver whose device memory is going away (`MF_MEM_PRE_REMOVE` in
/// `mf_flags`) before the memory is handed back.
///
/// Returns 0 when every page was handled, `-EINVAL` for a pagemap whose ranges are not
/// page-aligned or overflow, and `-EOPNOTSUPP` when the caller must fall back to the upstream
/// per-device path (always, until owners can register).
///
/// # Safety
///
/// `pgmap` must be null or point to a `struct dev_pagemap` between `memremap_pages()` and
/// `memunmap_pages()`, valid for the duration of the call.
#[export]
pub unsafe extern "C" fn dev_pagemap_failure(
    pgmap: *mut bindings::dev_pagemap,
    mf_flags: c_int,
) -> c_int {
    if pgmap.is_null() {
        pr_err!("NULL pagemap\n");
        return EINVAL.to_errno();
    }
    // SAFETY: `pgmap` is not null and the caller guarantees it is a live pagemap for the
    // duration of this call.
    let pgmap = unsafe { DevPagemap::from_raw(pgmap) };
    match pagemap_failure_pages(pgmap) {
        Ok(pages) => {
            pr_info!(
                "{} pages in {} range(s) failed (flags {:#x}): {} claimed, {} unclaimed; \
                 no owner registry yet, upstream path continues\n",
                pages.claimed + pages.unclaimed,
                pages.ranges,
                mf_flags,
                pages.claimed,
                pages.unclaimed
            );
            EOPNOTSUPP.to_errno()
        }
        Err(e) => {
            pr_err!("bad pagemap range: {:?}\n", e);
            EINVAL.to_errno()
        }
    }
}

#[cfg(CONFIG_DEV_PAGEMAP_FAILURE_KUNIT_TEST)]
#[kunit_tests(dev_pagemap_failure)]
mod tests {
    use super::*;
    use kernel::page::PAGE_SIZE;

    const PAGE: u64 = PAGE_SIZE as u64;

    const TOP: u64 = u64::MAX;

    /// A range literal, checked when the test is compiled rather than when it runs.
    macro_rules! r {
        ($start:expr, $end:expr) => {{
            const RANGE: Range = match Range::new($start, $end) {
                Ok(range) => range,
                Err(_) => panic!("empty range literal"),
            };
            RANGE
        }};
    }

    #[test]
    fn range_constructors_are_checked() {
        assert_eq!(Range::from_len(5, 0), Err(RangeError::Empty));
        assert_eq!(Range::from_len(u64::MAX, 1), Err(RangeError::Overflow));
        assert_eq!(
            Range::from_inclusive(0, u64::MAX),
            Err(RangeError::Overflow)
        );
        assert_eq!(
            Range::from_len(0, u64::MAX).map(|range| range.len()),
            Ok(u64::MAX)
        );
    }

    #[test]
    fn split_yields_claims_and_gaps_in_order() {
        let claims = [(r!(10, 20), 1u32), (r!(30, 40), 2u32)];
        let mut it = split(r!(0, 50), claims.iter().copied());
        assert_eq!(it.next(), Some(Ok(Segment::Unclaimed(r!(0, 10)))));
        assert_eq!(
            it.next(),
            Some(Ok(Segment::Claimed {
                range: r!(10, 20),
                owner: 1
            }))
        );
        assert_eq!(it.next(), Some(Ok(Segment::Unclaimed(r!(20, 30)))));
        assert_eq!(
            it.next(),
            Some(Ok(Segment::Claimed {
                range: r!(30, 40),
                owner: 2
            }))
        );
        assert_eq!(it.next(), Some(Ok(Segment::Unclaimed(r!(40, 50)))));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn split_at_the_top_of_u64() {
        let claims = [(r!(TOP - 10, TOP), ())];
        let mut it = split(r!(TOP - 20, TOP), claims.iter().copied());
        assert_eq!(
            it.next(),
            Some(Ok(Segment::Unclaimed(r!(TOP - 20, TOP - 10))))
        );
        assert_eq!(
            it.next(),
            Some(Ok(Segment::Claimed {
                range: r!(TOP - 10, TOP),
                owner: ()
            }))
        );
        assert_eq!(it.next(), None);
    }

    /// A pagemap laid out by hand, as a driver would before `memremap_pages()`.
    fn pagemap(first: u64, last: u64) -> bindings::dev_pagemap {
        // SAFETY: `dev_pagemap` is a C struct of integers, pointers and unions of those, for
        // which all-zero bits are valid values (NULL pointers, zero counts); C code allocates
        // pagemaps with kzalloc() for the same reason.
        let mut pgmap: bindings::dev_pagemap = unsafe { core::mem::zeroed() };
        pgmap.nr_range = 1;
        // SAFETY: Writing the `range` variant of the plain-data union.
        unsafe {
            *pgmap.__bindgen_anon_1.range.as_mut() = bindings::range {
                start: first,
                end: last,
            };
        }
        pgmap
    }

    #[test]
    fn pagemap_ranges_become_pfn_ranges() {
        let mut pgmap = pagemap(0x1_0000_0000, 0x1_0000_0000 + 16 * PAGE - 1);
        // SAFETY: `pgmap` lives on this stack frame for the whole test and has one range.
        let dp = unsafe { DevPagemap::from_raw(&raw const pgmap) };
        assert_eq!(dp.nr_range(), 1);
        assert_eq!(
            pagemap_failure_pages(dp),
            Ok(FailurePages {
                claimed: 0,
                unclaimed: 16,
                ranges: 1
            })
        );
        // SAFETY: as above.
        let ret = unsafe { dev_pagemap_failure(&raw mut pgmap, 0) };
        assert_eq!(ret, EOPNOTSUPP.to_errno());
    }

    #[test]
    fn bad_pagemaps_are_rejected() {
        let mut unaligned = pagemap(0x1000, 0x1fff + 1);
        // SAFETY: `unaligned` lives on this stack frame for the whole test.
        let ret = unsafe { dev_pagemap_failure(&raw mut unaligned, 0) };
        assert_eq!(ret, EINVAL.to_errno());
        let mut reversed = pagemap(0x2000, 0x0fff);
        // SAFETY: as above.
        let ret = unsafe { dev_pagemap_failure(&raw mut reversed, 0) };
        assert_eq!(ret, EINVAL.to_errno());
        // SAFETY: a null pagemap is explicitly allowed.
        let ret = unsafe { dev_pagemap_failure(core::ptr::null_mut(), 0) };
        assert_eq!(ret, EINVAL.to_errno());
    }
}
