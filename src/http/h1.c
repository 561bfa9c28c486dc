/* weir: HTTP/1.1 request and response header parser (include/weir/h1.h).
 *
 * One left-to-right pass over the header block, no state kept between calls.
 * Two properties the callers (and the fuzz harnesses) rely on:
 *  - prefix consistency: on any prefix of a message the parser returns
 *    NEED_MORE or exactly what it returns on the whole message. Every check
 *    looks only at bytes already scanned, and the size limits are applied by
 *    clipping the scan to a window, so a byte past a limit is never looked at
 *    and an error cannot depend on how the input was split;
 *  - bounded work: each byte is scanned once, except the few list values that
 *    matter for framing (Connection, Content-Length, Transfer-Encoding,
 *    Expect, Host), scanned a second time.
 */
#include "weir/h1.h"

#include <stdbool.h>

#include "h1-ctype.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Field kinds as the classifier sees them; the public kind is derived. */
enum fkind {
	K_OTHER,
	K_HOP,
	K_UPGRADE,
	K_CONNECTION,
	K_CONTENT_LENGTH,
	K_TRANSFER_ENCODING,
	K_HOST,
	K_EXPECT,
	K_XFF,
	K_XFP,
	K_VIA,
	K_FRAMING_ALIKE,        /* Content_Length, Transfer_Encoding, ... */
};

static const uint8_t public_kind[] = {
	[K_OTHER] = WEIR_H_OTHER,
	[K_HOP] = WEIR_H_HOP,
	[K_UPGRADE] = WEIR_H_HOP,
	[K_CONNECTION] = WEIR_H_CONNECTION,
	[K_CONTENT_LENGTH] = WEIR_H_CONTENT_LENGTH,
	[K_TRANSFER_ENCODING] = WEIR_H_TRANSFER_ENCODING,
	[K_HOST] = WEIR_H_HOST,
	[K_EXPECT] = WEIR_H_EXPECT,
	[K_XFF] = WEIR_H_X_FORWARDED_FOR,
	[K_XFP] = WEIR_H_X_FORWARDED_PROTO,
	[K_VIA] = WEIR_H_VIA,
	[K_FRAMING_ALIKE] = WEIR_H_OTHER,
};

/* What the field parser accumulates for one message. */
struct msg {
	struct weir_h1_header *headers;
	uint8_t *kind;
	size_t nheaders;
	unsigned flags;
	uint64_t cl;
	weir_slice_t host;
	int error;
	const char *reason;
	bool is_request;
	bool has_cl;
	bool has_te;
	bool te_chunked_last;
	bool te_other;
	bool conn_options;      /* Connection names fields: second pass needed */
	unsigned nchunked;
	unsigned nhost;
};

static int fail(struct msg *m, int status, const char *why)
{
	m->error = status;
	m->reason = why;
	return -1;
}

static inline bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static inline bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static inline unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* Case-insensitive equality of n bytes with a lowercase literal. OR-ing 0x20
 * is exact here: the bytes compared are field-name tokens, request-target
 * bytes or field-value bytes (no CTL but HTAB), and among those only an
 * uppercase letter maps onto a byte of the literals (lowercase letters,
 * digits, '-', ':', '/'); HTAB maps to ')', which no literal holds. */
static inline bool lit_ieq(const char *p, const char *lit, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t a, b;

		memcpy(&a, p + i, 8);
		memcpy(&b, lit + i, 8);
		if ((a | 0x2020202020202020ull) != b)
			return false;
	}
	for (; i < n; i++)
		if (((unsigned char)p[i] | 0x20) != (unsigned char)lit[i])
			return false;
	return true;
}
#define LIT_IEQ(p, n, lit) ((n) == sizeof(lit) - 1 && lit_ieq((p), (lit), sizeof(lit) - 1))

/* Exact case-insensitive comparison of two tokens ('^' and '~' differ). */
static bool tok_ieq(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return false;
	return true;
}

/* First byte in [p, end) that is not a field-value byte. */
static const char *skip_value(const char *p, const char *end)
{
#ifdef __SSE2__
	const __m128i c1f = _mm_set1_epi8(0x1f), del = _mm_set1_epi8(0x7f);

	while (end - p >= 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
		/* x <= 0x1f unsigned, or DEL; HTAB is sorted out below */
		__m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(x, c1f), x);
		unsigned mask = (unsigned)_mm_movemask_epi8(
			_mm_or_si128(ctl, _mm_cmpeq_epi8(x, del)));

		if (mask == 0) {
			p += 16;
			continue;
		}
		p += __builtin_ctz(mask);
		if (*p != '\t')
			return p;
		p++;
	}
