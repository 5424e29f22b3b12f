-- +goose Up
CREATE TABLE organizations (
    id         CHAR(36) CHARACTER SET ascii NOT NULL,
    name       VARCHAR(200) NOT NULL,
    login_url  VARCHAR(2048) NULL,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE users (
    id            CHAR(36) CHARACTER SET ascii NOT NULL,
    email         VARCHAR(254) NOT NULL,
    name          VARCHAR(200) NOT NULL DEFAULT '',
    password_hash VARBINARY(100) NULL,
    created_at    DATETIME(6) NOT NULL,
    updated_at    DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    -- One account per address, whatever races the accepts run into.
    UNIQUE KEY users_email (email)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE memberships (
    user_id         CHAR(36) CHARACTER SET ascii NOT NULL,
    organization_id CHAR(36) CHARACTER SET ascii NOT NULL,
    role            VARCHAR(32) NOT NULL,
    created_at      DATETIME(6) NOT NULL,
    -- One membership per (user, organization).
    PRIMARY KEY (user_id, organization_id),
    KEY memberships_organization (organization_id),
    CONSTRAINT memberships_user FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT memberships_organization FOREIGN KEY (organization_id) REFERENCES organizations (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE invitations (
    id                   CHAR(36) CHARACTER SET ascii NOT NULL,
    organization_id      CHAR(36) CHARACTER SET ascii NOT NULL,
    email                VARCHAR(254) NOT NULL,
    name                 VARCHAR(200) NOT NULL DEFAULT '',
    role                 VARCHAR(32) NOT NULL,
    inviter_id           CHAR(36) CHARACTER SET ascii NULL,
    user_id              CHAR(36) CHARACTER SET ascii NULL,
    status               VARCHAR(16) CHARACTER SET ascii NOT NULL,
    locale               VARCHAR(16) CHARACTER SET ascii NOT NULL,
    redirect_url         VARCHAR(2048) NULL,
    metadata             TEXT NULL,
    expires_in_seconds   BIGINT NOT NULL,
    expires_at           DATETIME(6) NULL,
    existing_user        BOOLEAN NOT NULL DEFAULT FALSE,
    current_delivery_key VARCHAR(80) CHARACTER SET ascii NULL,
    delivery_status      VARCHAR(16) CHARACTER SET ascii NOT NULL,
    delivery_attempts    INT NOT NULL DEFAULT 0,
    delivery_last_error  VARCHAR(500) NULL,
    failure_reason       VARCHAR(500) NULL,
    workflow_started_at  DATETIME(6) NULL,
    created_at           DATETIME(6) NOT NULL,
    updated_at           DATETIME(6) NOT NULL,
    accepted_at          DATETIME(6) NULL,
    revoked_at           DATETIME(6) NULL,
    -- Set only while the invitation is open, so the unique key below allows one open
    -- invitation per (organization, e-mail) and any number of closed ones.
    open_email           VARCHAR(254) AS (CASE WHEN status IN ('draft', 'pending') THEN email END) STORED,
    PRIMARY KEY (id),
    UNIQUE KEY invitations_one_open (organization_id, open_email),
    KEY invitations_organization (organization_id, id),
    KEY invitations_organization_status (organization_id, status, id),
    KEY invitations_status (status, id),
    KEY invitations_email (email, id),
    KEY invitations_unstarted (workflow_started_at, created_at),
    CONSTRAINT invitations_organization FOREIGN KEY (organization_id) REFERENCES organizations (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Every link ever sent. Only the SHA-256 of a token is kept; a token is usable while its
-- invitation is pending, its delivery key is the invitation's current one, and it has not
-- been invalidated.
CREATE TABLE invitation_tokens (
    token_hash     BINARY(32) NOT NULL,
    invitation_id  CHAR(36) CHARACTER SET ascii NOT NULL,
    delivery_key   VARCHAR(80) CHARACTER SET ascii NOT NULL,
    created_at     DATETIME(6) NOT NULL,
    invalidated_at DATETIME(6) NULL,
    PRIMARY KEY (token_hash),
    KEY invitation_tokens_invitation (invitation_id)
) ENGINE = InnoDB;

-- One row per logical e-mail. Written before the provider is called and again after, so a
-- retry can tell "sent, answer lost" from "never sent".
CREATE TABLE email_deliveries (
    delivery_key  VARCHAR(80) CHARACTER SET ascii NOT NULL,
    kind          VARCHAR(32) CHARACTER SET ascii NOT NULL,
    invitation_id CHAR(36) CHARACTER SET ascii NULL,
    user_id       CHAR(36) CHARACTER SET ascii NULL,
    status        VARCHAR(16) CHARACTER SET ascii NOT NULL,
    attempts      INT NOT NULL DEFAULT 0,
    provider_id   VARCHAR(255) NULL,
    last_error    VARCHAR(500) NULL,
    created_at    DATETIME(6) NOT NULL,
    updated_at    DATETIME(6) NOT NULL,
    PRIMARY KEY (delivery_key),
    KEY email_deliveries_invitation (invitation_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Append-only audit of every status change. event_key makes a retried write a no-op.
CREATE TABLE invitation_events (
    id            BIGINT NOT NULL AUTO_INCREMENT,
    event_key     VARCHAR(80) CHARACTER SET ascii NOT NULL,
    invitation_id CHAR(36) CHARACTER SET ascii NOT NULL,
    action        VARCHAR(32) CHARACTER SET ascii NOT NULL,
    from_status   VARCHAR(16) CHARACTER SET ascii NULL,
    to_status     VARCHAR(16) CHARACTER SET ascii NOT NULL,
    reason        VARCHAR(500) NULL,
    created_at    DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY invitation_events_key (event_key),
    KEY invitation_events_invitation (invitation_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- A password chosen on the accept form waits here, keyed by the accept attempt, so that it
-- reaches the new account without passing through workflow history.
CREATE TABLE acceptance_credentials (
    attempt_id    CHAR(36) CHARACTER SET ascii NOT NULL,
    invitation_id CHAR(36) CHARACTER SET ascii NOT NULL,
    password_hash VARBINARY(100) NOT NULL,
    created_at    DATETIME(6) NOT NULL,
    PRIMARY KEY (attempt_id),
    KEY acceptance_credentials_invitation (invitation_id)
) ENGINE = InnoDB;

CREATE TABLE password_tokens (
    token_hash   BINARY(32) NOT NULL,
    user_id      CHAR(36) CHARACTER SET ascii NOT NULL,
    delivery_key VARCHAR(80) CHARACTER SET ascii NOT NULL,
    created_at   DATETIME(6) NOT NULL,
    expires_at   DATETIME(6) NOT NULL,
    used_at      DATETIME(6) NULL,
    PRIMARY KEY (token_hash),
    KEY password_tokens_user (user_id)
) ENGINE = InnoDB;

CREATE TABLE api_keys (
    id           CHAR(36) CHARACTER SET ascii NOT NULL,
    name         VARCHAR(100) NOT NULL,
    key_hash     BINARY(32) NOT NULL,
    created_at   DATETIME(6) NOT NULL,
    revoked_at   DATETIME(6) NULL,
    PRIMARY KEY (id),
    UNIQUE KEY api_keys_hash (key_hash)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE idempotency_keys (
    api_key_id     CHAR(36) CHARACTER SET ascii NOT NULL,
    idempotency_key VARCHAR(255) NOT NULL,
    request_hash   BINARY(32) NOT NULL,
    invitation_id  CHAR(36) CHARACTER SET ascii NOT NULL,
    created_at     DATETIME(6) NOT NULL,
    PRIMARY KEY (api_key_id, idempotency_key)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE api_keys;
DROP TABLE password_tokens;
DROP TABLE acceptance_credentials;
DROP TABLE invitation_events;
DROP TABLE email_deliveries;
DROP TABLE invitation_tokens;
DROP TABLE invitations;
DROP TABLE memberships;
DROP TABLE users;
DROP TABLE organizations;
