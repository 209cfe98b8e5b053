"""What the local stack takes from template.yaml, so queue settings are stated once, in the template.

The YAML loader accepts CloudFormation's short tags (!Ref, !GetAtt, !Sub, ...) and turns them into
their long form; !Ref to a parameter resolves to its Default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = REPO_ROOT / "template.yaml"

LOCAL_STACK_NAME = "customer-ingest-local"
LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT = "000000000000"
PSEUDO_PARAMETERS = {
    "AWS::StackName": LOCAL_STACK_NAME,
    "AWS::Region": LOCAL_REGION,
    "AWS::AccountId": LOCAL_ACCOUNT,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}
_SUB_VARIABLE = re.compile(r"\$\{([A-Za-z0-9:._]+)\}")

# SQS attributes the emulator (or any SQS endpoint) receives at CreateQueue, as CloudFormation names them.
QUEUE_ATTRIBUTES = (
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "MaximumMessageSize",
    "ReceiveMessageWaitTimeSeconds",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
)


class TemplateError(RuntimeError):
    """template.yaml lacks something the local stack reads from it."""


class _CloudFormationLoader(yaml.SafeLoader):
    pass


def _short_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _short_tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    if not path.is_file():
        raise TemplateError(f"{path} not found: the local stack reads the queue settings from it")
    return yaml.load(path.read_text(), Loader=_CloudFormationLoader)  # noqa: S506 - SafeLoader subclass


@dataclass(frozen=True)
class QueueSettings:
    name: str
    attributes: dict[str, str]  # SQS CreateQueue attributes, string values as the API wants them


class Template:
    def __init__(self, path: Path = TEMPLATE_PATH):
        self.path = path
        self.document = load_template(path)

    @cached_property
    def parameters(self) -> dict[str, Any]:
        return self.document.get("Parameters", {})

    def parameter_default(self, name: str) -> Any:
        try:
            return self.parameters[name]["Default"]
        except KeyError:
            raise TemplateError(f"{self.path}: parameter {name} has no Default") from None

    def resolve(self, value: Any) -> Any:
        """A literal; a !Ref to a parameter (its Default) or pseudo parameter; a plain-string !Sub."""
        if isinstance(value, dict) and set(value) == {"Ref"}:
            name = value["Ref"]
            if name in PSEUDO_PARAMETERS:
                return PSEUDO_PARAMETERS[name]
            return self.resolve(self.parameter_default(name))
        if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            return _SUB_VARIABLE.sub(lambda match: str(self.resolve({"Ref": match[1]})), value["Fn::Sub"])
        return value

    def resource_properties(self, logical_id: str) -> dict[str, Any]:
        try:
            return self.document["Resources"][logical_id].get("Properties", {})
        except KeyError:
            raise TemplateError(f"{self.path}: resource {logical_id} not found") from None

    def queue(self, logical_id: str) -> QueueSettings:
        properties = self.resource_properties(logical_id)
        fifo = self.resolve(properties.get("FifoQueue", False)) in (True, "true", "True")
        name = self.resolve(properties.get("QueueName"))
        if not isinstance(name, str):  # CloudFormation would generate one
            name = f"{LOCAL_STACK_NAME}-{logical_id}" + (".fifo" if fifo else "")
        attributes = {
            key: _sqs_value(self.resolve(properties[key])) for key in QUEUE_ATTRIBUTES if key in properties
        }
        if fifo:
            attributes["FifoQueue"] = "true"
        return QueueSettings(name=name, attributes=attributes)

    def max_receive_count(self, logical_id: str) -> int:
        policy = self.resource_properties(logical_id).get("RedrivePolicy")
        if not isinstance(policy, dict) or "maxReceiveCount" not in policy:
            raise TemplateError(f"{self.path}: {logical_id} has no RedrivePolicy.maxReceiveCount")
        return int(self.resolve(policy["maxReceiveCount"]))

    def consumer_max_concurrency(self) -> int:
        return int(self.parameter_default("ConsumerMaxConcurrency"))

    def function_timeout(self, logical_id: str) -> int:
        """The function's Timeout, or the Globals one, as SAM applies them."""
        timeout = self.resource_properties(logical_id).get("Timeout")
        if timeout is None:
            timeout = self.document.get("Globals", {}).get("Function", {}).get("Timeout", 3)
        return int(self.resolve(timeout))


def _sqs_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
