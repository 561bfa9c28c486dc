/* Agent connections: connect, handshake, frames in and out, ping, GOAWAY,
 * reconnect with back-off, circuit breaker. See weir/agents.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent-internal.h"
#include "weir/alloc.h"

#define CONNECT_TIMEOUT_MS 1000u
#define HELLO_TIMEOUT_MS 1000u
#define BACKOFF_MIN_MS 50u
#define RBUF_INIT (64u * 1024u)
#define BREAKER_TIMEOUTS 5u
#define BREAKER_OPEN_MS 1000u

static void link_schedule(struct weir_agent_link *l);

void weir__agent_log(const struct weir_agent_rt *rt, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "weir: reactor %u: agent %s: %s\n", rt->r->id, rt->conf->name, msg);
}

/* ---- ids ---------------------------------------------------------------- */

int weir__ac_open_id(struct weir_agentconn *ac, struct weir_aitem *it)
{
	uint32_t i = ac->free_head;
	struct weir_aslot *sl;

	if (i == UINT32_MAX)
		return -1;
	sl = &ac->slots[i];
	ac->free_head = sl->next_free;
	sl->it = it;
	sl->gen++;
	it->conn = ac;
	it->slot = i;
	it->id = (uint64_t)sl->gen << 32 | i;
	it->open = true;
	it->t0_ns = weir__now_ns(ac->s.r);
	ac->nopen++;
	weir_metrics_agent_call(&ac->s.r->metrics, ac->rt->mslot);
	return 0;
}

void weir__ac_close_id(struct weir_aitem *it)
{
	struct weir_agentconn *ac = it->conn;
	struct weir_aslot *sl;

	if (!it->open)
		return;
	sl = &ac->slots[it->slot];
	WEIR_BUG_ON(sl->it != it);
	sl->it = NULL;
	sl->next_free = ac->free_head;
	ac->free_head = it->slot;
	ac->nopen--;
	weir_metrics_agent_done(&ac->s.r->metrics, ac->rt->mslot);
	it->open = false;
	it->conn = NULL;
	if (ac->state == WEIR_AC_DRAINING && ac->nopen == 0)
		weir__ac_fail(ac, NULL);
}

/* The item an agent's frame names: 1 live (in *out), 0 closed earlier
 * (ignore), -1 never issued (protocol error). */
static int lookup_id(struct weir_agentconn *ac, uint64_t id, struct weir_aitem **out)
{
	uint32_t slot = (uint32_t)id, gen = (uint32_t)(id >> 32);
	struct weir_aslot *sl;

	if (slot >= ac->nslots || gen == 0)
		return -1;
	sl = &ac->slots[slot];
	if (gen > sl->gen)
		return -1;
	if (gen < sl->gen || sl->it == NULL)
		return 0;
	*out = sl->it;
	return 1;
}

/* ---- sending ------------------------------------------------------------ */

int weir__ac_send(struct weir_agentconn *ac, char *frame, uint32_t len)
{
	if (frame == NULL)
		return -1;
	if (ac->shm_on) {
		/* takes the frame in every case; a failure fails the
		 * connection at the next ring poll */
		weir__shm_send(ac, frame, len);
		return 0;
	}
	if (ac->s.closed) {
		weir_free(frame);
		return -1;
	}
	if (weir_outq_push_owned(&ac->s.out, frame, frame, len) != 0)
		return -1;      /* it freed the frame */
	weir__ac_mark(ac);
	return 0;
}

void weir__ac_wake_writers(struct weir_agentconn *ac)
{
	ac->want_writers = false;
	for (uint32_t i = 0; i < ac->nslots && !ac->s.closed; i++) {
		struct weir_aitem *it = ac->slots[i].it;

		if (it != NULL)
			weir__item_writable(it);
	}
}

void weir__ac_mark(struct weir_agentconn *ac)
{
	struct weir_reactor *r = ac->s.r;

	if (ac->dirty || (ac->s.sending && !ac->shm_on))
		return;         /* a send in flight: its completion sends the rest */
	ac->dirty = true;
	ac->dirty_next = r->agent_dirty;
	r->agent_dirty = ac;
}

