// SPDX-License-Identifier: GPL-2.0
/*
 * Device-mapper routing of DAX memory failures.
 *
 * A dm device built on DAX-capable devices (pmem) is itself a dax_device.
 * When memory of a device below fails or goes away, whoever uses the dm
 * device (a filesystem, another dm device) must hear of it, in the dm
 * device's own offsets.  So the live table claims, on each lower dax_device,
 * exactly the part each of its targets uses (dax_failure_register()), and
 * hands every failure it receives to dax_failure_route(), which translates
 * it (linear: one shift; striped: exact chunks, or the whole target when the
 * failure covers all the target uses of that device; unknown layout: a
 * removal over the whole target, poison declined) and dispatches it
 * through the dm device's own registry.  Stacks of dm devices work by
 * construction: the dm device above claims the one below.
 *
 * Table swaps (dm_swap_table(), under md->suspend_lock, with the device
 * suspended) move the claims in two steps around the publication of the new
 * table, so that at every moment each byte below that either table maps is
 * claimed by a table that is live or about to be:
 *
 *  1. Before the new table is published, dm_dax_failure_prepare() registers
 *     its claims, except those on exactly the lower range of a claim of the
 *     live table (one new claim for each such old claim; any more are
 *     registered).  Claims are shared, so they may overlap the old table's.
 *     Until the table is live such a claim passes removals up (whatever
 *     maps the device above must let go of the memory, whichever table it
 *     went through) and declines poison, which the live table's claim or
 *     the lower device's fallback takes: the claim describes mappings
 *     nobody can have made yet.
 *  2. After the new table is published, dm_dax_failure_handover() marks
 *     those claims live, lets each remaining claim of the new table take
 *     over the old table's claim of the same lower range atomically
 *     (dax_failure_replace()), the common case of a reload that maps the
 *     same devices, and only then detaches what is left of the old table.
 *
 * So a removal racing a swap always finds a claim of one of the tables, and
 * is passed up to the owners of the dm device; a claim that cannot be made
 * because the device below is already dead (-ENXIO) is of a device no
 * mapping through the new table can reach (dax_direct_access() fails).
 *
 * Nothing here waits for a handler of the old table in flight: the device
 * is suspended, and a handler may be waiting for I/O to it (the filesystem
 * above reading its metadata to look the poison up), which only resumes
 * after the swap.  A handler that found an old claim before the hand-over
 * delivers its failure through the old table's routes, which describe the
 * mappings the failure hit; dm_dax_failure_release() waits for such
 * handlers (dax_failure_synchronize()) before the old table is freed, which
 * do_resume() does after resuming the device.  For the same reason the
 * claims are allocated with GFP_NOIO.
 */
#include <linux/dax.h>
#include <linux/dev_pagemap_failure.h>
#include <linux/overflow.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include "dm-core.h"

#define DM_MSG_PREFIX "dax failure"

/* One claim of a table on one lower dax_device. */
struct dm_dax_failure_claim {
	struct list_head list;
	struct dax_device *lower;
	struct dax_failure_route route;
	bool claimed;		/* registered on @lower */
	bool detached;		/* was, a handler may still be running */
	bool live;		/* its table is live (read by the handler) */
	/* During a swap: the claim of the old table that this one takes over */
	struct dm_dax_failure_claim *takes_over;
	bool promised;		/* a claim of the next table takes this over */
};

static int dm_dax_failure(struct dax_device *lower, void *data, u64 offset,
			  u64 len, int mf_flags)
{
	struct dm_dax_failure_claim *claim = data;

	/* A table being swapped in: see the ordering at the top of this file. */
	if (!READ_ONCE(claim->live) && !(mf_flags & MF_MEM_PRE_REMOVE))
		return -EOPNOTSUPP;
	return dax_failure_route(&claim->route, offset, len, mf_flags);
}

static const struct dax_failure_ops dm_dax_failure_ops = {
	.name = "dm",
	.notify_failure = dm_dax_failure,
	/* Other dm devices and targets may route the same lower bytes. */
	.shared = true,
};

struct dm_dax_failure_walk {
	struct dm_table *t;
	unsigned int stripes;
	sector_t chunk;
	unsigned int member;
};

static bool dm_sectors_to_bytes(sector_t sectors, u64 *bytes)
{
	return !check_shl_overflow((u64)sectors, SECTOR_SHIFT, bytes);
}

