/* Agent protocol codec (proxy side). See weir/agent_proto.h. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <msgpuck.h>

#include "weir/agent_fields.h"
#include "weir/agent_proto.h"
#include "weir/be.h"
#include "weir/alloc.h"

void weir_agent_frame_hdr_put(char *dst, uint32_t payload_len, uint8_t type, uint8_t flags,
			      uint64_t id)
{
	weir_put_be32(dst, WEIR_AGENT_LEN_MIN + payload_len);
	dst[4] = (char)type;
	dst[5] = (char)flags;
	dst[6] = 0;
	dst[7] = 0;
	weir_put_be32(dst + 8, (uint32_t)(id >> 32));
	weir_put_be32(dst + 12, (uint32_t)id);
}

int weir_agent_frame_parse(const char *p, size_t n, uint32_t max_frame,
			   struct weir_agent_frame *f, uint32_t *need)
{
	uint32_t length;

	if (n < 4) {
		*need = WEIR_AGENT_HDR_SIZE;
		return WEIR_H1_NEED_MORE;
	}
	length = weir_get_be32(p);
	if (length < WEIR_AGENT_LEN_MIN || length > max_frame - 4)
		return -1;
	*need = length + 4;
	if (n < (size_t)length + 4)
		return WEIR_H1_NEED_MORE;
	f->size = length + 4;
	f->type = (uint8_t)p[4];
	f->flags = (uint8_t)p[5];
	f->id = (uint64_t)weir_get_be32(p + 8) << 32 | weir_get_be32(p + 12);
	f->payload = p + WEIR_AGENT_HDR_SIZE;
	f->payload_len = length - WEIR_AGENT_LEN_MIN;
	return 0;
}

/* ---- decoding ----------------------------------------------------------- */

/* Validates one MessagePack value covering exactly [p, end). Own walker:
 * msgpuck's mp_check counts pending elements in 32 bits, so a map32 header
 * announcing ~2^31 pairs wraps the count and passes. Here the count is 64
 * bits and may never exceed the bytes left (every element takes at least
 * one), which also bounds the work. */
static int check_value(const unsigned char *p, const unsigned char *end)
{
	uint64_t pending = 1;

	while (pending != 0) {
		uint64_t left = (uint64_t)(end - p), add = 0, skip = 0;
		unsigned char c;

		if (left == 0)
			return -1;
		c = *p++;
		left--;
		pending--;
		if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
			/* fixint, nil, bool */
		} else if (c >= 0x80 && c <= 0x8f) {
			add = 2u * (c & 0x0fu);
		} else if (c >= 0x90 && c <= 0x9f) {
			add = c & 0x0fu;
		} else if (c >= 0xa0 && c <= 0xbf) {
			skip = c & 0x1fu;
		} else {
			unsigned w;     /* width of the length / value that follows */
			uint64_t n = 0;

			switch (c) {
			case 0xcc: case 0xd0: skip = 1; break;
			case 0xcd: case 0xd1: skip = 2; break;
			case 0xca: case 0xce: case 0xd2: skip = 4; break;
			case 0xcb: case 0xcf: case 0xd3: skip = 8; break;
			case 0xd4: skip = 2; break;     /* fixext 1..16: type + data */
			case 0xd5: skip = 3; break;
			case 0xd6: skip = 5; break;
			case 0xd7: skip = 9; break;
			case 0xd8: skip = 17; break;
			default: break;
			}
			if (skip != 0 || c == 0xcc) {
				/* fixed size: handled below */
			} else {
				switch (c) {
				case 0xc4: case 0xd9: case 0xc7: w = 1; break;
				case 0xc5: case 0xda: case 0xc8: case 0xdc: case 0xde: w = 2; break;
				case 0xc6: case 0xdb: case 0xc9: case 0xdd: case 0xdf: w = 4; break;
				default: return -1;     /* 0xc1: never used */
				}
				if (left < w)
					return -1;
				for (unsigned i = 0; i < w; i++)
					n = n << 8 | p[i];
				p += w;
				left -= w;
				if (c == 0xdc || c == 0xdd)
					add = n;
				else if (c == 0xde || c == 0xdf)
					add = 2 * n;
				else if (c == 0xc7 || c == 0xc8 || c == 0xc9)
					skip = n + 1;   /* ext: type byte + data */
				else
					skip = n;
			}
		}
		if (skip > left)
			return -1;
		p += skip;
		left -= skip;
		pending += add;
		if (pending > left)
			return -1;
	}
	return p == end ? 0 : 1;
}

