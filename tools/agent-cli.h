/* Command-line plumbing shared by the example agents (weir-agent-noop,
 * weir-agent-rules): event lists, listeners, signals, statistics. */
#ifndef WEIR_TOOLS_AGENT_CLI_H
#define WEIR_TOOLS_AGENT_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "weir/agent-sdk.h"

/* "request_headers,request_body,..." or "all" -> enum weir_agent_event
 * bits; -1 on an unknown name. */
int agent_cli_events(const char *list, uint32_t *out);

/* A non-negative integer option value; false when s is not one or is
 * over max. */
bool agent_cli_uint(const char *s, uint64_t max, uint64_t *out);

/* Listens on every address and prints "PROG listening on ADDR" for each on
 * stdout (then flushes). 0, or -1 after an error message. */
int agent_cli_listen(struct weir_agent_server *s, const char *prog, char **addrs, unsigned n);

/* SIGTERM / SIGINT stop s gracefully (GOAWAY, drain); SIGPIPE ignored.
 * NULL (before freeing s): the handlers forget s. */
void agent_cli_signals(struct weir_agent_server *s);

/* Counters on stderr. */
void agent_cli_stats(const struct weir_agent_server *s, const char *prog);

#endif
