/* weir: configuration loader (see weir/conf.h, docs/CONFIG.md).
 *
 * libyaml's document API builds the node tree; this file walks it against a
 * fixed schema. Every node carries its start mark, so every error can name
 * file:line:column. libyaml neither rejects duplicate keys nor knows the
 * schema, so both are checked here (get_keys). The walk never recurses
 * further than the schema goes, so alias cycles cannot loop: they end in a
 * type error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <strings.h>
#include <sys/un.h>

#include <yaml.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "weir/conf.h"
#include "weir/h1.h"
#include "weir/agent.h"

#define CONF_MAX_FILE (16u << 20)
#define CONF_MAX_NAME 64
#define CONF_MAX_WORKERS 1024
#define CONF_MAX_CONNECTIONS (1u << 24)
#define CONF_MAX_KEEPALIVE 65536

static const char welcome_body[] =
	"Welcome to weir. Configure an upstream (-c FILE or --upstream HOST:PORT) "
	"to proxy traffic.\n";

/* ---- value parsers ------------------------------------------------------ */

/* Decimal digits only (no sign, no blanks), overflow-checked. */
static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)((unsigned char)s[i] - '0');

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

static size_t count_digits(const char *s)
{
	size_t n = 0;

	while (s[n] >= '0' && s[n] <= '9')
		n++;
	return n;
}

int weir_duration_parse(const char *text, uint64_t *ms)
{
	uint64_t v, mul;
	size_t n;
	const char *u;

	if (text == NULL)
		return -1;
	n = count_digits(text);
	if (!parse_u64(text, n, &v))
		return -1;
	u = text + n;
	if (u[0] == '\0' || strcmp(u, "s") == 0)
		mul = 1000;
	else if (strcmp(u, "ms") == 0)
		mul = 1;
	else if (strcmp(u, "m") == 0)
		mul = 60 * 1000;
	else if (strcmp(u, "h") == 0)
		mul = 60 * 60 * 1000;
	else
		return -1;
	if (v > UINT64_MAX / mul)
		return -1;
	*ms = v * mul;
	return 0;
}

int weir_size_parse(const char *text, uint64_t *bytes)
{
	uint64_t v, mul;
	size_t n;
	const char *u;

	if (text == NULL)
		return -1;
	n = count_digits(text);
	if (!parse_u64(text, n, &v))
		return -1;
	u = text + n;
	if (u[0] == '\0')
		mul = 1;
	else if (u[1] != '\0')
		return -1;
	else if (u[0] == 'k' || u[0] == 'K')
		mul = 1ull << 10;
	else if (u[0] == 'm' || u[0] == 'M')
		mul = 1ull << 20;
	else if (u[0] == 'g' || u[0] == 'G')
		mul = 1ull << 30;
	else
		return -1;
	if (v > UINT64_MAX / mul)
		return -1;
	*bytes = v * mul;
	return 0;
}

static const char *skip_blanks(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

int weir_cpulist_parse(const char *text, cpu_set_t *set)
{
	const char *p = text;

	CPU_ZERO(set);
	if (text == NULL)
		return -1;
	for (;;) {
		uint64_t a, b;
		size_t n;

		p = skip_blanks(p);
		n = count_digits(p);
		if (n > 9 || !parse_u64(p, n, &a))
			return -1;
		p = skip_blanks(p + n);
		b = a;
		if (*p == '-') {
			p = skip_blanks(p + 1);
			n = count_digits(p);
			if (n > 9 || !parse_u64(p, n, &b))
				return -1;
			p = skip_blanks(p + n);
		}
		if (a > b || b >= CPU_SETSIZE)
			return -1;
		for (uint64_t i = a; i <= b; i++)
			CPU_SET((size_t)i, set);
		if (*p == '\0')
			return 0;
		if (*p != ',')
			return -1;
		p++;
	}
}

/* weir_addr_parse with a reason for the error message. */
static int addr_parse(const char *text, struct weir_addr *out, const char **why)
{
	const char *portstr;
	char host[INET6_ADDRSTRLEN];
	char ntop[INET6_ADDRSTRLEN];
	uint64_t port;
	size_t hlen;
	bool v6 = false;

	memset(out, 0, sizeof(*out));
	*why = "expected HOST:PORT";
	if (text == NULL)
		return -1;
	if (text[0] == '[') {
		const char *end = strchr(text, ']');

		if (end == NULL) {
			*why = "missing ']' after the IPv6 address";
			return -1;
		}
		hlen = (size_t)(end - text - 1);
		if (hlen == 0 || hlen >= sizeof(host)) {
			*why = "invalid IPv6 address";
			return -1;
		}
		memcpy(host, text + 1, hlen);
		host[hlen] = '\0';
		if (end[1] != ':') {
			*why = "missing ':PORT'";
			return -1;
		}
		portstr = end + 2;
		v6 = true;
	} else {
		const char *colon = strrchr(text, ':');

		if (colon == NULL) {
			*why = "missing ':PORT'";
			return -1;
		}
		hlen = (size_t)(colon - text);
		if (memchr(text, ':', hlen) != NULL) {
			*why = "IPv6 addresses need brackets, e.g. [::1]:8080";
			return -1;
		}
		if (hlen == 0 || (hlen == 1 && text[0] == '*')) {
			strcpy(host, "0.0.0.0");
		} else if (hlen == 9 && strncasecmp(text, "localhost", 9) == 0) {
			strcpy(host, "127.0.0.1");
		} else if (hlen < sizeof(host)) {
			memcpy(host, text, hlen);
			host[hlen] = '\0';
		} else {
			*why = "invalid IPv4 address";
			return -1;
		}
		portstr = colon + 1;
	}
	if (!parse_u64(portstr, strlen(portstr), &port) || port == 0 || port > 65535) {
		*why = "invalid port (1-65535)";
		return -1;
	}
	if (v6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;

		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
			*why = "invalid IPv6 address";
			return -1;
		}
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		out->len = sizeof(*sin6);
		inet_ntop(AF_INET6, &sin6->sin6_addr, ntop, sizeof(ntop));
		snprintf(out->text, sizeof(out->text), "[%s]:%u", ntop, (unsigned)port);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;

		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
			bool name = false;

			for (size_t i = 0; host[i] != '\0'; i++)
				if ((host[i] | 0x20) >= 'a' && (host[i] | 0x20) <= 'z')
					name = true;
			*why = name ? "host names are not resolved (only 'localhost'); use an IP address"
				    : "invalid IPv4 address";
			return -1;
		}
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		out->len = sizeof(*sin);
		inet_ntop(AF_INET, &sin->sin_addr, ntop, sizeof(ntop));
		snprintf(out->text, sizeof(out->text), "%s:%u", ntop, (unsigned)port);
	}
	return 0;
}

int weir_addr_parse(const char *text, struct weir_addr *out)
{
	const char *why;

	return addr_parse(text, out, &why);
}

static bool addr_is_any(const struct weir_addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
}

