"""The sync's steps and operations, as plain functions over the stores (no Dagster)."""
