/* libweir-agent codec and reply builder: the byte-level examples of
 * docs/agent-protocol.md decoded (weir -> agent) and reproduced byte for
 * byte (agent -> weir), hostile payloads refused, builder limits. */
#include <errno.h>
#include <stdlib.h>

#include "sdk-internal.h"
#include "sdk-test.h"

/* the spec's examples, as printed there (whole frames) */
static const char ex_hello[] =
	"00 00 00 20 01 00 00 00 00 00 00 00 00 00 00 00"
	"86 01 01 02 01 03 ce 00 04 00 00 05 1f 06 a3 77"
	"61 66 09 00";
static const char ex_hello_reply[] =
	"00 00 00 24 81 00 00 00 00 00 00 00 00 00 00 00"
	"87 01 01 02 01 03 ce 00 01 00 00 04 cd 01 00 05"
	"13 06 a3 77 61 66 08 00";
static const char ex_request_headers[] =
	"00 00 00 5c 02 00 00 00 00 00 00 01 00 00 00 01"
	"89 0a a4 50 4f 53 54 0b a6 2f 6c 6f 67 69 6e 0c"
	"01 0d 94 a4 48 6f 73 74 ab 65 78 61 6d 70 6c 65"
	"2e 63 6f 6d ae 43 6f 6e 74 65 6e 74 2d 4c 65 6e"
	"67 74 68 a1 39 0e a9 31 32 37 2e 30 2e 30 2e 31"
	"0f cd 9e 40 10 a3 61 70 69 11 09 28 a3 30 2d 31";
static const char ex_request_body[] =
	"00 00 00 1b 03 01 00 00 00 00 00 01 00 00 00 01"
	"82 12 00 13 c4 09 75 73 65 72 3d 72 6f 6f 74";
static const char ex_response_headers[] =
	"00 00 00 3f 04 00 00 00 00 00 00 01 00 00 00 01"
	"84 14 cc c8 0c 01 0d 94 ac 43 6f 6e 74 65 6e 74"
	"2d 54 79 70 65 aa 74 65 78 74 2f 70 6c 61 69 6e"
	"ae 43 6f 6e 74 65 6e 74 2d 4c 65 6e 67 74 68 a1"
	"32 11 02";
static const char ex_response_body[] =
	"00 00 00 14 05 01 00 00 00 00 00 01 00 00 00 01"
	"82 12 00 13 c4 02 6f 6b";
static const char ex_request_done[] =
	"00 00 00 18 06 00 00 00 00 00 00 01 00 00 00 01"
	"84 14 cc c8 23 09 24 02 25 cd 07 26";
static const char ex_cancel[] =
	"00 00 00 0f 07 00 00 00 00 00 00 01 00 00 00 01"
	"81 27 02";
static const char ex_ping[] =
	"00 00 00 0d 08 00 00 00 00 00 00 00 00 00 00 07"
	"80";
static const char ex_pong[] =
	"00 00 00 0d 85 00 00 00 00 00 00 00 00 00 00 07"
	"80";
static const char ex_verdict_allow[] =
	"00 00 00 1f 82 00 00 00 00 00 00 01 00 00 00 01"
	"83 16 00 17 00 1a 92 a9 58 2d 43 68 65 63 6b 65"
	"64 a1 31";
static const char ex_verdict_block[] =
	"00 00 00 58 82 00 00 00 00 00 00 01 00 00 00 01"
	"89 16 01 17 00 14 cd 01 93 2d 92 ac 43 6f 6e 74"
	"65 6e 74 2d 54 79 70 65 aa 74 65 78 74 2f 70 6c"
	"61 69 6e 19 c4 07 64 65 6e 69 65 64 0a 21 91 ce"
	"00 0e 60 14 20 91 a4 73 71 6c 69 2c 05 15 ad 53"
	"51 4c 20 69 6e 6a 65 63 74 69 6f 6e";
static const char ex_verdict_redirect[] =
	"00 00 00 1d 82 00 00 00 00 00 00 01 00 00 00 01"
	"84 16 02 17 00 14 cd 01 2e 18 a6 2f 6c 6f 67 69"
	"6e";
static const char ex_need_more[] =
	"00 00 00 0d 83 00 00 00 00 00 00 01 00 00 00 01"
	"80";
static const char ex_credit[] =
	"00 00 00 13 84 00 00 00 00 00 00 01 00 00 00 01"
	"81 22 ce 00 01 00 00";
