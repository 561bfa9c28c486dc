/* weir: per-reactor metrics — counters, gauges and fixed-bucket histograms
 * that the admin thread sums at scrape time (src/admin, Prometheus text).
 *
 * Threading. A struct weir_metrics is embedded in its struct weir_reactor.
 * Only the owning reactor thread writes it; the admin thread reads it while
 * the reactor runs, without locks. No read-modify-write is atomic here (no
 * `lock` prefix, no LL/SC loop, no shared cache line written by two cores):
 * the writer does a relaxed atomic load, adds, and a relaxed atomic store,
 * which compile to the same plain `mov`/`add`/`mov` (x86-64) or `ldr`/`add`/
 * `str` (AArch64) as `x++`; the reader does relaxed atomic loads. Relaxed
 * atomics instead of plain accesses only tell the compiler that another
 * thread reads the word, so it may not invent, split or tear the store (a
 * plain `x++` racing with a reader is undefined behaviour in C11).
 *
 * Why a reader never sees a torn value: every field is a naturally aligned
 * uint64_t, and an aligned 8-byte load or store is single-copy atomic on
 * x86-64 (Intel SDM vol. 3A, 9.1.1: "reading or writing a quadword aligned
 * on a 64-bit boundary" is atomic) and on AArch64 (Arm ARM B2.2.1: aligned
 * 64-bit LDR/STR are single-copy atomic). A reader sees each word either
 * before or after an update. Words are read one by one, so a snapshot is not
 * consistent across fields (a histogram's _sum may lag its buckets by an
 * observation); every figure derived from two words is computed so that
 * this cannot make it negative (see weir_metrics_accumulate()). Only 64-bit
 * targets with lock-free 8-byte atomics are supported (checked below).
 *
 * Labels. Rows are addressed by *slots*, not by config positions: a
 * process-wide, append-only registry gives each route, upstream, upstream
 * server and agent name a slot the first time a config names it, and the
 * slot never changes. The main thread registers a config's names before any
 * reactor sees it (weir_metrics_register()); the reactor objects made from
 * the config (its generation's route table, upstream states, agent
 * runtimes) look their slots up once and the data path passes slots. So a
 * request that started on the old config during a reload still counts
 * under its own route's name, a route that keeps its name across a reload
 * goes on counting, a new one gets a fresh row, a removed one keeps its
 * (frozen) figures.
 * Names beyond a registry's capacity share the "_other" slot.
 *
 * Cost: a counter update is one load, one add and one store; a histogram
 * observation is a bucket search over at most three bounds after a
 * count-leading-zeros table lookup, plus two counter updates (bench/micro,
 * bench_metrics.c, measures both).
 */
#ifndef WEIR_METRICS_H
#define WEIR_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "weir/common.h"

struct weir_conf;

_Static_assert(sizeof(void *) == 8 && __atomic_always_lock_free(8, 0),
	       "metrics need single-copy-atomic 64-bit loads and stores");

/* ---- histograms ---------------------------------------------------------
 * Log-linear buckets in seconds: four linear steps per decade (1, 2.5, 5,
 * 7.5 x 10^k) from 10 us to 100 s, then +Inf. Observations are in
 * nanoseconds; le labels are rendered from fixed decimal strings. */
#define WEIR_HIST_BOUNDS 29
#define WEIR_HIST_BUCKETS (WEIR_HIST_BOUNDS + 1)   /* the last one: +Inf */

struct weir_hist {
	uint64_t bucket[WEIR_HIST_BUCKETS];     /* not cumulative */
	uint64_t sum_ns;
};

/* metrics.c */
extern const uint64_t weir_hist_bound_ns[WEIR_HIST_BOUNDS];
extern const char *const weir_hist_bound_text[WEIR_HIST_BOUNDS]; /* "0.00001" ... "100" */
extern const uint8_t weir_hist_start[64];  /* first bound >= 2^b */

/* ---- capacities (slots per registry, "_other" included) ---------------- */
#define WEIR_METRICS_ROUTES 128         /* slot 0: "_unmatched" (no route: 404) */
#define WEIR_METRICS_UPSTREAMS 64
#define WEIR_METRICS_SERVERS 256
#define WEIR_METRICS_AGENTS 32
#define WEIR_METRICS_RULES 256
#define WEIR_METRICS_METHODS 10         /* enum weir_h1_method */
#define WEIR_METRICS_CLASSES 6          /* [0]: no response; [1..5]: 1xx..5xx */

