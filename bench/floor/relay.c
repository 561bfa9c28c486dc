/*
 * weir-floor: the "kernel floor" of bench/load.py — a minimal io_uring TCP
 * relay, to show how much of a proxy's cost is the kernel's socket work.
 *
 *   weir-floor --listen 127.0.0.1:8081 --upstream 127.0.0.1:9000 [--cpu 0]
 *
 * What it does: one thread, one io_uring (SINGLE_ISSUER | DEFER_TASKRUN when
 * the kernel has them, as weir), multishot accept. Each accepted client
 * connection gets its own upstream connection, opened at accept time and
 * kept for the client connection's life (1:1, so "keep-alive to the origin"
 * holds as long as the client keeps its connection). Bytes are relayed in
 * both directions the way weir moves them: a multishot receive into a ring of
 * provided 16 KiB buffers; what is queued is sent as it is (no copy) to the
 * other side in one operation (IORING_OP_SEND for one buffer, SENDMSG with an
 * iovec for several) and each buffer returns to the ring once sent; more than
 * 16 buffers queued in one direction pause its receive (cancel), fewer than 4
 * resume it; ENOBUFS parks the receive until buffers come back. All
 * operations of a loop iteration go to the kernel in one
 * io_uring_submit_and_wait.
 *
 * What it does not do: no HTTP at all (no parsing, no routing, no header
 * rewriting, no request/response framing), no connection pooling or reuse
 * across clients, no timeouts, no flow control beyond one buffer in flight per
 * direction, no load balancing. It is therefore not a proxy: it only does the
 * socket work a proxy cannot avoid for the same exchange (two receives and two
 * sends per request/response pair, the accept, the upstream connect), so its
 * CPU time per request is a floor for what an HTTP/1.1 proxy on io_uring can
 * reach on this kernel.
 *
 * Exit: SIGTERM/SIGINT stop it (exit 0); setup errors exit 2.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define BUFSZ (16u * 1024u)
#define NBUFS 4096u             /* provided buffers (64 MiB), one ring */
#define BGID 0
#define Q_HIGH 16u              /* pause receiving above (256 KiB, as weir) */
#define Q_LOW 4u                /* resume below */
#define SEND_IOV 32u            /* buffers per sendmsg */

enum op { OP_ACCEPT = 1, OP_CONNECT, OP_RECV, OP_SEND, OP_CANCEL };

struct pair;

struct seg {
	uint16_t bid;
	uint32_t len, off;
};

/* One direction: multishot receive on src into provided buffers, the buffers
 * queued and sent on dst in order, each returned to the ring once sent. */
struct half {
	struct pair *p;
	int src, dst;
	bool recv_armed, paused, sending, starved, eof;
	unsigned head, count, cap;      /* q: a ring of cap (power of 2) */
	struct seg *q;
	struct half *starved_next;
	struct msghdr msg;
	struct iovec iov[SEND_IOV];
};

struct pair {
	int client, upstream;
	unsigned ops;           /* operations in flight */
	bool closing;
	struct half up, down;   /* client -> upstream, upstream -> client */
	struct pair *prev, *next;       /* all open pairs, freed at exit */
};

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static char *bufs;
static struct half *starved;    /* receives stopped by ENOBUFS */
static struct sockaddr_in up_addr;
static int listen_fd;
static volatile sig_atomic_t stop_flag;
static struct pair *pairs;      /* open pairs */

static void die(const char *what, int err)
{
	fprintf(stderr, "weir-floor: %s: %s\n", what, strerror(err));
	exit(2);
}

static struct io_uring_sqe *sqe_get(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

	if (sqe == NULL) {
		io_uring_submit(&ring);
		sqe = io_uring_get_sqe(&ring);
		if (sqe == NULL)
			die("io_uring_get_sqe", EBUSY);
	}
	return sqe;
}

/* user_data: pointer | op in the low 3 bits (struct half/pair are 8-aligned). */
static uint64_t tag(void *ptr, enum op op)
{
	return (uint64_t)(uintptr_t)ptr | (uint64_t)op;
}