#endif
	while (end - p >= 4 && WEIR__IS(p[0], WEIR__C_VALUE) && WEIR__IS(p[1], WEIR__C_VALUE) &&
	       WEIR__IS(p[2], WEIR__C_VALUE) && WEIR__IS(p[3], WEIR__C_VALUE))
		p += 4;
	while (p < end && WEIR__IS(*p, WEIR__C_VALUE))
		p++;
	return p;
}

/* First byte in [p, end) that is not a request-target byte (0x21-0x7e). */
static const char *skip_target(const char *p, const char *end)
{
#ifdef __SSE2__
	/* signed compare: 0x80-0xff are negative, so "< 0x21" catches them */
	const __m128i c21 = _mm_set1_epi8(0x21), del = _mm_set1_epi8(0x7f);

	while (end - p >= 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
		unsigned mask = (unsigned)_mm_movemask_epi8(
			_mm_or_si128(_mm_cmpgt_epi8(c21, x), _mm_cmpeq_epi8(x, del)));

		if (mask != 0)
			return p + __builtin_ctz(mask);
		p += 16;
	}
#endif
	while (end - p >= 4 && WEIR__IS(p[0], WEIR__C_TARGET) && WEIR__IS(p[1], WEIR__C_TARGET) &&
	       WEIR__IS(p[2], WEIR__C_TARGET) && WEIR__IS(p[3], WEIR__C_TARGET))
		p += 4;
	while (p < end && WEIR__IS(*p, WEIR__C_TARGET))
		p++;
	return p;
}

static inline const char *skip_token(const char *p, const char *end)
{
	while (end - p >= 4 && WEIR__IS(p[0], WEIR__C_TOKEN) && WEIR__IS(p[1], WEIR__C_TOKEN) &&
	       WEIR__IS(p[2], WEIR__C_TOKEN) && WEIR__IS(p[3], WEIR__C_TOKEN))
		p += 4;
	while (p < end && WEIR__IS(*p, WEIR__C_TOKEN))
		p++;
	return p;
}

/* skip_token for field names: nearly all are letters, digits and '-', which
 * SSE2 checks 16 at a time; any other byte goes through the table. */
static inline const char *skip_name(const char *p, const char *end)
{
#ifdef __SSE2__
	const __m128i a1 = _mm_set1_epi8('a' - 1), z1 = _mm_set1_epi8('z' + 1);
	const __m128i d1 = _mm_set1_epi8('0' - 1), d2 = _mm_set1_epi8('9' + 1);
	const __m128i dash = _mm_set1_epi8('-'), c20 = _mm_set1_epi8(0x20);

	while (end - p >= 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
		/* | 0x20 folds only A-Z onto a-z; signed compares put
		 * 0x80-0xff below every bound */
		__m128i y = _mm_or_si128(x, c20);
		__m128i alpha = _mm_and_si128(_mm_cmpgt_epi8(y, a1), _mm_cmplt_epi8(y, z1));
		__m128i digit = _mm_and_si128(_mm_cmpgt_epi8(x, d1), _mm_cmplt_epi8(x, d2));
		__m128i ok = _mm_or_si128(_mm_or_si128(alpha, digit), _mm_cmpeq_epi8(x, dash));
		unsigned mask = ~(unsigned)_mm_movemask_epi8(ok) & 0xffff;

		if (mask == 0) {
			p += 16;
			continue;
		}
		p += __builtin_ctz(mask);
		if (!WEIR__IS(*p, WEIR__C_TOKEN))
			return p;
		p++;
	}
#endif
	while (end - p >= 4 && WEIR__IS(p[0], WEIR__C_TOKEN) && WEIR__IS(p[1], WEIR__C_TOKEN) &&
	       WEIR__IS(p[2], WEIR__C_TOKEN) && WEIR__IS(p[3], WEIR__C_TOKEN))
		p += 4;
	while (p < end && WEIR__IS(*p, WEIR__C_TOKEN))
		p++;
	return p;
}

/* Next element of a comma-separated list (RFC 9110 5.6.1), OWS trimmed;
 * empty elements are returned too (len 0). False when the list is done. */
static bool list_next(const char **pp, const char *end, weir_slice_t *elem)
{
	const char *p = *pp, *s, *e;

	if (p == NULL)
		return false;
	while (p < end && is_ows(*p))
		p++;
	s = p;
	while (p < end && *p != ',')
		p++;
	e = p;
	while (e > s && is_ows(e[-1]))
		e--;
	*elem = weir_slice(s, (size_t)(e - s));
	*pp = p < end ? p + 1 : NULL;
	return true;
}

