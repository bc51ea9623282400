/* tspod-helper: set-up steps, the pod root and the app roots.
 *
 * The target of every set-up step (mkdir, touch, write, symlink, chown, mount,
 * console) is below the pod root (plan.c refuses anything else), and the parts of
 * it below the pod root or an app rootfs are image content, which we do not trust.
 * A target is resolved with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_XDEV) from its
 * *anchor*: the deepest of the pod root, the app roots and the mounts the plan
 * itself made whose path is the target's or a parent of it. So a symlink in an image
 * ("/etc -> /host/etc", "dev -> ../../..", "/etc -> /proc/sys/kernel") can never make
 * a step write, chown or mount outside the image, nor reach into another file system
 * (the pod's /proc, /sys, a volume): the one mount crossing a target may make is onto
 * a mount of the plan's own, by its path in the plan. The last component of a touch,
 * write or chown target is never followed: a symlink there is refused (write
 * replaces it, through a temp file and a rename in the same directory). Mount
 * targets and mkdir follow a symlink as long as it stays on the same mount. Mounts
 * then target the resolved fd through /proc/self/fd/N.
 *
 * Mount *sources* (bind sources, /dev/null, a volume's directory) are host paths;
 * one below the pod root is resolved with RESOLVE_IN_ROOT against it or its app
 * root (mount crossings allowed: /proc/sys/kernel/hostname is a source).
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

struct open_how_ {
	uint64_t flags, mode, resolve;
};
#define RESOLVE_NO_XDEV_ 0x01
#define RESOLVE_NO_MAGICLINKS_ 0x02
#define RESOLVE_NO_SYMLINKS_ 0x04
#define RESOLVE_BENEATH_ 0x08
#define RESOLVE_IN_ROOT_ 0x10
#define IN_ROOT (RESOLVE_IN_ROOT_ | RESOLVE_NO_MAGICLINKS_)
/* a set-up target below its anchor: in the anchor's root, on the anchor's mount */
#define TARGET (RESOLVE_IN_ROOT_ | RESOLVE_NO_MAGICLINKS_ | RESOLVE_NO_XDEV_)
/* the last component of a target, from its parent: that name only, not followed */
#define LAST (RESOLVE_BENEATH_ | RESOLVE_NO_MAGICLINKS_ | RESOLVE_NO_SYMLINKS_ | RESOLVE_NO_XDEV_)

struct mount_attr_ {
	uint64_t attr_set, attr_clr, propagation, userns_fd;
};
#define MOUNT_ATTR_RDONLY_ 0x1
#define MOUNT_ATTR_NOSUID_ 0x2
#define MOUNT_ATTR_NODEV_ 0x4
#define MOUNT_ATTR_NOEXEC_ 0x8
#define MOUNT_ATTR__ATIME_ 0x70
#define MOUNT_ATTR_RELATIME_ 0x0
#define MOUNT_ATTR_NOATIME_ 0x10
#define MOUNT_ATTR_STRICTATIME_ 0x20
#define AT_RECURSIVE_ 0x8000
#define MOUNT_ATTR_IDMAP_ 0x100000
#define OPEN_TREE_CLONE_ 1
#define MOVE_MOUNT_F_EMPTY_PATH_ 0x4
#define MOVE_MOUNT_T_EMPTY_PATH_ 0x40
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif

int g_userns_fd = -1;

/* `create-owner`: what the set-up steps create gets this owner (else the helper's). */
static int own_set;
static uid_t own_uid;
static gid_t own_gid;

/* Gives a file or directory a set-up step just made (name in dir pfd, or fd itself
 * when name is NULL) the plan's owner, if it has one. 0 or -1. */
static int own(int pfd, const char *name)
{
	if (!own_set)
		return 0;
	if (!name)
		return fchown(pfd, own_uid, own_gid);
	return fchownat(pfd, name, own_uid, own_gid, AT_SYMLINK_NOFOLLOW);
}

int xopenat2(int dirfd, const char *path, int flags, mode_t mode, uint64_t resolve)
{
	struct open_how_ how = { (uint64_t)(flags | O_CLOEXEC), (flags & O_CREAT) ? mode : 0, resolve };
	int fd;
	do
		fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
	while (fd < 0 && (errno == EINTR || errno == EAGAIN));
	if (fd < 0 && errno == ENOSYS)
		die("this kernel has no openat2 (Linux 5.6 or later is needed)");
	return fd;
}

