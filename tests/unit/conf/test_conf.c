/* Unit tests for src/conf: value parsers, the YAML loader (good and bad
 * configurations, exact error positions) and the embedded default.
 *
 * usage: test-conf [FIXTURE-DIR...] — every *.yaml in a fixture directory is
 * loaded; a file whose first line is "# expect: LINE:COL: FRAGMENT" must fail
 * with an error that starts with "PATH:LINE:COL: " and contains FRAGMENT, any
 * other must load.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>

#include "weir/conf.h"
#include "weir/h1.h"

static int failures;

#define CHECK(cond)                                                                    \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                \
			failures++;                                                    \
		}                                                                      \
	} while (0)

/* ---- value parsers ------------------------------------------------------ */

static void test_durations(void)
{
	static const struct {
		const char *text;
		int ok;
		uint64_t ms;
	} cases[] = {
		{ "100ms", 1, 100 },
		{ "1s", 1, 1000 },
		{ "5m", 1, 300000 },
		{ "1h", 1, 3600000 },
		{ "10", 1, 10000 },
		{ "0", 1, 0 },
		{ "0ms", 1, 0 },
		{ "18446744073709551615ms", 1, UINT64_MAX },
		{ "18446744073709551616ms", 0, 0 },
		{ "18446744073709552s", 0, 0 },
		{ "18446744073709551s", 1, 18446744073709551000ull },
		{ "5124095576030432h", 0, 0 },
		{ "", 0, 0 },
		{ "s", 0, 0 },
		{ "ms", 0, 0 },
		{ "-1s", 0, 0 },
		{ "+1s", 0, 0 },
		{ "1.5s", 0, 0 },
		{ "1 s", 0, 0 },
		{ " 1s", 0, 0 },
		{ "1S", 0, 0 },
		{ "1d", 0, 0 },
		{ "1sec", 0, 0 },
		{ "1m30s", 0, 0 },
	};

	for (size_t i = 0; i < WEIR_ARRAY_SIZE(cases); i++) {
		uint64_t ms = 12345;
		int rc = weir_duration_parse(cases[i].text, &ms);

		if ((rc == 0) != cases[i].ok || (rc == 0 && ms != cases[i].ms)) {
			fprintf(stderr, "duration '%s': rc %d ms %llu\n", cases[i].text, rc,
				(unsigned long long)ms);
			failures++;
		}
	}
	CHECK(weir_duration_parse(NULL, &(uint64_t){ 0 }) == -1);
}

static void test_sizes(void)
{
	static const struct {
		const char *text;
		int ok;
		uint64_t bytes;
	} cases[] = {
		{ "512", 1, 512 },
		{ "0", 1, 0 },
		{ "64k", 1, 65536 },
		{ "64K", 1, 65536 },
		{ "1m", 1, 1048576 },
		{ "1M", 1, 1048576 },
		{ "1g", 1, 1073741824 },
		{ "3G", 1, 3221225472ull },
		{ "17179869183g", 1, 17179869183ull << 30 },
		{ "17179869184g", 0, 0 },
		{ "18446744073709551615", 1, UINT64_MAX },
		{ "18446744073709551616", 0, 0 },
		{ "", 0, 0 },
		{ "k", 0, 0 },
		{ "1kb", 0, 0 },
		{ "1t", 0, 0 },
		{ "-1", 0, 0 },
		{ "1.5m", 0, 0 },
		{ "1 k", 0, 0 },
	};

	for (size_t i = 0; i < WEIR_ARRAY_SIZE(cases); i++) {
		uint64_t b = 12345;
		int rc = weir_size_parse(cases[i].text, &b);

		if ((rc == 0) != cases[i].ok || (rc == 0 && b != cases[i].bytes)) {
			fprintf(stderr, "size '%s': rc %d bytes %llu\n", cases[i].text, rc,
				(unsigned long long)b);
			failures++;
		}
	}
}

