"""A confluent-kafka (librdkafka) group member driven by the krust interop
tests over stdin / stdout, one JSON object per line.

Modes:
  produce BOOTSTRAP TOPIC PARTITIONS PER_PARTITION
      write PER_PARTITION records to each partition, print {"ev":"produced"}.
  member BOOTSTRAP GROUP TOPIC STRATEGY DEADLINE_S
      a classic-protocol consumer (session.timeout.ms 6000, no auto commit)
      in GROUP. Prints {"ev":"assignment","partitions":[...]} after every
      change (the whole assignment it holds); assigned partitions stay
      paused until "consume". Commands on stdin:
        commit {"P": OFFSET, ...}  -> commits synchronously, prints
                                      {"ev":"committed","offsets":{...}}
        committed                  -> committed() of all partitions of TOPIC,
                                      prints {"ev":"committed_read",...}
        consume                    -> polls until one record of every owned
                                      partition arrived, prints
                                      {"ev":"first_fetched","offsets":{...}}
        close                      -> consumer.close() (LeaveGroup),
                                      prints {"ev":"closed"} and exits.
      Exits by itself after DEADLINE_S seconds (the test is bounded).
  bench BOOTSTRAP TOPIC STRATEGY REPS GROUP_PREFIX
      per repetition, in a fresh group: the time from subscribe() of one
      consumer to its first assignment callback, then from subscribe() of a
      second one until both hold their new (3 + 3) assignment. Prints one
      {"ev":"rep",...} line per repetition.
"""

import json
import os
import queue
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def consumer_config(bootstrap, group, strategy):
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "group.protocol": "classic",
        "partition.assignment.strategy": strategy,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    if os.environ.get("KRUST_INTEROP_DEBUG"):
        # librdkafka's group log on stderr, to diagnose a stuck rebalance.
        conf["debug"] = os.environ["KRUST_INTEROP_DEBUG"]
    return conf


def produce(bootstrap, topic, partitions, per_partition):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for part in range(partitions):
        for i in range(per_partition):
            p.produce(topic, value=f"{part}-{i}".encode(), partition=part)
    left = p.flush(30)
    if left:
        out({"ev": "error", "error": f"{left} records not delivered"})
        sys.exit(1)
    out({"ev": "produced", "partitions": partitions, "per_partition": per_partition})


def member(bootstrap, group, topic, strategy, deadline_s):
    deadline = time.monotonic() + deadline_s
    held = set()

    def report():
        out({"ev": "assignment", "partitions": sorted(held)})

    def on_assign(c, parts):
        # Assign now and hold every partition paused until "consume", so
        # its first fetched record is at the committed offset (nothing is
        # consumed and dropped before the test asks).
        if strategy == "cooperative-sticky":
            c.incremental_assign(parts)
        else:
            c.assign(parts)
        c.pause(parts)
        held.update(tp.partition for tp in parts)
        report()

    def on_revoke(c, parts):
        held.difference_update(tp.partition for tp in parts)
        report()

    def on_lost(c, parts):
        held.difference_update(tp.partition for tp in parts)
        out({"ev": "lost", "partitions": sorted(tp.partition for tp in parts)})
        report()

    c = Consumer(consumer_config(bootstrap, group, strategy))
    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    out({"ev": "subscribed"})

    commands = queue.Queue()

    def read_stdin():
        for line in sys.stdin:
            commands.put(line.strip())
        commands.put("close")

    threading.Thread(target=read_stdin, daemon=True).start()
    first = {}
    consuming = False
    while time.monotonic() < deadline:
        msg = c.poll(0.05)
        if msg is not None:
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    out({"ev": "error", "error": str(msg.error())})
            elif consuming and msg.partition() not in first:
                first[msg.partition()] = msg.offset()
                # Hold every partition at its first record so later polls
                # cannot move what committed() reports.
                c.pause([TopicPartition(topic, msg.partition())])
        if consuming and held and held.issubset(first):
            out({"ev": "first_fetched", "offsets": {str(k): v for k, v in sorted(first.items())}})
            consuming = False
        try:
            cmd = commands.get_nowait()
        except queue.Empty:
            continue
        if cmd.startswith("commit "):
            offsets = json.loads(cmd[len("commit "):])
            tps = [TopicPartition(topic, int(p), o) for p, o in offsets.items()]
            try:
                res = c.commit(offsets=tps, asynchronous=False)
                errs = [str(tp.error) for tp in res if tp.error]
                if errs:
                    out({"ev": "error", "error": f"commit: {errs}"})
                else:
                    out({"ev": "committed", "offsets": offsets})
            except Exception as e:  # noqa: BLE001 - reported to the test
                out({"ev": "error", "error": f"commit: {e}"})
        elif cmd == "committed":
            md = c.list_topics(topic, timeout=10)
            n = len(md.topics[topic].partitions)
            res = c.committed([TopicPartition(topic, p) for p in range(n)], timeout=10)
            out({"ev": "committed_read", "offsets": {str(tp.partition): tp.offset for tp in res}})
        elif cmd == "consume":
            first.clear()
            consuming = True
            c.resume([TopicPartition(topic, p) for p in held])
        elif cmd == "close":
            c.close()
            out({"ev": "closed"})
            return
    out({"ev": "deadline"})
    c.close()


def bench(bootstrap, topic, strategy, reps, prefix):
    for rep in range(reps):
        group = f"{prefix}-{rep}"
        held = [set(), set()]
        times = [[], []]  # (monotonic, size) after each change
        lock = threading.Lock()
        stop = threading.Event()

        def run(i, started):
            def on_assign(c, parts):
                with lock:
                    held[i].update(tp.partition for tp in parts)
                    times[i].append((time.monotonic(), len(held[i])))

            def on_revoke(c, parts):
                with lock:
                    held[i].difference_update(tp.partition for tp in parts)
                    times[i].append((time.monotonic(), len(held[i])))

            c = Consumer(consumer_config(bootstrap, group, strategy))
            started[i] = time.monotonic()
            c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
            while not stop.is_set():
                c.poll(0.01)
            c.close()

        started = [None, None]
        t0 = threading.Thread(target=run, args=(0, started))
        t0.start()
        limit = time.monotonic() + 60
        while time.monotonic() < limit:
            with lock:
                if any(n == 6 for _, n in times[0]):
                    break
            time.sleep(0.005)
        with lock:
            first = next(t for t, n in times[0] if n == 6) - started[0]
            mark = len(times[0])
        t1 = threading.Thread(target=run, args=(1, started))
        t1.start()
        while time.monotonic() < limit:
            with lock:
                if len(held[0]) == 3 and len(held[1]) == 3 and not (held[0] & held[1]):
                    break
            time.sleep(0.005)
        with lock:
            ok = len(held[0]) == 3 and len(held[1]) == 3
            a = next((t for t, n in times[0][mark:] if n == 3), None)
            b = next((t for t, n in times[1] if n == 3), None)
        rebalance = (max(a, b) - started[1]) if ok else None
        stop.set()
        t0.join()
        t1.join()
        out({"ev": "rep", "rep": rep, "first_assignment_s": first, "rebalance_s": rebalance})


def main():
    mode = sys.argv[1]
    if mode == "produce":
        produce(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif mode == "member":
        member(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], float(sys.argv[6]))
    elif mode == "bench":
        bench(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6])
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
