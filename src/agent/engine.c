/* The agent engine: per-request state, verdicts, body hand-off by reference,
 * failure modes. See weir/agents.h for the model. */
#include <inttypes.h>
#include <stdio.h>
#include <strings.h>

#include "agent-internal.h"
#include "weir/alloc.h"
#include "weir/trace.h"

/* stream mode: stop reading the client once this much waits for an agent */
#define STREAM_HELD_MAX (256u * 1024u)

static inline struct weir_reactor *RA(const struct weir_areq *ar)
{
	return ar->c->s.r;
}

static bool needs_body(const struct weir_aitem *it)
{
	return it->open && it->rq == WEIR_AI_PENDING && it->wants_body && !it->last_sent;
}

static void item_timer(struct weir_timer *t);

static void item_timer_update(struct weir_aitem *it, bool restart)
{
	struct weir_areq *ar = it->ar;
	struct weir_wheel *w = &RA(ar)->wheel;
	bool waiting = false;

	if (it->open && it->rq == WEIR_AI_PENDING) {
		/* While body bytes are still to come from the client, its
		 * timeout governs; the agent's clock runs once it has all it
		 * will get, or when it withholds credit. */
		waiting = !needs_body(it) || (it->credit == 0 && it->sent < ar->body_total);
	} else if (it->open && it->rs == WEIR_AI_PENDING) {
		waiting = true;
	}
	if (!waiting) {
		weir_timer_cancel(w, &it->timer);
		return;
	}
	if (restart || !weir_timer_armed(&it->timer))
		weir_timer_arm(w, &it->timer, weir__now(RA(ar)) + it->rt->conf->timeout_ms);
}

static void mark_req_done(struct weir_aitem *it)
{
	struct weir_areq *ar = it->ar;

	if (it->rq != WEIR_AI_PENDING)
		return;
	it->rq = WEIR_AI_DONE;
	ar->pending_req--;
	if (it->buffer)
		ar->wait_hold--;
}

static void mark_resp_done(struct weir_aitem *it)
{
	if (it->rs != WEIR_AI_PENDING)
		return;
	it->rs = WEIR_AI_DONE;
	it->ar->pending_resp--;
}

static void send_cancel(struct weir_aitem *it, unsigned reason)
{
	uint32_t len;
	char *f;

	if (!it->open)
		return;
	f = weir_agent_enc_cancel(it->id, reason, &len);
	weir__ac_send(it->conn, f, len);
}

/* Closes the item's id (CANCEL first when reason != 0). */
static void item_close(struct weir_aitem *it, unsigned reason)
{
	if (reason != 0)
		send_cancel(it, reason);
	if (it->probe && it->rq == WEIR_AI_PENDING)
		it->rt->probing = false;
	it->probe = false;
	weir__ac_close_id(it);
	weir_timer_cancel(&RA(it->ar)->wheel, &it->timer);
}

/* Nothing more needed from this agent for this request? Close its id. */
static void item_maybe_close(struct weir_aitem *it)
{
	uint32_t later = WEIR_AGENT_EV_RESPONSE_HEADERS | WEIR_AGENT_EV_RESPONSE_BODY |
			 WEIR_AGENT_EV_REQUEST_DONE;

	if (it->open && it->rq != WEIR_AI_PENDING && !(it->events & later))
		item_close(it, 0);
}

/* ---- held body spans ---------------------------------------------------- */

void weir__agents_trim(struct weir_areq *ar)
{
	struct weir_bufpool *pool = &RA(ar)->pool;
	uint64_t keep_from = ar->body_total;
	uint32_t k = 0;

	if (ar->hold)
		return;
	for (unsigned i = 0; i < ar->n; i++) {
		const struct weir_aitem *it = &ar->items[i];

		if (needs_body(it))
			keep_from = WEIR_MIN(keep_from, WEIR_MAX(it->sent, ar->held_off));
	}
	while (k < ar->nspans && ar->held_off + ar->spans[k].len <= keep_from) {
		weir_buf_unref(pool, ar->spans[k].bid);
		ar->held_off += ar->spans[k].len;
		ar->held_bytes -= ar->spans[k].len;
		k++;
	}
	if (k != 0) {
		memmove(ar->spans, ar->spans + k, (ar->nspans - k) * sizeof(*ar->spans));
		ar->nspans -= k;
	}
}