/* The normalised text identifies an address (family, host and port). */
bool weir_addr_eq(const struct weir_addr *a, const struct weir_addr *b)
{
	/* parsed addresses are zeroed first: padding compares equal */
	return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* ---- conf object -------------------------------------------------------- */

static struct weir_conf *conf_new(const char *source)
{
	struct weir_conf *conf = calloc(1, sizeof(*conf));

	if (conf == NULL)
		return NULL;
	conf->source = strdup(source);
	if (conf->source == NULL) {
		free(conf);
		return NULL;
	}
	CPU_ZERO(&conf->cpus);
	conf->shutdown_timeout_ms = 10000;
	conf->client_header_timeout_ms = 10000;
	conf->client_body_timeout_ms = 60000;
	conf->keepalive_timeout_ms = 75000;
	conf->access_log.buffer = 64u * 1024u;
	conf->access_log.flush_ms = 1000;
	conf->max_connections = 10000;
	return conf;
}

static void upstream_defaults(struct weir_conf_upstream *u, unsigned index)
{
	u->balance = WEIR_BALANCE_ROUND_ROBIN;
	u->keepalive = 128;
	u->connect_timeout_ms = 1000;
	u->read_timeout_ms = 30000;
	u->send_timeout_ms = 30000;
	u->index = index;
}

void weir_conf_free(struct weir_conf *conf)
{
	if (conf == NULL)
		return;
	free(conf->source);
	free(conf->listens);
	for (unsigned i = 0; i < conf->nupstreams; i++) {
		free(conf->upstreams[i].name);
		free(conf->upstreams[i].servers);
	}
	free(conf->upstreams);
	for (unsigned i = 0; i < conf->nroutes; i++) {
		struct weir_conf_route *r = &conf->routes[i];

		free(r->name);
		free(r->host);
		free(r->path);
		pcre2_code_free(r->regex);
		for (unsigned j = 0; j < r->ret.nheaders; j++) {
			free(r->ret.headers[j].name);
			free(r->ret.headers[j].value);
		}
		free(r->ret.headers);
		free(r->ret.body);
		free(r->agents);
	}
	free(conf->routes);
	for (unsigned i = 0; i < conf->nagents; i++)
		free(conf->agents[i].name);
	free(conf->agents);
	free(conf->access_log.path);
	free(conf);
}

/* ---- YAML walk: errors and node helpers --------------------------------- */

struct ctx {
	const char *name;
	char *err;
	size_t errlen;
	yaml_document_t *doc;
	struct weir_conf *conf;
};

__attribute__((format(printf, 4, 0)))
static int vfail_at(struct ctx *c, size_t line, size_t col, const char *fmt, va_list ap)
{
	int n;

	if (c->err == NULL || c->errlen == 0)
		return -1;
	n = snprintf(c->err, c->errlen, "%s:%zu:%zu: ", c->name, line, col);
	if (n >= 0 && (size_t)n < c->errlen)
		vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
	return -1;
}

__attribute__((format(printf, 4, 5)))
static int fail_at(struct ctx *c, size_t line, size_t col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail_at(c, line, col, fmt, ap);
	va_end(ap);
	return -1;
}

/* Error at a node's start (libyaml marks are 0-based). */
__attribute__((format(printf, 3, 4)))
static int fail(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail_at(c, n->start_mark.line + 1, n->start_mark.column + 1, fmt, ap);
	va_end(ap);
	return -1;
}

/* Error without a position (embedded default, I/O). */
__attribute__((format(printf, 2, 3)))
static int fail_plain(struct ctx *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (c->err == NULL || c->errlen == 0)
		return -1;
	n = snprintf(c->err, c->errlen, "%s: ", c->name);
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < c->errlen)
		vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static int oom(struct ctx *c, const yaml_node_t *n)
{
	return fail(c, n, "out of memory");
}

static yaml_node_t *node_at(struct ctx *c, int index)
{
	return yaml_document_get_node(c->doc, index);
}

static const char *sval(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static bool is_null(const yaml_node_t *n)
{
	const char *s;

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	s = sval(n);
	return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	       strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static const char *kind(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a sequence";
	case YAML_SCALAR_NODE:
		return is_null(n) ? "null" : "a scalar";
	default:
		return "nothing";
	}
}

static size_t nitems(const yaml_node_t *n)
{
	return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static size_t npairs(const yaml_node_t *n)
{
	return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

/* A printable excerpt of a value for messages. */
struct shown {
	char s[112];
};

static const char *show_bytes(struct shown *b, const char *p, size_t n)
{
	size_t o = 0, max = 64;

	for (size_t i = 0; i < n && i < max; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch >= 0x20 && ch < 0x7f)
			b->s[o++] = (char)ch;
		else
			o += (size_t)snprintf(b->s + o, sizeof(b->s) - o, "\\x%02x", ch);
	}
	if (n > max) {
		memcpy(b->s + o, "...", 3);
		o += 3;
	}
	b->s[o] = '\0';
	return b->s;
}

static const char *show(struct shown *b, const yaml_node_t *n)
{
	if (n->type != YAML_SCALAR_NODE)
		return kind(n);
	return show_bytes(b, sval(n), n->data.scalar.length);
}

/* A non-null scalar; its text may hold NUL bytes (use the length). */
static int get_scalar(struct ctx *c, const yaml_node_t *n, const char *key, const char *expect)
{
	if (n->type != YAML_SCALAR_NODE)
		return fail(c, n, "'%s': expected %s, got %s", key, expect, kind(n));
	if (is_null(n))
		return fail(c, n, "'%s': missing value (expected %s)", key, expect);
	return 0;
}

/* A non-null scalar usable as a C string. */
static int get_cstr(struct ctx *c, const yaml_node_t *n, const char *key, const char *expect,
		    const char **out)
{
	*out = "";
	if (get_scalar(c, n, key, expect) != 0)
		return -1;
	if (strlen(sval(n)) != n->data.scalar.length)
		return fail(c, n, "'%s': value contains a NUL byte", key);
	*out = sval(n);
	return 0;
}

static int get_uint(struct ctx *c, const yaml_node_t *n, const char *key, uint64_t min,
		    uint64_t max, uint64_t *out)
{
	struct shown b;
	const char *s;
	uint64_t v;

	if (get_cstr(c, n, key, "an integer", &s) != 0)
		return -1;
	if (!parse_u64(s, strlen(s), &v) || v < min || v > max)
		return fail(c, n, "'%s' must be an integer from %llu to %llu, got '%s'", key,
			    (unsigned long long)min, (unsigned long long)max, show(&b, n));
	*out = v;
	return 0;
}

static int get_duration(struct ctx *c, const yaml_node_t *n, const char *key, bool zero_ok,
			uint32_t *out)
{
	struct shown b;
	const char *s;
	uint64_t v;

	if (get_cstr(c, n, key, "a duration", &s) != 0)
		return -1;
	if (weir_duration_parse(s, &v) != 0)
		return fail(c, n, "'%s': invalid duration '%s' (e.g. 500ms, 10s, 5m, 1h; "
			    "a bare number is seconds)", key, show(&b, n));
	if (v > UINT32_MAX)
		return fail(c, n, "'%s': duration '%s' is too long (at most %lums)", key,
			    show(&b, n), (unsigned long)UINT32_MAX);
	if (v == 0 && !zero_ok)
		return fail(c, n, "'%s' must not be 0", key);
	*out = (uint32_t)v;
	return 0;
}

static int get_size(struct ctx *c, const yaml_node_t *n, const char *key, uint64_t *out)
{
	struct shown b;
	const char *s;

	if (get_cstr(c, n, key, "a size", &s) != 0)
		return -1;
	if (weir_size_parse(s, out) != 0)
		return fail(c, n, "'%s': invalid size '%s' (e.g. 512, 64k, 1m, 1g)", key,
			    show(&b, n));
	return 0;
}

static int get_addr(struct ctx *c, const yaml_node_t *n, const char *key, struct weir_addr *out)
{
	struct shown b;
	const char *s, *why;

	if (get_cstr(c, n, key, "an address (HOST:PORT)", &s) != 0)
		return -1;
	if (addr_parse(s, out, &why) != 0)
		return fail(c, n, "'%s': invalid address '%s': %s", key, show(&b, n), why);
	return 0;
}

struct key {
	const char *name;
	yaml_node_t *k;
	yaml_node_t *v;
};

static bool key_is(const yaml_node_t *k, const char *name)
{
	return k->type == YAML_SCALAR_NODE && strlen(name) == k->data.scalar.length &&
	       memcmp(sval(k), name, k->data.scalar.length) == 0;
}

/* Checks that map is a mapping whose keys are all in keys[] (each at most
 * once) and records where each one is. */
static int get_keys(struct ctx *c, yaml_node_t *map, const char *where, struct key *keys,
		    size_t nkeys)
{
	struct shown b;

	if (map->type != YAML_MAPPING_NODE)
		return fail(c, map, "expected a mapping for %s, got %s", where, kind(map));
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = node_at(c, p->key), *v = node_at(c, p->value);
		size_t i;

		if (k->type != YAML_SCALAR_NODE)
			return fail(c, k, "keys must be scalars, got %s in %s", kind(k), where);
		for (i = 0; i < nkeys; i++)
			if (key_is(k, keys[i].name))
				break;
		if (i == nkeys)
			return fail(c, k, "unknown key '%s' in %s", show(&b, k), where);
		if (keys[i].k != NULL)
			return fail(c, k, "duplicate key '%s' in %s (first at line %zu)", keys[i].name,
				    where, keys[i].k->start_mark.line + 1);
		keys[i].k = k;
		keys[i].v = v;
	}
	return 0;
}

/* Upstream and route names: 1..64 of [A-Za-z0-9_.-]. */
static bool valid_name(const char *s, size_t n)
{
	if (n == 0 || n > CONF_MAX_NAME)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (!((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z') && !(ch >= '0' && ch <= '9') &&
		    ch != '_' && ch != '-' && ch != '.')
			return false;
	}
	return true;
}

static bool is_tchar(unsigned char ch)
{
	if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z')
		return true;
	if (ch >= '0' && ch <= '9')
		return true;
	return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* ---- sections ----------------------------------------------------------- */

static int parse_listen(struct ctx *c, yaml_node_t *v)
{
	struct weir_conf *conf = c->conf;
	size_t n;

	if (v->type != YAML_SEQUENCE_NODE)
		return fail(c, v, "'listen' must be a sequence (- address: HOST:PORT), got %s",
			    kind(v));
	n = nitems(v);
	if (n == 0)
		return fail(c, v, "'listen' needs at least one address");
	conf->listens = calloc(n, sizeof(*conf->listens));
	if (conf->listens == NULL)
		return oom(c, v);
	for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++) {
		yaml_node_t *e = node_at(c, *it), *an = e;
		struct weir_addr *a = &conf->listens[conf->nlistens];

		if (e->type == YAML_MAPPING_NODE) {
			struct key k[] = { { "address", NULL, NULL } };

			if (get_keys(c, e, "listen entry", k, WEIR_ARRAY_SIZE(k)) != 0)
				return -1;
			if (k[0].v == NULL)
				return fail(c, e, "listen entry has no 'address'");
			an = k[0].v;
		} else if (e->type != YAML_SCALAR_NODE) {
			return fail(c, e, "expected a listen entry (address: HOST:PORT), got %s",
				    kind(e));
		}
		if (get_addr(c, an, "address", a) != 0)
			return -1;
		for (unsigned i = 0; i < conf->nlistens; i++)
			if (weir_addr_eq(&conf->listens[i], a))
				return fail(c, an, "duplicate listen address '%s'", a->text);
		conf->nlistens++;
	}
	return 0;
}

static int parse_admin(struct ctx *c, yaml_node_t *v)
{
	struct key k[] = { { "address", NULL, NULL } };

	if (get_keys(c, v, "admin", k, WEIR_ARRAY_SIZE(k)) != 0)
		return -1;
	if (k[0].v == NULL)
		return fail(c, v, "'admin' has no 'address'");
	if (get_addr(c, k[0].v, "address", &c->conf->admin) != 0)
		return -1;
	c->conf->admin_set = true;
	for (unsigned i = 0; i < c->conf->nlistens; i++)
		if (weir_addr_eq(&c->conf->listens[i], &c->conf->admin))
			return fail(c, k[0].v, "admin address '%s' is also a listen address",
				    c->conf->admin.text);
	return 0;
}

/* access_log: PATH, or a mapping { path, format, buffer, flush } */
static int parse_access_log(struct ctx *c, yaml_node_t *v)
{
	struct weir_conf *conf = c->conf;
	struct key k[] = { { "path", NULL, NULL }, { "format", NULL, NULL },
			   { "buffer", NULL, NULL }, { "flush", NULL, NULL } };
	const char *s;
	uint64_t size;

	if (v->type == YAML_SCALAR_NODE) {
		k[0].v = v;
	} else if (get_keys(c, v, "access_log", k, WEIR_ARRAY_SIZE(k)) != 0) {
		return -1;
	}
	if (k[0].v == NULL)
		return fail(c, v, "'access_log' has no 'path'");
	if (get_cstr(c, k[0].v, "path", "a file name", &s) != 0)
		return -1;
	if (*s == '\0')
		return fail(c, k[0].v, "'path' must not be empty");
	conf->access_log.path = strdup(s);
	if (conf->access_log.path == NULL)
		return fail_plain(c, "out of memory");
	if (k[1].v != NULL) {
		if (get_cstr(c, k[1].v, "format", "json or combined", &s) != 0)
			return -1;
		if (strcmp(s, "json") == 0)
			conf->access_log.format = WEIR_LOG_JSON;
		else if (strcmp(s, "combined") == 0)
			conf->access_log.format = WEIR_LOG_COMBINED;
		else
			return fail(c, k[1].v, "'format': expected json or combined, got '%s'", s);
	}
	if (k[2].v != NULL) {
		if (get_size(c, k[2].v, "buffer", &size) != 0)
			return -1;
		if (size < 4096 || size > (64u << 20))
			return fail(c, k[2].v, "'buffer' must be from 4k to 64m");
		conf->access_log.buffer = (uint32_t)size;
	}
	if (k[3].v != NULL &&
	    get_duration(c, k[3].v, "flush", false, &conf->access_log.flush_ms) != 0)
		return -1;
	return 0;
}

static int parse_servers(struct ctx *c, struct weir_conf_upstream *u, yaml_node_t *v)
{
	size_t n;

	if (v->type != YAML_SEQUENCE_NODE)
		return fail(c, v, "'servers' must be a sequence of HOST:PORT, got %s", kind(v));
	n = nitems(v);
	if (n == 0)
		return fail(c, v, "upstream '%s' has no servers", u->name);
	u->servers = calloc(n, sizeof(*u->servers));
	if (u->servers == NULL)
		return oom(c, v);
	for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++) {
		yaml_node_t *e = node_at(c, *it);
		struct weir_addr *a = &u->servers[u->nservers];

		if (get_addr(c, e, "servers", a) != 0)
			return -1;
		if (addr_is_any(a))
			return fail(c, e, "'servers': '%s' is a wildcard address, not a server",
				    a->text);
		u->nservers++;
	}
	return 0;
}

static int parse_upstream(struct ctx *c, struct weir_conf_upstream *u, yaml_node_t *map)
{
	enum { U_SERVERS, U_BALANCE, U_KEEPALIVE, U_CONNECT, U_READ, U_SEND, U_N };
	struct key k[U_N] = {
		[U_SERVERS] = { "servers", NULL, NULL },
		[U_BALANCE] = { "balance", NULL, NULL },
		[U_KEEPALIVE] = { "keepalive", NULL, NULL },
		[U_CONNECT] = { "connect_timeout", NULL, NULL },
		[U_READ] = { "read_timeout", NULL, NULL },
		[U_SEND] = { "send_timeout", NULL, NULL },
	};
	char where[96];
	uint64_t v;

	snprintf(where, sizeof(where), "upstream '%s'", u->name);
	if (get_keys(c, map, where, k, U_N) != 0)
		return -1;
	if (k[U_SERVERS].v == NULL)
		return fail(c, map, "upstream '%s' has no 'servers'", u->name);
	if (parse_servers(c, u, k[U_SERVERS].v) != 0)
		return -1;
	if (k[U_BALANCE].v != NULL) {
		struct shown b;
		const char *s;

		if (get_cstr(c, k[U_BALANCE].v, "balance", "a balancing method", &s) != 0)
			return -1;
		if (strcmp(s, "round_robin") != 0)
			return fail(c, k[U_BALANCE].v,
				    "'balance': unknown method '%s' (expected round_robin)",
				    show(&b, k[U_BALANCE].v));
		u->balance = WEIR_BALANCE_ROUND_ROBIN;
	}
	if (k[U_KEEPALIVE].v != NULL) {
		if (get_uint(c, k[U_KEEPALIVE].v, "keepalive", 0, CONF_MAX_KEEPALIVE, &v) != 0)
			return -1;
		u->keepalive = (unsigned)v;
	}
	if (k[U_CONNECT].v != NULL &&
	    get_duration(c, k[U_CONNECT].v, "connect_timeout", false, &u->connect_timeout_ms) != 0)
		return -1;
	if (k[U_READ].v != NULL &&
	    get_duration(c, k[U_READ].v, "read_timeout", false, &u->read_timeout_ms) != 0)
		return -1;
	if (k[U_SEND].v != NULL &&
	    get_duration(c, k[U_SEND].v, "send_timeout", false, &u->send_timeout_ms) != 0)
		return -1;
	return 0;
}

static int parse_upstreams(struct ctx *c, yaml_node_t *v)
{
	struct weir_conf *conf = c->conf;
	size_t n;

	if (v->type != YAML_MAPPING_NODE)
		return fail(c, v, "'upstreams' must be a mapping of NAME: { servers: [...] }, got %s",
			    kind(v));
	n = npairs(v);
	conf->upstreams = calloc(n ? n : 1, sizeof(*conf->upstreams));
	if (conf->upstreams == NULL)
		return oom(c, v);
	for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = node_at(c, p->key);
		struct weir_conf_upstream *u = &conf->upstreams[conf->nupstreams];
		struct shown b;

		if (k->type != YAML_SCALAR_NODE)
			return fail(c, k, "upstream names must be scalars, got %s", kind(k));
		if (!valid_name(sval(k), k->data.scalar.length))
			return fail(c, k, "invalid upstream name '%s' (1-%d letters, digits, '_', "
				    "'-', '.')", show(&b, k), CONF_MAX_NAME);
		for (unsigned i = 0; i < conf->nupstreams; i++)
			if (strcmp(conf->upstreams[i].name, sval(k)) == 0)
				return fail(c, k, "duplicate upstream '%s'", sval(k));
		upstream_defaults(u, conf->nupstreams);
		u->name = strdup(sval(k));
		if (u->name == NULL)
			return oom(c, k);
		conf->nupstreams++;
		if (parse_upstream(c, u, node_at(c, p->value)) != 0)
			return -1;
	}
	return 0;
}


static const yaml_node_t *later(const struct key *a, const struct key *b);

/* ---- agents ------------------------------------------------------------- */

static void agent_defaults(struct weir_conf_agent *a, unsigned index)
{
	a->timeout_ms = 100;
	a->fail_open = false;
	a->body_mode = WEIR_BODY_BUFFER;
	a->max_body = 1u << 20;
	a->connections = 1;
	a->max_in_flight = 1024;
	a->ping_interval_ms = 5000;
	a->reconnect_max_ms = 500;
	a->shm = true;
	a->index = index;
}

static const struct {
	const char *name;
	uint32_t bit;
} agent_events[] = {
	{ "request_headers", WEIR_AGENT_EV_REQUEST_HEADERS },
	{ "request_body", WEIR_AGENT_EV_REQUEST_BODY },
	{ "response_headers", WEIR_AGENT_EV_RESPONSE_HEADERS },
	{ "response_body", WEIR_AGENT_EV_RESPONSE_BODY },
	{ "request_done", WEIR_AGENT_EV_REQUEST_DONE },
};

static int parse_agent_events(struct ctx *c, struct weir_conf_agent *a, yaml_node_t *v)
{
	if (v->type != YAML_SEQUENCE_NODE)
		return fail(c, v, "'events' must be a sequence of event names, got %s", kind(v));
	for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++) {
		yaml_node_t *e = node_at(c, *it);
		struct shown b;
		const char *s;
		size_t i;

		if (get_cstr(c, e, "events", "an event name", &s) != 0)
			return -1;
		for (i = 0; i < WEIR_ARRAY_SIZE(agent_events); i++)
			if (strcmp(agent_events[i].name, s) == 0)
				break;
		if (i == WEIR_ARRAY_SIZE(agent_events))
			return fail(c, e, "'events': unknown event '%s' (expected request_headers, "
				    "request_body, response_headers, response_body, request_done)",
				    show(&b, e));
		a->events |= agent_events[i].bit;
	}
	if (a->events == 0)
		return fail(c, v, "'events' is empty");
	/* Response bodies come with their heads. */
	if (a->events & WEIR_AGENT_EV_RESPONSE_BODY)
		a->events |= WEIR_AGENT_EV_RESPONSE_HEADERS;
	return 0;
}