int weir_agent_check_map(const char *p, size_t n, const char **why)
{
	int ret;

	if (n == 0 || mp_typeof(*p) != MP_MAP) {
		*why = "payload is not a MessagePack map";
		return -1;
	}
	ret = check_value((const unsigned char *)p, (const unsigned char *)p + n);
	if (ret < 0) {
		*why = "truncated or invalid MessagePack";
		return -1;
	}
	if (ret > 0) {
		*why = "bytes after the payload map";
		return -1;
	}
	return 0;
}

/* Reads a non-negative integer key or value; on failure *cur is unchanged. */
static int get_uint(const char **cur, uint64_t *v)
{
	const char *c = *cur;

	switch (mp_typeof(*c)) {
	case MP_UINT:
		*v = mp_decode_uint(&c);
		break;
	case MP_INT: {
		int64_t i = mp_decode_int(&c);

		if (i < 0)
			return -1;
		*v = (uint64_t)i;
		break;
	}
	default:
		return -1;
	}
	*cur = c;
	return 0;
}

static int get_str(const char **cur, weir_slice_t *s)
{
	uint32_t len;

	if (mp_typeof(**cur) != MP_STR)
		return -1;
	s->ptr = mp_decode_str(cur, &len);
	s->len = len;
	return 0;
}

static int get_strbin(const char **cur, weir_slice_t *s)
{
	uint32_t len;

	if (mp_typeof(**cur) != MP_STR && mp_typeof(**cur) != MP_BIN)
		return -1;
	s->ptr = mp_decode_strbin(cur, &len);
	s->len = len;
	return 0;
}

int weir_agent_decode_hello_reply(const char *p, size_t n, struct weir_agent_hello_reply *h,
				  const char **why)
{
	const char *cur = p;
	uint32_t npairs;

	memset(h, 0, sizeof(*h));
	h->max_frame = WEIR_AGENT_MAX_FRAME_DEFAULT;
	if (weir_agent_check_map(p, n, why) != 0)
		return -1;
	npairs = mp_decode_map(&cur);
	for (uint32_t i = 0; i < npairs; i++) {
		uint64_t key, v;

		if (get_uint(&cur, &key) != 0) {
			/* unknown key types are skipped with their values */
			mp_next(&cur);
			mp_next(&cur);
			continue;
		}
		switch (key) {
		case WEIR_AGENT_K_VERSION:
		case WEIR_AGENT_K_CAPABILITIES:
		case WEIR_AGENT_K_MAX_FRAME:
		case WEIR_AGENT_K_MAX_IN_FLIGHT:
		case WEIR_AGENT_K_EVENTS:
		case WEIR_AGENT_K_BODY_WINDOW:
			if (get_uint(&cur, &v) != 0) {
				*why = "HELLO_REPLY: a numeric field is not a non-negative integer";
				return -1;
			}
			if (key == WEIR_AGENT_K_VERSION)
				h->version = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
			else if (key == WEIR_AGENT_K_CAPABILITIES)
				h->caps = (uint32_t)v;
			else if (key == WEIR_AGENT_K_MAX_FRAME)
				h->max_frame = (uint32_t)WEIR_MIN(WEIR_MAX(v, (uint64_t)WEIR_AGENT_MAX_FRAME_MIN),
								  (uint64_t)WEIR_AGENT_MAX_FRAME_CEIL);
			else if (key == WEIR_AGENT_K_MAX_IN_FLIGHT)
				h->max_in_flight = (uint32_t)WEIR_MIN(v, (uint64_t)4096);
			else if (key == WEIR_AGENT_K_EVENTS)
				h->events = (uint32_t)(v & WEIR_AGENT_EV_ALL);
			else
				h->body_window = v;
			break;
		case WEIR_AGENT_K_NAME:
			if (get_str(&cur, &h->name) != 0 || h->name.len > WEIR_AGENT_MAX_NAME) {
				*why = "HELLO_REPLY: name is not a string of at most 64 bytes";
				return -1;
			}
			break;
		default:
			mp_next(&cur);
			break;
		}
	}
	if (h->version != WEIR_AGENT_VERSION) {
		*why = "HELLO_REPLY: unsupported or missing protocol version";
		return -1;
	}
	if (h->events == 0) {
		*why = "HELLO_REPLY: no events subscribed";
		return -1;
	}
	return 0;
}