/* iterate_devices callout: one claim for the part of @dev that @ti uses. */
static int dm_dax_failure_add(struct dm_target *ti, struct dm_dev *dev,
			      sector_t start, sector_t len, void *data)
{
	struct dm_dax_failure_walk *walk = data;
	struct dm_dax_failure_claim *claim;
	struct dax_failure_route route = {
		.upper = walk->t->md->dax_dev,
		.stripes = walk->stripes,
		.member = walk->member++,
	};

	if (!dev->dax_dev)
		return 0;
	if (!dm_sectors_to_bytes(get_start_sect(dev->bdev) + start,
				 &route.lower_start) ||
	    !dm_sectors_to_bytes(len, &route.lower_len) ||
	    !dm_sectors_to_bytes(ti->begin, &route.target_start) ||
	    !dm_sectors_to_bytes(ti->len, &route.target_len) ||
	    !dm_sectors_to_bytes(walk->chunk, &route.chunk)) {
		DMERR("%s: %s target on %s is too large to route failures",
		      dm_device_name(walk->t->md), ti->type->name, dev->name);
		return 0;
	}

	claim = kzalloc(sizeof(*claim), GFP_NOIO);
	if (!claim)
		return -ENOMEM;
	claim->lower = dev->dax_dev;
	claim->route = route;
	list_add_tail(&claim->list, &walk->t->dax_failure_claims);
	return 0;
}

/* The claims @t needs: one per (DAX target, lower DAX device). */
static int dm_dax_failure_build(struct dm_table *t)
{
	struct dm_dax_failure_walk walk = { .t = t };
	unsigned int i;
	int r;

	for (i = 0; i < t->num_targets; i++) {
		struct dm_target *ti = dm_table_get_target(t, i);

		if (!ti->type->direct_access || !ti->type->iterate_devices)
			continue;
		walk.member = 0;
		if (ti->type->dax_failure_layout) {
			walk.stripes = ti->type->dax_failure_layout(ti,
								    &walk.chunk);
		} else {
			/*
			 * dax_failure_route() passes a removal on over the
			 * whole target and declines poison.
			 */
			walk.stripes = 1;
			walk.chunk = 0;
			DMWARN("%s: %s target: no DAX layout, removals go to all of it",
			       dm_device_name(t->md), ti->type->name);
		}
		r = ti->type->iterate_devices(ti, dm_dax_failure_add, &walk);
		if (r)
			return r;
	}
	return 0;
}

static struct dm_dax_failure_claim *
dm_dax_failure_find(struct dm_table *t, struct dm_dax_failure_claim *like)
{
	struct dm_dax_failure_claim *claim;

	list_for_each_entry(claim, &t->dax_failure_claims, list) {
		if (claim->claimed && !claim->promised &&
		    claim->lower == like->lower &&
		    claim->route.lower_start == like->route.lower_start &&
		    claim->route.lower_len == like->route.lower_len)
			return claim;
	}
	return NULL;
}

/* Remove @claim from its device without waiting for its handler. */
static void dm_dax_failure_detach(struct dm_dax_failure_claim *claim)
{
	dax_failure_detach(claim->lower, claim->route.lower_start,
			   claim->route.lower_len, claim);
	claim->claimed = false;
	claim->detached = true;
}

/* Register @claim on its device below; log what cannot be claimed. */
static void dm_dax_failure_claim(struct dm_table *t,
				 struct dm_dax_failure_claim *claim)
{
	int r = dax_failure_register(claim->lower, claim->route.lower_start,
				     claim->route.lower_len,
				     &dm_dax_failure_ops, claim);

	if (r)
		DMWARN("%s: cannot claim bytes %llu+%llu below: %d",
		       dm_device_name(t->md), claim->route.lower_start,
		       claim->route.lower_len, r);
	else
		claim->claimed = true;
}

/**
 * dm_dax_failure_prepare - claim below what a table about to go live maps
 * @md: the mapped device, whose live table (or none) is about to go
 * @new: the table that dm_swap_table() is about to make live
 *
 * Step 1 of the ordering at the top of this file.  A claim that cannot be
 * made (another agent owns an overlapping range, the device below is gone)
 * is logged: failures there then go to whoever owns the range, or to the
 * fallback of the device below.  A table that fails to go live keeps its
 * claims, which never pass poison up, until dm_dax_failure_release().
 *
 * Context: Process context, under md->suspend_lock, the device suspended.
 */
