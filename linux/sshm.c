// SPDX-License-Identifier: GPL-2.0-only
/*
 * xen_sshm: Xen static shared memory regions by name.
 *
 * The toolstack maps each static_shm region of an xl config into the
 * guest's physical address space before the guest first runs, and
 * publishes the attachment in the guest's own xenstore directory,
 * read-only for the guest (xl.cfg(5), static_shm):
 *
 *   static_shm/<name>/begin   guest physical address, bytes, "0x..."
 *   static_shm/<name>/size    length of the mapping, bytes
 *   static_shm/<name>/offset  its first byte within the region
 *   static_shm/<name>/prot    "rw" or "ro"
 *
 * At load this module reads that directory and registers one misc device
 * per region, /dev/xen-sshm/<name>, which a program maps with mmap(2).  The
 * attributes begin, size, offset and prot are in
 * /sys/class/misc/xen-sshm!<name>/.  The keys never change while the
 * domain lives (the toolstack writes them once), so they are read once.
 *
 * Errors a program sees:
 *   open(O_WRONLY or O_RDWR) of a read-only region      EACCES
 *   mmap(PROT_WRITE) of a read-only region              EACCES (also from
 *     the VFS when the file is open read-only), and mprotect(PROT_WRITE)
 *     of such a mapping fails with EACCES: VM_MAYWRITE is cleared
 *   mmap(MAP_PRIVATE)                                   EINVAL: the device
 *     is shared memory, a private copy is never what is wanted
 *   mmap past the end of the region                     EINVAL
 * The device nodes are mode 0600 (rw) or 0400 (ro); the check in open()
 * also holds for root.
 *
 * The guest physical range of each region is reserved in iomem_resource
 * ("xen-sshm/<name>" in /proc/iomem) so that nothing else in the guest
 * (for example the allocator of unpopulated pages for grant mappings)
 * places pages there.  A region whose keys are malformed or whose range is
 * taken is skipped with a message; the others are still exposed.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/ctype.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/ioport.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>

#include <xen/xen.h>
#include <xen/xenbus.h>

#define SSHM_DIR		"static_shm"
/* The name limit of XEN_DOMCTL_static_shm (XEN_SSHM_NAME_LEN_MAX). */
#define SSHM_NAME_LEN_MAX	31
/* XEN_SSHM_ATTACHMENTS_PER_DOMAIN_MAX: no more can be published. */
#define SSHM_REGIONS_MAX	64
/* XEN_SSHM_REGION_PAGES_MAX pages of 4 KiB. */
#define SSHM_SIZE_MAX		(1ULL << 32)
#define SSHM_DEV_PREFIX		"xen-sshm/"

struct sshm_region {
	struct list_head list;
	char name[SSHM_NAME_LEN_MAX + 1];
	char devname[sizeof(SSHM_DEV_PREFIX) + SSHM_NAME_LEN_MAX];
	u64 begin;
	u64 size;
	u64 offset;
	bool readonly;
	struct resource *res;
	struct miscdevice misc;
};

/* Written at init, read-only afterwards until exit. */
static LIST_HEAD(sshm_regions);

static struct sshm_region *sshm_of_file(struct file *file)
{
	/* misc_open() stores the miscdevice in private_data. */
	struct miscdevice *misc = file->private_data;

	return container_of(misc, struct sshm_region, misc);
}

static int sshm_open(struct inode *inode, struct file *file)
{
	struct sshm_region *r = sshm_of_file(file);

	if (r->readonly && (file->f_mode & FMODE_WRITE))
		return -EACCES;
	return 0;
}

static int sshm_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct sshm_region *r = sshm_of_file(file);
	unsigned long len = vma->vm_end - vma->vm_start;
	unsigned long pages = r->size >> PAGE_SHIFT;

	/*
	 * VM_MAYSHARE, not VM_SHARED: mmap() clears VM_SHARED (and
	 * VM_MAYWRITE) on a MAP_SHARED mapping of a file open read-only.
	 */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	if (r->readonly) {
		if (vma->vm_flags & VM_WRITE)
			return -EACCES;
		/* No mprotect(PROT_WRITE) later either. */
		vma->vm_flags &= ~VM_MAYWRITE;
	}
	if (vma->vm_pgoff >= pages || (len >> PAGE_SHIFT) > pages - vma->vm_pgoff)
		return -EINVAL;

	return remap_pfn_range(vma, vma->vm_start,
			       PHYS_PFN(r->begin) + vma->vm_pgoff, len,
			       vma->vm_page_prot);
}

static const struct file_operations sshm_fops = {
	.owner		= THIS_MODULE,
	.open		= sshm_open,
	.mmap		= sshm_mmap,
	.llseek		= noop_llseek,
};

static struct sshm_region *sshm_of_dev(struct device *dev)
{
	struct miscdevice *misc = dev_get_drvdata(dev);

	return container_of(misc, struct sshm_region, misc);
}

static ssize_t begin_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	return sysfs_emit(buf, "0x%llx\n", sshm_of_dev(dev)->begin);
}
static DEVICE_ATTR_RO(begin);

static ssize_t size_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	return sysfs_emit(buf, "0x%llx\n", sshm_of_dev(dev)->size);
}
static DEVICE_ATTR_RO(size);

static ssize_t offset_show(struct device *dev, struct device_attribute *attr,
			   char *buf)
{
	return sysfs_emit(buf, "0x%llx\n", sshm_of_dev(dev)->offset);
}
static DEVICE_ATTR_RO(offset);

