"""Quality checks on a release candidate: pure functions over Arrow tables, no Dagster."""
