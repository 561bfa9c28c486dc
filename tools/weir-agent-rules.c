/*
 * weir-agent-rules: a small deny-list agent built on libweir-agent.
 *
 *   weir-agent-rules --rules FILE [--listen ADDR]... [--workers N]
 *                    [--status N] [--credit BYTES] [--name NAME] [--check]
 *                    [--quiet] [--verbose]
 *
 * The rule file, one rule per line (also printed by --help):
 *
 *   # comment (a line whose first non-blank character is '#'); blank lines
 *   # are ignored too
 *   ID KIND ARGUMENT
 *
 *   ID        a rule number (1 .. 2^63-1), unique in the file; weir logs it
 *             (rule_ids) when the rule blocks
 *   KIND and ARGUMENT (the rest of the line, blanks trimmed at both ends):
 *     method  M[,M...]           the method is one of these (exact, case kept)
 *     path    REGEX              PCRE2 pattern found in the path (the
 *                                request-target before '?')
 *     target  REGEX              PCRE2 pattern found in the whole target
 *     header  NAME REGEX         a field NAME (any case) has a value in which
 *                                REGEX is found ('^' matches any value)
 *     ip      NET[,NET...]       the client address is in one of these:
 *                                an IPv4 or IPv6 address, optionally /BITS
 *     body    TEXT               the request body contains TEXT; escapes:
 *                                \\ \s (space) \t \r \n \xHH
 *     ibody   TEXT               the same, ASCII case-insensitive
 *
 * Patterns are compiled as bytes (no UTF mode); (?i) makes one
 * case-insensitive. A regex is evaluated with a match limit, so a pattern
 * with catastrophic backtracking fails to match instead of hanging a
 * worker. Rules are tried in file order; the first match blocks the request
 * with --status (default 403), a short text/plain body, the rule id, and
 * tags "weir-agent-rules" and KIND. Body rules make the agent subscribe to
 * request_body; a match spanning two body frames is found. Errors name
 * FILE:LINE; --check only reads the file (exit 0 when it is valid).
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent-cli.h"

#define PROG "weir-agent-rules"
#define MAX_BODY_PATTERN 1024u
#define REGEX_MATCH_LIMIT 100000u

static const char usage[] =
	"usage: " PROG " --rules FILE [options]\n"
	"  --rules FILE       the rule file (format below)\n"
	"  --listen ADDR      unix:PATH, PATH (starting with / or .), or HOST:PORT;\n"
	"                     repeatable (default unix:/tmp/weir-agent-rules.sock)\n"
	"  --workers N        threads evaluating rules (default 2; 0: the I/O thread)\n"
	"  --status N         status of a block, 200..599 (default 403)\n"
	"  --credit BYTES     use the CREDIT capability with this body window\n"
	"  --name NAME        name sent in HELLO_REPLY (default rules)\n"
	"  --check            read the rule file, report errors, exit\n"
	"  --quiet, --verbose\n"
	"\n"
	"Rule file: one rule per line, \"ID KIND ARGUMENT\"; blank lines and lines\n"
	"starting with '#' are ignored. ID: a number (1..2^63-1), unique, reported\n"
	"to weir in rule_ids. ARGUMENT is the rest of the line, trimmed.\n"
	"  method  M[,M...]    the method is one of these (exact)\n"
	"  path    REGEX       PCRE2 pattern found in the path (target before '?')\n"
	"  target  REGEX       PCRE2 pattern found in the whole request-target\n"
	"  header  NAME REGEX  a field NAME (any case) has a value matching REGEX\n"
	"                      ('^' matches any value: the field is present)\n"
	"  ip      NET[,NET...] client address in one of these (IPv4/IPv6[/BITS])\n"
	"  body    TEXT        the request body contains TEXT (escapes \\\\ \\s \\t\n"
	"                      \\r \\n \\xHH)\n"
	"  ibody   TEXT        the same, ASCII case-insensitive\n"
	"Example:\n"
	"  100 method TRACE,CONNECT\n"
	"  101 path ^/(admin|\\.git)(/|$)\n"
	"  102 header User-Agent (?i)sqlmap|nikto\n"
	"  103 ip 192.0.2.0/24, 2001:db8::/32\n"
	"  104 ibody union select\n"
	"The first matching rule (in file order) blocks the request. Errors are\n"
	"reported as FILE:LINE: message.\n";

enum kind { K_METHOD, K_PATH, K_TARGET, K_HEADER, K_IP, K_BODY, K_IBODY };

static const char *const kind_names[] = {
	[K_METHOD] = "method", [K_PATH] = "path", [K_TARGET] = "target", [K_HEADER] = "header",
	[K_IP] = "ip", [K_BODY] = "body", [K_IBODY] = "ibody",
};

struct net {
	uint8_t addr[16];               /* IPv4 as ::ffff:a.b.c.d */
	unsigned bits;
};

