/* tspod-helper: parsing the pod plan (PLAN.md, "Format" and "Directives"). */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#define PLAN_MAX (1 << 20) /* a plan is a few KB; refuse anything silly */

struct ctx {
	struct plan *p;
	int line;
	char **f; /* fields of the current line, raw (still encoded) */
	int nf;
	struct app *app; /* the open app block, or NULL */
	int seen_version;
};

static void __attribute__((noreturn, format(printf, 2, 3))) perr(struct ctx *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	die("plan %s line %d: %s", c->p->file, c->line, msg);
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Decodes field i in place. "-E-" is the empty string. */
static char *fld(struct ctx *c, int i)
{
	char *s = c->f[i];
	if (!strcmp(s, "-E-"))
		return s + 3;
	char *o = s;
	for (char *r = s; *r; r++) {
		if (*r != '%') {
			*o++ = *r;
			continue;
		}
		int h = hexval(r[1]), l = h < 0 ? -1 : hexval(r[2]);
		if (h < 0 || l < 0)
			perr(c, "bad percent-encoding in field %d", i);
		if (h == 0 && l == 0)
			perr(c, "NUL byte (%%00) in field %d", i);
		*o++ = (char)(h * 16 + l);
		r += 2;
	}
	*o = 0;
	return s;
}

/* Like fld, but a raw "-" means none (NULL). Encoders write a literal "-" as %2D. */
static char *fld_opt(struct ctx *c, int i)
{
	return strcmp(c->f[i], "-") ? fld(c, i) : NULL;
}

static void need(struct ctx *c, int min, int max)
{
	int n = c->nf - 1;
	if (n < min || (max >= 0 && n > max)) {
		if (min == max)
			perr(c, "%s takes %d field%s, got %d", c->f[0], min, min == 1 ? "" : "s", n);
		perr(c, "%s takes at least %d field%s, got %d", c->f[0], min, min == 1 ? "" : "s", n);
	}
}

char *norm_path(const char *path, int must_be_abs)
{
	char cwd[PATH_MAX];
	const char *prefix = "";
	if (path[0] != '/') {
		if (must_be_abs || !getcwd(cwd, sizeof cwd))
			return NULL;
		prefix = cwd;
	}
	size_t cap = strlen(prefix) + strlen(path) + 3;
	char *out = xmalloc(cap), *o = out;
	char *tmp = xasprintf("%s/%s", prefix, path);
	for (char *save = NULL, *comp = strtok_r(tmp, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
		if (!strcmp(comp, "."))
			continue;
		if (!strcmp(comp, "..")) {
			free(tmp);
			free(out);
			return NULL;
		}
		*o++ = '/';
		size_t l = strlen(comp);
		memcpy(o, comp, l);
		o += l;
	}
	if (o == out)
		*o++ = '/';
	*o = 0;
	free(tmp);
	return out;
}

static char *path_fld(struct ctx *c, int i, int must_be_abs)
{
	char *raw = fld(c, i);
	if (!*raw)
		perr(c, "empty path");
	char *n = norm_path(raw, must_be_abs);
	if (!n)
		perr(c, "path \"%s\" must be %swithout \"..\"", raw, must_be_abs ? "absolute and " : "");
	return n;
}

static unsigned mode_fld(struct ctx *c, int i)
{
	uint64_t v;
	if (parse_uint(fld(c, i), 8, 07777, &v) < 0)
		perr(c, "bad octal mode \"%s\"", c->f[i]);
	return (unsigned)v;
}

static int bool_fld(struct ctx *c, int i)
{
	char *s = fld(c, i);
	if (!strcmp(s, "0"))
		return 0;
	if (!strcmp(s, "1"))
		return 1;
	perr(c, "expected 0 or 1, got \"%s\"", s);
}

static int64_t id_fld(struct ctx *c, int i)
{
	if (!strcmp(c->f[i], "-"))
		return -1;
	uint64_t v;
	if (parse_uint(fld(c, i), 10, 0xfffffffeULL, &v) < 0)
		perr(c, "bad id \"%s\"", c->f[i]);
	return (int64_t)v;
}

/* user/group spec: uid | name:NAME | path:PATH */
static char *cred_fld(struct ctx *c, int i)
{
	char *s = fld(c, i);
	uint64_t v;
	if (!strncmp(s, "name:", 5) && s[5])
		return s;
	if (!strncmp(s, "path:", 5) && s[5] == '/')
		return s;
	if (parse_uint(s, 10, 0xfffffffeULL, &v) == 0)
		return s;
	perr(c, "bad user/group \"%s\" (want a number, name:NAME or path:/PATH)", s);
}

static char **argv_from(struct ctx *c, int first)
{
	int n = c->nf - first;
	char **argv = xmalloc(sizeof(char *) * (n + 1));
	for (int i = 0; i < n; i++)
		argv[i] = fld(c, first + i);
	argv[n] = NULL;
	if (!argv[0][0])
		perr(c, "empty command");
	return argv;
}

static const struct {
	const char *name;
	unsigned long flag;
	int kind; /* 0 = MS flag, 1 = rec, 2 = propagation, 3 = optional, 4 = idmap */
} mflags[] = {
	{ "rdonly", MS_RDONLY, 0 },	   { "nosuid", MS_NOSUID, 0 },	{ "nodev", MS_NODEV, 0 },
	{ "noexec", MS_NOEXEC, 0 },	   { "bind", MS_BIND, 0 },	{ "rec", 0, 1 },
	{ "private", MS_PRIVATE, 2 },	   { "slave", MS_SLAVE, 2 },	{ "shared", MS_SHARED, 2 },
	{ "unbindable", MS_UNBINDABLE, 2 }, { "remount", MS_REMOUNT, 0 }, { "strictatime", MS_STRICTATIME, 0 },
	{ "relatime", MS_RELATIME, 0 },	   { "noatime", MS_NOATIME, 0 },	{ "optional", 0, 3 },
	{ "idmap", 0, 4 },
};

static void mount_flags(struct ctx *c, struct step *s, char *list)
{
	if (!list)
		return;
	for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		size_t k;
		for (k = 0; k < sizeof mflags / sizeof mflags[0]; k++)
			if (!strcmp(t, mflags[k].name))
				break;
		if (k == sizeof mflags / sizeof mflags[0])
			perr(c, "unknown mount flag \"%s\"", t);
		if (mflags[k].kind == 1)
			s->mrec = 1;
		else if (mflags[k].kind == 3)
			s->optional = 1;
		else if (mflags[k].kind == 4)
			s->idmap = 1;
		else if (mflags[k].kind == 2) {
			if (s->mprop && s->mprop != mflags[k].flag)
				perr(c, "more than one propagation flag");
			s->mprop = mflags[k].flag;
		} else
			s->mflags |= mflags[k].flag;
	}
}

static int valid_app_name(const char *s)
{
	if (!*s || *s == '.' || strlen(s) > 200)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
		      *s == '_' || *s == '.'))
			return 0;
	return 1;
}

