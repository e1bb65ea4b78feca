/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Ranged memory failure for device memory (pmem, CXL, NVDIMM).
 *
 * Agents that own ranges of a dax_device (filesystems, device-mapper, test
 * modules) claim them here and receive failures in those ranges as whole
 * ranges, one call per claim.  The core lives in mm/dev_pagemap_failure.rs
 * (Rust); these are the C entry points it exports and the few C hooks it
 * calls.  See Documentation/mm/dev_pagemap_failure.rst.
 */
#ifndef _LINUX_DEV_PAGEMAP_FAILURE_H
#define _LINUX_DEV_PAGEMAP_FAILURE_H

#include <linux/errno.h>
#include <linux/types.h>

struct dax_device;
struct dev_pagemap;
struct dax_failure_registry;

/* A device's name in the registry's logs: a disk name (DISK_NAME_LEN). */
#define DAX_FAILURE_NAME_LEN 32

/**
 * enum dev_pagemap_failure_mode - how device memory failures are delivered
 * @DPF_MODE_OFF: upstream behaviour: the single dax holder is notified once
 *	for the whole device on removal, memory_failure() goes page by page.
 * @DPF_MODE_PFN: dev_pagemap_failure() walks the device one pfn at a time,
 *	each page dispatched on its own (the original proposal's fallback, for
 *	comparison).
 * @DPF_MODE_RANGED: one call per claim (the default).
 *
 * Only a test kernel (CONFIG_DEV_PAGEMAP_FAILURE_TEST) has a mode, selected
 * with dev_pagemap_failure.mode={off,pfn,ranged} on the command line or in
 * /sys/module/dev_pagemap_failure/parameters/mode, to measure the old paths
 * beside the new one; every other kernel with the feature is ranged.
 */
enum dev_pagemap_failure_mode {
	DPF_MODE_OFF,
	DPF_MODE_PFN,
	DPF_MODE_RANGED,
};

/**
 * struct dax_failure_ops - the owner of a claimed range of a dax_device
 * @name: short owner name for logs, debugfs and the dax_failure_dispatch
 *	tracepoint; must live as long as the claim.
 * @notify_failure: [@offset, @offset + @len) of @dax_dev failed, a part of
 *	the claim made with @data.  @mf_flags has MF_MEM_PRE_REMOVE when the
 *	device is going away and the owner must revoke every mapping of the
 *	range before returning.  May sleep.  Must not unregister claims of
 *	@dax_dev (the call would wait for itself).  Returns 0 when handled,
 *	-EOPNOTSUPP to decline (the part then goes to the pfn-at-a-time
 *	fallback, as if unclaimed), or another negative errno, which is
 *	counted and reported to the caller of the failure.  See "Outcomes
 *	and the fallback" in Documentation/mm/dev_pagemap_failure.rst.
 * @shared: the owner passes failures on rather than owning the bytes (a
 *	stacking driver: device-mapper).  Shared claims may overlap one
 *	another (two dm devices, or two targets of one table, over the same
 *	part of a device), and each receives every failure in its range,
 *	once.  A claim without @shared (a filesystem, a cache) owns its bytes:
 *	it overlaps no other claim, shared or not (-EBUSY).
 */
struct dax_failure_ops {
	const char *name;
	int (*notify_failure)(struct dax_device *dax_dev, void *data,
			      u64 offset, u64 len, int mf_flags);
	bool shared;
};

/**
 * struct dax_failure_route - how a stacking driver maps part of a lower device
 * @upper: the stacking driver's own dax_device, where failures are passed on
 * @lower_start: first byte of the lower dax_device that the target uses
 * @lower_len: bytes of the lower dax_device that the target uses
 * @target_start: first byte of the target in @upper
 * @target_len: bytes of the target in @upper
 * @chunk: stripe chunk in bytes (@lower_len for a linear target); 0 if the
 *	target's layout is unknown: a removal is then passed on over the whole
 *	target, and poison is declined (the lower device's fallback handles
 *	exactly the poisoned pages)
 * @stripes: number of devices the target stripes over (1 for linear)
 * @member: which of them the lower device is, from 0
 *
 * Device-mapper claims [@lower_start, @lower_start + @lower_len) of each
 * lower dax_device of its live table and hands the failures it receives to
 * dax_failure_route(), which translates them (see range.rs, struct Route)
 * and dispatches them through the registry of @upper.
 */
struct dax_failure_route {
	struct dax_device *upper;
	u64 lower_start;
	u64 lower_len;
	u64 target_start;
	u64 target_len;
	u64 chunk;
	u32 stripes;
	u32 member;
};