static int hold_span(struct weir_areq *ar, const char *p, uint32_t len, uint16_t bid)
{
	if (ar->nspans == ar->cap) {
		uint32_t ncap = ar->cap ? ar->cap * 2 : 16;
		struct weir_hspan *ns = weir_realloc(ar->spans, ncap * sizeof(*ns));

		if (ns == NULL)
			return -1;
		ar->spans = ns;
		ar->cap = ncap;
	}
	weir_buf_ref(&RA(ar)->pool, bid);
	ar->spans[ar->nspans].ptr = p;
	ar->spans[ar->nspans].len = len;
	ar->spans[ar->nspans].bid = bid;
	ar->nspans++;
	ar->held_bytes += len;
	return 0;
}

/* A body frame: prefix (two inline segments) + the bytes by reference. */
static int push_body_frame(struct weir_agentconn *ac, uint8_t type, uint64_t id, bool last,
			   uint64_t off, const char *p, uint32_t len, uint16_t bid)
{
	struct weir_outq *q = &ac->s.out;
	char pre[WEIR_AGENT_BODY_PREFIX];
	uint32_t n;

	if (ac->shm_on)
		return weir__shm_body(ac, type, id, last, off, p, len, bid);
	n = weir_agent_body_prefix(pre, type, id, last, off, len);

	if (weir_outq_push_inline(q, pre, WEIR_AGENT_HDR_SIZE) != 0 ||
	    weir_outq_push_inline(q, pre + WEIR_AGENT_HDR_SIZE, n - WEIR_AGENT_HDR_SIZE) != 0)
		return -1;
	if (len != 0 && weir_outq_push_ref(q, &ac->s.r->pool, p, len, bid) != 0)
		return -1;
	return 0;
}

/* Sends the item what it may be sent of the held body. */
static void flush_item(struct weir_aitem *it)
{
	struct weir_areq *ar = it->ar;
	struct weir_agentconn *ac = it->conn;
	bool sent = false;

	while (needs_body(it)) {
		uint64_t off = ar->body_total, piece;
		uint32_t i = ar->nspans;
		bool last;

		if (weir__ac_full(ac)) {
			ac->want_writers = true;
			break;
		}
		if (it->sent < ar->held_off)
			it->sent = ar->held_off;   /* joined late: those bytes are gone */
		if (it->sent == ar->body_total) {
			if (ar->body_done) {
				if (push_body_frame(ac, WEIR_AGENT_REQUEST_BODY, it->id, true,
						    it->sent, NULL, 0, 0) != 0)
					goto oom;
				it->last_sent = true;
				sent = true;
			}
			break;
		}
		if (it->credit == 0)
			break;
		/* the span holding offset it->sent, searched from the tail:
		 * what an agent has not been sent yet is usually the newest */
		while (i > 0 && it->sent < off) {
			i--;
			off -= ar->spans[i].len;
		}
		WEIR_BUG_ON(it->sent < off || it->sent >= off + ar->spans[i].len);
		piece = WEIR_MIN(off + ar->spans[i].len - it->sent, it->credit);
		last = ar->body_done && it->sent + piece == ar->body_total;
		if (push_body_frame(ac, WEIR_AGENT_REQUEST_BODY, it->id, last, it->sent,
				    ar->spans[i].ptr + (it->sent - off), (uint32_t)piece,
				    ar->spans[i].bid) != 0)
			goto oom;
		it->sent += piece;
		if (it->credit != UINT64_MAX)
			it->credit -= piece;
		if (last)
			it->last_sent = true;
		sent = true;
	}
	if (sent)
		weir__ac_mark(ac);
	item_timer_update(it, false);
	return;
oom:
	weir__ac_fail(ac, "out of memory");
}

/* Let a client paused for agents read again when they caught up. */
static void maybe_resume_client(struct weir_areq *ar)
{
	struct weir_client *c = ar->c;

	if (c->s.recv_want || c->state != WEIR_C_BODY)
		return;
	if (ar->hold ? ar->held_bytes < ar->hold_limit : ar->held_bytes < STREAM_HELD_MAX)
		weir__client_resume_body(c);
}

static void resume_upstream(struct weir_areq *ar)
{
	struct weir_client *c = ar->c;

	ar->resp_paused = false;
	if (c->u != NULL && !c->u->s.closed) {
		weir__sock_resume(&c->u->s);
		weir__upstream_kick_recv(c->u);
	}
}

/* ---- outcomes ----------------------------------------------------------- */

/* The request goes on as far as the verdicts allow. May end the exchange. */
static void ar_eval(struct weir_areq *ar)
{
	if (ar->blocked)
		return;
	if (ar->hold && ar->wait_hold == 0) {
		ar->hold = false;
		weir__client_agents_release(ar->c);
		return;
	}
	if (ar->resp_paused && ar->pending_req == 0 &&
	    (!ar->resp_head_sent || ar->pending_resp == 0))
		resume_upstream(ar);
}

