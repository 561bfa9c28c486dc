/* libFuzzer harness: a byte stream from a hostile agent, as weir's agent
 * connection reads it — frame headers, then the payload decoders for each
 * message type. Invariants: no decoder reads outside its frame (ASan), and
 * what a decoder accepts obeys the limits weir relies on. */
#include <string.h>

#include "../fuzz/fuzz.h"
#include "weir/agent_proto.h"

static struct weir_agent_verdict v;

static void check_verdict(const struct weir_agent_verdict *d)
{
	FUZZ_ASSERT(d->action <= WEIR_AGENT_REDIRECT);
	FUZZ_ASSERT(d->phase <= WEIR_AGENT_PHASE_RESPONSE);
	if (d->action != WEIR_AGENT_ALLOW)
		FUZZ_ASSERT(d->status >= 200 && d->status <= 599);
	if (d->action == WEIR_AGENT_REDIRECT)
		FUZZ_ASSERT(d->location.len != 0);
	FUZZ_ASSERT(d->ntags <= WEIR_AGENT_MAX_AUDIT && d->nrules <= WEIR_AGENT_MAX_AUDIT);
	for (unsigned l = 0; l < WEIR_MUT_NLISTS; l++) {
		FUZZ_ASSERT(d->n[l] <= WEIR_AGENT_MAX_MUTATIONS);
		for (uint32_t i = 0; i < d->n[l]; i++) {
			const struct weir_agent_kv *kv = &d->kv[l][i];

			FUZZ_ASSERT(kv->name.len > 0);
			for (size_t k = 0; k < kv->name.len; k++)
				FUZZ_ASSERT(kv->name.ptr[k] != ':' && kv->name.ptr[k] > ' ');
			for (size_t k = 0; k < kv->value.len; k++)
				FUZZ_ASSERT(kv->value.ptr[k] != '\r' && kv->value.ptr[k] != '\n' &&
					    kv->value.ptr[k] != '\0');
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t pos = 0;

	while (pos < size) {
		struct weir_agent_frame f;
		struct weir_agent_hello_reply h;
		const char *why = NULL;
		uint64_t credit;
		uint32_t need = 0;
		int ret = weir_agent_frame_parse(p + pos, size - pos, WEIR_AGENT_MAX_FRAME_DEFAULT,
						 &f, &need);

		if (ret == WEIR_H1_NEED_MORE) {
			FUZZ_ASSERT(need > size - pos || size - pos < 4);
			break;
		}
		if (ret < 0)
			break;
		FUZZ_ASSERT(f.size >= WEIR_AGENT_HDR_SIZE && f.size <= size - pos);
		FUZZ_ASSERT(f.payload_len == f.size - WEIR_AGENT_HDR_SIZE);
		switch (f.type) {
		case WEIR_AGENT_HELLO_REPLY:
			if (weir_agent_decode_hello_reply(f.payload, f.payload_len, &h, &why) == 0) {
				FUZZ_ASSERT(h.version == WEIR_AGENT_VERSION && h.events != 0);
				FUZZ_ASSERT(h.max_frame >= WEIR_AGENT_MAX_FRAME_MIN &&
					    h.max_frame <= WEIR_AGENT_MAX_FRAME_CEIL);
			} else {
				FUZZ_ASSERT(why != NULL);
			}
			break;
		case WEIR_AGENT_VERDICT:
			if (weir_agent_decode_verdict(f.payload, f.payload_len, &v, &why) == 0)
				check_verdict(&v);
			else
				FUZZ_ASSERT(why != NULL);
			break;
		case WEIR_AGENT_CREDIT:
			if (weir_agent_decode_credit(f.payload, f.payload_len, &credit, &why) != 0)
				FUZZ_ASSERT(why != NULL);
			break;
		default:
			if (weir_agent_check_map(f.payload, f.payload_len, &why) != 0)
				FUZZ_ASSERT(why != NULL);
			break;
		}
		pos += f.size;
	}
	return 0;
}