static int get_pairs(const char **cur, struct weir_agent_kv *kv, uint32_t *nout, bool names_only)
{
	uint32_t n;

	if (mp_typeof(**cur) != MP_ARRAY)
		return -1;
	n = mp_decode_array(cur);
	if (names_only) {
		if (n > WEIR_AGENT_MAX_MUTATIONS)
			return -1;
	} else if (n % 2 != 0 || n / 2 > WEIR_AGENT_MAX_MUTATIONS) {
		return -1;
	}
	*nout = names_only ? n : n / 2;
	for (uint32_t i = 0; i < *nout; i++) {
		if (get_str(cur, &kv[i].name) != 0 ||
		    !weir_agent_name_ok(kv[i].name.ptr, kv[i].name.len))
			return -1;
		if (names_only) {
			kv[i].value.ptr = NULL;
			kv[i].value.len = 0;
			continue;
		}
		if (get_str(cur, &kv[i].value) != 0 ||
		    !weir_agent_value_ok(kv[i].value.ptr, kv[i].value.len))
			return -1;
	}
	return 0;
}

static int get_audit(const char **cur, weir_slice_t *out, uint32_t *nout, char (*buf)[24],
		     bool numbers_ok)
{
	uint32_t n;

	if (mp_typeof(**cur) != MP_ARRAY)
		return -1;
	n = mp_decode_array(cur);
	if (n > WEIR_AGENT_MAX_AUDIT)
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t v;

		if (numbers_ok && get_uint(cur, &v) == 0) {
			int k = snprintf(buf[i], sizeof(buf[i]), "%" PRIu64, v);

			out[i].ptr = buf[i];
			out[i].len = (size_t)k;
			continue;
		}
		if (get_str(cur, &out[i]) != 0 || out[i].len > WEIR_AGENT_MAX_NAME ||
		    !weir_agent_value_ok(out[i].ptr, out[i].len))
			return -1;
	}
	*nout = n;
	return 0;
}

static bool redirect_status(uint64_t s)
{
	return s == 301 || s == 302 || s == 303 || s == 307 || s == 308;
}

