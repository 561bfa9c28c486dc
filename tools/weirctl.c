/* weirctl: talk to weir's admin listener (docs/OPERATIONS.md).
 *
 *   weirctl [--admin HOST:PORT] [--timeout SECONDS] COMMAND
 *
 * Commands: status, health, metrics, agents, reload, get PATH. Exit status:
 * 0 success (health: ok or degraded), 1 failure (health: down or stopping;
 * reload refused or not supported), 2 usage error.
 *
 * Standalone on purpose (libc only): it is installed next to weir and must
 * work when weir itself is in trouble. It reads the admin's JSON with a small
 * parser below and the Prometheus text line by line.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_RESPONSE (64u << 20)

static const char *admin_addr = "127.0.0.1:9090";
static double timeout_s = 5.0;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("weirctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		die("out of memory");
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL)
		die("out of memory");
	return p;
}

/* ---- HTTP --------------------------------------------------------------- */

struct reply {
	int status;
	char *body;                     /* NUL-terminated */
	size_t len;
};

static int dial(void)
{
	char host[256];
	const char *port, *h = admin_addr;
	size_t hl;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	struct timeval tv = { .tv_sec = (time_t)timeout_s,
			      .tv_usec = (suseconds_t)((timeout_s - floor(timeout_s)) * 1e6) };
	int fd = -1, ret;

	if (h[0] == '[') {
		const char *end = strchr(h, ']');

		if (end == NULL || end[1] != ':')
			die("--admin: expected HOST:PORT or [V6]:PORT, got '%s'", admin_addr);
		h++;
		hl = (size_t)(end - h);
		port = end + 2;
	} else {
		port = strrchr(h, ':');
		if (port == NULL)
			die("--admin: expected HOST:PORT, got '%s'", admin_addr);
		hl = (size_t)(port - h);
		port++;
	}
	if (hl >= sizeof(host))
		die("--admin: host too long");
	memcpy(host, h, hl);
	host[hl] = '\0';
	ret = getaddrinfo(host, port, &hints, &res);
	if (ret != 0)
		die("--admin %s: %s", admin_addr, gai_strerror(ret));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		ret = errno;
		close(fd);
		fd = -1;
		errno = ret;
	}
	freeaddrinfo(res);
	if (fd < 0)
		die("cannot reach the admin listener at %s: %s (is weir running with an "
		    "admin address? see --admin)", admin_addr, strerror(errno));
	return fd;
}

static struct reply http(const char *method, const char *path)
{
	struct reply r = { 0 };
	char req[512];
	char *buf = NULL, *p;
	size_t len = 0, cap = 0;
	int fd = dial(), n;

	n = snprintf(req, sizeof(req),
		     "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: weirctl\r\n"
		     "Content-Length: 0\r\nConnection: close\r\n\r\n",
		     method, path, admin_addr);
	if (n < 0 || (size_t)n >= sizeof(req))
		die("request too long");
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
		die("%s %s: send: %s", method, path, strerror(errno));
	for (;;) {
		ssize_t got;

		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 16384;
			if (cap > MAX_RESPONSE)
				die("%s %s: response over %u bytes", method, path, MAX_RESPONSE);
			buf = xrealloc(buf, cap + 1);
		}
		got = recv(fd, buf + len, cap - len, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			die("%s %s: %s", method, path,
			    errno == EAGAIN ? "timed out (see --timeout)" : strerror(errno));
		}
		if (got == 0)
			break;
		len += (size_t)got;
	}
	close(fd);
	if (buf == NULL)
		die("%s %s: empty response", method, path);
	buf[len] = '\0';
	if (sscanf(buf, "HTTP/1.%*d %d", &r.status) != 1)
		die("%s %s: not an HTTP response", method, path);
	p = strstr(buf, "\r\n\r\n");
	if (p == NULL)
		die("%s %s: truncated response", method, path);
	p += 4;
	r.len = len - (size_t)(p - buf);
	r.body = xmalloc(r.len + 1);
	memcpy(r.body, p, r.len);
	r.body[r.len] = '\0';
	free(buf);
	return r;
}

