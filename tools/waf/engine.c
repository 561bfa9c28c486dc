/* weir-waf engine: libmodsecurity3 with the OWASP CRS. One ModSecurity and
 * one RulesSet shared (read-only once loaded) by every worker thread; one
 * Transaction per request, used by one thread at a time (the SDK runs a
 * request's events on one worker, in order). Matches are collected from
 * libmodsecurity's log callback, which runs synchronously on the thread
 * evaluating the transaction and gets the transaction's waf_tx. */
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <modsecurity/intervention.h>
#include <modsecurity/modsecurity.h>
#include <modsecurity/rules_set.h>
#include <modsecurity/transaction.h>

#include "waf.h"

struct waf_engine {
	ModSecurity *msc;
	RulesSet *rules;
};

/* ---- loading ------------------------------------------------------------- */

static bool exists(const char *path)
{
	return path != NULL && path[0] != '\0' && strcmp(path, "none") != 0 &&
	       access(path, R_OK) == 0;
}

static bool is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static const char *base(const char *path)
{
	const char *s = strrchr(path, '/');

	return s != NULL ? s + 1 : path;
}

/* What weir-waf loads, in order: a list of steps, either inline text or a
 * file, shared by the loader and --print-directives. */
struct step {
	const char *text;               /* inline directives, or */
	const char *file;               /* a file to include */
};

typedef int (*step_fn)(void *ctx, const struct step *s);

static int walk(const struct waf_config *cfg, step_fn fn, void *ctx, unsigned *nfiles)
{
	char *dirs = waf_config_directives(cfg);
	glob_t g = { 0 };
	bool scored = false, out_scored = false;
	int ret = -1;

	*nfiles = 0;
	if (dirs == NULL) {
		fprintf(stderr, WAF_PROG ": out of memory\n");
		return -1;
	}
	if (fn(ctx, &(struct step){ .text = dirs }) != 0)
		goto out;
	if (exists(cfg->crs_setup) && fn(ctx, &(struct step){ .file = cfg->crs_setup }) != 0)
		goto out;
	if (exists(cfg->before) && fn(ctx, &(struct step){ .file = cfg->before }) != 0)
		goto out;
	if (is_dir(cfg->rules)) {
		char pat[4200];
		int rc;

		if ((size_t)snprintf(pat, sizeof(pat), "%s/*.conf", cfg->rules) >= sizeof(pat)) {
			fprintf(stderr, WAF_PROG ": rules path too long\n");
			goto out;
		}
		rc = glob(pat, 0, NULL, &g);        /* sorted */
		if (rc != 0) {
			fprintf(stderr, WAF_PROG ": %s: no rule files (*.conf)\n", cfg->rules);
			goto out;
		}
		for (size_t i = 0; i < g.gl_pathc; i++) {
			const char *b = base(g.gl_pathv[i]);

			if (fn(ctx, &(struct step){ .file = g.gl_pathv[i] }) != 0)
				goto out;
			(*nfiles)++;
			if (strncmp(b, "REQUEST-949", 11) == 0) {
				if (fn(ctx, &(struct step){ .text = waf__score_rules }) != 0)
					goto out;
				scored = true;
			} else if (strncmp(b, "RESPONSE-959", 12) == 0) {
				if (fn(ctx, &(struct step){ .text = waf__out_score_rules }) != 0)
					goto out;
				out_scored = true;
			}
		}
	} else {
		if (fn(ctx, &(struct step){ .file = cfg->rules }) != 0)
			goto out;
		(*nfiles)++;
	}
	if (!scored && fn(ctx, &(struct step){ .text = waf__score_rules }) != 0)
		goto out;
	if (!out_scored && fn(ctx, &(struct step){ .text = waf__out_score_rules }) != 0)
		goto out;
	if (exists(cfg->after) && fn(ctx, &(struct step){ .file = cfg->after }) != 0)
		goto out;
	if (cfg->include != NULL && fn(ctx, &(struct step){ .file = cfg->include }) != 0)
		goto out;
	ret = 0;
out:
	globfree(&g);
	free(dirs);
	return ret;
}

static int load_step(void *ctx, const struct step *s)
{
	RulesSet *rules = ctx;
	const char *error = NULL;
	int rc;

	if (s->text != NULL)
		rc = msc_rules_add(rules, s->text, &error);
	else
		rc = msc_rules_add_file(rules, s->file, &error);
	if (rc < 0) {
		/* libmodsecurity's message names the file and line */
		fprintf(stderr, WAF_PROG ": %s: %s\n", s->file != NULL ? s->file : "(generated)",
			error != NULL ? error : "cannot load the rules");
		free((void *)(uintptr_t)error);
		return -1;
	}
	free((void *)(uintptr_t)error);
	return 0;
}

