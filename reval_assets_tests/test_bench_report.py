"""The benchmark's renderer: RESULTS.md's structure and prose.

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
    trimmed = ("Transforms in detail", "- ")

    def prose(markdown: str) -> list[str]:
        return [line for line in markdown.splitlines() if not line.startswith(("|", *trimmed))]

    results = json.loads((HERE / "bench_results_fixture.json").read_text())
    assert prose(report.render(results)) == prose(RESULTS_MD.read_text())