enum weir_metrics_kind {
	WEIR_MK_ROUTE = 0,
	WEIR_MK_UPSTREAM = 1,
	WEIR_MK_SERVER = 2,             /* parent: the upstream's slot; name: address */
	WEIR_MK_AGENT = 3,
	WEIR_MK_RULE = 4,               /* parent: the agent's slot; name: rule id */
	WEIR_MK__COUNT = 5,
};

enum weir_metrics_peer {
	WEIR_PEER_CLIENT = 0,
	WEIR_PEER_UPSTREAM = 1,
	WEIR_PEER_AGENT = 2,
	WEIR_PEER__COUNT = 3,
};

/* Why an upstream exchange failed (weir_upstream_failures_total{reason}).
 * "Down" reasons also mark the server unusable for /health until a later
 * success: the server did not take the connection or dropped it. */
enum weir_upstream_failure {
	WEIR_UPF_CONNECT = 0,           /* connect() failed (refused, unreachable): down */
	WEIR_UPF_CONNECT_TIMEOUT = 1,   /* connect_timeout: down */
	WEIR_UPF_RESET = 2,             /* EOF or error before the response ended: down */
	WEIR_UPF_SEND = 3,              /* sending the request failed: down */
	WEIR_UPF_TIMEOUT = 4,           /* read_timeout / send_timeout */
	WEIR_UPF_PROTOCOL = 5,          /* invalid response (502) */
	WEIR_UPF_STALE = 6,             /* a reused keep-alive connection was closed (or
					   failed to send) before any response byte: the
					   keep-alive race, not a sign of a down server */
	WEIR_UPF__COUNT = 7,
};

/* ---- the shared part: only uint64_t words, summed word by word ---------- */

struct weir_metrics_route {
	uint64_t requests[WEIR_METRICS_METHODS][WEIR_METRICS_CLASSES];
	struct weir_hist duration;
};

struct weir_metrics_upstream {
	struct weir_hist connect;
	struct weir_hist response;
	uint64_t failures[WEIR_UPF__COUNT];
};

struct weir_metrics_agent {
	uint64_t done;                  /* ids closed; before calls: see accumulate */
	uint64_t calls;                 /* request ids opened */
	uint64_t timeouts;
	uint64_t failures;              /* unavailable, connection lost, protocol error */
	uint64_t blocks;
	uint64_t links_up;              /* gauge: connected links */
	uint64_t breaker_open;          /* gauge: 0 / 1 */
	uint64_t reported;              /* gauge: 1 once the engine reported a state */
	uint64_t shm_links;             /* gauge: links on the shared-memory transport */
	uint64_t shm_bytes;             /* body bytes handed over by arena reference */
	struct weir_hist latency;       /* request id opened -> verdict */
};

/* Summed over reactors. Field order matters where two words make one figure:
 * a "closed" word is read before its "opened" word (see accumulate). */
struct weir_metrics_data {
	uint64_t loops;                 /* event-loop iterations */
	uint64_t cqes;                  /* completions handled */
	uint64_t submissions;           /* SQEs submitted */
	uint64_t cq_overflow;           /* gauge: the ring's koverflow (dropped CQEs) */
	uint64_t cq_overflow_loops;     /* iterations that found IORING_SQ_CQ_OVERFLOW */
	uint64_t buf_exhausted;         /* ENOBUFS: the provided-buffer ring was empty */
	uint64_t bufs_in_use;           /* gauge: pool buffers held by weir */
	uint64_t refused;               /* connections refused (max_connections, stopping) */
	uint64_t log_lines;             /* access log lines formatted */
	uint64_t log_dropped;           /* lines dropped: buffers full (slow disk) */
	uint64_t log_dropped_bytes;     /* bytes of failed writes */
	uint64_t conn_closed[WEIR_PEER__COUNT];
	uint64_t conn_opened[WEIR_PEER__COUNT];
	uint64_t bytes_in[WEIR_PEER__COUNT];
	uint64_t bytes_out[WEIR_PEER__COUNT];
	struct weir_metrics_route route[WEIR_METRICS_ROUTES];
	struct weir_metrics_upstream upstream[WEIR_METRICS_UPSTREAMS];
	uint64_t server_failures[WEIR_METRICS_SERVERS];
	struct weir_metrics_agent agent[WEIR_METRICS_AGENTS];
	uint64_t rule_blocks[WEIR_METRICS_RULES];
};

