"""Reference lists of the synthetic population: names, programmes, vocabularies and the shares they are drawn in.

The vocabularies the original systems define (under notice, recommendation types and statuses, GMC outcomes,
deferral reasons, connection request types and reasons) are taken from `reval_assets.domain.enums`; each one's
weights are keyed by enum member and must cover every member, so a value added to an enum gets a weight here
(or the import fails saying which) instead of silently never reaching the synthetic data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from enum import Enum
from typing import TypeVar

from reval_assets.domain.designated_bodies import PROD_CODES, owner_of_designated_body
from reval_assets.domain.enums import (
    AddConnectionReason,
    ConnectionRequestType,
    DeferralReason,
    DeferralSubReason,
    GmcOutcome,
    RecommendationStatus,
    RecommendationType,
    RemoveConnectionReason,
    UnderNotice,
)

AS_OF = date(2023, 12, 11)
_W = TypeVar("_W")


def owners_of(codes: Sequence[str]) -> tuple[str, ...]:
    """The programme owner TIS sends with each code: its local office (a code in no table stands for itself)."""
    return tuple(owner_of_designated_body(code) or code for code in codes)


def _covering(enum: type[Enum], weights: Mapping[Enum, _W]) -> Mapping[Enum, _W]:
    """`weights`, checked to give every member of `enum` a weight (in the order the generator draws them)."""
    missing = [member.name for member in enum if member not in weights]
    if missing:
        raise ValueError(f"synthetic data: no weight for {enum.__name__} {', '.join(missing)}")
    return weights


def _wire(members: Sequence[Enum]) -> tuple[str, ...]:
    """The wire text of each member, in order."""
    return tuple(str(member.value) for member in members)


# The owner of each production code, in `PROD_CODES` order (a source's own list: `SyntheticSource.owners`).
OWNERS: tuple[str, ...] = owners_of(PROD_CODES)
# Relative size of each local office (uneven, roughly by trainee numbers); unknown owners get 5.
_OWNER_WEIGHTS = {
    "Kent, Surrey and Sussex": 8,
    "North Central and East London": 9,
    "North West London": 6,
    "South London": 7,
    "East of England": 9,
    "East Midlands": 7,
    "West Midlands": 10,
    "Yorkshire and the Humber": 10,
    "North East": 5,
    "North West": 12,
    "Thames Valley": 4,
    "Wessex": 5,
    "South West": 7,
    "Northern Ireland Medical and Dental Training Agency": 3,
}

FIRST_NAMES = (
    "Aisha", "Alice", "Amelia", "Amir", "Ana", "Andrew", "Anna", "Ben", "Catherine", "Charlotte",
    "Chen", "Chloe", "Daniel", "David", "Deepa", "Elena", "Emily", "Emma", "Fatima", "Grace",
    "Hannah", "Harry", "Hassan", "Isabel", "Jack", "James", "Jessica", "John", "Joseph", "Kavya",
    "Laura", "Li", "Lucy", "Maria", "Mark", "Matthew", "Mei", "Michael", "Mohammed", "Nadia",
    "Naomi", "Nikhil", "Oliver", "Olivia", "Omar", "Priya", "Rachel", "Rahul", "Rebecca", "Rhys",
    "Samuel", "Sarah", "Sean", "Sophie", "Thomas", "Tom", "Wei", "William", "Yusuf", "Zara",
)  # fmt: skip
LAST_NAMES = (
    "Adams", "Ahmed", "Ali", "Allen", "Bailey", "Baker", "Begum", "Bell", "Brown", "Campbell",
    "Chan", "Chowdhury", "Clarke", "Cooper", "Davies", "Edwards", "Evans", "Fernandes", "Fraser", "Gill",
    "Green", "Griffiths", "Hall", "Harris", "Hughes", "Hussain", "Iqbal", "Jackson", "James", "Jones",
    "Kaur", "Khan", "King", "Kumar", "Lee", "Lewis", "Martin", "Mensah", "Mitchell", "Moore",
    "Morgan", "Murphy", "Nguyen", "O'Brien", "Okafor", "Owen", "Parker", "Patel", "Phillips", "Price",
    "Rahman", "Roberts", "Robinson", "Scott", "Shah", "Singh", "Smith", "Taylor", "Thomas", "Thompson",
    "Turner", "Walker", "Wang", "Ward", "Watson", "White", "Williams", "Wilson", "Wood", "Wright",
)  # fmt: skip
ADMINS = tuple(
    f"{first}.{last}@hee.nhs.uk"
    for first, last in (
        ("amy", "fletcher"), ("ben", "hart"), ("carla", "mendes"), ("dan", "osei"), ("ella", "reid"),
        ("femi", "adeyemi"), ("gemma", "lowe"), ("harriet", "nash"), ("imran", "qureshi"), ("jo", "bates"),
        ("kate", "dunn"), ("leo", "marsh"), ("mina", "patel"), ("nick", "shaw"), ("orla", "byrne"),
        ("paul", "young"), ("ruth", "kerr"), ("sam", "holt"), ("tara", "singh"), ("vic", "lamb"),
    )
)  # fmt: skip

# Grade bands: which placement grades a programme's trainees hold.
_GRADE_BANDS = {
    "foundation": ("F1", "F2", "F2", "F2"),
    "core": ("CT1", "CT2", "CT3"),
    "gp": ("ST1", "ST2", "ST3"),
    "run_through": ("ST1", "ST2", "ST3", "ST4", "ST5", "ST6", "ST7", "ST8"),
    "higher": ("ST3", "ST4", "ST5", "ST6", "ST7", "ST8"),
}
# (programme name, grade band, relative weight)
PROGRAMMES: tuple[tuple[str, str, int], ...] = (
    ("General Practice", "gp", 30),
    ("Foundation Programme", "foundation", 12),
    ("Core Surgical Training", "core", 5),
    ("Internal Medicine Training", "core", 8),
    ("Core Psychiatry Training", "core", 3),
    ("Acute Care Common Stem - Anaesthetics", "core", 3),
    ("Anaesthetics", "higher", 5),
    ("Paediatrics", "run_through", 5),
    ("Obstetrics and Gynaecology", "run_through", 4),
    ("Emergency Medicine", "higher", 4),
    ("General Surgery", "higher", 4),
    ("Trauma and Orthopaedic Surgery", "higher", 3),
    ("Cardiology", "higher", 3),
    ("Gastroenterology", "higher", 2),
    ("Respiratory Medicine", "higher", 2),
    ("Geriatric Medicine", "higher", 3),
    ("General Psychiatry", "higher", 3),
    ("Histopathology", "run_through", 2),
    ("Clinical Radiology", "run_through", 3),
    ("Ophthalmology", "run_through", 2),
)
MEMBERSHIP_TYPES = ("Substantive", "LAT", "Military", "Visitor")
_MEMBERSHIP_WEIGHTS = (0.88, 0.05, 0.02, 0.05)


_UNDER_NOTICE_SHARES = _covering(UnderNotice, {UnderNotice.NO: 0.88, UnderNotice.YES: 0.09, UnderNotice.ON_HOLD: 0.03})
UNDER_NOTICE = _wire(tuple(_UNDER_NOTICE_SHARES))
_UNDER_NOTICE_WEIGHTS = tuple(_UNDER_NOTICE_SHARES.values())
NOT_UNDER_NOTICE = UNDER_NOTICE.index(UnderNotice.NO.value)  # the index of "No"; every other value is under notice
SANCTIONS = ("No", "Yes")
_SANCTION_WEIGHTS = (0.985, 0.015)

# Share of people in both systems, in GMC only and in TIS only.
_MEMBERSHIP_SPLIT = (0.93, 0.035, 0.035)
_DISCREPANCY_SHARE = 0.06  # of doctors in both, whose GMC body differs from the programme owner's
_MULTI_PROGRAMME_SHARE = 0.02  # of trainees: several current programmes, so no single owner

_TYPE_SHARES = _covering(
    RecommendationType,
    {RecommendationType.REVALIDATE: 0.83, RecommendationType.DEFER: 0.14, RecommendationType.NON_ENGAGEMENT: 0.03},
)
RECOMMENDATION_TYPES = _wire(tuple(_TYPE_SHARES))
_TYPE_WEIGHTS = tuple(_TYPE_SHARES.values())
# Each status's weight by the recommendation's place in the doctor's history: (latest of a doctor under notice,
# latest of another doctor, an older one).
_STATUS_SHARES = _covering(RecommendationStatus, {
    RecommendationStatus.NOT_STARTED: (0.15, 0.05, 0),
    RecommendationStatus.STARTED: (0.2, 0.05, 0),
    RecommendationStatus.READY_TO_REVIEW: (0.15, 0.03, 0),
    RecommendationStatus.READY_TO_SUBMIT: (0.15, 0.02, 0),
    RecommendationStatus.SUBMITTED_TO_GMC: (0.22, 0.08, 0.05),
    RecommendationStatus.COMPLETED: (0.03, 0.75, 0.95),
    RecommendationStatus.DRAFT: (0.1, 0.02, 0),
})  # fmt: skip
STATUSES = _wire(tuple(_STATUS_SHARES))
_IN_PROGRESS = _wire((
    RecommendationStatus.NOT_STARTED, RecommendationStatus.STARTED, RecommendationStatus.READY_TO_REVIEW,
    RecommendationStatus.READY_TO_SUBMIT, RecommendationStatus.DRAFT,
))  # fmt: skip
_STATUS_WEIGHTS = {  # by the recommendation's place in the doctor's history
    key: tuple(shares[i] for shares in _STATUS_SHARES.values())
    for i, key in enumerate(("under_notice_latest", "latest", "older"))
}
OUTCOMES = _wire(tuple(GmcOutcome))
_REJECTED_SHARE = 0.07  # of completed recommendations; the others were approved
_RECOMMENDATIONS_PER_DOCTOR = (0.2, 0.35, 0.25, 0.13, 0.07)  # 0..4
DEFERRAL_REASONS = _wire(tuple(DeferralReason))
# A current recommendation is deferred for a current reason; an older one for any, the inactive ones sharing 0.4.
_CURRENT_REASON_SHARES = {DeferralReason.INSUFFICIENT_EVIDENCE: 0.6, DeferralReason.ONGOING_PROCESS: 0.4}
_CURRENT_REASON_WEIGHTS = tuple(_CURRENT_REASON_SHARES.get(reason, 0) for reason in DeferralReason)
_HISTORIC_CURRENT_SHARES = {DeferralReason.INSUFFICIENT_EVIDENCE: 0.35, DeferralReason.ONGOING_PROCESS: 0.25}
_INACTIVE_SHARE = 0.4 / sum(not reason.is_current for reason in DeferralReason)
_HISTORIC_REASON_WEIGHTS = tuple(_HISTORIC_CURRENT_SHARES.get(r, _INACTIVE_SHARE) for r in DeferralReason)
_WITH_SUB_REASON = DEFERRAL_REASONS.index(str(DeferralReason.INSUFFICIENT_EVIDENCE.value))  # has sub-reasons
DEFERRAL_SUB_REASONS = _wire(tuple(DeferralSubReason))

# Connection histories: (requestType, new body, previous body, failed) per event, where a body is
# a symbol: None, "cur" (the current GMC body), "X" or "Y" (earlier bodies, X != cur, Y != X).
_ADD, _REMOVE = ConnectionRequestType.ADD, ConnectionRequestType.REMOVE
_ConnectionEvent = tuple[ConnectionRequestType, str | None, str | None, bool]
_HISTORIES: tuple[tuple[_ConnectionEvent, ...], ...] = (
    ((_ADD, "cur", None, False),),
    ((_ADD, "X", None, False), (_ADD, "cur", "X", False)),  # transferred
    ((_ADD, "cur", None, True), (_ADD, "cur", None, False)),  # GMC refused once, then accepted
    ((_ADD, "X", None, False), (_REMOVE, None, "X", False), (_ADD, "cur", None, False)),  # left, rejoined
    ((_ADD, "Y", None, False), (_ADD, "X", "Y", False), (_ADD, "cur", "X", False)),  # transferred twice
    ((_ADD, "X", None, False), (_REMOVE, None, "X", False)),  # disconnected (TIS only)
)
# The requestType text, indexed by "is a removal" (so ADD first).
REQUEST_TYPES = _wire((_ADD, _REMOVE))
_CONNECTED_HISTORY_WEIGHTS = (0.6, 0.27, 0.03, 0.05, 0.05, 0)
_DISCONNECTED_HISTORY = 5
_DISCONNECTED_WITH_HISTORY_SHARE = 0.5  # of TIS-only doctors
_BODY_SYMBOLS = (None, "cur", "X", "Y")
# The reason codes of both request types (the same codes mean different reasons), and each code's weight.
CONNECTION_REASONS = tuple(sorted({*_wire(tuple(AddConnectionReason)), *_wire(tuple(RemoveConnectionReason))}))
_ADD_REASON_SHARES = _covering(
    AddConnectionReason, {AddConnectionReason.HAS_CONNECTION: 0.9, AddConnectionReason.CONFLICT_OF_INTEREST: 0.1}
)
_REMOVE_REASON_SHARES = _covering(RemoveConnectionReason, {
    RemoveConnectionReason.CONFLICT_OF_INTEREST: 0.1,
    RemoveConnectionReason.RETIRED: 0.3,
    RemoveConnectionReason.NO_CONNECTION: 0.6,
})  # fmt: skip
_ADD_REASON_WEIGHTS = tuple(
    next((w for r, w in _ADD_REASON_SHARES.items() if r.value == code), 0) for code in CONNECTION_REASONS
)
_REMOVE_REASON_WEIGHTS = tuple(
    next((w for r, w in _REMOVE_REASON_SHARES.items() if r.value == code), 0) for code in CONNECTION_REASONS
)
_ERROR_RESPONSE_CODES = ("70", "80", "81", "82", "84", "85", "90", "99", "110", "120", "161")

# Doctors the GMC no longer returns (`existsInGmc` false, no designated body): they keep their names,
# dates and recommendation history, and their latest connection log is the GMC sync's removal.
_GMC_DISCONNECTED_SHARE = 0.015  # of GMC doctors
# Connection changes the GMC nightly sync wrote: no requestType, reason or responseCode, and this `updatedBy`.
GMC_SYNC_UPDATED_BY = "GMC sync"
_GMC_SYNC_LOG_SHARE = 0.25  # of the successful changes in the connection history
# Hidden discrepancies: an admin of one of the two bodies hid the doctor from its Discrepancies list.
_HIDDEN_DISCREPANCY_SHARE = 0.05  # of doctors whose TIS body differs from their GMC body
_HIDDEN_EXPIRED_SHARE = 0.1  # of hidden discrepancies: hiddenUntilDate already past
HIDDEN_REASONS = (
    "Awaiting GMC transfer", "Connection change requested", "Out of programme", "Doctor on leave",
    "TIS record being corrected", "Dual training agreement",
)  # fmt: skip
