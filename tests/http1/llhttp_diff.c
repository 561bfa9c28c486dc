/* Differential check: weir's HTTP/1 codec against llhttp (test-only; llhttp's
 * C sources come from Debian's node-llhttp package, compiled from where it
 * installs them, see tests/http1/meson.build).
 *
 *   llhttp-diff [-v] MODE PATH...     MODE: request | response | chunked
 *   -v: print both parsers' views of each input they disagree on
 *
 * Each PATH is a file or a directory of files; each file is one input:
 *   request   a client's bytes: a request head, then its body;
 *   response  an upstream's bytes: a response head (to a GET), then its body,
 *             then the end of the connection;
 *   chunked   a chunked body (put behind a chunked POST head for llhttp).
 * Both parsers see the whole input at once. Their verdicts are compared:
 * refused / incomplete / accepted for the head; when both accept it, the
 * method, target, version, every field (name and value), the framing (none,
 * Content-Length n, chunked, until close) and keep-alive; then the body:
 * refused / incomplete / complete, and when complete, the bytes it spans and
 * its data.
 *
 * One line per input on stdout:  NAME TAB same|DIFF TAB KEY
 * where KEY names what differs in words that do not depend on the input
 * ("head: weir 400 (invalid Host) / llhttp accepts"), so that
 * tests/http1/llhttp_diff.py can match each disagreement against the
 * explained ones (tests/http1/llhttp-known.txt). Exit status 0 unless an input
 * cannot be read. */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <llhttp.h>

#include "weir/h1.h"

enum mode { M_REQUEST, M_RESPONSE, M_CHUNKED };

#define MAXH 256

/* ---- growable bytes ---------------------------------------------------- */

struct bytes {
	char *p;
	size_t len, cap;
};

