// SPDX-License-Identifier: GPL-2.0

//! `/sys/kernel/debug/dev_pagemap_failure/`: what every kernel with the feature shows.
//!
//! * `devices` (read-only): one line of counters per dax_device that has a registry (one that
//!   was claimed at least once), then one line per claim
//!   (`shared` marks the claims that may overlap, see [`crate::registry`]).
//!
//! With `CONFIG_DEV_PAGEMAP_FAILURE_TEST` the test interfaces of [`crate::testing`] join it
//! in the same directory; without it nothing here writes anything.

use kernel::{
    debugfs, fmt,
    prelude::*,
    sync::{
        atomic::{Acquire, Atomic, Relaxed, Release},
        Arc,
    },
};

use crate::registry::Registry;

kernel::sync::global_lock! {
    // SAFETY: `init()` is called from the module initializer, before `REGISTRIES_READY` is set;
    // nothing locks it before `REGISTRIES_READY` is seen set.
    unsafe(uninit) static REGISTRIES: Mutex<KVec<Arc<Registry>>> = KVec::new();
}

/// Whether [`REGISTRIES`] is initialised. The core is built in and initialises before drivers
/// probe, so in practice every registry is listed; one allocated earlier is simply not shown.
static REGISTRIES_READY: Atomic<bool> = Atomic::new(false);

/// Lists a new registry in `devices`.
pub(crate) fn list(registry: &Arc<Registry>) -> Result {
    if REGISTRIES_READY.load(Acquire) {
        REGISTRIES.lock().push(registry.clone(), GFP_KERNEL)?;
    }
    Ok(())
}

/// Removes a registry whose device is being freed from `devices`.
pub(crate) fn unlist(registry: &Arc<Registry>) {
    if REGISTRIES_READY.load(Acquire) {
        let mut registries = REGISTRIES.lock();
        if let Some(i) = registries.iter().position(|r| Arc::ptr_eq(r, registry)) {
            // The list's reference; the caller's is its own.
            let _ = registries.remove(i);
        }
    }
}

/// The directory and its files; removed when dropped (the files first).
pub(crate) struct Files {
    _devices: Pin<KBox<debugfs::File<DevicesFile>>>,
    #[cfg(CONFIG_DEV_PAGEMAP_FAILURE_TEST)]
    _test: crate::testing::Files,
    _dir: debugfs::Dir,
}

impl Files {
    /// Creates the directory.
    ///
    /// # Safety
    ///
    /// Called at most once (from the module initializer).
    pub(crate) unsafe fn new() -> Result<Self> {
        // SAFETY: This runs at most once (the caller's guarantee), before `REGISTRIES_READY`
        // allows any use of `REGISTRIES`.
        unsafe { REGISTRIES.init() };
        REGISTRIES_READY.store(true, Release);
        let dir = debugfs::Dir::new(c"dev_pagemap_failure");
        let devices = KBox::pin_init(
            dir.read_callback_file(c"devices", DevicesFile, &DevicesFile::show),
            GFP_KERNEL,
        )?;
        Ok(Self {
            _devices: devices,
            #[cfg(CONFIG_DEV_PAGEMAP_FAILURE_TEST)]
            _test: crate::testing::Files::new(&dir)?,
            _dir: dir,
        })
    }
}

/// `devices`: one line of counters per registry, then one line per claim.
struct DevicesFile;

impl DevicesFile {
    fn show(_: &Self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !REGISTRIES_READY.load(Acquire) {
            return Ok(());
        }
        let registries = REGISTRIES.lock();
        for registry in registries.iter() {
            let stats = &registry.stats;
            let state = if registry.is_dead() { "dead" } else { "live" };
            let name = registry.name();
            writeln!(
                f,
                "{} state={} claims={} dispatches={} dispatched_bytes={} \
                     fallback_pages={} handler_errors={}",
                core::str::from_utf8(name.as_bstr()).unwrap_or("?"),
                state,
                stats.claims.load(Relaxed),
                stats.dispatches.load(Relaxed),
                stats.dispatched_bytes.load(Relaxed),
                stats.fallback_pages.load(Relaxed),
                stats.handler_errors.load(Relaxed),
            )?;
            let mut result = Ok(());
            registry.for_each_claim(|range, owner| {
                if result.is_ok() {
                    result = writeln!(
                        f,
                        "  claim {:#x}-{:#x} {}{}",
                        range.start(),
                        range.end(),
                        owner.name().to_str().unwrap_or("?"),
                        if owner.is_shared() { " shared" } else { "" }
                    );
                }
            });
            result?;
        }
        Ok(())
    }
}
