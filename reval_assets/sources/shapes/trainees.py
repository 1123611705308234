"""TIS trainees: ConnectionInfoDto records, with dates as given or as Jackson arrays."""

from __future__ import annotations

from collections.abc import Callable

from reval_assets.sources.shapes.spelling import Files, Layout, Records, Writer, json_list, one_file

TIS_DTO_FIELDS = ("tcsPersonId", "gmcReferenceNumber", "doctorFirstName", "doctorLastName", "submissionDate",
                  "programmeName", "programmeMembershipType", "designatedBody", "tcsDesignatedBody",
                  "programmeOwner", "placementGrade", "programmeMembershipStartDate", "programmeMembershipEndDate",
                  "curriculumEndDate", "dataSource", "syncEnd")
TIS_DATE_FIELDS = ("submissionDate", "programmeMembershipStartDate", "programmeMembershipEndDate",
                   "curriculumEndDate")


def tis_dto(record: dict, date: Callable[[object], object]) -> dict:
    """A ConnectionInfoDto with every field (nulls too), dates spelled by `date`, dataSource TCS."""
    dto = {name: record.get(name) for name in TIS_DTO_FIELDS} | {"dataSource": "TCS", "syncEnd": None}
    return dto | {name: date(dto[name]) for name in TIS_DATE_FIELDS}


SYNC_END_MARKER = dict.fromkeys(TIS_DTO_FIELDS) | {"syncEnd": True}


def tis_writer(date: Callable[[object], object]) -> Writer:
    def write(records: Records, layout: Layout) -> Files:
        return one_file("tis_trainees", json_list([*(tis_dto(r, date) for r in records), SYNC_END_MARKER], layout))

    return write
