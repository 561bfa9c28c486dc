/* A C test agent on libweir-agent, for the integration tests that run the
 * same assertions over {python-socket, c-socket, c-shm}: it implements the
 * X-Agent-* behaviours of tests/agent/test_agent.py that the body and
 * verdict tests need.
 *
 *   c-test-agent --listen unix:PATH [--no-shm] [--events LIST] [--workers N]
 *
 *   X-Agent-Action: allow (default) | block | stall (never answers)
 *   X-Agent-Status: N, X-Agent-Body: TEXT      block status / body
 *   X-Agent-Delay-Ms: MS                        wait before the verdict
 * An allow verdict carries response fields X-Agent-Body-Sha256 and
 * X-Agent-Body-Bytes: what the agent received of the request body (so that
 * a test proves body integrity through the transport), and
 * X-Agent-Transport: shm or socket (whether chunks came from the arena).
 * Prints "ready" once listening; SIGTERM: exit 0. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "weir/agent-sdk.h"

/* ------------------------------------------------------------------ */
/* SHA-256 (FIPS 180-4)                                                */
/* ------------------------------------------------------------------ */

struct sha256 {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
	unsigned int blen;
};

static const uint32_t sha_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5,
	0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
	0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
	0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
	0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5,
	0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t ror32(uint32_t x, unsigned int n)
{
	return (x >> n) | (x << (32 - n));
}

static void sha256_init(struct sha256 *s)
{
	static const uint32_t iv[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};

	memcpy(s->h, iv, sizeof(iv));
	s->len = 0;
	s->blen = 0;
}

static void sha256_blocks(uint32_t st[8], const uint8_t *p, size_t nblk)
{
	uint32_t w[64];

	while (nblk--) {
		uint32_t a, b, c, d, e, f, g, h;
		unsigned int i;

		for (i = 0; i < 16; i++)
			w[i] = (uint32_t)p[4 * i] << 24 |
			       (uint32_t)p[4 * i + 1] << 16 |
			       (uint32_t)p[4 * i + 2] << 8 |
			       (uint32_t)p[4 * i + 3];
		for (i = 16; i < 64; i++) {
			uint32_t s0 = ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^
				      (w[i - 15] >> 3);
			uint32_t s1 = ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^
				      (w[i - 2] >> 10);

			w[i] = w[i - 16] + s0 + w[i - 7] + s1;
		}
		a = st[0]; b = st[1]; c = st[2]; d = st[3];
		e = st[4]; f = st[5]; g = st[6]; h = st[7];
		for (i = 0; i < 64; i++) {
			uint32_t t1 = h + (ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25)) +
				      ((e & f) ^ (~e & g)) + sha_k[i] + w[i];
			uint32_t t2 = (ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22)) +
				      ((a & b) ^ (a & c) ^ (b & c));

			h = g;
			g = f;
			f = e;
			e = d + t1;
			d = c;
			c = b;
			b = a;
			a = t1 + t2;
		}
		st[0] += a; st[1] += b; st[2] += c; st[3] += d;
		st[4] += e; st[5] += f; st[6] += g; st[7] += h;
		p += 64;
	}
}

static void sha256_update(struct sha256 *s, const void *data, size_t n)
{
	const uint8_t *p = data;

	s->len += n;
	if (s->blen) {
		size_t take = 64 - s->blen;

		if (take > n)
			take = n;
		memcpy(s->buf + s->blen, p, take);
		s->blen += (unsigned int)take;
		p += take;
		n -= take;
		if (s->blen < 64)
			return;
		sha256_blocks(s->h, s->buf, 1);
		s->blen = 0;
	}
	if (n >= 64) {
		sha256_blocks(s->h, p, n / 64);
		p += n & ~(size_t)63;
		n &= 63;
	}
	if (n) {
		memcpy(s->buf, p, n);
		s->blen = (unsigned int)n;
	}
}

