"""The servers that the tests, the benchmarks and the local stack start, each written once.

A free port and the port checks, the child-process lifecycle (local.servers.process); a throwaway
MariaDB, its endpoint and the handlers' database settings as environment variables
(local.servers.mariadb); the SQS emulator as a child process or in-process, and a boto3 SQS client
for it (local.servers.sqs_emulator). HAProxy and MariaDB replication, which only the local stack
uses, live beside them.
"""

from local.servers.mariadb import DatabaseEndpoint, MariaDB, database_env, throwaway_mariadb
from local.servers.process import PortInUseError, ensure_port_free, free_port
from local.servers.sqs_emulator import SqsEmulator, emulator_store, sqs_client

__all__ = [
    "DatabaseEndpoint",
    "MariaDB",
    "PortInUseError",
    "SqsEmulator",
    "database_env",
    "emulator_store",
    "ensure_port_free",
    "free_port",
    "sqs_client",
    "throwaway_mariadb",
]