/* Latest outcome per upstream server, in monotonic ms (weir_now_ms): combined
 * over reactors with max, not summed. 0: never. */
struct weir_metrics_servers {
	uint64_t last_ok_ms[WEIR_METRICS_SERVERS];
	uint64_t last_fail_ms[WEIR_METRICS_SERVERS];
};

struct weir_metrics {
	struct weir_metrics_data d;
	struct weir_metrics_servers srv;
};

/* ---- registry and binding (metrics.c) ----------------------------------- */

/* Registers every name conf uses (slots are process-wide and never
 * reused). Main thread, before any reactor uses conf; takes a mutex. */
void weir_metrics_register(const struct weir_conf *conf);

/* The slot of a registered name; the kind's "_other" slot when the name is
 * not registered (beyond capacity). Any thread, lock-free (a scan). */
unsigned weir_metrics_slot(enum weir_metrics_kind kind, unsigned parent, const char *name);

/* Readers (any thread, lock-free): number of slots handed out so far for
 * kind (the "_other" slot, the last one, is not counted unless used), and a
 * slot's name and parent slot (servers: upstream slot; rules: agent slot). */
unsigned weir_metrics_slots(enum weir_metrics_kind kind);
const char *weir_metrics_slot_name(enum weir_metrics_kind kind, unsigned slot);
unsigned weir_metrics_slot_parent(enum weir_metrics_kind kind, unsigned slot);
/* The slot of a name, or -1 if it was never registered (admin: which rows
 * belong to the current config). parent: as above, else 0. */
int weir_metrics_slot_find(enum weir_metrics_kind kind, unsigned parent, const char *name);

/* Adds src (being written by its reactor) into dst (private to the caller)
 * word by word with relaxed loads; srv rows combine with max. */
void weir_metrics_accumulate(struct weir_metrics_data *dst, struct weir_metrics_servers *dsrv,
			     const struct weir_metrics *src);

/* A block verdict: blocks{agent} and one rule_blocks{agent,rule} per rule id
 * (rule ids beyond the registry's capacity count under "_other"). Not
 * inline: rule ids are looked up by name (blocks are rare). */
void weir_metrics_agent_block(struct weir_metrics *m, unsigned aslot, const weir_slice_t *rules,
			      unsigned nrules);

/* ---- primitives --------------------------------------------------------- */

