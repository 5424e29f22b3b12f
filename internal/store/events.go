package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/usherhq/usher/internal/domain"
)

// Event is a domain event: one state change that committed. It is written in the same
// transaction as the change, so an event exists if and only if the change does, once.
// Data holds IDs, statuses, times, roles, channels and reason codes only: never a token, a
// password or hash, an e-mail address or a name, since events go to webhooks and metrics.
type Event struct {
	ID, Type, OrganizationID, SubjectID string
	OccurredAt                          time.Time
	Data                                json.RawMessage
}

// Event types.
const (
	EventInvitationCreated   = "invitation.created"
	EventInvitationSent      = "invitation.sent"
	EventInvitationResent    = "invitation.resent"
	EventInvitationRenewed   = "invitation.renewed"
	EventInvitationDelivered = "invitation.delivered"
	EventInvitationAccepted  = "invitation.accepted"
	EventInvitationExpired   = "invitation.expired"
	EventInvitationRevoked   = "invitation.revoked"
	EventInvitationFailed    = "invitation.failed"

	EventJoinRequestCreated   = "join_request.created"
	EventJoinRequestConfirmed = "join_request.confirmed"
	EventJoinRequestApproved  = "join_request.approved"
	EventJoinRequestRejected  = "join_request.rejected"
	EventJoinRequestExpired   = "join_request.expired"
	EventJoinRequestCancelled = "join_request.cancelled"

	EventUserCreated = "user.created"
)

// EventTypes lists every event type, for validating webhook subscriptions.
var EventTypes = []string{
	EventInvitationCreated, EventInvitationSent, EventInvitationResent, EventInvitationRenewed,
	EventInvitationDelivered, EventInvitationAccepted, EventInvitationExpired, EventInvitationRevoked,
	EventInvitationFailed,
	EventJoinRequestCreated, EventJoinRequestConfirmed, EventJoinRequestApproved, EventJoinRequestRejected,
	EventJoinRequestExpired, EventJoinRequestCancelled,
	EventUserCreated,
}

// KnownEventType reports whether t is one of EventTypes.
func KnownEventType(t string) bool { return slices.Contains(EventTypes, t) }

// Where an account came from, in user.created events.
const (
	UserSourceInvitation  = "invitation"
	UserSourceJoinRequest = "join_request"
	UserSourceOnFile      = "people_on_file"
	UserSourceAdmin       = "admin"
)

// invitationEventTypes names the event of each invitation status change; actions not
// listed (the first send, recorded before the provider is called) record none.
var invitationEventTypes = map[domain.Action]string{
	domain.ActionResend: EventInvitationResent,
	domain.ActionRenew:  EventInvitationRenewed,
	domain.ActionRevoke: EventInvitationRevoked,
	domain.ActionExpire: EventInvitationExpired,
	domain.ActionFail:   EventInvitationFailed,
}

var joinEventTypes = map[domain.JoinAction]string{
	domain.JoinActionConfirm: EventJoinRequestConfirmed,
	domain.JoinActionReject:  EventJoinRequestRejected,
	domain.JoinActionExpire:  EventJoinRequestExpired,
	domain.JoinActionCancel:  EventJoinRequestCancelled,
}

// SetEventObserver registers a function called after commit with each event the
// transaction recorded (never for a retried change that recorded nothing). Used for
// metrics: it must be cheap and must not block. nil removes the observer.
func (s *Store) SetEventObserver(fn func(Event)) {
	if fn == nil {
		s.observer.Store(nil)
		return
	}
	s.observer.Store(&fn)
}

// WebhooksQueued receives a value (without blocking the sender; one may stand for many)
// after a transaction of this Store queued webhook deliveries, so a dispatcher in the same
// process can start them at once instead of at its next poll.
func (s *Store) WebhooksQueued() <-chan struct{} { return s.webhooksQueued }

// txRecord is what one transaction recorded, handed on after it commits.
type txRecord struct {
	events     []Event
	deliveries int
}

// recording maps a transaction begun by inTx to its txRecord, so that recordEvent can be
// called with the transaction alone.
var recording sync.Map // *sqlx.Tx → *txRecord

// afterCommit passes on what a committed transaction recorded.
func (s *Store) afterCommit(rec *txRecord) {
	if fn := s.observer.Load(); fn != nil {
		for _, e := range rec.events {
			(*fn)(e)
		}
	}
	if rec.deliveries > 0 {
		select {
		case s.webhooksQueued <- struct{}{}:
		default:
		}
	}
}

