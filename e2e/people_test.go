package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usherhq/usher/api"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/twiliosrv"
	"github.com/usherhq/usher/worker"
)

// postCSV uploads an import.
func postCSV(t *testing.T, query string, csv string) response {
	t.Helper()
	return call(t, "POST", "/v1/users/import?"+query, []byte(csv), withHeader("Content-Type", "text/csv"))
}

func waitForBatch(t *testing.T, id string, within time.Duration) response {
	t.Helper()
	var r response
	eventually(t, within, "batch "+id+" to finish", func() bool {
		r = call(t, "GET", "/v1/batches/"+id, nil)
		return r.get("finished") == true
	})
	return r
}

func TestPersonOnFileIsInvitedLaterAndActivatedByAccepting(t *testing.T) {
	org := createOrganization(t, "File Org", nil)
	email := uniqueEmail(t, "onfile")
	created := call(t, "POST", "/v1/users", map[string]any{"email": email, "name": "Olga On-File", "organization_id": org, "role": "admin", "phone": "+44 20 7946 0958", "locale": "de"})
	expect(t, created, http.StatusCreated, "")
	userID := created.str("user", "id")
	if created.str("user", "invitation_status") != "not_invited" || created.str("user", "phone") != "+442079460958" || created.get("batch_id") != nil {
		t.Fatalf("created: %s", created.Raw)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(mailTo(email, "invitation")); n != 0 {
		t.Fatal("a person put on file without send_invitation was invited")
	}
	list := call(t, "GET", "/v1/users?organization_id="+org+"&invitation_status=not_invited&q=olga", nil)
	if data, _ := list.get("data").([]any); len(data) != 1 {
		t.Fatalf("list: %s", list.Raw)
	}

	invited := call(t, "POST", "/v1/users/invite", map[string]any{"organization_id": org, "user_ids": []string{userID}, "channel": "email"})
	expect(t, invited, http.StatusAccepted, "")
	batch := waitForBatch(t, invited.str("batch_id"), 60*time.Second)
	if batch.get("total") != float64(1) || batch.get("sent") != float64(1) {
		t.Fatalf("batch: %s", batch.Raw)
	}
	mail := waitForMail(t, email, "invitation", 1)[0]
	if !strings.Contains(mail.Subject+mail.Text, "File Org") {
		t.Fatalf("invitation: %q", mail.Text)
	}
	token := tokenIn(t, mail, "invite")
	people := call(t, "GET", "/v1/users?organization_id="+org+"&invitation_status=invited", nil)
	if data, _ := people.get("data").([]any); len(data) != 1 {
		t.Fatalf("after the batch: %s", people.Raw)
	}

	accepted := call(t, "POST", "/v1/public/invitations/accept", map[string]any{"token": token}, withoutKey)
	expect(t, accepted, http.StatusOK, "")
	if accepted.str("user_id") != userID {
		t.Fatalf("accepting made another account: %s", accepted.Raw)
	}
	// Activated: the account had no password, so a set-password link follows.
	passwordToken := tokenIn(t, waitForMail(t, email, "set_password", 1)[0], "password")
	expect(t, call(t, "POST", "/v1/public/password", map[string]any{"token": passwordToken, "password": "my first password"}, withoutKey), http.StatusOK, "")
	user := call(t, "GET", "/v1/users/"+userID, nil)
	if memberships, _ := user.get("memberships").([]any); len(memberships) != 1 || memberships[0].(map[string]any)["role"] != "admin" || user.get("has_password") != true {
		t.Fatalf("user: %s", user.Raw)
	}
	eventually(t, 30*time.Second, "the person to show as accepted", func() bool {
		p := call(t, "GET", "/v1/users?organization_id="+org+"&invitation_status=accepted", nil)
		data, _ := p.get("data").([]any)
		return len(data) == 1
	})
	if n := countRows(t, "SELECT COUNT(*) FROM users WHERE email = ?", email); n != 1 {
		t.Fatalf("%d accounts", n)
	}
}

// importCSV builds 1,000 rows: 980 good (every seventh with a phone) and 20 bad, of every
// kind, at known rows.
func importCSV(prefix string) (csv string, good []string, phones []string, bad map[int]string) {
	var b strings.Builder
	b.WriteString("email,name,phone,locale,role\n")
	bad = map[int]string{}
	kinds := []struct{ field, row string }{
		{"email", ",No Address,,en,member"},
		{"email", "not-an-address,Bad Address,,en,member"},
		{"phone", "%s,No Country Code,020 7946 0958,en,member"},
		{"phone", "%s,Bad Phone,+44 12,en,member"},
		{"role", "%s,Bad Role,,en,emperor"},
		{"locale", "%s,Bad Locale,,english please,member"},
		{"name", "%s," + strings.Repeat("x", 201) + ",,en,member"},
	}
	goodIndex := 0
	for i := 0; i < 1000; i++ {
		row := i + 2
		if i%50 == 7 { // 20 bad rows
			k := kinds[len(bad)%len(kinds)]
			line := k.row
			if strings.Contains(line, "%s") {
				line = fmt.Sprintf(line, fmt.Sprintf("%s-bad-%d@example.com", prefix, i))
			}
			b.WriteString(line + "\n")
			bad[row] = k.field
			continue
		}
		email := fmt.Sprintf("%s-%d@example.com", prefix, goodIndex)
		phone := ""
		if goodIndex%7 == 0 {
			phone = fmt.Sprintf("+4915112%06d", goodIndex)
			phones = append(phones, phone)
		}
		fmt.Fprintf(&b, "%s,Person %d,%s,en,member\n", email, goodIndex, phone)
		good = append(good, email)
		goodIndex++
	}
	return b.String(), good, phones, bad
}

func TestImportThousandAndInviteThroughARestart(t *testing.T) {
	org := createOrganization(t, "Big Co", nil)
	prefix := fmt.Sprintf("imp%d", time.Now().UnixNano()%1_000_000)
	csv, good, phones, bad := importCSV(prefix)

	imported := postCSV(t, "organization_id="+org+"&send_invitation=true", csv)
	expect(t, imported, http.StatusOK, "")
	if imported.get("rows") != float64(1000) || imported.get("imported") != float64(980) || imported.get("created") != float64(980) {
		t.Fatalf("import: rows %v imported %v created %v", imported.get("rows"), imported.get("imported"), imported.get("created"))
	}
	errs, _ := imported.get("errors").([]any)
	if len(errs) != 20 {
		t.Fatalf("%d bad rows reported, want 20", len(errs))
	}
	for _, e := range errs {
		m := e.(map[string]any)
		row := int(m["row"].(float64))
		if want, ok := bad[row]; !ok || m["field"] != want || m["reason"] == "" {
			t.Errorf("row %d reported as %v, want field %q", row, m, want)
		}
	}
	batchID := imported.str("batch_id")

	// Restart the worker while the batch is under way.
	eventually(t, 60*time.Second, "the batch to get going", func() bool {
		return call(t, "GET", "/v1/batches/"+batchID, nil).get("done").(float64) > 50
	})
	env.stopWorker()
	time.Sleep(500 * time.Millisecond)
	if err := env.startWorker(); err != nil {
		t.Fatal(err)
	}
	batch := waitForBatch(t, batchID, 3*time.Minute)
	if batch.get("total") != float64(980) || batch.get("sent") != float64(980) || batch.get("failed") != float64(0) {
		t.Fatalf("batch: %s", batch.Raw)
	}
	for _, email := range good {
		if n := len(mailTo(email, "invitation")); n != 1 {
			t.Fatalf("%s got %d invitations", email, n)
		}
	}

	// Some of them again, by SMS: those with a phone, and one without.
	ids := map[string]string{}
	for cursor := ""; ; {
		path := "/v1/users?organization_id=" + org + "&limit=200"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		people := call(t, "GET", path, nil)
		for _, p := range people.get("data").([]any) {
			m := p.(map[string]any)
			ids[m["email"].(string)] = m["id"].(string)
		}
		next, _ := people.get("next_cursor").(string)
		if next == "" {
			break
		}
		cursor = next
	}
	if len(ids) != 980 {
		t.Fatalf("listed %d people, want 980", len(ids))
	}
	var smsTargets []string
	for i, email := range good {
		if i%7 == 0 {
			smsTargets = append(smsTargets, ids[email])
		}
	}
	noPhone := ids[good[1]]
	sent := call(t, "POST", "/v1/users/invite", map[string]any{"organization_id": org, "user_ids": append(smsTargets, noPhone), "channel": "sms"})
	expect(t, sent, http.StatusAccepted, "")
	smsBatch := waitForBatch(t, sent.str("batch_id"), 2*time.Minute)
	if smsBatch.get("sent") != float64(len(phones)) || smsBatch.get("failed") != float64(1) {
		t.Fatalf("SMS batch: %s", smsBatch.Raw)
	}
	for _, number := range phones {
		msgs := env.phone.MessagesTo(number)
		if len(msgs) != 1 || !strings.Contains(msgs[0].Body, publicURL+"/i/") {
			all := env.phone.Messages()
			if len(all) > 0 {
				t.Logf("%d texts in all, the first to %s: %q", len(all), all[0].To, all[0].Body)
			}
			t.Fatalf("%s got %d texts", number, len(msgs))
		}
	}
	errored := call(t, "GET", "/v1/users?organization_id="+org+"&invitation_status=error", nil)
	if data, _ := errored.get("data").([]any); len(data) != 1 || !strings.Contains(fmt.Sprint(data[0].(map[string]any)["invitation_error"]), "phone") {
		t.Fatalf("the person without a phone: %s", errored.Raw)
	}

	// Importing the same file again changes nothing.
	again := postCSV(t, "organization_id="+org, csv)
	if again.get("created") != float64(0) || again.get("imported") != float64(980) || again.get("batch_id") != nil {
		t.Fatalf("re-import: %s", again.Raw)
	}
	if n := countRows(t, "SELECT COUNT(*) FROM users WHERE email LIKE ?", prefix+"-%"); n != 980 {
		t.Fatalf("%d accounts after re-import", n)
	}
}

func TestBulkInvitations(t *testing.T) {
	org := createOrganization(t, "Bulk Org", nil)
	var items []map[string]any
	for i := range 30 {
		items = append(items, map[string]any{"email": uniqueEmail(t, "bulk"), "name": fmt.Sprintf("B%d", i), "organization_id": org})
	}
	items[3]["email"] = "nope"
	items[7]["organization_id"] = "0193aaaa-aaaa-7aaa-8aaa-aaaaaaaaaaaa"
	items[9]["channel"] = "pigeon"
	r := call(t, "POST", "/v1/invitations/bulk", map[string]any{"invitations": items})
	expect(t, r, http.StatusAccepted, "")
	results := r.get("results").([]any)
	batches := map[string]bool{}
	for i, res := range results {
		m := res.(map[string]any)
		wantError := i == 3 || i == 7 || i == 9
		if (m["status"] == "error") != wantError || int(m["index"].(float64)) != i {
			t.Fatalf("item %d: %v", i, m)
		}
		if !wantError {
			batches[m["batch_id"].(string)] = true
		}
	}
	for id := range batches {
		waitForBatch(t, id, time.Minute)
	}
	for i, item := range items {
		if i == 3 || i == 7 || i == 9 {
			continue
		}
		if n := len(mailTo(item["email"].(string), "invitation")); n != 1 {
			t.Fatalf("item %d got %d invitations", i, n)
		}
	}
	expect(t, call(t, "POST", "/v1/invitations/bulk", map[string]any{"invitations": []any{}}), http.StatusBadRequest, "invalid_request")
}

func TestSMSRefusedWhenNotConfigured(t *testing.T) {
	server := &api.Server{Store: env.store, Temporal: env.client, Logger: quietLogger()}
	noSMS := httptest.NewServer(server.Handler())
	defer noSMS.Close()
	org := createOrganization(t, "No SMS Org", nil)
	body, _ := jsonBody(map[string]any{"email": uniqueEmail(t, "nosms"), "name": "N", "organization_id": org, "send_invitation": true, "channel": "sms"})
	req, _ := http.NewRequest("POST", noSMS.URL+"/v1/users", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+env.apiKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d", res.StatusCode)
	}
}

func TestImportInputErrors(t *testing.T) {
	org := createOrganization(t, "Import Errors", nil)
	expect(t, postCSV(t, "organization_id="+org, "name,phone\nx,y\n"), http.StatusBadRequest, "invalid_request")
	expect(t, postCSV(t, "organization_id="+org, ""), http.StatusBadRequest, "invalid_request")
	expect(t, postCSV(t, "", "email\na@example.com\n"), http.StatusBadRequest, "invalid_request")
	expect(t, postCSV(t, "organization_id="+org+"&send_invitation=maybe", "email\na@example.com\n"), http.StatusBadRequest, "invalid_request")
	expect(t, call(t, "GET", "/v1/users?invitation_status=lost", nil), http.StatusBadRequest, "invalid_request")
	expect(t, call(t, "GET", "/v1/batches/0193aaaa-aaaa-7aaa-8aaa-aaaaaaaaaaaa", nil), http.StatusNotFound, "batch_not_found")
	expect(t, call(t, "POST", "/v1/users/invite", map[string]any{"organization_id": org, "user_ids": []string{"x"}}), http.StatusBadRequest, "invalid_request")
	expect(t, call(t, "POST", "/v1/users/invite", map[string]any{"organization_id": org}), http.StatusBadRequest, "invalid_request")
}

// A batch stored by an API that stopped before starting its workflow is started by the
// reconciler.
func TestReconcilerStartsOrphanedBatches(t *testing.T) {
	org := createOrganization(t, "Orphan Batch Org", nil)
	email := uniqueEmail(t, "orphanbatch")
	ids, _, err := env.store.PutOnFile(context.Background(), []store.NewPerson{{Email: email, Name: "O", OrganizationID: org, Role: "member"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := env.store.CreateBatch(context.Background(), store.ChannelEmail, time.Hour, []store.BatchTarget{{OrganizationID: org, UserID: ids[0]}})
	if err != nil {
		t.Fatal(err)
	}
	r := &worker.Reconciler{Store: env.store, Temporal: env.client, Logger: quietLogger()}
	if _, err := r.ReconcileOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitForBatch(t, b.ID, time.Minute)
	waitForMail(t, email, "invitation", 1)
}

// A text that Twilio accepted but whose answer was lost is not sent again on retry, and
// its link is the one that works.
func TestLostSMSResultIsNotSentTwice(t *testing.T) {
	org := createOrganization(t, "Lossy SMS Org", nil)
	number := "+14155552671"
	var attempts int32
	env.phone.SetFault(func(m twiliosrv.Message) *twiliosrv.Fault {
		if m.To == number && atomic.AddInt32(&attempts, 1) == 1 {
			return &twiliosrv.Fault{AcceptThenFail: true, Status: http.StatusBadGateway}
		}
		return nil
	})
	t.Cleanup(func() { env.phone.SetFault(nil) })
	created := call(t, "POST", "/v1/users", map[string]any{"email": uniqueEmail(t, "lossysms"), "name": "L", "phone": number,
		"organization_id": org, "send_invitation": true, "channel": "sms"})
	expect(t, created, http.StatusCreated, "")
	waitForBatch(t, created.str("batch_id"), time.Minute)
	msgs := env.phone.MessagesTo(number)
	if len(msgs) != 1 {
		t.Fatalf("%d texts for one invitation", len(msgs))
	}
	token := msgs[0].Body[strings.LastIndex(msgs[0].Body, "/i/")+3:]
	expect(t, call(t, "POST", "/v1/public/invitations/lookup", map[string]any{"token": token}, withoutKey), http.StatusOK, "")
}
