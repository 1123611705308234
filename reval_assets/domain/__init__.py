"""The revalidation domain: enums, schemas, batching, the wire-to-canonical mapping and the landing summaries.

Nothing here imports Dagster or touches a database.
"""