static void bput(struct bytes *b, const char *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;

		while (cap < b->len + n + 1)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (b->p == NULL)
			abort();
		b->cap = cap;
	}
	if (n != 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void bfree(struct bytes *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static bool beq(const struct bytes *b, const char *p, size_t n)
{
	return b->len == n && (n == 0 || memcmp(b->p, p, n) == 0);
}

/* ---- what a parser made of an input -------------------------------------- */

enum verdict { V_ERROR, V_MORE, V_OK };
enum framing { FR_NONE, FR_LENGTH, FR_CHUNKED, FR_CLOSE };

struct view {
	enum verdict head;
	char why[160];          /* error: status and reason / errno name */
	size_t head_len;
	struct bytes method, target, reason;
	int minor;
	int status;
	size_t nh;
	struct bytes name[MAXH], value[MAXH];
	enum framing framing;
	uint64_t length;
	bool keep_alive;
	enum verdict body;      /* when head == V_OK */
	char body_why[160];
	size_t body_end;        /* input bytes up to the end of the message */
	struct bytes data;
};

static void view_free(struct view *v)
{
	bfree(&v->method);
	bfree(&v->target);
	bfree(&v->reason);
	for (size_t i = 0; i < MAXH; i++) {
		bfree(&v->name[i]);
		bfree(&v->value[i]);
	}
	bfree(&v->data);
}

static const char *framing_name(enum framing f)
{
	static const char *const n[] = { "no body", "Content-Length", "chunked", "until close" };

	return n[f];
}

/* ---- weir ---------------------------------------------------------------- */

static struct weir_h1_request wreq;
static struct weir_h1_response wres;

static void weir_chunked_body(const char *p, size_t len, struct view *v, size_t base)
{
	struct weir_chunked d;
	weir_slice_t spans[16];
	size_t at = 0;

	weir_chunked_init(&d);
	while (at < len && !d.done) {
		size_t ns = 16;
		ssize_t n = weir_chunked_decode(&d, p + at, len - at, spans, &ns);

		if (n < 0) {
			v->body = V_ERROR;
			snprintf(v->body_why, sizeof(v->body_why), "(invalid chunked framing)");
			return;
		}
		for (size_t i = 0; i < ns; i++)
			bput(&v->data, spans[i].ptr, spans[i].len);
		at += (size_t)n;
	}
	v->body = d.done ? V_OK : V_MORE;
	v->body_end = base + at;
}

static void weir_body(const char *p, size_t len, size_t ret, enum weir_h1_body body, uint64_t cl,
		      struct view *v)
{
	switch (body) {
	case WEIR_H1_BODY_NONE:
		v->framing = FR_NONE;
		v->body = V_OK;
		v->body_end = ret;
		break;
	case WEIR_H1_BODY_LENGTH:
		v->framing = FR_LENGTH;
		v->length = cl;
		if (len - ret >= cl) {
			bput(&v->data, p + ret, (size_t)cl);
			v->body = V_OK;
			v->body_end = ret + (size_t)cl;
		} else {
			v->body = V_MORE;
		}
		break;
	case WEIR_H1_BODY_CHUNKED:
		v->framing = FR_CHUNKED;
		weir_chunked_body(p + ret, len - ret, v, ret);
		break;
	case WEIR_H1_BODY_CLOSE:
		v->framing = FR_CLOSE;
		bput(&v->data, p + ret, len - ret);
		v->body = V_OK;
		v->body_end = len;
		break;
	}
}

static void weir_headers(const struct weir_h1_header *h, size_t n, struct view *v)
{
	v->nh = n;
	for (size_t i = 0; i < n && i < MAXH; i++) {
		bput(&v->name[i], h[i].name.ptr, h[i].name.len);
		bput(&v->value[i], h[i].value.ptr, h[i].value.len);
	}
}

static void run_weir(enum mode mode, const char *p, size_t len, struct view *v)
{
	int ret;

	if (mode == M_CHUNKED) {
		v->head = V_OK;
		v->framing = FR_CHUNKED;
		weir_chunked_body(p, len, v, 0);
		return;
	}
	if (mode == M_REQUEST)
		ret = weir_h1_parse_request(p, len, &wreq);
	else
		ret = weir_h1_parse_response(p, len, false, &wres);
	if (ret == WEIR_H1_NEED_MORE) {
		v->head = V_MORE;
		return;
	}
	if (ret == WEIR_H1_ERROR) {
		v->head = V_ERROR;
		if (mode == M_REQUEST)
			snprintf(v->why, sizeof(v->why), "%d (%s)", wreq.error, wreq.reason);
		else
			snprintf(v->why, sizeof(v->why), "%d (%s)", wres.error, wres.reason);
		return;
	}
	v->head = V_OK;
	v->head_len = (size_t)ret;
	if (mode == M_REQUEST) {
		bput(&v->method, wreq.method.ptr, wreq.method.len);
		bput(&v->target, wreq.target.ptr, wreq.target.len);
		v->minor = wreq.minor_version;
		weir_headers(wreq.headers, wreq.nheaders, v);
		v->keep_alive = !(wreq.flags & WEIR_H1_F_CONN_CLOSE);
		weir_body(p, len, (size_t)ret, wreq.body, wreq.content_length, v);
	} else {
		v->status = wres.status;
		v->minor = wres.minor_version;
		bput(&v->reason, wres.reason_phrase.ptr, wres.reason_phrase.len);
		weir_headers(wres.headers, wres.nheaders, v);
		v->keep_alive = !(wres.flags & WEIR_H1_F_CONN_CLOSE) && wres.body != WEIR_H1_BODY_CLOSE;
		weir_body(p, len, (size_t)ret, wres.body, wres.content_length, v);
		/* a response input ends with the upstream closing: a body
		 * still wanting bytes is cut, as llhttp_finish() says too */
		if (v->body == V_MORE) {
			v->body = V_ERROR;
			snprintf(v->body_why, sizeof(v->body_why), "(cut by the close)");
		}
	}
}

/* ---- llhttp -------------------------------------------------------------- */

struct lstate {
	struct view *v;
	bool headers_done;
	bool message_done;
	bool in_value;
	bool in_chunked_head;   /* chunked mode: the synthetic head */
};

static int l_method(llhttp_t *l, const char *at, size_t n)
{
	struct lstate *s = l->data;

	bput(&s->v->method, at, n);
	return 0;
}

static int l_url(llhttp_t *l, const char *at, size_t n)
{
	struct lstate *s = l->data;

	bput(&s->v->target, at, n);
	return 0;
}

static int l_status(llhttp_t *l, const char *at, size_t n)
{
	struct lstate *s = l->data;

	bput(&s->v->reason, at, n);
	return 0;
}

static int l_field(llhttp_t *l, const char *at, size_t n)
{
	struct lstate *s = l->data;
	struct view *v = s->v;

	if (s->headers_done)
		return 0; /* trailers */
	if (s->in_value || v->nh == 0) {
		s->in_value = false;
		v->nh++;
	}
	if (v->nh <= MAXH)
		bput(&v->name[v->nh - 1], at, n);
	return 0;
}

static int l_value(llhttp_t *l, const char *at, size_t n)
{
	struct lstate *s = l->data;
	struct view *v = s->v;

	if (s->headers_done)
		return 0;
	s->in_value = true;
	if (v->nh >= 1 && v->nh <= MAXH)
		bput(&v->value[v->nh - 1], at, n);
	return 0;
}

static int l_field_done(llhttp_t *l)
{
	struct lstate *s = l->data;

	/* a field with an empty value gets no value callback */
	s->in_value = true;
	return 0;
}

static int l_headers_done(llhttp_t *l)
{
	struct lstate *s = l->data;

	s->headers_done = true;
	/* llhttp leaves "this response has no body" to its embedder (return 1
	 * from on_headers_complete, which sets F_SKIPBODY): a correct one says
	 * so for 1xx, 204 and 304. The flag is set by hand here because the
	 * callback pauses the parser instead. */
	if (l->type == HTTP_RESPONSE &&
	    (l->status_code < 200 || l->status_code == 204 || l->status_code == 304))
		l->flags |= F_SKIPBODY;
	return HPE_PAUSED;
}

static int l_body(llhttp_t *l, const char *at, size_t n)
{
	struct lstate *s = l->data;

	bput(&s->v->data, at, n);
	return 0;
}

static int l_message_done(llhttp_t *l)
{
	struct lstate *s = l->data;

	s->message_done = true;
	return HPE_PAUSED;
}

static void trim_ows(struct bytes *b)
{
	size_t s = 0, e = b->len;

	while (s < e && (b->p[s] == ' ' || b->p[s] == '\t'))
		s++;
	while (e > s && (b->p[e - 1] == ' ' || b->p[e - 1] == '\t'))
		e--;
	if (b->len != 0) {
		memmove(b->p, b->p + s, e - s);
		b->len = e - s;
		b->p[b->len] = 0;
	}
}

static const char chunked_head[] =
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";

static void run_llhttp(enum mode mode, const char *in, size_t inlen, struct view *v)
{
	static llhttp_settings_t set;
	struct lstate st = { .v = v };
	llhttp_t l;
	llhttp_errno_t e;
	const char *p = in, *end = in + inlen, *base = in;
	char *joined = NULL;

	llhttp_settings_init(&set);
	set.on_method = l_method;
	set.on_url = l_url;
	set.on_status = l_status;
	set.on_header_field = l_field;
	set.on_header_value = l_value;
	set.on_header_field_complete = l_field_done;
	set.on_headers_complete = l_headers_done;
	set.on_body = l_body;
	set.on_message_complete = l_message_done;
	llhttp_init(&l, mode == M_RESPONSE ? HTTP_RESPONSE : HTTP_REQUEST, &set);
	l.data = &st;

	if (mode == M_CHUNKED) {
		size_t hl = sizeof(chunked_head) - 1;

		joined = malloc(hl + inlen + 1);
		memcpy(joined, chunked_head, hl);
		if (inlen != 0)
			memcpy(joined + hl, in, inlen);
		p = joined;
		base = joined + hl;
		end = joined + hl + inlen;
	}

	e = llhttp_execute(&l, p, (size_t)(end - p));
	if (!st.headers_done) {
		if (e == HPE_OK) {
			v->head = V_MORE;
		} else {
			v->head = V_ERROR;
			snprintf(v->why, sizeof(v->why), "%s (%s)", llhttp_errno_name(e),
				 llhttp_get_error_reason(&l));
		}
		goto out;
	}
	/* paused after the head */
	v->head = V_OK;
	v->head_len = (size_t)(llhttp_get_error_pos(&l) - base);
	v->minor = l.http_minor;
	v->status = l.status_code;
	if (l.flags & F_SKIPBODY) {
		v->framing = FR_NONE;
	} else if (l.flags & F_CHUNKED) {
		v->framing = FR_CHUNKED;
	} else if (l.flags & F_CONTENT_LENGTH) {
		v->framing = FR_LENGTH;
		v->length = l.content_length;
	} else if (mode == M_RESPONSE && llhttp_message_needs_eof(&l)) {
		v->framing = FR_CLOSE;
	} else {
		v->framing = FR_NONE;
	}
	v->keep_alive = llhttp_should_keep_alive(&l) != 0;
	for (size_t i = 0; i < v->nh && i < MAXH; i++)
		trim_ows(&v->value[i]);
	p = llhttp_get_error_pos(&l);
	llhttp_resume(&l);
	e = llhttp_execute(&l, p, (size_t)(end - p));
	if (e == HPE_OK && !st.message_done && mode == M_RESPONSE) {
		e = llhttp_finish(&l); /* the upstream closed */
		if (st.message_done) {
			v->body = V_OK;
			v->body_end = inlen;
			goto out;
		}
	}
	if (!st.message_done && mode != M_CHUNKED &&
	    (e == HPE_INVALID_TRANSFER_ENCODING || e == HPE_UNEXPECTED_CONTENT_LENGTH ||
	     e == HPE_INVALID_CONTENT_LENGTH) && llhttp_get_error_pos(&l) == p) {
		/* refused at the end of the head: llhttp checks the framing
		 * fields after on_headers_complete */
		v->head = V_ERROR;
		snprintf(v->why, sizeof(v->why), "%s (%s)", llhttp_errno_name(e),
			 llhttp_get_error_reason(&l));
		goto out;
	}
	if (st.message_done) {
		v->body = V_OK;
		v->body_end = (size_t)(llhttp_get_error_pos(&l) - base);
	} else if (e == HPE_OK || e == HPE_PAUSED_UPGRADE) {
		v->body = e == HPE_PAUSED_UPGRADE ? V_OK : V_MORE;
		v->body_end = inlen;
	} else {
		v->body = V_ERROR;
		snprintf(v->body_why, sizeof(v->body_why), "%s (%s)", llhttp_errno_name(e),
			 llhttp_get_error_reason(&l));
	}
out:
	free(joined);
}

/* ---- comparison -------------------------------------------------------- */

static const char *verdict_word(enum verdict v)
{
	return v == V_ERROR ? "refuses" : v == V_MORE ? "wants more" : "accepts";
}

/* "Content-Length: 0" is no body */
static enum framing framing_of(const struct view *v)
{
	return v->framing == FR_LENGTH && v->length == 0 ? FR_NONE : v->framing;
}

static bool ieq(const struct bytes *b, const char *lit)
{
	size_t n = strlen(lit);

	if (b->len != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = b->p[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c + 32);
		if (c != lit[i])
			return false;
	}
	return true;
}

/* What the framing fields weir accepted look like, so that a class of
 * llhttp-known.txt can be narrower than "weir accepts, llhttp refuses":
 *   "identical lengths"  every Content-Length element is the same number;
 *   "chunked + empty"    Transfer-Encoding elements are chunked (once) and
 *                        empty ones. */
static const char *framing_shape(const struct view *w)
{
	bool cl = false, te = false, same = true, one_chunked = true;
	unsigned long long first = 0;
	int nchunked = 0;
	bool have_first = false;

	for (size_t i = 0; i < w->nh && i < MAXH; i++) {
		const struct bytes *v = &w->value[i];

		if (ieq(&w->name[i], "content-length")) {
			size_t j = 0;

			cl = true;
			while (j <= v->len) {
				unsigned long long n = 0;
				size_t s;

				while (j < v->len && (v->p[j] == ' ' || v->p[j] == '\t' || v->p[j] == ','))
					j++;
				if (j == v->len)
					break;
				s = j;
				while (j < v->len && v->p[j] >= '0' && v->p[j] <= '9')
					n = n * 10 + (unsigned long long)(v->p[j++] - '0');
				if (j == s)
					same = false;
				if (have_first && n != first)
					same = false;
				first = n;
				have_first = true;
				if (j == s)
					j++;
			}
		} else if (ieq(&w->name[i], "transfer-encoding")) {
			size_t j = 0;

			te = true;
			while (j < v->len) {
				size_t s, e;

				while (j < v->len && (v->p[j] == ' ' || v->p[j] == '\t'))
					j++;
				s = j;
				while (j < v->len && v->p[j] != ',')
					j++;
				e = j;
				while (e > s && (v->p[e - 1] == ' ' || v->p[e - 1] == '\t'))
					e--;
				if (e - s == 7 && strncasecmp(v->p + s, "chunked", 7) == 0)
					nchunked++;
				else if (e != s)
					one_chunked = false;
				j++;
			}
		}
	}
	if (cl && !te)
		return same ? " [identical lengths]" : " [other lengths]";
	if (te && !cl)
		return one_chunked && nchunked == 1 ? " [chunked + empty]" : " [other codings]";
	return "";
}

/* Writes the key of the first difference into key; false when none. */
static bool compare(enum mode mode, const struct view *w, const struct view *l, char *key,
		    size_t n)
{
	if (w->head != l->head) {
		snprintf(key, n, "head: weir %s%s%s / llhttp %s%s%s%s", verdict_word(w->head),
			 w->head == V_ERROR ? " " : "", w->head == V_ERROR ? w->why : "",
			 verdict_word(l->head), l->head == V_ERROR ? " " : "",
			 l->head == V_ERROR ? l->why : "",
			 w->head == V_OK && mode != M_CHUNKED ? framing_shape(w) : "");
		return true;
	}
	if (w->head != V_OK || mode == M_CHUNKED)
		goto body;
	if (w->head_len != l->head_len) {
		snprintf(key, n, "head: different lengths");
		return true;
	}
	if (mode == M_REQUEST) {
		if (!beq(&w->method, l->method.p, l->method.len)) {
			snprintf(key, n, "head: different method");
			return true;
		}
		if (!beq(&w->target, l->target.p, l->target.len)) {
			snprintf(key, n, "head: different target");
			return true;
		}
	} else if (w->status != l->status) {
		snprintf(key, n, "head: different status");
		return true;
	}
	if (w->minor != l->minor) {
		snprintf(key, n, "head: different version");
		return true;
	}
	if (w->nh != l->nh) {
		snprintf(key, n, "head: %zu fields / %zu fields", w->nh, l->nh);
		return true;
	}
	for (size_t i = 0; i < w->nh && i < MAXH; i++) {
		if (!beq(&w->name[i], l->name[i].p, l->name[i].len)) {
			snprintf(key, n, "head: different field name");
			return true;
		}
		if (!beq(&w->value[i], l->value[i].p, l->value[i].len)) {
			snprintf(key, n, "head: different field value");
			return true;
		}
	}
	if (framing_of(w) != framing_of(l) || (w->framing == FR_LENGTH && w->length != l->length)) {
		snprintf(key, n, "framing: weir %s / llhttp %s", framing_name(framing_of(w)),
			 framing_name(framing_of(l)));
		return true;
	}
	if (w->keep_alive != l->keep_alive) {
		snprintf(key, n, "keep-alive: weir %s / llhttp %s", w->keep_alive ? "yes" : "no",
			 l->keep_alive ? "yes" : "no");
		return true;
	}
body:
	if (w->head != V_OK)
		return false;
	if (w->body != l->body) {
		snprintf(key, n, "body (%s): weir %s%s%s / llhttp %s%s%s", framing_name(w->framing),
			 verdict_word(w->body), w->body == V_ERROR ? " " : "",
			 w->body == V_ERROR ? w->body_why : "", verdict_word(l->body),
			 l->body == V_ERROR ? " " : "", l->body == V_ERROR ? l->body_why : "");
		return true;
	}
	if (w->body == V_OK && w->body_end != l->body_end) {
		snprintf(key, n, "body (%s): ends at a different byte", framing_name(w->framing));
		return true;
	}
	if (w->body == V_OK && !beq(&w->data, l->data.p, l->data.len)) {
		snprintf(key, n, "body (%s): different data", framing_name(w->framing));
		return true;
	}
	return false;
}

/* ---- driver ---------------------------------------------------------------- */

static unsigned ninputs, ndiff;
static bool verbose;

static void show(const char *what, const char *p, size_t n)
{
	printf("    %s (%zu): \"", what, n);
	for (size_t i = 0; i < n && i < 200; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\r')
			printf("\\r");
		else if (c == '\n')
			printf("\\n");
		else if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	printf("\"%s\n", n > 200 ? "..." : "");
}

static void dump(const char *who, const struct view *v)
{
	printf("  %s: head %s %s, head_len %zu, framing %s %llu, keep-alive %d, body %s %s, "
	       "end %zu\n",
	       who, verdict_word(v->head), v->why, v->head_len, framing_name(v->framing),
	       (unsigned long long)v->length, v->keep_alive, verdict_word(v->body), v->body_why,
	       v->body_end);
	show("data", v->data.p, v->data.len);
	for (size_t i = 0; i < v->nh && i < MAXH; i++) {
		show("name", v->name[i].p, v->name[i].len);
		show("value", v->value[i].p, v->value[i].len);
	}
}

static int run_file(enum mode mode, const char *path)
{
	FILE *f = fopen(path, "rb");
	struct view w, l;
	const char *name;
	char key[512];
	char *buf;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "llhttp-diff: %s: %s\n", path, strerror(errno));
		if (f != NULL)
			fclose(f);
		return -1;
	}
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "llhttp-diff: %s: read failed\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	memset(&w, 0, sizeof(w));
	memset(&l, 0, sizeof(l));
	run_weir(mode, buf, (size_t)n, &w);
	run_llhttp(mode, buf, (size_t)n, &l);
	name = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;
	ninputs++;
	if (compare(mode, &w, &l, key, sizeof(key))) {
		ndiff++;
		printf("%s\tDIFF\t%s\n", name, key);
		if (verbose) {
			show("input", buf, (size_t)n);
			dump("weir", &w);
			dump("llhttp", &l);
		}
	} else {
		printf("%s\tsame\t-\n", name);
	}
	view_free(&w);
	view_free(&l);
	free(buf);
	return 0;
}

static int run_path(enum mode mode, const char *path)
{
	struct dirent **names;
	struct stat st;
	int n, err = 0;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "llhttp-diff: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return run_file(mode, path);
	n = scandir(path, &names, NULL, alphasort);
	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		char full[4096];

		if (names[i]->d_name[0] != '.') {
			snprintf(full, sizeof(full), "%s/%s", path, names[i]->d_name);
			if (run_path(mode, full) != 0)
				err = -1;
		}
		free(names[i]);
	}
	free(names);
	return err;
}

int main(int argc, char **argv)
{
	enum mode mode;
	int err = 0;

	if (argc > 1 && strcmp(argv[1], "-v") == 0) {
		verbose = true;
		argv++;
		argc--;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: llhttp-diff [-v] request|response|chunked PATH...\n");
		return 2;
	}
	if (strcmp(argv[1], "request") == 0)
		mode = M_REQUEST;
	else if (strcmp(argv[1], "response") == 0)
		mode = M_RESPONSE;
	else if (strcmp(argv[1], "chunked") == 0)
		mode = M_CHUNKED;
	else
		return 2;
	for (int i = 2; i < argc; i++)
		if (run_path(mode, argv[i]) != 0)
			err = 1;
	fprintf(stderr, "llhttp-diff %s: %u input(s), %u disagreement(s)\n", argv[1], ninputs,
		ndiff);
	return err;
}
