"""ingest.rest.parse_json on its own: whatever the text, a document or InvalidInput, never another
exception; and a number it accepts is the number written."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.errors import InvalidInput
from ingest.models import MAX_SAFE_INTEGER
from ingest.rest import parse_json
from tests.json_bodies import bodies

# JSON's number grammar, with mantissas and exponents longer than any double's.
NUMBER_LITERALS = st.from_regex(
    r"-?(0|[1-9][0-9]{0,40})(\.[0-9]{1,40})?([eE][+-]?[0-9]{1,30})?", fullmatch=True
)


@settings(max_examples=2_000)
@given(text=NUMBER_LITERALS)
def test_a_number_is_accepted_only_as_written(text):
    """GIVEN any JSON number literal WHEN it is parsed THEN either it is refused naming the field, or
    the value is numerically what was written (integers within the safe range)."""
    parsed = _parsed(f'{{"n": {text}}}')
    if isinstance(parsed, InvalidInput):
        assert parsed.field == "n"
    else:
        assert Decimal(repr(parsed["n"])) == Decimal(text)
        assert not isinstance(parsed["n"], int) or abs(parsed["n"]) <= MAX_SAFE_INTEGER


@settings(max_examples=1_000)
@given(text=st.text() | bodies())
def test_any_text_is_a_document_or_invalid_input(text):
    """GIVEN any text WHEN it is parsed THEN a document comes back or InvalidInput, nothing else; and a
    document that comes back is what Python's own parser makes of the text."""
    parsed = _parsed(text)
    if isinstance(parsed, InvalidInput):
        assert parsed.field
    else:
        assert parsed == json.loads(text)


def _parsed(text: str) -> Any:
    """The document, or the InvalidInput raised; any other exception fails the test."""
    try:
        return parse_json(text)
    except InvalidInput as error:
        return error