/* ---- JSON (a DOM; numbers keep their text) ------------------------------ */

enum jtype { J_NULL, J_FALSE, J_TRUE, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
	enum jtype t;
	char *s;                        /* J_STR: decoded; J_NUM: as written */
	size_t n;                       /* J_ARR, J_OBJ: items */
	struct jv *items;
	char **keys;                    /* J_OBJ */
};

struct jparser {
	const char *start, *p, *end;
	int depth;
};

static void jfail(struct jparser *jp) __attribute__((noreturn));

static void jfail(struct jparser *jp)
{
	die("the admin listener sent invalid JSON near offset %td", jp->p - jp->start);
}

static void jws(struct jparser *jp)
{
	while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\n' || *jp->p == '\r' ||
				   *jp->p == '\t'))
		jp->p++;
}

static char *jstring(struct jparser *jp)
{
	size_t cap = 16, n = 0;
	char *out = xmalloc(cap);

	jp->p++;                        /* opening quote */
	while (jp->p < jp->end && *jp->p != '"') {
		char c = *jp->p++;

		if (n + 8 > cap)
			out = xrealloc(out, cap *= 2);
		if (c != '\\') {
			out[n++] = c;
			continue;
		}
		if (jp->p >= jp->end)
			jfail(jp);
		c = *jp->p++;
		switch (c) {
		case 'n': out[n++] = '\n'; break;
		case 't': out[n++] = '\t'; break;
		case 'r': out[n++] = '\r'; break;
		case 'b': out[n++] = '\b'; break;
		case 'f': out[n++] = '\f'; break;
		case 'u': {
			unsigned cp;

			if (jp->end - jp->p < 4 || sscanf(jp->p, "%4x", &cp) != 1)
				jfail(jp);
			jp->p += 4;
			/* weir only escapes control characters and U+FFFD */
			if (cp < 0x80) {
				out[n++] = (char)cp;
			} else if (cp < 0x800) {
				out[n++] = (char)(0xc0 | (cp >> 6));
				out[n++] = (char)(0x80 | (cp & 0x3f));
			} else {
				out[n++] = (char)(0xe0 | (cp >> 12));
				out[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
				out[n++] = (char)(0x80 | (cp & 0x3f));
			}
			break;
		}
		default: out[n++] = c; break;
		}
	}
	if (jp->p >= jp->end)
		jfail(jp);
	jp->p++;
	out[n] = '\0';
	return out;
}

static void jvalue(struct jparser *jp, struct jv *v)
{
	memset(v, 0, sizeof(*v));
	jws(jp);
	if (jp->p >= jp->end || ++jp->depth > 64)
		jfail(jp);
	if (*jp->p == '{' || *jp->p == '[') {
		bool obj = *jp->p == '{';
		char close = obj ? '}' : ']';

		v->t = obj ? J_OBJ : J_ARR;
		jp->p++;
		jws(jp);
		if (jp->p < jp->end && *jp->p == close) {
			jp->p++;
		} else {
			for (;;) {
				v->items = xrealloc(v->items, (v->n + 1) * sizeof(*v->items));
				if (obj) {
					v->keys = xrealloc(v->keys, (v->n + 1) * sizeof(*v->keys));
					jws(jp);
					if (jp->p >= jp->end || *jp->p != '"')
						jfail(jp);
					v->keys[v->n] = jstring(jp);
					jws(jp);
					if (jp->p >= jp->end || *jp->p++ != ':')
						jfail(jp);
				}
				jvalue(jp, &v->items[v->n++]);
				jws(jp);
				if (jp->p < jp->end && *jp->p == ',') {
					jp->p++;
					continue;
				}
				if (jp->p >= jp->end || *jp->p++ != close)
					jfail(jp);
				break;
			}
		}
	} else if (*jp->p == '"') {
		v->t = J_STR;
		v->s = jstring(jp);
	} else if (strncmp(jp->p, "null", 4) == 0) {
		v->t = J_NULL;
		jp->p += 4;
	} else if (strncmp(jp->p, "true", 4) == 0) {
		v->t = J_TRUE;
		jp->p += 4;
	} else if (strncmp(jp->p, "false", 5) == 0) {
		v->t = J_FALSE;
		jp->p += 5;
	} else {
		const char *s = jp->p;

		while (jp->p < jp->end && strchr("+-0123456789.eE", *jp->p) != NULL)
			jp->p++;
		if (jp->p == s)
			jfail(jp);
		v->t = J_NUM;
		v->s = strndup(s, (size_t)(jp->p - s));
		if (v->s == NULL)
			die("out of memory");
	}
	jp->depth--;
}

static struct jv jparse(const struct reply *r)
{
	struct jparser jp = { r->body, r->body, r->body + r->len, 0 };
	struct jv v;

	jvalue(&jp, &v);
	return v;
}

static void jfree(struct jv *v)
{
	for (size_t i = 0; i < v->n; i++) {
		jfree(&v->items[i]);
		if (v->keys != NULL)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->s);
}

static const struct jv *jget(const struct jv *o, const char *key)
{
	static const struct jv none = { .t = J_NULL };

	if (o != NULL && o->t == J_OBJ)
		for (size_t i = 0; i < o->n; i++)
			if (strcmp(o->keys[i], key) == 0)
				return &o->items[i];
	return &none;
}

/* A number or string as text ("-" when absent). */
static const char *jtext(const struct jv *v)
{
	switch (v->t) {
	case J_NUM:
	case J_STR: return v->s;
	case J_TRUE: return "true";
	case J_FALSE: return "false";
	default: return "-";
	}
}

static double jnum(const struct jv *v)
{
	return v->t == J_NUM ? strtod(v->s, NULL) : 0;
}

static struct jv get_json(const char *path, int *status)
{
	struct reply r = http("GET", path);
	struct jv v;

	if (r.status != 200 && !(status != NULL && r.status == 503))
		die("GET %s: HTTP %d: %s", path, r.status, r.body);
	if (status != NULL)
		*status = r.status;
	v = jparse(&r);
	free(r.body);
	return v;
}

/* ---- Prometheus text ---------------------------------------------------- */

struct sample {
	char *name;
	char *labels;                   /* raw, without braces ("" if none) */
	double value;
};

struct samples {
	struct sample *s;
	size_t n;
};

static struct samples get_metrics(void)
{
	struct reply r = http("GET", "/metrics");
	struct samples out = { 0 };
	char *line, *save = NULL;

	if (r.status != 200)
		die("GET /metrics: HTTP %d", r.status);
	for (line = strtok_r(r.body, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char *brace, *sp;
		struct sample *s;

		if (line[0] == '#' || line[0] == '\0')
			continue;
		brace = strchr(line, '{');
		sp = strrchr(line, ' ');
		if (sp == NULL)
			continue;
		out.s = xrealloc(out.s, (out.n + 1) * sizeof(*out.s));
		s = &out.s[out.n++];
		*sp = '\0';
		s->value = strtod(sp + 1, NULL);
		if (brace != NULL && brace < sp) {
			char *end = strrchr(line, '}');

			*brace = '\0';
			if (end != NULL)
				*end = '\0';
			s->labels = strdup(brace + 1);
		} else {
			s->labels = strdup("");
		}
		s->name = strdup(line);
		if (s->name == NULL || s->labels == NULL)
			die("out of memory");
	}
	free(r.body);
	return out;
}

static void free_metrics(struct samples *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->s[i].name);
		free(m->s[i].labels);
	}
	free(m->s);
}

