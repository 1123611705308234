"""`drift`: no entity, and no designated body, loses more than a set share of its live rows
(the Connections page emptying while a resync rebuilt it), unless the operator gives a reason."""

from __future__ import annotations

from dataclasses import dataclass, field

from reval_assets.domain.schemas import ENTITY_SPECS
from reval_assets.quality.drift import EntityDrift, entity_drift
from reval_assets.quality.measure import share
from reval_assets.quality.model import CandidateData, CheckResult
from reval_assets.quality.text import listed, pct
from reval_assets.quality.thresholds import Thresholds


@dataclass
class _Losses:
    """The drift check's findings so far: its problems, numbers, table lines and the worst loss."""

    thresholds: Thresholds
    problems: list[str] = field(default_factory=list)
    metadata: dict[str, float | int | str] = field(default_factory=dict)
    lines: list[str] = field(default_factory=lambda: [
        "| entity | designated body | live rows | lost | added | changed | lost share |",
        "|---|---|---|---|---|---|---|"])
    worst: tuple[float, str] = (0.0, "")

    def over(self, lost: int, rows: int) -> bool:
        t = self.thresholds
        return lost >= t.min_drift_rows and share(lost, rows) > t.max_drift_loss_share if rows else False

    def add(self, entity: str, drift: EntityDrift, judged: bool = True) -> None:
        """Count `entity`'s changes; judge its losses only if it is a screen's list (`EntitySpec.guarded`)."""
        lost_share = share(drift.removed, drift.live_rows) if drift.live_rows else 0.0
        self.metadata |= {f"{entity}_removed": drift.removed, f"{entity}_added": drift.added,
                          f"{entity}_changed": drift.changed, f"{entity}_removed_share": round(lost_share, 4)}
        self.lines.append(f"| {entity} | (all) | {drift.live_rows} | {drift.removed} | {drift.added} "
                          f"| {drift.changed} | {pct(lost_share)} |")
        if not judged:
            return
        self.worst = max(self.worst, (lost_share, entity))
        if self.over(drift.removed, drift.live_rows):
            self.problems.append(f"{entity} would lose {drift.removed} of {drift.live_rows} live rows "
                                 f"({pct(lost_share)})")
        for body, n in sorted(drift.bodies.items()):
            self._add_body(entity, body, n)

    def _add_body(self, entity: str, body: str, n: dict[str, int]) -> None:
        body_share = share(n["lost"], n["live_rows"]) if n["live_rows"] else 0.0
        if n["lost"] or n["added"] or n["changed"]:
            self.lines.append(f"| {entity} | {body} | {n['live_rows']} | {n['lost']} | {n['added']} | {n['changed']} "
                              f"| {pct(body_share)} |")
        self.worst = max(self.worst, (body_share, f"{entity} of {body}"))
        if self.over(n["lost"], n["live_rows"]):
            self.problems.append(f"designated body {body} would lose {n['lost']} of its {n['live_rows']} {entity} "
                                 f"({pct(body_share)})")


def check_drift(data: CandidateData, thresholds: Thresholds) -> CheckResult:
    """No entity, and no designated body, loses more than a set share of its live rows (unless a reason is given)."""
    t = thresholds
    if data.live is None:
        return CheckResult(name="drift", passed=True, description="first publish: no live version to compare with",
                           metadata={"live_version": "none", **t.metadata("max_drift_loss_share", "min_drift_rows")})
    found = _Losses(t)
    for entity, spec in ENTITY_SPECS.items():
        if entity in data.live:  # a live version staged before an entity existed has none to compare
            found.add(entity, entity_drift(entity, *data.changed(entity), data.live[entity]), judged=spec.guarded)
    problems, worst = found.problems, found.worst
    limit = f"more than {pct(t.max_drift_loss_share)} of its live rows (and at least {t.min_drift_rows})"
    metadata = found.metadata | {
        "live_version": data.live_version or "unknown", "worst_loss_share": round(worst[0], 4),
        "worst_loss": worst[1], "failures": len(problems), "allow_drift_reason": t.allow_drift_reason,
        **t.metadata("max_drift_loss_share", "min_drift_rows")}
    table = "\n".join(found.lines)
    if problems and t.allow_drift_reason:
        metadata["overridden"] = True
        return CheckResult(name="drift", passed=True, metadata=metadata, table=table, description=(
            f"allowed by the operator's reason {t.allow_drift_reason!r} (recorded in the audit); "
            f"would have failed: {listed(problems)}"))
    metadata["overridden"] = False
    if problems:
        return CheckResult(name="drift", passed=False, metadata=metadata, table=table, description=(
            f"{listed(problems)}. The limit is losing {limit}; if this change is known and intended, re-run "
            "with allow_drift_reason set to why"))
    worst_text = f"; the largest loss is {pct(worst[0])} ({worst[1]})" if worst[0] else ""
    return CheckResult(name="drift", passed=True, metadata=metadata, table=table, description=(
        f"no entity or designated body lost {limit} against live {data.live_version or ''}{worst_text}"))