struct rule {
	uint64_t id;
	enum kind kind;
	unsigned line;
	char **list;                    /* methods */
	unsigned nlist;
	char *name;                     /* header */
	pcre2_code *re;
	struct net *nets;
	unsigned nnets;
	char *pat;                      /* body (lowercase for ibody) */
	size_t plen;
};

struct rules {
	struct rule *r;
	unsigned n;
	size_t max_pat;                 /* longest body pattern */
	unsigned status;
	pcre2_match_context *mctx;
};

/* ---- the rule file ------------------------------------------------------------ */

struct parse {
	const char *file;
	unsigned line;
	unsigned errors;
};

__attribute__((format(printf, 2, 3)))
static void perr(struct parse *p, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%u: ", p->file, p->line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	p->errors++;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		e--;
	*e = '\0';
	return s;
}

/* Splits off the first blank-separated word of *s. */
static char *word(char **s)
{
	char *w = *s, *e;

	e = w + strcspn(w, " \t");
	if (*e != '\0') {
		*e++ = '\0';
		e += strspn(e, " \t");
	}
	*s = e;
	return w;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int parse_text(struct parse *p, struct rule *r, const char *arg)
{
	size_t n = 0;
	char *out = malloc(strlen(arg) + 1);

	if (out == NULL)
		return -1;
	for (const char *s = arg; *s != '\0'; s++) {
		char c = *s;

		if (c == '\\') {
			s++;
			switch (*s) {
			case '\\': c = '\\'; break;
			case 's': c = ' '; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case 'n': c = '\n'; break;
			case 'x': {
				int hi = s[1] != '\0' ? hexval((unsigned char)s[1]) : -1;
				int lo = hi >= 0 && s[2] != '\0' ? hexval((unsigned char)s[2]) : -1;

				if (lo < 0) {
					perr(p, "%s: \\x needs two hex digits", kind_names[r->kind]);
					free(out);
					return -1;
				}
				c = (char)(hi * 16 + lo);
				s += 2;
				break;
			}
			default:
				perr(p, "%s: unknown escape \\%c", kind_names[r->kind], *s != '\0' ? *s : ' ');
				free(out);
				return -1;
			}
		}
		out[n++] = r->kind == K_IBODY ? (char)tolower((unsigned char)c) : c;
	}
	if (n == 0 || n > MAX_BODY_PATTERN) {
		perr(p, "%s: the text must be 1..%u bytes", kind_names[r->kind], MAX_BODY_PATTERN);
		free(out);
		return -1;
	}
	r->pat = out;
	r->plen = n;
	return 0;
}

static int parse_regex(struct parse *p, struct rule *r, const char *arg)
{
	int code;
	PCRE2_SIZE off;

	if (*arg == '\0') {
		perr(p, "%s: no regex", kind_names[r->kind]);
		return -1;
	}
	r->re = pcre2_compile((PCRE2_SPTR)arg, PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);
	if (r->re == NULL) {
		PCRE2_UCHAR msg[160];

		pcre2_get_error_message(code, msg, sizeof(msg));
		perr(p, "%s: regex error at offset %zu: %s", kind_names[r->kind], (size_t)off,
		     (const char *)msg);
		return -1;
	}
	pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE);  /* without JIT: interpreted */
	return 0;
}

