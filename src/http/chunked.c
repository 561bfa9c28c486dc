/* weir: incremental chunked-coding decoder (RFC 9112 7.1, include/weir/h1.h).
 *
 * A byte-at-a-time state machine for the framing (size lines, extensions,
 * CRLFs, trailers) and a bulk path for the data, which is never looked at:
 * the framing is a few bytes per chunk, the data is everything else. Each
 * state consumes whole bytes and keeps no lookahead, so a split between any
 * two bytes is invisible to the result.
 */
#include "weir/h1.h"

#include "h1-ctype.h"

#define CHUNK_LINE_MAX 4096     /* chunk-size line, extensions included */
#define TRAILER_MAX 16384       /* trailer section, final CRLF included */
#define CHUNK_SIZE_MAX (1ull << 53)

enum {
	CS_SIZE,        /* chunk-size digits (ndigits so far) */
	CS_SIZE_BWS,    /* BWS after the size: only ';' may follow */
	CS_EXT_PRE,     /* after ';': BWS, then the extension name */
	CS_EXT_NAME,
	CS_EXT_POST,    /* BWS after the name: '=', ';' or CR */
	CS_EXT_EQ,      /* after '=': BWS, then a token or a quoted-string */
	CS_EXT_VAL,     /* token value */
	CS_EXT_QUOTED,
	CS_EXT_ESC,     /* after a backslash in a quoted-string */
	CS_EXT_END,     /* after a value: BWS, then ';' or CR */
	CS_SIZE_LF,     /* the size line's CR seen */
	CS_DATA,
	CS_DATA_CR,
	CS_DATA_LF,
	CS_TR_START,    /* start of a trailer line, or the final CRLF */
	CS_TR_NAME,
	CS_TR_VALUE,
	CS_TR_LF,
	CS_END_LF,      /* the final CR seen */
	CS_DONE,
	CS_ERROR,
};

void weir_chunked_init(struct weir_chunked *d)
{
	memset(d, 0, sizeof(*d));
	d->state = CS_SIZE;
}

static inline int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static inline bool is_ws(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* qdtext / quoted-pair byte (RFC 9110 5.6.4); '"' and '\\' handled apart */
static inline bool is_qdtext(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* One framing byte: the new state, or CS_ERROR. */
static unsigned step(struct weir_chunked *d, unsigned st, unsigned char c)
{
	int h;

	switch (st) {
	case CS_SIZE:
		h = hexval(c);
		if (h >= 0) {
			/* remaining <= 2^53 before, so * 16 cannot wrap */
			d->remaining = d->remaining * 16 + (unsigned)h;
			if (d->remaining > CHUNK_SIZE_MAX)
				return CS_ERROR;
			if (d->ndigits < UINT8_MAX)
				d->ndigits++;
			return CS_SIZE;
		}
		if (d->ndigits == 0)
			return CS_ERROR;
		if (c == '\r')
			return CS_SIZE_LF;
		if (c == ';')
			return CS_EXT_PRE;
		return is_ws(c) ? CS_SIZE_BWS : CS_ERROR;
	case CS_SIZE_BWS:
		if (is_ws(c))
			return st;
		return c == ';' ? CS_EXT_PRE : CS_ERROR;
	case CS_EXT_PRE:
		if (is_ws(c))
			return st;
		return WEIR__IS(c, WEIR__C_TOKEN) ? CS_EXT_NAME : CS_ERROR;
	case CS_EXT_NAME:
		if (WEIR__IS(c, WEIR__C_TOKEN))
			return st;
		/* what may follow a name */
		__attribute__((fallthrough));
	case CS_EXT_POST:
		if (is_ws(c))
			return CS_EXT_POST;
		if (c == '=')
			return CS_EXT_EQ;
		if (c == ';')
			return CS_EXT_PRE;
		return c == '\r' ? CS_SIZE_LF : CS_ERROR;
	case CS_EXT_EQ:
		if (is_ws(c))
			return st;
		if (c == '"')
			return CS_EXT_QUOTED;
		return WEIR__IS(c, WEIR__C_TOKEN) ? CS_EXT_VAL : CS_ERROR;
	case CS_EXT_VAL:
		if (WEIR__IS(c, WEIR__C_TOKEN))
			return st;
		/* what may follow a value */
		__attribute__((fallthrough));
	case CS_EXT_END:
		if (is_ws(c))
			return CS_EXT_END;
		if (c == ';')
			return CS_EXT_PRE;
		return c == '\r' ? CS_SIZE_LF : CS_ERROR;
	case CS_EXT_QUOTED:
		if (c == '"')
			return CS_EXT_END;
		if (c == '\\')
			return CS_EXT_ESC;
		return is_qdtext(c) ? st : CS_ERROR;
	case CS_EXT_ESC:
		return is_qdtext(c) ? CS_EXT_QUOTED : CS_ERROR;
	case CS_SIZE_LF:
		if (c != '\n')
			return CS_ERROR;
		if (d->remaining != 0)
			return CS_DATA;
		d->trailer_len = 0;
		return CS_TR_START;
	case CS_DATA_CR:
		return c == '\r' ? CS_DATA_LF : CS_ERROR;
	case CS_DATA_LF:
		if (c != '\n')
			return CS_ERROR;
		d->line_len = 0;
		d->ndigits = 0;
		return CS_SIZE;
	case CS_TR_START:
		if (c == '\r')
			return CS_END_LF;
		/* a line starting with SP/HTAB is obs-fold: refused */
		return WEIR__IS(c, WEIR__C_TOKEN) ? CS_TR_NAME : CS_ERROR;
	case CS_TR_NAME:
		if (WEIR__IS(c, WEIR__C_TOKEN))
			return st;
		return c == ':' ? CS_TR_VALUE : CS_ERROR;
	case CS_TR_VALUE:
		if (WEIR__IS(c, WEIR__C_VALUE))
			return st;
		return c == '\r' ? CS_TR_LF : CS_ERROR;
	case CS_TR_LF:
		return c == '\n' ? CS_TR_START : CS_ERROR;
	case CS_END_LF:
		return c == '\n' ? CS_DONE : CS_ERROR;
	default:
		return CS_ERROR;
	}
}

ssize_t weir_chunked_decode(struct weir_chunked *d, const char *buf, size_t len,
			    weir_slice_t *spans, size_t *nspans)
{
	const char *p = buf, *end = buf + len;
	size_t cap = *nspans, ns = 0;
	unsigned st = d->state;

	*nspans = 0;
	if (st == CS_ERROR)
		return -1;
	while (p < end && st != CS_DONE) {
		if (st == CS_DATA) {
			size_t take = (size_t)(end - p);

			if (ns == cap)
				break;
			if (d->remaining < take)
				take = (size_t)d->remaining;
			spans[ns++] = weir_slice(p, take);
			p += take;
			d->remaining -= take;
			if (d->remaining == 0)
				st = CS_DATA_CR;
			continue;
		}
		/* The limits count every framing byte, the terminating ones
		 * included, so they hold however the line is split. */
		if (st <= CS_SIZE_LF) {
			if (++d->line_len > CHUNK_LINE_MAX)
				goto error;
		} else if (st >= CS_TR_START) {
			if (++d->trailer_len > TRAILER_MAX)
				goto error;
		}
		st = step(d, st, (unsigned char)*p++);
		if (st == CS_ERROR)
			goto error;
	}
	d->state = (uint8_t)st;
	d->done = st == CS_DONE;
	*nspans = ns;
	return p - buf;

error:
	d->state = CS_ERROR;
	*nspans = ns;
	return -1;
}
