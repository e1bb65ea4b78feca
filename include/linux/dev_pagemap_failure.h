/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Ranged memory failure for device memory (pmem, CXL, NVDIMM).
 *
 * The core lives in mm/dev_pagemap_failure.rs (Rust); these are the C entry
 * points it exports.  See Documentation/mm/dev_pagemap_failure.rst.
 */
#ifndef _LINUX_DEV_PAGEMAP_FAILURE_H
#define _LINUX_DEV_PAGEMAP_FAILURE_H

#include <linux/errno.h>

struct dev_pagemap;

#ifdef CONFIG_DEV_PAGEMAP_FAILURE
int dev_pagemap_failure(struct dev_pagemap *pgmap, int mf_flags);
#else
static inline int dev_pagemap_failure(struct dev_pagemap *pgmap, int mf_flags)
{
	return -EOPNOTSUPP;
}
#endif

#endif /* _LINUX_DEV_PAGEMAP_FAILURE_H */
