/* tspod-helper netns: a network namespace bound on a file, for stage1 /init to run
 * the CNI plugins in (CNI_NETNS) before the pod's pid 1 joins it (plan `netns`).
 * Node cannot make namespaces (docs/architecture.md, "The stages"); this is a short-lived process.
 *
 *   tspod-helper netns create <file>   a new file (must not exist, 0444) with a new
 *                                      network namespace (loopback up) bound on it
 *   tspod-helper netns remove <file>   unmount and remove it; a missing file or one
 *                                      that is not mounted is fine (idempotent)
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif
#include <sys/vfs.h>

static void create(const char *file)
{
	int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444);
	if (fd < 0)
		die("netns create %s: %s", file, strerror(errno));
	close(fd);
	if (unshare(CLONE_NEWNET) < 0) {
		int e = errno;
		unlink(file);
		die("netns create %s: unshare: %s", file, strerror(e));
	}
	lo_up();
	if (mount("/proc/self/ns/net", file, NULL, MS_BIND, NULL) < 0) {
		int e = errno;
		unlink(file);
		die("netns create %s: bind mount: %s", file, strerror(e));
	}
}

int netns_remove(const char *file)
{
	struct statfs sf;
	/* Unmount while it is an nsfs mount (a bind can be stacked by mistake: all of them). */
	while (statfs(file, &sf) == 0 && (unsigned long)sf.f_type == (unsigned long)NSFS_MAGIC) {
		if (umount2(file, MNT_DETACH | UMOUNT_NOFOLLOW) < 0) {
			warnx("netns remove %s: unmount: %s", file, strerror(errno));
			return -1;
		}
	}
	if (unlink(file) < 0 && errno != ENOENT) {
		warnx("netns remove %s: %s", file, strerror(errno));
		return -1;
	}
	return 0;
}

int netns_main(int argc, char **argv)
{
	if (argc != 4 || (strcmp(argv[2], "create") && strcmp(argv[2], "remove")))
		die("usage: tspod-helper netns create|remove <file>");
	if (!strcmp(argv[2], "create"))
		create(argv[3]);
	else if (netns_remove(argv[3]) < 0)
		return 254;
	return 0;
}
