/* SPDX-License-Identifier: MIT */
/* libweir-agent: write a weir inspection agent in C.
 *
 * The SDK is the agent side of docs/agent-protocol.md (values in
 * <weir/agent.h>). It listens, accepts weir's connections, answers HELLO,
 * validates every frame weir sends, tracks each open request id, answers
 * PING, grants CREDIT, and sends GOAWAY when stopped. The author registers
 * callbacks per event and answers each request with a verdict built through
 * struct weir_agent_reply, either by returning WEIR_AGENT_R_VERDICT from a
 * callback (synchronous) or later from any thread with
 * weir_agent_verdict_send() (asynchronous).
 *
 *   static int on_headers(void *user, struct weir_agent_req *req,
 *                         struct weir_agent_reply *r)
 *   {
 *           const struct weir_agent_request *rq = weir_agent_req_request(req);
 *
 *           if (weir_agent_header_find(rq->headers, rq->nheaders, "X-Bad") != NULL) {
 *                   weir_agent_reply_block(r, 403, "no\n", 3);
 *                   weir_agent_reply_tag(r, "x-bad");
 *           }
 *           return WEIR_AGENT_R_VERDICT;          // allow unless blocked above
 *   }
 *
 *   struct weir_agent_config cfg = { .name = "waf", .workers = 4,
 *                                    .cb.request_headers = on_headers };
 *   struct weir_agent_server *s;
 *   weir_agent_server_new(&cfg, &s);
 *   weir_agent_server_listen(s, "unix:/run/weir/waf.sock");
 *   weir_agent_server_run(s);                     // until weir_agent_server_stop()
 *   weir_agent_server_free(s);
 *
 * Threads. One I/O thread (the caller of weir_agent_server_run) does all
 * socket work with epoll; callbacks run on `workers` worker threads, or on
 * the I/O thread itself when workers is 0 (then they must never block). The
 * events of one request always run on the same thread, one at a time and in
 * the order weir sent them; different requests run in parallel.
 *
 * Errors: functions returning int return 0 (or a count) on success and a
 * negative errno value on failure.
 *
 * Request ids. Each REQUEST_HEADERS opens a request (struct weir_agent_req);
 * it closes with CANCEL, REQUEST_DONE, the loss of its connection, or
 * silently, as the spec says, once weir needs nothing more from the agent
 * (the final verdict of the events the agent subscribed to). Exactly one
 * `closed` callback runs per request, after all its other callbacks.
 */
#ifndef WEIR_AGENT_SDK_H
#define WEIR_AGENT_SDK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weir/agent.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WEIR_AGENT_API __attribute__((visibility("default")))

/* A byte range inside memory the SDK owns; never NUL-terminated. */
struct weir_agent_str {
	const char *ptr;
	size_t len;
};

struct weir_agent_header {
	struct weir_agent_str name;     /* as received (case kept) */
	struct weir_agent_str value;
};

/* REQUEST_HEADERS, decoded. Every pointer stays valid as long as the
 * request is referenced (the whole life of the request for callbacks). */
struct weir_agent_request {
	struct weir_agent_str method;
	struct weir_agent_str target;   /* request-target as received */
	struct weir_agent_str path;     /* target up to '?' (a slice of target) */
	struct weir_agent_str client_addr;
	struct weir_agent_str route;
	struct weir_agent_str uid;      /* weir's request id, as it logs it */
	uint16_t client_port;
	uint8_t http_minor;
	bool has_body;                  /* REQUEST_HEADERS lacked flag LAST */
	bool has_body_length;
	uint64_t body_length;           /* Content-Length, when has_body_length */
	uint32_t nheaders;
	const struct weir_agent_header *headers; /* in the order received */
};

/* RESPONSE_HEADERS, decoded; same lifetime rules. */
struct weir_agent_response {
	uint16_t status;
	uint8_t http_minor;
	bool has_body;
	bool has_body_length;
	uint64_t body_length;
	uint32_t nheaders;
	const struct weir_agent_header *headers;
};

