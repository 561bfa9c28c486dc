/* libweir-agent server: configuration, listeners, the I/O thread's epoll
 * loop, connections (receive buffers, frame splitting, HELLO, output,
 * GOAWAY, close) and shutdown. Requests are in req.c.
 *
 * Receive buffers are refcounted: a body chunk handed to a worker points
 * into the buffer it arrived in, so a buffer still referenced is never
 * overwritten; the connection moves its partial frame to a fresh buffer
 * instead (the one copy, of an incomplete frame only). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "sdk-internal.h"

#define RBUF_DEFAULT (64u * 1024u)
#define RBUF_MIN_READ 4096u
#define OUT_PAUSE (4u << 20)            /* stop reading while this much waits to be sent */
#define OUT_RESUME (1u << 20)
#define EPOLL_TAG_EVFD 0u               /* data.u64: 0 eventfd, 1..16 listener i+1, else conn */
#define EPOLL_TAG_SHM (WEIR__SDK_MAX_LISTENERS + 1u) /* a shm eventfd: rings are polled */

static __thread const struct weir_agent_server *tl_io;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void weir__sdk_log(const struct weir_agent_server *s, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (level > s->cfg.log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s->cfg.log != NULL)
		s->cfg.log(s->cfg.user, level, msg);
	else
		fprintf(stderr, "weir-agent: %s\n", msg);
}

bool weir__sdk_on_io_thread(const struct weir_agent_server *s)
{
	return tl_io == s;
}

void weir__sdk_wake(struct weir_agent_server *s)
{
	uint64_t one = 1;

	if (!atomic_exchange(&s->woken, true)) {
		ssize_t n = write(s->evfd, &one, sizeof(one));

		(void)n;        /* EAGAIN: the counter is already non-zero */
	}
}

void weir__sdk_rbuf_unref(struct weir__sdk_rbuf *rb)
{
	if (rb != NULL && atomic_fetch_sub_explicit(&rb->ref, 1, memory_order_acq_rel) == 1)
		free(rb);
}

static struct weir__sdk_rbuf *rbuf_new(uint32_t cap)
{
	struct weir__sdk_rbuf *rb = malloc(sizeof(*rb) + cap);

	if (rb != NULL) {
		atomic_init(&rb->ref, 1);
		rb->cap = cap;
	}
	return rb;
}

/* ---- configuration ------------------------------------------------------------ */

static void wq_init(struct weir__sdk_wq *q, struct weir_agent_server *s, bool is_io)
{
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	q->s = s;
	q->is_io = is_io;
}

int weir_agent_server_new(const struct weir_agent_config *cfg, struct weir_agent_server **out)
{
	struct weir_agent_server *s;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EPOLL_TAG_EVFD };
	unsigned nq;
	int err = -ENOMEM;

	*out = NULL;
	if (cfg->workers > 256 || (cfg->events & ~WEIR_AGENT_EV_ALL) != 0 ||
	    (cfg->name != NULL && strlen(cfg->name) > WEIR_AGENT_MAX_NAME))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->cfg = *cfg;
	s->epfd = s->evfd = -1;
	if (cfg->name != NULL)
		strcpy(s->name, cfg->name);
	s->cfg.name = s->name;
	if (s->cfg.max_in_flight == 0 || s->cfg.max_in_flight > 4096)
		s->cfg.max_in_flight = 4096;
	if (s->cfg.max_frame == 0)
		s->cfg.max_frame = WEIR_AGENT_MAX_FRAME_DEFAULT;
	if (s->cfg.max_frame < WEIR_AGENT_MAX_FRAME_MIN)
		s->cfg.max_frame = WEIR_AGENT_MAX_FRAME_MIN;
	if (s->cfg.max_frame > WEIR_AGENT_MAX_FRAME_CEIL)
		s->cfg.max_frame = WEIR_AGENT_MAX_FRAME_CEIL;
	if (s->cfg.drain_ms == 0)
		s->cfg.drain_ms = 5000;
	if (s->cfg.hello_timeout_ms == 0)
		s->cfg.hello_timeout_ms = 10000;
	if (s->cfg.log_level == 0)
		s->cfg.log_level = WEIR_AGENT_LOG_INFO;
	s->events = cfg->events;
	if (s->events == 0) {
		const struct weir_agent_callbacks *cb = &cfg->cb;

		s->events = (cb->request_body ? WEIR_AGENT_EV_REQUEST_BODY : 0) |
			    (cb->response_headers ? WEIR_AGENT_EV_RESPONSE_HEADERS : 0) |
			    (cb->response_body ? WEIR_AGENT_EV_RESPONSE_BODY : 0) |
			    (cb->request_done ? WEIR_AGENT_EV_REQUEST_DONE : 0);
	}
	s->events |= WEIR_AGENT_EV_REQUEST_HEADERS;
	if (s->events & WEIR_AGENT_EV_RESPONSE_BODY)
		s->events |= WEIR_AGENT_EV_RESPONSE_HEADERS;
	s->caps = (cfg->credit ? WEIR_AGENT_CAP_CREDIT : 0) | (cfg->no_shm ? 0 : WEIR_AGENT_CAP_SHM);
	pthread_mutex_init(&s->mu, NULL);
	atomic_init(&s->stop_req, false);
	atomic_init(&s->woken, false);

	s->nworkers = cfg->workers;
	nq = s->nworkers != 0 ? s->nworkers : 1;
	s->wqs = calloc(nq, sizeof(*s->wqs));
	if (s->wqs == NULL)
		goto fail;
	for (unsigned i = 0; i < nq; i++) {
		wq_init(&s->wqs[i], s, s->nworkers == 0);
		s->wqs[i].reply = weir_agent_reply_new();
		if (s->wqs[i].reply == NULL)
			goto fail;
	}
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->epfd < 0 || s->evfd < 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->evfd, &ev) != 0) {
		err = -errno;
		goto fail;
	}
	*out = s;
	return 0;
