/* bench/micro harness: registry, calibration, sampling, table and JSON
 * output. See wb.h for the benchmark side and bench/README.md for use.
 *
 * Method. For each benchmark: calibrate n (start at 1, grow until one call
 * lasts --sample-ms), warm up for --warmup-ms, re-calibrate on the warm
 * timing, then take --samples calls of n operations each. Each sample gives
 * one ns/op figure (its elapsed time / n); min, median, p99 and mean are over
 * those samples, so p99 is the 99th percentile of per-sample means, not of
 * single operations (one operation of a few ns is below what a clock read can
 * resolve). Allocations and bytes per operation are totals over all samples /
 * total operations.
 */
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "weir/alloc.h"
#include "wb.h"

#ifndef WEIR_ALLOC_STATS
#error "bench/micro is built with -DWEIR_ALLOC_STATS (see bench/micro/meson.build)"
#endif

struct entry {
	char name[96];
	const char *base;
	uint64_t arg;
	bool has_arg;
	wb_fn fn;
	unsigned order;
};

struct result {
	const struct entry *e;
	uint64_t n;             /* operations per sample */
	unsigned samples;
	double min, median, p99, mean, max;     /* ns/op */
	double allocs_per_op, abytes_per_op;
	uint64_t bytes_per_op;
	bool failed;
};

static struct entry *entries;
static size_t nentries, capentries;

static struct {
	unsigned samples;
	double sample_ms;
	double warmup_ms;
	int cpu;
	const char *json;
	bool list;
} opt = { .samples = 100, .sample_ms = 2.0, .warmup_ms = 50.0, .cpu = -1 };

