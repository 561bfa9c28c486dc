/* Metrics: the label registry, registration of a config's names, and the scrape-time sum.
 * The update functions are inline in weir/metrics.h. */
#include <errno.h>
#include <pthread.h>

#include "weir/alloc.h"
#include "weir/conf.h"
#include "weir/metrics.h"

const uint64_t weir_hist_bound_ns[WEIR_HIST_BOUNDS] = {
	10000ull,       25000ull,       50000ull,       75000ull,
	100000ull,      250000ull,      500000ull,      750000ull,
	1000000ull,     2500000ull,     5000000ull,     7500000ull,
	10000000ull,    25000000ull,    50000000ull,    75000000ull,
	100000000ull,   250000000ull,   500000000ull,   750000000ull,
	1000000000ull,  2500000000ull,  5000000000ull,  7500000000ull,
	10000000000ull, 25000000000ull, 50000000000ull, 75000000000ull,
	100000000000ull,
};

const char *const weir_hist_bound_text[WEIR_HIST_BOUNDS] = {
	"1e-05", "2.5e-05", "5e-05", "7.5e-05",
	"0.0001", "0.00025", "0.0005", "0.00075",
	"0.001", "0.0025", "0.005", "0.0075",
	"0.01", "0.025", "0.05", "0.075",
	"0.1", "0.25", "0.5", "0.75",
	"1", "2.5", "5", "7.5",
	"10", "25", "50", "75",
	"100",
};

/* For an observation v with its highest set bit b (2^b <= v < 2^(b+1)), the
 * first bound that can hold it: bounds below 2^b are all < v. Bounds grow by
 * at least 4/3, so at most three more comparisons follow (the unit test
 * checks every bit position against a linear search). */
const uint8_t weir_hist_start[64] = {
	0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  1,  2,
	3,  5,  6,  7,  9,  9,  10, 12, 13, 14, 15, 17, 18, 19, 21, 21,
	22, 24, 25, 26, 27, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29,
	29, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29, 29,
};

/* ---- registry ------------------------------------------------------------
 * Append-only: an entry is written completely before `count` is published
 * with a release store, and never changes afterwards, so readers need no
 * lock (acquire load of count, then the entries below it). Writers (bind,
 * new rule ids) serialise on one mutex. Names live until exit. */

struct registry {
	unsigned cap;                   /* slot cap - 1 is "_other" */
	unsigned count;                 /* slots handed out */
	const char **name;
	uint16_t *parent;
	uint32_t *len;
};

#define REG(kind, capacity, first, first_len)                                     \
	static const char *kind##_name[capacity] = { first };                    \
	static uint16_t kind##_parent[capacity];                                 \
	static uint32_t kind##_len[capacity] = { first_len }

REG(route, WEIR_METRICS_ROUTES, "_unmatched", 10);
REG(upstream, WEIR_METRICS_UPSTREAMS, NULL, 0);
REG(server, WEIR_METRICS_SERVERS, NULL, 0);
REG(agent, WEIR_METRICS_AGENTS, NULL, 0);
REG(rule, WEIR_METRICS_RULES, NULL, 0);

