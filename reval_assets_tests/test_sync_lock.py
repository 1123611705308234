"""Two accidental launches cannot interleave: the second is refused at once, nothing changed."""

import os
import subprocess
import sys

import pytest

from reval_assets.pipeline.lock import SyncBusy, exclusive


def test_second_holder_of_the_sync_lock_is_refused_naming_the_first(tmp_path):
    with exclusive(tmp_path, "sync"), pytest.raises(SyncBusy, match="sync by pid"), exclusive(tmp_path, "gc"):
        pass
    with exclusive(tmp_path, "gc"):  # released after the first holder finished
        pass


def test_cli_sync_while_another_sync_runs_fails_with_a_message(reval_env):
    with exclusive(reval_env, "sync"):
        result = subprocess.run([sys.executable, "-m", "reval_assets.cli", "sync", "--json"],
                                capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert result.returncode == 1
    assert "another sync, rollback or gc is running" in result.stderr
    assert not (reval_env / "snapshots" / "versions").exists()
