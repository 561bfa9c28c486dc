/* See agent-cli.h. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent-cli.h"

static const struct {
	const char *name;
	uint32_t bit;
} event_names[] = {
	{ "request_headers", WEIR_AGENT_EV_REQUEST_HEADERS },
	{ "request_body", WEIR_AGENT_EV_REQUEST_BODY },
	{ "response_headers", WEIR_AGENT_EV_RESPONSE_HEADERS },
	{ "response_body", WEIR_AGENT_EV_RESPONSE_BODY },
	{ "request_done", WEIR_AGENT_EV_REQUEST_DONE },
	{ "all", WEIR_AGENT_EV_ALL },
};

int agent_cli_events(const char *list, uint32_t *out)
{
	const char *p = list;

	*out = 0;
	while (*p != '\0') {
		size_t n = strcspn(p, ",");
		bool found = false;

		for (size_t i = 0; i < sizeof(event_names) / sizeof(event_names[0]); i++) {
			if (strlen(event_names[i].name) == n && strncmp(p, event_names[i].name, n) == 0) {
				*out |= event_names[i].bit;
				found = true;
			}
		}
		if (!found && n != 0)
			return -1;
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

bool agent_cli_uint(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return false;
	*out = v;
	return true;
}

int agent_cli_listen(struct weir_agent_server *s, const char *prog, char **addrs, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		char bound[160];
		int err = weir_agent_server_listen(s, addrs[i]);

		if (err != 0) {
			fprintf(stderr, "%s: cannot listen on %s: %s\n", prog, addrs[i], strerror(-err));
			return -1;
		}
		weir_agent_server_address(s, i, bound, sizeof(bound));
		printf("%s listening on %s\n", prog, bound);
	}
	fflush(stdout);
	return 0;
}

static struct weir_agent_server *sig_server;

static void on_signal(int sig)
{
	(void)sig;
	if (sig_server != NULL)
		weir_agent_server_stop(sig_server);
}

void agent_cli_signals(struct weir_agent_server *s)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sig_server = s;
	if (s == NULL)
		return;
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

void agent_cli_stats(const struct weir_agent_server *s, const char *prog)
{
	struct weir_agent_stats st;

	weir_agent_server_stats(s, &st);
	fprintf(stderr,
		"%s: %llu connections, %llu requests, %llu verdicts, %llu frames in, %llu out, "
		"%llu ignored, %llu protocol errors\n",
		prog, (unsigned long long)st.connections, (unsigned long long)st.requests,
		(unsigned long long)st.verdicts, (unsigned long long)st.frames_in,
		(unsigned long long)st.frames_out, (unsigned long long)st.frames_ignored,
		(unsigned long long)st.protocol_errors);
}
