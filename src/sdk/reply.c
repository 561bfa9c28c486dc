/* libweir-agent replies: the verdict builder and its VERDICT encoder.
 *
 * A reply keeps its strings in one growing byte arena and its list entries
 * (header mutations, tags, rule ids) in one array, each tagged with its
 * list; the encoder walks the array once per list present. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <msgpuck.h>

#include "sdk-internal.h"
#include "weir/agent_fields.h"

enum {
	L_HEADERS_OUT,
	L_REQ_SET,
	L_REQ_ADD,
	L_REQ_DEL,
	L_RESP_SET,
	L_RESP_ADD,
	L_RESP_DEL,
	L_RULE_IDS,
	L_TAGS,
	L_N,
};

/* Wire key of each list, in the order they are encoded (the spec's
 * examples: headers_out and body, mutations, rule_ids, tags, score, reason). */
static const uint8_t list_key[L_N] = {
	[L_HEADERS_OUT] = WEIR_AGENT_K_HEADERS_OUT,
	[L_REQ_SET] = WEIR_AGENT_K_REQ_SET,
	[L_REQ_ADD] = WEIR_AGENT_K_REQ_ADD,
	[L_REQ_DEL] = WEIR_AGENT_K_REQ_DEL,
	[L_RESP_SET] = WEIR_AGENT_K_RESP_SET,
	[L_RESP_ADD] = WEIR_AGENT_K_RESP_ADD,
	[L_RESP_DEL] = WEIR_AGENT_K_RESP_DEL,
	[L_RULE_IDS] = WEIR_AGENT_K_RULE_IDS,
	[L_TAGS] = WEIR_AGENT_K_TAGS,
};

struct span {
	uint32_t off, len;
};

struct item {
	uint8_t list;
	bool num;                       /* rule id as a number */
	uint64_t n;
	struct span a, b;               /* name / value; a only for del lists, tags */
};

struct weir_agent_reply {
	uint8_t action;
	int8_t phase;                   /* -1: automatic */
	uint16_t status;                /* 0: the default of the action */
	bool has_body, has_location, has_reason, has_score, has_replace;
	int64_t score;
	struct span body, location, reason, replace;
	uint16_t count[L_N];
	struct item *items;
	uint32_t nitems, citems;
	char *buf;
	uint32_t len, cap;
};

struct weir_agent_reply *weir_agent_reply_new(void)
{
	struct weir_agent_reply *r = calloc(1, sizeof(*r));

	if (r != NULL)
		r->phase = -1;
	return r;
}

void weir_agent_reply_free(struct weir_agent_reply *r)
{
	if (r == NULL)
		return;
	free(r->items);
	free(r->buf);
	free(r);
}

void weir_agent_reply_reset(struct weir_agent_reply *r)
{
	r->action = WEIR_AGENT_ALLOW;
	r->phase = -1;
	r->status = 0;
	r->has_body = r->has_location = r->has_reason = r->has_score = r->has_replace = false;
	memset(r->count, 0, sizeof(r->count));
	r->nitems = 0;
	r->len = 0;
}

/* Copies n bytes into the arena. */
static int put(struct weir_agent_reply *r, const void *p, size_t n, struct span *out)
{
	if (n > UINT32_MAX - r->len || r->len + n > WEIR_AGENT_MAX_FRAME_CEIL)
		return -EMSGSIZE;
	if (r->len + n > r->cap) {
		size_t cap = r->cap != 0 ? r->cap : 256;
		char *b;

		while (cap < r->len + n)
			cap *= 2;
		b = realloc(r->buf, cap);
		if (b == NULL)
			return -ENOMEM;
		r->buf = b;
		r->cap = (uint32_t)cap;
	}
	if (n != 0)
		memcpy(r->buf + r->len, p, n);
	out->off = r->len;
	out->len = (uint32_t)n;
	r->len += (uint32_t)n;
	return 0;
}

/* the proxy's own rules (weir/agent_fields.h): what passes here, weir accepts */
static bool is_token(const char *s)
{
	return weir_agent_name_ok(s, strlen(s));
}

static bool is_value(const char *s)
{
	return weir_agent_value_ok(s, strlen(s));
}

static bool is_protected(const char *name)
{
	return weir_agent_protected_name(name, strlen(name));
}