/* One REQUEST_BODY / RESPONSE_BODY frame. data is valid only during the
 * callback: copy what must outlive it. */
struct weir_agent_chunk {
	const char *data;
	size_t len;
	uint64_t offset;                /* body offset of data[0] */
	bool last;                      /* the last frame of the body (data may be empty) */
};

/* REQUEST_DONE. A field weir left out reads 0. */
struct weir_agent_done {
	uint16_t status;
	uint64_t bytes_in, bytes_out, duration_us;
};

/* Why a request closed (the `closed` callback's reason): the CANCEL reasons
 * of <weir/agent.h> (enum weir_agent_cancel, 1..7 or any value weir sends),
 * or one of these. */
enum weir_agent_close {
	WEIR_AGENT_CLOSE_NORMAL = 0,    /* REQUEST_DONE, or closed silently after the final verdict */
	WEIR_AGENT_CLOSE_CONN = -1,     /* the connection was lost or the server stopped */
	WEIR_AGENT_CLOSE_REPLACED = -2, /* weir opened the same id again (it had closed it silently) */
};

/* What an event callback returns. */
enum weir_agent_ret {
	/* send the reply (as this phase's verdict; it was reset to allow
	 * before the callback) */
	WEIR_AGENT_R_VERDICT = 0,
	/* no verdict now: wait for more events of the request, or answer later
	 * with weir_agent_verdict_send() (take a reference first) */
	WEIR_AGENT_R_PENDING = 1,
	/* request_headers only: send NEED_MORE, i.e. ask for the body of this
	 * request although the agent did not subscribe to request_body. Body
	 * chunks then go to the request_body callback. */
	WEIR_AGENT_R_NEED_BODY = 2,
};

struct weir_agent_req;          /* one open request id (refcounted) */
struct weir_agent_reply;        /* a verdict being built */
struct weir_agent_server;       /* listeners, connections, I/O thread, workers */

/* Event callbacks. `user` is weir_agent_config.user. `r` is a reply owned by
 * the SDK, reset to "allow" before each call and valid during it only.
 *
 * A NULL callback means: not subscribed. REQUEST_HEADERS always arrives;
 * without a request_headers callback the request is allowed at once,
 * unless a request_body callback will see its body. Without a
 * response_headers callback (subscribed through cfg.events) the response
 * is allowed at once.
 *
 * Not delivered: request body chunks that arrive after the request-phase
 * verdict was sent (weir stops sending them; those in flight are dropped),
 * and every event but `closed` of a request that closed before its turn
 * came (a CANCEL drops the backlog: `closed` may then be the only callback
 * a request gets). Response body chunks keep coming after the
 * response-phase verdict (they are for inspection). A callback that
 * returns R_PENDING for the last event it will get must answer later
 * (weir_agent_verdict_send), else weir's timeout decides. */
struct weir_agent_callbacks {
	int (*request_headers)(void *user, struct weir_agent_req *req,
			       struct weir_agent_reply *r);
	int (*request_body)(void *user, struct weir_agent_req *req,
			    const struct weir_agent_chunk *c, struct weir_agent_reply *r);
	/* the response head from upstream; R_VERDICT answers the response
	 * phase (allow with resp_* mutations, or block/redirect) */
	int (*response_headers)(void *user, struct weir_agent_req *req,
				struct weir_agent_reply *r);
	/* inspection only: weir does not wait for it; R_VERDICT here sends
	 * the response-phase verdict if it is still due, else is ignored */
	int (*response_body)(void *user, struct weir_agent_req *req,
			     const struct weir_agent_chunk *c, struct weir_agent_reply *r);
	void (*request_done)(void *user, struct weir_agent_req *req,
			     const struct weir_agent_done *d);
	/* always last, exactly once per request: free per-request state here.
	 * reason: enum weir_agent_close or enum weir_agent_cancel. */
	void (*closed)(void *user, struct weir_agent_req *req, int reason);
};

