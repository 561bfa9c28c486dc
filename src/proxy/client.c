/* Client connections: request heads, request bodies, response ordering.
 *
 * One exchange at a time per connection: a pipelined request waits in the
 * receive queue until the response before it has been queued completely, so
 * responses leave in request order without any reordering state. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <strings.h>
#include <sys/socket.h>

#include "weir/alloc.h"
#include "weir/proxy.h"
#include "weir/trace.h"

#define LINGER_MS 2000u
#define SEND_TIMEOUT_MS 60000u

static const char continue_100[] = "HTTP/1.1 100 Continue\r\n\r\n";
static const char last_chunk[] = "0\r\n\r\n";
static const char crlf[] = "\r\n";

static void client_process(struct weir_client *c);
static void head_error_exchange(struct weir_client *c);

static inline struct weir_reactor *R(struct weir_client *c)
{
	return c->s.r;
}

static void set_deadline(struct weir_client *c, uint64_t ms)
{
	weir_timer_arm(&R(c)->wheel, &c->s.timer, weir__now(R(c)) + ms);
}

/* ---- access log ---------------------------------------------------------- */

#define LG_FIELD_MAX 8192u      /* longer fields are cut in the log */
#define LG_ABSENT UINT16_MAX

/* The request fields the log line needs outlive the head in the receive
 * queue: copy them (only while an access log is open). */
static void log_capture(struct weir_client *c, const struct weir_h1_request *req)
{
	weir_slice_t f[5] = { req->method, req->target, req->host, { NULL, 0 }, { NULL, 0 } };
	size_t need = 0, off = 0;

	c->up_addr = NULL;
	for (unsigned i = 0; i < 5; i++)
		c->lg_len[i] = LG_ABSENT;
	if (R(c)->alog.fd < 0)
		return;
	for (size_t i = 0; i < req->nheaders; i++) {
		const struct weir_h1_header *h = &req->headers[i];

		if (WEIR_SLICE_IEQ(h->name, "user-agent"))
			f[3] = h->value;
		else if (WEIR_SLICE_IEQ(h->name, "referer"))
			f[4] = h->value;
	}
	for (unsigned i = 0; i < 5; i++)
		need += WEIR_MIN(f[i].len, (size_t)LG_FIELD_MAX);
	if (need > c->lg_cap) {
		char *nb = weir_realloc(c->lg, need);

		if (nb == NULL)
			return;         /* logged with the fields absent */
		c->lg = nb;
		c->lg_cap = (uint32_t)need;
	}
	for (unsigned i = 0; i < 5; i++) {
		size_t n = WEIR_MIN(f[i].len, (size_t)LG_FIELD_MAX);

		if (f[i].ptr == NULL || (i == 2 && n == 0))
			continue;
		memcpy(c->lg + off, f[i].ptr, n);
		c->lg_len[i] = (uint16_t)n;
		off += n;
	}
}

static void log_request(struct weir_client *c, uint64_t dur_ns)
{
	struct weir_reactor *r = R(c);
	struct weir_alog_rec q = { 0 };
	weir_slice_t *f[5] = { &q.method, &q.target, &q.host, &q.user_agent, &q.referer };
	char id[32];
	size_t off = 0;

	for (unsigned i = 0; i < 5; i++) {
		if (c->lg_len[i] == LG_ABSENT)
			continue;
		f[i]->ptr = c->lg + off;
		f[i]->len = c->lg_len[i];
		off += c->lg_len[i];
	}
	if (q.method.ptr == NULL)
		q.method = (weir_slice_t){ "-", 1 };
	if (q.target.ptr == NULL)
		q.target = (weir_slice_t){ "-", 1 };
	q.client_ip = c->ip;
	q.client_port = c->port;
	q.status = c->resp_started ? c->status : 0;
	q.bytes = c->resp_bytes;
	q.req_bytes = c->req_bytes;
	q.dur_ns = dur_ns;
	q.minor = c->minor;
	q.route = c->route != NULL ? c->route->name : NULL;
	q.upstream = c->up_addr;
	q.upstream_ns = c->up_ns;
	if (c->ar != NULL) {
		q.agents = (weir_slice_t){ c->ar->summary, c->ar->summary_len };
		q.id = (weir_slice_t){ c->ar->uid, strlen(c->ar->uid) };
	} else {
		int n = snprintf(id, sizeof(id), "%x-%" PRIx64, r->id, ++r->agent_seq);

		q.id = (weir_slice_t){ id, n > 0 ? (size_t)n : 0 };
	}
	weir__alog_write(r, &q);
}

