"""The demo console in a real browser (Debian's chromium, driven by Playwright) on a local stack.

The page is the client: it sends the traffic, keeps what it was told, and reconciles it against the
ledger through the console API. The tests check what the page shows against the databases themselves.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from ingest_console.contract import run_prefix
from ingest_console.ledger import starting_with
from local.demo import Demo
from local.servers import MariaDB
from local.servers.process import is_port_free
from local.stack import DATABASE, Stack
from local.template import REPO_ROOT
from tests.e2e.api_client import call, wait_for
from tests.e2e.conftest import options_on_free_ports

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"  # Debian's package (local/ensure-packages.sh): no browser download
SCREENSHOT = REPO_ROOT / "reports" / "console.png"
RATE_RPS = 20
OUTAGE_S = 4
# Generous bounds on a shared machine; each wait ends as soon as the page shows what it waits for.
FAILOVER_TIMEOUT_MS = 60_000
SETTLE_TIMEOUT_MS = 45_000


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    demo = Demo(options_on_free_ports())
    demo.start()
    try:
        yield demo
    finally:
        demo.stop()


@pytest.fixture(scope="module")
def stack(demo: Demo) -> Stack:
    return demo.stack


@pytest.fixture(scope="module")
def console_url(demo: Demo) -> str:
    return demo.console_url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("chromium not installed: run local/ensure-packages.sh (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        # chromium refuses its sandbox to root (CI containers run as root).
        arguments = ["--no-sandbox"] if os.geteuid() == 0 else []
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=arguments)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser, console_url: str) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 1100})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # The page is served with a content security policy: anything it blocks is an error of the page.
    page.on(
        "console",
        lambda message: "Content Security Policy" in message.text and errors.append(message.text),
    )
    page.goto(console_url)
    page.wait_for_selector("body[data-ready]")
    yield page
    context.close()
    assert errors == [], f"the page raised: {errors}"


def number(page: Page, selector: str) -> int:
    return int(page.locator(selector).inner_text().replace(",", ""))


def run_id(page: Page) -> str:
    return page.locator("#run-id").inner_text().removeprefix("run ")


def rows_of_run(server: MariaDB, run: str) -> int:
    with server.connect(database=DATABASE) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM customer_records WHERE customer_id LIKE %s",
            (starting_with(run_prefix(run)),),
        )
        return int(cursor.fetchone()[0])


def start_traffic(page: Page) -> None:
    page.fill("#rate", str(RATE_RPS))
    page.click("#start-traffic")
    expect(page.locator("#answered-2xx")).not_to_have_text("0", timeout=10_000)


def stop_and_settle(page: Page) -> None:
    """Stop the traffic and wait until every request has its answer and the reconciliation has caught
    up with every acknowledgement: none pending, acknowledged = committed."""
    page.click("#stop-traffic")
    page.wait_for_function(
        """() => {
            const text = (id) => document.getElementById(id).textContent;
            return text("in-flight") === "0" && text("rec-acknowledged") === text("answered-2xx")
                && text("rec-pending") === "0" && text("verdict-detail").includes("acknowledged = committed");
        }""",
        timeout=SETTLE_TIMEOUT_MS,
    )


def test_failover_under_traffic_loses_nothing_and_the_page_shows_it(page: Page, stack: Stack) -> None:
    """GIVEN the console on a local stack, traffic at 20 requests/s from the page
    WHEN failover is pressed (the writer killed, the reader promoted 4 s later)
    THEN the timeline shows the failover and the recovery, the roles have swapped, both instances
    count the same rows, and the reconciliation reads 0 lost with acknowledged equal to committed;
    AND those figures are the databases' own."""
    expect(page.locator("#role-db-a")).to_have_text("writer", timeout=10_000)
    expect(page.locator("#role-db-b")).to_have_text("reader")
    start_traffic(page)
    page.fill("#seconds-failover", str(OUTAGE_S))
    page.click("#fault-failover")
    expect(page.locator("#fault-failover")).to_be_disabled()  # one fault at a time

    timeline = page.locator("#timeline")
    expect(timeline).to_contain_text("Started cross AZ failover to DB instance: db-b", timeout=10_000)
    expect(timeline).to_contain_text("Database unavailable", timeout=FAILOVER_TIMEOUT_MS)
    expect(timeline).to_contain_text("Completed failover to DB instance: db-b", timeout=FAILOVER_TIMEOUT_MS)
    expect(timeline).to_contain_text("Database available again", timeout=FAILOVER_TIMEOUT_MS)
    expect(page.locator("#role-db-b")).to_have_text("writer", timeout=10_000)
    expect(page.locator("#role-db-a")).to_have_text("reader", timeout=10_000)
    expect(page.locator("#roles-swapped")).to_be_visible()
    expect(page.locator("#fault-failover")).to_be_enabled(timeout=10_000)
    page.wait_for_timeout(5_000)  # traffic after the recovery too

    stop_and_settle(page)
    expect(page.locator("#verdict")).to_have_text(re.compile(r"^0 lost of [1-9][\d,]* acknowledged$"))
    acknowledged = number(page, "#rec-acknowledged")
    assert number(page, "#rec-committed") == acknowledged
    assert number(page, "#rec-lost") == 0
    assert number(page, "#answered-4xx") == 0  # every request was well formed: none ended unacknowledged
    run = run_id(page)
    rows = rows_of_run(stack.writer, run)
    expect(page.locator("#count-db-a")).to_have_text(f"{rows:,}", timeout=SETTLE_TIMEOUT_MS)
    expect(page.locator("#count-db-b")).to_have_text(f"{rows:,}", timeout=SETTLE_TIMEOUT_MS)
    assert rows_of_run(stack.replica, run) == rows
    assert rows == acknowledged  # exactly once: retries carried their Idempotency-Key
    expect(page.locator("#rec-duplicates")).to_have_text("0")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOT, full_page=True)