fail:
	weir_agent_server_free(s);
	return err;
}

void weir_agent_server_free(struct weir_agent_server *s)
{
	if (s == NULL)
		return;
	for (unsigned i = 0; i < s->nls; i++) {
		if (s->ls[i].fd >= 0)
			close(s->ls[i].fd);
		if (s->ls[i].unix_path != NULL && !s->ran)
			unlink(s->ls[i].unix_path);
		free(s->ls[i].unix_path);
	}
	for (unsigned i = 0; i < s->nadopt; i++)
		close(s->adopt[i]);
	free(s->adopt);
	if (s->wqs != NULL) {
		for (unsigned i = 0; i < (s->nworkers != 0 ? s->nworkers : 1); i++) {
			weir_agent_reply_free(s->wqs[i].reply);
			pthread_mutex_destroy(&s->wqs[i].mu);
			pthread_cond_destroy(&s->wqs[i].cv);
		}
		free(s->wqs);
	}
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->evfd >= 0)
		close(s->evfd);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

void weir_agent_server_stats(const struct weir_agent_server *s, struct weir_agent_stats *st)
{
	st->connections = atomic_load(&s->st.connections);
	st->open_connections = atomic_load(&s->st.open_connections);
	st->requests = atomic_load(&s->st.requests);
	st->open_requests = atomic_load(&s->st.open_requests);
	st->frames_in = atomic_load(&s->st.frames_in);
	st->frames_out = atomic_load(&s->st.frames_out);
	st->verdicts = atomic_load(&s->st.verdicts);
	st->protocol_errors = atomic_load(&s->st.protocol_errors);
	st->frames_ignored = atomic_load(&s->st.frames_ignored);
}

/* ---- listeners --------------------------------------------------------------- */

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ? -errno : 0;
}

static int listen_unix(struct weir__sdk_listener *l, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(path) == 0 || strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		/* replace a stale socket file, not a live agent's */
		struct stat st;
		int probe;
		bool stale;

		if (errno != EADDRINUSE)
			goto fail;
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		stale = probe >= 0 && stat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
			connect(probe, (struct sockaddr *)&sa, sizeof(sa)) != 0 &&
			errno == ECONNREFUSED;
		if (probe >= 0)
			close(probe);
		if (!stale) {
			close(fd);
			return -EADDRINUSE;
		}
		unlink(path);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
			goto fail;
	}
	if (listen(fd, 1024) != 0)
		goto fail;
	l->unix_path = strdup(path);
	if (l->unix_path == NULL) {
		errno = ENOMEM;
		goto fail;
	}
	l->fd = fd;
	snprintf(l->addr, sizeof(l->addr), "unix:%s", path);
	return 0;
fail:
	err = -errno;
	close(fd);
	return err;
}

static void format_addr(const struct sockaddr *sa, char *buf, size_t n)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(buf, n, "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(buf, n, "[%s]:%u", host, port);
	} else {
		snprintf(buf, n, "unix");
	}
}

static int listen_tcp(struct weir__sdk_listener *l, const char *hostport)
{
	char host[256];
	const char *colon, *h = hostport, *port;
	size_t hl;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res, *ai;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = -1, err, one = 1;

	if (*h == '[') {
		colon = strstr(h, "]:");
		if (colon == NULL)
			return -EINVAL;
		h++;
		hl = (size_t)(colon - h);
		port = colon + 2;
	} else {
		colon = strrchr(h, ':');
		if (colon == NULL)
			return -EINVAL;
		hl = (size_t)(colon - h);
		port = colon + 1;
	}
	if (hl >= sizeof(host) || *port == '\0')
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	err = getaddrinfo(hl != 0 ? host : NULL, port, &hints, &res);
	if (err != 0)
		return err == EAI_SYSTEM ? -errno : -EADDRNOTAVAIL;
	err = -EADDRNOTAVAIL;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0)
			break;
		err = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return err;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		format_addr((struct sockaddr *)&ss, l->addr, sizeof(l->addr));
	l->fd = fd;
	return 0;
}

