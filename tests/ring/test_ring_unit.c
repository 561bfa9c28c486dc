/* The ring's rules, one by one: wrap-around with PAD records, full and
 * empty, batching, sleep flags, and every way a hostile peer can lie about
 * its index or a record (each must be refused, never followed). */
#include "ring_test.h"

#define SZ 256u

static struct {
	struct weir_ring_ctl ctl;
	unsigned char data[SZ];
} sh __attribute__((aligned(128)));

static void fresh(struct weir_ring *p, struct weir_ring *c)
{
	memset(&sh, 0, sizeof(sh));
	if (weir_ring_init(p, &sh.ctl, sh.data, SZ, 100) != 0 ||
	    weir_ring_init(c, &sh.ctl, sh.data, SZ, 100) != 0)
		FAIL("init");
}

static void test_basic(void)
{
	struct weir_ring p, c;
	unsigned char buf[128];
	bool got;
	int n;

	if (weir_ring_init(&p, &sh.ctl, sh.data, 100, 10) == 0)
		FAIL("size not a power of two accepted");
	if (weir_ring_init(&p, &sh.ctl, sh.data, SZ, SZ) == 0)
		FAIL("max record above size/2 accepted");
	fresh(&p, &c);
	if (weir_ring_read(&c, buf, sizeof(buf), &got) != 0 || got)
		FAIL("empty ring gave a record");
	if (weir_ring_write(&p, "hello", 5) != 0 || weir_ring_write(&p, "", 0) != 0)
		FAIL("write");
	if (weir_ring_read(&c, buf, sizeof(buf), &got) != 0 || got)
		FAIL("unpublished record visible");
	if (weir_ring_publish(&p))
		FAIL("consumer not sleeping, yet a wake-up asked");
	n = weir_ring_read(&c, buf, sizeof(buf), &got);
	if (n != 5 || !got || memcmp(buf, "hello", 5) != 0)
		FAIL("first record: %d", n);
	n = weir_ring_read(&c, buf, sizeof(buf), &got);
	if (n != 0 || !got)
		FAIL("empty record: %d %d", n, got);
	if (weir_ring_release(&c))
		FAIL("producer not waiting, yet a wake-up asked");
	if (sh.ctl.cons != sh.ctl.prod || sh.ctl.cons != 16 + 8)
		FAIL("indices: %llu %llu", (unsigned long long)sh.ctl.prod,
		     (unsigned long long)sh.ctl.cons);
	if (weir_ring_write(&p, buf, 101) != WEIR_RING_ETOOBIG)
		FAIL("record over max_rec written");
}

static void test_wrap_full(void)
{
	struct weir_ring p, c;
	unsigned char buf[128];
	uint64_t wi = 0, ri = 0;
	bool got;

	fresh(&p, &c);
	/* many rounds of the ring with sizes that force PAD records */
	for (int round = 0; round < 2000; round++) {
		int w = 0;

		for (;;) {
			uint32_t len = 1 + (uint32_t)(wi * 7 % 90);
			unsigned char rec[100];
			int e;

			memset(rec, (int)(wi & 0xff), len);
			e = weir_ring_write(&p, rec, len);
			if (e == WEIR_RING_EAGAIN)
				break;
			if (e != 0)
				FAIL("write: %d", e);
			wi++;
			w++;
		}
		if (w == 0 && round > 0 && weir_ring_pending(&p) == 0)
			FAIL("ring full while empty");
		weir_ring_publish(&p);
		for (int k = 0; k < 1 + round % 3; k++) {
			int n = weir_ring_read(&c, buf, sizeof(buf), &got);

			if (n < 0)
				FAIL("read: %d", n);
			if (!got)
				break;
			if ((uint32_t)n != 1 + (uint32_t)(ri * 7 % 90) || buf[0] != (ri & 0xff) ||
			    buf[n - 1] != (ri & 0xff))
				FAIL("record %llu wrong", (unsigned long long)ri);
			ri++;
		}
		weir_ring_release(&c);
	}
	if (ri < 1000)
		FAIL("too few records went round: %llu", (unsigned long long)ri);
}

static void test_flags(void)
{
	struct weir_ring p, c;

	fresh(&p, &c);
	if (weir_ring_sleep_prepare(&c) != 1 || sh.ctl.cons_sleeping != 1)
		FAIL("consumer cannot sleep on an empty ring");
	weir_ring_write(&p, "x", 1);
	if (!weir_ring_publish(&p))
		FAIL("publish did not ask to wake a sleeping consumer");
	weir_ring_sleep_done(&c);
	if (weir_ring_sleep_prepare(&c) != 0 || sh.ctl.cons_sleeping != 0)
		FAIL("consumer would sleep with a record waiting");
	/* fill, then the producer waits */
	while (weir_ring_write(&p, "0123456789", 10) == 0)
		;
	weir_ring_publish(&p);
	if (weir_ring_wait_prepare(&p, 10) != 1 || sh.ctl.prod_waiting != 1)
		FAIL("producer cannot wait on a full ring");
	{
		unsigned char b[16];
		bool got;

		while (weir_ring_read(&c, b, sizeof(b), &got) >= 0 && got)
			;
	}
	if (!weir_ring_release(&c))
		FAIL("release did not ask to wake a waiting producer");
}

