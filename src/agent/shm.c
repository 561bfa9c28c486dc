/* weir's side of the shared-memory agent transport (layout and protocol:
 * uapi/weir/ring.h, docs/agent-protocol.md; contracts: agent-internal.h).
 *
 * Everything read from the control memfd is agent-writable: ring indices
 * and records are validated by weir/spsc.h and weir_agent_shm_rx (records
 * are copied out before they are parsed), RELEASE indices are checked
 * against what this connection handed the agent (held[]), so a hostile
 * agent cannot make weir read or write out of bounds, return a buffer it
 * does not hold, or keep weir busy for more than a bounded batch. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent-internal.h"
#include "weir/alloc.h"

#define ARENA_BUFS 512u                 /* x 16 KiB per (reactor, agent) */
#define RING_BYTES (1u << 20)
#define MAX_RECORD WEIR_AGENT_MAX_FRAME_DEFAULT
#define RX_BATCH 256u                   /* records per connection per loop iteration */

struct shm_out {                        /* a frame waiting for room in the ring */
	struct shm_out *next;
	int32_t bid;                    /* arena buffer it references (a pool ref), or -1 */
	uint32_t len;
	char frame[];
};

struct weir_shm_link {
	int ctl_fd, efd_agent, efd_weir;
	char *ctl;
	size_t ctl_size;
	struct weir_ring tx, rx;
	uint16_t *held;                 /* per arena buffer: references the agent holds */
	struct shm_out *head, **tail;
	size_t staged;
	const char *bad;                /* a ring error seen while sending: fail at the next poll */
	bool asleep;                    /* our cons_sleeping flag is set */
	char *rxbuf;
	uint32_t rel[WEIR_SHM_MAX_RELEASE];
};

static struct weir_bufpool *POOL(struct weir_agentconn *ac)
{
	return &ac->s.r->pool;
}

static void log_fallback(struct weir_agent_rt *rt, const char *what, int err)
{
	if (rt->arena.failed)
		return;
	weir__agent_log(rt, "shared memory unavailable (%s: %s): socket transport", what,
			strerror(err));
	rt->arena.failed = true;
}

static int arena_init(struct weir_agent_rt *rt)
{
	struct weir_reactor *r = rt->r;
	struct weir_shm_arena *a = &rt->arena;
	size_t size = (size_t)ARENA_BUFS * r->pool.bufsz;
	int ret;

	if (a->mem != NULL)
		return 0;
	a->fd = memfd_create("weir-arena", MFD_CLOEXEC);
	if (a->fd < 0)
		return -errno;
	if (ftruncate(a->fd, (off_t)size) != 0)
		goto fail_errno;
	a->mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, a->fd, 0);
	if (a->mem == MAP_FAILED) {
		a->mem = NULL;
		goto fail_errno;
	}
	ret = weir_bufpool_add_group(&r->pool, &r->ring, r->next_bgid, a->mem, ARENA_BUFS);
	if (ret < 0) {
		munmap(a->mem, size);
		a->mem = NULL;
		close(a->fd);
		return ret;
	}
	r->next_bgid++;
	a->group = (unsigned)ret;
	a->base = weir_bufpool_base(&r->pool, a->group);
	a->nbufs = ARENA_BUFS;
	a->size = size;
	return 0;

fail_errno:
	ret = -errno;
	close(a->fd);
	a->fd = -1;
	return ret;
}

/* reactor end (after the buffer pool is gone) */
void weir__shm_arena_fini(struct weir_agent_rt *rt)
{
	if (rt->arena.mem != NULL) {
		munmap(rt->arena.mem, rt->arena.size);
		close(rt->arena.fd);
		rt->arena.mem = NULL;
	}
}