static bool is_token(weir_slice_t s)
{
	return s.len != 0 && skip_token(s.ptr, s.ptr + s.len) == s.ptr + s.len;
}

/* A framing field name spelt with '_' for '-': CGI-style servers (and the
 * frameworks that copy their conventions) map both to the same variable, so
 * "Content_Length" would frame the body behind weir's back. */
static enum fkind framing_alike(const char *n, size_t len)
{
	static const char cl[] = "content-length", te[] = "transfer-encoding";
	const char *lit = len == 14 ? cl : te;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)n[i];

		if (c == '_')
			c = '-';
		if ((c | 0x20) != (unsigned char)lit[i])
			return K_OTHER;
	}
	return K_FRAMING_ALIKE;
}

static enum fkind classify(const char *n, size_t len)
{
	switch (len) {
	case 2:
		if (lit_ieq(n, "te", 2))
			return K_HOP;
		break;
	case 3:
		if (lit_ieq(n, "via", 3))
			return K_VIA;
		break;
	case 4:
		if (lit_ieq(n, "host", 4))
			return K_HOST;
		break;
	case 6:
		if (lit_ieq(n, "expect", 6))
			return K_EXPECT;
		break;
	case 7:
		if (lit_ieq(n, "trailer", 7))
			return K_HOP;
		if (lit_ieq(n, "upgrade", 7))
			return K_UPGRADE;
		break;
	case 10:
		if (lit_ieq(n, "connection", 10))
			return K_CONNECTION;
		if (lit_ieq(n, "keep-alive", 10))
			return K_HOP;
		break;
	case 14:
		if (lit_ieq(n, "content-length", 14))
			return K_CONTENT_LENGTH;
		break;
	case 15:
		if (lit_ieq(n, "x-forwarded-for", 15))
			return K_XFF;
		break;
	case 17:
		if (lit_ieq(n, "transfer-encoding", 17))
			return K_TRANSFER_ENCODING;
		if (lit_ieq(n, "x-forwarded-proto", 17))
			return K_XFP;
		break;
	default:
		break;
	}
	if (len >= 6 && lit_ieq(n, "proxy-", 6))
		return K_HOP;
	if ((len == 14 || len == 17) && memchr(n, '_', len) != NULL)
		return framing_alike(n, len);
	return K_OTHER;
}

static bool valid_port(const char *p, const char *end)
{
	unsigned v = 0;

	if (end - p < 1 || end - p > 5)
		return false;
	for (; p < end; p++) {
		if (!is_digit(*p))
			return false;
		v = v * 10 + (unsigned)(*p - '0');
	}
	return v <= 65535;
}

/* host [":" port] per RFC 3986: IP-literal (hex, ':' and '.' inside the
 * brackets; no IPvFuture), or a non-empty reg-name (IPv4 addresses are
 * reg-names too). No userinfo, no empty port. */
static bool valid_host(const char *p, size_t n)
{
	const char *end = p + n, *s;

	if (n == 0)
		return false;
	if (*p == '[') {
		s = ++p;
		while (p < end && (WEIR__IS(*p, WEIR__C_HEX) || *p == ':' || *p == '.'))
			p++;
		if (p == end || *p != ']' || p - s < 2)
			return false;
		p++;
	} else {
		s = p;
		while (p < end && *p != ':') {
			if (WEIR__IS(*p, WEIR__C_REGNAME))
				p++;
			else if (*p == '%' && end - p >= 3 && WEIR__IS(p[1], WEIR__C_HEX) &&
				 WEIR__IS(p[2], WEIR__C_HEX))
				p += 3;
			else
				return false;
		}
		if (p == s)
			return false;
	}
	if (p == end)
		return true;
	return *p == ':' && valid_port(p + 1, end);
}

/* Content-Length = 1*DIGIT; a list of identical values is tolerated
 * (RFC 9110 8.6), empty elements are not. */
static int parse_content_length(struct msg *m, weir_slice_t v)
{
	const char *p = v.ptr, *end = p + v.len;

	for (;;) {
		const char *s = p;
		uint64_t n = 0;

		while (p < end && is_digit(*p)) {
			/* n <= 2^53 here, so n * 10 + 9 cannot wrap */
			n = n * 10 + (uint64_t)(*p - '0');
			if (n > (1ull << 53))
				return fail(m, 400, "Content-Length too large");
			p++;
		}
		if (p == s)
			return fail(m, 400, "invalid Content-Length");
		if (m->has_cl && n != m->cl)
			return fail(m, 400, "conflicting Content-Length values");
		m->has_cl = true;
		m->cl = n;
		while (p < end && is_ows(*p))
			p++;
		if (p == end)
			return 0;
		if (*p != ',')
			return fail(m, 400, "invalid Content-Length");
		p++;
		while (p < end && is_ows(*p))
			p++;
	}
}

