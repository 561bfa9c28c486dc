/* weir: the proxy data path — reactor, client and upstream connections.
 *
 * Threading: every object here belongs to exactly one reactor and is only
 * touched by that reactor's thread. The config and router are shared
 * read-only (struct weir_gen). The only cross-thread operations are
 * weir_reactor_stop(), weir_reactor_reload() and weir_reactor_reopen_logs(),
 * which set a flag and write the reactor's eventfd.
 *
 * Configuration generations (hot reload): a loaded config and its router
 * form a struct weir_gen, shared by all reactors and freed when the last
 * holder lets go. Each reactor sees a generation through a struct weir_rgen
 * of its own (the upstream states and agent runtimes of that config). A
 * reload swaps the reactor's current rgen in its WAKE handler, between two
 * completions: the safe point. An exchange takes the current rgen when its
 * head is routed and keeps it to its end, so in-flight requests finish on
 * the config they started with; an rgen that is no longer current is freed
 * once its last exchange ends. Upstream states (keep-alive pools) and agent
 * runtimes (connections to agents) whose defining settings did not change
 * are carried into the new rgen (shared, refcounted), so a reload neither
 * drops idle upstream connections nor reconnects to agents.
 *
 * Completion routing: every SQE's user_data is a pointer to a weir_sock (or
 * the reactor) with the operation kind in its low 3 bits.
 *
 * Lifetimes: a socket object is freed only when it is closed and no
 * operation of it is in flight; frees are deferred to the end of the event
 * loop iteration, so a handler may close any connection, including its
 * peer, and keep using the pointers it holds until it returns.
 *
 * Buffers: bytes move from one connection's receive queue to the other's
 * send queue by reference (weir_outq_push_ref); see weir/iobuf.h.
 */
#ifndef WEIR_PROXY_H
#define WEIR_PROXY_H

#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>

#include "weir/accesslog.h"
#include "weir/agents.h"
#include "weir/bufpool.h"
#include "weir/conf.h"
#include "weir/h1.h"
#include "weir/iobuf.h"
#include "weir/metrics.h"
#include "weir/router.h"
#include "weir/timer.h"
#include "weir/uring.h"

enum weir_op {
	WEIR_OP_IGNORE = 0,
	WEIR_OP_ACCEPT = 1,
	WEIR_OP_RECV = 2,
	WEIR_OP_SEND = 3,
	WEIR_OP_CONNECT = 4,
	WEIR_OP_WAKE = 5,
	WEIR_OP_ARECV = 6,              /* agent connection: plain recv into its own buffer */
	WEIR_OP_SHMWAKE = 7,            /* agent connection: its shm eventfd was written */
};

/* The reactor's own operations share WEIR_OP_WAKE, told apart by pointer:
 * the reactor (its eventfd read) or &r->alog (an access log write). */
enum {
	WEIR_OP_LOG = WEIR_OP_WAKE,
};

#define WEIR_OP_MASK 7u
#define WEIR_SOCK_IOV 32

/* Flow control: a send queue above HIGH pauses the peer's receive; below LOW
 * resumes it. A receive queue waiting for its turn (pipelining) above
 * WEIR_INQ_HIGH pauses that connection's own receive. */
#define WEIR_OUTQ_HIGH (256u * 1024u)
#define WEIR_OUTQ_LOW (64u * 1024u)
/* Segments count too: a peer sending 1-byte chunks makes many small
 * segments, and segment memory must stay bounded like byte counts. */
#define WEIR_OUTQ_HIGH_SEGS 4096u
#define WEIR_OUTQ_LOW_SEGS 1024u

static inline bool weir_outq_full(const struct weir_outq *q)
{
	return q->bytes > WEIR_OUTQ_HIGH || q->count > WEIR_OUTQ_HIGH_SEGS;
}

static inline bool weir_outq_drained(const struct weir_outq *q)
{
	return q->bytes < WEIR_OUTQ_LOW && q->count < WEIR_OUTQ_LOW_SEGS;
}
#define WEIR_INQ_HIGH (64u * 1024u)

