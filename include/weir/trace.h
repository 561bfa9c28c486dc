/* weir: USDT probes (statically defined tracepoints) for perf, bpftrace and
 * SystemTap.
 *
 *   WEIR_TRACE(name)                 no arguments
 *   WEIR_TRACE1(name, a) ... WEIR_TRACE4(name, a, b, c, d)
 *
 * Each expands to a probe "weir:name" (provider weir) placed with <sys/sdt.h>
 * from systemtap-sdt-dev: one nop instruction in the code plus a note in
 * the ELF file, so an untraced probe costs next to nothing. Arguments must
 * be integers or pointers and cheap to compute: they are evaluated whether or
 * not anything is attached. Without <sys/sdt.h> (meson option `usdt`,
 * `auto` by default, defines WEIR_USDT when the header is there) the macros
 * compile to nothing and do not evaluate their arguments.
 *
 * The probes are a contract with tools (docs/PROFILING.md): names and
 * argument order only ever grow. Current probes:
 *
 *   weir:request_start(client, fd, method)     a request head was parsed
 *       client: struct weir_client * (an id, stable for the connection);
 *       fd: client socket; method: enum weir_h1_method
 *   weir:request_end(client, fd, status, resp_bytes)
 *       the exchange is over (response queued, request read or abandoned);
 *       status: the HTTP status sent (0 if none); resp_bytes: body bytes
 *   weir:upstream_connect(upconn, fd)          a new upstream connection
 *       is being opened (pool miss)
 *   weir:upstream_connected(upconn, res)       its connect completed;
 *       res: 0 or -errno
 *   weir:bufring_exhausted(reactor, fd)        a receive found the
 *       provided-buffer ring empty (-ENOBUFS); reactor: its index
 *
 *   weir:agent_event_sent(client, agent, type, id)   REQUEST_HEADERS or
 *       RESPONSE_HEADERS went to an agent; agent: its index in the config;
 *       type: enum weir_agent_type; id: the request id on that connection
 *   weir:agent_verdict(client, agent, action, phase)  a verdict arrived for
 *       a live request id (enum weir_agent_action, enum weir_agent_phase)
 */
#ifndef WEIR_TRACE_H
#define WEIR_TRACE_H

#if defined(WEIR_USDT) && WEIR_USDT
#include <sys/sdt.h>

#define WEIR_TRACE(name) STAP_PROBE(weir, name)
#define WEIR_TRACE1(name, a) STAP_PROBE1(weir, name, a)
#define WEIR_TRACE2(name, a, b) STAP_PROBE2(weir, name, a, b)
#define WEIR_TRACE3(name, a, b, c) STAP_PROBE3(weir, name, a, b, c)
#define WEIR_TRACE4(name, a, b, c, d) STAP_PROBE4(weir, name, a, b, c, d)
#define WEIR_TRACE_COMPILED 1
#else
/* sizeof: the arguments count as used and are not evaluated. */
#define WEIR_TRACE(name) ((void)0)
#define WEIR_TRACE1(name, a) ((void)sizeof(a))
#define WEIR_TRACE2(name, a, b) ((void)sizeof(a), (void)sizeof(b))
#define WEIR_TRACE3(name, a, b, c) ((void)sizeof(a), (void)sizeof(b), (void)sizeof(c))
#define WEIR_TRACE4(name, a, b, c, d) \
	((void)sizeof(a), (void)sizeof(b), (void)sizeof(c), (void)sizeof(d))
#define WEIR_TRACE_COMPILED 0
#endif

#endif
