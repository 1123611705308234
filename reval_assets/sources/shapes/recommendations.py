"""Recommendations: the summary payload, Mongo documents and bare records."""

from __future__ import annotations

from reval_assets.domain.enums import GmcOutcome, UnderNotice
from reval_assets.sources.shapes.spelling import (
    RECOMMENDATION_CLASS,
    Files,
    Layout,
    Records,
    distinct,
    enum_name,
    json_list,
    json_object,
    mongo_date,
    object_id,
    one_file,
)


def write_recommendations_canonical(records: Records, layout: Layout) -> Files:
    """Today's payload: countTotal is the number of records, the list under `layout.list_key`."""
    payload = {"countTotal": len(records), layout.list_key: records}
    return one_file("recommendation_records", json_object(payload, layout))


def write_recommendations_summary(records: Records, layout: Layout) -> Files:
    """The TraineeSummaryDto as the recommendation service pretty-prints it: countTotal is the number of
    doctors (the GMC input's, if written in the same export, else the recommendations' distinct gmcNumbers),
    countUnderNotice theirs under notice (Yes or On Hold), one page holding every record."""
    doctors = layout.context.get("gmc_doctors")
    if doctors is None:
        count, under = distinct(r.get("gmcNumber") for r in records), 0
    else:
        count = distinct(d.get("gmcReferenceNumber") for d in doctors)
        under = sum(1 for d in doctors if d.get("underNotice") in (UnderNotice.YES, UnderNotice.ON_HOLD))
    payload = {"countTotal": count, "countUnderNotice": under, "totalPages": 1 if records else 0,
               "totalResults": len(records), "traineeInfo": records}
    return one_file("recommendation_records", json_object(payload, layout, indent=True))


def recommendation_document(record: dict) -> dict:
    """A Recommendation document as mongoexport writes it (no `_id` for a legacy record without an id)."""
    document = {"_id": object_id(record.get("id"))} if record.get("id") is not None else {}
    return document | {
        "_class": RECOMMENDATION_CLASS,
        "gmcNumber": record.get("gmcNumber"),
        "outcome": enum_name(GmcOutcome, record.get("outcome")),
        "recommendationType": record.get("recommendationType"),
        "recommendationStatus": record.get("recommendationStatus"),
        "gmcSubmissionDate": mongo_date(record.get("gmcSubmissionDate")),
        "actualSubmissionDate": mongo_date(record.get("actualSubmissionDate")),
        "gmcRevalidationId": None,
        "deferralDate": mongo_date(record.get("deferralDate")),
        "deferralReason": record.get("deferralReason"),
        "deferralSubReason": record.get("deferralSubReason"),
        "comments": [],
        "admin": record.get("admin"),
    }


def write_recommendations_documents(records: Records, layout: Layout) -> Files:
    documents = [recommendation_document(r) for r in records]
    return one_file("recommendation_records", json_list(documents, layout, lines=True))


def recommendation_record(record: dict) -> dict:
    """A TraineeRecommendationRecordDto: the id as recommendationId, the outcome label as gmcOutcome."""
    return {
        "gmcNumber": record.get("gmcNumber"),
        "recommendationId": record.get("id"),
        "gmcOutcome": record.get("outcome"),
        "recommendationType": record.get("recommendationType"),
        "recommendationStatus": record.get("recommendationStatus"),
        "gmcSubmissionDate": record.get("gmcSubmissionDate"),
        "actualSubmissionDate": record.get("actualSubmissionDate"),
        "gmcRevalidationId": None,
        "deferralDate": record.get("deferralDate"),
        "deferralReason": record.get("deferralReason"),
        "deferralSubReason": record.get("deferralSubReason"),
        "deferralComment": None,
        "comments": [],
        "admin": record.get("admin"),
    }


def write_recommendations_records(records: Records, layout: Layout) -> Files:
    return one_file("recommendation_records", json_list([recommendation_record(r) for r in records], layout))
