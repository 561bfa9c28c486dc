/* libweir-agent internals: the codec (codec.c, pure: the fuzzer drives it),
 * the reply encoder (reply.c), and the objects shared by server.c (the I/O
 * thread) and req.c (requests, workers). Nothing here is exported. */
#ifndef WEIR_SDK_INTERNAL_H
#define WEIR_SDK_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>

#include "weir/agent-sdk.h"
#include "weir/ring.h"

#define WEIR__HIDDEN __attribute__((visibility("hidden")))

/* ---- codec (codec.c) --------------------------------------------------- */

struct weir__sdk_frame {
	uint32_t size;                  /* whole frame, header included */
	uint8_t type;
	uint8_t flags;
	uint64_t id;
	const char *payload;
	uint32_t plen;
};

/* 0: a whole frame at p (f filled in); 1: incomplete (*need: the bytes the
 * frame needs, 16 while its length is unknown); -1: length below 12 or the
 * frame over max_frame. */
WEIR__HIDDEN int weir__sdk_frame_parse(const char *p, size_t n, uint32_t max_frame,
				       struct weir__sdk_frame *f, uint32_t *need);
WEIR__HIDDEN void weir__sdk_hdr_put(char *dst, uint32_t plen, uint8_t type, uint8_t flags,
				    uint64_t id);

struct weir__sdk_hello {
	uint32_t version;
	uint32_t caps;
	uint32_t max_frame;             /* clamped to [MAX_FRAME_MIN, MAX_FRAME_CEIL] */
	uint32_t events;                /* WEIR_AGENT_EV_ALL when absent */
	uint32_t reactor;
	struct weir_agent_str name;
};

/* Decoders of what weir sends: 0, or -1 with *why (a static string). Every
 * payload must be exactly one MessagePack map (mp_check first; then each
 * value is read with bounds checked again, so a structure mp_check lets
 * through with an overflowing count is still refused). Keys must be
 * unsigned integers, a known key may not repeat, unknown keys are skipped.
 * Decoded slices point into p. */
WEIR__HIDDEN int weir__sdk_dec_hello(const char *p, size_t n, struct weir__sdk_hello *h,
				     const char **why);
/* The header fields go to hdrs when they fit (at most cap): rq->headers is
 * then hdrs; else they are only counted (rq->headers NULL, rq->nheaders
 * the count: decode again with room). trusted: these bytes (or a copy)
 * were accepted by a previous call, mp_check is skipped (every read stays
 * bounded anyway). With no headers key, rq->headers is hdrs, 0 of them. */
WEIR__HIDDEN int weir__sdk_dec_request(const char *p, size_t n, struct weir_agent_request *rq,
				       struct weir_agent_header *hdrs, uint32_t cap, bool trusted,
				       const char **why);
WEIR__HIDDEN int weir__sdk_dec_response(const char *p, size_t n, struct weir_agent_response *rs,
					struct weir_agent_header *hdrs, uint32_t cap, bool trusted,
					const char **why);
WEIR__HIDDEN int weir__sdk_dec_body(const char *p, size_t n, struct weir_agent_chunk *c,
				    const char **why);
/* A body frame of the shm transport may name arena bytes instead of data
 * (uapi/weir/ring.h): then ref->has, c->data NULL, c->len the length. The
 * reference is not checked against the arena here (weir__sdk_shm_chunk). */
struct weir__sdk_bref {
	bool has;
	uint64_t off, len, buf;
};
WEIR__HIDDEN int weir__sdk_dec_body_ref(const char *p, size_t n, struct weir_agent_chunk *c,
					struct weir__sdk_bref *ref, const char **why);
WEIR__HIDDEN int weir__sdk_dec_done(const char *p, size_t n, struct weir_agent_done *d,
				    const char **why);
WEIR__HIDDEN int weir__sdk_dec_cancel(const char *p, size_t n, uint32_t *reason,
				      const char **why);
/* PING and anything else whose keys are all unknown: one valid map. */
WEIR__HIDDEN int weir__sdk_dec_map(const char *p, size_t n, const char **why);

