"""Peer for `krust-bench produce`: the same run with confluent-kafka (librdkafka).

Started by the harness as `.venv/bin/python benches/peers/produce_confluent.py
--records N --size B --compression C --batch-size S --linger-ms L --bootstrap
H:P --topic T --pool FILE ...` and prints one `RESULT key=value ...` line.

The CPU reported is the whole Python process over the window from creating
the producer to the end of flush(): it includes the Python loop that calls
produce() and the per-record delivery callback, not only librdkafka. The
split `main_thread` (the interpreter thread: Python loop + produce()'s
enqueue inside librdkafka + callbacks) versus `other_threads` (librdkafka's
own `rdk:*` threads: batching, compression, I/O) comes from
/proc/self/task/*/stat (10 ms resolution).
"""

import argparse
import os
import resource
import sys
import time

import confluent_kafka
from peercpu import thread_cpu
from confluent_kafka import KafkaException, Producer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--compression", default="none")
    ap.add_argument("--batch-size", type=int, default=16384)
    ap.add_argument("--linger-ms", type=int, default=5)
    ap.add_argument("--runtime", default="")  # krust-only; ignored
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--pool", required=True)
    a = ap.parse_args()

    with open(a.pool, "rb") as f:
        blob = f.read()
    values = [blob[i : i + a.size] for i in range(0, len(blob) - a.size + 1, a.size)]
    mask = len(values) - 1
    assert len(values) & mask == 0, "pool size must be a power of two"

    delivered = failed = 0
    first_error = None
    maxoff = {}
    counts = {}

    def on_delivery(err, msg):
        nonlocal delivered, failed, first_error
        if err is not None:
            failed += 1
            if first_error is None:
                first_error = str(err)
            return
        delivered += 1
        p = msg.partition()
        o = msg.offset()
        counts[p] = counts.get(p, 0) + 1
        if o > maxoff.get(p, -1):
            maxoff[p] = o

    conf = {
        "bootstrap.servers": a.bootstrap,
        "acks": "all",
        "linger.ms": a.linger_ms,
        # librdkafka's default is 1,000,000: use Kafka's 16384 as krust does.
        "batch.size": a.batch_size,
        # krust's default (as the Java client's since 3.0); librdkafka's is false.
        "enable.idempotence": True,
        "compression.type": a.compression,
        # Unkeyed records: librdkafka's consistent_random spreads them
        # randomly per message, unlike sticky partitioning; make it sticky
        # for the same linger window so batches fill the same way.
        "sticky.partitioning.linger.ms": a.linger_ms,
        "on_delivery": on_delivery,
    }

    topic = a.topic
    n = a.records
    main0, other0 = thread_cpu()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    p = Producer(conf)
    produce = p.produce
    poll = p.poll
    i = 0
    while i < n:
        try:
            produce(topic, values[i & mask])
        except BufferError:
            # queue.buffering.max.messages/kbytes reached: serve reports.
            poll(0.05)
            continue
        i += 1
        if i & 1023 == 0:
            poll(0)
    left = p.flush(60)
    t1 = time.perf_counter()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    main_t, other_t = thread_cpu()
    main_t -= main0
    other_t -= other0
    if left:
        failed += left
        first_error = first_error or f"{left} records not delivered at flush"

    note = (first_error or "-").replace(" ", "_")
    print(
        f"RESULT client=confluent records={n} bytes={n * a.size} wall={t1 - t0:.6f} "
        f"cpu_user={r1.ru_utime - r0.ru_utime:.6f} cpu_sys={r1.ru_stime - r0.ru_stime:.6f} "
        f"main_thread={main_t:.3f} other_threads={other_t:.3f} "
        f"delivered={delivered} failed={failed} offsets={sum(o + 1 for o in maxoff.values())} "
        f"partitions_used={len(counts)} note={note}"
    )
    print(
        "confluent records per partition: "
        + " ".join(f"{k}:{v}" for k, v in sorted(counts.items())),
        file=sys.stderr,
    )
    print(
        f"confluent-kafka {confluent_kafka.version()[0]}, librdkafka {confluent_kafka.libversion()[0]}",
        file=sys.stderr,
    )
    del p
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KafkaException as e:
        print(f"kafka error: {e}", file=sys.stderr)
        sys.exit(1)
