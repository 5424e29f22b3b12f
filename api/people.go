package api

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/internal/phone"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/workflows"
)

// Limits of the people endpoints.
const (
	maxImportRows      = 100_000
	maxImportBytes     = 32 << 20
	maxBulkInvitations = 10_000
	maxBulkBytes       = 8 << 20
	importChunk        = 1000
)

// personInput is one person as a client describes them, in JSON or as a CSV row.
type personInput struct {
	Email  string `json:"email"`
	Name   string `json:"name"`
	Phone  string `json:"phone"`
	Locale string `json:"locale"`
	Role   string `json:"role"`
}

// validate checks one person; the error says what is wrong in words fit for an import report.
func (p personInput) validate(organizationID string) (store.NewPerson, error) {
	email, err := domain.NormalizeEmail(p.Email)
	if err != nil {
		if strings.TrimSpace(p.Email) == "" {
			return store.NewPerson{}, invalidField("email", "is required")
		}
		return store.NewPerson{}, err
	}
	name, err := validName(strings.TrimSpace(p.Name))
	if err != nil {
		return store.NewPerson{}, err
	}
	out := store.NewPerson{Email: email, Name: name, OrganizationID: organizationID, Role: p.Role}
	if out.Role == "" {
		out.Role = domain.DefaultRole
	}
	if !domain.ValidRole(out.Role) {
		return store.NewPerson{}, invalidField("role", "must be one of %v", domain.Roles)
	}
	if raw := strings.TrimSpace(p.Phone); raw != "" {
		e164, err := phone.Normalize(raw, "")
		if err != nil {
			var pe *phone.Error
			if errors.As(err, &pe) && pe.Reason == phone.ReasonMissingCountryCode {
				return store.NewPerson{}, invalidField("phone", "has no country code (write it as +44 20 7946 0958)")
			}
			return store.NewPerson{}, invalidField("phone", "is not a valid phone number")
		}
		out.Phone = &e164
	}
	if locale := strings.TrimSpace(p.Locale); locale != "" {
		if !domain.ValidLocale(locale) {
			return store.NewPerson{}, invalidField("locale", "must be a language tag such as \"en\" or \"pt-BR\"")
		}
		out.Locale = &locale
	}
	return out, nil
}

// personJSON is a person on an organization's file.
type personJSON struct {
	ID               string     `json:"id"`
	Email            string     `json:"email"`
	Name             string     `json:"name"`
	Phone            *string    `json:"phone"`
	Locale           *string    `json:"locale"`
	OrganizationID   string     `json:"organization_id"`
	Role             string     `json:"role"`
	InvitationStatus string     `json:"invitation_status"`
	InvitationID     *string    `json:"invitation_id"`
	InvitationError  *string    `json:"invitation_error"`
	InvitedAt        *time.Time `json:"invited_at"`
	CreatedAt        time.Time  `json:"created_at"`
}

func toPersonJSON(p store.Person) personJSON {
	return personJSON{
		ID: p.UserID, Email: p.Email, Name: p.Name, Phone: p.Phone, Locale: p.Locale, OrganizationID: p.OrganizationID,
		Role: p.Role, InvitationStatus: p.InvitationStatus, InvitationID: p.InvitationID, InvitationError: p.InvitationError,
		InvitedAt: p.InvitedAt, CreatedAt: p.CreatedAt,
	}
}

func (s *Server) requireOrganization(ctx context.Context, id string) error {
	if id == "" {
		return invalidField("organization_id", "is required")
	}
	if !store.ValidID(id) {
		return domain.Errorf(domain.CodeOrganizationNotFound, "no organization with id %q", id)
	}
	_, err := s.Store.GetOrganization(ctx, id)
	return err
}

type createPersonRequest struct {
	personInput
	OrganizationID string `json:"organization_id"`
	SendInvitation bool   `json:"send_invitation"`
	Channel        string `json:"channel"`
	ExpiresIn      string `json:"expires_in"`
}