static int parse_agent(struct ctx *c, struct weir_conf_agent *a, yaml_node_t *map)
{
	enum { A_SOCKET, A_TCP, A_EVENTS, A_TIMEOUT, A_FAILURE, A_MODE, A_MAXBODY, A_CONNS,
	       A_INFLIGHT, A_PING, A_RECONNECT, A_TRANSPORT, A_N };
	struct key k[A_N] = {
		[A_SOCKET] = { "socket", NULL, NULL },
		[A_TCP] = { "tcp", NULL, NULL },
		[A_EVENTS] = { "events", NULL, NULL },
		[A_TIMEOUT] = { "timeout", NULL, NULL },
		[A_FAILURE] = { "failure", NULL, NULL },
		[A_MODE] = { "body_mode", NULL, NULL },
		[A_MAXBODY] = { "max_body", NULL, NULL },
		[A_CONNS] = { "connections", NULL, NULL },
		[A_INFLIGHT] = { "max_in_flight", NULL, NULL },
		[A_PING] = { "ping_interval", NULL, NULL },
		[A_RECONNECT] = { "reconnect_max", NULL, NULL },
		[A_TRANSPORT] = { "transport", NULL, NULL },
	};
	char where[96];
	struct shown b;
	const char *s;
	uint64_t v;

	snprintf(where, sizeof(where), "agent '%s'", a->name);
	if (get_keys(c, map, where, k, A_N) != 0)
		return -1;
	if (k[A_SOCKET].k != NULL && k[A_TCP].k != NULL)
		return fail(c, later(&k[A_SOCKET], &k[A_TCP]),
			    "'socket' and 'tcp' are mutually exclusive (in %s)", where);
	if (k[A_SOCKET].v == NULL && k[A_TCP].v == NULL)
		return fail(c, map, "%s needs 'socket' (a Unix socket path) or 'tcp' (HOST:PORT)",
			    where);
	if (k[A_SOCKET].v != NULL) {
		struct sockaddr_un *un = (struct sockaddr_un *)&a->addr.ss;

		if (get_cstr(c, k[A_SOCKET].v, "socket", "a Unix socket path", &s) != 0)
			return -1;
		if (s[0] == '\0' || strlen(s) >= sizeof(un->sun_path) ||
		    strlen(s) >= sizeof(a->addr.text))
			return fail(c, k[A_SOCKET].v, "'socket': path '%s' is empty or too long "
				    "(at most %zu bytes)", show(&b, k[A_SOCKET].v),
				    WEIR_MIN(sizeof(un->sun_path), sizeof(a->addr.text)) - 1);
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, s);
		a->addr.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(s) + 1);
		strcpy(a->addr.text, s);
	} else {
		if (get_addr(c, k[A_TCP].v, "tcp", &a->addr) != 0)
			return -1;
		if (addr_is_any(&a->addr))
			return fail(c, k[A_TCP].v, "'tcp': '%s' is a wildcard address, not an agent",
				    a->addr.text);
	}
	if (k[A_EVENTS].v != NULL && parse_agent_events(c, a, k[A_EVENTS].v) != 0)
		return -1;
	if (k[A_TIMEOUT].v != NULL &&
	    get_duration(c, k[A_TIMEOUT].v, "timeout", false, &a->timeout_ms) != 0)
		return -1;
	if (k[A_FAILURE].v != NULL) {
		if (get_cstr(c, k[A_FAILURE].v, "failure", "open or closed", &s) != 0)
			return -1;
		if (strcmp(s, "open") == 0)
			a->fail_open = true;
		else if (strcmp(s, "closed") == 0)
			a->fail_open = false;
		else
			return fail(c, k[A_FAILURE].v, "'failure': expected open or closed, got '%s'",
				    show(&b, k[A_FAILURE].v));
	}
	if (k[A_MODE].v != NULL) {
		if (get_cstr(c, k[A_MODE].v, "body_mode", "buffer or stream", &s) != 0)
			return -1;
		if (strcmp(s, "buffer") == 0)
			a->body_mode = WEIR_BODY_BUFFER;
		else if (strcmp(s, "stream") == 0)
			a->body_mode = WEIR_BODY_STREAM;
		else
			return fail(c, k[A_MODE].v, "'body_mode': expected buffer or stream, got '%s'",
				    show(&b, k[A_MODE].v));
	}
	if (k[A_MAXBODY].v != NULL &&
	    get_size(c, k[A_MAXBODY].v, "max_body", &a->max_body) != 0)
		return -1;
	if (k[A_CONNS].v != NULL) {
		if (get_uint(c, k[A_CONNS].v, "connections", 1, 64, &v) != 0)
			return -1;
		a->connections = (unsigned)v;
	}
	if (k[A_INFLIGHT].v != NULL) {
		if (get_uint(c, k[A_INFLIGHT].v, "max_in_flight", 1, 4096, &v) != 0)
			return -1;
		a->max_in_flight = (unsigned)v;
	}
	if (k[A_PING].v != NULL &&
	    get_duration(c, k[A_PING].v, "ping_interval", false, &a->ping_interval_ms) != 0)
		return -1;
	if (k[A_RECONNECT].v != NULL &&
	    get_duration(c, k[A_RECONNECT].v, "reconnect_max", false, &a->reconnect_max_ms) != 0)
		return -1;
	if (k[A_TRANSPORT].v != NULL) {
		if (get_cstr(c, k[A_TRANSPORT].v, "transport", "auto or socket", &s) != 0)
			return -1;
		if (strcmp(s, "auto") == 0)
			a->shm = true;
		else if (strcmp(s, "socket") == 0)
			a->shm = false;
		else
			return fail(c, k[A_TRANSPORT].v, "'transport': expected auto or socket, got '%s'",
				    show(&b, k[A_TRANSPORT].v));
	}
	/* shared memory only where the agent is on this host */
	if (a->addr.ss.ss_family != AF_UNIX)
		a->shm = false;
	return 0;
}

