//go:build !nodev

package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/internal/store"
)

// listingResult is benchmark 3.
type listingResult struct {
	Rows         int
	OrgRows      int // rows of the listed organization
	OrgPending   int // of which pending
	Orgs         int
	Seed         time.Duration
	Requests     int
	DeepRow      int             // the deep page starts after this many pending rows of the organization
	First, Deep  []time.Duration // HTTP, sorted
	FirstSQL     []time.Duration // store.ListInvitations, sorted
	DeepSQL      []time.Duration
	Query        string // the statement the store sent
	PlanFirst    []planRow
	PlanDeep     []planRow
	PageSize     int
	CursorOK     bool // the API's next_cursor is the bench's encoding of the last ID
	BufferPoolMB int
}

// planRow is one row of EXPLAIN.
type planRow struct {
	Table, Type, Key, Rows, Extra string
}

func (p planRow) String() string {
	s := fmt.Sprintf("type=%s, key=%s, rows=%s", p.Type, p.Key, p.Rows)
	if p.Extra != "" {
		s += ", Extra: " + p.Extra
	}
	return s
}

func planString(rows []planRow) string {
	parts := make([]string, len(rows))
	for i, r := range rows {
		parts[i] = r.String()
	}
	return strings.Join(parts, "; ")
}

// isRangeScan says whether the plan reads the index a range at a time in id order: a
// range (or ref, the equality prefix of a range) on a key holding status, organization
// and id, with no filesort.
func isRangeScan(rows []planRow) bool {
	if len(rows) != 1 {
		return false
	}
	r := rows[0]
	return (r.Type == "range" || r.Type == "ref") && r.Key == "invitations_organization_status" && !strings.Contains(r.Extra, "filesort")
}

