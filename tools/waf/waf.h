/* weir-waf internals: configuration (config.c) and the libmodsecurity
 * engine (engine.c). The agent itself (SDK callbacks, main) is
 * tools/weir-waf.c; docs/WAF.md describes the behaviour. */
#ifndef WEIR_TOOLS_WAF_H
#define WEIR_TOOLS_WAF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "weir/agent-sdk.h"

#define WAF_PROG "weir-waf"
#define WAF_MAX_LISTEN 16

/* Debian's modsecurity-crs 3.3.4 */
#define WAF_DEFAULT_CRS_SETUP "/etc/modsecurity/crs/crs-setup.conf"
#define WAF_DEFAULT_RULES "/usr/share/modsecurity-crs/rules"
#define WAF_DEFAULT_BEFORE "/etc/modsecurity/crs/REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf"
#define WAF_DEFAULT_AFTER "/etc/modsecurity/crs/RESPONSE-999-EXCLUSION-RULES-AFTER-CRS.conf"

struct waf_config {
	char *listen[WAF_MAX_LISTEN];   /* owned */
	unsigned nlisten;
	char *crs_setup;                /* owned; "" or "none": not included */
	char *rules;                    /* a directory (its *.conf, sorted) or one file */
	char *before, *after;           /* exclusion files, included when they exist */
	char *include;                  /* extra ModSecurity directives, after the CRS (or NULL) */
	char *name;                     /* sent in HELLO_REPLY */
	char *allowed_methods;          /* tx.allowed_methods (NULL: the CRS default) */
	unsigned paranoia;              /* 1..4 */
	unsigned inbound_threshold;     /* tx.inbound_anomaly_score_threshold */
	unsigned outbound_threshold;    /* tx.outbound_anomaly_score_threshold */
	bool detection_only;            /* SecRuleEngine DetectionOnly: allow all, report */
	bool response;                  /* inspect response headers and body */
	bool log_detections;            /* one stderr line per request that matched */
	uint64_t body_limit;            /* SecRequestBodyLimit (bytes) */
	unsigned workers;               /* SDK worker threads (0: the I/O thread) */
	unsigned max_in_flight;         /* open requests per connection from weir */
	unsigned status;                /* status of a block (200..599) */
};

/* Defaults (strings owned by cfg). 0 or -ENOMEM. */
int waf_config_defaults(struct waf_config *cfg);
void waf_config_free(struct waf_config *cfg);

/* Reads a configuration file: one "key: value" per line ('#' comments,
 * blank lines; values may be quoted with "" or ''). Errors are printed as
 * FILE:LINE: message. 0, or -1 after errors. */
int waf_config_load(struct waf_config *cfg, const char *file);

/* Sets one key from text; what names the source ("--paranoia", or
 * "FILE:LINE") for error messages. 0, or -1 after an error message. */
int waf_config_set(struct waf_config *cfg, const char *key, const char *value, const char *what);

/* Cross-field checks (after every source was read). 0 or -1. */
int waf_config_check(const struct waf_config *cfg);

/* The ModSecurity directives weir-waf loads before the CRS (engine mode,
 * body access and limits, body processors, CRS variables), as one
 * malloc'd NUL-terminated string; NULL when out of memory. */
char *waf_config_directives(const struct waf_config *cfg);

/* Rules weir-waf adds after REQUEST-949 and RESPONSE-959 (config.c). */
extern const char waf__score_rules[];
extern const char waf__out_score_rules[];

/* ---- engine ------------------------------------------------------------ */

struct waf_engine;

/* Loads the rules: directives, crs-setup, the exclusion file before, the
 * rule files, the score rule, the exclusion file after, `include`. On
 * failure prints the error (libmodsecurity names file and line) and
 * returns -1. *nfiles: rule files loaded. */
int waf_engine_new(const struct waf_config *cfg, struct waf_engine **out, unsigned *nfiles);
void waf_engine_free(struct waf_engine *e);

/* Prints every directive weir-waf would load, as an Include-based
 * ModSecurity configuration (for nginx's modsecurity_rules_file). */
int waf_engine_print(const struct waf_config *cfg, FILE *f);

/* Matches collected from libmodsecurity's log callback. */
#define WAF_MAX_MATCHES 32u

struct waf_match {
	uint32_t id;
	char msg[64];                   /* truncated to what a verdict tag holds */
};

struct waf_tx {
	void *tx;                       /* Transaction * */
	struct waf_match m[WAF_MAX_MATCHES];
	unsigned nm;
	unsigned more;                  /* matches beyond WAF_MAX_MATCHES */
	int score;                      /* inbound anomaly score, -1: not known */
	int out_score;                  /* outbound anomaly score, -1: not known */
	uint64_t body_seen;             /* request body bytes appended */
	unsigned body_frames;           /* request body events */
	bool intervention;              /* libmodsecurity asked to disrupt */
	int msc_status;                 /* the status it asked for */
};

/* One transaction per request, opened on its request head: connection,
 * request line, headers, phase 1. -ENOMEM, -EINVAL (a NUL byte in the
 * target), or 0; then check t->intervention. */
int waf_tx_open(struct waf_engine *e, struct waf_tx *t, const struct weir_agent_request *rq);
/* Appends request body bytes (up to the body limit). */
void waf_tx_body(struct waf_tx *t, const char *data, size_t len);
/* The request is complete: phase 2 (runs the CRS's blocking evaluation). */
void waf_tx_request_end(struct waf_tx *t);
/* Response head (phase 3) and body (phase 4 once last). */
void waf_tx_response_headers(struct waf_tx *t, const struct weir_agent_response *rs);
void waf_tx_response_body(struct waf_tx *t, const char *data, size_t len, bool last);
/* Frees the transaction (NULL tx is fine). */
void waf_tx_close(struct waf_tx *t);

#endif
