package workflows

import (
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Search attributes let operators find Usher's workflows in the Temporal UI and CLI, for
// example `UsherKind='invitation' AND UsherStatus='pending'`. They hold kinds, statuses,
// IDs and times only: nothing personal, since visibility stores are indexed and kept.
var (
	SearchKind         = temporal.NewSearchAttributeKeyKeyword("UsherKind")
	SearchStatus       = temporal.NewSearchAttributeKeyKeyword("UsherStatus")
	SearchOrganization = temporal.NewSearchAttributeKeyKeyword("UsherOrganization")
	// SearchExpiresAt is when the workflow gives up waiting: an invitation's expiry, a join
	// request's confirm-by or decide-by.
	SearchExpiresAt = temporal.NewSearchAttributeKeyTime("UsherExpiresAt")
)

// Values of UsherKind.
const (
	KindInvitation  = "invitation"
	KindJoinRequest = "join_request"
	KindBatch       = "batch"
)

// Values of UsherStatus for batches, whose statuses are not domain statuses.
const (
	BatchRunning  = "running"
	BatchFinished = "finished"
)

// SearchAttributeTypes is every custom search attribute Usher sets, for registering them on
// a namespace (usher migrate, usher dev).
func SearchAttributeTypes() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		SearchKind.GetName():         enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SearchStatus.GetName():       enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SearchOrganization.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SearchExpiresAt.GetName():    enumspb.INDEXED_VALUE_TYPE_DATETIME,
	}
}

// searchAttributes are the attributes a workflow starts with.
func searchAttributes(kind, status, organizationID string, expiresAt time.Time) temporal.SearchAttributes {
	updates := []temporal.SearchAttributeUpdate{SearchKind.ValueSet(kind), SearchStatus.ValueSet(status)}
	if organizationID != "" {
		updates = append(updates, SearchOrganization.ValueSet(organizationID))
	}
	if !expiresAt.IsZero() {
		updates = append(updates, SearchExpiresAt.ValueSet(expiresAt.UTC()))
	}
	return temporal.NewSearchAttributes(updates...)
}

// searchAttributesVersion marks the workflow code that keeps search attributes current, so
// that runs recorded before it replay without the upserts they never made.
const searchAttributesVersion = "search-attributes"

// showStatus publishes a workflow's status, and its expiry when it moved, to Temporal's
// visibility store.
func showStatus(ctx workflow.Context, kind, status string, expiresAt time.Time) {
	if workflow.GetVersion(ctx, searchAttributesVersion, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return
	}
	updates := []temporal.SearchAttributeUpdate{SearchKind.ValueSet(kind), SearchStatus.ValueSet(status)}
	if !expiresAt.IsZero() {
		updates = append(updates, SearchExpiresAt.ValueSet(expiresAt.UTC()))
	}
	// An attribute the namespace lacks fails the workflow task on the server, not here, and
	// the worker refuses to start without them; a local error is a bad value and is only
	// worth a log line.
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		workflow.GetLogger(ctx).Warn("could not update search attributes", "error", err)
	}
}