int weir_agent_server_listen(struct weir_agent_server *s, const char *addr)
{
	struct weir__sdk_listener *l;
	struct epoll_event ev = { .events = EPOLLIN };
	int err;

	if (s->nls == WEIR__SDK_MAX_LISTENERS)
		return -ENOSPC;
	if (s->running || s->ran)
		return -EBUSY;
	l = &s->ls[s->nls];
	memset(l, 0, sizeof(*l));
	l->fd = -1;
	if (strncmp(addr, "unix:", 5) == 0)
		err = listen_unix(l, addr + 5);
	else if (addr[0] == '/' || addr[0] == '.')
		err = listen_unix(l, addr);
	else
		err = listen_tcp(l, strncmp(addr, "tcp:", 4) == 0 ? addr + 4 : addr);
	if (err != 0)
		return err;
	ev.data.u64 = s->nls + 1;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, l->fd, &ev) != 0) {
		err = -errno;
		close(l->fd);
		if (l->unix_path != NULL)
			unlink(l->unix_path);
		free(l->unix_path);
		return err;
	}
	s->nls++;
	return 0;
}

int weir_agent_server_address(const struct weir_agent_server *s, unsigned i, char *buf, size_t n)
{
	if (i >= s->nls)
		return -ENOENT;
	snprintf(buf, n, "%s", s->ls[i].addr);
	return 0;
}

int weir_agent_server_adopt(struct weir_agent_server *s, int fd)
{
	int err = 0;

	pthread_mutex_lock(&s->mu);
	if (s->nadopt == s->cadopt) {
		unsigned c = s->cadopt != 0 ? 2 * s->cadopt : 8;
		int *a = realloc(s->adopt, c * sizeof(*a));

		if (a == NULL) {
			err = -ENOMEM;
		} else {
			s->adopt = a;
			s->cadopt = c;
		}
	}
	if (err == 0)
		s->adopt[s->nadopt++] = fd;
	pthread_mutex_unlock(&s->mu);
	if (err != 0) {
		close(fd);
		return err;
	}
	weir__sdk_wake(s);
	return 0;
}

/* ---- connections ------------------------------------------------------------- */

static void conn_free(struct weir__sdk_conn *c)
{
	weir__sdk_shm_free(c);
	free(c->tab);
	free(c->out);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

void weir__sdk_conn_unref(struct weir__sdk_conn *c)
{
	if (atomic_fetch_sub_explicit(&c->ref, 1, memory_order_acq_rel) == 1)
		conn_free(c);
}

char *weir__sdk_out_reserve(struct weir__sdk_conn *c, size_t n)
{
	if (c->closed)
		return NULL;
	if (c->out_len + n > c->out_cap) {
		size_t cap = c->out_cap != 0 ? c->out_cap : 4096;
		char *b;

		while (cap < c->out_len + n)
			cap *= 2;
		b = realloc(c->out, cap);
		if (b == NULL)
			return NULL;
		c->out = b;
		c->out_cap = cap;
	}
	atomic_fetch_add_explicit(&c->s->st.frames_out, 1, memory_order_relaxed);
	return c->out + c->out_len;
}

void weir__sdk_conn_kick(struct weir__sdk_conn *c)
{
	struct weir_agent_server *s = c->s;

	pthread_mutex_lock(&s->mu);
	if (!c->in_flush) {
		c->in_flush = true;
		atomic_fetch_add(&c->ref, 1);
		c->flush_next = s->flush_head;
		s->flush_head = c;
	}
	pthread_mutex_unlock(&s->mu);
	if (!weir__sdk_on_io_thread(s))
		weir__sdk_wake(s);
}

static void conn_epoll(struct weir__sdk_conn *c, bool want_in, bool want_out)
{
	struct epoll_event ev = {
		.events = (want_in ? EPOLLIN : 0) | (want_out ? EPOLLOUT : 0),
		.data.ptr = c,
	};

	if (want_in == !c->rd_paused && want_out == c->want_out)
		return;
	c->rd_paused = !want_in;
	c->want_out = want_out;
	epoll_ctl(c->s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_fail(struct weir__sdk_conn *c, const char *why)
{
	if (!c->dead) {
		c->dead = true;
		c->dead_why = why;
	}
}

static void conn_fail_errno(struct weir__sdk_conn *c, const char *what, int err)
{
	if (!c->dead) {
		snprintf(c->dead_buf, sizeof(c->dead_buf), "%s: %s", what, strerror(err));
		conn_fail(c, c->dead_buf);
	}
}

static void conn_proto_error(struct weir__sdk_conn *c, const char *why)
{
	if (c->dead)
		return;
	atomic_fetch_add_explicit(&c->s->st.protocol_errors, 1, memory_order_relaxed);
	snprintf(c->dead_buf, sizeof(c->dead_buf), "protocol error: %s", why);
	conn_fail(c, c->dead_buf);
}

/* I/O thread: sends what is queued. */
static void conn_flush(struct weir__sdk_conn *c)
{
	size_t pending;
	int err = 0;

	if (c->dead)
		return;
	pthread_mutex_lock(&c->mu);
	if (c->shm_on) {
		/* the socket gets what was queued before SHM_READY went out
		 * (SHM_READY included), the ring everything after */
		while (c->out_off < c->shm_sock_end) {
			ssize_t n = send(c->fd, c->out + c->out_off, c->shm_sock_end - c->out_off,
					 MSG_NOSIGNAL | MSG_DONTWAIT);

			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno != EAGAIN)
					err = errno;
				break;
			}
			c->out_off += (size_t)n;
		}
		if (c->out_off == c->shm_sock_end && c->out_off != 0) {
			memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
			c->out_len -= c->out_off;
			c->shm_sock_end = c->out_off = 0;
		}
		if (err == 0 && c->shm_sock_end == 0 && weir__sdk_shm_flush_locked(c) != 0)
			err = EPROTO;
		pending = c->out_len - c->out_off;
		pthread_mutex_unlock(&c->mu);
		if (err != 0) {
			conn_fail_errno(c, "shm send", err);
			return;
		}
		conn_epoll(c, true, c->shm_sock_end != 0);
		return;
	}
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				err = errno;
			break;
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
	} else if (c->out_off >= 65536) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	pending = c->out_len - c->out_off;
	pthread_mutex_unlock(&c->mu);
	if (err != 0) {
		conn_fail_errno(c, "send", err);
		return;
	}
	/* a peer that does not read what we send is not read either */
	conn_epoll(c, c->rd_paused ? pending <= OUT_RESUME : pending < OUT_PAUSE, pending != 0);
}

