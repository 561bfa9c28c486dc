/* weir: io_uring set-up with feature probing and fallbacks.
 *
 * liburing on Debian 12 is 2.3 while kernels run far newer; weir asks the
 * running kernel what it has and keeps a fallback for each optional feature.
 * weir_uring_init() tries the best setup flags first and steps down on
 * EINVAL; it fills caps with what was found and what is used, which
 * weir_uring_log() prints once at start.
 */
#ifndef WEIR_URING_H
#define WEIR_URING_H

#include <liburing.h>
#include <stdbool.h>

struct weir_uring_caps {
	unsigned setup_flags;           /* flags the ring was created with */
	unsigned features;              /* IORING_FEAT_* reported */
	bool single_issuer;
	bool defer_taskrun;
	bool coop_taskrun;
	bool multishot_accept;          /* kernel >= 5.19 */
	bool multishot_recv;            /* kernel >= 6.0 */
	bool buf_ring;                  /* provided-buffer rings (5.19) */
	bool registered_ring_fd;
	bool ext_arg;                   /* IORING_FEAT_EXT_ARG: timeouts in enter */
	bool send_zc;                   /* IORING_OP_SEND_ZC available (unused on loopback) */
	bool socket_op;                 /* IORING_OP_SOCKET */
	bool recv_bundle;               /* 6.10: found, not used yet */
	bool buf_ring_inc;              /* 6.12 incremental consumption: found, not used yet */
	unsigned kernel_major, kernel_minor;
};

/* 0, or -errno from io_uring_setup (ENOSYS, EPERM: io_uring unavailable). */
int weir_uring_init(struct io_uring *ring, unsigned entries, struct weir_uring_caps *caps);
void weir_uring_log(const struct weir_uring_caps *caps, unsigned nreactors);
/* Explains a failed setup to the operator (io_uring_disabled, seccomp, ...). */
const char *weir_uring_why(int err);

#endif
