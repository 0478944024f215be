"""Peer for `krust-bench consume`: the same run with confluent-kafka (librdkafka).

Started by the harness as `.venv/bin/python benches/peers/consume_confluent.py
--records N --size B --bootstrap H:P --topic T --group G --expect
P:END,P:END,... ...` and prints one `RESULT key=value ...` line.

One Consumer in a fresh group, subscribed to the topic, with
enable.auto.commit=true and auto.offset.reset=earliest (as the krust child),
counting records with `consume(500, ...)` batches until every offset below
each partition's log end (`--expect`, from the harness's delivery reports)
has been seen; duplicates and offsets never produced are counted too.

The CPU reported is the whole Python process over the window from creating
the consumer to having seen every record (close() is outside it): it includes
the Python loop that touches each Message (partition, offset, len(value)),
not only librdkafka. The split `main_thread` (the interpreter thread: Python
loop + consume()'s dequeue and Message creation inside the C extension)
versus `other_threads` (librdkafka's own `rdk:*` threads: fetching,
decoding, the group protocol) comes from /proc/self/task/*/stat (10 ms
resolution).
"""

import argparse
import os
import resource
import sys
import time

import confluent_kafka
from peercpu import thread_cpu
from confluent_kafka import Consumer, KafkaException

TIMEOUT_S = 300.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--runtime", default="")  # krust-only; ignored
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--expect", required=True)
    a = ap.parse_args()

    seen = {}
    for pe in a.expect.split(","):
        p, end = pe.split(":")
        seen[int(p)] = bytearray(int(end))
    n = sum(len(b) for b in seen.values())

    conf = {
        "bootstrap.servers": a.bootstrap,
        "group.id": a.group,
        "client.id": "confluent-bench",
        "enable.auto.commit": True,
        "auto.offset.reset": "earliest",
        # Tansu holds JoinGroup for session.timeout.ms / 2 (as the krust child).
        "session.timeout.ms": 6000,
    }

    distinct = duplicates = unexpected = nbytes = 0
    errors = 0
    first_error = None
    first = None
    main0, other0 = thread_cpu()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    c = Consumer(conf)
    c.subscribe([a.topic])
    consume = c.consume
    note = None
    while distinct < n:
        if time.perf_counter() - t0 > TIMEOUT_S:
            note = f"timeout_after_{TIMEOUT_S}s"
            break
        msgs = consume(500, 0.5)
        if msgs and first is None:
            first = time.perf_counter() - t0
        for m in msgs:
            if m.error() is not None:
                errors += 1
                if first_error is None:
                    first_error = str(m.error())
                continue
            b = seen.get(m.partition())
            o = m.offset()
            v = m.value()
            nbytes += len(v) if v is not None else 0
            if b is None or not 0 <= o < len(b):
                unexpected += 1
            elif b[o]:
                duplicates += 1
            else:
                b[o] = 1
                distinct += 1
    t1 = time.perf_counter()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    main_t, other_t = thread_cpu()
    main_t -= main0
    other_t -= other0
    c.close()

    missing = {p: len(b) - sum(b) for p, b in seen.items() if sum(b) != len(b)}
    if missing:
        print(
            "confluent: offsets not seen, per partition: "
            + " ".join(f"{p}:{k}" for p, k in sorted(missing.items())),
            file=sys.stderr,
        )
    if errors:
        print(f"confluent: {errors} error events, first: {first_error}", file=sys.stderr)
    note = (note or "-").replace(" ", "_")
    print(
        f"RESULT client=confluent records={n} bytes={nbytes} wall={t1 - t0:.6f} "
        f"cpu_user={r1.ru_utime - r0.ru_utime:.6f} cpu_sys={r1.ru_stime - r0.ru_stime:.6f} "
        f"main_thread={main_t:.3f} other_threads={other_t:.3f} "
        f"delivered={distinct} failed=0 offsets=0 partitions_used={len(seen)} "
        f"join={first if first is not None else float('nan'):.6f} duplicates={duplicates} "
        f"unexpected={unexpected} missing={n - distinct} note={note}"
    )
    print(
        f"confluent-kafka {confluent_kafka.version()[0]}, librdkafka {confluent_kafka.libversion()[0]}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KafkaException as e:
        print(f"kafka error: {e}", file=sys.stderr)
        sys.exit(1)
