// SPDX-License-Identifier: GPL-2.0
/*
 * nshm.c - guest driver for QEMU's ivshmem device (PCI 1af4:1110), for nshm.
 *
 * Exposes /dev/nshmN per device:
 *   mmap   BAR2 (the shared memory, host RAM behind it), write-back unless the
 *          file asked otherwise. The kernel grants write-back only where the
 *          guest's MTRRs say write-back (pat_x_mtrr_type); firmware marks the
 *          PCI hole uncachable, so user space (libnshm, as root) carves BAR2
 *          out of that range through /proc/mtrr first: mtrr_add() is not
 *          exported to modules. NSHM_IOC_INFO reports the type obtained.
 *   read   blocks for an MSI-X interrupt; returns the interrupt count (u64).
 *   poll   POLLIN when the count moved since this file's last read.
 *   ioctl  NSHM_IOC_RING writes the doorbell register (BAR0 + 12);
 *          NSHM_IOC_INFO reports IVPosition (BAR0 + 8), BAR2 and the mapping.
 *
 * ivshmem-plain has no MSI-X: the device then works for mmap and ioctl, and
 * read() fails with EOPNOTSUPP (user space polls the shared counters).
 *
 * When the device goes (hot-unplug, unbind, rmmod) every user mapping of
 * BAR2 is zapped: a later access gets SIGBUS, never the bus addresses that
 * another device may be given next.
 *
 * Builds against 6.1 (Debian 12's kernel) through 6.12 (bookworm-security):
 * the page-table walk and the BAR0 mapping differ by version below.
 */
#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <linux/wait.h>

#include "nshm_uapi.h"

#define DRV_NAME "nshm"
#define NSHM_MAX_VECTORS 16

#define IVSHMEM_VENDOR 0x1af4
#define IVSHMEM_DEVICE 0x1110
#define REG_IVPOSITION 8
#define REG_DOORBELL 12

struct nshm_dev {
	struct kref ref;
	struct pci_dev *pdev;
	void __iomem *regs;
	phys_addr_t bar2_addr;
	resource_size_t bar2_size;
	int vectors;
	atomic64_t irq_count;
	wait_queue_head_t wq;
	/*
	 * Held for reading around register access and mmap() (inside the
	 * caller's mmap_lock: never hold it across a user copy), for writing
	 * to set ->gone.
	 */
	struct rw_semaphore sem;
	bool gone;              /* device removed: files fail with ENODEV */
	struct inode *inode;    /* its i_mapping holds every file's mappings */
	struct mutex mappers_lock;
	struct list_head mappers; /* struct nshm_mapper: who mapped BAR2 */
	int id;
	char name[16];
	struct miscdevice misc;
};

struct nshm_file {
	struct nshm_dev *nd;
	u64 seen;               /* irq_count at this file's last read */
	u32 want_cache;
	u32 map_cache;
};

/* An address space that has mapped BAR2 (mmgrab()bed). */
struct nshm_mapper {
	struct list_head node;
	struct mm_struct *mm;
};

static DEFINE_IDA(nshm_ida);

static void nshm_free(struct kref *ref)
{
	struct nshm_dev *nd = container_of(ref, struct nshm_dev, ref);

	if (nd->inode)
		iput(nd->inode);
	ida_free(&nshm_ida, nd->id);
	kfree(nd);
}

static irqreturn_t nshm_irq(int irq, void *data)
{
	struct nshm_dev *nd = data;

	atomic64_inc(&nd->irq_count);
	wake_up_interruptible(&nd->wq);
	return IRQ_HANDLED;
}

static int nshm_open(struct inode *inode, struct file *file)
{
	struct nshm_dev *nd = container_of(file->private_data,
					   struct nshm_dev, misc);
	struct nshm_file *nf;

	/* misc_open() holds misc_mtx, which misc_deregister() takes too. */
	nf = kzalloc(sizeof(*nf), GFP_KERNEL);
	if (!nf)
		return -ENOMEM;
	/*
	 * All files share the first opener's inode mapping, so that removal
	 * finds every mapping with one unmap_mapping_range(), whichever
	 * device node they were opened through.
	 */
	down_write(&nd->sem);
	if (!nd->inode)
		nd->inode = igrab(inode);
	if (nd->inode)
		file->f_mapping = nd->inode->i_mapping;
	up_write(&nd->sem);
	kref_get(&nd->ref);
	nf->nd = nd;
	nf->seen = atomic64_read(&nd->irq_count);
	nf->want_cache = NSHM_CACHE_WB;
	file->private_data = nf;
	return 0;
}

