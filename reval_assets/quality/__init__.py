"""Quality checks on a release candidate: pure functions over Arrow tables, no Dagster.

    thresholds.py  the one threshold model (`Thresholds`), with each threshold's doc
    model.py       what the checks read (`CandidateData`, `Export`, `InputReport`) and return (`CheckResult`)
    drift.py       the drift engine: rows added, removed and changed against live (also `reval diff`)
    checks/        one module per check, and the registry `CHECKS`
    evidence.py    what the checks need from the source, gathered when it is landed
    text.py, measure.py  description text and counting kernels the checks share
"""
