/* tspod-helper enter: run a command in a running pod, inside an app's rootfs, with
 * the app's environment, credentials and restrictions (never more than the app has).
 *
 *   tspod-helper enter --pid=<pod pid 1> [--app-pid=<app host pid>] [--env-file=<path>]
 *       [--user=U] [--group=G] [--supplementary-gids=a,b|-] [--capabilities=HEX|-]
 *       [--no-new-privileges=0|1] [--cwd=DIR] -- CMD [ARG...]
 */
#include "helper.h"

#include <sys/fsuid.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
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

/* Puts this process into the cgroups of the app (its /proc directory), where they
 * differ from ours. */
static void join_cgroups(int procdir)
{
	char *theirs = read_small_file(procdir, "cgroup", 1 << 20, NULL);
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

/* A process, pinned: its pidfd, and its /proc directory opened while the pidfd says
 * it is alive, so that both are that process and no later one with its pid. */
struct proc {
	pid_t pid;
	int pidfd;
	int dir;
};

static int exited(int pidfd)
{
	struct pollfd p = { pidfd, POLLIN, 0 };
	int r = poll(&p, 1, 0);
	return r != 0; /* readable (it exited), or we cannot tell */
}

static void proc_open(struct proc *pr, pid_t pid, const char *what)
{
	char path[32];
	pr->pid = pid;
	pr->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pr->pidfd < 0)
		die("%s %d: %s", what, (int)pid, errno == ESRCH ? "no such process" : strerror(errno));
	if (fcntl(pr->pidfd, F_SETFD, FD_CLOEXEC) < 0)
		die("pidfd: %s", strerror(errno));
	snprintf(path, sizeof path, "/proc/%d", (int)pid);
	pr->dir = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (pr->dir < 0 || exited(pr->pidfd))
		die("%s %d has exited", what, (int)pid);
}

/* dev/inode of a namespace (or of "/proc/self/ns/..." with dir AT_FDCWD) */
static void ns_id(int dir, const char *ns, struct stat *st, const char *who)
{
	char path[48];
	snprintf(path, sizeof path, "%sns/%s", dir == AT_FDCWD ? "/proc/self/" : "", ns);
	int fd = openat(dir, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, st) < 0)
		die("%s: namespace %s: %s", who, ns, errno == ENOENT ? "the process has exited" : strerror(errno));
	close(fd);
}

/* Is the process the init (pid 1) of a pid namespace of its own? */
static int is_ns_init(int dir)
{
	char *st = read_small_file(dir, "status", 1 << 16, NULL);
	if (!st)
		return 0;
	char *ns = strstr(st, "\nNSpid:");
	int yes = 0;
	if (ns) {
		char *end = strchr(ns + 1, '\n');
		if (end)
			*end = 0;
		char *last = strrchr(ns, '\t');
		yes = last && last != strchr(ns, '\t') && !strcmp(last + 1, "1");
	}
	free(st);
	return yes;
}

/* The ptmx of the pod's devpts (/dev/pts/ptmx in the app root, resolved in it), if
 * it is one: a devpts file system's 5:2. Pod code could have changed what is there,
 * but any genuine ptmx only makes a new pty. -1 otherwise. */
static int pod_ptmx(void)
{
	struct statfs sf;
	struct stat st;
	int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	int fd = root < 0 ? -1 : xopenat2(root, "dev/pts/ptmx", O_RDWR | O_NOCTTY | O_NOFOLLOW, 0, 0x10 /* RESOLVE_IN_ROOT */ | 0x02 /* NO_MAGICLINKS */);
	if (root >= 0)
		close(root);
	if (fd < 0)
		return -1;
	if (fstatfs(fd, &sf) < 0 || sf.f_type != 0x1cd1 /* DEVPTS_SUPER_MAGIC */ || fstat(fd, &st) < 0 ||
	    !S_ISCHR(st.st_mode) || major(st.st_rdev) != 5 || minor(st.st_rdev) != 2) {
		close(fd);
		return -1;
	}
	return fd;
}