/* A head that never parsed (400, 408, 431): still one request in the
 * metrics and the access log, without a method, target or route. */
static void head_error_exchange(struct weir_client *c)
{
	c->method = WEIR_M_OTHER;
	c->req_done = true;
	c->route = NULL;
	c->t0_ns = weir__now_ns(R(c));
	c->in_exchange = true;
	c->resp_bytes = 0;
	c->req_bytes = 0;
	c->up_addr = NULL;
	for (unsigned i = 0; i < 5; i++)
		c->lg_len[i] = LG_ABSENT;
}

/* One request in the metrics (and the access log): at the end of its
 * exchange, or when the connection closes in the middle of it. */
static void count_request(struct weir_client *c)
{
	if (!c->in_exchange)
		return;
	c->in_exchange = false;
	if (R(c)->alog.fd >= 0)
		log_request(c, weir__now_ns(R(c)) - c->t0_ns);
	weir_metrics_request(&R(c)->metrics,
			     c->route != NULL && c->rg != NULL ? c->rg->route_mslot[c->route->index]
							      : 0,
			     c->method, c->resp_started ? c->status : 0,
			     weir__now_ns(R(c)) - c->t0_ns);
}

/* The exchange no longer needs the configuration it started on. After the
 * agents ended: their runtimes may go with the generation. */
static void release_gen(struct weir_client *c)
{
	if (c->rg != NULL) {
		struct weir_rgen *rg = c->rg;

		c->rg = NULL;
		c->route = NULL;
		weir__rgen_put(R(c), rg);
	}
}

static void client_close(struct weir_client *c)
{
	count_request(c);
	if (c->ar != NULL)
		weir__agents_end(c, WEIR_AGENT_CANCEL_CLIENT_GONE);
	if (c->u != NULL) {
		/* Mid-exchange upstream connections are never reused. */
		c->u->c = NULL;
		weir__sock_close(&c->u->s);
		c->u = NULL;
	}
	release_gen(c);
	weir__sock_close(&c->s);
}

static void count_status(struct weir_client *c, int status)
{
	unsigned cls = (unsigned)status / 100;

	c->status = status;
	R(c)->stats.responses[cls <= 5 ? cls : 0]++;
}

static void drop_retry_copy(struct weir_client *c)
{
	weir_free(c->up_head);
	c->up_head = NULL;
}

/* The response is fully queued and the request fully read (or abandoned):
 * move on to the next request, or towards closing. */
static void exchange_done(struct weir_client *c)
{
	count_request(c);
	WEIR_TRACE4(request_end, c, c->s.fd, c->status, c->resp_bytes);
	if (c->ar != NULL)
		weir__agents_end(c, 0);
	weir_free(c->held_head);
	c->held_head = NULL;
	drop_retry_copy(c);
	release_gen(c);
	c->proxying = false;
	if (c->close_after || R(c)->stopping) {
		c->state = WEIR_C_DRAIN;
		weir_inq_clear(&c->s.in, &R(c)->pool);
		weir__sock_resume(&c->s);
		if (c->s.out.bytes == 0 && !c->s.sending) {
			/* nothing left to send: on_send will not run */
			shutdown(c->s.fd, SHUT_WR);
			c->state = WEIR_C_LINGER;
			set_deadline(c, LINGER_MS);
		}
		return;
	}
	c->state = WEIR_C_HEAD;
	c->head_started = false;
	if (c->s.in.bytes == 0)
		set_deadline(c, R(c)->conf->keepalive_timeout_ms);
	weir__sock_resume(&c->s);
}

/* Queues a head weir wrote. flush: send now (local responses); a proxied
 * response head waits for the body bytes that arrived with it, so that both
 * leave in one send (and one TCP segment for small responses). */
static void queue_owned(struct weir_client *c, char *buf, uint32_t len, bool flush)
{
	if (buf == NULL || weir_outq_push_owned(&c->s.out, buf, buf, len) != 0) {
		client_close(c);
		return;
	}
	if (flush)
		weir__sock_flush(&c->s);
}

/* A response weir writes itself. The request body, if any, is read and
 * discarded unless the connection closes after this response. */