static bool parse_net(const char *s, struct net *n)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	size_t len = slash != NULL ? (size_t)(slash - s) : strlen(s);
	uint64_t bits = 0;
	unsigned max;

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	memset(n, 0, sizeof(*n));
	if (inet_pton(AF_INET, buf, n->addr + 12) == 1) {
		n->addr[10] = n->addr[11] = 0xff;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, n->addr) == 1) {
		max = 128;
	} else {
		return false;
	}
	if (slash != NULL && !agent_cli_uint(slash + 1, max, &bits))
		return false;
	n->bits = (unsigned)(slash != NULL ? bits : max) + (max == 32 ? 96 : 0);
	return true;
}

static int parse_list(struct parse *p, struct rule *r, char *arg)
{
	char *save = NULL;

	for (char *t = strtok_r(arg, ", \t", &save); t != NULL; t = strtok_r(NULL, ", \t", &save)) {
		if (r->kind == K_METHOD) {
			char **l = realloc(r->list, (r->nlist + 1) * sizeof(*l));

			if (l == NULL)
				return -1;
			r->list = l;
			r->list[r->nlist] = strdup(t);
			if (r->list[r->nlist] == NULL)
				return -1;
			r->nlist++;
		} else {
			struct net *n = realloc(r->nets, (r->nnets + 1) * sizeof(*n));

			if (n == NULL)
				return -1;
			r->nets = n;
			if (!parse_net(t, &r->nets[r->nnets])) {
				perr(p, "ip: \"%s\" is not an IPv4/IPv6 address with an optional /BITS", t);
				return -1;
			}
			r->nnets++;
		}
	}
	if (r->nlist == 0 && r->nnets == 0) {
		perr(p, "%s: empty list", kind_names[r->kind]);
		return -1;
	}
	return 0;
}

static void rule_free(struct rule *r)
{
	for (unsigned i = 0; i < r->nlist; i++)
		free(r->list[i]);
	free(r->list);
	free(r->name);
	pcre2_code_free(r->re);
	free(r->nets);
	free(r->pat);
}

static int parse_line(struct parse *p, struct rules *rs, char *line)
{
	struct rule r = { .line = p->line };
	char *s = trim(line), *id, *kind;
	uint64_t v;
	int err = -1;

	if (*s == '\0' || *s == '#')
		return 0;
	id = word(&s);
	kind = word(&s);
	if (!agent_cli_uint(id, INT64_MAX, &v) || v == 0) {
		perr(p, "\"%s\" is not a rule id (1..2^63-1)", id);
		return -1;
	}
	r.id = v;
	for (unsigned i = 0; i < rs->n; i++) {
		if (rs->r[i].id == v) {
			perr(p, "rule id %llu already used on line %u", (unsigned long long)v,
			     rs->r[i].line);
			return -1;
		}
	}
	for (r.kind = K_METHOD; r.kind <= K_IBODY; r.kind++)
		if (strcmp(kind, kind_names[r.kind]) == 0)
			break;
	if (r.kind > K_IBODY) {
		perr(p, "unknown kind \"%s\" (method, path, target, header, ip, body, ibody)", kind);
		return -1;
	}
	if (*s == '\0') {
		perr(p, "%s: no argument", kind_names[r.kind]);
		return -1;
	}
	switch (r.kind) {
	case K_METHOD:
	case K_IP:
		err = parse_list(p, &r, s);
		break;
	case K_PATH:
	case K_TARGET:
		err = parse_regex(p, &r, s);
		break;
	case K_HEADER: {
		char *name = word(&s);

		r.name = strdup(name);
		err = r.name == NULL ? -1 : parse_regex(p, &r, s);
		break;
	}
	case K_BODY:
	case K_IBODY:
		err = parse_text(p, &r, s);
		break;
	}
	if (err == 0) {
		struct rule *n = realloc(rs->r, (rs->n + 1) * sizeof(*n));

		if (n == NULL) {
			err = -1;
		} else {
			rs->r = n;
			rs->r[rs->n++] = r;
			if ((r.kind == K_BODY || r.kind == K_IBODY) && r.plen > rs->max_pat)
				rs->max_pat = r.plen;
			return 0;
		}
	}
	if (p->errors == 0)
		perr(p, "out of memory");
	rule_free(&r);
	return -1;
}

