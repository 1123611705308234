"""reval_assets: the revalidation data sync as versioned, publishable data assets."""

import os
import platform
import sys

# Arrow reads this when pyarrow is first imported, so it is set before any module of ours imports it.
# pyarrow's default pool (mimalloc) keeps the pages a step frees; jemalloc, as Arrow configures it,
# returns them within a second: at national scale a resync peaks ~0.4 GiB lower, at about the same
# speed (bench/FINDINGS.md, change 17). Arrow's wheels carry jemalloc on x86-64 Linux only (Arrow
# turned it off on ARM; Windows never had it), and naming a missing pool makes every import warn.
# A pool the operator names in the environment wins.
if sys.platform == "linux" and platform.machine() == "x86_64":
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")


def __getattr__(name: str) -> object:
    # Imported on first use, so `reval` commands do not pay for the store and pandas they never read.
    if name == "read_version":
        from reval_assets.pipeline.read import read_version

        return read_version
    raise AttributeError(f"module 'reval_assets' has no attribute {name!r}")
