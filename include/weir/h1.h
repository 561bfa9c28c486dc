/* weir: HTTP/1.1 message parser (requests and responses) and chunked decoder.
 *
 * Shape (picohttpparser): the header parsers are stateless and may be called
 * again on the same, longer buffer. They never copy: every slice they return
 * points into the caller's buffer, valid while that buffer is. They never
 * allocate.
 *
 * Return values of weir_h1_parse_request / weir_h1_parse_response:
 *   > 0                 length of the complete header block (request/status
 *                       line + fields + the empty line), i.e. where the body
 *                       starts;
 *   WEIR_H1_NEED_MORE   (-2) the block is incomplete and within the limits;
 *   WEIR_H1_ERROR       (-1) the message is invalid or over a limit: ->error
 *                       holds the HTTP status weir answers (requests: 400,
 *                       414, 431, 501, 505; responses: 502) and ->reason a
 *                       short static description for logs.
 *
 * Limits are enforced on incomplete input too: a request line longer than
 * WEIR_H1_MAX_REQUEST_LINE without its CRLF fails with 414 at once, a header
 * block (after the request line) over WEIR_H1_MAX_HEADER_BYTES or with more
 * than WEIR_H1_MAX_HEADERS fields fails with 431 at once, so a caller can pass
 * whatever it has received so far and trust that NEED_MORE means "keep
 * reading, still within bounds".
 *
 * Strictness (RFC 9112; weir is stricter than what sits behind it):
 *  - lines end in CRLF; a bare LF or bare CR anywhere in the header block is
 *    an error (400). No leading empty lines are skipped except a single CRLF
 *    before a request line (RFC 9112 2.2), which is counted in the return
 *    value.
 *  - method is a token; target has no CTL/SP/non-ASCII; version is exactly
 *    HTTP/1.0 or HTTP/1.1 (other HTTP/x.y: 505; garbage: 400).
 *  - field names are tokens; whitespace between name and colon is 400;
 *    obs-fold (a line starting with SP/HTAB) is 400; values may contain
 *    VCHAR, obs-text, SP and HTAB only (NUL, CR, LF, other CTL: 400);
 *    leading/trailing OWS of a value is not part of the slice.
 *  - framing (requests): Transfer-Encoding and Content-Length together: 400;
 *    Transfer-Encoding in HTTP/1.0: 400; Transfer-Encoding must be exactly
 *    one "chunked" coding (case-insensitive, OWS allowed; also across several
 *    fields): "chunked" not last or repeated: 400, another coding (gzip,
 *    chunked): 501. Content-Length is 1*DIGIT (no sign, no spaces inside,
 *    value <= 2^53); several Content-Length fields or a comma list are
 *    accepted only if all values are identical, else 400.
 *  - Host: required in HTTP/1.1 (400 if missing), never twice (400), and
 *    must be a syntactically valid host[:port] (400). Absolute-form targets
 *    (http://host/path) are accepted and their authority is reported in
 *    ->host (it wins over the Host field, RFC 9112 3.2.2); ->path is then the
 *    path part. Asterisk-form only with OPTIONS; CONNECT/authority-form: 501
 *    (no tunnelling yet).
 *  - framing (responses): status is 3 digits 100-599; HEAD responses, 1xx,
 *    204 and 304 have no body whatever their fields say; Transfer-Encoding
 *    with Content-Length: 502; TE exactly "chunked": chunked; any other
 *    transfer coding (gzip, chunked / chunked, gzip / gzip): 502, because
 *    weir re-frames bodies and drops Transfer-Encoding, so it could not pass
 *    the coding on; else Content-Length; else read until close. Invalid or
 *    differing Content-Length: 502.
 *
 * Details the rules above leave open (fixed by src/http/h1.c):
 *  - the request-line limit counts the line without its CRLF (and without the
 *    tolerated leading CRLF); the header-block limit counts the field lines
 *    and the final empty line. A status line has the request-line limit.
 *  - parsing is prefix-consistent: on any prefix of a message the result is
 *    NEED_MORE or exactly the result on the whole message.
 *  - Host: userinfo, an empty port or a port over 65535 is 400. An empty
 *    value is a target URI without an authority (RFC 9110 7.2): ->host is
 *    then empty, as for an HTTP/1.0 request without Host.
 *  - Absolute-form "http://h" gets ->path "/" (a slice of the "/" in
 *    "HTTP/1.x", so still inside the buffer); "http://h?q" is 400 (its
 *    origin-form "/?q" is not in the buffer). Schemes other than http and
 *    https: 400. A '#' anywhere in the target is 400: a fragment is never
 *    sent, and servers disagree on whether it ends the path.
 *  - requests: a field name that reads Content-Length or Transfer-Encoding
 *    once each '_' is taken for '-' is 400 (CGI-style servers map both to
 *    the same variable, so it would frame the body behind weir's back).
 *  - Connection options are tokens (else 400); naming Content-Length or
 *    Transfer-Encoding is 400 (responses: 502), naming Host 400 (requests);
 *    more than WEIR_H1_MAX_HEADERS options naming fields: 400, which keeps
 *    the hop-by-hop marking O(fields * options) bounded.
 *  - Expect: a comma list whose every element is 100-continue; anything else,
 *    the empty value included, is 417.
 *  - Transfer-Encoding: empty list elements are ignored; "chunked" with
 *    parameters is 400. Responses: "chunked" twice, or Transfer-Encoding in
 *    an HTTP/1.0 response (RFC 9112 6.1, faulty framing), is 502.
 *  - responses without a body report content_length 0, whatever their
 *    Content-Length field says (it is still validated).
 *  - chunked: whitespace after the size is allowed only before a ';'
 *    extension; trailer fields follow the header-field syntax (no obs-fold).
 */