/* The value of label `key` in a raw label list, copied into buf ("" if
 * absent). Values are escaped Prometheus strings; \" and \\ are undone. */
static const char *label(const struct sample *s, const char *key, char *buf, size_t len)
{
	size_t kl = strlen(key), o = 0;
	const char *p = s->labels;

	buf[0] = '\0';
	while (*p != '\0') {
		bool match = strncmp(p, key, kl) == 0 && p[kl] == '=';

		p = strchr(p, '"');
		if (p == NULL)
			return buf;
		for (p++; *p != '\0' && *p != '"'; p++) {
			char c = *p;

			if (c == '\\' && p[1] != '\0')
				c = *++p == 'n' ? '\n' : *p;
			if (match && o + 1 < len)
				buf[o++] = c;
		}
		if (match) {
			buf[o] = '\0';
			return buf;
		}
		if (*p == '"')
			p++;
		if (*p == ',')
			p++;
	}
	return buf;
}

/* Sum of every sample of `name` whose label `key` is `value` (key NULL: all). */
static double msum(const struct samples *m, const char *name, const char *key, const char *value)
{
	char buf[256];
	double sum = 0;

	for (size_t i = 0; i < m->n; i++) {
		if (strcmp(m->s[i].name, name) != 0)
			continue;
		if (key != NULL && strcmp(label(&m->s[i], key, buf, sizeof(buf)), value) != 0)
			continue;
		sum += m->s[i].value;
	}
	return sum;
}

