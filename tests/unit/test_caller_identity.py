"""Who is calling, as the producer's idempotency sees it, with the access tokens the API now requires."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from ingest.rest import caller_of
from local.testdata import api_event


def _with_claims(claims: dict[str, Any]) -> APIGatewayProxyEvent:
    event = api_event("POST", "/customers", {"customer_id": "cust-1"})
    event["requestContext"]["authorizer"] = {"claims": claims}
    return APIGatewayProxyEvent(event)


def _client_credentials_token(client_id: str, issued_at: int) -> dict[str, Any]:
    # What Cognito puts in a client-credentials access token: sub is the app client's id.
    return {
        "sub": client_id,
        "client_id": client_id,
        "token_use": "access",
        "scope": "customers/write",
        "iat": str(issued_at),
        "jti": f"jti-{issued_at}",
    }


def test_a_machine_client_is_one_caller_across_its_tokens_and_another_client_is_another():
    # GIVEN two tokens of the writer client, an hour apart, and one of another client
    first = caller_of(_with_claims(_client_credentials_token("writer1example", 1_700_000_000)))
    later = caller_of(_with_claims(_client_credentials_token("writer1example", 1_700_003_600)))
    other = caller_of(_with_claims(_client_credentials_token("writer2example", 1_700_000_000)))
    # THEN the client stays the same caller, so a retry with the same Idempotency-Key names the same
    # request, and two clients never share keys
    assert first == later == "writer1example"
    assert other != first


def test_a_person_is_the_same_caller_with_an_access_token_as_with_an_id_token():
    # GIVEN a person's user id in both kinds of token (the API now takes access tokens only)
    person = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    access = {"sub": person, "client_id": "people1example", "token_use": "access", "username": person}
    identity = {"sub": person, "aud": "people1example", "token_use": "id", "email": "ops@example.com"}
    # THEN their requests keep one identity, and keys used before the change still match
    assert caller_of(_with_claims(access)) == caller_of(_with_claims(identity)) == person
