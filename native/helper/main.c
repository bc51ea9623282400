/* tspod-helper: the static native helper of tspod (see PLAN.md).
 *
 *   tspod-helper run <plan>        start a pod as the plan says; exit with its code
 *   tspod-helper enter --pid=... -- CMD [ARG...]
 *   tspod-helper seccomp-check NAME...   print the names that are no syscall here
 *   tspod-helper netns create|remove <file>   a network namespace bound on a file
 *   tspod-helper plan-check <plan>  parse the plan as run would, run nothing
 *   tspod-helper net-release <file> --exit-code=N   a pod's CNI DELs at its exit (netrelease.c)
 *
 * Its own failures: one line on stderr starting "tspod-helper: ", exit 254.
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x1U
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x2U
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x10U
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#define F_SEAL_SEAL 0x1
#define F_SEAL_SHRINK 0x2
#define F_SEAL_GROW 0x4
#define F_SEAL_WRITE 0x8
#endif
#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif

/*
 * runc CVE-2019-5736: a pod process that execs something whose interpreter is
 * /proc/self/exe (an image's `#!/proc/self/exe` script as the app, a handler or an
 * entered command) runs the helper itself inside the pod, dumpable and as the pod's
 * root: another pod process could then open the host's helper binary through
 * /proc/PID/exe, chmod or chown it (writes fail only while some helper runs it).
 * So the helper never runs from the host file: it first re-execs itself from a
 * sealed memfd copy (no writes, no size change), and every /proc/PID/exe of a helper
 * process is that private copy. When the kernel refuses (vm.memfd_noexec=2) it
 * warns and runs as it is.
 */
static void run_from_sealed_copy(char **argv)
{
	int mfd = -1, self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		goto fail;
	int seals = fcntl(self, F_GET_SEALS);
	if (seals >= 0 && (seals & F_SEAL_WRITE)) {
		close(self); /* already the copy */
		return;
	}
	struct stat st;
	if (fstat(self, &st) < 0)
		goto fail;
	mfd = (int)syscall(SYS_memfd_create, "tspod-helper", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
	if (mfd < 0 && errno == EINVAL) /* before Linux 6.3: no MFD_EXEC, executable anyway */
		mfd = (int)syscall(SYS_memfd_create, "tspod-helper", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		goto fail;
	off_t off = 0;
	while (off < st.st_size) {
		ssize_t n = sendfile(mfd, self, &off, (size_t)(st.st_size - off));
		if (n <= 0)
			goto fail;
	}
	if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
		goto fail;
	close(self);
	self = -1;
	syscall(SYS_execveat, mfd, "", argv, environ, AT_EMPTY_PATH);
fail:;
	int e = errno;
	if (self >= 0)
		close(self);
	if (mfd >= 0)
		close(mfd);
	errno = e;
	warnx("cannot run from a sealed copy of itself (%s): the pod can reach the helper's binary", strerror(errno));
}

/* Parses a plan exactly as `run` does and does nothing else (no privilege needed):
 * its errors are run's, exit 254; a good plan prints one summary line, exit 0. */
static int plan_check_main(int argc, char **argv)
{
	if (argc != 3)
		die("usage: tspod-helper plan-check <plan>");
	struct plan p;
	plan_load(argv[2], &p);
	printf("plan %s: %d set-up steps, %d apps, %d sysctls\n", argv[2], p.nsteps, p.napps, p.nsysctls);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "run") || !strcmp(argv[1], "enter"))) {
		run_from_sealed_copy(argv);
		prctl(PR_SET_NAME, "tspod-helper", 0, 0, 0); /* not the memfd's fd number */
	}
	if (argc >= 2 && !strcmp(argv[1], "run"))
		return run_main(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "enter"))
		return enter_main(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "seccomp-check"))
		return seccomp_check_main(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "netns"))
		return netns_main(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "plan-check"))
		return plan_check_main(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "net-release"))
		return netrelease_main(argc, argv);
	die("usage: tspod-helper run <plan> | tspod-helper enter --pid=<pid> [options] -- CMD [ARG...] | tspod-helper plan-check <plan>");
}
