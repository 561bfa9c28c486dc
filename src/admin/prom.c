/* Text buffers, JSON strings and the Prometheus text exposition format. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "weir/alloc.h"
#include "weir/prom.h"

/* ---- buffer ------------------------------------------------------------- */

void weir_sbuf_free(struct weir_sbuf *b)
{
	weir_free(b->p);
	memset(b, 0, sizeof(*b));
}

static bool reserve(struct weir_sbuf *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->failed)
		return false;
	if (b->cap - b->len > n)
		return true;
	cap = b->cap ? b->cap : 4096;
	while (cap - b->len <= n)
		cap *= 2;
	p = weir_realloc(b->p, cap);
	if (p == NULL) {
		b->failed = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void weir_sbuf_add(struct weir_sbuf *b, const char *s, size_t n)
{
	if (!reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void weir_sbuf_puts(struct weir_sbuf *b, const char *s)
{
	weir_sbuf_add(b, s, strlen(s));
}

void weir_sbuf_printf(struct weir_sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!reserve(b, 256))
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if ((size_t)n >= b->cap - b->len) {
		if (!reserve(b, (size_t)n))
			return;
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

void weir_sbuf_u64(struct weir_sbuf *b, uint64_t v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%" PRIu64, v);

	weir_sbuf_add(b, tmp, (size_t)n);
}

void weir_sbuf_seconds(struct weir_sbuf *b, uint64_t ns)
{
	char tmp[40];
	int n = snprintf(tmp, sizeof(tmp), "%" PRIu64 ".%09" PRIu64, ns / 1000000000u,
			 ns % 1000000000u);

	weir_sbuf_add(b, tmp, (size_t)n);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s, size_t left)
{
	unsigned c = s[0];
	size_t n;
	unsigned min;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		min = 0x10000;
	} else {
		return 0;
	}
	if (left < n)
		return 0;
	unsigned cp = c & (0x7fu >> n);

	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3fu);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void weir_sbuf_json(struct weir_sbuf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t left;

	if (s == NULL) {
		weir_sbuf_puts(b, "null");
		return;
	}
	left = strlen(s);
	weir_sbuf_add(b, "\"", 1);
	while (left > 0) {
		size_t n = utf8_len(p, left);
		char esc[8];

		if (n == 0) {
			weir_sbuf_puts(b, "\\ufffd");
			n = 1;
		} else if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			weir_sbuf_add(b, esc, 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			weir_sbuf_add(b, esc, 6);
		} else {
			weir_sbuf_add(b, (const char *)p, n);
		}
		p += n;
		left -= n;
	}
	weir_sbuf_add(b, "\"", 1);
}

/* ---- exposition format -------------------------------------------------- */

void weir_prom_escape(struct weir_sbuf *b, const char *value)
{
	const unsigned char *p = (const unsigned char *)value;
	size_t left = strlen(value);

	while (left > 0) {
		size_t n = utf8_len(p, left);

		if (n == 0) {
			weir_sbuf_add(b, "\xef\xbf\xbd", 3);
			n = 1;
		} else if (*p == '\\') {
			weir_sbuf_add(b, "\\\\", 2);
		} else if (*p == '"') {
			weir_sbuf_add(b, "\\\"", 2);
		} else if (*p == '\n') {
			weir_sbuf_add(b, "\\n", 2);
		} else {
			weir_sbuf_add(b, (const char *)p, n);
		}
		p += n;
		left -= n;
	}
}

static const char *const type_names[] = {
	[WEIR_PROM_COUNTER] = "counter",
	[WEIR_PROM_GAUGE] = "gauge",
	[WEIR_PROM_HISTOGRAM] = "histogram",
};

void weir_prom_family(struct weir_sbuf *b, const char *name, enum weir_prom_type type,
		      const char *help)
{
	weir_sbuf_puts(b, "# HELP ");
	weir_sbuf_puts(b, name);
	weir_sbuf_add(b, " ", 1);
	for (const char *p = help; *p != '\0'; p++) {
		if (*p == '\\')
			weir_sbuf_add(b, "\\\\", 2);
		else if (*p == '\n')
			weir_sbuf_add(b, "\\n", 2);
		else
			weir_sbuf_add(b, p, 1);
	}
	weir_sbuf_puts(b, "\n# TYPE ");
	weir_sbuf_puts(b, name);
	weir_sbuf_add(b, " ", 1);
	weir_sbuf_puts(b, type_names[type]);
	weir_sbuf_add(b, "\n", 1);
}

/* name{labels[,extra="value"]} */
static void series(struct weir_sbuf *b, const char *name, const char *suffix,
		   const struct weir_prom_label *l, unsigned nl, const char *extra,
		   const char *extra_value)
{
	bool any = nl != 0 || extra != NULL;

	weir_sbuf_puts(b, name);
	if (suffix != NULL)
		weir_sbuf_puts(b, suffix);
	if (!any)
		return;
	weir_sbuf_add(b, "{", 1);
	for (unsigned i = 0; i < nl; i++) {
		if (i != 0)
			weir_sbuf_add(b, ",", 1);
		weir_sbuf_puts(b, l[i].name);
		weir_sbuf_add(b, "=\"", 2);
		weir_prom_escape(b, l[i].value);
		weir_sbuf_add(b, "\"", 1);
	}
	if (extra != NULL) {
		if (nl != 0)
			weir_sbuf_add(b, ",", 1);
		weir_sbuf_puts(b, extra);
		weir_sbuf_add(b, "=\"", 2);
		weir_sbuf_puts(b, extra_value);     /* le values need no escaping */
		weir_sbuf_add(b, "\"", 1);
	}
	weir_sbuf_add(b, "}", 1);
}

void weir_prom_sample(struct weir_sbuf *b, const char *name, const struct weir_prom_label *l,
		      unsigned nl, uint64_t value)
{
	series(b, name, NULL, l, nl, NULL, NULL);
	weir_sbuf_add(b, " ", 1);
	weir_sbuf_u64(b, value);
	weir_sbuf_add(b, "\n", 1);
}

void weir_prom_histogram(struct weir_sbuf *b, const char *name, const struct weir_prom_label *l,
			 unsigned nl, const struct weir_hist *h)
{
	uint64_t cum = 0;

	for (unsigned i = 0; i < WEIR_HIST_BUCKETS; i++) {
		cum += h->bucket[i];
		series(b, name, "_bucket", l, nl, "le",
		       i < WEIR_HIST_BOUNDS ? weir_hist_bound_text[i] : "+Inf");
		weir_sbuf_add(b, " ", 1);
		weir_sbuf_u64(b, cum);
		weir_sbuf_add(b, "\n", 1);
	}
	series(b, name, "_sum", l, nl, NULL, NULL);
	weir_sbuf_add(b, " ", 1);
	weir_sbuf_seconds(b, h->sum_ns);
	weir_sbuf_add(b, "\n", 1);
	series(b, name, "_count", l, nl, NULL, NULL);
	weir_sbuf_add(b, " ", 1);
	weir_sbuf_u64(b, cum);
	weir_sbuf_add(b, "\n", 1);
}

/* ---- the weir families -------------------------------------------------- */

static const char *const method_names[WEIR_METRICS_METHODS] = {
	"OTHER", "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT",
};

static const char *const class_names[WEIR_METRICS_CLASSES] = {
	"aborted", "1xx", "2xx", "3xx", "4xx", "5xx",
};

static const char *const failure_names[WEIR_UPF__COUNT] = {
	[WEIR_UPF_CONNECT] = "connect",
	[WEIR_UPF_CONNECT_TIMEOUT] = "connect_timeout",
	[WEIR_UPF_RESET] = "reset",
	[WEIR_UPF_SEND] = "send",
	[WEIR_UPF_TIMEOUT] = "timeout",
	[WEIR_UPF_PROTOCOL] = "protocol",
	[WEIR_UPF_STALE] = "stale",
};

static const char *const peer_names[WEIR_PEER__COUNT] = { "client", "upstream", "agent" };

/* The slots to show: every registered one, then "_other" (the last slot)
 * when it holds figures. Returns how many were stored in ids. */
static unsigned show_slots(unsigned *ids, enum weir_metrics_kind kind, unsigned cap,
			   bool other_used)
{
	unsigned n = weir_metrics_slots(kind), k;

	for (k = 0; k < n && k < cap - 1; k++)
		ids[k] = k;
	if (other_used)
		ids[k++] = cap - 1;
	return k;
}

static bool hist_empty(const struct weir_hist *h)
{
	for (unsigned i = 0; i < WEIR_HIST_BUCKETS; i++)
		if (h->bucket[i] != 0)
			return false;
	return true;
}

static bool route_empty(const struct weir_metrics_route *r)
{
	for (unsigned i = 0; i < WEIR_METRICS_METHODS; i++)
		for (unsigned j = 0; j < WEIR_METRICS_CLASSES; j++)
			if (r->requests[i][j] != 0)
				return false;
	return hist_empty(&r->duration);
}

static bool upstream_empty(const struct weir_metrics_upstream *u)
{
	for (unsigned i = 0; i < WEIR_UPF__COUNT; i++)
		if (u->failures[i] != 0)
			return false;
	return hist_empty(&u->connect) && hist_empty(&u->response);
}

static bool agent_empty(const struct weir_metrics_agent *a)
{
	return a->calls == 0 && a->timeouts == 0 && a->failures == 0 && a->blocks == 0 &&
	       a->links_up == 0 && hist_empty(&a->latency);
}

static void render_requests(struct weir_sbuf *b, const struct weir_metrics_data *d)
{
	unsigned ids[WEIR_METRICS_ROUTES];
	unsigned n = show_slots(ids, WEIR_MK_ROUTE, WEIR_METRICS_ROUTES,
				!route_empty(&d->route[WEIR_METRICS_ROUTES - 1]));
	struct weir_prom_label l[3] = { { "route", NULL }, { "method", NULL },
					{ "status_class", NULL } };

	weir_prom_family(b, "weir_requests_total", WEIR_PROM_COUNTER,
			 "Requests finished, by route (\"_unmatched\": no route), method and "
			 "status class (\"aborted\": no response was sent).");
	for (unsigned k = 0; k < n; k++) {
		const struct weir_metrics_route *r = &d->route[ids[k]];

		l[0].value = weir_metrics_slot_name(WEIR_MK_ROUTE, ids[k]);
		for (unsigned m = 0; m < WEIR_METRICS_METHODS; m++) {
			for (unsigned c = 0; c < WEIR_METRICS_CLASSES; c++) {
				if (r->requests[m][c] == 0)
					continue;
				l[1].value = method_names[m];
				l[2].value = class_names[c];
				weir_prom_sample(b, "weir_requests_total", l, 3, r->requests[m][c]);
			}
		}
	}
	weir_prom_family(b, "weir_request_duration_seconds", WEIR_PROM_HISTOGRAM,
			 "Time from a request's head to the end of its response, by route.");
	for (unsigned k = 0; k < n; k++) {
		l[0].value = weir_metrics_slot_name(WEIR_MK_ROUTE, ids[k]);
		weir_prom_histogram(b, "weir_request_duration_seconds", l, 1,
				    &d->route[ids[k]].duration);
	}
}

static void render_upstreams(struct weir_sbuf *b, const struct weir_prom_scrape *sc)
{
	const struct weir_metrics_data *d = sc->d;
	unsigned ids[WEIR_METRICS_UPSTREAMS];
	unsigned n = show_slots(ids, WEIR_MK_UPSTREAM, WEIR_METRICS_UPSTREAMS,
				!upstream_empty(&d->upstream[WEIR_METRICS_UPSTREAMS - 1]));
	unsigned nsrv = weir_metrics_slots(WEIR_MK_SERVER);
	struct weir_prom_label l[2] = { { "upstream", NULL }, { "reason", NULL } };

	weir_prom_family(b, "weir_upstream_connect_seconds", WEIR_PROM_HISTOGRAM,
			 "Time to establish a new upstream connection, by upstream.");
	for (unsigned k = 0; k < n; k++) {
		l[0].value = weir_metrics_slot_name(WEIR_MK_UPSTREAM, ids[k]);
		weir_prom_histogram(b, "weir_upstream_connect_seconds", l, 1,
				    &d->upstream[ids[k]].connect);
	}
	weir_prom_family(b, "weir_upstream_response_seconds", WEIR_PROM_HISTOGRAM,
			 "Time from a request handed to an upstream connection to the "
			 "response head, by upstream.");
	for (unsigned k = 0; k < n; k++) {
		l[0].value = weir_metrics_slot_name(WEIR_MK_UPSTREAM, ids[k]);
		weir_prom_histogram(b, "weir_upstream_response_seconds", l, 1,
				    &d->upstream[ids[k]].response);
	}
	weir_prom_family(b, "weir_upstream_failures_total", WEIR_PROM_COUNTER,
			 "Failed upstream exchanges, by upstream and reason (connect, "
			 "connect_timeout, reset, send, timeout, protocol, stale).");
	for (unsigned k = 0; k < n; k++) {
		l[0].value = weir_metrics_slot_name(WEIR_MK_UPSTREAM, ids[k]);
		for (unsigned r = 0; r < WEIR_UPF__COUNT; r++) {
			l[1].value = failure_names[r];
			weir_prom_sample(b, "weir_upstream_failures_total", l, 2,
					 d->upstream[ids[k]].failures[r]);
		}
	}
	weir_prom_family(b, "weir_upstream_server_usable", WEIR_PROM_GAUGE,
			 "1 when the latest connection attempt or exchange with the server "
			 "(on any reactor) did not fail, or none was made; 0 when it failed.");
	for (unsigned i = 0; i < nsrv && i < WEIR_METRICS_SERVERS - 1; i++) {
		unsigned ups = weir_metrics_slot_parent(WEIR_MK_SERVER, i);
		struct weir_prom_label sl[2] = {
			{ "upstream", weir_metrics_slot_name(WEIR_MK_UPSTREAM, ups) },
			{ "server", weir_metrics_slot_name(WEIR_MK_SERVER, i) },
		};

		weir_prom_sample(b, "weir_upstream_server_usable", sl, 2,
				 weir_server_usable(sc->srv, i));
	}
	weir_prom_family(b, "weir_upstream_connections_total", WEIR_PROM_COUNTER,
			 "Upstream connections opened (new) and taken from the keep-alive "
			 "pool (reused).");
	l[0] = (struct weir_prom_label){ "kind", "new" };
	weir_prom_sample(b, "weir_upstream_connections_total", l, 1, sc->upstream_connects);
	l[0].value = "reused";
	weir_prom_sample(b, "weir_upstream_connections_total", l, 1, sc->upstream_reused);
	weir_prom_family(b, "weir_upstream_retries_total", WEIR_PROM_COUNTER,
			 "Idempotent requests retried on the next server.");
	weir_prom_sample(b, "weir_upstream_retries_total", NULL, 0, sc->upstream_retries);
}

static void render_agents(struct weir_sbuf *b, const struct weir_metrics_data *d)
{
	static const struct {
		const char *name;
		enum weir_prom_type type;
		const char *help;
		size_t off;
	} fams[] = {
		{ "weir_agent_calls_total", WEIR_PROM_COUNTER,
		  "Requests sent to the agent (request ids opened).",
		  offsetof(struct weir_metrics_agent, calls) },
		{ "weir_agent_timeouts_total", WEIR_PROM_COUNTER,
		  "Calls that got no verdict within the agent's timeout.",
		  offsetof(struct weir_metrics_agent, timeouts) },
		{ "weir_agent_failures_total", WEIR_PROM_COUNTER,
		  "Calls that failed: agent unavailable, connection lost, protocol error.",
		  offsetof(struct weir_metrics_agent, failures) },
		{ "weir_agent_blocks_total", WEIR_PROM_COUNTER,
		  "Verdicts that blocked the request or response.",
		  offsetof(struct weir_metrics_agent, blocks) },
		{ "weir_agent_links_up", WEIR_PROM_GAUGE,
		  "Connected links to the agent, over all reactors.",
		  offsetof(struct weir_metrics_agent, links_up) },
		{ "weir_agent_breaker_open", WEIR_PROM_GAUGE,
		  "Reactors whose circuit breaker for the agent is open.",
		  offsetof(struct weir_metrics_agent, breaker_open) },
		{ "weir_agent_shm_links_up", WEIR_PROM_GAUGE,
		  "Connected links to the agent on the shared-memory transport.",
		  offsetof(struct weir_metrics_agent, shm_links) },
		{ "weir_agent_shm_body_bytes_total", WEIR_PROM_COUNTER,
		  "Body bytes handed to the agent by shared-memory reference (not copied).",
		  offsetof(struct weir_metrics_agent, shm_bytes) },
	};
	unsigned ids[WEIR_METRICS_RULES];
	unsigned n = show_slots(ids, WEIR_MK_AGENT, WEIR_METRICS_AGENTS,
				!agent_empty(&d->agent[WEIR_METRICS_AGENTS - 1]));
	struct weir_prom_label l[2] = { { "agent", NULL }, { "rule", NULL } };

	for (size_t f = 0; f < WEIR_ARRAY_SIZE(fams); f++) {
		weir_prom_family(b, fams[f].name, fams[f].type, fams[f].help);
		for (unsigned k = 0; k < n; k++) {
			const char *a = (const char *)&d->agent[ids[k]];

			l[0].value = weir_metrics_slot_name(WEIR_MK_AGENT, ids[k]);
			weir_prom_sample(b, fams[f].name, l, 1,
					 *(const uint64_t *)(const void *)(a + fams[f].off));
		}
	}
	weir_prom_family(b, "weir_agent_in_flight", WEIR_PROM_GAUGE,
			 "Calls waiting for the agent (opened, not yet closed).");
	for (unsigned k = 0; k < n; k++) {
		const struct weir_metrics_agent *a = &d->agent[ids[k]];

		l[0].value = weir_metrics_slot_name(WEIR_MK_AGENT, ids[k]);
		weir_prom_sample(b, "weir_agent_in_flight", l, 1,
				 a->calls > a->done ? a->calls - a->done : 0);
	}
	weir_prom_family(b, "weir_agent_latency_seconds", WEIR_PROM_HISTOGRAM,
			 "Time from a call to the agent's verdict.");
	for (unsigned k = 0; k < n; k++) {
		l[0].value = weir_metrics_slot_name(WEIR_MK_AGENT, ids[k]);
		weir_prom_histogram(b, "weir_agent_latency_seconds", l, 1,
				    &d->agent[ids[k]].latency);
	}
	weir_prom_family(b, "weir_agent_rule_blocks_total", WEIR_PROM_COUNTER,
			 "Blocking verdicts that named the rule id, by agent and rule "
			 "(\"_other\": rule ids beyond the registry's capacity).");
	n = show_slots(ids, WEIR_MK_RULE, WEIR_METRICS_RULES,
		       d->rule_blocks[WEIR_METRICS_RULES - 1] != 0);
	for (unsigned k = 0; k < n; k++) {
		unsigned i = ids[k];
		unsigned agent = i == WEIR_METRICS_RULES - 1
					 ? WEIR_METRICS_AGENTS - 1
					 : weir_metrics_slot_parent(WEIR_MK_RULE, i);

		l[0].value = weir_metrics_slot_name(WEIR_MK_AGENT, agent);
		l[1].value = weir_metrics_slot_name(WEIR_MK_RULE, i);
		weir_prom_sample(b, "weir_agent_rule_blocks_total", l, 2, d->rule_blocks[i]);
	}
}

static void render_io(struct weir_sbuf *b, const struct weir_metrics_data *d)
{
	static const struct {
		const char *name;
		enum weir_prom_type type;
		const char *help;
		size_t off;
	} fams[] = {
		{ "weir_uring_submissions_total", WEIR_PROM_COUNTER,
		  "Submission queue entries handed to the kernel.",
		  offsetof(struct weir_metrics_data, submissions) },
		{ "weir_uring_completions_total", WEIR_PROM_COUNTER,
		  "Completion queue entries handled.",
		  offsetof(struct weir_metrics_data, cqes) },
		{ "weir_uring_loop_iterations_total", WEIR_PROM_COUNTER,
		  "Event-loop iterations (one io_uring_enter each, at most).",
		  offsetof(struct weir_metrics_data, loops) },
		{ "weir_uring_cq_overflows_total", WEIR_PROM_COUNTER,
		  "Completions the kernel dropped because the CQ ring and its overflow "
		  "list were full (the ring's koverflow).",
		  offsetof(struct weir_metrics_data, cq_overflow) },
		{ "weir_uring_cq_overflow_iterations_total", WEIR_PROM_COUNTER,
		  "Loop iterations that found completions waiting in the kernel's "
		  "overflow list (IORING_SQ_CQ_OVERFLOW).",
		  offsetof(struct weir_metrics_data, cq_overflow_loops) },
		{ "weir_uring_buffer_exhaustions_total", WEIR_PROM_COUNTER,
		  "Receives that found the provided-buffer ring empty (ENOBUFS).",
		  offsetof(struct weir_metrics_data, buf_exhausted) },
		{ "weir_uring_buffers_in_use", WEIR_PROM_GAUGE,
		  "Provided receive buffers held by weir (queued or being forwarded).",
		  offsetof(struct weir_metrics_data, bufs_in_use) },
		{ "weir_connections_refused_total", WEIR_PROM_COUNTER,
		  "Client connections refused with 503 (max_connections, or stopping).",
		  offsetof(struct weir_metrics_data, refused) },
		{ "weir_access_log_lines_total", WEIR_PROM_COUNTER,
		  "Access log lines written to the reactors' buffers.",
		  offsetof(struct weir_metrics_data, log_lines) },
		{ "weir_access_log_dropped_total", WEIR_PROM_COUNTER,
		  "Access log lines dropped: the buffers were full while a write was slow.",
		  offsetof(struct weir_metrics_data, log_dropped) },
		{ "weir_access_log_failed_bytes_total", WEIR_PROM_COUNTER,
		  "Access log bytes lost to failed writes (disk full, I/O error).",
		  offsetof(struct weir_metrics_data, log_dropped_bytes) },
	};
	struct weir_prom_label l = { "peer", NULL };

	weir_prom_family(b, "weir_bytes_received_total", WEIR_PROM_COUNTER,
			 "Bytes received, by peer (client, upstream, agent).");
	for (unsigned p = 0; p < WEIR_PEER__COUNT; p++) {
		l.value = peer_names[p];
		weir_prom_sample(b, "weir_bytes_received_total", &l, 1, d->bytes_in[p]);
	}
	weir_prom_family(b, "weir_bytes_sent_total", WEIR_PROM_COUNTER,
			 "Bytes sent, by peer (client, upstream, agent).");
	for (unsigned p = 0; p < WEIR_PEER__COUNT; p++) {
		l.value = peer_names[p];
		weir_prom_sample(b, "weir_bytes_sent_total", &l, 1, d->bytes_out[p]);
	}
	weir_prom_family(b, "weir_connections_open", WEIR_PROM_GAUGE,
			 "Open connections, by peer (client, upstream, agent).");
	for (unsigned p = 0; p < WEIR_PEER__COUNT; p++) {
		l.value = peer_names[p];
		weir_prom_sample(b, "weir_connections_open", &l, 1,
				 d->conn_opened[p] > d->conn_closed[p]
					 ? d->conn_opened[p] - d->conn_closed[p] : 0);
	}
	weir_prom_family(b, "weir_connections_total", WEIR_PROM_COUNTER,
			 "Connections opened (clients: accepted), by peer.");
	for (unsigned p = 0; p < WEIR_PEER__COUNT; p++) {
		l.value = peer_names[p];
		weir_prom_sample(b, "weir_connections_total", &l, 1, d->conn_opened[p]);
	}
	for (size_t f = 0; f < WEIR_ARRAY_SIZE(fams); f++) {
		const char *base = (const char *)d;

		weir_prom_family(b, fams[f].name, fams[f].type, fams[f].help);
		weir_prom_sample(b, fams[f].name, NULL, 0,
				 *(const uint64_t *)(const void *)(base + fams[f].off));
	}
}

void weir_prom_render(struct weir_sbuf *b, const struct weir_prom_scrape *s)
{
	char start[32];

	weir_prom_family(b, "weir_reactors", WEIR_PROM_GAUGE, "Reactor threads running.");
	weir_prom_sample(b, "weir_reactors", NULL, 0, s->reactors);
	weir_prom_family(b, "weir_config_generation", WEIR_PROM_GAUGE,
			 "Configuration generation (1 at start, +1 per successful reload).");
	weir_prom_sample(b, "weir_config_generation", NULL, 0, s->generation);
	weir_prom_family(b, "weir_start_time_seconds", WEIR_PROM_GAUGE,
			 "Unix time the process started.");
	snprintf(start, sizeof(start), "%.3f", s->start_time);
	weir_sbuf_puts(b, "weir_start_time_seconds ");
	weir_sbuf_puts(b, start);
	weir_sbuf_add(b, "\n", 1);
	render_requests(b, s->d);
	render_upstreams(b, s);
	render_agents(b, s->d);
	render_io(b, s->d);
}
