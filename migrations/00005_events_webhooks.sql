-- +goose Up
-- Domain events: one row per state change that committed, written in the same transaction
-- as the change. event_key is the idempotency key of the change that produced it, so a
-- retried change records nothing twice. data holds IDs, statuses, times and codes only:
-- never a token, a hash, an e-mail address or a name (it goes to webhooks and metrics).
CREATE TABLE events (
    id              CHAR(36) CHARACTER SET ascii NOT NULL,
    event_key       VARCHAR(191) CHARACTER SET ascii NOT NULL,
    type            VARCHAR(64) CHARACTER SET ascii NOT NULL,
    organization_id CHAR(36) CHARACTER SET ascii NULL,
    subject_id      CHAR(36) CHARACTER SET ascii NOT NULL,
    occurred_at     DATETIME(6) NOT NULL,
    data            JSON NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY events_key (event_key),
    KEY events_subject (subject_id, id),
    KEY events_type (type, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Endpoints apps register for outgoing webhooks. The signing secret is kept encrypted
-- (AES-256-GCM under a key derived from USHER_SECRET_KEY): it must be usable for signing,
-- so it cannot be only hashed. events is a JSON array of event types, or ["*"].
CREATE TABLE webhook_endpoints (
    id                CHAR(36) CHARACTER SET ascii NOT NULL,
    url               VARCHAR(2048) NOT NULL,
    events            JSON NOT NULL,
    organization_id   CHAR(36) CHARACTER SET ascii NULL,
    description       VARCHAR(200) NOT NULL DEFAULT '',
    secret_ciphertext VARBINARY(255) NOT NULL,
    created_at        DATETIME(6) NOT NULL,
    disabled_at       DATETIME(6) NULL,
    PRIMARY KEY (id),
    KEY webhook_endpoints_active (disabled_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- The outbox: one row per (event, matching endpoint), written with the event. The worker's
-- dispatcher starts a workflow (webhook-delivery/<id>) for every row not yet started.
CREATE TABLE webhook_deliveries (
    id                  CHAR(36) CHARACTER SET ascii NOT NULL,
    endpoint_id         CHAR(36) CHARACTER SET ascii NOT NULL,
    event_id            CHAR(36) CHARACTER SET ascii NOT NULL,
    event_type          VARCHAR(64) CHARACTER SET ascii NOT NULL,
    -- pending, delivered, failed
    status              VARCHAR(16) CHARACTER SET ascii NOT NULL,
    attempts            INT NOT NULL DEFAULT 0,
    last_status_code    INT NULL,
    last_error          VARCHAR(500) NULL,
    last_attempt_at     DATETIME(6) NULL,
    next_attempt_at     DATETIME(6) NULL,
    workflow_started_at DATETIME(6) NULL,
    created_at          DATETIME(6) NOT NULL,
    updated_at          DATETIME(6) NOT NULL,
    finished_at         DATETIME(6) NULL,
    PRIMARY KEY (id),
    UNIQUE KEY webhook_deliveries_event (endpoint_id, event_id),
    KEY webhook_deliveries_endpoint (endpoint_id, id),
    KEY webhook_deliveries_unstarted (workflow_started_at, created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Every HTTP attempt of a delivery, recorded by the activity before it returns.
CREATE TABLE webhook_attempts (
    id            BIGINT NOT NULL AUTO_INCREMENT,
    delivery_id   CHAR(36) CHARACTER SET ascii NOT NULL,
    attempt       INT NOT NULL,
    attempted_at  DATETIME(6) NOT NULL,
    duration_ms   INT NOT NULL,
    status_code   INT NULL,
    error         VARCHAR(500) NULL,
    response_body VARCHAR(1024) NULL,
    PRIMARY KEY (id),
    KEY webhook_attempts_delivery (delivery_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- +goose Down
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
DROP TABLE events;
