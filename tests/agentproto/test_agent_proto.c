/* Unit tests of the agent protocol codec and of header mutations. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpuck.h>

#include "weir/agent_proto.h"
#include "weir/agents.h"
#include "weir/alloc.h"

static int failures;

#define CHECK(c)                                                                        \
	do {                                                                            \
		if (!(c)) {                                                             \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
			failures++;                                                     \
		}                                                                       \
	} while (0)

static uint32_t be32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;

	return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

/* Finds key in the map at p; returns the value's position or NULL. */
static const char *map_get(const char *p, unsigned key)
{
	uint32_t n = mp_decode_map(&p);

	for (uint32_t i = 0; i < n; i++) {
		uint64_t k = mp_decode_uint(&p);

		if (k == key)
			return p;
		mp_next(&p);
	}
	return NULL;
}

static void test_request_headers(void)
{
	static const char raw[] = "POST /login?x=1 HTTP/1.1\r\nHost: example.com\r\n"
				  "Content-Length: 9\r\nX-Case: MiXeD\r\n\r\n";
	struct weir_h1_request req;
	struct weir_agent_req_info ri = { &req, "10.1.2.3", 4242, "api", "0-7" };
	struct weir_agent_frame f;
	uint32_t len, need, slen;
	const char *v, *s, *w;
	char *b;

	CHECK(weir_h1_parse_request(raw, sizeof(raw) - 1, &req) == (int)sizeof(raw) - 1);
	b = weir_agent_enc_request_headers(0x100000002ull, &ri, &len);
	CHECK(b != NULL);
	if (b == NULL)
		return;
	CHECK(be32(b) == len - 4);
	CHECK(weir_agent_frame_parse(b, len, WEIR_AGENT_MAX_FRAME_DEFAULT, &f, &need) == 0);
	CHECK(f.type == WEIR_AGENT_REQUEST_HEADERS && f.flags == 0 && f.id == 0x100000002ull);
	w = f.payload;
	CHECK(mp_check(&w, f.payload + f.payload_len) == 0 && w == f.payload + f.payload_len);
	v = map_get(f.payload, WEIR_AGENT_K_METHOD);
	CHECK(v != NULL && (s = mp_decode_str(&v, &slen)) != NULL && slen == 4 &&
	      memcmp(s, "POST", 4) == 0);
	v = map_get(f.payload, WEIR_AGENT_K_TARGET);
	CHECK(v != NULL && (s = mp_decode_str(&v, &slen)) != NULL && slen == 10 &&
	      memcmp(s, "/login?x=1", 10) == 0);
	v = map_get(f.payload, WEIR_AGENT_K_HEADERS);
	CHECK(v != NULL && mp_decode_array(&v) == 6);
	if (v != NULL) {
		mp_next(&v);
		mp_next(&v);
		mp_next(&v);
		mp_next(&v);
		s = mp_decode_str(&v, &slen);
		CHECK(slen == 6 && memcmp(s, "X-Case", 6) == 0);      /* case kept */
		s = mp_decode_str(&v, &slen);
		CHECK(slen == 5 && memcmp(s, "MiXeD", 5) == 0);
	}
	v = map_get(f.payload, WEIR_AGENT_K_CLIENT_PORT);
	CHECK(v != NULL && mp_decode_uint(&v) == 4242);
	v = map_get(f.payload, WEIR_AGENT_K_BODY_LENGTH);
	CHECK(v != NULL && mp_decode_uint(&v) == 9);
	/* a partial frame asks for more, naming the full size */
	CHECK(weir_agent_frame_parse(b, len - 1, WEIR_AGENT_MAX_FRAME_DEFAULT, &f, &need) ==
	      WEIR_H1_NEED_MORE && need == len);
	/* over the limit: invalid */
	CHECK(weir_agent_frame_parse(b, len, len - 1, &f, &need) == -1);
	weir_free(b);
}

static void test_body_prefix(void)
{
	char frame[WEIR_AGENT_BODY_PREFIX + 5];
	struct weir_agent_frame f;
	uint32_t n, need, blen;
	const char *v;

	n = weir_agent_body_prefix(frame, WEIR_AGENT_REQUEST_BODY, 9, true, 70000, 5);
	CHECK(n <= WEIR_AGENT_BODY_PREFIX);
	memcpy(frame + n, "hello", 5);
	CHECK(weir_agent_frame_parse(frame, n + 5, WEIR_AGENT_MAX_FRAME_DEFAULT, &f, &need) == 0);
	CHECK(f.size == n + 5 && f.flags == WEIR_AGENT_F_LAST && f.id == 9);
	v = map_get(f.payload, WEIR_AGENT_K_OFFSET);
	CHECK(v != NULL && mp_decode_uint(&v) == 70000);
	v = map_get(f.payload, WEIR_AGENT_K_DATA);
	CHECK(v != NULL && mp_typeof(*v) == MP_BIN);
	if (v != NULL) {
		const char *d = mp_decode_bin(&v, &blen);

		CHECK(blen == 5 && memcmp(d, "hello", 5) == 0 && v == frame + n + 5);
	}
}

static struct weir_agent_verdict verdict;

static int decode(const char *p, size_t n, const char **why)
{
	return weir_agent_decode_verdict(p, n, &verdict, why);
}