static const char ex_goaway[] =
	"00 00 00 19 86 00 00 00 00 00 00 00 00 00 00 00"
	"81 15 aa 72 65 73 74 61 72 74 69 6e 67";

static const uint64_t ex_id = 0x0000000100000001ull;

/* Splits an example into its frame; checks the header. */
static struct weir__sdk_frame parse_ex(const char *hex, unsigned char *buf, uint8_t type)
{
	struct weir__sdk_frame f = { 0 };
	size_t n = unhex(hex, buf);
	uint32_t need;

	CHECK_INT(weir__sdk_frame_parse((const char *)buf, n, WEIR_AGENT_MAX_FRAME_DEFAULT, &f, &need), 0);
	CHECK_INT(f.size, n);
	CHECK_INT(f.type, type);
	/* every prefix is incomplete */
	for (size_t k = 0; k < n; k++) {
		struct weir__sdk_frame g;

		if (weir__sdk_frame_parse((const char *)buf, k, WEIR_AGENT_MAX_FRAME_DEFAULT, &g, &need) != 1) {
			fprintf(stderr, "prefix %zu of a type 0x%02x frame not incomplete\n", k, type);
			failures++;
			break;
		}
	}
	return f;
}

static void test_decode_examples(void)
{
	unsigned char buf[256];
	struct weir__sdk_frame f;
	const char *why = NULL;

	f = parse_ex(ex_hello, buf, WEIR_AGENT_HELLO);
	{
		struct weir__sdk_hello h;

		CHECK_INT(weir__sdk_dec_hello(f.payload, f.plen, &h, &why), 0);
		CHECK_INT(h.version, 1);
		CHECK_INT(h.caps, WEIR_AGENT_CAP_CREDIT);
		CHECK_INT(h.max_frame, 256 * 1024);
		CHECK_INT(h.events, WEIR_AGENT_EV_ALL);
		CHECK_STR(h.name, "waf");
		CHECK_INT(h.reactor, 0);
	}

	f = parse_ex(ex_request_headers, buf, WEIR_AGENT_REQUEST_HEADERS);
	CHECK_INT(f.id, ex_id);
	{
		struct weir_agent_request rq;
		struct weir_agent_header hdrs[2];

		/* no room: counted only; then decoded (trusted: mp_check skipped) */
		CHECK_INT(weir__sdk_dec_request(f.payload, f.plen, &rq, hdrs, 1, false, &why), 0);
		CHECK_INT(rq.nheaders, 2);
		CHECK(rq.headers == NULL);
		CHECK_INT(weir__sdk_dec_request(f.payload, f.plen, &rq, hdrs, 2, true, &why), 0);
		CHECK(rq.headers == hdrs);
		CHECK_STR(rq.method, "POST");
		CHECK_STR(rq.target, "/login");
		CHECK_STR(rq.path, "/login");
		CHECK_INT(rq.http_minor, 1);
		CHECK_STR(rq.headers[0].name, "Host");
		CHECK_STR(rq.headers[0].value, "example.com");
		CHECK_STR(rq.headers[1].name, "Content-Length");
		CHECK_STR(rq.headers[1].value, "9");
		CHECK_STR(rq.client_addr, "127.0.0.1");
		CHECK_INT(rq.client_port, 40512);
		CHECK_STR(rq.route, "api");
		CHECK_STR(rq.uid, "0-1");
		CHECK(rq.has_body_length);
		CHECK_INT(rq.body_length, 9);
	}

	f = parse_ex(ex_request_body, buf, WEIR_AGENT_REQUEST_BODY);
	CHECK_INT(f.flags, WEIR_AGENT_F_LAST);
	{
		struct weir_agent_chunk c;

		CHECK_INT(weir__sdk_dec_body(f.payload, f.plen, &c, &why), 0);
		CHECK_INT(c.offset, 0);
		CHECK_STR(((struct weir_agent_str){ c.data, c.len }), "user=root");
	}

	f = parse_ex(ex_response_headers, buf, WEIR_AGENT_RESPONSE_HEADERS);
	{
		struct weir_agent_response rs;
		struct weir_agent_header hdrs[2];

		CHECK_INT(weir__sdk_dec_response(f.payload, f.plen, &rs, NULL, 0, false, &why), 0);
		CHECK_INT(rs.nheaders, 2);
		CHECK(rs.headers == NULL);
		CHECK_INT(weir__sdk_dec_response(f.payload, f.plen, &rs, hdrs, 2, false, &why), 0);
		CHECK(rs.headers == hdrs);
		CHECK_INT(rs.status, 200);
		CHECK_STR(rs.headers[0].name, "Content-Type");
		CHECK_STR(rs.headers[1].value, "2");
		CHECK_INT(rs.body_length, 2);
	}

	f = parse_ex(ex_response_body, buf, WEIR_AGENT_RESPONSE_BODY);
	{
		struct weir_agent_chunk c;

		CHECK_INT(weir__sdk_dec_body(f.payload, f.plen, &c, &why), 0);
		CHECK_STR(((struct weir_agent_str){ c.data, c.len }), "ok");
	}

	f = parse_ex(ex_request_done, buf, WEIR_AGENT_REQUEST_DONE);
	{
		struct weir_agent_done d;

		CHECK_INT(weir__sdk_dec_done(f.payload, f.plen, &d, &why), 0);
		CHECK_INT(d.status, 200);
		CHECK_INT(d.bytes_in, 9);
		CHECK_INT(d.bytes_out, 2);
		CHECK_INT(d.duration_us, 1830);
	}

	f = parse_ex(ex_cancel, buf, WEIR_AGENT_CANCEL);
	{
		uint32_t reason;

		CHECK_INT(weir__sdk_dec_cancel(f.payload, f.plen, &reason, &why), 0);
		CHECK_INT(reason, WEIR_AGENT_CANCEL_TIMEOUT);
	}

	f = parse_ex(ex_ping, buf, WEIR_AGENT_PING);
	CHECK_INT(f.id, 7);
	CHECK_INT(weir__sdk_dec_map(f.payload, f.plen, &why), 0);
}