static struct weir__sdk_conn *conn_new(struct weir_agent_server *s, int fd, const char *name)
{
	struct weir__sdk_conn *c = calloc(1, sizeof(*c));
	struct epoll_event ev = { .events = EPOLLIN };

	if (c == NULL || set_nonblock(fd) != 0 || weir__sdk_table_init(c, s->cfg.max_in_flight) != 0)
		goto fail;
	c->s = s;
	c->fd = fd;
	atomic_init(&c->ref, 1);
	pthread_mutex_init(&c->mu, NULL);
	c->peer_max_frame = WEIR_AGENT_MAX_FRAME_DEFAULT;
	c->want = WEIR_AGENT_HDR_SIZE;
	c->hello_deadline_ms = now_ms() + s->cfg.hello_timeout_ms;
	snprintf(c->name, sizeof(c->name), "%s", name);
	ev.data.ptr = c;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		pthread_mutex_destroy(&c->mu);
		goto fail;
	}
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	atomic_fetch_add_explicit(&s->st.connections, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->st.open_connections, 1, memory_order_relaxed);
	weir__sdk_log(s, WEIR_AGENT_LOG_DEBUG, "%s: connected", c->name);
	return c;
fail:
	weir__sdk_log(s, WEIR_AGENT_LOG_ERR, "%s: cannot set up the connection: %s", name,
		      strerror(errno != 0 ? errno : ENOMEM));
	if (c != NULL)
		free(c->tab);
	free(c);
	close(fd);
	return NULL;
}

static void conn_close(struct weir__sdk_conn *c)
{
	struct weir_agent_server *s = c->s;

	if (c->dead_why != NULL)
		weir__sdk_log(s, strncmp(c->dead_why, "protocol", 8) == 0 ? WEIR_AGENT_LOG_WARN
									    : WEIR_AGENT_LOG_INFO,
			      "%s: closed: %s", c->name, c->dead_why);
	else
		weir__sdk_log(s, WEIR_AGENT_LOG_DEBUG, "%s: closed by weir", c->name);
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	pthread_mutex_lock(&c->mu);
	c->closed = true;
	weir__sdk_close_all_locked(c);
	pthread_mutex_unlock(&c->mu);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	weir__sdk_rbuf_unref(c->rb);
	c->rb = NULL;
	atomic_fetch_sub_explicit(&s->st.open_connections, 1, memory_order_relaxed);
	weir__sdk_conn_unref(c);
}

