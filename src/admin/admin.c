/* The admin thread: a small poll(2) HTTP/1.1 server on conf->admin. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "weir-version.h"
#include "weir/admin.h"
#include "weir/alloc.h"
#include "weir/prom.h"
#include "weir/proxy.h"

struct admin_conn {
	int fd;                         /* -1: free */
	bool writing;
	uint64_t deadline;              /* ms, monotonic */
	size_t inlen;
	size_t off;                     /* bytes of out sent */
	struct weir_sbuf out;
	char in[WEIR_ADMIN_MAX_HEAD];
};

struct weir_admin {
	int lfd;
	int stop_fd;                    /* eventfd: stop */
	pthread_t thread;
	struct weir_reactor *reactors;
	unsigned nreactors;
	uint64_t start_ns;              /* monotonic */
	double start_unix;
	char addr[72];

	pthread_mutex_t lock;           /* the fields below */
	const struct weir_conf *conf;
	uint64_t generation;
	bool reload_supported;
	char *reload_error;
	uint64_t reload_failures;

	/* admin thread only */
	struct admin_conn conns[WEIR_ADMIN_MAX_CONNS];
	unsigned nconns;
	struct weir_h1_request req;
	struct weir_metrics_data sum;
	struct weir_metrics_servers srv;
};

static uint64_t load64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static double unix_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- figures ------------------------------------------------------------ */

struct reactor_stats {
	uint64_t accepted, refused, requests, responses[6];
	uint64_t upstream_connects, upstream_reused, upstream_retries;
};

/* struct weir_reactor_stats is written with plain increments by its
 * reactor; relaxed loads of aligned words read a current or a slightly old
 * value (see weir/metrics.h). */
static void read_stats(const struct weir_reactor *r, struct reactor_stats *s)
{
	s->accepted = load64(&r->stats.accepted);
	s->refused = load64(&r->stats.refused);
	s->requests = load64(&r->stats.requests);
	for (unsigned i = 0; i < 6; i++)
		s->responses[i] = load64(&r->stats.responses[i]);
	s->upstream_connects = load64(&r->stats.upstream_connects);
	s->upstream_reused = load64(&r->stats.upstream_reused);
	s->upstream_retries = load64(&r->stats.upstream_retries);
}

static bool reactor_stopping(const struct weir_reactor *r)
{
	return __atomic_load_n(&r->stopping, __ATOMIC_RELAXED);
}

static void sum_metrics(struct weir_admin *a)
{
	memset(&a->sum, 0, sizeof(a->sum));
	memset(&a->srv, 0, sizeof(a->srv));
	for (unsigned i = 0; i < a->nreactors; i++)
		weir_metrics_accumulate(&a->sum, &a->srv, &a->reactors[i].metrics);
}

static uint64_t open_conns(const struct weir_metrics_data *d, unsigned p)
{
	return d->conn_opened[p] > d->conn_closed[p] ? d->conn_opened[p] - d->conn_closed[p] : 0;
}

/* ---- endpoints ---------------------------------------------------------- */

static const char *server_state(const struct weir_metrics_servers *srv, int slot)
{
	if (slot < 0 || (srv->last_ok_ms[slot] == 0 && srv->last_fail_ms[slot] == 0))
		return "unknown";
	return weir_server_usable(srv, (unsigned)slot) ? "up" : "down";
}

