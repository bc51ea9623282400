/* tspod-helper net-release <file> --exit-code=N: releases a pod's networks when
 * its apps have ended (the outer helper execs it: plan `exit-exec`, the pod lock
 * still held) and exits N. It replaces a bash script: no shell, no `timeout`, no
 * `rm` and no second helper start at each pod's exit.
 *
 * The file (written by stage1 /init, stage1/network/setup.ts) says, one item a line:
 *   tspod-net-release 1
 *   close <fd>                  the pod lock: no plugin inherits it
 *   del <seconds> <bin>         a step: one plugin's CNI DEL, killed after <seconds>
 *   env <NAME=VALUE>            ... its environment (after the helper's own)
 *   fail <message>              ... the line printed when it fails
 *   input <n>                   ... then n bytes: its stdin (the plugin's config), a newline
 *   netns <file>                once every step succeeded: unmount and remove it
 *   unlink <file>               ... and remove these (the record that gc would use)
 * Steps run in the file's order. A step that fails is reported and the rest still
 * run; then the namespace and the record are kept, for `tspod gc` to try again.
 * A file that cannot be read or parsed is reported the same way: the pod's exit
 * code stands whatever happens.
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_ENV 32
#define MAX_STEPS 64
#define MAX_FILES 8

struct del_step {
	unsigned timeout;
	char *bin;
	char *env[MAX_ENV + 1];
	int nenv;
	char *fail;
	char *input;
	size_t ninput;
};

struct release {
	int close_fd;
	struct del_step steps[MAX_STEPS];
	int nsteps;
	char *netns;
	char *unlink[MAX_FILES];
	int nunlink;
};

/* Parses the file into r; NULL, or what is wrong with it. */
static const char *parse(FILE *f, struct release *r)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	struct del_step *s = NULL;
	r->close_fd = -1;
	if ((len = getline(&line, &cap, f)) < 0 || strcmp(line, "tspod-net-release 1\n"))
		return "not a tspod-net-release 1 file";
	while ((len = getline(&line, &cap, f)) > 0) {
		if (line[len - 1] != '\n')
			return "a line without its newline";
		line[len - 1] = '\0';
		char *sp = strchr(line, ' ');
		if (!sp)
			return "a line without a value";
		*sp = '\0';
		const char *kw = line, *val = sp + 1;
		if (!strcmp(kw, "close")) {
			r->close_fd = atoi(val);
		} else if (!strcmp(kw, "del")) {
			if (r->nsteps == MAX_STEPS)
				return "too many steps";
			s = &r->steps[r->nsteps++];
			memset(s, 0, sizeof *s);
			char *end;
			unsigned long t = strtoul(val, &end, 10);
			if (end == val || *end != ' ' || t == 0 || t > 3600 || end[1] != '/')
				return "del wants <seconds> </absolute/binary>";
			s->timeout = (unsigned)t;
			s->bin = xasprintf("%s", end + 1);
		} else if (!strcmp(kw, "env") || !strcmp(kw, "fail") || !strcmp(kw, "input")) {
			if (!s || s->input)
				return "env, fail or input outside a del step";
			if (!strcmp(kw, "env")) {
				if (s->nenv == MAX_ENV || !strchr(val, '='))
					return "a bad env line";
				s->env[s->nenv++] = xasprintf("%s", val);
			} else if (!strcmp(kw, "fail")) {
				s->fail = xasprintf("%s", val);
			} else {
				char *end;
				unsigned long n = strtoul(val, &end, 10);
				if (end == val || *end || n > (16UL << 20))
					return "input wants a byte count";
				s->ninput = n;
				s->input = xmalloc(n + 1);
				if (fread(s->input, 1, n, f) != n || fgetc(f) != '\n')
					return "an input shorter than it says";
			}
		} else if (!strcmp(kw, "netns")) {
			r->netns = xasprintf("%s", val);
		} else if (!strcmp(kw, "unlink")) {
			if (r->nunlink == MAX_FILES)
				return "too many unlink lines";
			r->unlink[r->nunlink++] = xasprintf("%s", val);
		} else {
			return "an unknown line";
		}
	}
	free(line);
	for (int i = 0; i < r->nsteps; i++)
		if (!r->steps[i].input)
			return "a del step without its input";
	return NULL;
}

