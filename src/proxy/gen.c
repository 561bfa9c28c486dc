/* Configuration generations on a reactor (hot reload): the reactor's view of
 * a config (upstream states, agent runtimes, metrics slots), the swap at the
 * safe point, and the release of old generations once their last exchange
 * ended. The contract is in weir/proxy.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#include "weir/alloc.h"
#include "weir/proxy.h"
#include "weir/router.h"

void weir_gen_put(struct weir_gen *g)
{
	if (g == NULL || __atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	weir_router_free(g->router);
	weir_conf_free(g->conf);
	free(g);
}

/* ---- upstream states ---------------------------------------------------- */

/* A reload keeps an upstream's state (pools, round robin) when it names the
 * same servers in the same order: pools are per server index. */
static bool ups_keeps(const struct weir_conf_upstream *a, const struct weir_conf_upstream *b)
{
	if (strcmp(a->name, b->name) != 0 || a->nservers != b->nservers)
		return false;
	for (unsigned j = 0; j < a->nservers; j++)
		if (!weir_addr_eq(&a->servers[j], &b->servers[j]))
			return false;
	return true;
}

static void ups_free(struct weir_upstream_state *st)
{
	weir_free(st->servers);
	weir_free(st->srv_mslot);
	weir_free(st);
}

static struct weir_upstream_state *ups_new(struct weir_reactor *r,
					   const struct weir_conf_upstream *cu)
{
	struct weir_upstream_state *st = weir_calloc(1, sizeof(*st));

	if (st == NULL)
		return NULL;
	st->servers = weir_calloc(cu->nservers, sizeof(*st->servers));
	st->srv_mslot = weir_calloc(cu->nservers, sizeof(*st->srv_mslot));
	if (st->servers == NULL || st->srv_mslot == NULL) {
		ups_free(st);
		return NULL;
	}
	st->conf = cu;
	st->rr = r->id;         /* spread reactors over the servers from the start */
	st->mslot = (uint16_t)weir_metrics_slot(WEIR_MK_UPSTREAM, 0, cu->name);
	for (unsigned j = 0; j < cu->nservers; j++)
		st->srv_mslot[j] = (uint16_t)weir_metrics_slot(WEIR_MK_SERVER, st->mslot,
							       cu->servers[j].text);
	return st;
}

void weir__upstream_state_put(struct weir_upstream_state *st)
{
	if (st->gens == 0 && st->conns == 0)
		ups_free(st);
}

static void ups_unuse(struct weir_upstream_state *st)
{
	if (--st->gens != 0)
		return;
	/* retired: idle keep-alive connections go now; active ones close when
	 * their exchange ends (up_finish does not pool them) */
	weir__upstream_close_idle(st);
	weir__upstream_state_put(st);
}

/* ---- reactor generations ------------------------------------------------ */

/* Also frees a half-built rgen (arrays or entries still NULL; g NULL when
 * the caller keeps its reference). */
static void rgen_free(struct weir_reactor *r, struct weir_rgen *rg)
{
	const struct weir_conf *conf = rg->conf;

	for (unsigned i = 0; rg->ups != NULL && i < conf->nupstreams; i++)
		if (rg->ups[i] != NULL)
			ups_unuse(rg->ups[i]);
	for (unsigned i = 0; rg->agents != NULL && i < conf->nagents; i++)
		if (rg->agents[i] != NULL && --rg->agents[i]->gens == 0)
			weir__agent_rt_retire(rg->agents[i]);
	weir_free(rg->ups);
	weir_free(rg->agents);
	weir_free(rg->route_mslot);
	weir_gen_put(rg->g);
	weir_free(rg);
}

/* prev: the current generation, whose states and runtimes are kept where
 * the new config defines them alike. Nothing of prev changes unless this
 * returns non-NULL. Takes over a reference to g on success. */
