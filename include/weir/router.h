/* weir: route selection.
 *
 * A route matches when its host, path and method conditions all match. Among
 * matching routes the most specific wins: by path, exact > longer prefix >
 * regex > catch-all; then by host, exact > longer suffix > any; then a route
 * with a method list beats one without; remaining ties go to the first in the
 * file. The router is built once per config and only read afterwards; it may
 * be used from any reactor thread concurrently (regex match data is
 * per-thread).
 */
#ifndef WEIR_ROUTER_H
#define WEIR_ROUTER_H

#include "weir/common.h"
#include "weir/conf.h"
#include "weir/h1.h"

struct weir_router;

struct weir_router *weir_router_new(const struct weir_conf *conf);
void weir_router_free(struct weir_router *r);

/* host: the request's host (may carry ":port", which is ignored; may be
 * empty); path: path + query as received (the query is ignored for
 * matching). Returns NULL when no route matches (weir answers 404). */
const struct weir_conf_route *weir_router_match(const struct weir_router *r, weir_slice_t host,
						weir_slice_t path, enum weir_h1_method method);

#endif
