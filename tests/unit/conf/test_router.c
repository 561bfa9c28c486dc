/* Unit tests for src/proxy/router.c: the specificity rule of weir/router.h,
 * host and path normalisation, the exact-path table, regex routes from
 * several threads. */
#include <pthread.h>
#include <stdbool.h>

#include "weir/conf.h"
#include "weir/router.h"

static int failures;

#define CHECK(cond)                                                                    \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                \
			failures++;                                                    \
		}                                                                      \
	} while (0)

struct rt {
	struct weir_conf *conf;
	struct weir_router *router;
};

static bool rt_load(struct rt *t, const char *yaml)
{
	char err[512];

	t->router = NULL;
	if (weir_conf_load_string("r.yaml", yaml, strlen(yaml), &t->conf, err, sizeof(err)) != 0) {
		fprintf(stderr, "config error: %s\n", err);
		failures++;
		return false;
	}
	t->router = weir_router_new(t->conf);
	if (t->router == NULL) {
		fprintf(stderr, "weir_router_new failed\n");
		failures++;
		weir_conf_free(t->conf);
		return false;
	}
	return true;
}

static void rt_free(struct rt *t)
{
	weir_router_free(t->router);
	weir_conf_free(t->conf);
}

/* Name of the matching route, or "-" for none. */
static const char *m(const struct rt *t, const char *host, const char *path,
		     enum weir_h1_method method)
{
	const struct weir_conf_route *r;

	r = weir_router_match(t->router, host != NULL ? weir_slice(host, strlen(host)) : WEIR_SLICE_NULL,
			      weir_slice(path, strlen(path)), method);
	return r != NULL ? r->name : "-";
}

static void expect_at(int line, const struct rt *t, const char *host, const char *path,
		      enum weir_h1_method method, const char *want)
{
	const char *got = m(t, host, path, method);

	if (strcmp(got, want) != 0) {
		fprintf(stderr, "%s:%d: host '%s' path '%s' method %d: got '%s', want '%s'\n",
			__FILE__, line, host != NULL ? host : "(null)", path, (int)method, got, want);
		failures++;
	}
}
#define EXPECT(t, host, path, method, want) expect_at(__LINE__, (t), (host), (path), (method), (want))

static void test_paths(void)
{
	struct rt t;

	if (!rt_load(&t, "routes:\n"
			 "  - { name: any, return: { status: 200 } }\n"
			 "  - { name: re, path_regex: '^/api/v[0-9]+/', return: { status: 200 } }\n"
			 "  - { name: re2, path_regex: 'users', return: { status: 200 } }\n"
			 "  - { name: api, path_prefix: /api/, return: { status: 200 } }\n"
			 "  - { name: apiv1, path_prefix: /api/v1/, return: { status: 200 } }\n"
			 "  - { name: exact, path: /api/v1/status, return: { status: 200 } }\n"
			 "  - { name: root, path: /, return: { status: 200 } }\n"))
		return;
	EXPECT(&t, "h", "/api/v1/status", WEIR_M_GET, "exact");
	EXPECT(&t, "h", "/api/v1/status?x=1", WEIR_M_GET, "exact");
	EXPECT(&t, "h", "/api/v1/statuses", WEIR_M_GET, "apiv1");
	EXPECT(&t, "h", "/api/v1/", WEIR_M_GET, "apiv1");
	EXPECT(&t, "h", "/api/v1", WEIR_M_GET, "api");     /* not under /api/v1/ */
	EXPECT(&t, "h", "/api/v2/users", WEIR_M_GET, "api"); /* prefix beats regex */
	EXPECT(&t, "h", "/v2/users", WEIR_M_GET, "re2");
	EXPECT(&t, "h", "/x?users", WEIR_M_GET, "any");    /* the query is not matched */
	EXPECT(&t, "h", "/", WEIR_M_GET, "root");
	EXPECT(&t, "h", "/?a=b", WEIR_M_GET, "root");
	EXPECT(&t, "h", "?", WEIR_M_GET, "any");
	EXPECT(&t, "h", "", WEIR_M_GET, "any");
	EXPECT(&t, "h", "*", WEIR_M_OPTIONS, "any");
	EXPECT(&t, "h", "/API/v1/status", WEIR_M_GET, "any"); /* paths are case-sensitive */
	rt_free(&t);

	/* regex beats catch-all, path_prefix: / is a catch-all */
	if (!rt_load(&t, "routes:\n"
			 "  - { name: slash, path_prefix: /, return: { status: 200 } }\n"
			 "  - { name: re, path_regex: '^/img/.*\\.png$', return: { status: 200 } }\n"
			 "  - { name: two, path_regex: '^/two', return: { status: 200 } }\n"))
		return;
	EXPECT(&t, "h", "/img/a.png", WEIR_M_GET, "re");
	EXPECT(&t, "h", "/img/a.png?v=2", WEIR_M_GET, "re");
	EXPECT(&t, "h", "/img/a.jpg", WEIR_M_GET, "slash");
	EXPECT(&t, "h", "/two/x", WEIR_M_GET, "two");
	EXPECT(&t, "h", "/", WEIR_M_GET, "slash");
	rt_free(&t);

	/* no catch-all: no match */
	if (!rt_load(&t, "routes:\n"
			 "  - { name: a, path: /a, return: { status: 200 } }\n"
			 "  - { name: b, path_prefix: /b/, return: { status: 200 } }\n"))
		return;
	EXPECT(&t, "h", "/a", WEIR_M_GET, "a");
	EXPECT(&t, "h", "/a/", WEIR_M_GET, "-");
	EXPECT(&t, "h", "/b", WEIR_M_GET, "-");
	EXPECT(&t, "h", "/c", WEIR_M_GET, "-");
	rt_free(&t);

	/* no route at all */
	if (!rt_load(&t, ""))
		return;
	EXPECT(&t, "h", "/", WEIR_M_GET, "-");
	rt_free(&t);
}