static void link_free(struct weir_shm_link *l)
{
	if (l->ctl != NULL)
		munmap(l->ctl, l->ctl_size);
	if (l->ctl_fd >= 0)
		close(l->ctl_fd);
	if (l->efd_agent >= 0)
		close(l->efd_agent);
	if (l->efd_weir >= 0)
		close(l->efd_weir);
	weir_free(l->held);
	weir_free(l->rxbuf);
	weir_free(l);
}

static int send_setup(struct weir_agentconn *ac, struct weir_shm_link *l)
{
	int fds[4] = { l->ctl_fd, ac->rt->arena.fd, l->efd_agent, l->efd_weir };
	union {
		char buf[CMSG_SPACE(sizeof(fds))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = { 0 };
	struct cmsghdr *cm;
	struct iovec iov;
	uint32_t len;
	char *f = weir_agent_enc_shm_setup(&len);
	ssize_t n;

	if (f == NULL)
		return -ENOMEM;
	memset(&u, 0, sizeof(u));
	iov.iov_base = f;
	iov.iov_len = len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof(u.buf);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	/* the socket is idle (HELLO went out before the reply came): a small
	 * frame fits its buffer, MSG_DONTWAIT cannot block */
	n = sendmsg(ac->s.fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	weir_free(f);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EAGAIN;
}

int weir__shm_offer(struct weir_agentconn *ac)
{
	struct weir_agent_rt *rt = ac->rt;
	struct weir_reactor *r = ac->s.r;
	struct weir_shm_link *l;
	struct weir_shm_hdr *h;
	const char *what = "memfd";
	int ret;

	if (rt->arena.failed || rt->arena.user != NULL || ac->s.sending || ac->s.out.bytes != 0)
		return -1;
	ret = arena_init(rt);
	if (ret < 0) {
		log_fallback(rt, "arena", -ret);
		return -1;
	}
	l = weir_calloc(1, sizeof(*l));
	if (l == NULL)
		return -1;
	l->ctl_fd = l->efd_agent = l->efd_weir = -1;
	l->tail = &l->head;
	l->ctl_size = WEIR_SHM_HDR_SIZE + 2 * ((size_t)WEIR_RING_CTL_SIZE + RING_BYTES);
	l->held = weir_calloc(rt->arena.nbufs, sizeof(*l->held));
	l->rxbuf = weir_malloc(MAX_RECORD);
	if (l->held == NULL || l->rxbuf == NULL) {
		ret = -ENOMEM;
		goto fail;
	}
	l->ctl_fd = memfd_create("weir-shm", MFD_CLOEXEC);
	if (l->ctl_fd < 0 || ftruncate(l->ctl_fd, (off_t)l->ctl_size) != 0) {
		ret = -errno;
		goto fail;
	}
	what = "mmap";
	l->ctl = mmap(NULL, l->ctl_size, PROT_READ | PROT_WRITE, MAP_SHARED, l->ctl_fd, 0);
	if (l->ctl == MAP_FAILED) {
		l->ctl = NULL;
		ret = -errno;
		goto fail;
	}
	what = "eventfd";
	l->efd_agent = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	l->efd_weir = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->efd_agent < 0 || l->efd_weir < 0) {
		ret = -errno;
		goto fail;
	}
	h = (struct weir_shm_hdr *)l->ctl;
	h->magic = WEIR_SHM_MAGIC;
	h->version = WEIR_SHM_VERSION;
	h->hdr_size = WEIR_SHM_HDR_SIZE;
	h->ctl_size = l->ctl_size;
	h->p2a_off = WEIR_SHM_HDR_SIZE;
	h->p2a_size = RING_BYTES;
	h->a2p_off = WEIR_SHM_HDR_SIZE + WEIR_RING_CTL_SIZE + RING_BYTES;
	h->a2p_size = RING_BYTES;
	h->max_record = MAX_RECORD;
	h->arena_size = rt->arena.size;
	h->buf_size = r->pool.bufsz;
	h->nbufs = rt->arena.nbufs;
	h->reactor = r->id;
	weir_ring_init(&l->tx, l->ctl + h->p2a_off, l->ctl + h->p2a_off + WEIR_RING_CTL_SIZE,
		       RING_BYTES, MAX_RECORD);
	weir_ring_init(&l->rx, l->ctl + h->a2p_off, l->ctl + h->a2p_off + WEIR_RING_CTL_SIZE,
		       RING_BYTES, MAX_RECORD);
	what = "sendmsg SCM_RIGHTS";
	ret = send_setup(ac, l);
	if (ret < 0)
		goto fail;
	ac->shm = l;
	rt->arena.user = ac;
	ac->state = WEIR_AC_SHM_WAIT;
	return 0;

fail:
	log_fallback(rt, what, -ret);
	link_free(l);
	return -1;
}

static void arm_wake(struct weir_agentconn *ac)
{
	struct io_uring_sqe *sqe = weir__sqe(ac->s.r);

	io_uring_prep_read(sqe, ac->shm->efd_weir, &ac->shm_efd_val, sizeof(ac->shm_efd_val), 0);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)&ac->s | WEIR_OP_SHMWAKE);
	ac->s.ops++;
	ac->shm_wake_armed = true;
}

