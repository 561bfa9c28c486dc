/* libweir-agent requests: the id table of a connection, the life cycle of
 * an id (docs/agent-protocol.md "Ending a request id"), event queues and
 * worker threads, and the calls an author makes on a request.
 *
 * Locking: a connection's mutex guards its id table, its open list, its
 * output and the state bits of its requests; a queue's mutex guards the
 * queue. Order: connection, then queue. Callbacks run with no lock held. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sdk-internal.h"

/* ---- the id table (open addressing, backward-shift deletion) ------------- */

static inline uint32_t id_hash(uint64_t id)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdull;
	id ^= id >> 33;
	return (uint32_t)id;
}

int weir__sdk_table_init(struct weir__sdk_conn *c, uint32_t max_in_flight)
{
	uint32_t n = 16;

	while (n < 2 * max_in_flight)
		n *= 2;
	c->tab = calloc(n, sizeof(*c->tab));
	if (c->tab == NULL)
		return -ENOMEM;
	c->tab_mask = n - 1;
	return 0;
}

static struct weir_agent_req *tab_find(const struct weir__sdk_conn *c, uint64_t id)
{
	for (uint32_t i = id_hash(id) & c->tab_mask;; i = (i + 1) & c->tab_mask) {
		struct weir_agent_req *r = c->tab[i];

		if (r == NULL || r->id == id)
			return r;
	}
}

static void tab_insert(struct weir__sdk_conn *c, struct weir_agent_req *req)
{
	uint32_t i = id_hash(req->id) & c->tab_mask;

	while (c->tab[i] != NULL)
		i = (i + 1) & c->tab_mask;
	c->tab[i] = req;
}

static void tab_remove(struct weir__sdk_conn *c, const struct weir_agent_req *req)
{
	uint32_t i = id_hash(req->id) & c->tab_mask, j;

	while (c->tab[i] != req)
		i = (i + 1) & c->tab_mask;
	c->tab[i] = NULL;
	/* pull later entries of the cluster back over the hole */
	for (j = (i + 1) & c->tab_mask; c->tab[j] != NULL; j = (j + 1) & c->tab_mask) {
		uint32_t home = id_hash(c->tab[j]->id) & c->tab_mask;

		if (((j - home) & c->tab_mask) >= ((j - i) & c->tab_mask)) {
			c->tab[i] = c->tab[j];
			c->tab[j] = NULL;
			i = j;
		}
	}
}

/* ---- references ------------------------------------------------------------ */

struct weir_agent_req *weir_agent_req_ref(struct weir_agent_req *req)
{
	atomic_fetch_add_explicit(&req->ref, 1, memory_order_relaxed);
	return req;
}

void weir_agent_req_unref(struct weir_agent_req *req)
{
	if (req == NULL || atomic_fetch_sub_explicit(&req->ref, 1, memory_order_acq_rel) != 1)
		return;
	free(atomic_load_explicit(&req->resp, memory_order_acquire));
	weir__sdk_conn_unref(req->c);
	free(req);
}

/* ---- queues and workers ------------------------------------------------------ */

void weir__sdk_wq_push(struct weir__sdk_wq *q, struct weir__sdk_ev *e)
{
	bool wake;

	e->next = NULL;
	pthread_mutex_lock(&q->mu);
	if (q->tail != NULL)
		q->tail->next = e;
	else
		q->head = e;
	q->tail = e;
	wake = q->sleeping;
	pthread_mutex_unlock(&q->mu);
	if (q->is_io) {
		if (!weir__sdk_on_io_thread(q->s))
			weir__sdk_wake(q->s);
	} else if (wake) {
		pthread_cond_signal(&q->cv);
	}
}

/* ---- closing ids --------------------------------------------------------------- */

/* Under c->mu: the id leaves the table; its `closed` callback is queued
 * behind its other events (the table's reference moves to that event). */
static void close_locked(struct weir_agent_req *req, int reason)
{
	struct weir__sdk_conn *c = req->c;

	tab_remove(c, req);
	if (req->older != NULL)
		req->older->newer = req->newer;
	else
		c->oldest = req->newer;
	if (req->newer != NULL)
		req->newer->older = req->older;
	else
		c->newest = req->older;
	c->nopen--;
	atomic_fetch_and(&req->st, ~(unsigned)WEIR__RQ_OPEN);
	atomic_fetch_sub_explicit(&c->s->st.open_requests, 1, memory_order_relaxed);
	req->close_ev.kind = WEIR__EV_CLOSED;
	req->close_ev.req = req;
	req->close_ev.rb = NULL;
	req->close_ev.shm_buf = -1;
	req->close_ev.u.reason = reason;
	weir__sdk_wq_push(req->wq, &req->close_ev);
}

