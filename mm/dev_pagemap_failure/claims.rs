// SPDX-License-Identifier: GPL-2.0

//! The claims on one dax_device, as the registry mutex protects them: two trees, the lookups
//! a dispatch makes, and the calls in flight that teardown waits for.
//!
//! An exclusive claim (a filesystem's) owns its bytes and overlaps no other claim; shared
//! claims (device-mapper's routes) may overlap one another, never an exclusive one.

use core::ffi::c_void;

use kernel::{
    bindings,
    rbtree::{RBTree, RBTreeNode},
    str::BStr,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc,
    },
};

use crate::owner::Owner;
use crate::range::Range;

/// Length of a device name, including the terminating NUL.
const NAME_LEN: usize = bindings::DAX_FAILURE_NAME_LEN as usize;

/// A device name: NUL-terminated, at most `NAME_LEN - 1` bytes.
#[derive(Clone, Copy)]
pub(crate) struct Name([u8; NAME_LEN]);

impl Name {
    /// `name`, cut to `NAME_LEN - 1` bytes.
    pub(crate) fn new(name: &[u8]) -> Self {
        let mut bytes = [0u8; NAME_LEN];
        let len = name.len().min(NAME_LEN - 1);
        bytes[..len].copy_from_slice(&name[..len]);
        Self(bytes)
    }

    /// The name without its NUL.
    pub(crate) fn as_bstr(&self) -> &BStr {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(NAME_LEN - 1);
        BStr::from_bytes(&self.0[..len])
    }

    /// The NUL-terminated name, for C.
    pub(crate) fn as_char_ptr(&self) -> *const kernel::ffi::c_char {
        self.0.as_ptr()
    }
}

/// One claim: `range` of the device belongs to `owner`.
///
/// A claim is shared by [`Arc`] between its tree and the calls of its handler in flight, so
/// that it outlives its removal from the tree until those calls end. Its state is changed
/// only under the registry mutex; it is atomic only because the claim is shared.
pub(crate) struct Claim {
    pub(crate) range: Range,
    pub(crate) owner: Owner,
    /// Whether the claim has been told of the removal of the device (a `MF_MEM_PRE_REMOVE`
    /// failure reached it), so that teardown does not tell it twice.
    told: Atomic<bool>,
    /// Calls of the handler in flight.
    calls: Atomic<usize>,
    /// Whether the claim has left its tree: no lookup finds it any more.
    left: Atomic<bool>,
}

impl Claim {
    /// A new claim, not told of a removal, with no call in flight.
    pub(crate) fn new(range: Range, owner: Owner) -> Self {
        Self {
            range,
            owner,
            told: Atomic::new(false),
            calls: Atomic::new(0),
            left: Atomic::new(false),
        }
    }

    /// Whether the claim has been told of the removal of the device.
    pub(crate) fn is_told(&self) -> bool {
        self.told.load(Relaxed)
    }

    /// Calls of the handler in flight.
    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Relaxed)
    }
}

/// Which claims a lookup finds, and whether it marks them as told of a removal.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// Every claim; nothing is marked (poison).
    Failure,
    /// Every claim, each marked as told (a removal).
    Removal,
    /// Only claims not yet told of the removal, each then marked (the device dying).
    Untold,
}

impl Pass {
    /// Whether the lookup finds `claim`, marking it as told if it is a removal.
    fn visit(self, claim: &Claim) -> bool {
        if self == Pass::Untold && claim.is_told() {
            return false;
        }
        if self != Pass::Failure {
            claim.told.store(true, Relaxed);
        }
        true
    }
}

/// The key of a shared claim: its start, its end and a serial number that tells apart claims
/// of the same range. Ordered by start first.
pub(crate) type SharedKey = (u64, u64, u64);

/// What the registry mutex protects.
///
/// # Invariants
///
/// * The claims in `exclusive` are pairwise disjoint, and each is stored under the key
///   `claim.range.end()`, the first byte after it (unique, since claims are non-empty and
///   disjoint). So the first claim whose key exceeds a byte covers that byte or is the first
///   claim after it, and the tree's order is the claims' order.
/// * The claims in `shared` may overlap one another but no claim in `exclusive`. Each is
///   stored under `(start, end, serial)` with a `serial` below `next_serial` used by no other
///   claim, so no two have the same key, and no two have the same range and owner data.
/// * `left_calls` is the sum of the calls in flight of the claims that have left a tree.
pub(crate) struct Claims {
    exclusive: RBTree<u64, Arc<Claim>>,
    shared: RBTree<SharedKey, Arc<Claim>>,
    next_serial: u64,
    /// Calls in flight of claims that have left a tree.
    left_calls: usize,
    /// Dispatches in progress, each from its first lookup to the end of its last call.
    pub(crate) dispatches: usize,
    /// The device is gone: no new claims, no more dispatches.
    pub(crate) dead: bool,
    /// The device's name.
    pub(crate) name: Name,
}

