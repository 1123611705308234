"""The GMC's SOAP `GetDoctorsForDB` response: build one (for tests and demos) and read a saved one.

One response answers one designated body's request, so it names no body (the request did) and has
no last-updated time; the GMC returns only the body's connected doctors. `ReturnCode` `0` is success.

    Envelope/Body/GetDoctorsForDBResponse/GetDoctorsForDBResult/
        Doctors/GetDoctorsForDBResponse_Doctor*   (GMCReferenceNumber, DoctorFirstName, ... all optional)
        ClientRequestID, GMCRequestID, ReturnCode

Elements are matched by their namespace-qualified names. A response whose elements below the SOAP
envelope carry no namespace at all (a saved copy with its default namespace stripped) is accepted
too, as the same local names; any other namespace is refused (it is another service's answer).
Hostile XML never expands: entities are not resolved, nothing is fetched, and a document type
declaration (which a SOAP message may not carry) is refused.
"""

from __future__ import annotations

from lxml import etree

from reval_assets.sources.base import SourceError

GMC_NS = "https://webcache.gmc-uk.org/GMCWebServices/"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SUCCESS = "0"
_DTD_REFUSED = "XML with a document type declaration (DOCTYPE) is refused: a SOAP message has none"

# The doctor's elements, in the GMC's order, and the wire name each becomes (None: not kept).
DOCTOR_ELEMENTS: dict[str, str | None] = {
    "GMCReferenceNumber": "gmcReferenceNumber",
    "DoctorFirstName": "doctorFirstName",
    "DoctorLastName": "doctorLastName",
    "SubmissionDate": "submissionDate",
    "DoctorStatus": None,
    "Breach": None,
    "DateAdded": "dateAdded",
    "UnderNotice": "underNotice",
    "Investigation": None,
    "PreliminaryInvestigation": None,
    "Sanction": "sanction",
}
# Where a DoctorsForDbDto-like dict keeps each element's value when building a response.
_DTO_FIELD = {element: wire or element[0].lower() + element[1:] for element, wire in DOCTOR_ELEMENTS.items()}


def _q(name: str, namespace: str = GMC_NS) -> str:
    return f"{{{namespace}}}{name}"


def _doctor(parent: etree._Element, record: dict) -> None:
    doctor = etree.SubElement(parent, _q("GetDoctorsForDBResponse_Doctor"))
    for element, field in _DTO_FIELD.items():
        value = record.get(field)
        if value is not None:  # every element is optional: a null is left out, an empty text kept empty
            etree.SubElement(doctor, _q(element)).text = str(value)


def soap_response(records: list[dict], *, return_code: str = SUCCESS, client_request_id: str = "reval-assets",
                  gmc_request_id: str = "1") -> bytes:
    """A SOAP 1.1 GetDoctorsForDB response holding `records` (DoctorsForDbDto-like dicts, our wire names)."""
    envelope = etree.Element(_q("Envelope", SOAP_NS), nsmap={"soap": SOAP_NS, None: GMC_NS})
    body = etree.SubElement(envelope, _q("Body", SOAP_NS))
    result = etree.SubElement(etree.SubElement(body, _q("GetDoctorsForDBResponse")), _q("GetDoctorsForDBResult"))
    doctors = etree.SubElement(result, _q("Doctors"))
    for record in records:
        _doctor(doctors, record)
    for name, value in (("ClientRequestID", client_request_id), ("GMCRequestID", gmc_request_id),
                        ("ReturnCode", return_code)):
        etree.SubElement(result, _q(name)).text = value
    return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


def _parse(data: bytes, file: str) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                             huge_tree=False, remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as error:
        if b"<!DOCTYPE" in data:  # e.g. libxml2's entity amplification limit stopped a billion laughs
            raise SourceError(f"{_DTD_REFUSED} ({error})", file=file) from None
        raise SourceError(f"invalid XML: {error}", file=file) from None
    if root.getroottree().docinfo.doctype or root.getroottree().docinfo.internalDTD is not None:
        raise SourceError(_DTD_REFUSED, file=file)
    return root


