"""Generated input through the real handlers: promise 1 (what a 202 acknowledges is what is stored) and
promise 4 (anything else is a 4xx naming the field), for every class of body and event shape.

Bodies are generated as JSON text, so that they can hold what Python values cannot say: NaN and
Infinity, duplicate keys, number literals of any length and precision, lone surrogates. Each goes through
the producer (moto's SQS), the consumer and the reader (a real MariaDB).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from local.testdata import api_event, sqs_event, sqs_record
from tests.conftest import load_handler

PROPERTY_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    # The handlers and the database are set up once per test: each example posts a new request.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass(frozen=True)
class Literal:
    """A JSON number literal, written as is (Python's own number types cannot say all of them)."""

    text: str


@dataclass(frozen=True)
class Pairs:
    """A JSON object as its key-value pairs, so that a key may appear twice."""

    items: tuple[tuple[str, Any], ...]


def to_json(value: Any) -> str:
    if isinstance(value, Literal):
        return value.text
    if isinstance(value, Pairs):
        return "{" + ",".join(f"{json.dumps(key)}:{to_json(item)}" for key, item in value.items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(map(to_json, value)) + "]"
    return json.dumps(value)  # a string (lone surrogates escaped as \udXXX), a bool or null


# Two kinds of input: well-formed customers within every limit (so that many get through and are read
# back), and hostile ones across the classes refused (so that every refusal is seen).
@dataclass(frozen=True)
class Alphabet:
    characters: st.SearchStrategy[str]
    numbers: st.SearchStrategy[Literal]

    @property
    def texts(self) -> st.SearchStrategy[str]:
        return st.text(self.characters, max_size=12)

    @property
    def keys(self) -> st.SearchStrategy[str]:
        return st.sampled_from(["a", "b", "k"]) | self.texts

    @property
    def scalars(self) -> st.SearchStrategy[Any]:
        return st.none() | st.booleans() | self.numbers | self.texts

    def values(self, max_depth: int) -> st.SearchStrategy[Any]:
        """JSON values nesting at most max_depth levels deep (objects as Pairs, arrays as lists)."""
        if max_depth == 0:
            return self.scalars
        children = self.values(max_depth - 1)
        return (
            self.scalars
            | st.lists(children, max_size=3)
            | st.lists(st.tuples(self.keys, children), max_size=3).map(lambda pairs: Pairs(tuple(pairs)))
        )


# Characters SQS carries: everything but control characters (tab, line feed and carriage return
# aside), surrogates, U+FFFE and U+FFFF.
CARRIED = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")).filter(
    lambda character: character not in "\ufffe\uffff"
) | st.sampled_from(["\t", "\n", "\r", "\ue000", "\ufffd", "😀", "\U0010ffff", '"', "\\", "é", "李"])
# ... and those it does not, with anything else.
REFUSED_CHARACTERS = ["\x00", "\x08", "\x1f", "\x7f", "\ud800", "\udfff", "\ufffe", "\uffff"]

SAFE = Alphabet(
    characters=CARRIED,
    numbers=st.one_of(
        st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1).map(str),
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
        st.sampled_from(["1.50", "-0", "-0.0", "5e-324", "1E+300", str(2**53 - 1), str(-(2**53 - 1))]),
    ).map(Literal),
)
HOSTILE = Alphabet(
    characters=st.characters(exclude_categories=()) | st.sampled_from(REFUSED_CHARACTERS),
    numbers=st.one_of(
        SAFE.numbers,
        st.integers(min_value=-(2**64), max_value=2**64).map(str).map(Literal),
        st.decimals(allow_nan=False, allow_infinity=False).map(str).map(Literal),
        st.sampled_from(
            [
                *("NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "0.1000000000000000000001"),
                *("9" * 5_000, str(2**53), str(-(2**53)), "1.00000000000000000000000001"),
            ]
        ).map(Literal),
    ),
)


@st.composite
def deepened(draw: st.DrawFn, values: st.SearchStrategy[Any], max_wrapping: int) -> Any:
    """A value wrapped in up to max_wrapping arrays."""
    value = draw(values)
    for _ in range(draw(st.integers(min_value=0, max_value=max_wrapping))):
        value = [value]
    return value


def attributes(alphabet: Alphabet, max_wrapping: int) -> st.SearchStrategy[Pairs]:
    # attributes (1 level) > value (up to 3 more) > wrapping: up to 4 + max_wrapping levels.
    return st.lists(
        st.tuples(alphabet.keys, deepened(alphabet.values(max_depth=3), max_wrapping)), max_size=6
    ).map(lambda pairs: Pairs(tuple(pairs)))


VALID_IDS = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
SAFE_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "name": st.text(CARRIED, min_size=1, max_size=40),
    "email": st.sampled_from(
        ["ada@example.com", "zoë@example.com", "a.b+c@sub.example.co.uk", "root@localhost"]
    ),
    "phone": st.from_regex(r"\+?[0-9 ()-]{3,32}", fullmatch=True),
    "address": st.text(CARRIED, max_size=60),
    "attributes": attributes(SAFE, max_wrapping=4),
}
HOSTILE_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    name: values | HOSTILE.scalars | HOSTILE.values(max_depth=2) for name, values in SAFE_FIELDS.items()
} | {"attributes": attributes(HOSTILE, max_wrapping=12) | HOSTILE.values(max_depth=3)}


@st.composite
def bodies(draw: st.DrawFn) -> str:
    """A JSON text: a customer, within the limits or (one time in three) hostile: a field repeated,
    unknown or of the wrong type, a value out of range, a character SQS refuses, nesting too deep."""
    hostile = draw(st.integers(min_value=0, max_value=2)) == 0
    fields, alphabet = (HOSTILE_FIELDS, HOSTILE) if hostile else (SAFE_FIELDS, SAFE)
    customer_id = draw(VALID_IDS | HOSTILE.texts if hostile else VALID_IDS)
    pairs: list[tuple[str, Any]] = [("customer_id", customer_id)]
    for name, values in fields.items():
        if draw(st.booleans()):
            pairs.append((name, draw(values)))
    if hostile and draw(st.booleans()):
        extra_keys = alphabet.keys | st.sampled_from(["customer_id", "name", "attributes"])
        pairs.append(draw(st.tuples(extra_keys, alphabet.values(max_depth=2))))
    return to_json(Pairs(tuple(draw(st.permutations(pairs)))))


@pytest.fixture
def pipeline(test_database, queues, monkeypatch):
    producer = load_handler("producer", monkeypatch, queues.env)
    consumer = load_handler("consumer", monkeypatch, test_database.env | queues.env)
    reader = load_handler("reader", monkeypatch, test_database.env)
    return producer, consumer, reader


def _reply(response: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return response["statusCode"], json.loads(response["body"])


def _as_stored(document: dict[str, Any]) -> dict[str, Any]:
    """The documented normalisation: optional fields sent as null are left out, attributes default to {}."""
    return {"attributes": {}} | {key: value for key, value in document.items() if value is not None}


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
    assert consumer.handler(sqs_event(sqs_record(message["Body"], group=customer_id)), lambda_context) == {
        "batchItemFailures": []
    }
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
