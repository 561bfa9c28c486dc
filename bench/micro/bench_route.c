/* Route selection (include/weir/router.h) over configurations built from
 * YAML, as weir loads them. */
#include <stdarg.h>
#include <stdlib.h>

#include "weir/conf.h"
#include "weir/router.h"
#include "wb.h"

struct rt {
	struct weir_conf *conf;
	struct weir_router *router;
};

struct text {
	char *p;
	size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < t->cap - t->len)
			break;
		t->cap = t->cap * 2 + 4096;
		t->p = realloc(t->p, t->cap);
		if (t->p == NULL)
			abort();
	}
	t->len += (size_t)n;
}

static bool load(struct wb *b, struct rt *t, struct text *yaml)
{
	char err[512];

	if (weir_conf_load_string("bench.yaml", yaml->p, yaml->len, &t->conf, err,
				  sizeof(err)) != 0) {
		wb_fail(b, "config: %s", err);
		return false;
	}
	t->router = weir_router_new(t->conf);
	if (t->router == NULL) {
		wb_fail(b, "weir_router_new failed");
		return false;
	}
	free(yaml->p);
	return true;
}

static void match(struct wb *b, const struct rt *t, const char *host, const char *path,
		  const char *expect)
{
	weir_slice_t h = weir_slice(host, strlen(host)), p = weir_slice(path, strlen(path));
	const struct weir_conf_route *r = weir_router_match(t->router, h, p, WEIR_M_GET);

	if ((r == NULL) != (expect == NULL) || (r != NULL && strcmp(r->name, expect) != 0)) {
		wb_fail(b, "%s matched %s, expected %s", path, r != NULL ? r->name : "nothing",
			expect != NULL ? expect : "nothing");
		return;
	}
	wb_reset_timer(b);
	for (uint64_t i = 0; i < b->n; i++) {
		wb_clobber();
		wb_sink((uint64_t)(uintptr_t)weir_router_match(t->router, h, p, WEIR_M_GET));
	}
}

/* 1,000 exact paths (the hash table) and a catch-all. */
static const struct rt *exact_1000(struct wb *b)
{
	static struct rt t;
	struct text y = { 0 };

	if (t.router != NULL)
		return &t;
	add(&y, "routes:\n");
	for (int i = 0; i < 1000; i++)
		add(&y, "  - { name: x%d, path: /api/v1/items/%04d, return: { status: 200 } }\n", i,
		    i);
	add(&y, "  - { name: any, return: { status: 404 } }\n");
	return load(b, &t, &y) ? &t : NULL;
}

/* 1,000 prefixes of the same length (scanned in file order) and a
 * catch-all-free tail, so a miss walks all of them. */
static const struct rt *prefix_1000(struct wb *b)
{
	static struct rt t;
	struct text y = { 0 };

	if (t.router != NULL)
		return &t;
	add(&y, "routes:\n");
	for (int i = 0; i < 1000; i++)
		add(&y, "  - { name: p%d, path_prefix: /svc/%04d/, return: { status: 200 } }\n", i,
		    i);
	return load(b, &t, &y) ? &t : NULL;
}

WB_BENCH(route_exact_1000)
{
	const struct rt *t = exact_1000(b);

	if (t != NULL)
		match(b, t, "shop.example.com", "/api/v1/items/0500?view=full", "x500");
}

/* The last prefix in scan order: the worst hit. */
WB_BENCH(route_prefix_1000_last)
{
	const struct rt *t = prefix_1000(b);

	if (t != NULL)
		match(b, t, "shop.example.com", "/svc/0999/orders/42", "p999");
}

WB_BENCH(route_prefix_1000_miss)
{
	const struct rt *t = prefix_1000(b);

	if (t != NULL)
		match(b, t, "shop.example.com", "/nothing/here", NULL);
}

/* One PCRE2 (JIT) route ahead of a catch-all. */
WB_BENCH(route_regex)
{
	static struct rt t;

	if (t.router == NULL) {
		struct text y = { 0 };

		add(&y, "routes:\n"
			"  - { name: users, path_regex: '^/api/v[0-9]+/users/[0-9]+/orders$',"
			" return: { status: 200 } }\n"
			"  - { name: any, return: { status: 404 } }\n");
		if (!load(b, &t, &y))
			return;
	}
	match(b, &t, "shop.example.com", "/api/v2/users/12345/orders?limit=10", "users");
}
