"""SQS errors as the JSON protocol reports them.

SQS moved from the Query protocol to JSON and kept its old error codes: a reply carries the
modelled shape in `__type` and the legacy Query code in the `x-amzn-query-error` header.
botocore raises the exception class named by the shape (client.exceptions.QueueDoesNotExist)
and shows the legacy code in `error.response["Error"]["Code"]`
(AWS.SimpleQueueService.NonExistentQueue), exactly as against real SQS.
"""

# Shape name -> legacy Query error code, for the shapes whose code differs from their name.
LEGACY_CODES = {
    "QueueDoesNotExist": "AWS.SimpleQueueService.NonExistentQueue",
    "QueueNameExists": "QueueAlreadyExists",
    "PurgeQueueInProgress": "AWS.SimpleQueueService.PurgeQueueInProgress",
    "EmptyBatchRequest": "AWS.SimpleQueueService.EmptyBatchRequest",
    "TooManyEntriesInBatchRequest": "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
    "BatchEntryIdsNotDistinct": "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
    "InvalidBatchEntryId": "AWS.SimpleQueueService.InvalidBatchEntryId",
    "BatchRequestTooLong": "AWS.SimpleQueueService.BatchRequestTooLong",
    "MessageNotInflight": "AWS.SimpleQueueService.MessageNotInflight",
    "UnsupportedOperation": "AWS.SimpleQueueService.UnsupportedOperation",
}


class SqsError(Exception):
    """An error reply: `shape` is the modelled error name (or a plain code such as
    InvalidParameterValue that has no shape of its own)."""

    def __init__(self, shape: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.shape = shape
        self.message = message
        self.status = status

    @property
    def legacy_code(self) -> str:
        return LEGACY_CODES.get(self.shape, self.shape)

    def to_json(self) -> dict[str, str]:
        return {"__type": f"com.amazonaws.sqs#{self.shape}", "message": self.message}


def invalid(message: str) -> SqsError:
    return SqsError("InvalidParameterValue", message)


def missing(parameter: str) -> SqsError:
    return SqsError("MissingParameter", f"The request must contain the parameter {parameter}.")
