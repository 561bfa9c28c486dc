/* The shared-memory agent transport (include/weir/spsc.h, uapi/weir/ring.h):
 *  - ring_spsc_single: one 16-byte record enqueued, published, dequeued and
 *    released per item (the cost of an unbatched hand-off, one thread);
 *  - ring_spsc_batch/N: N records written then published once, read then
 *    released once (ns per item);
 *  - handoff_socket/SIZE vs handoff_shm/SIZE: one body chunk from weir to an
 *    agent that reads it once: a frame (prefix + chunk) through a Unix
 *    socketpair (sendmsg, recv: the kernel copies in and out), or a
 *    descriptor record through the ring with the agent reading the bytes in
 *    place (MB/s). */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "weir/spsc.h"
#include "wb.h"

#define RING (1u << 20)

static struct {
	struct weir_ring_ctl ctl;
	unsigned char data[RING];
} sh __attribute__((aligned(128)));

static struct {
	struct weir_ring_ctl ctl;
	unsigned char data[4096];
} back __attribute__((aligned(128)));

static void ring_pair(struct weir_ring *p, struct weir_ring *c)
{
	memset(&sh.ctl, 0, sizeof(sh.ctl));
	weir_ring_init(p, &sh.ctl, sh.data, RING, 65536);
	weir_ring_init(c, &sh.ctl, sh.data, RING, 65536);
}

WB_BENCH(ring_spsc_single)
{
	struct weir_ring p, c;
	char rec[16] = "0123456789abcde", out[64];
	bool got;

	ring_pair(&p, &c);
	wb_reset_timer(b);
	for (uint64_t i = 0; i < b->n; i++) {
		rec[0] = (char)i;
		weir_ring_write(&p, rec, sizeof(rec));
		weir_ring_publish(&p);
		wb_sink((uint64_t)weir_ring_read(&c, out, sizeof(out), &got));
		weir_ring_release(&c);
	}
}

WB_BENCH_ARGS(ring_spsc_batch, 8, 32, 128)
{
	struct weir_ring p, c;
	char rec[16] = "0123456789abcde", out[64];
	uint64_t done = 0;
	bool got;

	ring_pair(&p, &c);
	wb_reset_timer(b);
	while (done < b->n) {
		uint64_t k = b->n - done < b->arg ? b->n - done : b->arg;

		for (uint64_t i = 0; i < k; i++) {
			rec[0] = (char)i;
			weir_ring_write(&p, rec, sizeof(rec));
		}
		weir_ring_publish(&p);
		for (uint64_t i = 0; i < k; i++)
			wb_sink((uint64_t)weir_ring_read(&c, out, sizeof(out), &got));
		weir_ring_release(&c);
		done += k;
	}
}

static uint64_t inspect(const unsigned char *p, size_t n)
{
	uint64_t x = 0, w;

	for (size_t i = 0; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		x ^= w;
	}
	return x;
}

static unsigned char *body(size_t n)
{
	static unsigned char *buf;

	if (buf == NULL) {
		buf = malloc(1u << 16);
		for (size_t i = 0; i < (1u << 16); i++)
			buf[i] = (unsigned char)(i * 7);
	}
	(void)n;
	return buf;
}

WB_BENCH_ARGS(handoff_socket, 1024, 4096, 16384, 65536)
{
	static unsigned char rbuf[(1u << 16) + 64];
	unsigned char pre[40] = { 0 };
	unsigned char *data = body(b->arg);
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
		wb_fail(b, "socketpair");
		return;
	}
	wb_set_bytes(b, b->arg);
	wb_reset_timer(b);
	for (uint64_t i = 0; i < b->n; i++) {
		struct iovec iov[2] = { { pre, sizeof(pre) }, { data, b->arg } };
		struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
		size_t want = sizeof(pre) + b->arg, got = 0;

		if (sendmsg(sv[0], &msg, 0) != (ssize_t)want) {
			wb_fail(b, "sendmsg");
			break;
		}
		while (got < want) {
			ssize_t n = recv(sv[1], rbuf + got, want - got, 0);

			if (n <= 0) {
				wb_fail(b, "recv");
				goto out;
			}
			got += (size_t)n;
		}
		wb_sink(inspect(rbuf + sizeof(pre), b->arg));
	}
out:
	close(sv[0]);
	close(sv[1]);
}

WB_BENCH_ARGS(handoff_shm, 1024, 4096, 16384, 65536)
{
	struct weir_ring p, c, rp, rc;
	unsigned char *arena = body(b->arg);
	uint64_t desc[4], out[8];
	bool got;

	ring_pair(&p, &c);
	memset(&back.ctl, 0, sizeof(back.ctl));
	weir_ring_init(&rp, &back.ctl, back.data, sizeof(back.data), 256);
	weir_ring_init(&rc, &back.ctl, back.data, sizeof(back.data), 256);
	wb_set_bytes(b, b->arg);
	wb_reset_timer(b);
	for (uint64_t i = 0; i < b->n; i++) {
		/* weir: a body frame naming (offset, length, buffer) */
		desc[0] = i;
		desc[1] = 0;
		desc[2] = b->arg;
		desc[3] = 0;
		weir_ring_write(&p, desc, sizeof(desc));
		weir_ring_publish(&p);
		/* agent: the descriptor, the bytes in place, a release */
		weir_ring_read(&c, out, sizeof(out), &got);
		wb_sink(inspect(arena + out[1], (size_t)out[2]));
		weir_ring_release(&c);
		/* agent -> weir: the RELEASE; weir reads it */
		weir_ring_write(&rp, &desc[3], 8);
		weir_ring_publish(&rp);
		weir_ring_read(&rc, out, sizeof(out), &got);
		weir_ring_release(&rc);
	}
}
