"""Arrow's memory pool in a reval process: jemalloc where Arrow's wheels have it, unless the operator names another."""

import os
import platform
import subprocess
import sys

WITH_REVAL = "import reval_assets, pyarrow; print(pyarrow.default_memory_pool().backend_name)"
ARROW_ALONE = "import pyarrow; print(pyarrow.default_memory_pool().backend_name)"
JEMALLOC_IN_WHEELS = sys.platform == "linux" and platform.machine() == "x86_64"


def _pool_of_a_new_process(probe: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"} | env
    child = subprocess.run([sys.executable, "-c", probe], env=environment, capture_output=True, text=True, check=True)
    assert child.stderr == ""  # Arrow warns on every import when the named pool is missing
    return child.stdout.strip()


def test_a_reval_process_allocates_arrow_memory_with_jemalloc_where_arrow_has_it():
    expected = "jemalloc" if JEMALLOC_IN_WHEELS else _pool_of_a_new_process(ARROW_ALONE)
    assert _pool_of_a_new_process(WITH_REVAL) == expected


def test_a_pool_named_in_the_environment_wins():
    assert _pool_of_a_new_process(WITH_REVAL, ARROW_DEFAULT_MEMORY_POOL="system") == "system"
