/* weir: configuration — YAML file (or built-in default) to an immutable
 * config object.
 *
 * The object is built once by the main thread and then only read, by every
 * reactor, until it is freed after all reactors stopped (hot reload will swap
 * whole objects at each reactor's safe point). Nothing in it is mutated after
 * weir_conf_load returns.
 *
 * Errors: every loader returns 0 on success or -1 with a message in err that
 * names file:line:column (1-based, of the offending YAML node) and what is
 * wrong, e.g. "weir.yaml:7:5: unknown key 'listn' in listen entry".
 * Unknown keys, wrong types, bad values (addresses, durations, sizes, regexes,
 * status codes), dangling references (a route naming an unknown upstream) are
 * all errors.
 *
 * YAML schema (durations: 10ms, 1s, 5m, 1h or a bare number of seconds;
 * sizes: 512, 64k, 1m, 1g — powers of 1024):
 *
 *   workers: 2                 # default: number of CPUs in `cpus`
 *   cpus: "0-1,3"              # default: the inherited affinity
 *   listen:
 *     - address: 127.0.0.1:8080      # host:port, [v6]:port
 *   admin:
 *     address: 127.0.0.1:9090
 *   shutdown_timeout: 10s
 *   client_header_timeout: 10s
 *   client_body_timeout: 60s   # idle time between body reads
 *   keepalive_timeout: 75s     # idle client connection between requests
 *   max_connections: 10000     # client connections per reactor
 *   access_log:                # or just a path; absent: no access log
 *     path: /var/log/weir/access.log
 *     format: json             # or combined (NCSA, as nginx's "combined")
 *     buffer: 64k              # per reactor; a write starts when it is full
 *     flush: 1s                # and at the latest this long after a line
 *   upstreams:
 *     app:
 *       servers: [127.0.0.1:9000, 127.0.0.1:9001]
 *       balance: round_robin
 *       keepalive: 64          # idle connections kept per reactor (0: none)
 *       connect_timeout: 1s
 *       read_timeout: 30s      # idle time waiting for response bytes
 *       send_timeout: 30s      # idle time waiting to send request bytes
 *   agents:                    # docs/agent-protocol.md
 *     waf:
 *       socket: /run/weir/waf.sock   # or tcp: 127.0.0.1:7000 (exactly one)
 *       events: [request_headers, request_body]  # absent: what the agent asks
 *       timeout: 100ms
 *       failure: closed          # or open
 *       body_mode: buffer        # or stream
 *       max_body: 1m
 *       connections: 1           # per reactor
 *       max_in_flight: 1024      # open request ids per connection
 *       ping_interval: 5s
 *       reconnect_max: 500ms
 *       transport: auto        # or socket: auto offers shared memory (Unix sockets)
 *   routes:
 *     - name: health           # optional; default "route<N>"
 *       host: example.com      # or "*.example.com"; absent: any host
 *       path: /healthz         # exact; or path_prefix: /api/; or path_regex: ^/v[0-9]+/
 *       methods: [GET, HEAD]   # absent: any method
 *       max_body: 1m           # 413 beyond; absent: unlimited
 *       return: { status: 200, headers: { Content-Type: text/plain }, body: "ok\n" }
 *     - path_prefix: /
 *       upstream: app          # exactly one of upstream / return
 *       agents: [waf]          # proxied routes only
 */
#ifndef WEIR_CONF_H
#define WEIR_CONF_H

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "weir/common.h"

struct weir_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[72];          /* as written, normalised: "127.0.0.1:8080", "[::1]:80" */
};

enum weir_balance {
	WEIR_BALANCE_ROUND_ROBIN = 0,
};

struct weir_conf_upstream {
	char *name;
	struct weir_addr *servers;
	unsigned nservers;
	enum weir_balance balance;
	unsigned keepalive;             /* default 128 */
	uint32_t connect_timeout_ms;    /* default 1000 */
	uint32_t read_timeout_ms;       /* default 30000 */
	uint32_t send_timeout_ms;       /* default 30000 */
	unsigned index;                 /* position in conf->upstreams */
};

enum weir_host_match {
	WEIR_HOST_ANY = 0,
	WEIR_HOST_EXACT,                /* host, case-insensitive, port ignored */
	WEIR_HOST_SUFFIX,               /* "*.example.com": any name ending in ".example.com" */
};

enum weir_path_match {
	WEIR_PATH_ANY = 0,              /* catch-all (no path key, or path_prefix: /) */
	WEIR_PATH_EXACT,                /* path (without query) equals */
	WEIR_PATH_PREFIX,               /* path starts with */
	WEIR_PATH_REGEX,                /* PCRE2 (JIT) match on the path without query */
};

enum weir_body_mode {
	WEIR_BODY_BUFFER = 0,
	WEIR_BODY_STREAM = 1,
};

