"""A confluent-kafka (librdkafka) consumer in a group, driven by the krust
consumer interop test.

  group_consumer.py BOOTSTRAP GROUP TOPIC STRATEGY DEADLINE_S [PROTOCOL]

PROTOCOL is classic (default: session.timeout.ms 6000, STRATEGY the
partition.assignment.strategy) or consumer (KIP-848: STRATEGY is the
broker's assignor, group.remote.assignor, and assignments are always
incremental). enable.auto.commit false, auto.offset.reset earliest. Every record it processes is printed as one line
`PARTITION OFFSET`, then committed synchronously (offset + 1); a commit
that fails prints `commitfail PARTITION OFFSET ERROR`. After every change
of its assignment it prints `assigned P P ...` (the whole set it holds).
Commands on stdin:
  pause  -> pauses every partition it holds (and any assigned later),
            prints `paused`; records arriving afterwards are not processed.
  close  -> consumer.close() (LeaveGroup), prints `closed` and exits.
Exits by itself after DEADLINE_S seconds (prints `deadline`).
"""

import queue
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main():
    bootstrap, group, topic, strategy, deadline_s = sys.argv[1:6]
    protocol = sys.argv[6] if len(sys.argv) > 6 else "classic"
    incremental = protocol == "consumer" or strategy == "cooperative-sticky"
    deadline = time.monotonic() + float(deadline_s)
    held = set()
    paused = [False]

    def report():
        out("assigned" + "".join(f" {p}" for p in sorted(held)))

    def on_assign(c, parts):
        if incremental:
            c.incremental_assign(parts)
        else:
            c.assign(parts)
        if paused[0] and parts:
            c.pause(parts)
        held.update(tp.partition for tp in parts)
        report()

    def on_revoke(c, parts):
        held.difference_update(tp.partition for tp in parts)
        report()

    def on_lost(c, parts):
        held.difference_update(tp.partition for tp in parts)
        out("lost" + "".join(f" {tp.partition}" for tp in parts))
        report()

    config = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "group.protocol": protocol,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    if protocol == "classic":
        config["partition.assignment.strategy"] = strategy
        config["session.timeout.ms"] = 6000
        config["heartbeat.interval.ms"] = 500
    else:
        config["group.remote.assignor"] = strategy
    c = Consumer(config)
    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)

    commands = queue.Queue()

    def read_stdin():
        for line in sys.stdin:
            commands.put(line.strip())
        commands.put("close")

    threading.Thread(target=read_stdin, daemon=True).start()
    while time.monotonic() < deadline:
        msg = c.poll(0.05)
        if msg is not None:
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    out(f"error {msg.error()}")
            elif not paused[0]:
                out(f"{msg.partition()} {msg.offset()}")
                try:
                    res = c.commit(message=msg, asynchronous=False)
                    errs = [str(tp.error) for tp in (res or []) if tp.error]
                    if errs:
                        out(f"commitfail {msg.partition()} {msg.offset()} {errs}")
                except KafkaException as e:
                    out(f"commitfail {msg.partition()} {msg.offset()} {e}")
        try:
            cmd = commands.get_nowait()
        except queue.Empty:
            continue
        if cmd == "pause":
            paused[0] = True
            c.pause([TopicPartition(topic, p) for p in held])
            out("paused")
        elif cmd == "close":
            c.close()
            out("closed")
            return
    out("deadline")
    c.close()


if __name__ == "__main__":
    main()
