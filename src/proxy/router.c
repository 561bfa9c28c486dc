/* weir: route selection (see weir/router.h).
 *
 * Built once per config: the routes are ranked by specificity so that the
 * first match wins. Exact-path routes sit in a hash table keyed by path (each
 * path's routes in rank order); they outrank everything else, so a hit that
 * also passes the host and method checks ends the search. The rest (prefix,
 * regex, catch-all) are scanned in rank order, cheapest checks first, the
 * regex last. Matching allocates nothing except, once per thread (and again
 * only if a later router has a pattern with more groups), the PCRE2 match
 * data.
 */
#include <pthread.h>
#include <stdbool.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "weir/router.h"

/* Bounds the backtracking a hostile path can cause in a regex route. */
#define ROUTER_MATCH_LIMIT 1000000u

struct rentry {
	const char *path;
	const char *host;
	uint32_t path_len;
	uint32_t host_len;
	uint32_t methods;
	uint8_t path_match;
	uint8_t host_match;
	bool jit;
	const pcre2_code *re;
	const struct weir_conf_route *route;
};

struct xslot {
	uint32_t hash;
	uint32_t first;         /* in x[] */
	uint32_t count;         /* 0: empty slot */
};

struct weir_router {
	struct rentry *x;       /* exact-path routes, grouped by path, in rank order */
	struct xslot *xtab;
	uint32_t xmask;         /* xtab size - 1; xtab NULL when no exact route */
	struct rentry *e;       /* the other routes, in rank order */
	unsigned ne;
	pcre2_match_context *mctx;
	uint32_t ovec_pairs;
};

/* ---- per-thread match data ---------------------------------------------- */

static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static bool md_key_ok;
static __thread pcre2_match_data *tls_md;
static __thread uint32_t tls_md_pairs;

static void md_destroy(void *p)
{
	pcre2_match_data_free(p);
	tls_md = NULL;
	tls_md_pairs = 0;
}

static void md_key_init(void)
{
	md_key_ok = pthread_key_create(&md_key, md_destroy) == 0;
}

/* Threads free theirs through the key; the thread that exits the process
 * frees its own here, so that leak checkers see nothing left. */
__attribute__((destructor))
static void md_exit(void)
{
	pcre2_match_data_free(tls_md);
	tls_md = NULL;
	tls_md_pairs = 0;
}

static pcre2_match_data *thread_md(uint32_t pairs)
{
	pcre2_match_data *md;

	if (weir_likely(tls_md_pairs >= pairs))
		return tls_md;
	pthread_once(&md_once, md_key_init);
	md = pcre2_match_data_create(pairs, NULL);
	if (md == NULL)
		return NULL;
	pcre2_match_data_free(tls_md);
	tls_md = md;
	tls_md_pairs = pairs;
	/* The key frees it when the thread exits. */
	if (md_key_ok)
		pthread_setspecific(md_key, md);
	return md;
}

/* ---- build -------------------------------------------------------------- */

static uint32_t hash_path(const char *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 16777619u;
	return h;
}

/* Higher ranks first: path kind (prefix by length), host kind (suffix by
 * length), method list, then file order. */
static int path_rank(const struct weir_conf_route *r)
{
	switch (r->path_match) {
	case WEIR_PATH_EXACT:
		return 3;
	case WEIR_PATH_PREFIX:
		return 2;
	case WEIR_PATH_REGEX:
		return 1;
	default:
		return 0;
	}
}

static int host_rank(const struct weir_conf_route *r)
{
	switch (r->host_match) {
	case WEIR_HOST_EXACT:
		return 2;
	case WEIR_HOST_SUFFIX:
		return 1;
	default:
		return 0;
	}
}

static int cmp_rank(const struct weir_conf_route *a, const struct weir_conf_route *b)
{
	if (path_rank(a) != path_rank(b))
		return path_rank(b) - path_rank(a);
	if (a->path_match == WEIR_PATH_PREFIX && a->path_len != b->path_len)
		return a->path_len > b->path_len ? -1 : 1;
	if (host_rank(a) != host_rank(b))
		return host_rank(b) - host_rank(a);
	if (a->host_match == WEIR_HOST_SUFFIX && a->host_len != b->host_len)
		return a->host_len > b->host_len ? -1 : 1;
	if ((a->methods != 0) != (b->methods != 0))
		return a->methods != 0 ? -1 : 1;
	return a->index < b->index ? -1 : a->index > b->index ? 1 : 0;
}

