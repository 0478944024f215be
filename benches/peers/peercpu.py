"""CPU accounting shared by the Python peer scripts (same rules as
krust-bench's cpu.rs): the interpreter thread versus librdkafka's threads,
from /proc/self/task."""

import os


def thread_cpu():
    """(interpreter thread CPU s, other threads CPU s) from /proc."""
    main = other = 0.0
    me = os.getpid()
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rfind(")") + 2 :].split()
        t = (int(rest[11]) + int(rest[12])) / 100.0
        if int(tid) == me:
            main += t
        else:
            other += t
    return main, other