static int on_hello(struct weir__sdk_conn *c, const struct weir__sdk_frame *f, const char **why)
{
	struct weir_agent_server *s = c->s;
	struct weir__sdk_hello h;
	struct weir__sdk_hello_reply hr;
	char *w;

	if (f->type != WEIR_AGENT_HELLO) {
		*why = "the first frame is not HELLO";
		return -1;
	}
	if (f->id != 0) {
		*why = "HELLO with a request id";
		return -1;
	}
	if (weir__sdk_dec_hello(f->payload, f->plen, &h, why) != 0)
		return -1;
	if (h.version != WEIR_AGENT_VERSION) {
		*why = "unsupported protocol version";
		return -1;
	}
	c->peer_max_frame = h.max_frame;
	c->caps = s->caps & h.caps;
	c->events = s->events & h.events;
	if (c->events & WEIR_AGENT_EV_RESPONSE_BODY)
		c->events |= WEIR_AGENT_EV_RESPONSE_HEADERS;
	c->events |= WEIR_AGENT_EV_REQUEST_HEADERS;
	c->peer_name_len = h.name.len > WEIR_AGENT_MAX_NAME ? WEIR_AGENT_MAX_NAME : h.name.len;
	if (c->peer_name_len != 0)
		memcpy(c->peer_name, h.name.ptr, c->peer_name_len);
	c->peer_name[c->peer_name_len] = '\0';

	hr.caps = c->caps;
	hr.max_frame = s->cfg.max_frame;
	hr.max_in_flight = s->cfg.max_in_flight;
	hr.events = c->events;
	hr.name = (struct weir_agent_str){ s->name, strlen(s->name) };
	hr.has_window = c->caps & WEIR_AGENT_CAP_CREDIT;
	hr.body_window = s->cfg.body_window;
	pthread_mutex_lock(&c->mu);
	w = weir__sdk_out_reserve(c, WEIR__SDK_SMALL_FRAME);
	if (w != NULL)
		c->out_len += weir__sdk_enc_hello_reply(w, &hr);
	pthread_mutex_unlock(&c->mu);
	if (w == NULL) {
		*why = "out of memory";
		return -1;
	}
	c->hello_done = true;
	weir__sdk_conn_kick(c);
	weir__sdk_log(s, WEIR_AGENT_LOG_INFO,
		      "%s: weir reactor %" PRIu32 " (agent \"%s\"): events 0x%02x, credit %s",
		      c->name, h.reactor, c->peer_name, c->events,
		      c->caps & WEIR_AGENT_CAP_CREDIT ? "on" : "off");
	return 0;
}

/* SHM_SETUP (with 4 fds): map, answer SHM_READY on the socket, then move
 * to the rings. A mapping failure answers its errno and stays on the
 * socket. */
static int on_shm_setup(struct weir__sdk_conn *c, const struct weir__sdk_frame *f,
			const char **why)
{
	struct weir_agent_server *s = c->s;
	int err = 0;
	char *w;

	if (!(c->caps & WEIR_AGENT_CAP_SHM) || f->id != 0) {
		*why = "SHM_SETUP without the shm capability";
		return -1;
	}
	if (weir__sdk_dec_map(f->payload, f->plen, why) != 0)
		return -1;
	err = weir__sdk_shm_setup(c);
	if (err == 0) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u64 = EPOLL_TAG_SHM };

		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, weir__sdk_shm_efd(c), &ev) != 0) {
			err = -errno;
			weir__sdk_shm_free(c);
		}
	}
	pthread_mutex_lock(&c->mu);
	w = weir__sdk_out_reserve(c, WEIR__SDK_SMALL_FRAME);
	if (w != NULL) {
		char *p = w + WEIR_AGENT_HDR_SIZE;
		uint32_t st = (uint32_t)-err;

		*p++ = (char)0x81;
		*p++ = (char)WEIR_AGENT_K_SHM_STATUS;
		*p++ = (char)0xce;
		*p++ = (char)(st >> 24);
		*p++ = (char)(st >> 16);
		*p++ = (char)(st >> 8);
		*p++ = (char)st;
		weir__sdk_hdr_put(w, (uint32_t)(p - w) - WEIR_AGENT_HDR_SIZE, WEIR_AGENT_SHM_READY, 0,
				  0);
		c->out_len += (size_t)(p - w);
		if (err == 0) {
			c->shm_on = true;
			c->shm_sock_end = c->out_len;
		}
	}
	pthread_mutex_unlock(&c->mu);
	if (w == NULL) {
		*why = "out of memory";
		return -1;
	}
	weir__sdk_log(s, WEIR_AGENT_LOG_INFO, "%s: shared memory %s%s", c->name,
		      err == 0 ? "on" : "refused: ", err == 0 ? "" : strerror(-err));
	weir__sdk_conn_kick(c);
	return 0;
}

