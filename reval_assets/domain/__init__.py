"""The revalidation domain: enums, schemas, batching and the wire-to-canonical mapping.

Nothing here imports Dagster or touches a database.
"""
