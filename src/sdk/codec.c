/* libweir-agent codec: frame headers, strict decoding of what weir sends,
 * encoding of the small frames the agent sends. Pure functions; see
 * sdk-internal.h. Everything decoded here is hostile input. */
#include <string.h>

#include <msgpuck.h>

#include "sdk-internal.h"
#include "weir/be.h"

int weir__sdk_frame_parse(const char *p, size_t n, uint32_t max_frame,
			  struct weir__sdk_frame *f, uint32_t *need)
{
	uint32_t length;

	if (n < WEIR_AGENT_HDR_SIZE) {
		/* the length alone is enough to refuse a frame */
		if (n >= 4) {
			length = weir_get_be32(p);
			if (length < WEIR_AGENT_LEN_MIN || length > max_frame - 4)
				return -1;
		}
		*need = WEIR_AGENT_HDR_SIZE;
		return 1;
	}
	length = weir_get_be32(p);
	if (length < WEIR_AGENT_LEN_MIN || length > max_frame - 4)
		return -1;
	if (n < (size_t)length + 4) {
		*need = length + 4;
		return 1;
	}
	f->size = length + 4;
	f->type = (uint8_t)p[4];
	f->flags = (uint8_t)p[5];
	f->id = (uint64_t)weir_get_be32(p + 8) << 32 | weir_get_be32(p + 12);
	f->payload = p + WEIR_AGENT_HDR_SIZE;
	f->plen = length - WEIR_AGENT_LEN_MIN;
	return 0;
}

void weir__sdk_hdr_put(char *dst, uint32_t plen, uint8_t type, uint8_t flags, uint64_t id)
{
	weir_put_be32(dst, WEIR_AGENT_LEN_MIN + plen);
	dst[4] = (char)type;
	dst[5] = (char)flags;
	dst[6] = 0;
	dst[7] = 0;
	weir_put_be32(dst + 8, (uint32_t)(id >> 32));
	weir_put_be32(dst + 12, (uint32_t)id);
}

/* ---- a bounds-checked reader -------------------------------------------
 *
 * msgpuck's decoders trust their input; each read below checks the type
 * and the bytes left before calling one. mp_check() validated the payload
 * first, but its element counter is an int that large array/map counts
 * wrap, so counts are bounded here again: every element takes at least one
 * byte, so no count may exceed the bytes left. */

struct rd {
	const char *p, *end;
};

static inline size_t rd_left(const struct rd *r)
{
	return (size_t)(r->end - r->p);
}

static bool rd_uint(struct rd *r, uint64_t *v)
{
	if (r->p >= r->end)
		return false;
	switch (mp_typeof(*r->p)) {
	case MP_UINT:
		if (mp_check_uint(r->p, r->end) > 0)
			return false;
		*v = mp_decode_uint(&r->p);
		return true;
	case MP_INT: {
		/* "any integer encoding of the right sign": a signed format
		 * holding a non-negative value is accepted */
		int64_t i;

		if (mp_check_int(r->p, r->end) > 0)
			return false;
		i = mp_decode_int(&r->p);
		if (i < 0)
			return false;
		*v = (uint64_t)i;
		return true;
	}
	default:
		return false;
	}
}

static bool rd_uint_max(struct rd *r, uint64_t max, uint64_t *v)
{
	return rd_uint(r, v) && *v <= max;
}

static bool rd_str(struct rd *r, struct weir_agent_str *s)
{
	uint32_t len;

	if (r->p >= r->end || mp_typeof(*r->p) != MP_STR || mp_check_strl(r->p, r->end) > 0)
		return false;
	len = mp_decode_strl(&r->p);
	if (len > rd_left(r))
		return false;
	s->ptr = r->p;
	s->len = len;
	r->p += len;
	return true;
}

static bool rd_bin(struct rd *r, struct weir_agent_str *s)
{
	uint32_t len;

	if (r->p >= r->end || mp_typeof(*r->p) != MP_BIN || mp_check_binl(r->p, r->end) > 0)
		return false;
	len = mp_decode_binl(&r->p);
	if (len > rd_left(r))
		return false;
	s->ptr = r->p;
	s->len = len;
	r->p += len;
	return true;
}

