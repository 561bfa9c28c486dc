/*
 * weir-rate: an open-loop (constant-rate) HTTP/1.1 load client, free of
 * coordinated omission, for bench/load.py. One thread, epoll, keep-alive.
 *
 *   weir-rate --url http://127.0.0.1:8080/?size=16 --rate 10000 \
 *             --connections 64 --duration 10 [--warmup 1] [--json]
 *   weir-rate --url http://127.0.0.1:8080/ --idle 10000   (memory scenario)
 *
 * Load model. Request i is due at t0 + i / rate, whatever happened to the
 * requests before it. A due request goes out on a free keep-alive connection
 * (one request in flight per connection, no pipelining); when none is free
 * it waits in a FIFO. Its latency is measured from the time it was due
 * (intended send time) to the last byte of its response, so time spent
 * queueing behind a slow server counts, as it would for a real user: this is
 * what a closed-loop client such as wrk leaves out (coordinated omission).
 * Latencies go into a log-linear histogram (HDR-style: 1024 linear
 * sub-buckets per power of two, relative error < 0.1 %); percentiles are
 * reported as the upper bound of their bucket, the maximum exactly.
 *
 * Requests due during the warm-up are sent but not recorded. After the
 * measured window the client waits for outstanding requests up to --timeout;
 * a request not answered within --timeout of being sent, or not sent within
 * --timeout of being due, counts as a timeout; still queued at the end:
 * "unsent". Errors: status (non-2xx), reset (connection closed or reset
 * with a request in flight), timeout, connect (failed connects), unsent.
 *
 * Idle mode (--idle N): open N connections (over --sources source addresses
 * 127.0.0.B.. so that more than one address's ephemeral ports can be used),
 * send one GET on each, read the answer, print one line
 * "ready {json}" on stdout and keep them open until stdin reaches EOF,
 * SIGTERM/SIGINT, or --hold seconds. bench/load.py reads the proxy's RSS
 * meanwhile.
 *
 * Output: a human summary, or with --json one JSON object on stdout.
 * Progress lines (once per second) go to stderr unless --quiet.
 * Exit status: 0 when it ran (errors are reported, not fatal); 2 on usage or
 * setup errors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- histogram ---------------------------------------------------------- */

#define H_SUB_BITS 10u
#define H_SUB (1u << H_SUB_BITS)        /* linear buckets below 2^H_SUB_BITS */
#define H_MAX_BITS 40u                  /* values up to 2^40 ns (~18 min) */
#define H_BUCKETS (H_SUB + (H_MAX_BITS - H_SUB_BITS) * (H_SUB / 2))

struct hist {
	uint64_t count;
	uint64_t min, max;
	double sum;
	uint64_t b[H_BUCKETS];
};

static unsigned h_index(uint64_t v)
{
	unsigned top, shift;

	if (v < H_SUB)
		return (unsigned)v;
	if (v >= (UINT64_C(1) << H_MAX_BITS))
		v = (UINT64_C(1) << H_MAX_BITS) - 1;
	top = 63u - (unsigned)__builtin_clzll(v);       /* >= H_SUB_BITS */
	shift = top - H_SUB_BITS + 1;
	return H_SUB + (shift - 1) * (H_SUB / 2) + (unsigned)((v >> shift) - H_SUB / 2);
}

/* Highest value that lands in bucket i. */
static uint64_t h_upper(unsigned i)
{
	unsigned shift;
	uint64_t m;

	if (i < H_SUB)
		return i;
	shift = (i - H_SUB) / (H_SUB / 2) + 1;
	m = (i - H_SUB) % (H_SUB / 2) + H_SUB / 2;
	return ((m + 1) << shift) - 1;
}

static void h_add(struct hist *h, uint64_t v)
{
	if (h->count == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->count++;
	h->sum += (double)v;
	h->b[h_index(v)]++;
}

static void h_reset(struct hist *h)
{
	memset(h, 0, sizeof(*h));
}

/* Nearest-rank percentile, as its bucket's upper bound, at most the max. */
static uint64_t h_pct(const struct hist *h, double p)
{
	uint64_t rank, seen = 0;

	if (h->count == 0)
		return 0;
	rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < H_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			uint64_t u = h_upper(i);

			return u < h->max ? u : h->max;
		}
	}
	return h->max;
}

/* ---- options ------------------------------------------------------------ */

