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
#include "sha256.h"

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