static int parse_agents(struct ctx *c, yaml_node_t *v)
{
	struct weir_conf *conf = c->conf;
	size_t n;

	if (v->type != YAML_MAPPING_NODE)
		return fail(c, v, "'agents' must be a mapping of NAME: { socket: ... }, got %s",
			    kind(v));
	n = npairs(v);
	conf->agents = calloc(n ? n : 1, sizeof(*conf->agents));
	if (conf->agents == NULL)
		return oom(c, v);
	for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = node_at(c, p->key);
		struct weir_conf_agent *a = &conf->agents[conf->nagents];
		struct shown b;

		if (k->type != YAML_SCALAR_NODE)
			return fail(c, k, "agent names must be scalars, got %s", kind(k));
		if (!valid_name(sval(k), k->data.scalar.length))
			return fail(c, k, "invalid agent name '%s' (1-%d letters, digits, '_', "
				    "'-', '.')", show(&b, k), CONF_MAX_NAME);
		for (unsigned i = 0; i < conf->nagents; i++)
			if (strcmp(conf->agents[i].name, sval(k)) == 0)
				return fail(c, k, "duplicate agent '%s'", sval(k));
		agent_defaults(a, conf->nagents);
		a->name = strdup(sval(k));
		if (a->name == NULL)
			return oom(c, k);
		conf->nagents++;
		if (parse_agent(c, a, node_at(c, p->value)) != 0)
			return -1;
	}
	return 0;
}

