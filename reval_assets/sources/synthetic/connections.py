"""The connection logs: each doctor's history of connection changes, ending at their current GMC body (or a
removal), some written by the GMC nightly sync, and the GMC sync's removal of doctors the GMC no longer returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reval_assets.domain.enums import ConnectionRequestType
from reval_assets.domain.schemas import RAW_SPECS
from reval_assets.sources.synthetic.vocabulary import (
    _ADD_REASON_WEIGHTS,
    _BODY_SYMBOLS,
    _CONNECTED_HISTORY_WEIGHTS,
    _DISCONNECTED_HISTORY,
    _DISCONNECTED_WITH_HISTORY_SHARE,
    _ERROR_RESPONSE_CODES,
    _GMC_SYNC_LOG_SHARE,
    _HISTORIES,
    _REMOVE_REASON_WEIGHTS,
    ADMINS,
    CONNECTION_REASONS,
    GMC_SYNC_UPDATED_BY,
    REQUEST_TYPES,
)
from reval_assets.sources.synthetic.wire import (
    _DAY,
    _datetimes,
    _days_back,
    _expand,
    _numbers,
    _other_body,
    _text,
    _uniform_days,
    _weighted,
    _wire_table,
)

if TYPE_CHECKING:
    from reval_assets.sources.synthetic.population import _People


def _history_lookup() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The connection histories as arrays indexed [history, position]: type, new, previous, failed, length."""
    shape = (len(_HISTORIES), max(len(h) for h in _HISTORIES))
    kind, new, previous = np.zeros(shape, np.int64), np.zeros(shape, np.int64), np.zeros(shape, np.int64)
    failed = np.zeros(shape, bool)
    for h, events in enumerate(_HISTORIES):
        for p, (request, new_body, previous_body, fail) in enumerate(events):
            kind[h, p] = request is ConnectionRequestType.REMOVE
            new[h, p], previous[h, p] = _BODY_SYMBOLS.index(new_body), _BODY_SYMBOLS.index(previous_body)
            failed[h, p] = fail
    return kind, new, previous, failed, np.array([len(h) for h in _HISTORIES])



@dataclass(frozen=True)
class _Events:
    """One row per connection change: body indices are -1 for none; `response` is 0 or a 1-based index into
    `_ERROR_RESPONSE_CODES`; `from_gmc` marks a change the GMC nightly sync wrote."""

    subject: np.ndarray  # position of the doctor in the subjects
    person: np.ndarray
    is_remove: np.ndarray
    reason: np.ndarray  # index into CONNECTION_REASONS
    new_body: np.ndarray
    previous_body: np.ndarray
    response: np.ndarray
    from_gmc: np.ndarray
    seconds: np.ndarray  # requestTime, seconds since 1970


def _connection_subjects(rng: np.random.Generator, people: _People) -> tuple[np.ndarray, np.ndarray]:
    """The doctors with a connection history (every GMC doctor, some TIS-only ones) and each one's history."""
    disconnected = ~people.in_gmc & (rng.random(len(people.gmc_number)) < _DISCONNECTED_WITH_HISTORY_SHARE)
    subjects = np.flatnonzero(people.in_gmc | disconnected)
    history = np.where(
        people.in_gmc[subjects], _weighted(rng, _CONNECTED_HISTORY_WEIGHTS, len(subjects)), _DISCONNECTED_HISTORY
    )
    return subjects, history


