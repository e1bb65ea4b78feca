// SPDX-License-Identifier: GPL-2.0

//! Device memory pagemaps.
//!
//! C header: [`include/linux/memremap.h`](srctree/include/linux/memremap.h)

use crate::{
    bindings,
    ffi::{c_int, c_ulong},
    types::Opaque,
};

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
/// # Invariants
///
/// The wrapped `dev_pagemap` has `nr_range` entries in its `ranges` array (at least one), and
/// neither `nr_range` nor the ranges change while a reference to this type exists: they are
/// set before `memremap_pages()` and stay fixed until `memunmap_pages()`.
#[repr(transparent)]
pub struct DevPagemap(Opaque<bindings::dev_pagemap>);

impl DevPagemap {
    /// Creates a reference to a [`DevPagemap`] from a valid pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a `struct dev_pagemap` that stays valid for reads for `'a`, whose
    /// `nr_range` and `ranges` describe its range array and do not change during `'a` (true
    /// between `memremap_pages()` and `memunmap_pages()`).
    pub unsafe fn from_raw<'a>(ptr: *const bindings::dev_pagemap) -> &'a Self {
        // SAFETY: `DevPagemap` is a transparent wrapper of `Opaque<dev_pagemap>`, which has the
        // layout of `dev_pagemap`; the caller guarantees validity for `'a`.
        unsafe { &*ptr.cast() }
    }

    /// Returns the raw pointer to the C `struct dev_pagemap`.
    pub fn as_raw(&self) -> *mut bindings::dev_pagemap {
        self.0.get()
    }

    /// The number of physical ranges of this pagemap.
    pub fn nr_range(&self) -> usize {
        // SAFETY: `self.0.get()` is valid for reads and `nr_range` does not change, by the type
        // invariants.
        let nr = unsafe { (*self.0.get()).nr_range };
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
        // SAFETY: `self.0.get()` is valid for reads by the type invariants; `ops` is set before
        // `memremap_pages()` and does not change afterwards.
        let ops = unsafe { (*self.0.get()).ops };
        if ops.is_null() {
            return None;
        }
        // SAFETY: A non-null `ops` points to the driver's operations, which outlive the
        // pagemap.
        unsafe { (*ops).memory_failure }
    }

    /// The physical ranges of this pagemap, in the order the driver gave them.
    pub fn ranges(&self) -> impl Iterator<Item = PhysRange> + '_ {
        // SAFETY: `self.0.get()` is valid for reads by the type invariants; taking the address
        // of a field does not read it.
        let base = unsafe { core::ptr::addr_of!((*self.0.get()).__bindgen_anon_1) }
            .cast::<bindings::range>();
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