static volatile sig_atomic_t alarmed;
static void on_alarm(int sig)
{
	(void)sig;
	alarmed = 1;
}

/* Runs one DEL: 0 when the plugin exited 0. */
static int run_step(const struct del_step *s, int close_fd)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		warnx("net-release: pipe: %s", strerror(errno));
		return -1;
	}
	size_t n = 0;
	while (environ[n])
		n++;
	char **envp = xmalloc(sizeof(char *) * (n + (size_t)s->nenv + 1));
	memcpy(envp, environ, sizeof(char *) * n);
	memcpy(envp + n, s->env, sizeof(char *) * (size_t)s->nenv);
	envp[n + (size_t)s->nenv] = NULL;
	char *argv[] = { s->bin, NULL };
	pid_t c = fork();
	if (c < 0) {
		warnx("net-release: fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		free(envp);
		return -1;
	}
	if (c == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL); /* the helper blocks SIGTERM & co. across its exec */
		signal(SIGPIPE, SIG_DFL);
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (dup2(p[0], 0) < 0 || null < 0 || dup2(null, 1) < 0)
			_exit(127);
		if (close_fd > 2)
			close(close_fd);
		execve(s->bin, argv, envp);
		fprintf(stderr, "tspod-helper: net-release: %s: %s\n", s->bin, strerror(errno));
		_exit(127);
	}
	free(envp);
	close(p[0]);
	alarmed = 0;
	alarm(s->timeout);
	for (size_t off = 0; off < s->ninput && !alarmed;) {
		ssize_t w = write(p[1], s->input + off, s->ninput - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			break; /* EPIPE: it did not read it all; its exit status says the rest */
		off += (size_t)w;
	}
	close(p[1]);
	if (alarmed) /* it fired while the input was being written */
		kill(c, SIGKILL);
	int st = 0;
	while (waitpid(c, &st, 0) < 0) {
		if (errno != EINTR) {
			st = -1;
			break;
		}
		if (alarmed)
			kill(c, SIGKILL);
	}
	if (alarmed && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
		warnx("net-release: %s: no answer in %u s (killed)", s->bin, s->timeout);
	alarm(0);
	return st == 0 ? 0 : -1;
}

int netrelease_main(int argc, char **argv)
{
	int code = 254;
	for (int i = 3; i < argc; i++)
		if (!strncmp(argv[i], "--exit-code=", 12))
			code = atoi(argv[i] + 12);
	if (argc < 3) {
		warnx("usage: tspod-helper net-release <file> --exit-code=N");
		return code;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm; /* no SA_RESTART: waitpid and write return EINTR */
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int fd = open(argv[2], O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	FILE *f = fd < 0 ? NULL : fdopen(fd, "r");
	static struct release r;
	const char *bad = f ? parse(f, &r) : strerror(errno);
	if (f)
		fclose(f);
	if (bad) {
		warnx("net-release %s: %s (tspod gc releases the pod's networks)", argv[2], bad);
		return code;
	}
	int ok = 1;
	for (int i = 0; i < r.nsteps; i++) {
		if (run_step(&r.steps[i], r.close_fd) == 0)
			continue;
		ok = 0;
		if (r.steps[i].fail)
			fprintf(stderr, "%s\n", r.steps[i].fail);
	}
	if (ok && r.netns && netns_remove(r.netns) == 0)
		for (int i = 0; i < r.nunlink; i++)
			if (unlink(r.unlink[i]) < 0 && errno != ENOENT)
				warnx("net-release: %s: %s", r.unlink[i], strerror(errno));
	return code;
}