static ssize_t prot_show(struct device *dev, struct device_attribute *attr,
			 char *buf)
{
	return sysfs_emit(buf, "%s\n", sshm_of_dev(dev)->readonly ? "ro" : "rw");
}
static DEVICE_ATTR_RO(prot);

static struct attribute *sshm_attrs[] = {
	&dev_attr_begin.attr,
	&dev_attr_size.attr,
	&dev_attr_offset.attr,
	&dev_attr_prot.attr,
	NULL,
};
ATTRIBUTE_GROUPS(sshm);

static bool sshm_name_valid(const char *name)
{
	size_t i, len = strlen(name);

	if (len < 1 || len > SSHM_NAME_LEN_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (!isalnum(name[i]) && name[i] != '_')
			return false;
	return true;
}

/* Reads static_shm/<name>/<key> as a number ("0x..." or decimal). */
static int sshm_read_u64(const char *dir, const char *key, u64 *val)
{
	char *s = xenbus_read(XBT_NIL, dir, key, NULL);
	int rc;

	if (IS_ERR(s))
		return PTR_ERR(s);
	rc = kstrtoull(s, 0, val);
	kfree(s);
	return rc;
}

static int sshm_read_keys(struct sshm_region *r)
{
	char *dir, *prot;
	int rc;

	dir = kasprintf(GFP_KERNEL, SSHM_DIR "/%s", r->name);
	if (!dir)
		return -ENOMEM;
	rc = sshm_read_u64(dir, "begin", &r->begin);
	if (!rc)
		rc = sshm_read_u64(dir, "size", &r->size);
	if (!rc)
		rc = sshm_read_u64(dir, "offset", &r->offset);
	if (rc)
		goto out;
	prot = xenbus_read(XBT_NIL, dir, "prot", NULL);
	if (IS_ERR(prot)) {
		rc = PTR_ERR(prot);
		goto out;
	}
	if (!strcmp(prot, "ro"))
		r->readonly = true;
	else if (strcmp(prot, "rw"))
		rc = -EINVAL;
	kfree(prot);
 out:
	kfree(dir);
	return rc;
}

static void sshm_remove(struct sshm_region *r)
{
	list_del(&r->list);
	misc_deregister(&r->misc);
	release_mem_region(r->begin, r->size);
	kfree(r);
}

static int sshm_add(const char *name)
{
	struct sshm_region *r;
	int rc;

	if (!sshm_name_valid(name)) {
		pr_err("region \"%s\": not a valid name, skipped\n", name);
		return -EINVAL;
	}
	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r)
		return -ENOMEM;
	strscpy(r->name, name, sizeof(r->name));
	snprintf(r->devname, sizeof(r->devname), SSHM_DEV_PREFIX "%s", name);

	rc = sshm_read_keys(r);
	if (rc) {
		pr_err("region %s: cannot read its xenstore keys (%d), skipped\n",
		       name, rc);
		goto free;
	}
	if (!r->size || r->size > SSHM_SIZE_MAX ||
	    !PAGE_ALIGNED(r->begin) || !PAGE_ALIGNED(r->size) ||
	    !PAGE_ALIGNED(r->offset) || r->begin + r->size < r->begin) {
		pr_err("region %s: bad range 0x%llx+0x%llx, skipped\n",
		       name, r->begin, r->size);
		rc = -EINVAL;
		goto free;
	}
	r->res = request_mem_region(r->begin, r->size, r->devname);
	if (!r->res) {
		pr_err("region %s: guest physical range 0x%llx+0x%llx is in use, skipped\n",
		       name, r->begin, r->size);
		rc = -EBUSY;
		goto free;
	}

	r->misc.minor = MISC_DYNAMIC_MINOR;
	r->misc.name = r->devname;
	r->misc.fops = &sshm_fops;
	r->misc.groups = sshm_groups;
	r->misc.mode = r->readonly ? 0400 : 0600;
	rc = misc_register(&r->misc);
	if (rc) {
		pr_err("region %s: cannot register a device (%d), skipped\n",
		       name, rc);
		goto release;
	}
	list_add_tail(&r->list, &sshm_regions);
	pr_info("%s: 0x%llx bytes at 0x%llx (offset 0x%llx), %s\n",
		r->devname, r->size, r->begin, r->offset,
		r->readonly ? "ro" : "rw");
	return 0;

 release:
	release_mem_region(r->begin, r->size);
 free:
	kfree(r);
	return rc;
}

static int __init sshm_init(void)
{
	unsigned int i, n;
	char **names;
	int added = 0;

	if (!xen_domain())
		return -ENODEV;

	names = xenbus_directory(XBT_NIL, SSHM_DIR, "", &n);
	if (IS_ERR(names)) {
		if (PTR_ERR(names) != -ENOENT)
			return PTR_ERR(names);
		n = 0;
		names = NULL;
	}
	if (n > SSHM_REGIONS_MAX) {
		pr_warn("%u regions published, only the first %u are exposed\n",
			n, SSHM_REGIONS_MAX);
		n = SSHM_REGIONS_MAX;
	}
	for (i = 0; i < n; i++)
		if (!sshm_add(names[i]))
			added++;
	kfree(names);
	pr_info("%d static shared memory region(s)\n", added);
	return 0;
}

static void __exit sshm_exit(void)
{
	struct sshm_region *r, *tmp;

	list_for_each_entry_safe(r, tmp, &sshm_regions, list)
		sshm_remove(r);
}

module_init(sshm_init);
module_exit(sshm_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Xen static shared memory regions as /dev/xen-sshm/<name>");