static int parse_route_agents(struct ctx *c, struct weir_conf_route *r, yaml_node_t *v)
{
	struct weir_conf *conf = c->conf;
	size_t n;

	if (v->type != YAML_SEQUENCE_NODE)
		return fail(c, v, "'agents' must be a sequence of agent names, got %s", kind(v));
	n = nitems(v);
	r->agents = calloc(n ? n : 1, sizeof(*r->agents));
	if (r->agents == NULL)
		return oom(c, v);
	for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++) {
		yaml_node_t *e = node_at(c, *it);
		struct weir_conf_agent *a = NULL;
		struct shown b;
		const char *s;

		if (get_cstr(c, e, "agents", "an agent name", &s) != 0)
			return -1;
		for (unsigned i = 0; i < conf->nagents; i++)
			if (strcmp(conf->agents[i].name, s) == 0)
				a = &conf->agents[i];
		if (a == NULL)
			return fail(c, e, "unknown agent '%s'", show(&b, e));
		for (unsigned i = 0; i < r->nagents; i++)
			if (r->agents[i] == a)
				return fail(c, e, "agent '%s' named twice", s);
		r->agents[r->nagents++] = a;
	}
	return 0;
}

/* host: "example.com", "*.example.com", "[::1]", "*" (any). */
static int parse_host(struct ctx *c, struct weir_conf_route *r, yaml_node_t *v)
{
	struct shown b;
	const char *s;
	size_t n, i, label = 0;
	char *h;

	if (get_cstr(c, v, "host", "a host name", &s) != 0)
		return -1;
	if (strcmp(s, "*") == 0) {
		r->host_match = WEIR_HOST_ANY;
		return 0;
	}
	r->host_match = WEIR_HOST_EXACT;
	if (s[0] == '*' && s[1] == '.') {
		r->host_match = WEIR_HOST_SUFFIX;
		s++; /* keep the dot */
	}
	n = strlen(s);
	if (n > 1 && s[n - 1] == '.')
		n--; /* "example.com." is "example.com" */
	if (n == 0 || n > 255)
		return fail(c, v, "'host': invalid host '%s'", show(&b, v));
	if (s[0] == '[') {
		struct in6_addr a6;
		char tmp[INET6_ADDRSTRLEN];

		if (r->host_match != WEIR_HOST_EXACT || s[n - 1] != ']' || n - 2 >= sizeof(tmp))
			return fail(c, v, "'host': invalid host '%s'", show(&b, v));
		memcpy(tmp, s + 1, n - 2);
		tmp[n - 2] = '\0';
		if (inet_pton(AF_INET6, tmp, &a6) != 1)
			return fail(c, v, "'host': invalid IPv6 address '%s'", show(&b, v));
	} else {
		for (i = r->host_match == WEIR_HOST_SUFFIX ? 1 : 0; i < n; i++) {
			unsigned char ch = (unsigned char)s[i];

			if (ch == ':')
				return fail(c, v, "'host' must not include a port (ports are ignored "
					    "when matching): '%s'", show(&b, v));
			if (ch == '*')
				return fail(c, v, "'host': a wildcard is only allowed as a leading "
					    "'*.': '%s'", show(&b, v));
			if (ch == '.') {
				if (label == 0)
					return fail(c, v, "'host': empty label in '%s'",
						    show(&b, v));
				label = 0;
				continue;
			}
			if (!((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z') &&
			    !(ch >= '0' && ch <= '9') && ch != '-' && ch != '_')
				return fail(c, v, "'host': invalid character in '%s'", show(&b, v));
			label++;
		}
		if (label == 0)
			return fail(c, v, "'host': invalid host '%s'", show(&b, v));
	}
	h = malloc(n + 1);
	if (h == NULL)
		return oom(c, v);
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		h[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch | 0x20 : ch);
	}
	h[n] = '\0';
	r->host = h;
	r->host_len = n;
	return 0;
}

static int parse_path(struct ctx *c, struct weir_conf_route *r, yaml_node_t *v, const char *key,
		      enum weir_path_match how)
{
	struct shown b;
	const char *s;
	size_t n;

	if (get_cstr(c, v, key, "a path", &s) != 0)
		return -1;
	n = strlen(s);
	if (s[0] != '/')
		return fail(c, v, "'%s' must start with '/': '%s'", key, show(&b, v));
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch <= 0x20 || ch >= 0x7f || ch == '?' || ch == '#')
			return fail(c, v, "'%s': invalid character in '%s' (no spaces, control "
				    "or non-ASCII bytes, '?' or '#'; the query is not matched)",
				    key, show(&b, v));
	}
	r->path = strdup(s);
	if (r->path == NULL)
		return oom(c, v);
	r->path_len = n;
	/* "/" prefixes every path: it is the catch-all, below any regex. */
	r->path_match = how == WEIR_PATH_PREFIX && n == 1 ? WEIR_PATH_ANY : how;
	return 0;
}

