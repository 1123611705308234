"""Run independent per-batch work on a few threads: Arrow, Parquet and file I/O release the GIL."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def map_in_threads(work: Callable[[Item], Result], items: Sequence[Item], workers: int | None = None) -> list[Result]:
    """`[work(item) for item in items]`, in order, on up to one thread per core.

    The first error stops the items not yet started and is raised here. The threads are daemons
    joined interruptibly, so Ctrl-C or SIGTERM stops a sync at once even while a worker is busy
    (concurrent.futures would hold the process until every started item had finished).
    """
    workers = min(len(items), workers or os.cpu_count() or 1)
    if workers <= 1:
        return [work(item) for item in items]
    results: list = [None] * len(items)
    errors: list[BaseException] = []
    pending = iter(range(len(items)))
    lock = threading.Lock()

    def worker() -> None:
        while not errors:
            with lock:
                index = next(pending, None)
            if index is None:
                return
            try:
                results[index] = work(items[index])
            except BaseException as error:  # noqa: BLE001 - re-raised in the calling thread
                errors.append(error)

    threads = [threading.Thread(target=worker, daemon=True, name=f"reval-worker-{i}") for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results
