/* libFuzzer harness for libweir-agent's input path: the input is the byte
 * stream weir would send an agent. It goes to a real SDK connection (frame
 * splitting, HELLO, every decoder, the id life cycle, body offsets, credit,
 * output), in pieces whose sizes come from a hash of the input so that
 * frames straddle reads, with callbacks run between pieces. The callbacks
 * answer in ways chosen by the request id. Checked: no crash, leak or
 * sanitizer report; everything the SDK sends is a well-formed agent frame;
 * no request stays open once the connection is gone. */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <msgpuck.h>

#include "fuzz.h"
#include "sdk-internal.h"

static struct weir_agent_req *held[64];
static unsigned nheld;

static int on_headers(void *user, struct weir_agent_req *req, struct weir_agent_reply *r)
{
	uint64_t id = weir_agent_req_id(req);

	switch (id % 8) {
	case 0:
		weir_agent_reply_req_set(r, "X-A", "1");
		weir_agent_reply_resp_del(r, "Server");
		weir_agent_reply_tag(r, "t");
		return WEIR_AGENT_R_VERDICT;
	case 1:
		weir_agent_reply_block(r, 0, "no", 2);
		weir_agent_reply_header(r, "X-Why", "fuzz");
		weir_agent_reply_rule_id(r, id);
		weir_agent_reply_score(r, -(int64_t)(id % 100));
		return WEIR_AGENT_R_VERDICT;
	case 2:
		weir_agent_reply_redirect(r, 0, "/x");
		return WEIR_AGENT_R_VERDICT;
	case 3:
		return WEIR_AGENT_R_PENDING;            /* decided on the body */
	case 4:
		return WEIR_AGENT_R_NEED_BODY;
	case 5:
		if (nheld < sizeof(held) / sizeof(held[0])) {
			held[nheld++] = weir_agent_req_ref(req);
			return WEIR_AGENT_R_PENDING;
		}
		return WEIR_AGENT_R_VERDICT;
	case 6:
		weir_agent_reply_phase(r, WEIR_AGENT_PHASE_RESPONSE); /* usually not due */
		return WEIR_AGENT_R_VERDICT;
	default:
		return WEIR_AGENT_R_PENDING;            /* never answered */
	}
}

static int on_body(void *user, struct weir_agent_req *req, const struct weir_agent_chunk *c,
		   struct weir_agent_reply *r)
{
	FUZZ_ASSERT(c->len == 0 || c->data != NULL);
	if (weir_agent_req_id(req) % 8 == 7)
		weir_agent_credit(req, c->len);
	if (c->len != 0 && c->data[0] == 'B')
		weir_agent_reply_block(r, 451, c->data, c->len > 64 ? 64 : c->len);
	else if (!c->last)
		return WEIR_AGENT_R_PENDING;
	else if (c->len != 0 && c->data[0] == 'R')
		weir_agent_reply_body_replace(r, c->data, c->len);
	return WEIR_AGENT_R_VERDICT;
}

static int on_resp_headers(void *user, struct weir_agent_req *req, struct weir_agent_reply *r)
{
	const struct weir_agent_response *rs = weir_agent_req_response(req);

	FUZZ_ASSERT(rs != NULL);
	for (uint32_t i = 0; i < rs->nheaders; i++)
		FUZZ_ASSERT(rs->headers[i].name.len != 0);
	if (rs->status >= 500)
		weir_agent_reply_block(r, 502, NULL, 0);
	return WEIR_AGENT_R_VERDICT;
}

static int on_resp_body(void *user, struct weir_agent_req *req, const struct weir_agent_chunk *c,
			struct weir_agent_reply *r)
{
	return c->last ? WEIR_AGENT_R_VERDICT : WEIR_AGENT_R_PENDING;
}

static void on_done(void *user, struct weir_agent_req *req, const struct weir_agent_done *d)
{
}

static void on_closed(void *user, struct weir_agent_req *req, int reason)
{
	const struct weir_agent_request *rq = weir_agent_req_request(req);

	FUZZ_ASSERT(rq->method.len != 0 && rq->target.len != 0);
	FUZZ_ASSERT(rq->path.len <= rq->target.len);
}