static bool rd_array(struct rd *r, uint32_t *n)
{
	if (r->p >= r->end || mp_typeof(*r->p) != MP_ARRAY || mp_check_array(r->p, r->end) > 0)
		return false;
	*n = mp_decode_array(&r->p);
	return *n <= rd_left(r);
}

static bool rd_map(struct rd *r, uint32_t *n)
{
	if (r->p >= r->end || mp_typeof(*r->p) != MP_MAP || mp_check_map(r->p, r->end) > 0)
		return false;
	*n = mp_decode_map(&r->p);
	return 2 * (uint64_t)*n <= rd_left(r);
}

/* Skips one value of any type, nested ones included, without recursion. */
static bool rd_skip(struct rd *r)
{
	uint64_t k = 1;

	while (k > 0) {
		uint32_t n;

		if (rd_left(r) < k)
			return false;
		k--;
		switch (mp_typeof(*r->p)) {
		case MP_ARRAY:
			if (!rd_array(r, &n))
				return false;
			k += n;
			break;
		case MP_MAP:
			if (!rd_map(r, &n))
				return false;
			k += 2 * (uint64_t)n;
			break;
		default: {
			/* a scalar (str, bin and ext included): mp_check of one
			 * scalar involves no counter. 0xc1 ("never used") it
			 * takes for an object of no bytes. */
			const char *q = r->p;

			if ((unsigned char)*q == 0xc1 || mp_check(&q, r->end) != 0 || q <= r->p)
				return false;
			r->p = q;
			break;
		}
		}
	}
	return true;
}

/* The payload as one map: *n entries follow at r->p. check: mp_check it
 * first (false only for a second pass over bytes a first one accepted; the
 * walk is bounds-checked either way). */
static int map_open_(struct rd *r, const char *p, size_t n, uint32_t *count, bool check,
		     const char **why)
{
	const char *q = p;

	if (n == 0 || mp_typeof(*p) != MP_MAP ||
	    (check && (mp_check(&q, p + n) != 0 || q != p + n))) {
		*why = "payload is not exactly one MessagePack map";
		return -1;
	}
	r->p = p;
	r->end = p + n;
	if (!rd_map(r, count)) {
		*why = "payload is not exactly one MessagePack map";
		return -1;
	}
	return 0;
}

static int map_open(struct rd *r, const char *p, size_t n, uint32_t *count, const char **why)
{
	return map_open_(r, p, n, count, true, why);
}

/* The next key; known keys (below 64) may not repeat. */
static int map_key(struct rd *r, uint64_t *seen, uint64_t *key, const char **why)
{
	if (!rd_uint(r, key)) {
		*why = "map key is not an unsigned integer";
		return -1;
	}
	if (*key < 64) {
		if (*seen & (1ull << *key)) {
			*why = "map key repeated";
			return -1;
		}
		*seen |= 1ull << *key;
	}
	return 0;
}

static int skip_value(struct rd *r, const char **why)
{
	if (!rd_skip(r)) {
		*why = "malformed value of an unknown key";
		return -1;
	}
	return 0;
}

/* The walk must end exactly where the payload does (mp_check's verdict is
 * not trusted alone). */
static int map_close(const struct rd *r, const char **why)
{
	if (r->p != r->end) {
		*why = "payload is not exactly one MessagePack map";
		return -1;
	}
	return 0;
}

static int bad(const char **why, const char *msg)
{
	*why = msg;
	return -1;
}

#define SEEN(k) (seen & (1ull << (k)))