/* The request is answered for the agents (block, redirect, failure closed).
 * Other agents get CANCEL. The exchange may end inside. */
static void ar_block(struct weir_areq *ar, int status, const struct weir_conf_header *h,
		     unsigned nh, const char *body, size_t body_len)
{
	ar->blocked = true;
	for (unsigned i = 0; i < ar->n; i++) {
		struct weir_aitem *it = &ar->items[i];

		if (it->open && (it->rq == WEIR_AI_PENDING || it->rs == WEIR_AI_PENDING)) {
			mark_req_done(it);
			mark_resp_done(it);
			item_close(it, WEIR_AGENT_CANCEL_BLOCKED);
		}
	}
	weir__client_agents_block(ar->c, status, h, nh, body, body_len);
}

static void ar_block_status(struct weir_areq *ar, int status, const char *why)
{
	char body[128];
	int n = snprintf(body, sizeof(body), "%d %s: %s\n", status, weir__status_text(status), why);

	ar_block(ar, status, NULL, 0, body, (size_t)WEIR_MIN(n, (int)sizeof(body) - 1));
}

/* The access log's record of what each agent said: "name:outcome[:rules]"
 * joined by ';', bounded (what does not fit is cut). */
static void summary_add(struct weir_areq *ar, const struct weir_agent_rt *rt, const char *what,
			const weir_slice_t *rules, uint32_t nrules)
{
	size_t cap = sizeof(ar->summary), n = ar->summary_len;
	int k;

	if (n >= cap - 1)
		return;
	k = snprintf(ar->summary + n, cap - n, "%s%s:%s", n != 0 ? ";" : "", rt->conf->name, what);
	n = k < 0 ? n : WEIR_MIN(n + (size_t)k, cap - 1);
	for (uint32_t i = 0; i < nrules && n < cap - 1; i++) {
		k = snprintf(ar->summary + n, cap - n, "%s%.*s", i == 0 ? ":" : ",",
			     (int)rules[i].len, rules[i].ptr);
		n = k < 0 ? n : WEIR_MIN(n + (size_t)k, cap - 1);
	}
	ar->summary_len = (uint16_t)n;
}

void weir__item_fail(struct weir_aitem *it, int status, unsigned cancel_reason)
{
	struct weir_areq *ar = it->ar;
	struct weir_agent_rt *rt = it->rt;
	bool pending = it->rq == WEIR_AI_PENDING || it->rs == WEIR_AI_PENDING;

	item_close(it, cancel_reason);
	if (!pending)
		return;
	summary_add(ar, rt, status == 504 ? "timeout" : "unavailable", NULL, 0);
	mark_req_done(it);
	mark_resp_done(it);
	if (status == 503)
		weir_metrics_agent_failure(&rt->r->metrics, rt->mslot);
	if (rt->conf->fail_open) {
		ar_eval(ar);
		return;
	}
	ar_block_status(ar, status, status == 504 ? "agent timeout" : "agent unavailable");
}

static void item_timer(struct weir_timer *t)
{
	struct weir_aitem *it = weir_container_of(t, struct weir_aitem, timer);

	weir__agent_timeout_seen(it->rt, it->probe);
	weir__item_fail(it, 504, WEIR_AGENT_CANCEL_TIMEOUT);
}

/* ---- verdicts ----------------------------------------------------------- */

static int add_mut(struct weir_areq *ar, uint8_t list, const struct weir_agent_kv *kv)
{
	struct weir_hmut *m;

	if (ar->nmuts == ar->capm) {
		unsigned ncap = ar->capm ? ar->capm * 2 : 8;
		struct weir_hmut *nm = weir_realloc(ar->muts, ncap * sizeof(*nm));

		if (nm == NULL)
			return -1;
		ar->muts = nm;
		ar->capm = ncap;
	}
	m = &ar->muts[ar->nmuts];
	m->name = weir_malloc(kv->name.len + kv->value.len + 2);
	if (m->name == NULL)
		return -1;
	memcpy(m->name, kv->name.ptr, kv->name.len);
	m->name[kv->name.len] = '\0';
	m->value = m->name + kv->name.len + 1;
	if (kv->value.len != 0)
		memcpy(m->value, kv->value.ptr, kv->value.len);
	m->value[kv->value.len] = '\0';
	m->nlen = (uint32_t)kv->name.len;
	m->vlen = (uint32_t)kv->value.len;
	m->list = list;
	ar->nmuts++;
	return 0;
}

