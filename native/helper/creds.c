/* tspod-helper: users and groups (resolved inside the app rootfs), capabilities,
 * no_new_privs, and exec with the app's PATH. */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/filter.h>

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Looks NAME up in a passwd/group style file (name:x:id:...): the id, or -1. */
static int64_t lookup_id(const char *file, const char *name)
{
	char *buf = read_small_file(AT_FDCWD, file, 16 << 20, NULL);
	if (!buf)
		return -2;
	int64_t id = -1;
	size_t nl = strlen(name);
	for (char *save = NULL, *ln = strtok_r(buf, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
		if (strncmp(ln, name, nl) || ln[nl] != ':')
			continue;
		char *f = strchr(ln + nl + 1, ':'); /* past the password field */
		if (!f)
			continue;
		char *end = strchr(++f, ':');
		if (end)
			*end = 0;
		uint64_t v;
		if (parse_uint(f, 10, 0xfffffffeULL, &v) == 0) {
			id = (int64_t)v;
			break;
		}
	}
	free(buf);
	return id;
}

/* uid | name:NAME | path:PATH -> id; is_group picks /etc/group and st_gid. -1 on error. */
static int64_t resolve_id(const char *spec, int is_group)
{
	const char *kind = is_group ? "group" : "user";
	uint64_t v;
	if (!strncmp(spec, "name:", 5)) {
		const char *file = is_group ? "/etc/group" : "/etc/passwd";
		int64_t id = lookup_id(file, spec + 5);
		/* root is 0 even where the image has no such file or entry (as rkt) */
		if (id < 0 && !strcmp(spec + 5, "root"))
			return 0;
		if (id == -2)
			warnx("%s %s: cannot read %s in the app rootfs: %s", kind, spec + 5, file, strerror(errno));
		else if (id < 0)
			warnx("%s %s not found in the app rootfs's %s", kind, spec + 5, file);
		return id < 0 ? -1 : id;
	}
	if (!strncmp(spec, "path:", 5)) {
		struct stat st;
		if (stat(spec + 5, &st) < 0) {
			warnx("%s from path %s: %s", kind, spec + 5, strerror(errno));
			return -1;
		}
		return is_group ? st.st_gid : st.st_uid;
	}
	if (parse_uint(spec, 10, 0xfffffffeULL, &v) == 0)
		return (int64_t)v;
	warnx("bad %s \"%s\"", kind, spec);
	return -1;
}

struct cap_hdr {
	uint32_t version;
	int pid;
};
struct cap_data {
	uint32_t effective, permitted, inheritable;
};
#define CAP_V3 0x20080522
#define CAP_SYS_ADMIN_BIT (1U << 21)

/* The app's seccomp filter, compiled by apply_security, loaded by exec_in_path. */
static struct sock_fprog g_filter;
static int g_have_filter;

int parse_oom_score_adj(const char *s, int *out)
{
	uint64_t v;
	int neg = *s == '-';
	if (parse_uint(s + neg, 10, 1000, &v) < 0)
		return -1;
	*out = neg ? -(int)v : (int)v;
	return 0;
}

int apply_security(const struct security *s)
{
	/* Before the credentials change: lowering it needs CAP_SYS_RESOURCE. The /proc
	 * here is the pod's own (we are inside the app rootfs). */
	if (s->has_oom) {
		char buf[16];
		int n = snprintf(buf, sizeof buf, "%d\n", s->oom);
		int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || write(fd, buf, (size_t)n) != n) {
			warnx("oom_score_adj %d: %s", s->oom, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		close(fd);
	}
	int64_t uid = resolve_id(s->user, 0);
	int64_t gid = resolve_id(s->group, 1);
	if (uid < 0 || gid < 0)
		return -1;
	if (s->seccomp && s->seccomp->on) {
		if (seccomp_compile(s->seccomp, &g_filter) < 0)
			return -1;
		g_have_filter = 1;
	}
	/* Loading a filter needs no_new_privs or CAP_SYS_ADMIN. Without no_new_privs
	 * (setuid binaries in the app keep working, as in rkt), the helper keeps
	 * CAP_SYS_ADMIN in its permitted and effective sets until the filter is loaded,
	 * right before execve: execve then drops it (it is neither in the inheritable nor,
	 * unless the mask has it, in the bounding set; a non-root uid keeps nothing). */
	int keep_admin = g_have_filter && !s->nnp;
	if (keep_admin && uid != 0 && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) {
		warnx("keepcaps: %s", strerror(errno));
		return -1;
	}

	/* Ambient capabilities would survive the exec: none. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
		warnx("clearing ambient capabilities: %s", strerror(errno));
		return -1;
	}
	uint64_t mask = s->has_caps ? s->caps : ~0ULL;
	if (s->has_caps) {
		for (int c = 0; c < 64; c++) {
			int r = prctl(PR_CAPBSET_READ, c, 0, 0, 0);
			if (r < 0)
				break; /* past the kernel's last capability */
			if (r == 1 && !(mask & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
				warnx("dropping capability %d from the bounding set: %s", c, strerror(errno));
				return -1;
			}
		}
	}
	if (setgroups((size_t)s->nsgids, s->sgids) < 0) {
		warnx("setgroups: %s", strerror(errno));
		return -1;
	}
	if (setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid) < 0) {
		warnx("setgid %lld: %s", (long long)gid, strerror(errno));
		return -1;
	}
	if (setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) < 0) {
		warnx("setuid %lld: %s", (long long)uid, strerror(errno));
		return -1;
	}
	/* A non-root uid has lost its permitted and effective sets with setuid: it has the
	 * bounding set only, and gets file capabilities through exec (no inheritable, no
	 * ambient: as rkt and docker). uid 0 keeps permitted and effective within the
	 * mask, and the inheritable set is the same (so the four sets are the mask). */
	struct cap_hdr h = { CAP_V3, 0 };
	struct cap_data d[2];
	if (syscall(SYS_capget, &h, d) < 0) {
		warnx("capget: %s", strerror(errno));
		return -1;
	}
	for (int i = 0; i < 2; i++) {
		uint32_t m = (uint32_t)(mask >> (32 * i));
		if (uid != 0)
			d[i].effective = d[i].permitted = 0; /* kept only through PR_SET_KEEPCAPS */
		d[i].effective &= m;
		d[i].permitted &= m;
		d[i].inheritable = uid == 0 ? d[i].permitted : 0;
	}
	if (keep_admin) {
		d[0].permitted |= CAP_SYS_ADMIN_BIT;
		d[0].effective |= CAP_SYS_ADMIN_BIT;
	}
	if (syscall(SYS_capset, &h, d) < 0) {
		warnx("capset: %s", strerror(errno));
		return -1;
	}
	if (s->nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		warnx("no_new_privs: %s", strerror(errno));
		return -1;
	}
	if (chdir(s->cwd) < 0) {
		warnx("working directory %s: %s", s->cwd, strerror(errno));
		return -1;
	}
	return 0;
}

