/* tspod-helper: seccomp filters, compiled by libseccomp (linked statically) and
 * loaded as the last step before an app, a handler or an entered command execs.
 *
 * A filter is a mode (remove: every syscall but the listed ones is allowed; retain:
 * only the listed ones are), an errno the denied syscalls return, and a list of
 * syscall names (stage1 has expanded the groups). It covers the machine's native
 * architecture and the ones its kernel also runs (x86 and x32 on x86_64, arm on
 * aarch64), so a 32-bit binary in the pod meets the same filter. */
#include "helper.h"

#include <errno.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/filter.h>

/* libseccomp's PFC export (never used here) calls glibc's fortified fprintf; musl
 * has none. */
int __fprintf_chk(FILE *f, int flag, const char *fmt, ...);
int __fprintf_chk(FILE *f, int flag, const char *fmt, ...)
{
	(void)flag;
	va_list ap;
	va_start(ap, fmt);
	int r = vfprintf(f, fmt, ap);
	va_end(ap);
	return r;
}

/* Always allowed, whatever the filter says (the set systemd allowed implicitly under
 * rkt): so that the helper can exec the app, and any process can exit. */
static const char *const ALWAYS[] = { "execve", "exit", "exit_group", "getrlimit", "rt_sigreturn", "sigreturn" };

/* The architectures of the filter: native first, then the compat ones the kernel runs. */
static int filter_arches(uint32_t *out)
{
	int n = 0;
	uint32_t native = seccomp_arch_native();
	out[n++] = native;
	if (native == SCMP_ARCH_X86_64) {
		out[n++] = SCMP_ARCH_X86;
		out[n++] = SCMP_ARCH_X32;
	} else if (native == SCMP_ARCH_AARCH64)
		out[n++] = SCMP_ARCH_ARM;
	return n;
}

int seccomp_name_known(const char *name)
{
	uint32_t arches[4];
	int n = filter_arches(arches);
	for (int i = 0; i < n; i++)
		if (seccomp_syscall_resolve_name_arch(arches[i], name) >= 0)
			return 1;
	return 0;
}

int seccomp_errno_ok(uint64_t e)
{
	return e >= 1 && e <= 4095;
}

int seccomp_parse(const char *mode, const char *err, const char *list, struct seccomp_spec *out, const char **bad)
{
	uint64_t e;
	memset(out, 0, sizeof *out);
	*bad = NULL;
	if (!strcmp(mode, "retain"))
		out->retain = 1;
	else if (strcmp(mode, "remove")) {
		*bad = "mode (want remove or retain)";
		return -1;
	}
	if (parse_uint(err, 10, 4095, &e) < 0 || !seccomp_errno_ok(e)) {
		*bad = "errno (want 1..4095)";
		return -1;
	}
	out->err = (int)e;
	if (list && *list && strcmp(list, "-")) {
		char *l = xstrdup(list);
		for (char *save = NULL, *t = strtok_r(l, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			if (seccomp_syscall_resolve_name(t) == __NR_SCMP_ERROR) {
				*bad = t;
				return -2;
			}
			*(char **)vec_push(&out->names, &out->nnames, sizeof(char *)) = t;
		}
	}
	out->on = 1;
	return 0;
}

static int is_always(const char *name)
{
	for (size_t i = 0; i < sizeof ALWAYS / sizeof *ALWAYS; i++)
		if (!strcmp(name, ALWAYS[i]))
			return 1;
	return 0;
}

/* Adds one rule; a name that is no syscall on any of the filter's architectures (a
 * group member of another architecture) is skipped. */
static int add_rule(scmp_filter_ctx ctx, uint32_t action, const char *name)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR || !seccomp_name_known(name))
		return 0;
	int r = seccomp_rule_add(ctx, action, nr, 0);
	if (r < 0 && r != -EEXIST) {
		warnx("seccomp: adding a rule for %s: %s", name, strerror(-r));
		return -1;
	}
	return 0;
}

int seccomp_compile(const struct seccomp_spec *s, struct sock_fprog *prog)
{
	uint32_t arches[4];
	int narch = filter_arches(arches), r, fd = -1, ret = -1;
	uint32_t deny = SCMP_ACT_ERRNO((uint32_t)s->err);
	scmp_filter_ctx ctx = seccomp_init(s->retain ? deny : SCMP_ACT_ALLOW);
	if (!ctx) {
		warnx("seccomp: cannot create a filter");
		return -1;
	}
	for (int i = 1; i < narch; i++)
		if ((r = seccomp_arch_add(ctx, arches[i])) < 0 && r != -EEXIST) {
			warnx("seccomp: adding architecture %#x: %s", arches[i], strerror(-r));
			goto out;
		}
	for (int i = 0; i < s->nnames; i++) {
		if (!s->retain && is_always(s->names[i]))
			continue;
		if (add_rule(ctx, s->retain ? SCMP_ACT_ALLOW : deny, s->names[i]) < 0)
			goto out;
	}
	if (s->retain)
		for (size_t i = 0; i < sizeof ALWAYS / sizeof *ALWAYS; i++)
			if (add_rule(ctx, SCMP_ACT_ALLOW, ALWAYS[i]) < 0)
				goto out;
	/* The BPF program, in memory: loading it is then one prctl right before execve. */
	fd = memfd_create("tspod-seccomp", MFD_CLOEXEC);
	if (fd < 0) {
		warnx("seccomp: memfd_create: %s", strerror(errno));
		goto out;
	}
	if ((r = seccomp_export_bpf(ctx, fd)) < 0) {
		warnx("seccomp: compiling the filter: %s", strerror(-r));
		goto out;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size % sizeof(struct sock_filter) ||
	    st.st_size / sizeof(struct sock_filter) > BPF_MAXINSNS) {
		warnx("seccomp: the compiled filter has a bad size");
		goto out;
	}
	struct sock_filter *insns = xmalloc((size_t)st.st_size);
	if (pread(fd, insns, (size_t)st.st_size, 0) != st.st_size) {
		warnx("seccomp: reading the compiled filter: %s", strerror(errno));
		free(insns);
		goto out;
	}
	prog->len = (unsigned short)(st.st_size / sizeof(struct sock_filter));
	prog->filter = insns;
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	seccomp_release(ctx);
	seccomp_alloc_release();
	return ret;
}

int seccomp_install(const struct sock_fprog *prog)
{
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog, 0, 0) < 0) {
		warnx("installing the seccomp filter: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* `tspod-helper seccomp-check NAME...`: prepare's check of the syscall names a user
 * gave. Prints each one that is no syscall of this machine's architectures on a line
 * of its own, and exits 1 if there was one (0 if all are syscalls). */
int seccomp_check_main(int argc, char **argv)
{
	int bad = 0;
	for (int i = 2; i < argc; i++)
		if (!seccomp_name_known(argv[i])) {
			printf("%s\n", argv[i]);
			bad = 1;
		}
	fflush(stdout);
	return bad;
}
