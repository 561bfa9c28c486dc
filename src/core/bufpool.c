#include <errno.h>
#include <sys/mman.h>

#include "weir/alloc.h"
#include "weir/bufpool.h"

int weir_bufpool_init(struct weir_bufpool *p, struct io_uring *ring, uint16_t bgid,
		      uint32_t nbufs, uint32_t bufsz)
{
	struct io_uring_buf_reg reg = { 0 };
	size_t ring_sz = (size_t)nbufs * sizeof(struct io_uring_buf);
	int ret;

	if (nbufs == 0 || (nbufs & (nbufs - 1)) != 0 || nbufs > WEIR_BUFPOOL_MAX_IDS)
		return -EINVAL;
	*p = (struct weir_bufpool){ .bufsz = bufsz, .nbufs = nbufs, .bgid = bgid };
	p->br = mmap(NULL, ring_sz, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (p->br == MAP_FAILED)
		return -errno;
	p->mem = mmap(NULL, (size_t)nbufs * bufsz, PROT_READ | PROT_WRITE,
		      MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (p->mem == MAP_FAILED) {
		ret = -errno;
		goto fail_br;
	}
	p->next_id = nbufs;
	p->refs = weir_calloc(WEIR_BUFPOOL_MAX_IDS, sizeof(*p->refs));
	if (p->refs == NULL) {
		ret = -ENOMEM;
		goto fail_mem;
	}
	reg.ring_addr = (uint64_t)(uintptr_t)p->br;
	reg.ring_entries = nbufs;
	reg.bgid = bgid;
	ret = io_uring_register_buf_ring(ring, &reg, 0);
	if (ret != 0)
		goto fail_refs;
	io_uring_buf_ring_init(p->br);
	for (uint32_t i = 0; i < nbufs; i++)
		io_uring_buf_ring_add(p->br, weir_buf_ptr(p, (uint16_t)i), bufsz, (unsigned short)i,
				      io_uring_buf_ring_mask(nbufs), (int)i);
	io_uring_buf_ring_advance(p->br, (int)nbufs);
	return 0;

fail_refs:
	weir_free(p->refs);
fail_mem:
	munmap(p->mem, (size_t)nbufs * bufsz);
fail_br:
	munmap(p->br, ring_sz);
	p->br = NULL;
	return ret;
}

void weir_bufpool_destroy(struct weir_bufpool *p, struct io_uring *ring)
{
	if (p->br == NULL)
		return;
	for (unsigned g = 0; g < p->ngroups; g++) {
		io_uring_unregister_buf_ring(ring, p->groups[g].bgid);
		munmap(p->groups[g].br, (size_t)p->groups[g].n * sizeof(struct io_uring_buf));
	}
	p->ngroups = 0;
	io_uring_unregister_buf_ring(ring, p->bgid);
	munmap(p->mem, (size_t)p->nbufs * p->bufsz);
	munmap(p->br, (size_t)p->nbufs * sizeof(struct io_uring_buf));
	weir_free(p->refs);
	p->br = NULL;
}

int weir_bufpool_add_group(struct weir_bufpool *p, struct io_uring *ring, uint16_t bgid,
			   char *mem, uint32_t n)
{
	struct io_uring_buf_reg reg = { 0 };
	struct weir_bufgroup *g;
	int ret;

	if (p->ngroups == WEIR_BUFPOOL_MAX_GROUPS || n == 0 || (n & (n - 1)) != 0 ||
	    n > WEIR_BUFPOOL_MAX_IDS - p->next_id)
		return -ENOSPC;
	g = &p->groups[p->ngroups];
	*g = (struct weir_bufgroup){ .mem = mem, .base = p->next_id, .n = n, .bgid = bgid };
	g->br = mmap(NULL, (size_t)n * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE,
		     MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (g->br == MAP_FAILED)
		return -errno;
	reg.ring_addr = (uint64_t)(uintptr_t)g->br;
	reg.ring_entries = n;
	reg.bgid = bgid;
	ret = io_uring_register_buf_ring(ring, &reg, 0);
	if (ret != 0) {
		munmap(g->br, (size_t)n * sizeof(struct io_uring_buf));
		return ret;
	}
	io_uring_buf_ring_init(g->br);
	for (uint32_t i = 0; i < n; i++)
		io_uring_buf_ring_add(g->br, mem + (size_t)i * p->bufsz, p->bufsz, (unsigned short)i,
				      io_uring_buf_ring_mask(n), (int)i);
	io_uring_buf_ring_advance(g->br, (int)n);
	p->next_id += n;
	return (int)++p->ngroups;
}

static unsigned group_of(const struct weir_bufpool *p, uint16_t bid)
{
	unsigned g;

	for (g = 0; g < p->ngroups; g++)
		if (bid >= p->groups[g].base && bid - p->groups[g].base < p->groups[g].n)
			break;
	WEIR_BUG_ON(g == p->ngroups);
	return g;
}

char *weir__bufpool_xptr(const struct weir_bufpool *p, uint16_t bid)
{
	const struct weir_bufgroup *g = &p->groups[group_of(p, bid)];

	return g->mem + (size_t)(bid - g->base) * p->bufsz;
}

void weir__bufpool_xput(struct weir_bufpool *p, uint16_t bid)
{
	struct weir_bufgroup *g = &p->groups[group_of(p, bid)];

	io_uring_buf_ring_add(g->br, g->mem + (size_t)(bid - g->base) * p->bufsz, p->bufsz,
			      (unsigned short)(bid - g->base), io_uring_buf_ring_mask(g->n), g->pending);
	g->pending++;
}