/* Encoders of what the agent sends: write the whole frame to dst (room for
 * WEIR__SDK_SMALL_FRAME bytes, or the size given) and return its size. */
#define WEIR__SDK_SMALL_FRAME 256u
struct weir__sdk_hello_reply {
	uint32_t caps, max_frame, max_in_flight, events;
	struct weir_agent_str name;     /* len 0: left out; at most WEIR_AGENT_MAX_NAME */
	bool has_window;
	uint32_t body_window;
};
WEIR__HIDDEN uint32_t weir__sdk_enc_hello_reply(char *dst, const struct weir__sdk_hello_reply *h);
/* PONG, NEED_MORE: empty payload */
WEIR__HIDDEN uint32_t weir__sdk_enc_empty(char *dst, uint8_t type, uint64_t id);
WEIR__HIDDEN uint32_t weir__sdk_enc_credit(char *dst, uint64_t id, uint64_t bytes);
/* reason: at most 200 bytes are sent */
WEIR__HIDDEN uint32_t weir__sdk_enc_goaway(char *dst, const char *reason);

/* ---- replies (reply.c) --------------------------------------------------- */

/* The size of r's VERDICT frame, header included (phase: 0 or 1). */
WEIR__HIDDEN size_t weir__sdk_reply_size(const struct weir_agent_reply *r);
WEIR__HIDDEN uint32_t weir__sdk_reply_encode(char *dst, const struct weir_agent_reply *r,
					     uint64_t id, unsigned phase);
/* -1 automatic, else the forced phase */
WEIR__HIDDEN int weir__sdk_reply_phase(const struct weir_agent_reply *r);
/* 0 when r can be sent (a redirect has a location) */
WEIR__HIDDEN int weir__sdk_reply_check(const struct weir_agent_reply *r);

/* ---- server objects (server.c, req.c) ------------------------------------ */

struct weir__sdk_rbuf {                 /* receive buffer; body chunks reference it */
	atomic_uint ref;
	uint32_t cap;
	char data[];
};

enum {
	WEIR__EV_REQ_HEADERS = 1,
	WEIR__EV_REQ_BODY,
	WEIR__EV_RESP_HEADERS,
	WEIR__EV_RESP_BODY,
	WEIR__EV_DONE,
	WEIR__EV_CLOSED,
};

struct weir__sdk_ev {
	struct weir__sdk_ev *next;
	uint8_t kind;
	int32_t shm_buf;                /* arena buffer to RELEASE once run, or -1 */
	struct weir_agent_req *req;     /* a reference */
	struct weir__sdk_rbuf *rb;      /* a reference, body events only */
	union {
		struct weir_agent_chunk chunk;
		struct weir_agent_done done;
		int reason;
	} u;
};

/* A queue of events and the thread that runs them (or the I/O thread when
 * workers is 0). */
struct weir__sdk_wq {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct weir__sdk_ev *head, *tail;
	bool sleeping, stop;
	bool is_io;
	pthread_t th;
	struct weir_agent_server *s;
	struct weir_agent_reply *reply; /* reset before each callback */
};

/* Request state bits (weir_agent_req.st; written under the connection's
 * mutex, read anywhere). */
enum {
	WEIR__RQ_OPEN = 1u << 0,        /* in the connection's table */
	WEIR__RQ_VERDICT = 1u << 1,     /* request-phase verdict sent */
	WEIR__RQ_BLOCKED = 1u << 2,     /* ... and it was block or redirect */
	WEIR__RQ_BODY_WANTED = 1u << 3, /* subscribed to request_body or NEED_MORE sent */
	WEIR__RQ_RESP = 1u << 4,        /* RESPONSE_HEADERS arrived */
	WEIR__RQ_RESP_VERDICT = 1u << 5,
	WEIR__RQ_RESP_BLOCKED = 1u << 6,
	WEIR__RQ_RESP_END = 1u << 7,    /* the last response event arrived */
};

#define WEIR__SDK_SCRATCH 64u

