"""The synthetic source: a seeded population with named faults, its fingerprint and its description.

Dates are relative to a fixed reference day (`AS_OF`, the day of the incident) rather than
today, so the same parameters give the same tables on any day and the fingerprint is stable.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime

from reval_assets.domain.designated_bodies import PROD_CODES
from reval_assets.domain.schemas import RAW_SPECS
from reval_assets.sources.base import WireInput
from reval_assets.sources.synthetic.faults import NAMES, REALISTIC, apply_faults
from reval_assets.sources.synthetic.population import MAX_DOCTORS, clean_population
from reval_assets.sources.synthetic.vocabulary import AS_OF, owners_of
from reval_assets.sources.synthetic.wire import _renumber

GENERATOR_VERSION = "2"  # 2: disconnected doctors, GMC-sync connection logs, hidden discrepancies
ORIGIN = "synthetic"


class SyntheticSource:
    """A seeded synthetic population of `doctors` people, optionally with named faults."""

    # Every fault, in the order that numbers its random stream (see `faults.NAMES`; `faults.REGISTRY` applies them).
    FAULTS: tuple[str, ...] = NAMES
    # Faults that are what the real services send, not a broken export: a release must not be blocked by them.
    REALISTIC_FAULTS: tuple[str, ...] = REALISTIC

    def __init__(self, doctors: int = 20000, seed: int = 0, faults: Sequence[str] = (), *, as_of: date = AS_OF,
                 designated_bodies: Sequence[str] = PROD_CODES):
        # The environment's designated-body codes (`Settings.designated_bodies`), each sent with its real owner.
        self.designated_bodies: tuple[str, ...] = tuple(designated_bodies)
        if not self.designated_bodies:
            raise ValueError("a synthetic source needs at least one designated-body code")
        self.owners = owners_of(self.designated_bodies)
        if not 1 <= doctors <= MAX_DOCTORS:
            raise ValueError(f"doctors must be between 1 and {MAX_DOCTORS}, got {doctors}")
        if isinstance(faults, str):
            faults = [f.strip() for f in faults.split(",") if f.strip()]
        unknown = sorted(set(faults) - set(self.FAULTS))
        if unknown:
            raise ValueError(f"unknown synthetic fault(s) {', '.join(unknown)}; known faults: {', '.join(self.FAULTS)}")
        self.doctors, self.seed, self.as_of = int(doctors), int(seed), as_of
        self.faults: tuple[str, ...] = tuple(f for f in self.FAULTS if f in set(faults))
        faults_text = ", ".join(self.faults) or "none"
        self.description = f"synthetic: {self.doctors} doctors, seed {self.seed}, faults: {faults_text}"
        if as_of != AS_OF:
            self.description += f", as of {as_of.isoformat()}"
        if self.designated_bodies != PROD_CODES:
            self.description += f", designated bodies: {', '.join(self.designated_bodies)}"
        self._extracted: dict[str, WireInput] | None = None
        # The population is generated on demand, so it is as fresh as this instance (one per run).
        self.generated_at = datetime.now(UTC)

    def exported_at(self) -> datetime:
        """The generation time: when this source was made (not `as_of`, the day the data describes)."""
        return self.generated_at

    def fingerprint(self) -> str:
        parameters = {
            "generator": GENERATOR_VERSION,
            "doctors": self.doctors,
            "seed": self.seed,
            "faults": sorted(self.faults),
            "as_of": self.as_of.isoformat(),
            # Only another list than the default changes the fingerprint (so the default's stays as it was).
            **({} if self.designated_bodies == PROD_CODES else {"designated_bodies": list(self.designated_bodies)}),
        }
        return hashlib.sha256(json.dumps(parameters, sort_keys=True).encode()).hexdigest()

    def extract(self) -> dict[str, WireInput]:
        if self._extracted is None:
            people, tables = clean_population(self.seed, self.doctors, self.as_of, self.designated_bodies)
            apply_faults(self.faults, tables, people, self.seed)
            self._extracted = {name: WireInput(_renumber(tables[name]), ORIGIN) for name in RAW_SPECS}
        return dict(self._extracted)

    def __repr__(self) -> str:
        bodies = "" if self.designated_bodies == PROD_CODES else f", designated_bodies={list(self.designated_bodies)}"
        return f"SyntheticSource(doctors={self.doctors}, seed={self.seed}, faults={list(self.faults)}{bodies})"
