/* The agent protocol's MessagePack cost with msgpuck: a REQUEST_HEADERS
 * payload of a browser request with 30 header fields (9 keys, 60 header
 * strings), encoded as weir does and decoded as libweir-agent does (strict:
 * mp_check, then one bounds-checked walk); and
 * a block VERDICT encoded by libweir-agent and decoded with validation as
 * the proxy must. */
#include <string.h>

#include <msgpuck.h>

#include "sdk-internal.h"
#include "wb.h"

static const char *const hdr[][2] = {
	{ "Host", "www.example.com" },
	{ "User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
			"Chrome/120.0.0.0 Safari/537.36" },
	{ "Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
		    "image/webp,*/*;q=0.8" },
	{ "Accept-Language", "en-US,en;q=0.9" },
	{ "Accept-Encoding", "gzip, deflate, br" },
	{ "Connection", "keep-alive" },
	{ "Cookie", "session=6f1c0a9e2b7d4c3f8e5a1b0d9c8e7f6a; prefs=dark; cart=3" },
	{ "Referer", "https://www.example.com/products/list?page=2" },
	{ "Upgrade-Insecure-Requests", "1" },
	{ "Sec-Fetch-Dest", "document" },
	{ "Sec-Fetch-Mode", "navigate" },
	{ "Sec-Fetch-Site", "same-origin" },
	{ "Sec-Fetch-User", "?1" },
	{ "Sec-Ch-Ua", "\"Chromium\";v=\"120\", \"Not?A_Brand\";v=\"8\"" },
	{ "Sec-Ch-Ua-Mobile", "?0" },
	{ "Sec-Ch-Ua-Platform", "\"Linux\"" },
	{ "Cache-Control", "max-age=0" },
	{ "X-Forwarded-Proto", "https" },
	{ "X-Request-Id", "5f1c2d9e-8b7a-4c3d-9e2f-1a0b9c8d7e6f" },
	{ "X-Real-Ip", "198.51.100.23" },
	{ "DNT", "1" },
	{ "Pragma", "no-cache" },
	{ "If-None-Match", "\"33a64df551425fcc55e4d42a148795d9f25f89d4\"" },
	{ "If-Modified-Since", "Wed, 21 Oct 2015 07:28:00 GMT" },
	{ "Origin", "https://www.example.com" },
	{ "Priority", "u=0, i" },
	{ "X-Client-Version", "4.2.1" },
	{ "X-Tenant", "acme" },
	{ "Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl" },
	{ "Content-Type", "application/x-www-form-urlencoded" },
};
#define NHDR (sizeof(hdr) / sizeof(hdr[0]))

static size_t hlen[NHDR][2];
static const char target[] = "/api/v1/orders?x=1";

static char *kstr(char *w, unsigned k, const char *s, size_t n)
{
	return mp_encode_str(mp_encode_uint(w, k), s, (uint32_t)n);
}

/* As weir encodes it: size first (one allocation), then the bytes. */
static size_t encode_request_headers(char *dst, size_t cap)
{
	size_t size = WEIR_AGENT_HDR_SIZE + 1 + 9 + mp_sizeof_array(2 * NHDR);
	char *w;

	for (size_t i = 0; i < NHDR; i++)
		size += mp_sizeof_str((uint32_t)hlen[i][0]) + mp_sizeof_str((uint32_t)hlen[i][1]);
	size += mp_sizeof_str(4) + mp_sizeof_str(sizeof(target) - 1) + 1 + mp_sizeof_str(13) + 3 +
		mp_sizeof_str(3) + mp_sizeof_str(6) + 3;
	if (size > cap)
		return 0;
	w = mp_encode_map(dst + WEIR_AGENT_HDR_SIZE, 9);
	w = kstr(w, WEIR_AGENT_K_METHOD, "POST", 4);
	w = kstr(w, WEIR_AGENT_K_TARGET, target, sizeof(target) - 1);
	w = mp_encode_uint(mp_encode_uint(w, WEIR_AGENT_K_HTTP_MINOR), 1);
	w = mp_encode_array(mp_encode_uint(w, WEIR_AGENT_K_HEADERS), 2 * NHDR);
	for (size_t i = 0; i < NHDR; i++) {
		w = mp_encode_str(w, hdr[i][0], (uint32_t)hlen[i][0]);
		w = mp_encode_str(w, hdr[i][1], (uint32_t)hlen[i][1]);
	}
	w = kstr(w, WEIR_AGENT_K_CLIENT_ADDR, "198.51.100.23", 13);
	w = mp_encode_uint(mp_encode_uint(w, WEIR_AGENT_K_CLIENT_PORT), 40512);
	w = kstr(w, WEIR_AGENT_K_ROUTE, "api", 3);
	w = kstr(w, WEIR_AGENT_K_UID, "0-1234", 6);
	w = mp_encode_uint(mp_encode_uint(w, WEIR_AGENT_K_BODY_LENGTH), 512);
	weir__sdk_hdr_put(dst, (uint32_t)(w - dst) - WEIR_AGENT_HDR_SIZE, WEIR_AGENT_REQUEST_HEADERS,
			  0, 1);
	return (size_t)(w - dst);
}

