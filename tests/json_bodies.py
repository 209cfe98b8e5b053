"""Hypothesis strategies for request bodies written as JSON text, so that they can hold what Python
values cannot say: NaN and Infinity, duplicate keys, number literals of any length and precision, lone
surrogates. Used by the property tests of the producer and of the request model."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st


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
        # JSON's number grammar, with long mantissas and exponents
        st.from_regex(r"-?(0|[1-9][0-9]{0,30})(\.[0-9]{1,30})?([eE][+-]?[0-9]{1,25})?", fullmatch=True).map(
            Literal
        ),
        st.sampled_from(
            [
                *("NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "0.1000000000000000000001"),
                *("9" * 5_000, str(2**53), str(-(2**53)), "1.00000000000000000000000001"),
                *("0e99999999999999999999", "-1E-99999999999999999999", "1e+0000000000000000000001"),
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
