/* weir: one side's view of a shared-memory SPSC ring (layout and protocol:
 * uapi/weir/ring.h). Header-only: weir, libweir-agent, the tests and the
 * benchmarks use the same code.
 *
 * A struct weir_ring is private to its side; only ctl and data are shared.
 * The side's own index lives here (`pos`) and is never read back from
 * shared memory: the peer can scribble on the pages but cannot move our
 * cursor. The peer's index is loaded, checked against what is possible
 * (monotonic, at most `size` apart from ours) and only then used; a
 * violation returns WEIR_RING_EBAD and the caller drops the peer.
 *
 * Producer:  weir_ring_reserve() -> write the payload -> weir_ring_commit()
 *            (any number of times) -> weir_ring_publish() once per batch;
 *            publish returns true when the consumer sleeps: write its
 *            eventfd.
 * Consumer:  weir_ring_read() (copies the payload out: no double fetch)
 *            any number of times -> weir_ring_release() once per batch;
 *            release returns true when the producer waits for room.
 * Sleeping:  weir_ring_sleep_prepare() (consumer) / weir_ring_wait_prepare()
 *            (producer) set the side's flag and return false when there is
 *            work after all (then call ..._done() and carry on); the flag is
 *            cleared by ..._done() after waking.
 *
 * Every loop here is bounded by the ring size: a hostile peer cannot make
 * a call spin.
 */
#ifndef WEIR_SPSC_H
#define WEIR_SPSC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "weir/ring.h"

#define WEIR_RING_EMPTY 0
#define WEIR_RING_EAGAIN (-11)          /* no room (producer) */
#define WEIR_RING_EBAD (-71)            /* the peer broke the protocol (EPROTO) */
#define WEIR_RING_ETOOBIG (-7)          /* record larger than allowed */

struct weir_ring {
	struct weir_ring_ctl *ctl;      /* shared */
	unsigned char *data;            /* shared, size bytes */
	uint32_t size;                  /* power of two, >= 64 */
	uint32_t max_rec;               /* largest payload accepted / written */
	uint64_t pos;                   /* producer: written (>= published); consumer: read */
	uint64_t pub;                   /* producer: published; consumer: released */
	uint64_t peer;                  /* the peer's index, last value validated */
};

static inline uint32_t weir_ring_rec_size(uint32_t len)
{
	return (uint32_t)sizeof(struct weir_ring_rec) + ((len + WEIR_RING_ALIGN - 1) & ~(WEIR_RING_ALIGN - 1));
}

/* size: power of two >= 64; max_rec: at most size / 2 - 8. Resets the view
 * to the indices found in ctl only when `fresh` (the creator zeroes ctl);
 * a side attaching later starts from 0 too: rings are set up before use. */
static inline int weir_ring_init(struct weir_ring *r, void *ctl, void *data, uint32_t size,
				 uint32_t max_rec)
{
	if (size < 64 || (size & (size - 1)) != 0 || max_rec == 0 ||
	    max_rec > size / 2 - sizeof(struct weir_ring_rec))
		return -22;
	r->ctl = (struct weir_ring_ctl *)ctl;
	r->data = (unsigned char *)data;
	r->size = size;
	r->max_rec = max_rec;
	r->pos = r->pub = r->peer = 0;
	return 0;
}

/* ---- producer ------------------------------------------------------------- */

/* Loads and checks the consumer's index: it may only move forward, up to
 * what we published. mo: __ATOMIC_ACQUIRE, or __ATOMIC_SEQ_CST for the
 * re-check after setting a flag (store flag; load index must be in the one
 * total order of seq_cst operations, or both sides may read old values and
 * a wake-up is lost: the spin model, tests/ring/ring.pml, shows it). */
static inline int weir__ring_load_cons_mo(struct weir_ring *r, int mo)
{
	uint64_t c = __atomic_load_n(&r->ctl->cons, mo);

	if (c - r->peer > r->pub - r->peer)
		return WEIR_RING_EBAD;
	r->peer = c;
	return 0;
}