void weir__agents_flush(struct weir_reactor *r)
{
	struct weir_agentconn *ac = r->agent_dirty;

	r->agent_dirty = NULL;
	while (ac != NULL) {
		struct weir_agentconn *next = ac->dirty_next;

		ac->dirty = false;
		ac->dirty_next = NULL;
		if (ac->shm_on)
			weir__shm_flush(ac);
		else
			weir__sock_flush(&ac->s);
		ac = next;
	}
}

/* ---- choosing a connection ---------------------------------------------- */

struct weir_agentconn *weir__agent_pick(struct weir_agent_rt *rt, bool *probe)
{
	uint64_t now = weir__now(rt->r);

	*probe = false;
	if (rt->breaker == WEIR_BREAKER_OPEN) {
		if (now < rt->breaker_until)
			return NULL;
		rt->breaker = WEIR_BREAKER_HALF_OPEN;
		rt->probing = false;
	}
	if (rt->breaker == WEIR_BREAKER_HALF_OPEN) {
		if (rt->probing)
			return NULL;
		*probe = true;
	}
	for (unsigned k = 0; k < rt->nlinks; k++) {
		struct weir_agent_link *l = &rt->links[rt->rr++ % rt->nlinks];
		struct weir_agentconn *ac = l->conn;

		if (ac != NULL && ac->state == WEIR_AC_READY && ac->free_head != UINT32_MAX) {
			if (*probe)
				rt->probing = true;
			return ac;
		}
	}
	return NULL;
}

/* Links up and breaker state, for /metrics and /health. */
void weir__agent_report(struct weir_agent_rt *rt)
{
	unsigned up = 0, shm = 0;

	for (unsigned j = 0; j < rt->nlinks; j++)
		if (rt->links[j].conn != NULL && rt->links[j].conn->state >= WEIR_AC_READY) {
			up++;
			shm += rt->links[j].conn->shm_on;
		}
	weir_metrics_agent_state(&rt->r->metrics, rt->mslot, up, shm,
				 rt->breaker != WEIR_BREAKER_CLOSED);
}

void weir__agent_verdict_seen(struct weir_agent_rt *rt, bool probe)
{
	rt->consec_timeouts = 0;
	if (probe || rt->breaker == WEIR_BREAKER_HALF_OPEN) {
		if (rt->breaker != WEIR_BREAKER_CLOSED)
			weir__agent_log(rt, "circuit breaker closed");
		rt->breaker = WEIR_BREAKER_CLOSED;
		rt->probing = false;
		weir__agent_report(rt);
	}
}

void weir__agent_timeout_seen(struct weir_agent_rt *rt, bool probe)
{
	rt->consec_timeouts++;
	weir_metrics_agent_timeout(&rt->r->metrics, rt->mslot);
	if (probe || (rt->breaker == WEIR_BREAKER_CLOSED &&
		      rt->consec_timeouts >= BREAKER_TIMEOUTS)) {
		if (rt->breaker == WEIR_BREAKER_CLOSED)
			weir__agent_log(rt, "%u consecutive timeouts: circuit breaker open",
					rt->consec_timeouts);
		rt->breaker = WEIR_BREAKER_OPEN;
		rt->probing = false;
		rt->breaker_until = weir__now(rt->r) + BREAKER_OPEN_MS;
		weir__agent_report(rt);
	}
}

/* ---- connection life ---------------------------------------------------- */

static void ac_timer(struct weir_timer *t);

static void arm_recv(struct weir_agentconn *ac)
{
	struct io_uring_sqe *sqe;

	if (ac->s.closed || ac->recv_posted)
		return;
	if (ac->rcap - ac->rlen < 4096 && ac->rcap < ac->rmax) {
		uint32_t ncap = WEIR_MIN(ac->rcap * 2, ac->rmax);
		char *nb = weir_realloc(ac->rbuf, ncap);

		if (nb == NULL) {
			weir__ac_fail(ac, "out of memory");
			return;
		}
		ac->rbuf = nb;
		ac->rcap = ncap;
	}
	sqe = weir__sqe(ac->s.r);
	io_uring_prep_recv(sqe, ac->s.fd, ac->rbuf + ac->rlen, ac->rcap - ac->rlen, 0);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)&ac->s | WEIR_OP_ARECV);
	ac->recv_posted = true;
	ac->s.ops++;
}

