/* The reactor: one thread, one io_uring, one buffer pool, one timer wheel.
 * Everything a connection does goes through here. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "weir/alloc.h"
#include "weir/proxy.h"
#include "weir/trace.h"

#define RING_ENTRIES 2048
#define POOL_BUFS 1024
#define POOL_BUFSZ (16u * 1024u)
#define POOL_BGID 0

static inline uint64_t tag(void *p, enum weir_op op)
{
	return (uint64_t)(uintptr_t)p | op;
}

/* metrics: enum weir_sock_role -> enum weir_metrics_peer */
static inline enum weir_metrics_peer peer_of(const struct weir_sock *s)
{
	return (enum weir_metrics_peer)(s->role - WEIR_SOCK_CLIENT);
}

static void count_submit(struct weir_reactor *r, int ret)
{
	if (ret > 0)
		weir_metrics_add(&r->metrics.d.submissions, (uint64_t)ret);
}

struct io_uring_sqe *weir__sqe(struct weir_reactor *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);

	if (weir_unlikely(sqe == NULL)) {
		/* SQ full: hand what we have to the kernel and try again. */
		count_submit(r, io_uring_submit(&r->ring));
		sqe = io_uring_get_sqe(&r->ring);
		WEIR_BUG_ON(sqe == NULL);
	}
	return sqe;
}

void weir__sock_init(struct weir_reactor *r, struct weir_sock *s, int fd, uint8_t role,
		     weir_timer_cb cb)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->role = role;
	s->r = r;
	s->recv_want = true;
	weir_timer_init(&s->timer, cb);
	s->msg.msg_iov = s->iov;
	r->nsocks++;
	weir_metrics_conn_open(&r->metrics, peer_of(s));
}

