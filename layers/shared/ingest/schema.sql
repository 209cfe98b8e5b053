-- Applied on every deploy by the schema migrator (and by the local stack): every statement is idempotent.

-- The ledger: one row per accepted request. request_id is the idempotency key, so a redelivered,
-- retried or redriven message can never make a second row. Reconciliation counts this table.
CREATE TABLE IF NOT EXISTS customer_records (
    request_id   VARCHAR(64)  NOT NULL,
    customer_id  VARCHAR(64)  NOT NULL,
    payload      JSON         NOT NULL,
    accepted_at  DATETIME(6)  NOT NULL COMMENT 'producer clock, UTC',
    committed_at DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) COMMENT 'database clock, UTC',
    PRIMARY KEY (request_id),
    KEY customer_records_by_customer (customer_id, accepted_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- The latest profile per customer: which record it is. A row changes only when the incoming record is
-- newer (accepted_at, then request_id), so queue order never decides which profile wins. The payload
-- stays in customer_records (one copy, written once); the reader joins on request_id.
CREATE TABLE IF NOT EXISTS customers (
    customer_id  VARCHAR(64)  NOT NULL,
    request_id   VARCHAR(64)  NOT NULL,
    accepted_at  DATETIME(6)  NOT NULL,
    updated_at   DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (customer_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