/* /health: returns the HTTP status. Under a->lock. */
static int render_health(struct weir_admin *a, struct weir_sbuf *b)
{
	const struct weir_conf *conf = a->conf;
	unsigned ups_down = 0, stopping = 0;
	bool degraded = false;
	const char *status;
	int code = 200;

	sum_metrics(a);
	weir_sbuf_puts(b, "{\"reactors\":[");
	for (unsigned i = 0; i < a->nreactors; i++) {
		bool st = reactor_stopping(&a->reactors[i]);

		stopping += st;
		weir_sbuf_printf(b, "%s{\"id\":%u,\"state\":\"%s\"}", i ? "," : "", i,
				 st ? "stopping" : "running");
	}
	weir_sbuf_puts(b, "],\"upstreams\":[");
	for (unsigned i = 0; i < conf->nupstreams; i++) {
		const struct weir_conf_upstream *u = &conf->upstreams[i];
		int us = weir_metrics_slot_find(WEIR_MK_UPSTREAM, 0, u->name);
		unsigned usable = 0, down = 0;

		weir_sbuf_printf(b, "%s{\"name\":", i ? "," : "");
		weir_sbuf_json(b, u->name);
		weir_sbuf_puts(b, ",\"servers\":[");
		for (unsigned j = 0; j < u->nservers; j++) {
			int ss = us < 0 ? -1 : weir_metrics_slot_find(WEIR_MK_SERVER, (unsigned)us,
								      u->servers[j].text);
			const char *st = server_state(&a->srv, ss);

			if (strcmp(st, "down") == 0)
				down++;
			else
				usable++;
			weir_sbuf_printf(b, "%s{\"address\":", j ? "," : "");
			weir_sbuf_json(b, u->servers[j].text);
			weir_sbuf_printf(b, ",\"state\":\"%s\",\"failures\":%" PRIu64 "}", st,
					 ss < 0 ? 0 : a->sum.server_failures[ss]);
		}
		if (usable == 0)
			ups_down++;
		if (down != 0)
			degraded = true;
		weir_sbuf_printf(b, "],\"state\":\"%s\",\"usable_servers\":%u}",
				 usable == 0 ? "down" : down != 0 ? "degraded" : "up", usable);
	}
	weir_sbuf_puts(b, "],\"agents\":[");
	for (unsigned i = 0; i < conf->nagents; i++) {
		int as = weir_metrics_slot_find(WEIR_MK_AGENT, 0, conf->agents[i].name);
		const struct weir_metrics_agent *ag = as < 0 ? NULL : &a->sum.agent[as];
		const char *st = "unknown";

		if (ag != NULL && ag->reported != 0) {
			st = ag->links_up == 0 ? "down" : ag->breaker_open != 0 ? "degraded" : "up";
			if (strcmp(st, "up") != 0)
				degraded = true;
		}
		weir_sbuf_printf(b, "%s{\"name\":", i ? "," : "");
		weir_sbuf_json(b, conf->agents[i].name);
		weir_sbuf_printf(b, ",\"state\":\"%s\",\"links_up\":%" PRIu64
				    ",\"breaker_open\":%" PRIu64 "}",
				 st, ag ? ag->links_up : 0, ag ? ag->breaker_open : 0);
	}
	if (stopping != 0) {
		status = "stopping";
		code = 503;
	} else if (conf->nupstreams != 0 && ups_down == conf->nupstreams) {
		status = "down";
		code = 503;
	} else if (degraded || ups_down != 0) {
		status = "degraded";
	} else {
		status = "ok";
	}
	weir_sbuf_printf(b, "],\"status\":\"%s\"}\n", status);
	return code;
}