void weir__sdk_close_all_locked(struct weir__sdk_conn *c)
{
	while (c->oldest != NULL)
		close_locked(c->oldest, WEIR_AGENT_CLOSE_CONN);
}

/* Does weir need nothing more from the agent for this id (so that it
 * closes it silently)? After the request-phase verdict for an agent that
 * gets neither response events nor request_done; otherwise after the
 * response-phase verdict and the last response event, or after a block. */
static bool is_final(const struct weir_agent_req *req, unsigned st)
{
	uint32_t ev = req->c->events;

	if (!(st & WEIR__RQ_OPEN) || !(st & WEIR__RQ_VERDICT) ||
	    (ev & WEIR_AGENT_EV_REQUEST_DONE))
		return false;
	if (!(ev & (WEIR_AGENT_EV_RESPONSE_HEADERS | WEIR_AGENT_EV_RESPONSE_BODY)))
		return true;
	if (st & (WEIR__RQ_BLOCKED | WEIR__RQ_RESP_BLOCKED))
		return true;
	return (st & WEIR__RQ_RESP_VERDICT) && (st & WEIR__RQ_RESP_END);
}

static void maybe_close_locked(struct weir_agent_req *req)
{
	if (is_final(req, atomic_load(&req->st)))
		close_locked(req, WEIR_AGENT_CLOSE_NORMAL);
}

/* ---- frames from weir (I/O thread) ------------------------------------------ */

static int bad(const char **why, const char *msg)
{
	*why = msg;
	return -1;
}

static struct weir__sdk_ev *ev_new(struct weir_agent_req *req, uint8_t kind)
{
	struct weir__sdk_ev *e = malloc(sizeof(*e));

	if (e == NULL)
		return NULL;
	e->kind = kind;
	e->req = weir_agent_req_ref(req);
	e->rb = NULL;
	e->shm_buf = -1;
	return e;
}

/* A connection holding max_in_flight ids gets another one: weir keeps at
 * most that many open, so it closed one of ours silently (see
 * docs/agent-protocol.md: the effective events can be narrower than those
 * the agent asked for). The oldest id that already has its request-phase
 * verdict goes; with none, weir broke the limit. */
static bool evict_locked(struct weir__sdk_conn *c)
{
	for (struct weir_agent_req *r = c->oldest; r != NULL; r = r->newer) {
		if (atomic_load(&r->st) & WEIR__RQ_VERDICT) {
			weir__sdk_log(c->s, WEIR_AGENT_LOG_DEBUG,
				      "%s: id %016" PRIx64 " presumed closed by weir (max_in_flight reached)",
				      c->name, r->id);
			close_locked(r, WEIR_AGENT_CLOSE_NORMAL);
			return true;
		}
	}
	return false;
}

static struct weir__sdk_wq *pick_wq(struct weir_agent_server *s)
{
	if (s->nworkers == 0)
		return &s->wqs[0];
	return &s->wqs[s->rr++ % s->nworkers];
}

/* A slice of the frame's payload moved to the copy at `to`. */
static struct weir_agent_str rebase(struct weir_agent_str s, const char *from, const char *to)
{
	if (s.ptr != NULL)
		s.ptr = to + (s.ptr - from);
	return s;
}

static void rebase_headers(struct weir_agent_header *dst, const struct weir_agent_header *src,
			   uint32_t n, const char *from, const char *to)
{
	for (uint32_t i = 0; i < n; i++) {
		dst[i].name = rebase(src[i].name, from, to);
		dst[i].value = rebase(src[i].value, from, to);
	}
}

/* The request (its block: struct, fields, a copy of the payload they
 * point into) is decoded in one pass into the connection's scratch room
 * and moved, or, with more fields than that, in two. */