/* Everything the SDK sent: whole frames of agent types, one map each. */
static void check_output(const char *p, size_t n)
{
	bool first = true;

	while (n != 0) {
		struct weir__sdk_frame f;
		uint32_t need;
		const char *q;
		int r = weir__sdk_frame_parse(p, n, WEIR_AGENT_MAX_FRAME_CEIL, &f, &need);

		if (r == 1)
			break;  /* the rest was unsent when the connection closed */
		FUZZ_ASSERT(r == 0);
		FUZZ_ASSERT(f.type >= WEIR_AGENT_HELLO_REPLY && f.type <= WEIR_AGENT_GOAWAY);
		FUZZ_ASSERT(!first || f.type == WEIR_AGENT_HELLO_REPLY);
		FUZZ_ASSERT(f.size <= 256 * 1024);
		q = f.payload;
		FUZZ_ASSERT(f.plen != 0 && mp_typeof(*q) == MP_MAP);
		FUZZ_ASSERT(mp_check(&q, f.payload + f.plen) == 0 && q == f.payload + f.plen);
		FUZZ_ASSERT((f.id == 0) == (f.type == WEIR_AGENT_HELLO_REPLY ||
					    f.type == WEIR_AGENT_GOAWAY) ||
			    f.type == WEIR_AGENT_PONG);
		first = false;
		p += f.size;
		n -= f.size;
	}
}

struct sink {
	char *buf;
	size_t len, cap;
};

static void drain(int fd, struct sink *o)
{
	for (;;) {
		ssize_t k;

		if (o->cap - o->len < 65536) {
			o->cap = o->cap != 0 ? 2 * o->cap : 1 << 17;
			o->buf = realloc(o->buf, o->cap);
			FUZZ_ASSERT(o->buf != NULL);
		}
		k = recv(fd, o->buf + o->len, o->cap - o->len, MSG_DONTWAIT);
		if (k <= 0)
			return;
		o->len += (size_t)k;
	}
}

static void quiet(void *user, int level, const char *msg)
{
}

static struct weir_agent_server *server(void)
{
	static struct weir_agent_server *s;
	struct weir_agent_config cfg = {
		.name = "fuzz",
		.max_in_flight = 16,
		.max_frame = WEIR_AGENT_MAX_FRAME_MIN,
		.credit = true,
		.body_window = 64,
		.log_level = WEIR_AGENT_LOG_ERR,
		.log = quiet,
		.cb = {
			.request_headers = on_headers,
			.request_body = on_body,
			.response_headers = on_resp_headers,
			.response_body = on_resp_body,
			.request_done = on_done,
			.closed = on_closed,
		},
	};

	if (s == NULL && weir_agent_server_new(&cfg, &s) != 0)
		abort();
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct weir_agent_server *s = server();
	struct weir_agent_reply *r;
	struct weir_agent_stats st;
	struct weir__sdk_conn *c;
	struct sink out = { NULL, 0, 0 };
	uint64_t h = fuzz_hash(data, size);
	size_t off = 0;
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return 0;
	c = weir__sdk_test_conn(s, sv[1]);
	if (c == NULL) {
		close(sv[0]);
		return 0;
	}
	while (off < size) {
		size_t k = (size_t)(h % 97) + 1;

		h = h * 6364136223846793005ull + 1442695040888963407ull;
		if (k > size - off)
			k = size - off;
		if (!weir__sdk_test_input(c, (const char *)data + off, k))
			break;
		off += k;
		weir__sdk_test_pump(s);
		drain(sv[0], &out);
	}
	weir__sdk_test_pump(s);
	/* asynchronous answers, some to closed ids */
	r = weir_agent_reply_new();
	for (unsigned i = 0; i < nheld; i++) {
		int err = weir_agent_verdict_send(held[i], r);

		FUZZ_ASSERT(err == 0 || err == -ECANCELED || err == -EALREADY);
	}
	weir__sdk_test_pump(s);
	drain(sv[0], &out);
	weir__sdk_test_close(c);
	for (unsigned i = 0; i < nheld; i++) {
		FUZZ_ASSERT(weir_agent_verdict_send(held[i], r) == -ECANCELED);
		weir_agent_req_unref(held[i]);
	}
	nheld = 0;
	weir_agent_reply_free(r);
	drain(sv[0], &out);
	close(sv[0]);
	check_output(out.buf, out.len);
	free(out.buf);
	weir_agent_server_stats(s, &st);
	FUZZ_ASSERT(st.open_requests == 0 && st.open_connections == 0);
	return 0;
}
