/* Upstream connections: per-reactor keep-alive pools, round robin, connect,
 * response parsing and streaming back to the client. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "weir/alloc.h"
#include "weir/proxy.h"
#include "weir/trace.h"

#define UPSTREAM_IDLE_MS 60000u
#define UPSTREAM_MAX_INTERIM 16u       /* 1xx responses before the final one */

static inline struct weir_reactor *R(struct weir_upconn *u)
{
	return u->s.r;
}

static const struct weir_conf_upstream *conf_of(struct weir_upconn *u)
{
	return u->st->conf;
}

static struct weir_server_pool *pool_of(struct weir_upconn *u)
{
	return &u->st->servers[u->srv];
}

static void pool_remove(struct weir_upconn *u)
{
	struct weir_server_pool *p = pool_of(u);

	if (u->state != WEIR_U_IDLE)
		return;
	if (u->prev != NULL)
		u->prev->next = u->next;
	else
		p->idle = u->next;
	if (u->next != NULL)
		u->next->prev = u->prev;
	u->next = u->prev = NULL;
	p->nidle--;
	u->state = WEIR_U_ACTIVE;
}

static void up_close(struct weir_upconn *u)
{
	pool_remove(u);
	weir__sock_close(&u->s);
}

static void update_timer(struct weir_upconn *u)
{
	const struct weir_conf_upstream *cu = conf_of(u);
	struct weir_reactor *r = R(u);
	uint64_t now = weir__now(r);

	switch (u->state) {
	case WEIR_U_CONNECTING:
		weir_timer_arm(&r->wheel, &u->s.timer, u->deadline_connect);
		break;
	case WEIR_U_ACTIVE:
		if (u->s.out.bytes != 0)
			weir_timer_arm(&r->wheel, &u->s.timer, now + cu->send_timeout_ms);
		else if (u->c != NULL && u->c->req_done)
			weir_timer_arm(&r->wheel, &u->s.timer, now + cu->read_timeout_ms);
		else
			/* waiting for the client's body: its timeout governs */
			weir_timer_cancel(&r->wheel, &u->s.timer);
		break;
	case WEIR_U_IDLE:
		weir_timer_arm(&r->wheel, &u->s.timer, now + UPSTREAM_IDLE_MS);
		break;
	}
}

/* The exchange on u failed. retry_ok: nothing of a response arrived, so an
 * idempotent request may go again. */
static void up_fail(struct weir_upconn *u, int status, bool retry_ok)
{
	struct weir_client *c = u->c;

	u->c = NULL;
	retry_ok = retry_ok && !u->got_bytes;
	up_close(u);
	if (c != NULL) {
		if (u->resp_head_done)
			weir__client_upstream_failed(c, status, false);
		else
			weir__client_upstream_failed(c, status, retry_ok);
	}
}

static void fail_metric(struct weir_upconn *u, enum weir_upstream_failure why)
{
	if (why == WEIR_UPF_RESET || why == WEIR_UPF_SEND)
		if (u->reused && !u->got_bytes)
			why = WEIR_UPF_STALE;   /* the keep-alive race, not a dead server */
	weir_metrics_upstream_failure(&R(u)->metrics, u->st->mslot, u->st->srv_mslot[u->srv], why,
				      weir__now(R(u)));
}

static void up_timer(struct weir_timer *t)
{
	struct weir_upconn *u = weir_container_of(t, struct weir_upconn, s.timer);

	if (u->state == WEIR_U_IDLE || u->c == NULL) {
		up_close(u);
		return;
	}
	fail_metric(u, u->state == WEIR_U_CONNECTING ? WEIR_UPF_CONNECT_TIMEOUT : WEIR_UPF_TIMEOUT);
	up_fail(u, 504, false);
}

static void reset_exchange(struct weir_upconn *u)
{
	u->got_bytes = false;
	u->resp_head_done = false;
	u->reusable = false;
	u->n_interim = 0;
	u->resp_body = WEIR_H1_BODY_NONE;
	u->resp_remaining = 0;
	weir_chunked_init(&u->resp_chunk);
}

struct weir_upconn *weir__upstream_acquire(struct weir_reactor *r,
					   struct weir_upstream_state *st)
{
	const struct weir_conf_upstream *up = st->conf;
	unsigned srv = st->rr++ % up->nservers;
	struct weir_server_pool *pool = &st->servers[srv];
	const struct weir_addr *a = &up->servers[srv];
	struct io_uring_sqe *sqe;
	struct weir_upconn *u;
	int fd, one = 1;