static void test_verdicts(void)
{
	char buf[512], *w;
	const char *why;

	/* block without status: 403 */
	w = mp_encode_map(buf, 2);
	w = mp_encode_uint(w, WEIR_AGENT_K_ACTION);
	w = mp_encode_uint(w, WEIR_AGENT_BLOCK);
	w = mp_encode_uint(w, WEIR_AGENT_K_RULE_IDS);
	w = mp_encode_array(w, 2);
	w = mp_encode_uint(w, 942100);
	w = mp_encode_str(w, "x-1", 3);
	CHECK(decode(buf, (size_t)(w - buf), &why) == 0);
	CHECK(verdict.action == WEIR_AGENT_BLOCK && verdict.status == 403);
	CHECK(verdict.nrules == 2 && verdict.rules[0].len == 6 &&
	      memcmp(verdict.rules[0].ptr, "942100", 6) == 0);
	/* redirect needs a location */
	w = mp_encode_map(buf, 1);
	w = mp_encode_uint(w, WEIR_AGENT_K_ACTION);
	w = mp_encode_uint(w, WEIR_AGENT_REDIRECT);
	CHECK(decode(buf, (size_t)(w - buf), &why) == -1);
	/* a header value with CR LF is refused */
	w = mp_encode_map(buf, 2);
	w = mp_encode_uint(w, WEIR_AGENT_K_ACTION);
	w = mp_encode_uint(w, WEIR_AGENT_ALLOW);
	w = mp_encode_uint(w, WEIR_AGENT_K_REQ_SET);
	w = mp_encode_array(w, 2);
	w = mp_encode_str(w, "X-A", 3);
	w = mp_encode_str(w, "a\r\nX-Evil: 1", 12);
	CHECK(decode(buf, (size_t)(w - buf), &why) == -1);
	/* no action: refused; trailing bytes: refused */
	w = mp_encode_map(buf, 0);
	CHECK(decode(buf, (size_t)(w - buf), &why) == -1);
	w = mp_encode_map(buf, 1);
	w = mp_encode_uint(w, WEIR_AGENT_K_ACTION);
	w = mp_encode_uint(w, 0);
	CHECK(decode(buf, (size_t)(w - buf), &why) == 0);
	CHECK(decode(buf, (size_t)(w - buf) + 1, &why) == -1);
	/* truncated: refused without reading past the end */
	CHECK(decode(buf, (size_t)(w - buf) - 1, &why) == -1);
	/* status out of range */
	w = mp_encode_map(buf, 2);
	w = mp_encode_uint(w, WEIR_AGENT_K_ACTION);
	w = mp_encode_uint(w, WEIR_AGENT_BLOCK);
	w = mp_encode_uint(w, WEIR_AGENT_K_STATUS);
	w = mp_encode_uint(w, 99);
	CHECK(decode(buf, (size_t)(w - buf), &why) == -1);
}

static void add(struct weir_areq *ar, uint8_t list, const char *name, const char *value)
{
	struct weir_hmut *m = &ar->muts[ar->nmuts++];
	size_t nl = strlen(name), vl = strlen(value);

	m->name = weir_malloc(nl + vl + 2);
	memcpy(m->name, name, nl + 1);
	m->value = m->name + nl + 1;
	memcpy(m->value, value, vl + 1);
	m->nlen = (uint32_t)nl;
	m->vlen = (uint32_t)vl;
	m->list = list;
}

static void test_mutations(void)
{
	static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a: 2\r\nCookie: c\r\n"
				 "Content-Length: 3\r\n\r\n";
	static const char want[] = "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nX-A: 3\r\n"
				   "X-B: b\r\nX-B: c\r\n\r\n";
	struct weir_areq ar;
	uint32_t len = sizeof(in) - 1;
	char *head = weir_malloc(len);

	memset(&ar, 0, sizeof(ar));
	ar.muts = weir_calloc(8, sizeof(*ar.muts));
	ar.capm = 8;
	add(&ar, WEIR_MUT_REQ_SET, "X-A", "3");
	add(&ar, WEIR_MUT_REQ_DEL, "cookie", "");
	add(&ar, WEIR_MUT_REQ_ADD, "X-B", "b");
	add(&ar, WEIR_MUT_REQ_ADD, "X-B", "c");
	add(&ar, WEIR_MUT_REQ_SET, "Content-Length", "99");     /* protected: ignored */
	add(&ar, WEIR_MUT_REQ_DEL, "Host", "");                 /* protected: ignored */
	add(&ar, WEIR_MUT_RESP_SET, "X-Resp", "1");             /* other direction */
	memcpy(head, in, len);
	head = weir__agents_mutate(&ar, false, head, &len);
	CHECK(head != NULL && len == sizeof(want) - 1 && memcmp(head, want, len) == 0);
	if (head != NULL && (len != sizeof(want) - 1 || memcmp(head, want, len) != 0))
		fprintf(stderr, "got: %.*s\n", (int)len, head);
	weir_free(head);
	for (unsigned i = 0; i < ar.nmuts; i++)
		weir_free(ar.muts[i].name);
	weir_free(ar.muts);
}

int main(void)
{
	weir_alloc_thread_init();
	test_request_headers();
	test_body_prefix();
	test_verdicts();
	test_mutations();
	if (failures != 0) {
		fprintf(stderr, "agent-proto: %d failure(s)\n", failures);
		return 1;
	}
	printf("agent-proto: all checks passed\n");
	return 0;
}