void weir__shm_ready(struct weir_agentconn *ac, uint64_t status)
{
	if (ac->shm == NULL)
		return;
	if (status != 0) {
		log_fallback(ac->rt, "the agent could not map it", status < 4096 ? (int)status : EIO);
		weir__shm_detach(ac);
		return;
	}
	ac->shm_on = true;
	ac->s.r->nshm++;
	arm_wake(ac);
}

void weir__agentconn_on_shm_wake(struct weir_sock *s, int res)
{
	struct weir_agentconn *ac = weir_container_of(s, struct weir_agentconn, s);

	ac->shm_wake_armed = false;
	if (s->closed || !ac->shm_on)
		return;
	if (res < 0 && res != -EAGAIN && res != -EINTR) {
		weir__ac_fail(ac, "shm eventfd read failed");
		return;
	}
	arm_wake(ac);   /* the rings are read after every loop iteration */
}

void weir__shm_detach(struct weir_agentconn *ac)
{
	struct weir_shm_link *l = ac->shm;
	struct weir_agent_rt *rt = ac->rt;
	struct weir_bufpool *pool = POOL(ac);

	if (l == NULL)
		return;
	if (ac->shm_on) {
		ac->s.r->nshm--;
		ac->shm_on = false;
	}
	if (ac->shm_wake_armed) {
		struct io_uring_sqe *sqe = weir__sqe(ac->s.r);

		io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)&ac->s | WEIR_OP_SHMWAKE, 0);
		io_uring_sqe_set_data64(sqe, 0);
	}
	while (l->head != NULL) {
		struct shm_out *o = l->head;

		l->head = o->next;
		if (o->bid >= 0)
			weir_buf_unref(pool, (uint16_t)o->bid);
		weir_free(o);
	}
	/* an agent that is gone (or dropped) returns everything it held */
	for (uint32_t i = 0; i < rt->arena.nbufs; i++)
		while (l->held[i] != 0) {
			l->held[i]--;
			weir_buf_unref(pool, (uint16_t)(rt->arena.base + i));
		}
	ac->shm = NULL;
	rt->arena.user = NULL;
	link_free(l);
	weir__agent_report(rt);
}

/* ---- weir -> agent -------------------------------------------------------- */

/* Into the ring if nothing waits before it; a buffer reference moves to
 * held[] when the frame is in. 1: written, 0: no room, -1: error. */
static int ring_put(struct weir_agentconn *ac, const char *f, uint32_t len, int32_t bid)
{
	struct weir_shm_link *l = ac->shm;
	int err = weir_ring_write(&l->tx, f, len);

	if (err == WEIR_RING_EAGAIN)
		return 0;
	if (err != 0) {
		l->bad = err == WEIR_RING_EBAD ? "shm: invalid consumer index in weir's ring"
					       : "shm: frame too large for the ring";
		return -1;
	}
	if (bid >= 0)
		l->held[bid - (int32_t)ac->rt->arena.base]++;
	return 1;
}