/* Transfer-Encoding codings, in order across all the fields. Only the
 * verdict is kept: how many "chunked", whether the last one is chunked,
 * whether another coding appears. */
static int parse_transfer_encoding(struct msg *m, weir_slice_t v)
{
	const char *it = v.ptr;
	weir_slice_t e;

	m->has_te = true;
	while (list_next(&it, v.ptr + v.len, &e)) {
		const char *t;

		if (e.len == 0)
			continue;
		t = skip_token(e.ptr, e.ptr + e.len);
		if (t == e.ptr)
			return fail(m, 400, "invalid Transfer-Encoding");
		if (t == e.ptr + e.len && LIT_IEQ(e.ptr, e.len, "chunked")) {
			m->nchunked++;
			m->te_chunked_last = true;
			continue;
		}
		/* a coding with parameters: token OWS ";" ... */
		if (t != e.ptr + e.len) {
			const char *q = t;

			while (q < e.ptr + e.len && is_ows(*q))
				q++;
			if (q == e.ptr + e.len || *q != ';' ||
			    LIT_IEQ(e.ptr, (size_t)(t - e.ptr), "chunked"))
				return fail(m, 400, "invalid Transfer-Encoding");
		}
		m->te_other = true;
		m->te_chunked_last = false;
	}
	return 0;
}

static int parse_connection(struct msg *m, weir_slice_t v)
{
	const char *it = v.ptr;
	weir_slice_t e;

	while (list_next(&it, v.ptr + v.len, &e)) {
		if (e.len == 0)
			continue;
		if (!is_token(e))
			return fail(m, 400, "invalid Connection option");
		if (LIT_IEQ(e.ptr, e.len, "close")) {
			m->flags |= WEIR_H1_F_CONN_CLOSE;
		} else if (LIT_IEQ(e.ptr, e.len, "keep-alive")) {
			m->flags |= WEIR_H1_F_CONN_KEEPALIVE;
		} else if (LIT_IEQ(e.ptr, e.len, "upgrade")) {
			/* names Upgrade, hop-by-hop already */
		} else if (LIT_IEQ(e.ptr, e.len, "content-length") ||
			   LIT_IEQ(e.ptr, e.len, "transfer-encoding")) {
			/* dropping framing fields on the say-so of the peer is
			 * how requests get smuggled */
			return fail(m, 400, "Connection names a framing field");
		} else if (m->is_request && LIT_IEQ(e.ptr, e.len, "host")) {
			return fail(m, 400, "Connection names Host");
		} else {
			m->conn_options = true;
		}
	}
	return 0;
}

/* Expect = #expectation; only 100-continue is met (RFC 9110 10.1.1). */
static int parse_expect(struct msg *m, weir_slice_t v)
{
	const char *it = v.ptr;
	weir_slice_t e;
	bool seen = false;

	while (list_next(&it, v.ptr + v.len, &e)) {
		if (e.len == 0)
			continue;
		if (!LIT_IEQ(e.ptr, e.len, "100-continue"))
			return fail(m, 417, "unsupported expectation");
		seen = true;
	}
	if (!seen)
		return fail(m, 417, "empty Expect");
	m->flags |= WEIR_H1_F_EXPECT_CONTINUE;
	return 0;
}

static int on_field(struct msg *m, size_t i)
{
	const struct weir_h1_header *h = &m->headers[i];
	enum fkind k = classify(h->name.ptr, h->name.len);

	m->kind[i] = public_kind[k];
	switch (k) {
	case K_UPGRADE:
		m->flags |= WEIR_H1_F_UPGRADE;
		return 0;
	case K_CONNECTION:
		return parse_connection(m, h->value);
	case K_CONTENT_LENGTH:
		return parse_content_length(m, h->value);
	case K_TRANSFER_ENCODING:
		return parse_transfer_encoding(m, h->value);
	case K_HOST:
		if (!m->is_request)
			return 0;
		if (++m->nhost > 1)
			return fail(m, 400, "duplicate Host");
		/* empty: a target URI without an authority (RFC 9110 7.2) */
		if (h->value.len != 0 && !valid_host(h->value.ptr, h->value.len))
			return fail(m, 400, "invalid Host");
		m->host = h->value;
		return 0;
	case K_EXPECT:
		return m->is_request ? parse_expect(m, h->value) : 0;
	case K_FRAMING_ALIKE:
		return m->is_request ? fail(m, 400, "framing field name spelt with '_'") : 0;
	default:
		return 0;
	}
}