static void audit_log(const struct weir_aitem *it, const struct weir_agent_verdict *v)
{
	static const char *const actions[] = { "allow", "block", "redirect" };
	char rules[256], tags[256];
	size_t rl = 0, tl = 0;

	if (v->action == WEIR_AGENT_ALLOW && v->ntags == 0 && v->nrules == 0)
		return;
	rules[0] = tags[0] = '\0';
	for (uint32_t i = 0; i < v->nrules && rl < sizeof(rules) - 1; i++)
		rl += (size_t)snprintf(rules + rl, sizeof(rules) - rl, "%s%.*s", i ? "," : "",
				       (int)v->rules[i].len, v->rules[i].ptr);
	for (uint32_t i = 0; i < v->ntags && tl < sizeof(tags) - 1; i++)
		tl += (size_t)snprintf(tags + tl, sizeof(tags) - tl, "%s%.*s", i ? "," : "",
				       (int)v->tags[i].len, v->tags[i].ptr);
	weir__agent_log(it->rt, "uid %s %s %s %u rules=[%s] tags=[%s]%s%.*s", it->ar->uid,
			v->phase == WEIR_AGENT_PHASE_RESPONSE ? "response" : "request",
			actions[v->action], v->action == WEIR_AGENT_ALLOW ? 0u : v->status, rules,
			tags, v->reason.len ? " reason=" : "",
			(int)WEIR_MIN(v->reason.len, (size_t)200), v->reason.ptr ? v->reason.ptr : "");
}

static void verdict_block(struct weir_aitem *it, const struct weir_agent_verdict *v)
{
	struct weir_areq *ar = it->ar;
	uint32_t nh = v->n[WEIR_MUT_HEADERS_OUT];
	const struct weir_agent_kv *kv = v->kv[WEIR_MUT_HEADERS_OUT];
	struct weir_conf_header *h;
	unsigned k = 0;
	size_t size = (nh + 1) * sizeof(*h);
	char *w;

	for (uint32_t i = 0; i < nh; i++)
		size += kv[i].name.len + kv[i].value.len + 2;
	if (v->action == WEIR_AGENT_REDIRECT)
		size += sizeof("Location") + v->location.len + 1;
	h = weir_malloc(size);
	if (h == NULL) {
		ar_block_status(ar, 503, "out of memory");
		return;
	}
	w = (char *)(h + nh + 1);
	for (uint32_t i = 0; i < nh; i++) {
		if (weir_agent_protected_header(kv[i].name))
			continue;
		h[k].name = w;
		memcpy(w, kv[i].name.ptr, kv[i].name.len);
		w += kv[i].name.len;
		*w++ = '\0';
		h[k].value = w;
		memcpy(w, kv[i].value.ptr, kv[i].value.len);
		w += kv[i].value.len;
		*w++ = '\0';
		k++;
	}
	if (v->action == WEIR_AGENT_REDIRECT) {
		h[k].name = w;
		memcpy(w, "Location", sizeof("Location"));
		w += sizeof("Location");
		h[k].value = w;
		memcpy(w, v->location.ptr, v->location.len);
		w[v->location.len] = '\0';
		k++;
	}
	ar_block(ar, (int)v->status, h, k, v->body.ptr != NULL ? v->body.ptr : "", v->body.len);
	weir_free(h);
}

