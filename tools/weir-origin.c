/*
 * weir-origin: the origin server for weir's tests, demo and benchmarks.
 *
 * One file, libc + pthreads, epoll.  Independent of weir's own code (its
 * HTTP parser included), so that it can judge weir.
 *
 * Command line
 *   weir-origin [--listen HOST:PORT] [--threads N] [--quiet]
 *   --listen   default 127.0.0.1:9000.  HOST may be an IPv4 address, a name,
 *              or [IPv6]; PORT 0 picks a free port (the line below says which).
 *   --threads  N SO_REUSEPORT listeners, each served by its own epoll thread
 *              (default 1).
 *   --quiet    no diagnostics on stderr (rejected requests, accept errors).
 *   Once listening it prints "weir-origin listening on ADDR:PORT" (the bound
 *   numeric address, IPv6 in brackets) on stdout and flushes.  SIGTERM and
 *   SIGINT exit 0; SIGPIPE is ignored.
 *
 * HTTP
 *   HTTP/1.1 and 1.0.  Keep-alive (1.1 unless "Connection: close"; 1.0 only
 *   with "Connection: keep-alive"), pipelining (answered in order).  Request
 *   bodies framed by Content-Length or chunked (own strict parser: CRLF line
 *   ends only, both CL and TE, a TE other than "chunked", TE on HTTP/1.0,
 *   conflicting CL, bad chunk sizes/CRLFs, obs-fold, CTLs in fields: 400 and
 *   close).  Header block (request line to CRLFCRLF) over 64 KiB: 431 and
 *   close.  Leading empty lines before a request line are skipped.
 *   "Expect: 100-continue" (HTTP/1.1, with a body): "HTTP/1.1 100 Continue"
 *   is sent as soon as the head is parsed, unless noexpect=1.
 *   Error responses (400/413/431/505) carry Content-Type, Content-Length,
 *   "Connection: close" and X-Origin-Conn only; the connection then closes.
 *
 * Response, chosen by the request target's query string (any path; params
 * in any order; unknown ones ignored; a malformed number gives 400):
 *   status=N    200..999 (default 200).
 *   size=N      body of N bytes (default 0, at most 1 GiB), the pattern below.
 *   echo=1      body = the decoded request body (buffered, at most 64 MiB:
 *               413 and close beyond).
 *   headers=1   body = the raw request head exactly as received (request
 *               line + fields + CRLFCRLF), Content-Type text/plain.
 *               Body precedence: echo > headers > size.
 *   chunked=1   body sent chunked, chunks of chunk=N bytes (default 4096,
 *               1..16 MiB); ignored for HTTP/1.0 requests (Content-Length).
 *   close=1     no Content-Length, no chunking, "Connection: close"; the body
 *               ends when the connection closes (after it).  Wins over chunked.
 *   delay=MS    wait MS ms (timer, after the whole request body was read)
 *               before sending the response head.
 *   drip=MS     send the head at once, then one piece of `chunk` bytes of
 *               body every MS ms (first piece MS ms after the head; with
 *               chunked=1 each piece is one chunk, the last one followed by
 *               the 0 chunk).
 *   stall=1     read the request (and anything after it) but never answer,
 *               until the client closes.
 *   reset=1     after reading the request (and the delay, if any), close with
 *               RST (SO_LINGER 0) without answering.  stall wins over reset.
 *   sha=1       add X-Body-Sha256: hex SHA-256 of the body this response has
 *               (or, for HEAD, would have); for 204/304, that of no bytes.
 *   noexpect=1  do not send 100 Continue.
 *   Pipelined requests behind a delay/drip/stall/reset wait their turn.
 *
 *   Every normal response has, in this order:
 *     Content-Type: application/octet-stream (text/plain for headers=1,
 *                   application/json for /_stats)
 *     Content-Length: N | Transfer-Encoding: chunked (neither for 204/304
 *                   or close=1)
 *     Connection: close (when the connection closes after it) |
 *                 Connection: keep-alive (HTTP/1.0 keep-alive)
 *     X-Origin-Conn: id of this TCP connection (process-wide, from 1)
 *     X-Origin-Conns: connections accepted so far, all threads
 *     X-Origin-Requests: requests so far, all threads, this one included
 *                   (a request counts once its head parsed without error)
 *     X-Request-Bytes: decoded request body length
 *     X-Request-Sha256: lowercase hex SHA-256 of the decoded request body
 *     X-Request-Method: the request method
 *     X-Request-Chunked: 1 if the request body was chunked, else 0
 *     X-Body-Sha256: (sha=1 only)
 *   HEAD: the same head as GET (Content-Length included), no body.
 *   204/304: no body, no Content-Length.
 *   GET /_stats (path exactly /_stats, query ignored):
 *     200 {"connections":N,"requests":M,"open":K}  (accepted, requests as
 *     above, currently open connections).
 *
 * Body pattern (size=N): byte i (from 0) is
 *     "abcdefghijklmnopqrstuvwxyz0123456789"[i % 36]
 *   e.g. in Python: (ALNUM * (n // 36 + 1))[:n].  36 divides no power of two,
 *   so buffer-sized losses or repeats always show.
 *
 * Implementation: per thread one epoll loop (level-triggered) and a timer
 * heap; per connection an input buffer, an output buffer written with one
 * writev, and a body generator (identity bodies go out zero-copy from a
 * static pattern table; chunked/dripped bodies are copied).  Closes after a
 * response are lingering (shutdown, drain input up to 2 s).  SHA-256 is
 * written here from FIPS 180-4.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "sha256.h"

#define IBUF_INIT	(16u * 1024)
#define IBUF_MAX	(128u * 1024)
#define OBUF_INIT	(16u * 1024)
#define OBUF_HIGH	(256u * 1024)	/* stop parsing pipelined requests */
#define FILL_LOW	(64u * 1024)	/* chunked generator refill mark */
#define ZC_MAX		(1u << 20)	/* zero-copy bytes per writev */
#define HDR_MAX		(64u * 1024)
#define INLINE_MAX	(64u * 1024)
#define ECHO_MAX	(64ull << 20)
#define SIZE_LIMIT	(1ull << 30)
#define CHUNK_LIMIT	(16u << 20)
#define MS_LIMIT	3600000ull
#define EXT_MAX		4096u
#define METHOD_MAX	63
#define LINGER_US	2000000ull
#define NO_HEAP		SIZE_MAX

#define PAT		"abcdefghijklmnopqrstuvwxyz0123456789"
#define PAT_LEN		36u
#define PAT_TAB_LEN	(PAT_LEN * 7282u)	/* ~256 KiB */

#define EMPTY_SHA \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* ------------------------------------------------------------------ */
/* state                                                               */
/* ------------------------------------------------------------------ */

static _Atomic uint64_t g_conns;	/* accepted; also the id source */
static _Atomic uint64_t g_requests;
static _Atomic int64_t g_open;
static bool g_quiet;

