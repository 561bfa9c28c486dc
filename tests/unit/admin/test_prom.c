/* Unit test: metrics (bucket index, registry, binding, accumulation) and the
 * Prometheus text renderer (escaping, cumulative buckets, _sum/_count, every
 * line well-formed). Exit 0 pass, 1 fail. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weir/conf.h"
#include "weir/metrics.h"
#include "weir/prom.h"

static int failures;

#define CHECK(cond)                                                               \
	do {                                                                      \
		if (!(cond)) {                                                    \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__,    \
				__LINE__, #cond);                                 \
			failures++;                                               \
		}                                                                 \
	} while (0)

static bool contains(const struct weir_sbuf *b, const char *s)
{
	bool found = b->p != NULL && strstr(b->p, s) != NULL;

	if (!found)
		fprintf(stderr, "  missing: %s\n", s);
	return found;
}

static void test_escape(void)
{
	struct weir_sbuf b = { 0 };

	weir_prom_escape(&b, "a\\b\"c\nd");
	CHECK(strcmp(b.p, "a\\\\b\\\"c\\nd") == 0);
	weir_sbuf_free(&b);

	/* valid UTF-8 passes; a stray continuation byte, an overlong form and a
	 * truncated sequence become U+FFFD */
	weir_prom_escape(&b, "\xc3\xa9|\x80|\xc0\xaf|\xe2\x82");
	CHECK(strcmp(b.p, "\xc3\xa9|\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd") == 0);
	weir_sbuf_free(&b);

	weir_prom_family(&b, "x_total", WEIR_PROM_COUNTER, "back\\slash and\nnewline");
	CHECK(strcmp(b.p, "# HELP x_total back\\\\slash and\\nnewline\n# TYPE x_total counter\n") == 0);
	weir_sbuf_free(&b);

	weir_sbuf_json(&b, "q\"b\\n\n\x01\xff");
	CHECK(strcmp(b.p, "\"q\\\"b\\\\n\\u000a\\u0001\\ufffd\"") == 0);
	weir_sbuf_free(&b);
	weir_sbuf_json(&b, NULL);
	CHECK(strcmp(b.p, "null") == 0);
	weir_sbuf_free(&b);

	weir_sbuf_seconds(&b, 1500000001u);
	CHECK(strcmp(b.p, "1.500000001") == 0);
	weir_sbuf_free(&b);
}

static void test_sample(void)
{
	struct weir_sbuf b = { 0 };
	struct weir_prom_label l[2] = { { "route", "a\"b" }, { "method", "GET" } };

	weir_prom_sample(&b, "weir_x_total", l, 2, 42);
	weir_prom_sample(&b, "weir_y", NULL, 0, 7);
	CHECK(strcmp(b.p, "weir_x_total{route=\"a\\\"b\",method=\"GET\"} 42\nweir_y 7\n") == 0);
	weir_sbuf_free(&b);
}

static unsigned index_linear(uint64_t ns)
{
	unsigned i = 0;

	while (i < WEIR_HIST_BOUNDS && ns > weir_hist_bound_ns[i])
		i++;
	return i;
}

static void test_index(void)
{
	/* every bound, its neighbours, and every power of two and its neighbours */
	for (unsigned i = 0; i < WEIR_HIST_BOUNDS; i++) {
		uint64_t v = weir_hist_bound_ns[i];

		CHECK(weir_hist_index(v) == i);
		CHECK(weir_hist_index(v - 1) == index_linear(v - 1));
		CHECK(weir_hist_index(v + 1) == index_linear(v + 1));
		/* bound text and value agree */
		CHECK((uint64_t)(strtod(weir_hist_bound_text[i], NULL) * 1e9 + 0.5) == v);
	}
	for (unsigned b = 0; b < 64; b++) {
		uint64_t v = 1ull << b;

		CHECK(weir_hist_index(v) == index_linear(v));
		CHECK(weir_hist_index(v - 1) == index_linear(v - 1));
		CHECK(weir_hist_index(v + 1) == index_linear(v + 1));
		CHECK(weir_hist_index(v | (v - 1)) == index_linear(v | (v - 1)));
	}
	CHECK(weir_hist_index(0) == 0);
	CHECK(weir_hist_index(UINT64_MAX) == WEIR_HIST_BOUNDS);
	for (unsigned i = 1; i < WEIR_HIST_BOUNDS; i++)
		CHECK(weir_hist_bound_ns[i] > weir_hist_bound_ns[i - 1]);
}