static struct {
	char host[256];
	uint16_t port;
	char path[2048];
	double rate;
	unsigned conns;
	double duration, warmup;
	const char *method;
	uint64_t body;
	uint64_t timeout_ns;
	unsigned idle;
	double hold;
	unsigned sources, source_base;
	bool json, quiet;
} opt = {
	.rate = 1000,
	.conns = 64,
	.duration = 10,
	.warmup = 1,
	.method = "GET",
	.timeout_ns = 5000000000ull,
	.sources = 1,
	.source_base = 1,
};

/* ---- connections --------------------------------------------------------- */

enum cstate { C_CLOSED = 0, C_CONNECTING, C_IDLE, C_SENDING, C_WAITING };
enum pstate { P_HEAD = 0, P_LEN, P_CHUNK_SIZE, P_CHUNK_EXT, P_CHUNK_DATA, P_CHUNK_CRLF,
	      P_TRAILER, P_CLOSE };

#define HEAD_MAX 16384u

struct conn {
	int fd;
	unsigned idx;
	enum cstate state;
	enum pstate ps;
	size_t out_off;
	uint64_t due, sent_at;  /* of the request in flight */
	bool measured;          /* the request in flight counts */
	bool close_after;
	bool done_once;         /* idle mode: answered */
	int status;
	uint64_t remaining;     /* P_LEN / P_CHUNK_DATA */
	uint64_t chunk_size;
	unsigned line_len;      /* P_TRAILER */
	unsigned hlen;
	char *head;             /* HEAD_MAX, while parsing a head */
	uint64_t retry_at;
	struct conn *next_free;
};

static struct conn *conns;
static struct conn *free_list;  /* idle connections */
static int ep;
static struct sockaddr_in dst;
static char *req_buf;
static size_t req_len;
static volatile sig_atomic_t stop_flag;

static struct {
	uint64_t sent, completed, ok;
	uint64_t e_status, e_reset, e_timeout, e_connect, e_unsent;
	uint64_t connects;
	uint64_t closed_idle;   /* idle mode: peer closed an idle connection */
} st, st_iv;                    /* totals (measured) / this interval */

static struct hist hist, hist_iv;

/* pending due times: a ring */
static uint64_t *pq;
static size_t pq_cap, pq_head, pq_len;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("weir-rate: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void pq_push(uint64_t due)
{
	if (pq_len == pq_cap) {
		size_t ncap = pq_cap ? pq_cap * 2 : 4096;
		uint64_t *n = malloc(ncap * sizeof(*n));

		if (n == NULL)
			die("out of memory");
		for (size_t i = 0; i < pq_len; i++)
			n[i] = pq[(pq_head + i) % pq_cap];
		free(pq);
		pq = n;
		pq_cap = ncap;
		pq_head = 0;
	}
	pq[(pq_head + pq_len) % pq_cap] = due;
	pq_len++;
}

static uint64_t pq_pop(void)
{
	uint64_t v = pq[pq_head];

	pq_head = (pq_head + 1) % pq_cap;
	pq_len--;
	return v;
}

static void ep_mod(struct conn *c, uint32_t events, int op)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	if (epoll_ctl(ep, op, c->fd, &ev) != 0)
		die("epoll_ctl: %s", strerror(errno));
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = C_CLOSED;
	free(c->head);
	c->head = NULL;
	c->hlen = 0;
}

static void conn_open(struct conn *c, uint64_t now)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	c->retry_at = 0;
	if (fd < 0) {
		st.e_connect++;
		c->retry_at = now + 100000000u;
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (opt.sources > 1 || opt.source_base != 1) {
		struct sockaddr_in src = { .sin_family = AF_INET };
		unsigned k = opt.source_base + c->idx % opt.sources;

		src.sin_addr.s_addr = htonl(0x7f000000u | (k & 0xffffffu));
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
			close(fd);
			st.e_connect++;
			c->retry_at = now + 100000000u;
			return;
		}
	}
	c->fd = fd;
	c->state = C_CONNECTING;
	st.connects++;
	if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0 && errno != EINPROGRESS) {
		st.e_connect++;
		conn_close(c);
		c->retry_at = now + 100000000u;
		return;
	}
	ep_mod(c, EPOLLOUT, EPOLL_CTL_ADD);
}

static void make_idle(struct conn *c)
{
	c->state = C_IDLE;
	c->next_free = free_list;
	free_list = c;
}

/* Remove c from the free list (it was closed while idle). */
static void unfree(struct conn *c)
{
	for (struct conn **pp = &free_list; *pp != NULL; pp = &(*pp)->next_free) {
		if (*pp == c) {
			*pp = c->next_free;
			return;
		}
	}
}