/* Where a mount source is resolved: *base is the directory fd to resolve *rest against,
 * *res the RESOLVE_ flags (IN_ROOT below the pod root or an app rootfs). */
static int open_source_base(const struct plan *p, const char *path, const char **rest, uint64_t *res)
{
	size_t rl = strlen(p->root);
	if (strncmp(path, p->root, rl) || (path[rl] != '/' && path[rl] != 0)) {
		*res = 0;
		*rest = path[1] ? path + 1 : ".";
		return open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	}
	const char *rel = path[rl] ? path + rl + 1 : "";
	int rfd = open(p->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0)
		return -1;
	*res = IN_ROOT;
	const struct app *best = NULL;
	size_t bl = 0;
	for (int i = 0; i < p->napps; i++) {
		const char *ar = p->apps[i].root + 1; /* "opt/stage2/x/rootfs" */
		size_t al = strlen(ar);
		if (al && al > bl && !strncmp(rel, ar, al) && rel[al] == '/') {
			best = &p->apps[i];
			bl = al;
		}
	}
	if (!best) {
		*rest = *rel ? rel : ".";
		return rfd;
	}
	int afd = xopenat2(rfd, best->root + 1, O_PATH | O_DIRECTORY, 0, IN_ROOT);
	int e = errno;
	close(rfd);
	errno = e;
	*rest = rel + bl + 1;
	return afd;
}

/* mkdir -p of rel below base (missing parents 0755, the last one `mode`); O_PATH fd. */
static int mkdir_p_depth(int base, const char *rel, mode_t mode, uint64_t res, int links);

/* mkdir -p of rel below base (resolved with res): missing parents 0755, the last
 * one exactly mode. A dangling symlink on the way is followed inside the root, as
 * rkt does: what it points to is created there (never outside: res has
 * RESOLVE_IN_ROOT). */
static int mkdir_p(int base, const char *rel, mode_t mode, uint64_t res)
{
	return mkdir_p_depth(base, rel, mode, res, 0);
}

/* The directory that holds rel's last name (base itself for a single name),
 * resolved with res; *name points at that last name inside rel. */
static int open_dir_of(int base, char *rel, uint64_t res, const char **name)
{
	char *slash = strrchr(rel, '/');
	*name = slash ? slash + 1 : rel;
	if (!slash)
		return base;
	*slash = 0;
	int fd = xopenat2(base, rel, O_PATH | O_DIRECTORY, 0, res);
	*slash = '/';
	return fd;
}

/* At buf (a prefix of rel that exists as a dangling symlink, below base),
 * continues mkdir -p with the link's target in its place. */