int weir_agent_decode_verdict(const char *p, size_t n, struct weir_agent_verdict *v,
			      const char **why)
{
	const char *cur = p;
	bool has_status = false, has_action = false;
	uint32_t npairs;

	v->action = WEIR_AGENT_ALLOW;
	v->phase = WEIR_AGENT_PHASE_REQUEST;
	v->status = 0;
	v->location.ptr = v->body.ptr = v->reason.ptr = NULL;
	v->location.len = v->body.len = v->reason.len = 0;
	v->has_score = false;
	v->has_replace = false;
	v->body_replace.ptr = NULL;
	v->body_replace.len = 0;
	v->ntags = v->nrules = 0;
	memset(v->n, 0, sizeof(v->n));
	if (weir_agent_check_map(p, n, why) != 0)
		return -1;
	npairs = mp_decode_map(&cur);
	for (uint32_t i = 0; i < npairs; i++) {
		uint64_t key, u;
		int list = -1;

		if (get_uint(&cur, &key) != 0) {
			mp_next(&cur);
			mp_next(&cur);
			continue;
		}
		switch (key) {
		case WEIR_AGENT_K_ACTION:
			if (get_uint(&cur, &u) != 0 || u > WEIR_AGENT_REDIRECT) {
				*why = "VERDICT: unknown action";
				return -1;
			}
			v->action = (uint32_t)u;
			has_action = true;
			break;
		case WEIR_AGENT_K_PHASE:
			if (get_uint(&cur, &u) != 0 || u > WEIR_AGENT_PHASE_RESPONSE) {
				*why = "VERDICT: unknown phase";
				return -1;
			}
			v->phase = (uint32_t)u;
			break;
		case WEIR_AGENT_K_STATUS:
			if (get_uint(&cur, &u) != 0 || u < 200 || u > 599) {
				*why = "VERDICT: status is not an integer from 200 to 599";
				return -1;
			}
			v->status = (uint32_t)u;
			has_status = true;
			break;
		case WEIR_AGENT_K_LOCATION:
			if (get_str(&cur, &v->location) != 0 || v->location.len == 0 ||
			    !weir_agent_value_ok(v->location.ptr, v->location.len)) {
				*why = "VERDICT: invalid location";
				return -1;
			}
			break;
		case WEIR_AGENT_K_BODY:
			if (get_strbin(&cur, &v->body) != 0) {
				*why = "VERDICT: body is not bin or str";
				return -1;
			}
			break;
		case WEIR_AGENT_K_BODY_REPLACE:
			if (get_strbin(&cur, &v->body_replace) != 0) {
				*why = "VERDICT: body_replace is not bin or str";
				return -1;
			}
			v->has_replace = true;
			break;
		case WEIR_AGENT_K_REASON:
			if (get_str(&cur, &v->reason) != 0 || v->reason.len > WEIR_AGENT_MAX_REASON) {
				*why = "VERDICT: reason is not a string of at most 1024 bytes";
				return -1;
			}
			break;
		case WEIR_AGENT_K_SCORE:
			if (mp_typeof(*cur) == MP_UINT) {
				uint64_t s = mp_decode_uint(&cur);

				v->score = s > INT64_MAX ? INT64_MAX : (int64_t)s;
			} else if (mp_typeof(*cur) == MP_INT) {
				v->score = mp_decode_int(&cur);
			} else {
				*why = "VERDICT: score is not an integer";
				return -1;
			}
			v->has_score = true;
			break;
		case WEIR_AGENT_K_TAGS:
			if (get_audit(&cur, v->tags, &v->ntags, v->rule_buf, false) != 0) {
				*why = "VERDICT: invalid tags";
				return -1;
			}
			break;
		case WEIR_AGENT_K_RULE_IDS:
			if (get_audit(&cur, v->rules, &v->nrules, v->rule_buf, true) != 0) {
				*why = "VERDICT: invalid rule_ids";
				return -1;
			}
			break;
		case WEIR_AGENT_K_REQ_SET: list = WEIR_MUT_REQ_SET; break;
		case WEIR_AGENT_K_REQ_ADD: list = WEIR_MUT_REQ_ADD; break;
		case WEIR_AGENT_K_REQ_DEL: list = WEIR_MUT_REQ_DEL; break;
		case WEIR_AGENT_K_RESP_SET: list = WEIR_MUT_RESP_SET; break;
		case WEIR_AGENT_K_RESP_ADD: list = WEIR_MUT_RESP_ADD; break;
		case WEIR_AGENT_K_RESP_DEL: list = WEIR_MUT_RESP_DEL; break;
		case WEIR_AGENT_K_HEADERS_OUT: list = WEIR_MUT_HEADERS_OUT; break;
		default:
			mp_next(&cur);
			break;
		}
		if (list >= 0 &&
		    get_pairs(&cur, v->kv[list], &v->n[list],
			      list == WEIR_MUT_REQ_DEL || list == WEIR_MUT_RESP_DEL) != 0) {
			*why = "VERDICT: invalid header list (names must be tokens, values without "
			       "CR, LF, NUL; at most 64 entries)";
			return -1;
		}
	}
	if (!has_action) {
		*why = "VERDICT: no action";
		return -1;
	}
	if (v->action == WEIR_AGENT_BLOCK && !has_status)
		v->status = 403;
	if (v->action == WEIR_AGENT_REDIRECT) {
		if (!has_status)
			v->status = 302;
		if (!redirect_status(v->status)) {
			*why = "VERDICT: redirect status must be 301, 302, 303, 307 or 308";
			return -1;
		}
		if (v->location.len == 0) {
			*why = "VERDICT: redirect without location";
			return -1;
		}
	}
	return 0;
}

