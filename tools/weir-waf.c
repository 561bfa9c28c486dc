/*
 * weir-waf: a web application firewall agent for weir: the OWASP Core Rule
 * Set (3.3, Debian's modsecurity-crs) on libmodsecurity3, built on
 * libweir-agent. docs/WAF.md describes configuration and behaviour.
 *
 *   weir-waf [--config FILE] [--listen ADDR]... [--paranoia 1..4]
 *            [--detection-only] [--check] [--print-directives] ...
 *
 * Each request weir sends opens one ModSecurity transaction, kept across
 * its events: the head (connection, request line, headers: phase 1), each
 * body frame appended as it arrives, the end of the body (phase 2, where
 * the CRS compares the inbound anomaly score with its threshold), and,
 * with `response: on`, the response head (phase 3) and body (phase 4).
 * Evaluation runs on the SDK's worker threads (one request's events on
 * one thread, in order), never on the I/O thread. A block answers with the
 * configured status; every verdict that matched something carries the
 * matched CRS rule ids (rule_ids), the score (score), and the rules'
 * messages (tags); in detection-only mode the verdict allows and still
 * carries them, and one line per such request goes to stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent-cli.h"
#include "waf/waf.h"

static const char usage[] =
	"usage: " WAF_PROG " [options]\n"
	"  -c, --config FILE        key: value file (keys as the long options below,\n"
	"                           with '_' for '-'); options given here override it\n"
	"  --listen ADDR            unix:PATH, PATH, or HOST:PORT; repeatable\n"
	"                           (default unix:/tmp/weir-waf.sock)\n"
	"  --rules PATH             CRS rules directory (its *.conf, sorted) or one file\n"
	"                           (default " WAF_DEFAULT_RULES ")\n"
	"  --crs-setup FILE         (default " WAF_DEFAULT_CRS_SETUP "; none: skip)\n"
	"  --include FILE           more ModSecurity directives, loaded after the CRS\n"
	"  --paranoia N             CRS paranoia level 1..4 (default 1)\n"
	"  --inbound-threshold N    inbound anomaly score threshold (default 5)\n"
	"  --outbound-threshold N   outbound anomaly score threshold (default 4)\n"
	"  --detection-only         allow everything, report what matched\n"
	"  --response               inspect response headers and bodies too\n"
	"  --body-limit SIZE        request body bytes inspected (default 1m)\n"
	"  --workers N              evaluation threads (default: online CPUs)\n"
	"  --max-in-flight N        open requests per connection from weir (default 1024)\n"
	"  --status N               status of a block, 200..599 (default 403)\n"
	"  --allowed-methods LIST   CRS tx.allowed_methods, e.g. \"GET HEAD POST OPTIONS PUT\"\n"
	"                           (default the CRS's: GET HEAD POST OPTIONS)\n"
	"  --name NAME              name sent in HELLO_REPLY (default waf)\n"
	"  --check                  load the configuration and the rules, exit\n"
	"  --print-directives       print the ModSecurity configuration weir-waf\n"
	"                           loads (usable as nginx's modsecurity_rules_file), exit\n"
	"  --quiet, --verbose\n";

struct waf {
	struct waf_config cfg;
	struct waf_engine *engine;
	atomic_ulong requests, blocked, detected;
};

static void report(struct waf *w, struct weir_agent_req *req, const struct waf_tx *t,
		   bool block, const char *phase)
{
	const struct weir_agent_request *rq = weir_agent_req_request(req);
	char line[2048];
	size_t n = 0;

	if (!w->cfg.log_detections)
		return;
	n += (size_t)snprintf(line + n, sizeof(line) - n, WAF_PROG ": uid %.*s %s %s %.*s %.*s",
			      (int)(rq->uid.len > 64 ? 64 : rq->uid.len), rq->uid.ptr, phase,
			      block ? "block" : "detect", (int)(rq->method.len > 16 ? 16 : rq->method.len),
			      rq->method.ptr, (int)(rq->path.len > 200 ? 200 : rq->path.len),
			      rq->path.ptr);
	/* the request's bytes are hostile: only printable ASCII reaches the log */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] >= 0x7f)
			line[i] = '?';
	if (n < sizeof(line))
		n += (size_t)snprintf(line + n, sizeof(line) - n, " body=%llu/%u score=%d out_score=%d rules=",
				      (unsigned long long)t->body_seen, t->body_frames, t->score,
				      t->out_score);
	for (unsigned i = 0; i < t->nm && n < sizeof(line); i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%u", i ? "," : "", t->m[i].id);
	for (unsigned i = 0; i < t->nm && n < sizeof(line); i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s", i ? "; " : " msgs=\"",
				      t->m[i].msg);
	if (t->nm != 0 && n < sizeof(line))
		n += (size_t)snprintf(line + n, sizeof(line) - n, "\"");
	if (n >= sizeof(line))
		n = sizeof(line) - 1;
	line[n] = '\0';
	fprintf(stderr, "%s\n", line);
}

