/*
 * tspod stage1 launcher: the /init, /enter and /gc of the stage1 rootfs.
 *
 * stage0 execs <rootfs>/init (or enter, gc). This tiny static program starts the
 * stage1 Node single-executable application through the glibc loader and the
 * shared libraries shipped in <rootfs>/lib, so that stage1 never depends on the
 * host's libraries:
 *
 *   <rootfs>/lib/ld-linux-x86-64.so.2 --inhibit-cache --library-path <rootfs>/lib
 *       --argv0 <name> <rootfs>/tspod-stage1 ARGS...
 *
 * The environment is passed on scrubbed: every NODE_* variable (NODE_OPTIONS
 * above all) and the loader's LD_PRELOAD / LD_AUDIT / LD_LIBRARY_PATH are
 * dropped; TSPOD_STAGE1_ROOTFS, TSPOD_STAGE1_ENTRY and TSPOD_KOFFI_NODE are set.
 * File descriptors are left alone: the pod lock fd (TSPOD_LOCK_FD) must survive.
 *
 * Exits 254 (tspod's own-failure code) with one line on stderr if it cannot exec.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOADER "lib/ld-linux-x86-64.so.2"
#define LIBDIR "lib"
#define SEA "tspod-stage1"
#define KOFFI "lib/koffi.node"

extern char **environ;

static void die(const char *what, const char *arg) {
	fprintf(stderr, "tspod stage1 launcher: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "",
	        strerror(errno));
	exit(254);
}

static int starts_with(const char *s, const char *prefix) {
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Variables never passed on: Node's own, and those that would make the loader
 * pull host libraries into the SEA. Ours are dropped here and set afresh. */
static int dropped(const char *kv) {
	static const char *const exact[] = {
		"LD_PRELOAD=", "LD_AUDIT=", "LD_LIBRARY_PATH=",
		"TSPOD_STAGE1_ROOTFS=", "TSPOD_STAGE1_ENTRY=", "TSPOD_KOFFI_NODE=",
	};
	if (starts_with(kv, "NODE_"))
		return 1;
	for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
		if (starts_with(kv, exact[i]))
			return 1;
	return 0;
}

static char *join(const char *a, const char *b, const char *c) {
	size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
	char *s = malloc(n);
	if (!s)
		die("out of memory", NULL);
	snprintf(s, n, "%s%s%s", a, b, c);
	return s;
}

int main(int argc, char **argv) {
	char exe[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (len < 0)
		die("readlink", "/proc/self/exe");
	exe[len] = '\0';

	char *slash = strrchr(exe, '/');
	if (!slash || slash[1] == '\0') {
		errno = EINVAL;
		die("cannot tell the stage1 rootfs from", exe);
	}
	*slash = '\0';
	const char *name = slash + 1;
	const char *rootfs = exe[0] ? exe : "/";
	const char *sep = strcmp(rootfs, "/") == 0 ? "" : "/";

	char *loader = join(rootfs, sep, LOADER);
	char *libdir = join(rootfs, sep, LIBDIR);
	char *sea = join(rootfs, sep, SEA);

	size_t nenv = 0;
	while (environ[nenv])
		nenv++;
	char **envp = calloc(nenv + 4, sizeof *envp);
	if (!envp)
		die("out of memory", NULL);
	size_t e = 0;
	for (size_t i = 0; i < nenv; i++)
		if (!dropped(environ[i]))
			envp[e++] = environ[i];
	envp[e++] = join("TSPOD_STAGE1_ROOTFS=", rootfs, "");
	envp[e++] = join("TSPOD_STAGE1_ENTRY=", name, "");
	envp[e++] = join("TSPOD_KOFFI_NODE=", join(rootfs, sep, KOFFI), "");
	envp[e] = NULL;

	char **args = calloc((size_t)argc + 8, sizeof *args);
	if (!args)
		die("out of memory", NULL);
	size_t a = 0;
	args[a++] = loader;
	args[a++] = "--inhibit-cache";
	args[a++] = "--library-path";
	args[a++] = libdir;
	args[a++] = "--argv0";
	args[a++] = (char *)name;
	args[a++] = sea;
	for (int i = 1; i < argc; i++)
		args[a++] = argv[i];
	args[a] = NULL;

	execve(loader, args, envp);
	die("exec", loader);
	return 254;
}
