"""docs/operations.md keeps a stable anchor for every alarm's runbook: the alarms' descriptions link them."""

import re

from local.template import REPO_ROOT

RUNBOOK = REPO_ROOT / "docs" / "operations.md"
ANCHORS = [
    "alarm-dead-letter-queue-not-empty",
    "alarm-dead-letter-oldest-message",
    "alarm-queue-oldest-message",
    "alarm-database-unavailable",
    "alarm-consumer-errors",
    "alarm-consumer-records-failed",
    "alarm-api-5xx",
    "alarm-api-latency",
    "alarm-producer-errors",
    "alarm-reader-errors",
    "alarm-function-throttles",
    "alarm-proxy-availability",
    "alarm-proxy-borrow-latency",
    "alarm-writer-cpu",
    "alarm-writer-memory",
    "alarm-replica-lag",
    "rds-events",
]


def test_every_alarm_has_its_runbook_anchor() -> None:
    """GIVEN the runbook WHEN its explicit HTML anchors are read THEN every alarm's anchor is there once."""
    anchors = re.findall(r'<a id="([^"]+)"></a>', RUNBOOK.read_text(encoding="utf-8"))

    assert [anchor for anchor in ANCHORS if anchors.count(anchor) != 1] == []


def test_the_runbook_links_only_sections_that_exist() -> None:
    """GIVEN the runbook's links to itself WHEN each is resolved THEN an anchor or a heading answers it."""
    text = RUNBOOK.read_text(encoding="utf-8")
    targets = set(re.findall(r'<a id="([^"]+)"></a>', text))
    targets |= {
        re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)
    }

    assert [link for link in re.findall(r"\]\(#([^)]+)\)", text) if link not in targets] == []
