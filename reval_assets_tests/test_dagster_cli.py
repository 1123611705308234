"""Dagster's own command line materialises the whole graph, as the README says: every batch, the candidate
with its checks and the release, in one run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

DAGSTER = Path(sys.executable).with_name("dagster")


def test_dagster_asset_materialize_runs_the_whole_graph_and_publishes(reval_env: Path) -> None:
    dagster_home = reval_env / "dagster"
    dagster_home.mkdir(parents=True)
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    command = [str(DAGSTER), "asset", "materialize", "-m", "reval_assets.definitions", "--select", "*",
               "--partition-range", "0...15"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    engine = sa.create_engine(f"sqlite:///{reval_env / 'live.db'}")
    try:
        with engine.connect() as conn:
            live = conn.execute(sa.text("SELECT version FROM reval_live")).scalar()
            assert live is not None
            assert conn.execute(sa.text("SELECT count(*) FROM doctors")).scalar() == 1500
    finally:
        engine.dispose()