static void local_response(struct weir_client *c, int status, const struct weir_conf_header *h,
			   unsigned nh, const char *body, size_t body_len)
{
	uint32_t len;
	char *buf;

	buf = weir__build_local(status, h, nh, body, body_len, c->method == WEIR_M_HEAD,
				c->close_after || R(c)->stopping, &len);
	count_status(c, status);
	c->proxying = false;
	c->resp_started = true;
	c->resp_done = true;
	queue_owned(c, buf, len, true);
	if (c->s.closed)
		return;
	if (c->req_done || c->close_after)
		exchange_done(c);
	else
		c->state = WEIR_C_BODY; /* discard the body, then go on */
}

static void local_text(struct weir_client *c, int status, const char *text)
{
	local_response(c, status, NULL, 0, text, strlen(text));
}

/* Errors after which the connection cannot be trusted any more. */
static void local_error(struct weir_client *c, int status, const char *reason)
{
	char body[128];
	int n = snprintf(body, sizeof(body), "%d %s%s%s\n", status, weir__status_text(status),
			 reason != NULL ? ": " : "", reason != NULL ? reason : "");

	c->close_after = true;
	local_response(c, status, NULL, 0, body, (size_t)WEIR_MIN(n, (int)sizeof(body) - 1));
}

static bool retryable(enum weir_h1_method m)
{
	return m == WEIR_M_GET || m == WEIR_M_HEAD || m == WEIR_M_PUT || m == WEIR_M_DELETE ||
	       m == WEIR_M_OPTIONS || m == WEIR_M_TRACE;
}

/* Keeps a copy of the upstream head for the one retry an idempotent request
 * without a body may get. */
static void keep_retry_copy(struct weir_client *c, const char *head, uint32_t len)
{
	if (!c->req_done || !retryable((enum weir_h1_method)c->method))
		return;
	c->up_head = weir_malloc(len);
	if (c->up_head != NULL) {
		memcpy(c->up_head, head, len);
		c->up_head_len = len;
	}
}

/* Hands the request head to an upstream connection of the route's group. */
static bool send_upstream(struct weir_client *c, char *head, uint32_t len)
{
	struct weir_upconn *u = weir__upstream_acquire(R(c), c->rg->ups[c->route->upstream->index]);

	if (u == NULL) {
		weir_free(head);
		return false;
	}
	c->u = u;
	u->c = c;
	if (weir_outq_push_owned(&u->s.out, head, head, len) != 0) {
		client_close(c);
		return false;
	}
	/* With a body, the head leaves together with the first body bytes
	 * (pump_body kicks the upstream). */
	if (c->req_done)
		weir__upstream_kick(u);
	return true;
}