#define ONCE(c, field)                                                \
	do {                                                          \
		if (field)                                            \
			perr(c, "%s given twice", (c)->f[0]);         \
	} while (0)

static void app_directive(struct ctx *c, const char *kw)
{
	struct app *a = c->app;
	if (!a)
		perr(c, "%s outside an app block", kw);
	if (!strcmp(kw, "app-root")) {
		need(c, 1, 1);
		ONCE(c, a->root);
		a->root = path_fld(c, 1, 1);
	} else if (!strcmp(kw, "app-exec")) {
		need(c, 1, -1);
		ONCE(c, a->exec);
		a->exec = argv_from(c, 1);
	} else if (!strcmp(kw, "app-env")) {
		need(c, 1, 1);
		char *e = fld(c, 1), *eq = strchr(e, '=');
		if (!eq || eq == e)
			perr(c, "app-env wants NAME=VALUE");
		*(char **)vec_push(&a->env, &a->nenv, sizeof(char *)) = e;
	} else if (!strcmp(kw, "app-cwd")) {
		need(c, 1, 1);
		ONCE(c, a->cwd);
		a->cwd = fld(c, 1);
		if (a->cwd[0] != '/')
			perr(c, "app-cwd must be absolute");
	} else if (!strcmp(kw, "app-user")) {
		need(c, 1, 1);
		ONCE(c, a->user);
		a->user = cred_fld(c, 1);
	} else if (!strcmp(kw, "app-group")) {
		need(c, 1, 1);
		ONCE(c, a->group);
		a->group = cred_fld(c, 1);
	} else if (!strcmp(kw, "app-supplementary-gids")) {
		need(c, 1, 1);
		char *l = fld_opt(c, 1);
		if (!l)
			return;
		for (char *save = NULL, *t = strtok_r(l, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			uint64_t v;
			if (parse_uint(t, 10, 0xfffffffeULL, &v) < 0)
				perr(c, "bad gid \"%s\"", t);
			if (a->nsgids >= 65536)
				perr(c, "too many supplementary gids");
			*(gid_t *)vec_push(&a->sgids, &a->nsgids, sizeof(gid_t)) = (gid_t)v;
		}
	} else if (!strcmp(kw, "app-pre-start")) {
		need(c, 1, -1);
		*(char ***)vec_push(&a->pre, &a->npre, sizeof(char **)) = argv_from(c, 1);
	} else if (!strcmp(kw, "app-post-stop")) {
		need(c, 1, -1);
		*(char ***)vec_push(&a->post, &a->npost, sizeof(char **)) = argv_from(c, 1);
	} else if (!strcmp(kw, "app-readonly-root")) {
		need(c, 1, 1);
		a->ro_root = bool_fld(c, 1);
	} else if (!strcmp(kw, "app-no-new-privileges")) {
		need(c, 1, 1);
		a->nnp = bool_fld(c, 1);
	} else if (!strcmp(kw, "app-capabilities")) {
		need(c, 1, 1);
		char *s = fld_opt(c, 1);
		a->has_caps = 0;
		if (s) {
			if (!strncmp(s, "0x", 2))
				s += 2;
			if (parse_uint(s, 16, UINT64_MAX, &a->caps) < 0)
				perr(c, "bad capability mask \"%s\" (want hex)", s);
			a->has_caps = 1;
		}
	} else if (!strcmp(kw, "app-cgroup")) {
		need(c, 1, 1);
		if (a->ncgroups >= MAX_APP_CGROUPS)
			perr(c, "more than %d app-cgroup directives", MAX_APP_CGROUPS);
		a->cgroups[a->ncgroups++] = path_fld(c, 1, 1);
	} else if (!strcmp(kw, "app-device-filter")) {
		need(c, 2, 2);
		ONCE(c, a->devfilter_cgroup);
		a->devfilter_cgroup = path_fld(c, 1, 1);
		const char *bad;
		if (devrules_parse(fld(c, 2), &a->devrules, &a->ndevrules, &bad) < 0)
			perr(c, "app-device-filter: bad %s", bad);
	} else if (!strcmp(kw, "app-oom-score-adj")) {
		need(c, 1, 1);
		ONCE(c, a->has_oom);
		if (parse_oom_score_adj(c->f[1], &a->oom) < 0)
			perr(c, "bad oom score adjustment \"%s\" (want -1000..1000)", c->f[1]);
		a->has_oom = 1;
	} else if (!strcmp(kw, "app-seccomp")) {
		need(c, 3, 3);
		ONCE(c, a->seccomp.on);
		const char *bad;
		int r = seccomp_parse(c->f[1], c->f[2], fld_opt(c, 3), &a->seccomp, &bad);
		if (r == -1)
			perr(c, "app-seccomp: bad %s", bad);
		if (r == -2)
			perr(c, "app-seccomp: unknown syscall \"%s\"", bad);
	} else if (!strcmp(kw, "end-app")) {
		need(c, 0, 0);
		if (!a->root)
			perr(c, "app %s has no app-root", a->name);
		if (!a->exec)
			perr(c, "app %s has no app-exec", a->name);
		*(char **)vec_push(&a->env, &a->nenv, sizeof(char *)) = NULL;
		a->nenv--;
		if (!a->cwd)
			a->cwd = "/";
		if (!a->user)
			a->user = "0";
		if (!a->group)
			a->group = "0";
		c->app = NULL;
	} else
		perr(c, "unknown directive \"%s\"", kw);
}

static void step_directive(struct ctx *c, const char *kw)
{
	struct plan *p = c->p;
	struct step s;
	memset(&s, 0, sizeof s);
	s.line = c->line;
	if (!strcmp(kw, "mkdir") || !strcmp(kw, "touch")) {
		need(c, 2, 2);
		s.kind = kw[0] == 'm' ? STEP_MKDIR : STEP_TOUCH;
		s.path = path_fld(c, 1, 0);
		s.mode = mode_fld(c, 2);
	} else if (!strcmp(kw, "write")) {
		need(c, 3, 3);
		s.kind = STEP_WRITE;
		s.path = path_fld(c, 1, 0);
		s.mode = mode_fld(c, 2);
		s.arg = fld(c, 3);
	} else if (!strcmp(kw, "symlink")) {
		need(c, 2, 2);
		s.kind = STEP_SYMLINK;
		s.arg = fld(c, 1);
		if (!*s.arg)
			perr(c, "empty symlink target");
		s.path = path_fld(c, 2, 0);
	} else if (!strcmp(kw, "mount")) {
		need(c, 5, 5);
		s.kind = STEP_MOUNT;
		mount_flags(c, &s, fld_opt(c, 4));
		s.path = path_fld(c, 2, 0);
		s.fstype = fld_opt(c, 3);
		s.data = fld_opt(c, 5);
		if ((s.mflags & MS_BIND) && !(s.mflags & MS_REMOUNT)) {
			if (!strcmp(c->f[1], "-"))
				perr(c, "a bind mount needs a source");
			s.arg = path_fld(c, 1, 0);
		} else
			s.arg = fld_opt(c, 1);
		if (!(s.mflags & (MS_BIND | MS_REMOUNT)) && !s.mprop && !s.fstype)
			perr(c, "mount needs a filesystem type, bind, remount or a propagation flag");
		if (s.idmap && (!(s.mflags & MS_BIND) || (s.mflags & MS_REMOUNT)))
			perr(c, "idmap is for a new bind mount");
	} else if (!strcmp(kw, "console")) {
		need(c, 1, 1);
		s.kind = STEP_CONSOLE;
		s.path = path_fld(c, 1, 0);
	} else if (!strcmp(kw, "chown")) {
		need(c, 3, 3);
		s.kind = STEP_CHOWN;
		s.path = path_fld(c, 1, 0);
		s.uid = id_fld(c, 2);
		s.gid = id_fld(c, 3);
	} else if (!strncmp(kw, "app-", 4) || !strcmp(kw, "end-app")) {
		app_directive(c, kw);
		return;
	} else
		perr(c, "unknown directive \"%s\"", kw);
	if (c->app)
		perr(c, "set-up step %s inside app block %s", kw, c->app->name);
	*(struct step *)vec_push(&p->steps, &p->nsteps, sizeof(struct step)) = s;
}

/* The namespace of a namespaced sysctl (dotted name of [a-z0-9_-] parts), else 0. */
static int sysctl_ns(const char *name)
{
	size_t n = strlen(name);
	if (!n || name[0] == '.' || name[n - 1] == '.' || strstr(name, ".."))
		return 0;
	for (const char *q = name; *q; q++)
		if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '_' || *q == '-' || *q == '.'))
			return 0;
	if (!strncmp(name, "net.", 4))
		return NS_NET;
	if (!strncmp(name, "fs.mqueue.", 10))
		return NS_IPC;
	if ((!strncmp(name, "kernel.shm", 10) || !strncmp(name, "kernel.msg", 10)) && !strchr(name + 7, '.'))
		return NS_IPC;
	if (!strcmp(name, "kernel.sem") || !strcmp(name, "kernel.sem_next_id"))
		return NS_IPC;
	if (!strcmp(name, "kernel.domainname"))
		return NS_UTS;
	return 0;
}

