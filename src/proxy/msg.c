/* Message heads weir writes: requests to upstreams, responses to clients,
 * local responses. Each is built into one heap block, sized up front, so a
 * head costs one allocation and one copy of the fields that survive. */
#include <inttypes.h>
#include <stdio.h>
#include <strings.h>

#include "weir/alloc.h"
#include "weir/proxy.h"

#define VIA_TOKEN "weir"

struct wbuf {
	char *p;
	size_t len, cap;
};

static inline void put(struct wbuf *b, const char *s, size_t n)
{
	WEIR_BUG_ON(b->len + n > b->cap);
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static inline void put_slice(struct wbuf *b, weir_slice_t s)
{
	put(b, s.ptr, s.len);
}

/* lit must be a string literal: sizeof of anything else is a pointer's */
#define PUT_LIT(b, lit) put((b), "" lit, sizeof(lit) - 1)

/* "Name: value" without the line end, so that a caller may append. */
static void put_field_open(struct wbuf *b, const struct weir_h1_header *h)
{
	put_slice(b, h->name);
	PUT_LIT(b, ": ");
	put_slice(b, h->value);
}

/* Via for a message received as HTTP/1.<minor>: ", 1.x weir" appended to
 * the last Via field (append), or a new field. */
static void put_via(struct wbuf *b, int minor, bool append)
{
	if (append)
		PUT_LIT(b, ", ");
	else
		PUT_LIT(b, "Via: ");
	if (minor == 0)
		PUT_LIT(b, "1.0 " VIA_TOKEN "\r\n");
	else
		PUT_LIT(b, "1.1 " VIA_TOKEN "\r\n");
}

static void put_u64(struct wbuf *b, uint64_t v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%" PRIu64, v);

	put(b, tmp, (size_t)n);
}

const char *weir__status_text(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
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
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 417: return "Expectation Failed";
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

/* Last index of a field of the given kind, or -1. */
static int last_of(const uint8_t *kind, size_t n, uint8_t k)
{
	for (size_t i = n; i-- > 0;)
		if (kind[i] == k)
			return (int)i;
	return -1;
}

char *weir__build_request_head(const struct weir_h1_request *req, const char *client_ip,
			       enum weir_frame frame, uint64_t length, uint32_t *len)
{
	size_t iplen = strlen(client_ip);
	size_t cap = req->method.len + req->path.len + req->host.len + 256 + iplen;
	int last_xff = last_of(req->kind, req->nheaders, WEIR_H_X_FORWARDED_FOR);
	int last_via = last_of(req->kind, req->nheaders, WEIR_H_VIA);
	struct wbuf b;

	for (size_t i = 0; i < req->nheaders; i++)
		cap += req->headers[i].name.len + req->headers[i].value.len + 4;
	b.p = weir_malloc(cap);
	if (b.p == NULL)
		return NULL;
	b.len = 0;
	b.cap = cap;

	put_slice(&b, req->method);
	PUT_LIT(&b, " ");
	put_slice(&b, req->path);
	PUT_LIT(&b, " HTTP/1.1\r\n");
	/* Host first, from the absolute-form authority when there was one
	 * (RFC 9112 3.2.2). Every HTTP/1.1 request carries one: an HTTP/1.0
	 * client that sent none gets the empty value RFC 9110 7.2 prescribes
	 * for a target URI without an authority. */
	PUT_LIT(&b, "Host: ");
	if (req->host.len != 0)
		put_slice(&b, req->host);
	PUT_LIT(&b, "\r\n");
	for (size_t i = 0; i < req->nheaders; i++) {
		const struct weir_h1_header *h = &req->headers[i];

		switch (req->kind[i]) {
		case WEIR_H_OTHER:
			break;
		case WEIR_H_X_FORWARDED_FOR:
			if ((int)i == last_xff) {
				put_field_open(&b, h);
				PUT_LIT(&b, ", ");
				put(&b, client_ip, iplen);
				PUT_LIT(&b, "\r\n");
				continue;
			}
			break;
		case WEIR_H_VIA:
			if ((int)i == last_via) {
				put_field_open(&b, h);
				put_via(&b, req->minor_version, true);
				continue;
			}
			break;
		default:
			/* hop-by-hop, framing, Host (written above), Expect,
			 * X-Forwarded-Proto (replaced) */
			continue;
		}
		put_field_open(&b, h);
		PUT_LIT(&b, "\r\n");
	}
	if (last_xff < 0) {
		PUT_LIT(&b, "X-Forwarded-For: ");
		put(&b, client_ip, iplen);
		PUT_LIT(&b, "\r\n");
	}
	PUT_LIT(&b, "X-Forwarded-Proto: http\r\n");
	if (last_via < 0)
		put_via(&b, req->minor_version, false);
	if (frame == WEIR_FRAME_LENGTH) {
		PUT_LIT(&b, "Content-Length: ");
		put_u64(&b, length);
		PUT_LIT(&b, "\r\n");
	} else if (frame == WEIR_FRAME_CHUNKED) {
		PUT_LIT(&b, "Transfer-Encoding: chunked\r\n");
	}
	PUT_LIT(&b, "\r\n");
	*len = (uint32_t)b.len;
	return b.p;
}

/* The first value of a Content-Length field the parser accepted (digits,
 * at most 2^53, maybe a list of equal values). */
static uint64_t first_length(weir_slice_t v)
{
	uint64_t n = 0;

	for (size_t i = 0; i < v.len && v.ptr[i] >= '0' && v.ptr[i] <= '9'; i++)
		n = n * 10 + (uint64_t)(v.ptr[i] - '0');
	return n;
}

char *weir__build_response_head(const struct weir_h1_response *res, int client_minor,
				 bool is_head, enum weir_frame frame, bool close, uint32_t *len)
{
	size_t cap = res->reason_phrase.len + 256;
	int last_via = last_of(res->kind, res->nheaders, WEIR_H_VIA);
	bool kept_length = false;
	struct wbuf b;

	for (size_t i = 0; i < res->nheaders; i++)
		cap += res->headers[i].name.len + res->headers[i].value.len + 4;
	b.p = weir_malloc(cap);
	if (b.p == NULL)
		return NULL;
	b.len = 0;
	b.cap = cap;

	PUT_LIT(&b, "HTTP/1.1 ");
	put_u64(&b, (uint64_t)res->status);
	PUT_LIT(&b, " ");
	put_slice(&b, res->reason_phrase);
	PUT_LIT(&b, "\r\n");
	for (size_t i = 0; i < res->nheaders; i++) {
		const struct weir_h1_header *h = &res->headers[i];

		switch (res->kind[i]) {
		case WEIR_H_OTHER:
		case WEIR_H_HOST:
		case WEIR_H_EXPECT:
		case WEIR_H_X_FORWARDED_FOR:
		case WEIR_H_X_FORWARDED_PROTO:
			break;
		case WEIR_H_VIA:
			if ((int)i == last_via) {
				put_field_open(&b, h);
				put_via(&b, res->minor_version, true);
				continue;
			}
			break;
		case WEIR_H_CONTENT_LENGTH:
			/* A bodiless response (HEAD, 304) keeps the length the
			 * upstream announced for the representation, as one
			 * canonical value (the parser checked that every value
			 * is the same); 204 and 1xx never carry one. */
			if (frame == WEIR_FRAME_NONE && !kept_length && res->status != 204 &&
			    res->status >= 200 && (is_head || res->status == 304)) {
				kept_length = true;
				PUT_LIT(&b, "Content-Length: ");
				put_u64(&b, first_length(h->value));
				PUT_LIT(&b, "\r\n");
			}
			continue;
		default:
			continue;
		}
		put_field_open(&b, h);
		PUT_LIT(&b, "\r\n");
	}
	if (last_via < 0)
		put_via(&b, res->minor_version, false);
	if (frame == WEIR_FRAME_LENGTH) {
		PUT_LIT(&b, "Content-Length: ");
		put_u64(&b, res->content_length);
		PUT_LIT(&b, "\r\n");
	} else if (frame == WEIR_FRAME_CHUNKED) {
		PUT_LIT(&b, "Transfer-Encoding: chunked\r\n");
	}
	if (close)
		PUT_LIT(&b, "Connection: close\r\n");
	else if (client_minor == 0)
		PUT_LIT(&b, "Connection: keep-alive\r\n");
	PUT_LIT(&b, "\r\n");
	*len = (uint32_t)b.len;
	return b.p;
}

char *weir__build_local(int status, const struct weir_conf_header *hdrs, unsigned nhdrs,
			const char *body, size_t body_len, bool is_head, bool close,
			uint32_t *len)
{
	const char *text = weir__status_text(status);
	bool has_type = false, bodyless = status == 204 || status == 304 || status < 200;
	size_t cap = 256 + strlen(text) + body_len;
	struct wbuf b;

	for (unsigned i = 0; i < nhdrs; i++) {
		cap += strlen(hdrs[i].name) + strlen(hdrs[i].value) + 4;
		if (strcasecmp(hdrs[i].name, "content-type") == 0)
			has_type = true;
	}
	b.p = weir_malloc(cap);
	if (b.p == NULL)
		return NULL;
	b.len = 0;
	b.cap = cap;
	PUT_LIT(&b, "HTTP/1.1 ");
	put_u64(&b, (uint64_t)status);
	PUT_LIT(&b, " ");
	put(&b, text, strlen(text));
	PUT_LIT(&b, "\r\nServer: weir\r\n");
	for (unsigned i = 0; i < nhdrs; i++) {
		put(&b, hdrs[i].name, strlen(hdrs[i].name));
		PUT_LIT(&b, ": ");
		put(&b, hdrs[i].value, strlen(hdrs[i].value));
		PUT_LIT(&b, "\r\n");
	}
	if (!bodyless) {
		if (!has_type && body_len != 0)
			PUT_LIT(&b, "Content-Type: text/plain\r\n");
		PUT_LIT(&b, "Content-Length: ");
		put_u64(&b, body_len);
		PUT_LIT(&b, "\r\n");
	}
	if (close)
		PUT_LIT(&b, "Connection: close\r\n");
	PUT_LIT(&b, "\r\n");
	if (!bodyless && !is_head && body_len != 0)    /* body: NULL for a return: without one */
		put(&b, body, body_len);
	*len = (uint32_t)b.len;
	return b.p;
}