/* Upper bound of the bucket holding quantile q of histogram `name` summed
 * over all its series; NAN when it has no observation. */
static double quantile(const struct samples *m, const char *name, double q)
{
	char bucket[128], le[64];
	double les[64], cum[64], count;
	size_t nb = 0;

	snprintf(bucket, sizeof(bucket), "%s_bucket", name);
	for (size_t i = 0; i < m->n; i++) {
		double b;
		size_t k;

		if (strcmp(m->s[i].name, bucket) != 0)
			continue;
		label(&m->s[i], "le", le, sizeof(le));
		b = strcmp(le, "+Inf") == 0 ? (double)INFINITY : strtod(le, NULL);
		for (k = 0; k < nb && les[k] != b; k++)
			;
		if (k == nb) {
			if (nb == 64)
				continue;
			les[nb] = b;
			cum[nb++] = 0;
		}
		cum[k] += m->s[i].value;
	}
	count = nb ? cum[nb - 1] : 0;   /* +Inf comes last */
	if (count <= 0)
		return (double)NAN;
	for (size_t k = 0; k < nb; k++)
		if (cum[k] >= q * count)
			return les[k];
	return (double)INFINITY;
}

static void print_seconds(const char *what, double s)
{
	if (isnan(s))
		printf("  %-22s -\n", what);
	else if (isinf(s))
		printf("  %-22s > 100 s\n", what);
	else if (s < 0.001)
		printf("  %-22s <= %.0f us\n", what, s * 1e6);
	else if (s < 1)
		printf("  %-22s <= %.2f ms\n", what, s * 1e3);
	else
		printf("  %-22s <= %.2f s\n", what, s);
}

/* ---- commands ----------------------------------------------------------- */

static void print_uptime(double s)
{
	unsigned long t = (unsigned long)s;

	if (t >= 86400)
		printf("%lud %luh %lum", t / 86400, t % 86400 / 3600, t % 3600 / 60);
	else if (t >= 3600)
		printf("%luh %lum %lus", t / 3600, t % 3600 / 60, t % 60);
	else if (t >= 60)
		printf("%lum %lus", t / 60, t % 60);
	else
		printf("%.1fs", s);
}