static void test_histogram(void)
{
	struct weir_hist h = { 0 };
	struct weir_sbuf b = { 0 };
	struct weir_prom_label l = { "route", "r" };

	weir_hist_observe(&h, 5000);            /* <= 1e-05 */
	weir_hist_observe(&h, 10000);           /* == 1e-05: le is inclusive */
	weir_hist_observe(&h, 300000);          /* 0.0005 */
	weir_hist_observe(&h, 2000000000);      /* 2.5 */
	weir_hist_observe(&h, 500000000000ull); /* +Inf */
	weir_prom_histogram(&b, "t_seconds", &l, 1, &h);
	CHECK(contains(&b, "t_seconds_bucket{route=\"r\",le=\"1e-05\"} 2\n"));
	CHECK(contains(&b, "t_seconds_bucket{route=\"r\",le=\"0.00025\"} 2\n"));
	CHECK(contains(&b, "t_seconds_bucket{route=\"r\",le=\"0.0005\"} 3\n"));
	CHECK(contains(&b, "t_seconds_bucket{route=\"r\",le=\"1\"} 3\n"));
	CHECK(contains(&b, "t_seconds_bucket{route=\"r\",le=\"2.5\"} 4\n"));
	CHECK(contains(&b, "t_seconds_bucket{route=\"r\",le=\"100\"} 4\n"));
	CHECK(contains(&b, "t_seconds_bucket{route=\"r\",le=\"+Inf\"} 5\n"));
	CHECK(contains(&b, "t_seconds_sum{route=\"r\"} 502.000315000\n"));
	CHECK(contains(&b, "t_seconds_count{route=\"r\"} 5\n"));
	weir_sbuf_free(&b);
}

/* Every line is a comment (# HELP / # TYPE) or `name{labels} value`, every
 * sample belongs to the family announced before it, and buckets of one
 * series never decrease. */
static void check_format(const char *text)
{
	char family[128] = "", type[16] = "", last_series[512] = "";
	double last_bucket = -1;
	const char *line = text;

	while (*line != '\0') {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char buf[1024];

		CHECK(nl != NULL);              /* every line ends in LF */
		CHECK(len < sizeof(buf));
		if (len >= sizeof(buf))
			return;
		memcpy(buf, line, len);
		buf[len] = '\0';
		line += len + (nl != NULL);
		if (strncmp(buf, "# HELP ", 7) == 0) {
			sscanf(buf + 7, "%127s", family);
			continue;
		}
		if (strncmp(buf, "# TYPE ", 7) == 0) {
			char name[128];

			CHECK(sscanf(buf + 7, "%127s %15s", name, type) == 2);
			CHECK(strcmp(name, family) == 0);
			CHECK(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
			      strcmp(type, "histogram") == 0);
			continue;
		}
		/* a sample */
		size_t n = 0;

		while (isalnum((unsigned char)buf[n]) || buf[n] == '_')
			n++;
		CHECK(n > 0 && strncmp(buf, family, strlen(family)) == 0);
		if (strcmp(type, "histogram") == 0) {
			const char *suffix = buf + strlen(family);

			CHECK(strncmp(suffix, "_bucket", 7) == 0 || strncmp(suffix, "_sum", 4) == 0 ||
			      strncmp(suffix, "_count", 6) == 0);
		} else {
			CHECK(n == strlen(family));
		}
		const char *sp = strrchr(buf, ' ');

		CHECK(sp != NULL);
		if (sp == NULL)
			continue;
		if (buf[n] == '{') {
			/* labels: name="value" pairs, values with \\ \" \n escapes only */
			const char *p = buf + n + 1;

			while (*p != '}') {
				while (isalnum((unsigned char)*p) || *p == '_')
					p++;
				CHECK(p[0] == '=' && p[1] == '"');
				if (p[0] != '=' || p[1] != '"')
					break;
				for (p += 2; *p != '"'; p++) {
					CHECK(*p != '\0' && *p != '\n');
					if (*p == '\\') {
						p++;
						CHECK(*p == '\\' || *p == '"' || *p == 'n');
					}
				}
				p++;
				if (*p == ',')
					p++;
			}
			CHECK(p + 1 == sp);
		} else {
			CHECK(buf + n == sp);
		}
		char *end;

		strtod(sp + 1, &end);
		CHECK(*end == '\0' && end != sp + 1);
		if (strncmp(buf + strlen(family), "_bucket", 7) == 0 &&
		    strcmp(type, "histogram") == 0) {
			/* the series without its le label */
			char series[512];
			const char *le = strstr(buf, "le=\"");
			double v = strtod(sp + 1, NULL);

			snprintf(series, sizeof(series), "%.*s", (int)(le - buf), buf);
			if (strcmp(series, last_series) == 0)
				CHECK(v >= last_bucket);
			snprintf(last_series, sizeof(last_series), "%s", series);
			last_bucket = v;
		}
	}
}

