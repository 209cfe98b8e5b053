"""GTID replication between local MariaDB instances: make a replica, promote it, demote the old writer.

Aurora keeps every acknowledged commit through a failover because writer and reader share storage.
The local pair gets the same promise from lossless semi-synchronous replication (AFTER_SYNC, see
local.servers.mariadb): a commit is acknowledged only once the replica holds it in its relay log, and the
promotion below applies the whole relay log before the replica accepts writes.
"""

from __future__ import annotations

import time
from typing import Any

import pymysql
import pymysql.cursors

from local.servers.mariadb import MariaDB

REPLICATION_USER = "repl"
REPLICATION_PASSWORD = "repl-local-only"  # noqa: S105 - throwaway local instances on 127.0.0.1
HEALTH_CHECK_USER = "haproxy_check"


def create_service_users(server: MariaDB) -> None:
    """Users every instance needs whatever its role, created outside the binary log.

    Each server gets its own copy (sql_log_bin=0), so replicating a primary's binary log never
    tries to create them a second time.
    """
    with server.connect() as conn, conn.cursor() as cursor:
        cursor.execute("SET SESSION sql_log_bin = 0")
        cursor.execute(
            f"CREATE USER IF NOT EXISTS '{REPLICATION_USER}'@'127.0.0.1' IDENTIFIED BY %s",
            (REPLICATION_PASSWORD,),
        )
        cursor.execute(
            f"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{REPLICATION_USER}'@'127.0.0.1'"
        )
        # HAProxy's mysql-check logs in without a password and quits; it needs no privilege at all.
        cursor.execute(f"CREATE USER IF NOT EXISTS '{HEALTH_CHECK_USER}'@'127.0.0.1'")


def start_replicating(replica: MariaDB, primary: MariaDB, timeout: float = 30) -> None:
    """Make `replica` a read-only GTID replica of `primary` and wait until both threads run."""
    replica.execute(
        "SET GLOBAL read_only = 1",
        "STOP SLAVE",
        "RESET SLAVE ALL",
        f"CHANGE MASTER TO MASTER_HOST = '{primary.host}', MASTER_PORT = {primary.port}, "
        f"MASTER_USER = '{REPLICATION_USER}', MASTER_PASSWORD = '{REPLICATION_PASSWORD}', "
        "MASTER_CONNECT_RETRY = 1, MASTER_HEARTBEAT_PERIOD = 1, MASTER_USE_GTID = slave_pos",
        "START SLAVE",
    )
    wait_until_replicating(replica, timeout)


def resume_replicating(replica: MariaDB, timeout: float = 30) -> None:
    """Restart replication on a restarted replica (instances start with --skip-slave-start)."""
    replica.execute("SET GLOBAL read_only = 1", "START SLAVE")
    wait_until_replicating(replica, timeout)


def replica_status(replica: MariaDB) -> dict[str, Any]:
    rows = replica.query("SHOW SLAVE STATUS")
    return rows[0] if rows else {}


def wait_until_replicating(replica: MariaDB, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = replica_status(replica)
        if status.get("Slave_IO_Running") == "Yes" and status.get("Slave_SQL_Running") == "Yes":
            return
        if status.get("Last_SQL_Error") or status.get("Last_IO_Errno") not in (None, 0, 2003):
            break
        time.sleep(0.1)
    raise RuntimeError(
        f"{replica.name} is not replicating: IO={status.get('Slave_IO_Running')} "
        f"SQL={status.get('Slave_SQL_Running')} io_error={status.get('Last_IO_Error')!r} "
        f"sql_error={status.get('Last_SQL_Error')!r}"
    )


def promote(replica: MariaDB, timeout: float = 30) -> None:
    """Turn a replica whose primary is gone into the writer.

    The relay log already holds every commit the old writer acknowledged (semi-sync); apply all of it
    before accepting writes, so nothing acknowledged is lost and no GTID is issued twice.
    """
    with replica.connect(cursorclass=pymysql.cursors.DictCursor) as conn, conn.cursor() as cursor:
        cursor.execute("STOP SLAVE IO_THREAD")
        cursor.execute("SHOW SLAVE STATUS")
        status = cursor.fetchone() or {}
        received = status.get("Gtid_IO_Pos", "")
        if received:
            cursor.execute("SELECT MASTER_GTID_WAIT(%s, %s) AS waited", (received, timeout))
            if cursor.fetchone()["waited"] != 0:
                raise TimeoutError(f"{replica.name} did not apply its relay log up to {received}")
        cursor.execute("STOP SLAVE")
        cursor.execute("RESET SLAVE ALL")
        cursor.execute("SET GLOBAL read_only = 0")


def demote(old_writer: MariaDB, new_writer: MariaDB, timeout: float = 30) -> None:
    """Start the old writer again, read-only, as a replica of the new writer.

    Started in the replica role, its crash recovery drops any transaction it had written but never
    got acknowledged, so its GTID history stays a prefix of the new writer's and strict GTID mode
    lets it follow.
    """
    old_writer.start(as_replica=True)
    current = old_writer.query("SELECT @@gtid_binlog_pos AS pos")[0]["pos"]
    old_writer.execute(f"SET GLOBAL gtid_slave_pos = '{current}'")
    start_replicating(old_writer, new_writer, timeout)