void dm_dax_failure_prepare(struct mapped_device *md, struct dm_table *new)
{
	struct dm_table *old = rcu_dereference_protected(md->map,
					lockdep_is_held(&md->suspend_lock));
	struct dm_dax_failure_claim *claim, *prev;
	unsigned int noio;
	int r;

	if (!new->md->dax_dev)
		return;
	/* The device is suspended: no allocation may wait for its I/O. */
	noio = memalloc_noio_save();
	r = dm_dax_failure_build(new);
	if (r)
		DMERR("%s: cannot route DAX failures of every target: %d",
		      dm_device_name(new->md), r);
	list_for_each_entry(claim, &new->dax_failure_claims, list) {
		/* Each old claim is taken over by one new claim at most. */
		prev = old ? dm_dax_failure_find(old, claim) : NULL;
		if (prev) {
			prev->promised = true;
			claim->takes_over = prev;
		} else {
			dm_dax_failure_claim(new, claim);
		}
	}
	memalloc_noio_restore(noio);
}

/**
 * dm_dax_failure_abort - undo dm_dax_failure_prepare() for a table that
 * did not go live
 * @new: the table that dm_swap_table() failed to make live
 *
 * Its claims never pass a failure up again; dm_dax_failure_release() waits
 * for handlers in flight when the table is destroyed.
 *
 * Context: Process context, under md->suspend_lock.
 */
void dm_dax_failure_abort(struct dm_table *new)
{
	struct dm_dax_failure_claim *claim;

	list_for_each_entry(claim, &new->dax_failure_claims, list) {
		if (claim->takes_over) {
			claim->takes_over->promised = false;
			claim->takes_over = NULL;
		}
		if (claim->claimed)
			dm_dax_failure_detach(claim);
	}
}

/**
 * dm_dax_failure_handover - move the failure claims from @old to @new
 * @old: the table that was live, or NULL
 * @new: the table that was just made live, after dm_dax_failure_prepare()
 *
 * Step 2 of the ordering at the top of this file.
 *
 * Context: Process context, under md->suspend_lock.
 */
void dm_dax_failure_handover(struct dm_table *old, struct dm_table *new)
{
	struct dm_dax_failure_claim *claim, *prev;
	unsigned int noio;

	if (!new->md->dax_dev)
		return;
	noio = memalloc_noio_save();
	list_for_each_entry(claim, &new->dax_failure_claims, list) {
		/* The table is live: its claims pass poison up from now on. */
		WRITE_ONCE(claim->live, true);
		/* Without a claim to take over, prepare claimed, or tried. */
		prev = claim->takes_over;
		if (!prev)
			continue;
		claim->takes_over = NULL;
		prev->promised = false;
		if (prev->claimed &&
		    !dax_failure_replace(claim->lower, claim->route.lower_start,
					 claim->route.lower_len, prev,
					 &dm_dax_failure_ops, claim)) {
			prev->claimed = false;
			prev->detached = true;
			claim->claimed = true;
			continue;
		}
		/* The old claim went away meanwhile: claim afresh. */
		dm_dax_failure_claim(new, claim);
	}
	if (old) {
		list_for_each_entry(prev, &old->dax_failure_claims, list) {
			if (prev->claimed)
				dm_dax_failure_detach(prev);
		}
	}
	memalloc_noio_restore(noio);
}

/**
 * dm_dax_failure_release - drop the failure claims of a table
 * @t: a table that is being destroyed
 *
 * Waits for the handlers in flight; afterwards nothing routes through @t.
 *
 * Context: Process context; the device is not suspended for a swap (the
 * handlers may wait for its I/O).
 */
void dm_dax_failure_release(struct dm_table *t)
{
	struct dm_dax_failure_claim *claim, *next;

	list_for_each_entry(claim, &t->dax_failure_claims, list) {
		if (claim->claimed)
			dm_dax_failure_detach(claim);
		if (claim->detached)
			dax_failure_synchronize(claim->lower);
	}
	list_for_each_entry_safe(claim, next, &t->dax_failure_claims, list) {
		list_del(&claim->list);
		kfree(claim);
	}
}
