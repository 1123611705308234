"""Designated bodies and the programme owners that map onto them (TCS `DesignatedBodyMapper`)."""

from __future__ import annotations

import re

# Programme owner (HEE local office) -> production designated-body code.
OWNER_TO_DESIGNATED_BODY: dict[str, str] = {
    "Kent, Surrey and Sussex": "1-1RUZV1D",
    "North Central and East London": "1-1RUZV6H",
    "North West London": "1-1RUZV4H",
    "South London": "1-1RSSQ5L",
    "East of England": "1-1RSSPZ7",
    "East Midlands": "1-1RSSQ05",
    "West Midlands": "1-1RSSQ1B",
    "Yorkshire and the Humber": "1-1RSSQ6R",
    "North East": "1-1RSG4X0",
    "North West": "1-1RUZUYF",
    "Thames Valley": "1-1RUZUVB",
    "Wessex": "1-1RUZUSF",
    "South West": "1-1RSSQ2H",
    "Northern Ireland Medical and Dental Training Agency": "1-25U-830",
}

DESIGNATED_BODY_CODES: tuple[str, ...] = tuple(OWNER_TO_DESIGNATED_BODY.values())

# Shape of a designated-body code, prod (`1-1RUZV1D`), stage (`1-AIIDHJ`) or NI (`1-25U-830`).
DESIGNATED_BODY_PATTERN = re.compile(r"^1-[0-9A-Z]{5,7}(-[0-9A-Z]{1,4})?$")
