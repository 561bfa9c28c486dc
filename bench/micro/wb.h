/* bench/micro: the micro-benchmark harness ("wb", weir bench).
 *
 * A benchmark is one function. It runs the operation b->n times; the harness
 * picks n (auto-calibrated so that one sample lasts --sample-ms), warms up,
 * takes --samples samples and reports min / median / p99 / mean ns per
 * operation, operations per second, and the allocations and bytes per
 * operation made through weir's allocator (include/weir/alloc.h).
 *
 *   #include "wb.h"
 *
 *   WB_BENCH(h1_request_minimal)
 *   {
 *           static struct weir_h1_request req;     // setup: before the loop
 *
 *           wb_reset_timer(b);                     // optional: excludes setup
 *           for (uint64_t i = 0; i < b->n; i++) {
 *                   wb_clobber();                  // the compiler must redo the work
 *                   wb_sink(weir_h1_parse_request(buf, len, &req));
 *           }
 *   }
 *
 *   WB_BENCH_ARGS(chunked_decode, 1024, 65536)   // runs as chunked_decode/1024, .../65536
 *   {
 *           ... b->arg is 1024, then 65536 ...
 *   }
 *
 * The function is called once per sample (and a few times to warm up and to
 * calibrate), every time with a fresh b->n, so setup that must not be timed
 * either goes before wb_reset_timer() or is cached in statics on the first
 * call. Registration is automatic (a constructor): a new benchmark is a new
 * function in any bench_*.c file listed in bench/micro/meson.build.
 *
 * Contracts:
 *  - the timer runs from just before the call until it returns, minus the
 *    time between wb_stop_timer() and wb_start_timer();
 *  - allocation counters follow the timer (counted only while it runs);
 *  - wb_set_bytes() declares payload bytes per operation: the report then
 *    shows MB/s (10^6 bytes per second);
 *  - wb_fail() prints the message and makes the run exit 1 (a benchmark whose
 *    setup or result check failed measures nothing worth reporting). Timings
 *    are never asserted.
 */
#ifndef WEIR_BENCH_WB_H
#define WEIR_BENCH_WB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wb {
	uint64_t n;             /* operations to run in this call */
	uint64_t arg;           /* registered argument (WB_BENCH_ARGS), else 0 */
	/* harness state, read through the functions below */
	uint64_t t_start;
	uint64_t t_elapsed;
	uint64_t allocs_start, allocs;
	uint64_t abytes_start, abytes;
	uint64_t bytes_per_op;
	bool running;
	bool failed;
};

typedef void (*wb_fn)(struct wb *b);

void wb_register(const char *name, wb_fn fn, const uint64_t *args, size_t nargs);

void wb_reset_timer(struct wb *b);
void wb_stop_timer(struct wb *b);
void wb_start_timer(struct wb *b);
void wb_set_bytes(struct wb *b, uint64_t bytes_per_op);
void wb_fail(struct wb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Keep v alive: the compiler must compute it. */
static inline void wb_sink(uint64_t v)
{
	__asm__ volatile("" : : "r"(v));
}

/* Forget what is known about memory: loop-invariant work is redone. */
static inline void wb_clobber(void)
{
	__asm__ volatile("" : : : "memory");
}

#define WB_BENCH(fn)                                                          \
	static void fn(struct wb *b);                                         \
	__attribute__((constructor)) static void wb_reg_##fn(void)            \
	{                                                                     \
		wb_register(#fn, fn, NULL, 0);                                \
	}                                                                     \
	static void fn(struct wb *b)

#define WB_BENCH_ARGS(fn, ...)                                                \
	static void fn(struct wb *b);                                         \
	__attribute__((constructor)) static void wb_reg_##fn(void)            \
	{                                                                     \
		static const uint64_t args[] = { __VA_ARGS__ };               \
		wb_register(#fn, fn, args, sizeof(args) / sizeof(args[0]));   \
	}                                                                     \
	static void fn(struct wb *b)

#endif
