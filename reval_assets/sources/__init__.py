"""Where raw inputs come from: the seeded synthetic population or the real export files."""

from reval_assets.sources.base import Source, SourceError, WireInput

__all__ = ["Source", "SourceError", "WireInput"]
