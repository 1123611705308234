"""The embedded Dagster instance: `$DAGSTER_HOME`, defaulting to `$REVAL_HOME/dagster`.

Its `dagster.yaml` queues runs and lets one sync or publish run at a time, so two
accidental launches cannot interleave (deploy/dagster.yaml does the same on PostgreSQL).
"""

from __future__ import annotations

import os
from pathlib import Path

from reval_assets.settings import Settings

DAGSTER_YAML = """\
# Written by reval_assets.dagster_home; edit freely, it is not overwritten.
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
concurrency:
  runs:
    max_concurrent_runs: 4
    tag_concurrency_limits:
      - key: reval/sync
        limit: 1
  pools:
    default_limit: 1
telemetry:
  enabled: false
"""


def dagster_home(settings: Settings | None = None) -> Path:
    settings = settings or Settings.from_env()
    home = Path(os.environ.get("DAGSTER_HOME") or settings.home / "dagster").absolute()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    return home


if __name__ == "__main__":
    print(dagster_home())
