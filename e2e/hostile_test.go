package e2e

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// hostileStrings go into every string field a client controls: SQL fragments, quoting and
// LIKE wildcards, NUL and control bytes, bidirectional overrides and zero-width characters,
// four-byte UTF-8, markup and template syntax, header injection, and sizes just within and
// far beyond the limits.
var hostileStrings = []string{
	`Robert'); DROP TABLE users;--`, `' OR '1'='1`, `" OR ""="`, `1; SELECT SLEEP(5)`, `\`, `\'`, `%_%`, "`id`",
	"a\x00b", "\x00", "tab\tand\x1b[31mescape", "\u202egnp.exe", "zero\u200bwidth\ufeff", "𝕳𝖊𝖑𝖑𝖔 🎉 👩‍👩‍👧", "Ω≈ç√∫",
	`<script>alert(1)</script>`, `{{.Token}}`, `${jndi:ldap://x/a}`, "line\r\nX-Injected: 1", `=HYPERLINK("http://x")`,
	"\xff\xfe", strings.Repeat("é", 100), strings.Repeat("é", 5000), strings.Repeat("A", 70_000),
}

// settled checks one answer to a hostile value: a 4xx with a stable code, or a 2xx after
// which readBack returns the value as sent (less surrounding white space, which is trimmed).
func settled(t *testing.T, what, sent string, r response, readBack func() (string, bool)) {
	t.Helper()
	switch {
	case r.Status >= 400 && r.Status < 500:
		if r.code() == "" {
			t.Errorf("%s %.40q: %d without an error code: %.200s", what, sent, r.Status, r.Raw)
		}
	case r.Status >= 200 && r.Status < 300:
		got, ok := readBack()
		if !ok {
			return // stored, but under a value the API normalizes (an address)
		}
		if want := strings.TrimSpace(overJSON(sent)); got != want {
			t.Errorf("%s %.40q: stored as %.40q", what, sent, got)
		}
	default:
		t.Errorf("%s %.40q: answered %d: %.200s", what, sent, r.Status, r.Raw)
	}
}

func TestHostileStringsAreRefusedOrStoredVerbatim(t *testing.T) {
	org := createOrganization(t, "Hostile Org", nil)
	memberID, _ := createMember(t, org, "Harriet Host")
	publishProfile(t, memberID, org, "Harriet")

	for i, h := range hostileStrings {
		email := uniqueEmail(t, fmt.Sprintf("hostile%d", i))

		// Invitations: every string field, one at a time.
		for _, field := range []string{"name", "role", "locale", "expires_in", "redirect_url", "organization_id", "inviter_id", "email"} {
			body := map[string]any{"email": uniqueEmail(t, "hinv"), "name": "Ann", "organization_id": org, "send": false}
			body[field] = h
			r := call(t, "POST", "/v1/invitations", body)
			settled(t, "invitation "+field, h, r, func() (string, bool) {
				got := call(t, "GET", "/v1/invitations/"+r.str("id"), nil)
				if field == "email" {
					return "", false
				}
				return got.str(field), true
			})
		}
		r := call(t, "POST", "/v1/invitations", map[string]any{"email": email, "organization_id": org, "send": false,
			"metadata": map[string]any{h: h}})
		settled(t, "invitation metadata", h, r, func() (string, bool) {
			md, _ := call(t, "GET", "/v1/invitations/"+r.str("id"), nil).get("metadata").(map[string]any)
			v, _ := md[overJSON(h)].(string)
			return strings.TrimSpace(v), true
		})

		// People on file.
		for _, field := range []string{"name", "email", "phone", "locale", "role"} {
			body := map[string]any{"organization_id": org, "email": uniqueEmail(t, "hperson"), "name": "Pat"}
			body[field] = h
			r := call(t, "POST", "/v1/users", body)
			settled(t, "user "+field, h, r, func() (string, bool) {
				if field == "email" || field == "phone" {
					return "", false
				}
				return call(t, "GET", "/v1/users?organization_id="+org+"&q="+url.QueryEscape(r.str("user", "email")), nil).
					str2(0, field), true
			})
		}

		// Join requests: the visitor's name and message.
		for _, field := range []string{"name", "message", "email", "locale", "member_id"} {
			body := map[string]any{"member_id": memberID, "name": "Vic", "email": uniqueEmail(t, "hjoin")}
			body[field] = h
			r := call(t, "POST", "/v1/public/join-requests", body, withoutKey)
			settled(t, "join request "+field, h, r, func() (string, bool) {
				got := call(t, "GET", "/v1/join-requests/"+r.str("id"), nil)
				switch field {
				case "name":
					return got.str("visitor_name"), true
				case "message":
					return got.str("message"), true
				}
				return "", false
			})
		}

		// The public profile.
		for _, field := range []string{"display_name", "city", "bio", "organization_id"} {
			profile := map[string]any{"display_name": "Harriet", "organization_id": org}
			profile[field] = h
			r := call(t, "PATCH", "/v1/users/"+memberID, map[string]any{"public_profile": profile})
			settled(t, "public profile "+field, h, r, func() (string, bool) {
				return call(t, "GET", "/v1/users/"+memberID, nil).str("public_profile", field), true
			})
		}
	}

	// The CSV import: a row per hostile string, in each column.
	for _, column := range []string{"name", "email", "phone", "locale", "role"} {
		importOrg := createOrganization(t, "Hostile Import "+column, nil)
		var sb strings.Builder
		w := csv.NewWriter(&sb)
		_ = w.Write([]string{"email", "name", "phone", "locale", "role"})
		emails := map[int]string{}
		for i, h := range hostileStrings {
			row := map[string]string{"email": uniqueEmail(t, fmt.Sprintf("hcsv%d", i)), "name": "Row", "phone": "", "locale": "", "role": "member"}
			emails[i] = row["email"]
			row[column] = h
			_ = w.Write([]string{row["email"], row["name"], row["phone"], row["locale"], row["role"]})
		}
		w.Flush()
		r := call(t, "POST", "/v1/users/import?organization_id="+importOrg, sb.String(), withHeader("Content-Type", "text/csv"))
		if r.Status != http.StatusOK {
			if r.Status < 400 || r.Status >= 500 || r.code() == "" {
				t.Errorf("import with hostile %s: %d %.200s", column, r.Status, r.Raw)
			}
			continue
		}
		if column != "name" && column != "role" {
			continue
		}
		for i, h := range hostileStrings {
			listed := call(t, "GET", "/v1/users?organization_id="+importOrg+"&q="+url.QueryEscape(emails[i]), nil)
			if data, _ := listed.get("data").([]any); len(data) == 0 {
				continue // refused with a row error
			}
			// encoding/csv reads \r\n inside a quoted field as \n.
			if got, want := listed.str2(0, column), strings.TrimSpace(strings.ReplaceAll(h, "\r\n", "\n")); got != want {
				t.Errorf("import %s %.40q: stored as %.40q", column, h, got)
			}
		}
	}
}

// overJSON is s as a JSON string carries it: each byte of invalid UTF-8 becomes U+FFFD.
func overJSON(s string) string {
	raw, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(raw, &out)
	return out
}

// str2 is the field of the i-th element of a list's data.
func (r response) str2(i int, field string) string {
	data, _ := r.get("data").([]any)
	if i >= len(data) {
		return ""
	}
	m, _ := data[i].(map[string]any)
	s, _ := m[field].(string)
	return s
}