/* Parses field lines up to and including the empty line. Returns the end of
 * the block, or NULL: with m->error set on error, else more bytes are needed
 * (the caller tells "need more" from "over the size limit"). */
static const char *parse_fields(const char *p, const char *end, struct msg *m)
{
	for (;;) {
		const char *name, *v, *ve;
		size_t i;

		if (p == end)
			return NULL;
		if (*p == '\r') {
			if (end - p < 2)
				return NULL;
			if (p[1] != '\n') {
				fail(m, 400, "bare CR in header section");
				return NULL;
			}
			return p + 2;
		}
		if (m->nheaders == WEIR_H1_MAX_HEADERS) {
			fail(m, 431, "too many header fields");
			return NULL;
		}
		name = p;
		p = skip_name(p, end);
		if (p == end)
			return NULL;
		if (*p != ':' || p == name) {
			fail(m, 400, p != name ? "invalid field name" :
				     is_ows(*p) ? "obs-fold or whitespace before a field" :
				     *p == '\n' ? "bare LF in header section" :
						  "invalid field name");
			return NULL;
		}
		i = m->nheaders;
		m->headers[i].name = weir_slice(name, (size_t)(p - name));
		p++;
		while (p < end && is_ows(*p))
			p++;
		v = p;
		p = skip_value(p, end);
		if (p == end)
			return NULL;
		if (*p != '\r') {
			fail(m, 400, *p == '\n' ? "bare LF in header section" :
						  "invalid byte in field value");
			return NULL;
		}
		if (end - p < 2)
			return NULL;
		if (p[1] != '\n') {
			fail(m, 400, "bare CR in header section");
			return NULL;
		}
		ve = p;
		while (ve > v && is_ows(ve[-1]))
			ve--;
		m->headers[i].value = weir_slice(v, (size_t)(ve - v));
		m->nheaders = i + 1;
		if (on_field(m, i) != 0)
			return NULL;
		p += 2;
	}
}

/* Second pass, only when Connection names fields: mark them hop-by-hop.
 * The option count is capped so that the pass stays O(headers * 100). */
static int connection_pass(struct msg *m)
{
	unsigned nopt = 0;

	for (size_t i = 0; i < m->nheaders; i++) {
		weir_slice_t v = m->headers[i].value, e;
		const char *it = v.ptr;

		if (m->kind[i] != WEIR_H_CONNECTION)
			continue;
		while (list_next(&it, v.ptr + v.len, &e)) {
			if (e.len == 0)
				continue;
			if (++nopt > WEIR_H1_MAX_HEADERS)
				return fail(m, 400, "too many Connection options");
			for (size_t j = 0; j < m->nheaders; j++) {
				const weir_slice_t *n = &m->headers[j].name;

				if (n->len == e.len && m->kind[j] != WEIR_H_CONNECTION &&
				    tok_ieq(n->ptr, e.ptr, e.len))
					m->kind[j] = WEIR_H_HOP;
			}
		}
	}
	return 0;
}

/* "HTTP/" DIGIT "." DIGIT CRLF, checked as far as the bytes go so that
 * garbage fails at once. Returns the minor version, or -2 / -1. */
static int parse_version_crlf(const char *p, const char *end, struct msg *m)
{
	static const char pfx[] = "HTTP/";
	size_t n = (size_t)(end - p);

	for (size_t i = 0; i < 5 && i < n; i++)
		if (p[i] != pfx[i])
			return fail(m, 400, "invalid HTTP version");
	if ((n > 5 && !is_digit(p[5])) || (n > 6 && p[6] != '.') || (n > 7 && !is_digit(p[7])))
		return fail(m, 400, "invalid HTTP version");
	if ((n > 8 && p[8] != '\r') || (n > 9 && p[9] != '\n'))
		return fail(m, 400, p[8] == '\n' ? "bare LF after the request line" :
						     "invalid request line");
	if (n < 10)
		return WEIR_H1_NEED_MORE;
	if (p[5] != '1' || p[7] > '1')
		return fail(m, 505, "HTTP version not supported");
	return p[7] - '0';
}

