/* weir: command line, start-up and signals. Everything else lives in the
 * reactors (src/proxy) and the modules they use. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "weir-version.h"
#include "weir/admin.h"
#include "weir/alloc.h"
#include "weir/conf.h"
#include "weir/proxy.h"
#include "weir/router.h"
#include "weir/uring.h"

#define EXIT_CONFIG 2

static void usage(FILE *f)
{
	fputs("usage: weir [-c FILE] [-t] [--cpus LIST] [--workers N] [--listen ADDR]\n"
	      "            [--upstream HOST:PORT] [-v] [-h]\n"
	      "  -c, --config FILE      YAML configuration (default: the embedded one)\n"
	      "  -t, --test             check the configuration and exit\n"
	      "      --cpus LIST        pin reactors to these CPUs, e.g. 0-3,6\n"
	      "  -w, --workers N        number of reactors (default: one per CPU)\n"
	      "      --listen ADDR      listen here instead (host:port)\n"
	      "      --upstream H:P     without -c: proxy everything to H:P\n"
	      "  -v, --version          print the version\n",
	      f);
}

struct options {
	const char *config;
	const char *cpus;
	const char *listen;
	const char *upstream;
	unsigned workers;
	bool test;
};

static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "test", no_argument, NULL, 't' },
		{ "cpus", required_argument, NULL, 'C' },
		{ "workers", required_argument, NULL, 'w' },
		{ "listen", required_argument, NULL, 'l' },
		{ "upstream", required_argument, NULL, 'u' },
		{ "version", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "c:tw:vh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->config = optarg;
			break;
		case 't':
			o->test = true;
			break;
		case 'C':
			o->cpus = optarg;
			break;
		case 'w': {
			char *end;
			unsigned long n = strtoul(optarg, &end, 10);

			if (*end != '\0' || n == 0 || n > 1024) {
				fprintf(stderr, "weir: --workers: expected 1..1024, got '%s'\n",
					optarg);
				return EXIT_CONFIG;
			}
			o->workers = (unsigned)n;
			break;
		}
		case 'l':
			o->listen = optarg;
			break;
		case 'u':
			o->upstream = optarg;
			break;
		case 'v':
			printf("weir %s\n", WEIR_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return EXIT_CONFIG;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "weir: unexpected argument '%s'\n", argv[optind]);
		return EXIT_CONFIG;
	}
	if (o->config != NULL && o->upstream != NULL) {
		fprintf(stderr, "weir: --upstream applies to the embedded configuration; "
				"with -c, declare upstreams in the file\n");
		return EXIT_CONFIG;
	}
	return 0;
}

/* What the main thread keeps between reloads. */
struct running {
	const struct options *o;
	struct weir_reactor *reactors;
	unsigned workers;
	struct weir_gen *gen;           /* current generation (main's reference) */
	struct weir_addr *listens;      /* the addresses listened on, in order */
	unsigned nlisten;
	int **fds;                      /* [workers][nlisten]: main's copy of the fds */
	struct weir_admin *admin;
	bool override_listen;           /* --listen with -c: the file's listen is ignored */
};

static void refuse_reload(struct running *run, const char *why)
{
	fprintf(stderr, "weir: reload refused, configuration %" PRIu64 " keeps serving: %s\n",
		run->gen->id, why);
	weir_admin_reload_failed(run->admin, why);
}

/* SIGHUP: load, check, build, then hand the new generation to every
 * reactor and wait until each runs on it. Nothing changes unless the whole
 * config loads and every new listener opens. */
