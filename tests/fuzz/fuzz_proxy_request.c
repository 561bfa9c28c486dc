/* libFuzzer harness: the request half of the proxy path, in memory.
 *
 * The input is what a client sends on one connection (several pipelined
 * requests, maybe). Each request goes the way src/proxy/client.c takes it:
 * weir_h1_parse_request, the framing choice of start_request, the upstream
 * head from weir__build_request_head (src/proxy/msg.c, the real one), and the
 * body: Content-Length bytes as they are, or chunked data decoded by
 * weir_chunked_decode in receive-buffer-sized pieces and re-framed the way
 * push_chunk does (one chunk per decoded batch, then "0\r\n\r\n").
 *
 * What the upstream would receive is then checked:
 *  - it is canonical: "Name: value" lines with one SP and no OWS around the
 *    value; exactly one framing field, and only when there is a body or the
 *    client sent Content-Length; Content-Length digits without leading
 *    zeros; chunk sizes in lowercase hex without leading zeros, no
 *    extensions, no trailers; HTTP/1.1; no hop-by-hop field;
 *  - parsing it again yields the same message: method, target (origin-form
 *    path), Host (the absolute-form authority if there was one), the
 *    end-to-end fields in order (X-Forwarded-For and Via appended to the last
 *    field, X-Forwarded-Proto replaced), the same body bytes;
 *  - it delimits itself exactly: head and body end where weir's own framing
 *    says, so the next request forwarded on that connection starts where the
 *    upstream expects it (no desync between pipelined requests).
 * A request weir refuses forwards nothing; "Connection: close" (or HTTP/1.0)
 * ends the connection, and nothing after that request is looked at.
 *
 * docs/HTTP1.md rules checked here: FWD-FRAMING, FWD-CHUNKED, FWD-VERSION,
 * FWD-HEADERS, FWD-LIMITS (weir adds up to four fields: an upstream with
 * weir's own limits may refuse a request that was at them), REQ-PIPELINE. */
#include <inttypes.h>
#include <string.h>

#include "canon.h"
#include "fuzz.h"
#include "weir/h1.h"
#include "weir/proxy.h"

#define CLIENT_IP "192.0.2.7"
#define MAX_MSGS 8

static struct weir_h1_request req, req2;

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* value == a followed by the literal suffix b */
static bool slice_is2(weir_slice_t s, weir_slice_t a, const char *b)
{
	size_t bl = strlen(b);

	return s.len == a.len + bl && (a.len == 0 || memcmp(s.ptr, a.ptr, a.len) == 0) &&
	       memcmp(s.ptr + a.len, b, bl) == 0;
}

static int find_last(const uint8_t *kind, size_t n, uint8_t k)
{
	for (size_t i = n; i-- > 0;)
		if (kind[i] == k)
			return (int)i;
	return -1;
}

