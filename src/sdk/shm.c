/* libweir-agent: the agent side of the shared-memory transport (layout and
 * protocol: uapi/weir/ring.h; contracts: sdk-internal.h).
 *
 * weir -> agent records are copied out of the ring into receive buffers
 * (struct weir__sdk_rbuf, refcounted like socket input) and handed to the
 * same frame handler as socket frames. Body frames name arena bytes: the
 * chunk points into the read-only arena mapping, and the buffer is
 * released (a RELEASE frame) when the chunk's event is done. The I/O
 * thread is the only producer of the agent -> weir ring: it moves whole
 * frames from c->out into it. Workers only append to c->out (under c->mu). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sdk-internal.h"
#include "weir/ring.h"
#include "weir/spsc.h"

#define RX_BATCH 256u
#define RX_RBUF (1024u * 1024u)      /* room for four records of weir's max_record */

struct weir__sdk_shm {
	char *ctl;
	size_t ctl_size;
	const char *arena;
	size_t arena_size;
	uint32_t buf_size, nbufs, max_record;
	int efd_agent, efd_weir;
	struct weir_ring tx, rx;        /* tx: agent -> weir (we produce) */
	struct weir__sdk_rbuf *rb;      /* I/O thread: where records are copied */
	uint32_t rb_used;
	uint32_t nrel;                  /* under c->mu */
	uint32_t rel[WEIR_SHM_MAX_RELEASE];
};

static bool pow2(uint64_t v)
{
	return v >= 64 && (v & (v - 1)) == 0;
}

static void shm_unmap(struct weir__sdk_shm *m)
{
	if (m->ctl != NULL)
		munmap(m->ctl, m->ctl_size);
	if (m->arena != NULL)
		munmap((void *)(uintptr_t)m->arena, m->arena_size);
	if (m->efd_agent >= 0)
		close(m->efd_agent);
	if (m->efd_weir >= 0)
		close(m->efd_weir);
	if (m->rb != NULL)
		weir__sdk_rbuf_unref(m->rb);
	free(m);
}

int weir__sdk_shm_setup(struct weir__sdk_conn *c)
{
	struct weir__sdk_shm *m;
	struct weir_shm_hdr h;
	struct stat st;
	int err = -EINVAL;

	if (c->nfds != 4 || c->shm != NULL) {
		err = -EBADF;
		goto out_fds;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		err = -ENOMEM;
		goto out_fds;
	}
	m->efd_agent = m->efd_weir = -1;
	if (fstat(c->fds[0], &st) != 0 || (size_t)st.st_size < WEIR_SHM_HDR_SIZE)
		goto fail;
	m->ctl_size = (size_t)st.st_size;
	m->ctl = mmap(NULL, m->ctl_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fds[0], 0);
	if (m->ctl == MAP_FAILED) {
		m->ctl = NULL;
		err = -errno;
		goto fail;
	}
	memcpy(&h, m->ctl, sizeof(h));  /* checked once, on our copy */
	if (h.magic != WEIR_SHM_MAGIC || h.version != WEIR_SHM_VERSION ||
	    h.hdr_size != WEIR_SHM_HDR_SIZE || h.ctl_size != m->ctl_size || !pow2(h.p2a_size) ||
	    !pow2(h.a2p_size) || h.p2a_off < WEIR_SHM_HDR_SIZE || h.a2p_off < WEIR_SHM_HDR_SIZE ||
	    h.p2a_off % 64 != 0 || h.a2p_off % 64 != 0 ||
	    (uint64_t)h.p2a_off + WEIR_RING_CTL_SIZE + h.p2a_size > m->ctl_size ||
	    (uint64_t)h.a2p_off + WEIR_RING_CTL_SIZE + h.a2p_size > m->ctl_size ||
	    (h.p2a_off < h.a2p_off + WEIR_RING_CTL_SIZE + h.a2p_size &&
	     h.a2p_off < h.p2a_off + WEIR_RING_CTL_SIZE + h.p2a_size) ||
	    h.buf_size == 0 || h.nbufs == 0 || h.nbufs > 65536 ||
	    h.arena_size != (uint64_t)h.buf_size * h.nbufs || h.max_record < 4096 ||
	    h.max_record > RX_RBUF)
		goto fail;
	if (fstat(c->fds[1], &st) != 0 || (uint64_t)st.st_size != h.arena_size)
		goto fail;
	m->arena_size = h.arena_size;
	m->arena = mmap(NULL, m->arena_size, PROT_READ, MAP_SHARED, c->fds[1], 0);
	if (m->arena == MAP_FAILED) {
		m->arena = NULL;
		err = -errno;
		goto fail;
	}
	m->buf_size = h.buf_size;
	m->nbufs = h.nbufs;
	m->max_record = h.max_record;
	if (weir_ring_init(&m->rx, m->ctl + h.p2a_off, m->ctl + h.p2a_off + WEIR_RING_CTL_SIZE,
			   h.p2a_size, h.max_record) != 0 ||
	    weir_ring_init(&m->tx, m->ctl + h.a2p_off, m->ctl + h.a2p_off + WEIR_RING_CTL_SIZE,
			   h.a2p_size, h.max_record) != 0)
		goto fail;
	m->efd_agent = c->fds[2];
	m->efd_weir = c->fds[3];
	close(c->fds[0]);
	close(c->fds[1]);
	c->nfds = 0;
	c->shm = m;
	return 0;

fail:
	shm_unmap(m);
out_fds:
	for (unsigned i = 0; i < c->nfds; i++)
		close(c->fds[i]);
	c->nfds = 0;
	return err;
}