static struct weir_rgen *rgen_new(struct weir_reactor *r, struct weir_gen *g,
				  const struct weir_rgen *prev)
{
	const struct weir_conf *conf = g->conf;
	struct weir_rgen *rg = weir_calloc(1, sizeof(*rg));

	if (rg == NULL)
		return NULL;
	rg->g = g;
	rg->conf = conf;
	rg->ups = weir_calloc(conf->nupstreams + 1, sizeof(*rg->ups));
	rg->agents = weir_calloc(conf->nagents + 1, sizeof(*rg->agents));
	rg->route_mslot = weir_calloc(conf->nroutes + 1, sizeof(*rg->route_mslot));
	if (rg->ups == NULL || rg->agents == NULL || rg->route_mslot == NULL)
		goto fail;
	for (unsigned i = 0; i < conf->nroutes; i++)
		rg->route_mslot[i] = (uint16_t)weir_metrics_slot(WEIR_MK_ROUTE, 0,
								 conf->routes[i].name);
	for (unsigned i = 0; i < conf->nupstreams; i++) {
		const struct weir_conf_upstream *cu = &conf->upstreams[i];
		struct weir_upstream_state *st = NULL;

		for (unsigned k = 0; prev != NULL && k < prev->conf->nupstreams && st == NULL; k++)
			if (ups_keeps(prev->ups[k]->conf, cu))
				st = prev->ups[k];
		if (st == NULL && (st = ups_new(r, cu)) == NULL)
			goto fail;
		st->gens++;
		rg->ups[i] = st;
	}
	for (unsigned i = 0; i < conf->nagents; i++) {
		const struct weir_conf_agent *ca = &conf->agents[i];
		struct weir_agent_rt *rt = NULL;

		for (unsigned k = 0; prev != NULL && k < prev->conf->nagents && rt == NULL; k++)
			if (weir__agent_rt_keeps(prev->agents[k]->conf, ca))
				rt = prev->agents[k];
		if (rt == NULL && (rt = weir__agent_rt_new(r, ca)) == NULL)
			goto fail;
		rt->gens++;
		rg->agents[i] = rt;
	}
	/* commit: kept states and runtimes follow the newest definition
	 * (timeouts, keepalive, failure mode...) */
	for (unsigned i = 0; i < conf->nupstreams; i++)
		rg->ups[i]->conf = &conf->upstreams[i];
	for (unsigned i = 0; i < conf->nagents; i++)
		rg->agents[i]->conf = &conf->agents[i];
	return rg;

fail:
	rg->g = NULL;           /* the caller keeps its reference on failure */
	rgen_free(r, rg);
	return NULL;
}

/* Retired generations go oldest first, and only once every older one went:
 * a state or runtime kept across reloads points at the newest config that
 * defines it, which must outlive the older exchanges that still use it. */
static void drain_retired(struct weir_reactor *r)
{
	while (r->retired != NULL && r->retired->users == 0) {
		struct weir_rgen *rg = r->retired;

		r->retired = rg->next;
		rgen_free(r, rg);
	}
}

void weir__rgen_put(struct weir_reactor *r, struct weir_rgen *rg)
{
	WEIR_BUG_ON(rg->users == 0);
	if (--rg->users == 0 && rg != r->cur)
		drain_retired(r);
}

int weir__rgen_start(struct weir_reactor *r, struct weir_gen *g)
{
	struct weir_rgen *rg = rgen_new(r, g, NULL);

	if (rg == NULL)
		return -ENOMEM;
	r->cur = rg;
	r->conf = rg->conf;
	return 0;
}

void weir__rgen_fini(struct weir_reactor *r)
{
	struct weir_rgen *rg;

	/* no exchange is left: release everything, oldest first */
	while ((rg = r->retired) != NULL) {
		r->retired = rg->next;
		rgen_free(r, rg);
	}
	if (r->cur != NULL)
		rgen_free(r, r->cur);
	r->cur = NULL;
}

int weir__rgen_swap(struct weir_reactor *r, struct weir_gen *g)
{
	struct weir_rgen *rg, *old = r->cur, **pp;

	rg = rgen_new(r, g, old);
	if (rg == NULL) {
		fprintf(stderr, "weir: reactor %u: reload: out of memory, staying on "
				"configuration %" PRIu64 "\n", r->id, old->g->id);
		weir_gen_put(g);
		return -ENOMEM;
	}
	r->cur = rg;
	r->conf = rg->conf;
	old->next = NULL;
	for (pp = &r->retired; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = old;
	drain_retired(r);
	return 0;
}
