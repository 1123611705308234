"""Designated bodies and the programme owners that map onto them (TCS `DesignatedBodyMapper`).

Each table is ordered: an owner maps to the FIRST code listing it, so "London LETBs" (listed
by all four London codes) maps to Kent, Surrey and Sussex's. Before Aug 2024 owners were
spelled "Health Education England <office>"; both spellings map the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

LONDON = "London LETBs"
_HEE_PREFIX = "health education england "

# Production: (code, owners), in the mapper's order.
PROD_BODIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("1-1RUZV1D", ("Kent, Surrey and Sussex", LONDON)),
    ("1-1RUZV6H", ("North West London", LONDON)),
    ("1-1RUZV4H", ("North Central and East London", LONDON)),
    ("1-1RSSQ5L", ("South London", LONDON)),
    ("1-1RSSPZ7", ("East Midlands",)),
    ("1-1RSSQ05", ("East of England",)),
    ("1-1RSSQ1B", ("North East",)),
    ("1-1RSSQ6R", ("Thames Valley",)),
    ("1-1RSG4X0", ("Yorkshire and the Humber",)),
    ("1-1RUZUYF", ("West Midlands",)),
    ("1-1RUZUVB", ("South West",)),
    ("1-1RUZUSF", ("Wessex",)),
    ("1-1RSSQ2H", ("North West",)),
    ("1-25U-830", ("Northern Ireland Medical and Dental Training Agency",)),
)

# Staging, in the same order. Known pairings: 1-AIIDHJ Wessex, 1-AIIDQQ Yorkshire and the Humber,
# and London's 1-AIIDR8/1-AIIDWA/1-AIIDVS/1-AIIDWI (prod 1-1RUZV1D/1-1RUZV6H/1-1RUZV4H/1-1RSSQ5L).
# The other seven are INFERRED: the remaining stage codes, in the order staging lists them
# (MQ, NQ, MY, WT, SA, H1, SI), paired with the remaining English owners in the order above.
# Northern Ireland has no stage code (13 codes for 14 owners).
STAGE_BODIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("1-AIIDR8", ("Kent, Surrey and Sussex", LONDON)),
    ("1-AIIDWA", ("North West London", LONDON)),
    ("1-AIIDVS", ("North Central and East London", LONDON)),
    ("1-AIIDWI", ("South London", LONDON)),
    ("1-AIIDMQ", ("East Midlands",)),  # inferred
    ("1-AIIDNQ", ("East of England",)),  # inferred
    ("1-AIIDMY", ("North East",)),  # inferred
    ("1-AIIDWT", ("Thames Valley",)),  # inferred
    ("1-AIIDQQ", ("Yorkshire and the Humber",)),
    ("1-AIIDSA", ("West Midlands",)),  # inferred
    ("1-AIIDH1", ("South West",)),  # inferred
    ("1-AIIDHJ", ("Wessex",)),
    ("1-AIIDSI", ("North West",)),  # inferred
)

PROD_CODES: tuple[str, ...] = tuple(code for code, _ in PROD_BODIES)
STAGE_CODES: tuple[str, ...] = tuple(code for code, _ in STAGE_BODIES)
# The production codes: the default list (the configured one is `Settings.designated_bodies`).
DESIGNATED_BODY_CODES: tuple[str, ...] = PROD_CODES

# Shape of a designated-body code, prod (`1-1RUZV1D`), stage (`1-AIIDHJ`) or NI (`1-25U-830`).
DESIGNATED_BODY_PATTERN = re.compile(r"^1-[0-9A-Z]{3,7}(-[0-9A-Z]{1,4})?$")


def _spelled(owner: str) -> str:
    text = " ".join(owner.split()).casefold()
    return text.removeprefix(_HEE_PREFIX)


def designated_body_of_owner(owner: str | None, codes: Iterable[str] = PROD_CODES) -> str | None:
    """The first of `codes` (prod or stage) whose owners include `owner`; None for an unknown owner."""
    if owner is None:
        return None
    wanted, allowed = _spelled(owner), set(codes)
    for code, owners in PROD_BODIES + STAGE_BODIES:
        if code in allowed and any(_spelled(o) == wanted for o in owners):
            return code
    return None


def owner_of_designated_body(code: str) -> str | None:
    """The local office a code belongs to (never "London LETBs"); None for a code in neither table."""
    return next((owners[0] for c, owners in PROD_BODIES + STAGE_BODIES if c == code), None)


# Owner -> production code, first match ("London LETBs" -> 1-1RUZV1D).
OWNER_TO_DESIGNATED_BODY: dict[str, str] = {}
for _code, _owners in PROD_BODIES:
    for _owner in _owners:
        OWNER_TO_DESIGNATED_BODY.setdefault(_owner, _code)