static void test_addresses(void)
{
	static const struct {
		const char *text;
		const char *norm; /* NULL: invalid */
		int family;
	} cases[] = {
		{ "127.0.0.1:8080", "127.0.0.1:8080", AF_INET },
		{ "10.1.2.3:1", "10.1.2.3:1", AF_INET },
		{ "0.0.0.0:65535", "0.0.0.0:65535", AF_INET },
		{ "[::1]:8080", "[::1]:8080", AF_INET6 },
		{ "[0:0::1]:80", "[::1]:80", AF_INET6 },
		{ "[::]:80", "[::]:80", AF_INET6 },
		{ "[2001:DB8::A]:443", "[2001:db8::a]:443", AF_INET6 },
		{ "[::ffff:1.2.3.4]:80", "[::ffff:1.2.3.4]:80", AF_INET6 },
		{ "localhost:8080", "127.0.0.1:8080", AF_INET },
		{ "LocalHost:81", "127.0.0.1:81", AF_INET },
		{ "*:8080", "0.0.0.0:8080", AF_INET },
		{ ":8080", "0.0.0.0:8080", AF_INET },
		{ "127.0.0.1:08080", "127.0.0.1:8080", AF_INET },
		{ "127.0.0.1:0", NULL, 0 },
		{ "127.0.0.1:65536", NULL, 0 },
		{ "127.0.0.1:99999999999999999999999", NULL, 0 },
		{ "127.0.0.1:", NULL, 0 },
		{ "127.0.0.1", NULL, 0 },
		{ "127.0.0.1:80x", NULL, 0 },
		{ "127.0.0.1:-80", NULL, 0 },
		{ "127.0.0.1: 80", NULL, 0 },
		{ "127.0.0.256:80", NULL, 0 },
		{ "127.1:80", NULL, 0 },
		{ "example.com:80", NULL, 0 },
		{ "::1:8080", NULL, 0 },
		{ "[::1]8080", NULL, 0 },
		{ "[::1]", NULL, 0 },
		{ "[::1:80", NULL, 0 },
		{ "[]:80", NULL, 0 },
		{ "[1.2.3.4]:80", NULL, 0 },
		{ "[*]:80", NULL, 0 },
		{ "**:80", NULL, 0 },
		{ "", NULL, 0 },
	};

	for (size_t i = 0; i < WEIR_ARRAY_SIZE(cases); i++) {
		struct weir_addr a;
		int rc = weir_addr_parse(cases[i].text, &a);

		if (cases[i].norm == NULL) {
			if (rc != -1) {
				fprintf(stderr, "address '%s' accepted as '%s'\n", cases[i].text,
					a.text);
				failures++;
			}
			continue;
		}
		if (rc != 0 || strcmp(a.text, cases[i].norm) != 0 ||
		    a.ss.ss_family != cases[i].family) {
			fprintf(stderr, "address '%s': rc %d text '%s'\n", cases[i].text, rc,
				rc == 0 ? a.text : "");
			failures++;
			continue;
		}
		if (a.ss.ss_family == AF_INET) {
			const struct sockaddr_in *sin = (const struct sockaddr_in *)&a.ss;

			CHECK(a.len == sizeof(*sin));
			CHECK(sin->sin_port != 0);
		} else {
			CHECK(a.len == sizeof(struct sockaddr_in6));
		}
	}
	{
		struct weir_addr a;
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&a.ss;

		CHECK(weir_addr_parse("localhost:8080", &a) == 0);
		CHECK(sin->sin_port == htons(8080));
		CHECK(sin->sin_addr.s_addr == htonl(INADDR_LOOPBACK));
		CHECK(weir_addr_parse(NULL, &a) == -1);
	}
}

static void test_cpulists(void)
{
	cpu_set_t s;

	CHECK(weir_cpulist_parse("0-3,6", &s) == 0);
	CHECK(CPU_COUNT(&s) == 5);
	CHECK(CPU_ISSET(0, &s) && CPU_ISSET(3, &s) && CPU_ISSET(6, &s) && !CPU_ISSET(4, &s));
	CHECK(weir_cpulist_parse("5", &s) == 0 && CPU_COUNT(&s) == 1 && CPU_ISSET(5, &s));
	CHECK(weir_cpulist_parse("1, 3 - 4", &s) == 0 && CPU_COUNT(&s) == 3);
	CHECK(weir_cpulist_parse("2-2", &s) == 0 && CPU_COUNT(&s) == 1);
	CHECK(weir_cpulist_parse("0,0", &s) == 0 && CPU_COUNT(&s) == 1);
	CHECK(weir_cpulist_parse("1023", &s) == 0 && CPU_ISSET(1023, &s));
	CHECK(weir_cpulist_parse("1024", &s) == -1);
	CHECK(weir_cpulist_parse("0-1024", &s) == -1);
	CHECK(weir_cpulist_parse("99999999999999999999", &s) == -1);
	CHECK(weir_cpulist_parse("3-1", &s) == -1);
	CHECK(weir_cpulist_parse("", &s) == -1);
	CHECK(weir_cpulist_parse(",", &s) == -1);
	CHECK(weir_cpulist_parse("1,", &s) == -1);
	CHECK(weir_cpulist_parse(",1", &s) == -1);
	CHECK(weir_cpulist_parse("1-", &s) == -1);
	CHECK(weir_cpulist_parse("-1", &s) == -1);
	CHECK(weir_cpulist_parse("a", &s) == -1);
	CHECK(weir_cpulist_parse("1;2", &s) == -1);
	CHECK(weir_cpulist_parse(NULL, &s) == -1);
}

/* ---- loader ------------------------------------------------------------- */

static struct weir_conf *load(const char *yaml)
{
	struct weir_conf *conf = (struct weir_conf *)1;
	char err[512];

	if (weir_conf_load_string("t.yaml", yaml, strlen(yaml), &conf, err, sizeof(err)) != 0) {
		fprintf(stderr, "unexpected error: %s\n--- config:\n%s---\n", err, yaml);
		failures++;
		CHECK(conf == NULL);
		return NULL;
	}
	return conf;
}

/* The load must fail with an error that starts with "t.yaml:" + pos and
 * contains frag. */
