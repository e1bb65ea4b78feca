// SPDX-License-Identifier: GPL-2.0

//! Device memory pagemaps.
//!
//! C header: [`include/linux/memremap.h`](srctree/include/linux/memremap.h)

use crate::{
    bindings,
    ffi::{c_int, c_ulong},
};
use core::{marker::PhantomData, ptr::NonNull};

/// A physical address range of a [`DevPagemap`], with inclusive bounds as in the C
/// `struct range`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysRange {
    /// The first byte of the range.
    pub first: u64,
    /// The last byte of the range (inclusive).
    pub last: u64,
}

/// A `struct dev_pagemap`: the struct pages that `memremap_pages()` created for a range of
/// device memory (pmem, CXL, device-private memory).
///
/// This holds the C pointer rather than being a reference to the struct, because the ranges
/// live in a flexible array past the end of `struct dev_pagemap`, which a Rust reference to the
/// struct would not cover.
///
/// # Invariants
///
/// `ptr` points to a `dev_pagemap`, valid for reads for `'a`, that has `nr_range` entries in
/// its `ranges` array, and neither `nr_range`, the ranges nor `ops` change during `'a`: they
/// are set before `memremap_pages()` and stay fixed until `memunmap_pages()`.
pub struct DevPagemap<'a> {
    ptr: NonNull<bindings::dev_pagemap>,
    _pagemap: PhantomData<&'a bindings::dev_pagemap>,
}

impl<'a> DevPagemap<'a> {
    /// Wraps a pointer to a live pagemap, or returns `None` for a null pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must be null or point to a `struct dev_pagemap` that stays valid for reads for
    /// `'a`, whose `nr_range` and `ranges` describe its range array and do not change during
    /// `'a` (true between `memremap_pages()` and `memunmap_pages()`).
    pub unsafe fn from_raw(ptr: *const bindings::dev_pagemap) -> Option<Self> {
        // INVARIANT: the caller's guarantee, for a non-null pointer.
        NonNull::new(ptr.cast_mut()).map(|ptr| Self {
            ptr,
            _pagemap: PhantomData,
        })
    }

    /// Returns the raw pointer to the C `struct dev_pagemap`.
    pub fn as_raw(&self) -> *mut bindings::dev_pagemap {
        self.ptr.as_ptr()
    }

    /// The number of physical ranges of this pagemap.
    pub fn nr_range(&self) -> usize {
        // SAFETY: `ptr` is valid for reads and `nr_range` does not change, by the type
        // invariants.
        let nr = unsafe { (*self.ptr.as_ptr()).nr_range };
        usize::try_from(nr).unwrap_or(0)
    }

    /// Whether the driver implements the ranged `memory_failure` operation.
    pub fn has_memory_failure(&self) -> bool {
        self.memory_failure_op().is_some()
    }

    fn memory_failure_op(
        &self,
    ) -> Option<unsafe extern "C" fn(*mut bindings::dev_pagemap, c_ulong, c_ulong, c_int) -> c_int>
    {
        // SAFETY: `ptr` is valid for reads by the type invariants; `ops` is set before
        // `memremap_pages()` and does not change afterwards.
        let ops = unsafe { (*self.ptr.as_ptr()).ops };
        if ops.is_null() {
            return None;
        }
        // SAFETY: A non-null `ops` points to the driver's operations, which outlive the
        // pagemap.
        unsafe { (*ops).memory_failure }
    }

    /// The address of `pgmap->ranges[0]`. In C, `ranges` is a flexible array in an anonymous
    /// union with `range` (`range` is `ranges[0]`); bindgen names the union
    /// `__bindgen_anon_1`, and this is the only place that spells that name.
    fn ranges_ptr(&self) -> *const bindings::range {
        // SAFETY: `ptr` is valid for reads by the type invariants; taking the address of a
        // field does not read it. The pointer keeps the provenance of the C pointer, which
        // covers the flexible array.
        unsafe { core::ptr::addr_of!((*self.ptr.as_ptr()).__bindgen_anon_1) }.cast()
    }

    /// The physical ranges of this pagemap, in the order the driver gave them.
    pub fn ranges(&self) -> impl Iterator<Item = PhysRange> + '_ {
        let base = self.ranges_ptr();
        (0..self.nr_range()).map(move |i| {
            // SAFETY: The anonymous union starts with the flexible array `ranges`, which has
            // `nr_range` entries by the type invariants, and `i < nr_range`.
            let range = unsafe { &*base.add(i) };
            PhysRange {
                first: range.start,
                last: range.end,
            }
        })
    }
}