static int nshm_release(struct inode *inode, struct file *file)
{
	struct nshm_file *nf = file->private_data;

	kref_put(&nf->nd->ref, nshm_free);
	kfree(nf);
	return 0;
}

static ssize_t nshm_read(struct file *file, char __user *buf, size_t len,
			 loff_t *ppos)
{
	struct nshm_file *nf = file->private_data;
	struct nshm_dev *nd = nf->nd;
	u64 now;
	int rc;

	if (len < sizeof(now))
		return -EINVAL;
	if (READ_ONCE(nd->gone))
		return -ENODEV;
	if (nd->vectors == 0)
		return -EOPNOTSUPP;
	if (atomic64_read(&nd->irq_count) == nf->seen) {
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		rc = wait_event_interruptible(nd->wq,
				atomic64_read(&nd->irq_count) != nf->seen ||
				READ_ONCE(nd->gone));
		if (rc)
			return rc;
		if (READ_ONCE(nd->gone))
			return -ENODEV;
	}
	now = atomic64_read(&nd->irq_count);
	if (copy_to_user(buf, &now, sizeof(now)))
		return -EFAULT;
	nf->seen = now;
	return sizeof(now);
}

static __poll_t nshm_poll(struct file *file, poll_table *wait)
{
	struct nshm_file *nf = file->private_data;
	struct nshm_dev *nd = nf->nd;
	__poll_t mask = 0;

	poll_wait(file, &nd->wq, wait);
	if (READ_ONCE(nd->gone))
		return EPOLLHUP | EPOLLERR;
	if (atomic64_read(&nd->irq_count) != nf->seen)
		mask |= EPOLLIN | EPOLLRDNORM;
	return mask;
}

#ifdef CONFIG_X86
/* The cache type a PTE protection carries (x86: PAT bits). */
static u32 nshm_cache_of(pgprot_t prot, u32 want)
{
	unsigned long bits = pgprot_val(prot) & _PAGE_CACHE_MASK;

	if (bits == cachemode2protval(_PAGE_CACHE_MODE_WB))
		return NSHM_CACHE_WB;
	if (bits == cachemode2protval(_PAGE_CACHE_MODE_WC))
		return NSHM_CACHE_WC;
	if (bits == cachemode2protval(_PAGE_CACHE_MODE_UC_MINUS))
		return NSHM_CACHE_UC_MINUS;
	if (bits == cachemode2protval(_PAGE_CACHE_MODE_UC))
		return NSHM_CACHE_UC;
	return NSHM_CACHE_OTHER;
}
#else
/* No memory-type tracking that could change the request. */
static u32 nshm_cache_of(pgprot_t prot, u32 want)
{
	return want;
}
#endif

/*
 * What the kernel granted: remap_pfn_range() applies the memory-type
 * tracking's answer to its own copy of the protection, not to
 * vma->vm_page_prot, so read it back from the first PTE. 6.10 made
 * follow_pte() take the vma; 6.12 replaced it by follow_pfnmap_start().
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
static u32 nshm_granted(struct vm_area_struct *vma, u32 want)
{
	struct follow_pfnmap_args args = {
		.vma = vma,
		.address = vma->vm_start,
	};
	u32 cache;

	if (follow_pfnmap_start(&args))
		return NSHM_CACHE_NONE;
	cache = nshm_cache_of(args.pgprot, want);
	follow_pfnmap_end(&args);
	return cache;
}
#else
static u32 nshm_granted(struct vm_area_struct *vma, u32 want)
{
	spinlock_t *ptl;
	pte_t *ptep;
	u32 cache;

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 10, 0)
	if (follow_pte(vma, vma->vm_start, &ptep, &ptl))
#else
	if (follow_pte(vma->vm_mm, vma->vm_start, &ptep, &ptl))
#endif
		return NSHM_CACHE_NONE;
	cache = nshm_cache_of(__pgprot(pte_flags(*ptep)), want);
	pte_unmap_unlock(ptep, ptl);
	return cache;
}
#endif

/*
 * Remember mm as one that mapped BAR2, so that removal can wait for an
 * mmap() that is still linking its vma (see nshm_revoke()). Address spaces
 * that have exited are forgotten here, which bounds the list by the live
 * ones.
 */