/* Largest header block the coalescing buffer holds: the parser's limits plus
 * slack, so that the parser always sees enough bytes to give a verdict. */
#define WEIR_HEADBUF_MAX (WEIR_H1_MAX_REQUEST_LINE + WEIR_H1_MAX_HEADER_BYTES + 1024)

enum weir_sock_role {
	WEIR_SOCK_CLIENT = 1,
	WEIR_SOCK_UPSTREAM = 2,
	WEIR_SOCK_AGENT = 3,
};

struct weir_reactor;

/* Header coalescing: a header block split across receive buffers is copied
 * here (bounded by WEIR_HEADBUF_MAX); the receive queue stays authoritative
 * and is consumed once the block is parsed. */
struct weir_headbuf {
	char *buf;
	uint32_t len;
};

struct weir_sock {
	int fd;
	uint8_t role;
	bool recv_armed;
	bool recv_want;
	bool sending;
	bool starved;
	bool closed;
	bool dead_queued;
	uint8_t rx_group;               /* buffer group receives use (0: the main pool) */
	uint8_t armed_group;            /* the group of the receive in flight */
	uint16_t ops;                   /* operations in flight */
	struct weir_reactor *r;
	struct weir_sock *starved_next;
	struct weir_sock *dead_next;
	struct weir_inq in;
	struct weir_outq out;
	struct weir_headbuf hb;
	struct weir_timer timer;
	struct msghdr msg;
	struct iovec iov[WEIR_SOCK_IOV];
};

enum weir_client_state {
	WEIR_C_HEAD = 0,                /* waiting for / parsing a request head */
	WEIR_C_BODY,                    /* streaming the request body */
	WEIR_C_WAIT,                    /* request done, response in progress */
	WEIR_C_DRAIN,                   /* response queued; close once sent */
	WEIR_C_LINGER,                  /* write side shut; discarding input until EOF */
};

/* How the body of the message being written is framed. */
enum weir_frame {
	WEIR_FRAME_NONE = 0,
	WEIR_FRAME_LENGTH,
	WEIR_FRAME_CHUNKED,
	WEIR_FRAME_CLOSE,               /* raw bytes, delimited by closing */
};

struct weir_upconn;

struct weir_client {
	struct weir_sock s;
	struct weir_client *next, *prev;
	char ip[INET6_ADDRSTRLEN];
	uint16_t port;
	uint8_t state;
	bool close_after;               /* close once the current response is sent */
	bool eof;                       /* client sent FIN */
	bool head_started;              /* bytes of the next head arrived */
	uint32_t nreq;
	uint64_t head_deadline;         /* absolute deadline for the current head */

	/* the current exchange */
	struct weir_rgen *rg;           /* its config generation (a reference) */
	const struct weir_conf_route *route;
	struct weir_upconn *u;
	uint8_t method;                 /* enum weir_h1_method */
	uint8_t minor;
	bool proxying;                  /* false: local response, body discarded */
	bool req_done;                  /* request body fully read */
	bool resp_started;              /* response head queued to the client */
	bool resp_done;
	bool body_streamed;             /* body bytes were queued upstream */
	bool retried;
	uint8_t req_body;               /* enum weir_h1_body */
	uint8_t out_frame;              /* framing of the response to the client */
	uint64_t req_remaining;
	uint64_t req_bytes;
	struct weir_chunked req_chunk;
	char *up_head;                  /* upstream request head (kept for a retry) */
	uint32_t up_head_len;
	/* agents */
	struct weir_areq *ar;           /* the exchange's agent state, or NULL */
	char *held_head;                /* upstream head waiting for verdicts */
	uint32_t held_head_len;
	int status;                     /* status of the response sent */
	uint64_t resp_bytes;            /* response body bytes queued */
	uint64_t t0_ns;                 /* request head parsed (metrics) */
	bool in_exchange;               /* not yet counted in metrics */
	/* access log (only while it is on): request fields copied at the head */
	char *lg;                       /* method, target, host, user agent, referer */
	uint32_t lg_cap;
	uint16_t lg_len[5];             /* UINT16_MAX: absent */
	const char *up_addr;            /* server that answered */
	uint64_t up_ns;                 /* handed to it -> response head */
};

