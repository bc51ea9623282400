/* tspod-helper enter: run a command in a running pod, inside an app's rootfs, with
 * the app's environment, credentials and restrictions (never more than the app has).
 *
 *   tspod-helper enter --pid=<pod pid 1> [--app-pid=<app host pid>] [--env-file=<path>]
 *       [--user=U] [--group=G] [--supplementary-gids=a,b|-] [--capabilities=HEX|-]
 *       [--no-new-privileges=0|1] [--cwd=DIR] -- CMD [ARG...]
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *opt(const char *arg, const char *name)
{
	size_t n = strlen(name);
	return !strncmp(arg, name, n) && arg[n] == '=' ? arg + n + 1 : NULL;
}

static pid_t parse_pid(const char *s, const char *what)
{
	uint64_t v;
	if (!s || parse_uint(s, 10, 0x3fffffff, &v) < 0 || v == 0)
		die("enter: %s wants a pid, got \"%s\"", what, s ? s : "");
	return (pid_t)v;
}

/* Puts this process into the cgroups of `pid` (the app), where they differ from ours. */
static void join_cgroups(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
	char *theirs = read_small_file(AT_FDCWD, path, 1 << 20, NULL);
	char *mine = read_small_file(AT_FDCWD, "/proc/self/cgroup", 1 << 20, NULL);
	char *mi = read_small_file(AT_FDCWD, "/proc/self/mountinfo", 16 << 20, NULL);
	if (!theirs || !mine || !mi)
		die("enter: reading cgroups: %s", strerror(errno));
	for (char *s1 = NULL, *ln = strtok_r(theirs, "\n", &s1); ln; ln = strtok_r(NULL, "\n", &s1)) {
		/* hierarchy-id:controllers:path */
		char *c1 = strchr(ln, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2 || !strcmp(c2 + 1, "/"))
			continue;
		/* the same line in ours: nothing to do */
		size_t ll = strlen(ln);
		int same = 0;
		for (char *m = mine; (m = strstr(m, ln)); m++)
			if ((m == mine || m[-1] == '\n') && (m[ll] == '\n' || !m[ll])) {
				same = 1;
				break;
			}
		if (same)
			continue;
		*c2 = 0;
		const char *ctrls = c1 + 1, *cpath = c2 + 1;
		/* find where this hierarchy is mounted */
		char *target = NULL;
		char *copy = xstrdup(mi);
		for (char *s2 = NULL, *m = strtok_r(copy, "\n", &s2); m && !target; m = strtok_r(NULL, "\n", &s2)) {
			char *f[6], *sep = strstr(m, " - ");
			if (!sep)
				continue;
			*sep = 0;
			char *s3 = NULL;
			int nf = 0;
			for (char *t = strtok_r(m, " ", &s3); t && nf < 6; t = strtok_r(NULL, " ", &s3))
				f[nf++] = t;
			char *fstype = strtok_r(sep + 3, " ", &s3), *src = strtok_r(NULL, " ", &s3);
			char *sopts = strtok_r(NULL, " ", &s3);
			(void)src;
			if (nf < 5 || !fstype || !sopts)
				continue;
			if (!*ctrls) {
				if (strcmp(fstype, "cgroup2"))
					continue;
			} else {
				if (strcmp(fstype, "cgroup"))
					continue;
				int all = 1;
				char *cc = xstrdup(ctrls), *s4 = NULL;
				for (char *t = strtok_r(cc, ",", &s4); t && all; t = strtok_r(NULL, ",", &s4)) {
					size_t tl = strlen(t);
					int hit = 0;
					for (char *o = sopts; (o = strstr(o, t)); o++)
						if ((o == sopts || o[-1] == ',') && (o[tl] == ',' || !o[tl]))
							hit = 1;
					all = hit;
				}
				free(cc);
				if (!all)
					continue;
			}
			/* f[3] = root of the mount within the hierarchy, f[4] = mount point */
			const char *root = f[3];
			size_t rl = strcmp(root, "/") ? strlen(root) : 0;
			if (rl && (strncmp(cpath, root, rl) || (cpath[rl] != '/' && cpath[rl])))
				continue;
			/* mount points escape space, tab, newline and backslash as \ooo */
			char *mp = f[4], *o = mp;
			for (char *q = mp; *q; q++) {
				if (q[0] == '\\' && q[1] >= '0' && q[1] <= '7' && q[2] && q[3]) {
					*o++ = (char)((q[1] - '0') * 64 + (q[2] - '0') * 8 + (q[3] - '0'));
					q += 3;
				} else
					*o++ = *q;
			}
			*o = 0;
			target = xasprintf("%s%s/cgroup.procs", mp, cpath + rl);
		}
		free(copy);
		if (!target)
			continue; /* not mounted here: nothing we could join through */
		int fd = open(target, O_WRONLY | O_CLOEXEC);
		char buf[16];
		snprintf(buf, sizeof buf, "%d\n", (int)getpid());
		if (fd < 0 || write_all(fd, buf, strlen(buf)) < 0)
			die("enter: joining the app's cgroup (%s): %s", target, strerror(errno));
		close(fd);
		free(target);
	}
	free(theirs);
	free(mine);
	free(mi);
}