static int print_step(void *ctx, const struct step *s)
{
	FILE *f = ctx;

	if (s->text != NULL)
		fputs(s->text, f);
	else
		fprintf(f, "Include \"%s\"\n", s->file);
	return 0;
}

int waf_engine_print(const struct waf_config *cfg, FILE *f)
{
	unsigned n;

	return walk(cfg, print_step, f, &n);
}

static void log_cb(void *data, const void *msg);

int waf_engine_new(const struct waf_config *cfg, struct waf_engine **out, unsigned *nfiles)
{
	struct waf_engine *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return -1;
	e->msc = msc_init();
	e->rules = msc_create_rules_set();
	if (e->msc == NULL || e->rules == NULL) {
		waf_engine_free(e);
		return -1;
	}
	msc_set_connector_info(e->msc, WAF_PROG " (weir agent)");
	msc_set_log_cb(e->msc, log_cb);
	if (walk(cfg, load_step, e->rules, nfiles) != 0) {
		waf_engine_free(e);
		return -1;
	}
	*out = e;
	return 0;
}

void waf_engine_free(struct waf_engine *e)
{
	if (e == NULL)
		return;
	if (e->rules != NULL)
		msc_rules_cleanup(e->rules);
	if (e->msc != NULL)
		msc_cleanup(e->msc);
	free(e);
}

/* ---- matches ------------------------------------------------------------ */

/* The text after `[key "` up to `"]`, or NULL. */
static const char *field(const char *msg, const char *key, size_t *len)
{
	char pat[16];
	const char *s, *e;
	int n = snprintf(pat, sizeof(pat), "[%s \"", key);

	s = strstr(msg, pat);
	if (s == NULL)
		return NULL;
	s += n;
	e = strstr(s, "\"]");
	if (e == NULL)
		return NULL;
	*len = (size_t)(e - s);
	return s;
}

static int number_after(const char *s, size_t len, const char *prefix)
{
	const char *p = memmem(s, len, prefix, strlen(prefix));
	long v = 0;

	if (p == NULL)
		return -1;
	p += strlen(prefix);
	if (p >= s + len || *p < '0' || *p > '9')
		return -1;
	while (p < s + len && *p >= '0' && *p <= '9' && v < 1000000)
		v = v * 10 + (*p++ - '0');
	return (int)v;
}

/* Called by libmodsecurity for every rule match that logs, on the thread
 * that evaluates the transaction. */
static void log_cb(void *data, const void *msg)
{
	struct waf_tx *t = data;
	const char *text = msg, *id, *m;
	size_t idlen = 0, mlen = 0;
	unsigned long v = 0;
	struct waf_match *w;
	int sc;

	if (t == NULL || text == NULL)
		return;
	id = field(text, "id", &idlen);
	if (id == NULL || idlen == 0 || idlen > 9)
		return;
	for (size_t i = 0; i < idlen; i++) {
		if (id[i] < '0' || id[i] > '9')
			return;
		v = v * 10 + (unsigned long)(id[i] - '0');
	}
	m = field(text, "msg", &mlen);
	if (m == NULL)
		m = "", mlen = 0;
	switch (v) {
	case 4000010:           /* weir-waf's score rules */
	case 949110:            /* CRS: inbound anomaly score exceeded */
		sc = number_after(m, mlen, v == 949110 ? "Total Score: " : "score ");
		if (sc >= 0)
			t->score = sc;
		return;
	case 4000011:
	case 959100:
		sc = number_after(m, mlen, v == 959100 ? "Total Score: " : "score ");
		if (sc >= 0)
			t->out_score = sc;
		return;
	default:
		break;
	}
	if (v >= 980000 && v < 990000)
		return;         /* CRS correlation (logging phase) */
	for (unsigned i = 0; i < t->nm; i++)
		if (t->m[i].id == v)
			return;
	if (t->nm == WAF_MAX_MATCHES) {
		t->more++;
		return;
	}
	w = &t->m[t->nm++];
	w->id = (uint32_t)v;
	if (mlen >= sizeof(w->msg))
		mlen = sizeof(w->msg) - 1;
	/* tags must be printable: anything else becomes '?' */
	for (size_t i = 0; i < mlen; i++)
		w->msg[i] = (unsigned char)m[i] >= 0x20 && (unsigned char)m[i] < 0x7f ? m[i] : '?';
	w->msg[mlen] = '\0';
}

