-- +goose Up
-- What the provider reported after it accepted a message (Mailgun's event webhooks):
-- delivered, deferred (a temporary failure Mailgun keeps retrying), failed (for good) or
-- complained (marked as spam). Kept apart from status, which is Usher's own sending.
ALTER TABLE email_deliveries
    ADD COLUMN outcome        VARCHAR(16) CHARACTER SET ascii NULL,
    ADD COLUMN outcome_reason VARCHAR(500) NULL,
    ADD COLUMN outcome_at     DATETIME(6) NULL;

-- Tokens of the signed webhook requests already accepted: a request replayed with the
-- same signature is refused. A replay older than the signature window is refused as stale
-- anyway, so a token is only kept for a while (pruned by the API as it goes).
CREATE TABLE mailgun_webhook_tokens (
    token       VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    received_at DATETIME(6) NOT NULL,
    PRIMARY KEY (token),
    KEY mailgun_webhook_tokens_received (received_at)
) ENGINE = InnoDB;

-- Mailgun events already seen, by Mailgun's event ID: Mailgun retries a webhook it got no
-- 2xx for, and a retry must change nothing. handled_at is set once the event was acted on
-- (recorded and, when it matters, signalled to the workflow); an event seen but not handled
-- is handled again when it comes back.
CREATE TABLE mailgun_events (
    event_id     VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    event        VARCHAR(32) CHARACTER SET ascii NOT NULL,
    delivery_key VARCHAR(80) CHARACTER SET ascii NULL,
    received_at  DATETIME(6) NOT NULL,
    handled_at   DATETIME(6) NULL,
    PRIMARY KEY (event_id),
    KEY mailgun_events_received (received_at)
) ENGINE = InnoDB;

-- +goose Down
DROP TABLE mailgun_events;
DROP TABLE mailgun_webhook_tokens;
ALTER TABLE email_deliveries DROP COLUMN outcome_at, DROP COLUMN outcome_reason, DROP COLUMN outcome;