struct weir__sdk_conn {
	struct weir_agent_server *s;
	int fd;
	atomic_uint ref;                /* the I/O thread's, one per request, flush list */
	pthread_mutex_t mu;
	/* under mu */
	bool closed;
	char *out;                      /* frames to send: [out_off, out_len) */
	size_t out_len, out_cap, out_off;
	struct weir_agent_req **tab;    /* open ids: open addressing, mask tab_mask */
	uint32_t tab_mask, nopen;
	struct weir_agent_req *oldest, *newest; /* open requests, in open order */
	/* negotiated at HELLO, before any request exists; read-only after */
	uint32_t peer_max_frame, caps, events;
	char peer_name[WEIR_AGENT_MAX_NAME + 1];
	size_t peer_name_len;
	/* under s->mu */
	bool in_flush;
	struct weir__sdk_conn *flush_next;
	/* I/O thread only */
	struct weir__sdk_conn *next, *prev;
	bool hello_done, goaway_sent, dead, want_out, rd_paused;
	const char *dead_why;
	char dead_buf[96];
	uint64_t hello_deadline_ms;
	struct weir__sdk_rbuf *rb;
	uint32_t rpos, rlen, want;
	char name[64];                  /* the peer, for logs */
	/* shared memory (src/sdk/shm.c): mapped at SHM_SETUP, unmapped when
	 * the connection is freed (callbacks may still read the arena) */
	struct weir__sdk_shm *shm;
	bool shm_on;                    /* under mu: output goes to the ring */
	size_t shm_sock_end;            /* under mu: c->out bytes before this go to the socket */
	int fds[4];                     /* I/O thread: fds received, not yet used */
	unsigned nfds;
	/* decoding room: heads with up to this many fields decode in one pass */
	struct weir_agent_header scratch[WEIR__SDK_SCRATCH];
};

struct weir_agent_req {
	atomic_uint ref;
	atomic_uint st;                 /* WEIR__RQ_* */
	struct weir__sdk_conn *c;       /* a reference */
	struct weir__sdk_wq *wq;
	uint64_t id;
	void *data;                     /* the author's */
	struct weir__sdk_ev close_ev;   /* WEIR__EV_CLOSED, never allocated */
	/* under c->mu */
	struct weir_agent_req *older, *newer;
	uint64_t credit_pending;        /* consumed, not yet granted */
	int64_t credit_left;            /* body bytes weir may still send; INT64_MAX: unlimited */
	/* I/O thread only (body offsets) */
	uint64_t req_next, resp_next;
	bool req_seen, req_ended, resp_seen, resp_ended;
	/* the response head (RESPONSE_HEADERS), published before its event */
	_Atomic(struct weir_agent_response *) resp;
	struct weir_agent_request rq;
	/* then: rq.nheaders headers, then the REQUEST_HEADERS payload they
	 * point into */
	struct weir_agent_header hdrs[];
};

struct weir__sdk_listener {
	int fd;
	bool paused;
	char addr[128];
	char *unix_path;                /* to unlink on close */
};

#define WEIR__SDK_MAX_LISTENERS 16

struct weir_agent_server {
	struct weir_agent_config cfg;
	char name[WEIR_AGENT_MAX_NAME + 1];
	uint32_t events;                /* what the HELLO_REPLY asks for */
	uint32_t caps;
	int epfd, evfd;
	struct weir__sdk_listener ls[WEIR__SDK_MAX_LISTENERS];
	unsigned nls;
	atomic_bool stop_req;
	atomic_bool woken;
	bool running, ran, stopping;
	uint64_t drain_deadline_ms, listen_resume_ms;
	pthread_mutex_t mu;             /* flush list, adopted fds */
	struct weir__sdk_conn *flush_head;
	int *adopt;
	unsigned nadopt, cadopt;
	struct weir__sdk_conn *conns;   /* I/O thread */
	unsigned nworkers;
	struct weir__sdk_wq *wqs;       /* nworkers, or one (the I/O thread's) */
	unsigned rr;
	struct {
		atomic_uint_fast64_t connections, open_connections, requests, open_requests,
			frames_in, frames_out, verdicts, protocol_errors, frames_ignored;
	} st;
};