def test_a_row_deleted_behind_the_pipelines_back_shows_as_lost(page: Page, stack: Stack) -> None:
    """GIVEN a console run whose acknowledged requests are all committed
    WHEN one committed row of it is deleted on both instances directly (not through the product)
    THEN the page counts it as lost within seconds: the console can see loss."""
    start_traffic(page)
    page.wait_for_timeout(2_000)
    stop_and_settle(page)
    expect(page.locator("#rec-lost")).to_have_text("0")
    acknowledged = number(page, "#rec-acknowledged")

    prefix = starting_with(run_prefix(run_id(page)))
    victim = stack.writer.query(
        f"SELECT request_id FROM {DATABASE}.customer_records WHERE customer_id LIKE %s LIMIT 1", (prefix,)
    )[0]["request_id"]
    for server in (stack.writer, stack.replica):
        with server.connect(database=DATABASE) as connection, connection.cursor() as cursor:
            cursor.execute("SET SESSION sql_log_bin = 0")  # each instance on its own: nothing replicates
            cursor.execute("DELETE FROM customer_records WHERE request_id = %s", (victim,))
            assert cursor.rowcount == 1

    expect(page.locator("#rec-lost")).to_have_text("1", timeout=SETTLE_TIMEOUT_MS)
    expect(page.locator("#verdict")).to_have_text(f"1 lost of {acknowledged:,} acknowledged")
    expect(page.locator("#verdict-bar")).to_have_class(re.compile(r"\bbad\b"))


def test_the_console_address_without_its_slash_leads_to_the_page(
    stack: Stack, console_url: str, browser: Browser
) -> None:
    """GIVEN a local stack
    WHEN /console is asked without its final slash, as typed by hand
    THEN the shim answers 301 to console/ (as the deployed function does), and a browser following it
    lands on the working page."""
    connection = http.client.HTTPConnection(stack.api.host, stack.api.port, timeout=10)
    try:
        connection.request("GET", "/console")
        response = connection.getresponse()
        assert (response.status, response.getheader("Location")) == (301, "console/")
    finally:
        connection.close()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{stack.api.url}/console")
        page.wait_for_selector("body[data-ready]")
        assert page.url == console_url
    finally:
        context.close()


