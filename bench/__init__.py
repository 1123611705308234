"""The benchmark harness (`python -m bench`); see bench/README.md."""

import reval_assets  # noqa: F401  # first: it picks Arrow's memory pool, which pyarrow reads on import