static void check_encoded(const char *what, const char *got, size_t n, const char *hex)
{
	unsigned char want[256];
	size_t wn = unhex(hex, want);

	if (n != wn || memcmp(got, want, wn) != 0) {
		fprintf(stderr, "%s: encoding differs from the spec's example\n", what);
		hexdump("got", got, n);
		hexdump("want", want, wn);
		failures++;
	}
}

static void test_encode_examples(void)
{
	char buf[512];
	struct weir_agent_reply *r = weir_agent_reply_new();
	struct weir__sdk_hello_reply hr = {
		.caps = WEIR_AGENT_CAP_CREDIT, .max_frame = 65536, .max_in_flight = 256,
		.events = 0x13, .name = { "waf", 3 }, .has_window = true, .body_window = 0,
	};
	uint32_t n;

	n = weir__sdk_enc_hello_reply(buf, &hr);
	check_encoded("HELLO_REPLY", buf, n, ex_hello_reply);
	n = weir__sdk_enc_empty(buf, WEIR_AGENT_PONG, 7);
	check_encoded("PONG", buf, n, ex_pong);
	n = weir__sdk_enc_empty(buf, WEIR_AGENT_NEED_MORE, ex_id);
	check_encoded("NEED_MORE", buf, n, ex_need_more);
	n = weir__sdk_enc_credit(buf, ex_id, 65536);
	check_encoded("CREDIT", buf, n, ex_credit);
	n = weir__sdk_enc_goaway(buf, "restarting");
	check_encoded("GOAWAY", buf, n, ex_goaway);

	CHECK_INT(weir_agent_reply_req_set(r, "X-Checked", "1"), 0);
	CHECK(weir__sdk_reply_size(r) >= 0x23);
	n = weir__sdk_reply_encode(buf, r, ex_id, 0);
	check_encoded("VERDICT allow", buf, n, ex_verdict_allow);

	weir_agent_reply_reset(r);
	CHECK_INT(weir_agent_reply_block(r, 403, "denied\n", 7), 0);
	CHECK_INT(weir_agent_reply_header(r, "Content-Type", "text/plain"), 0);
	CHECK_INT(weir_agent_reply_rule_id(r, 942100), 0);
	CHECK_INT(weir_agent_reply_tag(r, "sqli"), 0);
	CHECK_INT(weir_agent_reply_score(r, 5), 0);
	CHECK_INT(weir_agent_reply_reason(r, "SQL injection"), 0);
	CHECK(weir__sdk_reply_size(r) >= 0x5c);
	n = weir__sdk_reply_encode(buf, r, ex_id, 0);
	check_encoded("VERDICT block", buf, n, ex_verdict_block);

	weir_agent_reply_reset(r);
	CHECK_INT(weir_agent_reply_redirect(r, 302, "/login"), 0);
	n = weir__sdk_reply_encode(buf, r, ex_id, 0);
	check_encoded("VERDICT redirect", buf, n, ex_verdict_redirect);
	weir_agent_reply_free(r);
}