void weir__item_verdict(struct weir_aitem *it, const struct weir_agent_verdict *v)
{
	struct weir_areq *ar = it->ar;
	struct weir_agent_rt *rt = it->rt;
	bool response = v->phase == WEIR_AGENT_PHASE_RESPONSE;

	WEIR_TRACE4(agent_verdict, ar->c, rt->mslot, v->action, v->phase);
	weir__agent_verdict_seen(rt, it->probe);
	it->probe = false;
	if (ar->blocked)
		return;
	if (!response && it->rq != WEIR_AI_PENDING)
		return;         /* a second request verdict: ignored */
	if (response && it->rs != WEIR_AI_PENDING)
		return;         /* not asked for */
	if (response)
		mark_resp_done(it);
	else
		mark_req_done(it);
	weir_metrics_agent_verdict(&rt->r->metrics, rt->mslot,
				   weir__now_ns(rt->r) - it->t0_ns);
	item_timer_update(it, false);
	audit_log(it, v);
	{
		static const char *const what[] = { "allow", "block", "redirect" };

		summary_add(ar, rt, v->action < WEIR_ARRAY_SIZE(what) ? what[v->action] : "block",
			    v->rules, v->nrules);
	}
	if (v->action != WEIR_AGENT_ALLOW) {
		weir_metrics_agent_block(&rt->r->metrics, rt->mslot, v->rules, v->nrules);
		verdict_block(it, v);
		return;
	}
	if (v->has_replace) {
		/* Only a buffer-mode agent that saw the whole body, while the
		 * request is still held, may replace it; the first one wins. */
		if (response || !it->buffer || !ar->hold || !ar->body_done || !it->last_sent ||
		    ar->replace != NULL || ar->c->req_body == WEIR_H1_BODY_NONE) {
			weir__agent_log(rt, "uid %s: body_replace ignored (needs buffer mode, the "
					"whole body seen, the first replacement)", ar->uid);
		} else {
			ar->replace = weir_malloc(v->body_replace.len ? v->body_replace.len : 1);
			if (ar->replace == NULL) {
				ar_block_status(ar, 503, "out of memory");
				return;
			}
			if (v->body_replace.len != 0)
				memcpy(ar->replace, v->body_replace.ptr, v->body_replace.len);
			ar->replace_len = (uint32_t)v->body_replace.len;
		}
	}
	for (unsigned l = 0; l < WEIR_MUT_HEADERS_OUT; l++) {
		bool req_list = l <= WEIR_MUT_REQ_DEL;

		if (v->n[l] == 0)
			continue;
		if (req_list && (!ar->hold || response)) {
			if (!rt->warned_mut)
				weir__agent_log(rt, "uid %s: request header mutations ignored (the "
						"request head already left: stream body mode); "
						"logged once", ar->uid);
			rt->warned_mut = true;
			continue;
		}
		if (!req_list && ar->c->resp_started)
			continue;
		for (uint32_t i = 0; i < v->n[l]; i++)
			if (add_mut(ar, (uint8_t)l, &v->kv[l][i]) != 0) {
				ar_block_status(ar, 503, "out of memory");
				return;
			}
	}
	item_maybe_close(it);
	ar_eval(ar);
}

void weir__item_credit(struct weir_aitem *it, uint64_t bytes)
{
	if (it->credit != UINT64_MAX)
		it->credit = bytes > UINT64_MAX - 1 - it->credit ? UINT64_MAX - 1 : it->credit + bytes;
	flush_item(it);
	if (!it->open)
		return;
	weir__agents_trim(it->ar);
	maybe_resume_client(it->ar);
}

void weir__item_need_more(struct weir_aitem *it)
{
	struct weir_areq *ar = it->ar;

	if (it->rq != WEIR_AI_PENDING)
		return;
	if (!it->wants_body && ar->c->req_body != WEIR_H1_BODY_NONE) {
		it->wants_body = true;
		it->sent = ar->held_off;
	}
	item_timer_update(it, true);
	flush_item(it);
}

void weir__item_writable(struct weir_aitem *it)
{
	struct weir_areq *ar = it->ar;

	flush_item(it);
	if (!it->open)
		return;
	weir__agents_trim(ar);
	if (ar->resp_paused && ar->pending_req == 0 &&
	    (!ar->resp_head_sent || ar->pending_resp == 0)) {
		resume_upstream(ar);
		return;
	}
	maybe_resume_client(ar);
}

/* ---- hooks for the client and upstream sides ---------------------------- */

int weir__agents_begin(struct weir_client *c, const struct weir_h1_request *req)
{
	struct weir_reactor *r = c->s.r;
	const struct weir_conf_route *route = c->route;
	struct weir_agent_req_info ri;
	struct weir_areq *ar;

	ar = weir_calloc(1, sizeof(*ar) + route->nagents * sizeof(ar->items[0]));
	if (ar == NULL)
		return -1;
	ar->c = c;
	ar->n = route->nagents;
	ar->t0_ms = weir__now(r);
	snprintf(ar->uid, sizeof(ar->uid), "%x-%" PRIx64, r->id, ++r->agent_seq);
	c->ar = ar;
	ri.req = req;
	ri.client_addr = c->ip;
	ri.client_port = c->port;
	ri.route = route->name;
	ri.uid = ar->uid;
	for (unsigned i = 0; i < ar->n; i++) {
		struct weir_aitem *it = &ar->items[i];
		struct weir_agent_rt *rt = c->rg->agents[route->agents[i]->index];
		struct weir_agentconn *ac;
		bool probe;
		uint32_t len;
		char *f;

		it->ar = ar;
		it->rt = rt;
		weir_timer_init(&it->timer, item_timer);
		ac = weir__agent_pick(rt, &probe);
		if (ac == NULL) {
			weir_metrics_agent_failure(&r->metrics, rt->mslot);
			summary_add(ar, rt, "unavailable", NULL, 0);
			if (rt->conf->fail_open)
				continue;
			weir__agents_end(c, WEIR_AGENT_CANCEL_ANSWERED);
			return 503;
		}
		if (weir__ac_open_id(ac, it) != 0)
			return -1;
		it->probe = probe;
		it->events = ac->events;
		it->buffer = rt->conf->body_mode == WEIR_BODY_BUFFER;
		it->wants_body = (it->events & WEIR_AGENT_EV_REQUEST_BODY) &&
				 req->body != WEIR_H1_BODY_NONE;
		if (it->wants_body && ac->shm_on)
			weir__shm_client_rx(ac, &c->s);
		it->credit = ac->window;
		it->rq = WEIR_AI_PENDING;
		ar->pending_req++;
		if (it->buffer) {
			ar->wait_hold++;
			ar->hold_limit = WEIR_MAX(ar->hold_limit, rt->conf->max_body);
		}
		f = weir_agent_enc_request_headers(it->id, &ri, &len);
		if (weir__ac_send(ac, f, len) != 0)
			return -1;
		WEIR_TRACE4(agent_event_sent, c, rt->mslot, WEIR_AGENT_REQUEST_HEADERS, it->id);
		item_timer_update(it, true);
	}
	ar->hold = ar->wait_hold != 0;
	if (ar->hold_limit == 0)
		ar->hold_limit = 1u << 20;
	return WEIR_AG_GO;
}