static int mkdir_through_link(int base, char *buf, const char *rest, mode_t mode, uint64_t res, int links)
{
	if (links >= 40) {
		errno = ELOOP;
		return -1;
	}
	const char *name;
	int pfd = open_dir_of(base, buf, res, &name);
	if (pfd < 0)
		return -1;
	char *slash = strrchr(buf, '/');
	char target[PATH_MAX];
	ssize_t n = readlinkat(pfd, name, target, sizeof target - 1);
	int e = errno;
	if (pfd != base)
		close(pfd);
	if (n <= 0) {
		errno = n == 0 ? ENOENT : e;
		return -1;
	}
	target[n] = 0;
	char next[PATH_MAX];
	int w;
	if (target[0] == '/')
		w = snprintf(next, sizeof next, "%s%s%s", target + 1, *rest ? "/" : "", rest);
	else if (slash)
		w = snprintf(next, sizeof next, "%.*s/%s%s%s", (int)(slash - buf), buf, target, *rest ? "/" : "", rest);
	else
		w = snprintf(next, sizeof next, "%s%s%s", target, *rest ? "/" : "", rest);
	if (w < 0 || (size_t)w >= sizeof next) {
		errno = ENAMETOOLONG;
		return -1;
	}
	/* no empty or "." components: the walk below creates one name at a time */
	char clean[PATH_MAX];
	size_t c = 0;
	for (char *save = NULL, *tok = strtok_r(next, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (!strcmp(tok, "."))
			continue;
		size_t tl = strlen(tok);
		if (c + tl + 2 > sizeof clean) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if (c)
			clean[c++] = '/';
		memcpy(clean + c, tok, tl);
		c += tl;
	}
	clean[c] = 0;
	if (!c) /* the link points at the root itself */
		return xopenat2(base, ".", O_PATH | O_DIRECTORY, 0, res);
	return mkdir_p_depth(base, clean, mode, res, links + 1);
}

static int mkdir_p_depth(int base, const char *rel, mode_t mode, uint64_t res, int links)
{
	char buf[PATH_MAX];
	size_t len = strlen(rel);
	if (len >= sizeof buf) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, rel, len + 1);
	for (size_t i = 0; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != 0)
			continue;
		int last = i == len;
		buf[i] = 0;
		int fd = xopenat2(base, buf, O_PATH | O_DIRECTORY, 0, res);
		if (fd < 0 && errno == ENOENT) {
			const char *name;
			int pfd = open_dir_of(base, buf, res, &name);
			if (pfd < 0)
				return -1;
			mode_t m = last ? mode : 0755;
			int r = mkdirat(pfd, name, m);
			if (r == 0 && own(pfd, name) < 0) {
				int e = errno;
				if (pfd != base)
					close(pfd);
				errno = e;
				return -1;
			}
			if (r == 0) {
				/* the mode exactly, whatever the umask */
				int dfd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				if (dfd >= 0) {
					fchmod(dfd, m);
					close(dfd);
				}
			}
			int e = errno;
			struct stat lst;
			int dangling = r < 0 && e == EEXIST && fstatat(pfd, name, &lst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(lst.st_mode);
			if (pfd != base)
				close(pfd);
			if (dangling)
				return mkdir_through_link(base, buf, last ? "" : rel + i + 1, mode, res, links);
			if (r < 0 && e != EEXIST) {
				errno = e;
				return -1;
			}
			fd = xopenat2(base, buf, O_PATH | O_DIRECTORY, 0, res);
		}
		if (fd < 0)
			return -1;
		if (last)
			return fd;
		close(fd);
		buf[i] = '/';
	}
	errno = EINVAL;
	return -1;
}

/* Splits rel into its parent (created, 0755) and last name; returns the parent's fd. */
static int open_parent(int base, const char *rel, uint64_t res, char *namebuf, size_t namecap)
{
	const char *slash = strrchr(rel, '/');
	const char *name = slash ? slash + 1 : rel;
	if (strlen(name) >= namecap || !*name) {
		errno = EINVAL;
		return -1;
	}
	strcpy(namebuf, name);
	if (!slash)
		return xopenat2(base, ".", O_PATH | O_DIRECTORY, 0, res);
	char parent[PATH_MAX];
	size_t pl = (size_t)(slash - rel);
	if (pl >= sizeof parent) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(parent, rel, pl);
	parent[pl] = 0;
	return mkdir_p(base, parent, 0755, res);
}

static unsigned long statvfs_to_ms(unsigned long f)
{
	unsigned long m = 0;
	if (f & ST_NOSUID)
		m |= MS_NOSUID;
	if (f & ST_NODEV)
		m |= MS_NODEV;
	if (f & ST_NOEXEC)
		m |= MS_NOEXEC;
	if (f & ST_NOATIME)
		m |= MS_NOATIME;
	if (f & ST_NODIRATIME)
		m |= MS_NODIRATIME;
	if (f & ST_RELATIME)
		m |= MS_RELATIME;
	return m;
}

/* Sets per-mount attributes (MS_RDONLY, MS_NOSUID, ... and atime) on the mount at fd,
 * keeping the others; recursively with rec. 0 or -1. */
