/* The attack program of test/isolation-attacks.test.ts: built static on the host,
 * bound into a pod through a volume, run there as a pod process. Each command
 * tries one thing a pod must not be able to do and prints one line:
 *   <command> <target>: ok | <strerror>
 *
 *   attack openw PATH        open(PATH, O_WRONLY)
 *   attack opath PATH        open(PATH, O_PATH)
 *   attack ptrace PID        PTRACE_ATTACH (detached again on success)
 *   attack seize PID         PTRACE_SEIZE
 *   attack vmread PID ADDR   process_vm_readv of 8 bytes at ADDR (hex)
 *   attack finit PATH        finit_module(open(PATH))
 *   attack init              init_module of a bogus image
 *   attack kill0 PID         kill(PID, 0)
 *   attack read PATH         open(PATH, O_RDONLY) and read up to 64 bytes: `read PATH:
 *                            ok N <the printable bytes>`
 *   attack blk DIR MAJ MIN   mknod DIR/tspod-blk as that block device, then `read` it
 *                            (the node is removed again)
 *   attack hunt SECONDS      the runc CVE-2019-5736 watcher: spins on the next pids
 *                            of this pid namespace (ns_last_pid) for a process whose
 *                            /proc/PID/exe is neither this program nor busybox (this
 *                            app's, or another app's copy: the same size);
 *                            stops it, and tries to open that executable for writing
 *                            and to chmod it (to its own mode), while it runs and
 *                            after it was killed. Prints `hunt ...` lines, then
 *                            `hunt done`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int report(const char *cmd, const char *target, long rc)
{
	printf("%s %s: %s\n", cmd, target, rc < 0 ? strerror(errno) : "ok");
	fflush(stdout);
	return 0;
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static long last_pid(void)
{
	char buf[32] = { 0 };
	int fd = open("/proc/sys/kernel/ns_last_pid", O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	return n > 0 ? atol(buf) : -1;
}

static int hunt(double secs)
{
	struct stat self, bb;
	if (stat("/proc/self/exe", &self) < 0 || stat("/bin/busybox", &bb) < 0) {
		perror("hunt: stat");
		return 1;
	}
	double end = now() + secs;
	long denied_pid = 0;
	printf("hunt ready\n");
	fflush(stdout);
	while (now() < end) {
		long base = last_pid();
		for (long pid = base; pid <= base + 2; pid++) {
			char p[64];
			snprintf(p, sizeof p, "/proc/%ld/exe", pid);
			int fd = open(p, O_PATH | O_CLOEXEC);
			if (fd < 0) {
				if (errno == EACCES && denied_pid != pid) {
					denied_pid = pid;
					printf("hunt pid %ld exe denied: %s\n", pid, strerror(errno));
					fflush(stdout);
				}
				continue;
			}
			struct stat st;
			if (fstat(fd, &st) < 0 || (st.st_dev == self.st_dev && st.st_ino == self.st_ino) ||
			    (st.st_dev == bb.st_dev && st.st_ino == bb.st_ino) ||
			    (S_ISREG(st.st_mode) && st.st_nlink > 0 && st.st_size == bb.st_size)) { /* another app's busybox */
				close(fd);
				continue;
			}
			kill((pid_t)pid, SIGSTOP);
			char link[512] = { 0 }, fdp[64];
			if (readlink(p, link, sizeof link - 1) < 0)
				snprintf(link, sizeof link, "?");
			printf("hunt caught pid %ld exe %s dev %u:%u ino %llu mode %o\n", pid, link, major(st.st_dev),
			       minor(st.st_dev), (unsigned long long)st.st_ino, st.st_mode & 07777);
			snprintf(fdp, sizeof fdp, "/proc/self/fd/%d", fd);
			int w = open(fdp, O_WRONLY | O_CLOEXEC);
			printf("hunt openw running: %s\n", w < 0 ? strerror(errno) : "ok");
			if (w >= 0) {
				/* its own first byte back: changes nothing even where it works */
				printf("hunt write running: %s\n", pwrite(w, "\177", 1, 0) < 0 ? strerror(errno) : "ok");
				close(w);
			}
			int c = chmod(fdp, st.st_mode & 07777);
			printf("hunt chmod: %s\n", c < 0 ? strerror(errno) : "ok");
			kill((pid_t)pid, SIGKILL);
			kill((pid_t)pid, SIGCONT);
			/* it is not our child: wait until its /proc entry is gone */
			char dir[64];
			snprintf(dir, sizeof dir, "/proc/%ld/exe", pid);
			for (int i = 0; i < 2000 && access(dir, F_OK) == 0; i++)
				usleep(1000);
			w = open(fdp, O_WRONLY | O_CLOEXEC);
			printf("hunt openw exited: %s\n", w < 0 ? strerror(errno) : "ok");
			if (w >= 0) {
				printf("hunt write exited: %s\n", pwrite(w, "\177", 1, 0) < 0 ? strerror(errno) : "ok");
				close(w);
			}
			printf("hunt done\n");
			fflush(stdout);
			return 0;
		}
	}
	printf("hunt done\n");
	fflush(stdout);
	return 0;
}

