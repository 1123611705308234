"""Where data lives: immutable Parquet snapshots and the versioned live store."""