static void directive(struct ctx *c)
{
	struct plan *p = c->p;
	const char *kw = c->f[0];
	if (!c->seen_version) {
		if (strcmp(kw, "version"))
			perr(c, "the first directive must be \"version 1\"");
		need(c, 1, 1);
		if (strcmp(c->f[1], "1"))
			perr(c, "unsupported plan version \"%s\" (this helper reads version 1)", c->f[1]);
		c->seen_version = 1;
		return;
	}
	if (c->app && strncmp(kw, "app-", 4) && strcmp(kw, "end-app")) {
		if (!strcmp(kw, "app"))
			perr(c, "app %s: missing end-app", c->app->name);
		perr(c, "%s inside app block %s", kw, c->app->name);
	}
	if (!strcmp(kw, "version")) {
		perr(c, "version given twice");
	} else if (!strcmp(kw, "uuid")) {
		need(c, 1, 1);
		ONCE(c, p->uuid);
		p->uuid = fld(c, 1);
	} else if (!strcmp(kw, "hostname")) {
		need(c, 1, 1);
		ONCE(c, p->hostname);
		p->hostname = fld(c, 1);
		if (!*p->hostname || strlen(p->hostname) > 64)
			perr(c, "hostname must be 1 to 64 bytes");
	} else if (!strcmp(kw, "namespaces")) {
		need(c, 1, 1);
		ONCE(c, p->ns);
		char *l = fld(c, 1);
		for (char *save = NULL, *t = strtok_r(l, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			if (!strcmp(t, "mnt"))
				p->ns |= NS_MNT;
			else if (!strcmp(t, "pid"))
				p->ns |= NS_PID;
			else if (!strcmp(t, "uts"))
				p->ns |= NS_UTS;
			else if (!strcmp(t, "ipc"))
				p->ns |= NS_IPC;
			else if (!strcmp(t, "net"))
				p->ns |= NS_NET;
			else if (!strcmp(t, "cgroup"))
				p->ns |= NS_CGROUP;
			else
				perr(c, "unknown namespace \"%s\"", t);
		}
		if (!(p->ns & NS_MNT))
			perr(c, "namespaces must include mnt (set-up steps and pivot_root need it)");
	} else if (!strcmp(kw, "sysctl")) {
		need(c, 2, 2);
		char *name = fld(c, 1), *value = fld(c, 2);
		int ns = sysctl_ns(name);
		if (!ns)
			perr(c, "sysctl %s is not a namespaced one (net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, kernel.domainname)", name);
		for (int i = 0; i < p->nsysctls; i++)
			if (!strcmp(p->sysctls[i].name, name))
				perr(c, "sysctl %s given twice", name);
		if (!*value || strchr(value, '\n'))
			perr(c, "sysctl %s: bad value", name);
		struct sysctl *s = vec_push(&p->sysctls, &p->nsysctls, sizeof *s);
		s->name = name;
		s->value = value;
		s->ns = ns;
		s->line = c->line;
	} else if (!strcmp(kw, "status-dir")) {
		need(c, 1, 1);
		ONCE(c, p->status_dir);
		p->status_dir = path_fld(c, 1, 0);
	} else if (!strcmp(kw, "pid-file")) {
		need(c, 1, 1);
		ONCE(c, p->pid_file);
		p->pid_file = path_fld(c, 1, 0);
	} else if (!strcmp(kw, "apps-pid-dir")) {
		need(c, 1, 1);
		ONCE(c, p->apps_pid_dir);
		p->apps_pid_dir = path_fld(c, 1, 0);
	} else if (!strcmp(kw, "root")) {
		need(c, 1, 1);
		ONCE(c, p->root);
		p->root = path_fld(c, 1, 0);
		if (!strcmp(p->root, "/"))
			perr(c, "the pod root cannot be /");
	} else if (!strcmp(kw, "userns")) {
		need(c, 3, 3);
		ONCE(c, p->userns);
		uint64_t u, g, n;
		if (parse_uint(fld(c, 1), 10, 0xfffffffeULL, &u) < 0 || parse_uint(fld(c, 2), 10, 0xfffffffeULL, &g) < 0 ||
		    parse_uint(fld(c, 3), 10, 0xfffffffeULL, &n) < 0 || n == 0 || u + n > 0xffffffffULL ||
		    g + n > 0xffffffffULL)
			perr(c, "userns wants <uid base> <gid base> <count> (count > 0, within 32-bit ids)");
		if (u == 0 || g == 0)
			perr(c, "userns: the host's root (id 0) is never mapped into a pod");
		p->userns = 1;
		p->uid_base = (uint32_t)u;
		p->gid_base = (uint32_t)g;
		p->id_count = (uint32_t)n;
	} else if (!strcmp(kw, "create-owner")) {
		need(c, 2, 2);
		ONCE(c, p->has_owner);
		p->has_owner = 1;
		int64_t ou = id_fld(c, 1), og = id_fld(c, 2);
		if (ou < 0 || og < 0)
			perr(c, "create-owner wants a uid and a gid");
		p->owner_uid = (uint32_t)ou;
		p->owner_gid = (uint32_t)og;
	} else if (!strcmp(kw, "netns")) {
		need(c, 1, 1);
		ONCE(c, p->netns);
		p->netns = path_fld(c, 1, 0);
	} else if (!strcmp(kw, "exit-exec")) {
		need(c, 1, -1);
		ONCE(c, p->exit_exec);
		p->exit_exec = argv_from(c, 1);
		if (p->exit_exec[0][0] != '/')
			perr(c, "exit-exec wants an absolute path");
	} else if (!strcmp(kw, "cgroup-make") || !strcmp(kw, "cgroup-join") || !strcmp(kw, "cgroup-write")) {
		int w = kw[7] == 'w';
		need(c, w ? 2 : 1, w ? 3 : 1);
		if (p->ncgsteps >= 1024)
			perr(c, "too many cgroup steps");
		struct cgstep *g = vec_push(&p->cgsteps, &p->ncgsteps, sizeof *g);
		g->kind = kw[7];
		g->path = path_fld(c, 1, 1);
		g->line = c->line;
		if (w) {
			g->value = fld(c, 2);
			if (strchr(g->value, '\n'))
				perr(c, "cgroup-write: a value has no newline");
			if (c->nf == 4) {
				if (strcmp(fld(c, 3), "optional"))
					perr(c, "cgroup-write: the third field can only be \"optional\"");
				g->optional = 1;
			}
		}
	} else if (!strcmp(kw, "cgroup-leave") || !strcmp(kw, "cgroup-remove")) {
		need(c, 1, 1);
		int leave = kw[7] == 'l';
		int *n = leave ? &p->ncgroup_leave : &p->ncgroup_remove;
		if (*n >= (leave ? MAX_APP_CGROUPS : 4 * MAX_APP_CGROUPS))
			perr(c, "too many %s directives", kw);
		*(char **)vec_push(leave ? &p->cgroup_leave : &p->cgroup_remove, n, sizeof(char *)) = path_fld(c, 1, 0);
	} else if (!strcmp(kw, "stdin")) {
		need(c, 1, 1);
		char *s = fld(c, 1);
		if (!strcmp(s, "inherit"))
			p->stdin_inherit = 1;
		else if (strcmp(s, "null"))
			perr(c, "stdin wants null or inherit");
	} else if (!strcmp(kw, "app")) {
		need(c, 1, 1);
		char *name = fld(c, 1);
		if (!valid_app_name(name))
			perr(c, "bad app name \"%s\"", name);
		for (int i = 0; i < p->napps; i++)
			if (!strcmp(p->apps[i].name, name))
				perr(c, "two apps named %s", name);
		c->app = vec_push(&p->apps, &p->napps, sizeof(struct app));
		c->app->name = name;
	} else
		step_directive(c, kw);
}

void plan_load(const char *path, struct plan *p)
{
	struct ctx c;
	memset(p, 0, sizeof *p);
	memset(&c, 0, sizeof c);
	p->file = path;
	c.p = p;
	size_t len;
	char *buf = read_small_file(AT_FDCWD, path, PLAN_MAX, &len);
	if (!buf)
		die("cannot read plan %s: %s", path, strerror(errno));
	if (strlen(buf) != len)
		die("plan %s: contains a NUL byte", path);

	char *next = buf;
	while (next) {
		char *ln = next;
		char *nl = strchr(ln, '\n');
		next = nl ? nl + 1 : NULL;
		if (nl)
			*nl = 0;
		c.line++;
		if (!*ln || *ln == '#')
			continue;
		c.nf = 0;
		/* fields: separated by single spaces; every byte must be printable ASCII */
		for (unsigned char *q = (unsigned char *)ln; *q; q++)
			if (*q < '!' && *q != ' ')
				perr(&c, "unencoded control byte 0x%02x", *q);
			else if (*q > '~')
				perr(&c, "unencoded byte 0x%02x", *q);
		char *q = ln;
		for (;;) {
			char *sp = strchr(q, ' ');
			if (sp)
				*sp = 0;
			if (!*q)
				perr(&c, "empty field (fields are separated by single spaces; write -E- for empty)");
			*(char **)vec_push(&c.f, &c.nf, sizeof(char *)) = q;
			if (!sp)
				break;
			q = sp + 1;
		}
		directive(&c);
		free(c.f);
		c.f = NULL;
	}
	c.line++;
	if (!c.seen_version)
		perr(&c, "empty plan (no \"version 1\")");
	if (c.app)
		perr(&c, "app %s: missing end-app at end of plan", c.app->name);
	if (!p->root)
		perr(&c, "no root directive");
	if (!p->ns)
		perr(&c, "no namespaces directive");
	if (!p->napps)
		perr(&c, "no app");
	/* A sysctl is written in pid 1's namespaces: never in one the pod shares with the host. */
	for (int i = 0; i < p->nsysctls; i++)
		if (!(p->ns & p->sysctls[i].ns))
			die("plan %s line %d: sysctl %s needs the pod's own %s namespace", path, p->sysctls[i].line, p->sysctls[i].name,
			    p->sysctls[i].ns == NS_NET ? "net" : p->sysctls[i].ns == NS_IPC ? "ipc" : "uts");
	if (p->netns && !(p->ns & NS_NET))
		perr(&c, "netns needs net in namespaces");
	if (p->stdin_inherit && p->napps > 1)
		perr(&c, "stdin inherit is for one app only (%d apps)", p->napps);
	if (p->userns && !(p->ns & NS_PID))
		perr(&c, "userns needs pid in namespaces");
	for (int i = 0; i < p->nsteps; i++)
		if (p->steps[i].idmap && !p->userns) {
			c.line = p->steps[i].line;
			perr(&c, "idmap needs a userns directive");
		}
	/* Every set-up step acts inside the pod: its target is the root or below it (mount
	 * sources are host paths). mounts.c resolves the part below the root in the root. */
	static const char *const kinds[] = { "mkdir", "touch", "write", "symlink", "mount", "chown", "console" };
	size_t rl = strlen(p->root);
	for (int i = 0; i < p->nsteps; i++) {
		const struct step *s = &p->steps[i];
		if (strncmp(s->path, p->root, rl) || (s->path[rl] != '/' && s->path[rl]))
			die("plan %s line %d: %s target %s is not below the pod root %s", path, s->line, kinds[s->kind], s->path,
			    p->root);
	}
	/* buf stays allocated: every string points into it */
}
