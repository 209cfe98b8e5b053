"""python -m local.drill (make drill): failure scenarios under steady traffic, loss counted and reported."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from pathlib import Path

from local.drill.report import table, write_reports
from local.drill.runner import STRATEGIES, DrillOptions, run
from local.drill.scenarios import BASELINE_SCENARIOS, SCENARIOS
from local.stack import StackOptions, configure_logging
from local.template import REPO_ROOT

log = logging.getLogger("local.drill")


def default_plan() -> list[tuple[str, str]]:
    """Every scenario for the queue, and the upgrade for the two baselines."""
    return [(scenario, "queue") for scenario in SCENARIOS] + [("upgrade", "direct"), ("upgrade", "retry")]


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    defaults = DrillOptions()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--scenario",
        action="append",
        choices=list(SCENARIOS),
        help="run only these scenarios (repeatable); default: all",
    )
    parser.add_argument(
        "--strategy",
        action="append",
        choices=STRATEGIES,
        help="run only these strategies (repeatable); default: queue for every scenario, "
        "and direct and retry for the upgrade",
    )
    parser.add_argument("--outage", type=float, default=defaults.outage_s, help="outage length in seconds")
    parser.add_argument("--rate", type=float, default=defaults.rate_rps, help="requests per second")
    parser.add_argument("--customers", type=int, default=defaults.customers)
    parser.add_argument(
        "--warmup", type=float, default=defaults.warmup_s, help="traffic before the failure (s)"
    )
    parser.add_argument("--tail", type=float, default=defaults.tail_s, help="traffic after recovery (s)")
    parser.add_argument(
        "--poison-max-receives",
        type=int,
        default=defaults.poison_max_receives,
        help="receives before the consumer sets a poison record aside, poison scenario (template: 25)",
    )
    parser.add_argument(
        "--visibility-timeout",
        type=int,
        default=defaults.visibility_timeout,
        help="the queue's visibility timeout in the drill (template: 180)",
    )
    parser.add_argument("--drain-timeout", type=float, default=defaults.drain_timeout_s)
    parser.add_argument("--reports", type=Path, default=REPO_ROOT / "reports")
    parser.add_argument(
        "--port-base",
        type=int,
        default=None,
        help="use five consecutive ports from here instead of the stack's defaults",
    )
    return parser.parse_args(argv)


def plan_for(arguments: argparse.Namespace) -> list[tuple[str, str]]:
    if not arguments.scenario and not arguments.strategy:
        return default_plan()
    scenarios = arguments.scenario or list(SCENARIOS)
    strategies = arguments.strategy or list(STRATEGIES)
    return [
        (scenario, strategy)
        for strategy in strategies
        for scenario in scenarios
        if strategy == "queue" or scenario in BASELINE_SCENARIOS
    ]


def stack_options(port_base: int | None) -> StackOptions:
    if port_base is None:
        return StackOptions()
    return StackOptions(
        proxy_port=port_base,
        writer_port=port_base + 1,
        replica_port=port_base + 2,
        sqs_port=port_base + 3,
        api_port=port_base + 4,
    )


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    configure_logging()
    # A SIGTERM (a CI timeout, kill) unwinds like Ctrl-C, so each run's stack stops its servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    options = DrillOptions(
        outage_s=arguments.outage,
        rate_rps=arguments.rate,
        customers=arguments.customers,
        warmup_s=arguments.warmup,
        tail_s=arguments.tail,
        drain_timeout_s=arguments.drain_timeout,
        poison_max_receives=arguments.poison_max_receives,
        visibility_timeout=arguments.visibility_timeout,
        stack=stack_options(arguments.port_base),
    )
    plan = plan_for(arguments)
    if not plan:
        raise SystemExit("nothing to run: the direct and retry strategies only run upgrade and failover")
    started = time.monotonic()
    runs = []
    for number, (scenario, strategy) in enumerate(plan, 1):
        log.info("run %d of %d", number, len(plan))
        runs.append(run(scenario, strategy, options))
    paths = write_reports(runs, options, arguments.reports)
    results = [completed.result for completed in runs]
    print("\n" + table(results) + "\n")
    print("reports: " + ", ".join(str(path) for path in paths))
    print(f"drill took {time.monotonic() - started:.0f} s")
    failed = [r for r in results if r["strategy"] == "queue" and (r["lost"] or r["duplicates"])]
    for result in failed:
        print(
            f"FAIL: the queue strategy lost {result['lost']} and duplicated {result['duplicates']} "
            f"in {result['scenario']}",
            file=sys.stderr,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
