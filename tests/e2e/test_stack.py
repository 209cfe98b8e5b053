"""`make demo`: python -m local.demo serves the real handlers and cleans up after Ctrl-C."""

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from local.stack import StackOptions
from local.template import REPO_ROOT
from tests.e2e.api_client import call, committed_record, wait_for

pytestmark = pytest.mark.slow


def test_demo_serves_the_api_and_removes_everything_on_ctrl_c(stack_options: StackOptions) -> None:
    """GIVEN `python -m local.demo` running WHEN a customer is posted THEN it is read back as posted,
    bad requests get API Gateway's answers, AND Ctrl-C stops the stack and removes its directory."""
    o = stack_options
    command = [
        sys.executable,
        "-m",
        "local.demo",
        "--api-port",
        str(o.api_port),
        "--sqs-port",
        str(o.sqs_port),
        "--proxy-port",
        str(o.proxy_port),
        "--writer-port",
        str(o.writer_port),
        "--replica-port",
        str(o.replica_port),
    ]
    demo = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert demo.stdout is not None  # stdout=PIPE
    output = []
    try:
        for line in demo.stdout:
            output.append(line)
            if "local stack is up" in line:
                break
        else:
            pytest.fail("the stack did not start:\n" + "".join(output))
        announced = re.search(r"removes (\S+)\)", "".join(output))
        assert announced, "the stack names the directory it removes on Ctrl-C"
        workdir = Path(announced.group(1))
        api = f"http://127.0.0.1:{o.api_port}"

        status, accepted = call(
            f"{api}/customers", "POST", {"customer_id": "c-1", "name": "Ada"}, {"Idempotency-Key": "demo-1"}
        )
        assert status == 202
        assert accepted["status"] == "accepted"
        record = wait_for(lambda: committed_record(f"{api}/records/{accepted['request_id']}"))
        assert (record["request_id"], record["customer_id"], record["status"]) == (
            accepted["request_id"],
            "c-1",
            "committed",
        )
        # the payload as the producer validated it: the posted fields, and no attributes given
        assert record["payload"] == {"customer_id": "c-1", "name": "Ada", "attributes": {}}
        status, profile = call(f"{api}/customers/c-1")
        assert (status, profile["request_id"], profile["payload"]["name"]) == (
            200,
            accepted["request_id"],
            "Ada",
        )
        assert call(f"{api}/customers", "POST", {"name": "no id"})[0] == 400
        assert call(f"{api}/nowhere")[0] == 403  # API Gateway's answer for an unknown resource
        assert workdir.is_dir()
    finally:
        demo.send_signal(signal.SIGINT)
        remaining, _ = demo.communicate(timeout=60)
        output.append(remaining)

    assert demo.returncode == 0, "".join(output)
    assert not workdir.exists()
