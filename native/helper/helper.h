/* tspod-helper: shared declarations. See PLAN.md for the contract. */
#ifndef TSPOD_HELPER_H
#define TSPOD_HELPER_H

#define _GNU_SOURCE
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <poll.h>
#include <termios.h>

#define EXIT_HELPER 254 /* the helper's own failures */

/* ---- util.c ------------------------------------------------------------ */

extern const char *g_who; /* message prefix after "tspod-helper: " (e.g. "app web: ") */
extern void (*g_on_die)(void); /* called by die() first (the terminal is given back) */

void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void die_code(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
void warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Appends one element of size `sz` to the array *arr (count *n); returns it, zeroed. */
void *vec_push(void *arr_ptr, int *n, size_t sz);

int parse_uint(const char *s, int base, uint64_t max, uint64_t *out); /* 0 ok, -1 bad */
/* Reads a whole (small) file; NUL-terminates; returns NULL + errno on failure. */
char *read_small_file(int dirfd, const char *path, size_t max, size_t *len);
/* Writes `data` to dirfd/name through a temp name and a rename. 0 or -1 + errno. */
int write_file_atomic(int dirfd, const char *name, const char *data, mode_t mode);
int write_all(int fd, const void *buf, size_t len);
/* Closes every fd >= lowfd (close_range): nothing of the helper's reaches pod code. */
void close_fds_from(int lowfd);
/* Closes every fd >= 3 but those in keep (at most 8). */
void close_fds_except(const int *keep, int nkeep);
/* Resets every signal to its default disposition and unblocks all signals. */
void reset_signals(void);
int64_t now_ms(void);
/* "exit status -> code": 128+N for a signal. */
int wait_code(int status);
const char *proc_fd_path(int fd, char buf[32]);

/* ---- plan.c ------------------------------------------------------------ */

enum step_kind { STEP_MKDIR, STEP_TOUCH, STEP_WRITE, STEP_SYMLINK, STEP_MOUNT, STEP_CHOWN, STEP_CONSOLE };

struct step {
	enum step_kind kind;
	int line;
	char *path;   /* mkdir/touch/write/chown path; symlink linkpath; mount target */
	char *arg;    /* write content; symlink target; mount source (NULL = none) */
	char *fstype; /* mount: NULL = none */
	char *data;   /* mount: NULL = none */
	unsigned long mflags; /* mount: MS_* */
	int mrec;     /* mount: "rec" given */
	int optional; /* mount: "optional" given: a missing target (ENOENT) skips the step */
	int idmap;    /* mount: "idmap" given: a bind mount idmapped through the pod's user namespace */
	unsigned long mprop;  /* mount: MS_PRIVATE/MS_SLAVE/MS_SHARED/MS_UNBINDABLE */
	unsigned mode;
	int64_t uid, gid; /* chown: -1 = unchanged */
};

/* A seccomp filter (seccomp.c): mode, errno of denied syscalls, syscall names. */
struct seccomp_spec {
	int on;     /* 0: no filter */
	int retain; /* 1: only names (and the always-allowed few) pass; 0: names are denied */
	int err;    /* errno of a denied syscall, 1..4095 */
	char **names;
	int nnames;
};
#define MAX_APP_CGROUPS 16

/* A device cgroup allow rule (devices.c): BPF_DEVCG_DEV_* type, -1 = any number. */
struct dev_rule {
	unsigned type, access; /* access: BPF_DEVCG_ACC_* bits */
	int64_t major, minor;
};

struct app {
	char *name;
	char *root;  /* absolute, normalized, inside the pod root */
	char **exec; /* NULL-terminated */
	char **env;  /* NULL-terminated */
	int nenv;
	char *cwd;
	char *user, *group;
	gid_t *sgids;
	int nsgids;
	char ***pre; /* handlers: each a NULL-terminated argv */
	int npre;
	char ***post;
	int npost;
	int ro_root;
	int nnp;
	int has_caps;
	uint64_t caps;
	int has_oom; /* app-oom-score-adj given */
	int oom;
	struct seccomp_spec seccomp; /* app-seccomp */
	char *cgroups[MAX_APP_CGROUPS]; /* app-cgroup: host cgroup directories to join */
	int ncgroups;
	int cgroup_fds[MAX_APP_CGROUPS]; /* pid 1: their cgroup.procs, opened on the host */
	char *devfilter_cgroup; /* app-device-filter: a cgroup2 directory, or NULL */
	struct dev_rule *devrules;
	int ndevrules;
};

#define NS_MNT 1
#define NS_PID 2
#define NS_UTS 4
#define NS_IPC 8
#define NS_NET 16
#define NS_CGROUP 32

struct sysctl {
	char *name;  /* dotted: net.ipv4.ip_forward */
	char *value;
	int ns;      /* NS_NET, NS_IPC or NS_UTS: the namespace it lives in */
	int line;
};

/* A cgroup step of the outer helper (before anything else): make a directory,
 * write a control file, or join a cgroup. */
struct cgstep {
	int kind; /* 'm'ake, 'w'rite, 'j'oin */
	char *path;
	char *value;  /* write */
	int optional; /* write: a failure is ignored */
	int made;     /* make: this run created the directory (a failing step removes it) */
	int line;
};

struct plan {
	const char *file;
	char *uuid, *hostname;
	int ns;
	char *status_dir, *pid_file, *apps_pid_dir;
	char *root; /* absolute, normalized */
	int stdin_inherit;
	int userns;	/* a `userns` directive: the pod runs in a user namespace of its own */
	uint32_t uid_base, gid_base, id_count; /* ids 0..count-1 inside = base.. on the host */
	int has_owner;	/* a `create-owner` directive */
	uint32_t owner_uid, owner_gid; /* the owner of what set-up steps create */
	struct step *steps;
	int nsteps;
	struct app *apps;
	int napps;
	struct sysctl *sysctls;
	int nsysctls;
	char *netns;	 /* `netns`: pid 1 joins the network namespace bound on this host path */
	char **exit_exec; /* `exit-exec`: what the outer helper execs once the pod has exited */
	struct cgstep *cgsteps; /* `cgroup-make`, `cgroup-write`, `cgroup-join`: run first, in order */
	int ncgsteps;
	char **cgroup_leave; /* `cgroup-leave`: where the outer helper moves itself at exit */
	int ncgroup_leave;
	char **cgroup_remove; /* `cgroup-remove`: the pod's own cgroups, removed at exit in this order */
	int ncgroup_remove;
};

void plan_load(const char *path, struct plan *p); /* dies (254) on any error */
/* Normalizes a path: absolute (relative to cwd), no "//", ".", trailing "/"; NULL on "..". */
char *norm_path(const char *path, int must_be_abs);

/* ---- mounts.c ---------------------------------------------------------- */

/* The pod's terminal (the pty slave) for `console` steps, or -1: /dev/null then. */
extern int g_console_fd;
/* The pod's user namespace (`userns`), for `idmap` mounts; -1 without one. */
extern int g_userns_fd;

int xopenat2(int dirfd, const char *path, int flags, mode_t mode, uint64_t resolve);
void run_setup_steps(const struct plan *p);
/* Bind the pod root on itself, mount /proc for the pod's pid namespace, pivot_root into it. */
void enter_pod_root(const struct plan *p);
/* In a fresh child of pid 1: own mount namespace, pivot_root into the app rootfs. */
int enter_app_root(const struct app *a); /* 0 or -1 (message printed) */
int pivot_here(void); /* pivot_root(".", ".") + detach the old root; 0 or -1 */

/* ---- creds.c ----------------------------------------------------------- */

struct security {
	const char *user, *group; /* uid | name:NAME | path:PATH */
	const gid_t *sgids;
	int nsgids;
	int has_caps;
	uint64_t caps;
	int nnp;
	const char *cwd;
	int has_oom; /* write oom into /proc/self/oom_score_adj first */
	int oom;
	const struct seccomp_spec *seccomp; /* NULL or !on: no filter */
};
/* "-1000".."1000" -> 0 and *out, else -1. */
int parse_oom_score_adj(const char *s, int *out);

/* Applies credentials and restrictions (call inside the target root). 0 or -1 (printed).
 * A seccomp filter is compiled here and loaded by exec_in_path right before execve. */
int apply_security(const struct security *s);
/* execve with PATH taken from envp; on failure prints a message and returns 126/127. */
int exec_in_path(char *const argv[], char *const envp[], const char *what);
void security_of_app(const struct app *a, struct security *s);

/* ---- tty.c ------------------------------------------------------------- */

/* A pty for the pod, relayed to the caller's terminal (fds 0 and 1). */
struct relay {
	int master, slave; /* slave: until relay_start, for the pod's side */
	int in, out;
	int in_open, master_open, out_broken, raw;
	char buf[4096]; /* typed, not yet written to the pod's terminal */
	size_t pending;
	struct termios saved; /* the caller's terminal, as it was */
};

int host_ptmx(void);	/* a pty master on the host's /dev/ptmx; dies on failure */
void relay_open(struct relay *r, int master); /* master, or -1 for host_ptmx(); dies on failure */
void relay_start(struct relay *r);  /* closes the slave; the caller's terminal raw */
int relay_pollfds(struct relay *r, struct pollfd *pf); /* at most 2 */
void relay_events(struct relay *r, const struct pollfd *pf, int n);
void relay_winch(struct relay *r);
void relay_restore(struct relay *r);
void relay_finish(struct relay *r); /* drains the pod's output, restores the terminal */

/* ---- run.c / enter.c --------------------------------------------------- */

/* Brings lo up in the caller's network namespace; dies on failure. */
void lo_up(void);
/* ---- netns.c ------------------------------------------------------------- */
int netns_main(int argc, char **argv);
/* Unmounts and removes a namespace file (a missing one is fine): 0, or -1 after a warning. */
int netns_remove(const char *file);

/* ---- netrelease.c -------------------------------------------------------- */
int netrelease_main(int argc, char **argv);

int run_main(int argc, char **argv);
int enter_main(int argc, char **argv);

/* ---- devices.c --------------------------------------------------------- */

/* "c:1:3:rwm,c:136:*:rw": 0, or -1 with *bad naming what is wrong. */
int devrules_parse(const char *list, struct dev_rule **out, int *n, const char **bad);
/* Loads the rules as a BPF device program and attaches it to the cgroup (dies on failure). */
void devrules_attach(const char *app, const char *cgroup, const struct dev_rule *r, int n);

/* ---- seccomp.c --------------------------------------------------------- */

struct sock_fprog;
/* Parses a filter (mode "remove"|"retain", errno in decimal, comma list of names or
 * "-"). -1: *bad says which field is wrong; -2: *bad is a name libseccomp does not
 * know. */
int seccomp_parse(const char *mode, const char *err, const char *list, struct seccomp_spec *out, const char **bad);
/* Is it a syscall of this machine's (native or compat) architectures? */
int seccomp_name_known(const char *name);
int seccomp_compile(const struct seccomp_spec *s, struct sock_fprog *prog); /* 0 or -1 (printed) */
int seccomp_install(const struct sock_fprog *prog);                          /* 0 or -1 (printed) */
int seccomp_check_main(int argc, char **argv);
/* Unmaps everything libseccomp allocated (seccomp-alloc.c); no libseccomp object may be in use. */
void seccomp_alloc_release(void);

#endif
