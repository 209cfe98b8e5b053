"""A pytest plugin: every AWS call a test makes through botocore (boto3's clients, moto's, stubbed ones)
is checked against the operation's input shape in botocore's service model, and a call that breaks it
fails the test that made it.

botocore checks types, required members and minimums at run time; it leaves out what the service itself
refuses with a ValidationException: string patterns, enums, maximum lengths of strings, lists, maps and
blobs, and number ranges. A value that breaks one of them passes moto and the Stubber and fails in AWS.

- Where: botocore validates a request in ParamValidationDecorator.serialize_to_request (every client made
  with parameter validation on, botocore's default); the plugin wraps it and, once botocore found the
  request well typed, walks the parameters along the input shape: structures, lists, maps, strings,
  numbers and blobs.
- Patterns are matched against the whole value, as AWS does: a value that merely contains a match of an
  unanchored pattern such as DynamoDB's table name `[a-zA-Z0-9_.-]+` is refused (aws/aws-cli#790). The
  models write them in Java's regex dialect; `python_pattern` translates what Python's `re` reads
  differently (\\p{..} classes, \\x{..}, \\z, surrogate pairs, a set escape before `-` in a class,
  inline flags in mid-pattern, \\Q..\\E, Java's dot and its ASCII \\w \\d \\s). A pattern it cannot
  translate (a nested class or an intersection, a Unicode script or block, an escape Python lacks, a
  model's own typo such as `$` followed by a quantifier) is not checked: the session's summary lists
  those met.
- A violation is recorded, not raised (the code under test may catch botocore's errors), and fails the
  test's setup, call or teardown, whichever made it. Calls made in other processes (the local stack's
  servers) are not seen.
"""

from __future__ import annotations

import functools
import re
import sys
import threading
import unicodedata
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape
from botocore.validate import ParamValidationDecorator

SHOWN_CHARACTERS = 80  # of a value that breaks its shape, in the failure message

_recorded: list[str] = []
_recorded_lock = threading.Lock()
_untranslated: dict[str, str] = {}  # Java pattern -> a shape that has it, for the session's summary
_serialize_to_request = ParamValidationDecorator.serialize_to_request


# ---- the check ------------------------------------------------------------------------------------------


def violations(params: Any, operation: OperationModel) -> list[str]:
    """What in `params` breaks the input shape of `operation`, one line each."""
    if operation.input_shape is None:
        return []
    where = f"{operation.service_model.service_name}.{operation.name}"
    return [f"{where}: {problem}" for problem in _walk(params, operation.input_shape, "")]


def _walk(value: Any, shape: Shape, path: str) -> Iterator[str]:
    # Types are botocore's to check (it refused the request before this runs); a value of another type
    # than its shape's (a file object for a blob) is left alone.
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        for name, member in value.items():
            if name in shape.members:
                yield from _walk(member, shape.members[name], f"{path}.{name}" if path else name)
    elif isinstance(shape, ListShape) and isinstance(value, list | tuple):
        yield from _length(value, len(value), shape, path)
        for index, item in enumerate(value):
            yield from _walk(item, shape.member, f"{path}[{index}]")
    elif isinstance(shape, MapShape) and isinstance(value, dict):
        yield from _length(value, len(value), shape, path)
        for key, item in value.items():
            yield from _walk(key, shape.key, f"{path} key {key!r}")
            yield from _walk(item, shape.value, f"{path}[{key!r}]")
    elif shape.type_name == "string" and isinstance(value, str):
        yield from _string(value, shape, path)
    elif shape.type_name in ("integer", "long", "float", "double") and isinstance(value, int | float):
        yield from _range(value, shape, path)
    elif shape.type_name == "blob" and isinstance(value, bytes | bytearray | str):
        size = len(value.encode()) if isinstance(value, str) else len(value)
        yield from _length(value, size, shape, path)


def _string(value: str, shape: Shape, path: str) -> Iterator[str]:
    enum = shape.metadata.get("enum")
    if enum and value not in enum:
        yield f"{path}={_shown(value, shape)} is not one of {', '.join(enum)}"
    yield from _length(value, len(value), shape, path)  # Smithy's length of a string: its code points
    pattern = shape.metadata.get("pattern")
    if pattern is not None:
        compiled = compiled_pattern(pattern)
        if compiled is None:
            _untranslated.setdefault(pattern, shape.name)
        elif compiled.fullmatch(value) is None:
            yield f"{path}={_shown(value, shape)} does not match the pattern {pattern}"


def _length(value: Any, size: int, shape: Shape, path: str) -> Iterator[str]:
    least, most = shape.metadata.get("min"), shape.metadata.get("max")
    if least is not None and size < least:
        yield f"{path}={_shown(value, shape)} is shorter than {least} (length {size})"
    if most is not None and size > most:
        yield f"{path}={_shown(value, shape)} is longer than {most} (length {size})"


def _range(value: float, shape: Shape, path: str) -> Iterator[str]:
    least, most = shape.metadata.get("min"), shape.metadata.get("max")
    if least is not None and value < least:
        yield f"{path}={value} is below the minimum {least}"
    if most is not None and value > most:
        yield f"{path}={value} is above the maximum {most}"