static char frame_buf[4096];
static size_t frame_len;

static void setup(void)
{
	if (frame_len != 0)
		return;
	for (size_t i = 0; i < NHDR; i++) {
		hlen[i][0] = strlen(hdr[i][0]);
		hlen[i][1] = strlen(hdr[i][1]);
	}
	frame_len = encode_request_headers(frame_buf, sizeof(frame_buf));
}

WB_BENCH(agent_request_headers_encode)
{
	static char buf[4096];

	setup();
	wb_set_bytes(b, frame_len);
	wb_reset_timer(b);
	for (uint64_t i = 0; i < b->n; i++) {
		wb_clobber();
		wb_sink(encode_request_headers(buf, sizeof(buf)));
	}
}

/* libweir-agent's decode: mp_check, then one bounds-checked walk filling
 * the field slices (what the SDK does for heads of up to 64 fields) */
WB_BENCH(agent_request_headers_decode)
{
	static struct weir_agent_header hdrs[WEIR__SDK_SCRATCH];
	struct weir_agent_request rq;
	const char *why;

	setup();
	wb_set_bytes(b, frame_len);
	wb_reset_timer(b);
	for (uint64_t i = 0; i < b->n; i++) {
		wb_clobber();
		if (weir__sdk_dec_request(frame_buf + 16, frame_len - 16, &rq, hdrs, WEIR__SDK_SCRATCH,
					  false, &why) != 0 || rq.headers == NULL) {
			wb_fail(b, "decode: %s", why);
			return;
		}
		wb_sink(rq.nheaders);
	}
}

/* the validation share: one mp_check of the payload */
WB_BENCH(agent_request_headers_mp_check)
{
	setup();
	wb_set_bytes(b, frame_len);
	wb_reset_timer(b);
	for (uint64_t i = 0; i < b->n; i++) {
		const char *p = frame_buf + 16;

		wb_clobber();
		wb_sink((uint64_t)mp_check(&p, frame_buf + frame_len));
	}
}

static struct weir_agent_reply *block_reply(void)
{
	static struct weir_agent_reply *r;

	if (r == NULL) {
		r = weir_agent_reply_new();
		weir_agent_reply_block(r, 403, "<html><body>Request blocked.</body></html>\n", 44);
		weir_agent_reply_header(r, "Content-Type", "text/html");
		weir_agent_reply_header(r, "Cache-Control", "no-store");
		weir_agent_reply_rule_id(r, 942100);
		weir_agent_reply_rule_id(r, 949110);
		weir_agent_reply_tag(r, "attack-sqli");
		weir_agent_reply_tag(r, "paranoia-level/1");
		weir_agent_reply_score(r, 10);
		weir_agent_reply_reason(r, "SQL Injection Attack Detected via libinjection");
	}
	return r;
}

WB_BENCH(agent_verdict_encode)
{
	static char buf[1024];
	struct weir_agent_reply *r = block_reply();

	wb_reset_timer(b);
	for (uint64_t i = 0; i < b->n; i++) {
		wb_clobber();
		if (weir__sdk_reply_size(r) > sizeof(buf)) {
			wb_fail(b, "verdict too large");
			return;
		}
		wb_sink(weir__sdk_reply_encode(buf, r, 1, 0));
	}
}

