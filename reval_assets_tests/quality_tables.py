"""Hand-made candidate tables and source reports for the unit tests of the checks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pyarrow as pa

from reval_assets.domain.designated_bodies import DESIGNATED_BODY_CODES
from reval_assets.domain.schemas import ENTITY_SPECS, RAW_SPECS
from reval_assets.quality.checks import (
    CandidateData,
    Export,
    InputReport,
    Thresholds,
)

NOW = datetime(2023, 12, 11, 12, 0, tzinfo=UTC)
BODY_A, BODY_B = DESIGNATED_BODY_CODES[0], DESIGNATED_BODY_CODES[1]


# === hand-made tables =======================================================================


def entity_table(entity: str, rows: list[dict]) -> pa.Table:
    schema = ENTITY_SPECS[entity].schema
    return pa.Table.from_pylist([{f.name: row.get(f.name) for f in schema} for row in rows], schema=schema)


def doctor_rows(n: int = 40) -> list[dict]:
    """`n` doctors alternating between two designated bodies; every fourth is under notice."""
    return [
        {
            "gmc_reference_number": f"{1_000_000 + i}",
            "tis_person_id": 500 + i,
            "doctor_first_name": f"First{i}",
            "doctor_last_name": f"Last{i}",
            "under_notice": "Yes" if i % 4 == 0 else "No",
            "designated_body_code": BODY_A if i % 2 == 0 else BODY_B,
            "tis_designated_body_code": BODY_A if i % 2 == 0 else BODY_B,
            "programme_name": "General Practice",
            "programme_owner": "Kent, Surrey and Sussex",
            "membership_type": "Substantive",
            "curriculum_end_date": date(2026, 8, 1),
            "gmc_status": "Approved",
            "tis_status": "COMPLETED",
            "exists_in_gmc": True,
        }
        for i in range(n)
    ]


def tables_from(doctors: list[dict]) -> dict[str, pa.Table]:
    """Doctors, and connections and recommendations consistent with them (one recommendation each)."""
    connections = [
        {**d, "connection_status": "CONNECTED" if d["designated_body_code"] else "DISCONNECTED",
         "is_discrepancy": bool(d["tis_designated_body_code"])
         and d["designated_body_code"] != d["tis_designated_body_code"]}
        for d in doctors
    ]
    recommendations = [
        {**d, "recommendation_id": f"rec-{d['gmc_reference_number']}", "recommendation_type": "REVALIDATE",
         "recommendation_status": "COMPLETED", "gmc_outcome": "Approved", "gmc_submission_date": date(2023, 1, 5)}
        for d in doctors
    ]
    hidden = [{"gmc_reference_number": d["gmc_reference_number"], "hidden_for_designated_body_code": body,
               "hidden_until_date": date(2027, 3, 1), "hidden_by": "sam.admin@hee.nhs.uk"}
              for d in doctors[:2]
              for body in sorted({d["designated_body_code"], d["tis_designated_body_code"]} - {None})]
    return {"doctors": entity_table("doctors", doctors), "connections": entity_table("connections", connections),
            "recommendations": entity_table("recommendations", recommendations),
            "hidden_discrepancies": entity_table("hidden_discrepancies", hidden)}


def clean_tables(n: int = 40) -> dict[str, pa.Table]:
    return tables_from(doctor_rows(n))


def clean_export(**inputs: InputReport) -> Export:
    reports = {name: InputReport(name, RAW_SPECS[name].file, records=100, kept=100) for name in RAW_SPECS}
    return Export(key="landing", source="test", batches=(0,), exported_at=NOW - timedelta(hours=2),
                  inputs={**reports, **inputs})


def data(tables: dict[str, pa.Table] | None = None, live: dict[str, pa.Table] | None = None,
         export: Export | None = None, **kwargs: object) -> CandidateData:
    return CandidateData(tables=tables or clean_tables(), live=live, exports=(export or clean_export(),),
                         live_version="v-live" if live else None, now=NOW, **kwargs)


def set_column(table: pa.Table, name: str, values: list | pa.Array) -> pa.Table:
    index = table.schema.get_field_index(name)
    return table.set_column(index, table.schema.field(index), pa.array(values, table.schema.field(index).type))


DEFAULT = Thresholds()