/* A request in flight failed: count it where it belongs. */
static void fail_inflight(struct conn *c, uint64_t *counter)
{
	if (c->state == C_SENDING || c->state == C_WAITING) {
		if (c->measured) {
			(*counter)++;
			if (counter == &st.e_reset)
				st_iv.e_reset++;
			else if (counter == &st.e_timeout)
				st_iv.e_timeout++;
		}
	}
}

static void conn_lost(struct conn *c, uint64_t now, uint64_t *counter)
{
	if (c->state == C_IDLE) {
		unfree(c);
		if (opt.idle)
			st.closed_idle++;
	}
	fail_inflight(c, counter);
	conn_close(c);
	/* Reconnect at once (idle mode: never; the count is what it is). */
	if (!opt.idle)
		conn_open(c, now);
}

static void try_send(struct conn *c, uint64_t now)
{
	while (c->out_off < req_len) {
		ssize_t n = send(c->fd, req_buf + c->out_off, req_len - c->out_off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN) {
				ep_mod(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
				return;
			}
			conn_lost(c, now, &st.e_reset);
			return;
		}
		c->out_off += (size_t)n;
	}
	if (c->state == C_SENDING) {
		c->state = C_WAITING;
		ep_mod(c, EPOLLIN, EPOLL_CTL_MOD);
	}
}

static void start_request(struct conn *c, uint64_t due, uint64_t now, bool measured)
{
	c->due = due;
	c->sent_at = now;
	c->measured = measured;
	c->out_off = 0;
	c->ps = P_HEAD;
	c->hlen = 0;
	c->status = 0;
	c->close_after = false;
	c->state = C_SENDING;
	if (measured) {
		st.sent++;
		st_iv.sent++;
	}
	try_send(c, now);
}

/* ---- response parsing ---------------------------------------------------- */

static bool field_is(const char *line, size_t len, const char *name, const char **val,
		     size_t *vlen)
{
	size_t n = strlen(name);

	if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return false;
	*val = line + n + 1;
	*vlen = len - n - 1;
	while (*vlen > 0 && (**val == ' ' || **val == '\t')) {
		(*val)++;
		(*vlen)--;
	}
	while (*vlen > 0 && ((*val)[*vlen - 1] == ' ' || (*val)[*vlen - 1] == '\t'))
		(*vlen)--;
	return true;
}

static bool contains_ci(const char *v, size_t n, const char *tok)
{
	size_t t = strlen(tok);

	for (size_t i = 0; i + t <= n; i++)
		if (strncasecmp(v + i, tok, t) == 0)
			return true;
	return false;
}

/* Parse a complete head in c->head[0..len). 0 or -1. */
static int parse_head(struct conn *c, size_t len)
{
	const char *p = c->head, *end = c->head + len;
	bool chunked = false, have_len = false;
	uint64_t clen = 0;
	int minor;

	if (len < 12 || memcmp(p, "HTTP/1.", 7) != 0)
		return -1;
	minor = p[7] - '0';
	c->status = atoi(p + 9);
	if (c->status < 100 || c->status > 999)
		return -1;
	if (minor == 0)
		c->close_after = true;
	p = memchr(p, '\n', (size_t)(end - p));
	if (p == NULL)
		return -1;
	p++;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p)), *v;
		size_t l, vl;

		if (eol == NULL)
			return -1;
		l = (size_t)(eol - p);
		if (l > 0 && p[l - 1] == '\r')
			l--;
		if (l == 0)
			break;
		if (field_is(p, l, "content-length", &v, &vl)) {
			clen = strtoull(v, NULL, 10);
			have_len = true;
		} else if (field_is(p, l, "transfer-encoding", &v, &vl)) {
			chunked = contains_ci(v, vl, "chunked");
		} else if (field_is(p, l, "connection", &v, &vl)) {
			if (contains_ci(v, vl, "close"))
				c->close_after = true;
			else if (contains_ci(v, vl, "keep-alive"))
				c->close_after = false;
		}
		p = eol + 1;
	}
	if (c->status < 200) {
		c->ps = P_HEAD;         /* 1xx: the real response follows */
		return 1;
	}
	if (c->status == 204 || c->status == 304) {
		c->remaining = 0;
		c->ps = P_LEN;
	} else if (chunked) {
		c->ps = P_CHUNK_SIZE;
		c->chunk_size = 0;
	} else if (have_len) {
		c->ps = P_LEN;
		c->remaining = clen;
	} else {
		c->ps = P_CLOSE;
		c->close_after = true;
	}
	return 0;
}

