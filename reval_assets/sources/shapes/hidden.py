"""Hidden discrepancies: the Mongo documents."""

from __future__ import annotations

from reval_assets.domain.schemas import HIDDEN_DISCREPANCIES
from reval_assets.sources.shapes.spelling import (
    HIDDEN_CLASS,
    Files,
    Layout,
    Records,
    json_list,
    made_up_id,
    mongo_date,
    mongo_time,
    one_file,
)

_HIDDEN_FIELDS = ("gmcId", "currentDesignatedBodyCode", "programmeOwnerDesignatedBodyCode",
                  "hiddenForDesignatedBodyCode", "hiddenBy", "reason")


def hidden_document(record: dict, position: int) -> dict:
    document = {"_id": made_up_id(position), "_class": HIDDEN_CLASS}
    document |= {name: record.get(name) for name in _HIDDEN_FIELDS}
    return document | {"hiddenDateTime": mongo_time(record.get("hiddenDateTime")),
                       "hiddenUntilDate": mongo_date(record.get("hiddenUntilDate"))}


def write_hidden_documents(records: Records, layout: Layout) -> Files:
    documents = [hidden_document(r, i) for i, r in enumerate(records)]
    return one_file(HIDDEN_DISCREPANCIES.name, json_list(documents, layout, lines=True))
