/*
 * weir-agent-noop: an agent that allows everything, as early as it can.
 * Used by the benchmarks (the cost of the agent path itself) and tests.
 *
 *   weir-agent-noop [--listen ADDR]... [--events LIST] [--workers N]
 *                   [--credit BYTES] [--max-in-flight N] [--name NAME]
 *                   [--quiet] [--verbose]
 *
 * With request_body among the events it allows a request after its last
 * body frame (so that weir sends it the whole body), else on the headers;
 * the response phase is allowed on the response head. See --help.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent-cli.h"

#define PROG "weir-agent-noop"

static const char usage[] =
	"usage: " PROG " [options]\n"
	"  --listen ADDR      unix:PATH, PATH (starting with / or .), or HOST:PORT\n"
	"                     ([V6]:PORT; port 0 picks one); repeatable\n"
	"                     (default unix:/tmp/weir-agent-noop.sock)\n"
	"  --events LIST      events to subscribe to, comma-separated: request_headers,\n"
	"                     request_body, response_headers, response_body,\n"
	"                     request_done, all (default request_headers)\n"
	"  --workers N        callback threads (default 0: callbacks on the I/O thread)\n"
	"  --credit BYTES     use the CREDIT capability with this initial body window\n"
	"                     per request (0: unlimited); default: no credit\n"
	"  --max-in-flight N  open request ids per connection (default 4096)\n"
	"  --name NAME        name sent in HELLO_REPLY (default noop)\n"
	"  --quiet            no statistics at exit, errors only\n"
	"  --verbose          log every connection event\n"
	"Each listener prints \"" PROG " listening on ADDR\" on stdout. Every request\n"
	"is allowed: on its headers, or after its last body frame when request_body\n"
	"is subscribed; responses on their head. SIGTERM/SIGINT: GOAWAY, drain, exit 0.\n";

static int on_request_headers(void *user, struct weir_agent_req *req, struct weir_agent_reply *r)
{
	const uint32_t *events = user;

	if ((*events & WEIR_AGENT_EV_REQUEST_BODY) && weir_agent_req_request(req)->has_body)
		return WEIR_AGENT_R_PENDING;
	return WEIR_AGENT_R_VERDICT;
}

static int on_request_body(void *user, struct weir_agent_req *req,
			   const struct weir_agent_chunk *c, struct weir_agent_reply *r)
{
	return c->last ? WEIR_AGENT_R_VERDICT : WEIR_AGENT_R_PENDING;
}

static int on_response_headers(void *user, struct weir_agent_req *req, struct weir_agent_reply *r)
{
	return WEIR_AGENT_R_VERDICT;
}

static int on_response_body(void *user, struct weir_agent_req *req,
			    const struct weir_agent_chunk *c, struct weir_agent_reply *r)
{
	return WEIR_AGENT_R_PENDING;
}

static void on_done(void *user, struct weir_agent_req *req, const struct weir_agent_done *d)
{
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "events", required_argument, NULL, 'e' },
		{ "workers", required_argument, NULL, 'w' },
		{ "credit", required_argument, NULL, 'c' },
		{ "max-in-flight", required_argument, NULL, 'm' },
		{ "name", required_argument, NULL, 'n' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static char default_listen[] = "unix:/tmp/weir-agent-noop.sock";
	char *listens[16];
	unsigned nlisten = 0;
	uint32_t events = WEIR_AGENT_EV_REQUEST_HEADERS;
	struct weir_agent_config cfg = { .name = "noop" };
	struct weir_agent_server *s;
	bool quiet = false;
	uint64_t v;
	int opt, err;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			if (nlisten == sizeof(listens) / sizeof(listens[0])) {
				fprintf(stderr, PROG ": too many --listen\n");
				return 2;
			}
			listens[nlisten++] = optarg;
			break;
		case 'e':
			if (agent_cli_events(optarg, &events) != 0) {
				fprintf(stderr, PROG ": --events: unknown event in \"%s\"\n", optarg);
				return 2;
			}
			break;
		case 'w':
			if (!agent_cli_uint(optarg, 256, &v)) {
				fprintf(stderr, PROG ": --workers: 0..256\n");
				return 2;
			}
			cfg.workers = (unsigned)v;
			break;
		case 'c':
			if (!agent_cli_uint(optarg, UINT32_MAX, &v)) {
				fprintf(stderr, PROG ": --credit: a byte count\n");
				return 2;
			}
			cfg.credit = true;
			cfg.body_window = (uint32_t)v;
			break;
		case 'm':
			if (!agent_cli_uint(optarg, 4096, &v) || v == 0) {
				fprintf(stderr, PROG ": --max-in-flight: 1..4096\n");
				return 2;
			}
			cfg.max_in_flight = (uint32_t)v;
			break;
		case 'n':
			cfg.name = optarg;
			break;
		case 'q':
			quiet = true;
			cfg.log_level = WEIR_AGENT_LOG_ERR;
			break;
		case 'v':
			cfg.log_level = WEIR_AGENT_LOG_DEBUG;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fputs(usage, stderr);
		return 2;
	}
	if (nlisten == 0)
		listens[nlisten++] = default_listen;

	events |= WEIR_AGENT_EV_REQUEST_HEADERS;
	cfg.events = events;
	cfg.user = &events;
	cfg.cb.request_headers = on_request_headers;
	if (events & WEIR_AGENT_EV_REQUEST_BODY)
		cfg.cb.request_body = on_request_body;
	if (events & (WEIR_AGENT_EV_RESPONSE_HEADERS | WEIR_AGENT_EV_RESPONSE_BODY))
		cfg.cb.response_headers = on_response_headers;
	if (events & WEIR_AGENT_EV_RESPONSE_BODY)
		cfg.cb.response_body = on_response_body;
	if (events & WEIR_AGENT_EV_REQUEST_DONE)
		cfg.cb.request_done = on_done;

	err = weir_agent_server_new(&cfg, &s);
	if (err != 0) {
		fprintf(stderr, PROG ": %s\n", strerror(-err));
		return 1;
	}
	if (agent_cli_listen(s, PROG, listens, nlisten) != 0) {
		weir_agent_server_free(s);
		return 1;
	}
	agent_cli_signals(s);
	err = weir_agent_server_run(s);
	agent_cli_signals(NULL);
	if (!quiet)
		agent_cli_stats(s, PROG);
	weir_agent_server_free(s);
	return err == 0 ? 0 : 1;
}
