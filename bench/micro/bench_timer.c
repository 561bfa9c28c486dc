/* The per-reactor timer wheel (include/weir/timer.h). Time is simulated:
 * the benchmarks pass their own "now", so nothing waits. */
#include <stdlib.h>

#include "weir/common.h"
#include "weir/timer.h"
#include "wb.h"

static uint64_t fired;

static void on_fire(struct weir_timer *t)
{
	(void)t;
	fired++;
}

/* Arm then cancel one timer among 10,000 armed ones (a connection that
 * finishes before its timeout: the common case). */
WB_BENCH(timer_arm_cancel)
{
	static struct weir_wheel w;
	static struct weir_timer bg[10000];
	struct weir_timer t;

	weir_wheel_init(&w, 1000000);
	for (unsigned i = 0; i < (unsigned)WEIR_ARRAY_SIZE(bg); i++) {
		weir_timer_init(&bg[i], on_fire);
		weir_timer_arm(&w, &bg[i], 1000000 + 1000 + i % 60000);
	}
	weir_timer_init(&t, on_fire);
	wb_reset_timer(b);
	for (uint64_t i = 0; i < b->n; i++) {
		weir_timer_arm(&w, &t, 1000000 + 5000 + (i & 1023));
		weir_timer_cancel(&w, &t);
	}
}

/* Push an armed timer's deadline later (every read on a connection does). */
WB_BENCH(timer_rearm_later)
{
	static struct weir_wheel w;
	struct weir_timer t;

	weir_wheel_init(&w, 1000000);
	weir_timer_init(&t, on_fire);
	weir_timer_arm(&w, &t, 1000000 + 5000);
	wb_reset_timer(b);
	for (uint64_t i = 0; i < b->n; i++) {
		wb_clobber();
		weir_timer_arm(&w, &t, 1000000 + 5000 + i);
	}
	wb_stop_timer(b);
	weir_timer_cancel(&w, &t);
}

/* Arm and expire: batches of 4,096 timers spread over 1 s, then the wheel is
 * advanced tick by tick until all fired. Per operation: one arm + one
 * expiry, plus the share of empty slots walked. */
#define BATCH 4096u

WB_BENCH(timer_arm_expire)
{
	static struct weir_timer t[BATCH];
	static struct weir_wheel w;
	uint64_t now = 1000000;

	weir_wheel_init(&w, now);
	for (unsigned i = 0; i < BATCH; i++)
		weir_timer_init(&t[i], on_fire);
	fired = 0;
	wb_reset_timer(b);
	for (uint64_t done = 0; done < b->n;) {
		unsigned k = b->n - done < BATCH ? (unsigned)(b->n - done) : BATCH;
		uint64_t end = now + 1000;

		for (unsigned i = 0; i < k; i++)
			weir_timer_arm(&w, &t[i], now + 1 + (i * 997u) % 1000u);
		while (now < end) {
			now += WEIR_WHEEL_TICK_MS;
			weir_wheel_advance(&w, now);
		}
		done += k;
	}
	wb_stop_timer(b);
	if (fired != b->n)
		wb_fail(b, "%llu timers fired, expected %llu", (unsigned long long)fired,
			(unsigned long long)b->n);
}

/* weir_wheel_timeout with 10,000 timers armed 600-1000 ms ahead, past its
 * look-ahead horizon (WEIR_WHEEL_HORIZON ticks), so every call scans the whole
 * horizon: the worst case of what the reactor asks once per loop iteration
 * (nearby timers end the scan early). */
WB_BENCH(wheel_timeout_scan)
{
	static struct weir_wheel w;
	static struct weir_timer bg[10000];

	weir_wheel_init(&w, 1000000);
	for (unsigned i = 0; i < (unsigned)WEIR_ARRAY_SIZE(bg); i++) {
		weir_timer_init(&bg[i], on_fire);
		weir_timer_arm(&w, &bg[i], 1000000 + 600 + i % 400);
	}
	wb_reset_timer(b);
	for (uint64_t i = 0; i < b->n; i++) {
		wb_clobber();
		wb_sink((uint64_t)weir_wheel_timeout(&w));
	}
}
