/* SPDX-License-Identifier: MIT */
/* weir agent protocol — the ABI between weir and its inspection agents.
 *
 * This header is the normative definition of every value on the wire; the
 * prose, the state rules and a byte-level example of every message are in
 * docs/agent-protocol.md. It depends on nothing but <stdint.h> and compiles
 * on its own (C11 or C++11).
 *
 * A connection (Unix or TCP stream socket; weir connects, the agent
 * listens) carries frames in both directions:
 *
 *   offset size  field
 *   0      4     length      big-endian; bytes that follow this field
 *                            (12 + payload length), at least 12
 *   4      1     type        enum weir_agent_type
 *   5      1     flags       WEIR_AGENT_F_*; unknown bits are ignored
 *   6      2     reserved    zero when sent, ignored when received
 *   8      8     request_id  big-endian; 0 for connection-level frames
 *   16     ...   payload     one MessagePack map whose keys are the small
 *                            integers of enum weir_agent_key
 *
 * Maps may hold keys in any order and keys a receiver does not know, which
 * it skips — except that in REQUEST_BODY and RESPONSE_BODY frames weir always
 * writes WEIR_AGENT_K_DATA last, so that the bytes of the body follow the
 * frame header with nothing after them.
 */
#ifndef WEIR_UAPI_AGENT_H
#define WEIR_UAPI_AGENT_H

#include <stdint.h>

#define WEIR_AGENT_VERSION 1u

/* Bytes before the payload, the 4-byte length field included. */
#define WEIR_AGENT_HDR_SIZE 16u
/* The smallest valid value of the length field (an empty payload). */
#define WEIR_AGENT_LEN_MIN 12u
/* Frame size limits (length field + 4). Each side announces the largest
 * frame it accepts in its HELLO; a value below MIN is raised to MIN. */
#define WEIR_AGENT_MAX_FRAME_MIN (64u * 1024u)
#define WEIR_AGENT_MAX_FRAME_DEFAULT (256u * 1024u)
/* Hard ceiling: a peer announcing more is clamped to this. */
#define WEIR_AGENT_MAX_FRAME_CEIL (16u * 1024u * 1024u)

struct weir_agent_frame_hdr {
	uint32_t length_be;
	uint8_t type;
	uint8_t flags;
	uint16_t reserved;
	uint32_t request_id_hi_be;      /* the 64-bit id, big-endian, as two halves */
	uint32_t request_id_lo_be;      /* so that the struct has no padding */
};

#ifdef __cplusplus
static_assert(sizeof(struct weir_agent_frame_hdr) == WEIR_AGENT_HDR_SIZE,
	      "frame header is 16 bytes");
#else
_Static_assert(sizeof(struct weir_agent_frame_hdr) == WEIR_AGENT_HDR_SIZE,
	       "frame header is 16 bytes");
#endif

enum weir_agent_type {
	/* weir -> agent */
	WEIR_AGENT_HELLO = 0x01,                /* id 0; first frame weir sends */
	WEIR_AGENT_REQUEST_HEADERS = 0x02,      /* opens request id */
	WEIR_AGENT_REQUEST_BODY = 0x03,
	WEIR_AGENT_RESPONSE_HEADERS = 0x04,
	WEIR_AGENT_RESPONSE_BODY = 0x05,
	WEIR_AGENT_REQUEST_DONE = 0x06,         /* closes request id */
	WEIR_AGENT_CANCEL = 0x07,               /* closes request id */
	WEIR_AGENT_PING = 0x08,                 /* id: a nonce */
	/* agent -> weir */
	WEIR_AGENT_HELLO_REPLY = 0x81,          /* id 0; first frame the agent sends */
	WEIR_AGENT_VERDICT = 0x82,
	WEIR_AGENT_NEED_MORE = 0x83,
	WEIR_AGENT_CREDIT = 0x84,
	WEIR_AGENT_PONG = 0x85,                 /* id: the PING's nonce */
	WEIR_AGENT_GOAWAY = 0x86,               /* id 0 */
};

/* Frame flags. */
enum weir_agent_flag {
	/* REQUEST_HEADERS / RESPONSE_HEADERS: the message has no body, no
	 * *_BODY frame follows. REQUEST_BODY / RESPONSE_BODY: the last body
	 * frame of the message (its data may be empty). */
	WEIR_AGENT_F_LAST = 0x01,
};

/* Events an agent subscribes to (HELLO_REPLY WEIR_AGENT_K_EVENTS), also the
 * events weir can send (HELLO WEIR_AGENT_K_EVENTS). REQUEST_HEADERS is sent
 * for every request of a route that names the agent, whatever the mask. */
enum weir_agent_event {
	WEIR_AGENT_EV_REQUEST_HEADERS = 1u << 0,
	WEIR_AGENT_EV_REQUEST_BODY = 1u << 1,
	WEIR_AGENT_EV_RESPONSE_HEADERS = 1u << 2,
	WEIR_AGENT_EV_RESPONSE_BODY = 1u << 3,
	WEIR_AGENT_EV_REQUEST_DONE = 1u << 4,
};
#define WEIR_AGENT_EV_ALL 0x1fu

/* Capabilities (HELLO / HELLO_REPLY WEIR_AGENT_K_CAPABILITIES): a feature is
 * used on a connection only when both sides set its bit. */
enum weir_agent_cap {
	/* per-request body credit: WEIR_AGENT_K_BODY_WINDOW in HELLO_REPLY,
	 * CREDIT frames */
	WEIR_AGENT_CAP_CREDIT = 1u << 0,
	/* the shared-memory transport (uapi/weir/ring.h) */
	WEIR_AGENT_CAP_SHM = 1u << 1,
};