static int nshm_note_mapper(struct nshm_dev *nd, struct mm_struct *mm)
{
	struct nshm_mapper *m, *tmp;
	bool known = false;

	mutex_lock(&nd->mappers_lock);
	list_for_each_entry_safe(m, tmp, &nd->mappers, node) {
		if (m->mm == mm) {
			known = true;
		} else if (!atomic_read(&m->mm->mm_users)) {
			list_del(&m->node);
			mmdrop(m->mm);
			kfree(m);
		}
	}
	if (!known) {
		m = kmalloc(sizeof(*m), GFP_KERNEL);
		if (!m) {
			mutex_unlock(&nd->mappers_lock);
			return -ENOMEM;
		}
		mmgrab(mm);
		m->mm = mm;
		list_add(&m->node, &nd->mappers);
	}
	mutex_unlock(&nd->mappers_lock);
	return 0;
}

/*
 * Every PTE is filled by mmap(); a fault can only come after removal
 * zapped them, and must not reach what is no longer BAR2.
 */
static vm_fault_t nshm_fault(struct vm_fault *vmf)
{
	return VM_FAULT_SIGBUS;
}

static const struct vm_operations_struct nshm_vm_ops = {
	.fault = nshm_fault,
};

static int nshm_mmap_locked(struct nshm_file *nf, struct vm_area_struct *vma)
{
	struct nshm_dev *nd = nf->nd;
	unsigned long len = vma->vm_end - vma->vm_start;
	unsigned long off = vma->vm_pgoff << PAGE_SHIFT;
	int rc;

	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_pgoff > (nd->bar2_size >> PAGE_SHIFT) ||
	    len > nd->bar2_size - off)
		return -EINVAL;
	switch (nf->want_cache) {
	case NSHM_CACHE_WC:
		vma->vm_page_prot = pgprot_writecombine(vma->vm_page_prot);
		break;
	case NSHM_CACHE_UC_MINUS:
		vma->vm_page_prot = pgprot_noncached(vma->vm_page_prot);
		break;
	default:
		/* vm_page_prot is write-back already. */
		break;
	}
	rc = nshm_note_mapper(nd, vma->vm_mm);
	if (rc)
		return rc;
	vma->vm_ops = &nshm_vm_ops;
	/*
	 * The memory-type tracking in remap_pfn_range() may downgrade the
	 * request: write-back inside an uncachable MTRR becomes
	 * uncached-minus (pat_x_mtrr_type()).
	 */
	rc = remap_pfn_range(vma, vma->vm_start,
			     (nd->bar2_addr + off) >> PAGE_SHIFT, len,
			     vma->vm_page_prot);
	if (rc)
		return rc;
	nf->map_cache = nshm_granted(vma, nf->want_cache);
	return 0;
}

static int nshm_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct nshm_file *nf = file->private_data;
	struct nshm_dev *nd = nf->nd;
	int rc = -ENODEV;

	/* Removal waits for this before it zaps: BAR2 is still ours. */
	down_read(&nd->sem);
	if (!nd->gone)
		rc = nshm_mmap_locked(nf, vma);
	up_read(&nd->sem);
	return rc;
}

/*
 * The registers are read and written under nd->sem (removal unmaps them),
 * user memory is copied outside it: a fault there takes the mmap_lock, which
 * nshm_mmap() holds when it takes nd->sem.
 */
static int nshm_info_get(struct nshm_file *nf, struct nshm_info *info)
{
	struct nshm_dev *nd = nf->nd;
	int rc = -ENODEV;

	memset(info, 0, sizeof(*info));
	down_read(&nd->sem);
	if (!nd->gone) {
		info->version = NSHM_UAPI_VERSION;
		info->ivposition = ioread32(nd->regs + REG_IVPOSITION);
		info->bar2_addr = nd->bar2_addr;
		info->bar2_size = nd->bar2_size;
		info->vectors = nd->vectors;
		info->map_cache = nf->map_cache;
		info->want_cache = nf->want_cache;
		info->irq_count = atomic64_read(&nd->irq_count);
		rc = 0;
	}
	up_read(&nd->sem);
	return rc;
}