/* ---- transactions ------------------------------------------------------- */

static void check_intervention(struct waf_tx *t)
{
	ModSecurityIntervention it = { .status = 200 };

	if (msc_intervention(t->tx, &it) != 0 && it.disruptive) {
		t->intervention = true;
		t->msc_status = it.status;
		/* the disruptive rule (949110 with the total score) is not
		 * passed to the log callback, only here */
		if (it.log != NULL)
			log_cb(t, it.log);
	}
	free(it.url);
	free(it.log);
}

/* NUL-terminated copy of a slice into buf (n > 0); false when it holds a
 * NUL byte or does not fit. */
static bool cstr(char *buf, size_t n, const struct weir_agent_str *s)
{
	if (s->len >= n || (s->len != 0 && memchr(s->ptr, '\0', s->len) != NULL))
		return false;
	if (s->len != 0)
		memcpy(buf, s->ptr, s->len);
	buf[s->len] = '\0';
	return true;
}

int waf_tx_open(struct waf_engine *e, struct waf_tx *t, const struct weir_agent_request *rq)
{
	char uid[128], addr[64], method[64];
	char *target;

	memset(t, 0, sizeof(*t));
	t->score = t->out_score = -1;
	if (!cstr(uid, sizeof(uid), &rq->uid))
		uid[0] = '\0';
	t->tx = uid[0] != '\0' ? msc_new_transaction_with_id(e->msc, e->rules, uid, t)
			       : msc_new_transaction(e->msc, e->rules, t);
	if (t->tx == NULL)
		return -ENOMEM;
	if (!cstr(addr, sizeof(addr), &rq->client_addr))
		strcpy(addr, "0.0.0.0");
	if (!cstr(method, sizeof(method), &rq->method))
		return -EINVAL;
	target = malloc(rq->target.len + 1);
	if (target == NULL)
		return -ENOMEM;
	if (!cstr(target, rq->target.len + 1, &rq->target)) {
		free(target);
		return -EINVAL;
	}
	msc_process_connection(t->tx, addr, rq->client_port, "127.0.0.1", 0);
	msc_process_uri(t->tx, target, method, rq->http_minor == 0 ? "1.0" : "1.1");
	free(target);
	check_intervention(t);
	if (t->intervention)
		return 0;
	for (uint32_t i = 0; i < rq->nheaders; i++) {
		const struct weir_agent_header *h = &rq->headers[i];

		msc_add_n_request_header(t->tx, (const unsigned char *)h->name.ptr, h->name.len,
					 (const unsigned char *)h->value.ptr, h->value.len);
	}
	msc_process_request_headers(t->tx);
	check_intervention(t);
	return 0;
}

void waf_tx_body(struct waf_tx *t, const char *data, size_t len)
{
	t->body_frames++;
	if (t->tx == NULL || t->intervention || len == 0)
		return;
	t->body_seen += len;
	msc_append_request_body(t->tx, (const unsigned char *)data, len);
	check_intervention(t);
}

void waf_tx_request_end(struct waf_tx *t)
{
	if (t->tx == NULL || t->intervention)
		return;
	msc_process_request_body(t->tx);
	check_intervention(t);
}

void waf_tx_response_headers(struct waf_tx *t, const struct weir_agent_response *rs)
{
	if (t->tx == NULL)
		return;
	t->intervention = false;
	for (uint32_t i = 0; i < rs->nheaders; i++) {
		const struct weir_agent_header *h = &rs->headers[i];

		msc_add_n_response_header(t->tx, (const unsigned char *)h->name.ptr, h->name.len,
					  (const unsigned char *)h->value.ptr, h->value.len);
	}
	msc_process_response_headers(t->tx, rs->status, rs->http_minor == 0 ? "HTTP 1.0"
									       : "HTTP 1.1");
	check_intervention(t);
}

void waf_tx_response_body(struct waf_tx *t, const char *data, size_t len, bool last)
{
	if (t->tx == NULL || t->intervention)
		return;
	if (len != 0)
		msc_append_response_body(t->tx, (const unsigned char *)data, len);
	if (last) {
		msc_process_response_body(t->tx);
		check_intervention(t);
	}
}

void waf_tx_close(struct waf_tx *t)
{
	if (t->tx != NULL)
		msc_transaction_cleanup(t->tx);
	t->tx = NULL;
}
