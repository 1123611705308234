"""How the checks write numbers, lists and example values into their descriptions."""

from __future__ import annotations

from collections.abc import Iterable

MAX_LISTED = 8  # problems listed in a description before "and N more"
EXAMPLE_CHARS = 64  # of one example value shown in a description: a 10,000-character value is not an example


def pct(share: float) -> str:
    return f"{100 * share:.1f} %"


def listed(problems: list[str]) -> str:
    more = len(problems) - MAX_LISTED
    return "; ".join(problems[:MAX_LISTED]) + (f"; and {more} more" if more > 0 else "")


def examples(values: Iterable[object]) -> str:
    """` (e.g. 'a', 'b')`: each value as its repr (control characters escaped), cut to EXAMPLE_CHARS."""
    shown = [cut(repr(v)) for v in values]
    return f" (e.g. {', '.join(shown)})" if shown else ""


def cut(text: str, limit: int = EXAMPLE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def batch_list(batches: tuple[int, ...]) -> str:
    return ", ".join(map(str, batches)) or "none"