int weir__agents_body(struct weir_client *c, const weir_slice_t *spans, size_t ns, uint16_t bid,
		      bool last)
{
	struct weir_areq *ar = c->ar;
	bool keep = ar->hold;

	for (unsigned i = 0; i < ar->n && !keep; i++)
		keep = needs_body(&ar->items[i]);
	if (!keep)
		weir__agents_trim(ar);
	for (size_t k = 0; k < ns; k++) {
		if (spans[k].len == 0)
			continue;
		if (keep && hold_span(ar, spans[k].ptr, (uint32_t)spans[k].len, bid) != 0)
			return -1;
		ar->body_total += spans[k].len;
		if (!keep)
			ar->held_off = ar->body_total;
	}
	if (last)
		ar->body_done = true;
	/* max_body: inspection stops there */
	for (unsigned i = 0; i < ar->n; i++) {
		struct weir_aitem *it = &ar->items[i];

		if (!it->open || it->rq != WEIR_AI_PENDING || !it->wants_body ||
		    ar->body_total <= it->rt->conf->max_body)
			continue;
		if (!it->rt->conf->fail_open) {
			mark_req_done(it);
			item_close(it, WEIR_AGENT_CANCEL_BODY_LIMIT);
			ar_block_status(ar, 413, "body over the agent's max_body");
			return WEIR_AG_ANSWERED;
		}
		mark_req_done(it);
		item_close(it, WEIR_AGENT_CANCEL_BODY_LIMIT);
	}
	for (unsigned i = 0; i < ar->n; i++) {
		struct weir_aitem *it = &ar->items[i];

		if (needs_body(it))
			flush_item(it);
		else if (it->open)
			item_timer_update(it, false);
		if (c->ar != ar || c->s.closed)
			return WEIR_AG_ANSWERED;
	}
	weir__agents_trim(ar);
	if (ar->hold && ar->wait_hold == 0) {
		/* the last buffer-mode agent was skipped (open, over max_body) */
		ar_eval(ar);
		return c->ar != ar || c->s.closed || c->state != WEIR_C_BODY ? WEIR_AG_ANSWERED
									      : WEIR_AG_GO;
	}
	if (ar->hold ? ar->held_bytes >= ar->hold_limit : ar->held_bytes > STREAM_HELD_MAX)
		return WEIR_AG_WAIT;
	return WEIR_AG_GO;
}

int weir__agents_response_gate(struct weir_client *c)
{
	struct weir_areq *ar = c->ar;

	if (ar == NULL || ar->pending_req == 0)
		return WEIR_AG_GO;
	ar->resp_paused = true;
	return WEIR_AG_WAIT;
}