static void reload(struct running *run)
{
	const struct options *o = run->o;
	struct weir_conf *conf = NULL;
	struct weir_router *router;
	struct weir_gen *g;
	const struct weir_addr *want;
	unsigned nwant;
	int **fds;
	char err[512];
	int ret;

	if (o->config != NULL)
		ret = weir_conf_load_file(o->config, &conf, err, sizeof(err));
	else
		ret = weir_conf_default(o->listen, o->upstream, &conf, err, sizeof(err));
	if (ret != 0) {
		refuse_reload(run, err);
		return;
	}
	if ((conf->workers != 0 && conf->workers != run->workers && o->workers == 0) ||
	    (o->cpus == NULL && conf->cpus_set != run->gen->conf->cpus_set) ||
	    (o->cpus == NULL && conf->cpus_set && !CPU_EQUAL(&conf->cpus, &run->gen->conf->cpus)))
		fprintf(stderr, "weir: reload: workers and cpus changes take a restart; "
				"keeping %u reactor%s as they are\n", run->workers,
			run->workers == 1 ? "" : "s");
	if (conf->admin_set != run->gen->conf->admin_set ||
	    (conf->admin_set && !weir_addr_eq(&conf->admin, &run->gen->conf->admin)))
		fprintf(stderr, "weir: reload: the admin address changes with a restart only; "
				"still on %s\n", run->gen->conf->admin_set ?
				run->gen->conf->admin.text : "(none)");
	router = weir_router_new(conf);
	if (router == NULL) {
		weir_conf_free(conf);
		refuse_reload(run, "out of memory building the router");
		return;
	}
	weir_metrics_register(conf);

	/* listeners: the ones that stay keep their fds (no connection in
	 * their queues is lost); new addresses get one fd per reactor */
	want = run->override_listen ? run->listens : conf->listens;
	nwant = run->override_listen ? run->nlisten : conf->nlistens;
	fds = calloc(run->workers, sizeof(*fds));
	for (unsigned i = 0; fds != NULL && i < run->workers; i++) {
		fds[i] = calloc(nwant + 1, sizeof(int));
		if (fds[i] == NULL)
			goto oom;
		for (unsigned j = 0; j < nwant; j++)
			fds[i][j] = -1;
		for (unsigned j = 0; j < nwant; j++) {
			for (unsigned k = 0; k < run->nlisten && fds[i][j] < 0; k++)
				if (weir_addr_eq(&want[j], &run->listens[k]))
					fds[i][j] = run->fds[i][k];
			if (fds[i][j] < 0) {
				int fd = weir_listener_open(&want[j]);

				if (fd < 0) {
					snprintf(err, sizeof(err), "cannot listen on %s: %s",
						 want[j].text, strerror(-fd));
					goto fail;
				}
				fds[i][j] = fd;
			}
		}
	}
	if (fds == NULL)
		goto oom;

	g = calloc(1, sizeof(*g));
	if (g == NULL)
		goto oom;
	g->conf = conf;
	g->router = router;
	g->id = run->gen->id + 1;
	g->refs = run->workers + 1;
	for (unsigned i = 0; i < run->workers; i++) {
		struct weir_reactor *r = &run->reactors[i];
		unsigned acks = __atomic_load_n(&r->reload_acks, __ATOMIC_ACQUIRE);
		int *mine = malloc((nwant + 1) * sizeof(int));

		if (mine == NULL) {
			fprintf(stderr, "weir: reload: out of memory\n");
			exit(1);
		}
		memcpy(mine, fds[i], nwant * sizeof(int));
		weir_reactor_reload(r, g, fds[i], nwant);
		fds[i] = mine;
		/* one reactor at a time: each swaps within one loop iteration */
		for (int ms = 0; __atomic_load_n(&r->reload_acks, __ATOMIC_ACQUIRE) == acks; ms++) {
			if (ms == 10000)
				fprintf(stderr, "weir: reload: reactor %u has not taken the new "
						"configuration after 10 s; waiting\n", i);
			usleep(1000);
		}
	}
	for (unsigned i = 0; i < run->workers; i++)
		free(run->fds[i]);
	free(run->fds);
	run->fds = fds;
	if (!run->override_listen) {
		struct weir_addr *copy = calloc(nwant + 1, sizeof(*copy));

		if (copy != NULL) {
			memcpy(copy, want, nwant * sizeof(*copy));
			free(run->listens);
			run->listens = copy;
			run->nlisten = nwant;
		}
	}
	weir_admin_set_conf(run->admin, conf);
	weir_gen_put(run->gen);
	run->gen = g;
	fprintf(stderr, "weir: reload: configuration %" PRIu64 " (%s) is live: %u listener%s, "
			"%u route%s, %u upstream%s, %u agent%s\n", g->id, conf->source, nwant,
		nwant == 1 ? "" : "s", conf->nroutes, conf->nroutes == 1 ? "" : "s",
		conf->nupstreams, conf->nupstreams == 1 ? "" : "s", conf->nagents,
		conf->nagents == 1 ? "" : "s");
	return;

oom:
	snprintf(err, sizeof(err), "out of memory");
fail:
	/* close what was opened for this attempt, keep what is in use */
	for (unsigned i = 0; fds != NULL && i < run->workers && fds[i] != NULL; i++) {
		for (unsigned j = 0; j < nwant; j++) {
			bool used = false;

			for (unsigned k = 0; k < run->nlisten; k++)
				used |= fds[i][j] == run->fds[i][k];
			if (fds[i][j] >= 0 && !used)
				close(fds[i][j]);
		}
		free(fds[i]);
	}
	free(fds);
	weir_router_free(router);
	weir_conf_free(conf);
	refuse_reload(run, err);
}