static int load_rules(const char *file, struct rules *rs)
{
	struct parse p = { .file = file };
	FILE *f = fopen(file, "r");
	char *line = NULL;
	size_t cap = 0;

	if (f == NULL) {
		fprintf(stderr, "%s: %s\n", file, strerror(errno));
		return -1;
	}
	for (ssize_t n; (n = getline(&line, &cap, f)) >= 0;) {
		p.line++;
		if (strlen(line) != (size_t)n) {
			perr(&p, "NUL byte in the line");
			continue;
		}
		parse_line(&p, rs, line);
	}
	free(line);
	fclose(f);
	return p.errors == 0 ? 0 : -1;
}

/* ---- matching ------------------------------------------------------------------- */

static pthread_key_t md_key;

static void md_free(void *md)
{
	pcre2_match_data_free(md);
}

static bool re_find(const struct rules *rs, const pcre2_code *re, const char *s, size_t n)
{
	pcre2_match_data *md = pthread_getspecific(md_key);
	int rc;

	if (md == NULL) {
		md = pcre2_match_data_create(1, NULL);
		if (md == NULL || pthread_setspecific(md_key, md) != 0)
			return false;
	}
	/* a too-small ovector still reports the match (rc 0) */
	rc = pcre2_match(re, (PCRE2_SPTR)(s != NULL ? s : ""), n, 0, 0, md, rs->mctx);
	return rc >= 0;
}

static bool in_net(const struct net *n, const uint8_t addr[16])
{
	unsigned full = n->bits / 8, rest = n->bits % 8;

	if (memcmp(n->addr, addr, full) != 0)
		return false;
	return rest == 0 || ((n->addr[full] ^ addr[full]) & (0xff00u >> rest)) == 0;
}

static bool client_addr(const struct weir_agent_str *s, uint8_t out[16])
{
	char buf[64];

	if (s->len == 0 || s->len >= sizeof(buf))
		return false;
	memcpy(buf, s->ptr, s->len);
	buf[s->len] = '\0';
	memset(out, 0, 16);
	if (inet_pton(AF_INET, buf, out + 12) == 1) {
		out[10] = out[11] = 0xff;
		return true;
	}
	return inet_pton(AF_INET6, buf, out) == 1;
}

static const struct rule *match_head(const struct rules *rs, const struct weir_agent_request *rq)
{
	uint8_t addr[16];
	int have_addr = -1;

	for (unsigned i = 0; i < rs->n; i++) {
		const struct rule *r = &rs->r[i];

		switch (r->kind) {
		case K_METHOD:
			for (unsigned k = 0; k < r->nlist; k++)
				if (strlen(r->list[k]) == rq->method.len &&
				    memcmp(r->list[k], rq->method.ptr, rq->method.len) == 0)
					return r;
			break;
		case K_PATH:
			if (re_find(rs, r->re, rq->path.ptr, rq->path.len))
				return r;
			break;
		case K_TARGET:
			if (re_find(rs, r->re, rq->target.ptr, rq->target.len))
				return r;
			break;
		case K_HEADER:
			for (uint32_t k = 0; k < rq->nheaders; k++) {
				const struct weir_agent_header *h = &rq->headers[k];

				if (h->name.len == strlen(r->name) &&
				    strncasecmp(h->name.ptr, r->name, h->name.len) == 0 &&
				    re_find(rs, r->re, h->value.ptr, h->value.len))
					return r;
			}
			break;
		case K_IP:
			if (have_addr < 0)
				have_addr = client_addr(&rq->client_addr, addr);
			for (unsigned k = 0; have_addr == 1 && k < r->nnets; k++)
				if (in_net(&r->nets[k], addr))
					return r;
			break;
		case K_BODY:
		case K_IBODY:
			break;
		}
	}
	return NULL;
}

