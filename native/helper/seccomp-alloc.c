/* tspod-helper: the allocator of libseccomp (seccomp.c). The build renames
 * libseccomp's malloc, calloc, realloc, free and strdup to these (objcopy
 * --redefine-sym on a copy of libseccomp.a, see the Makefile).
 *
 * Why: libseccomp 2.5 copies its whole rule database for every rule it adds (a
 * transaction), and with musl's malloc, which hands memory back to the kernel
 * eagerly, compiling the default filter cost about 3.5 ms of CPU, most of it page
 * faults and mmap/munmap; glibc's malloc does it in a third of that. Here: power of
 * two size classes whose freed blocks are reused, carved from 256 KiB chunks that
 * seccomp_alloc_release() unmaps once the filter is compiled (about 1.3 ms). */
#include "helper.h"

#include <string.h>
#include <sys/mman.h>

void *tspod_sc_malloc(size_t n);
void tspod_sc_free(void *p);
void *tspod_sc_calloc(size_t a, size_t b);
void *tspod_sc_realloc(void *p, size_t n);
char *tspod_sc_strdup(const char *s);

struct blk {
	size_t cls; /* the block is 1 << cls bytes, this header included */
	size_t pad;
};
struct chunk {
	struct chunk *next;
	size_t size;
	size_t pad[2];
};

static struct chunk *chunks;
static char *cur, *end;
static void *free_list[40];

static void *carve(size_t sz)
{
	if (!cur || (size_t)(end - cur) < sz) {
		size_t csz = sz + sizeof(struct chunk);
		if (csz < (256 << 10))
			csz = 256 << 10;
		struct chunk *c = mmap(NULL, csz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (c == MAP_FAILED)
			return NULL;
		c->next = chunks;
		c->size = csz;
		chunks = c;
		cur = (char *)(c + 1);
		end = (char *)c + csz;
	}
	void *p = cur;
	cur += sz;
	return p;
}

void *tspod_sc_malloc(size_t n)
{
	size_t cls = 5;
	while (((size_t)1 << cls) < n + sizeof(struct blk))
		if (++cls >= sizeof free_list / sizeof *free_list)
			return NULL;
	struct blk *b = free_list[cls];
	if (b)
		free_list[cls] = *(void **)(b + 1);
	else if (!(b = carve((size_t)1 << cls)))
		return NULL;
	b->cls = cls;
	return b + 1;
}

void tspod_sc_free(void *p)
{
	if (!p)
		return;
	struct blk *b = (struct blk *)p - 1;
	*(void **)p = free_list[b->cls];
	free_list[b->cls] = b;
}

void *tspod_sc_calloc(size_t a, size_t b)
{
	if (b && a > (size_t)-1 / b)
		return NULL;
	void *p = tspod_sc_malloc(a * b);
	if (p)
		memset(p, 0, a * b);
	return p;
}

void *tspod_sc_realloc(void *p, size_t n)
{
	if (!p)
		return tspod_sc_malloc(n);
	size_t have = ((size_t)1 << ((struct blk *)p - 1)->cls) - sizeof(struct blk);
	if (n <= have)
		return p;
	void *q = tspod_sc_malloc(n);
	if (q) {
		memcpy(q, p, have);
		tspod_sc_free(p);
	}
	return q;
}

char *tspod_sc_strdup(const char *s)
{
	size_t l = strlen(s) + 1;
	char *d = tspod_sc_malloc(l);
	if (d)
		memcpy(d, s, l);
	return d;
}

void seccomp_alloc_release(void)
{
	while (chunks) {
		struct chunk *n = chunks->next;
		munmap(chunks, chunks->size);
		chunks = n;
	}
	cur = end = NULL;
	memset(free_list, 0, sizeof free_list);
}