static struct registry regs[WEIR_MK__COUNT] = {
	[WEIR_MK_ROUTE] = { WEIR_METRICS_ROUTES, 1, route_name, route_parent, route_len },
	[WEIR_MK_UPSTREAM] = { WEIR_METRICS_UPSTREAMS, 0, upstream_name, upstream_parent,
			       upstream_len },
	[WEIR_MK_SERVER] = { WEIR_METRICS_SERVERS, 0, server_name, server_parent, server_len },
	[WEIR_MK_AGENT] = { WEIR_METRICS_AGENTS, 0, agent_name, agent_parent, agent_len },
	[WEIR_MK_RULE] = { WEIR_METRICS_RULES, 0, rule_name, rule_parent, rule_len },
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned reg_count(const struct registry *g)
{
	return __atomic_load_n(&g->count, __ATOMIC_ACQUIRE);
}

static int reg_scan(const struct registry *g, unsigned n, unsigned parent, const char *name,
		    size_t len)
{
	for (unsigned i = 0; i < n; i++) {
		if (g->parent[i] == parent && g->len[i] == len && g->name[i] != NULL &&
		    memcmp(g->name[i], name, len) == 0)
			return (int)i;
	}
	return -1;
}

/* Under reg_lock. The slot of (parent, name), registering it if new. */
static unsigned reg_get(enum weir_metrics_kind kind, unsigned parent, const char *name,
			size_t len)
{
	struct registry *g = &regs[kind];
	unsigned n = g->count;
	int i = reg_scan(g, n, parent, name, len);
	char *copy;

	if (i >= 0)
		return (unsigned)i;
	/* a name that reads like the overflow row shares it (one series) */
	if (n >= g->cap - 1 || len > UINT32_MAX || (len == 6 && memcmp(name, "_other", 6) == 0))
		return g->cap - 1;
	copy = weir_strndup(name, len);
	if (copy == NULL)
		return g->cap - 1;
	g->name[n] = copy;
	g->parent[n] = (uint16_t)parent;
	g->len[n] = (uint32_t)len;
	__atomic_store_n(&g->count, n + 1, __ATOMIC_RELEASE);
	return n;
}

unsigned weir_metrics_slots(enum weir_metrics_kind kind)
{
	return reg_count(&regs[kind]);
}

const char *weir_metrics_slot_name(enum weir_metrics_kind kind, unsigned slot)
{
	const struct registry *g = &regs[kind];

	if (slot == g->cap - 1)
		return "_other";
	if (slot >= reg_count(g))
		return NULL;
	return g->name[slot];
}

unsigned weir_metrics_slot_parent(enum weir_metrics_kind kind, unsigned slot)
{
	const struct registry *g = &regs[kind];

	return slot < reg_count(g) ? g->parent[slot] : 0;
}

int weir_metrics_slot_find(enum weir_metrics_kind kind, unsigned parent, const char *name)
{
	const struct registry *g = &regs[kind];

	return reg_scan(g, reg_count(g), parent, name, strlen(name));
}

unsigned weir_metrics_slot(enum weir_metrics_kind kind, unsigned parent, const char *name)
{
	int i = weir_metrics_slot_find(kind, parent, name);

	return i >= 0 ? (unsigned)i : regs[kind].cap - 1;
}

/* ---- registration -------------------------------------------------------- */

void weir_metrics_register(const struct weir_conf *conf)
{
	pthread_mutex_lock(&reg_lock);
	for (unsigned i = 0; i < conf->nroutes; i++) {
		const char *name = conf->routes[i].name;

		reg_get(WEIR_MK_ROUTE, 0, name, strlen(name));
	}
	for (unsigned i = 0; i < conf->nupstreams; i++) {
		const struct weir_conf_upstream *u = &conf->upstreams[i];
		unsigned us = reg_get(WEIR_MK_UPSTREAM, 0, u->name, strlen(u->name));

		for (unsigned j = 0; j < u->nservers; j++) {
			const char *a = u->servers[j].text;

			reg_get(WEIR_MK_SERVER, us, a, strlen(a));
		}
	}
	for (unsigned i = 0; i < conf->nagents; i++) {
		const char *name = conf->agents[i].name;

		reg_get(WEIR_MK_AGENT, 0, name, strlen(name));
	}
	pthread_mutex_unlock(&reg_lock);
}

/* ---- agents: rule ids ---------------------------------------------------- */

void weir_metrics_agent_block(struct weir_metrics *m, unsigned aslot, const weir_slice_t *rules,
			      unsigned nrules)
{
	const struct registry *g = &regs[WEIR_MK_RULE];

	weir_metrics_inc(&m->d.agent[aslot].blocks);
	for (unsigned i = 0; i < nrules; i++) {
		int slot = reg_scan(g, reg_count(g), aslot, rules[i].ptr, rules[i].len);

		if (slot < 0) {
			/* a rule id never seen: register it (at most
			 * WEIR_METRICS_RULES times in the life of the process) */
			pthread_mutex_lock(&reg_lock);
			slot = (int)reg_get(WEIR_MK_RULE, aslot, rules[i].ptr, rules[i].len);
			pthread_mutex_unlock(&reg_lock);
		}
		weir_metrics_inc(&m->d.rule_blocks[slot]);
	}
}

/* ---- scrape ------------------------------------------------------------- */

_Static_assert(sizeof(struct weir_metrics_data) % sizeof(uint64_t) == 0,
	       "weir_metrics_data is summed as an array of words");
_Static_assert(sizeof(struct weir_metrics_servers) % sizeof(uint64_t) == 0,
	       "weir_metrics_servers is combined as an array of words");

/* Every member of the two structs is a uint64_t (or an array or struct of
 * them), so they are read as word arrays, in member order: a figure made of
 * two words (open connections = opened - closed, in flight = calls - done)
 * has its subtrahend first in memory, so it is read first, and the minuend,
 * read later, can only be larger. */
void weir_metrics_accumulate(struct weir_metrics_data *dst, struct weir_metrics_servers *dsrv,
			     const struct weir_metrics *src)
{
	const uint64_t *s = (const uint64_t *)(const void *)&src->d;
	uint64_t *d = (uint64_t *)(void *)dst;
	size_t n = sizeof(*dst) / sizeof(uint64_t);

	for (size_t i = 0; i < n; i++)
		d[i] += weir_metrics_load(&s[i]);
	s = (const uint64_t *)(const void *)&src->srv;
	d = (uint64_t *)(void *)dsrv;
	n = sizeof(*dsrv) / sizeof(uint64_t);
	for (size_t i = 0; i < n; i++) {
		uint64_t v = weir_metrics_load(&s[i]);

		if (v > d[i])
			d[i] = v;
	}
}