def _history_events(
    rng: np.random.Generator, people: _People, subjects: np.ndarray, history: np.ndarray, as_of: int
) -> _Events:
    """Each subject's history as events, ending at their current GMC body (or a removal, if not in GMC)."""
    kind, new, previous, failed, length = _history_lookup()
    subject, position = _expand(length[history])
    person, h = subjects[subject], history[subject]
    current = people.gmc_body[subjects]
    owner = people.owner[subjects]
    k = len(people.codes)
    earlier = np.where((owner >= 0) & (owner != current), owner, _other_body(rng, current, k))  # X
    earliest = _other_body(rng, earlier, k)  # Y
    bodies = np.stack([np.full(len(subjects), -1), current, earlier, earliest])
    is_remove = kind[h, position].astype(bool)
    removed_day = as_of - _uniform_days(rng, 1, 3 * 365, len(people.gmc_number))
    last_day = np.where(people.in_gmc[person], people.added_day[person], removed_day[person])
    day = last_day - _days_back(rng, subject, length[h] - 1 - position, kind.shape[1] - 1, (30, 1000))
    seconds = day * _DAY + rng.integers(8 * 3600, 18 * 3600, len(person))
    reason = np.where(
        is_remove,
        _weighted(rng, _REMOVE_REASON_WEIGHTS, len(person)),
        _weighted(rng, _ADD_REASON_WEIGHTS, len(person)),
    )
    fail = failed[h, position]
    response = np.where(fail, rng.integers(1, len(_ERROR_RESPONSE_CODES) + 1, len(person)), 0)
    # A share of the successful changes were written by the GMC nightly sync, not requested from TIS.
    from_gmc = ~fail & (rng.random(len(person)) < _GMC_SYNC_LOG_SHARE)
    return _Events(
        subject=subject,
        person=person,
        is_remove=is_remove,
        reason=reason,
        new_body=bodies[new[h, position], subject],
        previous_body=bodies[previous[h, position], subject],
        response=response,
        from_gmc=from_gmc,
        seconds=seconds,
    )


def _with_gmc_sync_removals(
    rng: np.random.Generator, people: _People, subjects: np.ndarray, events: _Events, as_of: int
) -> _Events:
    """A doctor the GMC no longer returns: after their last connection, the GMC sync's removal from that body."""
    gone = np.flatnonzero(people.gmc_disconnected[subjects])  # subject positions
    gone_added = people.added_day[subjects[gone]]
    gone_day = gone_added + 1 + (rng.random(len(gone)) * np.maximum(as_of - gone_added - 1, 0)).astype(np.int64)
    # each doctor's events together, in order
    order = np.argsort(np.concatenate([events.subject, gone]), kind="stable")

    def extended(main: np.ndarray, extra: np.ndarray | int | bool) -> np.ndarray:
        return np.concatenate([main, np.broadcast_to(extra, len(gone)).astype(main.dtype)])[order]

    return _Events(
        subject=extended(events.subject, gone),
        person=extended(events.person, subjects[gone]),
        is_remove=extended(events.is_remove, True),
        reason=extended(events.reason, 0),
        new_body=extended(events.new_body, -1),
        previous_body=extended(events.previous_body, people.gmc_body[subjects][gone]),
        response=extended(events.response, 0),
        from_gmc=extended(events.from_gmc, True),
        seconds=extended(events.seconds, gone_day * _DAY),
    )


def connection_logs(rng: np.random.Generator, people: _People, as_of: int) -> pa.Table:
    """Connection histories that end at each doctor's current GMC body (or a removal, if not in GMC or the GMC
    no longer returns them)."""
    subjects, history = _connection_subjects(rng, people)
    events = _history_events(rng, people, subjects, history, as_of)
    events = _with_gmc_sync_removals(rng, people, subjects, events, as_of)
    n = len(events.person)
    # The GMC sync runs at night.
    night = events.seconds // _DAY * _DAY + rng.integers(1 * 3600, 5 * 3600, n)
    seconds = np.where(events.from_gmc, night, events.seconds)
    admin = _text(rng.integers(0, len(ADMINS), n), ADMINS)
    updated_by = pc.if_else(pa.array(events.from_gmc), pa.scalar(GMC_SYNC_UPDATED_BY, pa.string()), admin)
    new_body, previous_body = events.new_body, events.previous_body
    return _wire_table(
        RAW_SPECS["connection_logs"],
        {
            "gmcId": _numbers(people.gmc_number[events.person]),
            "newDesignatedBodyCode": _text(np.maximum(new_body, 0), people.codes, null=new_body < 0),
            "previousDesignatedBodyCode": _text(np.maximum(previous_body, 0), people.codes, null=previous_body < 0),
            "updatedBy": updated_by,
            "requestTime": _datetimes(seconds),
            "reason": _text(events.reason, CONNECTION_REASONS, null=events.from_gmc),
            "requestType": _text(events.is_remove, REQUEST_TYPES, null=events.from_gmc),
            "responseCode": _text(events.response, ("0", *_ERROR_RESPONSE_CODES), null=events.from_gmc),
        },
    )
