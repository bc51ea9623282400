/* tspod-helper run: the outer helper (host side) and the pod's pid 1.
 *
 *   outer helper   host pid ns, host mount ns. Forwards SIGTERM/SIGINT/SIGHUP to
 *                  pid 1, publishes the app pids and the pid file once pid 1 says
 *                  every app is up, writes the status files pid 1 reports, exits
 *                  with pid 1's code. The only holder of the lock fd and of every
 *                  host directory fd: the pod cannot see it.
 *   pid 1          new pid ns; unshares mnt/uts/ipc/net, runs the set-up steps,
 *                  pivot_roots into the pod root, starts the apps, reaps every child,
 *                  stops the others when one fails, reports exit codes. Holds no host
 *                  directory fd, and is not dumpable (its /proc/PID/fd is closed to
 *                  the pod's processes), nor are its children until they exec.
 *   app child      own mount ns, pivot_root into its rootfs, pre-start handlers,
 *                  credentials, exec. A post-stop runner is made the same way.
 *
 * pid 1 -> outer helper, one line each on the report pipe (untrusted input: pid 1 is
 * in the pod):  "app <index> <pid in the pod>", "ready", "exit <index> <code>".
 */
#include "helper.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <grp.h>
#include <termios.h>
#include <unistd.h>

extern char **environ;

#define STOP_TIMEOUT_MS 10000 /* SIGTERM, then SIGKILL this much later */

enum { A_STARTING, A_RUNNING, A_EXITED };

struct rt {
	pid_t pid;	/* the app child; the app's main process once it has exec'd */
	int notify;	/* read end of its exec pipe until it has settled, else -1 */
	int state;
	int failed_start;
	int code;
	int64_t kill_at; /* SIGKILL deadline once stopping, 0 = none */
	pid_t post_pid;	 /* post-stop runner */
	int64_t post_kill_at;
	int post_done;
};

static struct plan P;
static struct rt *R;
static void oom_for(const struct app *a);
static void oom_back(const struct app *a);
static int tty_mode;	  /* stdin inherit and stdin is a terminal: the pod gets a pty of its own */
static int devnull = -1;  /* opened on the host, for the apps' stdin */

/* ------------------------------------------------------------------ app child */

static void __attribute__((noreturn)) child_fail(int nfd, int code)
{
	if (nfd >= 0)
		write_all(nfd, "F", 1);
	_exit(code);
}