/* Splits and handles the frames in c's buffer. */
static void conn_parse(struct weir__sdk_conn *c)
{
	struct weir_agent_server *s = c->s;

	while (!c->dead && c->rb != NULL) {
		struct weir__sdk_frame f;
		const char *why = NULL;
		uint32_t need;
		int ret = weir__sdk_frame_parse(c->rb->data + c->rpos, c->rlen - c->rpos,
						c->hello_done ? s->cfg.max_frame
							      : WEIR_AGENT_MAX_FRAME_MIN,
						&f, &need);

		if (ret > 0) {
			c->want = need;
			return;
		}
		if (ret < 0) {
			conn_proto_error(c, "frame length below 12 or frame over max_frame");
			return;
		}
		c->rpos += f.size;
		c->want = WEIR_AGENT_HDR_SIZE;
		atomic_fetch_add_explicit(&s->st.frames_in, 1, memory_order_relaxed);
		if (!c->hello_done)
			ret = on_hello(c, &f, &why);
		else if (c->shm != NULL) {
			why = "a frame on the socket after SHM_SETUP";
			ret = -1;
		}
		else if (f.type == WEIR_AGENT_SHM_SETUP)
			ret = on_shm_setup(c, &f, &why);
		else
			ret = weir__sdk_on_request_frame(c, &f, c->rb, &why);
		if (ret != 0)
			conn_proto_error(c, why);
	}
}

/* Room to receive at least the rest of the current frame (c->want bytes
 * from rpos), never writing over bytes a chunk in flight references. */
static int rbuf_prepare(struct weir__sdk_conn *c)
{
	struct weir__sdk_rbuf *rb = c->rb, *nb;
	uint32_t pending, space, cap;

	if (rb == NULL) {
		c->rb = rbuf_new(c->want > RBUF_DEFAULT ? c->want : RBUF_DEFAULT);
		c->rpos = c->rlen = 0;
		return c->rb != NULL ? 0 : -1;
	}
	pending = c->rlen - c->rpos;
	if (pending == 0 && atomic_load(&rb->ref) == 1)
		c->rpos = c->rlen = 0;
	space = rb->cap - c->rlen;
	if (rb->cap - c->rpos >= c->want && (space >= RBUF_MIN_READ || (space != 0 && c->rpos == 0)))
		return 0;
	/* move the partial frame to the front: of this buffer when nobody
	 * else reads it, else of a new one */
	cap = c->want > RBUF_DEFAULT ? c->want : RBUF_DEFAULT;
	if (atomic_load(&rb->ref) == 1 && rb->cap >= cap) {
		memmove(rb->data, rb->data + c->rpos, pending);
	} else {
		nb = rbuf_new(cap);
		if (nb == NULL)
			return -1;
		memcpy(nb->data, rb->data + c->rpos, pending);
		weir__sdk_rbuf_unref(rb);
		c->rb = nb;
	}
	c->rpos = 0;
	c->rlen = pending;
	return 0;
}

/* recv that also takes descriptors (SHM_SETUP passes 4); unexpected ones
 * are closed. */
static ssize_t recv_fds(struct weir__sdk_conn *c, char *buf, size_t room)
{
	union {
		char b[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { buf, room };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
			      .msg_controllen = sizeof(u.b) };
	ssize_t n = recvmsg(c->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	if (n < 0)
		return n;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
		size_t k;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
			if (c->nfds < 4 && c->shm == NULL && c->hello_done)
				c->fds[c->nfds++] = fd;
			else
				close(fd);
		}
	}
	return n;
}

static void conn_read(struct weir__sdk_conn *c)
{
	for (int i = 0; i < 4 && !c->dead; i++) {
		size_t room;
		ssize_t n;

		if (rbuf_prepare(c) != 0) {
			conn_fail(c, "out of memory");
			return;
		}
		room = c->rb->cap - c->rlen;
		n = recv_fds(c, c->rb->data + c->rlen, room);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				conn_fail_errno(c, "recv", errno);
			return;
		}
		if (n == 0) {
			conn_fail(c, c->rlen != c->rpos ? "closed by weir in the middle of a frame"
							: NULL);
			return;
		}
		c->rlen += (uint32_t)n;
		conn_parse(c);
		if ((size_t)n < room)
			return;
	}
}

/* ---- the loop ----------------------------------------------------------------- */

static void do_accept(struct weir_agent_server *s, unsigned i)
{
	struct weir__sdk_listener *l = &s->ls[i];

	for (int k = 0; k < 64; k++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char name[64];
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				return;
			weir__sdk_log(s, WEIR_AGENT_LOG_ERR, "accept on %s: %s (pausing 1 s)", l->addr,
				      strerror(errno));
			epoll_ctl(s->epfd, EPOLL_CTL_DEL, l->fd, NULL);
			l->paused = true;
			s->listen_resume_ms = now_ms() + 1000;
			return;
		}
		if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
			int one = 1;

			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			format_addr((struct sockaddr *)&ss, name, sizeof(name));
		} else {
			snprintf(name, sizeof(name), "%s#%d", l->addr, fd);
		}
		conn_new(s, fd, name);
	}
}