static int parse_regex(struct ctx *c, struct weir_conf_route *r, yaml_node_t *v)
{
	PCRE2_UCHAR msg[160];
	PCRE2_SIZE off;
	pcre2_code *re;
	size_t n;
	int code;

	if (get_scalar(c, v, "path_regex", "a regular expression") != 0)
		return -1;
	n = v->data.scalar.length;
	if (n == 0)
		return fail(c, v, "'path_regex' is empty");
	re = pcre2_compile((PCRE2_SPTR)sval(v), n, 0, &code, &off, NULL);
	if (re == NULL) {
		size_t col = v->start_mark.column + 1 + off;

		/* The offset counts pattern bytes; quotes shift it by one. */
		if (v->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
		    v->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE)
			col++;
		pcre2_get_error_message(code, msg, sizeof(msg));
		return fail_at(c, v->start_mark.line + 1, col, "'path_regex': %s (at offset %zu)",
			       (const char *)msg, (size_t)off);
	}
	/* Without JIT support, matching falls back to the interpreter. */
	(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	r->regex = re;
	r->path = malloc(n + 1);
	if (r->path == NULL)
		return oom(c, v);
	memcpy(r->path, sval(v), n + 1);
	r->path_len = n;
	r->path_match = WEIR_PATH_REGEX;
	return 0;
}

static int parse_methods(struct ctx *c, struct weir_conf_route *r, yaml_node_t *v)
{
	if (v->type != YAML_SEQUENCE_NODE)
		return fail(c, v, "'methods' must be a sequence of method names, got %s", kind(v));
	if (nitems(v) == 0)
		return fail(c, v, "'methods' is empty (leave it out to match any method)");
	for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++) {
		yaml_node_t *e = node_at(c, *it);
		struct shown b;
		const char *s;
		unsigned m;

		if (get_cstr(c, e, "methods", "a method name", &s) != 0)
			return -1;
		if (strcmp(s, "CONNECT") == 0)
			return fail(c, e, "'methods': CONNECT is not supported (weir does not "
				    "tunnel)");
		/* the parser's own names (CONNECT, refused above, comes last) */
		for (m = WEIR_M_GET; m <= WEIR_M_TRACE; m++)
			if (strcmp(weir_h1_method_name((enum weir_h1_method)m), s) == 0)
				break;
		if (m > WEIR_M_TRACE)
			return fail(c, e, "'methods': unknown method '%s' (expected GET, HEAD, POST, "
				    "PUT, DELETE, OPTIONS, PATCH or TRACE)", show(&b, e));
		r->methods |= 1u << m;
	}
	return 0;
}

static int parse_headers(struct ctx *c, struct weir_conf_route *r, yaml_node_t *v)
{
	size_t n;

	if (v->type != YAML_MAPPING_NODE)
		return fail(c, v, "'headers' must be a mapping of NAME: VALUE, got %s", kind(v));
	n = npairs(v);
	r->ret.headers = calloc(n ? n : 1, sizeof(*r->ret.headers));
	if (r->ret.headers == NULL)
		return oom(c, v);
	for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = node_at(c, p->key), *val = node_at(c, p->value);
		struct weir_conf_header *h = &r->ret.headers[r->ret.nheaders];
		struct shown b;
		const char *name, *value;
		size_t len;

		if (get_cstr(c, k, "headers", "a header name", &name) != 0)
			return -1;
		len = strlen(name);
		for (size_t i = 0; i < len; i++)
			if (!is_tchar((unsigned char)name[i]))
				return fail(c, k, "invalid header name '%s'", show(&b, k));
		if (strcasecmp(name, "content-length") == 0 ||
		    strcasecmp(name, "transfer-encoding") == 0 ||
		    strcasecmp(name, "connection") == 0)
			return fail(c, k, "header '%s' is set by weir and cannot be configured",
				    name);
		for (unsigned i = 0; i < r->ret.nheaders; i++)
			if (strcasecmp(r->ret.headers[i].name, name) == 0)
				return fail(c, k, "duplicate header '%s'", name);
		if (get_cstr(c, val, name, "a header value", &value) != 0)
			return -1;
		for (const char *q = value; *q != '\0'; q++) {
			unsigned char ch = (unsigned char)*q;

			if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
				return fail(c, val, "header '%s': value contains a control character "
					    "(CR, LF, ...)", name);
		}
		h->name = strdup(name);
		h->value = strdup(value);
		r->ret.nheaders++;
		if (h->name == NULL || h->value == NULL)
			return oom(c, k);
	}
	return 0;
}

static int parse_return(struct ctx *c, struct weir_conf_route *r, yaml_node_t *map)
{
	enum { R_STATUS, R_HEADERS, R_BODY, R_N };
	struct key k[R_N] = {
		[R_STATUS] = { "status", NULL, NULL },
		[R_HEADERS] = { "headers", NULL, NULL },
		[R_BODY] = { "body", NULL, NULL },
	};
	uint64_t status;

	if (get_keys(c, map, "'return'", k, R_N) != 0)
		return -1;
	r->is_return = true;
	if (k[R_STATUS].v == NULL)
		return fail(c, map, "'return' needs a 'status'");
	if (get_uint(c, k[R_STATUS].v, "status", 200, 599, &status) != 0)
		return -1;
	r->ret.status = (int)status;
	if (k[R_HEADERS].v != NULL && parse_headers(c, r, k[R_HEADERS].v) != 0)
		return -1;
	if (k[R_BODY].v != NULL) {
		yaml_node_t *b = k[R_BODY].v;
		size_t n;

		if (get_scalar(c, b, "body", "a string") != 0)
			return -1;
		n = b->data.scalar.length;
		if (n != 0 && (status == 204 || status == 304))
			return fail(c, b, "'body': a %d response has no body", (int)status);
		r->ret.body = malloc(n + 1);
		if (r->ret.body == NULL)
			return oom(c, b);
		memcpy(r->ret.body, sval(b), n + 1);
		r->ret.body_len = n;
	}
	return 0;
}

static const yaml_node_t *later(const struct key *a, const struct key *b)
{
	return a->k->start_mark.index > b->k->start_mark.index ? a->k : b->k;
}