static void response_done(struct conn *c, uint64_t now)
{
	bool ok = c->status >= 200 && c->status < 300;

	if (c->measured) {
		uint64_t lat = now - c->due;

		st.completed++;
		st_iv.completed++;
		h_add(&hist, lat);
		h_add(&hist_iv, lat);
		if (ok)
			st.ok++;
		else {
			st.e_status++;
			st_iv.e_status++;
		}
	}
	free(c->head);
	c->head = NULL;
	c->hlen = 0;
	c->done_once = true;
	if (c->close_after) {
		conn_close(c);
		if (!opt.idle)
			conn_open(c, now);
		return;
	}
	make_idle(c);
}

/* Feed received bytes. Returns bytes consumed (the rest would be a pipelined
 * answer nobody asked for: -1 = protocol error). */
static int feed(struct conn *c, const char *p, size_t n, uint64_t now)
{
	size_t i = 0;

	while (i < n) {
		switch (c->ps) {
		case P_HEAD: {
			size_t take, start;
			char *e;

			if (c->head == NULL) {
				c->head = malloc(HEAD_MAX);
				if (c->head == NULL)
					die("out of memory");
			}
			take = n - i;
			if (take > HEAD_MAX - c->hlen)
				take = HEAD_MAX - c->hlen;
			start = c->hlen >= 3 ? c->hlen - 3 : 0;
			memcpy(c->head + c->hlen, p + i, take);
			c->hlen += (unsigned)take;
			e = memmem(c->head + start, c->hlen - start, "\r\n\r\n", 4);
			if (e == NULL) {
				if (c->hlen == HEAD_MAX)
					return -1;
				i += take;
				break;
			}
			{
				size_t hl = (size_t)(e - c->head) + 4;
				int r;

				/* bytes of this read that belong to the head */
				i += hl - (c->hlen - take);
				r = parse_head(c, hl);
				if (r < 0)
					return -1;
				c->hlen = 0;
				if (r == 1)
					break;  /* 1xx */
				if (c->ps == P_LEN && c->remaining == 0) {
					response_done(c, now);
					if (i < n)
						return -1;
					return 0;
				}
			}
			break;
		}
		case P_LEN: {
			size_t take = n - i;

			if (take > c->remaining)
				take = (size_t)c->remaining;
			c->remaining -= take;
			i += take;
			if (c->remaining == 0) {
				response_done(c, now);
				return i < n ? -1 : 0;
			}
			break;
		}
		case P_CHUNK_SIZE: {
			char ch = p[i++];
			int d = ch >= '0' && ch <= '9'   ? ch - '0'
				: ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
				: ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
							 : -1;

			if (d >= 0) {
				if (c->chunk_size >> 56)
					return -1;
				c->chunk_size = c->chunk_size * 16 + (uint64_t)d;
			} else if (ch == '\n') {
				if (c->chunk_size == 0) {
					c->ps = P_TRAILER;
					c->line_len = 0;
				} else {
					c->ps = P_CHUNK_DATA;
					c->remaining = c->chunk_size;
				}
			} else {
				c->ps = P_CHUNK_EXT;    /* ';' ext, '\r', spaces */
			}
			break;
		}
		case P_CHUNK_EXT: {
			const char *lf = memchr(p + i, '\n', n - i);

			if (lf == NULL) {
				i = n;
				break;
			}
			i = (size_t)(lf - p) + 1;
			if (c->chunk_size == 0) {
				c->ps = P_TRAILER;
				c->line_len = 0;
			} else {
				c->ps = P_CHUNK_DATA;
				c->remaining = c->chunk_size;
			}
			break;
		}
		case P_CHUNK_DATA: {
			size_t take = n - i;

			if (take > c->remaining)
				take = (size_t)c->remaining;
			c->remaining -= take;
			i += take;
			if (c->remaining == 0) {
				c->ps = P_CHUNK_CRLF;
				c->line_len = 0;
			}
			break;
		}
		case P_CHUNK_CRLF:
			if (p[i++] == '\n') {
				c->ps = P_CHUNK_SIZE;
				c->chunk_size = 0;
			}
			break;
		case P_TRAILER: {
			char ch = p[i++];

			if (ch == '\n') {
				if (c->line_len == 0) {
					response_done(c, now);
					return i < n ? -1 : 0;
				}
				c->line_len = 0;
			} else if (ch != '\r') {
				c->line_len++;
			}
			break;
		}
		case P_CLOSE:
			i = n;
			break;
		}
	}
	return 0;
}

