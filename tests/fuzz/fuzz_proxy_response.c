/* libFuzzer harness: the response half of the proxy path, in memory.
 *
 * The input is what an upstream sends for one request. Two bits of the input
 * hash pick whether the request was HEAD and whether the client speaks
 * HTTP/1.0 or 1.1. The response goes the way src/proxy/upstream.c and
 * client.c take it: interim (1xx) responses are consumed and dropped, 101 is
 * refused, the final head is parsed, the client framing chosen
 * (weir__client_response_head), the head written by weir__build_response_head
 * (src/proxy/msg.c, the real one), and the body forwarded: Content-Length
 * bytes as they are, chunked data decoded and re-framed, a close-delimited
 * body (the input's end is the close) re-framed chunked for HTTP/1.1 clients
 * and passed raw, then closed, for HTTP/1.0 ones.
 *
 * What the client would receive is checked: the head re-parses to the same
 * status, reason and end-to-end fields (hop-by-hop and framing fields gone,
 * Via appended), one framing field (or a single canonical Content-Length on
 * a bodiless HEAD/304 response that had one), "Connection: close" exactly
 * when the body is close-delimited, and the body decodes to the same bytes
 * and ends exactly where the client's parser says it does.
 *
 * docs/HTTP1.md rules checked here: RSP-1XX, RSP-101, RSP-HEAD, RSP-204,
 * RSP-304, RSP-CL-LIST, RSP-HOP, RSP-CLOSE-DELIM, RSP-CHUNK. */
#include <inttypes.h>
#include <string.h>

#include "canon.h"
#include "fuzz.h"
#include "weir/h1.h"
#include "weir/proxy.h"

static struct weir_h1_response res, res2;

/* client.c weir__client_response_spans: one chunk for a chunked client,
 * the bytes as they are otherwise */