/* Every reply the builder accepts encodes to one valid map within its
 * announced size, with each list in place. */
static void test_reply_roundtrip(void)
{
	struct weir_agent_reply *r = weir_agent_reply_new();
	char *buf;
	size_t size;
	uint32_t n;
	const char *p, *v;

	CHECK_INT(weir_agent_reply_block(r, 0, NULL, 0), 0);
	for (int i = 0; i < 64; i++) {
		char name[16];

		snprintf(name, sizeof(name), "X-H%d", i);
		CHECK_INT(weir_agent_reply_header(r, name, "v"), 0);
		CHECK_INT(weir_agent_reply_resp_add(r, name, ""), 0);
		CHECK_INT(weir_agent_reply_req_del(r, name), 0);
		CHECK_INT(weir_agent_reply_tag(r, name), 0);
		CHECK_INT(weir_agent_reply_rule_name(r, name), 0);
	}
	CHECK_INT(weir_agent_reply_header(r, "X-One-More", "v"), -E2BIG);
	CHECK_INT(weir_agent_reply_tag(r, "more"), -E2BIG);
	CHECK_INT(weir_agent_reply_rule_id(r, 1), -E2BIG);
	CHECK_INT(weir_agent_reply_score(r, -12345678901ll), 0);
	size = weir__sdk_reply_size(r);
	buf = malloc(size);
	n = weir__sdk_reply_encode(buf, r, 9, 1);
	CHECK(n <= size);
	p = buf + 16;
	CHECK_INT(map_uint(p, n - 16, WEIR_AGENT_K_ACTION), WEIR_AGENT_BLOCK);
	CHECK_INT(map_uint(p, n - 16, WEIR_AGENT_K_PHASE), 1);
	CHECK_INT(map_uint(p, n - 16, WEIR_AGENT_K_STATUS), 403);
	v = map_get(p, n - 16, WEIR_AGENT_K_HEADERS_OUT);
	CHECK(v != NULL && mp_decode_array(&v) == 128);
	v = map_get(p, n - 16, WEIR_AGENT_K_RESP_ADD);
	CHECK(v != NULL && mp_decode_array(&v) == 128);
	v = map_get(p, n - 16, WEIR_AGENT_K_REQ_DEL);
	CHECK(v != NULL && mp_decode_array(&v) == 64);
	v = map_get(p, n - 16, WEIR_AGENT_K_SCORE);
	CHECK(v != NULL && mp_typeof(*v) == MP_INT && mp_decode_int(&v) == -12345678901ll);
	CHECK(map_get(p, n - 16, WEIR_AGENT_K_BODY) == NULL);
	free(buf);

	/* body_replace: only with a request-phase allow */
	CHECK_INT(weir_agent_reply_body_replace(r, "new", 3), 0);
	buf = malloc(weir__sdk_reply_size(r));
	n = weir__sdk_reply_encode(buf, r, 9, 0);
	CHECK(map_get(buf + 16, n - 16, WEIR_AGENT_K_BODY_REPLACE) == NULL); /* a block */
	free(buf);
	CHECK_INT(weir_agent_reply_allow(r), 0);
	buf = malloc(weir__sdk_reply_size(r));
	n = weir__sdk_reply_encode(buf, r, 9, 1);
	CHECK(map_get(buf + 16, n - 16, WEIR_AGENT_K_BODY_REPLACE) == NULL); /* phase 1 */
	n = weir__sdk_reply_encode(buf, r, 9, 0);
	CHECK(n <= weir__sdk_reply_size(r));
	CHECK_STR(map_str(buf + 16, n - 16, WEIR_AGENT_K_BODY_REPLACE), "new");
	v = map_get(buf + 16, n - 16, WEIR_AGENT_K_BODY_REPLACE);
	CHECK(v != NULL && mp_typeof(*v) == MP_BIN);
	free(buf);
	weir_agent_reply_reset(r);
	CHECK_INT(weir_agent_reply_body_replace(r, NULL, 0), 0);
	buf = malloc(weir__sdk_reply_size(r));
	n = weir__sdk_reply_encode(buf, r, 9, 0);
	v = map_get(buf + 16, n - 16, WEIR_AGENT_K_BODY_REPLACE);
	CHECK(v != NULL && mp_typeof(*v) == MP_BIN && mp_decode_binl(&v) == 0);
	free(buf);
	CHECK_INT(weir_agent_reply_body_replace(r, NULL, 1), -EINVAL);
	CHECK_INT(weir_agent_reply_block(r, 0, NULL, 0), 0);
	for (int i = 0; i < 64; i++) {
		char name[16];

		snprintf(name, sizeof(name), "X-H%d", i);
		weir_agent_reply_header(r, name, "v");
		weir_agent_reply_tag(r, name);
	}

	/* allow: status and headers_out are not sent */
	CHECK_INT(weir_agent_reply_allow(r), 0);
	buf = malloc(weir__sdk_reply_size(r));
	n = weir__sdk_reply_encode(buf, r, 9, 0);
	CHECK(map_get(buf + 16, n - 16, WEIR_AGENT_K_STATUS) == NULL);
	CHECK(map_get(buf + 16, n - 16, WEIR_AGENT_K_HEADERS_OUT) == NULL);
	CHECK(map_get(buf + 16, n - 16, WEIR_AGENT_K_TAGS) != NULL);
	free(buf);
	weir_agent_reply_free(r);
}