static int set_mount_attrs(int fd, unsigned long ms, int rec)
{
	struct mount_attr_ a = { 0, 0, 0, 0 };
	if (ms & MS_RDONLY)
		a.attr_set |= MOUNT_ATTR_RDONLY_;
	if (ms & MS_NOSUID)
		a.attr_set |= MOUNT_ATTR_NOSUID_;
	if (ms & MS_NODEV)
		a.attr_set |= MOUNT_ATTR_NODEV_;
	if (ms & MS_NOEXEC)
		a.attr_set |= MOUNT_ATTR_NOEXEC_;
	if (ms & (MS_NOATIME | MS_STRICTATIME | MS_RELATIME)) {
		a.attr_clr |= MOUNT_ATTR__ATIME_;
		a.attr_set |= (ms & MS_NOATIME) ? MOUNT_ATTR_NOATIME_
			      : (ms & MS_STRICTATIME) ? MOUNT_ATTR_STRICTATIME_
						      : MOUNT_ATTR_RELATIME_;
	}
	if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | (rec ? AT_RECURSIVE_ : 0), &a, sizeof a) == 0)
		return 0;
	if (errno != ENOSYS)
		return -1;
	/* Before Linux 5.12: a bind remount of the top mount only, keeping its other flags. */
	struct statvfs sv;
	char fp[32];
	if (fstatvfs(fd, &sv) < 0)
		return -1;
	unsigned long keep = statvfs_to_ms(sv.f_flag);
	if (ms & (MS_NOATIME | MS_STRICTATIME | MS_RELATIME))
		keep &= ~(MS_NOATIME | MS_NODIRATIME | MS_RELATIME);
	return mount(NULL, proc_fd_path(fd, fp), NULL, MS_REMOUNT | MS_BIND | keep | ms, NULL);
}

#define ATTR_FLAGS (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_STRICTATIME | MS_RELATIME)

static void __attribute__((noreturn)) step_die(const struct plan *p, const struct step *s, const char *what)
{
	die("plan %s line %d: %s %s: %s", p->file, s->line, what, s->path, strerror(errno));
}

static void __attribute__((noreturn)) step_fail(const struct plan *p, const struct step *s, const char *what)
{
	die("plan %s line %d: %s %s", p->file, s->line, s->path, what);
}

int g_console_fd = -1;

/* ------------------------------------------------------------------ anchors */

/* The mounts the plan has made so far: path in the plan -> O_PATH fd of the mount's
 * root. Only pid 1 has them, during the set-up only. */
struct anchor {
	const char *path;
	int fd;
};
static struct anchor *anchors;
static int nanchors;

/* Is a the path p or (strict: only) a parent of it? */
static size_t path_prefix(const char *a, const char *p, int strict)
{
	size_t n = strlen(a);
	if (strncmp(a, p, n) || (p[n] != '/' && (strict || p[n])))
		return 0;
	return n;
}

/* The anchor of path (below the pod root): an fd to resolve *rest against with
 * TARGET, and *rest (never empty; "." for the anchor itself). strict: a parent of
 * path only, never path itself. -1 + errno on failure. */
static int open_anchor(const struct plan *p, const char *path, int strict, const char **rest)
{
	size_t best = path_prefix(p->root, path, strict);
	const struct app *app = NULL;
	const struct anchor *mnt = NULL;
	if (!best) {
		errno = EXDEV; /* plan.c refused it already */
		return -1;
	}
	for (int i = 0; i < p->napps; i++) {
		/* an app root is the root of what is below it; itself, it is resolved from above */
		char *ar = xasprintf("%s%s", p->root, p->apps[i].root);
		size_t l = path_prefix(ar, path, 1);
		free(ar);
		if (l > best) {
			best = l;
			app = &p->apps[i];
		}
	}
	for (int i = 0; i < nanchors; i++) {
		size_t l = path_prefix(anchors[i].path, path, strict);
		if (l && l >= best) { /* a mount at an app root is that app root */
			best = l;
			mnt = &anchors[i];
			app = NULL;
		}
	}
	*rest = path[best] ? path + best + 1 : ".";
	if (mnt)
		return fcntl(mnt->fd, F_DUPFD_CLOEXEC, 3);
	if (!app)
		return open(p->root, O_PATH | O_DIRECTORY | O_CLOEXEC); /* the plan's: trusted */
	/* An app root that is not a mount: resolved like any target, from its own anchor. */
	char *ar = xasprintf("%s%s", p->root, app->root);
	const char *arest;
	int base = open_anchor(p, ar, 1, &arest);
	int fd = base < 0 ? -1 : xopenat2(base, arest, O_PATH | O_DIRECTORY, 0, TARGET);
	int e = errno;
	if (base >= 0)
		close(base);
	free(ar);
	errno = e;
	return fd;
}

static void add_anchor(const char *path, int fd)
{
	/* mounts of the plan's below this one are hidden by it now; one at the same path
	 * is under it */
	int n = 0;
	for (int i = 0; i < nanchors; i++) {
		if (path_prefix(path, anchors[i].path, 0)) {
			close(anchors[i].fd);
			continue;
		}
		anchors[n++] = anchors[i];
	}
	nanchors = n;
	struct anchor *a = vec_push(&anchors, &nanchors, sizeof *a);
	a->path = path;
	a->fd = fd;
}

