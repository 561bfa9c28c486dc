/* weir: the admin listener — health, status and metrics for operators.
 *
 * One thread (not a reactor) serves conf->admin with poll(2): at most
 * WEIR_ADMIN_MAX_CONNS connections at a time (others wait in the listen
 * backlog), a request head of at most WEIR_ADMIN_MAX_HEAD bytes, and
 * WEIR_ADMIN_TIMEOUT_MS for a whole exchange; every response closes its
 * connection. It is never served on a public listener: the address is its
 * own socket, and the config loader refuses an admin address that is also a
 * listen address.
 *
 *   GET /health/live   200 "ok": the process answers
 *   GET /health        JSON: reactors, upstreams (and their servers), agents,
 *                      each with a state; 200, or 503 when stopping or when
 *                      no upstream has a usable server
 *   GET /metrics       Prometheus text format (docs/OPERATIONS.md)
 *   GET /status        JSON: version, pid, config generation, uptime, and
 *                      per-reactor figures
 *   POST /reload       501 until reload is enabled (weir_admin_set_reload);
 *                      then raises SIGHUP in this process and answers 202
 *
 * Reactors are read without locks and are never blocked: their metrics with
 * relaxed loads (weir/metrics.h), a few plain fields of struct weir_reactor
 * (stats, stopping) the same way. The reactors array must outlive the admin
 * thread: stop it (weir_admin_stop) before freeing the reactors.
 *
 * The config is read under the admin's own mutex, which only the main thread
 * (weir_admin_set_conf) and the admin thread take.
 */
#ifndef WEIR_ADMIN_H
#define WEIR_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#define WEIR_ADMIN_MAX_CONNS 8
#define WEIR_ADMIN_MAX_HEAD 8192
#define WEIR_ADMIN_TIMEOUT_MS 5000

struct weir_admin;
struct weir_conf;
struct weir_reactor;

/* Binds conf->admin and starts the thread. *out is NULL (and 0 returned)
 * when conf has no admin address. -errno with a message in err when the
 * address cannot be bound or the thread not started. */
int weir_admin_start(struct weir_admin **out, const struct weir_conf *conf,
		     struct weir_reactor *reactors, unsigned nreactors, char *err, size_t errlen);

/* Stops and joins the thread, closes the listener. NULL: no-op. */
void weir_admin_stop(struct weir_admin *a);

/* Hot reload (main thread): the new config is live on every reactor; the
 * generation goes up by one. The old config may be freed once this returns.
 * The admin address itself is not re-bound. */
void weir_admin_set_conf(struct weir_admin *a, const struct weir_conf *conf);

/* Hot reload: whether POST /reload (and weirctl reload) may raise SIGHUP,
 * and the last refused config's error (NULL: clear), shown in /status. */
void weir_admin_set_reload(struct weir_admin *a, bool supported);
void weir_admin_reload_failed(struct weir_admin *a, const char *error);

#endif