static int run_handler(const struct app *a, char **argv, const char *kind)
{
	pid_t pid = fork();
	if (pid < 0) {
		warnx("%s handler %s: fork: %s", kind, argv[0], strerror(errno));
		return EXIT_HELPER;
	}
	if (pid == 0) {
		close_fds_from(3); /* before its credentials: nothing of ours reaches the handler */
		/* As in rkt: handlers run as root (uid 0, gid 0, no supplementary groups), so
		 * that one can chown a volume for an unprivileged app; but they are pod code,
		 * so the app's capability bounding set and no_new_privs still apply. */
		struct security s;
		security_of_app(a, &s);
		if (P.userns)
			s.has_oom = 0; /* inherited from pid 1, which set it (oom_for) */
		s.user = "0";
		s.group = "0";
		s.sgids = NULL;
		s.nsgids = 0;
		if (apply_security(&s) < 0)
			_exit(EXIT_HELPER);
		char *what = xasprintf("%s handler ", kind);
		_exit(exec_in_path(argv, a->env, what));
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return EXIT_HELPER;
	return wait_code(st);
}

/* In the app's root, with the pod's terminal on fds 0-2: it becomes the controlling
 * terminal, reached through the app's /dev/console when that is it (so the app sees
 * its terminal as /dev/console, not as a host devpts path). */
static int own_terminal(void)
{
	struct stat t, c;
	int fd = open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd >= 0 && fstat(fd, &c) == 0 && fstat(0, &t) == 0 && S_ISCHR(c.st_mode) && c.st_rdev == t.st_rdev)
		for (int i = 0; i < 3; i++)
			if (dup2(fd, i) < 0) {
				warnx("dup2: %s", strerror(errno));
				return -1;
			}
	if (fd >= 0)
		close(fd);
	if (ioctl(0, TIOCSCTTY, 0) < 0) {
		warnx("the pod's terminal as controlling terminal: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Into the app's cgroups (through the cgroup.procs files pid 1 opened on the host:
 * "0" is the writer), then a cgroup namespace of its own rooted there, so the app
 * sees its cgroup as "/". First thing in a child of pid 1, before anything of the
 * app runs; the fds are closed right after with all the others. */
static int join_app_cgroups(const struct app *a)
{
	for (int k = 0; k < a->ncgroups; k++)
		if (write_all(a->cgroup_fds[k], "0\n", 2) < 0) {
			warnx("joining the cgroup %s: %s", a->cgroups[k], strerror(errno));
			return -1;
		}
	if ((P.ns & NS_CGROUP) && unshare(CLONE_NEWCGROUP) < 0) {
		warnx("unshare(CLONE_NEWCGROUP): %s", strerror(errno));
		return -1;
	}
	return 0;
}

static void __attribute__((noreturn)) app_child(const struct app *a, int nfd)
{
	reset_signals();
	g_who = xasprintf("app %s: ", a->name);
	if (join_app_cgroups(a) < 0)
		child_fail(nfd, EXIT_HELPER);
	/* With the pod's terminal: a session of its own, which the terminal is the
	 * controlling terminal of (below), so ^C and ^Z reach the app. */
	if (tty_mode ? setsid() < 0 : setpgid(0, 0) < 0)
		child_fail(nfd, EXIT_HELPER);
	if (!P.stdin_inherit && dup2(devnull, 0) < 0)
		child_fail(nfd, EXIT_HELPER);
	/* Everything pid 1 has open (the report pipe, other apps' exec pipes, /dev/null)
	 * is closed here, before anything of the app runs; only the exec pipe stays
	 * (close-on-exec: its EOF tells pid 1 that the app has exec'd). */
	close_fds_except(&nfd, 1);
	if (enter_app_root(a) < 0)
		child_fail(nfd, EXIT_HELPER);
	if (tty_mode && own_terminal() < 0)
		child_fail(nfd, EXIT_HELPER);
	for (int i = 0; i < a->npre; i++) {
		int code = run_handler(a, a->pre[i], "pre-start");
		if (code) {
			warnx("pre-start handler %s failed (exit code %d); not starting the app", a->pre[i][0], code);
			child_fail(nfd, code);
		}
	}
	struct security s;
	security_of_app(a, &s);
	if (P.userns)
		s.has_oom = 0; /* inherited from pid 1, which set it (oom_for) */
	if (apply_security(&s) < 0)
		child_fail(nfd, EXIT_HELPER);
	child_fail(nfd, exec_in_path(a->exec, a->env, ""));
}

static pid_t start_post_stop(const struct app *a)
{
	pid_t pid = fork();
	if (pid < 0) {
		warnx("app %s: post-stop: fork: %s", a->name, strerror(errno));
		return -1;
	}
	if (pid)
		return pid;
	reset_signals();
	g_who = xasprintf("app %s: ", a->name);
	setpgid(0, 0);
	if (join_app_cgroups(a) < 0 || dup2(devnull, 0) < 0)
		_exit(EXIT_HELPER);
	close_fds_from(3);
	if (enter_app_root(a) < 0)
		_exit(EXIT_HELPER);
	for (int i = 0; i < a->npost; i++) {
		int code = run_handler(a, a->post[i], "post-stop");
		if (code)
			warnx("post-stop handler %s failed (exit code %d)", a->post[i][0], code);
	}
	_exit(0);
}

/* ---------------------------------------------------------------------- pid 1 */

/* The plan's sysctls, in pid 1's new namespaces (a net.* sysctl under /proc/sys is
 * the writer's network namespace's, an IPC one its IPC namespace's), before the
 * set-up steps and so before the apps' /proc/sys is read-only. */
static void write_sysctls(const struct plan *p)
{
	for (int i = 0; i < p->nsysctls; i++) {
		const struct sysctl *s = &p->sysctls[i];
		char *file = xasprintf("/proc/sys/%s", s->name);
		for (char *q = file + 10; *q; q++)
			if (*q == '.')
				*q = '/';
		int fd = open(file, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		size_t len = strlen(s->value);
		if (fd < 0 || write(fd, s->value, len) != (ssize_t)len)
			die("sysctl %s=%s: %s", s->name, s->value, strerror(errno));
		close(fd);
		free(file);
	}
}

void lo_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		die("loopback: %s", strerror(errno));
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		die("bringing up loopback: %s", strerror(errno));
	close(s);
}

static int report_fd = -1; /* to the outer helper */

/* The outer helper writes the status file: pid 1 holds no host directory. */
static void write_status(int i, int code)
{
	char buf[48];
	int n = snprintf(buf, sizeof buf, "exit %d %d\n", i, code);
	if (report_fd >= 0 && write_all(report_fd, buf, (size_t)n) < 0)
		warnx("reporting the exit code of app %s: %s", P.apps[i].name, strerror(errno));
}

static int alive(int i)
{
	return R[i].pid > 0 && R[i].state != A_EXITED;
}

static void stop_apps(int sig)
{
	int64_t deadline = now_ms() + STOP_TIMEOUT_MS;
	for (int i = 0; i < P.napps; i++) {
		if (!alive(i))
			continue;
		kill(R[i].pid, sig);
		if (!R[i].kill_at)
			R[i].kill_at = deadline;
	}
}

static int pod_code = -1;

static void app_exited(int i, int status)
{
	struct rt *r = &R[i];
	r->state = A_EXITED;
	r->code = wait_code(status);
	if (r->notify >= 0) {
		close(r->notify);
		r->notify = -1;
	}
	write_status(i, r->code);
	if (r->code && pod_code < 0) {
		pod_code = r->code; /* the first failure decides; the others are stopped */
		stop_apps(SIGTERM);
	}
	if (P.apps[i].npost) {
		oom_for(&P.apps[i]);
		r->post_pid = start_post_stop(&P.apps[i]);
		oom_back(&P.apps[i]);
		r->post_kill_at = now_ms() + STOP_TIMEOUT_MS;
		if (r->post_pid < 0)
			r->post_done = 1;
	} else
		r->post_done = 1;
}

static void reap(void)
{
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (int i = 0; i < P.napps; i++) {
			if (pid == R[i].pid && R[i].state != A_EXITED)
				app_exited(i, st);
			else if (pid == R[i].post_pid) {
				R[i].post_pid = 0;
				R[i].post_done = 1;
			}
		}
		/* anything else is an orphan we inherited: reaped, nothing more */
	}
}

static void kill_everything(void)
{
	if (P.ns & NS_PID) {
		kill(-1, SIGKILL); /* as pid 1: everything in the pod's pid namespace */
		while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
			;
		return;
	}
	/* No pid namespace: we are a subreaper; kill our children until none is left. */
	for (;;) {
		char path[64];
		snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
		char *list = read_small_file(AT_FDCWD, path, 1 << 20, NULL);
		if (list) {
			for (char *save = NULL, *t = strtok_r(list, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
				kill(atoi(t), SIGKILL);
			free(list);
		}
		if (waitpid(-1, NULL, 0) < 0 && errno == ECHILD)
			break;
	}
}

static int reported;

static void maybe_report(void)
{
	if (reported || report_fd < 0)
		return;
	for (int i = 0; i < P.napps; i++)
		if (R[i].notify >= 0)
			return;
	/* Every app has exec'd or failed: tell the outer helper the in-namespace pids. */
	size_t cap = 16 + (size_t)P.napps * 32, n = 0;
	char *buf = xmalloc(cap);
	for (int i = 0; i < P.napps; i++)
		if (R[i].state == A_RUNNING)
			n += snprintf(buf + n, cap - n, "app %d %d\n", i, (int)R[i].pid);
	n += snprintf(buf + n, cap - n, "ready\n");
	write_all(report_fd, buf, n);
	free(buf);
	reported = 1;
}

static int all_done(void)
{
	for (int i = 0; i < P.napps; i++)
		if (R[i].state != A_EXITED || !R[i].post_done)
			return 0;
	return 1;
}

/* pid 1, once every mount of the plan is made (as the host's root, in a mount
 * namespace the host's user namespace owns, so that the pod can never undo one):
 * into the pod's user namespace, as its root (the range's first id on the host).
 * From here on pid 1 and everything it starts hold capabilities in that namespace
 * only. A change of credentials clears the parent-death signal and dumpable flag:
 * both are set again, and the outer helper checked once more. */
/* With `userns`: our own /proc/self/oom_score_adj, opened while we are the host's
 * root. In the pod's user namespace no process can open its own any more (pid 1 and
 * its children until they exec are not dumpable, so their /proc files are the host
 * root's), and lowering the value needs CAP_SYS_RESOURCE on the host. So pid 1 sets
 * an app's value on itself through this fd right before it forks the app (or its
 * post-stop runner), which inherits it, and puts its own back after. */
static int oom_fd = -1;
static int oom_own;

static int write_oom(int v)
{
	char buf[16];
	int n = snprintf(buf, sizeof buf, "%d", v);
	return pwrite(oom_fd, buf, (size_t)n, 0) == n ? 0 : -1;
}

/* Before forking a process of app a: its oom_score_adj on ourselves (userns only). */
static void oom_for(const struct app *a)
{
	if (oom_fd >= 0 && a->has_oom && write_oom(a->oom) < 0)
		warnx("app %s: oom_score_adj %d: %s", a->name, a->oom, strerror(errno));
}

static void oom_back(const struct app *a)
{
	if (oom_fd >= 0 && a->has_oom && write_oom(oom_own) < 0)
		warnx("oom_score_adj %d: %s", oom_own, strerror(errno));
}

/* pid 1, once every mount of the plan is made (as the host's root, in a mount
 * namespace the host's user namespace owns, so that the pod can never undo one):
 * into the pod's user namespace, as its root (the range's first id on the host).
 * From here on pid 1 and everything it starts hold capabilities in that namespace
 * only. A change of credentials clears the parent-death signal and dumpable flag:
 * both are set again, and the outer helper checked once more. */
static void join_userns(int outer_pidfd)
{
	oom_fd = open("/proc/self/oom_score_adj", O_RDWR | O_CLOEXEC);
	char buf[16] = "";
	if (oom_fd < 0 || pread(oom_fd, buf, sizeof buf - 1, 0) < 0)
		die("/proc/self/oom_score_adj: %s", strerror(errno));
	oom_own = atoi(buf);
	/* The lowest value an app asks for, written as the host's root, becomes the floor
	 * this process and its children may go down to without privileges. */
	int low = oom_own;
	for (int i = 0; i < P.napps; i++)
		if (P.apps[i].has_oom && P.apps[i].oom < low)
			low = P.apps[i].oom;
	if (low < oom_own && write_oom(low) < 0)
		die("oom_score_adj %d: %s", low, strerror(errno));
	if (setns(g_userns_fd, CLONE_NEWUSER) < 0)
		die("joining the pod's user namespace: %s", strerror(errno));
	close(g_userns_fd);
	g_userns_fd = -1;
	if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
		die("becoming root of the pod's user namespace: %s", strerror(errno));
	if (low < oom_own && write_oom(oom_own) < 0) /* raising: no privilege needed; the floor stays */
		die("oom_score_adj %d: %s", oom_own, strerror(errno));
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		die("prctl: %s", strerror(errno));
	struct pollfd op = { outer_pidfd, POLLIN, 0 };
	if (poll(&op, 1, 0) != 0)
		_exit(EXIT_HELPER);
}

static void __attribute__((noreturn)) pid1_main(int rep, int outer_pidfd, int tty)
{
	report_fd = rep;
	/* The pod dies with its supervisor: should the outer helper die (even by SIGKILL),
	 * pid 1 gets SIGKILL, and with it every process of the pod's pid namespace. If it
	 * died before the prctl, its pidfd says so (getppid() cannot: our parent is in
	 * another pid namespace, so it reads 0 either way). */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		die("PR_SET_PDEATHSIG: %s", strerror(errno));
	struct pollfd op = { outer_pidfd, POLLIN, 0 };
	if (poll(&op, 1, 0) != 0)
		_exit(EXIT_HELPER); /* gone already (or we cannot tell): nobody to run the pod for */
	/* Nothing of the pod has run yet. From here on neither pid 1 nor a child of it
	 * (until it execs) can be opened through /proc/PID/{fd,cwd,root,mem} by the
	 * pod's processes (they would need CAP_SYS_PTRACE), and pid 1 keeps no fd
	 * but the report pipe: not the lock (the outer helper's alone), not a host
	 * directory, not the outer helper's signalfd. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		die("PR_SET_DUMPABLE: %s", strerror(errno));
	/* Kept besides: the pod's user namespace (joined below) and the outer helper's
	 * pidfd (checked again then), both closed before any pod code runs. */
	int keep[4] = { report_fd, outer_pidfd, g_userns_fd, tty };
	int nkeep = 2;
	if (g_userns_fd >= 0)
		keep[nkeep++] = g_userns_fd;
	if (tty >= 0)
		keep[nkeep++] = tty;
	close_fds_except(keep, nkeep);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0)
		die("signalfd: %s", strerror(errno));
	/* The pod gets its own session: the caller's terminal signals reach the outer
	 * helper only, which forwards them once; the pod's own terminal (tty) is the
	 * app's controlling terminal, not ours. */
	setsid();
	signal(SIGPIPE, SIG_IGN); /* the outer helper may be gone when we report */

	/* Opened on the host, before any mount (a device, not a directory). */
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0)
		die("/dev/null: %s", strerror(errno));
	/* Each app's cgroup.procs files, on the host's cgroup file systems (the pod sees
	 * none): its child writes itself into them. Only pid 1 (not dumpable) holds them;
	 * every child closes them before its app or handler runs. */
	for (int i = 0; i < P.napps; i++)
		for (int k = 0; k < P.apps[i].ncgroups; k++) {
			char *f = xasprintf("%s/cgroup.procs", P.apps[i].cgroups[k]);
			if ((P.apps[i].cgroup_fds[k] = open(f, O_WRONLY | O_CLOEXEC)) < 0)
				die("app %s: cgroup %s: %s", P.apps[i].name, f, strerror(errno));
			free(f);
		}

	int flags = CLONE_NEWNS;
	if (P.ns & NS_UTS)
		flags |= CLONE_NEWUTS;
	if (P.ns & NS_IPC)
		flags |= CLONE_NEWIPC;
	/* A private network set up beforehand (stage1 ran the CNI plugins in it) is
	 * joined; else a new one with only loopback. Opened on the host, before the
	 * mount namespace changes. */
	int netns_fd = -1;
	if (P.netns) {
		netns_fd = open(P.netns, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (netns_fd < 0)
			die("network namespace %s: %s", P.netns, strerror(errno));
	} else if (P.ns & NS_NET)
		flags |= CLONE_NEWNET;
	if (unshare(flags) < 0)
		die("unshare: %s", strerror(errno));
	if (netns_fd >= 0) {
		if (setns(netns_fd, CLONE_NEWNET) < 0)
			die("joining the network namespace %s: %s", P.netns, strerror(errno));
		close(netns_fd);
	}
	if ((P.ns & NS_UTS) && P.hostname && sethostname(P.hostname, strlen(P.hostname)) < 0)
		die("sethostname %s: %s", P.hostname, strerror(errno));
	if ((P.ns & NS_NET) && !P.netns)
		lo_up();
	write_sysctls(&P);
	/* Nothing we mount may propagate back to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		die("making / private: %s", strerror(errno));
	g_console_fd = tty;
	run_setup_steps(&P);
	enter_pod_root(&P);
	if (g_userns_fd >= 0)
		join_userns(outer_pidfd);
	close(outer_pidfd);
	if (tty >= 0) {
		/* From here on pod code runs: nothing of the caller's terminal stays with us.
		 * (The set-up steps' errors went to the caller's stderr.) */
		for (int i = 0; i < 3; i++)
			if (dup2(tty, i) < 0)
				die("dup2: %s", strerror(errno));
		close(tty);
		g_console_fd = -1;
	}
	if (!(P.ns & NS_PID))
		prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

	R = xmalloc(sizeof(struct rt) * (size_t)P.napps);
	memset(R, 0, sizeof(struct rt) * (size_t)P.napps);
	for (int i = 0; i < P.napps; i++) {
		int pfd[2];
		if (pipe2(pfd, O_CLOEXEC) < 0)
			die("pipe: %s", strerror(errno));
		oom_for(&P.apps[i]);
		pid_t pid = fork();
		if (pid < 0)
			die("fork: %s", strerror(errno));
		if (pid == 0) {
			close(pfd[0]);
			close(sfd);
			app_child(&P.apps[i], pfd[1]);
		}
		oom_back(&P.apps[i]);
		close(pfd[1]);
		if (!tty_mode)
			setpgid(pid, pid); /* (with a terminal, the app makes its own session) */
		R[i].pid = pid;
		R[i].notify = pfd[0];
		R[i].state = A_STARTING;
	}

	struct pollfd *pf = xmalloc(sizeof(struct pollfd) * (size_t)(P.napps + 1));
	int *who = xmalloc(sizeof(int) * (size_t)(P.napps + 1));
	for (;;) {
		maybe_report();
		if (all_done())
			break;
		int n = 0;
		pf[n].fd = sfd;
		pf[n].events = POLLIN;
		who[n++] = -1;
		int64_t now = now_ms(), next = -1;
		for (int i = 0; i < P.napps; i++) {
			if (R[i].notify >= 0) {
				pf[n].fd = R[i].notify;
				pf[n].events = POLLIN;
				who[n++] = i;
			}
			if (alive(i) && R[i].kill_at && (next < 0 || R[i].kill_at < next))
				next = R[i].kill_at;
			if (R[i].post_pid > 0 && R[i].post_kill_at && (next < 0 || R[i].post_kill_at < next))
				next = R[i].post_kill_at;
		}
		int timeout = next < 0 ? -1 : next <= now ? 0 : (int)(next - now);
		int r = poll(pf, (nfds_t)n, timeout);
		if (r < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		now = now_ms();
		for (int i = 0; i < P.napps; i++) {
			if (alive(i) && R[i].kill_at && R[i].kill_at <= now) {
				kill(-R[i].pid, SIGKILL);
				kill(R[i].pid, SIGKILL);
				R[i].kill_at = 0;
			}
			if (R[i].post_pid > 0 && R[i].post_kill_at && R[i].post_kill_at <= now) {
				warnx("app %s: post-stop handlers still running after %d s; killing them", P.apps[i].name,
				      STOP_TIMEOUT_MS / 1000);
				kill(-R[i].post_pid, SIGKILL);
				kill(R[i].post_pid, SIGKILL);
				R[i].post_kill_at = 0;
			}
		}
		if (r <= 0)
			continue;
		for (int k = 1; k < n; k++) {
			if (!pf[k].revents)
				continue;
			struct rt *a = &R[who[k]];
			char c;
			ssize_t got = read(a->notify, &c, 1);
			if (got < 0 && errno == EINTR)
				continue;
			if (got == 0 && a->state == A_STARTING)
				a->state = A_RUNNING; /* the exec pipe closed on exec */
			else if (got > 0)
				a->failed_start = 1;
			close(a->notify);
			a->notify = -1;
		}
		if (pf[0].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) == sizeof si) {
				int sig = (int)si.ssi_signo;
				if (sig == SIGCHLD)
					reap();
				else if (sig == SIGHUP) {
					for (int i = 0; i < P.napps; i++)
						if (alive(i))
							kill(R[i].pid, sig);
				} else
					stop_apps(sig);
			}
			reap();
		}
	}
	kill_everything();
	_exit(pod_code < 0 ? 0 : pod_code);
}