static void drop_anchors(void)
{
	for (int i = 0; i < nanchors; i++)
		close(anchors[i].fd);
	free(anchors);
	anchors = NULL;
	nanchors = 0;
}

/* Where the mount point tfd (base + rest resolved) is: its parent directory
 * (returned) and its name, so that the mount stacked on it can be opened once it is
 * made. A directory is found from itself (also when a symlink on the same mount led
 * to it); a file from rest, and a symlink that led to it is refused. -1 on failure. */
static int locate(int tfd, int base, const char *rest, char name[NAME_MAX + 1])
{
	struct stat a, b;
	int pfd;
	if (fstat(tfd, &a) < 0)
		return -1;
	if (S_ISDIR(a.st_mode)) {
		char fp[32], where[PATH_MAX];
		ssize_t n = readlink(proc_fd_path(tfd, fp), where, sizeof where - 1);
		if (n <= 0 || n >= (ssize_t)sizeof where - 1) {
			if (n >= 0)
				errno = ENAMETOOLONG;
			return -1;
		}
		where[n] = 0;
		const char *slash = strrchr(where, '/');
		if (!slash || !slash[1] || strlen(slash + 1) > NAME_MAX) {
			errno = EINVAL;
			return -1;
		}
		strcpy(name, slash + 1);
		pfd = openat(tfd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
	} else {
		const char *slash = strrchr(rest, '/');
		if (!strcmp(rest, ".") || strlen(slash ? slash + 1 : rest) > NAME_MAX) {
			errno = EBUSY; /* a file that is a mount of the plan's already */
			return -1;
		}
		strcpy(name, slash ? slash + 1 : rest);
		char *parent = slash ? strndup(rest, (size_t)(slash - rest)) : xstrdup(".");
		if (!parent)
			die("out of memory");
		pfd = xopenat2(base, parent, O_PATH | O_DIRECTORY, 0, TARGET);
		free(parent);
	}
	if (pfd < 0)
		return -1;
	if (fstatat(pfd, name, &b, AT_SYMLINK_NOFOLLOW) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		close(pfd);
		errno = S_ISDIR(a.st_mode) ? ESTALE : ELOOP;
		return -1;
	}
	return pfd;
}

/* ------------------------------------------------------------------- steps */

static void do_mount(const struct plan *p, const struct step *s, int base, const char *rest)
{
	char tp[32], sp[32], name[NAME_MAX + 1];
	/* the mount point: on the anchor's mount (a symlink on the way is followed as
	 * long as it stays there), or the anchor itself */
	/* The anchor itself may be a file (a single-file bind the plan made): "."
	 * cannot be resolved from a file, so it is the anchor's own fd. */
	int tfd = strcmp(rest, ".") ? xopenat2(base, rest, O_PATH, 0, TARGET) : fcntl(base, F_DUPFD_CLOEXEC, 0);
	if (tfd < 0 && errno == ENOENT && s->optional)
		return; /* "optional": a path this kernel (or image) does not have */
	if (tfd < 0)
		step_die(p, s, "mount target");
	unsigned long fl = s->mflags | (s->mrec ? MS_REC : 0);
	int console = s->kind == STEP_CONSOLE;
	int bind = console || ((fl & MS_BIND) && !(fl & MS_REMOUNT));
	int newmount = bind || (!(fl & MS_REMOUNT) && s->fstype);
	int pfd = -1, nfd = -1;
	if (newmount && (pfd = locate(tfd, base, rest, name)) < 0)
		step_die(p, s, "mount target");
	const char *src = s->arg;
	int sfd = -1;
	if (console) {
		/* The pod's terminal, or /dev/null when it has none. A bind source must be a
		 * mount of our namespace: the terminal is opened again by its name (our copy of
		 * the host's devpts) and must be the same device. */
		const char *src_path = "/dev/null";
		char where[64];
		if (g_console_fd >= 0) {
			ssize_t n = readlink(proc_fd_path(g_console_fd, sp), where, sizeof where - 1);
			if (n <= 0 || n >= (ssize_t)sizeof where - 1) {
				errno = n < 0 ? errno : ENAMETOOLONG;
				step_die(p, s, "console (the terminal's name)");
			}
			where[n] = 0;
			src_path = where;
		}
		struct stat want, got;
		sfd = open(src_path, O_PATH | O_CLOEXEC);
		if (sfd < 0 || fstat(sfd, &got) < 0)
			die("plan %s line %d: console %s: %s", p->file, s->line, src_path, strerror(errno));
		if (g_console_fd >= 0 && (fstat(g_console_fd, &want) < 0 || !S_ISCHR(got.st_mode) || got.st_rdev != want.st_rdev))
			die("plan %s line %d: console %s: not the pod's terminal", p->file, s->line, src_path);
		if (mount(proc_fd_path(sfd, sp), proc_fd_path(tfd, tp), NULL, MS_BIND, NULL) < 0)
			die("plan %s line %d: console on %s: %s", p->file, s->line, s->path, strerror(errno));
	} else if (bind) {
		const char *srest;
		uint64_t sres;
		int sbase = open_source_base(p, s->arg, &srest, &sres);
		if (sbase < 0 || (sfd = xopenat2(sbase, srest, O_PATH, 0, sres)) < 0)
			die("plan %s line %d: bind source %s: %s", p->file, s->line, s->arg, strerror(errno));
		close(sbase);
		if (s->idmap) {
			/* A detached copy of the source, idmapped through the pod's user namespace
			 * (on-disk id N shows as base+N on the host, N in the pod), attached here. */
			int rec = (fl & MS_REC) ? AT_RECURSIVE_ : 0;
			struct mount_attr_ a = { MOUNT_ATTR_IDMAP_, 0, 0, (uint64_t)g_userns_fd };
			int tree = (int)syscall(SYS_open_tree, sfd, "", AT_EMPTY_PATH | OPEN_TREE_CLONE_ | O_CLOEXEC | rec);
			if (tree < 0 || syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | rec, &a, sizeof a) < 0 ||
			    syscall(SYS_move_mount, tree, "", tfd, "", MOVE_MOUNT_F_EMPTY_PATH_ | MOVE_MOUNT_T_EMPTY_PATH_) < 0)
				die("plan %s line %d: idmapped bind mount %s on %s: %s%s", p->file, s->line, s->arg, s->path,
				    strerror(errno),
				    errno == EINVAL || errno == ENOSYS || errno == EPERM
					    ? " (the kernel or the source's file system cannot make idmapped mounts)"
					    : "");
			close(tree);
		} else if (mount(proc_fd_path(sfd, sp), proc_fd_path(tfd, tp), NULL, MS_BIND | (fl & MS_REC), NULL) < 0)
			die("plan %s line %d: bind mount %s on %s: %s", p->file, s->line, s->arg, s->path, strerror(errno));
	} else if ((fl & MS_REMOUNT) && (fl & MS_BIND) && (fl & ATTR_FLAGS) && !s->data) {
		/* Per-mount flags of an existing mount: set them (recursively with rec) and keep
		 * the others, which a plain MS_REMOUNT would clear and MS_REC would not reach. */
		if (set_mount_attrs(tfd, fl & ATTR_FLAGS, s->mrec) < 0)
			step_die(p, s, "remount");
	} else if ((fl & MS_REMOUNT) || s->fstype) {
		if (!src && !(fl & MS_REMOUNT))
			src = s->fstype;
		if (mount(src, proc_fd_path(tfd, tp), s->fstype, fl, s->data) < 0)
			die("plan %s line %d: mount %s (%s) on %s: %s", p->file, s->line, src ? src : "-",
			    s->fstype ? s->fstype : "-", s->path, strerror(errno));
	}
	if (newmount) {
		/* The new mount's root: the one crossing later targets below it may make. */
		nfd = xopenat2(pfd, name, O_PATH, 0, RESOLVE_BENEATH_ | RESOLVE_NO_SYMLINKS_ | RESOLVE_NO_MAGICLINKS_);
		if (nfd < 0)
			step_die(p, s, "opening the new mount");
		close(pfd);
		add_anchor(s->path, nfd);
		if (bind && (fl & ATTR_FLAGS) && set_mount_attrs(nfd, fl & ATTR_FLAGS, s->mrec) < 0)
			step_die(p, s, "setting flags of bind mount");
	}
	if (s->mprop && mount(NULL, proc_fd_path(newmount ? nfd : tfd, tp), NULL, s->mprop | (s->mrec ? MS_REC : 0), NULL) < 0)
		step_die(p, s, "changing propagation of");
	if (sfd >= 0)
		close(sfd);
	close(tfd);
}

