/* libFuzzer harness: weir's consumer of the agent -> weir ring
 * (weir_agent_shm_rx) over ring memory a hostile agent wrote, then the
 * decoders of what it may carry (RELEASE, VERDICT, CREDIT, SHM_READY) and
 * the held-buffer accounting weir applies to RELEASE.
 *
 * Input: 8 bytes producer index (little-endian), 2 bytes consumer start
 * offset (8-aligned), then the ring bytes (zero-filled to 4096).
 * Invariants: no read outside the ring or the copy (ASan), every frame
 * handed on lies within the copy and obeys the frame rules, a release
 * never drops a reference that is not held, and the call returns. */
#include <string.h>

#include "../fuzz/fuzz.h"
#include "weir/agent_proto.h"

#define RING 4096u
#define NBUFS 64u

static struct {
	struct weir_ring_ctl ctl;
	unsigned char data[RING];
} sh __attribute__((aligned(128)));
static char copy[RING / 2];  /* the caller's buffer: max record RING / 2 - 8 */
static struct weir_agent_verdict v;
static uint16_t held[NBUFS];

static int on_frame(void *ctx, const struct weir_agent_frame *f)
{
	const char *why = NULL;
	uint32_t idx[WEIR_SHM_MAX_RELEASE], n;
	uint64_t u;

	(void)ctx;
	FUZZ_ASSERT(f->payload >= copy && f->payload + f->payload_len <= copy + sizeof(copy));
	FUZZ_ASSERT(f->size == f->payload_len + WEIR_AGENT_HDR_SIZE);
	switch (f->type) {
	case WEIR_AGENT_RELEASE:
		if (weir_agent_decode_release(f->payload, f->payload_len, NBUFS, idx,
					      WEIR_SHM_MAX_RELEASE, &n, &why) != 0)
			return -1;
		/* weir's rule: every index must be held, else the agent is dropped */
		for (uint32_t i = 0; i < n; i++) {
			FUZZ_ASSERT(idx[i] < NBUFS);
			if (held[idx[i]] == 0)
				return -1;
			held[idx[i]]--;
		}
		return 0;
	case WEIR_AGENT_VERDICT:
		return weir_agent_decode_verdict(f->payload, f->payload_len, &v, &why) == 0 ? 0 : -1;
	case WEIR_AGENT_CREDIT:
		return weir_agent_decode_credit(f->payload, f->payload_len, &u, &why) == 0 ? 0 : -1;
	case WEIR_AGENT_SHM_READY:
		return weir_agent_decode_shm_ready(f->payload, f->payload_len, &u, &why) == 0 ? 0
											     : -1;
	default:
		return weir_agent_check_map(f->payload, f->payload_len, &why) == 0 ? 0 : -1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct weir_ring r;
	uint64_t prod = 0;
	uint16_t start = 0;
	const char *why = NULL;
	int ret;

	if (size < 10)
		return 0;
	memcpy(&prod, data, 8);
	memcpy(&start, data + 8, 2);
	memset(&sh, 0, sizeof(sh));
	memcpy(sh.data, data + 10, size - 10 > RING ? RING : size - 10);
	for (unsigned i = 0; i < NBUFS; i++)
		held[i] = (uint16_t)(i & 3);
	if (weir_ring_init(&r, &sh.ctl, sh.data, RING, RING / 2 - 8) != 0)
		abort();
	r.pos = r.pub = r.peer = start & (RING - 1) & ~7u;
	sh.ctl.cons = r.pos;
	sh.ctl.prod = prod;
	for (int round = 0; round < 4; round++) {
		ret = weir_agent_shm_rx(&r, copy, sizeof(copy), 64, on_frame, NULL, &why);
		FUZZ_ASSERT(ret <= 64);
		if (ret < 0) {
			FUZZ_ASSERT(why != NULL || ret == -1);
			break;
		}
		FUZZ_ASSERT(r.pos - sh.ctl.cons <= RING);
		weir_ring_release(&r);
		if (ret == 0)
			break;
	}
	return 0;
}