#ifdef CONFIG_DEV_PAGEMAP_FAILURE
int dax_failure_register(struct dax_device *dax_dev, u64 offset, u64 len,
			 const struct dax_failure_ops *ops, void *data);
int dax_failure_unregister(struct dax_device *dax_dev, u64 offset, u64 len,
			   void *data);
int dax_failure_replace(struct dax_device *dax_dev, u64 offset, u64 len,
			void *old_data, const struct dax_failure_ops *ops,
			void *data);
int dax_failure_detach(struct dax_device *dax_dev, u64 offset, u64 len,
		       void *data);
void dax_failure_synchronize(struct dax_device *dax_dev);
int dax_failure_notify(struct dax_device *dax_dev, u64 offset, u64 len,
		       int mf_flags);
int dax_failure_route(const struct dax_failure_route *route, u64 offset,
		      u64 len, int mf_flags);
int dax_failure_notify_pfns(struct dax_device *dax_dev,
			    struct dev_pagemap *pgmap, unsigned long base_pfn,
			    unsigned long pfn, unsigned long nr_pages,
			    int mf_flags);
int dev_pagemap_failure(struct dev_pagemap *pgmap, int mf_flags);
int memory_failure_granule(u64 phys, unsigned int shift, int mf_flags);
unsigned int memory_failure_mask_shift(u64 mask);
#ifdef CONFIG_DEV_PAGEMAP_FAILURE_TEST
enum dev_pagemap_failure_mode dev_pagemap_failure_mode(void);
#else
static inline enum dev_pagemap_failure_mode dev_pagemap_failure_mode(void)
{
	return DPF_MODE_RANGED;
}
#endif

/* For drivers/dax/super.c, which keeps the registry of each dax_device. */
void dax_failure_registry_free(struct dax_failure_registry *registry);
void dax_failure_kill(struct dax_device *dax_dev);
/* For the core: a dax_device's registry, made with its first claim. */
struct dax_failure_registry *dax_failure_registry(struct dax_device *dax_dev);
struct dax_failure_registry *
dax_failure_registry_install(struct dax_device *dax_dev,
			     struct dax_failure_registry *registry);
const char *dax_failure_name(struct dax_device *dax_dev);

void dev_pagemap_failure_cond_resched(void);
void dev_pagemap_failure_put_pagemap(struct dev_pagemap *pgmap);
void dev_pagemap_failure_wait_evicted(struct dev_pagemap *pgmap,
				      const char *name);
#else
static inline int dax_failure_register(struct dax_device *dax_dev, u64 offset,
				       u64 len,
				       const struct dax_failure_ops *ops,
				       void *data)
{
	return -EOPNOTSUPP;
}

static inline int dax_failure_unregister(struct dax_device *dax_dev,
					 u64 offset, u64 len, void *data)
{
	return -EOPNOTSUPP;
}

static inline int dax_failure_replace(struct dax_device *dax_dev, u64 offset,
				      u64 len, void *old_data,
				      const struct dax_failure_ops *ops,
				      void *data)
{
	return -EOPNOTSUPP;
}

static inline int dax_failure_detach(struct dax_device *dax_dev, u64 offset,
				     u64 len, void *data)
{
	return -EOPNOTSUPP;
}

static inline void dax_failure_synchronize(struct dax_device *dax_dev)
{
}

static inline int dax_failure_notify(struct dax_device *dax_dev, u64 offset,
				     u64 len, int mf_flags)
{
	return -EOPNOTSUPP;
}

static inline int dax_failure_route(const struct dax_failure_route *route,
				    u64 offset, u64 len, int mf_flags)
{
	return -EOPNOTSUPP;
}

static inline int dax_failure_notify_pfns(struct dax_device *dax_dev,
					  struct dev_pagemap *pgmap,
					  unsigned long base_pfn,
					  unsigned long pfn,
					  unsigned long nr_pages, int mf_flags)
{
	return -EOPNOTSUPP;
}

static inline int dev_pagemap_failure(struct dev_pagemap *pgmap, int mf_flags)
{
	return -EOPNOTSUPP;
}

static inline int memory_failure_granule(u64 phys, unsigned int shift,
					 int mf_flags)
{
	return -EOPNOTSUPP;
}

static inline unsigned int memory_failure_mask_shift(u64 mask)
{
	return 0;
}

static inline enum dev_pagemap_failure_mode dev_pagemap_failure_mode(void)
{
	return DPF_MODE_OFF;
}

static inline void dax_failure_registry_free(struct dax_failure_registry *r)
{
}

static inline void dax_failure_kill(struct dax_device *dax_dev)
{
}
#endif

#endif /* _LINUX_DEV_PAGEMAP_FAILURE_H */
