"""GMC doctors: DoctorsForDbDto records, DoctorsForDbCollectedEvent envelopes, DoctorsForDB documents, saved
SOAP responses."""

from __future__ import annotations

from reval_assets.domain.enums import UnderNotice
from reval_assets.sources.gmc_soap import soap_response
from reval_assets.sources.shapes.spelling import (
    BODY_FILE,
    DOCTORS_CLASS,
    LATEST_COLLECTION,
    OLDER_COLLECTION,
    Files,
    Layout,
    Records,
    disconnected,
    enum_name,
    json_list,
    mongo_date,
    mongo_time,
    one_file,
    parsed_time,
)

GMC_DTO_FIELDS = ("gmcReferenceNumber", "doctorFirstName", "doctorLastName", "submissionDate", "dateAdded",
                  "underNotice", "sanction", "doctorStatus", "designatedBodyCode", "gmcLastUpdatedDateTime")


def gmc_dto(record: dict) -> dict:
    """A DoctorsForDbDto: no existsInGmc (a disconnected doctor keeps only its null designatedBodyCode)."""
    return {name: record.get(name) for name in GMC_DTO_FIELDS}


def write_gmc_dto(records: Records, layout: Layout) -> Files:
    return one_file("gmc_doctors", json_list([gmc_dto(r) for r in records], layout))


def _by_body(records: Records) -> dict[object, Records]:
    """Connected doctors grouped by designated body, bodies in sorted order (None last)."""
    groups: dict[object, Records] = {}
    for record in records:
        if not disconnected(record):
            groups.setdefault(record.get("designatedBodyCode"), []).append(record)
    return dict(sorted(groups.items(), key=lambda item: (item[0] is None, str(item[0]))))


def _envelope(body: object, requested: str, doctors: Records) -> dict:
    return {"designatedBodyCode": body, "requestDateTime": requested, "doctors": doctors}


def write_gmc_envelopes(records: Records, layout: Layout) -> Files:
    """DoctorsForDbCollectedEvent envelopes, one per body at LATEST_COLLECTION, and, written last, an older
    collection of the first body holding every disconnected doctor (there under that body) and stale copies
    of two of its connected doctors (whose latest record must win)."""
    bodies = _by_body(records)
    envelopes = [_envelope(body, LATEST_COLLECTION, [gmc_dto(r) for r in group]) for body, group in bodies.items()]
    gone = [r for r in records if disconnected(r)]
    if gone:
        host = next((body for body in bodies if body is not None), None)
        if host is None:
            raise ValueError("envelopes shape: disconnected doctors need a body with connected doctors to be "
                             "left out of its latest collection")
        stale = [gmc_dto(r) | {"doctorFirstName": f"Stale {r.get('doctorFirstName')}"} for r in bodies[host][:2]]
        older = stale + [gmc_dto(r) | {"designatedBodyCode": host} for r in gone]
        envelopes.append(_envelope(host, OLDER_COLLECTION, older))
    return one_file("gmc_doctors", json_list(envelopes, layout))


def _boolean(text: object) -> object:
    """existsInGmc as the JSON boolean a document holds; null (the GMC returned them) is true."""
    if text is None:
        return True
    spelled = text.strip().lower() if isinstance(text, str) else None
    return spelled == "true" if spelled in ("true", "false") else text


def gmc_document(record: dict, position: int) -> dict:
    """A DoctorsForDB document as mongoexport writes it; every other one's gmcLastUpdatedDateTime in ms."""
    updated = record.get("gmcLastUpdatedDateTime")
    day = updated[:10] if isinstance(updated, str) and parsed_time(updated) else None
    return {
        "_id": record.get("gmcReferenceNumber"),
        "_class": DOCTORS_CLASS,
        "doctorFirstName": record.get("doctorFirstName"),
        "doctorLastName": record.get("doctorLastName"),
        "submissionDate": mongo_date(record.get("submissionDate")),
        "dateAdded": mongo_date(record.get("dateAdded")),
        "underNotice": enum_name(UnderNotice, record.get("underNotice")),
        "sanction": record.get("sanction"),
        "doctorStatus": record.get("doctorStatus"),
        "designatedBodyCode": record.get("designatedBodyCode"),
        "gmcLastUpdatedDateTime": mongo_time(updated, as_millis=position % 2 == 1),
        "existsInGmc": _boolean(record.get("existsInGmc")),
        "lastUpdatedDate": mongo_date(day),
    }


def write_gmc_documents(records: Records, layout: Layout) -> Files:
    documents = [gmc_document(r, i) for i, r in enumerate(records)]
    return one_file("gmc_doctors", json_list(documents, layout, lines=True))


def soap_file(body: object) -> str:
    if not isinstance(body, str) or not BODY_FILE.match(body):
        raise ValueError(f"soap shape: designated body {body!r} cannot name a file gmc/<body>.xml")
    return f"gmc/{body}.xml"


def write_gmc_soap(records: Records, layout: Layout) -> Files:
    """One saved GetDoctorsForDB response per designated body, `gmc/<body>.xml`, and no doctors_for_db.json.
    The GMC returns only connected doctors and no last-updated time: disconnected doctors (and connected ones
    with no body) cannot be written, nor gmcLastUpdatedDateTime or existsInGmc. `layout` does not apply."""
    return {soap_file(body): soap_response(group) for body, group in _by_body(records).items() if body is not None}
