"""template.yaml as the local stack, the benchmarks and the tests read it: settings stated once, there.

The one YAML loader of the project for the template: it accepts CloudFormation's short tags (!Ref,
!GetAtt, !Sub, ...) as their long form and inlines local AWS::Include files (openapi.yaml) the way
CloudFormation does once `sam deploy` has uploaded them. Resolving a value knows the few intrinsics the
local stack needs: !Ref to a parameter (its Default) or pseudo parameter, a plain-string !Sub, !FindInMap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from mypy_boto3_sqs.literals import QueueAttributeNameType

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
QUEUE_ATTRIBUTES: tuple[QueueAttributeNameType, ...] = (
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
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node for !{suffix}", node.start_mark)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _short_tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as CloudFormation sees it after AWS::Include: short tags in long form."""
    if not path.is_file():
        raise TemplateError(f"{path} not found: the local stack reads its settings from it")
    document = yaml.load(path.read_text(), Loader=_CloudFormationLoader)  # noqa: S506 - SafeLoader subclass
    return _inline_includes(document, path.parent)


def _inline_includes(node: Any, directory: Path) -> Any:
    if isinstance(node, list):
        return [_inline_includes(item, directory) for item in node]
    if not isinstance(node, dict):
        return node
    transform = node.get("Fn::Transform")
    if isinstance(transform, dict) and transform.get("Name") == "AWS::Include":
        if len(node) != 1:
            raise TemplateError(f"an AWS::Include must be the whole value it stands for: {node}")
        return _included_file(directory / transform["Parameters"]["Location"])
    return {key: _inline_includes(value, directory) for key, value in node.items()}


def _included_file(path: Path) -> Any:
    """A local AWS::Include snippet. Plain YAML: CloudFormation does not support short tags in snippets,
    and includes do not nest, so neither is read here."""
    if not path.is_file():
        raise TemplateError(f"{path} not found: template.yaml includes it (AWS::Include)")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.constructor.ConstructorError as error:
        raise TemplateError(
            f"{path}: AWS::Include does not support YAML short tags (!Ref, !If, ...); use the long form "
            f"(Ref:, Fn::If:, ...): {error.problem}"
        ) from None


@dataclass(frozen=True)
class SharedValues:
    """What the functions, the alarms and the local stack must agree on: template.yaml's Shared mapping."""

    service_name: str  # POWERTOOLS_SERVICE_NAME, the "service" dimension of every custom metric
    metrics_namespace: str  # POWERTOOLS_METRICS_NAMESPACE, the alarms' Namespace
    database_name: str  # the cluster's database and the functions' DB_NAME
    max_receive_count: int  # the queue's RedrivePolicy: the receive budget of a database outage
    poison_receive_count: int  # the consumer's POISON_RECEIVE_COUNT: when it sets poison aside

    @property
    def powertools_environment(self) -> dict[str, str]:
        return {
            "POWERTOOLS_SERVICE_NAME": self.service_name,
            "POWERTOOLS_METRICS_NAMESPACE": self.metrics_namespace,
        }


@cache
def shared_values(path: Path = TEMPLATE_PATH) -> SharedValues:
    """template.yaml's shared values, read once per process."""
    return Template(path).shared_values()


@dataclass(frozen=True)
class QueueSettings:
    name: str
    attributes: dict[
        QueueAttributeNameType, str
    ]  # SQS CreateQueue attributes, string values as the API wants them


