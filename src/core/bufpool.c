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

	if (nbufs == 0 || (nbufs & (nbufs - 1)) != 0 || nbufs > 32768)
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
	p->refs = weir_calloc(nbufs, sizeof(*p->refs));
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
	io_uring_unregister_buf_ring(ring, p->bgid);
	munmap(p->mem, (size_t)p->nbufs * p->bufsz);
	munmap(p->br, (size_t)p->nbufs * sizeof(struct io_uring_buf));
	weir_free(p->refs);
	p->br = NULL;
}
