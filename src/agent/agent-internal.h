/* Internal to src/agent: the connection object and the calls between
 * conn.c (connections) and engine.c (requests). */
#ifndef WEIR_AGENT_INTERNAL_H
#define WEIR_AGENT_INTERNAL_H

#include <stdarg.h>

#include "weir/agents.h"
#include "weir/proxy.h"

enum {
	WEIR_BREAKER_CLOSED = 0,
	WEIR_BREAKER_OPEN = 1,
	WEIR_BREAKER_HALF_OPEN = 2,
};

struct weir_agentconn {
	struct weir_sock s;             /* role WEIR_SOCK_AGENT; s.in unused */
	struct weir_agent_link *link;   /* NULL once detached (GOAWAY, failure, stop) */
	struct weir_agent_rt *rt;
	uint8_t state;                  /* enum weir_agentconn_state */
	bool recv_posted;
	bool ping_out;
	bool want_writers;              /* an item waits for send-queue room */
	bool dirty;                     /* on the reactor's flush list */
	struct weir_agentconn *dirty_next;
	uint32_t max_frame;             /* the agent accepts */
	uint32_t events;                /* effective events */
	uint32_t caps;
	uint64_t window;                /* initial credit per request; UINT64_MAX: none */
	uint32_t nslots, nopen, free_head;
	struct weir_aslot *slots;
	char *rbuf;                     /* frames received, not yet processed */
	uint32_t rlen, rcap, rmax;
	uint64_t last_rx;
	uint64_t ping_nonce;
	struct weir_shm_link *shm;      /* set up (SHM_WAIT) or in use (READY), else NULL */
	bool shm_on;                    /* frames travel in the rings */
	bool shm_wake_armed;            /* a read of weir's eventfd is in flight */
	uint64_t shm_efd_val;           /* its target: lives as long as the socket */
};

__attribute__((format(printf, 2, 3)))
void weir__agent_log(const struct weir_agent_rt *rt, const char *fmt, ...);

/* conn.c */
int weir__ac_open_id(struct weir_agentconn *ac, struct weir_aitem *it);
void weir__ac_close_id(struct weir_aitem *it);
/* Queues frame (weir_malloc'ed, len bytes) for the agent and takes it in
 * every case, also when it fails (-1: out of memory, connection closed). */
int weir__ac_send(struct weir_agentconn *ac, char *frame, uint32_t len);
/* Frames queued for the agent leave at the end of the loop iteration, so
 * that the frames of many requests (and the head and body of one) share a
 * send. */
void weir__ac_mark(struct weir_agentconn *ac);
/* The send side has room again: every item waiting for it goes on. */
void weir__ac_wake_writers(struct weir_agentconn *ac);
void weir__ac_fail(struct weir_agentconn *ac, const char *why);
struct weir_agentconn *weir__agent_pick(struct weir_agent_rt *rt, bool *probe);
void weir__agent_verdict_seen(struct weir_agent_rt *rt, bool probe);
void weir__agent_report(struct weir_agent_rt *rt);
void weir__agent_timeout_seen(struct weir_agent_rt *rt, bool probe);

/* shm.c: weir's side of the shared-memory transport (uapi/weir/ring.h).
 * weir__shm_offer: after HELLO_REPLY with the shm capability: sets up the
 * arena (once per agent runtime), the control memfd and eventfds, sends
 * SHM_SETUP with the fds; 0: wait for SHM_READY, -1: stay on the socket
 * (logged once per agent runtime). weir__shm_ready: SHM_READY arrived
 * (status 0: switch to the rings). weir__shm_detach: the connection ends:
 * every buffer the agent held or that waited for the ring is released,
 * the mappings and fds are closed; the arena stays. */
int weir__shm_offer(struct weir_agentconn *ac);
void weir__shm_ready(struct weir_agentconn *ac, uint64_t status);
void weir__shm_detach(struct weir_agentconn *ac);
void weir__shm_arena_fini(struct weir_agent_rt *rt);
/* In shm mode: queue a whole frame (ownership taken), or a body frame for
 * the bytes [p, p + len) of buffer bid (by arena reference when bid is in
 * this connection's arena, else inline). 0 or -1 (out of memory). */
int weir__shm_send(struct weir_agentconn *ac, char *frame, uint32_t len);
int weir__shm_body(struct weir_agentconn *ac, uint8_t type, uint64_t id, bool last, uint64_t off,
		   const char *p, uint32_t len, uint16_t bid);
void weir__shm_flush(struct weir_agentconn *ac);
bool weir__shm_full(const struct weir_agentconn *ac);
/* A client whose body this connection inspects: receive into its arena. */
void weir__shm_client_rx(struct weir_agentconn *ac, struct weir_sock *client);
/* conn.c: one frame from the agent (socket or ring); -1: the connection is gone */
int weir__ac_on_frame(struct weir_agentconn *ac, const struct weir_agent_frame *f);

static inline bool weir__ac_full(const struct weir_agentconn *ac)
{
	return ac->shm_on ? weir__shm_full(ac) : weir_outq_full(&ac->s.out);
}

/* engine.c: events on an open id */
void weir__item_verdict(struct weir_aitem *it, const struct weir_agent_verdict *v);
void weir__item_credit(struct weir_aitem *it, uint64_t bytes);
void weir__item_need_more(struct weir_aitem *it);
/* The id's connection is gone (status 503) or it timed out (504). */
void weir__item_fail(struct weir_aitem *it, int status, unsigned cancel_reason);
/* Its connection's send queue has room again. */
void weir__item_writable(struct weir_aitem *it);

#endif
