#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "weir/uring.h"

static void kernel_version(struct weir_uring_caps *caps)
{
	struct utsname u;

	if (uname(&u) == 0)
		sscanf(u.release, "%u.%u", &caps->kernel_major, &caps->kernel_minor);
}

static bool kernel_at_least(const struct weir_uring_caps *caps, unsigned maj, unsigned min)
{
	return caps->kernel_major > maj || (caps->kernel_major == maj && caps->kernel_minor >= min);
}

int weir_uring_init(struct io_uring *ring, unsigned entries, struct weir_uring_caps *caps)
{
	/* Step down from the best set of flags; each level drops what an older
	 * kernel rejects with EINVAL. */
	static const unsigned tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL,
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
		IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
		0,
	};
	struct io_uring_params p;
	int ret = -EINVAL;

	memset(caps, 0, sizeof(*caps));
	kernel_version(caps);
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		memset(&p, 0, sizeof(p));
		/* Multishot recv can post many completions per submission: a CQ
		 * four times the SQ keeps overflow (handled by NODROP, but slow)
		 * rare. */
		p.flags = tries[i] | IORING_SETUP_CQSIZE;
		p.cq_entries = entries * 4;
		ret = io_uring_queue_init_params(entries, ring, &p);
		if (ret == 0) {
			caps->setup_flags = p.flags;
			break;
		}
		if (ret != -EINVAL)
			return ret;
	}
	if (ret != 0)
		return ret;
	caps->features = p.features;
	caps->single_issuer = (caps->setup_flags & IORING_SETUP_SINGLE_ISSUER) != 0;
	caps->defer_taskrun = (caps->setup_flags & IORING_SETUP_DEFER_TASKRUN) != 0;
	caps->coop_taskrun = (caps->setup_flags & IORING_SETUP_COOP_TASKRUN) != 0;
	caps->ext_arg = (p.features & IORING_FEAT_EXT_ARG) != 0;
	caps->registered_ring_fd = io_uring_register_ring_fd(ring) == 1;

	struct io_uring_probe *probe = io_uring_get_probe_ring(ring);

	if (probe != NULL) {
		caps->send_zc = io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
		caps->socket_op = io_uring_opcode_supported(probe, IORING_OP_SOCKET);
		io_uring_free_probe(probe);
	}
	caps->multishot_accept = kernel_at_least(caps, 5, 19);
	caps->buf_ring = kernel_at_least(caps, 5, 19);
	caps->multishot_recv = kernel_at_least(caps, 6, 0);
	caps->recv_bundle = kernel_at_least(caps, 6, 10);
	caps->buf_ring_inc = kernel_at_least(caps, 6, 12);
	return 0;
}

void weir_uring_log(const struct weir_uring_caps *c, unsigned nreactors)
{
	fprintf(stderr,
		"weir: io_uring on kernel %u.%u, %u reactor%s\n"
		"weir:   used:  single_issuer=%s defer_taskrun=%s coop_taskrun=%s "
		"registered_ring_fd=%s ext_arg=%s buf_ring=%s multishot_accept=%s "
		"multishot_recv=%s\n"
		"weir:   found, not used: send_zc=%s (loopback copies anyway) socket_op=%s "
		"recv_bundle=%s buf_ring_incremental=%s\n",
		c->kernel_major, c->kernel_minor, nreactors, nreactors == 1 ? "" : "s",
		c->single_issuer ? "yes" : "no", c->defer_taskrun ? "yes" : "no",
		c->coop_taskrun ? "yes" : "no", c->registered_ring_fd ? "yes" : "no",
		c->ext_arg ? "yes" : "no", c->buf_ring ? "yes" : "no",
		c->multishot_accept ? "yes" : "no (one accept per completion)",
		c->multishot_recv ? "yes" : "no (one recv per completion)",
		c->send_zc ? "yes" : "no", c->socket_op ? "yes" : "no",
		c->recv_bundle ? "yes" : "no", c->buf_ring_inc ? "yes" : "no");
}

const char *weir_uring_why(int err)
{
	switch (-err) {
	case ENOSYS:
		return "the kernel has no io_uring (ENOSYS): weir needs Linux >= 5.19 with io_uring";
	case EPERM:
		return "io_uring is disabled (EPERM): check /proc/sys/kernel/io_uring_disabled "
		       "(must be 0, or 1 with CAP_SYS_ADMIN / io_uring_group) and any seccomp "
		       "filter (containers often block io_uring_setup)";
	case ENOMEM:
		return "not enough locked memory for the ring (ENOMEM): raise RLIMIT_MEMLOCK "
		       "(ulimit -l) or use a smaller ring";
	default:
		return strerror(-err);
	}
}
