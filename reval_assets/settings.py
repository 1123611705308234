"""Configuration from the environment (the contract's `REVAL_*` variables)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reval_assets.domain.enums import Environment


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    env: Environment = Environment.DEV
    home: Path = Path(".reval")
    live_url: str = ""
    source: str = "synthetic"
    source_dir: Path | None = None
    doctors: int = 20000
    seed: int = 0
    batches: int = 16
    faults: tuple[str, ...] = field(default_factory=tuple)

    @property
    def snapshot_root(self) -> Path:
        return self.home / "snapshots"

    @property
    def partition_keys(self) -> list[str]:
        return [str(b) for b in range(self.batches)]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if environ is None else environ
        env_text = Environment.spelled(e.get("REVAL_ENV", "dev"))
        try:
            env = Environment(env_text)
        except ValueError:
            raise SettingsError(f"REVAL_ENV must be dev, staging or prod, not {env_text!r}") from None
        home = Path(e.get("REVAL_HOME", ".reval")).expanduser().absolute()
        source = e.get("REVAL_SOURCE", "synthetic").strip().lower()
        if source not in ("synthetic", "files"):
            raise SettingsError(f"REVAL_SOURCE must be synthetic or files, not {source!r}")
        source_dir = e.get("REVAL_SOURCE_DIR")  # checked when the source is read: status and rollback never need it
        return cls(
            env=env,
            home=home,
            live_url=e.get("REVAL_LIVE_URL") or f"sqlite:///{home / 'live.db'}",
            source=source,
            source_dir=Path(source_dir).expanduser().absolute() if source_dir else None,
            doctors=_positive_int(e, "REVAL_DOCTORS", 20000),
            seed=_int(e, "REVAL_SEED", 0),
            batches=_positive_int(e, "REVAL_BATCHES", 16),
            faults=tuple(f.strip() for f in e.get("REVAL_FAULTS", "").split(",") if f.strip()),
        )


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    text = environ.get(name)
    if text is None or text.strip() == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {text!r}") from None


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    value = _int(environ, name, default)
    if value < 1:
        raise SettingsError(f"{name} must be at least 1, not {value}")
    return value