int weir__sdk_dec_hello(const char *p, size_t n, struct weir__sdk_hello *h, const char **why)
{
	struct rd r;
	uint64_t seen = 0, key, v;
	uint32_t count;

	memset(h, 0, sizeof(*h));
	h->max_frame = WEIR_AGENT_MAX_FRAME_DEFAULT;
	h->events = WEIR_AGENT_EV_ALL;
	if (map_open(&r, p, n, &count, why) != 0)
		return -1;
	for (uint32_t i = 0; i < count; i++) {
		if (map_key(&r, &seen, &key, why) != 0)
			return -1;
		switch (key) {
		case WEIR_AGENT_K_VERSION:
			if (!rd_uint_max(&r, UINT32_MAX, &v))
				return bad(why, "HELLO: version is not an unsigned integer");
			h->version = (uint32_t)v;
			break;
		case WEIR_AGENT_K_CAPABILITIES:
			if (!rd_uint(&r, &v))
				return bad(why, "HELLO: capabilities is not an unsigned integer");
			h->caps = (uint32_t)v;
			break;
		case WEIR_AGENT_K_MAX_FRAME:
			if (!rd_uint(&r, &v))
				return bad(why, "HELLO: max_frame is not an unsigned integer");
			h->max_frame = v < WEIR_AGENT_MAX_FRAME_MIN ? WEIR_AGENT_MAX_FRAME_MIN
				     : v > WEIR_AGENT_MAX_FRAME_CEIL ? WEIR_AGENT_MAX_FRAME_CEIL
				     : (uint32_t)v;
			break;
		case WEIR_AGENT_K_EVENTS:
			if (!rd_uint(&r, &v))
				return bad(why, "HELLO: events is not an unsigned integer");
			h->events = (uint32_t)(v & WEIR_AGENT_EV_ALL);
			break;
		case WEIR_AGENT_K_NAME:
			if (!rd_str(&r, &h->name))
				return bad(why, "HELLO: name is not a string");
			break;
		case WEIR_AGENT_K_REACTOR:
			if (!rd_uint_max(&r, UINT32_MAX, &v))
				return bad(why, "HELLO: reactor is not an unsigned integer");
			h->reactor = (uint32_t)v;
			break;
		default:
			if (skip_value(&r, why) != 0)
				return -1;
		}
	}
	if (map_close(&r, why) != 0)
		return -1;
	if (!SEEN(WEIR_AGENT_K_VERSION))
		return bad(why, "HELLO: no version");
	return 0;
}

/* headers: an array of str, name value name value ... Filled into hdrs
 * when they fit in cap, else counted only (*out NULL). */
static int dec_headers(struct rd *r, uint32_t *nheaders, const struct weir_agent_header **out,
		       struct weir_agent_header *hdrs, uint32_t cap, const char **why)
{
	uint32_t n;
	bool fill;

	if (!rd_array(r, &n))
		return bad(why, "headers is not an array");
	if (n % 2 != 0)
		return bad(why, "headers: odd number of strings");
	fill = hdrs != NULL && n / 2 <= cap;
	for (uint32_t i = 0; i < n / 2; i++) {
		struct weir_agent_str name, value;

		if (!rd_str(r, &name) || !rd_str(r, &value))
			return bad(why, "headers: an element is not a string");
		if (name.len == 0)
			return bad(why, "headers: empty field name");
		if (fill) {
			hdrs[i].name = name;
			hdrs[i].value = value;
		}
	}
	*nheaders = n / 2;
	*out = fill ? hdrs : NULL;
	return 0;
}

int weir__sdk_dec_request(const char *p, size_t n, struct weir_agent_request *rq,
			  struct weir_agent_header *hdrs, uint32_t cap, bool trusted, const char **why)
{
	struct rd r;
	uint64_t seen = 0, key, v;
	uint32_t count;