static inline uint64_t weir_metrics_load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void weir_metrics_set(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* Owner thread only: not an atomic read-modify-write (see above). */
static inline void weir_metrics_add(uint64_t *p, uint64_t v)
{
	weir_metrics_set(p, weir_metrics_load(p) + v);
}

static inline void weir_metrics_inc(uint64_t *p)
{
	weir_metrics_add(p, 1);
}

static inline uint64_t weir_metrics_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline unsigned weir_hist_index(uint64_t ns)
{
	unsigned i;

	if (ns <= weir_hist_bound_ns[0])
		return 0;
	i = weir_hist_start[63 - __builtin_clzll(ns)];
	while (i < WEIR_HIST_BOUNDS && ns > weir_hist_bound_ns[i])
		i++;
	return i;
}

static inline void weir_hist_observe(struct weir_hist *h, uint64_t ns)
{
	weir_metrics_inc(&h->bucket[weir_hist_index(ns)]);
	weir_metrics_add(&h->sum_ns, ns);
}

/* ---- data-path updates (owner reactor only; arguments are slots) ------- */

static inline unsigned weir_metrics_status_class(int status)
{
	unsigned c = (unsigned)status / 100u;

	return status > 0 && c >= 1 && c <= 5 ? c : 0;
}

/* A request is over (response fully sent, or the connection ended it).
 * route: its slot, 0 ("_unmatched") when no route matched; method: enum
 * weir_h1_method; status: the status sent, 0 if none was; dur_ns: from the
 * head parsed to the response's last byte queued (or the exchange's end). */
static inline void weir_metrics_request(struct weir_metrics *m, unsigned route, unsigned method,
					int status, uint64_t dur_ns)
{
	struct weir_metrics_route *r = &m->d.route[route < WEIR_METRICS_ROUTES ? route : 0];

	if (method >= WEIR_METRICS_METHODS)
		method = 0;
	weir_metrics_inc(&r->requests[method][weir_metrics_status_class(status)]);
	weir_hist_observe(&r->duration, dur_ns);
}

/* The server answered (connected, or sent a response head): usable. */
static inline void weir_metrics_server_ok(struct weir_metrics *m, unsigned srv, uint64_t now_ms)
{
	weir_metrics_set(&m->srv.last_ok_ms[srv], now_ms);
}

/* Connection established: connect time histogram (from the connect SQE). */
static inline void weir_metrics_upstream_connect(struct weir_metrics *m, unsigned ups,
						 uint64_t dur_ns)
{
	weir_hist_observe(&m->d.upstream[ups].connect, dur_ns);
}

/* Response head received: time from the request handed to an upstream
 * connection (weir__upstream_acquire; a new connection's connect time is
 * included) to the response head. */
static inline void weir_metrics_upstream_response(struct weir_metrics *m, unsigned ups,
						  unsigned srv, uint64_t dur_ns, uint64_t now_ms)
{
	weir_hist_observe(&m->d.upstream[ups].response, dur_ns);
	weir_metrics_server_ok(m, srv, now_ms);
}

static inline void weir_metrics_upstream_failure(struct weir_metrics *m, unsigned ups,
						 unsigned srv, enum weir_upstream_failure why,
						 uint64_t now_ms)
{
	weir_metrics_inc(&m->d.upstream[ups].failures[why]);
	weir_metrics_inc(&m->d.server_failures[srv]);
	if (why <= WEIR_UPF_SEND)
		weir_metrics_set(&m->srv.last_fail_ms[srv], now_ms);
}

static inline struct weir_metrics_agent *weir__magent(struct weir_metrics *m, unsigned agent)
{
	return &m->d.agent[agent];
}

/* A request id was opened on an agent connection (one call). */
static inline void weir_metrics_agent_call(struct weir_metrics *m, unsigned agent)
{
	weir_metrics_inc(&weir__magent(m, agent)->calls);
}

/* The id was closed (verdict, timeout, cancel, failure): in_flight - 1. */
static inline void weir_metrics_agent_done(struct weir_metrics *m, unsigned agent)
{
	weir_metrics_inc(&weir__magent(m, agent)->done);
}

/* A verdict arrived latency_ns after the id was opened. */
static inline void weir_metrics_agent_verdict(struct weir_metrics *m, unsigned agent,
					      uint64_t latency_ns)
{
	weir_hist_observe(&weir__magent(m, agent)->latency, latency_ns);
}

static inline void weir_metrics_agent_timeout(struct weir_metrics *m, unsigned agent)
{
	weir_metrics_inc(&weir__magent(m, agent)->timeouts);
}

static inline void weir_metrics_agent_failure(struct weir_metrics *m, unsigned agent)
{
	weir_metrics_inc(&weir__magent(m, agent)->failures);
}

/* Agent state on this reactor, whenever a link connects or drops or the
 * circuit breaker opens or closes. */
static inline void weir_metrics_agent_state(struct weir_metrics *m, unsigned agent,
					    unsigned links_up, unsigned shm_links, bool breaker_open)
{
	struct weir_metrics_agent *a = weir__magent(m, agent);

	weir_metrics_set(&a->links_up, links_up);
	weir_metrics_set(&a->shm_links, shm_links);
	weir_metrics_set(&a->breaker_open, breaker_open);
	weir_metrics_set(&a->reported, 1);
}

/* Body bytes handed to an agent by shared-memory reference. */
static inline void weir_metrics_agent_shm_bytes(struct weir_metrics *m, unsigned agent,
						uint64_t n)
{
	weir_metrics_add(&weir__magent(m, agent)->shm_bytes, n);
}

static inline void weir_metrics_conn_open(struct weir_metrics *m, enum weir_metrics_peer p)
{
	weir_metrics_inc(&m->d.conn_opened[p]);
}

static inline void weir_metrics_conn_close(struct weir_metrics *m, enum weir_metrics_peer p)
{
	weir_metrics_inc(&m->d.conn_closed[p]);
}

static inline void weir_metrics_bytes_in(struct weir_metrics *m, enum weir_metrics_peer p,
					 uint64_t n)
{
	weir_metrics_add(&m->d.bytes_in[p], n);
}

static inline void weir_metrics_bytes_out(struct weir_metrics *m, enum weir_metrics_peer p,
					  uint64_t n)
{
	weir_metrics_add(&m->d.bytes_out[p], n);
}

#endif
