/* weir: the proxy side of the agent protocol (docs/agent-protocol.md).
 *
 * Per reactor, per configured agent: a runtime (struct weir_agent_rt) with
 * `connections` links; each link owns at most one live connection and
 * reconnects it with capped exponential back-off, forever. Nothing here is
 * shared between reactors.
 *
 * Per client exchange whose route names agents: a struct weir_areq with one
 * item per agent. An item holds a request id open on one connection (a slot
 * of that connection's table: id = generation << 32 | slot index, so that a
 * frame for an id weir never issued is told apart from a late one for an id
 * it closed).
 *
 * Request bodies: decoded body bytes are held by reference (pool buffers,
 * refcounted) in the areq's span list while any agent still has to be sent
 * them (credit, socket back-pressure) or while the request is held (buffer
 * mode: nothing goes upstream until every buffer-mode agent allowed). Body
 * frames to agents are iovecs: a small inline prefix and the pool bytes
 * themselves; no body byte is copied.
 *
 * Lifetimes: an areq belongs to its client and is freed by
 * weir__agents_end() (exchange done, or client closed). Engine callbacks into
 * client.c (release, block) may end the exchange, so engine code returns at
 * once after calling them.
 */
#ifndef WEIR_AGENTS_H
#define WEIR_AGENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "weir/agent_proto.h"
#include "weir/conf.h"
#include "weir/timer.h"

struct weir_client;
struct weir_reactor;
struct weir_agent_rt;

enum weir_agentconn_state {
	WEIR_AC_CONNECTING = 0,
	WEIR_AC_HELLO,                  /* HELLO sent, waiting for HELLO_REPLY */
	WEIR_AC_SHM_WAIT,               /* SHM_SETUP sent, waiting for SHM_READY */
	WEIR_AC_READY,
	WEIR_AC_DRAINING,               /* GOAWAY received: no new ids */
};

struct weir_aitem;

struct weir_aslot {
	struct weir_aitem *it;          /* NULL: free */
	uint32_t gen;                   /* generation of the id last issued here */
	uint32_t next_free;
};

struct weir_agent_link {
	struct weir_agent_rt *rt;
	struct weir_agentconn *conn;    /* live connection, or NULL */
	struct weir_timer timer;        /* reconnect */
	uint32_t backoff_ms;
	bool was_up;                    /* log transitions only */
	bool down_logged;
};

/* The shm body arena of one (reactor, agent): a memfd mapped by weir, used
 * as the memory of an extra provided-buffer group, mapped read-only by the
 * agent. Created at the first shm handshake, kept until the reactor ends
 * (buffers may outlive any one connection); one connection uses it at a
 * time. */
struct weir_shm_arena {
	int fd;                         /* -1: none */
	char *mem;
	size_t size;
	uint32_t nbufs;
	unsigned group;                 /* buffer group index in the reactor's pool */
	uint32_t base;                  /* global id of arena buffer 0 */
	struct weir_agentconn *user;    /* the connection on it, or NULL */
	bool failed;                    /* setup failed once: socket transport from now on */
};

struct weir_agent_rt {
	const struct weir_conf_agent *conf;     /* the newest config that keeps it */
	struct weir_shm_arena arena;    /* a runtime with an arena is freed at
	                                   reactor end only (pool buffers of the
	                                   arena may outlive it) */
	struct weir_reactor *r;
	struct weir_agent_rt *all_next, *all_prev; /* r->agents_all */
	unsigned gens;                  /* generations (struct weir_rgen) using it */
	bool stopped;                   /* no reconnects */
	uint16_t mslot;                 /* metrics slot of the agent's name */
	struct weir_agent_link *links;
	unsigned nlinks;
	unsigned rr;
	uint8_t breaker;                /* 0 closed, 1 open, 2 half-open */
	bool probing;
	bool warned_mut;
	unsigned consec_timeouts;
	uint64_t breaker_until;
};

struct weir_hspan {
	const char *ptr;
	uint32_t len;
	uint16_t bid;
};

struct weir_hmut {
	uint8_t list;                   /* enum weir_agent_mut_list */
	char *name;                     /* heap: name \0 value \0 */
	char *value;
	uint32_t nlen, vlen;
};

enum weir_aitem_phase {
	WEIR_AI_NONE = 0,               /* not involved */
	WEIR_AI_PENDING,                /* verdict awaited */
	WEIR_AI_DONE,
};

struct weir_aitem {
	struct weir_areq *ar;
	struct weir_agent_rt *rt;
	struct weir_agentconn *conn;    /* while the id is open */
	uint64_t id;
	uint32_t slot;
	uint32_t events;                /* effective subscription */
	uint8_t rq, rs;                 /* enum weir_aitem_phase: request, response */
	bool open;
	bool buffer;                    /* body_mode buffer: gates forwarding */
	bool wants_body;
	bool last_sent;
	bool resp_last_sent;
	bool probe;                     /* half-open breaker probe */
	uint64_t sent;                  /* request body offset sent */
	uint64_t credit;                /* request body bytes it may still be sent */
	uint64_t resp_sent;
	uint64_t t0_ns;                 /* id opened (latency metric) */
	struct weir_timer timer;
};