static int stage(struct weir_agentconn *ac, const char *f, uint32_t len, int32_t bid)
{
	struct weir_shm_link *l = ac->shm;
	struct shm_out *o;

	if (l->head == NULL && !l->bad) {
		int k = ring_put(ac, f, len, bid);

		if (k != 0)
			return k > 0 ? 0 : -1;
	}
	o = weir_malloc(sizeof(*o) + len);
	if (o == NULL)
		return -1;
	o->next = NULL;
	o->bid = bid;
	o->len = len;
	memcpy(o->frame, f, len);
	*l->tail = o;
	l->tail = &o->next;
	l->staged += len + (bid >= 0 ? (uint32_t)POOL(ac)->bufsz / 4 : 0);
	return 0;
}

int weir__shm_send(struct weir_agentconn *ac, char *frame, uint32_t len)
{
	int ret;

	if (ac->s.closed || ac->shm == NULL) {
		weir_free(frame);
		return -1;
	}
	ret = stage(ac, frame, len, -1);
	weir_free(frame);
	if (ret != 0 && ac->shm->bad == NULL)
		ac->shm->bad = "out of memory";
	weir__ac_mark(ac);
	return ret;
}

int weir__shm_body(struct weir_agentconn *ac, uint8_t type, uint64_t id, bool last, uint64_t off,
		   const char *p, uint32_t len, uint16_t bid)
{
	const struct weir_shm_arena *a = &ac->rt->arena;
	struct weir_bufpool *pool = POOL(ac);
	char small[WEIR_AGENT_BODY_REF_MAX];
	uint32_t n;
	char *f;
	int ret;

	if (ac->shm == NULL)
		return -1;
	if (len != 0 && bid >= a->base && bid - a->base < a->nbufs) {
		n = weir_agent_body_ref(small, type, id, last, off, (uint64_t)(p - a->mem), len,
					bid - a->base);
		weir_buf_ref(pool, bid);
		if (stage(ac, small, n, bid) != 0) {
			weir_buf_unref(pool, bid);
			return -1;
		}
		weir_metrics_agent_shm_bytes(&ac->s.r->metrics, ac->rt->mslot, len);
		weir__ac_mark(ac);
		return 0;
	}
	/* bytes outside the arena (they came with the head): inline, as on
	 * the socket */
	f = weir_malloc(WEIR_AGENT_BODY_PREFIX + (size_t)len);
	if (f == NULL)
		return -1;
	n = weir_agent_body_prefix(f, type, id, last, off, len);
	if (len != 0)
		memcpy(f + n, p, len);
	ret = stage(ac, f, n + len, -1);
	weir_free(f);
	if (ret == 0)
		weir__ac_mark(ac);
	return ret;
}

bool weir__shm_full(const struct weir_agentconn *ac)
{
	return ac->shm != NULL && ac->shm->staged > WEIR_OUTQ_HIGH;
}

static void wake_agent(struct weir_shm_link *l)
{
	uint64_t one = 1;

	if (write(l->efd_agent, &one, sizeof(one)) < 0 && errno != EAGAIN)
		l->bad = "shm: eventfd write failed";
}

void weir__shm_flush(struct weir_agentconn *ac)
{
	struct weir_shm_link *l = ac->shm;

	if (l == NULL || l->bad)
		return;
	for (int round = 0; round < 2; round++) {
		while (l->head != NULL) {
			struct shm_out *o = l->head;
			int k = ring_put(ac, o->frame, o->len, o->bid);

			if (k <= 0)
				break;
			l->head = o->next;
			if (l->head == NULL)
				l->tail = &l->head;
			l->staged -= o->len + (o->bid >= 0 ? POOL(ac)->bufsz / 4 : 0);
			weir_free(o);
		}
		if (weir_ring_publish(&l->tx))
			wake_agent(l);
		if (l->head == NULL || l->bad)
			break;
		/* full: ask the agent to wake us when it makes room (and
		 * retry once in case it just did) */
		if (weir_ring_wait_prepare(&l->tx, l->head->len) < 0) {
			l->bad = "shm: invalid consumer index in weir's ring";
			break;
		}
	}
}