static void buf_return(uint16_t bid)
{
	io_uring_buf_ring_add(br, bufs + (size_t)bid * BUFSZ, BUFSZ, bid,
			      io_uring_buf_ring_mask(NBUFS), 0);
	io_uring_buf_ring_advance(br, 1);
}

static void arm_accept(void)
{
	struct io_uring_sqe *sqe = sqe_get();

	io_uring_prep_multishot_accept(sqe, listen_fd, NULL, NULL, 0);
	io_uring_sqe_set_data64(sqe, tag(NULL, OP_ACCEPT));
}

static void arm_recv(struct half *h)
{
	struct io_uring_sqe *sqe;

	if (h->recv_armed || h->paused || h->starved || h->eof || h->p->closing)
		return;
	sqe = sqe_get();
	io_uring_prep_recv_multishot(sqe, h->src, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, tag(h, OP_RECV));
	h->recv_armed = true;
	h->p->ops++;
}

/* Send everything queued in one operation: IORING_OP_SEND for one buffer,
 * SENDMSG with an iovec per buffer for several (weir does the same). */
static void send_queue(struct half *h)
{
	struct io_uring_sqe *sqe;
	unsigned n;

	if (h->sending || h->count == 0 || h->p->closing)
		return;
	n = h->count < SEND_IOV ? h->count : SEND_IOV;
	sqe = sqe_get();
	if (n == 1) {
		struct seg *s = &h->q[h->head];

		io_uring_prep_send(sqe, h->dst, bufs + (size_t)s->bid * BUFSZ + s->off,
				   s->len - s->off, MSG_NOSIGNAL);
	} else {
		for (unsigned i = 0; i < n; i++) {
			struct seg *s = &h->q[(h->head + i) & (h->cap - 1)];

			h->iov[i].iov_base = bufs + (size_t)s->bid * BUFSZ + s->off;
			h->iov[i].iov_len = s->len - s->off;
		}
		memset(&h->msg, 0, sizeof(h->msg));
		h->msg.msg_iov = h->iov;
		h->msg.msg_iovlen = n;
		io_uring_prep_sendmsg(sqe, h->dst, &h->msg, MSG_NOSIGNAL);
	}
	io_uring_sqe_set_data64(sqe, tag(h, OP_SEND));
	h->sending = true;
	h->p->ops++;
}

/* Shut both sockets down: pending receives complete, then the last
 * completion frees the pair. */
static void pair_close(struct pair *p)
{
	if (!p->closing) {
		p->closing = true;
		shutdown(p->client, SHUT_RDWR);
		if (p->upstream >= 0)
			shutdown(p->upstream, SHUT_RDWR);
	}
}

static void unstarve(struct half *h)
{
	for (struct half **pp = &starved; *pp != NULL; pp = &(*pp)->starved_next) {
		if (*pp == h) {
			*pp = h->starved_next;
			break;
		}
	}
	h->starved = false;
}

static void pair_free(struct pair *p)
{
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		pairs = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	for (int i = 0; i < 2; i++)
		free(i ? p->down.q : p->up.q);
	close(p->client);
	if (p->upstream >= 0)
		close(p->upstream);
	free(p);
}

static void pair_put(struct pair *p)
{
	if (!p->closing || p->ops != 0)
		return;
	for (int i = 0; i < 2; i++) {
		struct half *h = i ? &p->down : &p->up;

		while (h->count > 0) {
			buf_return(h->q[h->head].bid);
			h->head = (h->head + 1) & (h->cap - 1);
			h->count--;
		}
		if (h->starved)
			unstarve(h);
	}
	pair_free(p);
}

static void on_accept(int res)
{
	struct pair *p;
	struct io_uring_sqe *sqe;
	int fd, one = 1;

	if (res < 0)
		return;
	p = calloc(1, sizeof(*p));
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p == NULL || fd < 0) {
		free(p);
		if (fd >= 0)
			close(fd);
		close(res);
		return;
	}
	setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	p->client = res;
	p->upstream = fd;
	p->up = (struct half){ .p = p, .src = res, .dst = fd };
	p->down = (struct half){ .p = p, .src = fd, .dst = res };
	p->next = pairs;
	if (pairs != NULL)
		pairs->prev = p;
	pairs = p;
	sqe = sqe_get();
	io_uring_prep_connect(sqe, fd, (struct sockaddr *)&up_addr, sizeof(up_addr));
	io_uring_sqe_set_data64(sqe, tag(p, OP_CONNECT));
	p->ops++;
}