	memset(rq, 0, sizeof(*rq));
	rq->http_minor = 1;
	rq->headers = hdrs;
	if (map_open_(&r, p, n, &count, !trusted, why) != 0)
		return -1;
	for (uint32_t i = 0; i < count; i++) {
		if (map_key(&r, &seen, &key, why) != 0)
			return -1;
		switch (key) {
		case WEIR_AGENT_K_METHOD:
			if (!rd_str(&r, &rq->method) || rq->method.len == 0)
				return bad(why, "REQUEST_HEADERS: method is not a non-empty string");
			break;
		case WEIR_AGENT_K_TARGET:
			if (!rd_str(&r, &rq->target) || rq->target.len == 0)
				return bad(why, "REQUEST_HEADERS: target is not a non-empty string");
			break;
		case WEIR_AGENT_K_HTTP_MINOR:
			if (!rd_uint_max(&r, 1, &v))
				return bad(why, "REQUEST_HEADERS: http_minor is not 0 or 1");
			rq->http_minor = (uint8_t)v;
			break;
		case WEIR_AGENT_K_HEADERS:
			if (dec_headers(&r, &rq->nheaders, &rq->headers, hdrs, cap, why) != 0)
				return -1;
			break;
		case WEIR_AGENT_K_CLIENT_ADDR:
			if (!rd_str(&r, &rq->client_addr))
				return bad(why, "REQUEST_HEADERS: client_addr is not a string");
			break;
		case WEIR_AGENT_K_CLIENT_PORT:
			if (!rd_uint_max(&r, 65535, &v))
				return bad(why, "REQUEST_HEADERS: client_port is not a port");
			rq->client_port = (uint16_t)v;
			break;
		case WEIR_AGENT_K_ROUTE:
			if (!rd_str(&r, &rq->route))
				return bad(why, "REQUEST_HEADERS: route is not a string");
			break;
		case WEIR_AGENT_K_UID:
			if (!rd_str(&r, &rq->uid))
				return bad(why, "REQUEST_HEADERS: uid is not a string");
			break;
		case WEIR_AGENT_K_BODY_LENGTH:
			if (!rd_uint(&r, &rq->body_length))
				return bad(why, "REQUEST_HEADERS: body_length is not an unsigned integer");
			rq->has_body_length = true;
			break;
		default:
			if (skip_value(&r, why) != 0)
				return -1;
		}
	}
	if (map_close(&r, why) != 0)
		return -1;
	if (!SEEN(WEIR_AGENT_K_METHOD) || !SEEN(WEIR_AGENT_K_TARGET))
		return bad(why, "REQUEST_HEADERS: no method or no target");
	rq->path = rq->target;
	for (size_t i = 0; i < rq->target.len; i++) {
		if (rq->target.ptr[i] == '?') {
			rq->path.len = i;
			break;
		}
	}
	return 0;
}

int weir__sdk_dec_response(const char *p, size_t n, struct weir_agent_response *rs,
			   struct weir_agent_header *hdrs, uint32_t cap, bool trusted, const char **why)
{
	struct rd r;
	uint64_t seen = 0, key, v;
	uint32_t count;

	memset(rs, 0, sizeof(*rs));
	rs->http_minor = 1;
	rs->headers = hdrs;
	if (map_open_(&r, p, n, &count, !trusted, why) != 0)
		return -1;
	for (uint32_t i = 0; i < count; i++) {
		if (map_key(&r, &seen, &key, why) != 0)
			return -1;
		switch (key) {
		case WEIR_AGENT_K_STATUS:
			if (!rd_uint_max(&r, 999, &v) || v < 100)
				return bad(why, "RESPONSE_HEADERS: status is not 100..999");
			rs->status = (uint16_t)v;
			break;
		case WEIR_AGENT_K_HTTP_MINOR:
			if (!rd_uint_max(&r, 1, &v))
				return bad(why, "RESPONSE_HEADERS: http_minor is not 0 or 1");
			rs->http_minor = (uint8_t)v;
			break;
		case WEIR_AGENT_K_HEADERS:
			if (dec_headers(&r, &rs->nheaders, &rs->headers, hdrs, cap, why) != 0)
				return -1;
			break;
		case WEIR_AGENT_K_BODY_LENGTH:
			if (!rd_uint(&r, &rs->body_length))
				return bad(why, "RESPONSE_HEADERS: body_length is not an unsigned integer");
			rs->has_body_length = true;
			break;
		default:
			if (skip_value(&r, why) != 0)
				return -1;
		}
	}
	if (map_close(&r, why) != 0)
		return -1;
	if (!SEEN(WEIR_AGENT_K_STATUS))
		return bad(why, "RESPONSE_HEADERS: no status");
	return 0;
}

int weir__sdk_dec_body(const char *p, size_t n, struct weir_agent_chunk *c, const char **why)
{
	return weir__sdk_dec_body_ref(p, n, c, NULL, why);
}

int weir__sdk_dec_body_ref(const char *p, size_t n, struct weir_agent_chunk *c,
			   struct weir__sdk_bref *ref, const char **why)
{
	struct rd r;
	uint64_t seen = 0, key, v;
	uint32_t count;
	struct weir_agent_str data = { NULL, 0 };

