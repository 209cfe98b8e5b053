"""What the CLI acts on, found from the CloudFormation stack (outputs and resources), or given locally."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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


def describe_stack(cloudformation: Any, name: str) -> StackTargets:
    """The outputs and resources of stack `name` (DescribeStacks, DescribeStackResources)."""
    stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}
    described = cloudformation.describe_stack_resources(StackName=name)["StackResources"]
    return StackTargets(
        name=name,
        outputs=outputs,
        resources={
            resource["LogicalResourceId"]: resource.get("PhysicalResourceId", "") for resource in described
        },
        resource_types={item["LogicalResourceId"]: item["ResourceType"] for item in described},
    )
