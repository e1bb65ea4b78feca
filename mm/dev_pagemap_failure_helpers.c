// SPDX-License-Identifier: GPL-2.0
/*
 * The C side of the ranged memory failure core in mm/dev_pagemap_failure.rs:
 * what Rust in this kernel cannot define yet, a string-valued parameter (test
 * kernels only), the tracepoint bodies and the exports of the Rust entry points to modules
 * (#[export] only fixes the symbol name).
 */
#include <linux/dev_pagemap_failure.h>
#include <linux/memremap.h>
#include <linux/moduleparam.h>
#include <linux/sched.h>
#include <linux/sysfs.h>
#include <linux/string.h>
#include <linux/wait_bit.h>

#define CREATE_TRACE_POINTS
#define CREATE_RUST_TRACE_POINTS
#include <trace/events/dev_pagemap_failure.h>

#ifdef CONFIG_DEV_PAGEMAP_FAILURE_TEST
#undef MODULE_PARAM_PREFIX
#define MODULE_PARAM_PREFIX "dev_pagemap_failure."

static const char * const dpf_mode_names[] = {
	[DPF_MODE_OFF] = "off",
	[DPF_MODE_PFN] = "pfn",
	[DPF_MODE_RANGED] = "ranged",
};

static int dpf_mode = DPF_MODE_RANGED;

static int dpf_mode_set(const char *val, const struct kernel_param *kp)
{
	int mode = sysfs_match_string(dpf_mode_names, val);

	if (mode < 0) {
		pr_err("dev_pagemap_failure: unknown mode '%s', expected off, pfn or ranged\n",
		       val);
		return -EINVAL;
	}
	WRITE_ONCE(dpf_mode, mode);
	return 0;
}

static int dpf_mode_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%s\n", dpf_mode_names[READ_ONCE(dpf_mode)]);
}

static const struct kernel_param_ops dpf_mode_ops = {
	.set = dpf_mode_set,
	.get = dpf_mode_get,
};

module_param_cb(mode, &dpf_mode_ops, NULL, 0644);
MODULE_PARM_DESC(mode, "Failure delivery: ranged (default), pfn or off (upstream)");

/**
 * dev_pagemap_failure_mode() - the current failure delivery mode
 *
 * Test kernels only.  The mode may change at any time through sysfs.  Each
 * failure reads it once, where it enters (memory_failure(),
 * memory_failure_range(), the core's entry points), and a failure that
 * entered in mode off carries MF_UPSTREAM to the driver, the routes and the
 * owners, which look at that flag instead.
 *
 * Return: the mode selected by dev_pagemap_failure.mode.
 */
enum dev_pagemap_failure_mode dev_pagemap_failure_mode(void)
{
	return READ_ONCE(dpf_mode);
}
#endif /* CONFIG_DEV_PAGEMAP_FAILURE_TEST */

/**
 * dev_pagemap_failure_cond_resched() - a reschedule point for the Rust core
 *
 * cond_resched() is a macro; the core calls this between the many calls a
 * large failure of a striped device-mapper target can make.
 */
void dev_pagemap_failure_cond_resched(void)
{
	cond_resched();
}

/**
 * dev_pagemap_failure_put_pagemap() - drop a reference get_dev_pagemap() took
 * @pgmap: the pagemap
 *
 * put_dev_pagemap() is an inline function, which the Rust core cannot call.
 */
void dev_pagemap_failure_put_pagemap(struct dev_pagemap *pgmap)
{
	put_dev_pagemap(pgmap);
}

/**
 * dev_pagemap_failure_wait_evicted() - wait until no page cache holds @pgmap
 * @pgmap: the pagemap of a device that is being removed
 * @name: the device's name, for the log
 *
 * fs/dax.c counts, in @pgmap->dax_entries, the pages of @pgmap that sit in
 * the page cache of a DAX file.  Once every owner of the device's memory
 * has revoked its mappings, the entries left belong to inodes that are
 * being evicted (by an unmount, or by the last iput() of an unlinked file):
 * evict() takes an inode off its superblock's list before it deletes the
 * page cache, so no sweep of the list can see them, and the deletion waits
 * for pinned pages first.  The device's struct pages must outlive those
 * entries, so wait for the evictions, and log once every 10 seconds while
 * they are stuck (a page pinned by a pipe, say).
 *
 * Context: Process context; may sleep for as long as a page stays pinned.
 * The caller holds no lock that an eviction needs.
 */
void dev_pagemap_failure_wait_evicted(struct dev_pagemap *pgmap,
				      const char *name)
{
#ifdef CONFIG_FS_DAX
	atomic_long_t *entries = &pgmap->dax_entries;
	long left;

	while (!wait_var_event_timeout(entries, !atomic_long_read(entries),
				       10 * HZ)) {
		left = atomic_long_read(entries);
		if (!left)
			break;
		pr_info("%s: removal waits for the eviction of %ld DAX page cache entries (pinned pages?)\n",
			name, left);
	}
#endif
}

/*
 * The Rust entry points that modules (pmem, device-mapper, owners) call,
 * each defined in mm/dev_pagemap_failure.rs.
 */
/* dev_pagemap_failure() */
EXPORT_SYMBOL_GPL(dev_pagemap_failure);
/* dax_failure_notify_pfns() */
EXPORT_SYMBOL_GPL(dax_failure_notify_pfns);
/* dax_failure_register() */
EXPORT_SYMBOL_GPL(dax_failure_register);
/* dax_failure_unregister() */
EXPORT_SYMBOL_GPL(dax_failure_unregister);
/* dax_failure_notify() */
EXPORT_SYMBOL_GPL(dax_failure_notify);
/* dax_failure_replace() */
EXPORT_SYMBOL_GPL(dax_failure_replace);
/* dax_failure_detach() */
EXPORT_SYMBOL_GPL(dax_failure_detach);
/* dax_failure_synchronize() */
EXPORT_SYMBOL_GPL(dax_failure_synchronize);
/* dax_failure_route() */
EXPORT_SYMBOL_GPL(dax_failure_route);
