"""Produce one record per key with confluent-kafka (librdkafka) using
partitioner=murmur2_random and print "<key hex> <partition>" per delivery.

Usage: partitions.py BOOTSTRAP TOPIC < keys (one hex-encoded key per line,
an empty line for the empty key)
"""
import sys

from confluent_kafka import Producer

bootstrap, topic = sys.argv[1], sys.argv[2]
keys = [bytes.fromhex(line.strip()) for line in sys.stdin.read().split("\n")[:-1]]
producer = Producer({
    "bootstrap.servers": bootstrap,
    "partitioner": "murmur2_random",
    "linger.ms": 5,
})
out = []
failed = []


def report(err, msg):
    if err is not None:
        failed.append(f"{(msg.key() or b'').hex()}: {err}")
    else:
        out.append(f"{(msg.key() or b'').hex()} {msg.partition()}")


for key in keys:
    producer.produce(topic, value=b"v", key=key, on_delivery=report)
    producer.poll(0)
left = producer.flush(30)
if left or failed:
    sys.exit(f"{left} undelivered, {len(failed)} failed: {failed[:5]}")
print("\n".join(out))