static void take_adopted(struct weir_agent_server *s)
{
	int *fds;
	unsigned n;

	pthread_mutex_lock(&s->mu);
	fds = s->adopt;
	n = s->nadopt;
	s->adopt = NULL;
	s->nadopt = s->cadopt = 0;
	pthread_mutex_unlock(&s->mu);
	for (unsigned i = 0; i < n; i++) {
		char name[32];

		snprintf(name, sizeof(name), "fd %d", fds[i]);
		if (s->stopping)
			close(fds[i]);
		else
			conn_new(s, fds[i], name);
	}
	free(fds);
}

/* One connection at a time off the list, under the lock: once its flag is
 * clear another thread may put it back on (and rewrite flush_next). */
static void do_flushes(struct weir_agent_server *s)
{
	for (int i = 0; i < 4096; i++) {
		struct weir__sdk_conn *c;

		pthread_mutex_lock(&s->mu);
		c = s->flush_head;
		if (c != NULL) {
			s->flush_head = c->flush_next;
			c->in_flush = false;
		}
		pthread_mutex_unlock(&s->mu);
		if (c == NULL)
			return;
		if (c->fd >= 0)
			conn_flush(c);
		weir__sdk_conn_unref(c);
	}
}

static void send_goaways(struct weir_agent_server *s)
{
	for (struct weir__sdk_conn *c = s->conns; c != NULL; c = c->next) {
		char *w;

		if (!c->hello_done) {
			conn_fail(c, "shutting down");
			continue;
		}
		pthread_mutex_lock(&c->mu);
		w = weir__sdk_out_reserve(c, WEIR__SDK_SMALL_FRAME);
		if (w != NULL)
			c->out_len += weir__sdk_enc_goaway(w, "shutting down");
		pthread_mutex_unlock(&c->mu);
		c->goaway_sent = true;
		weir__sdk_conn_kick(c);
	}
}

static void begin_stop(struct weir_agent_server *s)
{
	s->stopping = true;
	for (unsigned i = 0; i < s->nls; i++) {
		struct weir__sdk_listener *l = &s->ls[i];

		if (l->fd >= 0) {
			epoll_ctl(s->epfd, EPOLL_CTL_DEL, l->fd, NULL);
			close(l->fd);
			l->fd = -1;
		}
		if (l->unix_path != NULL)
			unlink(l->unix_path);
	}
	s->drain_deadline_ms = now_ms() + s->cfg.drain_ms;
	weir__sdk_log(s, WEIR_AGENT_LOG_INFO, "stopping: GOAWAY sent, draining for up to %u ms",
		      s->cfg.drain_ms);
	send_goaways(s);
}

static unsigned close_dead(struct weir_agent_server *s)
{
	struct weir__sdk_conn *c = s->conns, *next;
	unsigned n = 0;

	for (; c != NULL; c = next) {
		next = c->next;
		if (c->dead) {
			conn_close(c);
			n++;
		}
	}
	return n;
}

/* Until nothing is left to run or send (callbacks on the I/O thread queue
 * output and may close ids, which queues more callbacks), within a bound so
 * that sockets are served too; true when work is left. */
static bool pump(struct weir_agent_server *s)
{
	for (int i = 0; i < 64; i++) {
		unsigned n = s->nworkers == 0 ? weir__sdk_wq_run(&s->wqs[0]) : 0;
		bool flush;

		pthread_mutex_lock(&s->mu);
		flush = s->flush_head != NULL;
		pthread_mutex_unlock(&s->mu);
		if (flush)
			do_flushes(s);
		/* closing queues `closed` callbacks: one more round */
		if (close_dead(s) == 0 && n == 0 && !flush)
			return false;
	}
	return true;
}

static void timers(struct weir_agent_server *s, uint64_t now)
{
	if (s->listen_resume_ms != 0 && now >= s->listen_resume_ms && !s->stopping) {
		s->listen_resume_ms = 0;
		for (unsigned i = 0; i < s->nls; i++) {
			struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i + 1 };

			if (s->ls[i].paused && s->ls[i].fd >= 0) {
				s->ls[i].paused = false;
				epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->ls[i].fd, &ev);
			}
		}
	}
	for (struct weir__sdk_conn *c = s->conns; c != NULL; c = c->next)
		if (!c->hello_done && now >= c->hello_deadline_ms)
			conn_fail(c, "no HELLO in time");
}