struct weir_conf_agent {
	char *name;
	struct weir_addr addr;          /* TCP; or AF_UNIX in addr.ss (text: the path) */
	uint32_t events;                /* enum weir_agent_event bits; 0: as the agent asks */
	uint32_t timeout_ms;            /* default 100 */
	bool fail_open;                 /* default false (closed) */
	uint8_t body_mode;              /* enum weir_body_mode; default buffer */
	uint64_t max_body;              /* default 1 MiB */
	unsigned connections;           /* default 1 */
	unsigned max_in_flight;         /* default 1024 */
	uint32_t ping_interval_ms;      /* default 5000 */
	uint32_t reconnect_max_ms;      /* default 500 */
	bool shm;                       /* transport: auto (default; Unix sockets only) */
	unsigned index;                 /* position in conf->agents */
};

struct weir_conf_header {
	char *name;
	char *value;
};

struct weir_conf_route {
	char *name;                     /* default "route<N>", N its 1-based position */
	enum weir_host_match host_match;
	char *host;                     /* lower-case, no trailing dot; for SUFFIX:
	                                   ".example.com"; ANY: NULL */
	size_t host_len;
	enum weir_path_match path_match;
	char *path;                     /* EXACT/PREFIX: the path; REGEX: the pattern */
	size_t path_len;
	void *regex;                    /* pcre2_code * (JIT-compiled when available) */
	uint32_t methods;               /* bit (1u << enum weir_h1_method); 0: any.
	                                   Methods not in enum weir_h1_method are
	                                   rejected at load time. */
	uint64_t max_body;              /* 0: unlimited */
	/* action: exactly one of upstream / ret */
	struct weir_conf_upstream *upstream;
	bool is_return;
	struct {
		int status;
		struct weir_conf_header *headers;
		unsigned nheaders;
		char *body;             /* NULL if absent; else also NUL-terminated */
		size_t body_len;
	} ret;
	unsigned index;                 /* position in the file (ties by order) */
	struct weir_conf_agent **agents; /* in the order named */
	unsigned nagents;
};

enum weir_log_format {
	WEIR_LOG_JSON = 0,
	WEIR_LOG_COMBINED = 1,
};

struct weir_conf_access_log {
	char *path;                     /* NULL: no access log */
	uint8_t format;                 /* enum weir_log_format */
	uint32_t buffer;                /* bytes; default 64 KiB */
	uint32_t flush_ms;              /* default 1000 */
};

struct weir_conf {
	char *source;                   /* file name, or "<default>" */
	unsigned workers;               /* 0: one per CPU in cpus */
	cpu_set_t cpus;
	bool cpus_set;
	struct weir_addr *listens;
	unsigned nlistens;
	struct weir_addr admin;
	bool admin_set;
	uint32_t shutdown_timeout_ms;       /* default 10000 */
	uint32_t client_header_timeout_ms;  /* default 10000 */
	uint32_t client_body_timeout_ms;    /* default 60000 */
	uint32_t keepalive_timeout_ms;      /* default 75000 */
	unsigned max_connections;           /* default 10000 */
	struct weir_conf_upstream *upstreams;
	unsigned nupstreams;
	struct weir_conf_route *routes;
	unsigned nroutes;
	struct weir_conf_agent *agents;
	unsigned nagents;
	struct weir_conf_access_log access_log;
};

/* Load from a file / from memory (name is used in error messages). */
int weir_conf_load_file(const char *path, struct weir_conf **out, char *err, size_t errlen);
int weir_conf_load_string(const char *name, const char *yaml, size_t len,
			  struct weir_conf **out, char *err, size_t errlen);

/* The embedded default: listen on `listen` (NULL: 127.0.0.1:8080), admin on
 * 127.0.0.1:9090, and either one catch-all route proxying to `upstream`
 * ("host:port") or, when upstream is NULL, a built-in welcome response (200,
 * text/plain). */
int weir_conf_default(const char *listen, const char *upstream, struct weir_conf **out,
		      char *err, size_t errlen);

/* Parse "host:port" / "[v6]:port" (numeric hosts and "localhost"). 0 or -1. */
int weir_addr_parse(const char *text, struct weir_addr *out);

/* Same socket address (family, address, port; AF_UNIX: path). */
bool weir_addr_eq(const struct weir_addr *a, const struct weir_addr *b);

/* Parse a CPU list "0-3,6" into set. 0 or -1. */
int weir_cpulist_parse(const char *text, cpu_set_t *set);

/* Parse a duration ("100ms", "1s", "5m", "1h"; a bare number is seconds)
 * into milliseconds. 0, or -1 on bad syntax or overflow. */
int weir_duration_parse(const char *text, uint64_t *ms);

/* Parse a size ("512", "64k", "1m", "1g"; k/m/g in either case are powers of
 * 1024) into bytes. 0, or -1 on bad syntax or overflow. */
int weir_size_parse(const char *text, uint64_t *bytes);

void weir_conf_free(struct weir_conf *conf);

#endif
