"""Writes transactional and plain records with confluent-kafka (librdkafka)
for the krust consumer's read_committed test.

  txn_producer.py BOOTSTRAP TOPIC TRANSACTIONAL_ID

To partition 0 of TOPIC, one step after the other (each flushed before
the next begins):
  N: 5 non-transactional records  N0..N4  (a plain idempotent producer)
  A: 10 records in a transaction that commits   A0..A9
  B: 10 records in a transaction that aborts    B0..B9 (flushed, so they
     are in the log, before abort_transaction)
  C: 10 records in a transaction that commits   C0..C9
Prints one line `VALUE OFFSET` per delivery report, then `done`; any
failure prints `error ...` and exits non-zero.
"""

import sys

from confluent_kafka import Producer

TIMEOUT = 30


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main():
    bootstrap, topic, txn_id = sys.argv[1:4]
    failed = []

    def report(err, msg):
        if err is not None:
            failed.append(str(err))
        else:
            out(f"{msg.value().decode()} {msg.offset()}")

    plain = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "enable.idempotence": True})
    for i in range(5):
        plain.produce(topic, value=f"N{i}".encode(), partition=0, on_delivery=report)
    if plain.flush(TIMEOUT):
        sys.exit(out("error plain records not delivered") or 1)

    p = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": txn_id,
            "linger.ms": 0,
            "transaction.timeout.ms": 60000,
        }
    )
    p.init_transactions(TIMEOUT)
    for name, commit in (("A", True), ("B", False), ("C", True)):
        p.begin_transaction()
        for i in range(10):
            p.produce(topic, value=f"{name}{i}".encode(), partition=0, on_delivery=report)
        if p.flush(TIMEOUT):
            sys.exit(out(f"error txn {name} not flushed") or 1)
        if commit:
            p.commit_transaction(TIMEOUT)
        else:
            p.abort_transaction(TIMEOUT)
        p.poll(0)
    if failed:
        out(f"error {failed}")
        sys.exit(1)
    out("done")


if __name__ == "__main__":
    main()