static int nshm_ring(struct nshm_dev *nd, const struct nshm_ring *ring)
{
	int rc = -ENODEV;

	if (ring->peer > 0xffff || ring->vector > 0xffff)
		return -EINVAL;
	down_read(&nd->sem);
	if (!nd->gone) {
		iowrite32(ring->peer << 16 | ring->vector,
			  nd->regs + REG_DOORBELL);
		rc = 0;
	}
	up_read(&nd->sem);
	return rc;
}

static long nshm_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct nshm_file *nf = file->private_data;
	struct nshm_info info;
	struct nshm_ring ring;
	int rc;

	if (READ_ONCE(nf->nd->gone))
		return -ENODEV;
	switch (cmd) {
	case NSHM_IOC_INFO:
		rc = nshm_info_get(nf, &info);
		if (!rc && copy_to_user((void __user *)arg, &info, sizeof(info)))
			rc = -EFAULT;
		return rc;
	case NSHM_IOC_RING:
		if (copy_from_user(&ring, (void __user *)arg, sizeof(ring)))
			return -EFAULT;
		return nshm_ring(nf->nd, &ring);
	case NSHM_IOC_SET_CACHE:
		if (arg != NSHM_CACHE_WB && arg != NSHM_CACHE_WC &&
		    arg != NSHM_CACHE_UC_MINUS)
			return -EINVAL;
		nf->want_cache = arg;
		return 0;
	default:
		return -ENOTTY;
	}
}

static const struct file_operations nshm_fops = {
	.owner = THIS_MODULE,
	.open = nshm_open,
	.release = nshm_release,
	.read = nshm_read,
	.poll = nshm_poll,
	.mmap = nshm_mmap,
	.unlocked_ioctl = nshm_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static int nshm_setup_irqs(struct nshm_dev *nd)
{
	struct pci_dev *pdev = nd->pdev;
	int i, n, rc;

	/* ivshmem-plain has no MSI-X: no interrupts, not an error. */
	if (!pdev->msix_cap)
		return 0;
	n = pci_alloc_irq_vectors(pdev, 1, NSHM_MAX_VECTORS, PCI_IRQ_MSIX);
	if (n < 0)
		return n;
	for (i = 0; i < n; i++) {
		rc = request_irq(pci_irq_vector(pdev, i), nshm_irq, 0,
				 nd->name, nd);
		if (rc)
			goto undo;
	}
	nd->vectors = n;
	return 0;
undo:
	while (i--)
		free_irq(pci_irq_vector(pdev, i), nd);
	pci_free_irq_vectors(pdev);
	return rc;
}

static void nshm_free_irqs(struct nshm_dev *nd)
{
	int i;

	for (i = 0; i < nd->vectors; i++)
		free_irq(pci_irq_vector(nd->pdev, i), nd);
	if (nd->vectors)
		pci_free_irq_vectors(nd->pdev);
	nd->vectors = 0;
}

/* BAR0, requested and mapped, both undone by devres on detach. */
static int nshm_map_regs(struct nshm_dev *nd)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
	nd->regs = pcim_iomap_region(nd->pdev, 0, DRV_NAME);
	if (IS_ERR(nd->regs))
		return PTR_ERR(nd->regs);
	return 0;
#else
	/* A managed device's regions are released on detach. */
	int rc = pci_request_region(nd->pdev, 0, DRV_NAME);

	if (rc)
		return rc;
	nd->regs = pcim_iomap(nd->pdev, 0, 0);
	return nd->regs ? 0 : -ENOMEM;
#endif
}