int exec_in_path(char *const argv[], char *const envp[], const char *what)
{
	const char *file = argv[0];
	const char *path = NULL;
	/* Every candidate path first: after the seccomp filter is loaded the helper makes
	 * no syscall but execve (and, if that fails, write and exit). */
	char **cands = NULL;
	int ncands = 0;
	if (strchr(file, '/'))
		*(const char **)vec_push(&cands, &ncands, sizeof(char *)) = file;
	else {
		path = DEFAULT_PATH;
		for (char *const *e = envp; *e; e++)
			if (!strncmp(*e, "PATH=", 5))
				path = *e + 5;
		size_t fl = strlen(file);
		for (const char *p = path;; p++) {
			const char *end = strchrnul(p, ':');
			size_t dl = (size_t)(end - p);
			char *full = xmalloc(dl + fl + 3);
			if (dl) {
				memcpy(full, p, dl);
				full[dl] = '/';
				memcpy(full + dl + 1, file, fl + 1);
			} else
				memcpy(full, file, fl + 1); /* empty entry: the working directory */
			*(char **)vec_push(&cands, &ncands, sizeof(char *)) = full;
			if (!*end)
				break;
			p = end;
		}
	}
	if (g_have_filter && seccomp_install(&g_filter) < 0)
		return EXIT_HELPER;
	int err = ENOENT, eacces = 0;
	for (int i = 0; i < ncands; i++) {
		execve(cands[i], argv, envp);
		err = errno;
		if (!path)
			break;
		if (errno == EACCES)
			eacces = 1;
		else if (errno != ENOENT && errno != ENOTDIR)
			break;
		err = eacces ? EACCES : ENOENT;
	}
	if (err == ENOENT) {
		if (path)
			warnx("%s%s: not found in PATH=%s", what, file, path);
		else
			warnx("%s%s: not found", what, file);
		return 127;
	}
	warnx("%s%s: cannot execute: %s", what, file, strerror(err));
	return 126;
}

void security_of_app(const struct app *a, struct security *s)
{
	s->user = a->user;
	s->group = a->group;
	s->sgids = a->sgids;
	s->nsgids = a->nsgids;
	s->has_caps = a->has_caps;
	s->caps = a->caps;
	s->nnp = a->nnp;
	s->cwd = a->cwd;
	s->has_oom = a->has_oom;
	s->oom = a->oom;
	s->seccomp = &a->seccomp;
}
