/* weir: the access log — one line per request (JSON, or NCSA combined),
 * written by each reactor without ever blocking its loop.
 *
 * Each reactor opens the file itself (O_APPEND: lines of different reactors
 * never interleave inside a line, each write being one append) and keeps two
 * buffers of conf->access_log.buffer bytes: lines are formatted into the
 * active one; when it is full, or flush_ms after its first line, it is
 * handed to io_uring as one write (IORING_OP_WRITE; the kernel completes
 * buffered file writes without the loop waiting) and lines go on into the
 * other. While a write is in flight a full buffer grows up to 16 times its
 * size; beyond that lines are dropped and counted (weir_access_log_dropped_total),
 * never waited for. Short writes are continued; a failing write is reported
 * once and its buffer dropped.
 *
 * Reopen (SIGUSR1, after log rotation moved the file): at the reactor's next
 * safe point the path is opened again; the old descriptor is closed when the
 * write in flight on it completes. A reload that changes path or format
 * reopens the same way. On stop, the loop waits for the write in flight and
 * what is left is written synchronously at exit.
 *
 * Lines are formatted by the owning reactor thread only. Every string from
 * the request is escaped: JSON strings escape '"', '\\', control bytes and
 * bytes >= 0x80 (as \u00XX: the line stays valid JSON whatever the client
 * sent); combined escapes '"', '\\', control and non-ASCII bytes as \xHH,
 * as nginx does.
 */
#ifndef WEIR_ACCESSLOG_H
#define WEIR_ACCESSLOG_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "weir/conf.h"
#include "weir/timer.h"

struct weir_alog {
	int fd;                         /* -1: no access log */
	int old_fd;                     /* reopened: closes after the write in flight */
	char *path;                     /* as opened */
	uint8_t format;                 /* enum weir_log_format */
	uint32_t size;                  /* buffer size (bytes) */
	uint32_t flush_ms;
	char *buf[2];
	uint32_t len[2], cap[2];
	uint8_t active;                 /* buffer lines go to */
	bool writing;                   /* the other buffer is being written */
	bool error_logged;
	uint32_t woff;                  /* bytes of the written buffer done */
	struct weir_timer timer;        /* flush_ms after the first line */
	time_t tsec;                    /* second of the cached time text */
	uint64_t wall_off;              /* CLOCK_REALTIME - the loop's CLOCK_MONOTONIC, ns */
	char tjson[64];                 /* "2026-11-24T21:05:03" */
	char tclf[64];                  /* "24/Nov/2026:21:05:03 +0000" */
};

/* What one request leaves in the log; strings need not be NUL-terminated. */
struct weir_alog_rec {
	const char *client_ip;
	unsigned client_port;
	weir_slice_t method, target, host, user_agent, referer;
	int status;                     /* 0: no response was sent */
	uint64_t bytes;                 /* response body bytes sent */
	uint64_t req_bytes;             /* request body bytes read */
	uint64_t dur_ns;
	const char *route;              /* NULL: none matched */
	const char *upstream;           /* server address, NULL: none */
	uint64_t upstream_ns;           /* handed to the upstream -> response head */
	weir_slice_t agents;            /* "name:verdict[:rule,...];..." */
	weir_slice_t id;                /* request id */
	int minor;                      /* HTTP/1.minor */
};

#endif
