"""A seeded, realistic synthetic population, in the wire format of the original systems.

Every raw input is generated column by column with numpy and Arrow kernels (no Python loop
per record), so a million doctors take seconds. Values are text exactly as the source
systems send them (GMC dates `dd/mm/yyyy`, TIS and recommendation dates ISO), so the data
goes through the same `conform` step as real export files.

Dates are relative to a fixed reference day (`AS_OF`, the day of the incident) rather than
today, so the same parameters give the same tables on any day and the fingerprint is stable.

The clean population has what the real services send that looks odd but is not a fault: doctors
the GMC no longer returns (`existsInGmc` false, no designated body), connection changes written
by the GMC nightly sync (no requestType, reason or responseCode) and hidden discrepancies.

Named faults (`SyntheticSource.FAULTS`) are small deterministic edits applied on top of the
clean population, drawn from their own random stream, so switching a fault on never changes
the clean records it does not touch. `SyntheticSource.REALISTIC_FAULTS` are real-world oddities
(legacy null ids, free-text GMC numbers in TIS) that a release must absorb, not be blocked by.

The modules:
- `vocabulary`: reference lists (names, programmes, admins) and the shares values are drawn in; the
  vocabularies of the original systems come from `reval_assets.domain.enums`.
- `wire`: vectorised text building (dictionary takes, dates, ids) and the wire table of a raw spec.
- `population`: the clean population (people, GMC doctors, TIS trainees, recommendations, hidden
  discrepancies); `connections`: its connection logs.
- `faults`: each named fault as a function of a `FaultContext`, and `REGISTRY`, in the order they apply.
- `source`: `SyntheticSource` (fingerprint, extract, description).
"""

from reval_assets.sources.synthetic.faults import REGISTRY as _FAULTS
from reval_assets.sources.synthetic.faults import FaultContext
from reval_assets.sources.synthetic.source import GENERATOR_VERSION, ORIGIN, SyntheticSource
from reval_assets.sources.synthetic.vocabulary import (
    ADMINS,
    AS_OF,
    GMC_SYNC_UPDATED_BY,
    HIDDEN_REASONS,
    OWNERS,
    owners_of,
)
from reval_assets.sources.synthetic.wire import _wire_table

__all__ = [
    "ADMINS",
    "AS_OF",
    "GENERATOR_VERSION",
    "GMC_SYNC_UPDATED_BY",
    "HIDDEN_REASONS",
    "ORIGIN",
    "OWNERS",
    "FaultContext",
    "SyntheticSource",
    "_FAULTS",
    "_wire_table",
    "owners_of",
]
