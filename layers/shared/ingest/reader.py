"""The reader's logic: look up a customer's profile or a record's commit, or raise an ingest.errors error."""

from __future__ import annotations

import re
from collections.abc import Callable

import pymysql

from ingest import repository
from ingest.connection import Database, DatabaseUnavailable, is_transient
from ingest.errors import InvalidInput, NotFound, Unavailable
from ingest.models import CUSTOMER_ID_PATTERN, REQUEST_ID_PATTERN, CommittedRecord, CustomerProfile


class Reader:
    def __init__(self, database: Database) -> None:
        self.database = database

    def _query[T](self, lookup: Callable[[pymysql.Connection], T]) -> T:
        try:
            return lookup(self.database.connection())
        except DatabaseUnavailable:
            pass
        except Exception as error:
            if not is_transient(error):
                raise
            self.database.discard()
        raise Unavailable("database_unavailable", "the database is not reachable right now; retry shortly")

    def customer(self, customer_id: str) -> CustomerProfile:
        _require_match(CUSTOMER_ID_PATTERN, customer_id, "customer_id")
        profile = self._query(lambda connection: repository.get_customer(connection, customer_id))
        if profile is None:
            raise NotFound("customer_not_found", "no committed record for this customer yet")
        return profile

    def record(self, request_id: str) -> CommittedRecord:
        _require_match(REQUEST_ID_PATTERN, request_id, "request_id")
        record = self._query(lambda connection: repository.get_record(connection, request_id))
        if record is None:
            raise NotFound("record_not_found", "not yet committed or unknown")
        return record


def _require_match(pattern: str, value: str, field: str) -> None:
    if not re.fullmatch(pattern, value):
        raise InvalidInput(f"invalid_{field}", f"{field} must match {pattern}", field=field)
