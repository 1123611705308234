"""Enumerations of the original system, with their exact wire values."""

from __future__ import annotations

from enum import Enum, StrEnum


class UnderNotice(StrEnum):
    YES = "Yes"
    NO = "No"
    ON_HOLD = "On Hold"


class RecommendationStatus(StrEnum):
    """Used for a doctor's `doctorStatus`/`tisStatus` and a recommendation's status."""

    NOT_STARTED = "NOT_STARTED"
    STARTED = "STARTED"
    READY_TO_REVIEW = "READY_TO_REVIEW"
    READY_TO_SUBMIT = "READY_TO_SUBMIT"
    SUBMITTED_TO_GMC = "SUBMITTED_TO_GMC"
    COMPLETED = "COMPLETED"
    DRAFT = "DRAFT"


class RecommendationType(StrEnum):
    REVALIDATE = "REVALIDATE"
    DEFER = "DEFER"
    NON_ENGAGEMENT = "NON_ENGAGEMENT"


class GmcOutcome(StrEnum):
    """`RecommendationGmcOutcome`; the original maps a missing value to UNDER_REVIEW."""

    APPROVED = "Approved"
    REJECTED = "Rejected"
    UNDER_REVIEW = "Under Review"


class DeferralReason(Enum):
    """Deferral reason codes; only 1 and 2 are CURRENT, 3-9 are INACTIVE."""

    INSUFFICIENT_EVIDENCE = 1
    ONGOING_PROCESS = 2
    BELOW_1_YEAR_TO_CCT = 3
    SICK_CARERS_LEAVE = 4
    PARENTAL_LEAVE = 5
    EXAM_FAILURE = 6
    OTHER = 7
    OUT_OF_CLINICAL_TRAINING = 8
    BELOW_5_YEARS_FULL_REG = 9

    @property
    def is_current(self) -> bool:
        return self.value in (1, 2)


class DeferralSubReason(Enum):
    """Sub-reasons of INSUFFICIENT_EVIDENCE (code 1)."""

    APPRAISAL_ACTIVITY = 1
    COLLEAGUE_FEEDBACK = 2
    COMPLIMENTS_AND_COMPLAINTS = 3
    CPD = 4
    INTERRUPTION_TO_PRACTICE = 5
    PATIENT_FEEDBACK = 6
    QIA = 7
    SIGNIFICANT_EVENTS = 8


class ConnectionRequestType(StrEnum):
    ADD = "ADD"
    REMOVE = "REMOVE"


class AddConnectionReason(StrEnum):
    HAS_CONNECTION = "1"
    CONFLICT_OF_INTEREST = "2"


class RemoveConnectionReason(StrEnum):
    CONFLICT_OF_INTEREST = "1"
    RETIRED = "2"
    NO_CONNECTION = "3"


class ConnectionStatus(StrEnum):
    """Derived for the Connections screen: is the doctor connected in GMC?"""

    CONNECTED = "CONNECTED"
    DISCONNECTED = "DISCONNECTED"


class Environment(StrEnum):
    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"

    @property
    def needs_confirmation(self) -> bool:
        return self is not Environment.DEV

    @staticmethod
    def spelled(text: str | None) -> str:
        """How an environment's name is compared, in REVAL_ENV and in `--confirm` alike: stripped, lower case."""
        return (text or "").strip().lower()


class QuarantineReason(StrEnum):
    """Why `domain.conform` quarantined a record, as a code the checks count by (the prose is for people)."""

    MISSING = "missing"  # a required field is null or blank
    MALFORMED = "malformed"  # not a GMC number, date, date-time or integer
    CONTROL_CHARACTER = "control_character"  # text holding a control character it may not
    TOO_LONG = "too_long"  # text over `conform.MAX_TEXT` characters
    UNKNOWN_VALUE = "unknown_value"  # an enum value the schema does not know
    DUPLICATE_KEY = "duplicate_key"  # another record has the same key


class VersionStatus(StrEnum):
    STAGED = "staged"
    LIVE = "live"
    RETIRED = "retired"
    BLOCKED = "blocked"


def values(enum: type[Enum]) -> list:
    return [member.value for member in enum]


# Spellings the original services use besides an enum's name and value: codes and screen labels.
_OTHER_SPELLINGS: dict[Enum, tuple[str, ...]] = {
    RecommendationType.REVALIDATE: ("1", "Revalidate"),
    RecommendationType.DEFER: ("2", "Defer"),
    RecommendationType.NON_ENGAGEMENT: ("3", "Non_Engagement", "Non-engagement"),
    RecommendationStatus.COMPLETED: ("Complete",),
    RecommendationStatus.SUBMITTED_TO_GMC: ("Submitted to GMC",),
}


def spelling_key(text: str) -> str:
    """How two spellings of one value are compared: case, underscores and runs of blanks do not count."""
    return " ".join(text.replace("_", " ").split()).casefold()


def _words(text: str) -> str:
    return " ".join("".join(c if c.isalnum() else " " for c in text).split()).casefold()


def in_words(enum: type[Enum], text: str) -> str | None:
    """A legacy deferral reason written as text ("Insufficient evidence for a positive recommendation"): the code
    of the reason whose name its words begin with, if exactly one does."""
    words = _words(text)
    found = {str(m.value) for m in enum if words == _words(m.name) or words.startswith(_words(m.name) + " ")}
    return found.pop() if len(found) == 1 else None


def spellings(enum: type[Enum]) -> dict[str, str]:
    """Every accepted spelling of the enum's values (by `spelling_key`) -> the canonical value (as text).

    A value may be sent by its name (`ON_HOLD`), its value or label (`On Hold`), or a code (`"1"`), in any case;
    a deferral reason by its code (`1`) or its name in words (`Insufficient evidence`)."""
    accepted: dict[str, str] = {}
    for member in enum:
        canonical = str(member.value)
        for text in (member.name, canonical, *_OTHER_SPELLINGS.get(member, ())):
            accepted[spelling_key(text)] = canonical
    return accepted