/* server.c */
__attribute__((format(printf, 3, 4)))
WEIR__HIDDEN void weir__sdk_log(const struct weir_agent_server *s, int level, const char *fmt, ...);
WEIR__HIDDEN bool weir__sdk_on_io_thread(const struct weir_agent_server *s);
WEIR__HIDDEN void weir__sdk_wake(struct weir_agent_server *s);
/* Under c->mu: room for n more output bytes at the returned pointer; the
 * caller writes them and adds n to c->out_len. NULL: out of memory. */
WEIR__HIDDEN char *weir__sdk_out_reserve(struct weir__sdk_conn *c, size_t n);
/* After output was queued (c->mu released): have the I/O thread send it. */
WEIR__HIDDEN void weir__sdk_conn_kick(struct weir__sdk_conn *c);
WEIR__HIDDEN void weir__sdk_conn_unref(struct weir__sdk_conn *c);
WEIR__HIDDEN void weir__sdk_rbuf_unref(struct weir__sdk_rbuf *rb);

/* req.c */
/* The I/O thread's frame handlers, on a connection past HELLO. -1: a
 * protocol error, *why set (the caller closes the connection). */
WEIR__HIDDEN int weir__sdk_on_request_frame(struct weir__sdk_conn *c, const struct weir__sdk_frame *f,
					    struct weir__sdk_rbuf *rb, const char **why);
/* Closes every open request of c (connection lost), under c->mu. */
WEIR__HIDDEN void weir__sdk_close_all_locked(struct weir__sdk_conn *c);
WEIR__HIDDEN int weir__sdk_table_init(struct weir__sdk_conn *c, uint32_t max_in_flight);
WEIR__HIDDEN void weir__sdk_wq_push(struct weir__sdk_wq *q, struct weir__sdk_ev *e);
/* Runs queued events; returns how many. */
WEIR__HIDDEN unsigned weir__sdk_wq_run(struct weir__sdk_wq *q);
WEIR__HIDDEN void *weir__sdk_worker_main(void *arg);

/* shm.c: the agent side of the shared-memory transport. */
struct weir__sdk_shm;
/* SHM_SETUP with c->fds: maps, checks the layout; 0 or -errno (the fds are
 * consumed either way). */
WEIR__HIDDEN int weir__sdk_shm_setup(struct weir__sdk_conn *c);
/* I/O thread: frames from weir's ring into the frame handler; false once
 * the connection failed (*why). */
WEIR__HIDDEN bool weir__sdk_shm_poll(struct weir__sdk_conn *c, const char **why);
/* Under c->mu, I/O thread: moves frames of c->out from shm_sock_end on
 * into the agent's ring (and pending releases); -1: ring error. */
WEIR__HIDDEN int weir__sdk_shm_flush_locked(struct weir__sdk_conn *c);
/* Any thread: a body chunk that referenced arena buffer buf is done. */
WEIR__HIDDEN void weir__sdk_shm_release(struct weir__sdk_conn *c, uint32_t buf);
/* Checks a chunk's arena reference, points ch->data at the bytes. */
WEIR__HIDDEN int weir__sdk_shm_chunk(struct weir__sdk_conn *c, const struct weir__sdk_bref *ref,
				     struct weir_agent_chunk *ch, const char **why);
/* Before sleeping: 0 when weir's ring has records (do not sleep). */
WEIR__HIDDEN int weir__sdk_shm_sleep(struct weir__sdk_conn *c);
WEIR__HIDDEN void weir__sdk_shm_woke(struct weir__sdk_conn *c);
WEIR__HIDDEN int weir__sdk_shm_efd(const struct weir__sdk_conn *c);
WEIR__HIDDEN void weir__sdk_shm_free(struct weir__sdk_conn *c);

/* server.c: hooks for the fuzz harness */
WEIR__HIDDEN struct weir__sdk_conn *weir__sdk_test_conn(struct weir_agent_server *s, int fd);
WEIR__HIDDEN bool weir__sdk_test_input(struct weir__sdk_conn *c, const char *p, size_t n);
WEIR__HIDDEN void weir__sdk_test_pump(struct weir_agent_server *s);
WEIR__HIDDEN void weir__sdk_test_close(struct weir__sdk_conn *c);

#endif
