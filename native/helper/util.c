/* tspod-helper: messages, allocation, small file I/O, signals, fds. */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

const char *g_who = "";
void (*g_on_die)(void);

static void vmsg(const char *fmt, va_list ap)
{
	char buf[1024];
	int n = snprintf(buf, sizeof buf, "tspod-helper: %s", g_who);
	if (n < 0 || n >= (int)sizeof buf)
		n = 0;
	vsnprintf(buf + n, sizeof buf - n - 1, fmt, ap);
	/* exactly one line */
	for (char *c = buf; *c; c++)
		if (*c == '\n')
			*c = ' ';
	size_t len = strlen(buf);
	buf[len++] = '\n';
	write_all(2, buf, len);
}

void die_code(int code, const char *fmt, ...)
{
	va_list ap;
	if (g_on_die)
		g_on_die();
	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
	_exit(code);
}

void die(const char *fmt, ...)
{
	va_list ap;
	if (g_on_die)
		g_on_die();
	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
	_exit(EXIT_HELPER);
}

void warnx(const char *fmt, ...)
{
	va_list ap;
	int e = errno;
	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
	errno = e;
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		die("out of memory");
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		die("out of memory");
	return p;
}

char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(xmalloc(n), s, n);
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		die("bad format");
	char *s = xmalloc(n + 1);
	va_start(ap, fmt);
	vsnprintf(s, n + 1, fmt, ap);
	va_end(ap);
	return s;
}

void *vec_push(void *arr_ptr, int *n, size_t sz)
{
	char **arr = arr_ptr;
	/* capacity is the next power of two: grow when the count is 0 or a power of two */
	if (*n == 0 || (*n & (*n - 1)) == 0)
		*arr = xrealloc(*arr, (size_t)(*n ? *n * 2 : 1) * sz);
	char *el = *arr + (size_t)*n * sz;
	memset(el, 0, sz);
	(*n)++;
	return el;
}

int parse_uint(const char *s, int base, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		int d;
		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			return -1;
		if (d >= base)
			return -1;
		/* v * base + d <= max, without wrapping: d itself must fit first */
		if ((uint64_t)d > max || v > (max - (uint64_t)d) / (uint64_t)base)
			return -1;
		v = v * base + d;
	}
	*out = v;
	return 0;
}

char *read_small_file(int dirfd, const char *path, size_t max, size_t *len)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return NULL;
	}
	size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
	if (cap > max + 1)
		cap = max + 1;
	char *buf = xmalloc(cap);
	size_t n = 0;
	for (;;) {
		if (n + 1 >= cap) {
			if (cap > max) {
				free(buf);
				close(fd);
				errno = EFBIG;
				return NULL;
			}
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			buf = xrealloc(buf, cap);
		}
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			free(buf);
			close(fd);
			errno = e;
			return NULL;
		}
		if (r == 0)
			break;
		n += r;
	}
	close(fd);
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= w;
	}
	return 0;
}

int write_file_atomic(int dirfd, const char *name, const char *data, mode_t mode)
{
	char tmp[300];
	if (snprintf(tmp, sizeof tmp, ".%s.tmp%d", name, (int)getpid()) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	if (write_all(fd, data, strlen(data)) < 0 || fchmod(fd, mode) < 0 || close(fd) < 0) {
		int e = errno;
		close(fd);
		unlinkat(dirfd, tmp, 0);
		errno = e;
		return -1;
	}
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		int e = errno;
		unlinkat(dirfd, tmp, 0);
		errno = e;
		return -1;
	}
	return 0;
}

/* Closes every fd in [lo, hi]: close_range(2), or one by one on old kernels. */
static void close_span(unsigned lo, unsigned hi)
{
	if (lo > hi)
		return;
	if (syscall(SYS_close_range, lo, hi, 0U) == 0)
		return;
	/* Before Linux 5.9: walk the fd table (or every possible fd when /proc is not there). */
	DIR *d = opendir("/proc/self/fd");
	if (d) {
		int dfd = dirfd(d);
		struct dirent *e;
		int *list = NULL, n = 0;
		while ((e = readdir(d))) {
			uint64_t v;
			if (parse_uint(e->d_name, 10, 1 << 30, &v) == 0 && (int)v != dfd && v >= lo && v <= hi)
				*(int *)vec_push(&list, &n, sizeof(int)) = (int)v;
		}
		closedir(d);
		for (int i = 0; i < n; i++)
			close(list[i]);
		free(list);
		return;
	}
	long max = sysconf(_SC_OPEN_MAX);
	for (long fd = lo; fd <= (long)hi && fd < (max > 0 ? max : 65536); fd++)
		close((int)fd);
}

void close_fds_except(const int *keep, int nkeep)
{
	/* keep is tiny: sort a copy, then close the gaps between the kept fds */
	int k[8];
	int n = 0;
	for (int i = 0; i < nkeep && n < 8; i++)
		if (keep[i] >= 3)
			k[n++] = keep[i];
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && k[j - 1] > k[j]; j--) {
			int t = k[j];
			k[j] = k[j - 1];
			k[j - 1] = t;
		}
	unsigned lo = 3;
	for (int i = 0; i < n; i++) {
		if ((unsigned)k[i] > lo)
			close_span(lo, (unsigned)k[i] - 1);
		lo = (unsigned)k[i] + 1;
	}
	close_span(lo, ~0U);
}

void close_fds_from(int lowfd)
{
	close_span((unsigned)lowfd, ~0U);
}

void reset_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (int s = 1; s < _NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &sa, NULL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wait_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return EXIT_HELPER;
}

const char *proc_fd_path(int fd, char buf[32])
{
	snprintf(buf, 32, "/proc/self/fd/%d", fd);
	return buf;
}