static struct item *item_new(struct weir_agent_reply *r, unsigned list, unsigned limit)
{
	if (r->count[list] >= limit)
		return NULL;
	if (r->nitems == r->citems) {
		uint32_t c = r->citems != 0 ? 2 * r->citems : 8;
		struct item *it = realloc(r->items, c * sizeof(*it));

		if (it == NULL)
			return NULL;
		r->items = it;
		r->citems = c;
	}
	return &r->items[r->nitems];
}

/* Commits the entry item_new() handed out. */
static void item_commit(struct weir_agent_reply *r, unsigned list)
{
	r->items[r->nitems].list = (uint8_t)list;
	r->nitems++;
	r->count[list]++;
}

static int add_pair(struct weir_agent_reply *r, unsigned list, const char *name, const char *value)
{
	uint32_t len0 = r->len;
	struct item *it;
	int err;

	if (name == NULL || !is_token(name))
		return -EINVAL;
	if (value != NULL && !is_value(value))
		return -EINVAL;
	if (list != L_HEADERS_OUT && is_protected(name))
		return -EPERM;
	if (r->count[list] >= WEIR_AGENT_MAX_MUTATIONS)
		return -E2BIG;
	it = item_new(r, list, WEIR_AGENT_MAX_MUTATIONS);
	if (it == NULL)
		return -ENOMEM;
	it->num = false;
	it->b.len = 0;
	err = put(r, name, strlen(name), &it->a);
	if (err == 0 && value != NULL)
		err = put(r, value, strlen(value), &it->b);
	if (err != 0) {
		r->len = len0;
		return err;
	}
	item_commit(r, list);
	return 0;
}

static int add_audit(struct weir_agent_reply *r, unsigned list, const char *s, uint64_t n, bool num)
{
	struct item *it;

	if (!num && (s == NULL || *s == '\0'))
		return -EINVAL;
	if (!num && strlen(s) > WEIR_AGENT_MAX_NAME)
		return -E2BIG;
	if (!num && !is_value(s))       /* weir refuses the verdict otherwise */
		return -EINVAL;
	if (r->count[list] >= WEIR_AGENT_MAX_AUDIT)
		return -E2BIG;
	it = item_new(r, list, WEIR_AGENT_MAX_AUDIT);
	if (it == NULL)
		return -ENOMEM;
	it->num = num;
	it->n = n;
	if (!num) {
		int err = put(r, s, strlen(s), &it->a);

		if (err != 0)
			return err;
	}
	item_commit(r, list);
	return 0;
}

int weir_agent_reply_allow(struct weir_agent_reply *r)
{
	r->action = WEIR_AGENT_ALLOW;
	r->status = 0;
	r->has_body = r->has_location = false;
	return 0;
}

int weir_agent_reply_block(struct weir_agent_reply *r, unsigned status, const void *body, size_t len)
{
	struct span sp;
	int err;

	if (status != 0 && (status < 200 || status > 599))
		return -EINVAL;
	if (len != 0 && body == NULL)
		return -EINVAL;
	err = put(r, body, len, &sp);
	if (err != 0)
		return err;
	r->action = WEIR_AGENT_BLOCK;
	r->status = (uint16_t)status;
	r->body = sp;
	r->has_body = len != 0;
	r->has_location = false;
	return 0;
}

int weir_agent_reply_redirect(struct weir_agent_reply *r, unsigned status, const char *location)
{
	struct span sp;
	int err;

	if (status != 0 && status != 301 && status != 302 && status != 303 && status != 307 &&
	    status != 308)
		return -EINVAL;
	if (location == NULL || *location == '\0' || !is_value(location))
		return -EINVAL;
	err = put(r, location, strlen(location), &sp);
	if (err != 0)
		return err;
	r->action = WEIR_AGENT_REDIRECT;
	r->status = (uint16_t)status;
	r->location = sp;
	r->has_location = true;
	r->has_body = false;
	return 0;
}

int weir_agent_reply_body_replace(struct weir_agent_reply *r, const void *body, size_t len)
{
	struct span sp;
	int err;

	if (len != 0 && body == NULL)
		return -EINVAL;
	err = put(r, body, len, &sp);
	if (err != 0)
		return err;
	r->replace = sp;
	r->has_replace = true;
	return 0;
}

int weir_agent_reply_header(struct weir_agent_reply *r, const char *name, const char *value)
{
	return value == NULL ? -EINVAL : add_pair(r, L_HEADERS_OUT, name, value);
}

int weir_agent_reply_phase(struct weir_agent_reply *r, int phase)
{
	if (phase != -1 && phase != WEIR_AGENT_PHASE_REQUEST && phase != WEIR_AGENT_PHASE_RESPONSE)
		return -EINVAL;
	r->phase = (int8_t)phase;
	return 0;
}