static void link_connect(struct weir_agent_link *l)
{
	struct weir_agent_rt *rt = l->rt;
	struct weir_reactor *r = rt->r;
	const struct weir_addr *a = &rt->conf->addr;
	struct weir_agentconn *ac;
	struct io_uring_sqe *sqe;
	int fd;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		link_schedule(l);
		return;
	}
	ac = weir_calloc(1, sizeof(*ac));
	if (ac == NULL) {
		close(fd);
		link_schedule(l);
		return;
	}
	weir__sock_init(r, &ac->s, fd, WEIR_SOCK_AGENT, ac_timer);
	ac->link = l;
	ac->rt = rt;
	ac->state = WEIR_AC_CONNECTING;
	ac->free_head = UINT32_MAX;
	ac->rmax = WEIR_AGENT_MAX_FRAME_DEFAULT + 4096;
	l->conn = ac;
	sqe = weir__sqe(r);
	io_uring_prep_connect(sqe, fd, (const struct sockaddr *)&a->ss, a->len);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)&ac->s | WEIR_OP_CONNECT);
	ac->s.ops++;
	weir_timer_arm(&r->wheel, &ac->s.timer, weir__now(r) + CONNECT_TIMEOUT_MS);
}

static void link_timer(struct weir_timer *t)
{
	struct weir_agent_link *l = weir_container_of(t, struct weir_agent_link, timer);

	if (l->conn == NULL && !l->rt->stopped)
		link_connect(l);
}

static void link_schedule(struct weir_agent_link *l)
{
	struct weir_reactor *r = l->rt->r;

	if (l->rt->stopped)
		return;
	weir_timer_arm(&r->wheel, &l->timer, weir__now(r) + l->backoff_ms);
	l->backoff_ms = WEIR_MIN(l->backoff_ms * 2, WEIR_MAX(l->rt->conf->reconnect_max_ms,
							     BACKOFF_MIN_MS));
}

/* Closes the connection: every request it held gets the failure outcome,
 * and its link reconnects. why == NULL: a clean close (drained GOAWAY). */
void weir__ac_fail(struct weir_agentconn *ac, const char *why)
{
	struct weir_agent_link *l = ac->link;
	struct weir_agent_rt *rt = ac->rt;

	if (ac->s.closed)
		return;
	if (why != NULL) {
		/* Log each outage once, not every reconnect attempt. */
		if (l == NULL || !l->down_logged)
			weir__agent_log(rt, "%s: %s%s", rt->conf->addr.text, why,
					ac->state >= WEIR_AC_READY ? "" : " (retrying)");
		if (l != NULL)
			l->down_logged = true;
	}
	weir__sock_close(&ac->s);
	weir__shm_detach(ac);
	if (l != NULL) {
		if (ac->state >= WEIR_AC_READY)
			l->was_up = false;
		l->conn = NULL;
		ac->link = NULL;
		if (why == NULL)
			l->backoff_ms = BACKOFF_MIN_MS;
		link_schedule(l);
		weir__agent_report(rt);
	}
	/* Requests still open on it: the failure outcome. Each call may end
	 * exchanges and close other ids of this connection. */
	for (uint32_t i = 0; i < ac->nslots; i++) {
		struct weir_aitem *it = ac->slots[i].it;

		if (it != NULL)
			weir__item_fail(it, 503, 0);
	}
}

