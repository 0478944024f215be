/*
 * krust-mockcluster: librdkafka's built-in mock Kafka cluster as a process
 * that the krust test fixtures drive over a pipe.
 *
 * Why a separate C program: the mock lives inside librdkafka, and no krust
 * library may link librdkafka. The test fixture (crates/krust-testkit,
 * MockCluster) starts this program, reads its address lines, and writes fault
 * commands to its stdin. End of stdin means the owning test process is gone,
 * so the cluster exits with it (no orphans).
 *
 * Built by scripts/setup.sh:
 *   gcc -O2 -Wall -o .deps/bin/krust-mockcluster mockcluster.c $(pkg-config --cflags --libs rdkafka)
 *
 * Usage: krust-mockcluster [-b BROKERS] [-t TOPIC:PARTITIONS[:REPLICATION]]...
 *
 * Start-up output, one line each, then "READY":
 *   LIBRDKAFKA=<version>
 *   BROKER=<id> <host:port>        one per broker, ids 1..BROKERS
 *   BOOTSTRAP=<host:port,...>
 *
 * Commands on stdin, one per line; every command gets exactly one answer
 * line, "OK <command>" or "ERR <command>: <reason>":
 *   down ID | up ID                  take broker ID down / bring it back
 *   leader TOPIC PARTITION ID        move a partition leader (-1: none)
 *   follower TOPIC PARTITION ID      set the preferred read replica
 *   coord group|transaction KEY ID   move the coordinator of KEY
 *   err APIKEY ERR [ERR...]          queue error codes for the next requests
 *                                    of APIKEY (any broker); ERR is a number
 *                                    or a librdkafka name (NOT_COORDINATOR)
 *   clear APIKEY                     drop the queued errors of APIKEY
 *   rtt ID MS                        add MS of round-trip delay to broker ID
 *   topic NAME PARTITIONS [REPL]     create a topic
 *   topicerr NAME ERR                error reported for NAME in Metadata
 *   apiversion APIKEY MIN MAX        narrow an advertised version range
 *   quit                             stop the cluster
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_ARGS 64

static volatile sig_atomic_t stopping = 0;

static void on_signal(int sig) {
        (void)sig;
        stopping = 1;
}

/* Accepts a decimal code or a librdkafka error name, with or without the
 * RD_KAFKA_RESP_ERR_ prefix. */
static int lookup_error(const char *text, rd_kafka_resp_err_t *code) {
        char *end = NULL;
        long n = strtol(text, &end, 10);
        if (*text != '\0' && *end == '\0') {
                *code = (rd_kafka_resp_err_t)n;
                return 1;
        }
        if (!strncasecmp(text, "RD_KAFKA_RESP_ERR_", 18))
                text += 18;
        const struct rd_kafka_err_desc *descs;
        size_t count;
        rd_kafka_get_err_descs(&descs, &count);
        for (size_t i = 0; i < count; i++) {
                if (descs[i].name && !strcasecmp(descs[i].name, text)) {
                        *code = descs[i].code;
                        return 1;
                }
        }
        return 0;
}

static int parse_int(const char *text, int *out) {
        char *end = NULL;
        long n = strtol(text, &end, 10);
        if (*text == '\0' || *end != '\0')
                return 0;
        *out = (int)n;
        return 1;
}

static void answer(const char *cmd, rd_kafka_resp_err_t err, const char *why) {
        if (why)
                printf("ERR %s: %s\n", cmd, why);
        else if (err)
                printf("ERR %s: %s\n", cmd, rd_kafka_err2name(err));
        else
                printf("OK %s\n", cmd);
        fflush(stdout);
}

