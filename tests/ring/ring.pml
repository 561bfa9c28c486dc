/* weir: a Promela model of one shared-memory SPSC ring and its eventfd
 * wake-up protocol (include/weir/spsc.h, uapi/weir/ring.h,
 * docs/agent-protocol.md "Ordering and wake-ups"). Checked by
 * tests/ring/spin_check.sh:
 *
 *   spin -a ring.pml && cc -DNOCLAIM -o pan pan.c && ./pan      safety + deadlock
 *   cc -o pan pan.c && ./pan -a -f                              LTL `live`
 *   spin -a -DBROKEN=n ring.pml ...                             must FAIL (n = 1..5)
 *
 * What is modelled. One ring of SIZE slots, a producer process and a
 * consumer process that exchange ITEMS records (record k holds k + 1).
 * Bytes are abstracted to slots: one record = one slot, so record sizes,
 * PAD records and the byte-granular room test are not modelled (see the
 * note at wait_prepare). Indices are free-running counters, as in the C
 * code (ITEMS < 256, so a byte never wraps). Each side keeps its private
 * cursor (pos), what it last published/released (pub) and the peer's
 * index as last loaded (peer), exactly as struct weir_ring does; shared
 * memory holds prod, cons, the two flags and the slot contents.
 *
 * Each eventfd is a counter: a write adds one, a blocking read waits until
 * it is non-zero, returns and clears it. That is weir's io_uring read of
 * efd_weir (the completion drains the counter, the reactor re-arms it) and
 * also the SDK's edge-triggered epoll on efd_agent (never read: a write
 * puts the item on the ready list, epoll_wait takes it off, which is the
 * same "set by a write, cleared by the wait" state). Each side may also
 * drain its eventfd without blocking at the top of its loop: weir's read
 * completes while the reactor is busy, the SDK calls epoll_wait with
 * timeout 0 when sleep_prepare said busy or another connection has work;
 * both are followed by a fresh poll of the ring, as in the real loops.
 * Timeouts are not modelled: a wait only ends by its eventfd (a lost
 * wake-up that a timer would hide is still a bug).
 *
 * Memory model. Promela interleaves whole statements: the model is
 * sequentially consistent. Every shared access is its own statement, in
 * the order of the C code, so every interleaving of them is explored. This
 * is exact for the seq_cst accesses (publish: store prod / load
 * cons_sleeping; release: store cons / load prod_waiting; the flag stores
 * in sleep_prepare / wait_prepare) and for the release/acquire pairs that
 * carry the slot contents (message passing is all they must give).
 * It is COARSER than C11 in one place that matters: sleep_prepare and
 * wait_prepare re-check the peer's index through weir__ring_load_prod /
 * weir__ring_load_cons, which load with __ATOMIC_ACQUIRE, not SEQ_CST. In
 * C11 an acquire load is not in the single total order S, so it may be
 * satisfied before the preceding seq_cst flag store is visible to the
 * peer (the store-buffering litmus test: flag-store/acquire-load against
 * prod-store/seq_cst-load may both read the old values). The model gives
 * that load SC semantics. What the C11-permitted outcome does is exactly
 * the BROKEN=1 / BROKEN=3 variants below (the re-check ordered before the
 * flag store), which spin shows lose a wake-up. x86-64 (xchg/mfence after
 * the SC store) and AArch64 LDAR after STLR keep the order; LDAPR (Armv8.3
 * RCpc, which compilers may emit for acquire loads on such targets), POWER and
 * RISC-V may not. The fix is one word per load: SEQ_CST for the re-check.
 * Relaxed stores (flag clears in sleep_done / wait_done / the busy paths)
 * are modelled as atomic stores; clearing late only costs a spurious
 * wake-up, and each flag has a single writer, so coherence orders them.
 *
 * BROKEN variants (1-4 must make spin report a lost wake-up, i.e. an
 * invalid end state / an LTL violation, proving the check can fail):
 *   1  consumer: re-check prod BEFORE storing cons_sleeping (= skipping
 *      the re-check, = the C11 reordering of the acquire re-check load)
 *   2  producer: load cons_sleeping BEFORE storing prod (check the flag
 *      before publishing)
 *   3  producer: re-check cons BEFORE storing prod_waiting
 *   4  consumer: load prod_waiting BEFORE storing cons
 *   5  producer: off-by-one room test (SIZE + 1 slots): not a wake-up
 *      bug but a safety one; the slot/order assertions must catch it
 */

#ifndef SIZE
#define SIZE 2          /* slots in the ring */
#endif
#ifndef ITEMS
#define ITEMS 4         /* records sent */
#endif
#ifndef BATCH
#define BATCH 2         /* most records per publish / per release */
#endif
#ifndef BROKEN
#define BROKEN 0
#endif
#if BROKEN == 5
#define ROOM (SIZE + 1)
#else
#define ROOM SIZE
#endif

/* ---- shared memory (struct weir_ring_ctl and the data area) ---- */
byte prod = 0;                  /* records ever published (seq_cst store) */
byte cons = 0;                  /* records ever consumed (seq_cst store) */
bit cons_sleeping = 0;          /* written by the consumer only */
bit prod_waiting = 0;           /* written by the producer only */
byte data[SIZE];                /* slot contents */

/* ---- the two eventfds (counters) ---- */
byte efd_cons = 0;              /* wakes the consumer's side */
byte efd_prod = 0;              /* wakes the producer's side */

/* ---- ghost state for the properties ---- */
byte received = 0;              /* records the consumer has copied out */
bit prod_done = 0;
bit cons_done = 0;