static char pat_tab[PAT_TAB_LEN];
static uint8_t tchar[256];

enum cstate {
	S_HEAD,		/* reading a request head */
	S_BODY,		/* reading a request body */
	S_DELAY,	/* delay=MS timer running */
	S_SEND,		/* streaming a response body (generator) */
	S_STALL,	/* stall=1: discard input until EOF */
	S_FLUSH_CLOSE,	/* write what is queued, then lingering close */
	S_FLUSH_RESET,	/* write what is queued, then RST */
	S_LINGER,	/* shut down for writing, draining input */
};

enum { BODY_NONE, BODY_CL, BODY_CHUNKED };

enum {
	CH_SIZE0, CH_SIZE, CH_SIZE_WS, CH_EXT, CH_SIZE_LF, CH_DATA,
	CH_DATA_CR, CH_DATA_LF, CH_TRAILER0, CH_TRAILER, CH_TRAILER_LF,
	CH_END_LF,
};

enum { FR_NONE, FR_CL, FR_CHUNKED, FR_CLOSE };

struct req {
	char method[METHOD_MAX + 1];
	bool http10;
	bool is_head;
	bool is_stats;
	bool close;		/* the connection closes after this response */
	uint8_t body;
	uint8_t cst;
	uint8_t cdigits;
	uint32_t cext;
	uint64_t remaining;
	uint64_t body_len;
	/* query parameters */
	unsigned int status;
	uint32_t chunk;
	uint64_t size;
	uint64_t delay;
	uint64_t drip;
	bool p_chunked;
	bool p_close;
	bool p_echo;
	bool p_headers;
	bool p_stall;
	bool p_reset;
	bool p_sha;
	bool p_noexpect;
	struct sha256 sha;
};

struct gen {
	bool active;
	bool chunked;
	bool term_done;		/* chunked: the 0 chunk is queued */
	char *mem;		/* NULL: the pattern */
	uint64_t total;
	uint64_t off;		/* bytes queued (chunked, drip) or sent */
	uint32_t chunk;
	uint64_t drip;		/* ms, 0: none */
};

struct worker;

struct conn {
	struct worker *w;
	int fd;
	uint32_t events;
	enum cstate state;
	bool blocked;		/* waiting for EPOLLOUT */
	bool held;		/* parsing held back by a full output buffer */
	bool eof;		/* the peer shut down its side */
	bool last_full;		/* the last read filled the buffer */
	uint64_t id;
	size_t hidx;
	uint64_t deadline;	/* µs, CLOCK_MONOTONIC */
	char *ibuf;
	size_t icap, ioff, ilen, scan;
	char *obuf;
	size_t ocap, ooff, olen;
	char *echo;
	size_t echo_len, echo_cap;
	char *hcopy;
	size_t hcopy_len, hcopy_cap;
	struct req rq;
	struct gen g;
};

struct worker {
	int epfd;
	int lfd;
	bool lpaused;
	uint64_t lresume;
	struct conn **heap;
	size_t nheap, capheap;
	bool sc_ok;		/* cache: sha of the last pattern size */
	uint64_t sc_n;
	char sc_hex[65];
	char scratch[16384];
};

/* ------------------------------------------------------------------ */
/* helpers                                                             */
/* ------------------------------------------------------------------ */