/* -------------------------------------------------------------- outer helper */

/* The host pid of pid1's child whose pid in the pod's namespace is nspid, or -1. */
static pid_t host_pid_of(pid_t pid1, int nspid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid1, (int)pid1);
	char *list = read_small_file(AT_FDCWD, path, 1 << 20, NULL);
	if (!list)
		return -1;
	pid_t found = -1;
	for (char *save = NULL, *t = strtok_r(list, " \n", &save); t && found < 0; t = strtok_r(NULL, " \n", &save)) {
		snprintf(path, sizeof path, "/proc/%s/status", t);
		char *st = read_small_file(AT_FDCWD, path, 1 << 16, NULL);
		if (!st)
			continue;
		char *ns = strstr(st, "\nNSpid:");
		if (ns) {
			char *end = strchr(ns + 1, '\n');
			if (end)
				*end = 0;
			char *last = strrchr(ns, '\t');
			if (last && atoi(last + 1) == nspid)
				found = atoi(t);
		}
		free(st);
	}
	free(list);
	return found;
}

static int open_dir_of(const char *path, const char **base, int create)
{
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	*base = strrchr(path, '/') + 1;
	if (slash == dir)
		slash[1] = 0;
	else
		*slash = 0;
	if (create && mkdir(dir, 0755) < 0 && errno != EEXIST) {
		free(dir);
		return -1;
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	return fd;
}

/* The outer helper's view of the pod: host directories pid 1 must not hold. */
static struct {
	pid_t pid1;
	int status_fd;	 /* status-dir, or -1 */
	int apps_pid_fd; /* apps-pid-dir, or -1 (opened when the first app is up) */
	char line[128];	 /* the report line being read */
	size_t len;
	int overlong;
} O = { 0, -1, -1, "", 0, 0 };

static void write_pid_file(void)
{
	const char *name;
	char buf[32];
	int dfd = open_dir_of(P.pid_file, &name, 0);
	snprintf(buf, sizeof buf, "%d\n", (int)O.pid1);
	if (dfd < 0 || write_file_atomic(dfd, name, buf, 0644) < 0)
		warnx("writing the pid file %s: %s", P.pid_file, strerror(errno));
	if (dfd >= 0)
		close(dfd);
}

/* Whether the OOM killer has killed in one of the app's cgroups: oom_kill of
 * memory.events (v2) or memory.oom_control (v1), read on the host. */
static int oom_killed(const struct app *a)
{
	static const char *const files[] = { "memory.events", "memory.oom_control" };
	for (int k = 0; k < a->ncgroups; k++)
		for (int j = 0; j < 2; j++) {
			char *f = xasprintf("%s/%s", a->cgroups[k], files[j]);
			char *t = read_small_file(AT_FDCWD, f, 1 << 16, NULL);
			free(f);
			if (!t)
				continue;
			char *l = strstr(t, "oom_kill ");
			while (l && l != t && l[-1] != '\n')
				l = strstr(l + 1, "oom_kill ");
			int n = l ? atoi(l + 9) : 0;
			free(t);
			if (n > 0)
				return 1;
		}
	return 0;
}

/* "<index> <number>" with index < napps and number <= max; 0 or -1. */
static int two_fields(char *s, uint64_t max, uint64_t *idx, uint64_t *num)
{
	char *sp = strchr(s, ' ');
	if (!sp)
		return -1;
	*sp = 0;
	return parse_uint(s, 10, (uint64_t)P.napps - 1, idx) < 0 || parse_uint(sp + 1, 10, max, num) < 0 ? -1 : 0;
}

/* One line of pid 1's report. Anything malformed is ignored: pid 1 lives in the pod. */
static void report_line(char *ln)
{
	uint64_t idx, v;
	char buf[32];
	if (!strncmp(ln, "app ", 4)) {
		if (!P.apps_pid_dir || two_fields(ln + 4, 1 << 30, &idx, &v) < 0)
			return;
		if (O.apps_pid_fd < 0) {
			const char *unused;
			char *inner = xasprintf("%s/x", P.apps_pid_dir);
			O.apps_pid_fd = open_dir_of(inner, &unused, 1);
			free(inner);
			if (O.apps_pid_fd < 0) {
				warnx("apps pid dir %s: %s", P.apps_pid_dir, strerror(errno));
				return;
			}
		}
		pid_t hp = host_pid_of(O.pid1, (int)v);
		if (hp < 0)
			return; /* already gone */
		snprintf(buf, sizeof buf, "%d\n", (int)hp);
		if (write_file_atomic(O.apps_pid_fd, P.apps[idx].name, buf, 0644) < 0)
			warnx("writing the pid of app %s: %s", P.apps[idx].name, strerror(errno));
	} else if (!strcmp(ln, "ready")) {
		if (O.apps_pid_fd >= 0) {
			close(O.apps_pid_fd);
			O.apps_pid_fd = -1;
		}
		if (P.pid_file)
			write_pid_file();
	} else if (!strncmp(ln, "exit ", 5)) {
		if (O.status_fd < 0 || two_fields(ln + 5, 255, &idx, &v) < 0)
			return;
		snprintf(buf, sizeof buf, "%d\n%s", (int)v, oom_killed(&P.apps[idx]) ? "oom-killed\n" : "");
		if (write_file_atomic(O.status_fd, P.apps[idx].name, buf, 0644) < 0)
			warnx("writing the status of app %s: %s", P.apps[idx].name, strerror(errno));
	}
}

/* Reads what pid 1 reported: 1 if it read something, 2 if there is nothing to read
 * now, 0 at EOF (or on an error). */
static int read_report(int fd)
{
	char buf[512];
	ssize_t got = read(fd, buf, sizeof buf);
	if (got < 0)
		return errno == EINTR ? 1 : errno == EAGAIN ? 2 : 0;
	if (got == 0)
		return 0;
	for (ssize_t i = 0; i < got; i++) {
		if (buf[i] != '\n') {
			if (O.len < sizeof O.line - 1)
				O.line[O.len++] = buf[i];
			else
				O.overlong = 1;
			continue;
		}
		O.line[O.len] = 0;
		if (!O.overlong)
			report_line(O.line);
		O.len = 0;
		O.overlong = 0;
	}
	return 1;
}

static int write_map(pid_t pid, const char *which, uint32_t base)
{
	char path[64], line[64];
	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, which);
	int n = snprintf(line, sizeof line, "0 %u %u\n", (unsigned)base, (unsigned)P.id_count);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t w = write(fd, line, (size_t)n);
	int e = errno;
	close(fd);
	errno = e;
	return w == n ? 0 : -1;
}