static enum weir_h1_method method_id(const char *p, size_t n)
{
	switch (n) {
	case 3:
		if (memcmp(p, "GET", 3) == 0)
			return WEIR_M_GET;
		if (memcmp(p, "PUT", 3) == 0)
			return WEIR_M_PUT;
		break;
	case 4:
		if (memcmp(p, "POST", 4) == 0)
			return WEIR_M_POST;
		if (memcmp(p, "HEAD", 4) == 0)
			return WEIR_M_HEAD;
		break;
	case 5:
		if (memcmp(p, "PATCH", 5) == 0)
			return WEIR_M_PATCH;
		if (memcmp(p, "TRACE", 5) == 0)
			return WEIR_M_TRACE;
		break;
	case 6:
		if (memcmp(p, "DELETE", 6) == 0)
			return WEIR_M_DELETE;
		break;
	case 7:
		if (memcmp(p, "OPTIONS", 7) == 0)
			return WEIR_M_OPTIONS;
		if (memcmp(p, "CONNECT", 7) == 0)
			return WEIR_M_CONNECT;
		break;
	default:
		break;
	}
	return WEIR_M_OTHER;
}

const char *weir_h1_method_name(enum weir_h1_method m)
{
	static const char *const names[] = {
		[WEIR_M_OTHER] = "",
		[WEIR_M_GET] = "GET",
		[WEIR_M_HEAD] = "HEAD",
		[WEIR_M_POST] = "POST",
		[WEIR_M_PUT] = "PUT",
		[WEIR_M_DELETE] = "DELETE",
		[WEIR_M_OPTIONS] = "OPTIONS",
		[WEIR_M_PATCH] = "PATCH",
		[WEIR_M_TRACE] = "TRACE",
		[WEIR_M_CONNECT] = "CONNECT",
	};

	if ((unsigned)m >= WEIR_ARRAY_SIZE(names))
		return "";
	return names[m];
}

/* method SP request-target SP HTTP-version CRLF. Returns the byte after the
 * CRLF, or NULL: error when m->error is set, else need more. */
static const char *parse_request_line(const char *p, const char *end,
				      struct weir_h1_request *req, struct msg *m)
{
	const char *s = p;
	int minor;

	p = skip_token(p, end);
	if (p == end)
		return NULL;
	if (*p != ' ' || p == s) {
		fail(m, 400, *p == '\n' ? "bare LF" : "invalid method");
		return NULL;
	}
	req->method = weir_slice(s, (size_t)(p - s));
	s = ++p;
	p = skip_target(p, end);
	if (p == end)
		return NULL;
	if (*p != ' ' || p == s) {
		fail(m, 400, "invalid request-target");
		return NULL;
	}
	req->target = weir_slice(s, (size_t)(p - s));
	p++;
	minor = parse_version_crlf(p, end, m);
	if (minor < 0)
		return NULL;
	req->minor_version = minor;
	return p + 10;
}

/* Origin-form, asterisk-form or absolute-form (http/https only). */
static int parse_target(struct weir_h1_request *req, struct msg *m, const char *version)
{
	const char *t = req->target.ptr, *end = t + req->target.len, *a, *p;

	/* A fragment is never sent (RFC 9112 3.2): where one appears, servers
	 * disagree on whether it ends the path, so weir does not guess. */
	if (memchr(t, '#', req->target.len) != NULL)
		return fail(m, 400, "fragment in request-target");
	if (*t == '/') {
		req->path = req->target;
		return 0;
	}
	if (req->target.len == 1 && *t == '*') {
		if (req->method_id != WEIR_M_OPTIONS)
			return fail(m, 400, "asterisk-form without OPTIONS");
		req->path = req->target;
		return 0;
	}
	if (req->target.len >= 7 && lit_ieq(t, "http://", 7))
		a = t + 7;
	else if (req->target.len >= 8 && lit_ieq(t, "https://", 8))
		a = t + 8;
	else
		return fail(m, 400, "invalid request-target");
	for (p = a; p < end && *p != '/' && *p != '?' && *p != '#'; p++)
		;
	if (!valid_host(a, (size_t)(p - a)))
		return fail(m, 400, "invalid authority in request-target");
	req->host = weir_slice(a, (size_t)(p - a));
	req->flags |= WEIR_H1_F_ABSOLUTE_FORM;
	if (p == end) {
		/* "http://host": the path is "/". Zero-copy still: borrow
		 * the '/' of the "HTTP/1.x" already validated in this line. */
		req->path = weir_slice(version + 4, 1);
		return 0;
	}
	if (*p != '/')
		/* "http://host?q" would need "/?q", which is not in the buffer */
		return fail(m, 400, "absolute-form without a path");
	req->path = weir_slice(p, (size_t)(end - p));
	return 0;
}