/* The upstream message for one request: head hlen bytes, then the body. */
static void check_upstream(const char *o, size_t olen, uint32_t hlen, const struct fuzz_buf *data,
			   bool complete, bool had_cl)
{
	const char *via = req.minor_version == 0 ? "1.0 weir" : "1.1 weir";
	int last_xff = find_last(req.kind, req.nheaders, WEIR_H_X_FORWARDED_FOR);
	int last_via = find_last(req.kind, req.nheaders, WEIR_H_VIA);
	int ret = weir_h1_parse_request(o, olen, &req2);
	size_t j = 0, nframing = 0;

	if (ret == WEIR_H1_ERROR && req2.error == 431) {
		/* weir adds up to four fields (Host for HTTP/1.0, X-Forwarded-*,
		 * Via) to a request that may be at its own limits: an upstream
		 * needs limits that much higher (docs/HTTP1.md). Check that
		 * this is the only reason. */
		const char *line_end = memchr(o, '\n', hlen);
		size_t nlines = 0;

		FUZZ_ASSERT(line_end != NULL);
		for (const char *q = line_end + 1; q < o + hlen; q++)
			nlines += *q == '\n';
		FUZZ_ASSERT(nlines - 1 > WEIR_H1_MAX_HEADERS ||
			    (size_t)(o + hlen - (line_end + 1)) > WEIR_H1_MAX_HEADER_BYTES);
		return;
	}
	FUZZ_ASSERT(ret == (int)hlen);
	/* request line: same method and origin-form target, HTTP/1.1 */
	FUZZ_ASSERT(fuzz_slice_is(req2.method, req.method.ptr, req.method.len));
	FUZZ_ASSERT(fuzz_slice_is(req2.target, req.path.ptr, req.path.len));
	FUZZ_ASSERT(req2.path.ptr == req2.target.ptr && !(req2.flags & WEIR_H1_F_ABSOLUTE_FORM));
	FUZZ_ASSERT(req2.minor_version == 1 && o[req2.target.len + req2.method.len + 2 + 7] == '1');
	FUZZ_ASSERT((size_t)(req2.target.ptr + req2.target.len - o) + 11 ==
		    (size_t)(req2.headers[0].name.ptr - o));
	/* Host first, from the authority weir used for routing */
	FUZZ_ASSERT(req2.nheaders >= 3 && req2.kind[0] == WEIR_H_HOST);
	FUZZ_ASSERT(fuzz_slice_is(req2.host, req.host.ptr, req.host.len));
	j = 1;
	/* the end-to-end fields, in order */
	for (size_t i = 0; i < req.nheaders; i++) {
		const struct weir_h1_header *h = &req.headers[i], *g;

		if (req.kind[i] != WEIR_H_OTHER && req.kind[i] != WEIR_H_X_FORWARDED_FOR &&
		    req.kind[i] != WEIR_H_VIA)
			continue;
		FUZZ_ASSERT(j < req2.nheaders);
		g = &req2.headers[j++];
		FUZZ_ASSERT(fuzz_slice_is(g->name, h->name.ptr, h->name.len));
		if ((int)i == last_xff)
			FUZZ_ASSERT(slice_is2(g->value, h->value, ", " CLIENT_IP));
		else if ((int)i == last_via)
			FUZZ_ASSERT(slice_is2(g->value, h->value,
					      req.minor_version == 0 ? ", 1.0 weir" : ", 1.1 weir"));
		else
			FUZZ_ASSERT(fuzz_slice_is(g->value, h->value.ptr, h->value.len));
	}
	/* what weir adds */
	if (last_xff < 0) {
		FUZZ_ASSERT(j < req2.nheaders && req2.kind[j] == WEIR_H_X_FORWARDED_FOR);
		FUZZ_ASSERT(fuzz_slice_is(req2.headers[j++].value, CLIENT_IP, strlen(CLIENT_IP)));
	}
	FUZZ_ASSERT(j < req2.nheaders && req2.kind[j] == WEIR_H_X_FORWARDED_PROTO);
	FUZZ_ASSERT(fuzz_slice_is(req2.headers[j++].value, "http", 4));
	if (last_via < 0) {
		FUZZ_ASSERT(j < req2.nheaders && req2.kind[j] == WEIR_H_VIA);
		FUZZ_ASSERT(fuzz_slice_is(req2.headers[j++].value, via, strlen(via)));
	}
	/* then the one framing field, if any, and nothing else */
	for (; j < req2.nheaders; j++, nframing++)
		FUZZ_ASSERT(req2.kind[j] == WEIR_H_CONTENT_LENGTH ||
			    req2.kind[j] == WEIR_H_TRANSFER_ENCODING);
	FUZZ_ASSERT(nframing <= 1);
	/* canonical field lines: "Name: value" CRLF */
	for (size_t i = 0; i < req2.nheaders; i++) {
		const struct weir_h1_header *g = &req2.headers[i];

		FUZZ_ASSERT(g->value.ptr == g->name.ptr + g->name.len + 2);
		FUZZ_ASSERT(g->name.ptr[g->name.len] == ':' && g->name.ptr[g->name.len + 1] == ' ');
		FUZZ_ASSERT(g->value.ptr[g->value.len] == '\r');
		FUZZ_ASSERT(req2.kind[i] != WEIR_H_HOP && req2.kind[i] != WEIR_H_CONNECTION &&
			    req2.kind[i] != WEIR_H_EXPECT);
	}
	FUZZ_ASSERT(req2.flags == 0);
	/* framing and body */
	FUZZ_ASSERT(req2.body == req.body);
	switch (req.body) {
	case WEIR_H1_BODY_NONE:
		FUZZ_ASSERT(olen == hlen);
		FUZZ_ASSERT(nframing == (had_cl ? 1u : 0u));
		if (had_cl)
			FUZZ_ASSERT(fuzz_slice_is(req2.headers[req2.nheaders - 1].value, "0", 1));
		break;
	case WEIR_H1_BODY_LENGTH: {
		weir_slice_t v = req2.headers[req2.nheaders - 1].value;

		FUZZ_ASSERT(nframing == 1 && req2.content_length == req.content_length);
		FUZZ_ASSERT(v.len > 0 && v.ptr[0] != '0');
		for (size_t i = 0; i < v.len; i++)
			FUZZ_ASSERT(is_digit(v.ptr[i]));
		FUZZ_ASSERT(olen - hlen == data->len);
		if (complete)
			FUZZ_ASSERT(data->len == req.content_length);
		else
			FUZZ_ASSERT(data->len < req.content_length);
		FUZZ_ASSERT(data->len == 0 || memcmp(o + hlen, data->p, data->len) == 0);
		break;
	}
	case WEIR_H1_BODY_CHUNKED: {
		struct fuzz_buf got = { 0 };
		ssize_t n;

		FUZZ_ASSERT(nframing == 1);
		FUZZ_ASSERT(fuzz_slice_is(req2.headers[req2.nheaders - 1].value, "chunked", 7));
		if (!complete)
			break;
		n = fuzz_canonical_chunked(o + hlen, olen - hlen, &got);
		FUZZ_ASSERT(n >= 0 && (size_t)n == olen - hlen);
		FUZZ_ASSERT(got.len == data->len && (got.len == 0 || memcmp(got.p, data->p, got.len) == 0));
		free(got.p);
		break;
	}
	default:
		FUZZ_ASSERT(0);
	}
}