static void bad_at(int line, const char *yaml, const char *pos, const char *frag)
{
	struct weir_conf *conf = (struct weir_conf *)1;
	char err[512], prefix[64];
	int rc;

	rc = weir_conf_load_string("t.yaml", yaml, strlen(yaml), &conf, err, sizeof(err));
	snprintf(prefix, sizeof(prefix), "t.yaml:%s: ", pos);
	if (rc != -1 || conf != NULL) {
		fprintf(stderr, "%s:%d: config accepted, expected '%s%s'\n", __FILE__, line, prefix,
			frag);
		failures++;
		if (rc == 0)
			weir_conf_free(conf);
		return;
	}
	if (strncmp(err, prefix, strlen(prefix)) != 0 || strstr(err, frag) == NULL) {
		fprintf(stderr, "%s:%d: got '%s', expected '%s...%s'\n", __FILE__, line, err, prefix,
			frag);
		failures++;
	}
}
#define BAD(yaml, pos, frag) bad_at(__LINE__, (yaml), (pos), (frag))

static const char full_yaml[] =
	"workers: 2\n"
	"cpus: \"0-1,3\"\n"
	"listen:\n"
	"  - address: 127.0.0.1:8080\n"
	"  - address: \"[::1]:8443\"\n"
	"  - \"*:8081\"\n"
	"admin:\n"
	"  address: localhost:9090\n"
	"shutdown_timeout: 0\n"
	"client_header_timeout: 1500ms\n"
	"client_body_timeout: 2m\n"
	"keepalive_timeout: 1h\n"
	"max_connections: 20000\n"
	"routes:\n"
	"  - name: health\n"
	"    host: Example.COM.\n"
	"    path: /healthz\n"
	"    methods: [GET, HEAD]\n"
	"    max_body: 64k\n"
	"    return:\n"
	"      status: 200\n"
	"      headers: { Content-Type: text/plain, X-Answer: 42 }\n"
	"      body: \"ok\\n\"\n"
	"  - host: \"*.example.com\"\n"
	"    path_prefix: /api/\n"
	"    upstream: app\n"
	"  - path_regex: ^/v[0-9]+/\n"
	"    methods: [POST, PUT, DELETE, OPTIONS, PATCH, TRACE]\n"
	"    upstream: other\n"
	"  - path_prefix: /\n"
	"    return: { status: 204 }\n"
	"upstreams:\n"
	"  app:\n"
	"    servers: [127.0.0.1:9000, 127.0.0.1:9001]\n"
	"    balance: round_robin\n"
	"    keepalive: 0\n"
	"    connect_timeout: 250ms\n"
	"    read_timeout: 5s\n"
	"    send_timeout: 7\n"
	"  other:\n"
	"    servers:\n"
	"      - \"[::1]:9100\"\n";

static void test_full(void)
{
	struct weir_conf *c = load(full_yaml);
	const struct weir_conf_route *r;
	const struct weir_conf_upstream *u;

	if (c == NULL)
		return;
	CHECK(strcmp(c->source, "t.yaml") == 0);
	CHECK(c->workers == 2);
	CHECK(c->cpus_set && CPU_COUNT(&c->cpus) == 3 && CPU_ISSET(3, &c->cpus));
	CHECK(c->nlistens == 3);
	CHECK(strcmp(c->listens[0].text, "127.0.0.1:8080") == 0);
	CHECK(strcmp(c->listens[1].text, "[::1]:8443") == 0);
	CHECK(c->listens[1].ss.ss_family == AF_INET6);
	CHECK(strcmp(c->listens[2].text, "0.0.0.0:8081") == 0);
	CHECK(c->admin_set && strcmp(c->admin.text, "127.0.0.1:9090") == 0);
	CHECK(c->shutdown_timeout_ms == 0);
	CHECK(c->client_header_timeout_ms == 1500);
	CHECK(c->client_body_timeout_ms == 120000);
	CHECK(c->keepalive_timeout_ms == 3600000);
	CHECK(c->max_connections == 20000);

	CHECK(c->nupstreams == 2);
	u = &c->upstreams[0];
	CHECK(strcmp(u->name, "app") == 0 && u->index == 0);
	CHECK(u->nservers == 2 && strcmp(u->servers[1].text, "127.0.0.1:9001") == 0);
	CHECK(u->balance == WEIR_BALANCE_ROUND_ROBIN);
	CHECK(u->keepalive == 0);
	CHECK(u->connect_timeout_ms == 250 && u->read_timeout_ms == 5000 &&
	      u->send_timeout_ms == 7000);
	u = &c->upstreams[1];
	CHECK(strcmp(u->name, "other") == 0 && u->index == 1);
	CHECK(u->nservers == 1 && strcmp(u->servers[0].text, "[::1]:9100") == 0);
	CHECK(u->keepalive == 128 && u->connect_timeout_ms == 1000 && u->read_timeout_ms == 30000 &&
	      u->send_timeout_ms == 30000);

	CHECK(c->nroutes == 4);
	r = &c->routes[0];
	CHECK(strcmp(r->name, "health") == 0 && r->index == 0);
	CHECK(r->host_match == WEIR_HOST_EXACT && strcmp(r->host, "example.com") == 0 &&
	      r->host_len == 11);
	CHECK(r->path_match == WEIR_PATH_EXACT && strcmp(r->path, "/healthz") == 0 &&
	      r->path_len == 8);
	CHECK(r->methods == ((1u << WEIR_M_GET) | (1u << WEIR_M_HEAD)));
	CHECK(r->max_body == 65536);
	CHECK(r->is_return && r->upstream == NULL && r->ret.status == 200);
	CHECK(r->ret.nheaders == 2);
	CHECK(strcmp(r->ret.headers[0].name, "Content-Type") == 0 &&
	      strcmp(r->ret.headers[0].value, "text/plain") == 0);
	CHECK(strcmp(r->ret.headers[1].name, "X-Answer") == 0 &&
	      strcmp(r->ret.headers[1].value, "42") == 0);
	CHECK(r->ret.body_len == 3 && memcmp(r->ret.body, "ok\n", 3) == 0);
	r = &c->routes[1];
	CHECK(strcmp(r->name, "route2") == 0 && r->index == 1);
	CHECK(r->host_match == WEIR_HOST_SUFFIX && strcmp(r->host, ".example.com") == 0 &&
	      r->host_len == 12);
	CHECK(r->path_match == WEIR_PATH_PREFIX && strcmp(r->path, "/api/") == 0);
	CHECK(r->methods == 0 && r->max_body == 0);
	CHECK(!r->is_return && r->upstream == &c->upstreams[0]);
	r = &c->routes[2];
	CHECK(r->path_match == WEIR_PATH_REGEX && r->regex != NULL &&
	      strcmp(r->path, "^/v[0-9]+/") == 0);
	CHECK(r->host_match == WEIR_HOST_ANY && r->host == NULL);
	CHECK(r->methods == ((1u << WEIR_M_POST) | (1u << WEIR_M_PUT) | (1u << WEIR_M_DELETE) |
			     (1u << WEIR_M_OPTIONS) | (1u << WEIR_M_PATCH) |
			     (1u << WEIR_M_TRACE)));
	CHECK(r->upstream == &c->upstreams[1]);
	r = &c->routes[3];
	CHECK(strcmp(r->name, "route4") == 0);
	CHECK(r->path_match == WEIR_PATH_ANY); /* path_prefix: / */
	CHECK(r->is_return && r->ret.status == 204 && r->ret.nheaders == 0 &&
	      r->ret.body_len == 0);
	weir_conf_free(c);
}