def _shown(value: Any, shape: Shape) -> str:
    if shape.metadata.get("sensitive"):
        return "(sensitive)"
    text = repr(value)
    return text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS] + "..."


# ---- Java patterns in Python ----------------------------------------------------------------------------


@functools.cache
def compiled_pattern(java: str) -> re.Pattern[str] | None:
    """The model's pattern compiled for Python's re (ASCII \\w \\d \\s, as Java's), None when it cannot be."""
    translated = python_pattern(java)
    if translated is None:
        return None
    try:
        return re.compile(translated, re.ASCII)
    except re.error:
        return None


# java.util.regex.Pattern's POSIX classes (US-ASCII), as the inside of a character class.
_PUNCTUATION = re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_POSIX = {
    "Lower": "a-z",
    "Upper": "A-Z",
    "ASCII": r"\x00-\x7f",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Alnum": "a-zA-Z0-9",
    "Punct": _PUNCTUATION,
    "Graph": "a-zA-Z0-9" + _PUNCTUATION,
    "Print": "a-zA-Z0-9 " + _PUNCTUATION,
    "Blank": r" \t",
    "Cntrl": r"\x00-\x1f\x7f",
    "XDigit": "0-9a-fA-F",
    "Space": r" \t\n\x0b\f\r",
}
# Unicode's Alphabetic property is not in unicodedata: letters, letter numbers and the combining marks
# (a superset of Other_Alphabetic's), so the check never refuses what Java accepts.
_ALPHABETIC = ("L", "Nl", "Mn", "Mc")


@functools.cache
def _category_ranges() -> dict[str, list[tuple[int, int]]]:
    """The code point ranges of each two-letter Unicode general category (Cn for the unassigned)."""
    ranges: dict[str, list[tuple[int, int]]] = {}
    for code in range(sys.maxunicode + 1):
        category = unicodedata.category(chr(code))
        spans = ranges.setdefault(category, [])
        if spans and spans[-1][1] == code - 1:
            spans[-1] = (spans[-1][0], code)
        else:
            spans.append((code, code))
    return ranges


@functools.cache
def _property_class(name: str, negated: bool) -> str | None:
    """The inside of a character class for Java's \\p{name} (\\P{name} when `negated`), None if unknown."""
    if name in _POSIX and not negated:
        return _POSIX[name]
    general = name.removeprefix("Is").removeprefix("gc=").removeprefix("general_category=")
    if name == "IsAlphabetic":
        prefixes: tuple[str, ...] = _ALPHABETIC
    elif name in _POSIX:
        prefixes = ()
    elif len(general) in (1, 2) and general[0] in "LMNPSZC":
        prefixes = (general,)
    else:
        return None
    if name in _POSIX:  # negated POSIX: the complement of its ASCII members
        members = {code for code in range(128) if re.fullmatch(f"[{_POSIX[name]}]", chr(code))}
        chosen = [(code, code) for code in range(128) if code not in members] + [(128, sys.maxunicode)]
    else:
        chosen = sorted(
            span
            for category, spans in _category_ranges().items()
            if category.startswith(prefixes)
            for span in spans
        )
        if negated:
            chosen = _complement(chosen)
    return "".join(_span(start, end) for start, end in chosen)


