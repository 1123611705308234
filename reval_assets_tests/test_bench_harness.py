"""The benchmark's harness: a peer that cannot run leaves a note and lets the rest be measured."""

from __future__ import annotations

import importlib

bench_main = importlib.import_module("bench.__main__")


def test_a_peer_whose_package_is_missing_gives_a_note_not_a_failed_section() -> None:
    notes: list[str] = []
    figures = bench_main._optional_peer(
        "delta", notes, lambda: bench_main.run_worker("no_such_peer:measure", {}))
    assert figures is None
    assert notes == ["delta failed: ModuleNotFoundError: No module named 'bench.no_such_peer'"]