void weir__sock_arm_recv(struct weir_sock *s)
{
	struct weir_reactor *r = s->r;
	struct io_uring_sqe *sqe;

	if (s->closed || s->recv_armed || !s->recv_want || s->starved)
		return;
	sqe = weir__sqe(r);
	if (r->caps.multishot_recv)
		io_uring_prep_recv_multishot(sqe, s->fd, NULL, 0, 0);
	else
		io_uring_prep_recv(sqe, s->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = weir_bufpool_bgid(&r->pool, s->rx_group);
	s->armed_group = s->rx_group;
	io_uring_sqe_set_data64(sqe, tag(s, WEIR_OP_RECV));
	s->recv_armed = true;
	s->ops++;
}

void weir__sock_rx_group(struct weir_sock *s, uint8_t group)
{
	if (s->rx_group == group || s->closed)
		return;
	s->rx_group = group;
	if (s->recv_armed && s->armed_group != group) {
		/* the receive in flight takes buffers of the other group:
		 * cancel it; its -ECANCELED completion re-arms on this one */
		struct io_uring_sqe *sqe = weir__sqe(s->r);

		io_uring_prep_cancel64(sqe, tag(s, WEIR_OP_RECV), 0);
		io_uring_sqe_set_data64(sqe, 0);
	}
}

void weir__sock_pause(struct weir_sock *s)
{
	struct io_uring_sqe *sqe;

	if (!s->recv_want)
		return;
	s->recv_want = false;
	if (s->recv_armed && !s->closed) {
		sqe = weir__sqe(s->r);
		io_uring_prep_cancel64(sqe, tag(s, WEIR_OP_RECV), 0);
		io_uring_sqe_set_data64(sqe, 0);
	}
}

void weir__sock_resume(struct weir_sock *s)
{
	if (s->recv_want)
		return;
	s->recv_want = true;
	weir__sock_arm_recv(s);
}

void weir__sock_flush(struct weir_sock *s)
{
	struct io_uring_sqe *sqe;
	unsigned n;

	if (s->sending || s->closed || s->out.bytes == 0)
		return;
	n = weir_outq_iov(&s->out, s->iov, WEIR_SOCK_IOV);
	sqe = weir__sqe(s->r);
	if (n == 1) {
		/* plain send: the kernel skips copying in a msghdr */
		io_uring_prep_send(sqe, s->fd, s->iov[0].iov_base, s->iov[0].iov_len, MSG_NOSIGNAL);
	} else {
		s->msg.msg_iovlen = n;
		io_uring_prep_sendmsg(sqe, s->fd, &s->msg, MSG_NOSIGNAL);
	}
	io_uring_sqe_set_data64(sqe, tag(s, WEIR_OP_SEND));
	s->sending = true;
	s->ops++;
}

static void sock_dead(struct weir_sock *s)
{
	struct weir_reactor *r = s->r;

	s->dead_queued = true;
	s->dead_next = r->dead;
	r->dead = s;
}

void weir__sock_close(struct weir_sock *s)
{
	struct weir_reactor *r = s->r;
	struct io_uring_sqe *sqe;

	if (s->closed)
		return;
	s->closed = true;
	weir_timer_cancel(&r->wheel, &s->timer);
	if (s->starved) {
		struct weir_sock **pp = &r->starved;

		while (*pp != s)
			pp = &(*pp)->starved_next;
		*pp = s->starved_next;
		if (s->starved_next == NULL)
			r->starved_tail = pp;
		s->starved = false;
	}
	if (s->ops != 0) {
		/* Completions of everything in flight still arrive (most with
		 * -ECANCELED); the object is freed after the last one. */
		sqe = weir__sqe(r);
		io_uring_prep_cancel_fd(sqe, s->fd, IORING_ASYNC_CANCEL_ALL);
		io_uring_sqe_set_data64(sqe, 0);
	} else {
		sock_dead(s);
	}
}

size_t weir__head_view(struct weir_sock *s, const char **p)
{
	struct weir_reactor *r = s->r;
	struct weir_headbuf *hb = &s->hb;
	size_t want, pos;
	uint32_t i;

	if (hb->len == 0 && s->in.count <= 1)
		return weir_inq_peek(&s->in, &r->pool, p, NULL);
	/* Split across buffers: copy what is new into the coalescing buffer. */
	if (hb->buf == NULL) {
		hb->buf = weir_malloc(WEIR_HEADBUF_MAX);
		if (hb->buf == NULL)
			return 0;
	}
	want = WEIR_MIN(s->in.bytes, (size_t)WEIR_HEADBUF_MAX);
	pos = 0;
	for (i = 0; i < s->in.count && pos < want; i++) {
		const struct weir_rseg *seg = weir_inq_seg(&s->in, i);
		size_t from = pos, to = WEIR_MIN(pos + seg->len, want);

		if (to > hb->len) {
			size_t start = WEIR_MAX(from, (size_t)hb->len);

			memcpy(hb->buf + start,
			       weir_buf_ptr(&r->pool, seg->bid) + seg->off + (start - from),
			       to - start);
		}
		pos = to;
	}
	hb->len = (uint32_t)want;
	*p = hb->buf;
	return want;
}

void weir__head_reset(struct weir_sock *s)
{
	s->hb.len = 0;
}

static void sock_free(struct weir_sock *s)
{
	struct weir_reactor *r = s->r;

	close(s->fd);
	weir_inq_free(&s->in, &r->pool);
	weir_outq_free(&s->out, &r->pool);
	weir_free(s->hb.buf);
	r->nsocks--;
	weir_metrics_conn_close(&r->metrics, peer_of(s));
	if (s->role == WEIR_SOCK_CLIENT)
		weir__client_free(weir_container_of(s, struct weir_client, s));
	else if (s->role == WEIR_SOCK_AGENT)
		weir__agentconn_free(s);
	else
		weir__upstream_free(weir_container_of(s, struct weir_upconn, s));
}

static void reap_dead(struct weir_reactor *r)
{
	while (r->dead != NULL) {
		struct weir_sock *s = r->dead;

		r->dead = s->dead_next;
		sock_free(s);
	}
}

/* ---- listeners ---------------------------------------------------------- */

static void arm_accept(struct weir_reactor *r, int fd)
{
	struct io_uring_sqe *sqe = weir__sqe(r);

	if (r->caps.multishot_accept)
		io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, 0);
	else
		io_uring_prep_accept(sqe, fd, NULL, NULL, 0);
	/* The listener's fd rides in the pointer part of user_data: the set
	 * of listeners changes with reloads. */
	io_uring_sqe_set_data64(sqe, ((uint64_t)(unsigned)fd << 3) | WEIR_OP_ACCEPT);
}