static const char yaml[] =
	"listen:\n"
	"  - address: 127.0.0.1:8080\n"
	"upstreams:\n"
	"  app:\n"
	"    servers: [127.0.0.1:9000, 127.0.0.1:9001]\n"
	"  other:\n"
	"    servers: [127.0.0.1:9002]\n"
	"agents:\n"
	"  waf:\n"
	"    tcp: 127.0.0.1:7000\n"
	"routes:\n"
	"  - name: api\n"
	"    path_prefix: /api/\n"
	"    upstream: app\n"
	"    agents: [waf]\n"
	"  - name: rest\n"
	"    path_prefix: /\n"
	"    upstream: other\n";

/* The same routes, reordered, one removed, one added. */
static const char yaml2[] =
	"listen:\n"
	"  - address: 127.0.0.1:8080\n"
	"upstreams:\n"
	"  app:\n"
	"    servers: [127.0.0.1:9000, 127.0.0.1:9001]\n"
	"routes:\n"
	"  - name: fresh\n"
	"    path: /x\n"
	"    upstream: app\n"
	"  - name: api\n"
	"    path_prefix: /api/\n"
	"    upstream: app\n";

static struct weir_metrics m1, m2;      /* two "reactors" */
static struct weir_metrics_data sum;
static struct weir_metrics_servers srv;

