/* weir: agent protocol codec (proxy side) — frame headers, message encoding,
 * and strict decoding of what agents send.
 *
 * Pure functions, no I/O: the fuzzer (tests/agent/fuzz_agent_frame.c) drives
 * the decoders directly. Everything an agent sends is hostile: decoders check
 * the whole MessagePack payload with mp_check before reading it, bound every
 * count and length, and return -1 with a static reason on anything invalid.
 * Decoded slices point into the caller's frame bytes and live as long as they.
 */
#ifndef WEIR_AGENT_PROTO_H
#define WEIR_AGENT_PROTO_H

#include <stdbool.h>
#include <stdint.h>

#include "weir/agent.h"
#include "weir/common.h"
#include "weir/h1.h"
#include "weir/ring.h"
#include "weir/spsc.h"

struct weir_agent_frame {
	uint32_t size;                  /* whole frame, header included */
	uint8_t type;
	uint8_t flags;
	uint64_t id;
	const char *payload;
	uint32_t payload_len;
};

/* Looks at the bytes at p: WEIR_H1_NEED_MORE when the frame is incomplete
 * (*need set to its full size once the header is there), -1 when invalid
 * (length below 12, or frame over max_frame), else 0 with f filled in. */
int weir_agent_frame_parse(const char *p, size_t n, uint32_t max_frame,
			   struct weir_agent_frame *f, uint32_t *need);

void weir_agent_frame_hdr_put(char *dst, uint32_t payload_len, uint8_t type, uint8_t flags,
			      uint64_t id);

struct weir_agent_hello_reply {
	uint32_t version;
	uint32_t caps;
	uint32_t max_frame;             /* clamped to [MAX_FRAME_MIN, MAX_FRAME_CEIL] */
	uint32_t max_in_flight;         /* 0: not given */
	uint32_t events;
	uint64_t body_window;           /* 0: unlimited */
	weir_slice_t name;
};

int weir_agent_decode_hello_reply(const char *p, size_t n, struct weir_agent_hello_reply *h,
				  const char **why);

struct weir_agent_kv {
	weir_slice_t name;
	weir_slice_t value;
};

enum weir_agent_mut_list {
	WEIR_MUT_REQ_SET = 0,
	WEIR_MUT_REQ_ADD,
	WEIR_MUT_REQ_DEL,
	WEIR_MUT_RESP_SET,
	WEIR_MUT_RESP_ADD,
	WEIR_MUT_RESP_DEL,
	WEIR_MUT_HEADERS_OUT,           /* block / redirect response headers */
	WEIR_MUT_NLISTS,
};

struct weir_agent_verdict {
	uint32_t action;                /* enum weir_agent_action */
	uint32_t phase;                 /* enum weir_agent_phase */
	uint32_t status;                /* defaulted: 403 block, 302 redirect */
	weir_slice_t location;
	weir_slice_t body;
	weir_slice_t reason;
	bool has_replace;
	weir_slice_t body_replace;      /* K_BODY_REPLACE */
	bool has_score;
	int64_t score;
	uint32_t ntags, nrules;
	weir_slice_t tags[WEIR_AGENT_MAX_AUDIT];
	weir_slice_t rules[WEIR_AGENT_MAX_AUDIT]; /* numbers as decimal text in rule_buf */
	char rule_buf[WEIR_AGENT_MAX_AUDIT][24];
	uint32_t n[WEIR_MUT_NLISTS];
	struct weir_agent_kv kv[WEIR_MUT_NLISTS][WEIR_AGENT_MAX_MUTATIONS];
};

/* Validates and decodes a VERDICT payload: action, phase, status range,
 * header names (tokens) and values (no CR, LF, NUL), location. */
int weir_agent_decode_verdict(const char *p, size_t n, struct weir_agent_verdict *v,
			      const char **why);

/* CREDIT: the grant in bytes. */
int weir_agent_decode_credit(const char *p, size_t n, uint64_t *bytes, const char **why);

/* Any payload: checks that it is one well-formed map. */
int weir_agent_check_map(const char *p, size_t n, const char **why);

/* ---- encoders: each returns a heap block (weir_malloc) holding the whole
 * frame, header included, and its size in *len; NULL when out of memory. */

struct weir_agent_req_info {
	const struct weir_h1_request *req;
	const char *client_addr;
	uint16_t client_port;
	const char *route;
	const char *uid;
};

/* events: what weir may send on the connection (the agent chooses within). */
char *weir_agent_enc_hello(const char *name, unsigned reactor, uint32_t events, uint32_t caps,
			   uint32_t *len);
char *weir_agent_enc_request_headers(uint64_t id, const struct weir_agent_req_info *ri,
				     uint32_t *len);
char *weir_agent_enc_response_headers(uint64_t id, const struct weir_h1_response *res,
				      uint32_t *len);
char *weir_agent_enc_done(uint64_t id, unsigned status, uint64_t bytes_in, uint64_t bytes_out,
			  uint64_t duration_us, uint32_t *len);
char *weir_agent_enc_cancel(uint64_t id, unsigned reason, uint32_t *len);
char *weir_agent_enc_ping(uint64_t nonce, uint32_t *len);

/* A body frame's prefix (frame header + map up to the bin header) for
 * data_len bytes at offset: written to dst (at most WEIR_AGENT_BODY_PREFIX
 * bytes); returns its length. The data follows it on the wire. */
#define WEIR_AGENT_BODY_PREFIX 40u
uint32_t weir_agent_body_prefix(char *dst, uint8_t type, uint64_t id, bool last,
				uint64_t offset, uint32_t data_len);

/* ---- shared-memory transport (uapi/weir/ring.h) ----------------------- */

/* A body frame of the p2a ring naming arena bytes (no data key): written
 * to dst (at most WEIR_AGENT_BODY_REF_MAX bytes); returns its length. */
#define WEIR_AGENT_BODY_REF_MAX 64u
uint32_t weir_agent_body_ref(char *dst, uint8_t type, uint64_t id, bool last, uint64_t offset,
			     uint64_t arena_off, uint32_t data_len, uint32_t buf);
char *weir_agent_enc_shm_setup(uint32_t *len);
/* SHM_READY: the agent's status (0: mapped). */
int weir_agent_decode_shm_ready(const char *p, size_t n, uint64_t *status, const char **why);
/* RELEASE: up to cap buffer indices, each < nbufs, into idx. */
int weir_agent_decode_release(const char *p, size_t n, uint32_t nbufs, uint32_t *idx,
			      uint32_t cap, uint32_t *count, const char **why);
/* Reads up to max_frames records of the agent -> weir ring r: each is
 * copied to buf (cap bytes, also the frame limit) and must hold exactly one
 * valid frame, which goes to cb (non-zero: stop, -1 returned). Returns the
 * number of frames, or -1 with *why (the agent broke the ring protocol).
 * Bounded: at most max_frames records, each at least 8 ring bytes. */
int weir_agent_shm_rx(struct weir_ring *r, char *buf, uint32_t cap, unsigned max_frames,
		      int (*cb)(void *ctx, const struct weir_agent_frame *f), void *ctx,
		      const char **why);

/* Header names that agents may not mutate (framing, connection). */
bool weir_agent_protected_header(weir_slice_t name);

#endif