static void put_spans(struct fuzz_buf *o, struct fuzz_buf *data, const weir_slice_t *spans,
		      size_t ns, enum weir_frame frame)
{
	uint64_t total = 0;
	char line[24];
	int ln;

	if (frame != WEIR_FRAME_CHUNKED) {
		for (size_t i = 0; i < ns; i++) {
			fuzz_put(o, spans[i].ptr, spans[i].len);
			fuzz_put(data, spans[i].ptr, spans[i].len);
		}
		return;
	}
	for (size_t i = 0; i < ns; i++)
		total += spans[i].len;
	if (total == 0)
		return;
	ln = snprintf(line, sizeof(line), "%" PRIx64 "\r\n", total);
	fuzz_put(o, line, (size_t)ln);
	for (size_t i = 0; i < ns; i++) {
		fuzz_put(o, spans[i].ptr, spans[i].len);
		fuzz_put(data, spans[i].ptr, spans[i].len);
	}
	fuzz_put(o, "\r\n", 2);
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	uint64_t h = fuzz_hash(data, size);
	bool is_head = (h & 1) != 0;
	int client_minor = (h & 2) != 0 ? 0 : 1;
	size_t left = size, nhops = 0, j = 0, nframing = 0, ncl = 0;
	struct fuzz_buf o = { 0 }, body = { 0 }, got = { 0 };
	enum weir_frame frame;
	bool close, complete = true, kept_cl = false;
	uint32_t hlen;
	char *head;
	int ret, last_via = -1;

	/* interim responses: consumed and dropped; 101: 502 */
	for (;;) {
		ret = weir_h1_parse_response(in, left, is_head, &res);
		if (ret < 0)
			return 0;  /* need more (then a 502 or 504), or 502 */
		if (res.status >= 200)
			break;
		if (res.status == 101)
			return 0;
		in += ret;
		left -= (size_t)ret;
		if (++nhops > 16)
			return 0;
	}
	/* client.c weir__client_response_head */
	if (res.body == WEIR_H1_BODY_NONE)
		frame = WEIR_FRAME_NONE;
	else if (res.body == WEIR_H1_BODY_LENGTH)
		frame = WEIR_FRAME_LENGTH;
	else if (client_minor >= 1)
		frame = WEIR_FRAME_CHUNKED;
	else
		frame = WEIR_FRAME_CLOSE;
	close = frame == WEIR_FRAME_CLOSE;
	head = weir__build_response_head(&res, client_minor, is_head, frame, close, &hlen);
	FUZZ_ASSERT(head != NULL);
	fuzz_put(&o, head, hlen);
	free(head);
	in += ret;
	left -= (size_t)ret;
	/* upstream.c up_process: the body */
	switch (res.body) {
	case WEIR_H1_BODY_NONE:
		break;
	case WEIR_H1_BODY_LENGTH: {
		size_t take = left < res.content_length ? left : (size_t)res.content_length;

		fuzz_put(&o, in, take);
		fuzz_put(&body, in, take);
		complete = take == res.content_length;
		break;
	}
	case WEIR_H1_BODY_CHUNKED: {
		struct weir_chunked d;
		size_t at = 0;

		weir_chunked_init(&d);
		while (at < left && !d.done) {
			size_t piece = 1 + (size_t)((h >> (at % 40)) & 255), ns;
			weir_slice_t spans[16];
			ssize_t n;

			if (piece > left - at)
				piece = left - at;
			ns = WEIR_ARRAY_SIZE(spans);
			n = weir_chunked_decode(&d, in + at, piece, spans, &ns);
			if (n < 0)
				goto out;  /* the client connection is closed: truncated */
			put_spans(&o, &body, spans, ns, frame);
			at += (size_t)n;
		}
		complete = d.done;
		break;
	}
	case WEIR_H1_BODY_CLOSE:
		/* the input's end is the upstream closing: the body is complete */
		{
			weir_slice_t span = { in, left };

			put_spans(&o, &body, &span, left != 0 ? 1 : 0, frame);
		}
		break;
	default:
		FUZZ_ASSERT(0);
	}
	if (complete && frame == WEIR_FRAME_CHUNKED)
		fuzz_put(&o, "0\r\n\r\n", 5);

	/* the client's view */
	ret = weir_h1_parse_response(o.p, o.len, is_head, &res2);
	if (ret == WEIR_H1_ERROR && res.nheaders + 3 > WEIR_H1_MAX_HEADERS &&
	    strcmp(res2.reason, "too many header fields") == 0)
		goto out;  /* weir adds up to three fields: Via, framing, Connection */
	if (ret == WEIR_H1_ERROR && hlen > WEIR_H1_MAX_HEADER_BYTES &&
	    strcmp(res2.reason, "header section too large") == 0)
		goto out;
	FUZZ_ASSERT(ret == (int)hlen);
	FUZZ_ASSERT(memcmp(o.p, "HTTP/1.1 ", 9) == 0);
	FUZZ_ASSERT(res2.status == res.status);
	FUZZ_ASSERT(fuzz_slice_is(res2.reason_phrase, res.reason_phrase.ptr, res.reason_phrase.len));
	for (size_t i = 0; i < res.nheaders; i++)
		if (res.kind[i] == WEIR_H_VIA)
			last_via = (int)i;
	for (size_t i = 0; i < res.nheaders; i++) {
		const struct weir_h1_header *a = &res.headers[i], *b;

		if (res.kind[i] == WEIR_H_CONTENT_LENGTH && frame == WEIR_FRAME_NONE && !kept_cl &&
		    (is_head || res.status == 304) && res.status != 204) {
			/* kept in place, as one canonical value */
			FUZZ_ASSERT(j < res2.nheaders && res2.kind[j] == WEIR_H_CONTENT_LENGTH);
			b = &res2.headers[j++];
			FUZZ_ASSERT(b->value.len > 0 && (b->value.ptr[0] != '0' || b->value.len == 1));
			for (size_t k = 0; k < b->value.len; k++)
				FUZZ_ASSERT(b->value.ptr[k] >= '0' && b->value.ptr[k] <= '9');
			kept_cl = true;
			continue;
		}
		switch (res.kind[i]) {
		case WEIR_H_OTHER:
		case WEIR_H_HOST:
		case WEIR_H_EXPECT:
		case WEIR_H_X_FORWARDED_FOR:
		case WEIR_H_X_FORWARDED_PROTO:
		case WEIR_H_VIA:
			break;
		default:
			continue;
		}
		FUZZ_ASSERT(j < res2.nheaders);
		b = &res2.headers[j++];
		FUZZ_ASSERT(fuzz_slice_is(b->name, a->name.ptr, a->name.len));
		if ((int)i == last_via) {
			const char *via = res.minor_version == 0 ? ", 1.0 weir" : ", 1.1 weir";

			FUZZ_ASSERT(b->value.len == a->value.len + 10);
			FUZZ_ASSERT(a->value.len == 0 || memcmp(b->value.ptr, a->value.ptr, a->value.len) == 0);
			FUZZ_ASSERT(memcmp(b->value.ptr + a->value.len, via, 10) == 0);
		} else {
			FUZZ_ASSERT(fuzz_slice_is(b->value, a->value.ptr, a->value.len));
		}
	}
	/* the rest is weir's: framing fields where it wrote them, Via,
	 * Connection */
	for (; j < res2.nheaders; j++) {
		const struct weir_h1_header *b = &res2.headers[j];

		FUZZ_ASSERT(b->value.ptr == b->name.ptr + b->name.len + 2);
		if (res2.kind[j] == WEIR_H_CONTENT_LENGTH) {
			ncl++;
			nframing++;
			FUZZ_ASSERT(b->value.len > 0 && (b->value.ptr[0] != '0' || b->value.len == 1));
		} else if (res2.kind[j] == WEIR_H_TRANSFER_ENCODING) {
			nframing++;
			FUZZ_ASSERT(fuzz_slice_is(b->value, "chunked", 7));
		} else if (res2.kind[j] == WEIR_H_VIA) {
			FUZZ_ASSERT(last_via < 0);
		} else {
			FUZZ_ASSERT(res2.kind[j] == WEIR_H_CONNECTION);
			FUZZ_ASSERT(close ? fuzz_slice_is(b->value, "close", 5) :
				    fuzz_slice_is(b->value, "keep-alive", 10) && client_minor == 0);
		}
	}
	for (size_t i = 0; i < res2.nheaders; i++) {
		const struct weir_h1_header *b = &res2.headers[i];

		FUZZ_ASSERT(res2.kind[i] != WEIR_H_HOP);
		FUZZ_ASSERT(b->value.len == 0 ||
			    (!is_ows(b->value.ptr[0]) && !is_ows(b->value.ptr[b->value.len - 1])));
	}
	FUZZ_ASSERT(nframing <= 1);
	FUZZ_ASSERT(((res2.flags & WEIR_H1_F_CONN_CLOSE) != 0) == close);
	switch (frame) {
	case WEIR_FRAME_NONE:
		FUZZ_ASSERT(o.len == hlen);
		FUZZ_ASSERT(res2.body == WEIR_H1_BODY_NONE);
		/* HEAD and 304 keep one announced length (checked above);
		 * weir adds none */
		FUZZ_ASSERT(ncl == 0);
		break;
	case WEIR_FRAME_LENGTH:
		FUZZ_ASSERT(ncl == 1 && res2.body == WEIR_H1_BODY_LENGTH);
		FUZZ_ASSERT(res2.content_length == res.content_length);
		FUZZ_ASSERT(o.len - hlen == body.len);
		break;
	case WEIR_FRAME_CHUNKED:
		FUZZ_ASSERT(nframing == 1 && res2.body == WEIR_H1_BODY_CHUNKED);
		if (complete) {
			ssize_t n = fuzz_canonical_chunked(o.p + hlen, o.len - hlen, &got);

			FUZZ_ASSERT(n >= 0 && (size_t)n == o.len - hlen);
			FUZZ_ASSERT(got.len == body.len &&
				    (got.len == 0 || memcmp(got.p, body.p, got.len) == 0));
		}
		break;
	case WEIR_FRAME_CLOSE:
		FUZZ_ASSERT(nframing == 0 && res2.body == WEIR_H1_BODY_CLOSE);
		FUZZ_ASSERT(o.len - hlen == body.len);
		break;
	}
	FUZZ_ASSERT(body.len == 0 || memcmp(o.p + hlen, body.p, body.len) == 0 ||
		    frame == WEIR_FRAME_CHUNKED);
out:
	free(o.p);
	free(body.p);
	free(got.p);
	return 0;
}