/* Final digest as 64 lowercase hex digits + NUL. */
static void sha256_hex(struct sha256 *s, char out[65])
{
	static const char hx[] = "0123456789abcdef";
	uint64_t bits = s->len * 8;
	unsigned int i;

	s->buf[s->blen++] = 0x80;
	if (s->blen > 56) {
		memset(s->buf + s->blen, 0, 64 - s->blen);
		sha256_blocks(s->h, s->buf, 1);
		s->blen = 0;
	}
	memset(s->buf + s->blen, 0, 56 - s->blen);
	for (i = 0; i < 8; i++)
		s->buf[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
	sha256_blocks(s->h, s->buf, 1);
	for (i = 0; i < 32; i++) {
		uint8_t byte = (uint8_t)(s->h[i / 4] >> (24 - 8 * (i % 4)));

		out[2 * i] = hx[byte >> 4];
		out[2 * i + 1] = hx[byte & 15];
	}
	out[64] = '\0';
}

struct rq {
	struct sha256 sha;
	uint64_t bytes;
	int action;                     /* 0 allow, 1 block, 2 stall */
	unsigned status;
	char body[128];
	unsigned delay_ms;
	bool shm_seen;
};

static struct weir_agent_server *srv;
static const char *listen_addr;

static const char *hval(const struct weir_agent_request *rq, const char *name, char *buf,
			size_t n)
{
	const struct weir_agent_header *h = weir_agent_header_find(rq->headers, rq->nheaders, name);
	size_t l;

	if (h == NULL)
		return NULL;
	l = h->value.len < n - 1 ? h->value.len : n - 1;
	memcpy(buf, h->value.ptr, l);
	buf[l] = '\0';
	return buf;
}

static int verdict(struct rq *q, struct weir_agent_reply *r)
{
	char hex[65], num[32];

	if (q->delay_ms != 0) {
		struct timespec ts = { q->delay_ms / 1000, (long)(q->delay_ms % 1000) * 1000000L };

		nanosleep(&ts, NULL);
	}
	if (q->action == 2)
		return WEIR_AGENT_R_PENDING;
	if (q->action == 1) {
		weir_agent_reply_block(r, q->status ? q->status : 403, q->body, strlen(q->body));
		return WEIR_AGENT_R_VERDICT;
	}
	sha256_hex(&q->sha, hex);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)q->bytes);
	weir_agent_reply_resp_set(r, "X-Agent-Body-Sha256", hex);
	weir_agent_reply_resp_set(r, "X-Agent-Body-Bytes", num);
	weir_agent_reply_resp_set(r, "X-Agent-Transport", q->shm_seen ? "shm" : "socket");
	return WEIR_AGENT_R_VERDICT;
}

static int on_headers(void *user, struct weir_agent_req *req, struct weir_agent_reply *r)
{
	const struct weir_agent_request *rq = weir_agent_req_request(req);
	struct rq *q = calloc(1, sizeof(*q));
	char buf[128];
	const char *v;

	if (q == NULL)
		return WEIR_AGENT_R_VERDICT;
	sha256_init(&q->sha);
	weir_agent_req_set_data(req, q);
	if ((v = hval(rq, "X-Agent-Action", buf, sizeof(buf))) != NULL)
		q->action = strcasecmp(v, "block") == 0 ? 1 : strcasecmp(v, "stall") == 0 ? 2 : 0;
	if ((v = hval(rq, "X-Agent-Status", buf, sizeof(buf))) != NULL)
		q->status = (unsigned)atoi(v);
	if ((v = hval(rq, "X-Agent-Delay-Ms", buf, sizeof(buf))) != NULL)
		q->delay_ms = (unsigned)atoi(v);
	if ((v = hval(rq, "X-Agent-Body", q->body, sizeof(q->body))) == NULL)
		snprintf(q->body, sizeof(q->body), "blocked by c-test-agent\n");
	if (rq->has_body && user != NULL)
		return WEIR_AGENT_R_PENDING;    /* the verdict comes with the last chunk */
	return verdict(q, r);
}

static int on_body(void *user, struct weir_agent_req *req, const struct weir_agent_chunk *c,
		   struct weir_agent_reply *r)
{
	struct rq *q = weir_agent_req_data(req);

	if (q == NULL)
		return c->last ? WEIR_AGENT_R_VERDICT : WEIR_AGENT_R_PENDING;
	sha256_update(&q->sha, c->data, c->len);
	q->bytes += c->len;
	if (c->len != 0 && weir_agent_req_shm(req))
		q->shm_seen = true;
	return c->last ? verdict(q, r) : WEIR_AGENT_R_PENDING;
}

static void on_closed(void *user, struct weir_agent_req *req, int reason)
{
	free(weir_agent_req_data(req));
}

static void on_term(int sig)
{
	(void)sig;
	weir_agent_server_stop(srv);
}

int main(int argc, char **argv)
{
	static int body_flag = 1;
	struct weir_agent_config cfg = {
		.name = "c-test-agent",
		.workers = 4,
		.log_level = WEIR_AGENT_LOG_WARN,
		.cb = { .request_headers = on_headers, .request_body = on_body, .closed = on_closed },
	};
	char addr[256];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
			listen_addr = argv[++i];
		else if (strcmp(argv[i], "--no-shm") == 0)
			cfg.no_shm = true;
		else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc)
			cfg.workers = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--headers-only") == 0)
			cfg.cb.request_body = NULL;
		else {
			fprintf(stderr, "usage: c-test-agent --listen ADDR [--no-shm] [--workers N] "
					"[--headers-only]\n");
			return 2;
		}
	}
	if (listen_addr == NULL)
		return 2;
	cfg.user = cfg.cb.request_body != NULL ? &body_flag : NULL;
	if (weir_agent_server_new(&cfg, &srv) != 0 || weir_agent_server_listen(srv, listen_addr) != 0 ||
	    weir_agent_server_address(srv, 0, addr, sizeof(addr)) != 0) {
		fprintf(stderr, "c-test-agent: cannot listen on %s\n", listen_addr);
		return 1;
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	printf("ready %s\n", addr);
	fflush(stdout);
	weir_agent_server_run(srv);
	weir_agent_server_free(srv);
	return 0;
}