static void check_defaults(const struct weir_conf *c)
{
	CHECK(c->workers == 0);
	CHECK(!c->cpus_set);
	CHECK(c->nlistens == 1 && strcmp(c->listens[0].text, "127.0.0.1:8080") == 0);
	CHECK(!c->admin_set);
	CHECK(c->shutdown_timeout_ms == 10000);
	CHECK(c->client_header_timeout_ms == 10000);
	CHECK(c->client_body_timeout_ms == 60000);
	CHECK(c->keepalive_timeout_ms == 75000);
	CHECK(c->max_connections == 10000);
}

static void test_defaults(void)
{
	static const char *const empties[] = { "", "\n", "# nothing\n", "---\n", "{}\n", "~\n" };
	struct weir_conf *c;

	for (size_t i = 0; i < WEIR_ARRAY_SIZE(empties); i++) {
		c = load(empties[i]);
		if (c == NULL)
			continue;
		check_defaults(c);
		CHECK(c->nupstreams == 0 && c->nroutes == 0);
		weir_conf_free(c);
	}
	c = load("upstreams: { a: { servers: [127.0.0.1:1] } }\n"
		 "routes: [ { upstream: a } ]\n");
	if (c != NULL) {
		check_defaults(c);
		CHECK(c->nroutes == 1 && c->routes[0].path_match == WEIR_PATH_ANY &&
		      c->routes[0].host_match == WEIR_HOST_ANY && c->routes[0].methods == 0 &&
		      c->routes[0].upstream == &c->upstreams[0] &&
		      strcmp(c->routes[0].name, "route1") == 0);
		CHECK(c->upstreams[0].keepalive == 128);
		weir_conf_free(c);
	}
	/* Anchors and aliases are plain YAML. */
	c = load("upstreams:\n"
		 "  a: &up { servers: [127.0.0.1:1], keepalive: 4 }\n"
		 "  b: *up\n"
		 "routes:\n"
		 "  - { path: /b, upstream: b }\n");
	if (c != NULL) {
		CHECK(c->nupstreams == 2 && c->upstreams[1].keepalive == 4);
		weir_conf_free(c);
	}
	/* Flow sequences, quoted numbers, wildcard hosts. */
	c = load("workers: \"8\"\ncpus: 3\n"
		 "routes: [{host: '*', return: {status: 599, body: ''}}]\n");
	if (c != NULL) {
		CHECK(c->workers == 8 && CPU_COUNT(&c->cpus) == 1 && CPU_ISSET(3, &c->cpus));
		CHECK(c->routes[0].host_match == WEIR_HOST_ANY && c->routes[0].ret.status == 599);
		CHECK(c->routes[0].ret.body != NULL && c->routes[0].ret.body_len == 0);
		weir_conf_free(c);
	}
	/* A body may hold any byte, NUL included. */
	c = load("routes: [{return: {status: 200, body: \"a\\0b\"}}]\n");
	if (c != NULL) {
		CHECK(c->routes[0].ret.body_len == 3 && memcmp(c->routes[0].ret.body, "a\0b", 3) == 0);
		weir_conf_free(c);
	}
	/* IPv6 literal hosts. */
	c = load("routes: [{host: '[::1]', return: {status: 200}}]\n");
	if (c != NULL) {
		CHECK(c->routes[0].host_match == WEIR_HOST_EXACT &&
		      strcmp(c->routes[0].host, "[::1]") == 0);
		weir_conf_free(c);
	}
}