static void test_hosts(void)
{
	struct rt t;

	if (!rt_load(&t, "routes:\n"
			 "  - { name: any, path: /, return: { status: 200 } }\n"
			 "  - { name: sfx, host: '*.com', path: /, return: { status: 200 } }\n"
			 "  - { name: sfx2, host: '*.example.com', path: /, return: { status: 200 } }\n"
			 "  - { name: exact, host: www.Example.com, path: /, return: { status: 200 } }\n"
			 "  - { name: v6, host: '[::1]', path: /, return: { status: 200 } }\n"
			 "  - { name: ip, host: 10.0.0.1, path: /, return: { status: 200 } }\n"
			 "  - { name: other, host: other.org, return: { status: 200 } }\n"))
		return;
	EXPECT(&t, "www.example.com", "/", WEIR_M_GET, "exact");
	EXPECT(&t, "WWW.EXAMPLE.COM", "/", WEIR_M_GET, "exact");
	EXPECT(&t, "www.example.com:8080", "/", WEIR_M_GET, "exact");
	EXPECT(&t, "www.example.com.", "/", WEIR_M_GET, "exact");
	EXPECT(&t, "www.example.com.:80", "/", WEIR_M_GET, "exact");
	EXPECT(&t, "api.example.com", "/", WEIR_M_GET, "sfx2");
	EXPECT(&t, "a.b.Example.COM:1", "/", WEIR_M_GET, "sfx2");
	EXPECT(&t, "example.com", "/", WEIR_M_GET, "sfx"); /* not under *.example.com */
	EXPECT(&t, "com", "/", WEIR_M_GET, "any");
	EXPECT(&t, ".com", "/", WEIR_M_GET, "any");
	EXPECT(&t, "xexample.com.org", "/", WEIR_M_GET, "any");
	EXPECT(&t, "[::1]:8080", "/", WEIR_M_GET, "v6");
	EXPECT(&t, "[::1]", "/", WEIR_M_GET, "v6");
	EXPECT(&t, "10.0.0.1:80", "/", WEIR_M_GET, "ip");
	EXPECT(&t, "10.0.0.10", "/", WEIR_M_GET, "any");
	EXPECT(&t, "", "/", WEIR_M_GET, "any");
	EXPECT(&t, NULL, "/", WEIR_M_GET, "any");
	EXPECT(&t, ":80", "/", WEIR_M_GET, "any");
	/* path ranks before host: the exact path "/" beats the host-only route */
	EXPECT(&t, "other.org", "/", WEIR_M_GET, "any");
	EXPECT(&t, "other.org", "/x", WEIR_M_GET, "other");
	EXPECT(&t, "www.example.com", "/x", WEIR_M_GET, "-");
	rt_free(&t);

	/* longer suffix wins regardless of order */
	if (!rt_load(&t, "routes:\n"
			 "  - { name: long, host: '*.a.example.com', return: { status: 200 } }\n"
			 "  - { name: short, host: '*.example.com', return: { status: 200 } }\n"))
		return;
	EXPECT(&t, "x.a.example.com", "/", WEIR_M_GET, "long");
	EXPECT(&t, "x.b.example.com", "/", WEIR_M_GET, "short");
	EXPECT(&t, "a.example.com", "/", WEIR_M_GET, "short");
	rt_free(&t);
}

