/* The access log: formatting and the buffered io_uring writes. The contract
 * is in weir/accesslog.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "weir/alloc.h"
#include "weir/proxy.h"

#define GROWTH 16u      /* a buffer may grow to GROWTH x size while a write is slow */

static void alog_timer(struct weir_timer *t);

static int open_path(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

static void settings(struct weir_alog *l, const struct weir_conf_access_log *c)
{
	l->format = c->format;
	l->size = c->buffer;
	l->flush_ms = c->flush_ms;
}

int weir__alog_open(struct weir_reactor *r)
{
	struct weir_alog *l = &r->alog;
	const struct weir_conf_access_log *c = &r->conf->access_log;

	l->fd = -1;
	l->old_fd = -1;
	weir_timer_init(&l->timer, alog_timer);
	if (c->path == NULL)
		return 0;
	l->path = weir_strndup(c->path, strlen(c->path));
	if (l->path == NULL)
		return -ENOMEM;
	l->fd = open_path(c->path);
	if (l->fd < 0) {
		int err = -errno;

		fprintf(stderr, "weir: reactor %u: access log %s: %s\n", r->id, c->path,
			strerror(errno));
		weir_free(l->path);
		l->path = NULL;
		return err;
	}
	settings(l, c);
	return 0;
}

/* Writes the rest of the buffer being written. */
static void write_rest(struct weir_reactor *r)
{
	struct weir_alog *l = &r->alog;
	unsigned w = l->active ^ 1u;
	struct io_uring_sqe *sqe = weir__sqe(r);

	/* offset -1: the file position; O_APPEND makes every write an append */
	io_uring_prep_write(sqe, l->old_fd >= 0 ? l->old_fd : l->fd, l->buf[w] + l->woff,
			    l->len[w] - l->woff, (uint64_t)-1);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)&r->alog | WEIR_OP_LOG);
}

/* Hands the active buffer to the kernel, unless a write is in flight (its
 * completion starts the next one). */
static void submit(struct weir_reactor *r)
{
	struct weir_alog *l = &r->alog;

	if (l->writing || l->len[l->active] == 0 || l->fd < 0)
		return;
	l->active ^= 1u;
	l->woff = 0;
	l->writing = true;
	weir_timer_cancel(&r->wheel, &l->timer);
	write_rest(r);
}

static void alog_timer(struct weir_timer *t)
{
	struct weir_reactor *r = weir_container_of(t, struct weir_reactor, alog.timer);

	submit(r);
}

void weir__alog_on_write(struct weir_reactor *r, int res)
{
	struct weir_alog *l = &r->alog;
	unsigned w = l->active ^ 1u;

	if (res == 0)
		res = -EIO;     /* no progress: do not resubmit forever */
	if (res < 0 && res != -EINTR && res != -EAGAIN) {
		if (!l->error_logged)
			fprintf(stderr, "weir: reactor %u: access log %s: write: %s (lines dropped "
					"until it works again)\n", r->id, l->path, strerror(-res));
		l->error_logged = true;
		weir_metrics_add(&r->metrics.d.log_dropped_bytes, l->len[w] - l->woff);
		l->woff = l->len[w];
	} else if (res > 0) {
		l->woff += (uint32_t)res;
		l->error_logged = false;
	}
	if (l->woff < l->len[w]) {
		write_rest(r);  /* short write */
		return;
	}
	l->len[w] = 0;
	l->writing = false;
	if (l->old_fd >= 0) {
		close(l->old_fd);
		l->old_fd = -1;
	}
	/* what piled up meanwhile: at once if full, else on the timer */
	if (l->len[l->active] >= l->size)
		submit(r);
	else if (l->len[l->active] != 0 && !weir_timer_armed(&l->timer))
		weir_timer_arm(&r->wheel, &l->timer, weir__now(r) + l->flush_ms);
}

bool weir__alog_busy(const struct weir_reactor *r)
{
	return r->alog.writing;
}

void weir__log_reopen(struct weir_reactor *r)
{
	struct weir_alog *l = &r->alog;
	const struct weir_conf_access_log *c = &r->conf->access_log;
	char *path = NULL;
	int fd = -1;

	if (c->path != NULL) {
		path = weir_strndup(c->path, strlen(c->path));
		fd = open_path(c->path);
		if (path == NULL || fd < 0) {
			fprintf(stderr, "weir: reactor %u: access log %s: reopen: %s; keeping the "
					"old file\n", r->id, c->path,
				path == NULL ? "out of memory" : strerror(errno));
			weir_free(path);
			if (fd >= 0)
				close(fd);
			return;
		}
	}
	/* lines already formatted go to the file they were written for */
	if (l->fd >= 0) {
		if (!l->writing && l->len[l->active] != 0)
			submit(r);
		if (l->writing) {
			if (l->old_fd >= 0)
				close(l->old_fd);       /* reopened twice during one write */
			l->old_fd = l->fd;
		} else {
			close(l->fd);
		}
	}
	weir_free(l->path);
	l->path = path;
	l->fd = fd;
	settings(l, c);
}