/* Exact routes: grouped by path first, then in rank order within a group. */
static int cmp_entries(const void *pa, const void *pb)
{
	const struct weir_conf_route *a = ((const struct rentry *)pa)->route;
	const struct weir_conf_route *b = ((const struct rentry *)pb)->route;

	if (a->path_match == WEIR_PATH_EXACT && b->path_match == WEIR_PATH_EXACT) {
		int c;

		if (a->path_len != b->path_len)
			return a->path_len < b->path_len ? -1 : 1;
		c = memcmp(a->path, b->path, a->path_len);
		if (c != 0)
			return c;
	}
	return cmp_rank(a, b);
}

static void fill_entry(struct rentry *e, const struct weir_conf_route *r)
{
	e->path = r->path;
	e->path_len = (uint32_t)r->path_len;
	e->host = r->host;
	e->host_len = (uint32_t)r->host_len;
	e->methods = r->methods;
	e->path_match = (uint8_t)r->path_match;
	e->host_match = (uint8_t)r->host_match;
	e->re = NULL;
	e->jit = false;
	e->route = r;
	if (r->path_match == WEIR_PATH_REGEX) {
		size_t jit_size = 0;

		e->re = r->regex;
		e->jit = pcre2_pattern_info(e->re, PCRE2_INFO_JITSIZE, &jit_size) == 0 &&
			 jit_size != 0;
	}
}

static int build_exact(struct weir_router *r, unsigned nx)
{
	uint32_t size = 8;
	unsigned i = 0;

	while (size < 2 * nx)
		size <<= 1;
	r->xtab = calloc(size, sizeof(*r->xtab));
	if (r->xtab == NULL)
		return -1;
	r->xmask = size - 1;
	qsort(r->x, nx, sizeof(*r->x), cmp_entries);
	while (i < nx) {
		const struct rentry *g = &r->x[i];
		uint32_t h = hash_path(g->path, g->path_len), s = h & r->xmask;
		unsigned j = i + 1;

		while (j < nx && r->x[j].path_len == g->path_len &&
		       memcmp(r->x[j].path, g->path, g->path_len) == 0)
			j++;
		while (r->xtab[s].count != 0)
			s = (s + 1) & r->xmask;
		r->xtab[s].hash = h;
		r->xtab[s].first = i;
		r->xtab[s].count = j - i;
		i = j;
	}
	return 0;
}

struct weir_router *weir_router_new(const struct weir_conf *conf)
{
	struct weir_router *r = calloc(1, sizeof(*r));
	unsigned nx = 0, ne = 0;

	if (r == NULL)
		return NULL;
	for (unsigned i = 0; i < conf->nroutes; i++) {
		if (conf->routes[i].path_match == WEIR_PATH_EXACT)
			nx++;
		else
			ne++;
	}
	r->x = calloc(nx ? nx : 1, sizeof(*r->x));
	r->e = calloc(ne ? ne : 1, sizeof(*r->e));
	r->mctx = pcre2_match_context_create(NULL);
	if (r->x == NULL || r->e == NULL || r->mctx == NULL)
		goto fail;
	pcre2_set_match_limit(r->mctx, ROUTER_MATCH_LIMIT);
	r->ovec_pairs = 1;
	nx = 0;
	for (unsigned i = 0; i < conf->nroutes; i++) {
		const struct weir_conf_route *route = &conf->routes[i];

		if (route->path_match == WEIR_PATH_EXACT) {
			fill_entry(&r->x[nx++], route);
			continue;
		}
		fill_entry(&r->e[r->ne], route);
		if (route->path_match == WEIR_PATH_REGEX) {
			uint32_t groups = 0;

			if (pcre2_pattern_info(r->e[r->ne].re, PCRE2_INFO_CAPTURECOUNT, &groups) == 0 &&
			    groups + 1 > r->ovec_pairs)
				r->ovec_pairs = groups + 1;
		}
		r->ne++;
	}
	qsort(r->e, r->ne, sizeof(*r->e), cmp_entries);
	if (nx != 0 && build_exact(r, nx) != 0)
		goto fail;
	return r;
fail:
	weir_router_free(r);
	return NULL;
}