/* Fills the verdict from the transaction: a block when libmodsecurity
 * asked to disrupt (never in detection-only mode), the audit fields when
 * anything matched. */
static int finish(struct waf *w, struct weir_agent_req *req, const struct waf_tx *t,
		  struct weir_agent_reply *r, const char *phase)
{
	bool block = t->intervention && !w->cfg.detection_only;
	bool outbound = phase[0] == 'o';
	int score = outbound ? t->out_score : t->score;
	char reason[160];

	if (!block && t->nm == 0)
		return WEIR_AGENT_R_VERDICT;
	if (block) {
		static const char body[] = "request blocked by the web application firewall\n";

		weir_agent_reply_block(r, w->cfg.status, body, sizeof(body) - 1);
		weir_agent_reply_header(r, "Content-Type", "text/plain");
		atomic_fetch_add(&w->blocked, 1);
	} else {
		atomic_fetch_add(&w->detected, 1);
	}
	weir_agent_reply_tag(r, WAF_PROG);
	weir_agent_reply_tag(r, block ? "block" : "detect");
	/* matches are in evaluation order; the audit lists hold 64 entries */
	for (unsigned i = 0; i < t->nm; i++) {
		weir_agent_reply_rule_id(r, t->m[i].id);
		if (t->m[i].msg[0] != '\0')
			weir_agent_reply_tag(r, t->m[i].msg);
	}
	if (score >= 0)
		weir_agent_reply_score(r, score);
	if (score >= 0)
		snprintf(reason, sizeof(reason), "CRS %s anomaly score %d (threshold %u)%s",
			 phase, score, outbound ? w->cfg.outbound_threshold : w->cfg.inbound_threshold,
			 t->more ? ", more rules matched" : "");
	else if (block)
		snprintf(reason, sizeof(reason), "ModSecurity disruptive action (status %d)",
			 t->msc_status);
	else
		snprintf(reason, sizeof(reason), "CRS %s: rules matched", phase);
	weir_agent_reply_reason(r, reason);
	report(w, req, t, block, phase);
	return WEIR_AGENT_R_VERDICT;
}

static void refuse(struct waf *w, struct weir_agent_reply *r, unsigned status, const char *why)
{
	weir_agent_reply_block(r, status, why, strlen(why));
	weir_agent_reply_header(r, "Content-Type", "text/plain");
	weir_agent_reply_tag(r, WAF_PROG);
	weir_agent_reply_reason(r, why);
	atomic_fetch_add(&w->blocked, 1);
}

static int on_request_headers(void *user, struct weir_agent_req *req, struct weir_agent_reply *r)
{
	struct waf *w = user;
	const struct weir_agent_request *rq = weir_agent_req_request(req);
	struct waf_tx *t = malloc(sizeof(*t));
	int err;

	atomic_fetch_add(&w->requests, 1);
	if (t == NULL) {
		refuse(w, r, 503, "weir-waf: out of memory\n");
		return WEIR_AGENT_R_VERDICT;
	}
	weir_agent_req_set_data(req, t);
	err = waf_tx_open(w->engine, t, rq);
	if (err == -EINVAL) {
		/* a NUL byte in the method or target: no browser sends that */
		if (!w->cfg.detection_only)
			refuse(w, r, w->cfg.status, "weir-waf: NUL byte in the request line\n");
		return WEIR_AGENT_R_VERDICT;
	}
	if (err != 0) {
		refuse(w, r, 503, "weir-waf: out of memory\n");
		return WEIR_AGENT_R_VERDICT;
	}
	if (t->intervention)
		return finish(w, req, t, r, "inbound");
	if (rq->has_body)
		return WEIR_AGENT_R_PENDING;
	waf_tx_request_end(t);
	return finish(w, req, t, r, "inbound");
}