void weir__agentconn_on_connect(struct weir_sock *s, int res)
{
	struct weir_agentconn *ac = weir_container_of(s, struct weir_agentconn, s);
	struct weir_reactor *r = s->r;
	char *hello;
	uint32_t len;

	if (res < 0) {
		char why[96];

		snprintf(why, sizeof(why), "connect: %s", strerror(-res));
		weir__ac_fail(ac, why);
		return;
	}
	ac->state = WEIR_AC_HELLO;
	ac->rbuf = weir_malloc(RBUF_INIT);
	if (ac->rbuf == NULL) {
		weir__ac_fail(ac, "out of memory");
		return;
	}
	ac->rcap = RBUF_INIT;
	hello = weir_agent_enc_hello(ac->rt->conf->name, r->id,
				     ac->rt->conf->events ? ac->rt->conf->events : WEIR_AGENT_EV_ALL,
				     WEIR_AGENT_CAP_CREDIT |
					     (ac->rt->conf->shm && !ac->rt->arena.failed ? WEIR_AGENT_CAP_SHM
											 : 0),
				     &len);
	if (weir__ac_send(ac, hello, len) != 0) {
		weir__ac_fail(ac, "out of memory");
		return;
	}
	arm_recv(ac);
	weir_timer_arm(&r->wheel, &ac->s.timer, weir__now(r) + HELLO_TIMEOUT_MS);
}

static uint32_t ping_wait_ms(const struct weir_agent_rt *rt)
{
	return WEIR_MAX(rt->conf->timeout_ms * 10u, 1000u);
}

static void ac_timer(struct weir_timer *t)
{
	struct weir_agentconn *ac = weir_container_of(t, struct weir_agentconn, s.timer);
	struct weir_reactor *r = ac->s.r;
	const struct weir_conf_agent *ca = ac->rt->conf;
	uint64_t now = weir__now(r);

	switch (ac->state) {
	case WEIR_AC_CONNECTING:
		weir__ac_fail(ac, "connect timed out");
		return;
	case WEIR_AC_HELLO:
		weir__ac_fail(ac, "no HELLO_REPLY within 1s");
		return;
	case WEIR_AC_SHM_WAIT:
		weir__ac_fail(ac, "no SHM_READY within 1s");
		return;
	default:
		break;
	}
	if (ac->ping_out) {
		weir__ac_fail(ac, "no PONG");
		return;
	}
	if (now >= ac->last_rx + ca->ping_interval_ms) {
		uint32_t len;
		char *f = weir_agent_enc_ping(++ac->ping_nonce, &len);

		if (weir__ac_send(ac, f, len) != 0) {
			weir__ac_fail(ac, "out of memory");
			return;
		}
		ac->ping_out = true;
		weir_timer_arm(&r->wheel, &ac->s.timer, now + ping_wait_ms(ac->rt));
		return;
	}
	weir_timer_arm(&r->wheel, &ac->s.timer, ac->last_rx + ca->ping_interval_ms);
}

static int on_ready(struct weir_agentconn *ac);

static int on_shm_ready(struct weir_agentconn *ac, const struct weir_agent_frame *f)
{
	uint64_t status;
	const char *why;

	if (f->type != WEIR_AGENT_SHM_READY || f->id != 0) {
		weir__ac_fail(ac, "SHM_SETUP answered by something else than SHM_READY");
		return -1;
	}
	if (weir_agent_decode_shm_ready(f->payload, f->payload_len, &status, &why) != 0) {
		weir__ac_fail(ac, why);
		return -1;
	}
	weir__shm_ready(ac, status);
	return on_ready(ac);
}

