"""What the CLI acts on, found from the CloudFormation stack (outputs and resources), or given locally."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient


class OperatorError(Exception):
    """A failure the operator can act on: printed as one line, exit status 1, no traceback."""


@dataclass(frozen=True)
class StackTargets:
    """The stack's outputs by key and its resources' physical ids by logical id."""

    name: str
    outputs: dict[str, str] = field(default_factory=dict)
    resources: dict[str, str] = field(default_factory=dict)
    resource_types: dict[str, str] = field(default_factory=dict)  # logical id -> AWS::Service::Type

    def output(self, key: str) -> str:
        if key not in self.outputs:
            raise OperatorError(f"stack {self.name} has no output {key}: is it deployed from this template?")
        return self.outputs[key]

    def resource(self, logical_id: str) -> str | None:
        """The physical id of a resource, None when this stack has none by that logical id."""
        return self.resources.get(logical_id)

    def physical_ids_of_type(self, resource_type: str) -> list[str]:
        return sorted(
            self.resources[key] for key, kind in self.resource_types.items() if kind == resource_type
        )


def describe_stack(cloudformation: CloudFormationClient, name: str) -> StackTargets:
    """The outputs and resources of stack `name` (DescribeStacks, ListStackResources).

    ListStackResources pages through every resource; DescribeStackResources answers at most 100, and the
    deployed stack has more after the SAM transform (CloudFormation API Reference, DescribeStackResources).
    """
    stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    if not stacks:
        raise OperatorError(f"CloudFormation describes no stack {name}")
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}
    summaries = [
        summary
        for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=name)
        for summary in page.get("StackResourceSummaries", [])
    ]
    return StackTargets(
        name=name,
        outputs=outputs,
        resources={
            summary["LogicalResourceId"]: summary.get("PhysicalResourceId", "") for summary in summaries
        },
        resource_types={summary["LogicalResourceId"]: summary["ResourceType"] for summary in summaries},
    )
