"""The real shapes the original services send each input in, written from our canonical wire records.

A shape writer takes one input's records (dicts keyed by our wire names, `export.records`) and a
`Layout`, and returns the files to write: {path relative to the export folder: bytes}. Values a
shape has no spelling for (a fault's malformed date, an unknown enum value) are written as they
are, so a faulty export stays faulty in every shape. `SHAPES[input][shape]` is the registry.

Times: our date-times carry no zone. Where a shape needs an absolute time (Mongo's `{"$date"}`)
it is written as that wall-clock value with a `Z` (the reader takes Z as UTC and keeps the same
wall-clock value), so it reads back unchanged. Mongo keeps milliseconds: a time with finer digits
is written with all of them rather than silently rounded.
"""

from __future__ import annotations

from reval_assets.domain.schemas import HIDDEN_DISCREPANCIES
from reval_assets.sources.shapes.connection_logs import write_logs_documents, write_logs_latest
from reval_assets.sources.shapes.gmc import (
    GMC_DTO_FIELDS,
    write_gmc_documents,
    write_gmc_dto,
    write_gmc_envelopes,
    write_gmc_soap,
)
from reval_assets.sources.shapes.hidden import write_hidden_documents
from reval_assets.sources.shapes.recommendations import (
    write_recommendations_canonical,
    write_recommendations_documents,
    write_recommendations_records,
    write_recommendations_summary,
)
from reval_assets.sources.shapes.spelling import (
    CONNECTION_LOG_CLASS,
    CONNECTION_REQUEST_LOG_CLASS,
    DOCTORS_CLASS,
    HIDDEN_CLASS,
    LATEST_COLLECTION,
    RECOMMENDATION_CLASS,
    Layout,
    Writer,
    as_given,
    canonical_writer,
    disconnected,
    jackson_date,
)
from reval_assets.sources.shapes.trainees import TIS_DTO_FIELDS, tis_writer

__all__ = ["CONNECTION_LOG_CLASS", "CONNECTION_REQUEST_LOG_CLASS", "DOCTORS_CLASS", "GMC_DTO_FIELDS", "HIDDEN_CLASS",
           "LATEST_COLLECTION", "RECOMMENDATION_CLASS", "REAL_SHAPES", "SHAPES", "TIS_DTO_FIELDS", "Layout", "Writer",
           "disconnected", "writer"]

SHAPES: dict[str, dict[str, Writer]] = {
    "gmc_doctors": {"canonical": canonical_writer("gmc_doctors"), "dto": write_gmc_dto,
                    "envelopes": write_gmc_envelopes, "documents": write_gmc_documents, "soap": write_gmc_soap},
    "tis_trainees": {"canonical": canonical_writer("tis_trainees"), "dto": tis_writer(as_given),
                     "jackson": tis_writer(jackson_date)},
    "recommendation_records": {"canonical": write_recommendations_canonical, "summary": write_recommendations_summary,
                               "documents": write_recommendations_documents, "records": write_recommendations_records},
    "connection_logs": {"canonical": canonical_writer("connection_logs"), "documents": write_logs_documents,
                        "latest": write_logs_latest},
    HIDDEN_DISCREPANCIES.name: {"canonical": canonical_writer(HIDDEN_DISCREPANCIES.name),
                                "documents": write_hidden_documents},
}


# One real shape per input, as the original services hand them over: what `reval sample-export --real` writes.
REAL_SHAPES: dict[str, str] = {"gmc_doctors": "envelopes", "tis_trainees": "jackson",
                               "recommendation_records": "summary", "connection_logs": "documents",
                               HIDDEN_DISCREPANCIES.name: "documents"}


def writer(name: str, shape: str) -> Writer:
    """The writer of input `name` in `shape`; a KeyError naming the shapes known otherwise."""
    shapes = SHAPES.get(name)
    if shapes is None:
        raise KeyError(f"unknown raw input {name!r}; expected one of {', '.join(SHAPES)}")
    if shape not in shapes:
        raise KeyError(f"unknown shape {shape!r} of {name}; expected one of {', '.join(shapes)}")
    return shapes[shape]
