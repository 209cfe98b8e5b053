"""The demo console in a real browser (Debian's chromium, driven by Playwright) on a local stack.

The page is the client: it sends the traffic, keeps what it was told, and reconciles it against the
ledger through the console API. The tests check what the page shows against the databases themselves.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from ingest.console import run_prefix
from local.drill.reconcile import like_prefix
from local.servers import MariaDB
from local.stack import DATABASE, Stack
from local.template import REPO_ROOT
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
def stack() -> Iterator[Stack]:
    stack = Stack(options_on_free_ports())
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


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
def page(browser: Browser, stack: Stack) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 1100})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(stack.console_url)
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
            "SELECT COUNT(*) FROM customer_records WHERE customer_id LIKE %s", (like_prefix(run_prefix(run)),)
        )
        return int(cursor.fetchone()[0])


def start_traffic(page: Page) -> None:
    page.fill("#rate", str(RATE_RPS))
    page.click("#start-traffic")
    expect(page.locator("#answered-2xx")).not_to_have_text("0", timeout=10_000)


def stop_and_settle(page: Page) -> None:
    """Stop the traffic and wait until every acknowledged request is accounted for on the page."""
    page.click("#stop-traffic")
    expect(page.locator("#in-flight")).to_have_text("0", timeout=SETTLE_TIMEOUT_MS)
    expect(page.locator("#rec-pending")).to_have_text("0", timeout=SETTLE_TIMEOUT_MS)
    expect(page.locator("#verdict-detail")).to_contain_text(
        "acknowledged = committed", timeout=SETTLE_TIMEOUT_MS
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
    run = run_id(page)
    rows = rows_of_run(stack.writer, run)
    expect(page.locator("#count-db-a")).to_have_text(f"{rows:,}", timeout=SETTLE_TIMEOUT_MS)
    expect(page.locator("#count-db-b")).to_have_text(f"{rows:,}", timeout=SETTLE_TIMEOUT_MS)
    assert rows_of_run(stack.replica, run) == rows
    assert acknowledged <= rows  # a request with several attempts may be stored once per attempt
    expect(page.locator("#rec-duplicates")).to_have_text(str(rows - acknowledged))
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

    prefix = like_prefix(run_prefix(run_id(page)))
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