static int on_request_headers(struct weir__sdk_conn *c, const struct weir__sdk_frame *f,
			      const char **why)
{
	struct weir_agent_server *s = c->s;
	struct weir_agent_request tmp;
	struct weir_agent_req *req, *old;
	struct weir__sdk_ev *e;
	size_t size;
	char *copy;

	if (weir__sdk_dec_request(f->payload, f->plen, &tmp, c->scratch, WEIR__SDK_SCRATCH, false,
				  why) != 0)
		return -1;
	size = sizeof(*req) + (size_t)tmp.nheaders * sizeof(req->hdrs[0]) + f->plen;
	req = malloc(size);
	if (req == NULL)
		return bad(why, "out of memory");
	memset(req, 0, sizeof(*req));
	copy = (char *)(req->hdrs + tmp.nheaders);
	memcpy(copy, f->payload, f->plen);
	if (tmp.headers != NULL) {
		req->rq = tmp;
		req->rq.method = rebase(tmp.method, f->payload, copy);
		req->rq.target = rebase(tmp.target, f->payload, copy);
		req->rq.path = rebase(tmp.path, f->payload, copy);
		req->rq.client_addr = rebase(tmp.client_addr, f->payload, copy);
		req->rq.route = rebase(tmp.route, f->payload, copy);
		req->rq.uid = rebase(tmp.uid, f->payload, copy);
		rebase_headers(req->hdrs, tmp.headers, tmp.nheaders, f->payload, copy);
		req->rq.headers = req->hdrs;
	} else if (weir__sdk_dec_request(copy, f->plen, &req->rq, req->hdrs, tmp.nheaders, true,
					 why) != 0 || req->rq.headers == NULL) {
		free(req);
		return bad(why, "REQUEST_HEADERS decoded differently twice");
	}
	req->rq.has_body = !(f->flags & WEIR_AGENT_F_LAST);
	atomic_init(&req->ref, 1);      /* the table's; moves to close_ev */
	atomic_init(&req->st, WEIR__RQ_OPEN |
			      ((c->events & WEIR_AGENT_EV_REQUEST_BODY) ? WEIR__RQ_BODY_WANTED : 0));
	atomic_init(&req->resp, NULL);
	req->id = f->id;
	req->c = c;
	req->wq = pick_wq(s);
	req->credit_left = (c->caps & WEIR_AGENT_CAP_CREDIT) && s->cfg.body_window != 0
				   ? (int64_t)s->cfg.body_window
				   : INT64_MAX;
	e = ev_new(req, WEIR__EV_REQ_HEADERS);
	if (e == NULL) {
		free(req);
		return bad(why, "out of memory");
	}
	atomic_fetch_add(&c->ref, 1);

	pthread_mutex_lock(&c->mu);
	old = tab_find(c, f->id);
	if (old != NULL)
		close_locked(old, WEIR_AGENT_CLOSE_REPLACED);
	if (c->nopen >= s->cfg.max_in_flight && !evict_locked(c)) {
		pthread_mutex_unlock(&c->mu);
		free(e);
		weir_agent_req_unref(req);      /* the event's */
		weir_agent_req_unref(req);      /* the table's: frees it */
		return bad(why, "weir opened more request ids than max_in_flight");
	}
	tab_insert(c, req);
	req->older = c->newest;
	if (c->newest != NULL)
		c->newest->newer = req;
	else
		c->oldest = req;
	c->newest = req;
	c->nopen++;
	weir__sdk_wq_push(req->wq, e);
	pthread_mutex_unlock(&c->mu);
	atomic_fetch_add_explicit(&s->st.requests, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->st.open_requests, 1, memory_order_relaxed);
	return 0;
}

static int on_body(struct weir__sdk_conn *c, const struct weir__sdk_frame *f,
		   struct weir__sdk_rbuf *rb, const char **why)
{
	bool request = f->type == WEIR_AGENT_REQUEST_BODY;
	struct weir_agent_chunk ch;
	struct weir__sdk_bref ref;
	struct weir_agent_req *req;
	struct weir__sdk_ev *e;
	unsigned st;
	int ret = -1;