static void test_methods(void)
{
	struct rt t;

	if (!rt_load(&t, "routes:\n"
			 "  - { name: any1, path: /m, return: { status: 200 } }\n"
			 "  - { name: any2, path: /m, return: { status: 200 } }\n"
			 "  - { name: get, path: /m, methods: [GET, HEAD], return: { status: 200 } }\n"
			 "  - { name: post, path: /m, methods: [POST], return: { status: 200 } }\n"
			 "  - { name: post2, path: /m, methods: [POST, PUT], return: { status: 200 } }\n"
			 "  - { name: pget, path_prefix: /p, methods: [GET], return: { status: 200 } }\n"
			 "  - { name: pdel, path_prefix: /p, methods: [DELETE], return: { status: 200 } }\n"
			 "  - { name: only, path: /only, methods: [PATCH], return: { status: 200 } }\n"))
		return;
	EXPECT(&t, "h", "/m", WEIR_M_GET, "get");
	EXPECT(&t, "h", "/m", WEIR_M_HEAD, "get");
	EXPECT(&t, "h", "/m", WEIR_M_POST, "post"); /* first of two equal ones */
	EXPECT(&t, "h", "/m", WEIR_M_PUT, "post2");
	EXPECT(&t, "h", "/m", WEIR_M_DELETE, "any1"); /* first of two equal ones */
	EXPECT(&t, "h", "/m", WEIR_M_OTHER, "any1");
	EXPECT(&t, "h", "/p/x", WEIR_M_GET, "pget");
	EXPECT(&t, "h", "/p/x", WEIR_M_DELETE, "pdel");
	EXPECT(&t, "h", "/p/x", WEIR_M_POST, "-");
	EXPECT(&t, "h", "/only", WEIR_M_PATCH, "only");
	EXPECT(&t, "h", "/only", WEIR_M_GET, "-");
	EXPECT(&t, "h", "/only", WEIR_M_OTHER, "-");
	EXPECT(&t, "h", "/only", WEIR_M_CONNECT, "-");
	rt_free(&t);

	/* host ranks before methods; methods before file order */
	if (!rt_load(&t, "routes:\n"
			 "  - { name: m, methods: [GET], return: { status: 200 } }\n"
			 "  - { name: h, host: a.test, return: { status: 200 } }\n"
			 "  - { name: hm, host: a.test, methods: [GET], return: { status: 200 } }\n"))
		return;
	EXPECT(&t, "a.test", "/", WEIR_M_GET, "hm");
	EXPECT(&t, "a.test", "/", WEIR_M_POST, "h");
	EXPECT(&t, "b.test", "/", WEIR_M_GET, "m");
	EXPECT(&t, "b.test", "/", WEIR_M_POST, "-");
	rt_free(&t);
}