int enter_main(int argc, char **argv)
{
	pid_t pid = 0, app_pid = 0;
	const char *env_file = NULL, *sg = NULL, *caps = NULL, *nnp = "0", *v;
	struct security sec = { "0", "0", NULL, 0, 0, 0, 0, "/", 0, 0, NULL };
	struct seccomp_spec filter = { 0 };
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
		else if ((v = opt(a, "--oom-score-adj"))) {
			if (strcmp(v, "-") && parse_oom_score_adj(v, &sec.oom) < 0)
				die("bad --oom-score-adj \"%s\" (want -1000..1000 or -)", v);
			sec.has_oom = strcmp(v, "-") != 0;
		}
		else if ((v = opt(a, "--seccomp"))) {
			/* - (none), or <remove|retain>:<errno>:<comma list of names or -> */
			if (strcmp(v, "-")) {
				char *m = xstrdup(v), *e = strchr(m, ':'), *l = e ? strchr(e + 1, ':') : NULL;
				const char *bad;
				if (!l)
					die("bad --seccomp \"%s\" (want MODE:ERRNO:NAMES or -)", v);
				*e++ = 0;
				*l++ = 0;
				int r = seccomp_parse(m, e, l, &filter, &bad);
				if (r == -1)
					die("bad --seccomp: bad %s", bad);
				if (r == -2)
					die("bad --seccomp: unknown syscall \"%s\"", bad);
				sec.seccomp = &filter;
			}
		} else
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
	/* On a terminal, the command gets a pty of its own, never the caller's terminal:
	 * we relay between them. One of the host's, opened now, unless the pod's devpts
	 * can give one (below: then its name means something in the pod). */
	struct relay tty;
	int tty_mode = isatty(0), hostpt = tty_mode ? host_ptmx() : -1;

	/* Everything from the host first, each process looked up once: a pidfd, and its
	 * /proc directory while the pidfd says it lives. A pid that is reused meanwhile
	 * (the pod gone, a host process in its place) can never put us into the host:
	 * the pod's pid is the init of a pid namespace that is not ours, the app is in
	 * that namespace, and the app is the one we join (setns on its pidfd), still alive. */
	struct proc pod, app;
	proc_open(&pod, pid, "process");
	proc_open(&app, app_pid, "process");
	struct stat pod_ns, app_ns, own_ns;
	ns_id(pod.dir, "pid", &pod_ns, "the pod");
	ns_id(app.dir, "pid", &app_ns, "the app");
	ns_id(AT_FDCWD, "pid", &own_ns, "this process");
	if (pod_ns.st_dev == own_ns.st_dev && pod_ns.st_ino == own_ns.st_ino)
		die("process %d is not a pod's (it is in this pid namespace)", (int)pid);
	if (!is_ns_init(pod.dir))
		die("process %d is not a pod's pid 1", (int)pid);
	if (app_ns.st_ino != pod_ns.st_ino || app_ns.st_dev != pod_ns.st_dev)
		die("process %d is not in the pod of process %d", (int)app_pid, (int)pid);
	int rootfd = openat(app.dir, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		die("the root of process %d: %s", (int)app_pid, strerror(errno));
	/* The app's user namespace too, when it has one of its own (--private-users):
	 * the command then holds capabilities in that namespace only, as the app. */
	struct stat app_user, own_user;
	ns_id(app.dir, "user", &app_user, "the app");
	ns_id(AT_FDCWD, "user", &own_user, "this process");
	int join_user = app_user.st_dev != own_user.st_dev || app_user.st_ino != own_user.st_ino;
	join_cgroups(app.dir);
	/* In the app's user namespace the child could not write its oom_score_adj (its
	 * /proc files are the host root's, as it is not dumpable, and lowering the value
	 * needs CAP_SYS_RESOURCE on the host): we write it now, as the host's root, and
	 * the child inherits it. */
	if (join_user && sec.has_oom) {
		char buf[16];
		int n = snprintf(buf, sizeof buf, "%d", sec.oom);
		int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, buf, (size_t)n) != n)
			die("oom_score_adj %d: %s", sec.oom, strerror(errno));
		close(fd);
		sec.has_oom = 0;
	}
	if (exited(app.pidfd) || exited(pod.pidfd))
		die("process %d has exited", (int)(exited(app.pidfd) ? app_pid : pid));

	/* ipc, uts, net, pid and mnt: the app's (the pod's, but its own mount namespace),
	 * all at once, from its pidfd: fails if it has exited. */
	int nsflags = CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWCGROUP;
	if (join_user)
		nsflags |= CLONE_NEWUSER; /* the kernel installs the user namespace first */
	if (setns(app.pidfd, nsflags) < 0) {
		if (join_user)
			die("joining the namespaces of process %d: %s", (int)app_pid,
			    errno == ESRCH ? "it has exited" : strerror(errno));
		if (errno != EINVAL)
			die("joining the namespaces of process %d: %s", (int)app_pid,
			    errno == ESRCH ? "it has exited" : strerror(errno));
		/* Before Linux 5.8 (no setns on a pidfd): the namespace files of its /proc
		 * directory, opened while it lives. */
		static const char *const names[] = { "ipc", "uts", "net", "pid", "cgroup", "mnt" };
		static const int types[] = { CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET, CLONE_NEWPID, CLONE_NEWCGROUP, CLONE_NEWNS };
		int fds[6];
		char path[16];
		for (int k = 0; k < 6; k++) {
			snprintf(path, sizeof path, "ns/%s", names[k]);
			if ((fds[k] = openat(app.dir, path, O_RDONLY | O_CLOEXEC)) < 0)
				die("%s of process %d: %s", path, (int)app_pid, strerror(errno));
		}
		if (exited(app.pidfd))
			die("process %d has exited", (int)app_pid);
		for (int k = 0; k < 6; k++) {
			if (setns(fds[k], types[k]) < 0)
				die("setns: %s", strerror(errno));
			close(fds[k]);
		}
	}
	if (fchdir(rootfd) < 0 || chroot(".") < 0 || chdir("/") < 0)
		die("entering the app's root: %s", strerror(errno));
	/* In the app's user namespace our ids (the host's root) are unmapped: what we make
	 * there (the pseudo-terminal below) is made as its root instead. */
	if (join_user) {
		setfsgid(0);
		setfsuid(0);
		if ((int)setfsuid((uid_t)-1) != 0)
			die("the pod's root as file system user: %s", strerror(errno));
	}
	close(rootfd);
	if (tty_mode) {
		int podpt = pod_ptmx();
		if (podpt >= 0)
			close(hostpt);
		relay_open(&tty, podpt >= 0 ? podpt : hostpt);
	}
	close(pod.dir);
	close(app.dir);
	close(pod.pidfd);

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGWINCH);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		die("signalfd: %s", strerror(errno));

	pid_t child = fork(); /* the child is in the pod's pid namespace */
	if (child < 0)
		die("fork: %s", strerror(errno));
	if (child == 0) {
		reset_signals();
		if (tty_mode) {
			/* a session of its own, with the pod's terminal as controlling terminal */
			if (setsid() < 0)
				die("setsid: %s", strerror(errno));
			for (int k = 0; k < 3; k++)
				if (dup2(tty.slave, k) < 0)
					die("dup2: %s", strerror(errno));
			if (ioctl(0, TIOCSCTTY, 0) < 0)
				die("the pod's terminal as controlling terminal: %s", strerror(errno));
		}
		close_fds_from(3); /* whatever the caller left open: not for the pod */
		if (apply_security(&sec) < 0)
			_exit(EXIT_HELPER);
		_exit(exec_in_path(cmd, env, ""));
	}
	if (tty_mode)
		relay_start(&tty);
	for (;;) {
		struct pollfd pf[3] = { { sfd, POLLIN, 0 } };
		int n = 1 + (tty_mode ? relay_pollfds(&tty, pf + 1) : 0);
		if (poll(pf, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll: %s", strerror(errno));
		}
		if (tty_mode)
			relay_events(&tty, pf + 1, n - 1);
		if (!pf[0].revents)
			continue;
		struct signalfd_siginfo si;
		while (read(sfd, &si, sizeof si) == sizeof si) {
			if (si.ssi_signo == SIGWINCH) {
				if (tty_mode)
					relay_winch(&tty);
			} else if (si.ssi_signo != SIGCHLD) {
				/* Without a pty, a terminal's signal reached the command too (same
				 * process group); with one, the caller's terminal is raw. */
				if (tty_mode || si.ssi_code != SI_KERNEL)
					kill(child, (int)si.ssi_signo);
			}
		}
		int st;
		if (waitpid(child, &st, WNOHANG) == child) {
			if (tty_mode)
				relay_finish(&tty);
			return wait_code(st);
		}
	}
}
