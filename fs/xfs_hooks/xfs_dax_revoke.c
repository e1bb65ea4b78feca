// SPDX-License-Identifier: GPL-2.0
/*
 * Revoke every DAX mapping of an XFS filesystem whose device is going away.
 *
 * Upstream's notify_failure handler answers MF_MEM_PRE_REMOVE by walking the
 * reverse-mapping btree over the whole device and killing the processes that
 * map each file page by page: the cost grows with the device and with the
 * rmap tree, it needs rmapbt=1, and mappings of a filesystem without it
 * survive the removal.  Once the device is going away the filesystem is
 * dead, so there is nothing to look up: shut it down, then unmap every DAX
 * file that has mappings.  The cost is one pass over the in-core inodes plus
 * the pages that are actually mapped or cached.
 *
 * This lives outside fs/xfs/ to keep the patch to XFS small; it is built into
 * the xfs object and uses its headers.
 */
#include "xfs_platform.h"
#include "xfs_shared.h"
#include "xfs_format.h"
#include "xfs_log_format.h"
#include "xfs_trans_resv.h"
#include "xfs_mount.h"
#include "xfs_inode.h"
#include "xfs_notify_failure.h"
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/dax.h>
#include <linux/pagemap.h>
#include <linux/sched.h>

/*
 * Revoke every mapping of @inode's DAX pages and forget the pages.
 *
 * Taking XFS_MMAPLOCK (the invalidate lock) exclusively waits for page faults
 * in flight: a fault that started before the shutdown cannot map a page after
 * the unmap, and every later fault sees the shutdown and gets SIGBUS.
 *
 * Unmapping is not enough: the page cache of a DAX file holds entries that
 * point at the device's struct pages, which disappear with the device, and
 * eviction would walk them at unmount.  So first write back (flush from the
 * CPU caches to the media) what the processes stored through their
 * mappings, then wait for pinned pages and delete the entries while the
 * pages still exist.
 */
static void xfs_dax_revoke_inode(struct inode *inode)
{
	struct xfs_inode *ip = XFS_I(inode);
	struct address_space *mapping = inode->i_mapping;
	int error;

	xfs_ilock(ip, XFS_MMAPLOCK_EXCL);
	unmap_mapping_range(mapping, 0, 0, 0);
	error = filemap_write_and_wait(mapping);
	if (error)
		xfs_warn(ip->i_mount,
			 "inode 0x%llx: DAX writeback before removal failed: %d",
			 (unsigned long long)inode->i_ino, error);
	/*
	 * Wait, uninterruptibly, for pages still pinned (direct I/O in flight)
	 * and delete the entries: they must not outlive the device's pages.
	 */
	dax_break_layout_final(inode);
	xfs_iunlock(ip, XFS_MMAPLOCK_EXCL);
}

/**
 * xfs_dax_revoke_mappings() - shut down @mp and revoke all its DAX mappings
 * @mp: the filesystem whose DAX device is about to be removed
 *
 * Context: Process context; takes s_umount shared, the inode list lock and
 * each mapped DAX inode's XFS_MMAPLOCK.
 * Return: 0; the shutdown cannot fail.
 */
int xfs_dax_revoke_mappings(struct xfs_mount *mp)
{
	struct super_block *sb = mp->m_super;
	struct inode *inode, *toput_inode = NULL;

	/* Mode pfn calls once per page: say it once. */
	if (!xfs_is_shutdown(mp)) {
		xfs_info(mp, "DAX device is about to be removed, revoking all mappings");
		xfs_force_shutdown(mp, SHUTDOWN_DEVICE_REMOVED);
	}

	/*
	 * Keep unmount away while we walk the inodes.  Unmount holds s_umount
	 * and, through fs_put_dax(), waits for this very call to return, so
	 * only try; once SB_ACTIVE is gone every file is closed and nothing is
	 * mapped any more.
	 */
	while (!down_read_trylock(&sb->s_umount)) {
		if (!(READ_ONCE(sb->s_flags) & SB_ACTIVE))
			return 0;
		schedule_timeout_uninterruptible(1);
	}

	/* The walk of fs/drop_caches.c, restricted to DAX files with pages. */
	spin_lock(&sb->s_inode_list_lock);
	list_for_each_entry(inode, &sb->s_inodes, i_sb_list) {
		spin_lock(&inode->i_lock);
		if ((inode_state_read(inode) & (I_FREEING | I_WILL_FREE | I_NEW)) ||
		    !IS_DAX(inode) || mapping_empty(inode->i_mapping)) {
			spin_unlock(&inode->i_lock);
			continue;
		}
		__iget(inode);
		spin_unlock(&inode->i_lock);
		spin_unlock(&sb->s_inode_list_lock);

		xfs_dax_revoke_inode(inode);
		iput(toput_inode);
		toput_inode = inode;

		cond_resched();
		spin_lock(&sb->s_inode_list_lock);
	}
	spin_unlock(&sb->s_inode_list_lock);
	iput(toput_inode);
	up_read(&sb->s_umount);
	return 0;
}
