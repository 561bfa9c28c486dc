/* weir: text output for the admin endpoints — a growable text buffer, JSON
 * strings, and the Prometheus text exposition format (version 0.0.4).
 *
 * Buffers: a weir_sbuf grows on demand (weir_realloc). A failed allocation
 * sets ->failed and every later append is a no-op, so a writer checks once,
 * at the end. Nothing here is thread-safe; the admin thread owns its buffers.
 *
 * Prometheus rules applied (exposition formats, "Text format details"):
 *  - every family gets "# HELP" (backslash and line feed escaped) and
 *    "# TYPE" before its first sample, even when it has no sample yet;
 *  - label values escape backslash, double quote and line feed; bytes that
 *    are not valid UTF-8 become U+FFFD;
 *  - histograms: cumulative _bucket samples in increasing `le` order ending
 *    with le="+Inf", whose value equals _count; then _sum (seconds) and
 *    _count. Bucket counts are summed from the same words, so +Inf and
 *    _count always agree even when the writer moved on meanwhile.
 */
#ifndef WEIR_PROM_H
#define WEIR_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weir/metrics.h"

struct weir_sbuf {
	char *p;
	size_t len, cap;
	bool failed;                    /* an allocation failed: contents incomplete */
};

void weir_sbuf_free(struct weir_sbuf *b);
void weir_sbuf_add(struct weir_sbuf *b, const char *s, size_t n);
void weir_sbuf_puts(struct weir_sbuf *b, const char *s);
void weir_sbuf_printf(struct weir_sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void weir_sbuf_u64(struct weir_sbuf *b, uint64_t v);
/* A JSON string literal, quotes included (NULL: null). */
void weir_sbuf_json(struct weir_sbuf *b, const char *s);
/* Nanoseconds as decimal seconds, exactly ("1.500000000"). */
void weir_sbuf_seconds(struct weir_sbuf *b, uint64_t ns);

/* ---- exposition format -------------------------------------------------- */

struct weir_prom_label {
	const char *name;               /* [a-zA-Z_][a-zA-Z0-9_]*, not checked */
	const char *value;              /* any bytes; escaped */
};

enum weir_prom_type {
	WEIR_PROM_COUNTER = 0,
	WEIR_PROM_GAUGE,
	WEIR_PROM_HISTOGRAM,
};

/* "# HELP name help\n# TYPE name type\n" */
void weir_prom_family(struct weir_sbuf *b, const char *name, enum weir_prom_type type,
		      const char *help);
/* One sample: name{labels} value. */
void weir_prom_sample(struct weir_sbuf *b, const char *name, const struct weir_prom_label *l,
		      unsigned nl, uint64_t value);
/* A label value, escaped (without quotes). */
void weir_prom_escape(struct weir_sbuf *b, const char *value);
/* All samples of one histogram series (buckets, _sum, _count). */
void weir_prom_histogram(struct weir_sbuf *b, const char *name, const struct weir_prom_label *l,
			 unsigned nl, const struct weir_hist *h);

/* What one scrape shows besides the summed metrics. */
struct weir_prom_scrape {
	const struct weir_metrics_data *d;      /* summed over reactors */
	const struct weir_metrics_servers *srv; /* combined over reactors */
	unsigned reactors;
	uint64_t generation;                    /* config generation */
	double start_time;                      /* Unix time the process started */
	/* from struct weir_reactor_stats, summed */
	uint64_t upstream_connects, upstream_reused, upstream_retries;
};

/* Every weir metric family (docs/OPERATIONS.md lists them), with label
 * names from the metrics registry. */
void weir_prom_render(struct weir_sbuf *b, const struct weir_prom_scrape *s);

/* An upstream server's state from its latest outcomes: 1 usable (last
 * outcome a success, or never tried), 0 down (last outcome a failure). */
static inline bool weir_server_usable(const struct weir_metrics_servers *srv, unsigned slot)
{
	return srv->last_fail_ms[slot] <= srv->last_ok_ms[slot];
}

#endif