def test_a_writer_restart_keeps_the_roles_and_refuses_a_second_fault(stack: Stack, console_url: str) -> None:
    """GIVEN the console API on a local stack
    WHEN the writer is restarted for 1 s, and another fault is asked for while it runs
    THEN the second gets 409, the writer goes down and comes back in the same role (RDS's shutdown and
    restarted events on the timeline), and the fault is recorded as ended without error."""
    writer = stack.writer.name
    status, started = call(f"{console_url}api/faults", "POST", {"name": "restart", "seconds": 1})
    assert (status, started["name"], started["ended_at"]) == (202, "restart", None)
    status, refused = call(f"{console_url}api/faults", "POST", {"name": "failover"})
    assert (status, refused["error"]["code"]) == (409, "fault_in_progress")

    def ended() -> dict[str, Any] | None:
        _, body = call(f"{console_url}api/status?since={quote(started['started_at'])}")
        return body if body["fault"]["ended_at"] is not None else None

    status_after = wait_for(ended, timeout=60)
    assert status_after["fault"]["error"] is None
    messages = [event["message"] for event in status_after["events"]]
    assert f"DB instance shutdown: {writer}" in messages
    assert f"DB instance restarted: {writer}" in messages

    def writable() -> dict[str, Any] | None:  # once the proxy's health check sees the writer again
        _, body = call(f"{console_url}api/status")
        return body if body["database_writable"] else None

    assert wait_for(writable, timeout=30)["fault"]["name"] == "restart"
    roles = {instance["name"]: instance["role"] for instance in status_after["instances"]}
    assert roles[writer] == "writer"
    assert stack.writer.name == writer
    assert stack.writer.is_running()


def test_a_reconciliation_while_the_writer_is_down_gets_503_and_works_again_after(
    stack: Stack, console_url: str
) -> None:
    """GIVEN the console API on a local stack whose writer is restarted for 5 s
    WHEN the page reconciles while the writer is down
    THEN it gets 503 with the API's error body, not a 500, and the same request is answered once the
    writer is back."""
    status, _ = call(f"{console_url}api/faults", "POST", {"name": "restart", "seconds": 5})
    assert status == 202
    wait_for(lambda: not stack.writer.is_running() or None, timeout=30)
    request = {"run_id": "abcdef", "request_ids": ["r-1"]}

    status, refused = call(f"{console_url}api/reconcile", "POST", request)

    assert (status, refused["error"]["code"]) == (503, "database_unavailable")

    def ended() -> dict[str, Any] | None:
        _, body = call(f"{console_url}api/status")
        return body if body["fault"]["ended_at"] is not None and body["database_writable"] else None

    assert wait_for(ended, timeout=60)["fault"]["error"] is None
    status, answered = call(f"{console_url}api/reconcile", "POST", request)
    assert (status, answered["committed"]) == (200, [])


def test_stopping_the_stack_during_a_fault_leaves_no_process_behind() -> None:
    """GIVEN a local stack whose console is running a failover
    WHEN the stack is stopped mid-fault
    THEN the fault ends first (it would otherwise start a server again), and no server of the stack
    is left running or listening."""
    options = options_on_free_ports()
    demo = Demo(options)
    demo.start()
    try:
        status, _ = call(f"{demo.console_url}api/faults", "POST", {"name": "failover", "seconds": 2})
        assert status == 202
    finally:
        demo.stop()
    assert demo.console is not None
    fault = demo.console.status(None, None).fault
    assert fault is not None
    assert fault.ended_at is not None
    stack = demo.stack
    servers = [stack.writer, stack.replica, stack.proxy, stack.sqs]
    assert [server for server in servers if server is not None and server.is_running()] == []
    ports = (
        options.api_port,
        options.proxy_port,
        options.writer_port,
        options.replica_port,
        options.sqs_port,
    )
    assert [port for port in ports if not is_port_free(port)] == []