/* A map whose one required member is the non-negative integer at `key`
 * (unknown keys skipped): CREDIT, SHM_READY. */
static int decode_one_uint(const char *p, size_t n, uint64_t want, uint64_t *out,
			   const char *bad, const char *missing, const char **why)
{
	const char *cur = p;
	uint32_t npairs;
	bool found = false;

	if (weir_agent_check_map(p, n, why) != 0)
		return -1;
	npairs = mp_decode_map(&cur);
	for (uint32_t i = 0; i < npairs; i++) {
		uint64_t key;

		if (get_uint(&cur, &key) != 0) {
			mp_next(&cur);
			mp_next(&cur);
			continue;
		}
		if (key != want) {
			mp_next(&cur);
			continue;
		}
		if (get_uint(&cur, out) != 0) {
			*why = bad;
			return -1;
		}
		found = true;
	}
	if (!found) {
		*why = missing;
		return -1;
	}
	return 0;
}

int weir_agent_decode_credit(const char *p, size_t n, uint64_t *bytes, const char **why)
{
	return decode_one_uint(p, n, WEIR_AGENT_K_BYTES, bytes,
			       "CREDIT: bytes is not a non-negative integer", "CREDIT: no bytes", why);
}

bool weir_agent_protected_header(weir_slice_t name)
{
	return weir_agent_protected_name(name.ptr, name.len);
}

/* ---- encoding ----------------------------------------------------------- */

static char *frame_alloc(size_t payload, uint32_t *len)
{
	char *b;

	if (payload > WEIR_AGENT_MAX_FRAME_CEIL)
		return NULL;
	b = weir_malloc(WEIR_AGENT_HDR_SIZE + payload);
	*len = (uint32_t)(WEIR_AGENT_HDR_SIZE + payload);
	return b;
}

static char *enc_kuint(char *w, unsigned key, uint64_t v)
{
	w = mp_encode_uint(w, key);
	return mp_encode_uint(w, v);
}

static char *enc_kstr(char *w, unsigned key, const char *s, size_t n)
{
	w = mp_encode_uint(w, key);
	return mp_encode_str(w, s, (uint32_t)n);
}

#define KUINT_MAX (1 + 9)
#define KSTR_SIZE(n) (1 + mp_sizeof_str((uint32_t)(n)))

char *weir_agent_enc_hello(const char *name, unsigned reactor, uint32_t events, uint32_t caps,
			   uint32_t *len)
{
	size_t nl = strlen(name);
	size_t size = 1 + 5 * KUINT_MAX + KSTR_SIZE(nl);
	char *b = frame_alloc(size, len), *w;

	if (b == NULL)
		return NULL;
	w = b + WEIR_AGENT_HDR_SIZE;
	w = mp_encode_map(w, 6);
	w = enc_kuint(w, WEIR_AGENT_K_VERSION, WEIR_AGENT_VERSION);
	w = enc_kuint(w, WEIR_AGENT_K_CAPABILITIES, caps);
	w = enc_kuint(w, WEIR_AGENT_K_MAX_FRAME, WEIR_AGENT_MAX_FRAME_DEFAULT);
	w = enc_kuint(w, WEIR_AGENT_K_EVENTS, events);
	w = enc_kstr(w, WEIR_AGENT_K_NAME, name, nl);
	w = enc_kuint(w, WEIR_AGENT_K_REACTOR, reactor);
	*len = (uint32_t)(w - b);
	weir_agent_frame_hdr_put(b, *len - WEIR_AGENT_HDR_SIZE, WEIR_AGENT_HELLO, 0, 0);
	return b;
}