int weir_agent_server_run(struct weir_agent_server *s)
{
	struct epoll_event evs[64];
	unsigned started = 0;
	int err = 0;

	if (s->running || s->ran)
		return -EBUSY;
	s->running = true;
	tl_io = s;
	for (; started < s->nworkers; started++) {
		err = -pthread_create(&s->wqs[started].th, NULL, weir__sdk_worker_main,
				      &s->wqs[started]);
		if (err != 0) {
			weir__sdk_log(s, WEIR_AGENT_LOG_ERR, "cannot start worker threads: %s",
				      strerror(-err));
			atomic_store(&s->stop_req, true);
			break;
		}
	}
	for (;;) {
		int n, timeout = -1;
		bool busy;
		uint64_t now;

		if (atomic_load(&s->stop_req) && !s->stopping)
			begin_stop(s);
		take_adopted(s);
		busy = pump(s);
		now = now_ms();
		timers(s, now);
		close_dead(s);
		if (s->stopping && (s->conns == NULL || now >= s->drain_deadline_ms))
			break;
		if (s->stopping || s->listen_resume_ms != 0)
			timeout = 50;
		for (struct weir__sdk_conn *c = s->conns; c != NULL && timeout < 0; c = c->next)
			if (!c->hello_done)
				timeout = 100;
		if (busy)
			timeout = 0;
		for (struct weir__sdk_conn *c = s->conns; c != NULL; c = c->next)
			if (c->shm != NULL && !c->dead && weir__sdk_shm_sleep(c) == 0)
				timeout = 0;
		n = epoll_wait(s->epfd, evs, 64, timeout);
		for (struct weir__sdk_conn *c = s->conns; c != NULL; c = c->next)
			if (c->shm != NULL)
				weir__sdk_shm_woke(c);
		if (n < 0 && errno != EINTR) {
			err = -errno;
			weir__sdk_log(s, WEIR_AGENT_LOG_ERR, "epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;

			if (tag == EPOLL_TAG_EVFD) {
				uint64_t v;
				ssize_t r = read(s->evfd, &v, sizeof(v));

				(void)r;
				atomic_store(&s->woken, false);
			} else if (tag == EPOLL_TAG_SHM) {
				/* the rings are polled below */
			} else if (tag <= WEIR__SDK_MAX_LISTENERS) {
				if (!s->stopping)
					do_accept(s, (unsigned)tag - 1);
			} else {
				struct weir__sdk_conn *c = evs[i].data.ptr;

				if (c->dead)
					continue;
				if (evs[i].events & EPOLLOUT)
					conn_flush(c);
				if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
					conn_read(c);
			}
		}
		for (struct weir__sdk_conn *c = s->conns; c != NULL; c = c->next) {
			const char *why = NULL;

			if (c->shm == NULL || c->dead)
				continue;
			if (!weir__sdk_shm_poll(c, &why))
				conn_proto_error(c, why != NULL ? why : "shm");
			else
				conn_flush(c);  /* ring room may have come back */
		}
	}
	/* drain: whatever is left is closed, its callbacks run */
	while (s->conns != NULL) {
		conn_fail(s->conns, s->stopping ? "shut down" : "I/O loop failed");
		conn_close(s->conns);
	}
	pump(s);
	for (unsigned i = 0; i < started; i++) {
		pthread_mutex_lock(&s->wqs[i].mu);
		s->wqs[i].stop = true;
		pthread_cond_signal(&s->wqs[i].cv);
		pthread_mutex_unlock(&s->wqs[i].mu);
		pthread_join(s->wqs[i].th, NULL);
	}
	/* flush entries taken by workers' last calls hold references */
	do_flushes(s);
	s->running = false;
	s->ran = true;
	tl_io = NULL;
	return err;
}

void weir_agent_server_stop(struct weir_agent_server *s)
{
	uint64_t one = 1;
	ssize_t n;

	atomic_store(&s->stop_req, true);
	n = write(s->evfd, &one, sizeof(one));
	(void)n;
}

/* ---- hooks for the fuzz harness (tests/sdk): a connection driven without
 * the loop, the caller acting as the I/O thread ---------------------------- */

struct weir__sdk_conn *weir__sdk_test_conn(struct weir_agent_server *s, int fd)
{
	tl_io = s;
	return conn_new(s, fd, "test");
}

/* Feeds bytes as recv() would; false once the connection failed. */
bool weir__sdk_test_input(struct weir__sdk_conn *c, const char *p, size_t n)
{
	while (n != 0 && !c->dead) {
		size_t k;

		if (rbuf_prepare(c) != 0) {
			conn_fail(c, "out of memory");
			break;
		}
		k = c->rb->cap - c->rlen;
		if (k > n)
			k = n;
		memcpy(c->rb->data + c->rlen, p, k);
		c->rlen += (uint32_t)k;
		p += k;
		n -= k;
		conn_parse(c);
	}
	return !c->dead;
}

/* Runs queued callbacks and sends output; a failed connection stays until
 * weir__sdk_test_close(). */
void weir__sdk_test_pump(struct weir_agent_server *s)
{
	tl_io = s;
	while (weir__sdk_wq_run(&s->wqs[0]) != 0)
		do_flushes(s);
	do_flushes(s);
}

void weir__sdk_test_close(struct weir__sdk_conn *c)
{
	struct weir_agent_server *s = c->s;

	conn_fail(c, NULL);
	conn_close(c);
	pump(s);
	tl_io = NULL;
}
