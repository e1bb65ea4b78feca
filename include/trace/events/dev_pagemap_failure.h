/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tracepoints of the ranged memory failure core (mm/dev_pagemap_failure.rs).
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM dev_pagemap_failure

#if !defined(_TRACE_DEV_PAGEMAP_FAILURE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _TRACE_DEV_PAGEMAP_FAILURE_H

#include <linux/tracepoint.h>

/*
 * One call to the handler of a claim: @dev is the dax_device (named after
 * its block device), [@offset, @offset + @len) the bytes handed to @owner,
 * @flags the MF_* flags, @ret what the handler returned.
 */
TRACE_EVENT(dax_failure_dispatch,
	    TP_PROTO(const char *dev, u64 offset, u64 len, int flags,
		     const char *owner, int ret),
	    TP_ARGS(dev, offset, len, flags, owner, ret),
	    TP_STRUCT__entry(__string(dev, dev)
			     __field(u64, offset)
			     __field(u64, len)
			     __field(int, flags)
			     __string(owner, owner)
			     __field(int, ret)),
	    TP_fast_assign(__assign_str(dev);
			   __entry->offset = offset;
			   __entry->len = len;
			   __entry->flags = flags;
			   __assign_str(owner);
			   __entry->ret = ret;),
	    TP_printk("dev=%s offset=0x%llx len=0x%llx flags=0x%x owner=%s ret=%d",
		      __get_str(dev), __entry->offset, __entry->len,
		      __entry->flags, __get_str(owner), __entry->ret)
);

#endif /* _TRACE_DEV_PAGEMAP_FAILURE_H */

/* This part must be outside protection */
#include <trace/define_trace.h>