/* The n-th CPU of set (wrapping). */
static int nth_cpu(const cpu_set_t *set, unsigned n)
{
	unsigned count = (unsigned)CPU_COUNT(set), seen = 0;

	n %= count;
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (CPU_ISSET(cpu, set) && seen++ == n)
			return cpu;
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct weir_conf *conf = NULL;
	struct weir_router *router;
	struct weir_gen *gen;
	struct running run = { .o = &o };
	struct weir_reactor *reactors;
	struct weir_uring_caps caps;
	struct weir_addr listen_override;
	const struct weir_addr *listens;
	unsigned nlisten, workers;
	struct io_uring probe;
	cpu_set_t cpus;
	bool pin;
	char err[512];
	sigset_t sigs;
	sem_t ready;
	unsigned started = 0;
	struct weir_admin *admin = NULL;
	int ret, status = 0;

	ret = parse_args(argc, argv, &o);
	if (ret != 0)
		return ret;
	if (o.config != NULL)
		ret = weir_conf_load_file(o.config, &conf, err, sizeof(err));
	else
		ret = weir_conf_default(o.listen, o.upstream, &conf, err, sizeof(err));
	if (ret != 0) {
		fprintf(stderr, "weir: %s\n", err);
		return EXIT_CONFIG;
	}
	listens = conf->listens;
	nlisten = conf->nlistens;
	if (o.listen != NULL && o.config != NULL) {
		if (weir_addr_parse(o.listen, &listen_override) != 0) {
			fprintf(stderr, "weir: --listen: invalid address '%s'\n", o.listen);
			weir_conf_free(conf);
			return EXIT_CONFIG;
		}
		listens = &listen_override;
		nlisten = 1;
	}
	pin = true;
	if (o.cpus != NULL) {
		if (weir_cpulist_parse(o.cpus, &cpus) != 0 || CPU_COUNT(&cpus) == 0) {
			fprintf(stderr, "weir: --cpus: invalid CPU list '%s'\n", o.cpus);
			weir_conf_free(conf);
			return EXIT_CONFIG;
		}
	} else if (conf->cpus_set) {
		cpus = conf->cpus;
	} else {
		/* No explicit list: use the inherited affinity. */
		if (sched_getaffinity(0, sizeof(cpus), &cpus) != 0) {
			CPU_ZERO(&cpus);
			CPU_SET(0, &cpus);
			pin = false;
		}
	}
	workers = o.workers ? o.workers : conf->workers ? conf->workers : (unsigned)CPU_COUNT(&cpus);
	if (o.test) {
		printf("weir: configuration %s is valid (%u reactor%s, %u listener%s, %u route%s)\n",
		       conf->source, workers, workers == 1 ? "" : "s", nlisten,
		       nlisten == 1 ? "" : "s", conf->nroutes, conf->nroutes == 1 ? "" : "s");
		weir_conf_free(conf);
		return 0;
	}

	ret = weir_uring_init(&probe, 8, &caps);
	if (ret < 0) {
		fprintf(stderr, "weir: cannot use io_uring: %s\n", weir_uring_why(ret));
		weir_conf_free(conf);
		return 1;
	}
	io_uring_queue_exit(&probe);
	weir_uring_log(&caps, workers);

	router = weir_router_new(conf);
	gen = calloc(1, sizeof(*gen));
	if (router == NULL || gen == NULL) {
		fprintf(stderr, "weir: cannot build the router\n");
		weir_router_free(router);
		weir_conf_free(conf);
		return 1;
	}
	weir_metrics_register(conf);
	gen->conf = conf;
	gen->router = router;
	gen->id = 1;
	gen->refs = workers + 1;        /* each reactor's, and main's */

	/* Reactors inherit this mask: signals are taken here, synchronously. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	reactors = calloc(workers, sizeof(*reactors));
	if (reactors == NULL || sem_init(&ready, 0, 0) != 0) {
		fprintf(stderr, "weir: out of memory\n");
		return 1;
	}
	for (unsigned i = 0; i < workers; i++) {
		reactors[i].wake_fd = -1;
		reactors[i].gen = gen;  /* taken over by the reactor once started */
	}
	for (unsigned i = 0; i < workers; i++) {
		struct weir_reactor *r = &reactors[i];

		r->id = i;
		r->cpu = pin ? nth_cpu(&cpus, i) : -1;
		r->ready = &ready;
		r->nlisten = nlisten;
		r->listen_fds = calloc(nlisten, sizeof(int));
		r->wake_fd = eventfd(0, EFD_CLOEXEC);
		if (r->listen_fds == NULL || r->wake_fd < 0) {
			fprintf(stderr, "weir: out of resources: %s\n", strerror(errno));
			status = 1;
			goto stop;
		}
		for (unsigned j = 0; j < nlisten; j++) {
			int fd = weir_listener_open(&listens[j]);

			if (fd < 0) {
				fprintf(stderr, "weir: cannot listen on %s: %s\n", listens[j].text,
					strerror(-fd));
				status = 1;
				goto stop;
			}
			r->listen_fds[j] = fd;
		}
		ret = pthread_create(&r->thread, NULL, weir_reactor_thread, r);
		if (ret != 0) {
			fprintf(stderr, "weir: cannot start reactor %u: %s\n", i, strerror(ret));
			status = 1;
			goto stop;
		}
		sem_wait(&ready);
		if (r->init_error != 0) {
			fprintf(stderr, "weir: reactor %u: %s\n", i, weir_uring_why(r->init_error));
			pthread_join(r->thread, NULL);
			status = 1;
			goto stop;
		}
		started++;
	}
	/* An admin address from a config file must be served; the embedded
	 * default's 127.0.0.1:9090 may be taken (another weir): warn only. */
	if (weir_admin_start(&admin, conf, reactors, workers, err, sizeof(err)) != 0) {
		fprintf(stderr, "weir: admin: %s\n", err);
		if (o.config != NULL) {
			status = 1;
			goto stop;
		}
	}
	run.reactors = reactors;
	run.workers = workers;
	run.gen = gen;
	run.admin = admin;
	run.override_listen = o.listen != NULL && o.config != NULL;
	run.listens = calloc(nlisten + 1, sizeof(*run.listens));
	run.fds = calloc(workers, sizeof(*run.fds));
	if (run.listens == NULL || run.fds == NULL) {
		fprintf(stderr, "weir: out of memory\n");
		status = 1;
		goto stop;
	}
	memcpy(run.listens, listens, nlisten * sizeof(*listens));
	run.nlisten = nlisten;
	for (unsigned i = 0; i < workers; i++) {
		run.fds[i] = malloc((nlisten + 1) * sizeof(int));
		if (run.fds[i] == NULL) {
			fprintf(stderr, "weir: out of memory\n");
			status = 1;
			goto stop;
		}
		memcpy(run.fds[i], reactors[i].listen_fds, nlisten * sizeof(int));
	}
	weir_admin_set_reload(admin, true);
	fprintf(stderr, "weir: ready: %u reactor%s, listening on", workers, workers == 1 ? "" : "s");
	for (unsigned j = 0; j < nlisten; j++)
		fprintf(stderr, " %s", listens[j].text);
	if (admin != NULL)
		fprintf(stderr, ", admin on %s", conf->admin.text);
	fprintf(stderr, "\n");

	for (;;) {
		int sig;

		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGTERM || sig == SIGINT) {
			fprintf(stderr, "weir: %s: stopping (in-flight requests have %u ms)\n",
				sig == SIGTERM ? "SIGTERM" : "SIGINT", run.gen->conf->shutdown_timeout_ms);
			break;
		}
		if (sig == SIGHUP) {
			fprintf(stderr, "weir: SIGHUP: reloading %s\n",
				o.config != NULL ? o.config : "the embedded configuration");
			reload(&run);
		} else if (sig == SIGUSR1) {
			for (unsigned i = 0; i < workers; i++)
				weir_reactor_reopen_logs(&reactors[i]);
		}
	}
stop:
	/* Reactors that never ran leave their listeners to process exit. */
	for (unsigned i = 0; i < started; i++)
		weir_reactor_stop(&reactors[i]);
	for (unsigned i = 0; i < started; i++)
		pthread_join(reactors[i].thread, NULL);
	/* after the reactors: it reads them until here (health while draining) */
	weir_admin_stop(admin);
	for (unsigned i = 0; i < workers; i++) {
		if (reactors[i].wake_fd >= 0)
			close(reactors[i].wake_fd);
		free(reactors[i].listen_fds);
	}
	if (status == 0)
		fprintf(stderr, "weir: stopped\n");
	/* reactors that never started still hold their reference */
	for (unsigned i = 0; i < workers; i++)
		if (reactors[i].gen != NULL)
			weir_gen_put(reactors[i].gen);
	free(reactors);
	for (unsigned i = 0; run.fds != NULL && i < workers; i++)
		free(run.fds[i]);
	free(run.fds);
	free(run.listens);
	weir_gen_put(run.gen != NULL ? run.gen : gen);
	return status;
}