static void test_bad(void)
{
	/* YAML syntax (libyaml's own marks) */
	BAD("a: [1, 2\n", "2:1", "did not find expected ',' or ']'");
	BAD("a: b\n c: d\n", "2:3", "mapping values are not allowed");
	BAD("listen:\n\t- x\n", "2:1", "found character that cannot start any token");
	BAD("a: *nope\n", "1:4", "undefined alias");
	BAD("workers: 1\n---\nworkers: 2\n", "2:1", "only one YAML document");
	BAD("workers: 1\n\xff\n", "2:1", "invalid");
	/* structure */
	BAD("- a\n", "1:1", "the configuration must be a mapping");
	BAD("listn: []\n", "1:1", "unknown key 'listn' in the top level");
	BAD("workers: 1\nworkers: 2\n", "2:1", "duplicate key 'workers' in the top level");
	BAD("? [a]\n: 1\n", "1:3", "keys must be scalars");
	/* types and ranges */
	BAD("workers: {a: 1}\n", "1:10", "'workers': expected an integer, got a mapping");
	BAD("workers: [1]\n", "1:10", "expected an integer, got a sequence");
	BAD("workers:\n", "1:9", "'workers': missing value");
	BAD("workers: 0\n", "1:10", "'workers' must be an integer from 1 to 1024, got '0'");
	BAD("workers: 1025\n", "1:10", "from 1 to 1024");
	BAD("workers: two\n", "1:10", "got 'two'");
	BAD("workers: -1\n", "1:10", "from 1 to 1024");
	BAD("workers: 99999999999999999999999\n", "1:10", "from 1 to 1024");
	BAD("cpus: 0-1024\n", "1:7", "'cpus': invalid CPU list '0-1024'");
	BAD("cpus: [0, 1]\n", "1:7", "'cpus': expected a CPU list, got a sequence");
	BAD("max_connections: 0\n", "1:18", "'max_connections' must be an integer");
	BAD("keepalive_timeout: 10 s\n", "1:20", "'keepalive_timeout': invalid duration '10 s'");
	BAD("client_header_timeout: 0\n", "1:24", "'client_header_timeout' must not be 0");
	BAD("client_body_timeout: 50d\n", "1:22", "invalid duration '50d'");
	BAD("client_body_timeout: 4294968s\n", "1:22", "too long");
	BAD("shutdown_timeout: {}\n", "1:19", "expected a duration, got a mapping");
	/* listen / admin */
	BAD("listen: []\n", "1:9", "'listen' needs at least one address");
	BAD("listen: 127.0.0.1:80\n", "1:9", "'listen' must be a sequence");
	BAD("listen:\n  - address: 127.0.0.1:80\n    port: 80\n", "3:5",
	    "unknown key 'port' in listen entry");
	BAD("listen:\n  - {}\n", "2:5", "listen entry has no 'address'");
	BAD("listen:\n  - [a]\n", "2:5", "expected a listen entry");
	BAD("listen:\n  - address: 127.0.0.1:0\n", "2:14",
	    "'address': invalid address '127.0.0.1:0': invalid port");
	BAD("listen:\n  - address: example.com:80\n", "2:14", "host names are not resolved");
	BAD("listen:\n  - address: ::1:80\n", "2:14", "IPv6 addresses need brackets");
	BAD("listen:\n  - address: 127.0.0.1\n", "2:14", "missing ':PORT'");
	BAD("listen:\n  - address: 127.0.0.1:80\n  - address: localhost:80\n", "3:14",
	    "duplicate listen address '127.0.0.1:80'");
	BAD("admin: 127.0.0.1:9090\n", "1:8", "expected a mapping for admin, got a scalar");
	BAD("admin: {}\n", "1:8", "'admin' has no 'address'");
	BAD("admin: { address: 127.0.0.1:8080 }\n", "1:19",
	    "admin address '127.0.0.1:8080' is also a listen address");
	/* upstreams */
	BAD("upstreams: []\n", "1:12", "'upstreams' must be a mapping");
	BAD("upstreams:\n  app: { }\n", "2:8", "upstream 'app' has no 'servers'");
	BAD("upstreams:\n  app:\n", "2:7", "expected a mapping for upstream 'app', got null");
	BAD("upstreams:\n  app: { servers: [] }\n", "2:19", "upstream 'app' has no servers");
	BAD("upstreams:\n  app: { servers: 127.0.0.1:80 }\n", "2:19", "'servers' must be a sequence");
	BAD("upstreams:\n  app: { servers: [127.0.0.1:80, 'x:1'] }\n", "2:34",
	    "'servers': invalid address 'x:1'");
	BAD("upstreams:\n  app: { servers: [':80'] }\n", "2:20", "is a wildcard address");
	BAD("upstreams:\n  app: { servers: [127.0.0.1:80], balance: random }\n", "2:44",
	    "'balance': unknown method 'random'");
	BAD("upstreams:\n  app: { servers: [127.0.0.1:80], keepalive: 65537 }\n", "2:46",
	    "'keepalive' must be an integer from 0 to 65536");
	BAD("upstreams:\n  app: { servers: [127.0.0.1:80], connect_timeout: 0 }\n", "2:52",
	    "'connect_timeout' must not be 0");
	BAD("upstreams:\n  app: { servers: [127.0.0.1:80], read_timeout: x }\n", "2:49",
	    "'read_timeout': invalid duration 'x'");
	BAD("upstreams:\n  app: { servers: [127.0.0.1:80], serverz: 1 }\n", "2:35",
	    "unknown key 'serverz' in upstream 'app'");
	BAD("upstreams:\n  app: { servers: [127.0.0.1:1] }\n  app: { servers: [127.0.0.1:2] }\n",
	    "3:3", "duplicate upstream 'app'");
	BAD("upstreams:\n  'a b': { servers: [127.0.0.1:1] }\n", "2:3", "invalid upstream name 'a b'");
	/* routes */
	BAD("routes: {}\n", "1:9", "'routes' must be a sequence");
	BAD("routes:\n  - path: /\n", "2:5", "route #1 needs 'upstream' or 'return'");
	BAD("routes:\n  - name: api\n    path: /\n", "2:5", "route 'api' needs 'upstream' or 'return'");
	BAD("upstreams: { a: { servers: [127.0.0.1:1] } }\n"
	    "routes:\n  - upstream: a\n    return: { status: 200 }\n",
	    "4:5", "'upstream' and 'return' are mutually exclusive");
	BAD("routes:\n  - upstream: nope\n", "2:15", "unknown upstream 'nope'");
	BAD("upstreams: { a: { servers: [127.0.0.1:1] } }\n"
	    "routes:\n  - upstream: b\n", "3:15", "unknown upstream 'b'");
	BAD("routes:\n  - upstream: [a]\n", "2:15", "'upstream': expected an upstream name");
	BAD("routes:\n  - name: x\n    pth: /\n", "3:5", "unknown key 'pth' in route 'x'");
	BAD("routes:\n  - pth: /\n", "2:5", "unknown key 'pth' in route #1");
	BAD("routes:\n  - return: {status: 200}\n    return: {status: 201}\n", "3:5",
	    "duplicate key 'return' in route #1 (first at line 2)");
	BAD("routes:\n  - path: /a\n    path_prefix: /b\n    return: {status: 200}\n", "3:5",
	    "'path', 'path_prefix' and 'path_regex' are mutually exclusive");
	BAD("routes:\n  - path_regex: x\n    path: /b\n    return: {status: 200}\n", "3:5",
	    "mutually exclusive");
	BAD("routes:\n  - path: api\n    return: {status: 200}\n", "2:11",
	    "'path' must start with '/'");
	BAD("routes:\n  - path_prefix: /a?b\n    return: {status: 200}\n", "2:18",
	    "'path_prefix': invalid character");
	BAD("routes:\n  - path: \"/a b\"\n    return: {status: 200}\n", "2:11", "invalid character");
	BAD("routes:\n  - path_regex: ^/(a\n    return: {status: 200}\n", "2:21",
	    "'path_regex': missing closing parenthesis");
	BAD("routes:\n  - path_regex: \"^/(a\"\n    return: {status: 200}\n", "2:22",
	    "missing closing parenthesis");
	BAD("routes:\n  - path_regex: '[z-a]'\n    return: {status: 200}\n", "2:21",
	    "range out of order");
	BAD("routes:\n  - path_regex: ''\n    return: {status: 200}\n", "2:17", "'path_regex' is empty");
	BAD("routes:\n  - host: example.com:80\n    return: {status: 200}\n", "2:11",
	    "'host' must not include a port");
	BAD("routes:\n  - host: a.*.com\n    return: {status: 200}\n", "2:11",
	    "a wildcard is only allowed as a leading '*.'");
	BAD("routes:\n  - host: a..com\n    return: {status: 200}\n", "2:11", "empty label");
	BAD("routes:\n  - host: '*.'\n    return: {status: 200}\n", "2:11", "invalid host");
	BAD("routes:\n  - host: 'a/b'\n    return: {status: 200}\n", "2:11", "invalid character");
	BAD("routes:\n  - host: '[::g]'\n    return: {status: 200}\n", "2:11", "invalid IPv6");
	BAD("routes:\n  - methods: [GET, CONNECT]\n    return: {status: 200}\n", "2:20",
	    "CONNECT is not supported");
	BAD("routes:\n  - methods: [get]\n    return: {status: 200}\n", "2:15",
	    "unknown method 'get'");
	BAD("routes:\n  - methods: []\n    return: {status: 200}\n", "2:14", "'methods' is empty");
	BAD("routes:\n  - methods: GET\n    return: {status: 200}\n", "2:14",
	    "'methods' must be a sequence");
	BAD("routes:\n  - max_body: 1x\n    return: {status: 200}\n", "2:15",
	    "'max_body': invalid size '1x'");
	BAD("routes:\n  - max_body: 99999999999g\n    return: {status: 200}\n", "2:15",
	    "invalid size");
	BAD("routes:\n  - return: {}\n", "2:13", "'return' needs a 'status'");
	BAD("routes:\n  - return: 200\n", "2:13", "expected a mapping for 'return', got a scalar");
	BAD("routes:\n  - return: {status: 100}\n", "2:22", "'status' must be an integer from 200 to 599");
	BAD("routes:\n  - return: {status: 600}\n", "2:22", "from 200 to 599");
	BAD("routes:\n  - return: {status: 200, code: 1}\n", "2:27", "unknown key 'code' in 'return'");
	BAD("routes:\n  - return: {status: 204, body: x}\n", "2:33", "a 204 response has no body");
	BAD("routes:\n  - return: {status: 200, headers: [a]}\n", "2:36", "'headers' must be a mapping");
	BAD("routes:\n  - return: {status: 200, headers: {'a b': c}}\n", "2:37",
	    "invalid header name 'a b'");
	BAD("routes:\n  - return: {status: 200, headers: {X-A: \"a\\r\\nb\"}}\n", "2:42",
	    "value contains a control character");
	BAD("routes:\n  - return: {status: 200, headers: {X-A: \"a\\0b\"}}\n", "2:42",
	    "contains a NUL byte");
	BAD("routes:\n  - return: {status: 200, headers: {X-A: {b: c}}}\n", "2:42",
	    "'X-A': expected a header value, got a mapping");
	BAD("routes:\n  - return: {status: 200, headers: {X-A: a, x-a: b}}\n", "2:45",
	    "duplicate header 'x-a'");
	BAD("routes:\n  - return: {status: 200, headers: {Content-Length: 5}}\n", "2:37",
	    "header 'Content-Length' is set by weir");
	BAD("routes:\n  - return: {status: 200, body: [x]}\n", "2:33", "'body': expected a string");
	BAD("routes:\n  - name: a\n    return: {status: 200}\n  - name: a\n    return: {status: 200}\n",
	    "4:11", "duplicate route name 'a' (route #1 has it)");
	BAD("routes:\n  - return: {status: 200}\n  - name: route1\n    return: {status: 200}\n",
	    "3:11", "duplicate route name 'route1'");
	BAD("routes:\n  - name: route2\n    return: {status: 200}\n  - return: {status: 200}\n",
	    "4:5", "duplicate route name 'route2'");
	BAD("routes:\n  - name: 'a b'\n    return: {status: 200}\n", "2:11", "invalid route name");
	BAD("routes:\n  - 5\n", "2:5", "expected a mapping for route #1, got a scalar");
	/* an alias cycle ends in a type error, not a loop */
	BAD("routes: &r [*r]\n", "1:9", "expected a mapping for route #1, got a sequence");
}