static size_t headers_size(const struct weir_h1_header *h, size_t n)
{
	size_t size = 1 + mp_sizeof_array((uint32_t)(2 * n));

	for (size_t i = 0; i < n; i++)
		size += mp_sizeof_str((uint32_t)h[i].name.len) +
			mp_sizeof_str((uint32_t)h[i].value.len);
	return size;
}

static char *enc_headers(char *w, const struct weir_h1_header *h, size_t n)
{
	w = mp_encode_uint(w, WEIR_AGENT_K_HEADERS);
	w = mp_encode_array(w, (uint32_t)(2 * n));
	for (size_t i = 0; i < n; i++) {
		w = mp_encode_str(w, h[i].name.ptr, (uint32_t)h[i].name.len);
		w = mp_encode_str(w, h[i].value.ptr, (uint32_t)h[i].value.len);
	}
	return w;
}

char *weir_agent_enc_request_headers(uint64_t id, const struct weir_agent_req_info *ri,
				     uint32_t *len)
{
	const struct weir_h1_request *req = ri->req;
	size_t al = strlen(ri->client_addr), rl = strlen(ri->route), ul = strlen(ri->uid);
	bool has_len = req->body == WEIR_H1_BODY_LENGTH;
	size_t size = 1 + KSTR_SIZE(req->method.len) + KSTR_SIZE(req->target.len) + KUINT_MAX +
		      headers_size(req->headers, req->nheaders) + KSTR_SIZE(al) + KUINT_MAX +
		      KSTR_SIZE(rl) + KSTR_SIZE(ul) + (has_len ? KUINT_MAX : 0);
	char *b = frame_alloc(size, len), *w;

	if (b == NULL)
		return NULL;
	w = b + WEIR_AGENT_HDR_SIZE;
	w = mp_encode_map(w, has_len ? 9 : 8);
	w = enc_kstr(w, WEIR_AGENT_K_METHOD, req->method.ptr, req->method.len);
	w = enc_kstr(w, WEIR_AGENT_K_TARGET, req->target.ptr, req->target.len);
	w = enc_kuint(w, WEIR_AGENT_K_HTTP_MINOR, (uint64_t)req->minor_version);
	w = enc_headers(w, req->headers, req->nheaders);
	w = enc_kstr(w, WEIR_AGENT_K_CLIENT_ADDR, ri->client_addr, al);
	w = enc_kuint(w, WEIR_AGENT_K_CLIENT_PORT, ri->client_port);
	w = enc_kstr(w, WEIR_AGENT_K_ROUTE, ri->route, rl);
	w = enc_kstr(w, WEIR_AGENT_K_UID, ri->uid, ul);
	if (has_len)
		w = enc_kuint(w, WEIR_AGENT_K_BODY_LENGTH, req->content_length);
	*len = (uint32_t)(w - b);
	weir_agent_frame_hdr_put(b, *len - WEIR_AGENT_HDR_SIZE, WEIR_AGENT_REQUEST_HEADERS,
				 req->body == WEIR_H1_BODY_NONE ? WEIR_AGENT_F_LAST : 0, id);
	return b;
}

