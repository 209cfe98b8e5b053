"""API Gateway's request model (openapi.yaml, included by template.yaml) and ingest.models.CustomerIn
must agree.

API Gateway rejects a body the model refuses before the producer runs; the producer decodes the JSON
(ingest.rest.parse_json) and validates it with pydantic (ingest.producer.parse_customer). A body the
producer accepts must never be refused by API Gateway (that would turn away good data). The other way
round is harmless (the producer answers 400 itself) and happens only where JSON Schema cannot say what
the producer checks; those cases are listed in SCHEMA_MORE_LENIENT and SCHEMA_MORE_LENIENT_TEXTS.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings

from ingest import models
from ingest.errors import InvalidInput
from ingest.producer import parse_customer
from ingest.rest import parse_json
from local.template import Template
from tests.json_bodies import bodies


def _model_schema() -> dict[str, Any]:
    schema = Template().api_definition()["definitions"]["CustomerIn"]
    # API Gateway models are JSON Schema draft 4.
    jsonschema.Draft4Validator.check_schema(schema)
    return schema


SCHEMA = _model_schema()
VALIDATOR = jsonschema.Draft4Validator(SCHEMA)


def schema_accepts(body: Any) -> bool:
    return VALIDATOR.is_valid(body)


def producer_accepts_text(text: str) -> bool:
    try:
        parse_customer(parse_json(text))
    except InvalidInput:
        return False
    return True


def producer_accepts(body: Any) -> bool:
    return producer_accepts_text(json.dumps(body))


VALID = {
    "minimal": {"customer_id": "c1"},
    "every field": {
        "customer_id": "cust_0001-A",
        "name": "Ada Lovelace",
        "email": "ada.lovelace+ingest@example.co.uk",
        "phone": "+44 (20) 7946-0000",
        "address": "12 Analytical Row, London",
        "attributes": {"tier": "gold", "score": 7, "tags": ["a", "b"], "nested": {"x": None}},
    },
    "id of 64 characters": {"customer_id": "a" * 64},
    "name of 200 characters": {"customer_id": "c1", "name": "n" * 200},
    "unicode name": {"customer_id": "c1", "name": "Zoë Ñúñez 李"},
    "address of 500 characters": {"customer_id": "c1", "address": "x" * 500},
    "phone digits only": {"customer_id": "c1", "phone": "123"},
    "50 attributes": {"customer_id": "c1", "attributes": {f"k{i}": i for i in range(50)}},
    "empty attributes": {"customer_id": "c1", "attributes": {}},
    "email without a dot in the domain": {"customer_id": "c1", "email": "root@localhost"},
}

INVALID = {
    "no customer_id": {"name": "Ada"},
    "empty customer_id": {"customer_id": ""},
    "customer_id too long": {"customer_id": "a" * 65},
    "customer_id with a space": {"customer_id": "c 1"},
    "customer_id with a slash": {"customer_id": "c/1"},
    "customer_id a number": {"customer_id": 12},
    "unknown field": {"customer_id": "c1", "nickname": "x"},
    "empty name": {"customer_id": "c1", "name": ""},
    "name too long": {"customer_id": "c1", "name": "n" * 201},
    "name a number": {"customer_id": "c1", "name": 5},
    "email without @": {"customer_id": "c1", "email": "ada.example.com"},
    "email with a space": {"customer_id": "c1", "email": "ada lovelace@example.com"},
    "email too long": {"customer_id": "c1", "email": "a" * 250 + "@example.com"},
    "phone with letters": {"customer_id": "c1", "phone": "call me"},
    "phone too short": {"customer_id": "c1", "phone": "12"},
    "phone too long": {"customer_id": "c1", "phone": "1" * 33},
    "address too long": {"customer_id": "c1", "address": "x" * 501},
    "51 attributes": {"customer_id": "c1", "attributes": {f"k{i}": i for i in range(51)}},
    "attributes a list": {"customer_id": "c1", "attributes": ["a"]},
    "body a list": [{"customer_id": "c1"}],
    "body a string": "c1",
    # Sent as null, an optional field would be stored as absent: both refuse it.
    "name null": {"customer_id": "c1", "name": None},
    "email null": {"customer_id": "c1", "email": None},
    "phone null": {"customer_id": "c1", "phone": None},
    "address null": {"customer_id": "c1", "address": None},
    "customer_id null": {"customer_id": None},
}

# Refused by pydantic only; API Gateway passes them on and the producer answers 400.
SCHEMA_MORE_LENIENT = {
    # JSON Schema cannot bound the encoded size of an object.
    "attributes over 16 KiB of JSON": {"customer_id": "c1", "attributes": {"blob": "x" * (17 * 1024)}},
    # ECMA-262 / Java '$' also matches before a final newline; pydantic's regex engine does not.
    "customer_id with a trailing newline": {"customer_id": "c1\n"},
    "attributes nested 9 deep": {"customer_id": "c1", "attributes": {"a": [[[[[[[[1]]]]]]]]}},
    "an integer beyond 2**53-1": {"customer_id": "c1", "attributes": {"n": 2**53}},
    "U+FFFF in a name": {"customer_id": "c1", "name": "\uffff"},
    "a lone surrogate in an address": {"customer_id": "c1", "address": "\ud800"},
    "a control character in a name": {"customer_id": "c1", "name": "a\u0000b"},
}

# Refused by the producer only, and only sayable as JSON text: what Python's json module (like a
# lenient gateway parser) takes but could not be stored as sent.
SCHEMA_MORE_LENIENT_TEXTS = {
    "NaN": '{"customer_id": "c1", "attributes": {"n": NaN}}',
    "Infinity": '{"customer_id": "c1", "attributes": {"n": Infinity}}',
    "-Infinity": '{"customer_id": "c1", "attributes": {"n": -Infinity}}',
    "beyond double range": '{"customer_id": "c1", "attributes": {"n": 1e400}}',
    "below double range": '{"customer_id": "c1", "attributes": {"n": 1e-400}}',
    "more digits than a double holds": '{"customer_id": "c1", "attributes": {"n": 0.1000000000000000000001}}',
    "a duplicate key": '{"customer_id": "c1", "customer_id": "c2"}',
    "a duplicate key in attributes": '{"customer_id": "c1", "attributes": {"k": 1, "k": 2}}',
}


@pytest.mark.parametrize("body", VALID.values(), ids=VALID.keys())
def test_both_accept(body):
    assert producer_accepts(body)
    assert schema_accepts(body)


@pytest.mark.parametrize("body", INVALID.values(), ids=INVALID.keys())
def test_both_refuse(body):
    assert not producer_accepts(body)
    assert not schema_accepts(body)


@pytest.mark.parametrize("body", SCHEMA_MORE_LENIENT.values(), ids=SCHEMA_MORE_LENIENT.keys())
def test_only_the_producer_refuses(body):
    assert not producer_accepts(body)
    # If this starts to fail, the schema got stricter: move the case to INVALID.
    assert schema_accepts(body)


@pytest.mark.parametrize("text", SCHEMA_MORE_LENIENT_TEXTS.values(), ids=SCHEMA_MORE_LENIENT_TEXTS.keys())
def test_only_the_producer_refuses_these_texts(text):
    assert not producer_accepts_text(text)
    assert schema_accepts(json.loads(text))


@settings(max_examples=500, deadline=None)
@given(text=bodies())
def test_whatever_the_producer_accepts_the_model_accepts(text):
    """GIVEN generated bodies, within the limits and hostile WHEN the producer accepts one THEN API
    Gateway's model accepts it too."""
    if producer_accepts_text(text):
        assert schema_accepts(json.loads(text))