void weir__shm_client_rx(struct weir_agentconn *ac, struct weir_sock *client)
{
	if (ac->shm_on)
		weir__sock_rx_group(client, (uint8_t)ac->rt->arena.group);
}

/* ---- agent -> weir -------------------------------------------------------- */

static int on_ring_frame(void *ctx, const struct weir_agent_frame *f)
{
	struct weir_agentconn *ac = ctx;
	struct weir_shm_link *l = ac->shm;
	const char *why = NULL;
	uint32_t n;

	if (f->type != WEIR_AGENT_RELEASE)
		return weir__ac_on_frame(ac, f) != 0 || ac->shm == NULL ? 1 : 0;
	if (weir_agent_decode_release(f->payload, f->payload_len, ac->rt->arena.nbufs, l->rel,
				      WEIR_SHM_MAX_RELEASE, &n, &why) != 0) {
		weir__ac_fail(ac, why);
		return 1;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint32_t b = l->rel[i];

		if (l->held[b] == 0) {
			weir__ac_fail(ac, "shm: RELEASE of a buffer the agent does not hold");
			return 1;
		}
		l->held[b]--;
		weir_buf_unref(POOL(ac), (uint16_t)(ac->rt->arena.base + b));
	}
	return 0;
}

static void poll_one(struct weir_agentconn *ac)
{
	struct weir_shm_link *l = ac->shm;
	const char *why = NULL;
	int n;

	if (l->asleep) {        /* the flag's cache line is the agent's to read: write it
				   only when it changes */
		weir_ring_sleep_done(&l->rx);
		l->asleep = false;
	}
	if (l->bad) {
		weir__ac_fail(ac, l->bad);
		return;
	}
	n = weir_agent_shm_rx(&l->rx, l->rxbuf, MAX_RECORD, RX_BATCH, on_ring_frame, ac, &why);
	if (ac->s.closed || ac->shm != l)
		return;         /* a frame ended the connection */
	if (n < 0) {
		weir__ac_fail(ac, why != NULL ? why : "shm: invalid frame");
		return;
	}
	if (n > 0)
		ac->last_rx = weir__now(ac->s.r);
	if (weir_ring_release(&l->rx))
		wake_agent(l);
	if (l->head != NULL) {
		weir__shm_flush(ac);
		if (l->head == NULL)
			weir_ring_wait_done(&l->tx);
	}
	if (ac->want_writers && l->staged < WEIR_OUTQ_LOW)
		weir__ac_wake_writers(ac);
}

void weir__agents_shm_poll(struct weir_reactor *r)
{
	for (struct weir_agent_rt *rt = r->agents_all; rt != NULL; rt = rt->all_next) {
		struct weir_agentconn *ac = rt->arena.user;

		if (ac != NULL && ac->shm_on && !ac->s.closed)
			poll_one(ac);
	}
}

bool weir__agents_shm_sleep(struct weir_reactor *r)
{
	bool busy = false;

	for (struct weir_agent_rt *rt = r->agents_all; rt != NULL; rt = rt->all_next) {
		struct weir_agentconn *ac = rt->arena.user;
		int k;

		if (ac == NULL || !ac->shm_on || ac->s.closed)
			continue;
		if (ac->shm->bad) {
			busy = true;
			continue;
		}
		k = weir_ring_sleep_prepare(&ac->shm->rx);
		if (k < 0)
			ac->shm->bad = "shm: invalid producer index in the agent's ring";
		if (k <= 0)
			busy = true;
		else
			ac->shm->asleep = true;
	}
	return busy;
}