static char rbuf[256 * 1024];

static void on_readable(struct conn *c, uint64_t now)
{
	for (;;) {
		ssize_t n = recv(c->fd, rbuf, sizeof(rbuf), 0);

		if (n > 0) {
			if (c->state != C_SENDING && c->state != C_WAITING) {
				/* bytes nobody asked for */
				conn_lost(c, now, &st.e_reset);
				return;
			}
			if (feed(c, rbuf, (size_t)n, now) < 0) {
				fail_inflight(c, &st.e_reset);
				conn_close(c);
				if (!opt.idle)
					conn_open(c, now);
				return;
			}
			if (c->state != C_SENDING && c->state != C_WAITING)
				return;         /* done: idle or reopened */
			if ((size_t)n < sizeof(rbuf))
				return;
			continue;
		}
		if (n == 0) {
			if ((c->state == C_WAITING || c->state == C_SENDING) && c->ps == P_CLOSE) {
				response_done(c, now);  /* closes and reopens */
				return;
			}
			conn_lost(c, now, &st.e_reset);
			return;
		}
		if (errno == EAGAIN || errno == EINTR)
			return;
		conn_lost(c, now, &st.e_reset);
		return;
	}
}

static void on_event(struct conn *c, uint32_t ev, uint64_t now)
{
	if (c->state == C_CONNECTING) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) != 0 || err != 0 ||
		    (ev & (EPOLLERR | EPOLLHUP))) {
			st.e_connect++;
			conn_close(c);
			c->retry_at = now + 100000000u;
			return;
		}
		ep_mod(c, EPOLLIN, EPOLL_CTL_MOD);
		if (opt.idle) {
			start_request(c, now, now, false);
			return;
		}
		make_idle(c);
		return;
	}
	if (ev & EPOLLIN) {
		on_readable(c, now);
		if (c->state == C_CLOSED || c->state == C_CONNECTING)
			return;
	} else if (ev & (EPOLLERR | EPOLLHUP)) {
		conn_lost(c, now, &st.e_reset);
		return;
	}
	if ((ev & EPOLLOUT) && c->state == C_SENDING)
		try_send(c, now);
}

/* ---- main loop ------------------------------------------------------------ */

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

static const double spectrum[] = { 0, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95,
				    97.5, 99, 99.5, 99.75, 99.9, 99.95, 99.99, 99.999, 100 };

static void print_json(double secs)
{
	printf("{\"mode\": \"open\", \"url\": \"http://%s:%u%s\", \"method\": \"%s\", "
	       "\"body_bytes\": %" PRIu64 ", \"rate\": %.1f, \"connections\": %u, "
	       "\"duration_s\": %.3f, \"sent\": %" PRIu64 ", \"completed\": %" PRIu64
	       ", \"ok\": %" PRIu64 ", \"rps\": %.1f, "
	       "\"errors\": {\"status\": %" PRIu64 ", \"reset\": %" PRIu64 ", \"timeout\": %" PRIu64
	       ", \"connect\": %" PRIu64 ", \"unsent\": %" PRIu64 "}, \"connects\": %" PRIu64 ", "
	       "\"latency_us\": {\"min\": %.1f, \"mean\": %.1f, \"p50\": %.1f, \"p90\": %.1f, "
	       "\"p95\": %.1f, \"p99\": %.1f, \"p99_9\": %.1f, \"p99_99\": %.1f, \"max\": %.1f}, "
	       "\"spectrum_us\": [",
	       opt.host, opt.port, opt.path, opt.method, opt.body, opt.rate, opt.conns, secs,
	       st.sent, st.completed, st.ok, (double)st.completed / secs, st.e_status, st.e_reset,
	       st.e_timeout, st.e_connect, st.e_unsent, st.connects, us(hist.min),
	       hist.count ? hist.sum / (double)hist.count / 1000.0 : 0.0, us(h_pct(&hist, 50)),
	       us(h_pct(&hist, 90)), us(h_pct(&hist, 95)), us(h_pct(&hist, 99)),
	       us(h_pct(&hist, 99.9)), us(h_pct(&hist, 99.99)), us(hist.max));
	/* The percentile spectrum, [percentile, µs], for latency plots. */
	for (size_t i = 0; i < sizeof(spectrum) / sizeof(spectrum[0]); i++)
		printf("%s[%g, %.1f]", i ? ", " : "", spectrum[i], us(h_pct(&hist, spectrum[i])));
	printf("]}\n");
}