static int cmd_status(void)
{
	struct jv st = get_json("/status", NULL);
	const struct jv *rs = jget(&st, "reactors"), *tot = jget(&st, "totals");
	const struct jv *resp = jget(tot, "responses");

	printf("weir %s, pid %s, config %s (generation %s), up ", jtext(jget(&st, "version")),
	       jtext(jget(&st, "pid")), jtext(jget(&st, "config")),
	       jtext(jget(&st, "generation")));
	print_uptime(jnum(jget(&st, "uptime_seconds")));
	printf("\nadmin %s, reload %s\n", jtext(jget(&st, "admin")),
	       jget(&st, "reload_supported")->t == J_TRUE ? "supported" : "not supported");
	if (jget(&st, "last_reload_error")->t == J_STR)
		printf("last reload refused: %s\n", jtext(jget(&st, "last_reload_error")));
	printf("requests %s (2xx %s, 3xx %s, 4xx %s, 5xx %s, aborted %s), connections accepted "
	       "%s, refused %s\n\n",
	       jtext(jget(tot, "requests")), jtext(jget(resp, "2xx")), jtext(jget(resp, "3xx")),
	       jtext(jget(resp, "4xx")), jtext(jget(resp, "5xx")), jtext(jget(resp, "aborted")),
	       jtext(jget(tot, "accepted")), jtext(jget(tot, "refused")));
	printf("%-7s %-4s %-8s %8s %8s %10s %12s %12s %6s %9s %9s\n", "reactor", "cpu", "state",
	       "clients", "upstrms", "requests", "loops", "completions", "bufs", "exhausted",
	       "overflow");
	for (size_t i = 0; rs->t == J_ARR && i < rs->n; i++) {
		const struct jv *r = &rs->items[i], *c = jget(r, "connections");

		printf("%-7s %-4s %-8s %8s %8s %10s %12s %12s %6s %9s %9s\n", jtext(jget(r, "id")),
		       jtext(jget(r, "cpu")), jtext(jget(r, "state")), jtext(jget(c, "client")),
		       jtext(jget(c, "upstream")), jtext(jget(r, "requests")),
		       jtext(jget(r, "loops")), jtext(jget(r, "completions")),
		       jtext(jget(r, "buffers_in_use")), jtext(jget(r, "buffer_exhaustions")),
		       jtext(jget(r, "cq_overflows")));
	}
	jfree(&st);
	return 0;
}

static int cmd_health(void)
{
	int code;
	struct jv h = get_json("/health", &code);
	const struct jv *ups = jget(&h, "upstreams"), *ags = jget(&h, "agents");
	const struct jv *rs = jget(&h, "reactors");
	unsigned running = 0;

	for (size_t i = 0; rs->t == J_ARR && i < rs->n; i++)
		running += strcmp(jtext(jget(&rs->items[i], "state")), "running") == 0;
	printf("%s (HTTP %d): %u of %zu reactors running\n", jtext(jget(&h, "status")), code,
	       running, rs->t == J_ARR ? rs->n : 0);
	for (size_t i = 0; ups->t == J_ARR && i < ups->n; i++) {
		const struct jv *u = &ups->items[i], *ss = jget(u, "servers");

		printf("upstream %s: %s (%s usable)\n", jtext(jget(u, "name")),
		       jtext(jget(u, "state")), jtext(jget(u, "usable_servers")));
		for (size_t j = 0; ss->t == J_ARR && j < ss->n; j++)
			printf("  %-40s %-8s failures %s\n", jtext(jget(&ss->items[j], "address")),
			       jtext(jget(&ss->items[j], "state")),
			       jtext(jget(&ss->items[j], "failures")));
	}
	for (size_t i = 0; ags->t == J_ARR && i < ags->n; i++) {
		const struct jv *a = &ags->items[i];

		printf("agent %s: %s (links up %s, breakers open %s)\n", jtext(jget(a, "name")),
		       jtext(jget(a, "state")), jtext(jget(a, "links_up")),
		       jtext(jget(a, "breaker_open")));
	}
	jfree(&h);
	return code == 200 ? 0 : 1;
}

