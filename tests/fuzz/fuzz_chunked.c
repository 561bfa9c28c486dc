/* libFuzzer harness: weir_chunked_decode. The input is decoded one-shot,
 * byte by byte with a one-entry spans array, and in pieces cut at two
 * input-derived offsets; all three must agree on error / done, the bytes
 * consumed and the concatenated data. Also: spans lie in the buffer given,
 * data never exceeds what was consumed, and each call makes progress. */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "weir/h1.h"

struct result {
	uint8_t *data;
	size_t dlen;
	size_t consumed;
	bool done;
	bool error;
};

/* Pieces end at cuts[0..ncuts) then at len; with step != 0, every step
 * bytes instead. */
static void decode(const char *p, size_t len, const size_t *cuts, size_t ncuts, size_t step,
		   size_t cap, struct result *r)
{
	struct weir_chunked d;
	weir_slice_t spans[16];
	size_t start = 0;

	weir_chunked_init(&d);
	r->dlen = 0;
	r->consumed = 0;
	r->done = false;
	r->error = false;
	if (step != 0)
		ncuts = len / step;
	for (size_t k = 0; k <= ncuts && !r->done && !r->error; k++) {
		size_t stop = k < ncuts ? (step != 0 ? (k + 1) * step : cuts[k]) : len;

		while (start < stop) {
			size_t ns = cap;
			ssize_t n = weir_chunked_decode(&d, p + start, stop - start, spans, &ns);

			if (n < 0) {
				r->error = true;
				break;
			}
			FUZZ_ASSERT((size_t)n <= stop - start && ns <= cap);
			for (size_t i = 0; i < ns; i++) {
				FUZZ_ASSERT(spans[i].len > 0 && spans[i].ptr >= p + start &&
					    spans[i].ptr + spans[i].len <= p + start + n);
				memcpy(r->data + r->dlen, spans[i].ptr, spans[i].len);
				r->dlen += spans[i].len;
			}
			start += (size_t)n;
			r->consumed += (size_t)n;
			FUZZ_ASSERT(r->dlen <= r->consumed);
			if (d.done) {
				r->done = true;
				break;
			}
			FUZZ_ASSERT(n > 0); /* progress: spans room and input left */
		}
		start = stop;
	}
	if (!r->done && !r->error)
		FUZZ_ASSERT(r->consumed == len);
}

static void same(const struct result *a, const struct result *b)
{
	FUZZ_ASSERT(a->error == b->error && a->done == b->done);
	if (!a->error) {
		FUZZ_ASSERT(a->consumed == b->consumed && a->dlen == b->dlen);
		FUZZ_ASSERT(a->dlen == 0 || memcmp(a->data, b->data, a->dlen) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct result one, bytes, cut;
	uint8_t *buf = malloc(3 * size + 3);
	uint64_t h = fuzz_hash(data, size);
	size_t cuts[2];

	one.data = buf;
	bytes.data = buf + size + 1;
	cut.data = buf + 2 * size + 2;
	decode(p, size, NULL, 0, 0, 16, &one);
	decode(p, size, NULL, 0, 1, 1, &bytes);
	same(&one, &bytes);

	if (size > 0) {
		cuts[0] = (size_t)(h % (size + 1));
		cuts[1] = (size_t)((h >> 32) % (size + 1));
		if (cuts[0] > cuts[1]) {
			size_t t = cuts[0];

			cuts[0] = cuts[1];
			cuts[1] = t;
		}
		decode(p, size, cuts, 2, 0, 3, &cut);
		same(&one, &cut);
	}
	free(buf);
	return 0;
}