	if (weir__sdk_dec_body_ref(f->payload, f->plen, &ch, c->shm != NULL ? &ref : NULL, why) != 0)
		return -1;
	if (c->shm == NULL)
		ref.has = false;
	if (ref.has && weir__sdk_shm_chunk(c, &ref, &ch, why) != 0)
		return -1;
	ch.last = f->flags & WEIR_AGENT_F_LAST;
	pthread_mutex_lock(&c->mu);
	req = tab_find(c, f->id);
	if (req == NULL) {
		/* closed on our side: it crossed our final verdict */
		atomic_fetch_add_explicit(&c->s->st.frames_ignored, 1, memory_order_relaxed);
		ret = 0;
		goto out;
	}
	st = atomic_load(&req->st);
	if (request) {
		if (!req->rq.has_body) {
			*why = "REQUEST_BODY for a request without a body";
			goto out;
		}
		if (!(st & WEIR__RQ_BODY_WANTED)) {
			*why = "REQUEST_BODY neither subscribed to nor asked for";
			goto out;
		}
		if (req->req_ended) {
			*why = "REQUEST_BODY after the last one";
			goto out;
		}
		/* the first offset may be past 0 (NEED_MORE in stream mode) */
		if (req->req_seen && ch.offset != req->req_next) {
			*why = "REQUEST_BODY offset not contiguous";
			goto out;
		}
		if (req->credit_left != INT64_MAX) {
			if (ch.len > (uint64_t)req->credit_left) {
				*why = "REQUEST_BODY beyond the credit granted";
				goto out;
			}
			req->credit_left -= (int64_t)ch.len;
		}
		req->req_seen = true;
		req->req_next = ch.offset + ch.len;
		req->req_ended = ch.last;
		if (st & WEIR__RQ_VERDICT) {
			/* sent before weir saw our verdict */
			atomic_fetch_add_explicit(&c->s->st.frames_ignored, 1, memory_order_relaxed);
			ret = 0;
			goto out;
		}
	} else {
		const struct weir_agent_response *rs = atomic_load(&req->resp);

		if (!(c->events & WEIR_AGENT_EV_RESPONSE_BODY)) {
			*why = "RESPONSE_BODY not subscribed to";
			goto out;
		}
		if (rs == NULL || !rs->has_body) {
			*why = "RESPONSE_BODY without a response head announcing a body";
			goto out;
		}
		if (req->resp_ended) {
			*why = "RESPONSE_BODY after the last one";
			goto out;
		}
		if (ch.offset != req->resp_next) {
			*why = "RESPONSE_BODY offset not contiguous";
			goto out;
		}
		req->resp_seen = true;
		req->resp_next = ch.offset + ch.len;
		req->resp_ended = ch.last;
	}
	e = ev_new(req, request ? WEIR__EV_REQ_BODY : WEIR__EV_RESP_BODY);
	if (e == NULL) {
		*why = "out of memory";
		goto out;
	}
	e->u.chunk = ch;
	e->rb = rb;
	atomic_fetch_add_explicit(&rb->ref, 1, memory_order_relaxed);
	if (ref.has) {
		e->shm_buf = (int32_t)ref.buf;
		ref.has = false;        /* released by the event */
	}
	weir__sdk_wq_push(req->wq, e);
	if (!request && ch.last) {
		atomic_fetch_or(&req->st, WEIR__RQ_RESP_END);
		maybe_close_locked(req);
	}
	ret = 0;
out:
	pthread_mutex_unlock(&c->mu);
	/* not handed on (ignored, or an error): give the buffer back now */
	if (ref.has)
		weir__sdk_shm_release(c, (uint32_t)ref.buf);
	return ret;
}