static int cmd_metrics(void)
{
	static const char *const classes[] = { "2xx", "3xx", "4xx", "5xx", "1xx", "aborted" };
	static const char *const reasons[] = { "connect", "connect_timeout", "reset", "send",
					       "timeout", "protocol", "stale" };
	struct samples m = get_metrics();
	double reqs = msum(&m, "weir_requests_total", NULL, NULL);
	double dcount = msum(&m, "weir_request_duration_seconds_count", NULL, NULL);
	double dsum = msum(&m, "weir_request_duration_seconds_sum", NULL, NULL);

	printf("requests               %.0f\n", reqs);
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
		double v = msum(&m, "weir_requests_total", "status_class", classes[i]);

		if (v != 0)
			printf("  %-20s %.0f (%.1f%%)\n", classes[i], v, reqs ? 100 * v / reqs : 0);
	}
	printf("request duration\n");
	if (dcount > 0)
		printf("  %-22s %.3f ms\n", "mean", 1e3 * dsum / dcount);
	print_seconds("p50", quantile(&m, "weir_request_duration_seconds", 0.5));
	print_seconds("p99", quantile(&m, "weir_request_duration_seconds", 0.99));
	printf("upstream response\n");
	print_seconds("p50", quantile(&m, "weir_upstream_response_seconds", 0.5));
	print_seconds("p99", quantile(&m, "weir_upstream_response_seconds", 0.99));
	printf("upstream failures      %.0f\n",
	       msum(&m, "weir_upstream_failures_total", NULL, NULL));
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		double v = msum(&m, "weir_upstream_failures_total", "reason", reasons[i]);

		if (v != 0)
			printf("  %-20s %.0f\n", reasons[i], v);
	}
	printf("connections open       client %.0f, upstream %.0f, agent %.0f\n",
	       msum(&m, "weir_connections_open", "peer", "client"),
	       msum(&m, "weir_connections_open", "peer", "upstream"),
	       msum(&m, "weir_connections_open", "peer", "agent"));
	printf("connections            accepted %.0f, refused %.0f\n",
	       msum(&m, "weir_connections_total", "peer", "client"),
	       msum(&m, "weir_connections_refused_total", NULL, NULL));
	printf("client bytes           in %.0f, out %.0f\n",
	       msum(&m, "weir_bytes_received_total", "peer", "client"),
	       msum(&m, "weir_bytes_sent_total", "peer", "client"));
	printf("io_uring               loops %.0f, completions %.0f, submissions %.0f\n",
	       msum(&m, "weir_uring_loop_iterations_total", NULL, NULL),
	       msum(&m, "weir_uring_completions_total", NULL, NULL),
	       msum(&m, "weir_uring_submissions_total", NULL, NULL));
	printf("                       cq overflows %.0f, buffer exhaustions %.0f, buffers in "
	       "use %.0f\n",
	       msum(&m, "weir_uring_cq_overflows_total", NULL, NULL),
	       msum(&m, "weir_uring_buffer_exhaustions_total", NULL, NULL),
	       msum(&m, "weir_uring_buffers_in_use", NULL, NULL));
	free_metrics(&m);
	return 0;
}

static int cmd_agents(void)
{
	int code;
	struct jv h = get_json("/health", &code);
	const struct jv *ags = jget(&h, "agents");
	struct samples m = get_metrics();

	if (ags->t != J_ARR || ags->n == 0) {
		printf("no agents configured\n");
		jfree(&h);
		free_metrics(&m);
		return 0;
	}
	printf("%-20s %-8s %5s %10s %9s %9s %9s %9s %12s\n", "agent", "state", "links", "calls",
	       "in_flight", "timeouts", "failures", "blocks", "mean_latency");
	for (size_t i = 0; i < ags->n; i++) {
		const char *name = jtext(jget(&ags->items[i], "name"));
		double n = msum(&m, "weir_agent_latency_seconds_count", "agent", name);
		double s = msum(&m, "weir_agent_latency_seconds_sum", "agent", name);
		char lat[32] = "-";

		if (n > 0)
			snprintf(lat, sizeof(lat), "%.3f ms", 1e3 * s / n);
		printf("%-20s %-8s %5s %10.0f %9.0f %9.0f %9.0f %9.0f %12s\n", name,
		       jtext(jget(&ags->items[i], "state")), jtext(jget(&ags->items[i], "links_up")),
		       msum(&m, "weir_agent_calls_total", "agent", name),
		       msum(&m, "weir_agent_in_flight", "agent", name),
		       msum(&m, "weir_agent_timeouts_total", "agent", name),
		       msum(&m, "weir_agent_failures_total", "agent", name),
		       msum(&m, "weir_agent_blocks_total", "agent", name), lat);
	}
	jfree(&h);
	free_metrics(&m);
	return 0;
}