static int nshm_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct nshm_dev *nd;
	int rc;

	nd = kzalloc(sizeof(*nd), GFP_KERNEL);
	if (!nd)
		return -ENOMEM;
	kref_init(&nd->ref);
	nd->pdev = pdev;
	init_waitqueue_head(&nd->wq);
	init_rwsem(&nd->sem);
	mutex_init(&nd->mappers_lock);
	INIT_LIST_HEAD(&nd->mappers);
	rc = ida_alloc(&nshm_ida, GFP_KERNEL);
	if (rc < 0) {
		kfree(nd);
		return rc;
	}
	nd->id = rc;
	snprintf(nd->name, sizeof(nd->name), DRV_NAME "%d", nd->id);

	rc = pcim_enable_device(pdev);
	if (rc)
		goto err;
	/* BAR0: registers, mapped for the driver; BAR2 is only claimed. */
	rc = nshm_map_regs(nd);
	if (rc)
		goto err;
	rc = pci_request_region(pdev, 2, DRV_NAME);
	if (rc)
		goto err;
	nd->bar2_addr = pci_resource_start(pdev, 2);
	nd->bar2_size = pci_resource_len(pdev, 2);
	if (!nd->bar2_size || !PAGE_ALIGNED(nd->bar2_addr) ||
	    !PAGE_ALIGNED(nd->bar2_size)) {
		rc = -ENODEV;
		goto err_bar2;
	}
	/* MSI-X messages are memory writes by the device. */
	pci_set_master(pdev);
	rc = nshm_setup_irqs(nd);
	if (rc)
		goto err_bar2;

	nd->misc.minor = MISC_DYNAMIC_MINOR;
	nd->misc.name = nd->name;
	nd->misc.fops = &nshm_fops;
	nd->misc.parent = &pdev->dev;
	rc = misc_register(&nd->misc);
	if (rc)
		goto err_irq;
	pci_set_drvdata(pdev, nd);
	dev_info(&pdev->dev, "/dev/%s: BAR2 %pa, %llu MiB, %d MSI-X vectors\n",
		 nd->name, &nd->bar2_addr,
		 (unsigned long long)nd->bar2_size >> 20, nd->vectors);
	return 0;

err_irq:
	nshm_free_irqs(nd);
err_bar2:
	pci_release_region(pdev, 2);
err:
	kref_put(&nd->ref, nshm_free);
	return rc;
}

/*
 * Take BAR2 away from user space. An mmap() that got the lock before ->gone
 * was set links its vma only before it drops its mm's mmap_lock: taking
 * each mapper's lock once waits for that, and then unmap_mapping_range()
 * sees every vma there is. Later faults get SIGBUS (nshm_fault()).
 */
static void nshm_revoke(struct nshm_dev *nd)
{
	struct nshm_mapper *m, *tmp;
	LIST_HEAD(mappers);

	/* No mmap() adds to the list once ->gone is set. */
	mutex_lock(&nd->mappers_lock);
	list_splice_init(&nd->mappers, &mappers);
	mutex_unlock(&nd->mappers_lock);
	list_for_each_entry_safe(m, tmp, &mappers, node) {
		mmap_read_lock(m->mm);
		mmap_read_unlock(m->mm);
		list_del(&m->node);
		mmdrop(m->mm);
		kfree(m);
	}
	if (nd->inode)
		unmap_mapping_range(nd->inode->i_mapping, 0, 0, 1);
}

static void nshm_remove(struct pci_dev *pdev)
{
	struct nshm_dev *nd = pci_get_drvdata(pdev);

	misc_deregister(&nd->misc);
	/* After this no ioctl touches the registers devres unmaps. */
	down_write(&nd->sem);
	WRITE_ONCE(nd->gone, true);
	up_write(&nd->sem);
	wake_up_interruptible_all(&nd->wq);
	nshm_revoke(nd);
	nshm_free_irqs(nd);
	pci_release_region(pdev, 2);
	/*
	 * Open files keep nd (and its now unused register mapping pointer)
	 * until they are closed; every file operation checks ->gone first.
	 */
	kref_put(&nd->ref, nshm_free);
}

static const struct pci_device_id nshm_ids[] = {
	{ PCI_DEVICE(IVSHMEM_VENDOR, IVSHMEM_DEVICE) },
	{ }
};
MODULE_DEVICE_TABLE(pci, nshm_ids);

static struct pci_driver nshm_driver = {
	.name = DRV_NAME,
	.id_table = nshm_ids,
	.probe = nshm_probe,
	.remove = nshm_remove,
};
module_pci_driver(nshm_driver);

MODULE_DESCRIPTION("ivshmem guest driver for nshm: write-back BAR2 mapping, MSI-X doorbells");
MODULE_LICENSE("GPL");