/* Completions already posted when a pause is asked for still carry data, so
 * the queue grows instead of dropping anything. */
static int q_grow(struct half *h)
{
	unsigned ncap = h->cap ? h->cap * 2 : 32;
	struct seg *n = malloc(ncap * sizeof(*n));

	if (n == NULL)
		return -1;
	for (unsigned i = 0; i < h->count; i++)
		n[i] = h->q[(h->head + i) & (h->cap - 1)];
	free(h->q);
	h->q = n;
	h->cap = ncap;
	h->head = 0;
	return 0;
}

static void on_recv(struct half *h, struct io_uring_cqe *cqe)
{
	struct pair *p = h->p;
	int res = cqe->res;

	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		h->recv_armed = false;
		p->ops--;
	}
	if (cqe->flags & IORING_CQE_F_BUFFER) {
		uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);

		if (res <= 0 || p->closing || (h->count == h->cap && q_grow(h) != 0)) {
			buf_return(bid);
			if (res > 0)
				pair_close(p);
		} else {
			h->q[(h->head + h->count) & (h->cap - 1)] =
				(struct seg){ .bid = bid, .len = (uint32_t)res };
			h->count++;
			send_queue(h);
			if (h->count > Q_HIGH && h->recv_armed && !h->paused) {
				struct io_uring_sqe *sqe = sqe_get();

				/* Pause: cancel the multishot receive. */
				h->paused = true;
				io_uring_prep_cancel64(sqe, tag(h, OP_RECV), 0);
				io_uring_sqe_set_data64(sqe, tag(NULL, OP_CANCEL));
			}
		}
	} else if (res == -ENOBUFS && !p->closing) {
		if (!h->starved) {
			h->starved = true;
			h->starved_next = starved;
			starved = h;
		}
	} else if (res == 0 && h->count > 0) {
		h->eof = true;          /* close once what was received is sent */
	} else if (res == 0 || (res < 0 && res != -ECANCELED)) {
		pair_close(p);
	}
	if (!h->recv_armed && !p->closing && !h->eof)
		arm_recv(h);
	pair_put(p);
}

static void on_send(struct half *h, int res)
{
	struct pair *p = h->p;

	p->ops--;
	h->sending = false;
	if (res < 0 || p->closing) {
		pair_close(p);
	} else {
		uint32_t sent = (uint32_t)res;

		/* Return every buffer sent whole; a partial one stays first. */
		while (h->count > 0 && sent > 0) {
			struct seg *s = &h->q[h->head];
			uint32_t left = s->len - s->off, take = sent < left ? sent : left;

			s->off += take;
			sent -= take;
			if (s->off < s->len)
				break;
			buf_return(s->bid);
			h->head = (h->head + 1) & (h->cap - 1);
			h->count--;
		}
		send_queue(h);
		if (h->eof && h->count == 0)
			pair_close(p);
		else if (h->paused && h->count < Q_LOW) {
			h->paused = false;
			arm_recv(h);
		}
	}
	pair_put(p);
}

static void handle(struct io_uring_cqe *cqe)
{
	uint64_t d = io_uring_cqe_get_data64(cqe);
	enum op op = (enum op)(d & 7u);
	void *ptr = (void *)(uintptr_t)(d & ~(uint64_t)7u);

	switch (op) {
	case OP_ACCEPT:
		on_accept(cqe->res);
		if (!(cqe->flags & IORING_CQE_F_MORE) && !stop_flag)
			arm_accept();
		return;
	case OP_CONNECT: {
		struct pair *p = ptr;

		p->ops--;
		if (cqe->res < 0 || p->closing) {
			pair_close(p);
		} else {
			arm_recv(&p->up);
			arm_recv(&p->down);
		}
		pair_put(p);
		return;
	}
	case OP_RECV:
		on_recv(ptr, cqe);
		return;
	case OP_SEND:
		on_send(ptr, cqe->res);
		return;
	case OP_CANCEL:
		return;
	}
}

