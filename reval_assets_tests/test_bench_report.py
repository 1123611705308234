"""The benchmark's renderer: RESULTS.md's structure, and the floors under the unmet ratio targets.

bench/results.json (every run) is not committed; a trimmed copy of the figures behind the committed
bench/RESULTS.md (one run's medians, the national scale left out) is the fixture here.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench import report

HERE = Path(__file__).resolve().parent
RESULTS_MD = HERE.parent / "bench" / "RESULTS.md"


def _shape(markdown: str) -> list[str]:
    """The headings, and the first cell of every table's header row, in order."""
    lines = markdown.splitlines()
    return [line if line.startswith("#") else line.split(" | ")[0] for i, line in enumerate(lines)
            if line.startswith("#") or (i + 1 < len(lines) and lines[i + 1].startswith("|---"))]


def test_results_render_to_the_sections_and_tables_of_the_committed_results_md() -> None:
    results = json.loads((HERE / "bench_results_fixture.json").read_text())
    rendered = report.render(results)
    assert _shape(rendered) == _shape(RESULTS_MD.read_text()), (
        "bench/RESULTS.md no longer has the sections and tables the renderer writes: re-run the benchmark"
    )
    targets = next(line for line in rendered.splitlines() if line.startswith("| end-to-end sync, hee"))
    assert targets == "| end-to-end sync, hee (100k doctors) | ≤ 5 s | 3.93 s; process 4.92 s | " \
                      "4.15 s; process 5.20 s | ✅ met |"


def test_the_prose_renders_as_in_the_committed_results_md() -> None:
    """Outside the tables, every line is as committed, but for those the fixture's trimming shows in (the national
    scale, min–max, the notes)."""
    trimmed = ("Transforms in detail", "Writing one version", "- ")

    def prose(markdown: str) -> list[str]:
        return [line for line in markdown.splitlines() if not line.startswith(("|", *trimmed))]

    results = json.loads((HERE / "bench_results_fixture.json").read_text())
    assert prose(report.render(results)) == prose(RESULTS_MD.read_text())


def _stat(median: float) -> dict:
    return {"median": median, "min": median, "max": median, "n": 1}


def _results(*, small_sync: float, small_one_batch: float, hee_changed: float) -> dict:
    def sync(cold: float, one: float | None = None, changed: float | None = None) -> dict:
        kinds = {"full": cold, "one_batch": one, "full_changed": changed}
        return {k: {"command_seconds": _stat(v)} for k, v in kinds.items() if v is not None}

    per_store = {"10000": sync(small_sync, small_one_batch), "100000": sync(hee_changed, 2.0, hee_changed)}
    stages = {"10000": {"seconds": {"source": _stat(0.1), "transforms": _stat(0.1)}},
              "100000": {"seconds": {"source": _stat(0.3), "transforms": _stat(0.8)}}}
    return {
        "sync": {"sqlite": per_store, "postgresql": per_store},
        "stages": {"sqlite": stages, "postgresql": stages},
        "peers": {
            "dlt": {b: {"100000": {"strategies": {"replace": {"replace_seconds": _stat(5.0)}}}} for b in ("sqlite",)},
            "legacy": {b: {"100000": {"extrapolated_seconds": 20.0}} for b in ("sqlite", "postgresql")},
        },
    }


def _floor_lines(results: dict) -> list[str]:
    lines: list[str] = []
    report._floors(results, lines.append)
    return lines


def test_floors_say_when_a_fixed_cost_is_above_what_a_ratio_target_needs() -> None:
    lines = _floor_lines(_results(small_sync=2.9, small_one_batch=1.3, hee_changed=4.8))
    one_batch = next(line for line in lines if line.startswith("| one-batch resync ≤ 15 % at hee"))
    # 15 % of 4.8 s; the floor is hee's export (0.3 s) plus the small resync without its export (1.3 - 0.1 s)
    assert "needs ≤ 0.72 s; generating its export (0.30 s) plus a one-batch resync of 10,000 doctors without " \
           "its own (1.30 s − 0.10 s) takes 1.50 s (above it)" in one_batch
    assert not any("at national" in line for line in lines), "no national figures, so no national row"
    dlt = next(line for line in lines if line.startswith("| ≥ 5× dlt"))
    # dlt's side is our source and transforms plus its replace run: 0.3 + 0.8 + 5.0 s, a fifth of it 1.22 s
    assert "needs ≤ 1.22 s; a cold sync of 10,000 doctors takes 2.90 s (above it)" in dlt
    assert dlt.endswith("| — |"), "no dlt figures for PostgreSQL, so nothing is claimed there"


def test_floors_do_not_claim_a_limit_the_figures_do_not_show() -> None:
    lines = _floor_lines(_results(small_sync=0.5, small_one_batch=0.4, hee_changed=4.8))
    assert not any("above it" in line for line in lines if line.startswith(("| one-batch", "| ≥ 5× dlt")))


def test_floors_are_left_out_of_a_pass_without_the_figures() -> None:
    assert _floor_lines({"sync": {}, "stages": {}, "peers": {}}) == []
