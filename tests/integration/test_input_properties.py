"""Generated input through the real handlers: promise 1 (what a 202 acknowledges is what is stored) and
promise 4 (anything else is a 4xx naming the field), for every class of body and event shape.

Bodies are generated as JSON text (tests.json_bodies), including what Python's json module would take
but must not be stored. Each goes through the producer (moto's SQS), the consumer and the reader (a
real MariaDB).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from local.lambda_runtime import LambdaContext
from local.testdata import api_event, sqs_event, sqs_record
from tests.conftest import load_handler
from tests.json_bodies import HOSTILE, VALID_IDS, bodies

PROPERTY_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    # The handlers and the database are set up once per test: each example posts a new request.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def pipeline(fresh_database, queues, monkeypatch):
    producer = load_handler("producer", monkeypatch, queues.env)
    consumer = load_handler("consumer", monkeypatch, fresh_database.env | queues.env)
    reader = load_handler("reader", monkeypatch, fresh_database.env)
    return producer, consumer, reader


def _reply(response: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return response["statusCode"], json.loads(response["body"])


def _as_stored(document: dict[str, Any]) -> dict[str, Any]:
    """The one documented normalisation: attributes default to {}."""
    return {"attributes": {}} | document


@PROPERTY_SETTINGS
@given(body=bodies())
def test_a_posted_body_is_stored_as_sent_or_refused_naming_the_field(pipeline, queues, lambda_context, body):
    """GIVEN any JSON text under the size limit WHEN it is posted, consumed and read back THEN either
    202 and the reader returns an equal document, or a 4xx whose field the message names, and nothing
    is enqueued."""
    producer, consumer, reader = pipeline
    status, reply = _reply(producer.handler(api_event("POST", "/customers", body), lambda_context))
    messages = queues.messages(queues.queue_url)
    event(
        f"{status} {reply['error']['code'] if 'error' in reply else 'accepted'}"
    )  # --hypothesis-show-statistics

    if status != 202:
        assert 400 <= status < 500, reply
        field = reply["error"]["field"]
        assert field
        assert reply["error"]["message"]
        assert messages == []
        return

    [message] = messages
    customer_id = json.loads(body)["customer_id"]
    # A context of its own, as Lambda gives each invocation: the consumer's deadline is its remaining time.
    batch = sqs_event(sqs_record(message["Body"], group=customer_id))
    assert consumer.handler(batch, LambdaContext(function_name="consumer")) == {"batchItemFailures": []}
    # As Lambda does after a batch without failures (else the FIFO group stays locked for the next example).
    queues.sqs.delete_message(QueueUrl=queues.queue_url, ReceiptHandle=message["ReceiptHandle"])
    request_id = reply["request_id"]
    read_status, record = _reply(
        reader.handler(
            api_event(
                "GET",
                f"/records/{request_id}",
                resource="/records/{request_id}",
                path_parameters={"request_id": request_id},
            ),
            lambda_context,
        )
    )
    assert read_status == 200
    assert record["payload"] == _as_stored(json.loads(body))


# ---- event shapes: what API Gateway's proxy integration can send besides the body ---------------------

texts = HOSTILE.texts
header_names = st.sampled_from(["Content-Type", "content-type", "Idempotency-Key", "idempotency-key"]) | texts
header_values = st.sampled_from(["application/json", "application/json; charset=utf-8", "order-1"]) | texts
headers = st.none() | st.dictionaries(header_names, header_values, max_size=4).map(
    lambda extra: {"Content-Type": "application/json"} | extra
)
string_maps = st.none() | st.dictionaries(texts, texts, max_size=3)
authorizers = st.sampled_from([None, {}, {"claims": None}, {"claims": {}}]) | st.fixed_dictionaries(
    {"claims": st.fixed_dictionaries({"sub": texts})}
)
identities = st.sampled_from([None, {}, {"userArn": None}]) | st.fixed_dictionaries(
    {"userArn": texts | st.just("arn:aws:sts::123456789012:assumed-role/crm/session")}
)
request_bodies = st.none() | texts | bodies() | st.just('{"customer_id": "c-1"}')


@st.composite
def events(draw: st.DrawFn, method: str, resource: str, path: str, parameter: str | None) -> dict[str, Any]:
    proxy_event = api_event(method, path, resource=resource)
    header_map = draw(headers)
    proxy_event["headers"] = header_map
    proxy_event["multiValueHeaders"] = (
        None if header_map is None else {name: [value] for name, value in header_map.items()}
    )
    query = draw(string_maps)
    proxy_event["queryStringParameters"] = query
    proxy_event["multiValueQueryStringParameters"] = (
        None if query is None else {name: [value] for name, value in query.items()}
    )
    if parameter is not None:
        value = path.rsplit("/", 1)[1]
        proxy_event["pathParameters"] = draw(st.sampled_from([{parameter: value}, None, {}]))
    proxy_event["body"] = draw(request_bodies)
    proxy_event["isBase64Encoded"] = draw(st.sampled_from([False, True, None]))
    context = proxy_event["requestContext"]
    context["authorizer"] = draw(authorizers)
    context["identity"] = draw(identities)
    for piece in draw(st.sets(st.sampled_from(["authorizer", "identity", "requestId", "stage"]))):
        del context[piece]
    return proxy_event


path_segments = VALID_IDS | st.text(
    HOSTILE.characters.filter(lambda character: character != "/"), min_size=1, max_size=70
)


@st.composite
def api_events(draw: st.DrawFn) -> dict[str, Any]:
    segment = draw(path_segments)
    return draw(
        st.one_of(
            events("POST", "/customers", "/customers", None),
            events("GET", "/customers/{customer_id}", f"/customers/{segment}", "customer_id"),
            events("GET", "/records/{request_id}", f"/records/{segment}", "request_id"),
        )
    )


@PROPERTY_SETTINGS
@given(proxy_event=api_events())
def test_no_event_shape_makes_a_handler_raise_or_answer_5xx(pipeline, lambda_context, proxy_event):
    """GIVEN any headers (or none), query strings, path parameters, base64 flag and request context
    WHEN the producer or the reader gets the event THEN it answers 2xx or 4xx with the JSON error body."""
    producer, _, reader = pipeline
    handler = producer if proxy_event["httpMethod"] == "POST" else reader
    status, reply = _reply(handler.handler(proxy_event, lambda_context))
    event(f"{proxy_event['httpMethod']} {status}")
    assert status < 500, reply
    if status >= 400:
        assert reply["error"]["code"]
        assert reply["error"]["message"]


@pytest.fixture
def producer_without_queue(queues, monkeypatch):
    """A producer whose every SendMessage fails: its queue does not exist."""
    return load_handler("producer", monkeypatch, queues.env | {"QUEUE_URL": queues.queue_url + "-gone"})


@PROPERTY_SETTINGS
@given(body=bodies())
def test_with_sqs_failing_a_body_gets_a_4xx_or_a_503_with_retry_after(
    producer_without_queue, lambda_context, body
):
    """GIVEN SQS refusing every send WHEN any body is posted THEN a body the producer would accept gets
    503 with Retry-After, any other a 4xx: never another 5xx."""
    response = producer_without_queue.handler(api_event("POST", "/customers", body), lambda_context)
    status, reply = _reply(response)
    assert status == 503 or 400 <= status < 500, reply
    if status == 503:
        assert reply["error"]["code"] == "queue_unavailable"
        assert int(response["multiValueHeaders"]["Retry-After"][0]) > 0