static bool find(const char *h, size_t n, const char *pat, size_t m, bool icase)
{
	if (m > n)
		return false;
	if (!icase)
		return memmem(h, n, pat, m) != NULL;
	for (size_t i = 0; i + m <= n; i++) {
		size_t k = 0;

		while (k < m && tolower((unsigned char)h[i + k]) == (unsigned char)pat[k])
			k++;
		if (k == m)
			return true;
	}
	return false;
}

/* Per request with a body: the last max_pat - 1 bytes seen, so that a
 * match across two frames is found. */
struct body_state {
	size_t carry_len;
	char carry[];
};

/* st may be NULL: each frame is then searched alone. */
static const struct rule *match_body(const struct rules *rs, struct body_state *st,
				     const struct weir_agent_chunk *c)
{
	size_t keep = rs->max_pat - 1;
	char join[2 * MAX_BODY_PATTERN];
	const struct rule *hit = NULL;

	for (unsigned i = 0; i < rs->n && hit == NULL; i++) {
		const struct rule *r = &rs->r[i];
		bool icase = r->kind == K_IBODY;
		size_t head;

		if (r->kind != K_BODY && r->kind != K_IBODY)
			continue;
		/* across the boundary: the carried tail + this chunk's head */
		head = c->len < r->plen - 1 ? c->len : r->plen - 1;
		if (st != NULL && st->carry_len != 0 && head != 0) {
			memcpy(join, st->carry, st->carry_len);
			memcpy(join + st->carry_len, c->data, head);
			if (find(join, st->carry_len + head, r->pat, r->plen, icase))
				hit = r;
		}
		if (hit == NULL && find(c->data, c->len, r->pat, r->plen, icase))
			hit = r;
	}
	/* carry = the last `keep` bytes of carry + chunk */
	if (st == NULL) {
		return hit;
	} else if (c->len >= keep) {
		memcpy(st->carry, c->data + c->len - keep, keep);
		st->carry_len = keep;
	} else {
		size_t drop = st->carry_len + c->len > keep ? st->carry_len + c->len - keep : 0;

		memmove(st->carry, st->carry + drop, st->carry_len - drop);
		memcpy(st->carry + st->carry_len - drop, c->data, c->len);
		st->carry_len = st->carry_len - drop + c->len;
	}
	return hit;
}

static void block(const struct rules *rs, const struct rule *r, struct weir_agent_reply *reply)
{
	char body[96], reason[96];
	int n = snprintf(body, sizeof(body), "request blocked (rule %llu)\n",
			 (unsigned long long)r->id);

	snprintf(reason, sizeof(reason), "rule %llu: %s", (unsigned long long)r->id,
		 kind_names[r->kind]);
	weir_agent_reply_block(reply, rs->status, body, (size_t)n);
	weir_agent_reply_header(reply, "Content-Type", "text/plain");
	weir_agent_reply_rule_id(reply, r->id);
	weir_agent_reply_tag(reply, PROG);
	weir_agent_reply_tag(reply, kind_names[r->kind]);
	weir_agent_reply_reason(reply, reason);
}

static int on_request_headers(void *user, struct weir_agent_req *req, struct weir_agent_reply *reply)
{
	const struct rules *rs = user;
	const struct weir_agent_request *rq = weir_agent_req_request(req);
	const struct rule *r = match_head(rs, rq);
	struct body_state *st;

	if (r != NULL) {
		block(rs, r, reply);
		return WEIR_AGENT_R_VERDICT;
	}
	if (rs->max_pat == 0 || !rq->has_body)
		return WEIR_AGENT_R_VERDICT;
	/* without it (out of memory) frames are still searched one by one */
	st = malloc(sizeof(*st) + rs->max_pat);
	if (st != NULL) {
		st->carry_len = 0;
		weir_agent_req_set_data(req, st);
	}
	return WEIR_AGENT_R_PENDING;
}

static int on_request_body(void *user, struct weir_agent_req *req, const struct weir_agent_chunk *c,
			   struct weir_agent_reply *reply)
{
	const struct rules *rs = user;
	struct body_state *st = weir_agent_req_data(req);
	const struct rule *r;

	r = match_body(rs, st, c);
	if (r != NULL) {
		block(rs, r, reply);
		return WEIR_AGENT_R_VERDICT;
	}
	return c->last ? WEIR_AGENT_R_VERDICT : WEIR_AGENT_R_PENDING;
}