void weir__sdk_shm_free(struct weir__sdk_conn *c)
{
	if (c->shm != NULL)
		shm_unmap(c->shm);
	c->shm = NULL;
	for (unsigned i = 0; i < c->nfds; i++)
		close(c->fds[i]);
	c->nfds = 0;
}

int weir__sdk_shm_efd(const struct weir__sdk_conn *c)
{
	return c->shm != NULL ? c->shm->efd_agent : -1;
}

int weir__sdk_shm_chunk(struct weir__sdk_conn *c, const struct weir__sdk_bref *ref,
			struct weir_agent_chunk *ch, const char **why)
{
	const struct weir__sdk_shm *m = c->shm;

	/* the bytes must lie inside the buffer the frame names (no off + len:
	 * off comes from weir's frame and could wrap the sum) */
	if (ref->buf >= m->nbufs || ref->len > m->buf_size ||
	    ref->off < ref->buf * m->buf_size ||
	    ref->off - ref->buf * m->buf_size > m->buf_size - ref->len) {
		*why = "shm: body reference outside its arena buffer";
		return -1;
	}
	ch->data = m->arena + ref->off;
	ch->len = (size_t)ref->len;
	return 0;
}

static uint32_t enc_release(char *dst, const uint32_t *idx, uint32_t n)
{
	char *w = dst + WEIR_AGENT_HDR_SIZE;

	*w++ = (char)0x81;
	*w++ = (char)WEIR_AGENT_K_SHM_BUFS;
	*w++ = (char)0xdd;
	*w++ = (char)(n >> 24);
	*w++ = (char)(n >> 16);
	*w++ = (char)(n >> 8);
	*w++ = (char)n;
	for (uint32_t i = 0; i < n; i++) {
		*w++ = (char)0xce;
		*w++ = (char)(idx[i] >> 24);
		*w++ = (char)(idx[i] >> 16);
		*w++ = (char)(idx[i] >> 8);
		*w++ = (char)idx[i];
	}
	weir__sdk_hdr_put(dst, (uint32_t)(w - dst) - WEIR_AGENT_HDR_SIZE, WEIR_AGENT_RELEASE, 0, 0);
	return (uint32_t)(w - dst);
}

#define RELEASE_MAX (WEIR_AGENT_HDR_SIZE + 7 + 5 * WEIR_SHM_MAX_RELEASE)

/* under c->mu: the pending releases become one frame in c->out */
static void release_frame_locked(struct weir__sdk_conn *c)
{
	struct weir__sdk_shm *m = c->shm;
	char *w;

	if (m->nrel == 0)
		return;
	w = weir__sdk_out_reserve(c, RELEASE_MAX);
	if (w == NULL)
		return;         /* connection closing: weir takes everything back */
	c->out_len += enc_release(w, m->rel, m->nrel);
	m->nrel = 0;
}

void weir__sdk_shm_release(struct weir__sdk_conn *c, uint32_t buf)
{
	bool kick;

	pthread_mutex_lock(&c->mu);
	if (c->shm == NULL || c->closed) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	if (c->shm->nrel == WEIR_SHM_MAX_RELEASE)
		release_frame_locked(c);        /* the last attempt found no room */
	if (c->shm->nrel == WEIR_SHM_MAX_RELEASE) {
		/* still none (out of memory): weir takes the buffer back when
		 * the connection ends; never write past rel[] */
		pthread_mutex_unlock(&c->mu);
		return;
	}
	c->shm->rel[c->shm->nrel++] = buf;
	if (c->shm->nrel == WEIR_SHM_MAX_RELEASE)
		release_frame_locked(c);
	kick = c->shm->nrel == 1 || c->shm->nrel == 0;
	pthread_mutex_unlock(&c->mu);
	if (kick)
		weir__sdk_conn_kick(c);
}