/* The pod's user namespace, made by the outer helper (in the host's): a child
 * unshares it and stops; we write its maps (ids 0..count-1 = base..; setgroups
 * stays allowed, so that apps get their supplementary groups) and keep an fd of it.
 * pid 1 idmaps the image layers through it, then joins it. */
static int make_userns(void)
{
	pid_t c = fork();
	if (c < 0)
		die("fork: %s", strerror(errno));
	if (c == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (unshare(CLONE_NEWUSER) < 0)
			_exit(errno == EINVAL || errno == ENOSPC || errno == EPERM || errno == ENOSYS ? 2 : 1);
		raise(SIGSTOP);
		_exit(0);
	}
	int st;
	while (waitpid(c, &st, WUNTRACED) < 0)
		if (errno != EINTR)
			die("waitpid: %s", strerror(errno));
	if (!WIFSTOPPED(st))
		die("creating the pod's user namespace: %s",
		    WIFEXITED(st) && WEXITSTATUS(st) == 2 ? "this kernel has no user namespaces (or none left)"
							   : "the child failed");
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/ns/user", (int)c);
	int fd = -1;
	if (write_map(c, "uid_map", P.uid_base) < 0 || write_map(c, "gid_map", P.gid_base) < 0 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		int e = errno;
		kill(c, SIGKILL);
		waitpid(c, NULL, 0);
		die("setting up the pod's user namespace: %s", strerror(e));
	}
	kill(c, SIGKILL);
	while (waitpid(c, NULL, 0) < 0 && errno == EINTR)
		;
	return fd;
}