char *weir_agent_enc_response_headers(uint64_t id, const struct weir_h1_response *res,
				      uint32_t *len)
{
	bool has_len = res->body == WEIR_H1_BODY_LENGTH;
	size_t size = 1 + 2 * KUINT_MAX + headers_size(res->headers, res->nheaders) +
		      (has_len ? KUINT_MAX : 0);
	char *b = frame_alloc(size, len), *w;

	if (b == NULL)
		return NULL;
	w = b + WEIR_AGENT_HDR_SIZE;
	w = mp_encode_map(w, has_len ? 4 : 3);
	w = enc_kuint(w, WEIR_AGENT_K_STATUS, (uint64_t)res->status);
	w = enc_kuint(w, WEIR_AGENT_K_HTTP_MINOR, (uint64_t)res->minor_version);
	w = enc_headers(w, res->headers, res->nheaders);
	if (has_len)
		w = enc_kuint(w, WEIR_AGENT_K_BODY_LENGTH, res->content_length);
	*len = (uint32_t)(w - b);
	weir_agent_frame_hdr_put(b, *len - WEIR_AGENT_HDR_SIZE, WEIR_AGENT_RESPONSE_HEADERS,
				 res->body == WEIR_H1_BODY_NONE ||
				 (has_len && res->content_length == 0) ? WEIR_AGENT_F_LAST : 0,
				 id);
	return b;
}

char *weir_agent_enc_done(uint64_t id, unsigned status, uint64_t bytes_in, uint64_t bytes_out,
			  uint64_t duration_us, uint32_t *len)
{
	char *b = frame_alloc(1 + 4 * KUINT_MAX, len), *w;

	if (b == NULL)
		return NULL;
	w = b + WEIR_AGENT_HDR_SIZE;
	w = mp_encode_map(w, 4);
	w = enc_kuint(w, WEIR_AGENT_K_STATUS, status);
	w = enc_kuint(w, WEIR_AGENT_K_BYTES_IN, bytes_in);
	w = enc_kuint(w, WEIR_AGENT_K_BYTES_OUT, bytes_out);
	w = enc_kuint(w, WEIR_AGENT_K_DURATION_US, duration_us);
	*len = (uint32_t)(w - b);
	weir_agent_frame_hdr_put(b, *len - WEIR_AGENT_HDR_SIZE, WEIR_AGENT_REQUEST_DONE, 0, id);
	return b;
}

char *weir_agent_enc_cancel(uint64_t id, unsigned reason, uint32_t *len)
{
	char *b = frame_alloc(1 + KUINT_MAX, len), *w;

	if (b == NULL)
		return NULL;
	w = b + WEIR_AGENT_HDR_SIZE;
	w = mp_encode_map(w, 1);
	w = enc_kuint(w, WEIR_AGENT_K_CANCEL_REASON, reason);
	*len = (uint32_t)(w - b);
	weir_agent_frame_hdr_put(b, *len - WEIR_AGENT_HDR_SIZE, WEIR_AGENT_CANCEL, 0, id);
	return b;
}

char *weir_agent_enc_ping(uint64_t nonce, uint32_t *len)
{
	char *b = frame_alloc(1, len);

	if (b == NULL)
		return NULL;
	mp_encode_map(b + WEIR_AGENT_HDR_SIZE, 0);
	weir_agent_frame_hdr_put(b, 1, WEIR_AGENT_PING, 0, nonce);
	return b;
}

uint32_t weir_agent_body_prefix(char *dst, uint8_t type, uint64_t id, bool last,
				uint64_t offset, uint32_t data_len)
{
	char *w = dst + WEIR_AGENT_HDR_SIZE;
	uint32_t plen;

	w = mp_encode_map(w, 2);
	w = enc_kuint(w, WEIR_AGENT_K_OFFSET, offset);
	w = mp_encode_uint(w, WEIR_AGENT_K_DATA);
	w = mp_encode_binl(w, data_len);
	plen = (uint32_t)(w - dst);
	weir_agent_frame_hdr_put(dst, plen - WEIR_AGENT_HDR_SIZE + data_len, type,
				 last ? WEIR_AGENT_F_LAST : 0, id);
	return plen;
}

/* ---- shared-memory transport --------------------------------------------- */