static void test_render(void)
{
	struct weir_conf *conf = NULL, *conf2 = NULL;
	struct weir_sbuf b = { 0 };
	char err[256];
	weir_slice_t rules[3] = { WEIR_SLICE("942100"), WEIR_SLICE("evil\"rule\\\n"),
				  WEIR_SLICE("942100") };

	if (weir_conf_load_string("t.yaml", yaml, sizeof(yaml) - 1, &conf, err, sizeof(err)) != 0 ||
	    weir_conf_load_string("t2.yaml", yaml2, sizeof(yaml2) - 1, &conf2, err,
				  sizeof(err)) != 0) {
		fprintf(stderr, "config: %s\n", err);
		failures++;
		return;
	}
	weir_metrics_register(conf);
	unsigned api = weir_metrics_slot(WEIR_MK_ROUTE, 0, "api");
	unsigned rest = weir_metrics_slot(WEIR_MK_ROUTE, 0, "rest");
	unsigned app = weir_metrics_slot(WEIR_MK_UPSTREAM, 0, "app");
	unsigned s0 = weir_metrics_slot(WEIR_MK_SERVER, app, "127.0.0.1:9000");
	unsigned s1 = weir_metrics_slot(WEIR_MK_SERVER, app, "127.0.0.1:9001");
	unsigned waf = weir_metrics_slot(WEIR_MK_AGENT, 0, "waf");

	/* every name has a slot of its own; unknown names share "_other" */
	CHECK(api != rest && s0 != s1 && api != 0);
	CHECK(weir_metrics_slot(WEIR_MK_ROUTE, 0, "nope") == WEIR_METRICS_ROUTES - 1);

	/* reactor 1: two GETs on api (200, 503), a POST on rest (201), one
	 * request without a route (404) */
	weir_metrics_request(&m1, api, 1 /* GET */, 200, 1000000);
	weir_metrics_request(&m1, api, 1, 503, 2000000);
	weir_metrics_request(&m1, rest, 3 /* POST */, 201, 30000);
	weir_metrics_request(&m1, 0 /* _unmatched */, 1, 404, 5000);
	weir_metrics_upstream_connect(&m1, app, 40000);
	weir_metrics_upstream_failure(&m1, app, s1, WEIR_UPF_CONNECT, 100);
	weir_metrics_server_ok(&m1, s0, 50);
	weir_metrics_conn_open(&m1, WEIR_PEER_CLIENT);
	weir_metrics_conn_open(&m1, WEIR_PEER_CLIENT);
	weir_metrics_conn_close(&m1, WEIR_PEER_CLIENT);
	weir_metrics_bytes_in(&m1, WEIR_PEER_CLIENT, 1000);
	weir_metrics_agent_call(&m1, waf);
	weir_metrics_agent_call(&m1, waf);
	weir_metrics_agent_done(&m1, waf);
	weir_metrics_agent_verdict(&m1, waf, 80000);
	weir_metrics_agent_state(&m1, waf, 1, 1, false);
	weir_metrics_agent_shm_bytes(&m1, waf, 4096);
	weir_metrics_agent_block(&m1, waf, rules, 3);
	/* reactor 2: the same GET 200, and server 1 recovered after it failed */
	weir_metrics_request(&m2, api, 1, 200, 1000000);
	weir_metrics_server_ok(&m2, s1, 200);
	weir_metrics_conn_open(&m2, WEIR_PEER_CLIENT);
	weir_metrics_bytes_in(&m2, WEIR_PEER_CLIENT, 24);
	weir_metrics_agent_state(&m2, waf, 1, 0, true);

	weir_metrics_accumulate(&sum, &srv, &m1);
	weir_metrics_accumulate(&sum, &srv, &m2);
	CHECK(sum.conn_opened[WEIR_PEER_CLIENT] == 3 && sum.conn_closed[WEIR_PEER_CLIENT] == 1);
	CHECK(srv.last_fail_ms[weir_metrics_slot_find(WEIR_MK_SERVER,
		(unsigned)weir_metrics_slot_find(WEIR_MK_UPSTREAM, 0, "app"), "127.0.0.1:9001")] == 100);

	struct weir_prom_scrape s = { .d = &sum, .srv = &srv, .reactors = 2, .generation = 1,
				      .start_time = 1700000000.5 };

	weir_prom_render(&b, &s);
	CHECK(!b.failed);
	check_format(b.p);
	CHECK(contains(&b, "weir_requests_total{route=\"api\",method=\"GET\",status_class=\"2xx\"} 2\n"));
	CHECK(contains(&b, "weir_requests_total{route=\"api\",method=\"GET\",status_class=\"5xx\"} 1\n"));
	CHECK(contains(&b, "weir_requests_total{route=\"rest\",method=\"POST\",status_class=\"2xx\"} 1\n"));
	CHECK(contains(&b, "weir_requests_total{route=\"_unmatched\",method=\"GET\",status_class=\"4xx\"} 1\n"));
	CHECK(contains(&b, "weir_request_duration_seconds_bucket{route=\"api\",le=\"0.001\"} 2\n"));
	CHECK(contains(&b, "weir_request_duration_seconds_bucket{route=\"api\",le=\"0.0025\"} 3\n"));
	CHECK(contains(&b, "weir_request_duration_seconds_sum{route=\"api\"} 0.004000000\n"));
	CHECK(contains(&b, "weir_request_duration_seconds_count{route=\"api\"} 3\n"));
	CHECK(contains(&b, "weir_upstream_connect_seconds_count{upstream=\"app\"} 1\n"));
	CHECK(contains(&b, "weir_upstream_failures_total{upstream=\"app\",reason=\"connect\"} 1\n"));
	CHECK(contains(&b, "weir_upstream_failures_total{upstream=\"other\",reason=\"connect\"} 0\n"));
	/* server 1 failed at 100 on reactor 1, answered at 200 on reactor 2 */
	CHECK(contains(&b, "weir_upstream_server_usable{upstream=\"app\",server=\"127.0.0.1:9001\"} 1\n"));
	CHECK(contains(&b, "weir_connections_open{peer=\"client\"} 2\n"));
	CHECK(contains(&b, "weir_bytes_received_total{peer=\"client\"} 1024\n"));
	CHECK(contains(&b, "weir_agent_calls_total{agent=\"waf\"} 2\n"));
	CHECK(contains(&b, "weir_agent_in_flight{agent=\"waf\"} 1\n"));
	CHECK(contains(&b, "weir_agent_links_up{agent=\"waf\"} 2\n"));
	CHECK(contains(&b, "weir_agent_breaker_open{agent=\"waf\"} 1\n"));
	CHECK(contains(&b, "weir_agent_blocks_total{agent=\"waf\"} 1\n"));
	CHECK(contains(&b, "weir_agent_latency_seconds_bucket{agent=\"waf\",le=\"0.0001\"} 1\n"));
	CHECK(contains(&b, "weir_agent_rule_blocks_total{agent=\"waf\",rule=\"942100\"} 2\n"));
	CHECK(contains(&b, "weir_agent_rule_blocks_total{agent=\"waf\",rule=\"evil\\\"rule\\\\\\n\"} 1\n"));
	CHECK(contains(&b, "weir_start_time_seconds 1700000000.500\n"));
	CHECK(contains(&b, "# TYPE weir_request_duration_seconds histogram\n"));
	weir_sbuf_free(&b);

	/* Reload: the new config's names are registered. "api" keeps its
	 * slot (its counters go on), "fresh" gets a new one. */
	weir_metrics_register(conf2);
	CHECK(weir_metrics_slot(WEIR_MK_ROUTE, 0, "api") == api);
	unsigned fresh = weir_metrics_slot(WEIR_MK_ROUTE, 0, "fresh");

	CHECK(fresh != api && fresh != rest && fresh != WEIR_METRICS_ROUTES - 1);
	weir_metrics_request(&m1, api, 1, 200, 1000000);
	weir_metrics_request(&m1, fresh, 1, 200, 1000000);
	memset(&sum, 0, sizeof(sum));
	memset(&srv, 0, sizeof(srv));
	weir_metrics_accumulate(&sum, &srv, &m1);
	weir_metrics_accumulate(&sum, &srv, &m2);
	weir_prom_render(&b, &s);
	check_format(b.p);
	CHECK(contains(&b, "weir_requests_total{route=\"api\",method=\"GET\",status_class=\"2xx\"} 3\n"));
	CHECK(contains(&b, "weir_requests_total{route=\"fresh\",method=\"GET\",status_class=\"2xx\"} 1\n"));
	CHECK(contains(&b, "weir_requests_total{route=\"rest\",method=\"POST\",status_class=\"2xx\"} 1\n"));
	weir_sbuf_free(&b);

	weir_conf_free(conf);
	weir_conf_free(conf2);
}

int main(void)
{
	test_escape();
	test_sample();
	test_index();
	test_histogram();
	test_render();
	if (failures != 0) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