impl Claims {
    /// No claims, for a device not named yet ("dax").
    pub(crate) fn new() -> Self {
        Self {
            exclusive: RBTree::new(),
            shared: RBTree::new(),
            next_serial: 0,
            left_calls: 0,
            dispatches: 0,
            dead: false,
            name: Name::new(b"dax"),
        }
    }

    /// The part from `pos` on of the exclusive claim that covers `pos`, or else the first
    /// exclusive claim after `pos`, if it starts before `end`; with [`Pass::Untold`], the
    /// first such claim that has not been told of the removal yet.
    ///
    /// Clipping at `pos` keeps what a dispatch sees sorted and disjoint even when claims
    /// change between two lookups (a claim unregistered while its handler ran, and a new one
    /// registered over its tail).
    pub(crate) fn next_from(
        &mut self,
        pos: u64,
        end: u64,
        pass: Pass,
    ) -> Option<(Range, Arc<Claim>)> {
        // Only the mutable cursor moves. By the type invariant the first claim ending after
        // `pos` covers `pos` or is the first one after it, and is found in one descent. No
        // claim ends after `u64::MAX`.
        let mut cursor = self
            .exclusive
            .cursor_lower_bound_mut(&pos.checked_add(1)?)?;
        loop {
            let (_, claim) = cursor.current();
            if claim.range.end() <= pos || claim.range.start() >= end {
                return None;
            }
            if pass.visit(claim) {
                let range = Range::new(claim.range.start().max(pos), claim.range.end()).ok()?;
                return Some((range, claim.clone()));
            }
            cursor = cursor.move_next()?;
        }
    }

    /// The first shared claim after the one keyed `after` (from the first one if `None`) that
    /// overlaps `within`, with its key; with [`Pass::Untold`], the first such claim not told
    /// of the removal yet.
    ///
    /// Shared claims may overlap, so one that starts before `within` may still reach into it:
    /// the walk starts at the first shared claim and skips those that end before `within`.
    /// Only stacking drivers make shared claims, a few per device.
    pub(crate) fn next_shared(
        &mut self,
        after: Option<SharedKey>,
        within: &Range,
        pass: Pass,
    ) -> Option<(SharedKey, Arc<Claim>)> {
        let mut cursor = match after {
            Some(key) => self.shared.cursor_lower_bound_mut(&key)?,
            None => self.shared.cursor_front_mut()?,
        };
        loop {
            let (&key, claim) = cursor.current();
            if claim.range.start() >= within.end() {
                return None;
            }
            if Some(key) != after && claim.range.end() > within.start() && pass.visit(claim) {
                return Some((key, claim.clone()));
            }
            cursor = cursor.move_next()?;
        }
    }

    /// Whether `range` overlaps an exclusive claim.
    pub(crate) fn overlaps_exclusive(&self, range: &Range) -> bool {
        // The only candidate is the first claim ending after `range` starts (type invariant):
        // every claim before it ends at or before that, and every claim after it starts after
        // the candidate, so it overlaps `range` only if the candidate does.
        range
            .start()
            .checked_add(1)
            .and_then(|after_start| self.exclusive.cursor_lower_bound(&after_start))
            .is_some_and(|cursor| cursor.current().1.range.overlaps(range))
    }

    /// Whether `range` overlaps a shared claim.
    pub(crate) fn overlaps_shared(&self, range: &Range) -> bool {
        self.shared
            .iter()
            .take_while(|(_, claim)| claim.range.start() < range.end())
            .any(|(_, claim)| claim.range.overlaps(range))
    }

    /// The key of the shared claim of exactly `range` made with `data`.
    pub(crate) fn find_shared(&mut self, range: &Range, data: *mut c_void) -> Option<SharedKey> {
        // Only the mutable cursor moves.
        let mut cursor = self
            .shared
            .cursor_lower_bound_mut(&(range.start(), range.end(), 0))?;
        loop {
            let (&key, claim) = cursor.current();
            if claim.range != *range {
                return None;
            }
            if claim.owner.data() == data {
                return Some(key);
            }
            cursor = cursor.move_next()?;
        }
    }

