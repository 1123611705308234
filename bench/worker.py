"""One benchmark task in a fresh process: `python -m bench.worker TASK 'JSON PARAMS'`; prints one JSON line."""

from __future__ import annotations

import json
import sys


def main() -> None:
    task, params = sys.argv[1], json.loads(sys.argv[2])
    if task == "stages":
        from bench.stages import run_stages

        result = run_stages(**params)
    elif task == "versions":
        from bench.versions import run_versions

        result = run_versions(**params)
    elif task == "sync":
        from bench.sync import run_sync_task

        result = run_sync_task(**params)
    elif task == "profile":
        from bench.profiling import run_profile

        result = run_profile(**params)
    elif task.startswith("peer_"):
        from bench import peers

        result = getattr(peers, task)(**params)
    else:
        raise SystemExit(f"unknown task {task!r}")
    sys.stdout.write("\n" + json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main()