/* The body as client.c forwards it. Returns the input bytes the body took,
 * or -1 when weir refuses it (bad chunked framing: the upstream connection
 * is closed, the partial message never completes). *complete: the body
 * ended within the input. */
static ssize_t forward_body(const char *in, size_t left, uint64_t h, struct fuzz_buf *o,
			    struct fuzz_buf *data, bool *complete)
{
	*complete = true;
	if (req.body == WEIR_H1_BODY_NONE)
		return 0;
	if (req.body == WEIR_H1_BODY_LENGTH) {
		size_t take = left < req.content_length ? left : (size_t)req.content_length;

		*complete = take == req.content_length;
		fuzz_put(o, in, take);
		fuzz_put(data, in, take);
		return (ssize_t)take;
	} else {
		struct weir_chunked d;
		size_t at = 0;

		weir_chunked_init(&d);
		while (at < left && !d.done) {
			/* a receive buffer's worth, 1..64 bytes, from the input hash */
			size_t piece = 1 + (size_t)((h >> (at % 48)) & 63), ns;
			weir_slice_t spans[4];
			uint64_t total = 0;
			ssize_t n;

			if (piece > left - at)
				piece = left - at;
			/* the decoder stops early when spans[] is full: go on from
			 * there, as pump_body does */
			ns = WEIR_ARRAY_SIZE(spans);
			n = weir_chunked_decode(&d, in + at, piece, spans, &ns);
			if (n < 0)
				return -1;
			for (size_t i = 0; i < ns; i++)
				total += spans[i].len;
			if (total != 0) {
				char line[24];
				int ln = snprintf(line, sizeof(line), "%" PRIx64 "\r\n", total);

				fuzz_put(o, line, (size_t)ln);
				for (size_t i = 0; i < ns; i++) {
					fuzz_put(o, spans[i].ptr, spans[i].len);
					fuzz_put(data, spans[i].ptr, spans[i].len);
				}
				fuzz_put(o, "\r\n", 2);
			}
			FUZZ_ASSERT(n > 0 || ns == WEIR_ARRAY_SIZE(spans));
			at += (size_t)n;
		}
		*complete = d.done;
		if (d.done)
			fuzz_put(o, "0\r\n\r\n", 5);
		return (ssize_t)at;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	size_t left = size;
	uint64_t h = fuzz_hash(data, size);

	for (int k = 0; k < MAX_MSGS && left > 0; k++) {
		struct fuzz_buf o = { 0 }, body = { 0 };
		enum weir_frame frame = WEIR_FRAME_NONE;
		uint64_t length = 0;
		bool had_cl = false, complete;
		uint32_t hlen;
		ssize_t n;
		char *head;
		int ret = weir_h1_parse_request(in, left, &req);

		if (ret < 0)
			break;  /* need more, or refused: nothing forwarded */
		/* client.c start_request */
		for (size_t i = 0; i < req.nheaders; i++)
			if (req.kind[i] == WEIR_H_CONTENT_LENGTH)
				had_cl = true;
		if (req.body == WEIR_H1_BODY_LENGTH) {
			frame = WEIR_FRAME_LENGTH;
			length = req.content_length;
		} else if (req.body == WEIR_H1_BODY_CHUNKED) {
			frame = WEIR_FRAME_CHUNKED;
		} else if (had_cl) {
			frame = WEIR_FRAME_LENGTH;
		}
		head = weir__build_request_head(&req, CLIENT_IP, frame, length, &hlen);
		FUZZ_ASSERT(head != NULL);
		fuzz_put(&o, head, hlen);
		free(head);
		n = forward_body(in + ret, left - (size_t)ret, h, &o, &body, &complete);
		if (n >= 0)
			check_upstream(o.p, o.len, hlen, &body, complete, had_cl);
		free(o.p);
		free(body.p);
		if (n < 0 || !complete || (req.flags & WEIR_H1_F_CONN_CLOSE))
			break;
		in += (size_t)ret + (size_t)n;
		left -= (size_t)ret + (size_t)n;
		h = h * 31 + 7;
	}
	return 0;
}
