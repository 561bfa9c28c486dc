/* Timer wheel: ordering, never early, lazy re-arm, cancel from callbacks,
 * deadlines beyond one revolution. */
#include <stdio.h>
#include <stdlib.h>

#include "weir/timer.h"

static int failures;
#define CHECK(c)                                                                  \
	do {                                                                      \
		if (!(c)) {                                                       \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
			failures++;                                               \
		}                                                                 \
	} while (0)

struct rec {
	struct weir_timer t;
	uint64_t fired_at;
	int fired;
	struct weir_wheel *w;
	struct rec *cancel_other;
	uint64_t rearm_to;
};

static uint64_t now;

static void cb(struct weir_timer *t)
{
	struct rec *r = (struct rec *)t;

	r->fired++;
	r->fired_at = now;
	if (r->cancel_other != NULL)
		weir_timer_cancel(r->w, &r->cancel_other->t);
	if (r->rearm_to != 0) {
		weir_timer_arm(r->w, &r->t, r->rearm_to);
		r->rearm_to = 0;
	}
}

static void run_to(struct weir_wheel *w, uint64_t to)
{
	while (now < to) {
		now++;
		weir_wheel_advance(w, now);
	}
}

int main(void)
{
	struct weir_wheel w;
	struct rec a = { 0 }, b = { 0 }, c = { 0 }, far = { 0 }, lazy = { 0 };

	now = 1000;
	weir_wheel_init(&w, now);
	weir_timer_init(&a.t, cb);
	weir_timer_init(&b.t, cb);
	weir_timer_init(&c.t, cb);
	weir_timer_init(&far.t, cb);
	weir_timer_init(&lazy.t, cb);
	a.w = b.w = c.w = far.w = lazy.w = &w;

	weir_timer_arm(&w, &a.t, 1010);
	weir_timer_arm(&w, &b.t, 1010);
	weir_timer_arm(&w, &far.t, 1000 + 3 * WEIR_WHEEL_SLOTS * WEIR_WHEEL_TICK_MS + 7);
	weir_timer_arm(&w, &lazy.t, 1020);
	CHECK(w.count == 4);
	CHECK(weir_wheel_timeout(&w) >= 0);
	/* a fires first and cancels b, which sits in the same slot */
	a.cancel_other = &b;
	b.cancel_other = &a;
	run_to(&w, 1009);
	CHECK(a.fired == 0);
	run_to(&w, 1012);
	CHECK(a.fired + b.fired == 1);
	/* whichever fired first cancelled the other: exactly one fires */
	CHECK(!weir_timer_armed(&a.t) && !weir_timer_armed(&b.t));
	CHECK(a.fired == 0 || a.fired_at >= 1010);

	/* lazy re-arm to later: stays armed, fires at the new deadline */
	weir_timer_arm(&w, &lazy.t, 1100);
	run_to(&w, 1099);
	CHECK(lazy.fired == 0);
	run_to(&w, 1104);
	CHECK(lazy.fired == 1 && lazy.fired_at >= 1100);

	/* re-arm to earlier moves it */
	weir_timer_arm(&w, &c.t, 5000);
	weir_timer_arm(&w, &c.t, 1200);
	run_to(&w, 1210);
	CHECK(c.fired == 1 && c.fired_at >= 1200 && c.fired_at < 1210);

	/* re-arm from its own callback */
	c.rearm_to = 1300;
	weir_timer_arm(&w, &c.t, 1250);
	run_to(&w, 1310);
	CHECK(c.fired == 3 && c.fired_at >= 1300);

	/* beyond one revolution: never early */
	run_to(&w, far.t.deadline - 1);
	CHECK(far.fired == 0);
	run_to(&w, far.t.deadline + 8);
	CHECK(far.fired == 1);
	CHECK(w.count == 0);
	CHECK(weir_wheel_timeout(&w) == -1);

	/* a big jump in time fires everything due */
	a.cancel_other = b.cancel_other = NULL;
	weir_timer_arm(&w, &a.t, now + 50);
	weir_timer_arm(&w, &b.t, now + 100000);
	now += 200000;
	weir_wheel_advance(&w, now);
	CHECK(a.fired == 1 || a.fired == 2);
	CHECK(!weir_timer_armed(&a.t) && !weir_timer_armed(&b.t));

	/* the wait is bounded by the horizon, and exact for a near timer */
	weir_timer_arm(&w, &a.t, now + 100000);
	CHECK(weir_wheel_timeout(&w) > 0 &&
	      weir_wheel_timeout(&w) <= (int64_t)((WEIR_WHEEL_HORIZON + 1) * WEIR_WHEEL_TICK_MS));
	weir_timer_arm(&w, &b.t, now + 40);
	CHECK(weir_wheel_timeout(&w) >= 40 - (int64_t)WEIR_WHEEL_TICK_MS &&
	      weir_wheel_timeout(&w) <= 40 + (int64_t)WEIR_WHEEL_TICK_MS);

	if (failures) {
		fprintf(stderr, "%d failure(s)\n", failures);
		return 1;
	}
	return 0;
}