static void on_closed(void *user, struct weir_agent_req *req, int reason)
{
	free(weir_agent_req_data(req));
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rules", required_argument, NULL, 'r' },
		{ "listen", required_argument, NULL, 'l' },
		{ "workers", required_argument, NULL, 'w' },
		{ "status", required_argument, NULL, 's' },
		{ "credit", required_argument, NULL, 'c' },
		{ "name", required_argument, NULL, 'n' },
		{ "check", no_argument, NULL, 'k' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static char default_listen[] = "unix:/tmp/weir-agent-rules.sock";
	char *listens[16];
	unsigned nlisten = 0;
	const char *file = NULL;
	struct rules rs = { .status = 403 };
	struct weir_agent_config cfg = { .name = "rules", .workers = 2 };
	struct weir_agent_server *s = NULL;
	bool check = false, quiet = false;
	uint64_t v;
	int opt, err, ret = 1;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			file = optarg;
			break;
		case 'l':
			if (nlisten == sizeof(listens) / sizeof(listens[0])) {
				fprintf(stderr, PROG ": too many --listen\n");
				return 2;
			}
			listens[nlisten++] = optarg;
			break;
		case 'w':
			if (!agent_cli_uint(optarg, 256, &v)) {
				fprintf(stderr, PROG ": --workers: 0..256\n");
				return 2;
			}
			cfg.workers = (unsigned)v;
			break;
		case 's':
			if (!agent_cli_uint(optarg, 599, &v) || v < 200) {
				fprintf(stderr, PROG ": --status: 200..599\n");
				return 2;
			}
			rs.status = (unsigned)v;
			break;
		case 'c':
			if (!agent_cli_uint(optarg, UINT32_MAX, &v)) {
				fprintf(stderr, PROG ": --credit: a byte count\n");
				return 2;
			}
			cfg.credit = true;
			cfg.body_window = (uint32_t)v;
			break;
		case 'n':
			cfg.name = optarg;
			break;
		case 'k':
			check = true;
			break;
		case 'q':
			quiet = true;
			cfg.log_level = WEIR_AGENT_LOG_ERR;
			break;
		case 'v':
			cfg.log_level = WEIR_AGENT_LOG_DEBUG;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind != argc || file == NULL) {
		fputs(usage, stderr);
		return 2;
	}
	if (load_rules(file, &rs) != 0)
		goto out;
	if (check) {
		printf("%s: %u rule%s OK\n", file, rs.n, rs.n == 1 ? "" : "s");
		ret = 0;
		goto out;
	}
	if (nlisten == 0)
		listens[nlisten++] = default_listen;
	rs.mctx = pcre2_match_context_create(NULL);
	if (rs.mctx == NULL || pthread_key_create(&md_key, md_free) != 0) {
		fprintf(stderr, PROG ": out of memory\n");
		goto out;
	}
	pcre2_set_match_limit(rs.mctx, REGEX_MATCH_LIMIT);

	cfg.user = &rs;
	cfg.cb.request_headers = on_request_headers;
	if (rs.max_pat != 0)
		cfg.cb.request_body = on_request_body;
	cfg.cb.closed = on_closed;
	err = weir_agent_server_new(&cfg, &s);
	if (err != 0) {
		fprintf(stderr, PROG ": %s\n", strerror(-err));
		goto out;
	}
	if (agent_cli_listen(s, PROG, listens, nlisten) != 0)
		goto out;
	if (!quiet)
		fprintf(stderr, PROG ": %u rules from %s\n", rs.n, file);
	agent_cli_signals(s);
	err = weir_agent_server_run(s);
	agent_cli_signals(NULL);
	if (!quiet)
		agent_cli_stats(s, PROG);
	ret = err == 0 ? 0 : 1;
out:
	weir_agent_server_free(s);
	for (unsigned i = 0; i < rs.n; i++)
		rule_free(&rs.r[i]);
	free(rs.r);
	pcre2_match_context_free(rs.mctx);
	return ret;
}
