/* HTTP/1 request parser: every rule of include/weir/h1.h, with the status
 * weir answers; slices, kinds, flags and framing of valid requests; limits on
 * complete and incomplete input; prefix consistency of every case. */
#include <stdlib.h>

#include "check.h"
#include "weir/h1.h"

static struct weir_h1_request req;

/* expect: 0 = complete (return value == whole input), -2 = need more, else
 * the HTTP status of the error */
struct rcase {
	const char *raw;
	size_t len;
	int expect;
};
#define R(s, e) { (s), sizeof(s) - 1, (e) }
#define H "Host: a\r\n"

static const struct rcase cases[] = {
	/* valid request lines: REQ-METHOD REQ-TARGET-ORIGIN REQ-TARGET-ABSOLUTE
	 * REQ-TARGET-ASTERISK REQ-LEADING-CRLF */
	R("GET / HTTP/1.1\r\n" H "\r\n", 0),
	R("\r\nGET / HTTP/1.1\r\n" H "\r\n", 0),
	R("GET / HTTP/1.0\r\n\r\n", 0),
	R("get / HTTP/1.1\r\n" H "\r\n", 0),
	R("PURGE /x HTTP/1.1\r\n" H "\r\n", 0),
	R("M-SEARCH! /x HTTP/1.1\r\n" H "\r\n", 0),
	R("GET /a/b?c=d&e=%20 HTTP/1.1\r\n" H "\r\n", 0),
	R("GET /\"<>{}|\\^` HTTP/1.1\r\n" H "\r\n", 0),
	R("OPTIONS * HTTP/1.1\r\n" H "\r\n", 0),
	R("GET http://a/ HTTP/1.1\r\n" H "\r\n", 0),
	R("GET HtTpS://a:443/x?y HTTP/1.1\r\n" H "\r\n", 0),
	R("GET http://a HTTP/1.1\r\n" H "\r\n", 0),
	R("GET http://[::1]:80/ HTTP/1.1\r\n" H "\r\n", 0),
	/* need more */
	R("", -2),
	R("\r", -2),
	R("\r\n", -2),
	R("GET", -2),
	R("GET / HTTP/1.1", -2),
	R("GET / HTTP/1.1\r", -2),
	R("GET / HTTP/1.1\r\n", -2),
	R("GET / HTTP/1.1\r\n" H, -2),
	R("GET / HTTP/1.1\r\n" H "\r", -2),
	R("GET / HTTP/1.1\r\nX-A: b", -2),
	/* request line syntax: REQ-LEADING-CRLF REQ-LINE-SP REQ-METHOD
	 * REQ-TARGET-CHARS REQ-LINE-LF REQ-LINE-CR REQ-VERSION */
	R("\r\n\r\nGET / HTTP/1.1\r\n" H "\r\n", 400),
	R("\nGET / HTTP/1.1\r\n" H "\r\n", 400),
	R("\rGET / HTTP/1.1\r\n" H "\r\n", 400),
	R(" GET / HTTP/1.1\r\n" H "\r\n", 400),
	R("GET  / HTTP/1.1\r\n" H "\r\n", 400),
	R("GET /  HTTP/1.1\r\n" H "\r\n", 400),
	R("GET / HTTP/1.1 \r\n" H "\r\n", 400),
	R("GET\t/ HTTP/1.1\r\n" H "\r\n", 400),
	R("G(T / HTTP/1.1\r\n" H "\r\n", 400),
	R("G\x80T / HTTP/1.1\r\n" H "\r\n", 400),
	R("GET /\x7f HTTP/1.1\r\n" H "\r\n", 400),
	R("GET /\x80 HTTP/1.1\r\n" H "\r\n", 400),
	R("GET /\x01 HTTP/1.1\r\n" H "\r\n", 400),
	R("GET /\0 HTTP/1.1\r\n" H "\r\n", 400),
	R("GET /\t HTTP/1.1\r\n" H "\r\n", 400),
	R("GET / HTTP/1.1\n" H "\r\n", 400),
	R("GET / HTTP/1.1\r\r\n" H "\r\n", 400),
	R("GET / HTTP/1.1\rX", 400),
	R("GET / http/1.1\r\n" H "\r\n", 400),
	R("GET / HTTP/1.10\r\n" H "\r\n", 400),
	R("GET / HTTP/11\r\n" H "\r\n", 400),
	R("GET / HTTP/1.x\r\n" H "\r\n", 400),
	R("GET / HTTP/1\r\n" H "\r\n", 400),
	R("GET / HTTP/\r\n", 400),
	R("GET /\r\n\r\n", 400),
	R("GET\r\n\r\n", 400),
	R("/ HTTP/1.1\r\n" H "\r\n", 400),
	R("GET / HTTP/2.0\r\n" H "\r\n", 505),
	R("GET / HTTP/1.2\r\n" H "\r\n", 505),
	R("GET / HTTP/0.9\r\n" H "\r\n", 505),
	R("GET / HTTP/3.1\r\n" H "\r\n", 505),
	/* request-target forms: REQ-TARGET-ASTERISK REQ-TARGET-AUTHORITY
	 * REQ-TARGET-ABSOLUTE-BAD REQ-TARGET-FRAGMENT REQ-CONNECT */
	R("GET * HTTP/1.1\r\n" H "\r\n", 400),
	R("GET ** HTTP/1.1\r\n" H "\r\n", 400),
	R("GET a HTTP/1.1\r\n" H "\r\n", 400),
	R("GET example.com:80 HTTP/1.1\r\n" H "\r\n", 400),
	R("GET ftp://a/ HTTP/1.1\r\n" H "\r\n", 400),
	R("GET http:/a/ HTTP/1.1\r\n" H "\r\n", 400),
	R("GET http:///x HTTP/1.1\r\n" H "\r\n", 400),
	R("GET http://u@a/ HTTP/1.1\r\n" H "\r\n", 400),
	R("GET http://a:x/ HTTP/1.1\r\n" H "\r\n", 400),
	R("GET http://a?x HTTP/1.1\r\n" H "\r\n", 400),
	R("GET http://a#x HTTP/1.1\r\n" H "\r\n", 400),
	R("GET /a#b HTTP/1.1\r\n" H "\r\n", 400),
	R("GET /a?b=c#/../d HTTP/1.1\r\n" H "\r\n", 400),
	R("GET http://a/b#c HTTP/1.1\r\n" H "\r\n", 400),
	R("GET # HTTP/1.1\r\n" H "\r\n", 400),
	R("CONNECT a:443 HTTP/1.1\r\n" H "\r\n", 501),
	R("CONNECT / HTTP/1.1\r\n" H "\r\n", 501),
	/* field syntax: REQ-WS-COLON REQ-WS-FIRST REQ-OBSFOLD REQ-LINE-LF REQ-LINE-CR
	 * REQ-VALUE-CTL REQ-NAME-TOKEN REQ-VALUE-OWS REQ-VALUE-OBSTEXT */
	R("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\n" H "X-A: b\r\n c\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\n" H "X-A: b\r\n\tc\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\n" H "X-A: b\n\r\n", 400),
	R("GET / HTTP/1.1\r\nHost: a\n\n", 400),
	R("GET / HTTP/1.1\r\n" H "\n", 400),
	R("GET / HTTP/1.1\r\n" H "\rX", 400),
	R("GET / HTTP/1.1\r\n" H "X-A: b\rc\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\n" H "X-A: b\0c\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\n" H "X-A: b\x01\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\n" H "X-A: b\x7f\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\n" H "X-A: b\x1f\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\n" H ": b\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\n" H "X@A: b\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\n" H "X\x80: b\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\n" H "X-A\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\n" H "X-A b\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\n" H "X-A:\r\n\r\n", 0),
	R("GET / HTTP/1.1\r\n" H "X-A: \t \r\n\r\n", 0),
	R("GET / HTTP/1.1\r\n" H "X-A: \x80\xff\tb c\r\n\r\n", 0),
	R("GET / HTTP/1.1\r\n" H "!#$%&'*+-.^_`|~09azAZ: x\r\n\r\n", 0),
	/* Host: REQ-HOST-MISSING REQ-HOST-DUP REQ-HOST-ABSOLUTE REQ-HOST-INVALID
	 * REQ-HOST-EMPTY */
	R("GET / HTTP/1.1\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\nX-Host: a\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\n" H H "\r\n", 400),
	R("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400),
	R("GET / HTTP/1.0\r\n" H H "\r\n", 400),
	R("GET http://a/ HTTP/1.1\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\nHost:\r\n\r\n", 0),
	R("GET / HTTP/1.1\r\nHost: \t \r\n\r\n", 0),
	R("GET / HTTP/1.1\r\nHost:\r\nHost: a\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\nHost: a,b c\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\nHost: a:\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\nHost: :80\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\nHost: a:8a\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\nHost: a:80:80\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\nHost: [zz]\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\nHost: a%2\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\nHost: a\x80\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\nHost: a:65535\r\n\r\n", 0),
	R("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", 0),
	R("GET / HTTP/1.1\r\nHost: [2001:db8::1.2.3.4]\r\n\r\n", 0),
	R("GET / HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n", 0),
	R("GET / HTTP/1.1\r\nHost: a%2e-b_c~d!$&'()*+,;=\r\n\r\n", 0),
	/* Content-Length: REQ-CL-LIST REQ-CL-SIGN REQ-CL-WS REQ-CL-SYNTAX
	 * REQ-CL-OVERFLOW REQ-CL-OWS REQ-CL-NAME */
	R("POST / HTTP/1.1\r\n" H "Content-Length: 5, 6\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Content-Length: -5\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Content-Length: +5\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Content-Length: abc\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Content-Length: 5 5\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Content-Length: 5,\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Content-Length: ,5\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Content-Length:\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Content-Length: 0x5\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Content-Length: 5.0\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Content-Length: 9007199254740993\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Content-Length: 99999999999999999999999\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", 0),
	R("POST / HTTP/1.1\r\n" H "Content-Length: 5 ,\t5\r\n\r\n", 0),
	R("POST / HTTP/1.1\r\n" H "Content_Length: 5\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "CONTENT_length: 5\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Content_Lengthx: 5\r\n\r\n", 0),
	R("POST / HTTP/1.1\r\n" H "Content-Lengt_: 5\r\n\r\n", 0),
	R("POST / HTTP/1.1\r\n" H "Content.Length: 5\r\n\r\n", 0),
	/* Transfer-Encoding: REQ-CLTE REQ-TE-DUP REQ-TE-NOTLAST REQ-TE-JUNK
	 * REQ-TE-HTTP10 REQ-TE-UNKNOWN REQ-TE-CASE REQ-TE-OWS REQ-TE-NAME */
	R("POST / HTTP/1.1\r\n" H "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, chunked\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Transfer-Encoding: identity\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked, gzip\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Transfer-Encoding:\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked;q=1\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Transfer-Encoding: \"chunked\"\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunk ed\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Transfer-Encoding: chunked\x0b\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Transfer-Encoding: xchunked\r\n\r\n", 400),
	R("POST / HTTP/1.0\r\n" H "Transfer-Encoding: chunked\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip, chunked\r\n\r\n", 501),
	R("POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip;level=1, chunked\r\n\r\n", 501),
	R("POST / HTTP/1.1\r\n" H "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
	R("POST / HTTP/1.1\r\n" H "Transfer-Encoding: Chunked\r\n\r\n", 0),
	R("POST / HTTP/1.1\r\n" H "Transfer-Encoding: \t chunked \t\r\n\r\n", 0),
	R("POST / HTTP/1.1\r\n" H "Transfer-Encoding: , chunked,\r\n\r\n", 0),
	R("POST / HTTP/1.1\r\n" H "Transfer-Encoding:\r\nTransfer-Encoding: chunked\r\n\r\n", 0),
	R("POST / HTTP/1.1\r\n" H "Transfer_Encoding: chunked\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "transfer_encoding: chunked\r\n\r\n", 400),
	R("POST / HTTP/1.1\r\n" H "Transfer_Encodings: chunked\r\n\r\n", 0),
	/* Expect: REQ-EXPECT-OTHER */
	R("POST / HTTP/1.1\r\n" H "Expect: 100-continue\r\n\r\n", 0),
	R("POST / HTTP/1.1\r\n" H "Expect: 100-Continue\r\n\r\n", 0),
	R("POST / HTTP/1.1\r\n" H "Expect: foo\r\n\r\n", 417),
	R("POST / HTTP/1.1\r\n" H "Expect:\r\n\r\n", 417),
	R("POST / HTTP/1.1\r\n" H "Expect: 100-continue, foo\r\n\r\n", 417),
	R("POST / HTTP/1.1\r\n" H "Expect: 100-continue;x=y\r\n\r\n", 417),
	R("POST / HTTP/1.1\r\n" H "Expect: 200-ok\r\n\r\n", 417),
	/* Connection: REQ-CONN-FRAMING */
	R("GET / HTTP/1.1\r\n" H "Connection: content-length\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\n" H "Connection: close, Transfer-Encoding\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\n" H "Connection: HOST\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\n" H "Connection: a b\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\n" H "Connection: \"close\"\r\n\r\n", 400),
	R("GET / HTTP/1.1\r\n" H "Connection:\r\n\r\n", 0),
	R("GET / HTTP/1.1\r\n" H "Connection: ,, close ,\r\n\r\n", 0),
};

static bool kind_ok(int ret, int err, const struct rcase *c)
{
	if (c->expect == 0)
		return ret == (int)c->len;
	if (c->expect == -2)
		return ret == WEIR_H1_NEED_MORE;
	return ret == WEIR_H1_ERROR && err == c->expect;
}

/* Every prefix of the input is "need more" or the same verdict. */
static void check_prefixes(const char *p, size_t len, int ret, int err)
{
	for (size_t n = 0; n < len; n++) {
		int r = weir_h1_parse_request(p, n, &req);

		if (r == WEIR_H1_NEED_MORE)
			continue;
		if (r != ret || (r == WEIR_H1_ERROR && req.error != err)) {
			fprintf(stderr, "prefix %zu of \"%s\": got %d/%d, whole gives %d/%d\n", n,
				show(p, len), r, req.error, ret, err);
			failures++;
			return;
		}
	}
}

static void run_table(void)
{
	for (size_t i = 0; i < WEIR_ARRAY_SIZE(cases); i++) {
		const struct rcase *c = &cases[i];
		/* a heap copy of the exact length, so ASan sees any overread */
		char *p = malloc(c->len + 1);
		int ret, err;

		memcpy(p, c->raw, c->len);
		ret = weir_h1_parse_request(p, c->len, &req);
		err = req.error;
		if (!kind_ok(ret, err, c)) {
			fprintf(stderr, "case %zu \"%s\": got %d (error %d, %s), want %d\n", i,
				show(c->raw, c->len), ret, err, req.reason ? req.reason : "-",
				c->expect);
			failures++;
		}
		if (ret == WEIR_H1_ERROR)
			CHECK(req.reason != NULL && req.reason[0] != 0);
		check_prefixes(p, c->len, ret, err);
		free(p);
	}
}

#define PARSE(s) weir_h1_parse_request((s), sizeof(s) - 1, &req)

static size_t find_header(const char *name)
{
	for (size_t i = 0; i < req.nheaders; i++)
		if (req.headers[i].name.len == strlen(name) &&
		    memcmp(req.headers[i].name.ptr, name, strlen(name)) == 0)
			return i;
	return (size_t)-1;
}

static int kind_of(const char *name)
{
	size_t i = find_header(name);

	return i == (size_t)-1 ? -1 : req.kind[i];
}

static void test_browser_get(void)
{
	static const char s[] =
		"GET /wiki/Main_Page?action=view HTTP/1.1\r\n"
		"Host: en.wikipedia.org\r\n"
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
		"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
		"Accept-Language: en-US,en;q=0.5\r\n"
		"Accept-Encoding: gzip, deflate, br\r\n"
		"Connection: keep-alive\r\n"
		"Cookie: a=b; c=d\r\n"
		"Upgrade-Insecure-Requests: 1\r\n"
		"X-Empty:   \r\n"
		"X-Trim: \t v a l \t\r\n"
		"\r\n"
		"BODY";
	int ret = PARSE(s);

	CHECK_INT(ret, sizeof(s) - 1 - 4, "browser GET header length");
	CHECK_SLICE(req.method, "GET");
	CHECK_INT(req.method_id, WEIR_M_GET, "method_id");
	CHECK_SLICE(req.target, "/wiki/Main_Page?action=view");
	CHECK_SLICE(req.path, "/wiki/Main_Page?action=view");
	CHECK_SLICE(req.host, "en.wikipedia.org");
	CHECK_INT(req.minor_version, 1, "minor");
	CHECK_INT(req.body, WEIR_H1_BODY_NONE, "body");
	CHECK_INT(req.flags, WEIR_H1_F_CONN_KEEPALIVE, "flags");
	CHECK_INT(req.nheaders, 10, "nheaders");
	CHECK_SLICE(req.headers[0].name, "Host");
	CHECK_SLICE(req.headers[1].value,
		    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0");
	CHECK_SLICE(req.headers[8].name, "X-Empty");
	CHECK_SLICE(req.headers[8].value, "");
	CHECK_SLICE(req.headers[9].value, "v a l");
	CHECK_INT(req.kind[0], WEIR_H_HOST, "Host kind");
	CHECK_INT(req.kind[1], WEIR_H_OTHER, "User-Agent kind");
	CHECK_INT(req.kind[5], WEIR_H_CONNECTION, "Connection kind");
	CHECK_INT(req.kind[7], WEIR_H_OTHER, "Upgrade-Insecure-Requests kind");
	/* the slices point into the input */
	CHECK(req.method.ptr == s);
	CHECK(req.headers[0].value.ptr == s + 48);
	/* a longer buffer gives the same answer (stateless re-parse) */
	CHECK_INT(weir_h1_parse_request(s, sizeof(s) - 1, &req), ret, "re-parse");
	CHECK_INT(weir_h1_parse_request(s, (size_t)ret, &req), ret, "exact length");
	CHECK_INT(weir_h1_parse_request(s, (size_t)ret - 1, &req), WEIR_H1_NEED_MORE, "one short");
}

static void test_methods(void)
{
	static const struct {
		const char *name;
		enum weir_h1_method id;
	} m[] = {
		{ "GET", WEIR_M_GET },         { "HEAD", WEIR_M_HEAD },
		{ "POST", WEIR_M_POST },       { "PUT", WEIR_M_PUT },
		{ "DELETE", WEIR_M_DELETE },   { "OPTIONS", WEIR_M_OPTIONS },
		{ "PATCH", WEIR_M_PATCH },     { "TRACE", WEIR_M_TRACE },
		{ "get", WEIR_M_OTHER },       { "Get", WEIR_M_OTHER },
		{ "GETS", WEIR_M_OTHER },      { "PROPFIND", WEIR_M_OTHER },
		{ "POS", WEIR_M_OTHER },       { "OPTION", WEIR_M_OTHER },
	};
	char buf[128];

	for (size_t i = 0; i < WEIR_ARRAY_SIZE(m); i++) {
		int n = snprintf(buf, sizeof(buf), "%s / HTTP/1.1\r\nHost: a\r\n\r\n", m[i].name);

		CHECK_INT(weir_h1_parse_request(buf, (size_t)n, &req), n, m[i].name);
		CHECK_INT(req.method_id, m[i].id, m[i].name);
		CHECK_SLICE(req.method, m[i].name);
		if (m[i].id != WEIR_M_OTHER)
			CHECK(strcmp(weir_h1_method_name(m[i].id), m[i].name) == 0);
	}
	CHECK(strcmp(weir_h1_method_name(WEIR_M_OTHER), "") == 0);
	CHECK(strcmp(weir_h1_method_name(WEIR_M_CONNECT), "CONNECT") == 0);
	CHECK(strcmp(weir_h1_method_name((enum weir_h1_method)99), "") == 0);
}

static void test_forms(void)
{
	CHECK_INT(PARSE("\r\nGET /x HTTP/1.0\r\n\r\n"), 21, "leading CRLF counted");
	CHECK_SLICE(req.path, "/x");
	CHECK(req.host.len == 0);
	CHECK_INT(req.minor_version, 0, "minor");
	CHECK_INT(req.flags, WEIR_H1_F_CONN_CLOSE, "HTTP/1.0 closes");

	CHECK(PARSE("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: h:8080\r\n\r\n") > 0);
	CHECK_INT(req.flags, WEIR_H1_F_CONN_KEEPALIVE, "HTTP/1.0 keep-alive");
	CHECK_SLICE(req.host, "h:8080");

	CHECK(PARSE("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n") > 0);
	CHECK_SLICE(req.path, "*");
	CHECK_SLICE(req.target, "*");
	CHECK_INT(req.method_id, WEIR_M_OPTIONS, "OPTIONS");

	CHECK(PARSE("GET HTTP://Example.COM:8080/p/q?r=s HTTP/1.1\r\nHost: other\r\n\r\n") > 0);
	CHECK_SLICE(req.host, "Example.COM:8080");
	CHECK_SLICE(req.path, "/p/q?r=s");
	CHECK_SLICE(req.target, "HTTP://Example.COM:8080/p/q?r=s");
	CHECK(req.flags & WEIR_H1_F_ABSOLUTE_FORM);
	CHECK_INT(req.kind[0], WEIR_H_HOST, "Host kind in absolute-form");

	CHECK(PARSE("GET https://[::1] HTTP/1.1\r\nHost: x\r\n\r\n") > 0);
	CHECK_SLICE(req.host, "[::1]");
	CHECK_SLICE(req.path, "/");

	/* REQ-HOST-EMPTY: a target URI without an authority */
	CHECK(PARSE("GET /e HTTP/1.1\r\nHost:\r\n\r\n") > 0);
	CHECK(req.host.ptr != NULL && req.host.len == 0);
	CHECK_INT(req.kind[0], WEIR_H_HOST, "empty Host kind");

	CHECK(PARSE("GET http://a HTTP/1.0\r\n\r\n") > 0);
	CHECK_SLICE(req.host, "a");
	CHECK_SLICE(req.path, "/");
	CHECK_INT(req.flags, WEIR_H1_F_ABSOLUTE_FORM | WEIR_H1_F_CONN_CLOSE, "flags");
}

static void test_framing(void)
{
	CHECK(PARSE("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n") > 0);
	CHECK_INT(req.body, WEIR_H1_BODY_LENGTH, "CL body");
	CHECK_INT(req.content_length, 42, "CL");
	CHECK_INT(req.kind[1], WEIR_H_CONTENT_LENGTH, "CL kind");

	CHECK(PARSE("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n") > 0);
	CHECK_INT(req.body, WEIR_H1_BODY_NONE, "CL 0 body");
	CHECK_INT(req.content_length, 0, "CL 0");
	CHECK_INT(req.kind[1], WEIR_H_CONTENT_LENGTH, "CL 0 kind");

	CHECK(PARSE("POST / HTTP/1.1\r\nHost: a\r\ncontent-length: 7, 7,7\r\n"
		    "Content-Length: 0007\r\n\r\n") > 0);
	CHECK_INT(req.body, WEIR_H1_BODY_LENGTH, "CL list body");
	CHECK_INT(req.content_length, 7, "CL list");

	CHECK(PARSE("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9007199254740992\r\n\r\n") > 0);
	CHECK(req.content_length == 1ull << 53);

	/* REQ-CL-ZEROS */
	CHECK(PARSE("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 000000000000000000000000005\r\n\r\n") > 0);
	CHECK_INT(req.content_length, 5, "leading zeros");

	CHECK(PARSE("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n") > 0);
	CHECK_INT(req.body, WEIR_H1_BODY_CHUNKED, "chunked body");
	CHECK_INT(req.kind[1], WEIR_H_TRANSFER_ENCODING, "TE kind");

	CHECK(PARSE("GET / HTTP/1.1\r\nHost: a\r\n\r\n") > 0);
	CHECK_INT(req.body, WEIR_H1_BODY_NONE, "no body");
}

static void test_kinds_and_flags(void)
{
	static const char s[] =
		"POST / HTTP/1.1\r\n"
		"Keep-Alive: 300\r\n"
		"TE: trailers\r\n"
		"Trailer: X\r\n"
		"Upgrade: websocket\r\n"
		"Proxy-Connection: keep-alive\r\n"
		"Proxy-Authorization: Basic x\r\n"
		"X-Forwarded-For: 1.2.3.4\r\n"
		"X-Forwarded-Proto: https\r\n"
		"Via: 1.1 a\r\n"
		"Expect: 100-continue\r\n"
		"X-Dropped-Before: 1\r\n"
		"connection: x-dropped-before, Upgrade\r\n"
		"CONNECTION: X-DROPPED-AFTER,close\r\n"
		"X-Dropped-After: 2\r\n"
		"x-dropped-after: 3\r\n"
		"X-Kept: 4\r\n"
		"Host: a\r\n"
		"Content-Length: 3\r\n"
		"Proxy: x\r\n"
		"Proxy-: x\r\n"
		"Proxied: x\r\n"
		"\r\n";

	CHECK_INT(PARSE(s), sizeof(s) - 1, "kinds request");
	CHECK_INT(kind_of("Keep-Alive"), WEIR_H_HOP, "Keep-Alive");
	CHECK_INT(kind_of("TE"), WEIR_H_HOP, "TE");
	CHECK_INT(kind_of("Trailer"), WEIR_H_HOP, "Trailer");
	CHECK_INT(kind_of("Upgrade"), WEIR_H_HOP, "Upgrade");
	CHECK_INT(kind_of("Proxy-Connection"), WEIR_H_HOP, "Proxy-Connection");
	CHECK_INT(kind_of("Proxy-Authorization"), WEIR_H_HOP, "Proxy-Authorization");
	CHECK_INT(kind_of("X-Forwarded-For"), WEIR_H_X_FORWARDED_FOR, "XFF");
	CHECK_INT(kind_of("X-Forwarded-Proto"), WEIR_H_X_FORWARDED_PROTO, "XFP");
	CHECK_INT(kind_of("Via"), WEIR_H_VIA, "Via");
	CHECK_INT(kind_of("Expect"), WEIR_H_EXPECT, "Expect");
	CHECK_INT(kind_of("X-Dropped-Before"), WEIR_H_HOP, "listed before Connection");
	CHECK_INT(kind_of("connection"), WEIR_H_CONNECTION, "connection");
	CHECK_INT(kind_of("CONNECTION"), WEIR_H_CONNECTION, "CONNECTION");
	CHECK_INT(kind_of("X-Dropped-After"), WEIR_H_HOP, "listed after Connection");
	CHECK_INT(kind_of("x-dropped-after"), WEIR_H_HOP, "listed, other case");
	CHECK_INT(kind_of("X-Kept"), WEIR_H_OTHER, "X-Kept");
	CHECK_INT(kind_of("Host"), WEIR_H_HOST, "Host");
	CHECK_INT(kind_of("Content-Length"), WEIR_H_CONTENT_LENGTH, "CL");
	CHECK_INT(kind_of("Proxy"), WEIR_H_OTHER, "Proxy");
	CHECK_INT(kind_of("Proxy-"), WEIR_H_HOP, "Proxy-");
	CHECK_INT(kind_of("Proxied"), WEIR_H_OTHER, "Proxied");
	CHECK_INT(req.flags,
		  WEIR_H1_F_UPGRADE | WEIR_H1_F_EXPECT_CONTINUE | WEIR_H1_F_CONN_CLOSE, "flags");
	CHECK_INT(req.body, WEIR_H1_BODY_LENGTH, "body");

	/* '^' and '~' are different token bytes */
	CHECK(PARSE("GET / HTTP/1.1\r\nHost: a\r\nConnection: x^y\r\nx~y: 1\r\nX^Y: 2\r\n\r\n") > 0);
	CHECK_INT(kind_of("x~y"), WEIR_H_OTHER, "x~y not named");
	CHECK_INT(kind_of("X^Y"), WEIR_H_HOP, "X^Y named");

	/* upgrade alone sets the flag but no second pass is needed */
	CHECK(PARSE("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n") > 0);
	CHECK_INT(req.flags, WEIR_H1_F_UPGRADE, "upgrade flag");
	CHECK_INT(req.kind[2], WEIR_H_HOP, "Upgrade kind");

	/* Connection listing Expect: dropped as hop-by-hop */
	CHECK(PARSE("POST / HTTP/1.1\r\nHost: a\r\nConnection: expect\r\nExpect: 100-continue\r\n\r\n") > 0);
	CHECK_INT(req.kind[2], WEIR_H_HOP, "Expect listed in Connection");
}

static char *repeat_request(const char *head, const char *unit, size_t n, const char *tail,
			    size_t *len)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
	char *p = malloc(hl + ul * n + tl);
	char *o = p;

	memcpy(o, head, hl);
	o += hl;
	for (size_t i = 0; i < n; i++, o += ul)
		memcpy(o, unit, ul);
	memcpy(o, tail, tl);
	*len = hl + ul * n + tl;
	return p;
}

/* REQ-LIMITS */
static void test_limits(void)
{
	size_t len;
	char *p;
	int ret;

	/* request line of exactly WEIR_H1_MAX_REQUEST_LINE bytes: fine */
	p = repeat_request("GET /", "a", WEIR_H1_MAX_REQUEST_LINE - 14, " HTTP/1.1\r\nHost: a\r\n\r\n",
			   &len);
	CHECK_INT(weir_h1_parse_request(p, len, &req), len, "8192-byte request line");
	CHECK_INT(req.target.len, WEIR_H1_MAX_REQUEST_LINE - 13, "target length");
	free(p);
	/* ... with the optional leading CRLF too */
	p = repeat_request("\r\nGET /", "a", WEIR_H1_MAX_REQUEST_LINE - 14,
			   " HTTP/1.1\r\nHost: a\r\n\r\n", &len);
	CHECK_INT(weir_h1_parse_request(p, len, &req), len, "8192-byte line after CRLF");
	free(p);
	/* one more byte: 414, complete or not */
	p = repeat_request("GET /", "a", WEIR_H1_MAX_REQUEST_LINE - 13, " HTTP/1.1\r\nHost: a\r\n\r\n",
			   &len);
	CHECK_INT(weir_h1_parse_request(p, len, &req), WEIR_H1_ERROR, "8193-byte request line");
	CHECK_INT(req.error, 414, "8193-byte request line status");
	CHECK_INT(weir_h1_parse_request(p, WEIR_H1_MAX_REQUEST_LINE + 2, &req), WEIR_H1_ERROR,
		  "incomplete long line");
	CHECK_INT(req.error, 414, "incomplete long line status");
	CHECK_INT(weir_h1_parse_request(p, WEIR_H1_MAX_REQUEST_LINE + 1, &req), WEIR_H1_NEED_MORE,
		  "incomplete line within limit");
	free(p);
	/* a long line that is garbage early fails 400 at once */
	p = repeat_request("GET /\x01", "a", 20000, "", &len);
	CHECK_INT(weir_h1_parse_request(p, len, &req), WEIR_H1_ERROR, "garbage long line");
	CHECK_INT(req.error, 400, "garbage long line status");
	free(p);

	/* header section of exactly WEIR_H1_MAX_HEADER_BYTES: fine */
	p = repeat_request("GET / HTTP/1.1\r\nHost: a\r\nX: ", "v", WEIR_H1_MAX_HEADER_BYTES - 16,
			   "\r\n\r\n", &len);
	ret = weir_h1_parse_request(p, len, &req);
	CHECK_INT(ret, len, "16384-byte header section");
	CHECK_INT(req.headers[1].value.len, WEIR_H1_MAX_HEADER_BYTES - 16, "big value");
	free(p);
	p = repeat_request("GET / HTTP/1.1\r\nHost: a\r\nX: ", "v", WEIR_H1_MAX_HEADER_BYTES - 15,
			   "\r\n\r\n", &len);
	CHECK_INT(weir_h1_parse_request(p, len, &req), WEIR_H1_ERROR, "16385-byte section");
	CHECK_INT(req.error, 431, "16385-byte section status");
	CHECK_INT(weir_h1_parse_request(p, len - 1, &req), WEIR_H1_ERROR, "incomplete big section");
	CHECK_INT(req.error, 431, "incomplete big section status");
	CHECK_INT(weir_h1_parse_request(p, 16 + WEIR_H1_MAX_HEADER_BYTES - 1, &req), WEIR_H1_NEED_MORE,
		  "incomplete section within limit");
	free(p);
	/* a 17 KiB field without its end: 431 at once */
	p = repeat_request("GET / HTTP/1.1\r\nHost: a\r\nX-Big: ", "v", 17 * 1024, "", &len);
	CHECK_INT(weir_h1_parse_request(p, len, &req), WEIR_H1_ERROR, "17 KiB field");
	CHECK_INT(req.error, 431, "17 KiB field status");
	free(p);

	/* field count: Host + 99 = 100 fine, Host + 100 = 101 is 431 */
	p = repeat_request("GET / HTTP/1.1\r\nHost: a\r\n", "X: y\r\n", WEIR_H1_MAX_HEADERS - 1,
			   "\r\n", &len);
	CHECK_INT(weir_h1_parse_request(p, len, &req), len, "100 fields");
	CHECK_INT(req.nheaders, WEIR_H1_MAX_HEADERS, "nheaders");
	free(p);
	p = repeat_request("GET / HTTP/1.1\r\nHost: a\r\n", "X: y\r\n", WEIR_H1_MAX_HEADERS,
			   "\r\n", &len);
	CHECK_INT(weir_h1_parse_request(p, len, &req), WEIR_H1_ERROR, "101 fields");
	CHECK_INT(req.error, 431, "101 fields status");
	/* ... at once: as soon as the 101st field starts */
	CHECK_INT(weir_h1_parse_request(p, len - 2 - 6 + 1, &req), WEIR_H1_ERROR, "101st started");
	CHECK_INT(req.error, 431, "101st started status");
	CHECK_INT(weir_h1_parse_request(p, len - 2 - 6, &req), WEIR_H1_NEED_MORE, "100 complete");
	free(p);

	/* Connection options: at most WEIR_H1_MAX_HEADERS */
	p = repeat_request("GET / HTTP/1.1\r\nHost: a\r\nConnection: x", ",x", WEIR_H1_MAX_HEADERS - 1,
			   "\r\n\r\n", &len);
	CHECK_INT(weir_h1_parse_request(p, len, &req), len, "100 Connection options");
	free(p);
	p = repeat_request("GET / HTTP/1.1\r\nHost: a\r\nConnection: x", ",x", WEIR_H1_MAX_HEADERS,
			   "\r\n\r\n", &len);
	CHECK_INT(weir_h1_parse_request(p, len, &req), WEIR_H1_ERROR, "101 Connection options");
	CHECK_INT(req.error, 400, "101 Connection options status");
	free(p);
}

static void test_pipelined(void)
{
	static const char s[] = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: b\r\n\r\n";
	int a = PARSE(s);

	CHECK_INT(a, 28, "first of two");
	CHECK_SLICE(req.path, "/1");
	CHECK_INT(weir_h1_parse_request(s + a, sizeof(s) - 1 - (size_t)a, &req), 28, "second");
	CHECK_SLICE(req.host, "b");
}

int main(void)
{
	run_table();
	test_browser_get();
	test_methods();
	test_forms();
	test_framing();
	test_kinds_and_flags();
	test_limits();
	test_pipelined();
	return report("h1-request");
}