static void print_human(double secs)
{
	printf("%" PRIu64 " requests in %.1f s (%.0f req/s, target %.0f), %u connections\n",
	       st.completed, secs, (double)st.completed / secs, opt.rate, opt.conns);
	printf("errors: status %" PRIu64 ", reset %" PRIu64 ", timeout %" PRIu64 ", connect %" PRIu64
	       ", unsent %" PRIu64 "\n",
	       st.e_status, st.e_reset, st.e_timeout, st.e_connect, st.e_unsent);
	printf("latency from intended send time (µs): p50 %.0f  p90 %.0f  p95 %.0f  p99 %.0f  "
	       "p99.9 %.0f  p99.99 %.0f  max %.0f\n",
	       us(h_pct(&hist, 50)), us(h_pct(&hist, 90)), us(h_pct(&hist, 95)),
	       us(h_pct(&hist, 99)), us(h_pct(&hist, 99.9)), us(h_pct(&hist, 99.99)),
	       us(hist.max));
}

static void wait_events(uint64_t until, uint64_t now)
{
	struct epoll_event evs[256];
	struct timespec ts;
	uint64_t d = until > now ? until - now : 0;
	int n;

	ts.tv_sec = (time_t)(d / 1000000000u);
	ts.tv_nsec = (long)(d % 1000000000u);
	n = epoll_pwait2(ep, evs, 256, &ts, NULL);
	if (n < 0) {
		if (errno == EINTR)
			return;
		die("epoll_pwait2: %s", strerror(errno));
	}
	now = now_ns();
	for (int i = 0; i < n; i++)
		on_event(evs[i].data.ptr, evs[i].events, now);
}

static void check_timeouts(uint64_t now)
{
	for (unsigned i = 0; i < opt.conns; i++) {
		struct conn *c = &conns[i];

		if ((c->state == C_SENDING || c->state == C_WAITING) &&
		    now - c->sent_at > opt.timeout_ns) {
			fail_inflight(c, &st.e_timeout);
			conn_close(c);
			if (!opt.idle)
				conn_open(c, now);
		} else if (c->state == C_CLOSED && !opt.idle && c->retry_at != 0 &&
			   now >= c->retry_at) {
			conn_open(c, now);
		}
	}
}

static int run_idle(void)
{
	uint64_t t0 = now_ns(), deadline;
	unsigned opened = 0, batch = 512, answered = 0;
	char line[64];

	/* Connect in batches so the proxy's accept backlog never overflows. */
	while (!stop_flag) {
		uint64_t now = now_ns();
		unsigned inprog = 0;

		answered = 0;
		for (unsigned i = 0; i < opened; i++) {
			if (conns[i].done_once)
				answered++;
			else if (conns[i].state != C_CLOSED)
				inprog++;
		}
		while (opened < opt.idle && inprog < batch) {
			conn_open(&conns[opened++], now);
			inprog++;
		}
		if (opened == opt.idle && inprog == 0)
			break;
		if (now - t0 > 120000000000ull)
			break;
		wait_events(now + 10000000u, now);
	}
	printf("ready {\"idle\": %u, \"answered\": %u, \"failed\": %u, \"connect_errors\": %" PRIu64
	       ", \"seconds\": %.2f}\n",
	       opt.idle, answered, opt.idle - answered, st.e_connect,
	       (double)(now_ns() - t0) / 1e9);
	fflush(stdout);
	/* Hold: until stdin closes, a signal, or --hold. */
	fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
	{
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

		epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
	}
	deadline = opt.hold > 0 ? now_ns() + (uint64_t)(opt.hold * 1e9) : UINT64_MAX;
	while (!stop_flag && now_ns() < deadline) {
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, 200);

		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL) {
				ssize_t r = read(0, line, sizeof(line));

				if (r == 0 || (r < 0 && errno != EAGAIN))
					stop_flag = 1;
				continue;
			}
			on_event(evs[i].data.ptr, evs[i].events, now_ns());
		}
	}
	fprintf(stderr, "weir-rate: idle connections closed by the peer while held: %" PRIu64 "\n",
		st.closed_idle);
	return 0;
}