static int on_hello_reply(struct weir_agentconn *ac, const struct weir_agent_frame *f)
{
	struct weir_agent_rt *rt = ac->rt;
	const struct weir_conf_agent *ca = rt->conf;
	struct weir_reactor *r = ac->s.r;
	struct weir_agent_hello_reply h;
	const char *why;
	uint32_t n;

	if (f->type != WEIR_AGENT_HELLO_REPLY || f->id != 0) {
		weir__ac_fail(ac, "first frame is not HELLO_REPLY");
		return -1;
	}
	if (weir_agent_decode_hello_reply(f->payload, f->payload_len, &h, &why) != 0) {
		weir__ac_fail(ac, why);
		return -1;
	}
	n = ca->max_in_flight;
	if (h.max_in_flight != 0)
		n = WEIR_MIN(n, h.max_in_flight);
	ac->slots = weir_calloc(n, sizeof(*ac->slots));
	if (ac->slots == NULL) {
		weir__ac_fail(ac, "out of memory");
		return -1;
	}
	ac->nslots = n;
	for (uint32_t i = 0; i < n; i++)
		ac->slots[i].next_free = i + 1 < n ? i + 1 : UINT32_MAX;
	ac->free_head = 0;
	ac->max_frame = h.max_frame;
	ac->events = h.events;
	if (ca->events != 0)
		ac->events &= ca->events;
	if (ac->events & WEIR_AGENT_EV_RESPONSE_BODY)
		ac->events |= WEIR_AGENT_EV_RESPONSE_HEADERS;
	ac->caps = h.caps & (WEIR_AGENT_CAP_CREDIT | (ca->shm ? WEIR_AGENT_CAP_SHM : 0));
	ac->window = (ac->caps & WEIR_AGENT_CAP_CREDIT) && h.body_window != 0 ? h.body_window
									     : UINT64_MAX;
	ac->state = WEIR_AC_READY;
	if ((ac->caps & WEIR_AGENT_CAP_SHM) && weir__shm_offer(ac) == 0) {
		/* SHM_SETUP sent: READY once SHM_READY says how it went */
		weir_timer_arm(&r->wheel, &ac->s.timer, weir__now(r) + HELLO_TIMEOUT_MS);
		return 0;
	}
	return on_ready(ac);
}

static int on_ready(struct weir_agentconn *ac)
{
	struct weir_agent_rt *rt = ac->rt;
	const struct weir_conf_agent *ca = rt->conf;
	struct weir_reactor *r = ac->s.r;

	ac->state = WEIR_AC_READY;
	if (ac->link != NULL) {
		if (!ac->link->was_up)
			weir__agent_log(rt, "connected to %s (events 0x%x, %u in flight%s%s)",
					ca->addr.text, ac->events, ac->nslots,
					ac->window != UINT64_MAX ? ", credit" : "",
					ac->shm_on ? ", shared memory" : "");
		ac->link->was_up = true;
		ac->link->down_logged = false;
		ac->link->backoff_ms = BACKOFF_MIN_MS;
	}
	/* a fresh connection is a fresh chance */
	if (rt->breaker != WEIR_BREAKER_CLOSED) {
		rt->breaker = WEIR_BREAKER_CLOSED;
		rt->probing = false;
		rt->consec_timeouts = 0;
	}
	weir_timer_arm(&r->wheel, &ac->s.timer, weir__now(r) + ca->ping_interval_ms);
	weir__agent_report(rt);
	return 0;
}

/* One frame from a READY or DRAINING connection. -1: the connection is gone. */
int weir__ac_on_frame(struct weir_agentconn *ac, const struct weir_agent_frame *f)
{
	struct weir_aitem *it = NULL;
	const char *why;
	int k;

	switch (f->type) {
	case WEIR_AGENT_PONG:
		if (weir_agent_check_map(f->payload, f->payload_len, &why) != 0) {
			weir__ac_fail(ac, why);
			return -1;
		}
		if (f->id == ac->ping_nonce)
			ac->ping_out = false;
		return 0;
	case WEIR_AGENT_GOAWAY:
		if (weir_agent_check_map(f->payload, f->payload_len, &why) != 0) {
			weir__ac_fail(ac, why);
			return -1;
		}
		weir__agent_log(ac->rt, "GOAWAY received: draining %u request%s", ac->nopen,
				ac->nopen == 1 ? "" : "s");
		ac->state = WEIR_AC_DRAINING;
		if (ac->link != NULL) {
			struct weir_agent_link *l = ac->link;

			l->conn = NULL;
			ac->link = NULL;
			l->backoff_ms = BACKOFF_MIN_MS;
			link_schedule(l);
		}
		if (ac->nopen == 0) {
			weir__ac_fail(ac, NULL);
			return -1;
		}
		return 0;
	case WEIR_AGENT_VERDICT:
	case WEIR_AGENT_NEED_MORE:
	case WEIR_AGENT_CREDIT:
		break;
	default:
		weir__ac_fail(ac, "unexpected message type");
		return -1;
	}
	k = lookup_id(ac, f->id, &it);
	if (k < 0) {
		weir__ac_fail(ac, "frame for a request id weir never opened");
		return -1;
	}
	if (f->type == WEIR_AGENT_VERDICT) {
		struct weir_agent_verdict *v = ac->s.r->verdict;

		if (weir_agent_decode_verdict(f->payload, f->payload_len, v, &why) != 0) {
			weir__ac_fail(ac, why);
			return -1;
		}
		if (k > 0)
			weir__item_verdict(it, v);
		return 0;
	}
	if (f->type == WEIR_AGENT_CREDIT) {
		uint64_t bytes;

		if (weir_agent_decode_credit(f->payload, f->payload_len, &bytes, &why) != 0) {
			weir__ac_fail(ac, why);
			return -1;
		}
		if (k > 0)
			weir__item_credit(it, bytes);
		return 0;
	}
	if (weir_agent_check_map(f->payload, f->payload_len, &why) != 0) {
		weir__ac_fail(ac, why);
		return -1;
	}
	if (k > 0)
		weir__item_need_more(it);
	return 0;
}