/* Writes a small value to a file of the cgroup file system. */
static int cg_write(const char *file, const char *value)
{
	int fd = open(file, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	int r = write_all(fd, value, strlen(value));
	int e = errno;
	close(fd);
	errno = e;
	return r;
}

/* rmdir of a cgroup and of every cgroup an app made below it (a process with
 * CAP_SYS_ADMIN can mount its cgroup namespace's hierarchy and mkdir there),
 * deepest first; cgroupfs has no symlinks. -1 (errno) if the cgroup stays. */
static int rmdir_cgroup(const char *dir, int depth)
{
	DIR *d = depth < 64 ? opendir(dir) : NULL;
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)))
			if (e->d_type == DT_DIR && strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
				char *sub = xasprintf("%s/%s", dir, e->d_name);
				rmdir_cgroup(sub, depth + 1);
				free(sub);
			}
		closedir(d);
	}
	return rmdir(dir);
}

/* Back into the cgroups the plan names (`cgroup-leave`), out of the pod's. */
static void leave_cgroups(void)
{
	for (int k = 0; k < P.ncgroup_leave; k++) {
		char *f = xasprintf("%s/cgroup.procs", P.cgroup_leave[k]);
		if (cg_write(f, "0") < 0)
			warnx("moving out of the pod's cgroups into %s: %s", P.cgroup_leave[k], strerror(errno));
		free(f);
	}
}

