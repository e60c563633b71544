/* SPDX-License-Identifier: BSD-2-Clause */
/* Endpoints: a POSIX shm object by name, any file by path, or BAR2 of an
 * ivshmem PCI device found through sysfs. Each is mapped shared, whole. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "endpoint.h"
#include "proto/layout.h"

#define IVSHMEM_VENDOR 0x1af4
#define IVSHMEM_DEVICE 0x1110
#define MIN_REGION (NSHM_DATA_OFF + NSHM_MIN_CHUNK)

/* Where sysfs is. The installed library reads no environment here: it
 * runs as root in guests and picks what to map. Only a build with
 * -DNSHM_TEST_HOOKS (build/hooks/, for the CLI tests' fake device trees)
 * takes NSHM_SYSFS_ROOT. */
static const char *sysfs_root(void)
{
#ifdef NSHM_TEST_HOOKS
	const char *s = getenv("NSHM_SYSFS_ROOT");

	if (s && *s)
		return s;
#endif
	return "/sys";
}

static long read_hex_file(const char *dir, const char *bdf, const char *leaf)
{
	char path[512], buf[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", dir, bdf, leaf);
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return strtol(buf, NULL, 16);
}

static bool is_ivshmem(const char *dir, const char *bdf)
{
	return read_hex_file(dir, bdf, "vendor") == IVSHMEM_VENDOR &&
	       read_hex_file(dir, bdf, "device") == IVSHMEM_DEVICE;
}

/* Finds the one ivshmem device (want == NULL) or checks the named one. */
static int pci_find(const char *want, char *bdf, size_t bdflen,
		    char *msg, size_t msglen)
{
	char dir[300];
	DIR *d;
	struct dirent *e;
	int found = 0;
	char list[400] = "";

	snprintf(dir, sizeof(dir), "%s/bus/pci/devices", sysfs_root());
	if (want) {
		if (!is_ivshmem(dir, want)) {
			snprintf(msg, msglen, "pci:%s is not an ivshmem device "
				 "(vendor 1af4, device 1110)", want);
			return -NSHM_ENODEVICE;
		}
		snprintf(bdf, bdflen, "%s", want);
		return 0;
	}
	d = opendir(dir);
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.' || !is_ivshmem(dir, e->d_name))
			continue;
		if (found++ == 0)
			snprintf(bdf, bdflen, "%.40s", e->d_name);
		if (strlen(list) + strlen(e->d_name) + 6 < sizeof(list)) {
			strcat(list, " pci:");
			strcat(list, e->d_name);
		}
	}
	if (d)
		closedir(d);
	if (found == 0) {
		snprintf(msg, msglen, "no ivshmem PCI device (vendor 1af4, device 1110) "
			 "in %s; inside a guest, give the VM one with "
			 "-device ivshmem-plain,memdev=ID", dir);
		return -NSHM_ENODEVICE;
	}
	if (found > 1) {
		snprintf(msg, msglen, "%d ivshmem devices:%s; name one as pci:DDDD:BB:DD.F",
			 found, list);
		return -NSHM_EMANYDEVICES;
	}
	return 0;
}

static void explain_missing(const char *name, char *msg, size_t msglen)
{
	snprintf(msg, msglen,
		 "/dev/shm/%s does not exist: start the VM with its ivshmem device first.\n"
		 "  QEMU:    -object memory-backend-file,id=%s,size=64M,mem-path=/dev/shm/%s,share=on"
		 " -device ivshmem-plain,memdev=%s\n"
		 "  libvirt: <shmem name='%s'><model type='ivshmem-plain'/>"
		 "<size unit='M'>64</size></shmem>",
		 name, name, name, name, name);
}

