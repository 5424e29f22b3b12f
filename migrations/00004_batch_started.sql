-- +goose Up
-- Set once the batch's workflow exists; the reconciler starts the workflow of any batch
-- stored by an API that stopped before starting it.
ALTER TABLE batches ADD COLUMN workflow_started_at DATETIME(6) NULL, ADD KEY batches_unstarted (workflow_started_at, created_at);

-- +goose Down
ALTER TABLE batches DROP KEY batches_unstarted, DROP COLUMN workflow_started_at;