def _complement(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    result, next_code = [], 0
    for start, end in spans:
        if start > next_code:
            result.append((next_code, start - 1))
        next_code = end + 1
    if next_code <= sys.maxunicode:
        result.append((next_code, sys.maxunicode))
    return result


def _span(start: int, end: int) -> str:
    return f"\\U{start:08x}" if start == end else f"\\U{start:08x}-\\U{end:08x}"


_CLASS_ESCAPES = frozenset("dDsSwWh")
_FLAG_GROUP = re.compile(r"\(\?[a-zA-Z]*(?:-[a-zA-Z]*)?\)")
_DOTALL = re.compile(r"\(\?[a-zA-Z]*s[a-zA-Z]*[):]")
# Java's dot stops at every line terminator, Python's at \n only.
_JAVA_DOT = "[^\\n\\r\\x85\\u2028\\u2029]"
_HORIZONTAL_SPACE = r"\t \xa0\u1680\u180e\u2000-\u200a\u202f\u205f\u3000"


def python_pattern(java: str) -> str | None:
    """`java` (a java.util.regex pattern) rewritten for Python's re; None when it has what re lacks."""
    out: list[str] = []
    in_class = False
    class_start = 0  # where the current class's members begin in `out`
    pending_closes = [0]  # per open group: scoped flag groups opened inside it, to close with it
    dotall = _DOTALL.search(java) is not None
    index = 0
    while index < len(java):
        char = java[index]
        if char == "\\":
            escape = _escape(java, index, in_class)
            if escape is None:
                return None
            text, index, is_set = escape
            out.append(text)
            # Java reads a `-` after a set (\w, \p{L}) in a class as itself; Python as a bad range.
            if in_class and is_set and java[index : index + 1] == "-" and java[index + 1 : index + 2] != "]":
                out.append("\\-")
                index += 1
            continue
        if in_class:
            if char == "[" or java.startswith("&&", index):
                return None  # a nested class (a union in Java) or an intersection
            if char == "]" and len(out) > class_start:
                in_class = False
            # Java reads a doubled | or ~ in a class as the character; Python may read a set operation.
            out.append("\\" + char if char in "|~" else char)
            if char == "^" and len(out) == class_start + 1:
                class_start += 1  # a negation, not a member
            index += 1
            continue
        flags = _FLAG_GROUP.match(java, index)
        if flags and index > 0:
            # Java's inline flags hold to the end of the enclosing group; Python's only from the start.
            out.append(flags.group()[:-1] + ":")
            pending_closes[-1] += 1
            index = flags.end()
            continue
        if char == "[":
            in_class = True
            class_start = len(out) + 1
        elif char == "(":
            pending_closes.append(0)
        elif char == ")":
            if len(pending_closes) < 2:
                return None
            out.append(")" * pending_closes.pop())
        elif char == "." and not dotall:
            char = _JAVA_DOT
        out.append(char)
        index += 1
    if in_class or len(pending_closes) != 1:
        return None
    out.append(")" * pending_closes[0])
    return "".join(out)


def _escape(java: str, index: int, in_class: bool) -> tuple[str, int, bool] | None:
    """The escape at `index` in Python, where the pattern goes on after it, and whether it stands for a
    set of characters; None when Python has no equivalent."""
    letter = java[index + 1 : index + 2]
    if letter in ("p", "P"):
        match = re.match(r"\{(\w+(?:=\w+)?)\}|([A-Z])", java[index + 2 :])
        inside = match and _property_class(match.group(1) or match.group(2), negated=letter == "P")
        if not match or inside is None:
            return None
        return (inside if in_class else f"[{inside}]"), index + 2 + match.end(), True
    if letter == "h":
        return (_HORIZONTAL_SPACE if in_class else f"[{_HORIZONTAL_SPACE}]"), index + 2, True
    if letter == "x" and java[index + 2 : index + 3] == "{":
        close = java.find("}", index)
        return f"\\U{int(java[index + 3 : close], 16):08x}", close + 1, False
    if letter == "u":
        high = int(java[index + 2 : index + 6], 16)
        low_text = java[index + 6 : index + 12]
        if 0xD800 <= high < 0xDC00 and re.fullmatch(r"\\u[dD][c-fC-F][0-9a-fA-F]{2}", low_text):
            # A surrogate pair is one code point to Java (its strings are UTF-16), as to Python's str.
            code = 0x10000 + ((high - 0xD800) << 10) + (int(low_text[2:], 16) - 0xDC00)
            return f"\\U{code:08x}", index + 12, False
        return java[index : index + 6], index + 6, False
    if letter == "z":
        return r"\Z", index + 2, False
    if letter == "Z":
        return r"(?=\n?\Z)", index + 2, False
    if letter == "Q":
        end = java.find(r"\E", index)
        end = len(java) if end < 0 else end
        return re.escape(java[index + 2 : end]), min(end + 2, len(java)), False
    return java[index : index + 2], index + 2, letter in _CLASS_ESCAPES


# ---- recording, and failing the test that made the call -------------------------------------------------


def _checked_serialize_to_request(
    self: ParamValidationDecorator, parameters: Any, operation_model: OperationModel
) -> Any:
    request = _serialize_to_request(self, parameters, operation_model)  # botocore's own checks first
    found = violations(parameters, operation_model)
    if found:
        with _recorded_lock:
            _recorded.extend(found)
    return request


@contextmanager
def recorded_violations() -> Iterator[list[str]]:
    """The violations recorded inside the block, taken away so that they fail no test (the checker's own
    tests look at them)."""
    with _recorded_lock:
        before = len(_recorded)
    found: list[str] = []
    try:
        yield found
    finally:
        with _recorded_lock:
            found.extend(_recorded[before:])
            del _recorded[before:]


def _fail_on_recorded(phase: str) -> None:
    with _recorded_lock:
        found = list(_recorded)
        _recorded.clear()
    if found:
        lines = "\n  ".join(found)
        pytest.fail(f"AWS calls in {phase} break botocore's service model:\n  {lines}", pytrace=False)


def pytest_configure(config: pytest.Config) -> None:
    ParamValidationDecorator.serialize_to_request = _checked_serialize_to_request  # type: ignore[method-assign]


def pytest_unconfigure(config: pytest.Config) -> None:
    ParamValidationDecorator.serialize_to_request = _serialize_to_request  # type: ignore[method-assign]


def _checked_phase(phase: str) -> Generator[None, object, object]:
    try:
        result = yield
    except BaseException:
        _fail_on_recorded(phase)  # chained to the test's own error
        raise
    _fail_on_recorded(phase)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _checked_phase("setup"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _checked_phase("the test"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    return (yield from _checked_phase("teardown"))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _untranslated:
        terminalreporter.write_line(
            "botocore model check: patterns not checked (Python's re cannot read them): "
            + ", ".join(sorted(set(_untranslated.values())))
        )