static bool fd_in(const int *fds, unsigned n, int fd)
{
	for (unsigned i = 0; i < n; i++)
		if (fds[i] == fd)
			return true;
	return false;
}

static bool listening_on(const struct weir_reactor *r, int fd)
{
	return fd_in(r->listen_fds, r->nlisten, fd);
}

/* A connection over max_connections (or accepted while stopping): a short
 * 503 and an orderly close, without a connection object. The socket is new,
 * so the answer fits its empty send buffer and MSG_DONTWAIT cannot block.
 * Whatever the client already sent is read first: closing with unread input
 * would reset the connection instead of ending it with FIN. */
#define BUSY_BODY "503 Service Unavailable: too many connections\n"

static void refuse(int fd)
{
	static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
				   "Content-Type: text/plain\r\n"
				   "Content-Length: 46\r\n"
				   "Retry-After: 1\r\n"
				   "Connection: close\r\n"
				   "\r\n" BUSY_BODY;
	char sink[4096];

	_Static_assert(sizeof(BUSY_BODY) - 1 == 46, "Content-Length of the refusal");
	/* bounded: a peer that keeps sending cannot hold the reactor here */
	for (int i = 0; i < 16 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
		;
	if (send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
		shutdown(fd, SHUT_WR);
	close(fd);
}

static void on_accept(struct weir_reactor *r, struct io_uring_cqe *cqe)
{
	int lfd = (int)(cqe->user_data >> 3);

	if (cqe->res >= 0) {
		if (r->stopping || r->nclients >= r->conf->max_connections) {
			r->stats.refused++;
			weir_metrics_inc(&r->metrics.d.refused);
			refuse(cqe->res);
		} else if (weir__client_new(r, cqe->res) == NULL) {
			close(cqe->res);
		} else {
			r->stats.accepted++;
		}
	} else if (cqe->res != -ECANCELED && cqe->res != -EBADF && cqe->res != -EINVAL) {
		/* EMFILE, ENFILE, ENOBUFS...: keep serving; the re-arm below
		 * retries. */
		if (cqe->res != -EAGAIN && cqe->res != -EINTR)
			fprintf(stderr, "weir: reactor %u: accept: %s\n", r->id, strerror(-cqe->res));
	}
	/* -ECANCELED: a listener a reload removed (its fd number may already
	 * name a new listener, armed on its own) */
	if (!(cqe->flags & IORING_CQE_F_MORE) && !r->stopping && cqe->res != -ECANCELED &&
	    listening_on(r, lfd))
		arm_accept(r, lfd);
}

/* ---- stop --------------------------------------------------------------- */

static void stop_timeout(struct weir_timer *t)
{
	struct weir_reactor *r = weir_container_of(t, struct weir_reactor, stop_timer);

	fprintf(stderr, "weir: reactor %u: shutdown timeout, closing %u connection%s\n", r->id,
		r->nclients, r->nclients == 1 ? "" : "s");
	for (struct weir_client *c = r->clients; c != NULL; c = c->next)
		weir__client_abort(c, WEIR_AGENT_CANCEL_SHUTDOWN);
}

static void begin_stop(struct weir_reactor *r)
{
	struct weir_client *c, *next;

	if (r->stopping)
		return;
	r->stopping = true;
	for (unsigned i = 0; i < r->nlisten; i++) {
		if (r->listen_fds[i] >= 0) {
			struct io_uring_sqe *sqe = weir__sqe(r);

			io_uring_prep_cancel_fd(sqe, r->listen_fds[i], IORING_ASYNC_CANCEL_ALL);
			io_uring_sqe_set_data64(sqe, 0);
			count_submit(r, io_uring_submit(&r->ring));
			close(r->listen_fds[i]);
			r->listen_fds[i] = -1;
		}
	}
	for (c = r->clients; c != NULL; c = next) {
		next = c->next;
		weir__client_stop(c);
	}
	for (unsigned i = 0; i < r->conf->nupstreams; i++)
		weir__upstream_close_idle(r->cur->ups[i]);
	for (struct weir_rgen *rg = r->retired; rg != NULL; rg = rg->next)
		for (unsigned i = 0; i < rg->conf->nupstreams; i++)
			weir__upstream_close_idle(rg->ups[i]);
	weir_timer_init(&r->stop_timer, stop_timeout);
	weir_timer_arm(&r->wheel, &r->stop_timer, weir__now(r) + r->conf->shutdown_timeout_ms);
}

static void arm_wake(struct weir_reactor *r)
{
	struct io_uring_sqe *sqe = weir__sqe(r);

	io_uring_prep_read(sqe, r->wake_fd, &r->wake_val, sizeof(r->wake_val), 0);
	io_uring_sqe_set_data64(sqe, tag(r, WEIR_OP_WAKE));
}

static void wake(struct weir_reactor *r, unsigned flag)
{
	uint64_t one = 1;

	__atomic_or_fetch(&r->wake_flags, flag, __ATOMIC_RELEASE);
	if (write(r->wake_fd, &one, sizeof(one)) < 0)
		fprintf(stderr, "weir: reactor %u: wake: %s\n", r->id, strerror(errno));
}

void weir_reactor_stop(struct weir_reactor *r)
{
	wake(r, WEIR_WAKE_STOP);
}

void weir_reactor_reload(struct weir_reactor *r, struct weir_gen *g, int *fds, unsigned nfds)
{
	r->pending_fds = fds;
	r->pending_nlisten = nfds;
	__atomic_store_n(&r->pending, g, __ATOMIC_RELEASE);
	wake(r, WEIR_WAKE_RELOAD);
}

void weir_reactor_reopen_logs(struct weir_reactor *r)
{
	wake(r, WEIR_WAKE_REOPEN);
}

/* The safe point of a reload: between two completions, on this thread. */
/* Closes the fds of fds[0..n) this reactor does not listen on. */
static void drop_new_fds(struct weir_reactor *r, int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (!listening_on(r, fds[i]))
			close(fds[i]);
	free(fds);
}

/* Listens on fds[0..n) from now on: stops (cancel, then close) the
 * listeners not in it, arms the new ones; takes fds. */
static void swap_listeners(struct weir_reactor *r, int *fds, unsigned n)
{
	unsigned cancelled = 0;

	for (unsigned i = 0; i < r->nlisten; i++) {
		if (!fd_in(fds, n, r->listen_fds[i])) {
			struct io_uring_sqe *sqe = weir__sqe(r);

			io_uring_prep_cancel_fd(sqe, r->listen_fds[i], IORING_ASYNC_CANCEL_ALL);
			io_uring_sqe_set_data64(sqe, 0);
			cancelled++;
		}
	}
	if (cancelled != 0)     /* the cancels reach the kernel before the closes */
		count_submit(r, io_uring_submit(&r->ring));
	for (unsigned i = 0; i < r->nlisten; i++)
		if (!fd_in(fds, n, r->listen_fds[i]))
			close(r->listen_fds[i]);
	for (unsigned j = 0; j < n; j++)
		if (!listening_on(r, fds[j]))
			arm_accept(r, fds[j]);
	free(r->listen_fds);
	r->listen_fds = fds;
	r->nlisten = n;
}

static void reload(struct weir_reactor *r)
{
	struct weir_gen *g = __atomic_exchange_n(&r->pending, NULL, __ATOMIC_ACQUIRE);
	const struct weir_conf *old = r->conf;  /* main holds it until all swapped */
	int *fds = r->pending_fds;
	unsigned n = r->pending_nlisten;

	if (g == NULL)
		return;
	r->pending_fds = NULL;
	if (r->stopping) {
		drop_new_fds(r, fds, n);
		weir_gen_put(g);
	} else if (weir__rgen_swap(r, g) != 0) {
		drop_new_fds(r, fds, n);        /* not applied: listeners stay */
	} else {
		weir__alog_conf_changed(r, old);
		swap_listeners(r, fds, n);
	}
	__atomic_add_fetch(&r->reload_acks, 1, __ATOMIC_RELEASE);
}

static void on_wake(struct weir_reactor *r)
{
	unsigned flags = __atomic_exchange_n(&r->wake_flags, 0, __ATOMIC_ACQUIRE);

	if (flags & WEIR_WAKE_RELOAD)
		reload(r);
	if (flags & WEIR_WAKE_REOPEN)
		weir__log_reopen(r);
	if (flags & WEIR_WAKE_STOP)
		begin_stop(r);
	if (!r->stopping)
		arm_wake(r);
}

/* ---- loop --------------------------------------------------------------- */

/* Once per loop iteration: io_uring figures for the admin thread. */
static void loop_metrics(struct weir_reactor *r, unsigned ncqe)
{
	struct weir_metrics_data *d = &r->metrics.d;
	unsigned overflow = IO_URING_READ_ONCE(*r->ring.cq.koverflow);

	weir_metrics_add(&d->cqes, ncqe);
	weir_metrics_inc(&d->loops);
	if (overflow != d->cq_overflow)
		weir_metrics_set(&d->cq_overflow, overflow);
	if (IO_URING_READ_ONCE(*r->ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW)
		weir_metrics_inc(&d->cq_overflow_loops);
	if (r->pool.outstanding != d->bufs_in_use)
		weir_metrics_set(&d->bufs_in_use, r->pool.outstanding);
}

static void dispatch(struct weir_reactor *r, struct io_uring_cqe *cqe)
{
	uint64_t ud = cqe->user_data;
	enum weir_op op = (enum weir_op)(ud & WEIR_OP_MASK);
	struct weir_sock *s;

	switch (op) {
	case WEIR_OP_IGNORE:
		return;
	case WEIR_OP_ACCEPT:
		on_accept(r, cqe);
		return;
	case WEIR_OP_WAKE:     /* and WEIR_OP_LOG: see weir/proxy.h */
		if ((ud & ~(uint64_t)WEIR_OP_MASK) == (uint64_t)(uintptr_t)&r->alog)
			weir__alog_on_write(r, cqe->res);
		else
			on_wake(r);
		return;
	default:
		break;
	}
	s = (struct weir_sock *)(uintptr_t)(ud & ~(uint64_t)WEIR_OP_MASK);
	switch (op) {
	case WEIR_OP_RECV: {
		bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
		int res = cqe->res;

		if (!more) {
			s->recv_armed = false;
			s->ops--;
		}
		if (res > 0) {
			uint16_t bid = (uint16_t)((cqe->flags >> IORING_CQE_BUFFER_SHIFT) +
						  weir_bufpool_base(&r->pool, s->armed_group));

			weir_buf_take(&r->pool, bid);
			weir_metrics_bytes_in(&r->metrics, peer_of(s), (uint64_t)res);
			if (s->closed || weir_inq_push_compact(&s->in, &r->pool, bid, (uint32_t)res) != 0) {
				weir_buf_unref(&r->pool, bid);
				if (!s->closed)
					weir__sock_close(s);
				break;
			}
		} else if (res == -ENOBUFS) {
			WEIR_TRACE2(bufring_exhausted, r->id, s->fd);
			r->pool.exhausted++;
			weir_metrics_inc(&r->metrics.d.buf_exhausted);
			if (!s->closed && s->armed_group != 0 && !more) {
				/* an agent arena ran dry (a body larger than it, held
				 * for a verdict): go on in the main pool, whose bytes
				 * reach the agent inline; flow control still bounds
				 * what is held */
				s->rx_group = 0;
				weir__sock_arm_recv(s);
				break;
			}
			if (!s->closed && !s->starved) {
				s->starved = true;
				s->starved_next = NULL;
				*r->starved_tail = s;
				r->starved_tail = &s->starved_next;
			}
			break;
		} else if (res == -ECANCELED && !s->closed) {
			/* paused (or cancelled by a stale cancel: re-armed below) */
			weir__sock_arm_recv(s);
			break;
		}
		if (s->closed)
			break;
		if (s->role == WEIR_SOCK_CLIENT)
			weir__client_on_recv(weir_container_of(s, struct weir_client, s), res);
		else
			weir__upstream_on_recv(weir_container_of(s, struct weir_upconn, s), res);
		/* Multishot ended (or single-shot mode): arm again unless the
		 * handler paused, closed, or the peer finished sending. */
		if (!more && res > 0)
			weir__sock_arm_recv(s);
		break;
	}
	case WEIR_OP_ARECV:
		s->ops--;
		if (cqe->res > 0)
			weir_metrics_bytes_in(&r->metrics, WEIR_PEER_AGENT, (uint64_t)cqe->res);
		weir__agentconn_on_recv(s, cqe->res);
		break;
	case WEIR_OP_SHMWAKE:
		s->ops--;
		weir__agentconn_on_shm_wake(s, cqe->res);
		break;
	case WEIR_OP_SEND:
		s->ops--;
		s->sending = false;
		if (cqe->res > 0)
			weir_metrics_bytes_out(&r->metrics, peer_of(s), (uint64_t)cqe->res);
		if (s->closed)
			break;
		if (s->role == WEIR_SOCK_AGENT)
			weir__agentconn_on_send(s, cqe->res);
		else if (s->role == WEIR_SOCK_CLIENT)
			weir__client_on_send(weir_container_of(s, struct weir_client, s), cqe->res);
		else
			weir__upstream_on_send(weir_container_of(s, struct weir_upconn, s), cqe->res);
		break;
	case WEIR_OP_CONNECT:
		s->ops--;
		if (s->closed)
			break;
		if (s->role == WEIR_SOCK_AGENT) {
			weir__agentconn_on_connect(s, cqe->res);
		} else {
			weir__upstream_on_connect(weir_container_of(s, struct weir_upconn, s),
						  cqe->res);
		}
		break;
	default:
		break;
	}
	if (s->closed && s->ops == 0 && !s->dead_queued)
		sock_dead(s);
}

/* n buffers came back: re-arm that many starved sockets, oldest first.
 * Re-arming all of them would have most fail again at once (a storm of
 * -ENOBUFS completions under memory pressure). */
static void rearm_starved(struct weir_reactor *r, unsigned n)
{
	while (n-- != 0 && r->starved != NULL) {
		struct weir_sock *s = r->starved;

		r->starved = s->starved_next;
		if (r->starved == NULL)
			r->starved_tail = &r->starved;
		s->starved = false;
		s->starved_next = NULL;
		weir__sock_arm_recv(s);
	}
}

static void run(struct weir_reactor *r)
{
	struct __kernel_timespec ts;

	while (!r->done) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0, back;
		int64_t tmo;
		int ret;

		back = weir_bufpool_flush(&r->pool);
		if (back != 0 && r->starved != NULL)
			rearm_starved(r, back);
		tmo = weir_wheel_timeout(&r->wheel);
		if (r->nshm != 0 && weir__agents_shm_sleep(r)) {
			/* records arrived in a ring while we were busy: no sleep */
			ret = io_uring_submit(&r->ring);
		} else if (tmo >= 0) {
			ts.tv_sec = tmo / 1000;
			ts.tv_nsec = (tmo % 1000) * 1000000;
			ret = io_uring_submit_and_wait_timeout(&r->ring, &cqe, 1, &ts, NULL);
		} else {
			ret = io_uring_submit_and_wait_timeout(&r->ring, &cqe, 1, NULL, NULL);
		}
		count_submit(r, ret);
		if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
			fprintf(stderr, "weir: reactor %u: io_uring_enter: %s\n", r->id,
				strerror(-ret));
			break;
		}
		r->now_ns = weir_metrics_now_ns();
		r->wheel.now = r->now_ns / 1000000u;
		io_uring_for_each_cqe(&r->ring, head, cqe) {
			dispatch(r, cqe);
			n++;
		}
		io_uring_cq_advance(&r->ring, n);
		if (r->nshm != 0)
			weir__agents_shm_poll(r);
		r->stats.cqes += n;
		r->stats.loops++;
		loop_metrics(r, n);
		weir_wheel_advance(&r->wheel, weir_now_ms());
		if (r->agent_dirty != NULL)
			weir__agents_flush(r);
		if (r->stopping && r->nclients == 0 && !r->agents_stopped)
			weir__agents_stop(r);
		reap_dead(r);
		if (r->stopping && r->nsocks == 0 && !weir__alog_busy(r))
			r->done = true;
	}
}

int weir_listener_open(const struct weir_addr *a)
{
	int fd, one = 1;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Accepted sockets inherit TCP_NODELAY from the listener on Linux,
	 * which saves a setsockopt per connection. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
	    bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0 || listen(fd, 4096) != 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static int reactor_init(struct weir_reactor *r)
{
	int ret;

	weir_alloc_thread_init();
	r->alog.fd = r->alog.old_fd = -1;      /* a failed start must not close fd 0 */
	if (r->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(r->cpu, &set);
		ret = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
		if (ret != 0)
			return -ret;
	}
	ret = weir_uring_init(&r->ring, RING_ENTRIES, &r->caps);
	if (ret < 0)
		return ret;
	ret = weir_bufpool_init(&r->pool, &r->ring, POOL_BGID, POOL_BUFS, POOL_BUFSZ);
	if (ret < 0)
		goto fail_ring;
	r->now_ns = weir_metrics_now_ns();
	weir_wheel_init(&r->wheel, r->now_ns / 1000000u);
	r->starved_tail = &r->starved;
	r->next_bgid = POOL_BGID + 1;
	ret = weir__agents_init(r);
	if (ret < 0)
		goto fail_pool;
	ret = weir__rgen_start(r, r->gen);
	if (ret < 0)
		goto fail_pool;
	r->gen = NULL;          /* the generation holds the reference now */
	ret = weir__alog_open(r);
	if (ret < 0)
		goto fail_pool;
	for (unsigned i = 0; i < r->nlisten; i++)
		arm_accept(r, r->listen_fds[i]);
	arm_wake(r);
	return 0;

fail_pool:
	weir__alog_fini(r);
	weir__rgen_fini(r);
	weir_bufpool_destroy(&r->pool, &r->ring);
	weir__agents_fini(r);           /* after the pool: it unmaps the shm arenas */
fail_ring:
	io_uring_queue_exit(&r->ring);
	return ret;
}

static void reactor_fini(struct weir_reactor *r)
{
	for (unsigned i = 0; i < r->nlisten; i++)
		if (r->listen_fds[i] >= 0)
			close(r->listen_fds[i]);
	weir__alog_fini(r);
	weir__rgen_fini(r);
	weir_bufpool_destroy(&r->pool, &r->ring);
	weir__agents_fini(r);          /* after the pool: it unmaps the shm arenas */
	io_uring_queue_exit(&r->ring);
}

/* Thread entry. The ring is created here, by the thread that will be its
 * only submitter (IORING_SETUP_SINGLE_ISSUER). */
void *weir_reactor_thread(void *arg)
{
	struct weir_reactor *r = arg;

	r->init_error = reactor_init(r);
	sem_post(r->ready);
	if (r->init_error != 0)
		return NULL;
	run(r);
	reactor_fini(r);
	return NULL;
}
