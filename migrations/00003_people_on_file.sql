-- +goose Up
ALTER TABLE users ADD COLUMN phone VARCHAR(20) CHARACTER SET ascii NULL;

-- People an organization keeps on file before (and after) inviting them: the role they are
-- to get, and their latest invitation, from which their invitation status is derived.
CREATE TABLE directory_entries (
    organization_id  CHAR(36) CHARACTER SET ascii NOT NULL,
    user_id          CHAR(36) CHARACTER SET ascii NOT NULL,
    role             VARCHAR(32) NOT NULL,
    invitation_id    CHAR(36) CHARACTER SET ascii NULL,
    -- Why the latest attempt to invite could not even start (no phone on file, say).
    invitation_error VARCHAR(200) NULL,
    created_at       DATETIME(6) NOT NULL,
    updated_at       DATETIME(6) NOT NULL,
    PRIMARY KEY (organization_id, user_id),
    KEY directory_entries_user (user_id),
    CONSTRAINT directory_entries_user FOREIGN KEY (user_id) REFERENCES users (id),
    CONSTRAINT directory_entries_organization FOREIGN KEY (organization_id) REFERENCES organizations (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

ALTER TABLE invitations
    ADD COLUMN channel  VARCHAR(8) CHARACTER SET ascii NOT NULL DEFAULT 'email',
    ADD COLUMN phone    VARCHAR(20) CHARACTER SET ascii NULL,
    ADD COLUMN batch_id CHAR(36) CHARACTER SET ascii NULL,
    ADD KEY invitations_batch (batch_id);

-- A batch invites many people on file at once; its items are fixed when it is created.
CREATE TABLE batches (
    id                 CHAR(36) CHARACTER SET ascii NOT NULL,
    channel            VARCHAR(8) CHARACTER SET ascii NOT NULL,
    expires_in_seconds BIGINT NOT NULL,
    total              INT NOT NULL,
    finished_at        DATETIME(6) NULL,
    created_at         DATETIME(6) NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB;

CREATE TABLE batch_items (
    batch_id        CHAR(36) CHARACTER SET ascii NOT NULL,
    seq             INT NOT NULL,
    organization_id CHAR(36) CHARACTER SET ascii NOT NULL,
    user_id         CHAR(36) CHARACTER SET ascii NOT NULL,
    -- pending, done (invitation created or resent), error (could not even start)
    state           VARCHAR(8) CHARACTER SET ascii NOT NULL,
    invitation_id   CHAR(36) CHARACTER SET ascii NULL,
    error           VARCHAR(200) NULL,
    PRIMARY KEY (batch_id, seq),
    UNIQUE KEY batch_items_person (batch_id, organization_id, user_id)
) ENGINE = InnoDB;

-- +goose Down
DROP TABLE batch_items;
DROP TABLE batches;
ALTER TABLE invitations DROP KEY invitations_batch, DROP COLUMN batch_id, DROP COLUMN phone, DROP COLUMN channel;
DROP TABLE directory_entries;
ALTER TABLE users DROP COLUMN phone;
