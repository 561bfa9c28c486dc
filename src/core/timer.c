#include <time.h>

#include "weir/timer.h"

uint64_t weir_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void weir_wheel_init(struct weir_wheel *w, uint64_t now_ms)
{
	*w = (struct weir_wheel){ 0 };
	w->now = now_ms;
	w->tick = now_ms / WEIR_WHEEL_TICK_MS;
}

void weir_timer_init(struct weir_timer *t, weir_timer_cb cb)
{
	t->next = NULL;
	t->pprev = NULL;
	t->deadline = 0;
	t->cb = cb;
}

static void unlink_timer(struct weir_timer *t)
{
	if (t->next != NULL)
		t->next->pprev = t->pprev;
	*t->pprev = t->next;
	t->next = NULL;
	t->pprev = NULL;
}

static void link_timer(struct weir_wheel *w, struct weir_timer *t)
{
	/* Round the deadline up so a timer never fires early; a deadline in
	 * the past goes to the next tick processed. */
	uint64_t tick = (t->deadline + WEIR_WHEEL_TICK_MS - 1) / WEIR_WHEEL_TICK_MS;
	struct weir_timer **slot;

	if (tick < w->tick)
		tick = w->tick;
	slot = &w->slots[tick % WEIR_WHEEL_SLOTS];
	t->next = *slot;
	if (t->next != NULL)
		t->next->pprev = &t->next;
	t->pprev = slot;
	*slot = t;
}

void weir_timer_arm(struct weir_wheel *w, struct weir_timer *t, uint64_t deadline_ms)
{
	if (t->pprev != NULL) {
		if (deadline_ms >= t->deadline) {
			/* Later: stay in the slot, moved lazily when it fires. */
			t->deadline = deadline_ms;
			return;
		}
		unlink_timer(t);
		w->count--;
	}
	t->deadline = deadline_ms;
	link_timer(w, t);
	w->count++;
}

void weir_timer_cancel(struct weir_wheel *w, struct weir_timer *t)
{
	if (t->pprev == NULL)
		return;
	unlink_timer(t);
	w->count--;
}

void weir_wheel_advance(struct weir_wheel *w, uint64_t now_ms)
{
	uint64_t last = now_ms / WEIR_WHEEL_TICK_MS;

	w->now = now_ms;
	if (w->count == 0) {
		w->tick = last + 1;
		return;
	}
	/* Never walk more than one revolution: beyond that every slot has been
	 * seen and the lazy re-link puts each timer back where it belongs. */
	if (last >= w->tick + WEIR_WHEEL_SLOTS)
		w->tick = last + 1 - WEIR_WHEEL_SLOTS;
	while (w->tick <= last) {
		struct weir_timer **slot = &w->slots[w->tick % WEIR_WHEEL_SLOTS];
		struct weir_timer *pending = *slot;

		/* Detach the slot into a local list whose links stay valid, so a
		 * callback may cancel any other timer, and move the tick on first
		 * so that timers armed by callbacks land in a later slot. */
		*slot = NULL;
		if (pending != NULL)
			pending->pprev = &pending;
		w->tick++;
		while (pending != NULL) {
			struct weir_timer *t = pending;

			unlink_timer(t);
			if (t->deadline <= now_ms) {
				w->count--;
				t->cb(t);
			} else {
				link_timer(w, t);
			}
		}
	}
}

int64_t weir_wheel_timeout(const struct weir_wheel *w)
{
	uint64_t at;

	if (w->count == 0)
		return -1;
	/* Look a bounded distance ahead: this runs every loop iteration, and
	 * under load the nearest timers (read and keep-alive timeouts) are
	 * seconds away. Waking up once per horizon when nothing is due costs
	 * less than scanning hundreds of empty slots per iteration. */
	at = (w->tick + WEIR_WHEEL_HORIZON) * WEIR_WHEEL_TICK_MS;
	for (uint64_t i = 0; i < WEIR_WHEEL_HORIZON; i++) {
		if (w->slots[(w->tick + i) % WEIR_WHEEL_SLOTS] != NULL) {
			at = (w->tick + i) * WEIR_WHEEL_TICK_MS;
			break;
		}
	}
	return at > w->now ? (int64_t)(at - w->now) : 0;
}