static void start_request(struct weir_client *c, const struct weir_h1_request *req, size_t hlen)
{
	struct weir_reactor *r = R(c);
	const struct weir_conf_route *route;
	enum weir_frame frame = WEIR_FRAME_NONE;
	uint64_t length = 0;
	uint32_t len;
	char *head;

	r->stats.requests++;
	c->nreq++;
	c->t0_ns = weir__now_ns(R(c));
	c->in_exchange = true;
	WEIR_TRACE3(request_start, c, c->s.fd, req->method_id);
	c->method = (uint8_t)req->method_id;
	c->minor = (uint8_t)req->minor_version;
	c->close_after = (req->flags & WEIR_H1_F_CONN_CLOSE) != 0 || r->stopping;
	c->req_body = (uint8_t)req->body;
	c->req_remaining = req->content_length;
	c->req_bytes = 0;
	c->req_done = req->body == WEIR_H1_BODY_NONE;
	c->resp_bytes = 0;
	c->status = 0;
	c->resp_started = false;
	c->resp_done = false;
	c->body_streamed = false;
	c->retried = false;
	c->proxying = false;
	weir_chunked_init(&c->req_chunk);
	weir_timer_cancel(&r->wheel, &c->s.timer);
	log_capture(c, req);

	/* the exchange runs on the configuration current now, to its end */
	if (c->rg == NULL)
		c->rg = weir__rgen_get(r);
	route = weir_router_match(c->rg->g->router, req->host, req->path, req->method_id);
	c->route = route;
	if (route == NULL) {
		weir_inq_consume(&c->s.in, &r->pool, hlen);
		weir__head_reset(&c->s);
		local_text(c, 404, "404 Not Found: no route\n");
		return;
	}
	if (route->max_body != 0 && req->body == WEIR_H1_BODY_LENGTH &&
	    req->content_length > route->max_body) {
		weir_inq_consume(&c->s.in, &r->pool, hlen);
		weir__head_reset(&c->s);
		local_error(c, 413, "body over the route's max_body");
		return;
	}
	if (route->is_return) {
		weir_inq_consume(&c->s.in, &r->pool, hlen);
		weir__head_reset(&c->s);
		local_response(c, route->ret.status, route->ret.headers, route->ret.nheaders,
			       route->ret.body, route->ret.body_len);
		return;
	}

	if (req->body == WEIR_H1_BODY_LENGTH) {
		frame = WEIR_FRAME_LENGTH;
		length = req->content_length;
	} else if (req->body == WEIR_H1_BODY_CHUNKED) {
		frame = WEIR_FRAME_CHUNKED;
	} else {
		/* "Content-Length: 0" stays explicit: some origins want a
		 * length on every POST. */
		for (size_t i = 0; i < req->nheaders; i++)
			if (req->kind[i] == WEIR_H_CONTENT_LENGTH)
				frame = WEIR_FRAME_LENGTH;
	}
	head = weir__build_request_head(req, c->ip, frame, length, &len);
	if (head != NULL && route->nagents != 0) {
		/* The agents see the request as received (the head is still
		 * in the receive queue: parse slices point into it). */
		int ret = weir__agents_begin(c, req);

		if (ret != WEIR_AG_GO) {
			weir_free(head);
			weir_inq_consume(&c->s.in, &r->pool, hlen);
			weir__head_reset(&c->s);
			if (ret < 0) {
				client_close(c);
				return;
			}
			if (!c->req_done)
				c->close_after = true;
			local_text(c, ret, "503 Service Unavailable: agent unavailable\n");
			return;
		}
	}
	weir_inq_consume(&c->s.in, &r->pool, hlen);
	weir__head_reset(&c->s);
	if (head == NULL) {
		client_close(c);
		return;
	}
	c->proxying = true;
	/* weir answers 100-continue itself, whether the body goes upstream
	 * at once or waits for the agents. */
	if ((req->flags & WEIR_H1_F_EXPECT_CONTINUE) && !c->req_done && req->minor_version == 1 &&
	    c->s.in.bytes == 0) {
		if (weir_outq_push_static(&c->s.out, continue_100, sizeof(continue_100) - 1) != 0) {
			weir_free(head);
			client_close(c);
			return;
		}
		weir__sock_flush(&c->s);
	}
	if (c->ar != NULL && c->ar->hold) {
		/* Nothing goes upstream before the verdicts (buffer mode). */
		c->held_head = head;
		c->held_head_len = len;
	} else {
		keep_retry_copy(c, head, len);
		if (!send_upstream(c, head, len)) {
			if (!c->s.closed) {
				c->proxying = false;
				local_error(c, 502, "cannot open an upstream connection");
			}
			return;
		}
	}
	if (c->req_done) {
		c->state = WEIR_C_WAIT;
	} else {
		c->state = WEIR_C_BODY;
		set_deadline(c, r->conf->client_body_timeout_ms);
	}
}

/* The request body went wrong (bad chunk, over max_body): answer if nothing
 * was answered yet, else just close. */
static void body_error(struct weir_client *c, int status, const char *reason)
{
	if (c->u != NULL) {
		c->u->c = NULL;
		weir__sock_close(&c->u->s);
		c->u = NULL;
	}
	c->proxying = false;
	if (c->resp_started) {
		client_close(c);
		return;
	}
	c->req_done = true;
	local_error(c, status, reason);
}

static bool sink(struct weir_client *c, const char *p, uint32_t len, uint16_t bid)
{
	if (!c->proxying || c->u == NULL || len == 0)
		return true;
	c->body_streamed = true;
	return weir_outq_push_ref(&c->u->s.out, &R(c)->pool, p, len, bid) == 0;
}

/* One chunk made of spans of buffer bid, appended to q: weir's own
 * chunk-size line, the data by reference, CRLF. */
static int push_chunk(struct weir_outq *q, struct weir_bufpool *pool, const weir_slice_t *spans,
		      size_t ns, uint16_t bid)
{
	uint64_t total = 0;
	char line[24];
	int n;

	for (size_t i = 0; i < ns; i++)
		total += spans[i].len;
	if (total == 0)
		return 0;
	n = snprintf(line, sizeof(line), "%" PRIx64 "\r\n", total);
	if (weir_outq_push_inline(q, line, (uint32_t)n) != 0)
		return -1;
	for (size_t i = 0; i < ns; i++)
		if (weir_outq_push_ref(q, pool, spans[i].ptr, (uint32_t)spans[i].len, bid) != 0)
			return -1;
	return weir_outq_push_static(q, crlf, 2);
}