static void test_reply_validation(void)
{
	struct weir_agent_reply *r = weir_agent_reply_new();
	char big[80];

	CHECK_INT(weir_agent_reply_req_set(r, "Bad Name", "v"), -EINVAL);
	CHECK_INT(weir_agent_reply_req_set(r, "", "v"), -EINVAL);
	CHECK_INT(weir_agent_reply_req_set(r, "X-A", "a\r\nb"), -EINVAL);
	CHECK_INT(weir_agent_reply_req_add(r, "X-A", NULL), -EINVAL);
	CHECK_INT(weir_agent_reply_req_set(r, "content-length", "1"), -EPERM);
	CHECK_INT(weir_agent_reply_resp_del(r, "Transfer-Encoding"), -EPERM);
	CHECK_INT(weir_agent_reply_req_add(r, "HOST", "x"), -EPERM);
	CHECK_INT(weir_agent_reply_header(r, "Connection", "close"), 0);
	CHECK_INT(weir_agent_reply_block(r, 199, NULL, 0), -EINVAL);
	CHECK_INT(weir_agent_reply_block(r, 600, NULL, 0), -EINVAL);
	CHECK_INT(weir_agent_reply_block(r, 200, NULL, 0), 0);
	CHECK_INT(weir_agent_reply_redirect(r, 304, "/x"), -EINVAL);
	CHECK_INT(weir_agent_reply_redirect(r, 0, ""), -EINVAL);
	CHECK_INT(weir_agent_reply_redirect(r, 0, "/a\nb"), -EINVAL);
	/* what weir would refuse (dropping the connection) is refused here */
	CHECK_INT(weir_agent_reply_tag(r, "two\nlines"), -EINVAL);
	CHECK_INT(weir_agent_reply_rule_name(r, "bad\x01rule"), -EINVAL);
	{
		char *reason = malloc(WEIR_AGENT_MAX_REASON + 2);

		CHECK(reason != NULL);
		if (reason != NULL) {
			memset(reason, 'r', WEIR_AGENT_MAX_REASON + 1);
			reason[WEIR_AGENT_MAX_REASON + 1] = '\0';
			CHECK_INT(weir_agent_reply_reason(r, reason), -E2BIG);
			reason[WEIR_AGENT_MAX_REASON] = '\0';
			CHECK_INT(weir_agent_reply_reason(r, reason), 0);
			free(reason);
		}
	}
	CHECK_INT(weir_agent_reply_action(r), WEIR_AGENT_BLOCK); /* failed calls change nothing */
	CHECK_INT(weir_agent_reply_redirect(r, 308, "https://example.com/"), 0);
	CHECK_INT(weir_agent_reply_action(r), WEIR_AGENT_REDIRECT);
	CHECK_INT(weir__sdk_reply_check(r), 0);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_INT(weir_agent_reply_tag(r, big), -E2BIG);
	CHECK_INT(weir_agent_reply_rule_name(r, ""), -EINVAL);
	CHECK_INT(weir_agent_reply_phase(r, 2), -EINVAL);
	CHECK_INT(weir_agent_reply_phase(r, 1), 0);
	CHECK_INT(weir__sdk_reply_phase(r), 1);
	weir_agent_reply_reset(r);
	CHECK_INT(weir__sdk_reply_phase(r), -1);
	CHECK_INT(weir_agent_reply_action(r), WEIR_AGENT_ALLOW);
	weir_agent_reply_free(r);
}