int weir_agent_reply_req_set(struct weir_agent_reply *r, const char *name, const char *value)
{
	return value == NULL ? -EINVAL : add_pair(r, L_REQ_SET, name, value);
}

int weir_agent_reply_req_add(struct weir_agent_reply *r, const char *name, const char *value)
{
	return value == NULL ? -EINVAL : add_pair(r, L_REQ_ADD, name, value);
}

int weir_agent_reply_req_del(struct weir_agent_reply *r, const char *name)
{
	return add_pair(r, L_REQ_DEL, name, NULL);
}

int weir_agent_reply_resp_set(struct weir_agent_reply *r, const char *name, const char *value)
{
	return value == NULL ? -EINVAL : add_pair(r, L_RESP_SET, name, value);
}

int weir_agent_reply_resp_add(struct weir_agent_reply *r, const char *name, const char *value)
{
	return value == NULL ? -EINVAL : add_pair(r, L_RESP_ADD, name, value);
}

int weir_agent_reply_resp_del(struct weir_agent_reply *r, const char *name)
{
	return add_pair(r, L_RESP_DEL, name, NULL);
}

int weir_agent_reply_tag(struct weir_agent_reply *r, const char *tag)
{
	return add_audit(r, L_TAGS, tag, 0, false);
}

int weir_agent_reply_rule_id(struct weir_agent_reply *r, uint64_t id)
{
	return add_audit(r, L_RULE_IDS, NULL, id, true);
}

int weir_agent_reply_rule_name(struct weir_agent_reply *r, const char *id)
{
	return add_audit(r, L_RULE_IDS, id, 0, false);
}

int weir_agent_reply_score(struct weir_agent_reply *r, int64_t score)
{
	r->score = score;
	r->has_score = true;
	return 0;
}

int weir_agent_reply_reason(struct weir_agent_reply *r, const char *reason)
{
	struct span sp;
	int err;

	if (reason == NULL)
		return -EINVAL;
	if (strlen(reason) > WEIR_AGENT_MAX_REASON)    /* weir refuses the verdict otherwise */
		return -E2BIG;
	err = put(r, reason, strlen(reason), &sp);
	if (err != 0)
		return err;
	r->reason = sp;
	r->has_reason = true;
	return 0;
}

int weir_agent_reply_action(const struct weir_agent_reply *r)
{
	return r->action;
}

/* ---- encoding ------------------------------------------------------------ */

int weir__sdk_reply_phase(const struct weir_agent_reply *r)
{
	return r->phase;
}

int weir__sdk_reply_check(const struct weir_agent_reply *r)
{
	return r->action == WEIR_AGENT_REDIRECT && !r->has_location ? -EINVAL : 0;
}

static bool list_sent(const struct weir_agent_reply *r, unsigned list)
{
	/* headers_out only with a block or redirect */
	return r->count[list] != 0 && (list != L_HEADERS_OUT || r->action != WEIR_AGENT_ALLOW);
}

static unsigned status_of(const struct weir_agent_reply *r)
{
	if (r->status != 0)
		return r->status;
	return r->action == WEIR_AGENT_BLOCK ? 403 : 302;
}

static size_t sizeof_int(int64_t v)
{
	return v >= 0 ? mp_sizeof_uint((uint64_t)v) : mp_sizeof_int(v);
}

size_t weir__sdk_reply_size(const struct weir_agent_reply *r)
{
	/* keys are positive fixints: one byte each */
	size_t n = WEIR_AGENT_HDR_SIZE + mp_sizeof_map(16) + 2 + 2;

	if (r->action != WEIR_AGENT_ALLOW)
		n += 1 + mp_sizeof_uint(status_of(r));
	if (r->action == WEIR_AGENT_REDIRECT && r->has_location)
		n += 1 + mp_sizeof_str(r->location.len);
	if (r->action == WEIR_AGENT_BLOCK && r->has_body)
		n += 1 + mp_sizeof_bin(r->body.len);
	for (unsigned l = 0; l < L_N; l++) {
		unsigned per = l == L_HEADERS_OUT || l == L_REQ_SET || l == L_REQ_ADD ||
			       l == L_RESP_SET || l == L_RESP_ADD ? 2 : 1;

		if (list_sent(r, l))
			n += 1 + mp_sizeof_array(per * r->count[l]);
	}
	for (uint32_t i = 0; i < r->nitems; i++) {
		const struct item *it = &r->items[i];

		if (!list_sent(r, it->list))
			continue;
		if (it->num)
			n += mp_sizeof_uint(it->n);
		else
			n += mp_sizeof_str(it->a.len);
		if (it->list != L_REQ_DEL && it->list != L_RESP_DEL && it->list != L_TAGS &&
		    it->list != L_RULE_IDS)
			n += mp_sizeof_str(it->b.len);
	}
	if (r->has_score)
		n += 1 + sizeof_int(r->score);
	if (r->has_reason)
		n += 1 + mp_sizeof_str(r->reason.len);
	if (r->has_replace)
		n += 1 + mp_sizeof_bin(r->replace.len);
	return n;
}