int weir__agents_response_head(struct weir_client *c, const struct weir_h1_response *res)
{
	struct weir_areq *ar = c->ar;

	if (ar == NULL)
		return WEIR_AG_GO;
	if (!ar->resp_head_sent) {
		ar->resp_head_sent = true;
		for (unsigned i = 0; i < ar->n; i++) {
			struct weir_aitem *it = &ar->items[i];
			uint32_t len;
			char *f;

			if (!it->open || !(it->events & WEIR_AGENT_EV_RESPONSE_HEADERS))
				continue;
			f = weir_agent_enc_response_headers(it->id, res, &len);
			if (weir__ac_send(it->conn, f, len) != 0) {
				weir__item_fail(it, 503, 0);
				if (c->ar != ar || c->s.closed)
					return WEIR_AG_ANSWERED;
				continue;
			}
			if (res->body == WEIR_H1_BODY_NONE ||
			    (res->body == WEIR_H1_BODY_LENGTH && res->content_length == 0))
				it->resp_last_sent = true;
			WEIR_TRACE4(agent_event_sent, c, it->rt->mslot,
				    WEIR_AGENT_RESPONSE_HEADERS, it->id);
			it->rs = WEIR_AI_PENDING;
			ar->pending_resp++;
			item_timer_update(it, true);
		}
	}
	if (ar->pending_resp == 0)
		return WEIR_AG_GO;
	ar->resp_paused = true;
	return WEIR_AG_WAIT;
}

void weir__agents_response_body(struct weir_client *c, const weir_slice_t *spans, size_t ns,
				uint16_t bid, bool last)
{
	struct weir_areq *ar = c->ar;

	for (unsigned i = 0; i < ar->n; i++) {
		struct weir_aitem *it = &ar->items[i];
		struct weir_agentconn *ac = it->conn;

		if (!it->open || !(it->events & WEIR_AGENT_EV_RESPONSE_BODY) || it->resp_last_sent)
			continue;
		for (size_t k = 0; k < ns; k++) {
			if (spans[k].len == 0)
				continue;
			if (push_body_frame(ac, WEIR_AGENT_RESPONSE_BODY, it->id, false,
					    it->resp_sent, spans[k].ptr, (uint32_t)spans[k].len,
					    bid) != 0) {
				weir__ac_fail(ac, "out of memory");
				goto next;
			}
			it->resp_sent += spans[k].len;
		}
		if (last) {
			if (push_body_frame(ac, WEIR_AGENT_RESPONSE_BODY, it->id, true,
					    it->resp_sent, NULL, 0, 0) != 0) {
				weir__ac_fail(ac, "out of memory");
				goto next;
			}
			it->resp_last_sent = true;
		}
		weir__ac_mark(ac);
		if (weir__ac_full(ac) && c->u != NULL) {
			/* the agent reads slower than the upstream sends */
			ac->want_writers = true;
			ar->resp_paused = true;
			weir__sock_pause(&c->u->s);
		}
next:
		if (c->ar != ar)
			return;
	}
}

void weir__agents_end(struct weir_client *c, unsigned cancel_reason)
{
	struct weir_areq *ar = c->ar;
	struct weir_bufpool *pool = &c->s.r->pool;

	if (ar == NULL)
		return;
	c->ar = NULL;
	/* the next request (another route, maybe) is not received into memory
	 * an agent maps: back to the main pool */
	weir__sock_rx_group(&c->s, 0);
	for (unsigned i = 0; i < ar->n; i++) {
		struct weir_aitem *it = &ar->items[i];
		bool pending = it->rq == WEIR_AI_PENDING || it->rs == WEIR_AI_PENDING;

		if (it->open) {
			if (pending || cancel_reason != 0) {
				item_close(it, cancel_reason ? cancel_reason
							     : WEIR_AGENT_CANCEL_ANSWERED);
			} else {
				if (it->events & WEIR_AGENT_EV_REQUEST_DONE) {
					uint32_t len;
					char *f = weir_agent_enc_done(
						it->id, (unsigned)c->status, ar->body_total,
						c->resp_bytes,
						(weir__now(c->s.r) - ar->t0_ms) * 1000u, &len);

					weir__ac_send(it->conn, f, len);
				}
				item_close(it, 0);
			}
		}
		weir_timer_cancel(&c->s.r->wheel, &it->timer);
	}
	for (uint32_t i = 0; i < ar->nspans; i++)
		weir_buf_unref(pool, ar->spans[i].bid);
	for (unsigned i = 0; i < ar->nmuts; i++)
		weir_free(ar->muts[i].name);
	weir_free(ar->muts);
	weir_free(ar->replace);
	weir_free(ar->spans);
	weir_free(ar);
}

/* ---- header mutations --------------------------------------------------- */

struct hline {
	const char *name;
	uint32_t nlen;
	const char *value;
	uint32_t vlen;
};

static bool name_eq(const struct hline *l, const struct weir_hmut *m)
{
	return l->nlen == m->nlen && strncasecmp(l->name, m->name, m->nlen) == 0;
}