	c->offset = 0;
	if (ref != NULL)
		*ref = (struct weir__sdk_bref){ 0 };
	if (map_open(&r, p, n, &count, why) != 0)
		return -1;
	for (uint32_t i = 0; i < count; i++) {
		if (map_key(&r, &seen, &key, why) != 0)
			return -1;
		switch (key) {
		case WEIR_AGENT_K_OFFSET:
			if (!rd_uint(&r, &c->offset))
				return bad(why, "body: offset is not an unsigned integer");
			break;
		case WEIR_AGENT_K_DATA:
			if (!rd_bin(&r, &data))
				return bad(why, "body: data is not bin");
			break;
		case WEIR_AGENT_K_ARENA_OFF:
		case WEIR_AGENT_K_ARENA_LEN:
		case WEIR_AGENT_K_SHM_BUF:
			if (ref == NULL) {
				if (skip_value(&r, why) != 0)
					return -1;
				break;
			}
			if (!rd_uint(&r, &v))
				return bad(why, "body: arena reference is not an unsigned integer");
			if (key == WEIR_AGENT_K_ARENA_OFF)
				ref->off = v;
			else if (key == WEIR_AGENT_K_ARENA_LEN)
				ref->len = v;
			else
				ref->buf = v;
			break;
		default:
			if (skip_value(&r, why) != 0)
				return -1;
		}
	}
	if (map_close(&r, why) != 0)
		return -1;
	if (ref != NULL && SEEN(WEIR_AGENT_K_ARENA_OFF) && SEEN(WEIR_AGENT_K_ARENA_LEN) &&
	    SEEN(WEIR_AGENT_K_SHM_BUF) && !SEEN(WEIR_AGENT_K_DATA) && SEEN(WEIR_AGENT_K_OFFSET)) {
		ref->has = true;
		if (ref->len > UINT64_MAX - c->offset)
			return bad(why, "body: offset + length overflows");
		c->data = NULL;
		c->len = (size_t)ref->len;
		return 0;
	}
	if (!SEEN(WEIR_AGENT_K_OFFSET) || !SEEN(WEIR_AGENT_K_DATA))
		return bad(why, "body: no offset or no data");
	if (data.len > UINT64_MAX - c->offset)
		return bad(why, "body: offset + length overflows");
	c->data = data.ptr;
	c->len = data.len;
	return 0;
}

int weir__sdk_dec_done(const char *p, size_t n, struct weir_agent_done *d, const char **why)
{
	struct rd r;
	uint64_t seen = 0, key, v;
	uint32_t count;

	memset(d, 0, sizeof(*d));
	if (map_open(&r, p, n, &count, why) != 0)
		return -1;
	for (uint32_t i = 0; i < count; i++) {
		if (map_key(&r, &seen, &key, why) != 0)
			return -1;
		switch (key) {
		case WEIR_AGENT_K_STATUS:
			if (!rd_uint_max(&r, 999, &v))
				return bad(why, "REQUEST_DONE: status is not 0..999");
			d->status = (uint16_t)v;
			break;
		case WEIR_AGENT_K_BYTES_IN:
			if (!rd_uint(&r, &d->bytes_in))
				return bad(why, "REQUEST_DONE: bytes_in is not an unsigned integer");
			break;
		case WEIR_AGENT_K_BYTES_OUT:
			if (!rd_uint(&r, &d->bytes_out))
				return bad(why, "REQUEST_DONE: bytes_out is not an unsigned integer");
			break;
		case WEIR_AGENT_K_DURATION_US:
			if (!rd_uint(&r, &d->duration_us))
				return bad(why, "REQUEST_DONE: duration_us is not an unsigned integer");
			break;
		default:
			if (skip_value(&r, why) != 0)
				return -1;
		}
	}
	return map_close(&r, why);
}

