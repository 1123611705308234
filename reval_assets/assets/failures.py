"""The Dagster layer's one translation of failures.

A step's `RevalError` (or a database failure, `errors.as_reval_error`) becomes a `dg.Failure` whose
description is the message a person reads and whose metadata carries its kind and exit code; `reval
sync` reads its outcome from that metadata (`run.failure_of_run`). Every failure is final
(`allow_retries=False`) except a live store that could not be reached when the step connected
(`errors.is_transient`): that step is retried, `TRANSIENT_RETRY.max_retries` times with backoff.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import dagster as dg

from reval_assets.errors import FAILED, as_reval_error

if TYPE_CHECKING:
    from reval_assets.assets.common import StepContext

KIND, EXIT_CODE, ATTEMPTS = "reval/error", "reval/exit_code", "reval/attempts"
# For a database that was down or restarting when the step connected: 0.5 s, 1.5 s, then 3.5 s.
TRANSIENT_RETRY = dg.RetryPolicy(max_retries=3, delay=0.5, backoff=dg.Backoff.EXPONENTIAL)


def failure_of(error: Exception, *, attempts: int = 1) -> dg.Failure:
    """`error` as a final `dg.Failure`: its message, and its kind and exit code as metadata."""
    known = as_reval_error(error)
    if known is None:  # not ours: its own text, as Dagster would show it
        description, kind, code = str(error) or type(error).__name__, "unexpected", FAILED
        extra: dict = {"error_class": type(error).__name__}
    else:
        description, kind, code, extra = known.explained(), known.kind, known.exit_code, known.metadata
    metadata = {KIND: kind, EXIT_CODE: code, **({ATTEMPTS: attempts} if attempts > 1 else {}), **extra}
    return dg.Failure(description=description, metadata=metadata, allow_retries=False)


@contextmanager
def translated(context: StepContext, *, retry: bool = True) -> Iterator[None]:
    """Around a step's body: every failure leaves it as a final `dg.Failure`, or (`retry`) as a retry request.

    The rollback and gc ops pass `retry=False`: a rollback retried after its commit would be audited twice."""
    try:
        yield
    except dg.Failure as failure:  # already translated (the resource does, for its refusals)
        failure.allow_retries = False
        raise
    except (dg.RetryRequested, dg.DagsterError):
        raise
    except Exception as error:
        known = as_reval_error(error)
        attempt = context.retry_number + 1
        if retry and known is not None and known.retryable and attempt <= TRANSIENT_RETRY.max_retries:
            wait = TRANSIENT_RETRY.calculate_delay(attempt)
            context.log.warning(f"{known.explained()}; retrying the step in {wait:g}s "
                                f"(retry {attempt} of {TRANSIENT_RETRY.max_retries})")
            raise dg.RetryRequested(max_retries=TRANSIENT_RETRY.max_retries, seconds_to_wait=wait) from error
        raise failure_of(error, attempts=attempt) from error
