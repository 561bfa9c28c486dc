/* weir: what an agent may put in a header name or value (verdict mutations,
 * block/redirect response fields, locations). One rule for both sides of
 * the protocol: weir's decoder (src/agent/proto.c) refuses a verdict that
 * breaks it, and libweir-agent (src/sdk/reply.c) refuses to build one, so an
 * SDK agent can never send what weir would drop its connection for. */
#ifndef WEIR_AGENT_FIELDS_H
#define WEIR_AGENT_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#define WEIR_AGENT_NAME_MAX 256u
#define WEIR_AGENT_VALUE_MAX 8192u

/* RFC 9110 token characters. */
static inline bool weir_agent_tchar(unsigned char c)
{
	if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
		return true;
	if (c >= '0' && c <= '9')
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A field name: a token of 1..256 bytes. */
static inline bool weir_agent_name_ok(const char *p, size_t n)
{
	if (n == 0 || n > WEIR_AGENT_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!weir_agent_tchar((unsigned char)p[i]))
			return false;
	return true;
}

/* A field value: at most 8 KiB of visible characters, SP, HTAB and
 * obs-text; no CR, LF, NUL or other controls; no leading or trailing
 * whitespace. */
static inline bool weir_agent_value_ok(const char *p, size_t n)
{
	if (n > WEIR_AGENT_VALUE_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return n == 0 || (p[0] != ' ' && p[0] != '\t' && p[n - 1] != ' ' && p[n - 1] != '\t');
}

/* Framing and connection fields: agents may not mutate them. */
static inline bool weir_agent_protected_name(const char *p, size_t n)
{
	static const char *const names[] = {
		"content-length", "transfer-encoding", "connection", "keep-alive", "te",
		"trailer", "upgrade", "host", "proxy-connection",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == n && strncasecmp(names[i], p, n) == 0)
			return true;
	return false;
}

#endif
