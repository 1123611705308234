"""One benchmark task in a fresh process: `python -m bench.worker TASK 'JSON PARAMS'`; prints one JSON line."""

from __future__ import annotations

import importlib
import json
import sys

TASKS = {"stages": "bench.stages:run_stages", "versions": "bench.versions:run_versions",
         "sync": "bench.sync:run_sync_task", "profile": "bench.profiling:run_profile",
         "peer_legacy": "bench.peers:peer_legacy", "peer_dlt": "bench.peers:peer_dlt",
         "peer_delta": "bench.peers:peer_delta", "peer_iceberg": "bench.peers:peer_iceberg"}


def main() -> None:
    task, params = sys.argv[1], json.loads(sys.argv[2])
    if task not in TASKS:
        raise SystemExit(f"unknown task {task!r}")
    module, function = TASKS[task].split(":")
    result = getattr(importlib.import_module(module), function)(**params)
    sys.stdout.write("\n" + json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main()