/* Buffers came back: receives stopped by ENOBUFS start again. */
static void rearm_starved(void)
{
	struct half *h = starved;

	starved = NULL;
	while (h != NULL) {
		struct half *next = h->starved_next;

		h->starved = false;
		h->starved_next = NULL;
		arm_recv(h);
		h = next;
	}
}

static void setup_buffers(void)
{
	struct io_uring_buf_reg reg;
	size_t ring_sz = NBUFS * sizeof(struct io_uring_buf);
	int ret;

	br = mmap(NULL, ring_sz, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	bufs = mmap(NULL, (size_t)NBUFS * BUFSZ, PROT_READ | PROT_WRITE,
		    MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (br == MAP_FAILED || bufs == MAP_FAILED)
		die("mmap", errno);
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)br;
	reg.ring_entries = NBUFS;
	reg.bgid = BGID;
	ret = io_uring_register_buf_ring(&ring, &reg, 0);
	if (ret < 0)
		die("io_uring_register_buf_ring", -ret);
	io_uring_buf_ring_init(br);
	for (unsigned i = 0; i < NBUFS; i++)
		io_uring_buf_ring_add(br, bufs + (size_t)i * BUFSZ, BUFSZ, (unsigned short)i,
				      io_uring_buf_ring_mask(NBUFS), (int)i);
	io_uring_buf_ring_advance(br, (int)NBUFS);
}

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static int parse_addr(const char *s, struct sockaddr_in *a)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	size_t n;

	if (colon == NULL || (n = (size_t)(colon - s)) >= sizeof(host))
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)atoi(colon + 1));
	return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "upstream", required_argument, NULL, 'u' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct io_uring_params params;
	struct sockaddr_in la;
	const char *listen_s = "127.0.0.1:8081", *up_s = NULL;
	int ch, cpu = -1, one = 1, ret;
	struct sigaction sa;

	while ((ch = getopt_long(argc, argv, "l:u:c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l': listen_s = optarg; break;
		case 'u': up_s = optarg; break;
		case 'c': cpu = atoi(optarg); break;
		default:
			fputs("usage: weir-floor --upstream IP:PORT [--listen IP:PORT] [--cpu N]\n",
			      ch == 'h' ? stdout : stderr);
			return ch == 'h' ? 0 : 2;
		}
	}
	if (up_s == NULL || parse_addr(up_s, &up_addr) != 0 || parse_addr(listen_s, &la) != 0) {
		fputs("weir-floor: --upstream and --listen take IPv4:PORT\n", stderr);
		return 2;
	}
	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) != 0)
			die("sched_setaffinity", errno);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;      /* no SA_RESTART: the wait returns EINTR */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0)
		die("socket", errno);
	setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(listen_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (bind(listen_fd, (struct sockaddr *)&la, sizeof(la)) != 0)
		die("bind", errno);
	if (listen(listen_fd, 4096) != 0)
		die("listen", errno);

	memset(&params, 0, sizeof(params));
	params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	params.cq_entries = 16384;
	ret = io_uring_queue_init_params(4096, &ring, &params);
	if (ret == -EINVAL) {
		memset(&params, 0, sizeof(params));
		params.flags = IORING_SETUP_CQSIZE;
		params.cq_entries = 16384;
		ret = io_uring_queue_init_params(4096, &ring, &params);
	}
	if (ret < 0)
		die("io_uring_queue_init", -ret);
	setup_buffers();
	arm_accept();
	printf("weir-floor listening on %s, relaying to %s\n", listen_s, up_s);
	fflush(stdout);

	while (!stop_flag) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;

		ret = io_uring_submit_and_wait(&ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
			die("io_uring_submit_and_wait", -ret);
		io_uring_for_each_cqe(&ring, head, cqe) {
			handle(cqe);
			n++;
		}
		io_uring_cq_advance(&ring, n);
		if (starved != NULL)
			rearm_starved();
	}
	/* The ring goes first: nothing the kernel holds points into a pair
	 * after that. */
	io_uring_queue_exit(&ring);
	while (pairs != NULL)
		pair_free(pairs);
	return 0;
}