#ifndef WEIR_H1_H
#define WEIR_H1_H

#include <stdbool.h>
#include <sys/types.h>

#include "weir/common.h"

#define WEIR_H1_MAX_HEADERS 100
#define WEIR_H1_MAX_REQUEST_LINE 8192
#define WEIR_H1_MAX_HEADER_BYTES 16384

#define WEIR_H1_NEED_MORE (-2)
#define WEIR_H1_ERROR (-1)

enum weir_h1_method {
	WEIR_M_OTHER = 0,
	WEIR_M_GET,
	WEIR_M_HEAD,
	WEIR_M_POST,
	WEIR_M_PUT,
	WEIR_M_DELETE,
	WEIR_M_OPTIONS,
	WEIR_M_PATCH,
	WEIR_M_TRACE,
	WEIR_M_CONNECT,
};

/* How the message body is delimited. */
enum weir_h1_body {
	WEIR_H1_BODY_NONE = 0,  /* no body (CL absent or 0 in requests; HEAD/1xx/204/304) */
	WEIR_H1_BODY_LENGTH,    /* content_length bytes follow */
	WEIR_H1_BODY_CHUNKED,   /* chunked coding follows */
	WEIR_H1_BODY_CLOSE,     /* responses only: body runs until the peer closes */
};

/* What weir must do with a field when it forwards the message. */
enum weir_h1_hkind {
	WEIR_H_OTHER = 0,       /* forward as is */
	WEIR_H_HOP,             /* hop-by-hop: Keep-Alive, TE, Trailer, Proxy-*, Upgrade,
	                           and every field named in Connection: drop */
	WEIR_H_CONNECTION,      /* Connection: drop (its options are in ->flags) */
	WEIR_H_CONTENT_LENGTH,  /* framing: drop, weir re-frames */
	WEIR_H_TRANSFER_ENCODING, /* framing: drop, weir re-frames */
	WEIR_H_HOST,            /* Host: forwarded (requests) */
	WEIR_H_EXPECT,          /* Expect: drop (weir answers 100-continue itself) */
	WEIR_H_X_FORWARDED_FOR, /* weir appends the client address */
	WEIR_H_X_FORWARDED_PROTO, /* weir replaces it */
	WEIR_H_VIA,             /* weir appends its own entry */
};