static void test_default(void)
{
	struct weir_conf *c;
	char err[256];

	CHECK(weir_conf_default(NULL, NULL, &c, err, sizeof(err)) == 0);
	if (c != NULL) {
		const struct weir_conf_route *r = &c->routes[0];

		CHECK(strcmp(c->source, "<default>") == 0);
		CHECK(c->nlistens == 1 && strcmp(c->listens[0].text, "127.0.0.1:8080") == 0);
		CHECK(c->admin_set && strcmp(c->admin.text, "127.0.0.1:9090") == 0);
		CHECK(c->nupstreams == 0 && c->nroutes == 1);
		CHECK(r->path_match == WEIR_PATH_ANY && r->host_match == WEIR_HOST_ANY &&
		      r->methods == 0 && r->max_body == 0);
		CHECK(r->is_return && r->upstream == NULL && r->ret.status == 200);
		CHECK(r->ret.nheaders == 1 && strcmp(r->ret.headers[0].name, "Content-Type") == 0 &&
		      strcmp(r->ret.headers[0].value, "text/plain") == 0);
		CHECK(strcmp(r->ret.body, "Welcome to weir. Configure an upstream (-c FILE or "
			     "--upstream HOST:PORT) to proxy traffic.\n") == 0);
		CHECK(r->ret.body_len == strlen(r->ret.body));
		CHECK(c->keepalive_timeout_ms == 75000 && c->max_connections == 10000);
		weir_conf_free(c);
	}
	CHECK(weir_conf_default("[::1]:80", "localhost:9000", &c, err, sizeof(err)) == 0);
	if (c != NULL) {
		const struct weir_conf_route *r = &c->routes[0];

		CHECK(strcmp(c->listens[0].text, "[::1]:80") == 0);
		CHECK(c->nupstreams == 1 && strcmp(c->upstreams[0].name, "default") == 0);
		CHECK(c->upstreams[0].nservers == 1 &&
		      strcmp(c->upstreams[0].servers[0].text, "127.0.0.1:9000") == 0);
		CHECK(c->upstreams[0].keepalive == 128 && c->upstreams[0].connect_timeout_ms == 1000);
		CHECK(c->nroutes == 1 && r->path_match == WEIR_PATH_ANY && !r->is_return &&
		      r->upstream == &c->upstreams[0]);
		weir_conf_free(c);
	}
	CHECK(weir_conf_default("nope", NULL, &c, err, sizeof(err)) == -1 && c == NULL);
	CHECK(strstr(err, "<default>: invalid listen address 'nope'") == err);
	CHECK(weir_conf_default(NULL, "1.2.3.4", &c, err, sizeof(err)) == -1 && c == NULL);
	CHECK(strstr(err, "invalid upstream address '1.2.3.4'") != NULL);
	CHECK(weir_conf_default(NULL, "*:80", &c, err, sizeof(err)) == -1 && c == NULL);
	CHECK(weir_conf_default("127.0.0.1:9090", NULL, &c, err, sizeof(err)) == -1 && c == NULL);
	weir_conf_free(NULL);
}

