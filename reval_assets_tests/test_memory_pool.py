"""Arrow's memory pool in a reval process: jemalloc, unless the operator names another."""

import os
import subprocess
import sys

PROBE = "import reval_assets, pyarrow; print(pyarrow.default_memory_pool().backend_name)"


def _pool_of_a_new_process(**env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"} | env
    return subprocess.run([sys.executable, "-c", PROBE], env=environment, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_a_reval_process_allocates_arrow_memory_with_jemalloc():
    assert _pool_of_a_new_process() == "jemalloc"


def test_a_pool_named_in_the_environment_wins():
    assert _pool_of_a_new_process(ARROW_DEFAULT_MEMORY_POOL="system") == "system"
