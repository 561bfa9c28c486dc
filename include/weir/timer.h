/* weir: per-reactor timer wheel.
 *
 * One wheel per reactor, never shared. Resolution WEIR_WHEEL_TICK_MS; a timer
 * fires at the first tick at or after its deadline (never early). Deadlines
 * beyond the wheel's span are kept in their slot and re-examined each
 * revolution.
 *
 * Re-arming to a later deadline is O(1) and touches no list: the timer stays
 * in its slot and is moved only when that slot is reached (connections push
 * their idle deadline on every read, so this is the common case).
 *
 * The callback runs from weir_wheel_advance(); the timer is already disarmed
 * when it runs and the callback may re-arm it or free its owner.
 */
#ifndef WEIR_TIMER_H
#define WEIR_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#define WEIR_WHEEL_SLOTS 1024u
#define WEIR_WHEEL_TICK_MS 4u
#define WEIR_WHEEL_HORIZON 128u  /* slots weir_wheel_timeout looks ahead */

struct weir_timer;
typedef void (*weir_timer_cb)(struct weir_timer *t);

struct weir_timer {
	struct weir_timer *next;
	struct weir_timer **pprev;      /* NULL when not armed */
	uint64_t deadline;              /* ms, monotonic */
	weir_timer_cb cb;
};

struct weir_wheel {
	uint64_t now;                   /* ms */
	uint64_t tick;                  /* next tick to process */
	unsigned count;                 /* armed timers */
	struct weir_timer *slots[WEIR_WHEEL_SLOTS];
};

void weir_wheel_init(struct weir_wheel *w, uint64_t now_ms);
void weir_timer_init(struct weir_timer *t, weir_timer_cb cb);
void weir_timer_arm(struct weir_wheel *w, struct weir_timer *t, uint64_t deadline_ms);
void weir_timer_cancel(struct weir_wheel *w, struct weir_timer *t);
/* Fires every timer due at now_ms. */
void weir_wheel_advance(struct weir_wheel *w, uint64_t now_ms);
/* Milliseconds until the next slot that holds a timer may fire, at most
 * WEIR_WHEEL_HORIZON ticks (the caller then simply wakes up and asks again);
 * -1: no timer armed. */
int64_t weir_wheel_timeout(const struct weir_wheel *w);

static inline bool weir_timer_armed(const struct weir_timer *t)
{
	return t->pprev != NULL;
}

uint64_t weir_now_ms(void);

#endif