enum weir_agent_log_level {
	WEIR_AGENT_LOG_ERR = 3,
	WEIR_AGENT_LOG_WARN = 4,
	WEIR_AGENT_LOG_INFO = 6,
	WEIR_AGENT_LOG_DEBUG = 7,
};

/* Zero means "default" for every field. */
struct weir_agent_config {
	const char *name;               /* sent in HELLO_REPLY (at most 64 bytes) */
	unsigned workers;               /* callback threads; 0: on the I/O thread (max 256) */
	/* events to subscribe to (enum weir_agent_event bits); 0: derived from
	 * the callbacks that are set. response_body implies response_headers;
	 * request_headers is always included (it always arrives anyway). */
	uint32_t events;
	uint32_t max_in_flight;         /* open ids per connection; default and ceiling 4096 */
	uint32_t max_frame;             /* largest frame accepted; default 256 KiB, [64 KiB, 16 MiB] */
	/* Flow control. credit: announce the CREDIT capability with
	 * body_window bytes of initial credit per request (0: unlimited). Each
	 * body chunk's bytes are granted back once its callback returned,
	 * unless manual_credit: then the author grants with
	 * weir_agent_credit(). Credit covers the request body. */
	bool credit;
	bool manual_credit;
	uint32_t body_window;
	/* Transport. On a Unix socket the SDK accepts weir's shared-memory
	 * transport (uapi/weir/ring.h: body bytes are read from a read-only
	 * mapping of weir's receive buffers, frames travel in rings); no_shm
	 * keeps everything on the socket. Transparent to callbacks, except
	 * that a chunk's data then points into the shared arena (still valid
	 * only during the callback). */
	bool no_shm;
	unsigned drain_ms;              /* after stop: how long open requests may finish (5000) */
	unsigned hello_timeout_ms;      /* a connection must send HELLO within (10000) */
	int log_level;                  /* enum weir_agent_log_level; 0: INFO */
	/* log sink (any thread, one line without newline); NULL: stderr */
	void (*log)(void *user, int level, const char *msg);
	void *user;
	struct weir_agent_callbacks cb;
};

/* ---- server ------------------------------------------------------------ */

/* Copies cfg (name included). *out is valid until weir_agent_server_free. */
WEIR_AGENT_API int weir_agent_server_new(const struct weir_agent_config *cfg,
					 struct weir_agent_server **out);

/* Listens on addr: "unix:PATH" or a PATH starting with '/' or '.', or
 * "tcp:HOST:PORT" / "HOST:PORT" / "[V6]:PORT" (PORT 0: any). A stale Unix
 * socket file (nobody accepting) is replaced. Call before run. */
WEIR_AGENT_API int weir_agent_server_listen(struct weir_agent_server *s, const char *addr);

/* The address listener i is bound to ("unix:PATH" or "HOST:PORT", the real
 * port for PORT 0), NUL-terminated in buf. -ENOENT past the last. */
WEIR_AGENT_API int weir_agent_server_address(const struct weir_agent_server *s, unsigned i,
					     char *buf, size_t n);

/* Serves an already connected stream socket as a connection from weir
 * (socketpair, inherited fd). The server owns fd from now on, even on
 * error. Any thread, before or while run. */
WEIR_AGENT_API int weir_agent_server_adopt(struct weir_agent_server *s, int fd);

/* Runs the I/O loop in the calling thread (workers started and joined
 * here) until weir_agent_server_stop(); then sends GOAWAY on every
 * connection, lets open requests finish for drain_ms, closes everything,
 * runs the remaining `closed` callbacks, and returns 0. Once per server. */
WEIR_AGENT_API int weir_agent_server_run(struct weir_agent_server *s);

/* Asks run() to stop. Any thread, async-signal-safe, idempotent. */
WEIR_AGENT_API void weir_agent_server_stop(struct weir_agent_server *s);