/* Reload: reopen only when the file or format changed. */
void weir__alog_conf_changed(struct weir_reactor *r, const struct weir_conf *old)
{
	const struct weir_conf_access_log *a = &old->access_log, *b = &r->conf->access_log;

	if ((a->path == NULL) != (b->path == NULL) ||
	    (a->path != NULL && strcmp(a->path, b->path) != 0) || a->format != b->format)
		weir__log_reopen(r);
	else
		settings(&r->alog, b);
}

void weir__alog_fini(struct weir_reactor *r)
{
	struct weir_alog *l = &r->alog;

	/* the loop waited for the write in flight: write the rest, blocking
	 * is fine at exit */
	for (unsigned i = 0; i < 2 && l->fd >= 0; i++) {
		unsigned b = l->active ^ 1u ^ i;        /* older buffer first */
		uint32_t off = 0;

		while (off < l->len[b]) {
			ssize_t n = write(l->fd, l->buf[b] + off, l->len[b] - off);

			if (n <= 0 && errno != EINTR)
				break;
			if (n > 0)
				off += (uint32_t)n;
		}
		l->len[b] = 0;
	}
	if (l->fd >= 0)
		close(l->fd);
	if (l->old_fd >= 0)
		close(l->old_fd);
	l->fd = l->old_fd = -1;
	weir_free(l->buf[0]);
	weir_free(l->buf[1]);
	weir_free(l->path);
	l->buf[0] = l->buf[1] = NULL;
	l->path = NULL;
}

/* ---- formatting ----------------------------------------------------------- */

struct out {
	char *p;
	size_t len, cap;
	bool full;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->full || o->cap - o->len < n) {
		o->full = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

__attribute__((format(printf, 2, 3)))
static void putf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len)
		o->full = true;
	else
		o->len += (size_t)n;
}

static const char hex[] = "0123456789abcdef";

static void put_json_str(struct out *o, const char *s, size_t n)
{
	put(o, "\"", 1);
	for (size_t i = 0; i < n && !o->full; i++) {
		unsigned char ch = (unsigned char)s[i];
		char e[6] = { '\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15] };

		if (ch == '"' || ch == '\\') {
			e[1] = (char)ch;
			put(o, e, 2);
		} else if (ch < 0x20 || ch >= 0x7f) {
			put(o, e, 6);
		} else {
			put(o, (const char *)&ch, 1);
		}
	}
	put(o, "\"", 1);
}

static void put_clf_str(struct out *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n && !o->full; i++) {
		unsigned char ch = (unsigned char)s[i];
		char e[4] = { '\\', 'x', hex[ch >> 4], hex[ch & 15] };

		if (ch == '"' || ch == '\\' || ch < 0x20 || ch >= 0x7f)
			put(o, e, 4);
		else
			put(o, (const char *)&ch, 1);
	}
}

static void put_json_opt(struct out *o, const char *key, const char *s, size_t n)
{
	puts_(o, key);
	if (s == NULL)
		puts_(o, "null");
	else
		put_json_str(o, s, n);
}

/* Wall-clock time of a line from the loop's monotonic clock (no clock read
 * per line): the realtime - monotonic offset is taken again, and the text
 * redone, once per second of log time. Returns the milliseconds. */
static unsigned clock_text(struct weir_alog *l, uint64_t now_ns)
{
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	uint64_t wall = now_ns + l->wall_off;
	struct timespec ts;
	struct tm tm;
	time_t sec;

	if ((time_t)(wall / 1000000000u) != l->tsec || l->tjson[0] == '\0') {
		clock_gettime(CLOCK_REALTIME, &ts);
		l->wall_off = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec - now_ns;
		wall = now_ns + l->wall_off;
		sec = (time_t)(wall / 1000000000u);
		l->tsec = sec;
		gmtime_r(&sec, &tm);
		snprintf(l->tjson, sizeof(l->tjson), "%04d-%02d-%02dT%02d:%02d:%02d",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec);
		snprintf(l->tclf, sizeof(l->tclf), "%02d/%s/%04d:%02d:%02d:%02d +0000",
			 tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
			 tm.tm_sec);
	}
	return (unsigned)(wall % 1000000000u / 1000000u);
}