static int on_request_body(void *user, struct weir_agent_req *req, const struct weir_agent_chunk *c,
			   struct weir_agent_reply *r)
{
	struct waf *w = user;
	struct waf_tx *t = weir_agent_req_data(req);

	if (t == NULL || t->tx == NULL)
		return c->last ? WEIR_AGENT_R_VERDICT : WEIR_AGENT_R_PENDING;
	waf_tx_body(t, c->data, c->len);
	if (t->intervention)
		return finish(w, req, t, r, "inbound");
	if (!c->last)
		return WEIR_AGENT_R_PENDING;
	waf_tx_request_end(t);
	return finish(w, req, t, r, "inbound");
}

static int on_response_headers(void *user, struct weir_agent_req *req, struct weir_agent_reply *r)
{
	struct waf *w = user;
	struct waf_tx *t = weir_agent_req_data(req);
	const struct weir_agent_response *rs = weir_agent_req_response(req);

	if (t == NULL || t->tx == NULL || rs == NULL)
		return WEIR_AGENT_R_VERDICT;
	/* request-phase matches were reported with the request's verdict */
	t->nm = 0;
	t->more = 0;
	waf_tx_response_headers(t, rs);
	return finish(w, req, t, r, "outbound");
}

static int on_response_body(void *user, struct weir_agent_req *req, const struct weir_agent_chunk *c,
			    struct weir_agent_reply *r)
{
	struct waf *w = user;
	struct waf_tx *t = weir_agent_req_data(req);

	if (t == NULL || t->tx == NULL)
		return WEIR_AGENT_R_PENDING;
	waf_tx_response_body(t, c->data, c->len, c->last);
	if (!c->last)
		return WEIR_AGENT_R_PENDING;
	/* weir does not wait for this verdict; it is sent if still due and
	 * the detections are logged either way */
	return finish(w, req, t, r, "outbound");
}

static void on_closed(void *user, struct weir_agent_req *req, int reason)
{
	struct waf_tx *t = weir_agent_req_data(req);

	if (t != NULL) {
		waf_tx_close(t);
		free(t);
	}
}

enum {
	O_LISTEN = 256, O_RULES, O_CRS_SETUP, O_INCLUDE, O_PARANOIA, O_IN_THR, O_OUT_THR,
	O_DETECT, O_RESPONSE, O_BODY_LIMIT, O_WORKERS, O_MAX_IN_FLIGHT, O_STATUS, O_NAME, O_METHODS,
	O_CHECK, O_PRINT, O_QUIET, O_VERBOSE,
};

static const struct option opts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "listen", required_argument, NULL, O_LISTEN },
	{ "rules", required_argument, NULL, O_RULES },
	{ "crs-setup", required_argument, NULL, O_CRS_SETUP },
	{ "include", required_argument, NULL, O_INCLUDE },
	{ "paranoia", required_argument, NULL, O_PARANOIA },
	{ "inbound-threshold", required_argument, NULL, O_IN_THR },
	{ "outbound-threshold", required_argument, NULL, O_OUT_THR },
	{ "detection-only", no_argument, NULL, O_DETECT },
	{ "response", no_argument, NULL, O_RESPONSE },
	{ "body-limit", required_argument, NULL, O_BODY_LIMIT },
	{ "workers", required_argument, NULL, O_WORKERS },
	{ "max-in-flight", required_argument, NULL, O_MAX_IN_FLIGHT },
	{ "status", required_argument, NULL, O_STATUS },
	{ "name", required_argument, NULL, O_NAME },
	{ "allowed-methods", required_argument, NULL, O_METHODS },
	{ "check", no_argument, NULL, O_CHECK },
	{ "print-directives", no_argument, NULL, O_PRINT },
	{ "quiet", no_argument, NULL, O_QUIET },
	{ "verbose", no_argument, NULL, O_VERBOSE },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* The key of a long option in the configuration file: its name with '_'. */
static const char *opt_key(int opt, char *buf, size_t n)
{
	for (const struct option *o = opts; o->name != NULL; o++) {
		if (o->val == opt) {
			size_t i;

			for (i = 0; o->name[i] != '\0' && i + 1 < n; i++)
				buf[i] = o->name[i] == '-' ? '_' : o->name[i];
			buf[i] = '\0';
			return buf;
		}
	}
	return "?";
}