static void explain_denied(const char *path, char *msg, size_t msglen)
{
	struct stat st;
	struct passwd *pw;
	struct group *gr;
	char user[64], group[64];

	if (stat(path, &st) != 0) {
		snprintf(msg, msglen, "%s: permission denied", path);
		return;
	}
	pw = getpwuid(st.st_uid);
	gr = getgrgid(st.st_gid);
	snprintf(user, sizeof(user), "%s", pw ? pw->pw_name : "?");
	snprintf(group, sizeof(group), "%s", gr ? gr->gr_name : "?");
	snprintf(msg, msglen,
		 "%s: permission denied (owner %s, group %s, mode %04o); run as %s, "
		 "or make it group-writable (chmod g+rw %s) and join group %s",
		 path, user, group, (unsigned)(st.st_mode & 07777), user, path, group);
}

/* "pci" or "pci:BDF": the device's path, through the guest module when it
 * is bound (*dev), else its resource2 (resource2_wc for --map wc). */
static int pci_path(const char *ep, unsigned flags, char *path, size_t pathlen,
		    bool *wc, bool *dev, char *msg, size_t msglen)
{
	const char *want = ep[3] == ':' ? ep + 4 : NULL;
	char bdf[64];
	int rc;

	if (want && (strchr(want, '/') || strlen(want) >= sizeof(bdf) || !*want)) {
		snprintf(msg, msglen, "bad PCI address '%s': use pci:DDDD:BB:DD.F", ep);
		return -EINVAL;
	}
	rc = pci_find(want, bdf, sizeof(bdf), msg, msglen);
	if (rc < 0)
		return rc;
	/* The guest module, when bound, maps and rings (nshm_dev.c). */
	*dev = nshm_dev_find(sysfs_root(), bdf, path, pathlen) == 0;
	*wc = flags & NSHM_MAP_WC;
	if (!*dev)
		snprintf(path, pathlen, "%s/bus/pci/devices/%s/resource2%s",
			 sysfs_root(), bdf, *wc ? "_wc" : "");
	return 0;
}

/* Why path (from endpoint ep) did not open with oflags: rc, said in msg. */
static int open_failed(const char *ep, const char *path, int oflags, int rc,
		       char *msg, size_t msglen)
{
	if (rc == -ELOOP && (oflags & O_NOFOLLOW)) {
		snprintf(msg, msglen, "%s is a symbolic link: refusing to follow it "
			 "(name the target's path instead)", path);
		return -EINVAL;
	}
	if (rc == -ENOENT && !strchr(ep, '/') && strncmp(ep, "pci", 3) != 0) {
		explain_missing(ep, msg, msglen);
		return -NSHM_ENOENDPOINT;
	}
	if (rc == -EACCES || rc == -EPERM)
		explain_denied(path, msg, msglen);
	else
		snprintf(msg, msglen, "%s: %s", path, strerror(-rc));
	return rc == -ENOENT ? -NSHM_ENOENDPOINT : rc;
}

static int open_path(const char *ep, unsigned flags, char *path, size_t pathlen,
		     bool *wc, bool *dev, char *msg, size_t msglen)
{
	int oflags = O_RDWR | O_CLOEXEC;
	int rc;

	*wc = false;
	*dev = false;
	if (strcmp(ep, "pci") == 0 || strncmp(ep, "pci:", 4) == 0) {
		rc = pci_path(ep, flags, path, pathlen, wc, dev, msg, msglen);
		if (rc < 0)
			return rc;
	} else if (strchr(ep, '/')) {
		snprintf(path, pathlen, "%s", ep);
	} else {
		if (!*ep || strcmp(ep, ".") == 0 || strcmp(ep, "..") == 0) {
			snprintf(msg, msglen, "bad endpoint '%s'", ep);
			return -EINVAL;
		}
		snprintf(path, pathlen, "/dev/shm/%s", ep);
		/* Anyone may plant a link or a FIFO in /dev/shm: a NAME is
		 * the object itself or nothing. */
		oflags |= O_NOFOLLOW | O_NONBLOCK;
	}
	rc = open(path, oflags);
	return rc >= 0 ? rc : open_failed(ep, path, oflags, -errno, msg, msglen);
}

/* A guest's BAR2 through the guest module (dev) or, write-back asked,
 * through /dev/mem: their own mapping code. */