static int cmd_reload(void)
{
	struct jv st = get_json("/status", NULL);
	double gen = jnum(jget(&st, "generation"));
	double fails = jnum(jget(&st, "reload_failures"));
	struct timespec t0, now;
	struct reply r;

	jfree(&st);
	r = http("POST", "/reload");
	if (r.status == 501) {  /* a weir from before hot reload */
		fprintf(stderr, "weirctl: reload: not supported by this weir; restart it to load a "
				"new configuration\n");
		free(r.body);
		return 1;
	}
	if (r.status != 202)
		die("POST /reload: HTTP %d: %s", r.status, r.body);
	free(r.body);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct jv cur = get_json("/status", NULL);
		int ret = -1;

		if (jnum(jget(&cur, "generation")) > gen) {
			printf("reloaded: configuration generation %s\n",
			       jtext(jget(&cur, "generation")));
			ret = 0;
		} else if (jnum(jget(&cur, "reload_failures")) > fails) {
			fprintf(stderr, "weirctl: reload refused, the old configuration keeps "
					"serving: %s\n", jtext(jget(&cur, "last_reload_error")));
			ret = 1;
		}
		jfree(&cur);
		if (ret >= 0)
			return ret;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9 >
		    timeout_s) {
			fprintf(stderr, "weirctl: reload: no new generation after %.0f s\n",
				timeout_s);
			return 1;
		}
		usleep(100 * 1000);
	}
}

static int cmd_get(const char *path)
{
	struct reply r = http("GET", path);
	int ok = r.status >= 200 && r.status < 300;

	fwrite(r.body, 1, r.len, stdout);
	free(r.body);
	return ok ? 0 : 1;
}

static void usage(FILE *f)
{
	fputs("usage: weirctl [--admin HOST:PORT] [--timeout SECONDS] COMMAND\n"
	      "  status          version, pid, config generation, uptime, reactors\n"
	      "  health          upstreams, servers and agents with their state\n"
	      "                  (exit 1 when weir answers 503: down or stopping)\n"
	      "  metrics         summary of /metrics: requests, latency, failures, I/O\n"
	      "  agents          per agent: state, calls, in flight, timeouts, blocks\n"
	      "  reload          re-read the configuration (exit 1 if refused)\n"
	      "  get PATH        print an admin endpoint's body (e.g. /metrics)\n"
	      "  --admin         admin listener address (default 127.0.0.1:9090)\n"
	      "  --timeout       seconds to wait for weir (default 5; reload: 10)\n",
	      f);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "admin", required_argument, NULL, 'a' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool timeout_set = false;
	const char *cmd;
	int ch;

	while ((ch = getopt_long(argc, argv, "+a:t:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			admin_addr = optarg;
			break;
		case 't': {
			char *end;

			timeout_s = strtod(optarg, &end);
			if (*end != '\0' || !(timeout_s > 0 && timeout_s <= 3600)) {
				fprintf(stderr, "weirctl: --timeout: expected 0..3600 seconds\n");
				return 2;
			}
			timeout_set = true;
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind++];
	if (strcmp(cmd, "get") == 0 && optind + 1 == argc && argv[optind][0] == '/')
		return cmd_get(argv[optind]);
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (strcmp(cmd, "status") == 0)
		return cmd_status();
	if (strcmp(cmd, "health") == 0)
		return cmd_health();
	if (strcmp(cmd, "metrics") == 0)
		return cmd_metrics();
	if (strcmp(cmd, "agents") == 0)
		return cmd_agents();
	if (strcmp(cmd, "reload") == 0) {
		if (!timeout_set)
			timeout_s = 10;
		return cmd_reload();
	}
	fprintf(stderr, "weirctl: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