int weir__sdk_shm_flush_locked(struct weir__sdk_conn *c)
{
	struct weir__sdk_shm *m = c->shm;
	size_t pos = c->shm_sock_end;
	int ret = 0;

	release_frame_locked(c);
	/* woken after waiting for room: stop asking weir for wake-ups */
	if (__atomic_load_n(&m->tx.ctl->prod_waiting, __ATOMIC_RELAXED) != 0)
		weir_ring_wait_done(&m->tx);
	while (c->out_len - pos >= WEIR_AGENT_HDR_SIZE) {
		const unsigned char *p = (const unsigned char *)c->out + pos;
		uint32_t len = ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
				p[3]) + 4;
		int err;

		if (len > c->out_len - pos)
			break;
		err = weir_ring_write(&m->tx, p, len);
		if (err == WEIR_RING_EAGAIN) {
			int w = weir_ring_wait_prepare(&m->tx, len);

			if (w < 0)
				ret = -1;
			else if (w == 0)
				continue;       /* room after all */
			break;                  /* 1: weir's release wakes us */
		}
		if (err != 0) {
			ret = -1;
			break;
		}
		pos += len;
		if (c->out_len - pos < WEIR_AGENT_HDR_SIZE || pos - c->shm_sock_end > (1u << 20))
			break;
	}
	if (pos != c->shm_sock_end) {
		memmove(c->out + c->shm_sock_end, c->out + pos, c->out_len - pos);
		c->out_len -= pos - c->shm_sock_end;
	}
	if (weir_ring_publish(&m->tx)) {
		uint64_t one = 1;

		if (write(m->efd_weir, &one, sizeof(one)) < 0 && errno != EAGAIN)
			ret = -1;
	}
	return ret;
}

bool weir__sdk_shm_poll(struct weir__sdk_conn *c, const char **why)
{
	struct weir__sdk_shm *m = c->shm;
	bool progress = false;

	for (unsigned i = 0; i < RX_BATCH && !c->dead; i++) {
		struct weir__sdk_frame f;
		uint32_t need;
		bool got;
		int n;

		/* nobody else holds bytes of it: fill it again from the start */
		if (m->rb != NULL && atomic_load(&m->rb->ref) == 1)
			m->rb_used = 0;
		if (m->rb == NULL || m->rb_used + m->max_record > m->rb->cap) {
			if (m->rb != NULL)
				weir__sdk_rbuf_unref(m->rb);
			m->rb = malloc(sizeof(*m->rb) + RX_RBUF);
			if (m->rb == NULL) {
				*why = "out of memory";
				return false;
			}
			atomic_init(&m->rb->ref, 1);
			m->rb->cap = RX_RBUF;
			m->rb_used = 0;
		}
		n = weir_ring_read(&m->rx, m->rb->data + m->rb_used, m->max_record, &got);
		if (n < 0) {
			*why = "shm: invalid ring index or record from weir";
			return false;
		}
		if (!got)
			break;
		if (weir__sdk_frame_parse(m->rb->data + m->rb_used, (size_t)n, m->max_record, &f,
					  &need) != 0 || f.size != (uint32_t)n) {
			*why = "shm: a record that is not exactly one frame";
			return false;
		}
		m->rb_used += ((uint32_t)n + 7) & ~7u;
		atomic_fetch_add_explicit(&c->s->st.frames_in, 1, memory_order_relaxed);
		if (weir__sdk_on_request_frame(c, &f, m->rb, why) != 0)
			return false;
		progress = true;
	}
	if (progress || m->rx.pos != m->rx.pub) {
		if (weir_ring_release(&m->rx)) {
			uint64_t one = 1;

			if (write(m->efd_weir, &one, sizeof(one)) < 0 && errno != EAGAIN) {
				*why = "shm: eventfd write failed";
				return false;
			}
		}
	}
	return true;
}

int weir__sdk_shm_sleep(struct weir__sdk_conn *c)
{
	return weir_ring_sleep_prepare(&c->shm->rx) == 1 ? 1 : 0;
}

void weir__sdk_shm_woke(struct weir__sdk_conn *c)
{
	weir_ring_sleep_done(&c->shm->rx);
}

bool weir_agent_req_shm(const struct weir_agent_req *req)
{
	/* set by the I/O thread at SHM_SETUP, before any chunk of the
	 * connection is queued (the queue's mutex orders it) */
	return req->c->shm != NULL;
}