/* ->flags */
#define WEIR_H1_F_CONN_CLOSE      (1u << 0) /* Connection: close, or HTTP/1.0 without keep-alive */
#define WEIR_H1_F_CONN_KEEPALIVE  (1u << 1) /* Connection: keep-alive seen */
#define WEIR_H1_F_EXPECT_CONTINUE (1u << 2) /* Expect: 100-continue (requests; other expectations: 417) */
#define WEIR_H1_F_UPGRADE         (1u << 3) /* Upgrade field present (dropped: no tunnelling yet) */
#define WEIR_H1_F_ABSOLUTE_FORM   (1u << 4) /* target was absolute-form */

struct weir_h1_header {
	weir_slice_t name;
	weir_slice_t value;
};

struct weir_h1_request {
	weir_slice_t method;
	weir_slice_t target;    /* as received */
	weir_slice_t path;      /* origin-form part of target (path + query); "*" for asterisk-form */
	weir_slice_t host;      /* from absolute-form, else the Host field (may be empty for HTTP/1.0) */
	int minor_version;      /* 0 or 1 */
	enum weir_h1_method method_id;
	enum weir_h1_body body;
	uint64_t content_length; /* valid when body == WEIR_H1_BODY_LENGTH */
	unsigned flags;
	int error;              /* HTTP status when the parser returns WEIR_H1_ERROR */
	const char *reason;     /* static description of the error */
	size_t nheaders;
	struct weir_h1_header headers[WEIR_H1_MAX_HEADERS];
	uint8_t kind[WEIR_H1_MAX_HEADERS]; /* enum weir_h1_hkind per header */
};

struct weir_h1_response {
	int minor_version;
	int status;
	weir_slice_t reason_phrase;
	enum weir_h1_body body;
	uint64_t content_length;
	unsigned flags;         /* WEIR_H1_F_CONN_CLOSE (also for HTTP/1.0 without keep-alive) */
	int error;              /* 502 when the parser returns WEIR_H1_ERROR */
	const char *reason;
	size_t nheaders;
	struct weir_h1_header headers[WEIR_H1_MAX_HEADERS];
	uint8_t kind[WEIR_H1_MAX_HEADERS];
};

int weir_h1_parse_request(const char *buf, size_t len, struct weir_h1_request *req);

/* is_head: the request was HEAD (the response then has no body). */
int weir_h1_parse_response(const char *buf, size_t len, bool is_head,
			   struct weir_h1_response *res);

/* Incremental chunked-coding decoder. It keeps its own small state so that a
 * chunk-size line, a chunk, or the trailer section may be split across any
 * number of buffers. Data is never copied: each call reports the data bytes it
 * found as spans pointing into `buf`.
 *
 * weir_chunked_decode consumes from buf[0..len) and stores up to *nspans data
 * spans in spans[] (on return *nspans is the number stored). It returns the
 * number of bytes consumed (it stops early when spans[] is full or when the
 * message ends), or -1 on a framing error (bad hex, size overflow over 2^53,
 * missing CRLF, bare LF, chunk-size line or extensions over 4 KiB, trailer
 * section over 16 KiB, invalid trailer field). Chunk extensions are parsed
 * and dropped; trailer fields are validated and dropped. After the last chunk
 * and its trailer section, d->done is set and no byte past the end of the
 * message is consumed (it belongs to the next message). */
struct weir_chunked {
	uint64_t remaining;     /* data bytes left in the current chunk */
	uint32_t line_len;      /* bytes of the current size/trailer line so far */
	uint32_t trailer_len;   /* bytes of the trailer section so far */
	uint8_t state;
	uint8_t ndigits;
	bool done;
};

void weir_chunked_init(struct weir_chunked *d);
ssize_t weir_chunked_decode(struct weir_chunked *d, const char *buf, size_t len,
			    weir_slice_t *spans, size_t *nspans);

/* Name of a method id ("GET", ...; "" for WEIR_M_OTHER). */
const char *weir_h1_method_name(enum weir_h1_method m);

#endif