static bool sink_chunk(struct weir_client *c, const weir_slice_t *spans, size_t ns, uint16_t bid)
{
	if (!c->proxying || c->u == NULL)
		return true;
	c->body_streamed = true;
	return push_chunk(&c->u->s.out, &R(c)->pool, spans, ns, bid) == 0;
}

/* Moves request body bytes from the receive queue to the upstream (or to
 * nowhere, for local responses). Returns true when the body is complete. */
static bool pump_body(struct weir_client *c)
{
	struct weir_reactor *r = R(c);
	const struct weir_conf_route *route = c->route;

	while (!c->req_done && c->s.in.bytes != 0) {
		const char *p = NULL;
		uint16_t bid = 0;
		size_t len = weir_inq_peek(&c->s.in, &r->pool, &p, &bid);
		weir_slice_t spans[16];
		size_t ns, used;
		bool pause = false;

		if (c->req_body == WEIR_H1_BODY_LENGTH) {
			uint32_t take = (uint32_t)WEIR_MIN((uint64_t)len, c->req_remaining);

			if (!sink(c, p, take, bid))
				goto oom;
			spans[0].ptr = p;
			spans[0].len = take;
			ns = 1;
			used = take;
			c->req_remaining -= take;
			if (c->req_remaining == 0)
				c->req_done = true;
		} else {
			ssize_t n;

			ns = WEIR_ARRAY_SIZE(spans);
			n = weir_chunked_decode(&c->req_chunk, p, len, spans, &ns);
			if (n < 0) {
				body_error(c, 400, "invalid chunked body");
				return false;
			}
			if (!sink_chunk(c, spans, ns, bid))
				goto oom;
			used = (size_t)n;
			if (c->req_chunk.done) {
				c->req_done = true;
				if (c->proxying && c->u != NULL &&
				    weir_outq_push_static(&c->u->s.out, last_chunk,
							  sizeof(last_chunk) - 1) != 0)
					goto oom;
			}
		}
		for (size_t i = 0; i < ns; i++)
			c->req_bytes += spans[i].len;
		if (c->ar != NULL) {
			int a;

			/* The agents take their own references; ours keeps the
			 * buffer alive across the consume. */
			weir_buf_ref(&r->pool, bid);
			weir_inq_consume(&c->s.in, &r->pool, used);
			a = weir__agents_body(c, spans, ns, bid, c->req_done);
			weir_buf_unref(&r->pool, bid);
			if (a < 0)
				goto oom;
			if (a == WEIR_AG_ANSWERED)
				return !c->s.closed;
			pause = a == WEIR_AG_WAIT;
		} else {
			weir_inq_consume(&c->s.in, &r->pool, used);
		}
		if (route != NULL && route->max_body != 0 && c->req_bytes > route->max_body) {
			body_error(c, 413, "body over the route's max_body");
			return false;
		}
		if (pause || (c->proxying && c->u != NULL && weir_outq_full(&c->u->s.out))) {
			weir__sock_pause(&c->s);
			break;
		}
	}
	if (c->proxying && c->u != NULL)
		weir__upstream_kick(c->u);
	if (!c->req_done) {
		if (c->eof) {
			/* The client went away in the middle of its body. */
			client_close(c);
			return false;
		}
		set_deadline(c, r->conf->client_body_timeout_ms);
		return false;
	}
	weir_timer_cancel(&r->wheel, &c->s.timer);
	if (c->resp_done) {
		exchange_done(c);
	} else {
		c->state = WEIR_C_WAIT;
	}
	return true;

oom:
	client_close(c);
	return false;
}