static inline int weir__ring_load_cons(struct weir_ring *r)
{
	return weir__ring_load_cons_mo(r, __ATOMIC_ACQUIRE);
}

/* Room for a record of len payload bytes: a pointer to write them to, or
 * NULL with *err (WEIR_RING_EAGAIN: full; WEIR_RING_EBAD; WEIR_RING_ETOOBIG). */
static inline void *weir_ring_reserve(struct weir_ring *r, uint32_t len, int *err)
{
	uint32_t need = weir_ring_rec_size(len), off, tail;

	if (len > r->max_rec) {
		*err = WEIR_RING_ETOOBIG;
		return NULL;
	}
	for (int pass = 0; pass < 2; pass++) {
		off = (uint32_t)r->pos & (r->size - 1);
		tail = r->size - off;
		/* a record never wraps: it needs `need` contiguous bytes, or
		 * the tail is padded and it goes at the start */
		uint64_t want = need <= tail ? need : (uint64_t)tail + need;

		if (r->size - (r->pos - r->peer) >= want) {
			if (need > tail) {
				struct weir_ring_rec pad = { 0, WEIR_RING_REC_PAD };

				memcpy(r->data + off, &pad, sizeof(pad));
				r->pos += tail;
				off = 0;
			}
			return r->data + off + sizeof(struct weir_ring_rec);
		}
		if (pass == 0 && (*err = weir__ring_load_cons(r)) != 0)
			return NULL;
	}
	*err = WEIR_RING_EAGAIN;
	return NULL;
}

/* The record reserved last holds len bytes (len <= the reserved length). */
static inline void weir_ring_commit(struct weir_ring *r, uint32_t len)
{
	struct weir_ring_rec h = { len, 0 };

	memcpy(r->data + ((uint32_t)r->pos & (r->size - 1)), &h, sizeof(h));
	r->pos += weir_ring_rec_size(len);
}

/* reserve + copy + commit. 0 or a WEIR_RING_E* value. */
static inline int weir_ring_write(struct weir_ring *r, const void *p, uint32_t len)
{
	int err = 0;
	void *w = weir_ring_reserve(r, len, &err);

	if (w == NULL)
		return err;
	memcpy(w, p, len);
	weir_ring_commit(r, len);
	return 0;
}

/* Makes the committed records visible. True: the consumer sleeps, wake it. */
static inline bool weir_ring_publish(struct weir_ring *r)
{
	if (r->pos == r->pub)
		return false;
	r->pub = r->pos;
	/* seq_cst store then seq_cst load: the other half of the consumer's
	 * flag-store / prod-load (no lost wake-up) */
	__atomic_store_n(&r->ctl->prod, r->pub, __ATOMIC_SEQ_CST);
	return __atomic_load_n(&r->ctl->cons_sleeping, __ATOMIC_SEQ_CST) != 0;
}

/* Bytes written and not yet consumed (as far as we know). */
static inline uint64_t weir_ring_pending(const struct weir_ring *r)
{
	return r->pos - r->peer;
}

/* About to wait for room: false when there is room for need bytes after
 * all (the flag is cleared again). -1: the consumer's index is invalid. */
static inline int weir_ring_wait_prepare(struct weir_ring *r, uint32_t len)
{
	__atomic_store_n(&r->ctl->prod_waiting, 1u, __ATOMIC_SEQ_CST);
	if (weir__ring_load_cons_mo(r, __ATOMIC_SEQ_CST) != 0)
		return -1;
	if (r->size - (r->pos - r->peer) >= (uint64_t)weir_ring_rec_size(len) * 2) {
		__atomic_store_n(&r->ctl->prod_waiting, 0u, __ATOMIC_RELAXED);
		return 0;
	}
	return 1;
}

static inline void weir_ring_wait_done(struct weir_ring *r)
{
	__atomic_store_n(&r->ctl->prod_waiting, 0u, __ATOMIC_RELAXED);
}