static int parse_route(struct ctx *c, struct weir_conf_route *r, yaml_node_t *map,
		       yaml_node_t **name_node)
{
	enum { K_NAME, K_HOST, K_PATH, K_PREFIX, K_REGEX, K_METHODS, K_MAXBODY, K_RETURN,
	       K_UPSTREAM, K_AGENTS, K_N };
	struct key k[K_N] = {
		[K_NAME] = { "name", NULL, NULL },
		[K_HOST] = { "host", NULL, NULL },
		[K_PATH] = { "path", NULL, NULL },
		[K_PREFIX] = { "path_prefix", NULL, NULL },
		[K_REGEX] = { "path_regex", NULL, NULL },
		[K_METHODS] = { "methods", NULL, NULL },
		[K_MAXBODY] = { "max_body", NULL, NULL },
		[K_RETURN] = { "return", NULL, NULL },
		[K_UPSTREAM] = { "upstream", NULL, NULL },
		[K_AGENTS] = { "agents", NULL, NULL },
	};
	struct weir_conf *conf = c->conf;
	const struct key *paths[3];
	unsigned npaths = 0;
	char where[96];

	/* Name the route in messages about its keys when it has a name. */
	snprintf(where, sizeof(where), "route #%u", r->index + 1);
	if (map->type == YAML_MAPPING_NODE) {
		for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
		     p < map->data.mapping.pairs.top; p++) {
			yaml_node_t *v = node_at(c, p->value);

			if (key_is(node_at(c, p->key), "name") && v->type == YAML_SCALAR_NODE &&
			    valid_name(sval(v), v->data.scalar.length))
				snprintf(where, sizeof(where), "route '%s'", sval(v));
		}
	}
	if (get_keys(c, map, where, k, K_N) != 0)
		return -1;

	if (k[K_NAME].v != NULL) {
		struct shown b;
		const char *s;

		if (get_cstr(c, k[K_NAME].v, "name", "a route name", &s) != 0)
			return -1;
		if (!valid_name(s, strlen(s)))
			return fail(c, k[K_NAME].v, "invalid route name '%s' (1-%d letters, digits, "
				    "'_', '-', '.')", show(&b, k[K_NAME].v), CONF_MAX_NAME);
		r->name = strdup(s);
		*name_node = k[K_NAME].v;
	} else {
		char tmp[32];

		snprintf(tmp, sizeof(tmp), "route%u", r->index + 1);
		r->name = strdup(tmp);
		*name_node = map;
	}
	if (r->name == NULL)
		return oom(c, map);

	if (k[K_HOST].v != NULL && parse_host(c, r, k[K_HOST].v) != 0)
		return -1;

	for (unsigned i = K_PATH; i <= K_REGEX; i++)
		if (k[i].k != NULL)
			paths[npaths++] = &k[i];
	if (npaths > 1) {
		const yaml_node_t *at = later(paths[0], paths[1]);

		if (npaths > 2)
			at = paths[2]->k->start_mark.index > at->start_mark.index ? paths[2]->k : at;
		return fail(c, at, "'path', 'path_prefix' and 'path_regex' are mutually exclusive "
			    "(in %s)", where);
	}
	if (k[K_PATH].v != NULL && parse_path(c, r, k[K_PATH].v, "path", WEIR_PATH_EXACT) != 0)
		return -1;
	if (k[K_PREFIX].v != NULL &&
	    parse_path(c, r, k[K_PREFIX].v, "path_prefix", WEIR_PATH_PREFIX) != 0)
		return -1;
	if (k[K_REGEX].v != NULL && parse_regex(c, r, k[K_REGEX].v) != 0)
		return -1;

	if (k[K_METHODS].v != NULL && parse_methods(c, r, k[K_METHODS].v) != 0)
		return -1;
	if (k[K_MAXBODY].v != NULL && get_size(c, k[K_MAXBODY].v, "max_body", &r->max_body) != 0)
		return -1;

	if (k[K_RETURN].k != NULL && k[K_UPSTREAM].k != NULL)
		return fail(c, later(&k[K_RETURN], &k[K_UPSTREAM]),
			    "'upstream' and 'return' are mutually exclusive (in %s)", where);
	if (k[K_RETURN].v == NULL && k[K_UPSTREAM].v == NULL)
		return fail(c, map, "%s needs 'upstream' or 'return'", where);
	if (k[K_UPSTREAM].v != NULL) {
		yaml_node_t *v = k[K_UPSTREAM].v;
		struct shown b;
		const char *s;

		if (get_cstr(c, v, "upstream", "an upstream name", &s) != 0)
			return -1;
		for (unsigned i = 0; i < conf->nupstreams; i++)
			if (strcmp(conf->upstreams[i].name, s) == 0)
				r->upstream = &conf->upstreams[i];
		if (r->upstream == NULL)
			return fail(c, v, "unknown upstream '%s'", show(&b, v));
	}
	if (k[K_RETURN].v != NULL && parse_return(c, r, k[K_RETURN].v) != 0)
		return -1;
	if (k[K_AGENTS].v != NULL) {
		if (k[K_RETURN].v != NULL)
			return fail(c, k[K_AGENTS].k, "'agents' apply to proxied routes, not to "
				    "'return' (in %s)", where);
		if (parse_route_agents(c, r, k[K_AGENTS].v) != 0)
			return -1;
	}
	return 0;
}

static int parse_routes(struct ctx *c, yaml_node_t *v)
{
	struct weir_conf *conf = c->conf;
	yaml_node_t **names;
	size_t n;
	int ret = -1;

	if (v->type != YAML_SEQUENCE_NODE)
		return fail(c, v, "'routes' must be a sequence of routes, got %s", kind(v));
	n = nitems(v);
	conf->routes = calloc(n ? n : 1, sizeof(*conf->routes));
	names = calloc(n ? n : 1, sizeof(*names));
	if (conf->routes == NULL || names == NULL) {
		free(names);
		return oom(c, v);
	}
	for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
	     it++) {
		struct weir_conf_route *r = &conf->routes[conf->nroutes];

		r->index = conf->nroutes++;
		if (parse_route(c, r, node_at(c, *it), &names[r->index]) != 0)
			goto out;
	}
	for (unsigned i = 1; i < conf->nroutes; i++) {
		for (unsigned j = 0; j < i; j++) {
			if (strcmp(conf->routes[i].name, conf->routes[j].name) == 0) {
				fail(c, names[i], "duplicate route name '%s' (route #%u has it)",
				     conf->routes[i].name, j + 1);
				goto out;
			}
		}
	}
	ret = 0;
out:
	free(names);
	return ret;
}

static int parse_root(struct ctx *c, yaml_node_t *root)
{
	enum { T_WORKERS, T_CPUS, T_LISTEN, T_ADMIN, T_SHUTDOWN, T_HEADER, T_BODY, T_KEEPALIVE,
	       T_MAXCONN, T_UPSTREAMS, T_AGENTS, T_ROUTES, T_ALOG, T_N };
	struct key k[T_N] = {
		[T_WORKERS] = { "workers", NULL, NULL },
		[T_CPUS] = { "cpus", NULL, NULL },
		[T_LISTEN] = { "listen", NULL, NULL },
		[T_ADMIN] = { "admin", NULL, NULL },
		[T_SHUTDOWN] = { "shutdown_timeout", NULL, NULL },
		[T_HEADER] = { "client_header_timeout", NULL, NULL },
		[T_BODY] = { "client_body_timeout", NULL, NULL },
		[T_KEEPALIVE] = { "keepalive_timeout", NULL, NULL },
		[T_MAXCONN] = { "max_connections", NULL, NULL },
		[T_UPSTREAMS] = { "upstreams", NULL, NULL },
		[T_AGENTS] = { "agents", NULL, NULL },
		[T_ROUTES] = { "routes", NULL, NULL },
		[T_ALOG] = { "access_log", NULL, NULL },
	};
	struct weir_conf *conf = c->conf;
	uint64_t v;

	if (root != NULL && !is_null(root)) {
		if (root->type != YAML_MAPPING_NODE)
			return fail(c, root, "the configuration must be a mapping, got %s",
				    kind(root));
		if (get_keys(c, root, "the top level", k, T_N) != 0)
			return -1;
	}
	if (k[T_WORKERS].v != NULL) {
		if (get_uint(c, k[T_WORKERS].v, "workers", 1, CONF_MAX_WORKERS, &v) != 0)
			return -1;
		conf->workers = (unsigned)v;
	}
	if (k[T_CPUS].v != NULL) {
		struct shown b;
		const char *s;

		if (get_cstr(c, k[T_CPUS].v, "cpus", "a CPU list", &s) != 0)
			return -1;
		if (weir_cpulist_parse(s, &conf->cpus) != 0)
			return fail(c, k[T_CPUS].v, "'cpus': invalid CPU list '%s' (e.g. \"0-3,6\"; "
				    "CPU numbers below %d)", show(&b, k[T_CPUS].v), CPU_SETSIZE);
		conf->cpus_set = true;
	}
	if (k[T_LISTEN].v != NULL) {
		if (parse_listen(c, k[T_LISTEN].v) != 0)
			return -1;
	} else {
		conf->listens = calloc(1, sizeof(*conf->listens));
		if (conf->listens == NULL)
			return fail_plain(c, "out of memory");
		weir_addr_parse("127.0.0.1:8080", &conf->listens[0]);
		conf->nlistens = 1;
	}
	if (k[T_ADMIN].v != NULL && parse_admin(c, k[T_ADMIN].v) != 0)
		return -1;
	if (k[T_ALOG].v != NULL && parse_access_log(c, k[T_ALOG].v) != 0)
		return -1;
	if (k[T_SHUTDOWN].v != NULL &&
	    get_duration(c, k[T_SHUTDOWN].v, "shutdown_timeout", true,
			 &conf->shutdown_timeout_ms) != 0)
		return -1;
	if (k[T_HEADER].v != NULL &&
	    get_duration(c, k[T_HEADER].v, "client_header_timeout", false,
			 &conf->client_header_timeout_ms) != 0)
		return -1;
	if (k[T_BODY].v != NULL &&
	    get_duration(c, k[T_BODY].v, "client_body_timeout", false,
			 &conf->client_body_timeout_ms) != 0)
		return -1;
	if (k[T_KEEPALIVE].v != NULL &&
	    get_duration(c, k[T_KEEPALIVE].v, "keepalive_timeout", false,
			 &conf->keepalive_timeout_ms) != 0)
		return -1;
	if (k[T_MAXCONN].v != NULL) {
		if (get_uint(c, k[T_MAXCONN].v, "max_connections", 1, CONF_MAX_CONNECTIONS, &v) != 0)
			return -1;
		conf->max_connections = (unsigned)v;
	}
	/* Upstreams first: routes refer to them wherever they are in the file. */
	if (k[T_UPSTREAMS].v != NULL && parse_upstreams(c, k[T_UPSTREAMS].v) != 0)
		return -1;
	if (k[T_AGENTS].v != NULL && parse_agents(c, k[T_AGENTS].v) != 0)
		return -1;
	if (k[T_ROUTES].v != NULL && parse_routes(c, k[T_ROUTES].v) != 0)
		return -1;
	return 0;
}