static int on_response_headers(struct weir__sdk_conn *c, const struct weir__sdk_frame *f,
			       const char **why)
{
	struct weir_agent_response tmp, *rs;
	struct weir_agent_header *hdrs;
	struct weir_agent_req *req;
	struct weir__sdk_ev *e;
	unsigned add;
	char *copy;

	if (!(c->events & WEIR_AGENT_EV_RESPONSE_HEADERS))
		return bad(why, "RESPONSE_HEADERS not subscribed to");
	if (weir__sdk_dec_response(f->payload, f->plen, &tmp, c->scratch, WEIR__SDK_SCRATCH, false,
				   why) != 0)
		return -1;
	rs = malloc(sizeof(*rs) + (size_t)tmp.nheaders * sizeof(*hdrs) + f->plen);
	if (rs == NULL)
		return bad(why, "out of memory");
	hdrs = (struct weir_agent_header *)(rs + 1);
	copy = (char *)(hdrs + tmp.nheaders);
	memcpy(copy, f->payload, f->plen);
	if (tmp.headers != NULL) {
		*rs = tmp;
		rebase_headers(hdrs, tmp.headers, tmp.nheaders, f->payload, copy);
		rs->headers = hdrs;
	} else if (weir__sdk_dec_response(copy, f->plen, rs, hdrs, tmp.nheaders, true, why) != 0 ||
		   rs->headers == NULL) {
		free(rs);
		return bad(why, "RESPONSE_HEADERS decoded differently twice");
	}
	rs->has_body = !(f->flags & WEIR_AGENT_F_LAST);

	pthread_mutex_lock(&c->mu);
	req = tab_find(c, f->id);
	if (req == NULL) {
		pthread_mutex_unlock(&c->mu);
		free(rs);
		atomic_fetch_add_explicit(&c->s->st.frames_ignored, 1, memory_order_relaxed);
		return 0;
	}
	if (atomic_load(&req->st) & WEIR__RQ_RESP) {
		pthread_mutex_unlock(&c->mu);
		free(rs);
		return bad(why, "RESPONSE_HEADERS twice for one id");
	}
	e = ev_new(req, WEIR__EV_RESP_HEADERS);
	if (e == NULL) {
		pthread_mutex_unlock(&c->mu);
		free(rs);
		return bad(why, "out of memory");
	}
	atomic_store_explicit(&req->resp, rs, memory_order_release);
	add = WEIR__RQ_RESP;
	if (!rs->has_body || !(c->events & WEIR_AGENT_EV_RESPONSE_BODY))
		add |= WEIR__RQ_RESP_END;
	atomic_fetch_or(&req->st, add);
	weir__sdk_wq_push(req->wq, e);
	pthread_mutex_unlock(&c->mu);
	return 0;
}

/* REQUEST_DONE and CANCEL */
static int on_close_frame(struct weir__sdk_conn *c, const struct weir__sdk_frame *f,
			  const char **why)
{
	struct weir_agent_done d;
	struct weir_agent_req *req;
	uint32_t reason = 0;

	if (f->type == WEIR_AGENT_REQUEST_DONE) {
		if (weir__sdk_dec_done(f->payload, f->plen, &d, why) != 0)
			return -1;
	} else if (weir__sdk_dec_cancel(f->payload, f->plen, &reason, why) != 0) {
		return -1;
	}
	pthread_mutex_lock(&c->mu);
	req = tab_find(c, f->id);
	if (req == NULL) {
		pthread_mutex_unlock(&c->mu);
		atomic_fetch_add_explicit(&c->s->st.frames_ignored, 1, memory_order_relaxed);
		return 0;
	}
	if (f->type == WEIR_AGENT_REQUEST_DONE) {
		struct weir__sdk_ev *e = ev_new(req, WEIR__EV_DONE);

		if (e == NULL) {
			pthread_mutex_unlock(&c->mu);
			return bad(why, "out of memory");
		}
		e->u.done = d;
		weir__sdk_wq_push(req->wq, e);
	}
	close_locked(req, (int)reason);
	pthread_mutex_unlock(&c->mu);
	return 0;
}

static int on_ping(struct weir__sdk_conn *c, const struct weir__sdk_frame *f, const char **why)
{
	char *w;

	if (weir__sdk_dec_map(f->payload, f->plen, why) != 0)
		return -1;
	pthread_mutex_lock(&c->mu);
	w = weir__sdk_out_reserve(c, WEIR__SDK_SMALL_FRAME);
	if (w != NULL)
		c->out_len += weir__sdk_enc_empty(w, WEIR_AGENT_PONG, f->id);
	pthread_mutex_unlock(&c->mu);
	if (w == NULL)
		return bad(why, "out of memory");
	weir__sdk_conn_kick(c);
	return 0;
}