/* hostile producer: what weir's consumer must refuse */
static void test_hostile_prod(void)
{
	struct weir_ring p, c;
	unsigned char buf[128];
	struct weir_ring_rec h;
	bool got;

	fresh(&p, &c);
	sh.ctl.prod = SZ + 8;           /* more than the ring holds */
	if (weir_ring_read(&c, buf, sizeof(buf), &got) != WEIR_RING_EBAD)
		FAIL("prod beyond size accepted");
	fresh(&p, &c);
	sh.ctl.prod = 12;               /* not 8-granular */
	if (weir_ring_read(&c, buf, sizeof(buf), &got) != WEIR_RING_EBAD)
		FAIL("unaligned prod accepted");
	fresh(&p, &c);
	sh.ctl.prod = UINT64_MAX - 7;   /* "backwards" */
	if (weir_ring_read(&c, buf, sizeof(buf), &got) != WEIR_RING_EBAD)
		FAIL("huge prod accepted");
	fresh(&p, &c);
	h = (struct weir_ring_rec){ 200, 0 };   /* record longer than published */
	memcpy(sh.data, &h, 8);
	sh.ctl.prod = 64;
	if (weir_ring_read(&c, buf, sizeof(buf), &got) >= 0)
		FAIL("record past prod accepted");
	fresh(&p, &c);
	h = (struct weir_ring_rec){ 0xffffffffu, 0 };
	memcpy(sh.data, &h, 8);
	sh.ctl.prod = SZ;
	if (weir_ring_read(&c, buf, sizeof(buf), &got) >= 0)
		FAIL("huge record length accepted");
	fresh(&p, &c);
	h = (struct weir_ring_rec){ 0, WEIR_RING_REC_PAD };     /* PAD not reaching the end */
	memcpy(sh.data, &h, 8);
	sh.ctl.prod = 16;
	if (weir_ring_read(&c, buf, sizeof(buf), &got) != WEIR_RING_EBAD)
		FAIL("short PAD accepted");
	fresh(&p, &c);
	h = (struct weir_ring_rec){ 4, 0x80 };  /* unknown flag */
	memcpy(sh.data, &h, 8);
	sh.ctl.prod = 16;
	if (weir_ring_read(&c, buf, sizeof(buf), &got) != WEIR_RING_EBAD)
		FAIL("unknown record flag accepted");
	fresh(&p, &c);
	h = (struct weir_ring_rec){ 50, 0 };    /* larger than the caller's buffer */
	memcpy(sh.data, &h, 8);
	sh.ctl.prod = 64;
	if (weir_ring_read(&c, buf, 16, &got) != WEIR_RING_ETOOBIG)
		FAIL("record larger than the destination accepted");
	/* a record that wraps past the end */
	fresh(&p, &c);
	c.pos = c.pub = c.peer = SZ - 16;
	h = (struct weir_ring_rec){ 40, 0 };
	memcpy(sh.data + SZ - 16, &h, 8);
	sh.ctl.prod = SZ - 16 + 64;
	if (weir_ring_read(&c, buf, sizeof(buf), &got) != WEIR_RING_EBAD)
		FAIL("wrapping record accepted");
}

/* hostile consumer: what weir's producer must refuse */
static void test_hostile_cons(void)
{
	struct weir_ring p, c;
	int err = 0;

	fresh(&p, &c);
	weir_ring_write(&p, "abc", 3);
	weir_ring_publish(&p);
	sh.ctl.cons = 1000;             /* consumed more than published */
	while (weir_ring_reserve(&p, 90, &err) != NULL)
		weir_ring_commit(&p, 90);
	if (err != WEIR_RING_EBAD)
		FAIL("cons beyond prod accepted: %d", err);
	fresh(&p, &c);
	weir_ring_write(&p, "abc", 3);
	weir_ring_publish(&p);
	sh.ctl.cons = 16;
	while (weir_ring_reserve(&p, 90, &err) != NULL)
		weir_ring_commit(&p, 90);
	weir_ring_publish(&p);
	sh.ctl.cons = 8;                /* moved backwards */
	if (weir_ring_reserve(&p, 90, &err) != NULL || err != WEIR_RING_EBAD)
		FAIL("cons moving backwards accepted: %d", err);
}

int main(void)
{
	test_basic();
	test_wrap_full();
	test_flags();
	test_hostile_prod();
	test_hostile_cons();
	printf("ring-unit: ok\n");
	return 0;
}