/* Payloads that must be refused. */
static void test_hostile(void)
{
	/* malformed maps: refused by every decoder (PING's checks them alone) */
	static const char *const malformed[] = {
		"",                             /* no map */
		"90",                           /* an array */
		"81",                           /* truncated */
		"80 00",                        /* trailing byte */
		"81 a1 61 01",                  /* str key */
		"81 ff 01",                     /* negative key */
		"82 30 01 30 02",               /* repeated key */
		"81 63 dd ff ff ff ff",         /* array32 of 2^32-1 (mp_check's counter wraps) */
		"81 63 df ff ff ff ff",         /* map32 of 2^32-1 */
		"df ff ff ff ff",               /* map32 of 2^32-1 at the top */
		"df 80 00 00 00",               /* map32 of 2^31 at the top */
		"81 63 dd 7f ff ff ff 01 02",   /* a count past the bytes */
		"81 63 db ff ff ff ff 61",      /* str32 past the end */
		"81 63 c6 00 00 00 05 61",      /* bin32 past the end */
		"81 63 c1",                     /* the never-used byte */
		"82 63 c1 64 00",
		"81 63 c7 05 01 61",            /* ext8 past the end */
	};
	/* well-formed maps with method and target, refused by REQUEST_HEADERS */
	static const char *const invalid[] = {
		"83 0a a1 47 0b a1 2f 0d 93 a1 61 a1 62 a1 63",     /* odd headers */
		"83 0a a1 47 0b a1 2f 0d 92 a1 61 01",              /* value not a str */
		"83 0a a1 47 0b a1 2f 0d 92 a0 a0",                 /* empty field name */
		"83 0a a1 47 0b a1 2f 0d a1 61",                    /* headers not an array */
		"83 0a a1 47 0b a1 2f 0c 02",                       /* http_minor 2 */
		"83 0a a1 47 0b a1 2f 0f ce 00 01 00 00",           /* port 65536 */
		"83 0a a1 47 0b a1 2f 11 ff",                       /* body_length -1 */
		"82 0a c4 01 47 0b a1 2f",                          /* method as bin */
		"82 0a a0 0b a1 2f",                                /* empty method */
		"82 0a a1 47 0b a0",                                /* empty target */
		"83 0a a1 47 0b a1 2f 0e 01",                       /* client_addr not a str */
	};
	char buf[64];
	const char *why;

	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		struct weir_agent_request rq;
		struct weir__sdk_hello h;
		uint32_t reason;
		size_t n = unhex(malformed[i], (unsigned char *)buf);

		why = NULL;
		if (weir__sdk_dec_map(buf, n, &why) == 0 ||
		    weir__sdk_dec_request(buf, n, &rq, NULL, 0, false, &why) == 0 ||
		    weir__sdk_dec_hello(buf, n, &h, &why) == 0 ||
		    weir__sdk_dec_cancel(buf, n, &reason, &why) == 0) {
			fprintf(stderr, "malformed payload %zu accepted: %s\n", i, malformed[i]);
			failures++;
		}
		CHECK(why != NULL);
	}
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		struct weir_agent_request rq;
		size_t n = unhex(invalid[i], (unsigned char *)buf);

		if (weir__sdk_dec_map(buf, n, &why) != 0) {
			fprintf(stderr, "invalid payload %zu not a map: %s\n", i, invalid[i]);
			failures++;
		}
		if (weir__sdk_dec_request(buf, n, &rq, NULL, 0, false, &why) == 0) {
			fprintf(stderr, "REQUEST_HEADERS accepted invalid payload %zu: %s\n", i,
				invalid[i]);
			failures++;
		}
	}
	{
		struct weir_agent_request rq;
		size_t n = unhex("82 0a a1 47 0b a1 2f", (unsigned char *)buf);

		CHECK_INT(weir__sdk_dec_request(buf, n, &rq, NULL, 0, false, &why), 0);
		CHECK_INT(rq.nheaders, 0);
	}
	/* missing required keys */
	{
		struct weir_agent_request rq;
		struct weir_agent_response rs;
		struct weir_agent_chunk c;
		struct weir__sdk_hello h;
		size_t n = unhex("81 0a a3 47 45 54", (unsigned char *)buf);

		CHECK(weir__sdk_dec_request(buf, n, &rq, NULL, 0, false, &why) != 0);      /* no target */
		n = unhex("80", (unsigned char *)buf);
		CHECK(weir__sdk_dec_response(buf, n, &rs, NULL, 0, false, &why) != 0);     /* no status */
		CHECK(weir__sdk_dec_body(buf, n, &c, &why) != 0);                /* no data */
		CHECK(weir__sdk_dec_hello(buf, n, &h, &why) != 0);               /* no version */
		n = unhex("81 14 cd 03 e8", (unsigned char *)buf);
		CHECK(weir__sdk_dec_response(buf, n, &rs, NULL, 0, false, &why) != 0);     /* status 1000 */
		n = unhex("82 12 cf ff ff ff ff ff ff ff ff 13 c4 01 00", (unsigned char *)buf);
		CHECK(weir__sdk_dec_body(buf, n, &c, &why) != 0);                /* offset overflows */
		n = unhex("82 12 00 13 a1 61", (unsigned char *)buf);
		CHECK(weir__sdk_dec_body(buf, n, &c, &why) != 0);                /* data as str */
		/* signed encodings of non-negative values are integers too */
		n = unhex("82 12 d0 05 13 c4 00", (unsigned char *)buf);
		CHECK_INT(weir__sdk_dec_body(buf, n, &c, &why), 0);
		CHECK_INT(c.offset, 5);
		n = unhex("82 12 ff 13 c4 00", (unsigned char *)buf);
		CHECK(weir__sdk_dec_body(buf, n, &c, &why) != 0);                /* offset -1 */
		/* unknown keys of any shape are skipped */
		n = unhex("84 63 92 81 01 92 c0 c3 05 64 c7 02 05 61 62 12 07 13 c4 00",
			  (unsigned char *)buf);
		CHECK_INT(weir__sdk_dec_body(buf, n, &c, &why), 0);
		CHECK_INT(c.offset, 7);
	}
	/* deep nesting in an unknown key: skipped without recursion */
	{
		size_t depth = 100000, n = 0;
		char *p = malloc(depth + 8);

		p[n++] = (char)0x81;
		p[n++] = 0x63;
		for (size_t i = 0; i < depth; i++)
			p[n++] = (char)0x91;
		p[n++] = 0x00;
		CHECK_INT(weir__sdk_dec_map(p, n, &why), 0);
		CHECK(weir__sdk_dec_map(p, n - 1, &why) != 0);
		free(p);
	}
}

