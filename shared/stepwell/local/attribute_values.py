"""DynamoDB attribute values that cross the wire unchanged.

A response's items are most of its size, and both moto's JSON serializer and botocore's parser
walk every attribute value member by member (ten members each, a map or a list value again
for each element). For a value with no binary in it, both walks give back what they were
handed: a string, number, boolean or null as it is, sets and lists element for element, maps
key for key. :func:`plain` says whether a value is one of those, so that the local stack's
in-process path can hand it on as it is (``quick_moto.quick_attribute_values``,
``quick_calls``); anything else (binary, which the wire carries in base64, or a shape either
walk would change) takes their own way.
"""

from __future__ import annotations

from typing import Any

_SCALARS: dict[str, type] = {"S": str, "N": str, "BOOL": bool, "NULL": bool}


def plain(value: Any) -> bool:
    """Whether ``value`` is one attribute value (a dict of one member) with no binary in it,
    whose every string, number, boolean and null has its wire type."""
    if type(value) is not dict or len(value) != 1:
        return False
    for kind, inner in value.items():
        scalar = _SCALARS.get(kind)
        if scalar is not None:
            return type(inner) is scalar
        if kind in ("SS", "NS"):
            return type(inner) is list and all(type(element) is str for element in inner)
        if kind == "L":
            return type(inner) is list and all(plain(element) for element in inner)
        if kind == "M":
            return type(inner) is dict and all(
                type(name) is str and plain(element) for name, element in inner.items()
            )
    return False