__attribute__((format(printf, 1, 2)))
static void logmsg(const char *fmt, ...)
{
	va_list ap;

	if (g_quiet)
		return;
	va_start(ap, fmt);
	fputs("weir-origin: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

__attribute__((noreturn))
static void die(const char *what)
{
	fprintf(stderr, "weir-origin: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);

	if (q == NULL) {
		fputs("weir-origin: out of memory\n", stderr);
		abort();
	}
	return q;
}

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static char *put_mem(char *d, const char *s, size_t n)
{
	memcpy(d, s, n);
	return d + n;
}

#define PUT_LIT(d, lit) put_mem((d), (lit), sizeof(lit) - 1)

static char *put_u64(char *d, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*d++ = tmp[--n];
	return d;
}

static char *put_hex(char *d, uint64_t v)
{
	static const char hx[] = "0123456789abcdef";
	char tmp[16];
	size_t n = 0;

	do {
		tmp[n++] = hx[v & 15];
		v >>= 4;
	} while (v);
	while (n)
		*d++ = tmp[--n];
	return d;
}

/* Digits only, no sign, no overflow. */
static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 19)
		return false;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

static int hexval(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static bool ieq(const char *a, size_t an, const char *lit)
{
	size_t ln = strlen(lit);

	return an == ln && strncasecmp(a, lit, ln) == 0;
}

static const char *reason(unsigned int s)
{
	switch (s) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 203: return "Non-Authoritative Information";
	case 204: return "No Content";
	case 205: return "Reset Content";
	case 206: return "Partial Content";
	case 300: return "Multiple Choices";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

/* ------------------------------------------------------------------ */
/* timers: a min-heap of connections per worker                        */
/* ------------------------------------------------------------------ */

static void heap_place(struct worker *w, size_t i, struct conn *c)
{
	w->heap[i] = c;
	c->hidx = i;
}

static void heap_up(struct worker *w, size_t i)
{
	struct conn *c = w->heap[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (w->heap[p]->deadline <= c->deadline)
			break;
		heap_place(w, i, w->heap[p]);
		i = p;
	}
	heap_place(w, i, c);
}

static void heap_down(struct worker *w, size_t i)
{
	struct conn *c = w->heap[i];

	for (;;) {
		size_t m = 2 * i + 1;

		if (m >= w->nheap)
			break;
		if (m + 1 < w->nheap &&
		    w->heap[m + 1]->deadline < w->heap[m]->deadline)
			m++;
		if (w->heap[m]->deadline >= c->deadline)
			break;
		heap_place(w, i, w->heap[m]);
		i = m;
	}
	heap_place(w, i, c);
}

static void timer_del(struct conn *c)
{
	struct worker *w = c->w;
	size_t i = c->hidx;
	struct conn *last;

	if (i == NO_HEAP)
		return;
	c->hidx = NO_HEAP;
	last = w->heap[--w->nheap];
	if (last == c)
		return;
	heap_place(w, i, last);
	heap_up(w, i);
	heap_down(w, last->hidx);
}

static void timer_set(struct conn *c, uint64_t us)
{
	struct worker *w = c->w;

	timer_del(c);
	c->deadline = mono_us() + us;
	if (w->nheap == w->capheap) {
		w->capheap = w->capheap ? 2 * w->capheap : 64;
		w->heap = xrealloc(w->heap, w->capheap * sizeof(*w->heap));
	}
	heap_place(w, w->nheap, c);
	w->nheap++;
	heap_up(w, c->hidx);
}

/* ------------------------------------------------------------------ */
/* output buffer                                                       */
/* ------------------------------------------------------------------ */

/* Room for n more bytes at obuf + olen; returns that position. */
static char *ob_reserve(struct conn *c, size_t n)
{
	if (c->ocap - c->olen < n && c->ooff > 0) {
		memmove(c->obuf, c->obuf + c->ooff, c->olen - c->ooff);
		c->olen -= c->ooff;
		c->ooff = 0;
	}
	if (c->ocap - c->olen < n) {
		size_t cap = c->ocap;

		while (cap - c->olen < n)
			cap *= 2;
		c->obuf = xrealloc(c->obuf, cap);
		c->ocap = cap;
	}
	return c->obuf + c->olen;
}

static void ob_put(struct conn *c, const char *s, size_t n)
{
	memcpy(ob_reserve(c, n), s, n);
	c->olen += n;
}

/* Contiguous body bytes at off: the slice's start and length. */
static size_t body_slice(char *mem, uint64_t total, uint64_t off, char **p)
{
	size_t r;

	if (mem != NULL) {
		*p = mem + off;
		return (size_t)(total - off);
	}
	r = (size_t)(off % PAT_LEN);
	*p = pat_tab + r;
	return PAT_TAB_LEN - r;
}

static void body_copy(char *dst, char *mem, uint64_t total, uint64_t off,
		      size_t n)
{
	while (n) {
		char *p;
		size_t len = body_slice(mem, total, off, &p);

		if (len > n)
			len = n;
		memcpy(dst, p, len);
		dst += len;
		off += len;
		n -= len;
	}
}

/* One chunk of n body bytes at off, framed. */
static void ob_chunk(struct conn *c, char *mem, uint64_t total, uint64_t off,
		     size_t n)
{
	char *d = ob_reserve(c, 20 + n + 2);
	char *s = d;

	d = put_hex(d, n);
	d = PUT_LIT(d, "\r\n");
	body_copy(d, mem, total, off, n);
	d += n;
	d = PUT_LIT(d, "\r\n");
	c->olen += (size_t)(d - s);
}

static void ob_body(struct conn *c, char *mem, uint64_t total, uint64_t off,
		    size_t n)
{
	body_copy(ob_reserve(c, n), mem, total, off, n);
	c->olen += n;
}

/* ------------------------------------------------------------------ */
/* connections                                                         */
/* ------------------------------------------------------------------ */

static void conn_close(struct conn *c)
{
	timer_del(c);
	close(c->fd);
	atomic_fetch_sub_explicit(&g_open, 1, memory_order_relaxed);
	free(c->ibuf);
	free(c->obuf);
	free(c->echo);
	free(c->hcopy);
	free(c);
}

static void conn_reset(struct conn *c)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	conn_close(c);
}

/* Everything is written: half-close and drain input for a while. */
static void start_linger(struct conn *c)
{
	if (c->eof || shutdown(c->fd, SHUT_WR) < 0) {
		conn_close(c);
		return;
	}
	c->state = S_LINGER;
	c->ioff = c->ilen = 0;
	timer_set(c, LINGER_US);
}

static void err_response(struct conn *c, unsigned int status, const char *why)
{
	size_t wl = strlen(why);
	char *d = ob_reserve(c, 256 + wl);
	char *s = d;

	logmsg("conn %" PRIu64 ": %u %s", c->id, status, why);
	d = PUT_LIT(d, "HTTP/1.1 ");
	d = put_u64(d, status);
	*d++ = ' ';
	d = put_mem(d, reason(status), strlen(reason(status)));
	d = PUT_LIT(d, "\r\nContent-Type: text/plain\r\nContent-Length: ");
	d = put_u64(d, wl + 1);
	d = PUT_LIT(d, "\r\nConnection: close\r\nX-Origin-Conn: ");
	d = put_u64(d, c->id);
	d = PUT_LIT(d, "\r\n\r\n");
	d = put_mem(d, why, wl);
	*d++ = '\n';
	c->olen += (size_t)(d - s);
	c->state = S_FLUSH_CLOSE;
	c->ioff = c->ilen = 0;
	c->g.active = false;
}

/* Decoded request body bytes. */
static int body_data(struct conn *c, const char *p, size_t n)
{
	struct req *rq = &c->rq;

	if (n == 0)
		return 0;
	sha256_update(&rq->sha, p, n);
	rq->body_len += n;
	if (rq->p_echo) {
		if (c->echo_len + n > ECHO_MAX) {
			err_response(c, 413, "echo body over 64 MiB");
			return -1;
		}
		if (c->echo_cap - c->echo_len < n) {
			size_t cap = c->echo_cap ? c->echo_cap : 64 * 1024;

			while (cap - c->echo_len < n)
				cap *= 2;
			c->echo = xrealloc(c->echo, cap);
			c->echo_cap = cap;
		}
		memcpy(c->echo + c->echo_len, p, n);
		c->echo_len += n;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* request parsing                                                     */
/* ------------------------------------------------------------------ */

static bool param_num(const char *v, size_t vn, uint64_t lo, uint64_t hi,
		      uint64_t *out)
{
	uint64_t x;

	if (!parse_u64(v, vn, &x) || x < lo || x > hi)
		return false;
	*out = x;
	return true;
}

static bool param_bool(const char *v, size_t vn, bool *out)
{
	uint64_t x;

	if (vn == 0) {
		*out = true;
		return true;
	}
	if (!parse_u64(v, vn, &x))
		return false;
	*out = x != 0;
	return true;
}

static bool parse_param(struct req *rq, const char *k, size_t kn,
			const char *v, size_t vn)
{
	uint64_t x;

#define KEY(lit) (kn == sizeof(lit) - 1 && memcmp(k, lit, kn) == 0)
	if (KEY("status")) {
		if (!param_num(v, vn, 200, 999, &x))
			return false;
		rq->status = (unsigned int)x;
		return true;
	}
	if (KEY("size"))
		return param_num(v, vn, 0, SIZE_LIMIT, &rq->size);
	if (KEY("delay"))
		return param_num(v, vn, 0, MS_LIMIT, &rq->delay);
	if (KEY("drip"))
		return param_num(v, vn, 0, MS_LIMIT, &rq->drip);
	if (KEY("chunk")) {
		if (!param_num(v, vn, 1, CHUNK_LIMIT, &x))
			return false;
		rq->chunk = (uint32_t)x;
		return true;
	}
	if (KEY("chunked"))
		return param_bool(v, vn, &rq->p_chunked);
	if (KEY("close"))
		return param_bool(v, vn, &rq->p_close);
	if (KEY("echo"))
		return param_bool(v, vn, &rq->p_echo);
	if (KEY("headers"))
		return param_bool(v, vn, &rq->p_headers);
	if (KEY("stall"))
		return param_bool(v, vn, &rq->p_stall);
	if (KEY("reset"))
		return param_bool(v, vn, &rq->p_reset);
	if (KEY("sha"))
		return param_bool(v, vn, &rq->p_sha);
	if (KEY("noexpect"))
		return param_bool(v, vn, &rq->p_noexpect);
#undef KEY
	return true;
}

static bool parse_query(struct req *rq, const char *q, size_t n)
{
	while (n) {
		const char *amp = memchr(q, '&', n);
		size_t plen = amp ? (size_t)(amp - q) : n;
		const char *eq = memchr(q, '=', plen);
		size_t kn = eq ? (size_t)(eq - q) : plen;
		const char *v = eq ? eq + 1 : q + plen;
		size_t vn = eq ? plen - kn - 1 : 0;

		if (!parse_param(rq, q, kn, v, vn))
			return false;
		q += plen;
		n -= plen;
		if (amp) {
			q++;
			n--;
		}
	}
	return true;
}

static bool valid_value(const char *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)v[i];

		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return false;
	}
	return true;
}

/*
 * Parse the head [p, p + n) (ending in CRLFCRLF) into c->rq.  Returns 1
 * (state S_BODY) or -1 (error response queued).
 */
static int start_request(struct conn *c, char *p, size_t n)
{
	struct req *rq = &c->rq;
	const char *end = p + n - 2;	/* the CR of the empty line */
	const char *eol, *sp1, *t, *sp2, *cur, *path_end, *qend;
	bool have_cl = false, have_te = false, keepalive;
	bool conn_close = false, conn_ka = false, expect100 = false;
	uint64_t cl = 0;
	size_t i, mlen;

	memset(rq, 0, offsetof(struct req, sha));
	rq->status = 200;
	rq->chunk = 4096;

	/* request line */
	eol = memchr(p, '\r', (size_t)(end - p) + 1);
	if (eol == NULL || eol[1] != '\n')
		goto bad_line;
	sp1 = memchr(p, ' ', (size_t)(eol - p));
	if (sp1 == NULL)
		goto bad_line;
	mlen = (size_t)(sp1 - p);
	if (mlen == 0 || mlen > METHOD_MAX)
		goto bad_line;
	for (i = 0; i < mlen; i++)
		if (!tchar[(unsigned char)p[i]])
			goto bad_line;
	memcpy(rq->method, p, mlen);
	rq->method[mlen] = '\0';
	t = sp1 + 1;
	sp2 = memchr(t, ' ', (size_t)(eol - t));
	if (sp2 == NULL || sp2 == t)
		goto bad_line;
	for (cur = t; cur < sp2; cur++) {
		unsigned char ch = (unsigned char)*cur;

		if (ch <= 0x20 || ch == 0x7f)
			goto bad_line;
	}
	if (eol - sp2 - 1 != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0) {
		if (eol - sp2 - 1 == 8 && memcmp(sp2 + 1, "HTTP/", 5) == 0 &&
		    sp2[6] >= '0' && sp2[6] <= '9' && sp2[7] == '.' &&
		    sp2[8] >= '0' && sp2[8] <= '9') {
			err_response(c, 505, "unsupported HTTP version");
			return -1;
		}
		goto bad_line;
	}
	if (sp2[8] == '0')
		rq->http10 = true;
	else if (sp2[8] != '1') {
		err_response(c, 505, "unsupported HTTP version");
		return -1;
	}

	/* fields */
	for (cur = eol + 2; cur < end; cur = eol + 2) {
		const char *colon, *v, *ve;
		size_t nl;

		eol = memchr(cur, '\r', (size_t)(end - cur) + 1);
		if (eol == NULL || eol[1] != '\n') {
			err_response(c, 400, "bare CR in header");
			return -1;
		}
		if (*cur == ' ' || *cur == '\t') {
			err_response(c, 400, "obs-fold in header");
			return -1;
		}
		for (colon = cur; colon < eol && tchar[(unsigned char)*colon];
		     colon++)
			;
		if (colon == cur || colon == eol || *colon != ':') {
			err_response(c, 400, "bad header field name");
			return -1;
		}
		nl = (size_t)(colon - cur);
		v = colon + 1;
		ve = eol;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		if (!valid_value(v, (size_t)(ve - v))) {
			err_response(c, 400, "bad character in header value");
			return -1;
		}
		if (ieq(cur, nl, "content-length")) {
			uint64_t x;

			if (!parse_u64(v, (size_t)(ve - v), &x) ||
			    x > (1ull << 62)) {
				err_response(c, 400, "bad content-length");
				return -1;
			}
			if (have_cl && x != cl) {
				err_response(c, 400, "conflicting content-length");
				return -1;
			}
			have_cl = true;
			cl = x;
		} else if (ieq(cur, nl, "transfer-encoding")) {
			if (have_te) {
				err_response(c, 400, "repeated transfer-encoding");
				return -1;
			}
			if (!ieq(v, (size_t)(ve - v), "chunked")) {
				err_response(c, 400, "transfer-encoding not chunked");
				return -1;
			}
			have_te = true;
		} else if (ieq(cur, nl, "connection")) {
			const char *tk = v;

			while (tk < ve) {
				const char *comma = memchr(tk, ',', (size_t)(ve - tk));
				const char *te = comma ? comma : ve;
				const char *ts = tk;

				while (ts < te && (*ts == ' ' || *ts == '\t'))
					ts++;
				while (te > ts && (te[-1] == ' ' || te[-1] == '\t'))
					te--;
				if (ieq(ts, (size_t)(te - ts), "close"))
					conn_close = true;
				else if (ieq(ts, (size_t)(te - ts), "keep-alive"))
					conn_ka = true;
				tk = comma ? comma + 1 : ve;
			}
		} else if (ieq(cur, nl, "expect")) {
			if (ieq(v, (size_t)(ve - v), "100-continue"))
				expect100 = true;
		}
	}
	if (have_te && have_cl) {
		err_response(c, 400, "both content-length and transfer-encoding");
		return -1;
	}
	if (have_te && rq->http10) {
		err_response(c, 400, "transfer-encoding in HTTP/1.0");
		return -1;
	}

	/* target: path and query */
	path_end = memchr(t, '?', (size_t)(sp2 - t));
	if (path_end != NULL) {
		const char *q = path_end + 1;

		qend = memchr(q, '#', (size_t)(sp2 - q));
		if (qend == NULL)
			qend = sp2;
		if (!parse_query(rq, q, (size_t)(qend - q))) {
			err_response(c, 400, "bad query parameter");
			return -1;
		}
	} else {
		path_end = sp2;
	}
	rq->is_stats = path_end - t == 7 && memcmp(t, "/_stats", 7) == 0;
	rq->is_head = mlen == 4 && memcmp(p, "HEAD", 4) == 0;
	keepalive = rq->http10 ? conn_ka && !conn_close : !conn_close;
	rq->close = !keepalive || (rq->p_close && !rq->is_stats);

	atomic_fetch_add_explicit(&g_requests, 1, memory_order_relaxed);

	if (rq->p_headers) {
		if (c->hcopy_cap < n) {
			c->hcopy = xrealloc(c->hcopy, n);
			c->hcopy_cap = n;
		}
		memcpy(c->hcopy, p, n);
		c->hcopy_len = n;
	}
	c->echo_len = 0;
	if (have_te) {
		rq->body = BODY_CHUNKED;
		rq->cst = CH_SIZE0;
	} else if (cl > 0) {
		rq->body = BODY_CL;
		rq->remaining = cl;
	}
	if (rq->body != BODY_NONE) {
		sha256_init(&rq->sha);
		if (rq->p_echo && cl > ECHO_MAX) {
			err_response(c, 413, "echo body over 64 MiB");
			return -1;
		}
		if (expect100 && !rq->p_noexpect && !rq->http10)
			ob_put(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	}
	c->state = S_BODY;
	return 1;

bad_line:
	err_response(c, 400, "bad request line");
	return -1;
}

/* 1: a head was parsed, 0: need more input, -1: error response queued. */
static int parse_head(struct conn *c)
{
	size_t avail, lim, from;
	char *start, *e;

	while (c->ilen - c->ioff >= 2 && c->ibuf[c->ioff] == '\r' &&
	       c->ibuf[c->ioff + 1] == '\n') {
		c->ioff += 2;
		c->scan = 0;
	}
	avail = c->ilen - c->ioff;
	if (avail == 0) {
		c->ioff = c->ilen = 0;
		return 0;
	}
	start = c->ibuf + c->ioff;
	lim = avail < HDR_MAX ? avail : HDR_MAX;
	from = c->scan > 3 ? c->scan - 3 : 0;
	e = lim > from ? memmem(start + from, lim - from, "\r\n\r\n", 4) : NULL;
	if (e == NULL) {
		if (avail >= HDR_MAX) {
			err_response(c, 431, "request head over 64 KiB");
			return -1;
		}
		c->scan = lim;
		return 0;
	}
	c->scan = 0;
	avail = (size_t)(e - start) + 4;
	c->ioff += avail;
	return start_request(c, start, avail);
}

static int cl_body(struct conn *c)
{
	struct req *rq = &c->rq;
	size_t take = c->ilen - c->ioff;

	if (take > rq->remaining)
		take = (size_t)rq->remaining;
	if (body_data(c, c->ibuf + c->ioff, take) < 0)
		return -1;
	c->ioff += take;
	rq->remaining -= take;
	return rq->remaining == 0;
}

static int bad_chunk(struct conn *c, const char *why)
{
	err_response(c, 400, why);
	return -1;
}

/* 1: body complete, 0: need more input, -1: error response queued. */
static int chunked_body(struct conn *c)
{
	struct req *rq = &c->rq;

	while (c->ioff < c->ilen) {
		unsigned char ch;
		int v;

		if (rq->cst == CH_DATA) {
			size_t take = c->ilen - c->ioff;

			if (take > rq->remaining)
				take = (size_t)rq->remaining;
			if (body_data(c, c->ibuf + c->ioff, take) < 0)
				return -1;
			c->ioff += take;
			rq->remaining -= take;
			if (rq->remaining == 0)
				rq->cst = CH_DATA_CR;
			continue;
		}
		ch = (unsigned char)c->ibuf[c->ioff++];
		switch (rq->cst) {
		case CH_SIZE0:
		case CH_SIZE:
			v = hexval(ch);
			if (v >= 0) {
				if (rq->cdigits >= 15)
					return bad_chunk(c, "chunk size too large");
				rq->remaining = rq->remaining << 4 | (uint64_t)v;
				rq->cdigits++;
				rq->cst = CH_SIZE;
				break;
			}
			if (rq->cst == CH_SIZE0)
				return bad_chunk(c, "bad chunk size");
			if (ch == ' ' || ch == '\t')
				rq->cst = CH_SIZE_WS;
			else if (ch == ';')
				rq->cst = CH_EXT;
			else if (ch == '\r')
				rq->cst = CH_SIZE_LF;
			else
				return bad_chunk(c, "bad chunk size");
			break;
		case CH_SIZE_WS:
			if (ch == ';')
				rq->cst = CH_EXT;
			else if (ch == '\r')
				rq->cst = CH_SIZE_LF;
			else if (ch != ' ' && ch != '\t')
				return bad_chunk(c, "bad chunk size line");
			break;
		case CH_EXT:
			if (ch == '\r')
				rq->cst = CH_SIZE_LF;
			else if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
				return bad_chunk(c, "bad chunk extension");
			else if (++rq->cext > EXT_MAX)
				return bad_chunk(c, "chunk extension too long");
			break;
		case CH_SIZE_LF:
			if (ch != '\n')
				return bad_chunk(c, "bad chunk size line end");
			rq->cdigits = 0;
			rq->cext = 0;
			rq->cst = rq->remaining ? CH_DATA : CH_TRAILER0;
			break;
		case CH_DATA_CR:
			if (ch != '\r')
				return bad_chunk(c, "chunk data not followed by CRLF");
			rq->cst = CH_DATA_LF;
			break;
		case CH_DATA_LF:
			if (ch != '\n')
				return bad_chunk(c, "chunk data not followed by CRLF");
			rq->cst = CH_SIZE0;
			break;
		case CH_TRAILER0:
		case CH_TRAILER:
			if (ch == '\r') {
				rq->cst = rq->cst == CH_TRAILER0 ? CH_END_LF :
					  CH_TRAILER_LF;
				break;
			}
			if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
				return bad_chunk(c, "bad character in trailer");
			if (rq->cst == CH_TRAILER0 && (ch == ' ' || ch == '\t'))
				return bad_chunk(c, "obs-fold in trailer");
			if (++rq->cext > HDR_MAX)
				return bad_chunk(c, "trailer too large");
			rq->cst = CH_TRAILER;
			break;
		case CH_TRAILER_LF:
			if (ch != '\n')
				return bad_chunk(c, "bare CR in trailer");
			rq->cst = CH_TRAILER0;
			break;
		case CH_END_LF:
			if (ch != '\n')
				return bad_chunk(c, "bad end of chunked body");
			return 1;
		default:
			return bad_chunk(c, "internal");
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* responses                                                           */
/* ------------------------------------------------------------------ */

static void response_complete(struct conn *c)
{
	c->g.active = false;
	if (c->echo_cap > (1u << 20)) {
		free(c->echo);
		c->echo = NULL;
		c->echo_cap = 0;
	}
	c->echo_len = 0;
	if (c->rq.close) {
		c->state = S_FLUSH_CLOSE;
		c->ioff = c->ilen = 0;
	} else {
		c->state = S_HEAD;
	}
}

static void pattern_sha(struct worker *w, uint64_t n, char out[65])
{
	struct sha256 s;
	uint64_t off = 0;

	if (w->sc_ok && w->sc_n == n) {
		memcpy(out, w->sc_hex, 65);
		return;
	}
	sha256_init(&s);
	while (off < n) {
		char *p;
		size_t len = body_slice(NULL, n, off, &p);

		if (len > n - off)
			len = (size_t)(n - off);
		sha256_update(&s, p, len);
		off += len;
	}
	sha256_hex(&s, out);
	memcpy(w->sc_hex, out, 65);
	w->sc_n = n;
	w->sc_ok = true;
}

static void respond(struct conn *c)
{
	struct req *rq = &c->rq;
	const char *ctype = "application/octet-stream";
	char json[160];
	char rsha[65], bsha[65];
	char *mem = NULL;
	uint64_t blen = 0;
	unsigned int status = rq->status;
	bool nobody, send_body;
	int fr;
	char *d, *s;

	if (rq->p_reset) {
		c->state = S_FLUSH_RESET;
		return;
	}
	if (rq->is_stats) {
		int n = snprintf(json, sizeof(json),
				 "{\"connections\":%" PRIu64 ",\"requests\":%" PRIu64
				 ",\"open\":%" PRId64 "}",
				 atomic_load_explicit(&g_conns, memory_order_relaxed),
				 atomic_load_explicit(&g_requests, memory_order_relaxed),
				 atomic_load_explicit(&g_open, memory_order_relaxed));

		mem = json;
		blen = (uint64_t)n;
		ctype = "application/json";
		status = 200;
	} else if (rq->p_echo) {
		mem = c->echo;
		blen = c->echo_len;
	} else if (rq->p_headers) {
		mem = c->hcopy;
		blen = c->hcopy_len;
		ctype = "text/plain";
	} else {
		blen = rq->size;
	}
	nobody = status == 204 || status == 304;
	if (nobody)
		blen = 0;
	send_body = !nobody && !rq->is_head;
	if (nobody)
		fr = FR_NONE;
	else if (rq->p_close && !rq->is_stats)
		fr = FR_CLOSE;
	else if (rq->p_chunked && !rq->http10 && !rq->is_stats)
		fr = FR_CHUNKED;
	else
		fr = FR_CL;

	if (rq->body_len)
		sha256_hex(&rq->sha, rsha);
	else
		memcpy(rsha, EMPTY_SHA, 65);
	if (rq->p_sha) {
		if (blen == 0) {
			memcpy(bsha, EMPTY_SHA, 65);
		} else if (mem == NULL) {
			pattern_sha(c->w, blen, bsha);
		} else {
			struct sha256 bs;

			sha256_init(&bs);
			sha256_update(&bs, mem, (size_t)blen);
			sha256_hex(&bs, bsha);
		}
	}

	d = ob_reserve(c, 1024);
	s = d;
	d = PUT_LIT(d, "HTTP/1.1 ");
	d = put_u64(d, status);
	*d++ = ' ';
	d = put_mem(d, reason(status), strlen(reason(status)));
	d = PUT_LIT(d, "\r\nContent-Type: ");
	d = put_mem(d, ctype, strlen(ctype));
	if (fr == FR_CL) {
		d = PUT_LIT(d, "\r\nContent-Length: ");
		d = put_u64(d, blen);
	} else if (fr == FR_CHUNKED) {
		d = PUT_LIT(d, "\r\nTransfer-Encoding: chunked");
	}
	if (rq->close)
		d = PUT_LIT(d, "\r\nConnection: close");
	else if (rq->http10)
		d = PUT_LIT(d, "\r\nConnection: keep-alive");
	d = PUT_LIT(d, "\r\nX-Origin-Conn: ");
	d = put_u64(d, c->id);
	d = PUT_LIT(d, "\r\nX-Origin-Conns: ");
	d = put_u64(d, atomic_load_explicit(&g_conns, memory_order_relaxed));
	d = PUT_LIT(d, "\r\nX-Origin-Requests: ");
	d = put_u64(d, atomic_load_explicit(&g_requests, memory_order_relaxed));
	d = PUT_LIT(d, "\r\nX-Request-Bytes: ");
	d = put_u64(d, rq->body_len);
	d = PUT_LIT(d, "\r\nX-Request-Sha256: ");
	d = put_mem(d, rsha, 64);
	d = PUT_LIT(d, "\r\nX-Request-Method: ");
	d = put_mem(d, rq->method, strlen(rq->method));
	d = PUT_LIT(d, "\r\nX-Request-Chunked: ");
	*d++ = rq->body == BODY_CHUNKED ? '1' : '0';
	if (rq->p_sha) {
		d = PUT_LIT(d, "\r\nX-Body-Sha256: ");
		d = put_mem(d, bsha, 64);
	}
	d = PUT_LIT(d, "\r\n\r\n");
	c->olen += (size_t)(d - s);

	if (!send_body) {
		response_complete(c);
		return;
	}
	if (blen == 0 || (rq->drip == 0 && blen <= INLINE_MAX)) {
		if (fr == FR_CHUNKED) {
			uint64_t off;

			for (off = 0; off < blen; off += rq->chunk) {
				uint64_t n = blen - off;

				if (n > rq->chunk)
					n = rq->chunk;
				ob_chunk(c, mem, blen, off, (size_t)n);
			}
			ob_put(c, "0\r\n\r\n", 5);
		} else {
			ob_body(c, mem, blen, 0, (size_t)blen);
		}
		response_complete(c);
		return;
	}
	c->g = (struct gen){
		.active = true,
		.chunked = fr == FR_CHUNKED,
		.mem = mem,
		.total = blen,
		.chunk = rq->chunk,
		.drip = rq->drip,
	};
	c->state = S_SEND;
	if (rq->drip)
		timer_set(c, rq->drip * 1000);
}

static bool gen_finished(const struct conn *c)
{
	return c->g.chunked ? c->g.term_done : c->g.off == c->g.total;
}

/* Chunked, not dripping: top up the output buffer with chunks. */
static void gen_fill(struct conn *c)
{
	struct gen *g = &c->g;

	while (!g->term_done && c->olen - c->ooff < FILL_LOW) {
		if (g->off < g->total) {
			uint64_t n = g->total - g->off;

			if (n > g->chunk)
				n = g->chunk;
			ob_chunk(c, g->mem, g->total, g->off, (size_t)n);
			g->off += n;
		} else {
			ob_put(c, "0\r\n\r\n", 5);
			g->term_done = true;
		}
	}
}

static void drip_tick(struct conn *c)
{
	struct gen *g = &c->g;

	if (c->olen == c->ooff && g->off < g->total) {
		uint64_t n = g->total - g->off;

		if (n > g->chunk)
			n = g->chunk;
		if (g->chunked)
			ob_chunk(c, g->mem, g->total, g->off, (size_t)n);
		else
			ob_body(c, g->mem, g->total, g->off, (size_t)n);
		g->off += n;
		if (g->off == g->total && g->chunked) {
			ob_put(c, "0\r\n\r\n", 5);
			g->term_done = true;
		}
	}
	if (!gen_finished(c))
		timer_set(c, g->drip * 1000);
}

/*
 * Write what can be written.  -1: the connection was closed; 0: blocked
 * (EPOLLOUT needed); 1: nothing more to write right now.
 */
static int conn_flush(struct conn *c)
{
	struct gen *g = &c->g;

	for (;;) {
		struct iovec iov[5];
		int n = 0;
		size_t tot = 0, pend, uw;
		bool zc = g->active && !g->drip && !g->chunked;
		ssize_t wr;

		if (g->active && !g->drip && g->chunked)
			gen_fill(c);
		pend = c->olen - c->ooff;
		if (pend) {
			iov[0].iov_base = c->obuf + c->ooff;
			iov[0].iov_len = pend;
			tot = pend;
			n = 1;
		}
		if (zc) {
			uint64_t off = g->off;

			while (n < 5 && off < g->total && tot < ZC_MAX) {
				char *p;
				size_t len = body_slice(g->mem, g->total, off, &p);

				if (len > g->total - off)
					len = (size_t)(g->total - off);
				iov[n].iov_base = p;
				iov[n].iov_len = len;
				n++;
				tot += len;
				off += len;
			}
		}
		if (n == 0) {
			c->ooff = c->olen = 0;
			c->blocked = false;
			return 1;
		}
		wr = writev(c->fd, iov, n);
		if (wr < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				c->blocked = true;
				return 0;
			}
			conn_close(c);
			return -1;
		}
		uw = (size_t)wr;
		if (uw >= pend) {
			c->ooff = c->olen = 0;
			if (zc)
				g->off += uw - pend;
		} else {
			c->ooff += uw;
		}
		if (uw < tot) {
			c->blocked = true;
			return 0;
		}
	}
}

static void request_done(struct conn *c)
{
	struct req *rq = &c->rq;

	if (rq->p_stall) {
		c->state = S_STALL;
		c->ioff = c->ilen = 0;
		return;
	}
	if (rq->delay) {
		c->state = S_DELAY;
		timer_set(c, rq->delay * 1000);
		return;
	}
	respond(c);
}

static void process_input(struct conn *c)
{
	c->held = false;
	for (;;) {
		int r;

		if (c->state == S_HEAD) {
			if (c->olen - c->ooff > OBUF_HIGH) {
				c->held = true;
				return;
			}
			if (parse_head(c) <= 0)
				return;
		}
		if (c->state != S_BODY)
			return;
		switch (c->rq.body) {
		case BODY_CL:
			r = cl_body(c);
			break;
		case BODY_CHUNKED:
			r = chunked_body(c);
			break;
		default:
			r = 1;
			break;
		}
		if (r <= 0)
			return;
		request_done(c);
		if (c->state != S_HEAD)
			return;
	}
}

static void conn_update_events(struct conn *c)
{
	uint32_t ev = 0;

	switch (c->state) {
	case S_HEAD:
		if (!c->held && !c->eof)
			ev = EPOLLIN;
		break;
	case S_BODY:
	case S_STALL:
	case S_LINGER:
		ev = EPOLLIN;
		break;
	default:
		break;
	}
	if (c->blocked)
		ev |= EPOLLOUT;
	if (ev != c->events) {
		struct epoll_event e = { .events = ev, .data.ptr = c };

		epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &e);
		c->events = ev;
	}
}

/* Parse, queue and write as far as possible; may free c. */
static void conn_drive(struct conn *c)
{
	for (;;) {
		int r;

		if (c->state == S_HEAD || c->state == S_BODY)
			process_input(c);
		r = conn_flush(c);
		if (r < 0)
			return;
		if (r == 0)
			break;
		if (c->state == S_SEND && gen_finished(c)) {
			timer_del(c);
			response_complete(c);
			continue;
		}
		if (c->state == S_FLUSH_CLOSE) {
			start_linger(c);
			if (c->state != S_LINGER)
				return;
			break;
		}
		if (c->state == S_FLUSH_RESET) {
			conn_reset(c);
			return;
		}
		if (c->state == S_HEAD && c->held)
			continue;
		break;
	}
	conn_update_events(c);
}

/* -1: the connection was closed. */
static int conn_read(struct conn *c)
{
	ssize_t n;

	if (c->state == S_STALL || c->state == S_LINGER) {
		n = read(c->fd, c->w->scratch, sizeof(c->w->scratch));
		if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
			return 0;
		conn_close(c);
		return -1;
	}
	if (c->ioff == c->ilen) {
		c->ioff = c->ilen = 0;
	} else if (c->ioff > 0 && c->icap - c->ilen < 4096) {
		memmove(c->ibuf, c->ibuf + c->ioff, c->ilen - c->ioff);
		c->ilen -= c->ioff;
		c->ioff = 0;
	}
	if (c->icap < IBUF_MAX &&
	    (c->icap - c->ilen < 4096 || c->last_full ||
	     (c->state == S_BODY && c->rq.body == BODY_CL &&
	      c->rq.remaining > c->icap))) {
		c->icap = IBUF_MAX;
		c->ibuf = xrealloc(c->ibuf, c->icap);
	}
	if (c->ilen == c->icap)
		return 0;
	n = read(c->fd, c->ibuf + c->ilen, c->icap - c->ilen);
	if (n > 0) {
		c->last_full = (size_t)n == c->icap - c->ilen;
		c->ilen += (size_t)n;
		return 0;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n == 0 && c->state == S_HEAD && c->ilen == c->ioff &&
	    c->olen > c->ooff) {
		/* the peer is done: finish writing, then close */
		c->eof = true;
		c->state = S_FLUSH_CLOSE;
		return 0;
	}
	conn_close(c);
	return -1;
}

static void conn_event(struct conn *c, uint32_t ev)
{
	if ((ev & EPOLLERR) || ((ev & EPOLLHUP) && !(ev & EPOLLIN))) {
		conn_close(c);
		return;
	}
	if (ev & EPOLLOUT)
		c->blocked = false;
	if ((ev & EPOLLIN) && conn_read(c) < 0)
		return;
	conn_drive(c);
}

static void conn_timer(struct conn *c)
{
	switch (c->state) {
	case S_DELAY:
		respond(c);
		conn_drive(c);
		break;
	case S_SEND:
		drip_tick(c);
		conn_drive(c);
		break;
	case S_LINGER:
		conn_close(c);
		break;
	default:
		break;
	}
}

static void conn_new(struct worker *w, int fd)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct epoll_event e;
	int one = 1;

	if (c == NULL) {
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->w = w;
	c->fd = fd;
	c->hidx = NO_HEAP;
	c->state = S_HEAD;
	c->icap = IBUF_INIT;
	c->ibuf = xrealloc(NULL, c->icap);
	c->ocap = OBUF_INIT;
	c->obuf = xrealloc(NULL, c->ocap);
	c->id = atomic_fetch_add_explicit(&g_conns, 1, memory_order_relaxed) + 1;
	atomic_fetch_add_explicit(&g_open, 1, memory_order_relaxed);
	c->events = EPOLLIN;
	e.events = EPOLLIN;
	e.data.ptr = c;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
		logmsg("epoll_ctl: %s", strerror(errno));
		conn_close(c);
	}
}

/* ------------------------------------------------------------------ */
/* workers                                                             */
/* ------------------------------------------------------------------ */

static void listener_ctl(struct worker *w, int op)
{
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = NULL };

	if (epoll_ctl(w->epfd, op, w->lfd, &e) < 0)
		die("epoll_ctl(listener)");
}

static void accept_batch(struct worker *w)
{
	int i;

	for (i = 0; i < 64; i++) {
		int fd = accept4(w->lfd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			conn_new(w, fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			logmsg("accept: %s (pausing 100 ms)", strerror(errno));
			listener_ctl(w, EPOLL_CTL_DEL);
			w->lpaused = true;
			w->lresume = mono_us() + 100000;
		}
		return;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[256];

	for (;;) {
		uint64_t now = mono_us(), next = UINT64_MAX;
		int timeout = -1, n, i;

		if (w->nheap)
			next = w->heap[0]->deadline;
		if (w->lpaused && w->lresume < next)
			next = w->lresume;
		if (next != UINT64_MAX) {
			uint64_t ms = next <= now ? 0 : (next - now + 999) / 1000;

			timeout = ms > INT_MAX ? INT_MAX : (int)ms;
		}
		n = epoll_wait(w->epfd, evs, 256, timeout);
		if (n < 0) {
			if (errno != EINTR)
				die("epoll_wait");
			n = 0;
		}
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL)
				accept_batch(w);
			else
				conn_event(evs[i].data.ptr, evs[i].events);
		}
		now = mono_us();
		while (w->nheap && w->heap[0]->deadline <= now) {
			struct conn *c = w->heap[0];

			timer_del(c);
			conn_timer(c);
		}
		if (w->lpaused && w->lresume <= now) {
			w->lpaused = false;
			listener_ctl(w, EPOLL_CTL_ADD);
		}
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */

static int make_listener(const struct sockaddr *sa, socklen_t len)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		die("socket");
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		die("setsockopt");
	if (bind(fd, sa, len) < 0)
		die("bind");
	if (listen(fd, 4096) < 0)
		die("listen");
	return fd;
}

static void on_signal(int sig)
{
	(void)sig;
	_exit(0);
}

static void usage(FILE *f)
{
	fputs("usage: weir-origin [--listen HOST:PORT] [--threads N] [--quiet]\n"
	      "  default 127.0.0.1:9000, 1 thread; see the top of weir-origin.c\n"
	      "  for the query parameters (status, size, delay, chunked, chunk,\n"
	      "  close, echo, headers, stall, reset, drip, sha, noexpect).\n", f);
}

int main(int argc, char **argv)
{
	const char *listen_arg = "127.0.0.1:9000";
	unsigned long nthreads = 1;
	char host[256], port[16], numhost[INET6_ADDRSTRLEN];
	struct addrinfo hints, *ai;
	struct sockaddr_storage ss;
	socklen_t sslen;
	const char *colon;
	struct worker *workers;
	struct sigaction sa;
	unsigned int portnum;
	unsigned long i;
	int rc, c;

	for (i = 1; i < (unsigned long)argc; i++) {
		if (strcmp(argv[i], "--listen") == 0 && i + 1 < (unsigned long)argc) {
			listen_arg = argv[++i];
		} else if (strcmp(argv[i], "--threads") == 0 &&
			   i + 1 < (unsigned long)argc) {
			char *end;

			nthreads = strtoul(argv[++i], &end, 10);
			if (*end != '\0' || nthreads < 1 || nthreads > 1024) {
				fputs("weir-origin: bad --threads\n", stderr);
				return 2;
			}
		} else if (strcmp(argv[i], "--quiet") == 0) {
			g_quiet = true;
		} else if (strcmp(argv[i], "--help") == 0 ||
			   strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}

	for (i = 0; i < PAT_TAB_LEN; i++)
		pat_tab[i] = PAT[i % PAT_LEN];
	for (c = 0; c < 256; c++)
		tchar[c] = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
			   (c >= 'A' && c <= 'Z') ||
			   (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);

	colon = strrchr(listen_arg, ':');
	if (colon == NULL) {
		snprintf(host, sizeof(host), "127.0.0.1");
		snprintf(port, sizeof(port), "%s", listen_arg);
	} else {
		const char *h = listen_arg;
		size_t hl = (size_t)(colon - listen_arg);

		if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
			h++;
			hl -= 2;
		}
		if (hl >= sizeof(host) || strlen(colon + 1) >= sizeof(port)) {
			fputs("weir-origin: bad --listen\n", stderr);
			return 2;
		}
		memcpy(host, h, hl);
		host[hl] = '\0';
		snprintf(port, sizeof(port), "%s", colon + 1);
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
	if (rc != 0) {
		fprintf(stderr, "weir-origin: %s: %s\n", listen_arg, gai_strerror(rc));
		return 2;
	}
	memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
	sslen = ai->ai_addrlen;
	freeaddrinfo(ai);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	workers = calloc(nthreads, sizeof(*workers));
	if (workers == NULL)
		die("calloc");
	for (i = 0; i < nthreads; i++) {
		struct worker *w = &workers[i];

		w->lfd = make_listener((struct sockaddr *)&ss, sslen);
		if (i == 0) {
			/* later listeners share the port picked for PORT 0 */
			sslen = sizeof(ss);
			if (getsockname(w->lfd, (struct sockaddr *)&ss, &sslen) < 0)
				die("getsockname");
		}
		w->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (w->epfd < 0)
			die("epoll_create1");
		listener_ctl(w, EPOLL_CTL_ADD);
	}
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, numhost, sizeof(numhost));
		portnum = ntohs(s6->sin6_port);
		printf("weir-origin listening on [%s]:%u\n", numhost, portnum);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, numhost, sizeof(numhost));
		portnum = ntohs(s4->sin_port);
		printf("weir-origin listening on %s:%u\n", numhost, portnum);
	}
	fflush(stdout);

	for (i = 1; i < nthreads; i++) {
		pthread_t tid;

		rc = pthread_create(&tid, NULL, worker_main, &workers[i]);
		if (rc != 0) {
			errno = rc;
			die("pthread_create");
		}
	}
	worker_main(&workers[0]);
	return 0;
}
