"""Shared pytest configuration: the Kafka broker plugin and worker fixtures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["tests.kafka_broker"]
pytest.register_assert_rewrite("tests.worker_harness")


@pytest.fixture
def worker_factory(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``make(topics, settings=None) -> WorkerProcess`` (not started); kills leftovers at the end."""
    # imported here, after pytest has registered tests.kafka_broker for assertion rewriting
    from tests.worker_harness import WorkerProcess, WorkerTopics, terminate_all

    made: list[WorkerProcess] = []

    def make(topics: WorkerTopics, settings: dict[str, str] | None = None) -> WorkerProcess:
        w = WorkerProcess(kafka_bootstrap, topics, tmp_path / f"worker{len(made)}",
                          settings=dict(settings or {}))
        made.append(w)
        return w

    yield make
    terminate_all(made)
