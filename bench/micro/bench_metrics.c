/* Per-reactor metrics (include/weir/metrics.h): what an update costs on the
 * data path, and what the admin thread pays to read one reactor. */
#include <math.h>

#include "weir/metrics.h"
#include "wb.h"

static struct weir_metrics m;

/* Log-uniform durations from 5 us to 10 s: every bucket gets hits. */
static uint64_t durations[1024];

static void init_durations(void)
{
	if (durations[0] != 0)
		return;
	for (unsigned i = 0; i < 1024; i++)
		durations[i] = (uint64_t)(5000.0 * pow(2e6, (double)((i * 389u) % 1024u) / 1024.0));
}

/* One counter update, as the reactor does it: relaxed load, add, relaxed
 * store (no locked instruction). */
WB_BENCH(metrics_counter_inc)
{
	for (uint64_t i = 0; i < b->n; i++) {
		wb_clobber();
		weir_metrics_inc(&m.d.loops);
	}
	wb_sink(weir_metrics_load(&m.d.loops));
}

/* For comparison: the same counter as an atomic read-modify-write (lock
 * xadd), which weir does not use. */
WB_BENCH(metrics_counter_atomic_rmw)
{
	for (uint64_t i = 0; i < b->n; i++) {
		wb_clobber();
		__atomic_fetch_add(&m.d.cqes, 1, __ATOMIC_RELAXED);
	}
	wb_sink(weir_metrics_load(&m.d.cqes));
}

/* One histogram observation (bucket search + bucket and sum updates), with
 * durations spread over all buckets. */
WB_BENCH(metrics_hist_observe)
{
	struct weir_hist *h = &m.d.route[1].duration;

	init_durations();
	wb_reset_timer(b);
	for (uint64_t i = 0; i < b->n; i++)
		weir_hist_observe(h, durations[i & 1023]);
	wb_sink(weir_metrics_load(&h->sum_ns));
}

/* What a finished request records: weir_metrics_request (route slot map,
 * counter by method and status class, duration histogram). */
WB_BENCH(metrics_request)
{
	init_durations();
	wb_reset_timer(b);
	for (uint64_t i = 0; i < b->n; i++)
		weir_metrics_request(&m, -1, 1 + (unsigned)(i & 3), 200 + (int)(i & 1) * 300,
				     durations[i & 1023]);
	wb_sink(weir_metrics_load(&m.d.route[0].duration.sum_ns));
}

/* The admin side: summing one reactor's metrics (per scrape, per reactor). */
WB_BENCH(metrics_accumulate_reactor)
{
	static struct weir_metrics_data sum;
	static struct weir_metrics_servers srv;

	for (uint64_t i = 0; i < b->n; i++) {
		weir_metrics_accumulate(&sum, &srv, &m);
		wb_clobber();
	}
	wb_set_bytes(b, sizeof(m.d) + sizeof(m.srv));
	wb_sink(sum.loops);
}
