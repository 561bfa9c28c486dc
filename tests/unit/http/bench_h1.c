/* Parse time of a browser-like ~700-byte GET, a short response head and a
 * chunked body. Prints the best of 5 rounds in ns per call (the best round is
 * the least disturbed by other load); asserts only that parsing succeeds. */
#include <stdlib.h>
#include <time.h>

#include "weir/common.h"
#include "weir/h1.h"

static const char get_req[] =
	"GET /wp-content/uploads/2010/03/hello-kitty-darth-vader-pink.jpg HTTP/1.1\r\n"
	"Host: www.kittyhell.com\r\n"
	"User-Agent: Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10_6_3; ja-JP-mac; rv:1.9.2.3) "
	"Gecko/20100401 Firefox/3.6.3 Pathtraq/0.9\r\n"
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
	"Accept-Language: ja,en-us;q=0.7,en;q=0.3\r\n"
	"Accept-Encoding: gzip,deflate\r\n"
	"Accept-Charset: Shift_JIS,utf-8;q=0.7,*;q=0.7\r\n"
	"Keep-Alive: 115\r\n"
	"Connection: keep-alive\r\n"
	"Cookie: wp_ozh_wsa_visits=2; wp_ozh_wsa_visit_lasttime=xxxxxxxxxx; "
	"__utma=xxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.xxxxxxxxxx.x; "
	"__utmz=xxxxxxxxx.xxxxxxxxxx.x.x.utmccn=(referral)|utmcsr=reader.livedoor.com|"
	"utmcct=/reader/|utmcmd=referral\r\n"
	"\r\n";

static const char resp[] = "HTTP/1.1 200 OK\r\n"
			   "Date: Mon, 27 Jul 2009 12:28:53 GMT\r\n"
			   "Server: Apache\r\n"
			   "Last-Modified: Wed, 22 Jul 2009 19:15:56 GMT\r\n"
			   "ETag: \"34aa387-d-1568eb00\"\r\n"
			   "Accept-Ranges: bytes\r\n"
			   "Content-Length: 51\r\n"
			   "Vary: Accept-Encoding\r\n"
			   "Content-Type: text/plain\r\n"
			   "\r\n";

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static struct weir_h1_request req;
static struct weir_h1_response res;

#define ROUNDS 5

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 500000;
	static char chunked[70000];
	size_t clen = 0;
	double t0, t1, best;
	long sum = 0;

	for (long i = 0; i < 1000; i++)
		sum += weir_h1_parse_request(get_req, sizeof(get_req) - 1, &req);
	if (weir_h1_parse_request(get_req, sizeof(get_req) - 1, &req) != (int)sizeof(get_req) - 1) {
		fprintf(stderr, "request did not parse: %s\n", req.reason);
		return 1;
	}
	best = 1e30;
	for (int r = 0; r < ROUNDS; r++) {
		t0 = now_ns();
		for (long i = 0; i < iters; i++) {
			__asm__ volatile("" ::: "memory");
			sum += weir_h1_parse_request(get_req, sizeof(get_req) - 1, &req);
		}
		t1 = now_ns();
		best = WEIR_MIN(best, (t1 - t0) / (double)iters);
	}
	printf("request  %zu bytes, %zu fields: %.1f ns/parse\n", sizeof(get_req) - 1, req.nheaders,
	       best);

	if (weir_h1_parse_response(resp, sizeof(resp) - 1, false, &res) != (int)sizeof(resp) - 1)
		return 1;
	best = 1e30;
	for (int r = 0; r < ROUNDS; r++) {
		t0 = now_ns();
		for (long i = 0; i < iters; i++) {
			__asm__ volatile("" ::: "memory");
			sum += weir_h1_parse_response(resp, sizeof(resp) - 1, false, &res);
		}
		t1 = now_ns();
		best = WEIR_MIN(best, (t1 - t0) / (double)iters);
	}
	printf("response %zu bytes, %zu fields: %.1f ns/parse\n", sizeof(resp) - 1, res.nheaders,
	       best);

	/* 64 chunks of 1000 bytes */
	for (int c = 0; c < 64; c++) {
		clen += (size_t)snprintf(chunked + clen, sizeof(chunked) - clen, "3e8\r\n");
		memset(chunked + clen, 'x', 1000);
		clen += 1000;
		memcpy(chunked + clen, "\r\n", 2);
		clen += 2;
	}
	memcpy(chunked + clen, "0\r\n\r\n", 5);
	clen += 5;
	t0 = now_ns();
	for (long i = 0; i < iters / 100; i++) {
		struct weir_chunked d;
		weir_slice_t spans[64];
		size_t ns = 64;

		weir_chunked_init(&d);
		__asm__ volatile("" ::: "memory");
		if (weir_chunked_decode(&d, chunked, clen, spans, &ns) != (ssize_t)clen || !d.done)
			return 1;
		sum += (long)ns;
	}
	t1 = now_ns();
	printf("chunked  %zu bytes, 64 chunks: %.1f ns/decode\n", clen,
	       (t1 - t0) / (double)(iters / 100));
	return sum == 0;
}