static int open_device(struct nshm_region **out, int fd, const char *path, bool dev,
		       unsigned flags, char *msg, size_t msglen)
{
	struct nshm_region *r = calloc(1, sizeof(*r));
	int rc = !r ? -ENOMEM : dev ? nshm_dev_setup(r, fd, path, flags, msg, msglen)
		: nshm_devmem_setup(r, path, msg, msglen);

	if (rc == 0)
		*out = r;
	else
		free(r);
	return rc;
}

/* A shm object, a file or a resource2 file: a regular file big enough for
 * the header and one slot, mapped shared whole. */
static int map_file(int fd, const char *path, void **base, size_t *size,
		    char *msg, size_t msglen)
{
	struct stat st;

	if (fstat(fd, &st) != 0) {
		snprintf(msg, msglen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(msg, msglen, "%s is not a regular file (a region is a shared "
			 "memory object, a file or a PCI BAR)", path);
		return -EINVAL;
	}
	if (st.st_size < (off_t)MIN_REGION) {
		snprintf(msg, msglen, "%s is %lld bytes; nshm needs a region of at least "
			 "%u bytes (%u header + one %u-byte slot)", path,
			 (long long)st.st_size, MIN_REGION, NSHM_DATA_OFF, NSHM_MIN_CHUNK);
		return -NSHM_ETOOSMALL;
	}
	*base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (*base == MAP_FAILED) {
		snprintf(msg, msglen, "cannot map %s: %s", path, strerror(errno));
		return -errno;
	}
	*size = (size_t)st.st_size;
	return 0;
}

int nshm_open(struct nshm_region **out, const char *ep, unsigned flags,
	      char *msg, size_t msglen)
{
	char sink[8], path[512];
	struct nshm_region *r;
	bool wc, dev;
	size_t size = 0;
	void *base = NULL;
	int fd, rc;

	if (!msg) {
		msg = sink;
		msglen = sizeof(sink);
	}
	*out = NULL;
	fd = open_path(ep, flags, path, sizeof(path), &wc, &dev, msg, msglen);
	if (fd < 0)
		return fd;
	if (dev || ((flags & NSHM_MAP_WB) && strncmp(ep, "pci", 3) == 0)) {
		rc = open_device(out, fd, path, dev, flags, msg, msglen);
		goto out;
	}
	if ((rc = map_file(fd, path, &base, &size, msg, msglen)) < 0)
		goto out;
	if (!(r = calloc(1, sizeof(*r)))) {
		munmap(base, size);
		rc = -ENOMEM;
		goto out;
	}
	r->base = base;
	r->size = size;
	r->wc = wc;
	snprintf(r->path, sizeof(r->path), "%.255s", path);
	snprintf(r->mapping, sizeof(r->mapping), "%s",
		 strncmp(ep, "pci", 3) != 0 ? "shared file" :
		 wc ? "write-combining (resource2_wc)" : "uncached-minus (resource2)");
	r->db = NSHM_DOORBELL_NONE;
	/* A NAME served by nshm-server: its eventfds, if it serves this very
	 * object (else, or on any failure, polling stays). */
	if (!strchr(ep, '/') && strncmp(path, "/dev/shm/", 9) == 0)
		nshm_ivclient_attach(&r->db, ep, fd);
	else if (strncmp(ep, "pci", 3) == 0)
		nshm_bar0_attach(&r->db, path);
	*out = r;
out:
	close(fd);
	return rc;
}

void nshm_close(struct nshm_region *r)
{
	if (!r)
		return;
	if (r->db.close)
		r->db.close(&r->db);
	munmap(r->base, r->size);
	free(r->spare_buf);
	free(r);
}

size_t nshm_region_size(const struct nshm_region *r)
{
	return r->size;
}

const char *nshm_region_path(const struct nshm_region *r)
{
	return r->path;
}

const char *nshm_region_mapping(const struct nshm_region *r)
{
	return r->mapping;
}

const char *nshm_region_doorbell(const struct nshm_region *r)
{
	return r->db.kind ? r->db.kind : "polling";
}