/* Many exact paths: the hash table, with collisions and shared prefixes. */
static void test_many(void)
{
	size_t cap = 1 << 20, len = 0;
	char *yaml = malloc(cap);
	struct rt t;

	if (yaml == NULL)
		return;
	len += (size_t)snprintf(yaml + len, cap - len, "routes:\n");
	for (int i = 0; i < 2000; i++)
		len += (size_t)snprintf(yaml + len, cap - len,
					"  - { name: r%d, path: /p/%d, return: { status: 200 } }\n", i, i);
	len += (size_t)snprintf(yaml + len, cap - len,
				"  - { name: h, host: x.test, path: /p/7, return: { status: 200 } }\n"
				"  - { name: pre, path_prefix: /p/, return: { status: 200 } }\n");
	if (!rt_load(&t, yaml)) {
		free(yaml);
		return;
	}
	free(yaml);
	for (int i = 0; i < 2000; i++) {
		char path[32], want[32];

		snprintf(path, sizeof(path), "/p/%d?q", i);
		snprintf(want, sizeof(want), "r%d", i);
		EXPECT(&t, "h", path, WEIR_M_GET, want);
	}
	EXPECT(&t, "x.test", "/p/7", WEIR_M_GET, "h");
	EXPECT(&t, "y.test", "/p/7", WEIR_M_GET, "r7");
	EXPECT(&t, "h", "/p/2000", WEIR_M_GET, "pre");
	EXPECT(&t, "h", "/p/", WEIR_M_GET, "pre");
	EXPECT(&t, "h", "/q", WEIR_M_GET, "-");
	rt_free(&t);
}

static void test_default_conf(void)
{
	struct weir_conf *c;
	struct weir_router *r;
	const struct weir_conf_route *route;
	char err[256];

	CHECK(weir_conf_default(NULL, NULL, &c, err, sizeof(err)) == 0);
	r = weir_router_new(c);
	CHECK(r != NULL);
	route = weir_router_match(r, WEIR_SLICE("example.com"), WEIR_SLICE("/anything?x"),
				  WEIR_M_POST);
	CHECK(route == &c->routes[0] && route->is_return && route->ret.status == 200);
	route = weir_router_match(r, WEIR_SLICE_NULL, WEIR_SLICE_NULL, WEIR_M_OTHER);
	CHECK(route == &c->routes[0]);
	weir_router_free(r);
	weir_conf_free(c);

	CHECK(weir_conf_default(NULL, "127.0.0.1:9000", &c, err, sizeof(err)) == 0);
	r = weir_router_new(c);
	route = weir_router_match(r, WEIR_SLICE("h"), WEIR_SLICE("/"), WEIR_M_GET);
	CHECK(route != NULL && route->upstream == &c->upstreams[0]);
	weir_router_free(r);
	weir_conf_free(c);
	weir_router_free(NULL);
}

/* Regexes with groups, a pathological pattern, and several threads. */
static struct rt re_rt;

static void *re_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 2000; i++) {
		if (strcmp(m(&re_rt, "h", "/u/42/posts/7", WEIR_M_GET), "groups") != 0 ||
		    strcmp(m(&re_rt, "h", "/u/x/posts/7", WEIR_M_GET), "any") != 0)
			return (void *)1;
	}
	return NULL;
}

static void test_regex_threads(void)
{
	pthread_t th[4];
	char evil[64];

	if (!rt_load(&re_rt,
		     "routes:\n"
		     "  - { name: any, return: { status: 200 } }\n"
		     "  - { name: groups, path_regex: '^/u/([0-9]+)/(posts|likes)/([0-9]+)$',"
		     " return: { status: 200 } }\n"
		     "  - { name: evil, path_regex: '^/e/(a+)+$', return: { status: 200 } }\n"))
		return;
	for (size_t i = 0; i < WEIR_ARRAY_SIZE(th); i++)
		CHECK(pthread_create(&th[i], NULL, re_thread, NULL) == 0);
	CHECK(re_thread(NULL) == NULL);
	for (size_t i = 0; i < WEIR_ARRAY_SIZE(th); i++) {
		void *ret = (void *)1;

		pthread_join(th[i], &ret);
		CHECK(ret == NULL);
	}
	/* Catastrophic backtracking stops at the match limit: no match. */
	snprintf(evil, sizeof(evil), "/e/%s", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!");
	EXPECT(&re_rt, "h", evil, WEIR_M_GET, "any");
	EXPECT(&re_rt, "h", "/e/aaaa", WEIR_M_GET, "evil");
	rt_free(&re_rt);
}

int main(void)
{
	test_paths();
	test_hosts();
	test_methods();
	test_many();
	test_default_conf();
	test_regex_threads();
	if (failures != 0) {
		fprintf(stderr, "test-router: %d failure(s)\n", failures);
		return 1;
	}
	printf("test-router: ok\n");
	return 0;
}
