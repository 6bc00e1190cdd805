"""Kafka's default partitioner, which the views' topics and the model shards use.

Implemented in the compiled core (:mod:`detectors._core`); the same function
routes events to view partitions in the worker and picks a key's model shard
in the engine, so a partitioned deployment and a replay agree.

Examples
--------
>>> murmur2(b"21")
-973932308
>>> kafka_partition("1900000042", 6) in range(6)
True
"""

from detectors._core import kafka_partition, murmur2

__all__ = ["kafka_partition", "murmur2"]