void wb_register(const char *name, wb_fn fn, const uint64_t *args, size_t nargs)
{
	size_t count = nargs == 0 ? 1 : nargs;

	if (nentries + count > capentries) {
		size_t cap = capentries == 0 ? 64 : capentries * 2;

		while (cap < nentries + count)
			cap *= 2;
		entries = realloc(entries, cap * sizeof(*entries));
		if (entries == NULL) {
			perror("bench-micro");
			exit(2);
		}
		capentries = cap;
	}
	for (size_t i = 0; i < count; i++) {
		struct entry *e = &entries[nentries];

		memset(e, 0, sizeof(*e));
		e->base = name;
		e->fn = fn;
		e->order = (unsigned)nentries;
		if (nargs != 0) {
			e->arg = args[i];
			e->has_arg = true;
			snprintf(e->name, sizeof(e->name), "%s/%" PRIu64, name, args[i]);
		} else {
			snprintf(e->name, sizeof(e->name), "%s", name);
		}
		nentries++;
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void wb_start_timer(struct wb *b)
{
	if (b->running)
		return;
	b->running = true;
	b->allocs_start = weir_alloc_count;
	b->abytes_start = weir_alloc_bytes;
	b->t_start = now_ns();
}

void wb_stop_timer(struct wb *b)
{
	uint64_t t = now_ns();

	if (!b->running)
		return;
	b->t_elapsed += t - b->t_start;
	b->allocs += weir_alloc_count - b->allocs_start;
	b->abytes += weir_alloc_bytes - b->abytes_start;
	b->running = false;
}

void wb_reset_timer(struct wb *b)
{
	b->t_elapsed = 0;
	b->allocs = 0;
	b->abytes = 0;
	b->running = false;
	wb_start_timer(b);
}

void wb_set_bytes(struct wb *b, uint64_t bytes_per_op)
{
	b->bytes_per_op = bytes_per_op;
}

void wb_fail(struct wb *b, const char *fmt, ...)
{
	va_list ap;

	fputs("bench-micro: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	b->failed = true;
}

/* One call of the benchmark function with n operations. */
static void run_once(const struct entry *e, uint64_t n, struct wb *b)
{
	memset(b, 0, sizeof(*b));
	b->n = n;
	b->arg = e->arg;
	wb_start_timer(b);
	e->fn(b);
	wb_stop_timer(b);
}

static int cmp_double(const void *pa, const void *pb)
{
	double a = *(const double *)pa, b = *(const double *)pb;

	return a < b ? -1 : a > b;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double percentile(const double *v, unsigned n, double p)
{
	unsigned rank = (unsigned)ceil(p / 100.0 * n);

	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

#define MAX_N (UINT64_C(1) << 40)

/* n so that one call lasts about target ns, given that n0 took t ns. */
static uint64_t scale_n(uint64_t n0, uint64_t t, double target)
{
	double n = t == 0 ? (double)n0 * 100.0 : (double)n0 * target / (double)t;

	if (n < 1.0)
		n = 1.0;
	if (n > (double)MAX_N)
		n = (double)MAX_N;
	return (uint64_t)n;
}

static void measure(const struct entry *e, struct result *res)
{
	double target = opt.sample_ms * 1e6;
	double *v = calloc(opt.samples, sizeof(double));
	uint64_t n = 1, total_ops = 0, total_allocs = 0, total_abytes = 0, t0;
	struct wb b;
	double sum = 0;

	if (v == NULL) {
		perror("bench-micro");
		exit(2);
	}
	memset(res, 0, sizeof(*res));
	res->e = e;

	/* Calibrate: grow n until one call lasts the target (at most x100 per
	 * step, so a slow first call does not overshoot). */
	for (;;) {
		uint64_t next;

		run_once(e, n, &b);
		if (b.failed)
			goto failed;
		if ((double)b.t_elapsed >= target || n >= MAX_N)
			break;
		next = scale_n(n, b.t_elapsed, target * 1.2);
		if (next > n * 100)
			next = n * 100;
		if (next <= n)
			next = n + 1;
		n = next;
	}
	n = scale_n(n, b.t_elapsed, target);

	/* Warm up (caches, branch predictors, CPU frequency), then take the
	 * warm timing as the final calibration. */
	t0 = now_ns();
	do {
		run_once(e, n, &b);
		if (b.failed)
			goto failed;
	} while ((double)(now_ns() - t0) < opt.warmup_ms * 1e6);
	n = scale_n(n, b.t_elapsed, target);

	for (unsigned s = 0; s < opt.samples; s++) {
		run_once(e, n, &b);
		if (b.failed)
			goto failed;
		v[s] = (double)b.t_elapsed / (double)n;
		sum += v[s];
		total_ops += n;
		total_allocs += b.allocs;
		total_abytes += b.abytes;
		res->bytes_per_op = b.bytes_per_op;
	}
	qsort(v, opt.samples, sizeof(double), cmp_double);
	res->n = n;
	res->samples = opt.samples;
	res->min = v[0];
	res->max = v[opt.samples - 1];
	res->median = opt.samples % 2 ? v[opt.samples / 2]
				      : (v[opt.samples / 2 - 1] + v[opt.samples / 2]) / 2;
	res->p99 = percentile(v, opt.samples, 99.0);
	res->mean = sum / opt.samples;
	res->allocs_per_op = (double)total_allocs / (double)total_ops;
	res->abytes_per_op = (double)total_abytes / (double)total_ops;
	free(v);
	return;
failed:
	res->failed = true;
	free(v);
}

static bool selected(const struct entry *e, int npat, char **pat)
{
	if (npat == 0)
		return true;
	for (int i = 0; i < npat; i++) {
		if (strpbrk(pat[i], "*?[") != NULL) {
			if (fnmatch(pat[i], e->name, 0) == 0)
				return true;
		} else if (strstr(e->name, pat[i]) != NULL) {
			return true;
		}
	}
	return false;
}

static int cmp_entry(const void *pa, const void *pb)
{
	const struct entry *a = pa, *b = pb;
	int c = strcmp(a->base, b->base);

	if (c != 0)
		return c;
	if (a->arg != b->arg)
		return a->arg < b->arg ? -1 : 1;
	return a->order < b->order ? -1 : a->order > b->order;
}

/* ---- output ------------------------------------------------------------ */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void cpu_model(char *out, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];

	snprintf(out, len, "unknown");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "model name", 10) == 0) {
			char *p = strchr(line, ':');

			if (p != NULL) {
				p += 1 + strspn(p + 1, " \t");
				p[strcspn(p, "\n")] = '\0';
				snprintf(out, len, "%s", p);
			}
			break;
		}
	}
	fclose(f);
}

static void write_json(FILE *f, const struct result *r, size_t nr)
{
	struct utsname u;
	char cpu[256], date[64];
	time_t t = time(NULL);
	struct tm tm;

	uname(&u);
	cpu_model(cpu, sizeof(cpu));
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fputs("{\n  \"env\": {\"cpu\": ", f);
	json_str(f, cpu);
	fprintf(f, ", \"cpus_online\": %ld, \"kernel\": ", sysconf(_SC_NPROCESSORS_ONLN));
	json_str(f, u.release);
	fputs(", \"machine\": ", f);
	json_str(f, u.machine);
	fputs(", \"compiler\": ", f);
	json_str(f, __VERSION__);
#ifdef NDEBUG
	fputs(", \"ndebug\": true", f);
#else
	fputs(", \"ndebug\": false", f);
#endif
	fprintf(f, ", \"date\": \"%s\", \"pinned_cpu\": %d},\n", date, opt.cpu);
	fprintf(f, "  \"config\": {\"samples\": %u, \"sample_ms\": %g, \"warmup_ms\": %g},\n",
		opt.samples, opt.sample_ms, opt.warmup_ms);
	fputs("  \"benchmarks\": [", f);
	for (size_t i = 0; i < nr; i++) {
		const struct result *x = &r[i];

		fputs(i == 0 ? "\n    {\"name\": " : ",\n    {\"name\": ", f);
		json_str(f, x->e->name);
		fputs(", \"base\": ", f);
		json_str(f, x->e->base);
		if (x->e->has_arg)
			fprintf(f, ", \"arg\": %" PRIu64, x->e->arg);
		if (x->failed) {
			fputs(", \"failed\": true}", f);
			continue;
		}
		fprintf(f,
			", \"ops_per_sample\": %" PRIu64 ", \"samples\": %u"
			", \"ns_per_op\": {\"min\": %.3f, \"median\": %.3f, \"p99\": %.3f"
			", \"mean\": %.3f, \"max\": %.3f}"
			", \"ops_per_s\": %.1f, \"allocs_per_op\": %.4f, \"alloc_bytes_per_op\": %.2f",
			x->n, x->samples, x->min, x->median, x->p99, x->mean, x->max,
			1e9 / x->median, x->allocs_per_op, x->abytes_per_op);
		if (x->bytes_per_op != 0)
			fprintf(f, ", \"bytes_per_op\": %" PRIu64 ", \"mb_per_s\": %.1f",
				x->bytes_per_op, (double)x->bytes_per_op * 1e3 / x->median);
		fputc('}', f);
	}
	fputs("\n  ]\n}\n", f);
}

static void print_header(FILE *f)
{
	fprintf(f, "%-34s %10s %10s %10s %13s %9s %9s %9s\n", "benchmark", "min ns", "median ns",
		"p99 ns", "ops/s", "allocs/op", "B/op", "MB/s");
}

static void print_row(FILE *f, const struct result *x)
{
	char mbs[32] = "-";

	if (x->failed) {
		fprintf(f, "%-34s FAILED\n", x->e->name);
		return;
	}
	if (x->bytes_per_op != 0)
		snprintf(mbs, sizeof(mbs), "%.0f", (double)x->bytes_per_op * 1e3 / x->median);
	fprintf(f, "%-34s %10.1f %10.1f %10.1f %13.0f %9.2f %9.1f %9s\n", x->e->name, x->min,
		x->median, x->p99, 1e9 / x->median, x->allocs_per_op, x->abytes_per_op, mbs);
	fflush(f);
}

static void usage(FILE *f)
{
	fputs("usage: bench-micro [options] [PATTERN...]\n"
	      "  PATTERN             run benchmarks whose name contains it (or matches it,\n"
	      "                      when it has * ? [): 'h1_', 'chunked_decode/*'\n"
	      "  -l, --list          list the benchmarks and exit\n"
	      "  -s, --samples N     samples per benchmark (default 100)\n"
	      "  -t, --sample-ms MS  target duration of one sample (default 2)\n"
	      "  -w, --warmup-ms MS  warm-up per benchmark (default 50)\n"
	      "  -q, --quick         20 samples of 0.5 ms, 5 ms warm-up (smoke runs)\n"
	      "  -c, --cpu N         pin to CPU N first\n"
	      "  -j, --json FILE     write results as JSON ('-': stdout; the table then goes\n"
	      "                      to stderr)\n",
	      f);
}

static double parse_pos(const char *s, const char *what)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !(v > 0)) {
		fprintf(stderr, "bench-micro: %s: expected a positive number, got '%s'\n", what, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "list", no_argument, NULL, 'l' },
		{ "samples", required_argument, NULL, 's' },
		{ "sample-ms", required_argument, NULL, 't' },
		{ "warmup-ms", required_argument, NULL, 'w' },
		{ "quick", no_argument, NULL, 'q' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "json", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct result *res;
	size_t nres = 0;
	FILE *table = stdout;
	int ch, failed = 0;

	while ((ch = getopt_long(argc, argv, "ls:t:w:qc:j:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			opt.list = true;
			break;
		case 's':
			opt.samples = (unsigned)parse_pos(optarg, "--samples");
			break;
		case 't':
			opt.sample_ms = parse_pos(optarg, "--sample-ms");
			break;
		case 'w':
			opt.warmup_ms = parse_pos(optarg, "--warmup-ms");
			break;
		case 'q':
			opt.samples = 20;
			opt.sample_ms = 0.5;
			opt.warmup_ms = 5;
			break;
		case 'c':
			opt.cpu = atoi(optarg);
			break;
		case 'j':
			opt.json = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (opt.samples < 1) {
		fputs("bench-micro: --samples must be at least 1\n", stderr);
		return 2;
	}
	qsort(entries, nentries, sizeof(*entries), cmp_entry);
	if (opt.list) {
		for (size_t i = 0; i < nentries; i++)
			if (selected(&entries[i], argc - optind, argv + optind))
				puts(entries[i].name);
		return 0;
	}
	if (opt.cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(opt.cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) != 0) {
			perror("bench-micro: sched_setaffinity");
			return 2;
		}
	}
	if (opt.json != NULL && strcmp(opt.json, "-") == 0)
		table = stderr;
	res = calloc(nentries == 0 ? 1 : nentries, sizeof(*res));
	if (res == NULL) {
		perror("bench-micro");
		return 2;
	}
	print_header(table);
	for (size_t i = 0; i < nentries; i++) {
		if (!selected(&entries[i], argc - optind, argv + optind))
			continue;
		measure(&entries[i], &res[nres]);
		failed |= res[nres].failed;
		print_row(table, &res[nres]);
		nres++;
	}
	if (nres == 0) {
		fputs("bench-micro: no benchmark matches\n", stderr);
		return 2;
	}
	if (opt.json != NULL) {
		FILE *f = strcmp(opt.json, "-") == 0 ? stdout : fopen(opt.json, "w");

		if (f == NULL) {
			fprintf(stderr, "bench-micro: %s: %s\n", opt.json, strerror(errno));
			return 2;
		}
		write_json(f, res, nres);
		if (f != stdout && fclose(f) != 0) {
			fprintf(stderr, "bench-micro: %s: %s\n", opt.json, strerror(errno));
			return 2;
		}
	}
	free(res);
	return failed ? 1 : 0;
}
