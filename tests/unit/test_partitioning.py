"""Kafka's default partitioner, as the core implements it.

The reorder buffer and the deduper are tested in the core itself
(``detectors/_core/src/order.rs``).
"""

from __future__ import annotations

import random

from kafka.partitioner.default import murmur2 as kafka_murmur2

from detectors.partitioning import kafka_partition, murmur2


def test_partitioner_matches_kafka_clients() -> None:
    rng = random.Random(5)
    for _ in range(300):
        key = "".join(rng.choice("abcdef0123456789:-") for _ in range(rng.randint(0, 30)))
        assert murmur2(key.encode()) & 0x7FFFFFFF == kafka_murmur2(key.encode()) & 0x7FFFFFFF
        assert kafka_partition(key, 6) == (kafka_murmur2(key.encode()) & 0x7FFFFFFF) % 6