static char **load_env(const char *file)
{
	int n = 0;
	char **env = NULL;
	if (file) {
		char *buf = read_small_file(AT_FDCWD, file, 4 << 20, NULL);
		if (!buf)
			die("enter: environment file %s: %s", file, strerror(errno));
		for (char *save = NULL, *ln = strtok_r(buf, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
			char *eq = strchr(ln, '=');
			if (!eq || eq == ln || *ln == '#')
				continue;
			if (!strncmp(ln, "TERM=", 5))
				continue;
			*(char **)vec_push(&env, &n, sizeof(char *)) = ln;
		}
	}
	const char *term = getenv("TERM");
	*(char **)vec_push(&env, &n, sizeof(char *)) = xasprintf("TERM=%s", term && *term ? term : "vt100");
	*(char **)vec_push(&env, &n, sizeof(char *)) = NULL;
	return env;
}

static int ns_open(pid_t pid, const char *ns)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)pid, ns);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("enter: %s: %s", path, strerror(errno));
	return fd;
}

int enter_main(int argc, char **argv)
{
	pid_t pid = 0, app_pid = 0;
	const char *env_file = NULL, *sg = NULL, *caps = NULL, *nnp = "0", *v;
	struct security sec = { "0", "0", NULL, 0, 0, 0, 0, "/" };
	int i;
	g_who = "enter: ";
	for (i = 2; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			i++;
			break;
		}
		if ((v = opt(a, "--pid")))
			pid = parse_pid(v, "--pid");
		else if ((v = opt(a, "--app-pid")))
			app_pid = parse_pid(v, "--app-pid");
		else if ((v = opt(a, "--env-file")))
			env_file = v;
		else if ((v = opt(a, "--user")))
			sec.user = v;
		else if ((v = opt(a, "--group")))
			sec.group = v;
		else if ((v = opt(a, "--supplementary-gids")))
			sg = v;
		else if ((v = opt(a, "--capabilities")))
			caps = v;
		else if ((v = opt(a, "--no-new-privileges")))
			nnp = v;
		else if ((v = opt(a, "--cwd")))
			sec.cwd = v;
		else
			die("unknown argument \"%s\"", a);
	}
	if (!pid)
		die("--pid=<pod pid> is required");
	if (i >= argc)
		die("no command given (after --)");
	char **cmd = argv + i;
	if (!app_pid)
		app_pid = pid;
	if (!*sec.user || !*sec.group || *sec.cwd != '/')
		die("bad --user, --group or --cwd");
	if (sg && *sg && strcmp(sg, "-")) {
		gid_t *g = NULL;
		int n = 0;
		char *l = xstrdup(sg);
		for (char *save = NULL, *t = strtok_r(l, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			uint64_t x;
			if (parse_uint(t, 10, 0xfffffffeULL, &x) < 0)
				die("bad supplementary gid \"%s\"", t);
			*(gid_t *)vec_push(&g, &n, sizeof(gid_t)) = (gid_t)x;
		}
		sec.sgids = g;
		sec.nsgids = n;
	}
	if (caps && *caps && strcmp(caps, "-")) {
		const char *h = strncmp(caps, "0x", 2) ? caps : caps + 2;
		if (parse_uint(h, 16, UINT64_MAX, &sec.caps) < 0)
			die("bad --capabilities \"%s\" (want hex)", caps);
		sec.has_caps = 1;
	}
	if (strcmp(nnp, "0") && strcmp(nnp, "1"))
		die("--no-new-privileges wants 0 or 1");
	sec.nnp = nnp[0] == '1';

	reset_signals();
	/* The child is visible in the pod until it execs (with the caller's fds until
	 * it closes them): not dumpable, so no pod process can open its /proc/PID/fd. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		die("PR_SET_DUMPABLE: %s", strerror(errno));
	char **env = load_env(env_file);

	/* Everything from the host first: namespace fds, the app's root, cgroups. */
	int fd_ipc = ns_open(pid, "ipc"), fd_uts = ns_open(pid, "uts"), fd_net = ns_open(pid, "net");
	int fd_pid = ns_open(pid, "pid"), fd_mnt = ns_open(app_pid, "mnt"), fd_apid = ns_open(app_pid, "pid");
	struct stat s1, s2;
	if (fstat(fd_pid, &s1) < 0 || fstat(fd_apid, &s2) < 0 || s1.st_ino != s2.st_ino || s1.st_dev != s2.st_dev)
		die("process %d is not in the pod of process %d", (int)app_pid, (int)pid);
	close(fd_apid);
	char rp[64];
	snprintf(rp, sizeof rp, "/proc/%d/root", (int)app_pid);
	int rootfd = open(rp, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		die("%s: %s", rp, strerror(errno));
	join_cgroups(app_pid);

	if (setns(fd_ipc, CLONE_NEWIPC) < 0 || setns(fd_uts, CLONE_NEWUTS) < 0 || setns(fd_net, CLONE_NEWNET) < 0 ||
	    setns(fd_pid, CLONE_NEWPID) < 0 || setns(fd_mnt, CLONE_NEWNS) < 0)
		die("setns: %s", strerror(errno));
	close(fd_ipc);
	close(fd_uts);
	close(fd_net);
	close(fd_pid);
	close(fd_mnt);
	if (fchdir(rootfd) < 0 || chroot(".") < 0 || chdir("/") < 0)
		die("entering the app's root: %s", strerror(errno));
	close(rootfd);

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0)
		die("signalfd: %s", strerror(errno));

	pid_t child = fork(); /* the child is in the pod's pid namespace */
	if (child < 0)
		die("fork: %s", strerror(errno));
	if (child == 0) {
		reset_signals();
		close_fds_from(3); /* whatever the caller left open: not for the pod */
		if (apply_security(&sec) < 0)
			_exit(EXIT_HELPER);
		_exit(exec_in_path(cmd, env, ""));
	}
	for (;;) {
		struct signalfd_siginfo si;
		ssize_t r = read(sfd, &si, sizeof si);
		if (r < 0 && errno == EINTR)
			continue;
		if (r != sizeof si)
			die("signalfd: %s", strerror(errno));
		if (si.ssi_signo != SIGCHLD) {
			/* A terminal's signal reached the command too (same process group). */
			if (si.ssi_code != SI_KERNEL)
				kill(child, (int)si.ssi_signo);
			continue;
		}
		int st;
		pid_t w = waitpid(child, &st, WNOHANG);
		if (w == child)
			return wait_code(st);
	}
}