// createPerson puts one person on an organization's file, and invites them if asked.
func (s *Server) createPerson(c *gin.Context) {
	var req createPersonRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	if err := s.requireOrganization(c, req.OrganizationID); err != nil {
		writeError(c, err)
		return
	}
	person, err := req.validate(req.OrganizationID)
	if err != nil {
		writeError(c, err)
		return
	}
	var invite *inviteSettings
	if req.SendInvitation {
		settings, err := s.inviteSettings(req.Channel, req.ExpiresIn)
		if err != nil {
			writeError(c, err)
			return
		}
		invite = &settings
	}
	ids, _, err := s.Store.PutOnFile(c, []store.NewPerson{person})
	if err != nil {
		writeError(c, err)
		return
	}
	var batchID *string
	if invite != nil {
		b, err := s.startBatch(c, *invite, []store.BatchTarget{{OrganizationID: req.OrganizationID, UserID: ids[0]}})
		if err != nil {
			writeError(c, err)
			return
		}
		batchID = &b
	}
	p, err := s.Store.GetPerson(c, req.OrganizationID, ids[0])
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"user": toPersonJSON(p), "batch_id": batchID})
}

type inviteSettings struct {
	channel   string
	expiresIn time.Duration
}

func (s *Server) inviteSettings(channel, expiresIn string) (inviteSettings, error) {
	out := inviteSettings{channel: channel}
	switch channel {
	case "":
		out.channel = store.ChannelEmail
	case store.ChannelEmail:
	case store.ChannelSMS:
		if !s.SMSEnabled {
			return out, domain.Errorf(domain.CodeSMSUnavailable, "SMS is not configured on this server; invite by e-mail or set TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM")
		}
	default:
		return out, invalidField("channel", `must be "email" or "sms"`)
	}
	var err error
	out.expiresIn, err = domain.ParseExpiresIn(expiresIn)
	return out, err
}

// startBatch stores a batch for targets and starts its workflow. If Temporal is down the
// batch waits, stored, for the reconciler.
func (s *Server) startBatch(ctx context.Context, settings inviteSettings, targets []store.BatchTarget) (string, error) {
	b, err := s.Store.CreateBatch(ctx, settings.channel, settings.expiresIn, targets)
	if err != nil {
		return "", err
	}
	if err := workflows.StartBatch(ctx, s.Temporal, b.ID, b.Total); err != nil {
		return "", domain.Errorf(domain.CodeTemporarilyUnavailable, "the batch was stored but could not be started yet; it will be shortly").
			WithDetail("batch_id", b.ID)
	}
	return b.ID, s.Store.MarkBatchStarted(ctx, b.ID)
}

// importPeople reads a CSV (header email,name,phone,locale,role; any order, extra columns
// ignored) of up to 100,000 rows. Each row is checked on its own; bad rows are reported
// with their row number (the header is row 1) and do not stop the good ones.
func (s *Server) importPeople(c *gin.Context) {
	// Before anything reads the body, form fields included.
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxImportBytes)
	organizationID := c.Query("organization_id")
	if organizationID == "" {
		organizationID = c.PostForm("organization_id")
	}
	if err := s.requireOrganization(c, organizationID); err != nil {
		writeError(c, err)
		return
	}
	sendRaw := c.Query("send_invitation")
	if sendRaw == "" {
		sendRaw = c.DefaultPostForm("send_invitation", "false")
	}
	send, err := strconv.ParseBool(sendRaw)
	if err != nil {
		writeError(c, invalidField("send_invitation", "must be true or false"))
		return
	}
	var invite inviteSettings
	if send {
		if invite, err = s.inviteSettings(c.Query("channel"), c.Query("expires_in")); err != nil {
			writeError(c, err)
			return
		}
	}
	body, err := csvBody(c)
	if err != nil {
		writeError(c, err)
		return
	}
	report, targets, err := s.readImport(c, body, organizationID)
	if err != nil {
		writeError(c, err)
		return
	}
	out := gin.H{"rows": report.rows, "imported": report.rows - len(report.errors), "created": report.created,
		"errors": report.errors, "batch_id": nil}
	if send && len(targets) > 0 {
		batchID, err := s.startBatch(c, invite, targets)
		if err != nil {
			writeError(c, err)
			return
		}
		out["batch_id"] = batchID
	}
	c.JSON(http.StatusOK, out)
}