int main(int argc, char **argv)
{
	static struct waf w;
	struct weir_agent_config ac = { 0 };
	struct weir_agent_server *s = NULL;
	bool check = false, print = false, quiet = false;
	const char *config = NULL;
	unsigned nfiles = 0;
	int opt, err, ret = 1, log_level = 0;

	if (waf_config_defaults(&w.cfg) != 0) {
		fprintf(stderr, WAF_PROG ": out of memory\n");
		return 1;
	}
	/* the file first, then the options over it */
	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		if (opt == 'c') {
			config = optarg;
		} else if (opt == 'h') {
			fputs(usage, stdout);
			waf_config_free(&w.cfg);
			return 0;
		} else if (opt == '?') {
			fputs(usage, stderr);
			waf_config_free(&w.cfg);
			return 2;
		}
	}
	if (optind != argc) {
		fputs(usage, stderr);
		waf_config_free(&w.cfg);
		return 2;
	}
	if (config != NULL && waf_config_load(&w.cfg, config) != 0) {
		waf_config_free(&w.cfg);
		return 2;
	}
	optind = 0;
	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		char key[32], what[40];

		switch (opt) {
		case 'c':
			break;
		case O_DETECT:
			w.cfg.detection_only = true;
			break;
		case O_RESPONSE:
			w.cfg.response = true;
			break;
		case O_CHECK:
			check = true;
			break;
		case O_PRINT:
			print = true;
			break;
		case O_QUIET:
			quiet = true;
			log_level = WEIR_AGENT_LOG_ERR;
			break;
		case O_VERBOSE:
			log_level = WEIR_AGENT_LOG_DEBUG;
			break;
		default:
			snprintf(what, sizeof(what), "--%s", opt_key(opt, key, sizeof(key)));
			for (char *p = what; *p != '\0'; p++)
				if (*p == '_')
					*p = '-';
			if (waf_config_set(&w.cfg, opt_key(opt, key, sizeof(key)), optarg, what) != 0) {
				waf_config_free(&w.cfg);
				return 2;
			}
			break;
		}
	}
	if (waf_config_check(&w.cfg) != 0) {
		waf_config_free(&w.cfg);
		return 2;
	}
	if (print) {
		ret = waf_engine_print(&w.cfg, stdout) == 0 ? 0 : 1;
		waf_config_free(&w.cfg);
		return ret;
	}
	if (w.cfg.nlisten == 0 && waf_config_set(&w.cfg, "listen", "unix:/tmp/weir-waf.sock",
						 WAF_PROG) != 0) {
		waf_config_free(&w.cfg);
		return 1;
	}
	if (waf_engine_new(&w.cfg, &w.engine, &nfiles) != 0)
		goto out;
	if (!quiet || check)
		fprintf(stderr, WAF_PROG ": CRS from %s (%u rule files), paranoia %u, "
			"thresholds %u/%u, %s, %u workers\n", w.cfg.rules, nfiles, w.cfg.paranoia,
			w.cfg.inbound_threshold, w.cfg.outbound_threshold,
			w.cfg.detection_only ? "detection only" : "blocking", w.cfg.workers);
	if (check) {
		ret = 0;
		goto out;
	}

	ac.name = w.cfg.name;
	ac.workers = w.cfg.workers;
	ac.max_in_flight = w.cfg.max_in_flight;
	ac.log_level = log_level;
	ac.user = &w;
	ac.cb.request_headers = on_request_headers;
	ac.cb.request_body = on_request_body;
	if (w.cfg.response) {
		ac.cb.response_headers = on_response_headers;
		ac.cb.response_body = on_response_body;
	}
	ac.cb.closed = on_closed;
	err = weir_agent_server_new(&ac, &s);
	if (err != 0) {
		fprintf(stderr, WAF_PROG ": %s\n", strerror(-err));
		goto out;
	}
	if (agent_cli_listen(s, WAF_PROG, w.cfg.listen, w.cfg.nlisten) != 0)
		goto out;
	agent_cli_signals(s);
	err = weir_agent_server_run(s);
	agent_cli_signals(NULL);
	if (!quiet) {
		agent_cli_stats(s, WAF_PROG);
		fprintf(stderr, WAF_PROG ": %lu requests, %lu blocked, %lu detected (allowed)\n",
			atomic_load(&w.requests), atomic_load(&w.blocked), atomic_load(&w.detected));
	}
	ret = err == 0 ? 0 : 1;
out:
	weir_agent_server_free(s);
	waf_engine_free(w.engine);
	waf_config_free(&w.cfg);
	return ret;
}
