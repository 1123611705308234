"""Named wall-clock spans of core work, for the benchmark: a no-op unless a recorder is installed.

A span nested in another span on the same thread is not recorded: its time is the outer span's.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

Recorder = Callable[[str, float, float], None]  # (name, started, ended), perf_counter seconds
P = ParamSpec("P")
R = TypeVar("R")

_recorder: Recorder | None = None
_inside = threading.local()


@contextmanager
def span(name: str) -> Iterator[None]:
    """Record the block's start and end under `name`, when recording and not inside another span."""
    if _recorder is None or getattr(_inside, "active", False):
        yield
        return
    _inside.active = True
    started = time.perf_counter()
    try:
        yield
    finally:
        _inside.active = False
        if _recorder is not None:
            _recorder(name, started, time.perf_counter())


def timed(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: every call of the function is a span named `name`."""
    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with span(name):
                return fn(*args, **kwargs)
        return wrapper
    return decorate


@contextmanager
def recording(recorder: Recorder) -> Iterator[None]:
    """Send every span that ends inside the block, on any thread, to `recorder`."""
    global _recorder
    previous, _recorder = _recorder, recorder
    try:
        yield
    finally:
        _recorder = previous