// csvBody is the CSV of an import: the request body (text/csv) or the "file" part of a form.
func csvBody(c *gin.Context) (io.Reader, error) {
	ct := c.ContentType()
	switch {
	case ct == "multipart/form-data":
		file, err := c.FormFile("file")
		if err != nil {
			return nil, invalidField("file", "attach the CSV as the form field \"file\"")
		}
		f, err := file.Open()
		if err != nil {
			return nil, err
		}
		return f, nil
	case ct == "text/csv" || ct == "application/csv" || ct == "text/plain" || ct == "":
		return c.Request.Body, nil
	default:
		return nil, domain.Errorf(domain.CodeUnsupportedMediaType, "send the CSV as text/csv, or as the \"file\" field of multipart/form-data")
	}
}

type importError struct {
	Row    int    `json:"row,omitempty"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

type importReport struct {
	rows, created int
	errors        []importError
}

func (s *Server) readImport(ctx context.Context, body io.Reader, organizationID string) (importReport, []store.BatchTarget, error) {
	r := csv.NewReader(body)
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return importReport{}, nil, invalidField("csv", "the first row must be a header with the columns email,name,phone,locale,role")
	}
	columns := map[string]int{}
	for i, name := range header {
		columns[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(name, "\ufeff")))] = i
	}
	if _, ok := columns["email"]; !ok {
		return importReport{}, nil, invalidField("csv", "the header has no email column")
	}
	field := func(rec []string, name string) string {
		if i, ok := columns[name]; ok && i < len(rec) {
			return rec[i]
		}
		return ""
	}

	var report importReport
	var targets []store.BatchTarget
	seen := map[string]int{}
	var chunk []store.NewPerson
	flush := func() error {
		ids, created, err := s.Store.PutOnFile(ctx, chunk)
		if err != nil {
			return err
		}
		report.created += created
		for _, id := range ids {
			targets = append(targets, store.BatchTarget{OrganizationID: organizationID, UserID: id})
		}
		chunk = chunk[:0]
		return nil
	}
	for row := 2; ; row++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return importReport{}, nil, domain.Errorf(domain.CodeRequestTooLarge, "the CSV is larger than %d bytes", tooLarge.Limit)
		}
		report.rows++
		if report.rows > maxImportRows {
			return importReport{}, nil, domain.Errorf(domain.CodeRequestTooLarge, "an import holds at most %d rows", maxImportRows)
		}
		if err != nil {
			report.errors = append(report.errors, importError{Row: row, Reason: "not a valid CSV row"})
			continue
		}
		in := personInput{Email: field(rec, "email"), Name: field(rec, "name"), Phone: field(rec, "phone"),
			Locale: field(rec, "locale"), Role: field(rec, "role")}
		person, err := in.validate(organizationID)
		if err != nil {
			report.errors = append(report.errors, rowError(row, err))
			continue
		}
		if first, dup := seen[person.Email]; dup {
			report.errors = append(report.errors, importError{Row: row, Field: "email", Reason: fmt.Sprintf("the same address as row %d", first)})
			continue
		}
		seen[person.Email] = row
		chunk = append(chunk, person)
		if len(chunk) == importChunk {
			if err := flush(); err != nil {
				return importReport{}, nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return importReport{}, nil, err
	}
	if report.errors == nil {
		report.errors = []importError{}
	}
	return report, targets, nil
}

func rowError(row int, err error) importError {
	var de *domain.Error
	if errors.As(err, &de) {
		field, _ := de.Details["field"].(string)
		if de.Code == domain.CodeInvalidEmail {
			field = "email"
		}
		return importError{Row: row, Field: field, Reason: de.Message}
	}
	return importError{Row: row, Reason: err.Error()}
}

func (s *Server) listPeople(c *gin.Context) {
	f := store.PeopleFilter{OrganizationID: c.Query("organization_id"), Query: c.Query("q")}
	if f.OrganizationID != "" && !store.ValidID(f.OrganizationID) {
		writeError(c, invalidField("organization_id", "is not an organization ID"))
		return
	}
	if raw := c.Query("invitation_status"); raw != "" {
		if !slices.Contains(store.PersonStatuses, raw) {
			writeError(c, invalidField("invitation_status", "must be one of %v", store.PersonStatuses))
			return
		}
		f.InvitationStatus = raw
	}
	if len(f.Query) > 200 {
		writeError(c, invalidField("q", "must be at most 200 characters"))
		return
	}
	pg, err := pageRequest(c)
	if err != nil {
		writeError(c, err)
		return
	}
	f.Limit, f.AfterUserID = pg.Limit+1, pg.After
	rows, err := s.Store.ListPeople(c, f)
	if err != nil {
		writeError(c, err)
		return
	}
	writePage(c, pg, rows, func(p store.Person) string { return p.UserID }, toPersonJSON)
}

type peopleFilterJSON struct {
	InvitationStatus string `json:"invitation_status"`
	Q                string `json:"q"`
}

type invitePeopleRequest struct {
	OrganizationID string            `json:"organization_id"`
	UserIDs        []string          `json:"user_ids"`
	Filter         *peopleFilterJSON `json:"filter"`
	Channel        string            `json:"channel"`
	ExpiresIn      string            `json:"expires_in"`
}

// invitePeople invites people on an organization's file, chosen by ID or by a filter, as one
// batch; people already invited get a resend.
func (s *Server) invitePeople(c *gin.Context) {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxBulkBytes)
	var req invitePeopleRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	if err := s.requireOrganization(c, req.OrganizationID); err != nil {
		writeError(c, err)
		return
	}
	if (len(req.UserIDs) == 0) == (req.Filter == nil) {
		writeError(c, invalidField("user_ids", "give either user_ids or filter"))
		return
	}
	settings, err := s.inviteSettings(req.Channel, req.ExpiresIn)
	if err != nil {
		writeError(c, err)
		return
	}
	f := store.PeopleFilter{OrganizationID: req.OrganizationID, Limit: maxImportRows + 1}
	if req.Filter != nil {
		if req.Filter.InvitationStatus != "" && !slices.Contains(store.PersonStatuses, req.Filter.InvitationStatus) {
			writeError(c, invalidField("filter.invitation_status", "must be one of %v", store.PersonStatuses))
			return
		}
		f.InvitationStatus, f.Query = req.Filter.InvitationStatus, req.Filter.Q
	} else {
		if len(req.UserIDs) > maxImportRows {
			writeError(c, invalidField("user_ids", "at most %d", maxImportRows))
			return
		}
		for _, id := range req.UserIDs {
			if !store.ValidID(id) {
				writeError(c, invalidField("user_ids", "%q is not a user ID", id))
				return
			}
		}
		f.UserIDs = req.UserIDs
	}
	people, err := s.Store.ListPeople(c, f)
	if err != nil {
		writeError(c, err)
		return
	}
	if len(people) == 0 {
		writeError(c, domain.Errorf(domain.CodeInvalidRequest, "nobody on the organization's file matches"))
		return
	}
	if len(people) > maxImportRows {
		writeError(c, domain.Errorf(domain.CodeInvalidRequest, "more than %d people match; narrow the filter", maxImportRows))
		return
	}
	targets := make([]store.BatchTarget, len(people))
	for i, p := range people {
		targets[i] = store.BatchTarget{OrganizationID: p.OrganizationID, UserID: p.UserID}
	}
	batchID, err := s.startBatch(c, settings, targets)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"batch_id": batchID, "total": len(targets)})
}

type bulkInvitationsRequest struct {
	Invitations []bulkInvitation `json:"invitations"`
}

type bulkInvitation struct {
	personInput
	OrganizationID string `json:"organization_id"`
	Channel        string `json:"channel"`
	ExpiresIn      string `json:"expires_in"`
}

// bulkInvitations invites up to 10,000 new people at once: each is put on file and invited
// by a batch per (channel, expiry); every item gets its own result.
func (s *Server) bulkInvitations(c *gin.Context) {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxBulkBytes)
	var req bulkInvitationsRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	if len(req.Invitations) == 0 || len(req.Invitations) > maxBulkInvitations {
		writeError(c, invalidField("invitations", "must hold 1 to %d invitations", maxBulkInvitations))
		return
	}
	type result struct {
		Index   int          `json:"index"`
		Status  string       `json:"status"`
		UserID  *string      `json:"user_id,omitempty"`
		BatchID *string      `json:"batch_id,omitempty"`
		Error   *importError `json:"error,omitempty"`
	}
	results := make([]result, len(req.Invitations))
	type group struct {
		settings inviteSettings
		people   []store.NewPerson
		indexes  []int
	}
	groups := map[inviteSettings]*group{}
	var order []inviteSettings
	known := map[string]bool{}
	for i, item := range req.Invitations {
		results[i] = result{Index: i, Status: "error"}
		fail := func(err error) {
			e := rowError(i, err)
			results[i].Error = &importError{Field: e.Field, Reason: e.Reason}
		}
		if err := s.requireOrganization(c, item.OrganizationID); err != nil {
			if domain.ErrorCode(err) == domain.CodeInternal || domain.ErrorCode(err) == domain.CodeTemporarilyUnavailable {
				writeError(c, err)
				return
			}
			fail(err)
			continue
		}
		person, err := item.validate(item.OrganizationID)
		if err != nil {
			fail(err)
			continue
		}
		settings, err := s.inviteSettings(item.Channel, item.ExpiresIn)
		if err != nil {
			fail(err)
			continue
		}
		if key := item.OrganizationID + "/" + person.Email; known[key] {
			fail(invalidField("email", "the same person appears earlier in the request"))
			continue
		} else {
			known[key] = true
		}
		g, ok := groups[settings]
		if !ok {
			g = &group{settings: settings}
			groups[settings] = g
			order = append(order, settings)
		}
		g.people, g.indexes = append(g.people, person), append(g.indexes, i)
	}
	for _, settings := range order {
		g := groups[settings]
		var targets []store.BatchTarget
		var userIDs []string
		for start := 0; start < len(g.people); start += importChunk {
			ids, _, err := s.Store.PutOnFile(c, g.people[start:min(start+importChunk, len(g.people))])
			if err != nil {
				writeError(c, err)
				return
			}
			userIDs = append(userIDs, ids...)
		}
		for i, id := range userIDs {
			targets = append(targets, store.BatchTarget{OrganizationID: g.people[i].OrganizationID, UserID: id})
		}
		batchID, err := s.startBatch(c, settings, targets)
		if err != nil {
			writeError(c, err)
			return
		}
		for i, index := range g.indexes {
			results[index] = result{Index: index, Status: "queued", UserID: &userIDs[i], BatchID: &batchID}
		}
	}
	c.JSON(http.StatusAccepted, gin.H{"results": results})
}

func (s *Server) getBatch(c *gin.Context) {
	id := c.Param("id")
	if !store.ValidID(id) {
		writeError(c, domain.Errorf(domain.CodeBatchNotFound, "no batch with id %q", id))
		return
	}
	b, err := s.Store.GetBatch(c, id)
	if err != nil {
		writeError(c, err)
		return
	}
	p, err := s.Store.GetBatchProgress(c, id)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{
		"id": b.ID, "channel": b.Channel, "total": p.Total, "queued": p.Queued, "sent": p.Sent, "failed": p.Failed,
		"done": p.Done, "finished": p.Done == p.Total && b.FinishedAt != nil, "created_at": b.CreatedAt, "finished_at": b.FinishedAt,
	})
}