int weir__sdk_on_request_frame(struct weir__sdk_conn *c, const struct weir__sdk_frame *f,
			       struct weir__sdk_rbuf *rb, const char **why)
{
	if (f->type == WEIR_AGENT_PING)
		return on_ping(c, f, why);
	if (f->type == WEIR_AGENT_HELLO)
		return bad(why, "HELLO twice");
	if (f->id == 0)
		return bad(why, "request id 0");
	switch (f->type) {
	case WEIR_AGENT_REQUEST_HEADERS:
		return on_request_headers(c, f, why);
	case WEIR_AGENT_REQUEST_BODY:
	case WEIR_AGENT_RESPONSE_BODY:
		return on_body(c, f, rb, why);
	case WEIR_AGENT_RESPONSE_HEADERS:
		return on_response_headers(c, f, why);
	case WEIR_AGENT_REQUEST_DONE:
	case WEIR_AGENT_CANCEL:
		return on_close_frame(c, f, why);
	default:
		return bad(why, "unknown message type (or one only agents send)");
	}
}

/* ---- what the author sends ------------------------------------------------------- */

static int send_small_locked(struct weir__sdk_conn *c, uint8_t type, uint64_t id, uint64_t bytes)
{
	char *w = weir__sdk_out_reserve(c, WEIR__SDK_SMALL_FRAME);

	if (w == NULL)
		return -ENOMEM;
	if (type == WEIR_AGENT_CREDIT)
		c->out_len += weir__sdk_enc_credit(w, id, bytes);
	else
		c->out_len += weir__sdk_enc_empty(w, type, id);
	return 0;
}

int weir_agent_verdict_send(struct weir_agent_req *req, const struct weir_agent_reply *r)
{
	struct weir__sdk_conn *c = req->c;
	int forced = weir__sdk_reply_phase(r), phase, err = 0;
	size_t size;
	unsigned st, add;
	char *w;

	if (weir__sdk_reply_check(r) != 0)
		return -EINVAL;
	size = weir__sdk_reply_size(r);
	if (size > c->peer_max_frame)
		return -EMSGSIZE;
	pthread_mutex_lock(&c->mu);
	st = atomic_load(&req->st);
	if (!(st & WEIR__RQ_OPEN) || c->closed) {
		err = -ECANCELED;
		goto out;
	}
	if (forced == WEIR_AGENT_PHASE_REQUEST || (forced < 0 && !(st & WEIR__RQ_VERDICT)))
		phase = st & WEIR__RQ_VERDICT ? -1 : WEIR_AGENT_PHASE_REQUEST;
	else
		phase = (st & WEIR__RQ_RESP) && !(st & WEIR__RQ_RESP_VERDICT)
				? WEIR_AGENT_PHASE_RESPONSE : -1;
	if (phase < 0) {
		err = -EALREADY;
		goto out;
	}
	w = weir__sdk_out_reserve(c, size);
	if (w == NULL) {
		err = -ENOMEM;
		goto out;
	}
	c->out_len += weir__sdk_reply_encode(w, r, req->id, (unsigned)phase);
	if (phase == WEIR_AGENT_PHASE_REQUEST)
		add = WEIR__RQ_VERDICT |
		      (weir_agent_reply_action(r) != WEIR_AGENT_ALLOW ? WEIR__RQ_BLOCKED : 0);
	else
		add = WEIR__RQ_RESP_VERDICT |
		      (weir_agent_reply_action(r) != WEIR_AGENT_ALLOW ? WEIR__RQ_RESP_BLOCKED : 0);
	atomic_fetch_or(&req->st, add);
	maybe_close_locked(req);
out:
	pthread_mutex_unlock(&c->mu);
	if (err == 0) {
		atomic_fetch_add_explicit(&c->s->st.verdicts, 1, memory_order_relaxed);
		weir__sdk_conn_kick(c);
	}
	return err;
}

int weir_agent_need_more(struct weir_agent_req *req)
{
	struct weir__sdk_conn *c = req->c;
	unsigned st;
	int err;

	pthread_mutex_lock(&c->mu);
	st = atomic_load(&req->st);
	if (!(st & WEIR__RQ_OPEN) || c->closed)
		err = -ECANCELED;
	else if (st & WEIR__RQ_VERDICT)
		err = -EALREADY;
	else
		err = send_small_locked(c, WEIR_AGENT_NEED_MORE, req->id, 0);
	if (err == 0)
		atomic_fetch_or(&req->st, WEIR__RQ_BODY_WANTED);
	pthread_mutex_unlock(&c->mu);
	if (err == 0)
		weir__sdk_conn_kick(c);
	return err;
}