static void parse_url(const char *url)
{
	const char *p = url, *slash, *colon;
	size_t hl;

	if (strncmp(p, "http://", 7) == 0)
		p += 7;
	slash = strchr(p, '/');
	if (slash == NULL)
		slash = p + strlen(p);
	colon = memchr(p, ':', (size_t)(slash - p));
	hl = (size_t)((colon != NULL ? colon : slash) - p);
	if (hl == 0 || hl >= sizeof(opt.host))
		die("bad --url '%s'", url);
	memcpy(opt.host, p, hl);
	opt.host[hl] = '\0';
	opt.port = colon != NULL ? (uint16_t)atoi(colon + 1) : 80;
	snprintf(opt.path, sizeof(opt.path), "%s", *slash ? slash : "/");
	dst.sin_family = AF_INET;
	dst.sin_port = htons(opt.port);
	if (inet_pton(AF_INET, strcmp(opt.host, "localhost") == 0 ? "127.0.0.1" : opt.host,
		      &dst.sin_addr) != 1)
		die("--url: the host must be an IPv4 address, got '%s'", opt.host);
}

static void build_request(void)
{
	char head[4096];
	int hl;

	if (opt.body > 0)
		hl = snprintf(head, sizeof(head),
			      "%s %s HTTP/1.1\r\nHost: %s:%u\r\nContent-Type: application/octet-stream\r\n"
			      "Content-Length: %" PRIu64 "\r\n\r\n",
			      opt.method, opt.path, opt.host, opt.port, opt.body);
	else
		hl = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: %s:%u\r\n\r\n", opt.method,
			      opt.path, opt.host, opt.port);
	if (hl < 0 || (size_t)hl >= sizeof(head))
		die("request head too long");
	req_len = (size_t)hl + opt.body;
	req_buf = malloc(req_len);
	if (req_buf == NULL)
		die("out of memory");
	memcpy(req_buf, head, (size_t)hl);
	for (uint64_t i = 0; i < opt.body; i++)
		req_buf[(size_t)hl + i] = "abcdefghijklmnopqrstuvwxyz0123456789"[i % 36];
}