	if (pool->idle != NULL) {
		u = pool->idle;
		pool_remove(u);
		u->reused = true;
		u->t_ns = weir__now_ns(R(u));
		reset_exchange(u);
		r->stats.upstream_reused++;
		weir__sock_resume(&u->s);
		return u;
	}
	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return NULL;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	u = weir_calloc(1, sizeof(*u));
	if (u == NULL) {
		close(fd);
		return NULL;
	}
	weir__sock_init(r, &u->s, fd, WEIR_SOCK_UPSTREAM, up_timer);
	u->st = st;
	st->conns++;
	u->srv = (uint16_t)srv;
	u->state = WEIR_U_CONNECTING;
	u->t_ns = weir__now_ns(R(u));
	reset_exchange(u);
	r->stats.upstream_connects++;
	WEIR_TRACE2(upstream_connect, u, fd);
	sqe = weir__sqe(r);
	io_uring_prep_connect(sqe, fd, (const struct sockaddr *)&a->ss, a->len);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)&u->s | WEIR_OP_CONNECT);
	u->s.ops++;
	u->deadline_connect = weir__now(r) + up->connect_timeout_ms;
	update_timer(u);
	return u;
}

void weir__upstream_kick(struct weir_upconn *u)
{
	if (u->state != WEIR_U_ACTIVE || u->s.closed)
		return;
	weir__sock_flush(&u->s);
	update_timer(u);
}

void weir__upstream_on_connect(struct weir_upconn *u, int res)
{
	WEIR_TRACE2(upstream_connected, u, res);
	/* /health: a completed connect tells whether the server takes
	 * connections (weir's own connect_timeout is counted in up_timer) */
	if (res == 0)
		weir_metrics_server_ok(&R(u)->metrics, u->st->srv_mslot[u->srv], weir__now(R(u)));
	else
		fail_metric(u, res == -ETIMEDOUT ? WEIR_UPF_CONNECT_TIMEOUT : WEIR_UPF_CONNECT);
	if (res < 0) {
		up_fail(u, res == -ETIMEDOUT ? 504 : 502, true);
		return;
	}
	u->state = WEIR_U_ACTIVE;
	weir_metrics_upstream_connect(&R(u)->metrics, u->st->mslot, weir__now_ns(R(u)) - u->t_ns);
	weir__sock_arm_recv(&u->s);
	weir__upstream_kick(u);
}

void weir__upstream_on_send(struct weir_upconn *u, int res)
{
	struct weir_client *c = u->c;

	if (res < 0) {
		fail_metric(u, WEIR_UPF_SEND);
		up_fail(u, 502, true);
		return;
	}
	weir_outq_consume(&u->s.out, &R(u)->pool, (size_t)res);
	if (c != NULL && !c->s.recv_want && weir_outq_drained(&u->s.out) &&
	    c->state == WEIR_C_BODY)
		/* bytes already queued on the client side move now */
		weir__client_resume_body(c);
	weir__upstream_kick(u);
}

/* The response is complete: u goes back to the pool or is closed, then the
 * client moves on. */
static void up_finish(struct weir_upconn *u)
{
	struct weir_reactor *r = R(u);
	struct weir_client *c = u->c;
	const struct weir_conf_upstream *cu = conf_of(u);
	struct weir_server_pool *pool = pool_of(u);
	bool keep = u->reusable && c != NULL && c->req_done && u->s.in.bytes == 0 &&
		    u->s.out.bytes == 0 && !r->stopping && pool->nidle < cu->keepalive &&
		    u->st->gens != 0;

	u->c = NULL;
	if (keep) {
		u->state = WEIR_U_IDLE;
		u->prev = NULL;
		u->next = pool->idle;
		if (u->next != NULL)
			u->next->prev = u;
		pool->idle = u;
		pool->nidle++;
		/* keep reading: an idle upstream that closes is noticed at once */
		weir__sock_resume(&u->s);
		weir__sock_arm_recv(&u->s);
		update_timer(u);
	} else {
		up_close(u);
	}
	if (c != NULL)
		weir__client_response_end(c);
}

static void up_abort(struct weir_upconn *u)
{
	struct weir_client *c = u->c;

	/* The response started and cannot be completed: the client connection
	 * is closed so that it sees a truncated message, never a wrong one. */
	u->c = NULL;
	up_close(u);
	if (c != NULL) {
		c->u = NULL;
		weir__client_abort(c, WEIR_AGENT_CANCEL_UPSTREAM);
	}
}