static void msg_init(struct msg *m, struct weir_h1_header *headers, uint8_t *kind, bool is_request)
{
	memset(m, 0, sizeof(*m));
	m->headers = headers;
	m->kind = kind;
	m->is_request = is_request;
}

int weir_h1_parse_request(const char *buf, size_t len, struct weir_h1_request *req)
{
	const char *p = buf, *end = buf + len, *win, *q;
	struct msg m;

	req->method = WEIR_SLICE_NULL;
	req->target = WEIR_SLICE_NULL;
	req->path = WEIR_SLICE_NULL;
	req->host = WEIR_SLICE_NULL;
	req->minor_version = 0;
	req->method_id = WEIR_M_OTHER;
	req->body = WEIR_H1_BODY_NONE;
	req->content_length = 0;
	req->flags = 0;
	req->error = 0;
	req->reason = NULL;
	req->nheaders = 0;
	msg_init(&m, req->headers, req->kind, true);

	if (len == 0)
		return WEIR_H1_NEED_MORE;
	/* one empty line before the request line is tolerated (RFC 9112 2.2) */
	if (*p == '\r') {
		if (len < 2)
			return WEIR_H1_NEED_MORE;
		if (p[1] != '\n') {
			fail(&m, 400, "bare CR");
			goto error;
		}
		p += 2;
	}
	win = (size_t)(end - p) > WEIR_H1_MAX_REQUEST_LINE + 2 ? p + WEIR_H1_MAX_REQUEST_LINE + 2
							      : end;
	q = parse_request_line(p, win, req, &m);
	if (q == NULL) {
		if (m.error != 0)
			goto error;
		/* MAX + 2 bytes hold the longest line and its CRLF */
		if (win - p == WEIR_H1_MAX_REQUEST_LINE + 2) {
			fail(&m, 414, "request line too long");
			goto error;
		}
		return WEIR_H1_NEED_MORE;
	}
	req->method_id = method_id(req->method.ptr, req->method.len);
	if (req->method_id == WEIR_M_CONNECT) {
		fail(&m, 501, "CONNECT not supported");
		goto error;
	}
	/* q - 10 is the "HTTP/1.x" of this line */
	if (parse_target(req, &m, q - 10) != 0)
		goto error;

	p = q;
	win = (size_t)(end - p) > WEIR_H1_MAX_HEADER_BYTES ? p + WEIR_H1_MAX_HEADER_BYTES : end;
	m.flags = req->flags;
	q = parse_fields(p, win, &m);
	req->nheaders = m.nheaders;
	if (q == NULL) {
		if (m.error != 0)
			goto error;
		if (win - p == WEIR_H1_MAX_HEADER_BYTES) {
			fail(&m, 431, "header section too large");
			goto error;
		}
		return WEIR_H1_NEED_MORE;
	}
	if (m.conn_options && connection_pass(&m) != 0)
		goto error;

	if (req->minor_version == 1 && m.nhost == 0) {
		fail(&m, 400, "missing Host");
		goto error;
	}
	if (!(req->flags & WEIR_H1_F_ABSOLUTE_FORM))
		req->host = m.host;

	if (m.has_te) {
		if (req->minor_version == 0) {
			fail(&m, 400, "Transfer-Encoding in HTTP/1.0");
			goto error;
		}
		if (m.has_cl) {
			fail(&m, 400, "Transfer-Encoding with Content-Length");
			goto error;
		}
		if (m.nchunked == 0 || !m.te_chunked_last) {
			fail(&m, 400, "chunked is not the final coding");
			goto error;
		}
		if (m.nchunked > 1) {
			fail(&m, 400, "chunked applied more than once");
			goto error;
		}
		if (m.te_other) {
			fail(&m, 501, "unsupported transfer coding");
			goto error;
		}
		req->body = WEIR_H1_BODY_CHUNKED;
	} else if (m.has_cl && m.cl != 0) {
		req->body = WEIR_H1_BODY_LENGTH;
		req->content_length = m.cl;
	}
	if (req->minor_version == 0 && !(m.flags & WEIR_H1_F_CONN_KEEPALIVE))
		m.flags |= WEIR_H1_F_CONN_CLOSE;
	req->flags = m.flags;
	return (int)(q - buf);

error:
	req->error = m.error;
	req->reason = m.reason;
	return WEIR_H1_ERROR;
}

/* HTTP-version SP 3DIGIT [SP reason-phrase] CRLF; the SP before an empty
 * reason is optional, as many origins leave it out. */