static void usage(FILE *f)
{
	fputs("usage: weir-rate --url http://IP:PORT/PATH [options]\n"
	      "  -r, --rate N          requests per second (default 1000)\n"
	      "  -c, --connections N   keep-alive connections (default 64)\n"
	      "  -d, --duration S      measured seconds (default 10)\n"
	      "  -w, --warmup S        seconds sent before measuring (default 1)\n"
	      "  -m, --method M        request method (default GET)\n"
	      "  -b, --body N          request body bytes, sent with Content-Length\n"
	      "  -t, --timeout MS      per request (default 5000)\n"
	      "      --idle N          open N idle keep-alive connections (one GET each), print\n"
	      "                        'ready {...}', hold them until stdin EOF or --hold\n"
	      "      --hold S          with --idle: hold at most S seconds\n"
	      "      --sources N       spread connections over N source addresses\n"
	      "      --source-base B   the first is 127.0.0.B (default 1)\n"
	      "  -j, --json            JSON summary on stdout\n"
	      "  -q, --quiet           no progress lines on stderr\n",
	      f);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "rate", required_argument, NULL, 'r' },
		{ "connections", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "method", required_argument, NULL, 'm' },
		{ "body", required_argument, NULL, 'b' },
		{ "timeout", required_argument, NULL, 't' },
		{ "idle", required_argument, NULL, 'I' },
		{ "hold", required_argument, NULL, 'H' },
		{ "sources", required_argument, NULL, 'S' },
		{ "source-base", required_argument, NULL, 'B' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *url = NULL;
	struct rlimit rl;
	uint64_t t_start, t_measure, t_end, next_due, interval, last_progress, last_tick;
	uint64_t seq = 0;
	int ch;

	while ((ch = getopt_long(argc, argv, "u:r:c:d:w:m:b:t:jqh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'u': url = optarg; break;
		case 'r': opt.rate = atof(optarg); break;
		case 'c': opt.conns = (unsigned)atoi(optarg); break;
		case 'd': opt.duration = atof(optarg); break;
		case 'w': opt.warmup = atof(optarg); break;
		case 'm': opt.method = optarg; break;
		case 'b': opt.body = strtoull(optarg, NULL, 10); break;
		case 't': opt.timeout_ns = (uint64_t)(atof(optarg) * 1e6); break;
		case 'I': opt.idle = (unsigned)atoi(optarg); break;
		case 'H': opt.hold = atof(optarg); break;
		case 'S': opt.sources = (unsigned)atoi(optarg); break;
		case 'B': opt.source_base = (unsigned)atoi(optarg); break;
		case 'j': opt.json = true; break;
		case 'q': opt.quiet = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (url == NULL) {
		usage(stderr);
		return 2;
	}
	if (!(opt.rate > 0) || opt.conns == 0 || !(opt.duration > 0) || opt.warmup < 0 ||
	    opt.sources == 0 || opt.timeout_ns == 0)
		die("rate, connections, duration, sources and timeout must be positive");
	parse_url(url);
	build_request();
	if (opt.idle)
		opt.conns = opt.idle;

	/* As many descriptors as the hard limit allows. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < (rlim_t)opt.conns + 16)
			die("%u connections need more descriptors than RLIMIT_NOFILE (%llu)",
			    opt.conns, (unsigned long long)rl.rlim_cur);
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1: %s", strerror(errno));
	conns = calloc(opt.conns, sizeof(*conns));
	if (conns == NULL)
		die("out of memory");
	for (unsigned i = 0; i < opt.conns; i++) {
		conns[i].fd = -1;
		conns[i].idx = i;
	}
	if (opt.idle)
		return run_idle();

	t_start = now_ns();
	for (unsigned i = 0; i < opt.conns; i++)
		conn_open(&conns[i], t_start);
	/* Let the connections come up before the schedule starts. */
	for (int k = 0; k < 200; k++) {
		unsigned up = 0;

		for (unsigned i = 0; i < opt.conns; i++)
			up += conns[i].state == C_IDLE;
		if (up == opt.conns)
			break;
		wait_events(now_ns() + 10000000u, now_ns());
	}

	interval = (uint64_t)(1e9 / opt.rate);
	if (interval == 0)
		interval = 1;
	t_start = now_ns();
	t_measure = t_start + (uint64_t)(opt.warmup * 1e9);
	t_end = t_measure + (uint64_t)(opt.duration * 1e9);
	next_due = t_start;
	last_progress = t_measure;
	last_tick = t_start;
	while (!stop_flag) {
		uint64_t now = now_ns(), wake;
		bool outstanding = false;

		/* Requests that are due join the queue. */
		while (next_due <= now && next_due < t_end) {
			pq_push(next_due);
			seq++;
			next_due = t_start + (uint64_t)((double)seq * 1e9 / opt.rate);
		}
		/* Waited too long to be sent: a timeout. */
		while (pq_len > 0 && now - pq[pq_head] > opt.timeout_ns) {
			if (pq_pop() >= t_measure) {
				st.e_timeout++;
				st_iv.e_timeout++;
			}
		}
		while (pq_len > 0 && free_list != NULL) {
			struct conn *c = free_list;
			uint64_t due = pq_pop();

			free_list = c->next_free;
			start_request(c, due, now, due >= t_measure);
		}
		if (now - last_tick >= 10000000u) {
			check_timeouts(now);
			last_tick = now;
		}
		if (!opt.quiet && now >= last_progress + 1000000000u && now < t_end + 1000000000u) {
			fprintf(stderr,
				"weir-rate: %4.0f/%.0f s  %7.0f req/s  p50 %7.0f µs  p99 %8.0f µs  "
				"max %8.0f µs  queued %zu  errors %" PRIu64 "\n",
				(double)(now - t_measure) / 1e9, opt.duration,
				(double)st_iv.completed * 1e9 / (double)(now - last_progress),
				us(h_pct(&hist_iv, 50)), us(h_pct(&hist_iv, 99)), us(hist_iv.max), pq_len,
				st_iv.e_status + st_iv.e_reset + st_iv.e_timeout);
			h_reset(&hist_iv);
			memset(&st_iv, 0, sizeof(st_iv));
			last_progress = now;
		}
		if (now >= t_end) {
			for (unsigned i = 0; i < opt.conns; i++)
				if ((conns[i].state == C_SENDING || conns[i].state == C_WAITING) &&
				    conns[i].measured)
					outstanding = true;
			if (!outstanding || now > t_end + opt.timeout_ns)
				break;
		}
		wake = next_due < t_end ? next_due : now + 10000000u;
		if (wake > now + 10000000u)
			wake = now + 10000000u;
		wait_events(wake, now);
	}
	/* Whatever is still queued or in flight never got its answer. */
	while (pq_len > 0)
		if (pq_pop() >= t_measure)
			st.e_unsent++;
	for (unsigned i = 0; i < opt.conns; i++)
		fail_inflight(&conns[i], &st.e_timeout);
	if (opt.json)
		print_json(opt.duration);
	else
		print_human(opt.duration);
	return 0;
}