void weir__agentconn_on_recv(struct weir_sock *s, int res)
{
	struct weir_agentconn *ac = weir_container_of(s, struct weir_agentconn, s);
	uint32_t pos = 0;

	ac->recv_posted = false;
	if (s->closed)
		return;
	if (res <= 0) {
		char why[96];

		if (res == 0)
			snprintf(why, sizeof(why), "closed by the agent%s",
				 ac->rlen != 0 ? " in the middle of a frame" : "");
		else
			snprintf(why, sizeof(why), "recv: %s", strerror(-res));
		weir__ac_fail(ac, why);
		return;
	}
	ac->rlen += (uint32_t)res;
	ac->last_rx = weir__now(s->r);
	while (!s->closed) {
		struct weir_agent_frame f;
		uint32_t need;
		int ret = weir_agent_frame_parse(ac->rbuf + pos, ac->rlen - pos, WEIR_AGENT_MAX_FRAME_DEFAULT,
						 &f, &need);

		if (ret == WEIR_H1_NEED_MORE)
			break;
		if (ret < 0) {
			weir__ac_fail(ac, "invalid frame length (below 12 or over the 256 KiB limit)");
			return;
		}
		pos += f.size;
		if (ac->state == WEIR_AC_HELLO) {
			if (on_hello_reply(ac, &f) != 0)
				return;
			continue;
		}
		if (ac->state == WEIR_AC_SHM_WAIT) {
			if (on_shm_ready(ac, &f) != 0)
				return;
			continue;
		}
		if (ac->shm_on) {
			/* after SHM_READY every frame travels in the rings */
			weir__ac_fail(ac, "a frame on the socket in shared-memory mode");
			return;
		}
		if (weir__ac_on_frame(ac, &f) != 0)
			return;
	}
	if (s->closed)
		return;
	if (pos != 0) {
		memmove(ac->rbuf, ac->rbuf + pos, ac->rlen - pos);
		ac->rlen -= pos;
	}
	arm_recv(ac);
}

void weir__agentconn_on_send(struct weir_sock *s, int res)
{
	struct weir_agentconn *ac = weir_container_of(s, struct weir_agentconn, s);

	if (res < 0) {
		char why[96];

		snprintf(why, sizeof(why), "send: %s", strerror(-res));
		weir__ac_fail(ac, why);
		return;
	}
	weir_outq_consume(&s->out, &s->r->pool, (size_t)res);
	weir__sock_flush(s);
	if (ac->want_writers && weir_outq_drained(&s->out))
		weir__ac_wake_writers(ac);
}

void weir__agentconn_free(struct weir_sock *s)
{
	struct weir_agentconn *ac = weir_container_of(s, struct weir_agentconn, s);

	weir__shm_detach(ac);
	weir_free(ac->rbuf);
	weir_free(ac->slots);
	weir_free(ac);
}