static const char *parse_status_line(const char *p, const char *end,
				     struct weir_h1_response *res, struct msg *m)
{
	static const char pfx[] = "HTTP/";
	size_t n = (size_t)(end - p);
	const char *r;

	for (size_t i = 0; i < 5 && i < n; i++)
		if (p[i] != pfx[i])
			goto bad;
	if ((n > 5 && p[5] != '1') || (n > 6 && p[6] != '.') ||
	    (n > 7 && p[7] != '0' && p[7] != '1') || (n > 8 && p[8] != ' '))
		goto bad;
	for (size_t i = 9; i < 12 && i < n; i++)
		if (!is_digit(p[i]))
			goto bad;
	if (n > 12 && p[12] != ' ' && p[12] != '\r')
		goto bad;
	if (n < 13)
		return NULL;
	res->minor_version = p[7] - '0';
	res->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	if (res->status < 100 || res->status > 599)
		goto bad;
	r = p[12] == ' ' ? p + 13 : p + 12;
	p = skip_value(r, end);
	if (p == end)
		return NULL;
	if (*p != '\r')
		goto bad;
	if (end - p < 2)
		return NULL;
	if (p[1] != '\n')
		goto bad;
	res->reason_phrase = weir_slice(r, (size_t)(p - r));
	return p + 2;
bad:
	fail(m, 502, "invalid status line");
	return NULL;
}

int weir_h1_parse_response(const char *buf, size_t len, bool is_head,
			   struct weir_h1_response *res)
{
	const char *p = buf, *end = buf + len, *win, *q;
	struct msg m;

	res->minor_version = 0;
	res->status = 0;
	res->reason_phrase = WEIR_SLICE_NULL;
	res->body = WEIR_H1_BODY_NONE;
	res->content_length = 0;
	res->flags = 0;
	res->error = 0;
	res->reason = NULL;
	res->nheaders = 0;
	msg_init(&m, res->headers, res->kind, false);

	win = len > WEIR_H1_MAX_REQUEST_LINE + 2 ? p + WEIR_H1_MAX_REQUEST_LINE + 2 : end;
	q = parse_status_line(p, win, res, &m);
	if (q == NULL) {
		if (m.error != 0)
			goto error;
		if (win - p == WEIR_H1_MAX_REQUEST_LINE + 2) {
			fail(&m, 502, "status line too long");
			goto error;
		}
		return WEIR_H1_NEED_MORE;
	}
	p = q;
	win = (size_t)(end - p) > WEIR_H1_MAX_HEADER_BYTES ? p + WEIR_H1_MAX_HEADER_BYTES : end;
	q = parse_fields(p, win, &m);
	res->nheaders = m.nheaders;
	if (q == NULL) {
		if (m.error != 0)
			goto error;
		if (win - p == WEIR_H1_MAX_HEADER_BYTES) {
			fail(&m, 502, "header section too large");
			goto error;
		}
		return WEIR_H1_NEED_MORE;
	}
	if (m.conn_options && connection_pass(&m) != 0)
		goto error;
	if (m.has_te && m.has_cl) {
		fail(&m, 502, "Transfer-Encoding with Content-Length");
		goto error;
	}
	if (m.has_te && res->minor_version == 0) {
		/* RFC 9112 6.1: faulty framing */
		fail(&m, 502, "Transfer-Encoding in HTTP/1.0");
		goto error;
	}
	if (m.nchunked > 1) {
		fail(&m, 502, "chunked applied more than once");
		goto error;
	}
	if (m.te_other) {
		/* weir re-frames bodies and drops Transfer-Encoding: a coding
		 * other than chunked could not be passed on honestly. */
		fail(&m, 502, "unsupported transfer coding");
		goto error;
	}
	if (is_head || res->status < 200 || res->status == 204 || res->status == 304) {
		res->body = WEIR_H1_BODY_NONE;
	} else if (m.has_te) {
		res->body = m.te_chunked_last ? WEIR_H1_BODY_CHUNKED : WEIR_H1_BODY_CLOSE;
	} else if (m.has_cl) {
		res->body = WEIR_H1_BODY_LENGTH;
		res->content_length = m.cl;
	} else {
		res->body = WEIR_H1_BODY_CLOSE;
	}
	if (res->minor_version == 0 && !(m.flags & WEIR_H1_F_CONN_KEEPALIVE))
		m.flags |= WEIR_H1_F_CONN_CLOSE;
	res->flags = m.flags;
	return (int)(q - buf);

error:
	/* every invalid response is a bad gateway, whatever the rule */
	res->error = 502;
	res->reason = m.reason;
	return WEIR_H1_ERROR;
}
