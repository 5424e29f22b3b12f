-- +goose Up
ALTER TABLE organizations ADD COLUMN logo_url VARCHAR(2048) NULL;

-- A member's public profile: only these fields are ever shown to visitors.
ALTER TABLE users
    ADD COLUMN locale                  VARCHAR(16) CHARACTER SET ascii NULL,
    ADD COLUMN profile_public          BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN profile_display_name    VARCHAR(200) NULL,
    ADD COLUMN profile_organization_id CHAR(36) CHARACTER SET ascii NULL,
    ADD COLUMN profile_city            VARCHAR(100) NULL,
    ADD COLUMN profile_bio             VARCHAR(500) NULL;

CREATE TABLE join_requests (
    id                  CHAR(36) CHARACTER SET ascii NOT NULL,
    member_id           CHAR(36) CHARACTER SET ascii NOT NULL,
    organization_id     CHAR(36) CHARACTER SET ascii NOT NULL,
    visitor_email       VARCHAR(254) NOT NULL,
    visitor_name        VARCHAR(200) NOT NULL,
    message             VARCHAR(1000) NOT NULL DEFAULT '',
    locale              VARCHAR(16) CHARACTER SET ascii NOT NULL,
    status              VARCHAR(16) CHARACTER SET ascii NOT NULL,
    status_reason       VARCHAR(200) NULL,
    role                VARCHAR(32) NULL,
    user_id             CHAR(36) CHARACTER SET ascii NULL,
    existing_user       BOOLEAN NOT NULL DEFAULT FALSE,
    confirm_expires_at  DATETIME(6) NOT NULL,
    decide_by           DATETIME(6) NULL,
    workflow_started_at DATETIME(6) NULL,
    created_at          DATETIME(6) NOT NULL,
    updated_at          DATETIME(6) NOT NULL,
    confirmed_at        DATETIME(6) NULL,
    decided_at          DATETIME(6) NULL,
    -- One open request per (member, visitor e-mail); closed ones do not count.
    open_email          VARCHAR(254) AS (CASE WHEN status IN ('unconfirmed', 'pending') THEN visitor_email END) STORED,
    PRIMARY KEY (id),
    UNIQUE KEY join_requests_one_open (member_id, open_email),
    KEY join_requests_member (member_id, id),
    KEY join_requests_member_status (member_id, status, id),
    KEY join_requests_status (status, id),
    KEY join_requests_unstarted (workflow_started_at, created_at),
    CONSTRAINT join_requests_member FOREIGN KEY (member_id) REFERENCES users (id),
    CONSTRAINT join_requests_organization FOREIGN KEY (organization_id) REFERENCES organizations (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Links of join requests: "confirm" (to the visitor) and "decide" (to the member). Only the
-- SHA-256 of a token is kept; links stop working when the request closes.
CREATE TABLE join_request_tokens (
    token_hash      BINARY(32) NOT NULL,
    join_request_id CHAR(36) CHARACTER SET ascii NOT NULL,
    purpose         VARCHAR(16) CHARACTER SET ascii NOT NULL,
    delivery_key    VARCHAR(80) CHARACTER SET ascii NOT NULL,
    created_at      DATETIME(6) NOT NULL,
    invalidated_at  DATETIME(6) NULL,
    PRIMARY KEY (token_hash),
    KEY join_request_tokens_request (join_request_id)
) ENGINE = InnoDB;

CREATE TABLE join_request_events (
    id              BIGINT NOT NULL AUTO_INCREMENT,
    event_key       VARCHAR(80) CHARACTER SET ascii NOT NULL,
    join_request_id CHAR(36) CHARACTER SET ascii NOT NULL,
    action          VARCHAR(32) CHARACTER SET ascii NOT NULL,
    from_status     VARCHAR(16) CHARACTER SET ascii NULL,
    to_status       VARCHAR(16) CHARACTER SET ascii NOT NULL,
    reason          VARCHAR(200) NULL,
    created_at      DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY join_request_events_key (event_key),
    KEY join_request_events_request (join_request_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

ALTER TABLE email_deliveries ADD COLUMN join_request_id CHAR(36) CHARACTER SET ascii NULL;

-- +goose Down
ALTER TABLE email_deliveries DROP COLUMN join_request_id;
DROP TABLE join_request_events;
DROP TABLE join_request_tokens;
DROP TABLE join_requests;
ALTER TABLE users
    DROP COLUMN profile_bio, DROP COLUMN profile_city, DROP COLUMN profile_organization_id,
    DROP COLUMN profile_display_name, DROP COLUMN profile_public, DROP COLUMN locale;
ALTER TABLE organizations DROP COLUMN logo_url;