    /// The exclusive claim of exactly `range` made with `data`.
    fn find_exclusive(&self, range: &Range, data: *mut c_void) -> Option<&Arc<Claim>> {
        self.exclusive
            .get(&range.end())
            .filter(|claim| claim.range == *range && claim.owner.data() == data)
    }

    /// Inserts an exclusive claim, in the node reserved for it. The caller has checked that
    /// it overlaps no claim.
    pub(crate) fn insert_exclusive(&mut self, node: RBTreeNode<u64, Arc<Claim>>) {
        // INVARIANT: the claim overlaps no claim (the caller's check) and `node` is keyed by
        // its end (`Registry::register`).
        self.exclusive.insert(node);
    }

    /// Takes a serial for a new shared claim; `None` once 2^64 were taken.
    pub(crate) fn take_serial(&mut self) -> Option<u64> {
        let serial = self.next_serial;
        // Registrations are serialised by the mutex and each takes one serial: 2^64 of them
        // do not happen, but never reuse one.
        self.next_serial = serial.checked_add(1)?;
        Some(serial)
    }

    /// Inserts a shared claim, in the node reserved for it. The caller has checked that it
    /// overlaps no exclusive claim and repeats no range and data, and keyed it with a serial
    /// from [`Claims::take_serial`].
    pub(crate) fn insert_shared(&mut self, node: RBTreeNode<SharedKey, Arc<Claim>>) {
        // INVARIANT: the caller's checks; the serial is new.
        self.shared.insert(node);
    }

    /// Takes the claim of exactly `range` made with `data` out of its tree: no lookup finds it
    /// any more. Its calls in flight are counted in the claims that left.
    pub(crate) fn remove(&mut self, range: &Range, data: *mut c_void) -> Option<Arc<Claim>> {
        let claim = if self.find_exclusive(range, data).is_some() {
            self.exclusive.remove(&range.end())?
        } else {
            let key = self.find_shared(range, data)?;
            self.shared.remove(&key)?
        };
        claim.left.store(true, Relaxed);
        // INVARIANT: the claim's calls join the sum of those of the claims that left.
        self.left_calls = self.left_calls.saturating_add(claim.calls());
        Some(claim)
    }

    /// Puts `claim` in place of the claim of exactly its range made with `old_data`, in its
    /// tree under its key, told of the removal if the old one was; returns the old one, which
    /// has left. The two must both be exclusive or both shared, and the new data must not
    /// claim the range already.
    pub(crate) fn replace(
        &mut self,
        old_data: *mut c_void,
        claim: Arc<Claim>,
    ) -> Option<Arc<Claim>> {
        let range = claim.range;
        let new_data = claim.owner.data();
        let old = if claim.owner.is_shared() {
            let key = self.find_shared(&range, old_data)?;
            if new_data != old_data && self.find_shared(&range, new_data).is_some() {
                return None;
            }
            let slot = self.shared.get_mut(&key)?;
            claim.told.store(slot.is_told(), Relaxed);
            // INVARIANT: same range and key; the new data claims no other claim of the range
            // (checked above).
            core::mem::replace(slot, claim)
        } else {
            self.find_exclusive(&range, old_data)?;
            let slot = self.exclusive.get_mut(&range.end())?;
            claim.told.store(slot.is_told(), Relaxed);
            // INVARIANT: same range, same key.
            core::mem::replace(slot, claim)
        };
        old.left.store(true, Relaxed);
        // INVARIANT: the old claim's calls join the sum of those of the claims that left.
        self.left_calls = self.left_calls.saturating_add(old.calls());
        Some(old)
    }

    /// Counts a call of `claim`'s handler in flight: the claim's owner stays valid until
    /// [`Claims::end_call`].
    pub(crate) fn begin_call(&mut self, claim: &Claim) {
        claim.calls.add(1, Relaxed);
    }

    /// Ends a call counted by [`Claims::begin_call`]; returns whether a teardown may be
    /// waiting for it (the claim has left its tree).
    pub(crate) fn end_call(&mut self, claim: &Claim) -> bool {
        claim.calls.fetch_sub(1, Relaxed);
        if !claim.left.load(Relaxed) {
            return false;
        }
        // INVARIANT: the call was counted in `left_calls` when the claim left.
        self.left_calls = self.left_calls.saturating_sub(1);
        true
    }

    /// Whether a call of a claim that left a tree is still in flight.
    pub(crate) fn left_calls(&self) -> usize {
        self.left_calls
    }

    /// Calls `f` for each claim: the exclusive ones in order, then the shared ones in order.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Claim)) {
        let exclusive = self.exclusive.values();
        for claim in Iterator::chain(exclusive, self.shared.values()) {
            f(claim);
        }
    }
}