char *weir__agents_mutate(struct weir_areq *ar, bool response, char *head, uint32_t *len)
{
	uint8_t set = response ? WEIR_MUT_RESP_SET : WEIR_MUT_REQ_SET;
	uint8_t add = response ? WEIR_MUT_RESP_ADD : WEIR_MUT_REQ_ADD;
	uint8_t del = response ? WEIR_MUT_RESP_DEL : WEIR_MUT_REQ_DEL;
	unsigned nm = 0, nl = 0, cap;
	const char *p = head, *end = head + *len, *first_end;
	struct hline *lines;
	size_t size;
	char *out, *w;

	for (unsigned i = 0; i < ar->nmuts; i++)
		if (ar->muts[i].list == set || ar->muts[i].list == add || ar->muts[i].list == del)
			nm++;
	if (nm == 0 || head == NULL)
		return head;
	/* Our own head: "line\r\n" ("Name: value\r\n")* "\r\n". */
	first_end = memmem(p, (size_t)(end - p), "\r\n", 2);
	if (first_end == NULL)
		return head;
	cap = nm;
	for (const char *q = first_end + 2; q < end; q++)
		if (*q == '\n')
			cap++;
	lines = weir_malloc(cap * sizeof(*lines));
	if (lines == NULL) {
		weir_free(head);
		return NULL;
	}
	for (p = first_end + 2; p + 2 <= end && !(p[0] == '\r' && p[1] == '\n');) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		const char *colon = memchr(p, ':', eol != NULL ? (size_t)(eol - p) : 0);

		if (eol == NULL || colon == NULL || colon + 2 > eol)
			break;
		lines[nl].name = p;
		lines[nl].nlen = (uint32_t)(colon - p);
		lines[nl].value = colon + 2;
		lines[nl].vlen = (uint32_t)(eol - colon - 2);
		nl++;
		p = eol + 2;
	}
	for (unsigned i = 0; i < ar->nmuts; i++) {
		const struct weir_hmut *m = &ar->muts[i];
		weir_slice_t nslice = { m->name, m->nlen };
		unsigned k = 0;

		if (m->list != set && m->list != add && m->list != del)
			continue;
		if (weir_agent_protected_header(nslice))
			continue;
		if (m->list != add) {
			for (unsigned j = 0; j < nl; j++)
				if (!name_eq(&lines[j], m))
					lines[k++] = lines[j];
			nl = k;
		}
		if (m->list != del && nl < cap) {
			lines[nl].name = m->name;
			lines[nl].nlen = m->nlen;
			lines[nl].value = m->value;
			lines[nl].vlen = m->vlen;
			nl++;
		}
	}
	size = (size_t)(first_end + 2 - head) + 2;
	for (unsigned j = 0; j < nl; j++)
		size += lines[j].nlen + lines[j].vlen + 4;
	out = weir_malloc(size);
	if (out != NULL) {
		w = out;
		memcpy(w, head, (size_t)(first_end + 2 - head));
		w += first_end + 2 - head;
		for (unsigned j = 0; j < nl; j++) {
			memcpy(w, lines[j].name, lines[j].nlen);
			w += lines[j].nlen;
			*w++ = ':';
			*w++ = ' ';
			memcpy(w, lines[j].value, lines[j].vlen);
			w += lines[j].vlen;
			*w++ = '\r';
			*w++ = '\n';
		}
		*w++ = '\r';
		*w++ = '\n';
		*len = (uint32_t)(w - out);
	}
	weir_free(lines);
	weir_free(head);
	return out;
}

char *weir__agents_reframe(struct weir_areq *ar, char *head, uint32_t *len)
{
	const char *p = head, *end = head + *len, *eol;
	char num[24], *out, *w;
	int nl = snprintf(num, sizeof(num), "%u", ar->replace_len);

	out = weir_malloc(*len + sizeof("Content-Length: \r\n") + (size_t)nl);
	if (out == NULL) {
		weir_free(head);
		return NULL;
	}
	w = out;
	/* request line, then every field but the framing ones */
	while (p < end && (eol = memmem(p, (size_t)(end - p), "\r\n", 2)) != NULL) {
		size_t n = (size_t)(eol + 2 - p);

		if (n == 2)
			break;  /* the blank line */
		if (!(n > 15 && strncasecmp(p, "Content-Length:", 15) == 0) &&
		    !(n > 18 && strncasecmp(p, "Transfer-Encoding:", 18) == 0)) {
			memcpy(w, p, n);
			w += n;
		}
		p = eol + 2;
	}
	memcpy(w, "Content-Length: ", 16);
	w += 16;
	memcpy(w, num, (size_t)nl);
	w += nl;
	memcpy(w, "\r\n\r\n", 4);
	w += 4;
	*len = (uint32_t)(w - out);
	weir_free(head);
	return out;
}