static char *enc_int(char *w, int64_t v)
{
	return v >= 0 ? mp_encode_uint(w, (uint64_t)v) : mp_encode_int(w, v);
}

uint32_t weir__sdk_reply_encode(char *dst, const struct weir_agent_reply *r, uint64_t id,
				unsigned phase)
{
	char *w = dst + WEIR_AGENT_HDR_SIZE;
	uint32_t nkeys = 2;
	/* body_replace: only with a request-phase allow */
	bool replace = r->has_replace && r->action == WEIR_AGENT_ALLOW &&
		       phase == WEIR_AGENT_PHASE_REQUEST;

	if (r->action != WEIR_AGENT_ALLOW)
		nkeys++;
	if (r->action == WEIR_AGENT_REDIRECT && r->has_location)
		nkeys++;
	if (r->action == WEIR_AGENT_BLOCK && r->has_body)
		nkeys++;
	for (unsigned l = 0; l < L_N; l++)
		nkeys += list_sent(r, l);
	nkeys += r->has_score + r->has_reason + replace;

	w = mp_encode_map(w, nkeys);
	w = mp_encode_uint(w, WEIR_AGENT_K_ACTION);
	w = mp_encode_uint(w, r->action);
	w = mp_encode_uint(w, WEIR_AGENT_K_PHASE);
	w = mp_encode_uint(w, phase);
	if (r->action != WEIR_AGENT_ALLOW) {
		w = mp_encode_uint(w, WEIR_AGENT_K_STATUS);
		w = mp_encode_uint(w, status_of(r));
	}
	if (r->action == WEIR_AGENT_REDIRECT && r->has_location) {
		w = mp_encode_uint(w, WEIR_AGENT_K_LOCATION);
		w = mp_encode_str(w, r->buf + r->location.off, r->location.len);
	}
	for (unsigned l = 0; l < L_N; l++) {
		bool pair = l == L_HEADERS_OUT || l == L_REQ_SET || l == L_REQ_ADD ||
			    l == L_RESP_SET || l == L_RESP_ADD;

		if (l == L_REQ_SET && r->action == WEIR_AGENT_BLOCK && r->has_body) {
			/* body right after headers_out, as in the spec's example */
			w = mp_encode_uint(w, WEIR_AGENT_K_BODY);
			w = mp_encode_bin(w, r->buf + r->body.off, r->body.len);
		}
		if (!list_sent(r, l))
			continue;
		w = mp_encode_uint(w, list_key[l]);
		w = mp_encode_array(w, (pair ? 2u : 1u) * r->count[l]);
		for (uint32_t i = 0; i < r->nitems; i++) {
			const struct item *it = &r->items[i];

			if (it->list != l)
				continue;
			if (it->num)
				w = mp_encode_uint(w, it->n);
			else
				w = mp_encode_str(w, r->buf + it->a.off, it->a.len);
			if (pair)
				w = mp_encode_str(w, r->buf + it->b.off, it->b.len);
		}
	}
	if (r->has_score) {
		w = mp_encode_uint(w, WEIR_AGENT_K_SCORE);
		w = enc_int(w, r->score);
	}
	if (r->has_reason) {
		w = mp_encode_uint(w, WEIR_AGENT_K_REASON);
		w = mp_encode_str(w, r->buf + r->reason.off, r->reason.len);
	}
	if (replace) {
		w = mp_encode_uint(w, WEIR_AGENT_K_BODY_REPLACE);
		w = mp_encode_bin(w, r->buf + r->replace.off, r->replace.len);
	}
	weir__sdk_hdr_put(dst, (uint32_t)(w - dst) - WEIR_AGENT_HDR_SIZE, WEIR_AGENT_VERDICT, 0, id);
	return (uint32_t)(w - dst);
}