void weir_router_free(struct weir_router *r)
{
	if (r == NULL)
		return;
	free(r->x);
	free(r->xtab);
	free(r->e);
	pcre2_match_context_free(r->mctx);
	free(r);
}

/* ---- match -------------------------------------------------------------- */

/* host[:port] or [v6][:port], without the port and a trailing dot. */
static weir_slice_t host_name(weir_slice_t h)
{
	size_t n = h.len;
	const char *end;

	if (n == 0)
		return h;
	if (h.ptr[0] == '[') {
		end = memchr(h.ptr, ']', n);
		if (end != NULL)
			n = (size_t)(end - h.ptr) + 1;
	} else {
		end = memchr(h.ptr, ':', n);
		if (end != NULL)
			n = (size_t)(end - h.ptr);
	}
	if (n > 1 && h.ptr[n - 1] == '.')
		n--;
	return weir_slice(h.ptr, n);
}

/* s compared with an already lower-case pattern. */
static inline bool lower_eq(const char *s, const char *lower, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((unsigned)(ch - 'A') < 26u)
			ch |= 0x20;
		if (ch != (unsigned char)lower[i])
			return false;
	}
	return true;
}

static inline bool host_ok(const struct rentry *e, weir_slice_t h)
{
	switch (e->host_match) {
	case WEIR_HOST_EXACT:
		return h.len == e->host_len && lower_eq(h.ptr, e->host, h.len);
	case WEIR_HOST_SUFFIX:
		/* ".example.com" needs at least one more byte: a name under it. */
		return h.len > e->host_len &&
		       lower_eq(h.ptr + h.len - e->host_len, e->host, e->host_len);
	default:
		return true;
	}
}

static bool regex_ok(const struct weir_router *r, const struct rentry *e, const char *p,
		     size_t n)
{
	pcre2_match_data *md = thread_md(r->ovec_pairs);
	int rc;

	if (weir_unlikely(md == NULL))
		return false;
	if (e->jit)
		rc = pcre2_jit_match(e->re, (PCRE2_SPTR)p, n, 0, 0, md, r->mctx);
	else
		rc = pcre2_match(e->re, (PCRE2_SPTR)p, n, 0, 0, md, r->mctx);
	/* 0: matched, ovector too small; errors (match limit): no match. */
	return rc >= 0;
}

const struct weir_conf_route *weir_router_match(const struct weir_router *r, weir_slice_t host,
						weir_slice_t path, enum weir_h1_method method)
{
	uint32_t mbit = (unsigned)method < 32 ? 1u << method : 0;
	const char *p = path.ptr != NULL ? path.ptr : "";
	size_t n = path.len;
	const char *q;

	if (n != 0 && (q = memchr(p, '?', n)) != NULL)
		n = (size_t)(q - p);
	host = host_name(host);

	if (r->xtab != NULL) {
		uint32_t h = hash_path(p, n), s = h & r->xmask;

		for (; r->xtab[s].count != 0; s = (s + 1) & r->xmask) {
			const struct xslot *slot = &r->xtab[s];
			const struct rentry *g = &r->x[slot->first];

			if (slot->hash != h || g->path_len != n || memcmp(g->path, p, n) != 0)
				continue;
			for (uint32_t i = 0; i < slot->count; i++, g++) {
				if (g->methods != 0 && (g->methods & mbit) == 0)
					continue;
				if (host_ok(g, host))
					return g->route;
			}
			break;
		}
	}
	for (unsigned i = 0; i < r->ne; i++) {
		const struct rentry *e = &r->e[i];

		if (e->methods != 0 && (e->methods & mbit) == 0)
			continue;
		if (!host_ok(e, host))
			continue;
		if (e->path_match == WEIR_PATH_PREFIX) {
			if (n < e->path_len || memcmp(p, e->path, e->path_len) != 0)
				continue;
		} else if (e->path_match == WEIR_PATH_REGEX) {
			if (!regex_ok(r, e, p, n))
				continue;
		}
		return e->route;
	}
	return NULL;
}