/* The pod has exited and pid 1 reaped everything: the apps' cgroups are empty,
 * removed; then we leave the pod's init cgroup for those the plan names (where
 * stage1 was started: the release command runs there too) and remove the pod's
 * own (`cgroup-remove`, deepest first), so that an exited pod leaves no cgroup.
 * Whatever cannot be removed is stage1 /gc's (a warning). */
static void remove_cgroups(void)
{
	for (int i = 0; i < P.napps; i++)
		for (int k = 0; k < P.apps[i].ncgroups; k++)
			if (rmdir_cgroup(P.apps[i].cgroups[k], 0) < 0 && errno != ENOENT)
				warnx("removing the cgroup %s: %s", P.apps[i].cgroups[k], strerror(errno));
	leave_cgroups();
	for (int k = 0; k < P.ncgroup_remove; k++)
		if (rmdir_cgroup(P.cgroup_remove[k], 0) < 0 && errno != ENOENT)
			warnx("removing the cgroup %s: %s (removed at gc)", P.cgroup_remove[k], strerror(errno));
}

/* The plan's cgroup steps, first thing: the pod's cgroups made (parents too),
 * their limits and device rules written, and we join the pod's init cgroup
 * (pid 1 and every app child inherit it; each app moves on into its own). A
 * failure moves us back out, removes the directories the steps created (last
 * first) and fails the pod. */