static void render_status(struct weir_admin *a, struct weir_sbuf *b)
{
	struct reactor_stats tot = { 0 };
	uint64_t now = weir_metrics_now_ns();

	weir_sbuf_puts(b, "{\"version\":\"" WEIR_VERSION "\"");
	weir_sbuf_printf(b, ",\"pid\":%ld,\"generation\":%" PRIu64 ",\"uptime_seconds\":",
			 (long)getpid(), a->generation);
	weir_sbuf_seconds(b, now - a->start_ns);
	weir_sbuf_printf(b, ",\"start_time\":%.3f,\"config\":", a->start_unix);
	weir_sbuf_json(b, a->conf->source);
	weir_sbuf_printf(b, ",\"admin\":\"%s\",\"reload_supported\":%s,\"reload_failures\":%" PRIu64
			    ",\"last_reload_error\":",
			 a->addr, a->reload_supported ? "true" : "false", a->reload_failures);
	weir_sbuf_json(b, a->reload_error);
	weir_sbuf_puts(b, ",\"reactors\":[");
	for (unsigned i = 0; i < a->nreactors; i++) {
		const struct weir_reactor *r = &a->reactors[i];
		struct weir_metrics_data *d = &a->sum;
		struct reactor_stats s;

		/* one reactor's figures: the sum over just this one */
		memset(d, 0, sizeof(*d));
		memset(&a->srv, 0, sizeof(a->srv));
		weir_metrics_accumulate(d, &a->srv, &r->metrics);
		read_stats(r, &s);
		tot.accepted += s.accepted;
		tot.refused += s.refused;
		tot.requests += s.requests;
		for (unsigned k = 0; k < 6; k++)
			tot.responses[k] += s.responses[k];
		weir_sbuf_printf(b,
				 "%s{\"id\":%u,\"cpu\":%d,\"state\":\"%s\",\"loops\":%" PRIu64
				 ",\"completions\":%" PRIu64 ",\"submissions\":%" PRIu64
				 ",\"cq_overflows\":%" PRIu64 ",\"buffers_in_use\":%" PRIu64
				 ",\"buffer_exhaustions\":%" PRIu64,
				 i ? "," : "", r->id, r->cpu,
				 reactor_stopping(r) ? "stopping" : "running", d->loops, d->cqes,
				 d->submissions, d->cq_overflow, d->bufs_in_use, d->buf_exhausted);
		weir_sbuf_printf(b,
				 ",\"connections\":{\"client\":%" PRIu64 ",\"upstream\":%" PRIu64
				 ",\"agent\":%" PRIu64 "},\"accepted\":%" PRIu64
				 ",\"refused\":%" PRIu64 ",\"requests\":%" PRIu64,
				 open_conns(d, WEIR_PEER_CLIENT), open_conns(d, WEIR_PEER_UPSTREAM),
				 open_conns(d, WEIR_PEER_AGENT), s.accepted, s.refused, s.requests);
		weir_sbuf_printf(b,
				 ",\"responses\":{\"1xx\":%" PRIu64 ",\"2xx\":%" PRIu64
				 ",\"3xx\":%" PRIu64 ",\"4xx\":%" PRIu64 ",\"5xx\":%" PRIu64
				 ",\"aborted\":%" PRIu64 "}",
				 s.responses[1], s.responses[2], s.responses[3], s.responses[4],
				 s.responses[5], s.responses[0]);
		weir_sbuf_printf(b,
				 ",\"bytes_received\":%" PRIu64 ",\"bytes_sent\":%" PRIu64
				 ",\"upstream_connects\":%" PRIu64 ",\"upstream_reused\":%" PRIu64
				 ",\"upstream_retries\":%" PRIu64 "}",
				 d->bytes_in[WEIR_PEER_CLIENT], d->bytes_out[WEIR_PEER_CLIENT],
				 s.upstream_connects, s.upstream_reused, s.upstream_retries);
	}
	weir_sbuf_printf(b,
			 "],\"totals\":{\"accepted\":%" PRIu64 ",\"refused\":%" PRIu64
			 ",\"requests\":%" PRIu64 ",\"responses\":{\"1xx\":%" PRIu64
			 ",\"2xx\":%" PRIu64 ",\"3xx\":%" PRIu64 ",\"4xx\":%" PRIu64
			 ",\"5xx\":%" PRIu64 ",\"aborted\":%" PRIu64 "}}}\n",
			 tot.accepted, tot.refused, tot.requests, tot.responses[1], tot.responses[2],
			 tot.responses[3], tot.responses[4], tot.responses[5], tot.responses[0]);
}

static void render_metrics(struct weir_admin *a, struct weir_sbuf *b)
{
	struct weir_prom_scrape s = {
		.d = &a->sum,
		.srv = &a->srv,
		.reactors = a->nreactors,
		.generation = a->generation,
		.start_time = a->start_unix,
	};

	sum_metrics(a);
	for (unsigned i = 0; i < a->nreactors; i++) {
		struct reactor_stats st;

		read_stats(&a->reactors[i], &st);
		s.upstream_connects += st.upstream_connects;
		s.upstream_reused += st.upstream_reused;
		s.upstream_retries += st.upstream_retries;
	}
	weir_prom_render(b, &s);
}

/* ---- HTTP --------------------------------------------------------------- */