/* ---- runtimes: start, reload, stop -------------------------------------- */

int weir__agents_init(struct weir_reactor *r)
{
	r->verdict = weir_malloc(sizeof(*r->verdict));
	return r->verdict != NULL ? 0 : -ENOMEM;
}

struct weir_agent_rt *weir__agent_rt_new(struct weir_reactor *r, const struct weir_conf_agent *ca)
{
	struct weir_agent_rt *rt = weir_calloc(1, sizeof(*rt));

	if (rt == NULL)
		return NULL;
	rt->conf = ca;
	rt->r = r;
	rt->mslot = (uint16_t)weir_metrics_slot(WEIR_MK_AGENT, 0, ca->name);
	rt->nlinks = ca->connections;
	rt->rr = r->id;
	rt->links = weir_calloc(rt->nlinks, sizeof(*rt->links));
	if (rt->links == NULL) {
		weir_free(rt);
		return NULL;
	}
	rt->all_next = r->agents_all;
	if (r->agents_all != NULL)
		r->agents_all->all_prev = rt;
	r->agents_all = rt;
	for (unsigned j = 0; j < rt->nlinks; j++) {
		struct weir_agent_link *l = &rt->links[j];

		l->rt = rt;
		l->backoff_ms = BACKOFF_MIN_MS;
		weir_timer_init(&l->timer, link_timer);
		link_connect(l);
	}
	weir__agent_report(rt);
	return rt;
}

bool weir__agent_rt_keeps(const struct weir_conf_agent *old, const struct weir_conf_agent *ca)
{
	return strcmp(old->name, ca->name) == 0 && weir_addr_eq(&old->addr, &ca->addr) &&
	       old->connections == ca->connections && old->events == ca->events &&
	       old->max_in_flight == ca->max_in_flight && old->shm == ca->shm;
}

static void rt_stop(struct weir_agent_rt *rt)
{
	struct weir_reactor *r = rt->r;

	if (rt->stopped)
		return;
	rt->stopped = true;
	for (unsigned j = 0; j < rt->nlinks; j++) {
		struct weir_agent_link *l = &rt->links[j];

		weir_timer_cancel(&r->wheel, &l->timer);
		if (l->conn != NULL) {
			struct weir_agentconn *ac = l->conn;

			l->conn = NULL;
			ac->link = NULL;
			weir__sock_close(&ac->s);
			weir__shm_detach(ac);
		}
	}
}

static void rt_free(struct weir_agent_rt *rt)
{
	struct weir_reactor *r = rt->r;

	if (rt->all_prev != NULL)
		rt->all_prev->all_next = rt->all_next;
	else
		r->agents_all = rt->all_next;
	if (rt->all_next != NULL)
		rt->all_next->all_prev = rt->all_prev;
	weir__shm_arena_fini(rt);
	weir_free(rt->links);
	weir_free(rt);
}

/* No generation uses rt any more, so no request does either: its
 * connections close (their completions only check `closed`, never the
 * runtime) and it is freed, unless it has an shm arena: pool buffers of the
 * arena may still be queued elsewhere, so it stays (stopped) until the
 * reactor ends and the pool is gone. */
void weir__agent_rt_retire(struct weir_agent_rt *rt)
{
	struct weir_reactor *r = rt->r;

	weir_metrics_agent_state(&r->metrics, rt->mslot, 0, 0, false);
	rt_stop(rt);
	if (rt->arena.mem == NULL)
		rt_free(rt);
}

void weir__agents_stop(struct weir_reactor *r)
{
	if (r->agents_stopped)
		return;
	r->agents_stopped = true;
	for (struct weir_agent_rt *rt = r->agents_all; rt != NULL; rt = rt->all_next)
		rt_stop(rt);
}

void weir__agents_fini(struct weir_reactor *r)
{
	while (r->agents_all != NULL)
		rt_free(r->agents_all);
	weir_free(r->verdict);
	r->verdict = NULL;
}
