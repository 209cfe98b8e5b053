"""The request shapes of SQS, checked at the edge before any action runs.

The shapes come from botocore's model of the SQS API, the same one the SDKs are built from:
each member's JSON type (strings, 32-bit integers, base64 blobs, lists, maps, structures) and
which members are required. A request that breaks them is answered like SQS's JSON front end
does, with SerializationException (wrong type) or MissingParameter, so the actions behind can
rely on the types. JSON nulls count as absent members. Lone surrogates (JSON escapes such as
"\\ud800" that encode no character) are refused in every string but the two whose characters
SQS checks against its allowed set itself (a body and a String attribute value answer
InvalidMessageContents), since no SQLite or UTF-8 encoding can store them.
"""

import binascii
import functools
import re
from collections.abc import Callable
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, Shape, StructureShape

from local.sqs.errors import SqsError, invalid, missing

# A checker returns the value as the actions see it (a structure without its null members).
Checker = Callable[[Any], Any]

# No SQS request has a long or a boolean member today; the model may grow them.
INTEGER_BITS = {"integer": 32, "long": 64}
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
CHARACTERS_CHECKED_BY_ACTION = {"MessageBody", "StringValue"}


def wrong_type(path: str, expected: str) -> SqsError:
    return SqsError("SerializationException", f"Expected {expected} for {path}.")


@functools.cache
def operation_shapes() -> dict[str, Checker]:
    """Action name -> the checker of its request, for every action of the SQS API (loaded once)."""
    model = botocore.session.get_session().get_service_model("sqs")
    shapes = {name: model.operation_model(name).input_shape for name in model.operation_names}
    return {name: structure_checker(shape, "the request") for name, shape in shapes.items() if shape}


def checker(shape: Shape, path: str, member_name: str = "") -> Checker:
    if isinstance(shape, StructureShape):
        return structure_checker(shape, path)
    if isinstance(shape, ListShape):
        return list_checker(shape, path)
    if isinstance(shape, MapShape):
        return map_checker(shape, path)
    if shape.type_name in INTEGER_BITS:
        return integer_checker(path, INTEGER_BITS[shape.type_name])
    if shape.type_name == "blob":
        return blob_checker(path)
    if shape.type_name == "boolean":
        return boolean_checker(path)
    return string_checker(path, check_characters=member_name not in CHARACTERS_CHECKED_BY_ACTION)


def structure_checker(shape: StructureShape, path: str) -> Checker:
    members = {
        name: checker(member, name if path == "the request" else f"{path}.{name}", name)
        for name, member in shape.members.items()
    }
    required = tuple(shape.required_members)

    def check(value: Any) -> Any:
        if not isinstance(value, dict):
            raise wrong_type(path, "a structure (a JSON object)")
        if None in value.values():
            value = {key: item for key, item in value.items() if item is not None}
        for name in required:
            if name not in value:
                raise missing(name)
        for name, item in value.items():
            check_member = members.get(name)
            if check_member is not None:  # unknown members are ignored, as SQS does
                checked = check_member(item)
                if checked is not item:
                    value = {**value, name: checked}
        return value

    return check


def list_checker(shape: ListShape, path: str) -> Checker:
    check_member = checker(shape.member, f"{path}[]")

    def check(value: Any) -> Any:
        if not isinstance(value, list):
            raise wrong_type(path, "a list")
        checked = [check_member(item) for item in value]
        return value if all(new is old for new, old in zip(checked, value, strict=True)) else checked

    return check


def map_checker(shape: MapShape, path: str) -> Checker:
    check_key = string_checker(f"a key of {path}", check_characters=True)
    check_value = checker(shape.value, f"{path}{{}}")

    def check(value: Any) -> Any:
        if not isinstance(value, dict):
            raise wrong_type(path, "a map (a JSON object)")
        checked = {check_key(key): check_value(item) for key, item in value.items()}
        return value if all(checked[key] is item for key, item in value.items()) else checked

    return check


def integer_checker(path: str, bits: int) -> Checker:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise wrong_type(path, f"a {bits}-bit integer")
        return value

    return check


def boolean_checker(path: str) -> Checker:
    def check(value: Any) -> Any:
        if not isinstance(value, bool):
            raise wrong_type(path, "a boolean")
        return value

    return check


def blob_checker(path: str) -> Checker:
    def check(value: Any) -> Any:
        if not isinstance(value, str):
            raise wrong_type(path, "a base64 string")
        try:
            binascii.a2b_base64(value, strict_mode=True)
        except (binascii.Error, ValueError):
            raise wrong_type(path, "valid base64") from None
        return value

    return check


def string_checker(path: str, check_characters: bool) -> Checker:
    def check(value: Any) -> Any:
        if not isinstance(value, str):
            raise wrong_type(path, "a string")
        # isascii() is constant time: only non-ASCII strings are searched.
        if check_characters and not value.isascii() and LONE_SURROGATE.search(value):
            raise invalid(f"The value of {path} contains an unpaired surrogate, which is no character.")
        return value

    return check
