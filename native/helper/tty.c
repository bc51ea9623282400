/* tspod-helper: a pseudo-terminal of its own for the pod, relayed to the caller's.
 *
 * When the caller's stdin is a terminal, pod code never gets it (TIOCSTI on it would
 * type into the caller's shell once the pod is gone): the host side (the outer helper,
 * or enter's parent, neither visible in the pod) opens a pty on the host's /dev/ptmx,
 * gives the pod the slave, puts the caller's terminal in raw mode and relays bytes
 * both ways and window-size changes (SIGWINCH -> TIOCSWINSZ) until the pod is done;
 * then it restores the terminal (also when it dies of an error of its own).
 */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static struct relay *restore_me; /* the relay whose terminal die() gives back */
static pid_t restore_pid;

static void restore_on_die(void)
{
	if (restore_me && getpid() == restore_pid)
		relay_restore(restore_me);
}

int host_ptmx(void)
{
	int fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		die("opening a pseudo-terminal (/dev/ptmx): %s", strerror(errno));
	return fd;
}

void relay_open(struct relay *r, int master)
{
	memset(r, 0, sizeof *r);
	r->in = 0;
	r->out = 1;
	r->master = master >= 0 ? master : host_ptmx();
	if (unlockpt(r->master) < 0)
		die("unlocking the pseudo-terminal: %s", strerror(errno));
	r->slave = ioctl(r->master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (r->slave < 0) {
		/* Before Linux 4.13: by its name, on the host's devpts */
		char name[64];
		if (ptsname_r(r->master, name, sizeof name) != 0 ||
		    (r->slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)
			die("opening the pseudo-terminal's slave: %s", strerror(errno));
	}
	/* The pod's terminal starts as the caller's was: modes and size. */
	struct termios t;
	struct winsize ws;
	if (tcgetattr(r->in, &t) == 0 && tcsetattr(r->slave, TCSANOW, &t) < 0)
		die("setting the pseudo-terminal's modes: %s", strerror(errno));
	if (ioctl(r->in, TIOCGWINSZ, &ws) == 0 && ioctl(r->master, TIOCSWINSZ, &ws) < 0)
		die("setting the pseudo-terminal's size: %s", strerror(errno));
	if (fcntl(r->master, F_SETFL, O_NONBLOCK) < 0)
		die("pseudo-terminal: %s", strerror(errno));
	r->in_open = 1;
	r->master_open = 1;
}

void relay_start(struct relay *r)
{
	close(r->slave);
	r->slave = -1;
	/* Raw: every byte typed, ^C and ^Z included, goes to the pod's terminal, whose
	 * line discipline turns them into signals for the pod's foreground group. */
	signal(SIGTTOU, SIG_IGN);
	signal(SIGTTIN, SIG_IGN);
	if (tcgetattr(r->in, &r->saved) < 0)
		die("reading the terminal's modes: %s", strerror(errno));
	struct termios raw = r->saved;
	cfmakeraw(&raw);
	restore_me = r;
	restore_pid = getpid();
	g_on_die = restore_on_die;
	if (tcsetattr(r->in, TCSADRAIN, &raw) < 0)
		die("making the terminal raw: %s", strerror(errno));
	r->raw = 1;
}

void relay_restore(struct relay *r)
{
	if (!r->raw)
		return;
	r->raw = 0;
	tcsetattr(r->in, TCSADRAIN, &r->saved);
}

void relay_winch(struct relay *r)
{
	struct winsize ws;
	if (ioctl(r->in, TIOCGWINSZ, &ws) == 0)
		ioctl(r->master, TIOCSWINSZ, &ws); /* the kernel sends SIGWINCH to the pod's foreground group */
}

int relay_pollfds(struct relay *r, struct pollfd *pf)
{
	int n = 0;
	if (r->in_open && r->pending < sizeof r->buf) {
		pf[n].fd = r->in;
		pf[n].events = POLLIN;
		pf[n++].revents = 0;
	}
	if (r->master_open) {
		pf[n].fd = r->master;
		pf[n].events = POLLIN | (r->pending ? POLLOUT : 0);
		pf[n++].revents = 0;
	}
	return n;
}

/* What the pod wrote, to the caller: 1 if it read something, 0 if nothing now, -1 when
 * the pod's side is closed (every slave fd closed: EIO). */
static int pod_to_caller(struct relay *r)
{
	char buf[4096];
	ssize_t got = read(r->master, buf, sizeof buf);
	if (got > 0) {
		if (write_all(r->out, buf, (size_t)got) < 0 && errno != EINTR)
			r->out_broken = 1; /* keep reading: the pod must not block on a full terminal */
		return 1;
	}
	if (got < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	return -1;
}

void relay_events(struct relay *r, const struct pollfd *pf, int n)
{
	for (int i = 0; i < n; i++) {
		if (!pf[i].revents)
			continue;
		if (pf[i].fd == r->in) {
			ssize_t got = read(r->in, r->buf + r->pending, sizeof r->buf - r->pending);
			if (got > 0)
				r->pending += (size_t)got;
			else if (got == 0 || (errno != EINTR && errno != EAGAIN))
				r->in_open = 0; /* the caller's terminal is gone */
		} else if (pf[i].fd == r->master) {
			if ((pf[i].revents & (POLLIN | POLLHUP | POLLERR)) && pod_to_caller(r) < 0)
				r->master_open = 0; /* nothing of the pod holds its terminal now */
			if (r->pending && r->master_open && (pf[i].revents & POLLOUT)) {
				ssize_t w = write(r->master, r->buf, r->pending);
				if (w > 0) {
					memmove(r->buf, r->buf + w, r->pending - (size_t)w);
					r->pending -= (size_t)w;
				}
			}
		}
	}
	/* Typed input is written as soon as it came, without waiting for POLLOUT. */
	if (r->pending && r->master_open) {
		ssize_t w = write(r->master, r->buf, r->pending);
		if (w > 0) {
			memmove(r->buf, r->buf + w, r->pending - (size_t)w);
			r->pending -= (size_t)w;
		}
	}
}

void relay_finish(struct relay *r)
{
	/* What the pod wrote before its end is still in the pty. */
	while (r->master_open && pod_to_caller(r) > 0)
		;
	relay_restore(r);
	close(r->master);
	r->master = -1;
	r->master_open = 0;
}