/* ---- entry points ------------------------------------------------------- */

static void yaml_error(struct ctx *c, const yaml_parser_t *p, const char *buf, size_t len)
{
	const char *problem = p->problem != NULL ? p->problem : "syntax error";

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		fail_plain(c, "out of memory");
		break;
	case YAML_READER_ERROR: {
		/* Reader errors carry a byte offset, not a mark. */
		size_t line = 1, col = 1;

		for (size_t i = 0; i < p->problem_offset && i < len; i++) {
			if (buf[i] == '\n') {
				line++;
				col = 1;
			} else {
				col++;
			}
		}
		if (p->problem_value != -1)
			fail_at(c, line, col, "%s (byte 0x%02x)", problem,
				(unsigned)p->problem_value & 0xffu);
		else
			fail_at(c, line, col, "%s", problem);
		break;
	}
	default:
		if (p->context != NULL)
			fail_at(c, p->problem_mark.line + 1, p->problem_mark.column + 1,
				"%s (%s at line %zu, column %zu)", problem, p->context,
				p->context_mark.line + 1, p->context_mark.column + 1);
		else
			fail_at(c, p->problem_mark.line + 1, p->problem_mark.column + 1, "%s",
				problem);
		break;
	}
}

int weir_conf_load_string(const char *name, const char *yaml, size_t len,
			  struct weir_conf **out, char *err, size_t errlen)
{
	struct ctx c = { .name = name != NULL ? name : "<string>", .err = err, .errlen = errlen };
	yaml_document_t doc, next;
	yaml_parser_t parser;
	yaml_node_t *root;
	int ret = -1;

	*out = NULL;
	if (err != NULL && errlen != 0)
		err[0] = '\0';
	if (yaml == NULL)
		yaml = "";
	if (!yaml_parser_initialize(&parser))
		return fail_plain(&c, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
	if (!yaml_parser_load(&parser, &doc)) {
		yaml_error(&c, &parser, yaml, len);
		yaml_parser_delete(&parser);
		return -1;
	}
	root = yaml_document_get_root_node(&doc);
	if (root != NULL) {
		if (!yaml_parser_load(&parser, &next)) {
			yaml_error(&c, &parser, yaml, len);
			goto out;
		}
		if (yaml_document_get_root_node(&next) != NULL) {
			fail_at(&c, next.start_mark.line + 1, next.start_mark.column + 1,
				"only one YAML document is allowed");
			yaml_document_delete(&next);
			goto out;
		}
		yaml_document_delete(&next);
	}
	c.doc = &doc;
	c.conf = conf_new(c.name);
	if (c.conf == NULL) {
		fail_plain(&c, "out of memory");
		goto out;
	}
	if (parse_root(&c, root) != 0) {
		weir_conf_free(c.conf);
		goto out;
	}
	*out = c.conf;
	ret = 0;
out:
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return ret;
}

int weir_conf_load_file(const char *path, struct weir_conf **out, char *err, size_t errlen)
{
	struct ctx c = { .name = path, .err = err, .errlen = errlen };
	size_t len = 0, cap = 0;
	char *buf = NULL;
	FILE *f;
	int ret;

	*out = NULL;
	f = fopen(path, "rb");
	if (f == NULL)
		return fail_plain(&c, "cannot open: %s", strerror(errno));
	for (;;) {
		size_t n;

		if (len == cap) {
			char *nb;

			if (cap >= CONF_MAX_FILE) {
				fclose(f);
				free(buf);
				return fail_plain(&c, "file too large (over %u bytes)", CONF_MAX_FILE);
			}
			cap = cap ? cap * 2 : 16384;
			nb = realloc(buf, cap);
			if (nb == NULL) {
				fclose(f);
				free(buf);
				return fail_plain(&c, "out of memory");
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		int e = errno;

		fclose(f);
		free(buf);
		return fail_plain(&c, "cannot read: %s", strerror(e));
	}
	fclose(f);
	ret = weir_conf_load_string(path, buf, len, out, err, errlen);
	free(buf);
	return ret;
}

int weir_conf_default(const char *listen, const char *upstream, struct weir_conf **out,
		      char *err, size_t errlen)
{
	struct ctx c = { .name = "<default>", .err = err, .errlen = errlen };
	struct weir_conf *conf;
	struct weir_conf_route *r;
	const char *why;

	*out = NULL;
	conf = conf_new(c.name);
	if (conf == NULL)
		return fail_plain(&c, "out of memory");
	c.conf = conf;
	conf->listens = calloc(1, sizeof(*conf->listens));
	conf->routes = calloc(1, sizeof(*conf->routes));
	if (conf->listens == NULL || conf->routes == NULL)
		goto nomem;
	if (listen == NULL)
		listen = "127.0.0.1:8080";
	if (addr_parse(listen, &conf->listens[0], &why) != 0) {
		fail_plain(&c, "invalid listen address '%s': %s", listen, why);
		goto fail;
	}
	conf->nlistens = 1;
	weir_addr_parse("127.0.0.1:9090", &conf->admin);
	conf->admin_set = true;
	if (weir_addr_eq(&conf->listens[0], &conf->admin)) {
		fail_plain(&c, "listen address '%s' is the admin address", conf->admin.text);
		goto fail;
	}

	r = &conf->routes[0];
	conf->nroutes = 1;
	r->path_match = WEIR_PATH_ANY;
	r->host_match = WEIR_HOST_ANY;
	if (upstream != NULL) {
		struct weir_conf_upstream *u;

		conf->upstreams = calloc(1, sizeof(*conf->upstreams));
		if (conf->upstreams == NULL)
			goto nomem;
		u = &conf->upstreams[0];
		conf->nupstreams = 1;
		upstream_defaults(u, 0);
		u->name = strdup("default");
		u->servers = calloc(1, sizeof(*u->servers));
		if (u->name == NULL || u->servers == NULL)
			goto nomem;
		if (addr_parse(upstream, &u->servers[0], &why) != 0) {
			fail_plain(&c, "invalid upstream address '%s': %s", upstream, why);
			goto fail;
		}
		if (addr_is_any(&u->servers[0])) {
			fail_plain(&c, "invalid upstream address '%s': a wildcard address is not "
				   "a server", upstream);
			goto fail;
		}
		u->nservers = 1;
		r->name = strdup("default");
		r->upstream = u;
		if (r->name == NULL)
			goto nomem;
	} else {
		r->name = strdup("welcome");
		r->is_return = true;
		r->ret.status = 200;
		r->ret.headers = calloc(1, sizeof(*r->ret.headers));
		if (r->name == NULL || r->ret.headers == NULL)
			goto nomem;
		r->ret.headers[0].name = strdup("Content-Type");
		r->ret.headers[0].value = strdup("text/plain");
		r->ret.nheaders = 1;
		r->ret.body = strdup(welcome_body);
		r->ret.body_len = sizeof(welcome_body) - 1;
		if (r->ret.headers[0].name == NULL || r->ret.headers[0].value == NULL ||
		    r->ret.body == NULL)
			goto nomem;
	}
	*out = conf;
	return 0;
nomem:
	fail_plain(&c, "out of memory");
fail:
	weir_conf_free(conf);
	return -1;
}