static void client_process(struct weir_client *c)
{
	struct weir_reactor *r = R(c);

	while (!c->s.closed) {
		switch (c->state) {
		case WEIR_C_HEAD: {
			const char *p;
			size_t n;
			int ret;

			if (c->s.in.bytes == 0) {
				if (c->eof)
					client_close(c);
				return;
			}
			if (!c->head_started) {
				c->head_started = true;
				set_deadline(c, r->conf->client_header_timeout_ms);
			}
			n = weir__head_view(&c->s, &p);
			if (n == 0) {
				client_close(c);
				return;
			}
			ret = weir_h1_parse_request(p, n, &r->req);
			if (ret == WEIR_H1_NEED_MORE) {
				if (c->eof) {
					client_close(c);
				} else if (c->s.in.bytes >= WEIR_HEADBUF_MAX) {
					head_error_exchange(c);
					local_error(c, 431, "header block too large");
				}
				return;
			}
			if (ret < 0) {
				head_error_exchange(c);
				local_error(c, r->req.error ? r->req.error : 400, r->req.reason);
				return;
			}
			start_request(c, &r->req, (size_t)ret);
			break;
		}
		case WEIR_C_BODY:
			if (!pump_body(c))
				return;
			break;
		case WEIR_C_WAIT:
			/* A pipelined request waits its turn; bound what piles up. */
			if (c->s.in.bytes > WEIR_INQ_HIGH)
				weir__sock_pause(&c->s);
			return;
		case WEIR_C_DRAIN:
		case WEIR_C_LINGER:
			weir_inq_clear(&c->s.in, &r->pool);
			return;
		}
	}
}

static void client_timer(struct weir_timer *t)
{
	struct weir_client *c = weir_container_of(t, struct weir_client, s.timer);

	switch (c->state) {
	case WEIR_C_HEAD:
		if (c->head_started && c->s.out.bytes == 0) {
			head_error_exchange(c);
			local_error(c, 408, "request head not received in time");
			return;
		}
		break;
	case WEIR_C_BODY:
		if (!c->resp_started && c->proxying) {
			body_error(c, 408, "request body not received in time");
			return;
		}
		break;
	default:
		break;
	}
	client_close(c);
}

struct weir_client *weir__client_new(struct weir_reactor *r, int fd)
{
	struct weir_client *c = weir_calloc(1, sizeof(*c));
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (c == NULL)
		return NULL;
	weir__sock_init(r, &c->s, fd, WEIR_SOCK_CLIENT, client_timer);
	strcpy(c->ip, "unknown");
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, c->ip,
				  sizeof(c->ip));
			c->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, c->ip,
				  sizeof(c->ip));
			c->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		}
	}
	c->next = r->clients;
	if (c->next != NULL)
		c->next->prev = c;
	r->clients = c;
	r->nclients++;
	c->state = WEIR_C_HEAD;
	c->req_done = true;
	c->head_started = true;
	set_deadline(c, r->conf->client_header_timeout_ms);
	weir__sock_arm_recv(&c->s);
	return c;
}

void weir__client_free(struct weir_client *c)
{
	struct weir_reactor *r = R(c);

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		r->clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	r->nclients--;
	WEIR_BUG_ON(c->u != NULL);
	/* Every close path ends the agents' ids first (client_close,
	 * weir__client_abort); a socket closed underneath (out of memory in
	 * the reactor) lands here. */
	if (c->ar != NULL)
		weir__agents_end(c, WEIR_AGENT_CANCEL_CLIENT_GONE);
	release_gen(c);
	weir_free(c->held_head);
	weir_free(c->up_head);
	weir_free(c->lg);
	weir_free(c);
}

void weir__client_abort(struct weir_client *c, unsigned cancel_reason)
{
	count_request(c);       /* while the agents' verdicts are known */
	if (c->ar != NULL)
		weir__agents_end(c, cancel_reason);
	client_close(c);
}

void weir__client_stop(struct weir_client *c)
{
	if (c->state == WEIR_C_HEAD && c->s.in.bytes == 0 && c->s.out.bytes == 0)
		client_close(c);
	else
		c->close_after = true;
}

void weir__client_on_recv(struct weir_client *c, int res)
{
	if (res > 0) {
		client_process(c);
		return;
	}
	if (res < 0) {
		client_close(c);
		return;
	}
	c->eof = true;
	switch (c->state) {
	case WEIR_C_HEAD:
	case WEIR_C_BODY:
		client_process(c);
		break;
	case WEIR_C_WAIT:
		if (c->ar != NULL && c->ar->pending_req != 0) {
			/* Gone while its request waits for the agents (like
			 * nginx, a FIN here counts as the client leaving):
			 * they get CANCEL now, not a timeout later. */
			client_close(c);
			break;
		}
		/* Half-closed after a complete request: answer, then close. */
		c->close_after = true;
		break;
	case WEIR_C_DRAIN:
		break;
	case WEIR_C_LINGER:
		client_close(c);
		break;
	}
}