enum weir_upconn_state {
	WEIR_U_CONNECTING = 0,
	WEIR_U_ACTIVE,
	WEIR_U_IDLE,
};

struct weir_upstream_state;

struct weir_upconn {
	struct weir_sock s;
	struct weir_upconn *next, *prev;        /* idle list */
	struct weir_client *c;
	struct weir_upstream_state *st; /* its upstream (holds a reference) */
	uint16_t srv;                   /* server index */
	uint8_t state;
	bool reused;                    /* came from the idle pool */
	bool got_bytes;                 /* a response byte arrived for this request */
	bool resp_head_done;
	bool reusable;
	uint8_t n_interim;              /* 1xx responses seen for this request */
	uint8_t resp_body;              /* enum weir_h1_body */
	uint64_t resp_remaining;
	struct weir_chunked resp_chunk;
	uint64_t deadline_connect;
	uint64_t t_ns;                  /* handed this exchange / connect started */
};

struct weir_server_pool {
	struct weir_upconn *idle;
	unsigned nidle;
};

/* An upstream on one reactor: round robin position and keep-alive pools.
 * Shared by the rgens whose configs define it with the same servers; conf
 * is the newest such definition (timeouts and keepalive follow reloads). */
struct weir_upstream_state {
	const struct weir_conf_upstream *conf;
	unsigned gens;                  /* rgens using it; 0: retired, pools closed */
	unsigned conns;                 /* upstream connections alive */
	unsigned rr;
	uint16_t mslot;                 /* metrics slot of the upstream */
	uint16_t *srv_mslot;            /* [conf->nservers] */
	struct weir_server_pool *servers;
};

/* One loaded configuration (and its router), shared by every reactor. */
struct weir_gen {
	struct weir_conf *conf;
	struct weir_router *router;
	uint64_t id;                    /* 1 at start, +1 per applied reload */
	unsigned refs;                  /* atomic: holders (main, reactors) */
};

/* Releases a reference; the last one frees conf, router and gen. */
void weir_gen_put(struct weir_gen *g);

/* A reactor's view of a generation. */
struct weir_rgen {
	struct weir_gen *g;
	const struct weir_conf *conf;
	struct weir_upstream_state **ups;       /* [conf->nupstreams] */
	struct weir_agent_rt **agents;          /* [conf->nagents] */
	uint16_t *route_mslot;                  /* [conf->nroutes] */
	unsigned users;                 /* exchanges that started on it */
	struct weir_rgen *next;         /* the reactor's retired list */
};

struct weir_reactor_stats {
	uint64_t accepted;
	uint64_t refused;
	uint64_t requests;
	uint64_t responses[6];          /* by status class 1xx..5xx; [0]: aborted */
	uint64_t upstream_connects;
	uint64_t upstream_reused;
	uint64_t upstream_retries;
	uint64_t loops;
	uint64_t cqes;
};

