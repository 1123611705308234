"""Dagster assets: a thin layer over `reval_assets.pipeline`."""