/* Under c->mu. */
static int credit_locked(struct weir_agent_req *req, uint64_t bytes)
{
	int err = send_small_locked(req->c, WEIR_AGENT_CREDIT, req->id, bytes);

	if (err == 0 && req->credit_left != INT64_MAX)
		req->credit_left = bytes >= (uint64_t)(INT64_MAX - 1 - req->credit_left)
					   ? INT64_MAX - 1
					   : req->credit_left + (int64_t)bytes;
	return err;
}

int weir_agent_credit(struct weir_agent_req *req, uint64_t bytes)
{
	struct weir__sdk_conn *c = req->c;
	int err;

	if (!(c->caps & WEIR_AGENT_CAP_CREDIT))
		return -ENOTSUP;
	pthread_mutex_lock(&c->mu);
	if (!(atomic_load(&req->st) & WEIR__RQ_OPEN) || c->closed)
		err = -ECANCELED;
	else
		err = credit_locked(req, bytes);
	pthread_mutex_unlock(&c->mu);
	if (err == 0)
		weir__sdk_conn_kick(c);
	return err;
}

/* After a request body chunk was handled: give its bytes back, in grants
 * of at least half the window (so weir never waits for a grant on bytes
 * that are all processed: what is withheld stays under half the window). */
static void auto_credit(struct weir_agent_server *s, struct weir_agent_req *req,
			const struct weir_agent_chunk *ch)
{
	struct weir__sdk_conn *c = req->c;
	bool kick = false;

	if (ch->last || ch->len == 0 || !(c->caps & WEIR_AGENT_CAP_CREDIT) ||
	    s->cfg.body_window == 0 || s->cfg.manual_credit)
		return;
	pthread_mutex_lock(&c->mu);
	if ((atomic_load(&req->st) & (WEIR__RQ_OPEN | WEIR__RQ_VERDICT)) == WEIR__RQ_OPEN &&
	    !c->closed) {
		req->credit_pending += ch->len;
		if (2 * req->credit_pending >= s->cfg.body_window &&
		    credit_locked(req, req->credit_pending) == 0) {
			req->credit_pending = 0;
			kick = true;
		}
	}
	pthread_mutex_unlock(&c->mu);
	if (kick)
		weir__sdk_conn_kick(c);
}

/* ---- running events --------------------------------------------------------------- */

static void apply(struct weir_agent_server *s, struct weir_agent_req *req, int ret,
		  const struct weir_agent_reply *r, bool headers)
{
	int err = 0;

	switch (ret) {
	case WEIR_AGENT_R_PENDING:
		return;
	case WEIR_AGENT_R_VERDICT:
		err = weir_agent_verdict_send(req, r);
		break;
	case WEIR_AGENT_R_NEED_BODY:
		if (!headers) {
			weir__sdk_log(s, WEIR_AGENT_LOG_WARN,
				      "id %016" PRIx64 ": R_NEED_BODY outside request_headers ignored",
				      req->id);
			return;
		}
		err = weir_agent_need_more(req);
		break;
	default:
		weir__sdk_log(s, WEIR_AGENT_LOG_WARN,
			      "id %016" PRIx64 ": callback returned %d (taken as R_PENDING)", req->id, ret);
		return;
	}
	if (err != 0 && err != -ECANCELED)
		weir__sdk_log(s, WEIR_AGENT_LOG_WARN, "id %016" PRIx64 ": %s not sent: %s", req->id,
			      ret == WEIR_AGENT_R_VERDICT ? "verdict" : "NEED_MORE", strerror(-err));
}