struct weir_reactor {
	unsigned id;
	int cpu;                        /* -1: not pinned */
	pthread_t thread;
	struct io_uring ring;
	struct weir_uring_caps caps;
	struct weir_bufpool pool;
	struct weir_wheel wheel;
	struct weir_gen *gen;           /* start: the first generation (a reference) */
	struct weir_rgen *cur;          /* the current generation */
	struct weir_rgen *retired;      /* older generations with exchanges in flight */
	const struct weir_conf *conf;   /* cur->conf */
	int *listen_fds;
	unsigned nlisten;
	int wake_fd;
	uint64_t wake_val;
	unsigned wake_flags;            /* atomic: WEIR_WAKE_* */
	struct weir_gen *pending;       /* atomic: generation to swap to */
	int *pending_fds;               /* its listeners (owned by the reactor once
	                                   swapped: kept fds stay, others close) */
	unsigned pending_nlisten;
	unsigned reload_acks;           /* atomic: reloads handled */
	bool stopping;
	bool done;
	struct weir_timer stop_timer;
	struct weir_upstream_state *ups;
	struct weir_client *clients;
	unsigned nclients;
	unsigned nsocks;                /* live socket objects, clients and upstreams */
	struct weir_sock *starved;      /* FIFO of sockets waiting for buffers */
	struct weir_sock **starved_tail;
	struct weir_sock *dead;
	struct weir_reactor_stats stats;
	struct weir_metrics metrics;     /* read by the admin thread: weir/metrics.h */
	struct weir_agent_rt *agents_all; /* every live runtime (stop, fini) */
	bool agents_stopped;
	struct weir_agentconn *agent_dirty; /* agent connections with frames to send */
	unsigned nshm;                  /* agent connections on shared memory */
	uint16_t next_bgid;             /* buffer group ids for shm arenas */
	uint64_t agent_seq;             /* request uids */
	uint64_t now_ns;                /* CLOCK_MONOTONIC, read once per loop iteration */
	struct weir_agent_verdict *verdict; /* decode scratch */
	struct weir_alog alog;
	int init_error;                 /* -errno when start-up failed */
	sem_t *ready;                   /* posted once start-up finished */
	/* per-reactor parse scratch: too big for the stack of every handler */
	struct weir_h1_request req;
	struct weir_h1_response res;
};

/* reactor.c */
/* Opens a SO_REUSEPORT listener (one per reactor per address): fd or -errno. */
int weir_listener_open(const struct weir_addr *a);
/* Thread entry: pins to r->cpu (when >= 0), creates the ring, posts
 * r->ready with r->init_error set, then runs until stopped and drained. */
void *weir_reactor_thread(void *arg);
/* Any thread: begin a graceful stop (stop accepting, finish in-flight
 * requests up to shutdown_timeout, exit the thread). */
void weir_reactor_stop(struct weir_reactor *r);
/* Main thread: swap to g at the reactor's next safe point, listening on
 * fds[0..nfds) (the array and the fds become the reactor's: fds it already
 * listens on stay armed, new ones are armed, the ones missing are closed).
 * The reactor takes over the caller's reference to g and increments
 * r->reload_acks once done (a stopping reactor closes what it was handed).
 * One reload at a time: wait for the ack before the next. */
void weir_reactor_reload(struct weir_reactor *r, struct weir_gen *g, int *fds, unsigned nfds);
/* Any thread: reopen the access log at the next safe point. */
void weir_reactor_reopen_logs(struct weir_reactor *r);

#define WEIR_WAKE_STOP 1u
#define WEIR_WAKE_RELOAD 2u
#define WEIR_WAKE_REOPEN 4u

/* gen.c: the reactor side of generations */
int weir__rgen_start(struct weir_reactor *r, struct weir_gen *g);
/* 0, or -ENOMEM: still on the old generation (g's reference dropped). */
int weir__rgen_swap(struct weir_reactor *r, struct weir_gen *g);
void weir__rgen_fini(struct weir_reactor *r);
static inline struct weir_rgen *weir__rgen_get(struct weir_reactor *r)
{
	r->cur->users++;
	return r->cur;
}
void weir__rgen_put(struct weir_reactor *r, struct weir_rgen *rg);
/* Frees st once no generation and no connection uses it. */
void weir__upstream_state_put(struct weir_upstream_state *st);
struct io_uring_sqe *weir__sqe(struct weir_reactor *r);
void weir__sock_init(struct weir_reactor *r, struct weir_sock *s, int fd, uint8_t role,
		     weir_timer_cb cb);
