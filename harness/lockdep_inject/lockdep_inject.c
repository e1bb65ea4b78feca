// SPDX-License-Identifier: GPL-2.0
/*
 * The test harness's own module, not part of the series: loading it takes
 * two locks in both orders, an inversion that lockdep must report.  The
 * harness loads it (dpf.inject_lockdep_bug=1 on the guest's command line)
 * to prove that a kernel splat turns `make check` red.  Taking the locks in
 * turn cannot deadlock by itself.
 */
#include <linux/module.h>
#include <linux/spinlock.h>

static DEFINE_SPINLOCK(lock_a);
static DEFINE_SPINLOCK(lock_b);

static int __init lockdep_inject_init(void)
{
	pr_warn("lockdep_inject: taking two locks in both orders on purpose\n");
	spin_lock(&lock_a);
	spin_lock(&lock_b);
	spin_unlock(&lock_b);
	spin_unlock(&lock_a);

	spin_lock(&lock_b);
	spin_lock(&lock_a);
	spin_unlock(&lock_a);
	spin_unlock(&lock_b);
	return 0;
}

static void __exit lockdep_inject_exit(void)
{
}

module_init(lockdep_inject_init);
module_exit(lockdep_inject_exit);
MODULE_DESCRIPTION("A deliberate lock inversion for the dev_pagemap_failure test harness");
MODULE_LICENSE("GPL");