static void make_cgroups(void)
{
	for (int i = 0; i < P.ncgsteps; i++) {
		struct cgstep *g = &P.cgsteps[i];
		int r = 0;
		if (g->kind == 'm') {
			for (char *s = strchr(g->path + 1, '/'); s && r == 0; s = strchr(s + 1, '/')) {
				*s = 0; /* the parents (the tspod slice) first */
				r = mkdir(g->path, 0755) < 0 && errno != EEXIST ? -1 : 0;
				*s = '/';
			}
			if (r == 0 && mkdir(g->path, 0755) == 0)
				g->made = 1;
			else if (r == 0 && errno != EEXIST)
				r = -1;
		} else if (g->kind == 'w') {
			r = cg_write(g->path, g->value) < 0 && !g->optional ? -1 : 0;
		} else {
			char *f = xasprintf("%s/cgroup.procs", g->path);
			r = cg_write(f, "0");
			free(f);
		}
		if (r < 0) {
			int e = errno;
			leave_cgroups();
			for (int k = i - 1; k >= 0; k--)
				if (P.cgsteps[k].made)
					rmdir(P.cgsteps[k].path);
			die("cgroups: %s %s%s%s: %s", g->kind == 'm' ? "making" : g->kind == 'w' ? "writing to" : "joining",
			    g->path, g->kind == 'w' ? " the value " : "", g->kind == 'w' ? g->value : "", strerror(e));
		}
	}
}

/* `exit-exec`: the pod has exited; what it held on the host (its network) is
 * released by the command the plan names, which inherits the lock (so the pod
 * counts as running until that is done) and gets `--exit-code=<code>` last; it
 * must exit with that code. If it cannot be run the pod's code stands. */
