/* SPDX-License-Identifier: MIT */
/* weir shared-memory agent transport — the layout both sides map.
 *
 * Negotiated on a Unix-socket agent connection (capability
 * WEIR_AGENT_CAP_SHM, docs/agent-protocol.md "Shared-memory transport").
 * weir sends a SHM_SETUP frame with four descriptors (SCM_RIGHTS, in this
 * order): the control memfd, the arena memfd, the eventfd that wakes the
 * agent, the eventfd that wakes weir.
 *
 * Control memfd (the agent maps it read-write, MAP_SHARED, whole size):
 *
 *   offset              size           what
 *   0                   4096           struct weir_shm_hdr (weir writes it
 *                                      before SHM_SETUP; read-only after)
 *   hdr.p2a_off         256 + p2a_size ring weir -> agent: struct
 *                                      weir_ring_ctl, then p2a_size bytes
 *   hdr.a2p_off         256 + a2p_size ring agent -> weir, same shape
 *
 * Arena memfd (the agent maps it read-only): hdr.nbufs buffers of
 * hdr.buf_size bytes; buffer i is at i * buf_size. The kernel receives
 * client body bytes straight into it (weir's provided-buffer ring).
 *
 * Rings. Single producer, single consumer, power-of-two byte size. prod
 * and cons are free-running byte counters (never masked when stored):
 * the producer owns the first cache-line pair, the consumer the second.
 *
 *   - The producer writes records at prod & (size - 1), then stores prod
 *     with release ordering (publishing a batch of records at once).
 *   - The consumer loads prod with acquire ordering, reads the records
 *     between cons and prod, then stores cons with release ordering.
 *   - Records are 8-byte aligned: struct weir_ring_rec, then len payload
 *     bytes, then padding to 8. A record never wraps: when it does not fit
 *     before the end, the producer writes a PAD record there (flag
 *     WEIR_RING_REC_PAD, len 0), which the consumer skips to the end.
 *   - A data record's payload is one frame of docs/agent-protocol.md
 *     (16-byte header, then one MessagePack map), exactly as it would
 *     travel on the socket.
 *
 * Wake-ups (eventfd): a consumer that runs out of records stores
 * cons_sleeping = 1, then (sequentially consistent) loads prod again; if
 * still empty it sleeps on its eventfd, and clears the flag when it wakes.
 * A producer, after storing prod (sequentially consistent), loads
 * cons_sleeping and writes the consumer's eventfd only when it is set.
 * The same for a full ring: the producer sets prod_waiting, and the
 * consumer, after storing cons, wakes it when it is set. Each flag is
 * written only by its owner; a waker only reads it.
 *
 * Trust: weir validates every index, record length and offset it reads
 * from these pages (the agent may be hostile) and copies each record out
 * before it parses it. Fixed-width, no pointers; C11 or C++11.
 */
#ifndef WEIR_UAPI_RING_H
#define WEIR_UAPI_RING_H

#include <stdint.h>

#define WEIR_SHM_MAGIC 0x314d485352494557ull  /* "WEIRSHM1" little-endian */
#define WEIR_SHM_VERSION 1u
#define WEIR_SHM_HDR_SIZE 4096u
#define WEIR_RING_CTL_SIZE 256u
#define WEIR_RING_ALIGN 8u

struct weir_shm_hdr {
	uint64_t magic;                 /* WEIR_SHM_MAGIC */
	uint32_t version;               /* WEIR_SHM_VERSION */
	uint32_t hdr_size;              /* WEIR_SHM_HDR_SIZE */
	uint64_t ctl_size;              /* size of the control memfd */
	uint64_t p2a_off;               /* ring weir -> agent (its struct weir_ring_ctl) */
	uint32_t p2a_size;              /* data bytes, a power of two */
	uint32_t reserved0;
	uint64_t a2p_off;               /* ring agent -> weir */
	uint32_t a2p_size;
	uint32_t max_record;            /* largest record payload either side writes */
	uint64_t arena_size;            /* size of the arena memfd: nbufs * buf_size */
	uint32_t buf_size;
	uint32_t nbufs;
	uint32_t reactor;
	uint32_t reserved[13];
};

struct weir_ring_ctl {
	/* producer's lines */
	uint64_t prod;                  /* bytes ever published */
	uint32_t prod_waiting;          /* 1: the producer waits for room */
	uint32_t reserved0;
	uint8_t pad0[128 - 16];
	/* consumer's lines */
	uint64_t cons;                  /* bytes ever consumed */
	uint32_t cons_sleeping;         /* 1: the consumer waits for records */
	uint32_t reserved1;
	uint8_t pad1[128 - 16];
};

struct weir_ring_rec {
	uint32_t len;                   /* payload bytes (0 for PAD) */
	uint32_t flags;                 /* WEIR_RING_REC_* */
};

enum weir_ring_rec_flag {
	WEIR_RING_REC_PAD = 1u << 0,    /* skip to the end of the ring */
};

/* Frame types of the shm transport (enum weir_agent_type continues). */
enum weir_shm_type {
	/* weir -> agent, on the socket, with 4 fds; payload: an empty map
	 * (the layout is in the control memfd's header) */
	WEIR_AGENT_SHM_SETUP = 0x09,
	/* agent -> weir, on the socket: K_SHM_STATUS 0 (the rings are
	 * mapped: from now on every frame in both directions travels in the
	 * rings) or an errno value (stay on the socket) */
	WEIR_AGENT_SHM_READY = 0x87,
	/* agent -> weir, in the a2p ring: K_SHM_BUFS, one arena buffer index
	 * per body frame that referenced it; a buffer is reused only once
	 * released */
	WEIR_AGENT_RELEASE = 0x88,
};

/* Keys of the shm transport (enum weir_agent_key continues). In a
 * REQUEST_BODY / RESPONSE_BODY frame of the p2a ring, body bytes that sit
 * in the arena are named by K_ARENA_OFF / K_ARENA_LEN (and K_SHM_BUF, the
 * buffer to release) instead of K_DATA; bytes that do not (they arrived
 * with the request head) are inline in K_DATA as on the socket. */
enum weir_shm_key {
	WEIR_AGENT_K_ARENA_OFF = 47,    /* uint: offset of the data in the arena */
	WEIR_AGENT_K_ARENA_LEN = 48,    /* uint: bytes */
	WEIR_AGENT_K_SHM_BUF = 49,      /* uint: buffer index to RELEASE */
	WEIR_AGENT_K_SHM_BUFS = 50,     /* array of uint: RELEASE */
	WEIR_AGENT_K_SHM_STATUS = 51,   /* uint: SHM_READY */
};

#define WEIR_SHM_MAX_RELEASE 1024u      /* indices per RELEASE frame */

#ifdef __cplusplus
static_assert(sizeof(struct weir_shm_hdr) == 128, "shm header");
static_assert(sizeof(struct weir_ring_ctl) == WEIR_RING_CTL_SIZE, "ring control");
static_assert(sizeof(struct weir_ring_rec) == 8, "record header");
#else
_Static_assert(sizeof(struct weir_shm_hdr) == 128, "shm header");
_Static_assert(sizeof(struct weir_ring_ctl) == WEIR_RING_CTL_SIZE, "ring control");
_Static_assert(__builtin_offsetof(struct weir_ring_ctl, cons) == 128, "consumer line");
_Static_assert(sizeof(struct weir_ring_rec) == 8, "record header");
#endif

#endif