/* Opens the last component of rest (below base) itself, never following it nor
 * crossing a mount, the parent created if create (0755). *pfd gets the parent.
 * Returns the fd (O_PATH), or -1 with errno ENOENT when it does not exist. A
 * symlink there is refused, unless links (then the fd is the symlink's). */
static int open_last(const struct plan *p, const struct step *s, int base, const char *rest, int create, int *pfd,
		     char name[NAME_MAX + 1], int links)
{
	if (create)
		*pfd = open_parent(base, rest, TARGET, name, NAME_MAX + 1);
	else {
		const char *slash = strrchr(rest, '/');
		char *parent = slash ? strndup(rest, (size_t)(slash - rest)) : xstrdup(".");
		const char *nm = slash ? slash + 1 : rest;
		if (!parent || strlen(nm) > NAME_MAX)
			step_fail(p, s, "has a name too long");
		strcpy(name, nm);
		*pfd = xopenat2(base, parent, O_PATH | O_DIRECTORY, 0, TARGET);
		free(parent);
	}
	if (*pfd < 0)
		step_die(p, s, create ? "creating the parent of" : "resolving the parent of");
	int fd = xopenat2(*pfd, name, O_PATH | O_NOFOLLOW, 0, LAST & ~(uint64_t)RESOLVE_NO_SYMLINKS_);
	if (fd < 0 && errno != ENOENT)
		step_die(p, s, "opening");
	struct stat st;
	if (fd >= 0 && !links && fstat(fd, &st) == 0 && S_ISLNK(st.st_mode))
		step_fail(p, s, "is a symbolic link in the image: refused (a set-up step never follows one there)");
	return fd;
}