def test_patterns_and_limits_are_the_models_own():
    properties = SCHEMA["properties"]
    assert properties["customer_id"]["pattern"] == models.CUSTOMER_ID_PATTERN
    assert properties["email"]["pattern"] == models.EMAIL_PATTERN
    assert properties["phone"]["pattern"] == models.PHONE_PATTERN
    assert properties["attributes"]["maxProperties"] == models.MAX_ATTRIBUTES
    assert SCHEMA["additionalProperties"] is False
    assert SCHEMA["required"] == ["customer_id"]
    assert set(properties) == set(models.CustomerIn.model_fields)


def test_the_id_patterns_of_headers_and_path_parameters_are_the_models_own():
    # The reader and the producer match ids with these; the definition documents them for clients.
    parameters = {
        (parameter["in"], parameter["name"]): parameter
        for path in Template()
        .rendered()["Resources"]["IngestApi"]["Properties"]["DefinitionBody"]["paths"]
        .values()
        for operation in path.values()
        for parameter in operation.get("parameters", [])
    }
    assert parameters[("header", "Idempotency-Key")]["pattern"] == models.REQUEST_ID_PATTERN
    assert parameters[("path", "customer_id")]["pattern"] == models.CUSTOMER_ID_PATTERN
    assert parameters[("path", "request_id")]["pattern"] == models.REQUEST_ID_PATTERN