static void exit_exec(int code, int sfd)
{
	int n = 0;
	while (P.exit_exec[n])
		n++;
	char **argv = xmalloc(sizeof(char *) * (size_t)(n + 2));
	for (int i = 0; i < n; i++)
		argv[i] = P.exit_exec[i];
	argv[n] = xasprintf("--exit-code=%d", code);
	argv[n + 1] = NULL;
	close(sfd);
	/* SIGTERM, SIGINT and SIGHUP stay blocked across the exec: a stop that comes
	 * now does not cut the release short. We unshared the pod's pid namespace, now
	 * dead: no thread or child could be made in it; back to our own for both. */
	int own = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	if (own < 0 || setns(own, CLONE_NEWPID) < 0) {
		warnx("exit-exec: back to the helper's pid namespace: %s (the pod's network is released at gc)", strerror(errno));
		return;
	}
	close(own);
	execve(argv[0], argv, environ);
	warnx("exit-exec %s: %s (the pod's network is released at gc)", argv[0], strerror(errno));
}

int run_main(int argc, char **argv)
{
	if (argc != 3)
		die("usage: tspod-helper run <plan>");
	plan_load(argv[2], &P);

	const char *lock = getenv("TSPOD_LOCK_FD");
	if (lock && *lock) {
		uint64_t fd;
		if (parse_uint(lock, 10, 1 << 20, &fd) < 0 || fcntl((int)fd, F_GETFD) < 0)
			die("TSPOD_LOCK_FD=%s is not an open file descriptor", lock);
		/* kept open here only: pid 1 closes it right after the fork */
	}
	make_cgroups();
	/* cgroup v2: each app's device rules, on its cgroup before anything joins it. */
	for (int i = 0; i < P.napps; i++)
		if (P.apps[i].devfilter_cgroup)
			devrules_attach(P.apps[i].name, P.apps[i].devfilter_cgroup, P.apps[i].devrules, P.apps[i].ndevrules);
	if (P.status_dir) {
		if (mkdir(P.status_dir, 0755) < 0 && errno != EEXIST)
			die("status dir %s: %s", P.status_dir, strerror(errno));
		O.status_fd = open(P.status_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (O.status_fd < 0)
			die("status dir %s: %s", P.status_dir, strerror(errno));
	}

	reset_signals();
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGWINCH);
	tty_mode = P.stdin_inherit && isatty(0);
	if (tty_mode)
		sigaddset(&mask, SIGQUIT); /* absorbed: the terminal must be given back */
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0)
		die("signalfd: %s", strerror(errno));
	int rep[2];
	if (pipe2(rep, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
	int self_pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (self_pidfd < 0)
		die("pidfd_open: %s (Linux 5.3 or later is needed)", strerror(errno));
	if (fcntl(self_pidfd, F_SETFD, FD_CLOEXEC) < 0)
		die("pidfd: %s", strerror(errno));

	struct relay tty;
	if (tty_mode)
		relay_open(&tty, -1); /* on the host's /dev/ptmx: the pod gets the slave */
	/* With a user namespace, the pod's terminal is its root's (the host's root is
	 * no one inside). */
	if (tty_mode && P.userns && fchown(tty.slave, P.uid_base, P.gid_base) < 0)
		die("the pod's terminal: %s", strerror(errno));
	if (P.userns)
		g_userns_fd = make_userns();
	if ((P.ns & NS_PID) && unshare(CLONE_NEWPID) < 0)
		die("unshare(CLONE_NEWPID): %s", strerror(errno));
	pid_t pid1 = fork();
	if (pid1 < 0)
		die("fork: %s", strerror(errno));
	if (pid1 == 0)
		pid1_main(rep[1], self_pidfd, tty_mode ? tty.slave : -1);
	O.pid1 = pid1;
	close(rep[1]);
	if (g_userns_fd >= 0) {
		close(g_userns_fd); /* pid 1's now */
		g_userns_fd = -1;
	}
	close(self_pidfd);
	if (tty_mode)
		relay_start(&tty);
	if (fcntl(rep[0], F_SETFL, O_NONBLOCK) < 0)
		die("pipe: %s", strerror(errno));

	int rfd = rep[0], status = 0, done = 0;
	while (!done) {
		struct pollfd pf[4] = { { sfd, POLLIN, 0 }, { rfd, POLLIN, 0 } };
		int n = 2 + (tty_mode ? relay_pollfds(&tty, pf + 2) : 0);
		if (rfd < 0)
			pf[1].fd = -1; /* (poll skips it) */
		if (poll(pf, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll: %s", strerror(errno));
		}
		if (tty_mode)
			relay_events(&tty, pf + 2, n - 2);
		if (rfd >= 0 && pf[1].revents && !read_report(rfd)) {
			close(rfd); /* pid 1 is gone */
			rfd = -1;
		}
		if (pf[0].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) == sizeof si) {
				if (si.ssi_signo == SIGWINCH) {
					if (tty_mode)
						relay_winch(&tty);
				} else if (si.ssi_signo != SIGCHLD && si.ssi_signo != SIGQUIT)
					kill(pid1, (int)si.ssi_signo);
			}
			if (waitpid(pid1, &status, WNOHANG) == pid1)
				done = 1;
		}
	}
	/* What pid 1 wrote before it exited (every exit code) is still in the pipe. */
	while (rfd >= 0 && read_report(rfd) == 1)
		;
	if (tty_mode)
		relay_finish(&tty);
	remove_cgroups();
	int code = wait_code(status);
	if (P.exit_exec)
		exit_exec(code, sfd);
	return code;
}