static void run_ev(struct weir__sdk_wq *q, struct weir__sdk_ev *e)
{
	struct weir_agent_server *s = q->s;
	const struct weir_agent_callbacks *cb = &s->cfg.cb;
	struct weir_agent_reply *r = q->reply;
	struct weir_agent_req *req = e->req;
	void *user = s->cfg.user;
	unsigned st;

	if (e->kind == WEIR__EV_CLOSED) {
		if (cb->closed != NULL)
			cb->closed(user, req, e->u.reason);
		weir_agent_req_unref(req);      /* the table's reference */
		return;
	}
	st = atomic_load(&req->st);
	if (!(st & WEIR__RQ_OPEN) && e->kind != WEIR__EV_DONE) {
		atomic_fetch_add_explicit(&s->st.frames_ignored, 1, memory_order_relaxed);
		goto out;
	}
	switch (e->kind) {
	case WEIR__EV_REQ_HEADERS:
		weir_agent_reply_reset(r);
		if (cb->request_headers != NULL)
			apply(s, req, cb->request_headers(user, req, r), r, true);
		else if (cb->request_body == NULL || !req->rq.has_body ||
			 !(st & WEIR__RQ_BODY_WANTED))
			apply(s, req, WEIR_AGENT_R_VERDICT, r, true); /* nobody to decide */
		break;
	case WEIR__EV_REQ_BODY:
		if (st & WEIR__RQ_VERDICT) {
			atomic_fetch_add_explicit(&s->st.frames_ignored, 1, memory_order_relaxed);
			break;
		}
		if (cb->request_body != NULL) {
			weir_agent_reply_reset(r);
			apply(s, req, cb->request_body(user, req, &e->u.chunk, r), r, false);
		}
		auto_credit(s, req, &e->u.chunk);
		break;
	case WEIR__EV_RESP_HEADERS:
		weir_agent_reply_reset(r);
		if (cb->response_headers != NULL)
			apply(s, req, cb->response_headers(user, req, r), r, false);
		else
			apply(s, req, WEIR_AGENT_R_VERDICT, r, false);
		break;
	case WEIR__EV_RESP_BODY:
		if (cb->response_body != NULL) {
			int ret;

			weir_agent_reply_reset(r);
			ret = cb->response_body(user, req, &e->u.chunk, r);
			if (ret == WEIR_AGENT_R_VERDICT &&
			    !(atomic_load(&req->st) & WEIR__RQ_RESP_VERDICT))
				apply(s, req, ret, r, false);
		}
		break;
	case WEIR__EV_DONE:
		if (cb->request_done != NULL)
			cb->request_done(user, req, &e->u.done);
		break;
	default:
		break;
	}
out:
	if (e->rb != NULL)
		weir__sdk_rbuf_unref(e->rb);
	if (e->shm_buf >= 0)
		weir__sdk_shm_release(req->c, (uint32_t)e->shm_buf);
	weir_agent_req_unref(req);
	free(e);
}

unsigned weir__sdk_wq_run(struct weir__sdk_wq *q)
{
	struct weir__sdk_ev *e, *next;
	unsigned n = 0;

	pthread_mutex_lock(&q->mu);
	e = q->head;
	q->head = q->tail = NULL;
	pthread_mutex_unlock(&q->mu);
	for (; e != NULL; e = next, n++) {
		next = e->next;
		run_ev(q, e);
	}
	return n;
}

void *weir__sdk_worker_main(void *arg)
{
	struct weir__sdk_wq *q = arg;

	for (;;) {
		pthread_mutex_lock(&q->mu);
		while (q->head == NULL && !q->stop) {
			q->sleeping = true;
			pthread_cond_wait(&q->cv, &q->mu);
			q->sleeping = false;
		}
		if (q->head == NULL) {
			pthread_mutex_unlock(&q->mu);
			return NULL;
		}
		pthread_mutex_unlock(&q->mu);
		weir__sdk_wq_run(q);
	}
}

/* ---- accessors ------------------------------------------------------------------ */

uint64_t weir_agent_req_id(const struct weir_agent_req *req)
{
	return req->id;
}

const struct weir_agent_request *weir_agent_req_request(const struct weir_agent_req *req)
{
	return &req->rq;
}

const struct weir_agent_response *weir_agent_req_response(const struct weir_agent_req *req)
{
	return atomic_load_explicit(&((struct weir_agent_req *)(uintptr_t)req)->resp,
				    memory_order_acquire);
}

void weir_agent_req_set_data(struct weir_agent_req *req, void *data)
{
	req->data = data;
}

void *weir_agent_req_data(const struct weir_agent_req *req)
{
	return req->data;
}

struct weir_agent_str weir_agent_req_agent_name(const struct weir_agent_req *req)
{
	return (struct weir_agent_str){ req->c->peer_name, req->c->peer_name_len };
}

const struct weir_agent_header *weir_agent_header_find(const struct weir_agent_header *h,
						       uint32_t n, const char *name)
{
	size_t len = strlen(name);

	for (uint32_t i = 0; i < n; i++)
		if (h[i].name.len == len && strncasecmp(h[i].name.ptr, name, len) == 0)
			return &h[i];
	return NULL;
}