/* Returns 0 when the cluster should stop. */
static int run_command(rd_kafka_mock_cluster_t *mc, char *line) {
        char *av[MAX_ARGS];
        int ac = 0;
        char *save = NULL;
        for (char *t = strtok_r(line, " \t\r\n", &save); t && ac < MAX_ARGS;
             t = strtok_r(NULL, " \t\r\n", &save))
                av[ac++] = t;
        if (ac == 0)
                return 1;

        const char *cmd = av[0];
        int a = 0, b = 0, c = 0;
        rd_kafka_resp_err_t err;

        if (!strcmp(cmd, "quit")) {
                answer(cmd, 0, NULL);
                return 0;
        } else if ((!strcmp(cmd, "down") || !strcmp(cmd, "up")) && ac == 2) {
                if (!parse_int(av[1], &a))
                        return answer(cmd, 0, "broker id must be a number"), 1;
                err = cmd[0] == 'd' ? rd_kafka_mock_broker_set_down(mc, a)
                                    : rd_kafka_mock_broker_set_up(mc, a);
                answer(cmd, err, NULL);
        } else if ((!strcmp(cmd, "leader") || !strcmp(cmd, "follower")) && ac == 4) {
                if (!parse_int(av[2], &a) || !parse_int(av[3], &b))
                        return answer(cmd, 0, "partition and broker id must be numbers"), 1;
                err = cmd[0] == 'l' ? rd_kafka_mock_partition_set_leader(mc, av[1], a, b)
                                    : rd_kafka_mock_partition_set_follower(mc, av[1], a, b);
                answer(cmd, err, NULL);
        } else if (!strcmp(cmd, "coord") && ac == 4) {
                if (!parse_int(av[3], &a))
                        return answer(cmd, 0, "broker id must be a number"), 1;
                answer(cmd, rd_kafka_mock_coordinator_set(mc, av[1], av[2], a), NULL);
        } else if (!strcmp(cmd, "err") && ac >= 3) {
                rd_kafka_resp_err_t codes[MAX_ARGS];
                size_t n = 0;
                if (!parse_int(av[1], &a))
                        return answer(cmd, 0, "api key must be a number"), 1;
                for (int i = 2; i < ac; i++, n++)
                        if (!lookup_error(av[i], &codes[n]))
                                return answer(cmd, 0, "unknown error code"), 1;
                rd_kafka_mock_push_request_errors_array(mc, (int16_t)a, n, codes);
                answer(cmd, 0, NULL);
        } else if (!strcmp(cmd, "clear") && ac == 2) {
                if (!parse_int(av[1], &a))
                        return answer(cmd, 0, "api key must be a number"), 1;
                rd_kafka_mock_clear_request_errors(mc, (int16_t)a);
                answer(cmd, 0, NULL);
        } else if (!strcmp(cmd, "rtt") && ac == 3) {
                if (!parse_int(av[1], &a) || !parse_int(av[2], &b))
                        return answer(cmd, 0, "broker id and delay must be numbers"), 1;
                answer(cmd, rd_kafka_mock_broker_set_rtt(mc, a, b), NULL);
        } else if (!strcmp(cmd, "topic") && (ac == 3 || ac == 4)) {
                c = 1;
                if (!parse_int(av[2], &a) || (ac == 4 && !parse_int(av[3], &c)))
                        return answer(cmd, 0, "partitions and replication must be numbers"), 1;
                answer(cmd, rd_kafka_mock_topic_create(mc, av[1], a, c), NULL);
        } else if (!strcmp(cmd, "topicerr") && ac == 3) {
                if (!lookup_error(av[2], &err))
                        return answer(cmd, 0, "unknown error code"), 1;
                rd_kafka_mock_topic_set_error(mc, av[1], err);
                answer(cmd, 0, NULL);
        } else if (!strcmp(cmd, "apiversion") && ac == 4) {
                if (!parse_int(av[1], &a) || !parse_int(av[2], &b) || !parse_int(av[3], &c))
                        return answer(cmd, 0, "api key and versions must be numbers"), 1;
                answer(cmd, rd_kafka_mock_set_apiversion(mc, (int16_t)a, (int16_t)b, (int16_t)c), NULL);
        } else {
                answer(cmd, 0, "unknown command or wrong number of arguments");
        }
        return 1;
}

static int add_topic(rd_kafka_mock_cluster_t *mc, const char *spec) {
        int parts = 1, repl = 1, ok = 0;
        char *name = strdup(spec); /* argv stays intact for ps */
        char *colon = strchr(name, ':');
        if (colon) {
                *colon = '\0';
                ok = sscanf(colon + 1, "%d:%d", &parts, &repl) >= 1 &&
                     rd_kafka_mock_topic_create(mc, name, parts, repl) == 0;
        }
        free(name);
        return ok;
}

int main(int argc, char **argv) {
        int brokers = 3, opt;
        char *topics[MAX_ARGS];
        int ntopics = 0;
        while ((opt = getopt(argc, argv, "b:t:")) != -1) {
                if (opt == 'b' && parse_int(optarg, &brokers) && brokers > 0)
                        continue;
                if (opt == 't' && ntopics < MAX_ARGS) {
                        topics[ntopics++] = optarg;
                        continue;
                }
                fprintf(stderr, "usage: %s [-b BROKERS] [-t TOPIC:PARTITIONS[:REPLICATION]]...\n", argv[0]);
                return 2;
        }

        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal; /* no SA_RESTART: fgets returns on a signal */
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        char errstr[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
        /* The handle exists only to host the mock cluster's thread. */
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "krust-mockcluster: rd_kafka_new: %s\n", errstr);
                return 1;
        }
        rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
        if (!mc) {
                fprintf(stderr, "krust-mockcluster: cannot create a mock cluster\n");
                return 1;
        }
        for (int i = 0; i < ntopics; i++) {
                if (!add_topic(mc, topics[i])) {
                        fprintf(stderr, "krust-mockcluster: bad topic spec %s\n", topics[i]);
                        return 2;
                }
        }

        const char *bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
        printf("LIBRDKAFKA=%s\n", rd_kafka_version_str());
        /* The bootstrap list is in broker id order (1..N); name each. */
        char *list = strdup(bootstrap), *save = NULL;
        int id = 1;
        for (char *addr = strtok_r(list, ",", &save); addr; addr = strtok_r(NULL, ",", &save))
                printf("BROKER=%d %s\n", id++, addr);
        free(list);
        printf("BOOTSTRAP=%s\nREADY\n", bootstrap);
        fflush(stdout);

        char line[4096];
        while (!stopping && fgets(line, sizeof(line), stdin))
                if (!run_command(mc, line))
                        break;

        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(rk);
        return 0;
}
