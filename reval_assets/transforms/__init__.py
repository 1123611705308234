"""Pure, columnar functions from raw inputs of one batch to the three live entities."""

from reval_assets.transforms.build import build_connections, build_doctors, build_entities, build_recommendations

__all__ = ["build_connections", "build_doctors", "build_entities", "build_recommendations"]
