/* HTTP/1 response parser: status line, body framing (HEAD, 1xx, 204, 304,
 * CL, TE, close), kinds and flags, every error a 502, limits, prefix
 * consistency. */
#include <stdlib.h>

#include "check.h"
#include "weir/h1.h"

static struct weir_h1_response res;

/* expect: 0 = complete, -2 = need more, 502 = error; body checked when
 * expect == 0 */
struct rcase {
	const char *raw;
	size_t len;
	bool is_head;
	int expect;
	int status;
	enum weir_h1_body body;
	uint64_t cl;
};
#define OK(s, head, st, b, cl) { (s), sizeof(s) - 1, (head), 0, (st), (b), (cl) }
#define BAD(s) { (s), sizeof(s) - 1, false, 502, 0, 0, 0 }
#define MORE(s) { (s), sizeof(s) - 1, false, -2, 0, 0, 0 }
#define NONE WEIR_H1_BODY_NONE
#define LEN WEIR_H1_BODY_LENGTH
#define CHUNKED WEIR_H1_BODY_CHUNKED
#define CLOSE WEIR_H1_BODY_CLOSE
#define CL5 "Content-Length: 5\r\n"
#define TEC "Transfer-Encoding: chunked\r\n"

static const struct rcase cases[] = {
	OK("HTTP/1.1 200 OK\r\n" CL5 "\r\n", false, 200, LEN, 5),
	OK("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, 200, LEN, 0),
	OK("HTTP/1.1 200 OK\r\n" TEC "\r\n", false, 200, CHUNKED, 0),
	OK("HTTP/1.1 200 OK\r\n\r\n", false, 200, CLOSE, 0),
	OK("HTTP/1.0 200 OK\r\n" CL5 "\r\n", false, 200, LEN, 5),
	OK("HTTP/1.1 200 \r\n" CL5 "\r\n", false, 200, LEN, 5),
	OK("HTTP/1.1 200\r\n" CL5 "\r\n", false, 200, LEN, 5),
	OK("HTTP/1.1 404 Not \t Found \x80\xff\r\n" CL5 "\r\n", false, 404, LEN, 5),
	OK("HTTP/1.1 599 x\r\n" CL5 "\r\n", false, 599, LEN, 5),
	/* no body whatever the fields say: RSP-HEAD RSP-204 RSP-304 RSP-1XX */
	OK("HTTP/1.1 200 OK\r\n" CL5 "\r\n", true, 200, NONE, 0),
	OK("HTTP/1.1 200 OK\r\n" TEC "\r\n", true, 200, NONE, 0),
	OK("HTTP/1.1 200 OK\r\n\r\n", true, 200, NONE, 0),
	OK("HTTP/1.1 204 No Content\r\n" CL5 "\r\n", false, 204, NONE, 0),
	OK("HTTP/1.1 204 No Content\r\n" TEC "\r\n", false, 204, NONE, 0),
	OK("HTTP/1.1 304 Not Modified\r\n" CL5 "\r\n", false, 304, NONE, 0),
	OK("HTTP/1.1 304 Not Modified\r\n\r\n", false, 304, NONE, 0),
	OK("HTTP/1.1 100 Continue\r\n\r\n", false, 100, NONE, 0),
	OK("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", false, 101, NONE, 0),
	OK("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n" CL5 "\r\n", false, 103, NONE, 0),
	/* Transfer-Encoding: RSP-TE-UNKNOWN RSP-TE-DUP RSP-CLTE RSP-TE-HTTP10 */
	BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
	BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
	BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
	BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n" TEC "\r\n"),
	OK("HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED \r\n\r\n", false, 200, CHUNKED, 0),
	BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
	BAD("HTTP/1.1 200 OK\r\n" TEC TEC "\r\n"),
	BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;x=1\r\n\r\n"),
	BAD("HTTP/1.1 200 OK\r\nTransfer-Encoding: \"chunked\"\r\n\r\n"),
	BAD("HTTP/1.1 200 OK\r\n" CL5 TEC "\r\n"),
	BAD("HTTP/1.1 200 OK\r\n" TEC CL5 "\r\n"),
	BAD("HTTP/1.1 304 Not Modified\r\n" TEC CL5 "\r\n"),
	BAD("HTTP/1.0 200 OK\r\n" TEC "\r\n"),
	/* Content-Length: RSP-CL-LIST RSP-CL-SYNTAX */
	OK("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n" CL5 "\r\n", false, 200, LEN, 5),
	OK("HTTP/1.1 200 OK\r\nContent-Length: 9007199254740992\r\n\r\n", false, 200, LEN,
	   1ull << 53),
	BAD("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n"),
	BAD("HTTP/1.1 200 OK\r\n" CL5 "Content-Length: 6\r\n\r\n"),
	BAD("HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n"),
	BAD("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
	BAD("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n"),
	BAD("HTTP/1.1 200 OK\r\nContent-Length: 9007199254740993\r\n\r\n"),
	BAD("HTTP/1.1 304 Not Modified\r\nContent-Length: x\r\n\r\n"),
	/* status line: RSP-STATUS */
	BAD("HTTP/1.1 099 x\r\n\r\n"),
	BAD("HTTP/1.1 000 x\r\n\r\n"),
	BAD("HTTP/1.1 600 x\r\n\r\n"),
	BAD("HTTP/1.1 20 OK\r\n\r\n"),
	BAD("HTTP/1.1 2000 OK\r\n\r\n"),
	BAD("HTTP/1.1 2x0 OK\r\n\r\n"),
	BAD("HTTP/1.1  200 OK\r\n\r\n"),
	BAD("HTTP/1.1\t200 OK\r\n\r\n"),
	BAD("HTTP/1.2 200 OK\r\n\r\n"),
	BAD("HTTP/2.0 200 OK\r\n\r\n"),
	BAD("HTTP/2 200 OK\r\n\r\n"),
	BAD("http/1.1 200 OK\r\n\r\n"),
	BAD("ICY 200 OK\r\n\r\n"),
	BAD("\r\nHTTP/1.1 200 OK\r\n\r\n"),
	BAD("HTTP/1.1 200 OK\n\r\n"),
	BAD("HTTP/1.1 200\n\r\n"),
	BAD("HTTP/1.1 200 OK\r\r\n\r\n"),
	BAD("HTTP/1.1 200 O\x01K\r\n\r\n"),
	BAD("HTTP/1.1 200 O\x7fK\r\n\r\n"),
	BAD("HTTP/1.1 200 O\0K\r\n\r\n"),
	/* fields: RSP-SYNTAX */
	BAD("HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\n\r\n"),
	BAD("HTTP/1.1 200 OK\r\n X-A: b\r\n\r\n"),
	BAD("HTTP/1.1 200 OK\r\nX-A : b\r\n\r\n"),
	BAD("HTTP/1.1 200 OK\r\nX-A: b\n\r\n"),
	BAD("HTTP/1.1 200 OK\r\nX-A: b\r\n\n"),
	BAD("HTTP/1.1 200 OK\r\nX-A: b\x01\r\n\r\n"),
	BAD("HTTP/1.1 200 OK\r\n: b\r\n\r\n"),
	BAD("HTTP/1.1 200 OK\r\nX-A\r\n\r\n"),
	BAD("HTTP/1.1 200 OK\r\nConnection: content-length\r\n" CL5 "\r\n"),
	BAD("HTTP/1.1 200 OK\r\nConnection: Transfer-Encoding\r\n\r\n"),
	BAD("HTTP/1.1 200 OK\r\nConnection: a b\r\n\r\n"),
	/* fields a request would refuse are fine in a response */
	OK("HTTP/1.1 200 OK\r\nHost: a b\r\nHost: c\r\nExpect: foo\r\n" CL5 "\r\n", false, 200,
	   LEN, 5),
	OK("HTTP/1.1 200 OK\r\nConnection: Host\r\nHost: x\r\n" CL5 "\r\n", false, 200, LEN, 5),
	/* need more */
	MORE(""),
	MORE("H"),
	MORE("HTTP/1.1"),
	MORE("HTTP/1.1 20"),
	MORE("HTTP/1.1 200"),
	MORE("HTTP/1.1 200 OK"),
	MORE("HTTP/1.1 200 OK\r"),
	MORE("HTTP/1.1 200 OK\r\n"),
	MORE("HTTP/1.1 200 OK\r\n" CL5),
	MORE("HTTP/1.1 200 OK\r\n" CL5 "\r"),
};

static void check_prefixes(const struct rcase *c, const char *p, int ret)
{
	for (size_t n = 0; n < c->len; n++) {
		int r = weir_h1_parse_response(p, n, c->is_head, &res);

		if (r != WEIR_H1_NEED_MORE && r != ret) {
			fprintf(stderr, "prefix %zu of \"%s\": got %d, whole gives %d\n", n,
				show(p, c->len), r, ret);
			failures++;
			return;
		}
	}
}

static void run_table(void)
{
	for (size_t i = 0; i < WEIR_ARRAY_SIZE(cases); i++) {
		const struct rcase *c = &cases[i];
		char *p = malloc(c->len + 1);
		int ret;
		bool ok;

		memcpy(p, c->raw, c->len);
		ret = weir_h1_parse_response(p, c->len, c->is_head, &res);
		if (c->expect == 0)
			ok = ret == (int)c->len && res.status == c->status && res.body == c->body &&
			     (c->body != LEN || res.content_length == c->cl);
		else if (c->expect == -2)
			ok = ret == WEIR_H1_NEED_MORE;
		else
			ok = ret == WEIR_H1_ERROR && res.error == 502 && res.reason != NULL;
		if (!ok) {
			fprintf(stderr,
				"case %zu \"%s\": got %d (status %d body %d cl %llu error %d %s), "
				"want %d (status %d body %d cl %llu)\n",
				i, show(c->raw, c->len), ret, res.status, res.body,
				(unsigned long long)res.content_length, res.error,
				res.reason ? res.reason : "-", c->expect, c->status, c->body,
				(unsigned long long)c->cl);
			failures++;
		}
		check_prefixes(c, p, ret);
		free(p);
	}
}

#define PARSE(s, head) weir_h1_parse_response((s), sizeof(s) - 1, (head), &res)

static void test_fields(void)
{
	static const char s[] =
		"HTTP/1.1 200 Fine Thanks\r\n"
		"Server: origin\r\n"
		"Content-Length: 3\r\n"
		"Connection: keep-alive, X-Hop\r\n"
		"Keep-Alive: timeout=5\r\n"
		"X-Hop: 1\r\n"
		"Via: 1.1 cache\r\n"
		"Proxy-Authenticate: Basic\r\n"
		"Trailer: X-T\r\n"
		"Set-Cookie:  a=b \r\n"
		"\r\n"
		"abc";

	CHECK_INT(PARSE(s, false), sizeof(s) - 1 - 3, "response head length");
	CHECK_INT(res.minor_version, 1, "minor");
	CHECK_INT(res.status, 200, "status");
	CHECK_SLICE(res.reason_phrase, "Fine Thanks");
	CHECK_INT(res.body, LEN, "body");
	CHECK_INT(res.content_length, 3, "content_length");
	CHECK_INT(res.flags, WEIR_H1_F_CONN_KEEPALIVE, "flags");
	CHECK_INT(res.nheaders, 9, "nheaders");
	CHECK_SLICE(res.headers[0].name, "Server");
	CHECK_SLICE(res.headers[0].value, "origin");
	CHECK_SLICE(res.headers[8].value, "a=b");
	CHECK_INT(res.kind[0], WEIR_H_OTHER, "Server");
	CHECK_INT(res.kind[1], WEIR_H_CONTENT_LENGTH, "CL");
	CHECK_INT(res.kind[2], WEIR_H_CONNECTION, "Connection");
	CHECK_INT(res.kind[3], WEIR_H_HOP, "Keep-Alive");
	CHECK_INT(res.kind[4], WEIR_H_HOP, "X-Hop (named in Connection)");
	CHECK_INT(res.kind[5], WEIR_H_VIA, "Via");
	CHECK_INT(res.kind[6], WEIR_H_HOP, "Proxy-Authenticate");
	CHECK_INT(res.kind[7], WEIR_H_HOP, "Trailer");
	CHECK_INT(res.kind[8], WEIR_H_OTHER, "Set-Cookie");
	CHECK(res.reason_phrase.ptr == s + 13);

	CHECK(PARSE("HTTP/1.1 204\r\n\r\n", false) > 0);
	CHECK_SLICE(res.reason_phrase, "");
	CHECK(PARSE("HTTP/1.1 204 \r\n\r\n", false) > 0);
	CHECK_SLICE(res.reason_phrase, "");

	CHECK(PARSE("HTTP/1.1 200 OK\r\nConnection: close\r\n" CL5 "\r\n", false) > 0);
	CHECK_INT(res.flags, WEIR_H1_F_CONN_CLOSE, "Connection: close");
	CHECK(PARSE("HTTP/1.0 200 OK\r\n" CL5 "\r\n", false) > 0);
	CHECK_INT(res.flags, WEIR_H1_F_CONN_CLOSE, "HTTP/1.0 closes");
	CHECK_INT(res.minor_version, 0, "minor 0");
	CHECK(PARSE("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n" CL5 "\r\n", false) > 0);
	CHECK_INT(res.flags, WEIR_H1_F_CONN_KEEPALIVE, "HTTP/1.0 keep-alive");
	CHECK(PARSE("HTTP/1.1 101 Switching\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n", false) > 0);
	CHECK_INT(res.flags, WEIR_H1_F_UPGRADE, "Upgrade flag");
	CHECK_INT(res.kind[0], WEIR_H_HOP, "Upgrade kind");
	CHECK(PARSE("HTTP/1.1 200 OK\r\nHost: h\r\nExpect: e\r\nX-Forwarded-For: a\r\n"
		    "X-Forwarded-Proto: b\r\n\r\n", false) > 0);
	CHECK_INT(res.kind[0], WEIR_H_HOST, "Host");
	CHECK_INT(res.kind[1], WEIR_H_EXPECT, "Expect");
	CHECK_INT(res.kind[2], WEIR_H_X_FORWARDED_FOR, "XFF");
	CHECK_INT(res.kind[3], WEIR_H_X_FORWARDED_PROTO, "XFP");
	CHECK_INT(res.flags, 0, "no Expect flag on responses");
}

/* 1xx: the caller parses again after the interim response. */
static void test_interim(void)
{
	static const char s[] = "HTTP/1.1 100 Continue\r\n\r\n"
				"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
				"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	size_t off = 0;
	int ret;

	ret = weir_h1_parse_response(s, sizeof(s) - 1, false, &res);
	CHECK_INT(ret, 25, "100 length");
	CHECK_INT(res.status, 100, "100");
	CHECK_INT(res.body, NONE, "100 body");
	off += (size_t)ret;
	ret = weir_h1_parse_response(s + off, sizeof(s) - 1 - off, false, &res);
	CHECK_INT(res.status, 103, "103");
	CHECK_INT(res.body, NONE, "103 body");
	CHECK_SLICE(res.headers[0].value, "</s.css>");
	off += (size_t)ret;
	ret = weir_h1_parse_response(s + off, sizeof(s) - 1 - off, false, &res);
	CHECK_INT(res.status, 200, "final");
	CHECK_INT(res.body, LEN, "final body");
	CHECK_INT(res.content_length, 2, "final CL");
	CHECK_INT(off + (size_t)ret + 2, sizeof(s) - 1, "all consumed but the body");
}

static char *repeat(const char *head, const char *unit, size_t n, const char *tail, size_t *len)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
	char *p = malloc(hl + ul * n + tl), *o = p;

	memcpy(o, head, hl);
	o += hl;
	for (size_t i = 0; i < n; i++, o += ul)
		memcpy(o, unit, ul);
	memcpy(o, tail, tl);
	*len = hl + ul * n + tl;
	return p;
}

static void test_limits(void)
{
	size_t len;
	char *p;

	/* "HTTP/1.1 200 " (13) + reason = 8192 bytes: fine; one more: 502 */
	p = repeat("HTTP/1.1 200 ", "r", WEIR_H1_MAX_REQUEST_LINE - 13, "\r\n\r\n", &len);
	CHECK_INT(weir_h1_parse_response(p, len, false, &res), len, "8192-byte status line");
	free(p);
	p = repeat("HTTP/1.1 200 ", "r", WEIR_H1_MAX_REQUEST_LINE - 12, "\r\n\r\n", &len);
	CHECK_INT(weir_h1_parse_response(p, len, false, &res), WEIR_H1_ERROR, "8193-byte status line");
	CHECK_INT(res.error, 502, "long status line");
	CHECK_INT(weir_h1_parse_response(p, len - 3, false, &res), WEIR_H1_ERROR,
		  "incomplete long status line");
	free(p);
	/* RSP-LIMITS: "X: " + value + CRLF + CRLF = 16384 fine; one more: 502 */
	p = repeat("HTTP/1.1 200 OK\r\nX: ", "v", WEIR_H1_MAX_HEADER_BYTES - 7, "\r\n\r\n", &len);
	CHECK_INT(weir_h1_parse_response(p, len, false, &res), len, "16384-byte section");
	free(p);
	p = repeat("HTTP/1.1 200 OK\r\nX: ", "v", WEIR_H1_MAX_HEADER_BYTES - 6, "\r\n\r\n", &len);
	CHECK_INT(weir_h1_parse_response(p, len, false, &res), WEIR_H1_ERROR, "16385-byte section");
	CHECK_INT(res.error, 502, "big section");
	free(p);
	p = repeat("HTTP/1.1 200 OK\r\n", "X: y\r\n", WEIR_H1_MAX_HEADERS, "\r\n", &len);
	CHECK_INT(weir_h1_parse_response(p, len, false, &res), len, "100 fields");
	CHECK_INT(res.nheaders, WEIR_H1_MAX_HEADERS, "nheaders");
	free(p);
	p = repeat("HTTP/1.1 200 OK\r\n", "X: y\r\n", WEIR_H1_MAX_HEADERS + 1, "\r\n", &len);
	CHECK_INT(weir_h1_parse_response(p, len, false, &res), WEIR_H1_ERROR, "101 fields");
	CHECK_INT(res.error, 502, "101 fields");
	free(p);
}

int main(void)
{
	run_table();
	test_fields();
	test_interim();
	test_limits();
	return report("h1-response");
}
