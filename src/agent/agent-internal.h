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
};

__attribute__((format(printf, 2, 3)))
void weir__agent_log(const struct weir_agent_rt *rt, const char *fmt, ...);

/* conn.c */
int weir__ac_open_id(struct weir_agentconn *ac, struct weir_aitem *it);
void weir__ac_close_id(struct weir_aitem *it);
int weir__ac_send(struct weir_agentconn *ac, char *frame, uint32_t len);
/* Frames queued for the agent leave at the end of the loop iteration, so
 * that the frames of many requests (and the head and body of one) share a
 * send. */
void weir__ac_mark(struct weir_agentconn *ac);
void weir__ac_fail(struct weir_agentconn *ac, const char *why);
struct weir_agentconn *weir__agent_pick(struct weir_agent_rt *rt, bool *probe);
void weir__agent_verdict_seen(struct weir_agent_rt *rt, bool probe);
void weir__agent_report(struct weir_agent_rt *rt);
void weir__agent_timeout_seen(struct weir_agent_rt *rt, bool probe);

/* engine.c: events on an open id */
void weir__item_verdict(struct weir_aitem *it, const struct weir_agent_verdict *v);
void weir__item_credit(struct weir_aitem *it, uint64_t bytes);
void weir__item_need_more(struct weir_aitem *it);
/* The id's connection is gone (status 503) or it timed out (504). */
void weir__item_fail(struct weir_aitem *it, int status, unsigned cancel_reason);
/* Its connection's send queue has room again. */
void weir__item_writable(struct weir_aitem *it);

#endif