def _local(element: etree._Element) -> tuple[str | None, str]:
    qname = etree.QName(element)
    return qname.namespace, qname.localname


def _child(parent: etree._Element, name: str, namespace: str | None, file: str, *, required: bool = True
           ) -> etree._Element | None:
    """The one child `name` of `parent`, in `namespace` or (below the envelope) in no namespace."""
    spaces = (namespace,) if namespace == SOAP_NS else (namespace, None)
    wanted = tuple((space, name) for space in spaces)
    found = [c for c in parent if isinstance(c.tag, str) and _local(c) in wanted]
    if len(found) > 1:
        raise SourceError(f"not a GetDoctorsForDB response: {len(found)} {name} elements", file=file)
    if not found and required:
        raise SourceError(f"not a GetDoctorsForDB response: no {name} element in {_local(parent)[1]}", file=file)
    return found[0] if found else None


def _result(root: etree._Element, file: str) -> etree._Element:
    if _local(root) != (SOAP_NS, "Envelope"):
        namespace, name = _local(root)
        raise SourceError(f"not a SOAP 1.1 envelope: the root element is {name} in namespace {namespace or 'none'}",
                          file=file)
    body = _child(root, "Body", SOAP_NS, file)
    fault = _child(body, "Fault", SOAP_NS, file, required=False)
    if fault is not None:
        text = " ".join(t.strip() for t in fault.itertext() if t.strip())
        raise SourceError(f"the GMC answered with a SOAP fault: {text[:300]}", file=file)
    response = _child(body, "GetDoctorsForDBResponse", GMC_NS, file)
    return _child(response, "GetDoctorsForDBResult", GMC_NS, file)


def _text(element: etree._Element | None) -> str | None:
    return None if element is None else (element.text or "")


def _read_doctor(doctor: etree._Element, body: str, file: str) -> dict:
    record: dict[str, str | None] = {}
    for element, wire in DOCTOR_ELEMENTS.items():
        if wire is not None:
            record[wire] = _text(_child(doctor, element, GMC_NS, file, required=False))
    record["designatedBodyCode"] = body
    return record


def read_soap_response(data: bytes, body: str, file: str) -> list[dict]:
    """The doctors of a saved GetDoctorsForDB response for designated body `body`, keyed by our wire names.

    Each dict has gmcReferenceNumber, doctorFirstName, doctorLastName, submissionDate, dateAdded,
    underNotice, sanction (None where the element is absent, "" where it is empty) and
    designatedBodyCode = `body`. A ReturnCode other than 0, a SOAP fault, XML that does not parse
    or is not a GetDoctorsForDB response raise `SourceError` naming the file (and body and code).
    """
    result = _result(_parse(data, file), file)
    code = _text(_child(result, "ReturnCode", GMC_NS, file, required=False))
    if code is None:
        raise SourceError(f"GetDoctorsForDB response for designated body {body} has no ReturnCode", file=file)
    if code.strip() != SUCCESS:
        raise SourceError(f"the GMC refused GetDoctorsForDB for designated body {body}: ReturnCode {code.strip()!r} "
                          f"(0 is success)", file=file, field="ReturnCode")
    doctors = _child(result, "Doctors", GMC_NS, file, required=False)
    if doctors is None:
        return []
    rows = [c for c in doctors if isinstance(c.tag, str)]
    expected = ((GMC_NS, "GetDoctorsForDBResponse_Doctor"), (None, "GetDoctorsForDBResponse_Doctor"))
    odd = next((c for c in rows if _local(c) not in expected), None)
    if odd is not None:
        raise SourceError(f"not a GetDoctorsForDB response: unexpected {_local(odd)[1]} in Doctors", file=file)
    return [_read_doctor(doctor, body, file) for doctor in rows]