static void test_frame_limits(void)
{
	unsigned char b[32] = { 0 };
	struct weir__sdk_frame f;
	uint32_t need;

	b[3] = 11;              /* length below 12 */
	CHECK_INT(weir__sdk_frame_parse((char *)b, 4, 65536, &f, &need), -1);
	b[3] = 12;
	CHECK_INT(weir__sdk_frame_parse((char *)b, 15, 65536, &f, &need), 1);
	CHECK_INT(need, 16);
	CHECK_INT(weir__sdk_frame_parse((char *)b, 16, 65536, &f, &need), 0);
	CHECK_INT(f.plen, 0);
	/* exactly max_frame, then one more */
	b[0] = 0, b[1] = 0, b[2] = 0xff, b[3] = 0xfc; /* 65532 + 4 = 65536 */
	CHECK_INT(weir__sdk_frame_parse((char *)b, 16, 65536, &f, &need), 1);
	CHECK_INT(need, 65536);
	b[3] = 0xfd;
	CHECK_INT(weir__sdk_frame_parse((char *)b, 16, 65536, &f, &need), -1);
	b[0] = 0xff;
	CHECK_INT(weir__sdk_frame_parse((char *)b, 4, 65536, &f, &need), -1);
}

int main(void)
{
	test_decode_examples();
	test_encode_examples();
	test_reply_roundtrip();
	test_reply_validation();
	test_hostile();
	test_frame_limits();
	if (failures != 0) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("sdk codec: all checks passed\n");
	return 0;
}