struct weir_areq {
	struct weir_client *c;
	uint64_t t0_ms;
	bool hold;                      /* nothing upstream until buffer agents allowed */
	bool blocked;
	bool body_done;
	bool resp_head_sent;            /* RESPONSE_HEADERS went out */
	bool resp_paused;               /* upstream paused for an agent */
	unsigned wait_hold;             /* buffer-mode request verdicts pending */
	unsigned pending_req;           /* request verdicts pending */
	unsigned pending_resp;          /* response verdicts pending */
	uint64_t hold_limit;
	uint64_t body_total;            /* request body bytes seen */
	uint64_t held_off;              /* body offset of spans[0] */
	size_t held_bytes;
	struct weir_hspan *spans;
	uint32_t nspans, cap;
	struct weir_hmut *muts;
	unsigned nmuts, capm;
	char *replace;                  /* an agent's new request body, or NULL */
	uint32_t replace_len;
	char uid[32];
	char summary[160];              /* access log: "name:outcome[:rules];..." */
	uint16_t summary_len;
	unsigned n;
	struct weir_aitem items[];
};

/* Results of the hooks below. */
#define WEIR_AG_GO 0                    /* carry on */
#define WEIR_AG_WAIT 1                  /* wait (hold / pause) */
#define WEIR_AG_ANSWERED 2              /* the engine answered or closed the client */

/* reactor start / stop */
int weir__agents_init(struct weir_reactor *r);
void weir__agents_stop(struct weir_reactor *r);     /* close connections, no reconnects */
void weir__agents_fini(struct weir_reactor *r);
/* Runtimes (one per agent per reactor, shared by the generations that
 * define the agent alike): new connects its links; keeps: whether a reload
 * from old to ca may keep the runtime and its connections (same name,
 * address, connections, events, max_in_flight, transport; the other settings are read
 * from rt->conf at use); retire: no generation uses it any more. */
struct weir_agent_rt *weir__agent_rt_new(struct weir_reactor *r, const struct weir_conf_agent *ca);
bool weir__agent_rt_keeps(const struct weir_conf_agent *old, const struct weir_conf_agent *ca);
void weir__agent_rt_retire(struct weir_agent_rt *rt);
/* End of each loop iteration (before frees): send what was queued for agents. */
void weir__agents_flush(struct weir_reactor *r);

/* A request head for a route with agents: opens ids, sends REQUEST_HEADERS.
 * Returns WEIR_AG_GO (c->ar->hold tells whether forwarding waits), an HTTP
 * status (503: failure closed and an agent unavailable) to answer with, or -1
 * when out of memory. */
int weir__agents_begin(struct weir_client *c, const struct weir_h1_request *req);

/* Decoded request body data (spans of buffer bid); last: the body ends here.
 * WEIR_AG_GO, WEIR_AG_WAIT (pause the client's receive), WEIR_AG_ANSWERED,
 * or -1 (out of memory). */
int weir__agents_body(struct weir_client *c, const weir_slice_t *spans, size_t ns, uint16_t bid,
		      bool last);

/* May the response head be read? WEIR_AG_GO or WEIR_AG_WAIT (request verdicts
 * still pending: the caller pauses the upstream; the engine resumes it). */
int weir__agents_response_gate(struct weir_client *c);
/* The response head: sends RESPONSE_HEADERS once to subscribers. WEIR_AG_GO,
 * WEIR_AG_WAIT (the caller pauses the upstream, leaving the head unconsumed),
 * or WEIR_AG_ANSWERED. */
int weir__agents_response_head(struct weir_client *c, const struct weir_h1_response *res);
/* Response body data to response_body subscribers (inspection only). */
void weir__agents_response_body(struct weir_client *c, const weir_slice_t *spans, size_t ns,
				uint16_t bid, bool last);

/* Applies the collected header mutations (request or response) to a head
 * weir built; returns the (possibly new) head, NULL when out of memory (the
 * old head is freed either way when a new one is returned). */
char *weir__agents_mutate(struct weir_areq *ar, bool response, char *head, uint32_t *len);

/* The exchange is over: REQUEST_DONE / CANCEL (cancel_reason 0: normal end),
 * ids closed, held buffers released, c->ar freed. */
void weir__agents_end(struct weir_client *c, unsigned cancel_reason);

/* With a replacement body: the upstream head re-framed for it (Content-Length
 * of the new body, Transfer-Encoding dropped). Returns the (new) head or
 * NULL when out of memory (the old head is freed either way). */
char *weir__agents_reframe(struct weir_areq *ar, char *head, uint32_t *len);

/* Drops held spans (after the client forwarded them on release). */
void weir__agents_trim(struct weir_areq *ar);

/* reactor.c dispatch, for sockets of role WEIR_SOCK_AGENT */
struct weir_sock;
void weir__agentconn_on_connect(struct weir_sock *s, int res);
void weir__agentconn_on_recv(struct weir_sock *s, int res);
void weir__agentconn_on_send(struct weir_sock *s, int res);
void weir__agentconn_free(struct weir_sock *s);
void weir__agentconn_on_shm_wake(struct weir_sock *s, int res);
/* Shared-memory links (src/agent/shm.c): once per loop iteration after the
 * completions, read the agents' rings and move staged frames into ours;
 * before sleeping, tell the agents to wake us (true: records arrived
 * meanwhile, do not sleep). */
void weir__agents_shm_poll(struct weir_reactor *r);
bool weir__agents_shm_sleep(struct weir_reactor *r);

#endif