static const char *reason(int code)
{
	switch (code) {
	case 200: return "OK";
	case 202: return "Accepted";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

#define CT_TEXT "text/plain; charset=utf-8"
#define CT_JSON "application/json"
#define CT_PROM "text/plain; version=0.0.4; charset=utf-8"

/* Queues the response (head, and body unless HEAD) on c. */
static void respond(struct admin_conn *c, int code, const char *ctype, const char *allow,
		    struct weir_sbuf *body, bool head_only)
{
	struct weir_sbuf *o = &c->out;

	weir_sbuf_printf(o,
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Cache-Control: no-store\r\n%s%s%sConnection: close\r\n\r\n",
			 code, reason(code), ctype, body->len, allow ? "Allow: " : "",
			 allow ? allow : "", allow ? "\r\n" : "");
	if (!head_only && body->len != 0)
		weir_sbuf_add(o, body->p, body->len);
	c->writing = true;
	c->off = 0;
}

static void respond_text(struct admin_conn *c, int code, const char *text, const char *allow)
{
	struct weir_sbuf b = { 0 };

	weir_sbuf_puts(&b, text);
	respond(c, code, CT_TEXT, allow, &b, false);
	weir_sbuf_free(&b);
}

static bool path_is(weir_slice_t path, const char *lit)
{
	size_t n = strlen(lit);

	return path.len == n && memcmp(path.ptr, lit, n) == 0;
}

static void route(struct weir_admin *a, struct admin_conn *c, const struct weir_h1_request *req)
{
	weir_slice_t path = req->path;
	bool get = req->method_id == WEIR_M_GET || req->method_id == WEIR_M_HEAD;
	bool head = req->method_id == WEIR_M_HEAD;
	struct weir_sbuf b = { 0 };
	const char *q = memchr(path.ptr, '?', path.len);
	int code = 200;

	if (q != NULL)
		path.len = (size_t)(q - path.ptr);
	if (path_is(path, "/reload")) {
		if (req->method_id != WEIR_M_POST) {
			respond_text(c, 405, "405 Method Not Allowed: POST /reload\n", "POST");
			return;
		}
		pthread_mutex_lock(&a->lock);
		if (!a->reload_supported) {
			pthread_mutex_unlock(&a->lock);
			respond_text(c, 501, "501 Not Implemented: configuration reload is not "
					     "implemented in this weir yet\n", NULL);
			return;
		}
		weir_sbuf_printf(&b, "{\"generation\":%" PRIu64 "}\n", a->generation);
		pthread_mutex_unlock(&a->lock);
		/* main takes SIGHUP with sigwait (every thread blocks it) */
		kill(getpid(), SIGHUP);
		respond(c, 202, CT_JSON, NULL, &b, false);
		weir_sbuf_free(&b);
		return;
	}
	if (!path_is(path, "/health/live") && !path_is(path, "/health") &&
	    !path_is(path, "/metrics") && !path_is(path, "/status")) {
		respond_text(c, 404, "404 Not Found: /health/live, /health, /metrics, /status, "
				     "POST /reload\n", NULL);
		return;
	}
	if (!get) {
		respond_text(c, 405, "405 Method Not Allowed\n", "GET, HEAD");
		return;
	}
	if (path_is(path, "/health/live")) {
		weir_sbuf_puts(&b, "ok\n");
		respond(c, 200, CT_TEXT, NULL, &b, head);
		weir_sbuf_free(&b);
		return;
	}
	pthread_mutex_lock(&a->lock);
	if (path_is(path, "/health"))
		code = render_health(a, &b);
	else if (path_is(path, "/status"))
		render_status(a, &b);
	else
		render_metrics(a, &b);
	pthread_mutex_unlock(&a->lock);
	if (b.failed) {
		weir_sbuf_free(&b);
		respond_text(c, 503, "503 Service Unavailable: out of memory\n", NULL);
		return;
	}
	respond(c, code, path_is(path, "/metrics") ? CT_PROM : CT_JSON, NULL, &b, head);
	weir_sbuf_free(&b);
}

/* Bytes arrived on c: answer once the head (and a small body) is in. */
static void on_input(struct weir_admin *a, struct admin_conn *c)
{
	int ret = weir_h1_parse_request(c->in, c->inlen, &a->req);

	if (ret == WEIR_H1_NEED_MORE) {
		if (c->inlen == sizeof(c->in))
			respond_text(c, 431, "431 Request Header Fields Too Large: the admin "
					     "listener takes heads up to 8 KiB\n", NULL);
		return;
	}
	if (ret < 0) {
		char msg[128];

		snprintf(msg, sizeof(msg), "%d %s: %s\n", a->req.error, reason(a->req.error),
			 a->req.reason != NULL ? a->req.reason : "bad request");
		respond_text(c, a->req.error, msg, NULL);
		return;
	}
	if (a->req.body == WEIR_H1_BODY_CHUNKED ||
	    (a->req.body == WEIR_H1_BODY_LENGTH &&
	     a->req.content_length > sizeof(c->in) - (size_t)ret)) {
		respond_text(c, 413, "413 Content Too Large: the admin endpoints take no body\n",
			     NULL);
		return;
	}
	/* A small body is read (and ignored) so that closing after the answer
	 * does not reset the connection over unread input. */
	if (a->req.body == WEIR_H1_BODY_LENGTH && c->inlen - (size_t)ret < a->req.content_length)
		return;
	route(a, c, &a->req);
}

static void conn_close(struct weir_admin *a, struct admin_conn *c)
{
	close(c->fd);
	c->fd = -1;
	weir_sbuf_free(&c->out);
	a->nconns--;
}

static void conn_read(struct weir_admin *a, struct admin_conn *c)
{
	ssize_t n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(a, c);
		return;
	}
	c->inlen += (size_t)n;
	on_input(a, c);
}

static void conn_write(struct weir_admin *a, struct admin_conn *c)
{
	if (c->out.failed) {
		conn_close(a, c);
		return;
	}
	while (c->off < c->out.len) {
		ssize_t n = send(c->fd, c->out.p + c->off, c->out.len - c->off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				conn_close(a, c);
			return;
		}
		c->off += (size_t)n;
	}
	shutdown(c->fd, SHUT_WR);
	conn_close(a, c);
}

static void accept_new(struct weir_admin *a)
{
	while (a->nconns < WEIR_ADMIN_MAX_CONNS) {
		int fd = accept4(a->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct admin_conn *c = NULL;

		if (fd < 0)
			return;
		for (unsigned i = 0; i < WEIR_ADMIN_MAX_CONNS && c == NULL; i++)
			if (a->conns[i].fd < 0)
				c = &a->conns[i];
		if (c == NULL) {        /* cannot happen: nconns counts the used ones */
			close(fd);
			return;
		}
		c->fd = fd;
		c->writing = false;
		c->inlen = 0;
		c->off = 0;
		c->deadline = weir_now_ms() + WEIR_ADMIN_TIMEOUT_MS;
		a->nconns++;
	}
}

static void *admin_thread(void *arg)
{
	struct weir_admin *a = arg;
	struct pollfd pfd[2 + WEIR_ADMIN_MAX_CONNS];
	struct admin_conn *who[2 + WEIR_ADMIN_MAX_CONNS];

	for (;;) {
		uint64_t now = weir_now_ms();
		int timeout = -1;
		nfds_t n = 0;

		/* expired first, so that their slots count as free below */
		for (unsigned i = 0; i < WEIR_ADMIN_MAX_CONNS; i++)
			if (a->conns[i].fd >= 0 && now >= a->conns[i].deadline)
				conn_close(a, &a->conns[i]);
		pfd[n++] = (struct pollfd){ .fd = a->stop_fd, .events = POLLIN };
		/* at the limit, new connections wait in the backlog */
		pfd[n++] = (struct pollfd){ .fd = a->nconns < WEIR_ADMIN_MAX_CONNS ? a->lfd : -1,
					    .events = POLLIN };
		for (unsigned i = 0; i < WEIR_ADMIN_MAX_CONNS; i++) {
			struct admin_conn *c = &a->conns[i];

			if (c->fd < 0)
				continue;
			if (timeout < 0 || c->deadline - now < (uint64_t)timeout)
				timeout = (int)(c->deadline - now);
			who[n] = c;
			pfd[n++] = (struct pollfd){ .fd = c->fd,
						    .events = c->writing ? POLLOUT : POLLIN };
		}
		if (poll(pfd, n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "weir: admin: poll: %s\n", strerror(errno));
			break;
		}
		if (pfd[0].revents != 0)
			break;
		for (nfds_t i = 2; i < n; i++) {
			struct admin_conn *c = who[i];

			if (pfd[i].revents == 0 || c->fd < 0)
				continue;
			if (!c->writing)
				conn_read(a, c);
			/* answered at once: try to send it all now */
			if (c->fd >= 0 && c->writing)
				conn_write(a, c);
		}
		if (pfd[1].revents != 0)
			accept_new(a);
	}
	for (unsigned i = 0; i < WEIR_ADMIN_MAX_CONNS; i++)
		if (a->conns[i].fd >= 0)
			conn_close(a, &a->conns[i]);
	return NULL;
}

/* ---- start / stop ------------------------------------------------------- */

static int fail(char *err, size_t errlen, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return ret;
}

int weir_admin_start(struct weir_admin **out, const struct weir_conf *conf,
		     struct weir_reactor *reactors, unsigned nreactors, char *err, size_t errlen)
{
	struct weir_admin *a;
	int one = 1, ret;

	*out = NULL;
	if (!conf->admin_set)
		return 0;
	a = weir_calloc(1, sizeof(*a));
	if (a == NULL)
		return fail(err, errlen, -ENOMEM, "out of memory");
	a->reactors = reactors;
	a->nreactors = nreactors;
	a->conf = conf;
	a->generation = 1;
	a->start_ns = weir_metrics_now_ns();
	a->start_unix = unix_now();
	snprintf(a->addr, sizeof(a->addr), "%s", conf->admin.text);
	for (unsigned i = 0; i < WEIR_ADMIN_MAX_CONNS; i++)
		a->conns[i].fd = -1;
	pthread_mutex_init(&a->lock, NULL);
	a->lfd = -1;
	a->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (a->stop_fd < 0) {
		ret = fail(err, errlen, -errno, "eventfd: %s", strerror(errno));
		goto fail;
	}
	/* No SO_REUSEPORT: a second weir must not share this address. */
	a->lfd = socket(conf->admin.ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (a->lfd < 0 ||
	    setsockopt(a->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(a->lfd, (const struct sockaddr *)&conf->admin.ss, conf->admin.len) != 0 ||
	    listen(a->lfd, 64) != 0) {
		ret = fail(err, errlen, -errno, "cannot listen on %s: %s", conf->admin.text,
			   strerror(errno));
		goto fail;
	}
	ret = pthread_create(&a->thread, NULL, admin_thread, a);
	if (ret != 0) {
		ret = fail(err, errlen, -ret, "cannot start the admin thread: %s", strerror(ret));
		goto fail;
	}
	*out = a;
	return 0;

fail:
	if (a->lfd >= 0)
		close(a->lfd);
	if (a->stop_fd >= 0)
		close(a->stop_fd);
	pthread_mutex_destroy(&a->lock);
	weir_free(a);
	return ret;
}

void weir_admin_stop(struct weir_admin *a)
{
	uint64_t one = 1;

	if (a == NULL)
		return;
	if (write(a->stop_fd, &one, sizeof(one)) < 0)
		fprintf(stderr, "weir: admin: stop: %s\n", strerror(errno));
	pthread_join(a->thread, NULL);
	close(a->lfd);
	close(a->stop_fd);
	pthread_mutex_destroy(&a->lock);
	weir_free(a->reload_error);
	weir_free(a);
}

void weir_admin_set_conf(struct weir_admin *a, const struct weir_conf *conf)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->lock);
	a->conf = conf;
	a->generation++;
	weir_free(a->reload_error);
	a->reload_error = NULL;
	pthread_mutex_unlock(&a->lock);
}

void weir_admin_set_reload(struct weir_admin *a, bool supported)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->lock);
	a->reload_supported = supported;
	pthread_mutex_unlock(&a->lock);
}

void weir_admin_reload_failed(struct weir_admin *a, const char *error)
{
	char *copy = error != NULL ? weir_strndup(error, strlen(error)) : NULL;

	if (a == NULL) {
		weir_free(copy);
		return;
	}
	pthread_mutex_lock(&a->lock);
	weir_free(a->reload_error);
	a->reload_error = copy;
	if (error != NULL)
		a->reload_failures++;
	pthread_mutex_unlock(&a->lock);
}