/* After run() returned (or when it never ran). Every request reference
 * must have been released. NULL is fine. */
WEIR_AGENT_API void weir_agent_server_free(struct weir_agent_server *s);

struct weir_agent_stats {
	uint64_t connections;           /* accepted or adopted, total */
	uint64_t open_connections;
	uint64_t requests;              /* REQUEST_HEADERS received */
	uint64_t open_requests;
	uint64_t frames_in, frames_out;
	uint64_t verdicts;
	uint64_t protocol_errors;       /* connections closed for a protocol error */
	uint64_t frames_ignored;        /* for closed ids, or after the phase's verdict */
};
WEIR_AGENT_API void weir_agent_server_stats(const struct weir_agent_server *s,
					    struct weir_agent_stats *st);

/* ---- requests ---------------------------------------------------------- */

/* The request handle a callback gets is valid during the callback. To use
 * it later (an asynchronous verdict), take a reference in the callback and
 * release it when done; any thread. */
WEIR_AGENT_API struct weir_agent_req *weir_agent_req_ref(struct weir_agent_req *req);
WEIR_AGENT_API void weir_agent_req_unref(struct weir_agent_req *req);

WEIR_AGENT_API uint64_t weir_agent_req_id(const struct weir_agent_req *req);
WEIR_AGENT_API const struct weir_agent_request *weir_agent_req_request(const struct weir_agent_req *req);
/* NULL until RESPONSE_HEADERS arrived (only for response_headers subscribers). */
WEIR_AGENT_API const struct weir_agent_response *weir_agent_req_response(const struct weir_agent_req *req);
/* The author's per-request pointer (NULL at first); free it in `closed`. */
WEIR_AGENT_API void weir_agent_req_set_data(struct weir_agent_req *req, void *data);
/* true when the request's connection uses the shared-memory transport
 * (body chunks point into weir's arena, read-only). */
WEIR_AGENT_API bool weir_agent_req_shm(const struct weir_agent_req *req);
WEIR_AGENT_API void *weir_agent_req_data(const struct weir_agent_req *req);
/* The name weir's HELLO gave this agent (its name in weir's config). */
WEIR_AGENT_API struct weir_agent_str weir_agent_req_agent_name(const struct weir_agent_req *req);

/* The first field named name (ASCII case-insensitive), or NULL. */
WEIR_AGENT_API const struct weir_agent_header *
weir_agent_header_find(const struct weir_agent_header *h, uint32_t n, const char *name);

/* Sends r as the verdict of the phase that awaits one: the request phase
 * until its verdict was sent, then the response phase once
 * RESPONSE_HEADERS arrived (weir_agent_reply_phase() forces one). Any thread;
 * r is not modified and may be reused.
 * -ECANCELED: the request closed (cancelled, connection lost): nothing sent.
 * -EALREADY: no verdict is due (already sent; response not arrived yet).
 * -EMSGSIZE: the frame exceeds the max_frame weir announced.
 * -EINVAL: the reply is incomplete (redirect without location). */
WEIR_AGENT_API int weir_agent_verdict_send(struct weir_agent_req *req,
					   const struct weir_agent_reply *r);
/* NEED_MORE for a request whose request-phase verdict is pending. */
WEIR_AGENT_API int weir_agent_need_more(struct weir_agent_req *req);
/* CREDIT: grants bytes more body bytes (with the credit capability only:
 * -ENOTSUP otherwise). Only needed with manual_credit. */
WEIR_AGENT_API int weir_agent_credit(struct weir_agent_req *req, uint64_t bytes);

/* ---- replies (verdict builder) ---------------------------------------- */