static void test_file_errors(void)
{
	struct weir_conf *c;
	char err[256], tiny[8];

	CHECK(weir_conf_load_file("/nonexistent/weir.yaml", &c, err, sizeof(err)) == -1);
	CHECK(c == NULL);
	CHECK(strcmp(err, "/nonexistent/weir.yaml: cannot open: No such file or directory") == 0);
	CHECK(weir_conf_load_file("/", &c, err, sizeof(err)) == -1 && c == NULL);
	/* a small buffer truncates, never overflows */
	CHECK(weir_conf_load_string("t.yaml", "x: 1", 4, &c, tiny, sizeof(tiny)) == -1);
	CHECK(strlen(tiny) == sizeof(tiny) - 1);
	CHECK(weir_conf_load_string("t.yaml", "x: 1", 4, &c, NULL, 0) == -1);
}

/* ---- fixture files ------------------------------------------------------ */

static void run_fixture(const char *path)
{
	struct weir_conf *c = NULL;
	char first[512], err[512], prefix[600];
	const char *frag;
	FILE *f = fopen(path, "r");
	int rc;

	if (f == NULL || fgets(first, sizeof(first), f) == NULL) {
		fprintf(stderr, "%s: cannot read\n", path);
		failures++;
		if (f != NULL)
			fclose(f);
		return;
	}
	fclose(f);
	first[strcspn(first, "\n")] = '\0';
	rc = weir_conf_load_file(path, &c, err, sizeof(err));
	if (strncmp(first, "# expect: ", 10) != 0) {
		if (rc != 0) {
			fprintf(stderr, "%s: unexpected error: %s\n", path, err);
			failures++;
		}
		weir_conf_free(c);
		return;
	}
	/* "# expect: L:C: fragment" */
	frag = strstr(first + 10, ": ");
	if (frag == NULL) {
		fprintf(stderr, "%s: bad expect line\n", path);
		failures++;
		weir_conf_free(c);
		return;
	}
	snprintf(prefix, sizeof(prefix), "%s:%.*s: ", path, (int)(frag - (first + 10)), first + 10);
	frag += 2;
	if (rc != -1 || c != NULL) {
		fprintf(stderr, "%s: accepted, expected '%s%s'\n", path, prefix, frag);
		failures++;
		weir_conf_free(c);
		return;
	}
	if (strncmp(err, prefix, strlen(prefix)) != 0 || strstr(err, frag) == NULL) {
		fprintf(stderr, "%s: got '%s', expected '%s...%s'\n", path, err, prefix, frag);
		failures++;
	}
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_fixtures(const char *dir)
{
	char *names[256];
	size_t n = 0;
	struct dirent *de;
	DIR *d = opendir(dir);

	if (d == NULL) {
		fprintf(stderr, "%s: cannot open\n", dir);
		failures++;
		return;
	}
	while ((de = readdir(d)) != NULL && n < WEIR_ARRAY_SIZE(names)) {
		size_t len = strlen(de->d_name);
		char *p;

		if (len < 6 || strcmp(de->d_name + len - 5, ".yaml") != 0)
			continue;
		p = malloc(strlen(dir) + len + 2);
		if (p == NULL)
			break;
		sprintf(p, "%s/%s", dir, de->d_name);
		names[n++] = p;
	}
	closedir(d);
	if (n == 0) {
		fprintf(stderr, "%s: no fixtures\n", dir);
		failures++;
	}
	qsort(names, n, sizeof(names[0]), cmp_names);
	for (size_t i = 0; i < n; i++) {
		run_fixture(names[i]);
		free(names[i]);
	}
}

int main(int argc, char **argv)
{
	test_durations();
	test_sizes();
	test_addresses();
	test_cpulists();
	test_full();
	test_defaults();
	test_bad();
	test_default();
	test_file_errors();
	for (int i = 1; i < argc; i++)
		run_fixtures(argv[i]);
	if (failures != 0) {
		fprintf(stderr, "test-conf: %d failure(s)\n", failures);
		return 1;
	}
	printf("test-conf: ok\n");
	return 0;
}