class Template:
    def __init__(self, path: Path = TEMPLATE_PATH, document: dict[str, Any] | None = None):
        """The template at `path`, or `document` read from there and changed since (the SAM transform's
        output, for the tests of what CloudFormation receives)."""
        self.path = path
        self.document = load_template(path) if document is None else document

    @cached_property
    def parameters(self) -> dict[str, Any]:
        return self.document.get("Parameters", {})

    def parameter_default(self, name: str) -> Any:
        try:
            return self.parameters[name]["Default"]
        except KeyError:
            raise TemplateError(f"{self.path}: parameter {name} has no Default") from None

    def resolve(self, value: Any) -> Any:
        """A literal; a !Ref to a parameter (its Default) or pseudo parameter; a plain-string !Sub; a
        !FindInMap. What only CloudFormation knows (a !Ref to a resource, !GetAtt) stays as it is."""
        if isinstance(value, dict) and set(value) == {"Ref"}:
            name = value["Ref"]
            if name in PSEUDO_PARAMETERS:
                return PSEUDO_PARAMETERS[name]
            if name in self.document.get("Resources", {}):
                return value
            return self.resolve(self.parameter_default(name))
        if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            return _SUB_VARIABLE.sub(lambda match: str(self.resolve({"Ref": match[1]})), value["Fn::Sub"])
        if isinstance(value, dict) and set(value) == {"Fn::FindInMap"}:
            return self.mapping_value(*(self.resolve(key) for key in value["Fn::FindInMap"]))
        return value

    def mapping_value(self, mapping: str, top_level_key: str, second_level_key: str) -> Any:
        try:
            return self.document["Mappings"][mapping][top_level_key][second_level_key]
        except KeyError:
            raise TemplateError(
                f"{self.path}: no Mappings entry {mapping}.{top_level_key}.{second_level_key}"
            ) from None

    def shared_values(self) -> SharedValues:
        return SharedValues(
            service_name=str(self.mapping_value("Shared", "Application", "ServiceName")),
            metrics_namespace=str(self.mapping_value("Shared", "Application", "MetricsNamespace")),
            database_name=str(self.mapping_value("Shared", "Database", "Name")),
            max_receive_count=int(self.mapping_value("Shared", "Queue", "MaxReceiveCount")),
            poison_receive_count=int(self.mapping_value("Shared", "Queue", "PoisonReceiveCount")),
        )

    def api_definition(self, logical_id: str = "IngestApi") -> dict[str, Any]:
        """The REST API's OpenAPI definition (DefinitionBody, openapi.yaml inlined)."""
        body = self.resource_properties(logical_id).get("DefinitionBody")
        if not isinstance(body, dict):
            raise TemplateError(f"{self.path}: {logical_id} has no DefinitionBody")
        return body

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

    def function_variables(self, logical_id: str, *names: str) -> dict[str, str]:
        """Those environment variables of the function, as the template sets them."""
        variables = self.resource_properties(logical_id).get("Environment", {}).get("Variables", {})
        missing = [name for name in names if name not in variables]
        if missing:
            raise TemplateError(f"{self.path}: {logical_id} does not set {', '.join(missing)}")
        return {name: str(self.resolve(variables[name])) for name in names}

    def consumer_max_concurrency(self) -> int:
        return int(self.parameter_default("ConsumerMaxConcurrency"))

    def rendered(self, parameters: dict[str, str] | None = None) -> dict[str, Any]:
        """The template as CloudFormation would deploy it with these parameter values (the others take
        their Default): conditions evaluated, resources and outputs whose condition is false left out,
        each Fn::If replaced by its chosen branch and AWS::NoValue removed. Other intrinsics stay."""
        values = {name: str(spec.get("Default", "")) for name, spec in self.parameters.items()}
        values |= parameters or {}
        conditions: dict[str, bool] = {}
        definitions = self.document.get("Conditions", {})

        def holds(name: str) -> bool:
            if name not in conditions:
                conditions[name] = bool(_condition_value(definitions[name], values, holds))
            return conditions[name]

        document = {key: value for key, value in self.document.items() if key != "Conditions"}
        for section in ("Resources", "Outputs"):
            document[section] = {
                name: item
                for name, item in document.get(section, {}).items()
                if "Condition" not in item or holds(item["Condition"])
            }
        return _choose_branches(document, holds)

    def function_timeout(self, logical_id: str) -> int:
        """The function's Timeout, or the Globals one, as SAM applies them."""
        timeout = self.resource_properties(logical_id).get("Timeout")
        if timeout is None:
            timeout = self.document.get("Globals", {}).get("Function", {}).get("Timeout", 3)
        return int(self.resolve(timeout))


_NO_VALUE = {"Ref": "AWS::NoValue"}


def _condition_value(value: Any, parameters: dict[str, str], holds: Any) -> Any:
    """A condition function's value: Fn::Equals, Fn::And, Fn::Or, Fn::Not, Condition, Ref."""
    if not isinstance(value, dict):
        return value
    ((function, argument),) = value.items()
    if function == "Condition":
        return holds(argument)
    if function == "Ref":
        return parameters.get(argument, PSEUDO_PARAMETERS.get(argument))
    arguments = [_condition_value(item, parameters, holds) for item in argument]
    if function == "Fn::Equals":
        return str(arguments[0]) == str(arguments[1])
    if function == "Fn::And":
        return all(arguments)
    if function == "Fn::Or":
        return any(arguments)
    if function == "Fn::Not":
        return not arguments[0]
    raise TemplateError(f"no condition function {function}")


def _choose_branches(value: Any, holds: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            condition, when_true, when_false = value["Fn::If"]
            return _choose_branches(when_true if holds(condition) else when_false, holds)
        chosen = {key: _choose_branches(item, holds) for key, item in value.items()}
        return {key: item for key, item in chosen.items() if item != _NO_VALUE}
    if isinstance(value, list):
        return [item for item in (_choose_branches(item, holds) for item in value) if item != _NO_VALUE]
    return value


def _sqs_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