// runListing seeds opts.suite.rows invitation rows straight into MariaDB, 60 % of them in
// one organization (five in six of those pending), the rest spread over 99 others in
// every status, then times the first page and a deep page of that organization's pending
// invitations through the API and through the store, and EXPLAINs the store's query.
func (s *stack) runListing(ctx context.Context, opts options) (listingResult, error) {
	n := opts.suite.rows
	res := listingResult{Rows: n, Orgs: 100, Requests: opts.suite.listRequests, PageSize: 50}
	_ = s.db.GetContext(ctx, &res.BufferPoolMB, `SELECT @@innodb_buffer_pool_size DIV 1048576`)

	org, err := s.createOrganization(ctx, "Bench Listing")
	if err != nil {
		return res, err
	}
	others := make([]string, 99)
	now := time.Now().UTC()
	for i := range others {
		others[i] = store.NewID()
		if _, err := s.db.ExecContext(ctx, `INSERT INTO organizations (id, name, created_at, updated_at) VALUES (?, ?, ?, ?)`,
			others[i], fmt.Sprintf("Bench Listing %d", i), now, now); err != nil {
			return res, err
		}
	}
	quoted := make([]string, len(others))
	for i, id := range others {
		quoted[i] = "'" + id + "'"
	}
	res.OrgRows = n * 6 / 10

	// IDs are UUIDv7-shaped and ascending with seq, from a base 30 days back, so that they
	// sort before the invitations the API creates, as older rows do.
	base := now.Add(-30*24*time.Hour).UnixMilli() - int64(n)
	logf("listing: seeding %s invitation rows (%s in one organization)", thousands(n), thousands(res.OrgRows))
	start := time.Now()
	const chunk = 50_000
	for lo := 1; lo <= n; lo += chunk {
		hi := min(lo+chunk-1, n)
		q := fmt.Sprintf(`INSERT INTO invitations (id, organization_id, email, name, role, status, locale, expires_in_seconds, expires_at,
				delivery_status, delivery_attempts, workflow_started_at, created_at, updated_at, accepted_at)
			SELECT LOWER(CONCAT(SUBSTR(h, 1, 8), '-', SUBSTR(h, 9, 4), '-7', LPAD(HEX(seq MOD 4096), 3, '0'), '-8', LPAD(HEX(seq MOD 4096), 3, '0'), '-', LPAD(HEX(seq), 12, '0'))),
				org, CONCAT('seed-', LPAD(seq, 8, '0'), '@list.example.com'), CONCAT('Seeded ', seq), 'member', st, 'en', 604800,
				created + INTERVAL 7 DAY, IF(st = 'pending', 'sent', 'delivered'), 1, created, created, created,
				IF(st = 'accepted', created + INTERVAL 1 HOUR, NULL)
			FROM (SELECT seq, h, created,
					IF(seq <= %[3]d, ?, ELT(1 + seq MOD 99, %[4]s)) AS org,
					IF(seq <= %[3]d, IF(seq MOD 6 = 0, 'accepted', 'pending'), ELT(1 + seq MOD 4, 'pending', 'accepted', 'expired', 'revoked')) AS st
				FROM (SELECT seq, LPAD(HEX(%[5]d + seq), 12, '0') AS h, FROM_UNIXTIME((%[5]d + seq) / 1000) AS created FROM seq_%[1]d_to_%[2]d) g) r`,
			lo, hi, res.OrgRows, strings.Join(quoted, ","), base)
		if _, err := s.db.ExecContext(ctx, q, org); err != nil {
			return res, fmt.Errorf("seeding rows %d–%d: %w", lo, hi, err)
		}
		if hi%200_000 == 0 || hi == n {
			logf("listing: %s rows in %s", thousands(hi), round(time.Since(start)))
		}
	}
	if _, err := s.db.ExecContext(ctx, `ANALYZE TABLE invitations`); err != nil {
		return res, err
	}
	res.Seed = time.Since(start)
	if err := s.db.GetContext(ctx, &res.OrgPending, `SELECT COUNT(*) FROM invitations WHERE organization_id = ? AND status = 'pending'`, org); err != nil {
		return res, err
	}

	// The deep page: the one a client following next_cursor reaches after 80 % of the
	// organization's pending invitations. The cursor is the last ID of the page before.
	res.DeepRow = res.OrgPending * 8 / 10
	var deepAfter string
	if err := s.db.GetContext(ctx, &deepAfter, `SELECT id FROM invitations WHERE organization_id = ? AND status = 'pending' ORDER BY id DESC LIMIT 1 OFFSET ?`, org, res.DeepRow-1); err != nil {
		return res, err
	}
	cursor := base64.RawURLEncoding.EncodeToString([]byte(deepAfter))

	firstPath := "/v1/invitations?status=pending&organization_id=" + url.QueryEscape(org)
	deepPath := firstPath + "&cursor=" + cursor
	// The bench's cursor must be the API's: check it against the first page's.
	raw, err := s.call(ctx, "GET", firstPath, "", nil, http.StatusOK)
	if err != nil {
		return res, err
	}
	var page struct {
		Data []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"data"`
		NextCursor *string `json:"next_cursor"`
	}
	if err := json.Unmarshal(raw, &page); err != nil || len(page.Data) != res.PageSize || page.NextCursor == nil {
		return res, fmt.Errorf("the first page: %d rows, cursor %v", len(page.Data), page.NextCursor)
	}
	res.CursorOK = *page.NextCursor == base64.RawURLEncoding.EncodeToString([]byte(page.Data[len(page.Data)-1].ID))
	if raw, err = s.call(ctx, "GET", deepPath, "", nil, http.StatusOK); err != nil {
		return res, err
	}
	if err := json.Unmarshal(raw, &page); err != nil || len(page.Data) != res.PageSize || page.Data[0].ID >= deepAfter || page.Data[0].Status != "pending" {
		return res, fmt.Errorf("the deep page is not what was asked for")
	}

	timeHTTP := func(path string) ([]time.Duration, error) {
		for range 20 { // warm-up
			if _, err := s.call(ctx, "GET", path, "", nil, http.StatusOK); err != nil {
				return nil, err
			}
		}
		lat := make([]time.Duration, res.Requests)
		for i := range lat {
			t := time.Now()
			if _, err := s.call(ctx, "GET", path, "", nil, http.StatusOK); err != nil {
				return nil, err
			}
			lat[i] = time.Since(t)
		}
		slices.Sort(lat)
		return lat, nil
	}
	logf("listing: %d requests of the first page and of the page after row %s", res.Requests, thousands(res.DeepRow))
	if res.First, err = timeHTTP(firstPath); err != nil {
		return res, err
	}
	if res.Deep, err = timeHTTP(deepPath); err != nil {
		return res, err
	}

	// The same through the store, as the API calls it (page size + 1 rows).
	filter := store.InvitationFilter{Status: domain.StatusPending, OrganizationID: org, Limit: res.PageSize + 1}
	timeSQL := func(f store.InvitationFilter) ([]time.Duration, error) {
		lat := make([]time.Duration, res.Requests)
		for i := range lat {
			t := time.Now()
			if _, err := s.store.ListInvitations(ctx, f); err != nil {
				return nil, err
			}
			lat[i] = time.Since(t)
		}
		slices.Sort(lat)
		return lat, nil
	}
	s.sql.reset()
	if res.FirstSQL, err = timeSQL(filter); err != nil {
		return res, err
	}
	for _, st := range s.sql.snapshot().Top {
		if strings.Contains(st.query, "FROM invitations") {
			res.Query = st.query
		}
	}
	deepFilter := filter
	deepFilter.AfterID = deepAfter
	s.sql.reset()
	if res.DeepSQL, err = timeSQL(deepFilter); err != nil {
		return res, err
	}
	var deepQuery string
	for _, st := range s.sql.snapshot().Top {
		if strings.Contains(st.query, "FROM invitations") {
			deepQuery = st.query
		}
	}
	if res.Query == "" || deepQuery == "" {
		return res, fmt.Errorf("the store's listing query was not seen")
	}
	if res.PlanFirst, err = s.explain(ctx, res.Query, filter); err != nil {
		return res, err
	}
	if res.PlanDeep, err = s.explain(ctx, deepQuery, deepFilter); err != nil {
		return res, err
	}
	logf("listing: p99 first page %s, deep page %s (HTTP)", millis(percentile(res.First, 0.99)), millis(percentile(res.Deep, 0.99)))
	return res, nil
}

// explain runs EXPLAIN of the store's statement with the filter's arguments, in the
// order ListInvitations binds them (status, organization, cursor, limit).
func (s *stack) explain(ctx context.Context, query string, f store.InvitationFilter) ([]planRow, error) {
	args := []any{f.Status, f.OrganizationID}
	if f.AfterID != "" {
		args = append(args, f.AfterID)
	}
	args = append(args, f.Limit)
	rows, err := s.db.QueryxContext(ctx, "EXPLAIN "+query, args...)
	if err != nil {
		return nil, fmt.Errorf("EXPLAIN: %w", err)
	}
	defer rows.Close()
	var out []planRow
	for rows.Next() {
		m := map[string]any{}
		if err := rows.MapScan(m); err != nil {
			return nil, err
		}
		str := func(k string) string {
			switch v := m[k].(type) {
			case []byte:
				return string(v)
			case nil:
				return ""
			default:
				return fmt.Sprint(v)
			}
		}
		out = append(out, planRow{Table: str("table"), Type: str("type"), Key: str("key"), Rows: str("rows"), Extra: str("Extra")})
	}
	return out, rows.Err()
}