void weir__sock_arm_recv(struct weir_sock *s);
void weir__sock_pause(struct weir_sock *s);
/* Receives go to buffer group `group` (0: the main pool) from now on. */
void weir__sock_rx_group(struct weir_sock *s, uint8_t group);
void weir__sock_resume(struct weir_sock *s);
void weir__sock_flush(struct weir_sock *s);
void weir__sock_close(struct weir_sock *s);
size_t weir__head_view(struct weir_sock *s, const char **p);
void weir__head_reset(struct weir_sock *s);
static inline uint64_t weir__now(const struct weir_reactor *r)
{
	return r->wheel.now;
}

/* The loop's clock in nanoseconds (metrics durations): one clock read per
 * iteration serves every request handled in it. */
static inline uint64_t weir__now_ns(const struct weir_reactor *r)
{
	return r->now_ns;
}

/* accesslog.c (weir/accesslog.h) */
int weir__alog_open(struct weir_reactor *r);
void weir__alog_write(struct weir_reactor *r, const struct weir_alog_rec *rec);
void weir__alog_on_write(struct weir_reactor *r, int res);
bool weir__alog_busy(const struct weir_reactor *r);
void weir__log_reopen(struct weir_reactor *r);
void weir__alog_conf_changed(struct weir_reactor *r, const struct weir_conf *old);
void weir__alog_fini(struct weir_reactor *r);

/* client.c */
struct weir_client *weir__client_new(struct weir_reactor *r, int fd);
void weir__client_on_recv(struct weir_client *c, int res);
void weir__client_on_send(struct weir_client *c, int res);
void weir__client_free(struct weir_client *c);
void weir__client_stop(struct weir_client *c);
/* Closes the client connection mid-exchange: its agents get CANCEL with
 * cancel_reason (enum weir_agent_cancel: shutdown, upstream failed). */
void weir__client_abort(struct weir_client *c, unsigned cancel_reason);
/* Called by the upstream side. */
void weir__client_response_head(struct weir_client *c, const struct weir_h1_response *res);
void weir__client_response_data(struct weir_client *c, const char *p, uint32_t len,
				uint16_t bid);
/* Decoded chunk data found in one upstream buffer: one chunk to the client. */
void weir__client_response_spans(struct weir_client *c, const weir_slice_t *spans, size_t ns,
				 uint16_t bid);
void weir__client_response_end(struct weir_client *c);
void weir__client_upstream_failed(struct weir_client *c, int status, bool retry_ok);
/* Called by the agent engine. */
void weir__client_agents_release(struct weir_client *c);
void weir__client_agents_block(struct weir_client *c, int status, const struct weir_conf_header *h,
			       unsigned nh, const char *body, size_t body_len);
/* The client's receive was paused (flow control, agents): resume it and
 * process what is already queued. */
void weir__client_resume_body(struct weir_client *c);

/* upstream.c */
struct weir_upconn *weir__upstream_acquire(struct weir_reactor *r,
					   struct weir_upstream_state *st);
void weir__upstream_on_recv(struct weir_upconn *u, int res);
void weir__upstream_on_send(struct weir_upconn *u, int res);
void weir__upstream_on_connect(struct weir_upconn *u, int res);
void weir__upstream_free(struct weir_upconn *u);
void weir__upstream_close_idle(struct weir_upstream_state *st);
/* Flush what is queued for the upstream. */
void weir__upstream_kick(struct weir_upconn *u);
/* Process response bytes already received (after a pause ends). */
void weir__upstream_kick_recv(struct weir_upconn *u);

/* msg.c: message heads weir writes */
char *weir__build_request_head(const struct weir_h1_request *req, const char *client_ip,
			       enum weir_frame frame, uint64_t length, uint32_t *len);
char *weir__build_response_head(const struct weir_h1_response *res, int client_minor,
				 bool is_head, enum weir_frame frame, bool close, uint32_t *len);
char *weir__build_local(int status, const struct weir_conf_header *hdrs, unsigned nhdrs,
			const char *body, size_t body_len, bool is_head, bool close,
			uint32_t *len);
const char *weir__status_text(int status);

#endif