/* prod and cons never more than SIZE apart, cons never past prod:
 * checked after every store of either index. */
#define INDEX_OK (cons <= prod && prod - cons <= SIZE && prod <= ITEMS)

ltl live { <> (cons_done && prod_done) }

active proctype producer()
{
	byte pos = 0;           /* written (>= pub) */
	byte pub = 0;           /* published */
	byte peer = 0;          /* cons, as last loaded */
	byte n;
	bit noroom;
	bit w;

loop:
	/* the eventfd may be drained while the side is busy; a fresh try
	 * of the ring always follows */
	if
	:: efd_prod = 0
	:: skip
	fi;

	/* weir_ring_reserve / write / commit, up to BATCH records; the
	 * batch may end early (nothing more queued this iteration) */
	n = 0;
	noroom = 0;
	do
	:: pos == ITEMS -> break
	:: pos < ITEMS && n > 0 && n < BATCH -> break
	:: pos < ITEMS && n == BATCH -> break
	:: pos < ITEMS && n < BATCH ->
		if
		:: pos - peer < ROOM -> skip
		:: else -> peer = cons          /* weir__ring_load_cons: acquire */
		fi;
		if
		:: pos - peer < ROOM ->
			assert(peer <= cons && pos - cons < SIZE);  /* slot is free */
			data[pos % SIZE] = pos + 1;
			pos++;
			n++
		:: else ->
			noroom = 1;                     /* WEIR_RING_EAGAIN */
			break
		fi
	od;

	/* weir_ring_publish */
	if
	:: pos != pub ->
		pub = pos;
#if BROKEN == 2
		w = cons_sleeping;
		prod = pub;
#else
		prod = pub;                     /* seq_cst store */
		w = cons_sleeping;              /* seq_cst load */
#endif
		assert(INDEX_OK);
		if
		:: w -> efd_cons++              /* write the consumer's eventfd */
		:: else -> skip
		fi
	:: else -> skip
	fi;

	if
	:: pub == ITEMS -> goto done
	:: pub < ITEMS && !noroom -> goto loop    /* more to send, room left */
	:: pub < ITEMS && noroom -> skip
	fi;

	/* weir_ring_wait_prepare. The C code asks for room for 2 records of
	 * the waiting length (PAD slack); an empty ring always has that
	 * (max_rec <= size / 2 - 8), and any record still in the ring will
	 * be released after the flag store and so seen. One slot here. */
#if BROKEN == 3
	peer = cons;
	prod_waiting = 1;
#else
	prod_waiting = 1;                       /* seq_cst store */
	peer = cons;                            /* acquire load (SC here: see top) */
#endif
	if
	:: pos - peer < SIZE ->
		prod_waiting = 0;               /* room after all */
		goto loop
	:: else -> skip
	fi;

	/* sleep: io_uring_enter (weir) / epoll_wait (SDK) until the eventfd */
	atomic { efd_prod > 0 -> efd_prod = 0 };
	prod_waiting = 0;                       /* weir_ring_wait_done */
	goto loop;

done:
	prod_done = 1
}

active proctype consumer()
{
	byte pos = 0;           /* read */
	byte pub = 0;           /* released */
	byte peer = 0;          /* prod, as last loaded */
	byte n;
	byte v;
	bit w;

loop:
	if
	:: efd_cons = 0
	:: skip
	fi;

	/* weir_ring_read, up to BATCH records (RX_BATCH); may stop early */
	n = 0;
	do
	:: n > 0 && n < BATCH -> break
	:: n == BATCH -> break
	:: n < BATCH ->
		if
		:: pos == peer -> peer = prod   /* weir__ring_load_prod: acquire */
		:: else -> skip
		fi;
		if
		:: pos == peer -> break         /* empty */
		:: else ->
			assert(pos < prod);     /* never an unpublished slot */
			v = data[pos % SIZE];   /* one copy */
			assert(v == pos + 1);   /* exactly once, in order */
			pos++;
			received++;
			n++
		fi
	od;

	/* weir_ring_release */
	if
	:: pos != pub ->
		pub = pos;
#if BROKEN == 4
		w = prod_waiting;
		cons = pub;
#else
		cons = pub;                     /* seq_cst store */
		w = prod_waiting;               /* seq_cst load */
#endif
		assert(INDEX_OK);
		if
		:: w -> efd_prod++              /* write the producer's eventfd */
		:: else -> skip
		fi
	:: else -> skip
	fi;

	/* a consumer knows no end: it stops here only so that a consumer
	 * asleep with records pending is an invalid end state */
	if
	:: received == ITEMS -> goto done
	:: else -> skip
	fi;

	/* weir_ring_sleep_prepare (weir: before every io_uring_enter; SDK:
	 * before every epoll_wait) */
#if BROKEN == 1
	if
	:: pos == peer -> peer = prod
	:: else -> skip
	fi;
	cons_sleeping = 1;
#else
	cons_sleeping = 1;                      /* seq_cst store */
	if
	:: pos == peer -> peer = prod           /* acquire load (SC here: see top) */
	:: else -> skip
	fi;
#endif
	if
	:: pos != peer ->
		cons_sleeping = 0;              /* busy: records after all */
		goto loop
	:: else -> skip
	fi;

	atomic { efd_cons > 0 -> efd_cons = 0 };
	cons_sleeping = 0;                      /* weir_ring_sleep_done */
	goto loop;

done:
	assert(pos == ITEMS && prod == ITEMS);
	cons_done = 1
}