static void do_step(const struct plan *p, const struct step *s)
{
	const char *rest;
	char name[NAME_MAX + 1];
	int fd, pfd;
	int base = open_anchor(p, s->path, 0, &rest);
	if (base < 0)
		step_die(p, s, "resolving");
	int self = !strcmp(rest, "."); /* the step's target is its anchor itself */
	switch (s->kind) {
	case STEP_MKDIR:
		if ((fd = self ? fcntl(base, F_DUPFD_CLOEXEC, 3) : mkdir_p(base, rest, s->mode, TARGET)) < 0)
			step_die(p, s, "mkdir");
		close(fd);
		break;
	case STEP_TOUCH:
		if (self)
			break; /* a mount's root: there */
		fd = open_last(p, s, base, rest, 1, &pfd, name, 0);
		if (fd < 0) {
			fd = xopenat2(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, s->mode, LAST);
			if (fd < 0 || own(fd, NULL) < 0 || fchmod(fd, s->mode) < 0)
				step_die(p, s, "touch");
		}
		close(fd);
		close(pfd);
		break;
	case STEP_WRITE: {
		/* A new file, renamed into place: whatever was there (a symlink of the image's
		 * too) is replaced, never written through. */
		char tmp[NAME_MAX + 32];
		struct stat st;
		if (self) {
			errno = EBUSY;
			step_die(p, s, "write");
		}
		fd = open_last(p, s, base, rest, 1, &pfd, name, 1);
		if (fd >= 0) {
			if (fstat(fd, &st) < 0 || (S_ISDIR(st.st_mode) && (errno = EISDIR)))
				step_die(p, s, "write");
			close(fd);
		}
		snprintf(tmp, sizeof tmp, ".%.200s.tspod-%d", name, (int)getpid());
		fd = xopenat2(pfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY, s->mode, LAST);
		if (fd < 0)
			step_die(p, s, "write");
		if (write_all(fd, s->arg, strlen(s->arg)) < 0 || own(fd, NULL) < 0 || fchmod(fd, s->mode) < 0 || close(fd) < 0 ||
		    renameat(pfd, tmp, pfd, name) < 0) {
			int e = errno;
			unlinkat(pfd, tmp, 0);
			errno = e;
			step_die(p, s, "write");
		}
		close(pfd);
		break;
	}
	case STEP_SYMLINK:
		if (self) {
			errno = EEXIST;
			step_die(p, s, "symlink");
		}
		if ((pfd = open_parent(base, rest, TARGET, name, sizeof name)) < 0)
			step_die(p, s, "creating the parent of");
		if (symlinkat(s->arg, pfd, name) < 0) {
			struct stat st;
			if (errno != EEXIST || fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				step_die(p, s, "symlink");
			if (!S_ISLNK(st.st_mode)) {
				errno = EEXIST;
				step_die(p, s, "symlink");
			}
			if (unlinkat(pfd, name, 0) < 0 || symlinkat(s->arg, pfd, name) < 0)
				step_die(p, s, "symlink");
		}
		if (own(pfd, name) < 0)
			step_die(p, s, "symlink (owner)");
		close(pfd);
		break;
	case STEP_CHOWN:
		pfd = -1;
		fd = self ? fcntl(base, F_DUPFD_CLOEXEC, 3) : open_last(p, s, base, rest, 0, &pfd, name, 0);
		if (fd < 0 || fchownat(fd, "", (uid_t)s->uid, (gid_t)s->gid, AT_EMPTY_PATH) < 0)
			step_die(p, s, "chown");
		close(fd);
		if (pfd >= 0)
			close(pfd);
		break;
	case STEP_MOUNT:
	case STEP_CONSOLE:
		do_mount(p, s, base, rest);
		break;
	}
	close(base);
}

void run_setup_steps(const struct plan *p)
{
	own_set = p->has_owner;
	own_uid = p->owner_uid;
	own_gid = p->owner_gid;
	for (int i = 0; i < p->nsteps; i++)
		do_step(p, &p->steps[i]);
	drop_anchors();
	own_set = 0;
}

int pivot_here(void)
{
	/* new_root and put_old the same: the old root ends up stacked on the new one at
	 * ".", and is detached right away (pivot_root(2), NOTES). No temp dir needed, so
	 * this works on read-only roots too. */
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return -1;
	if (umount2(".", MNT_DETACH) < 0)
		return -1;
	return chdir("/");
}

void enter_pod_root(const struct plan *p)
{
	char fp[32];
	int rfd = open(p->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0)
		die("pod root %s: %s", p->root, strerror(errno));
	/* pivot_root wants a mount point: bind the root onto itself (with what is below). */
	if (mount(proc_fd_path(rfd, fp), fp, NULL, MS_BIND | MS_REC, NULL) < 0)
		die("bind mount of the pod root %s: %s", p->root, strerror(errno));
	close(rfd);
	rfd = open(p->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0)
		die("pod root %s: %s", p->root, strerror(errno));
	/* /proc of the pod's pid namespace: we are its pid 1. */
	int pfd = mkdir_p(rfd, "proc", 0555, TARGET);
	if (pfd < 0)
		die("%s/proc: %s", p->root, strerror(errno));
	if (mount("proc", proc_fd_path(pfd, fp), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		die("mounting proc on %s/proc: %s", p->root, strerror(errno));
	close(pfd);
	if (fchdir(rfd) < 0 || pivot_here() < 0)
		die("pivot_root into %s: %s", p->root, strerror(errno));
	close(rfd);
}

int enter_app_root(const struct app *a)
{
	char fp[32];
	const char *rel = a->root[1] ? a->root + 1 : ".";
	if (unshare(CLONE_NEWNS) < 0) {
		warnx("unshare(CLONE_NEWNS): %s", strerror(errno));
		return -1;
	}
	int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	int afd = root < 0 ? -1 : xopenat2(root, rel, O_PATH | O_DIRECTORY, 0, IN_ROOT);
	if (afd < 0) {
		warnx("rootfs %s: %s", a->root, strerror(errno));
		return -1;
	}
	if (mount(proc_fd_path(afd, fp), fp, NULL, MS_BIND | MS_REC, NULL) < 0) {
		warnx("bind mount of rootfs %s: %s", a->root, strerror(errno));
		return -1;
	}
	close(afd);
	afd = xopenat2(root, rel, O_PATH | O_DIRECTORY, 0, IN_ROOT);
	if (afd < 0) {
		warnx("rootfs %s: %s", a->root, strerror(errno));
		return -1;
	}
	if (a->ro_root && set_mount_attrs(afd, MS_RDONLY, 0) < 0) {
		warnx("making rootfs %s read-only: %s", a->root, strerror(errno));
		return -1;
	}
	if (fchdir(afd) < 0 || pivot_here() < 0) {
		warnx("pivot_root into %s: %s", a->root, strerror(errno));
		return -1;
	}
	close(afd);
	close(root);
	return 0;
}
