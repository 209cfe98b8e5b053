"""The operator CLI of a deployed stack: `python -m ops --stack NAME status` (see docs/operations.md).

It runs on an operator's machine with their AWS credentials (boto3 of the dev environment) and finds
everything it acts on from the stack's outputs and resources; it is not part of the Lambda layer.
"""