/* A reply copies every string given to it, so arguments may be transient.
 * Builders return -EINVAL for a value the protocol forbids (a name that is
 * not an HTTP token, a value with CR/LF/NUL, a status out of range), -E2BIG
 * past a list's limit (WEIR_AGENT_MAX_MUTATIONS, WEIR_AGENT_MAX_AUDIT,
 * WEIR_AGENT_MAX_NAME bytes), -EPERM for a framing or connection field
 * (Content-Length, Transfer-Encoding, Connection, Keep-Alive, TE, Trailer,
 * Upgrade, Host) in a mutation, -ENOMEM. A failed call leaves the reply as
 * it was. A reply is not thread-safe: one thread builds it at a time. */
WEIR_AGENT_API struct weir_agent_reply *weir_agent_reply_new(void);
WEIR_AGENT_API void weir_agent_reply_free(struct weir_agent_reply *r);
/* Back to a bare allow for the automatic phase (storage kept). */
WEIR_AGENT_API void weir_agent_reply_reset(struct weir_agent_reply *r);

/* Action: allow (the default; clears status, location and body; headers_out
 * are sent only with a block or redirect), block (status 0: 403; 200..599)
 * with an optional body, or redirect (status 0: 302; 301, 302, 303, 307,
 * 308) to location. */
WEIR_AGENT_API int weir_agent_reply_allow(struct weir_agent_reply *r);
WEIR_AGENT_API int weir_agent_reply_block(struct weir_agent_reply *r, unsigned status,
					  const void *body, size_t len);
WEIR_AGENT_API int weir_agent_reply_redirect(struct weir_agent_reply *r, unsigned status,
					     const char *location);
/* A header of the block / redirect response (headers_out). */
WEIR_AGENT_API int weir_agent_reply_header(struct weir_agent_reply *r, const char *name,
					   const char *value);
/* A new request body for the upstream (body_replace), sent only with a
 * request-phase allow. weir honours it in `buffer` body mode from an agent
 * that received the whole body (its LAST frame), and re-frames the request
 * with a Content-Length; otherwise it logs and ignores it. len may be 0. */
WEIR_AGENT_API int weir_agent_reply_body_replace(struct weir_agent_reply *r, const void *body,
						 size_t len);
/* Force the phase (enum weir_agent_phase); -1: automatic (the default). */
WEIR_AGENT_API int weir_agent_reply_phase(struct weir_agent_reply *r, int phase);

/* Header mutations applied by weir: set (replace every field of that name,
 * or add it), add (append), del (remove every field of that name); req_* on
 * the request sent upstream, resp_* on the response sent to the client. */
WEIR_AGENT_API int weir_agent_reply_req_set(struct weir_agent_reply *r, const char *name,
					    const char *value);
WEIR_AGENT_API int weir_agent_reply_req_add(struct weir_agent_reply *r, const char *name,
					    const char *value);
WEIR_AGENT_API int weir_agent_reply_req_del(struct weir_agent_reply *r, const char *name);
WEIR_AGENT_API int weir_agent_reply_resp_set(struct weir_agent_reply *r, const char *name,
					     const char *value);
WEIR_AGENT_API int weir_agent_reply_resp_add(struct weir_agent_reply *r, const char *name,
					     const char *value);
WEIR_AGENT_API int weir_agent_reply_resp_del(struct weir_agent_reply *r, const char *name);

/* Audit fields, logged by weir with the request. */
WEIR_AGENT_API int weir_agent_reply_tag(struct weir_agent_reply *r, const char *tag);
WEIR_AGENT_API int weir_agent_reply_rule_id(struct weir_agent_reply *r, uint64_t id);
WEIR_AGENT_API int weir_agent_reply_rule_name(struct weir_agent_reply *r, const char *id);
WEIR_AGENT_API int weir_agent_reply_score(struct weir_agent_reply *r, int64_t score);
WEIR_AGENT_API int weir_agent_reply_reason(struct weir_agent_reply *r, const char *reason);

/* The action set so far (enum weir_agent_action). */
WEIR_AGENT_API int weir_agent_reply_action(const struct weir_agent_reply *r);

#ifdef __cplusplus
}
#endif

#endif
