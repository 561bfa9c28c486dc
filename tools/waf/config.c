/* weir-waf configuration: defaults, the key/value file, CLI values, and
 * the ModSecurity directives generated from them. See waf.h. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "waf.h"

static int dupto(char **dst, const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		return -ENOMEM;
	free(*dst);
	*dst = d;
	return 0;
}

int waf_config_defaults(struct waf_config *cfg)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	memset(cfg, 0, sizeof(*cfg));
	cfg->paranoia = 1;
	cfg->inbound_threshold = 5;
	cfg->outbound_threshold = 4;
	cfg->log_detections = true;
	cfg->body_limit = 1024 * 1024;
	cfg->workers = n > 0 && n <= 64 ? (unsigned)n : 2;
	cfg->max_in_flight = 1024;
	cfg->status = 403;
	if (dupto(&cfg->crs_setup, WAF_DEFAULT_CRS_SETUP) != 0 ||
	    dupto(&cfg->rules, WAF_DEFAULT_RULES) != 0 ||
	    dupto(&cfg->before, WAF_DEFAULT_BEFORE) != 0 ||
	    dupto(&cfg->after, WAF_DEFAULT_AFTER) != 0 ||
	    dupto(&cfg->name, "waf") != 0) {
		waf_config_free(cfg);
		return -ENOMEM;
	}
	return 0;
}

void waf_config_free(struct waf_config *cfg)
{
	for (unsigned i = 0; i < cfg->nlisten; i++)
		free(cfg->listen[i]);
	free(cfg->crs_setup);
	free(cfg->rules);
	free(cfg->before);
	free(cfg->after);
	free(cfg->include);
	free(cfg->name);
	free(cfg->allowed_methods);
	memset(cfg, 0, sizeof(*cfg));
}

__attribute__((format(printf, 2, 3)))
static int err(const char *what, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

static bool parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* 1024, 64k, 1m, 2g (binary multiples) */
static bool parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return false;
	switch (tolower((unsigned char)*end)) {
	case '\0': break;
	case 'k': mul = 1ull << 10; end++; break;
	case 'm': mul = 1ull << 20; end++; break;
	case 'g': mul = 1ull << 30; end++; break;
	default: return false;
	}
	if (*end != '\0' || v > UINT64_MAX / mul)
		return false;
	*out = v * mul;
	return true;
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "on", "true", "yes", "1" };
	static const char *const no[] = { "off", "false", "no", "0" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

/* A path ends up inside generated ModSecurity directives: refuse what
 * would break out of the quoted Include argument. */
static bool safe_path(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

int waf_config_set(struct waf_config *cfg, const char *key, const char *value, const char *what)
{
	uint64_t v;
	char **path = NULL;

	if (strcmp(key, "listen") == 0) {
		if (cfg->nlisten == WAF_MAX_LISTEN)
			return err(what, "listen: at most %d addresses", WAF_MAX_LISTEN);
		cfg->listen[cfg->nlisten] = strdup(value);
		if (cfg->listen[cfg->nlisten] == NULL)
			return err(what, "out of memory");
		cfg->nlisten++;
		return 0;
	}
	if (strcmp(key, "crs_setup") == 0)
		path = &cfg->crs_setup;
	else if (strcmp(key, "rules") == 0)
		path = &cfg->rules;
	else if (strcmp(key, "exclusions_before") == 0)
		path = &cfg->before;
	else if (strcmp(key, "exclusions_after") == 0)
		path = &cfg->after;
	else if (strcmp(key, "include") == 0)
		path = &cfg->include;
	if (path != NULL) {
		if (!safe_path(value))
			return err(what, "%s: a path without quotes, backslashes or control characters",
				   key);
		if (strcmp(key, "rules") == 0 && *value == '\0')
			return err(what, "rules: empty path");
		return dupto(path, value) == 0 ? 0 : err(what, "out of memory");
	}
	if (strcmp(key, "name") == 0) {
		if (*value == '\0' || strlen(value) > 64)
			return err(what, "name: 1..64 bytes");
		return dupto(&cfg->name, value) == 0 ? 0 : err(what, "out of memory");
	}
	if (strcmp(key, "allowed_methods") == 0) {
		/* HTTP method tokens separated by single spaces (CRS 900200) */
		for (const char *p = value; *p != '\0'; p++)
			if (!((*p >= 'A' && *p <= 'Z') || (*p == ' ' && p != value && p[1] != ' ' &&
							    p[1] != '\0')))
				return err(what, "allowed_methods: upper-case methods separated by "
					   "spaces, e.g. \"GET HEAD POST OPTIONS PUT\"");
		if (*value == '\0')
			return err(what, "allowed_methods: empty");
		return dupto(&cfg->allowed_methods, value) == 0 ? 0 : err(what, "out of memory");
	}
	if (strcmp(key, "paranoia") == 0 || strcmp(key, "paranoia_level") == 0) {
		if (!parse_uint(value, 1, 4, &v))
			return err(what, "%s: 1..4, not \"%s\"", key, value);
		cfg->paranoia = (unsigned)v;
		return 0;
	}
	if (strcmp(key, "inbound_threshold") == 0 || strcmp(key, "outbound_threshold") == 0) {
		if (!parse_uint(value, 1, 100000, &v))
			return err(what, "%s: 1..100000, not \"%s\"", key, value);
		if (key[0] == 'i')
			cfg->inbound_threshold = (unsigned)v;
		else
			cfg->outbound_threshold = (unsigned)v;
		return 0;
	}
	if (strcmp(key, "mode") == 0) {
		if (strcmp(value, "block") == 0)
			cfg->detection_only = false;
		else if (strcmp(value, "detect") == 0 || strcmp(value, "detection_only") == 0)
			cfg->detection_only = true;
		else
			return err(what, "mode: block or detect, not \"%s\"", value);
		return 0;
	}
	if (strcmp(key, "detection_only") == 0 || strcmp(key, "response") == 0 ||
	    strcmp(key, "log_detections") == 0) {
		bool b;

		if (parse_bool(value, &b) != 0)
			return err(what, "%s: on or off, not \"%s\"", key, value);
		if (key[0] == 'd')
			cfg->detection_only = b;
		else if (key[0] == 'r')
			cfg->response = b;
		else
			cfg->log_detections = b;
		return 0;
	}
	if (strcmp(key, "body_limit") == 0) {
		if (!parse_size(value, &v) || v < 1 || v > (1ull << 30))
			return err(what, "body_limit: a size 1..1g (1024, 64k, 1m), not \"%s\"", value);
		cfg->body_limit = v;
		return 0;
	}
	if (strcmp(key, "workers") == 0) {
		if (!parse_uint(value, 0, 256, &v))
			return err(what, "workers: 0..256, not \"%s\"", value);
		cfg->workers = (unsigned)v;
		return 0;
	}
	if (strcmp(key, "max_in_flight") == 0) {
		if (!parse_uint(value, 1, 4096, &v))
			return err(what, "max_in_flight: 1..4096, not \"%s\"", value);
		cfg->max_in_flight = (unsigned)v;
		return 0;
	}
	if (strcmp(key, "status") == 0) {
		if (!parse_uint(value, 200, 599, &v))
			return err(what, "status: 200..599, not \"%s\"", value);
		cfg->status = (unsigned)v;
		return 0;
	}
	return err(what, "unknown key \"%s\"", key);
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		e--;
	*e = '\0';
	return s;
}

static int load_line(struct waf_config *cfg, char *line, const char *what)
{
	char *s = trim(line), *colon, *key, *value;
	size_t n;

	if (*s == '\0' || *s == '#')
		return 0;
	colon = strchr(s, ':');
	if (colon == NULL)
		return err(what, "expected \"key: value\"");
	*colon = '\0';
	key = trim(s);
	value = trim(colon + 1);
	n = strlen(value);
	if (n >= 2 && (value[0] == '"' || value[0] == '\'') && value[n - 1] == value[0]) {
		value[n - 1] = '\0';
		value++;
	} else {
		/* a trailing comment, YAML style: " #" */
		char *hash = strstr(value, " #");

		if (hash != NULL) {
			*hash = '\0';
			value = trim(value);
		}
	}
	if (*key == '\0')
		return err(what, "empty key");
	return waf_config_set(cfg, key, value, what);
}

int waf_config_load(struct waf_config *cfg, const char *file)
{
	FILE *f = fopen(file, "r");
	char *line = NULL, what[512];
	size_t cap = 0;
	unsigned lineno = 0, errors = 0;

	if (f == NULL) {
		fprintf(stderr, "%s: %s\n", file, strerror(errno));
		return -1;
	}
	for (ssize_t n; (n = getline(&line, &cap, f)) >= 0;) {
		lineno++;
		snprintf(what, sizeof(what), "%s:%u", file, lineno);
		if (strlen(line) != (size_t)n) {
			err(what, "NUL byte in the line");
			errors++;
			continue;
		}
		if (load_line(cfg, line, what) != 0)
			errors++;
	}
	free(line);
	fclose(f);
	return errors == 0 ? 0 : -1;
}

int waf_config_check(const struct waf_config *cfg)
{
	if (access(cfg->rules, R_OK) != 0)
		return err(WAF_PROG, "rules %s: %s", cfg->rules, strerror(errno));
	if (cfg->crs_setup[0] != '\0' && strcmp(cfg->crs_setup, "none") != 0 &&
	    access(cfg->crs_setup, R_OK) != 0)
		return err(WAF_PROG, "crs_setup %s: %s", cfg->crs_setup, strerror(errno));
	if (cfg->include != NULL && access(cfg->include, R_OK) != 0)
		return err(WAF_PROG, "include %s: %s", cfg->include, strerror(errno));
	return 0;
}

/* Ids of weir-waf's own rules: outside CRS's 900000-999999 range and
 * modsecurity.conf-recommended's 200000-200007. */
char *waf_config_directives(const struct waf_config *cfg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return NULL;
	fprintf(f,
		"# generated by " WAF_PROG "\n"
		"SecRuleEngine %s\n"
		"SecRequestBodyAccess On\n"
		"SecRequestBodyLimit %llu\n"
		"SecRequestBodyNoFilesLimit %llu\n"
		"SecRequestBodyLimitAction Reject\n"
		"SecRequestBodyJsonDepthLimit 512\n"
		"SecArgumentsLimit 1000\n"
		"SecPcreMatchLimit 1000\n"
		"SecPcreMatchLimitRecursion 1000\n"
		"SecResponseBodyAccess %s\n"
		"SecResponseBodyMimeType text/plain text/html text/xml application/json\n"
		"SecResponseBodyLimit 524288\n"
		"SecResponseBodyLimitAction ProcessPartial\n"
		"SecAuditEngine Off\n"
		"SecArgumentSeparator &\n"
		"SecCookieFormat 0\n"
		/* body processors, as modsecurity.conf-recommended */
		"SecRule REQUEST_HEADERS:Content-Type \"^(?:application(?:/soap\\+|/)|text/)xml\" "
		"\"id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML\"\n"
		"SecRule REQUEST_HEADERS:Content-Type \"^application/json\" "
		"\"id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON\"\n"
		"SecRule &ARGS \"@ge 1000\" \"id:200007,phase:2,t:none,log,deny,status:400,"
		"msg:'Failed to fully parse request body due to large argument count'\"\n"
		"SecRule REQBODY_ERROR \"!@eq 0\" \"id:200002,phase:2,t:none,log,deny,status:400,"
		"msg:'Failed to parse request body.'\"\n"
		"SecRule MULTIPART_STRICT_ERROR \"!@eq 0\" \"id:200003,phase:2,t:none,log,deny,"
		"status:400,msg:'Multipart request body failed strict validation'\"\n"
		"SecRule MULTIPART_UNMATCHED_BOUNDARY \"@eq 1\" \"id:200004,phase:2,t:none,log,deny,"
		"msg:'Multipart parser detected a possible unmatched boundary.'\"\n"
		"SecRule TX:/^MSC_/ \"!@streq 0\" \"id:200005,phase:2,t:none,log,deny,"
		"msg:'ModSecurity internal error flagged: %%{MATCHED_VAR_NAME}'\"\n"
		/* the CRS variables crs-setup.conf leaves commented out */
		"SecAction \"id:4000001,phase:1,nolog,pass,t:none,setvar:tx.paranoia_level=%u\"\n"
		"SecAction \"id:4000002,phase:1,nolog,pass,t:none,"
		"setvar:tx.inbound_anomaly_score_threshold=%u,"
		"setvar:tx.outbound_anomaly_score_threshold=%u\"\n",
		cfg->detection_only ? "DetectionOnly" : "On",
		(unsigned long long)cfg->body_limit, (unsigned long long)cfg->body_limit,
		cfg->response ? "On" : "Off", cfg->paranoia, cfg->inbound_threshold,
		cfg->outbound_threshold);
	if (cfg->allowed_methods != NULL)
		fprintf(f, "SecAction \"id:4000003,phase:1,nolog,pass,t:none,"
			"setvar:'tx.allowed_methods=%s'\"\n", cfg->allowed_methods);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* After REQUEST-949 (which sums tx.anomaly_score) and RESPONSE-959: a rule
 * that logs the scores, so that weir-waf can report them when nothing
 * blocked (949110 / 959100 say them when they block). */
const char waf__score_rules[] =
	"SecRule TX:ANOMALY_SCORE \"@gt 0\" \"id:4000010,phase:2,pass,log,t:none,"
	"msg:'weir-waf inbound anomaly score %{TX.ANOMALY_SCORE}'\"\n";
const char waf__out_score_rules[] =
	"SecRule TX:OUTBOUND_ANOMALY_SCORE \"@gt 0\" \"id:4000011,phase:4,pass,log,"
	"t:none,msg:'weir-waf outbound anomaly score %{TX.OUTBOUND_ANOMALY_SCORE}'\"\n";