// recordEvent writes e in tx, keyed by key: the idempotency key of the change that
// produced it (one key per event; a change that records two events gives each its own).
// A key already recorded means a retried change: nothing is written and no observer
// hears of it. It also queues the event for every active webhook endpoint that wants it
// (the transactional outbox). ID and OccurredAt default to a new ID and now; Data to {}.
// Call it from store code, inside s.inTx, after the change itself.
func recordEvent(ctx context.Context, tx *sqlx.Tx, key string, e Event) error {
	row := eventRow(key, &e)
	_, err := tx.NamedExecContext(ctx, insertEvent, row)
	if isDuplicate(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return queueWebhooks(ctx, tx, []Event{e})
}

// recordNewEvents is recordEvent for many events whose keys cannot have been recorded
// before (they name rows the transaction has just created), in one statement.
func recordNewEvents(ctx context.Context, tx *sqlx.Tx, keys []string, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	rows := make([]map[string]any, len(events))
	for i := range events {
		rows[i] = eventRow(keys[i], &events[i])
	}
	for start := 0; start < len(rows); start += 1000 { // 7 placeholders a row, under MySQL's 65,535
		if _, err := tx.NamedExecContext(ctx, insertEvent, rows[start:min(start+1000, len(rows))]); err != nil {
			return err
		}
	}
	return queueWebhooks(ctx, tx, events)
}

const insertEvent = `INSERT INTO events (id, event_key, type, organization_id, subject_id, occurred_at, data)
	VALUES (:id, :event_key, :type, :organization_id, :subject_id, :occurred_at, :data)`

// eventRow fills in e's defaults and returns its row.
func eventRow(key string, e *Event) map[string]any {
	if e.ID == "" {
		e.ID = NewID()
	}
	if e.OccurredAt.IsZero() {
		e.OccurredAt = time.Now()
	}
	e.OccurredAt = e.OccurredAt.UTC().Truncate(time.Microsecond)
	if len(e.Data) == 0 {
		e.Data = json.RawMessage("{}")
	}
	var org *string
	if e.OrganizationID != "" {
		org = &e.OrganizationID
	}
	return map[string]any{"id": e.ID, "event_key": key, "type": e.Type, "organization_id": org, "subject_id": e.SubjectID,
		"occurred_at": e.OccurredAt, "data": []byte(e.Data)}
}

// queueWebhooks inserts a delivery of each event for every active endpoint that
// subscribes to it, and notes the events for the observer.
func queueWebhooks(ctx context.Context, tx *sqlx.Tx, events []Event) error {
	var endpoints []struct {
		ID             string  `db:"id"`
		Events         []byte  `db:"events"`
		OrganizationID *string `db:"organization_id"`
	}
	if err := tx.SelectContext(ctx, &endpoints, `SELECT id, events, organization_id FROM webhook_endpoints WHERE disabled_at IS NULL`); err != nil {
		return err
	}
	var deliveries []map[string]any
	for _, ep := range endpoints {
		var types []string
		if json.Unmarshal(ep.Events, &types) != nil {
			continue
		}
		for _, e := range events {
			if (ep.OrganizationID != nil && *ep.OrganizationID != e.OrganizationID) || !(slices.Contains(types, "*") || slices.Contains(types, e.Type)) {
				continue
			}
			deliveries = append(deliveries, map[string]any{"id": NewID(), "endpoint": ep.ID, "event": e.ID, "type": e.Type,
				"status": WebhookPending, "at": e.OccurredAt})
		}
	}
	for start := 0; start < len(deliveries); start += 1000 {
		chunk := deliveries[start:min(start+1000, len(deliveries))]
		if _, err := tx.NamedExecContext(ctx, `INSERT IGNORE INTO webhook_deliveries (id, endpoint_id, event_id, event_type, status, created_at, updated_at)
			VALUES (:id, :endpoint, :event, :type, :status, :at, :at)`, chunk); err != nil {
			return err
		}
	}
	if v, ok := recording.Load(tx); ok {
		rec := v.(*txRecord)
		rec.events = append(rec.events, events...)
		rec.deliveries += len(deliveries)
	}
	return nil
}

// eventData encodes an event's fields, leaving out nil ones.
func eventData(fields map[string]any) json.RawMessage {
	for k, v := range fields {
		switch x := v.(type) {
		case nil:
			delete(fields, k)
		case *string:
			if x == nil {
				delete(fields, k)
			} else {
				fields[k] = *x
			}
		case *time.Time:
			if x == nil {
				delete(fields, k)
			} else {
				fields[k] = x.UTC()
			}
		case time.Time:
			fields[k] = x.UTC()
		}
	}
	raw, err := json.Marshal(fields)
	if err != nil {
		// Only IDs, strings, booleans and times go in; this cannot happen.
		panic("store: encoding event data: " + err.Error())
	}
	return raw
}

// ListEvents returns the events about subjectID, oldest first (for tests and support).
func (s *Store) ListEvents(ctx context.Context, subjectID string) ([]Event, error) {
	var rows []struct {
		ID             string    `db:"id"`
		Type           string    `db:"type"`
		OrganizationID *string   `db:"organization_id"`
		SubjectID      string    `db:"subject_id"`
		OccurredAt     time.Time `db:"occurred_at"`
		Data           []byte    `db:"data"`
	}
	if err := s.db.SelectContext(ctx, &rows, `SELECT id, type, organization_id, subject_id, occurred_at, data
		FROM events WHERE subject_id = ? ORDER BY id`, subjectID); err != nil {
		return nil, err
	}
	out := make([]Event, 0, len(rows))
	for _, r := range rows {
		out = append(out, Event{ID: r.ID, Type: r.Type, OrganizationID: deref(r.OrganizationID), SubjectID: r.SubjectID,
			OccurredAt: r.OccurredAt, Data: r.Data})
	}
	return out, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// ---- the events of each change (payloads documented in README "Webhooks") ----

func invitationCreatedEvent(inv Invitation) Event {
	return Event{Type: EventInvitationCreated, OrganizationID: inv.OrganizationID, SubjectID: inv.ID, OccurredAt: inv.CreatedAt,
		Data: eventData(map[string]any{
			"invitation_id": inv.ID, "status": inv.Status, "role": inv.Role, "channel": inv.Channel,
			"expires_at": inv.ExpiresAt, "expires_in_seconds": inv.ExpiresInSeconds, "inviter_id": inv.InviterID, "batch_id": inv.BatchID,
		})}
}

// recordStatusChangeEvent records the event of an invitation status change, if its
// action has one.
func recordStatusChangeEvent(ctx context.Context, tx *sqlx.Tx, c StatusChange, now time.Time) error {
	typ, ok := invitationEventTypes[domain.Action(c.Action)]
	if !ok {
		return nil
	}
	var inv struct {
		OrganizationID string `db:"organization_id"`
		Channel        string `db:"channel"`
	}
	if err := tx.GetContext(ctx, &inv, `SELECT organization_id, channel FROM invitations WHERE id = ?`, c.InvitationID); err != nil {
		return err
	}
	data := map[string]any{
		"invitation_id": c.InvitationID, "from_status": c.From, "status": c.To, "expires_at": c.ExpiresAt, "channel": inv.Channel,
	}
	switch typ {
	case EventInvitationFailed:
		// The provider's own words may quote the address; only the code goes out.
		data["reason"] = "delivery_refused"
	case EventInvitationRenewed:
		data["reopened"] = c.From != domain.StatusPending
	}
	return recordEvent(ctx, tx, c.EventKey, Event{Type: typ, OrganizationID: inv.OrganizationID, SubjectID: c.InvitationID, OccurredAt: now, Data: eventData(data)})
}

// recordSentEvent records invitation.sent when the provider accepted a message carrying
// an invitation's link (e-mail or SMS; the invitation or a reminder, kinds "invitation"
// and "invitation_reminder"); other messages record nothing.
func recordSentEvent(ctx context.Context, tx *sqlx.Tx, deliveryKey string, now time.Time) error {
	var inv struct {
		ID             string `db:"id"`
		OrganizationID string `db:"organization_id"`
		Channel        string `db:"channel"`
		Kind           string `db:"kind"`
	}
	err := tx.GetContext(ctx, &inv, `SELECT i.id, i.organization_id, i.channel, d.kind FROM email_deliveries d JOIN invitations i ON i.id = d.invitation_id
		WHERE d.delivery_key = ? AND d.kind IN ('invitation', 'invitation_reminder')`, deliveryKey)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return recordEvent(ctx, tx, sentEventKey(deliveryKey), Event{Type: EventInvitationSent, OrganizationID: inv.OrganizationID, SubjectID: inv.ID, OccurredAt: now,
		Data: eventData(map[string]any{"invitation_id": inv.ID, "delivery_key": deliveryKey, "channel": inv.Channel, "sent_at": now,
			"reminder": inv.Kind != "invitation"})})
}

func sentEventKey(deliveryKey string) string { return "sent/" + deliveryKey }

// recordAcceptedEvents records invitation.accepted, with when the accepted link was sent,
// and user.created when the accept made the account.
func recordAcceptedEvents(ctx context.Context, tx *sqlx.Tx, eventKey string, inv Invitation, out Acceptance, now time.Time) error {
	var sentAt *time.Time
	if inv.CurrentDeliveryKey != nil {
		// An invitee can accept before the provider's answer to the send is recorded (the
		// message may arrive first); then the send began when its delivery row was made,
		// which is before the link existed.
		var at sql.NullTime
		err := tx.GetContext(ctx, &at, `SELECT COALESCE(
				(SELECT occurred_at FROM events WHERE event_key = ?),
				(SELECT created_at FROM email_deliveries WHERE delivery_key = ?))`,
			sentEventKey(*inv.CurrentDeliveryKey), *inv.CurrentDeliveryKey)
		if err != nil {
			return err
		}
		if at.Valid {
			sentAt = &at.Time
		}
	}
	err := recordEvent(ctx, tx, eventKey, Event{Type: EventInvitationAccepted, OrganizationID: inv.OrganizationID, SubjectID: inv.ID, OccurredAt: now,
		Data: eventData(map[string]any{
			"invitation_id": inv.ID, "from_status": inv.Status, "status": domain.StatusAccepted, "user_id": out.UserID, "role": inv.Role,
			"existing_user": out.ExistingUser, "channel": inv.Channel, "accepted_at": now, "sent_at": sentAt,
		})})
	if err != nil || out.ExistingUser {
		return err
	}
	return recordEvent(ctx, tx, userCreatedKey(out.UserID),
		userCreatedEvent(out.UserID, inv.OrganizationID, UserSourceInvitation, map[string]any{"invitation_id": inv.ID}, out.PasswordSet, now))
}

func userCreatedKey(userID string) string { return "user.created/" + userID }

func userCreatedEvent(userID, organizationID, source string, refs map[string]any, hasPassword bool, now time.Time) Event {
	data := map[string]any{"user_id": userID, "source": source, "has_password": hasPassword}
	for k, v := range refs {
		data[k] = v
	}
	return Event{Type: EventUserCreated, OrganizationID: organizationID, SubjectID: userID, OccurredAt: now, Data: eventData(data)}
}

// recordOnFileUsersCreated records user.created for the accounts PutOnFile inserted: those
// whose standing ID is the one it generated.
func recordOnFileUsersCreated(ctx context.Context, tx *sqlx.Tx, people []NewPerson, rows []map[string]any, standing map[string]string, now time.Time) error {
	orgs := make(map[string]string, len(people))
	for _, p := range people {
		if _, ok := orgs[p.Email]; !ok {
			orgs[p.Email] = p.OrganizationID
		}
	}
	var keys []string
	var events []Event
	for _, row := range rows {
		email, id := row["email"].(string), row["id"].(string)
		if standing[email] == id {
			keys = append(keys, userCreatedKey(id))
			events = append(events, userCreatedEvent(id, orgs[email], UserSourceOnFile, nil, false, now))
		}
	}
	return recordNewEvents(ctx, tx, keys, events)
}

func joinRequestCreatedEvent(jr JoinRequest) Event {
	return Event{Type: EventJoinRequestCreated, OrganizationID: jr.OrganizationID, SubjectID: jr.ID, OccurredAt: jr.CreatedAt,
		Data: eventData(map[string]any{"join_request_id": jr.ID, "member_id": jr.MemberID, "status": jr.Status, "confirm_by": jr.ConfirmExpiresAt})}
}

func recordJoinStatusChangeEvent(ctx context.Context, tx *sqlx.Tx, c JoinStatusChange, now time.Time) error {
	typ, ok := joinEventTypes[domain.JoinAction(c.Action)]
	if !ok {
		return nil
	}
	var org string
	if err := tx.GetContext(ctx, &org, `SELECT organization_id FROM join_requests WHERE id = ?`, c.JoinRequestID); err != nil {
		return err
	}
	data := map[string]any{"join_request_id": c.JoinRequestID, "from_status": c.From, "status": c.To, "decide_by": c.DecideBy}
	if code := reasonCode(c.Reason); code != "" {
		data["reason"] = code
	}
	return recordEvent(ctx, tx, c.EventKey, Event{Type: typ, OrganizationID: org, SubjectID: c.JoinRequestID, OccurredAt: now, Data: eventData(data)})
}

func recordApprovedEvents(ctx context.Context, tx *sqlx.Tx, eventKey string, jr JoinRequest, role string, out JoinApproval, now time.Time) error {
	err := recordEvent(ctx, tx, eventKey, Event{Type: EventJoinRequestApproved, OrganizationID: jr.OrganizationID, SubjectID: jr.ID, OccurredAt: now,
		Data: eventData(map[string]any{
			"join_request_id": jr.ID, "from_status": jr.Status, "status": domain.JoinApproved, "user_id": out.UserID, "role": role,
			"existing_user": out.ExistingUser, "member_id": jr.MemberID,
		})})
	if err != nil || out.ExistingUser {
		return err
	}
	return recordEvent(ctx, tx, userCreatedKey(out.UserID),
		userCreatedEvent(out.UserID, jr.OrganizationID, UserSourceJoinRequest, map[string]any{"join_request_id": jr.ID}, false, now))
}

// reasonCode passes on a reason only when it is a code (snake_case), never free text.
func reasonCode(reason string) string {
	if reason == "" || len(reason) > 64 {
		return ""
	}
	for _, r := range reason {
		if (r < 'a' || r > 'z') && r != '_' {
			return ""
		}
	}
	return reason
}