/* What the proxy does with a VERDICT payload: mp_check, then every key
 * read with its type checked, strings as slices. */
struct vdec {
	unsigned action, phase, status;
	struct weir_agent_str body, reason, hdrs[16][2], tags[8];
	uint64_t rules[8];
	unsigned nhdrs, ntags, nrules;
	int64_t score;
};

static int str(const char **p, const char *end, struct weir_agent_str *s)
{
	uint32_t len;

	if (*p >= end || (mp_typeof(**p) != MP_STR && mp_typeof(**p) != MP_BIN))
		return -1;
	s->ptr = mp_typeof(**p) == MP_STR ? mp_decode_str(p, &len) : mp_decode_bin(p, &len);
	s->len = len;
	return 0;
}

static int decode_verdict(const char *p, const char *end, struct vdec *v)
{
	const char *q = p;
	uint32_t n;

	if (mp_check(&q, end) != 0 || q != end || mp_typeof(*p) != MP_MAP)
		return -1;
	n = mp_decode_map(&p);
	v->nhdrs = v->ntags = v->nrules = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t k;
		uint32_t m;

		if (mp_typeof(*p) != MP_UINT)
			return -1;
		k = mp_decode_uint(&p);
		switch (k) {
		case WEIR_AGENT_K_ACTION:
		case WEIR_AGENT_K_PHASE:
		case WEIR_AGENT_K_STATUS:
			if (mp_typeof(*p) != MP_UINT)
				return -1;
			*(k == WEIR_AGENT_K_ACTION ? &v->action
			  : k == WEIR_AGENT_K_PHASE ? &v->phase : &v->status) = (unsigned)mp_decode_uint(&p);
			break;
		case WEIR_AGENT_K_BODY:
			if (str(&p, end, &v->body) != 0)
				return -1;
			break;
		case WEIR_AGENT_K_REASON:
			if (str(&p, end, &v->reason) != 0)
				return -1;
			break;
		case WEIR_AGENT_K_SCORE:
			if (mp_typeof(*p) == MP_UINT)
				v->score = (int64_t)mp_decode_uint(&p);
			else if (mp_typeof(*p) == MP_INT)
				v->score = mp_decode_int(&p);
			else
				return -1;
			break;
		case WEIR_AGENT_K_HEADERS_OUT:
			if (mp_typeof(*p) != MP_ARRAY || (m = mp_decode_array(&p)) % 2 != 0 || m > 32)
				return -1;
			for (uint32_t j = 0; j < m / 2; j++, v->nhdrs++)
				if (str(&p, end, &v->hdrs[j][0]) != 0 || str(&p, end, &v->hdrs[j][1]) != 0)
					return -1;
			break;
		case WEIR_AGENT_K_TAGS:
			if (mp_typeof(*p) != MP_ARRAY || (m = mp_decode_array(&p)) > 8)
				return -1;
			for (uint32_t j = 0; j < m; j++, v->ntags++)
				if (str(&p, end, &v->tags[j]) != 0)
					return -1;
			break;
		case WEIR_AGENT_K_RULE_IDS:
			if (mp_typeof(*p) != MP_ARRAY || (m = mp_decode_array(&p)) > 8)
				return -1;
			for (uint32_t j = 0; j < m; j++, v->nrules++) {
				if (mp_typeof(*p) != MP_UINT)
					return -1;
				v->rules[j] = mp_decode_uint(&p);
			}
			break;
		default:
			mp_next(&p);
		}
	}
	return 0;
}

WB_BENCH(agent_verdict_decode)
{
	static char buf[1024];
	static struct vdec v;
	uint32_t n = weir__sdk_reply_encode(buf, block_reply(), 1, 0);

	wb_set_bytes(b, n);
	wb_reset_timer(b);
	for (uint64_t i = 0; i < b->n; i++) {
		wb_clobber();
		if (decode_verdict(buf + 16, buf + n, &v) != 0 || v.nhdrs != 2) {
			wb_fail(b, "verdict decode");
			return;
		}
		wb_sink(v.status);
	}
}