static int read_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return report("read", path, -1);
	char buf[65];
	ssize_t n = read(fd, buf, 64);
	close(fd);
	if (n < 0)
		return report("read", path, -1);
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			buf[i] = '.';
	buf[n] = 0;
	printf("read %s: ok %zd %s\n", path, n, buf);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2) {
		fprintf(stderr, "usage: attack CMD ...\n");
		return 2;
	}
	const char *c = argv[1], *a = argc > 2 ? argv[2] : "";
	if (!strcmp(c, "openw"))
		return report(c, a, open(a, O_WRONLY | O_CLOEXEC));
	if (!strcmp(c, "opath"))
		return report(c, a, open(a, O_PATH | O_CLOEXEC));
	if (!strcmp(c, "ptrace")) {
		long rc = ptrace(PTRACE_ATTACH, atoi(a), 0, 0);
		report(c, a, rc);
		if (rc == 0) {
			waitpid(atoi(a), NULL, __WALL);
			ptrace(PTRACE_DETACH, atoi(a), 0, 0);
		}
		return 0;
	}
	if (!strcmp(c, "seize")) {
		long rc = ptrace(PTRACE_SEIZE, atoi(a), 0, 0);
		report(c, a, rc);
		if (rc == 0)
			ptrace(PTRACE_DETACH, atoi(a), 0, 0);
		return 0;
	}
	if (!strcmp(c, "vmread") && argc > 3) {
		char buf[8];
		struct iovec l = { buf, sizeof buf }, r = { (void *)strtoul(argv[3], NULL, 16), sizeof buf };
		return report(c, a, syscall(SYS_process_vm_readv, atoi(a), &l, 1, &r, 1, 0));
	}
	if (!strcmp(c, "finit")) {
		int fd = open(a, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return report(c, a, -1);
		return report(c, a, syscall(SYS_finit_module, fd, "", 0));
	}
	if (!strcmp(c, "init")) {
		static char image[4096] = "\177ELF";
		return report(c, "bogus", syscall(SYS_init_module, image, sizeof image, ""));
	}
	if (!strcmp(c, "kill0"))
		return report(c, a, kill(atoi(a), 0));
	if (!strcmp(c, "read"))
		return read_path(a);
	if (!strcmp(c, "blk") && argc > 4) {
		char node[512];
		snprintf(node, sizeof node, "%s%stspod-blk", a, a[0] && a[strlen(a) - 1] == '/' ? "" : "/");
		unlink(node);
		if (mknod(node, S_IFBLK | 0600, makedev(atoi(argv[3]), atoi(argv[4]))) < 0)
			return report("mknod", node, -1);
		read_path(node);
		unlink(node);
		return 0;
	}
	if (!strcmp(c, "hunt"))
		return hunt(atof(a));
	fprintf(stderr, "attack: unknown command %s\n", c);
	return 2;
}