void weir__client_on_send(struct weir_client *c, int res)
{
	struct weir_reactor *r = R(c);

	if (res < 0) {
		client_close(c);
		return;
	}
	weir_outq_consume(&c->s.out, &r->pool, (size_t)res);
	if (c->u != NULL && !c->u->s.recv_want && weir_outq_drained(&c->s.out)) {
		weir__sock_resume(&c->u->s);
		/* bytes already received from the upstream move now */
		weir__upstream_kick_recv(c->u);
		if (c->s.closed)
			return;
	}
	if (c->s.out.bytes != 0) {
		weir__sock_flush(&c->s);
		set_deadline(c, SEND_TIMEOUT_MS);
		return;
	}
	if (c->state == WEIR_C_DRAIN) {
		if (c->eof) {
			client_close(c);
			return;
		}
		/* Lingering close: shut our side, read until the peer closes so
		 * that unread input does not turn our close into a reset that
		 * destroys the response in flight. */
		shutdown(c->s.fd, SHUT_WR);
		c->state = WEIR_C_LINGER;
		set_deadline(c, LINGER_MS);
		return;
	}
	if (c->state == WEIR_C_WAIT)
		weir_timer_cancel(&r->wheel, &c->s.timer);
	else if (c->state == WEIR_C_HEAD && !c->head_started)
		set_deadline(c, r->conf->keepalive_timeout_ms);
}

void weir__client_response_head(struct weir_client *c, const struct weir_h1_response *res)
{
	enum weir_frame frame;
	uint32_t len;
	char *buf;

	if (res->body == WEIR_H1_BODY_NONE)
		frame = WEIR_FRAME_NONE;
	else if (res->body == WEIR_H1_BODY_LENGTH)
		frame = WEIR_FRAME_LENGTH;
	else if (c->minor >= 1)
		frame = WEIR_FRAME_CHUNKED;
	else
		frame = WEIR_FRAME_CLOSE;
	if (frame == WEIR_FRAME_CLOSE || !c->req_done)
		c->close_after = true;
	c->out_frame = (uint8_t)frame;
	c->resp_started = true;
	drop_retry_copy(c);
	count_status(c, res->status);
	if (c->u != NULL) {
		c->up_addr = c->u->st->conf->servers[c->u->srv].text;
		c->up_ns = weir__now_ns(R(c)) - c->u->t_ns;
	}
	buf = weir__build_response_head(res, c->minor, c->method == WEIR_M_HEAD, frame,
					c->close_after || R(c)->stopping, &len);
	if (c->ar != NULL)
		buf = weir__agents_mutate(c->ar, true, buf, &len);
	queue_owned(c, buf, len, false);
}

void weir__client_response_spans(struct weir_client *c, const weir_slice_t *spans, size_t ns,
				 uint16_t bid)
{
	struct weir_reactor *r = R(c);

	if (c->s.closed)
		return;
	for (size_t i = 0; i < ns; i++)
		c->resp_bytes += spans[i].len;
	if (c->ar != NULL)
		weir__agents_response_body(c, spans, ns, bid, false);
	if (c->out_frame == WEIR_FRAME_CHUNKED) {
		if (push_chunk(&c->s.out, &r->pool, spans, ns, bid) != 0)
			client_close(c);
		return;
	}
	for (size_t i = 0; i < ns; i++) {
		if (weir_outq_push_ref(&c->s.out, &r->pool, spans[i].ptr, (uint32_t)spans[i].len,
				       bid) != 0) {
			client_close(c);
			return;
		}
	}
}

void weir__client_response_data(struct weir_client *c, const char *p, uint32_t len,
				uint16_t bid)
{
	weir_slice_t span = { p, len };

	weir__client_response_spans(c, &span, 1, bid);
}

void weir__client_response_end(struct weir_client *c)
{
	if (c->s.closed)
		return;
	c->u = NULL;
	if (c->ar != NULL)
		weir__agents_response_body(c, NULL, 0, 0, true);
	if (c->out_frame == WEIR_FRAME_CHUNKED &&
	    weir_outq_push_static(&c->s.out, last_chunk, sizeof(last_chunk) - 1) != 0) {
		client_close(c);
		return;
	}
	if (c->out_frame == WEIR_FRAME_CLOSE)
		c->close_after = true;
	c->resp_done = true;
	weir__sock_flush(&c->s);
	if (!c->req_done)
		c->close_after = true;
	exchange_done(c);
	client_process(c);
}