/* ---- consumer ------------------------------------------------------------- */

/* Loads and checks the producer's index: forward only, at most size ahead
 * of what we consumed, 8-byte granular. mo: as weir__ring_load_cons_mo. */
static inline int weir__ring_load_prod_mo(struct weir_ring *r, int mo)
{
	uint64_t p = __atomic_load_n(&r->ctl->prod, mo);

	if (p - r->pos > r->size || ((p - r->pos) & (WEIR_RING_ALIGN - 1)) != 0)
		return WEIR_RING_EBAD;
	r->peer = p;
	return 0;
}

static inline int weir__ring_load_prod(struct weir_ring *r)
{
	return weir__ring_load_prod_mo(r, __ATOMIC_ACQUIRE);
}

/* Copies the next record's payload to dst (cap bytes): its length (>= 0;
 * a record may be empty), or WEIR_RING_EMPTY with *got false, or
 * WEIR_RING_EBAD / WEIR_RING_ETOOBIG (peer error). Reads the producer's
 * index only when the records it last saw are used up. */
static inline int weir_ring_read(struct weir_ring *r, void *dst, uint32_t cap, bool *got)
{
	*got = false;
	for (int i = 0; i < 3; i++) {
		struct weir_ring_rec h;
		uint32_t off, tail;

		if (r->pos == r->peer) {
			if (i != 0)
				return WEIR_RING_EMPTY;
			if (weir__ring_load_prod(r) != 0)
				return WEIR_RING_EBAD;
			if (r->pos == r->peer)
				return WEIR_RING_EMPTY;
		}
		off = (uint32_t)r->pos & (r->size - 1);
		tail = r->size - off;
		memcpy(&h, r->data + off, sizeof(h));   /* one fetch; h is ours now */
		if (h.flags & WEIR_RING_REC_PAD) {
			if (h.len != 0 || r->peer - r->pos < tail)
				return WEIR_RING_EBAD;
			r->pos += tail;
			continue;
		}
		if (h.flags != 0 || h.len > r->max_rec || h.len > cap)
			return h.len > r->max_rec || h.len > cap ? WEIR_RING_ETOOBIG : WEIR_RING_EBAD;
		if (weir_ring_rec_size(h.len) > tail || weir_ring_rec_size(h.len) > r->peer - r->pos)
			return WEIR_RING_EBAD;
		memcpy(dst, r->data + off + sizeof(h), h.len);
		r->pos += weir_ring_rec_size(h.len);
		*got = true;
		return (int)h.len;
	}
	return WEIR_RING_EMPTY;
}

/* Gives the consumed bytes back. True: the producer waits for room, wake it. */
static inline bool weir_ring_release(struct weir_ring *r)
{
	if (r->pos == r->pub)
		return false;
	r->pub = r->pos;
	__atomic_store_n(&r->ctl->cons, r->pub, __ATOMIC_SEQ_CST);
	return __atomic_load_n(&r->ctl->prod_waiting, __ATOMIC_SEQ_CST) != 0;
}

/* About to sleep: 1 when the ring is still empty (sleep; the flag stays
 * set), 0 when records arrived (the flag is cleared), -1 peer error. */
static inline int weir_ring_sleep_prepare(struct weir_ring *r)
{
	__atomic_store_n(&r->ctl->cons_sleeping, 1u, __ATOMIC_SEQ_CST);
	if (r->pos != r->peer)
		goto busy;
	if (weir__ring_load_prod_mo(r, __ATOMIC_SEQ_CST) != 0)
		return -1;
	if (r->pos != r->peer)
		goto busy;
	return 1;
busy:
	__atomic_store_n(&r->ctl->cons_sleeping, 0u, __ATOMIC_RELAXED);
	return 0;
}

static inline void weir_ring_sleep_done(struct weir_ring *r)
{
	__atomic_store_n(&r->ctl->cons_sleeping, 0u, __ATOMIC_RELAXED);
}

#endif