uint32_t weir_agent_body_ref(char *dst, uint8_t type, uint64_t id, bool last, uint64_t offset,
			     uint64_t arena_off, uint32_t data_len, uint32_t buf)
{
	char *w = dst + WEIR_AGENT_HDR_SIZE;
	uint32_t len;

	w = mp_encode_map(w, 4);
	w = enc_kuint(w, WEIR_AGENT_K_OFFSET, offset);
	w = enc_kuint(w, WEIR_AGENT_K_ARENA_OFF, arena_off);
	w = enc_kuint(w, WEIR_AGENT_K_ARENA_LEN, data_len);
	w = enc_kuint(w, WEIR_AGENT_K_SHM_BUF, buf);
	len = (uint32_t)(w - dst);
	weir_agent_frame_hdr_put(dst, len - WEIR_AGENT_HDR_SIZE, type, last ? WEIR_AGENT_F_LAST : 0,
				 id);
	return len;
}

char *weir_agent_enc_shm_setup(uint32_t *len)
{
	char *b = frame_alloc(1, len);

	if (b == NULL)
		return NULL;
	mp_encode_map(b + WEIR_AGENT_HDR_SIZE, 0);
	weir_agent_frame_hdr_put(b, 1, WEIR_AGENT_SHM_SETUP, 0, 0);
	return b;
}

int weir_agent_decode_shm_ready(const char *p, size_t n, uint64_t *status, const char **why)
{
	return decode_one_uint(p, n, WEIR_AGENT_K_SHM_STATUS, status,
			       "SHM_READY: status is not a non-negative integer", "SHM_READY: no status",
			       why);
}

int weir_agent_decode_release(const char *p, size_t n, uint32_t nbufs, uint32_t *idx,
			      uint32_t cap, uint32_t *count, const char **why)
{
	const char *cur = p;
	uint32_t npairs;

	*count = 0;
	if (weir_agent_check_map(p, n, why) != 0)
		return -1;
	npairs = mp_decode_map(&cur);
	for (uint32_t i = 0; i < npairs; i++) {
		uint64_t key;
		uint32_t na;

		if (get_uint(&cur, &key) != 0) {
			mp_next(&cur);
			mp_next(&cur);
			continue;
		}
		if (key != WEIR_AGENT_K_SHM_BUFS) {
			mp_next(&cur);
			continue;
		}
		if (mp_typeof(*cur) != MP_ARRAY) {
			*why = "RELEASE: bufs is not an array";
			return -1;
		}
		na = mp_decode_array(&cur);
		if (na > cap || na > WEIR_SHM_MAX_RELEASE || *count != 0) {
			*why = "RELEASE: too many buffers, or bufs repeated";
			return -1;
		}
		for (uint32_t k = 0; k < na; k++) {
			uint64_t b;

			if (get_uint(&cur, &b) != 0 || b >= nbufs) {
				*why = "RELEASE: buffer index out of range";
				return -1;
			}
			idx[k] = (uint32_t)b;
		}
		*count = na;
	}
	return 0;
}

int weir_agent_shm_rx(struct weir_ring *r, char *buf, uint32_t cap, unsigned max_frames,
		      int (*cb)(void *ctx, const struct weir_agent_frame *f), void *ctx,
		      const char **why)
{
	unsigned n = 0;

	while (n < max_frames) {
		struct weir_agent_frame f;
		uint32_t need;
		bool got;
		int len = weir_ring_read(r, buf, cap, &got);

		if (len < 0) {
			*why = len == WEIR_RING_ETOOBIG ? "shm: record over the frame limit"
							: "shm: invalid ring index or record";
			return -1;
		}
		if (!got)
			break;
		/* the record is ours now (copied): parse the copy, never the ring */
		if (weir_agent_frame_parse(buf, (size_t)len, cap, &f, &need) != 0 ||
		    f.size != (uint32_t)len) {
			*why = "shm: a record that is not exactly one frame";
			return -1;
		}
		n++;
		if (cb(ctx, &f) != 0)
			return -1;
	}
	return (int)n;
}