/* MessagePack map keys (positive fixints). */
enum weir_agent_key {
	WEIR_AGENT_K_VERSION = 1,       /* uint */
	WEIR_AGENT_K_CAPABILITIES = 2,  /* uint, enum weir_agent_cap bits */
	WEIR_AGENT_K_MAX_FRAME = 3,     /* uint, bytes */
	WEIR_AGENT_K_MAX_IN_FLIGHT = 4, /* uint, open request ids per connection */
	WEIR_AGENT_K_EVENTS = 5,        /* uint, enum weir_agent_event bits */
	WEIR_AGENT_K_NAME = 6,          /* str */
	WEIR_AGENT_K_BODY_WINDOW = 8,   /* uint, initial credit in bytes per request */
	WEIR_AGENT_K_REACTOR = 9,       /* uint, weir's reactor index */
	WEIR_AGENT_K_METHOD = 10,       /* str */
	WEIR_AGENT_K_TARGET = 11,       /* str, request-target as received */
	WEIR_AGENT_K_HTTP_MINOR = 12,   /* uint: 0 (HTTP/1.0) or 1 (HTTP/1.1) */
	WEIR_AGENT_K_HEADERS = 13,      /* array of str: name, value, name, value ... */
	WEIR_AGENT_K_CLIENT_ADDR = 14,  /* str, textual IP address */
	WEIR_AGENT_K_CLIENT_PORT = 15,  /* uint */
	WEIR_AGENT_K_ROUTE = 16,        /* str, the route's name */
	WEIR_AGENT_K_BODY_LENGTH = 17,  /* uint: Content-Length; absent when chunked */
	WEIR_AGENT_K_OFFSET = 18,       /* uint: body offset of the first data byte */
	WEIR_AGENT_K_DATA = 19,         /* bin: body bytes (always the last key) */
	WEIR_AGENT_K_STATUS = 20,       /* uint, HTTP status */
	WEIR_AGENT_K_REASON = 21,       /* str: human-readable reason (logged) */
	WEIR_AGENT_K_ACTION = 22,       /* uint, enum weir_agent_action */
	WEIR_AGENT_K_PHASE = 23,        /* uint, enum weir_agent_phase */
	WEIR_AGENT_K_LOCATION = 24,     /* str, redirect target */
	WEIR_AGENT_K_BODY = 25,         /* bin or str: block response body */
	WEIR_AGENT_K_REQ_SET = 26,      /* array of str pairs: replace (or add) */
	WEIR_AGENT_K_REQ_ADD = 27,      /* array of str pairs: append */
	WEIR_AGENT_K_REQ_DEL = 28,      /* array of str: names removed */
	WEIR_AGENT_K_RESP_SET = 29,
	WEIR_AGENT_K_RESP_ADD = 30,
	WEIR_AGENT_K_RESP_DEL = 31,
	WEIR_AGENT_K_TAGS = 32,         /* array of str (audit) */
	WEIR_AGENT_K_RULE_IDS = 33,     /* array of uint or str (audit) */
	WEIR_AGENT_K_BYTES = 34,        /* uint: CREDIT grant */
	WEIR_AGENT_K_BYTES_IN = 35,     /* uint: request body bytes received */
	WEIR_AGENT_K_BYTES_OUT = 36,    /* uint: response body bytes sent */
	WEIR_AGENT_K_DURATION_US = 37,  /* uint: request head to response end */
	WEIR_AGENT_K_CANCEL_REASON = 39, /* uint, enum weir_agent_cancel */
	WEIR_AGENT_K_UID = 40,          /* str: weir's request id, as logged */
	WEIR_AGENT_K_SCORE = 44,        /* int: anomaly score (audit) */
	WEIR_AGENT_K_HEADERS_OUT = 45,  /* array of str pairs: block/redirect response headers */
	WEIR_AGENT_K_BODY_REPLACE = 46, /* bin or str: new request body (allow, buffer mode) */
};

enum weir_agent_action {
	WEIR_AGENT_ALLOW = 0,
	WEIR_AGENT_BLOCK = 1,           /* K_STATUS (default 403), K_HEADERS_OUT, K_BODY */
	WEIR_AGENT_REDIRECT = 2,        /* K_STATUS (default 302), K_LOCATION (required) */
};

enum weir_agent_phase {
	WEIR_AGENT_PHASE_REQUEST = 0,
	WEIR_AGENT_PHASE_RESPONSE = 1,
};

enum weir_agent_cancel {
	WEIR_AGENT_CANCEL_CLIENT_GONE = 1,
	WEIR_AGENT_CANCEL_TIMEOUT = 2,
	WEIR_AGENT_CANCEL_BLOCKED = 3,          /* another agent blocked the request */
	WEIR_AGENT_CANCEL_UPSTREAM = 4,         /* the upstream failed */
	WEIR_AGENT_CANCEL_BODY_LIMIT = 5,       /* body over max_body, inspection skipped */
	WEIR_AGENT_CANCEL_SHUTDOWN = 6,
	WEIR_AGENT_CANCEL_ANSWERED = 7,         /* weir answered without the agent's verdict */
};

/* Limits weir enforces on what an agent sends (docs/agent-protocol.md). */
#define WEIR_AGENT_MAX_MUTATIONS 64u    /* header pairs per mutation list */
#define WEIR_AGENT_MAX_AUDIT 64u        /* tags, rule ids */
#define WEIR_AGENT_MAX_NAME 64u         /* bytes of K_NAME, tags, string rule ids */
#define WEIR_AGENT_MAX_REASON 1024u     /* bytes of K_REASON */

#endif