static void up_process(struct weir_upconn *u)
{
	struct weir_reactor *r = R(u);
	struct weir_client *c = u->c;
	struct weir_h1_response *res = &r->res;
	bool done = false;

	if (c == NULL) {
		up_close(u);
		return;
	}
	while (!u->resp_head_done) {
		const char *p;
		size_t n;
		int ret;

		/* Request verdicts still pending: the response waits unread
		 * (the engine resumes this connection). */
		if (c->ar != NULL && weir__agents_response_gate(c) == WEIR_AG_WAIT) {
			weir__sock_pause(&u->s);
			update_timer(u);
			return;
		}
		n = weir__head_view(&u->s, &p);
		if (n == 0)
			return;
		ret = weir_h1_parse_response(p, n, c->method == WEIR_M_HEAD, res);
		if (ret == WEIR_H1_NEED_MORE) {
			if (u->s.in.bytes >= WEIR_HEADBUF_MAX) {
				fail_metric(u, WEIR_UPF_PROTOCOL);
				up_fail(u, 502, false);
			}
			return;
		}
		if (ret < 0) {
			fail_metric(u, WEIR_UPF_PROTOCOL);
			up_fail(u, 502, false);
			return;
		}
		if (res->status < 200) {
			/* Interim responses are not forwarded: weir answers
			 * 100-continue itself, and there is no tunnelling. */
			if (res->status == 101 || ++u->n_interim > UPSTREAM_MAX_INTERIM) {
				/* no tunnelling; and an upstream that keeps
				 * sending interim responses (each resets the
				 * read timeout) does not hold the request */
				fail_metric(u, WEIR_UPF_PROTOCOL);
				up_fail(u, 502, false);
				return;
			}
			weir_inq_consume(&u->s.in, &r->pool, (size_t)ret);
			weir__head_reset(&u->s);
			continue;
		}
		if (c->ar != NULL) {
			/* Response agents decide before the head is sent. */
			int a = weir__agents_response_head(c, res);

			if (a == WEIR_AG_WAIT) {
				weir__sock_pause(&u->s);
				update_timer(u);
				return;
			}
			if (a == WEIR_AG_ANSWERED || u->s.closed)
				return;
		}
		u->resp_head_done = true;
		weir_metrics_upstream_response(&r->metrics, u->st->mslot, u->st->srv_mslot[u->srv],
					       weir__now_ns(R(u)) - u->t_ns, weir__now(r));
		u->resp_body = (uint8_t)res->body;
		u->resp_remaining = res->content_length;
		u->reusable = !(res->flags & WEIR_H1_F_CONN_CLOSE) &&
			      res->body != WEIR_H1_BODY_CLOSE;
		weir__client_response_head(c, res);
		weir_inq_consume(&u->s.in, &r->pool, (size_t)ret);
		weir__head_reset(&u->s);
		if (c->s.closed) {
			up_abort(u);
			return;
		}
		if (res->body == WEIR_H1_BODY_NONE || (res->body == WEIR_H1_BODY_LENGTH &&
						       res->content_length == 0))
			done = true;
	}
	while (!done && u->s.in.bytes != 0) {
		const char *p = NULL;
		uint16_t bid = 0;
		size_t len = weir_inq_peek(&u->s.in, &r->pool, &p, &bid);

		if (u->resp_body == WEIR_H1_BODY_LENGTH) {
			uint32_t take = (uint32_t)WEIR_MIN((uint64_t)len, u->resp_remaining);

			weir__client_response_data(c, p, take, bid);
			weir_inq_consume(&u->s.in, &r->pool, take);
			u->resp_remaining -= take;
			done = u->resp_remaining == 0;
		} else if (u->resp_body == WEIR_H1_BODY_CHUNKED) {
			weir_slice_t spans[16];
			size_t ns = WEIR_ARRAY_SIZE(spans);
			ssize_t n = weir_chunked_decode(&u->resp_chunk, p, len, spans, &ns);

			if (n < 0) {
				fail_metric(u, WEIR_UPF_PROTOCOL);
				up_abort(u);
				return;
			}
			weir__client_response_spans(c, spans, ns, bid);
			weir_inq_consume(&u->s.in, &r->pool, (size_t)n);
			done = u->resp_chunk.done;
		} else {
			weir__client_response_data(c, p, (uint32_t)len, bid);
			weir_inq_consume(&u->s.in, &r->pool, len);
		}
		if (c->s.closed) {
			up_abort(u);
			return;
		}
		if (weir_outq_full(&c->s.out)) {
			weir__sock_pause(&u->s);
			break;
		}
	}
	weir__sock_flush(&c->s);
	if (done)
		up_finish(u);
	else
		update_timer(u);
}

void weir__upstream_kick_recv(struct weir_upconn *u)
{
	if (u->state == WEIR_U_ACTIVE && !u->s.closed && u->s.in.bytes != 0)
		up_process(u);
}

void weir__upstream_on_recv(struct weir_upconn *u, int res)
{
	if (u->state == WEIR_U_IDLE) {
		/* EOF, error, or bytes nobody asked for: not reusable. */
		up_close(u);
		return;
	}
	if (res > 0) {
		u->got_bytes = true;
		up_process(u);
		return;
	}
	if (res == 0 && u->resp_head_done && u->resp_body == WEIR_H1_BODY_CLOSE) {
		/* close-delimited body: this is its end */
		u->reusable = false;
		up_finish(u);
		return;
	}
	fail_metric(u, WEIR_UPF_RESET);
	if (u->resp_head_done)
		up_abort(u);
	else
		up_fail(u, 502, true);
}

void weir__upstream_close_idle(struct weir_upstream_state *st)
{
	for (unsigned j = 0; j < st->conf->nservers; j++) {
		struct weir_server_pool *p = &st->servers[j];

		while (p->idle != NULL)
			up_close(p->idle);
	}
}

void weir__upstream_free(struct weir_upconn *u)
{
	struct weir_upstream_state *st = u->st;

	WEIR_BUG_ON(u->state == WEIR_U_IDLE);
	weir_free(u);
	if (st != NULL) {
		st->conns--;
		weir__upstream_state_put(st);
	}
}