void weir__client_upstream_failed(struct weir_client *c, int status, bool retry_ok)
{
	bool retry;

	c->u = NULL;
	if (c->s.closed)
		return;
	retry = retry_ok && !c->retried && c->up_head != NULL && !c->body_streamed &&
		!c->resp_started;
	if (c->ar != NULL && !retry)
		weir__agents_end(c, WEIR_AGENT_CANCEL_UPSTREAM);
	if (retry) {
		char *head = c->up_head;

		c->retried = true;
		c->up_head = NULL;
		R(c)->stats.upstream_retries++;
		if (send_upstream(c, head, c->up_head_len))
			return;
		if (c->s.closed)
			return;
	}
	if (c->resp_started) {
		client_close(c);
		return;
	}
	c->proxying = false;
	if (!c->req_done)
		c->close_after = true;
	local_text(c, status, status == 504 ? "504 Gateway Timeout\n" : "502 Bad Gateway\n");
	if (!c->s.closed && c->state == WEIR_C_HEAD)
		client_process(c);
}

/* ---- agents ------------------------------------------------------------- */

/* Every buffer-mode agent allowed: the (mutated) head goes upstream, then
 * the body held so far, by reference. */
void weir__client_agents_release(struct weir_client *c)
{
	struct weir_reactor *r = R(c);
	struct weir_areq *ar = c->ar;
	uint32_t len = c->held_head_len;
	char *head = c->held_head;
	bool paused = !c->s.recv_want;

	c->held_head = NULL;
	head = weir__agents_mutate(ar, false, head, &len);
	if (head != NULL && ar->replace != NULL)
		head = weir__agents_reframe(ar, head, &len);
	if (head == NULL) {
		client_close(c);
		return;
	}
	keep_retry_copy(c, head, len);
	if (!send_upstream(c, head, len)) {
		if (!c->s.closed) {
			c->proxying = false;
			if (!c->req_done)
				c->close_after = true;
			local_error(c, 502, "cannot open an upstream connection");
		}
		return;
	}
	if (ar->replace != NULL) {
		/* The agent's body instead of the client's (the whole body was
		 * received: only then may an agent replace it). */
		char *b = ar->replace;

		ar->replace = NULL;
		c->body_streamed = true;
		if (ar->replace_len == 0) {
			weir_free(b);
		} else if (weir_outq_push_owned(&c->u->s.out, b, b, ar->replace_len) != 0) {
			client_close(c);
			return;
		}
		weir__agents_trim(ar);
		weir__upstream_kick(c->u);
		return;
	}
	for (uint32_t i = 0; i < ar->nspans; i++) {
		const struct weir_hspan *h = &ar->spans[i];
		weir_slice_t sl = { h->ptr, h->len };
		int ret;

		if (c->req_body == WEIR_H1_BODY_CHUNKED)
			ret = push_chunk(&c->u->s.out, &r->pool, &sl, 1, h->bid);
		else
			ret = weir_outq_push_ref(&c->u->s.out, &r->pool, h->ptr, h->len, h->bid);
		if (ret != 0) {
			client_close(c);
			return;
		}
		c->body_streamed = true;
	}
	if (c->req_done && c->req_body == WEIR_H1_BODY_CHUNKED &&
	    weir_outq_push_static(&c->u->s.out, last_chunk, sizeof(last_chunk) - 1) != 0) {
		client_close(c);
		return;
	}
	weir__agents_trim(ar);
	weir__upstream_kick(c->u);
	if (paused && !c->req_done && !weir_outq_full(&c->u->s.out))
		weir__client_resume_body(c);
}

/* An agent blocked (or failed closed): the upstream exchange, if any, is
 * aborted and the client gets the agent's answer; if the response already
 * started, the client connection is reset. */
void weir__client_agents_block(struct weir_client *c, int status, const struct weir_conf_header *h,
			       unsigned nh, const char *body, size_t body_len)
{
	if (c->u != NULL) {
		c->u->c = NULL;
		weir__sock_close(&c->u->s);
		c->u = NULL;
	}
	weir_free(c->held_head);
	c->held_head = NULL;
	drop_retry_copy(c);
	if (c->resp_started) {
		struct linger lg = { 1, 0 };

		setsockopt(c->s.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		client_close(c);
		return;
	}
	c->proxying = false;
	if (!c->req_done)
		c->close_after = true;
	local_response(c, status, h, nh, body, body_len);
}

void weir__client_resume_body(struct weir_client *c)
{
	if (c->s.closed || c->s.recv_want)
		return;
	weir__sock_resume(&c->s);
	client_process(c);
}
