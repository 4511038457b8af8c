"""One document, two formats: GeoReport v2 XML and its JSON mapping (the Spark convention).

A document is plain data: dicts, lists, strings, numbers, booleans and None. A list becomes a
container element whose children are named by `ITEM_TAGS` (`<services><service>…`); in JSON a
list stays a list, so a container of one is still an array.
"""
import json
import re
import xml.etree.ElementTree as ET

FORMATS = ("xml", "json")
CONTENT_TYPES = {"xml": "text/xml; charset=utf-8", "json": "application/json; charset=utf-8"}

ITEM_TAGS = {
    "services": "service", "service_requests": "request", "errors": "error", "attributes": "attribute",
    "values": "value", "endpoints": "endpoint", "formats": "format",
}

# characters XML 1.0 cannot carry at all (C0 controls other than tab, newline, return; lone surrogates; FFFE/FFFF)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def render(root: str, data, fmt: str) -> bytes:
    if fmt == "json":
        return json.dumps(data, ensure_ascii=False).encode()
    element = _element(root, data)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(element, encoding="unicode").encode()


def _element(tag: str, value) -> ET.Element:
    element = ET.Element(tag)
    if isinstance(value, list):
        child_tag = ITEM_TAGS[tag]
        element.extend(_element(child_tag, item) for item in value)
    elif isinstance(value, dict):
        element.extend(_element(key, item) for key, item in value.items())
    elif value is None:
        pass
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    else:
        element.text = _NOT_XML.sub("", str(value))  # ElementTree escapes & < > itself
    return element
