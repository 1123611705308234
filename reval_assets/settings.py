"""Configuration from the environment (the contract's `REVAL_*` variables)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from reval_assets.domain.designated_bodies import DESIGNATED_BODY_PATTERN, PROD_CODES, STAGE_CODES
from reval_assets.domain.enums import Environment
from reval_assets.errors import RevalError

# The designated bodies each environment knows, unless REVAL_DESIGNATED_BODIES says otherwise.
DEFAULT_DESIGNATED_BODIES: dict[Environment, tuple[str, ...]] = {
    Environment.DEV: PROD_CODES,
    Environment.STAGING: STAGE_CODES,
    Environment.PROD: PROD_CODES,
}


class SettingsError(RevalError, ValueError):
    kind = "configuration"

    def explained(self) -> str:
        return f"configuration: {self}"


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
    designated_bodies: tuple[str, ...] = PROD_CODES  # the codes the data may hold (REVAL_DESIGNATED_BODIES)
    # The live systems, when set: GMC doctors over SOAP, TIS trainees from the TCS database. Secrets: never shown.
    gmc_url: str = ""
    gmc_username: str = field(default="", repr=False)
    gmc_password: str = field(default="", repr=False)
    gmc_timeout: float = 30.0  # seconds per GetDoctorsForDB attempt (REVAL_GMC_TIMEOUT)
    tcs_url: str = field(default="", repr=False)

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
            designated_bodies=_designated_bodies(e, env),
            **_live_systems(e),
        )


def _live_systems(environ: Mapping[str, str]) -> dict[str, str | float]:
    url = environ.get("REVAL_GMC_URL", "").strip()
    username, password = environ.get("REVAL_GMC_USERNAME", ""), environ.get("REVAL_GMC_PASSWORD", "")
    if url and not (username and password):
        raise SettingsError("REVAL_GMC_URL needs REVAL_GMC_USERNAME and REVAL_GMC_PASSWORD (the GMC web service login)")
    parts = urlsplit(url)
    if url and parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SettingsError("REVAL_GMC_URL must be https:// (the GMC password would cross the network in clear); "
                            "plain http is only for a server on this machine")
    try:
        timeout = float(environ.get("REVAL_GMC_TIMEOUT", "30"))
    except ValueError:
        timeout = -1.0
    if not timeout > 0:
        raise SettingsError(f"REVAL_GMC_TIMEOUT must be a number of seconds above 0, not "
                            f"{environ.get('REVAL_GMC_TIMEOUT')!r}")
    return {"gmc_url": url, "gmc_username": username, "gmc_password": password, "gmc_timeout": timeout,
            "tcs_url": environ.get("REVAL_TCS_URL", "").strip()}


def _designated_bodies(environ: Mapping[str, str], env: Environment) -> tuple[str, ...]:
    """REVAL_DESIGNATED_BODIES (comma-separated codes, stripped and upper-cased), else the environment's."""
    text = environ.get("REVAL_DESIGNATED_BODIES")
    if text is None:
        return DEFAULT_DESIGNATED_BODIES[env]
    given = [c.strip() for c in text.split(",") if c.strip()]
    if not given:
        raise SettingsError("REVAL_DESIGNATED_BODIES lists no designated-body code: unset it for the "
                            f"{env.value} default, or list codes such as {PROD_CODES[0]}")
    bad = next((c for c in given if not DESIGNATED_BODY_PATTERN.match(c.upper())), None)
    if bad is not None:
        raise SettingsError(f"REVAL_DESIGNATED_BODIES holds {bad!r}, which is not a designated-body code "
                            f"(like {PROD_CODES[0]} or {STAGE_CODES[0]})")
    return tuple(dict.fromkeys(c.upper() for c in given))


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