static void format_json(struct weir_alog *l, struct out *o, const struct weir_alog_rec *q,
			uint64_t now_ns)
{
	unsigned ms = clock_text(l, now_ns);

	putf(o, "{\"time\":\"%s.%03uZ\",\"client\":\"%s:%u\",\"method\":", l->tjson, ms,
	     q->client_ip, q->client_port);
	put_json_str(o, q->method.ptr, q->method.len);
	puts_(o, ",\"target\":");
	put_json_str(o, q->target.ptr, q->target.len);
	put_json_opt(o, ",\"host\":", q->host.ptr, q->host.len);
	putf(o, ",\"protocol\":\"HTTP/1.%d\",\"status\":%d,\"bytes\":%" PRIu64
		",\"request_bytes\":%" PRIu64 ",\"duration\":%.6f", q->minor, q->status, q->bytes,
	     q->req_bytes, (double)q->dur_ns / 1e9);
	put_json_opt(o, ",\"route\":", q->route, q->route != NULL ? strlen(q->route) : 0);
	put_json_opt(o, ",\"upstream\":", q->upstream,
		     q->upstream != NULL ? strlen(q->upstream) : 0);
	if (q->upstream != NULL)
		putf(o, ",\"upstream_time\":%.6f", (double)q->upstream_ns / 1e9);
	else
		puts_(o, ",\"upstream_time\":null");
	put_json_opt(o, ",\"agents\":", q->agents.len != 0 ? q->agents.ptr : NULL, q->agents.len);
	puts_(o, ",\"request_id\":");
	put_json_str(o, q->id.ptr, q->id.len);
	put_json_opt(o, ",\"user_agent\":", q->user_agent.ptr, q->user_agent.len);
	put_json_opt(o, ",\"referer\":", q->referer.ptr, q->referer.len);
	puts_(o, "}\n");
}

/* nginx's "combined": $remote_addr - $remote_user [$time_local] "$request"
 * $status $body_bytes_sent "$http_referer" "$http_user_agent" */
static void format_combined(struct weir_alog *l, struct out *o, const struct weir_alog_rec *q,
			    uint64_t now_ns)
{
	clock_text(l, now_ns);
	putf(o, "%s - - [%s] \"", q->client_ip, l->tclf);
	put_clf_str(o, q->method.ptr, q->method.len);
	put(o, " ", 1);
	put_clf_str(o, q->target.ptr, q->target.len);
	putf(o, " HTTP/1.%d\" %d %" PRIu64 " \"", q->minor, q->status, q->bytes);
	if (q->referer.ptr != NULL)
		put_clf_str(o, q->referer.ptr, q->referer.len);
	else
		put(o, "-", 1);
	put(o, "\" \"", 3);
	if (q->user_agent.ptr != NULL)
		put_clf_str(o, q->user_agent.ptr, q->user_agent.len);
	else
		put(o, "-", 1);
	put(o, "\"\n", 2);
}

/* Whether the active buffer has (or can grow to have) room for `need` bytes. */
static bool room(struct weir_reactor *r, size_t need)
{
	struct weir_alog *l = &r->alog;
	unsigned a = l->active;
	size_t want;

	if ((size_t)(l->cap[a] - l->len[a]) >= need)
		return true;
	if (l->len[a] != 0 && !l->writing) {
		submit(r);
		a = l->active;
		if ((size_t)(l->cap[a] - l->len[a]) >= need)
			return true;
	}
	/* grow: to the configured size, or beyond it while a write is slow */
	want = WEIR_MAX((size_t)l->size, (size_t)l->len[a] + need);
	if (want > (size_t)l->size * GROWTH)
		return false;
	if (want > l->cap[a]) {
		size_t ncap = WEIR_MAX(want, (size_t)l->cap[a] * 2);
		char *nb;

		ncap = WEIR_MIN(ncap, (size_t)l->size * GROWTH);
		nb = weir_realloc(l->buf[a], ncap);
		if (nb == NULL)
			return false;
		l->buf[a] = nb;
		l->cap[a] = (uint32_t)ncap;
	}
	return true;
}

/* An upper bound of the formatted line: every string byte may take six
 * (JSON \u00XX). */
static size_t line_bound(const struct weir_alog_rec *q)
{
	size_t n = q->method.len + q->target.len + q->host.len + q->user_agent.len +
		   q->referer.len + q->agents.len + q->id.len;

	n += q->route != NULL ? strlen(q->route) : 0;
	n += q->upstream != NULL ? strlen(q->upstream) : 0;
	return 6 * n + 512;
}

void weir__alog_write(struct weir_reactor *r, const struct weir_alog_rec *q)
{
	struct weir_alog *l = &r->alog;
	struct out o;
	unsigned a;

	if (l->fd < 0)
		return;
	if (!room(r, line_bound(q))) {
		weir_metrics_inc(&r->metrics.d.log_dropped);
		return;
	}
	a = l->active;
	o.p = l->buf[a] + l->len[a];
	o.len = 0;
	o.cap = l->cap[a] - l->len[a];
	o.full = false;
	if (l->format == WEIR_LOG_COMBINED)
		format_combined(l, &o, q, weir__now_ns(r));
	else
		format_json(l, &o, q, weir__now_ns(r));
	if (o.full) {
		weir_metrics_inc(&r->metrics.d.log_dropped);
		return;
	}
	l->len[a] += (uint32_t)o.len;
	weir_metrics_inc(&r->metrics.d.log_lines);
	if (l->len[a] >= l->size)
		submit(r);
	else if (!l->writing && !weir_timer_armed(&l->timer))
		weir_timer_arm(&r->wheel, &l->timer, weir__now(r) + l->flush_ms);
}