int weir__sdk_dec_cancel(const char *p, size_t n, uint32_t *reason, const char **why)
{
	struct rd r;
	uint64_t seen = 0, key, v;
	uint32_t count;

	*reason = 0;
	if (map_open(&r, p, n, &count, why) != 0)
		return -1;
	for (uint32_t i = 0; i < count; i++) {
		if (map_key(&r, &seen, &key, why) != 0)
			return -1;
		if (key == WEIR_AGENT_K_CANCEL_REASON) {
			/* values beyond enum weir_agent_cancel are passed on */
			if (!rd_uint_max(&r, INT32_MAX, &v))
				return bad(why, "CANCEL: cancel_reason is not an unsigned integer");
			*reason = (uint32_t)v;
		} else if (skip_value(&r, why) != 0) {
			return -1;
		}
	}
	return map_close(&r, why);
}

int weir__sdk_dec_map(const char *p, size_t n, const char **why)
{
	struct rd r;
	uint64_t seen = 0, key;
	uint32_t count;

	if (map_open(&r, p, n, &count, why) != 0)
		return -1;
	for (uint32_t i = 0; i < count; i++)
		if (map_key(&r, &seen, &key, why) != 0 || skip_value(&r, why) != 0)
			return -1;
	return map_close(&r, why);
}

/* ---- encoders ----------------------------------------------------------- */

static char *enc_kuint(char *w, unsigned key, uint64_t v)
{
	w = mp_encode_uint(w, key);
	return mp_encode_uint(w, v);
}

static char *enc_kstr(char *w, unsigned key, const char *s, size_t len)
{
	w = mp_encode_uint(w, key);
	return mp_encode_str(w, s, (uint32_t)len);
}

static uint32_t finish(char *dst, char *w, uint8_t type, uint64_t id)
{
	uint32_t size = (uint32_t)(w - dst);

	weir__sdk_hdr_put(dst, size - WEIR_AGENT_HDR_SIZE, type, 0, id);
	return size;
}

/* Key order as in the spec's example, so that it can be compared byte for
 * byte: version, capabilities, max_frame, max_in_flight, events, name,
 * body_window. */
uint32_t weir__sdk_enc_hello_reply(char *dst, const struct weir__sdk_hello_reply *h)
{
	size_t nl = h->name.len > WEIR_AGENT_MAX_NAME ? WEIR_AGENT_MAX_NAME : h->name.len;
	char *w = dst + WEIR_AGENT_HDR_SIZE;

	w = mp_encode_map(w, 5 + (nl != 0) + h->has_window);
	w = enc_kuint(w, WEIR_AGENT_K_VERSION, WEIR_AGENT_VERSION);
	w = enc_kuint(w, WEIR_AGENT_K_CAPABILITIES, h->caps);
	w = enc_kuint(w, WEIR_AGENT_K_MAX_FRAME, h->max_frame);
	w = enc_kuint(w, WEIR_AGENT_K_MAX_IN_FLIGHT, h->max_in_flight);
	w = enc_kuint(w, WEIR_AGENT_K_EVENTS, h->events);
	if (nl != 0)
		w = enc_kstr(w, WEIR_AGENT_K_NAME, h->name.ptr, nl);
	if (h->has_window)
		w = enc_kuint(w, WEIR_AGENT_K_BODY_WINDOW, h->body_window);
	return finish(dst, w, WEIR_AGENT_HELLO_REPLY, 0);
}

uint32_t weir__sdk_enc_empty(char *dst, uint8_t type, uint64_t id)
{
	char *w = mp_encode_map(dst + WEIR_AGENT_HDR_SIZE, 0);

	return finish(dst, w, type, id);
}

uint32_t weir__sdk_enc_credit(char *dst, uint64_t id, uint64_t bytes)
{
	char *w = mp_encode_map(dst + WEIR_AGENT_HDR_SIZE, 1);

	w = enc_kuint(w, WEIR_AGENT_K_BYTES, bytes);
	return finish(dst, w, WEIR_AGENT_CREDIT, id);
}

uint32_t weir__sdk_enc_goaway(char *dst, const char *reason)
{
	size_t rl = reason != NULL ? strnlen(reason, 200) : 0;
	char *w = mp_encode_map(dst + WEIR_AGENT_HDR_SIZE, rl != 0);

	if (rl != 0)
		w = enc_kstr(w, WEIR_AGENT_K_REASON, reason, rl);
	return finish(dst, w, WEIR_AGENT_GOAWAY, 0);
}
