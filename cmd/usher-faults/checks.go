//go:build !nodev

package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/internal/mail"
	"github.com/usherhq/usher/workflows"
)

// Limits beyond which a running workflow counts as stuck.
const (
	maxWorkflowTaskAttempt = 3
	maxActivityAttempt     = 10
)

// verdict is what the checks found after a scenario.
type verdict struct {
	lost       int // a journey without its invitation row, or a row without its workflow
	wrong      int // an invitation (row or workflow) not in its expected final state
	duplicates int // a second invitation, account, membership or e-mail where one belongs
	stuck      int // a workflow running that should have ended, failed, or retrying without end
	clientErrs int // journeys whose client saw an answer it should not have
	failedOK   int // refused journeys that ended failed
	problems   []string
}

func (v *verdict) add(counter *int, format string, args ...any) {
	*counter++
	if len(v.problems) < 40 {
		v.problems = append(v.problems, fmt.Sprintf(format, args...))
	}
}

func (v *verdict) pass() bool {
	return v.lost == 0 && v.wrong == 0 && v.duplicates == 0 && v.stuck == 0 && v.clientErrs == 0
}

// invitationRow is what MySQL holds about one invitation.
type invitationRow struct {
	ID             string  `db:"id"`
	Email          string  `db:"email"`
	Status         string  `db:"status"`
	DeliveryStatus string  `db:"delivery_status"`
	UserID         *string `db:"user_id"`
}

func (e *env) invitations(ctx context.Context) (map[string]invitationRow, error) {
	var rows []invitationRow
	if err := e.db.SelectContext(ctx, &rows, "SELECT id, email, status, delivery_status, user_id FROM invitations"); err != nil {
		return nil, err
	}
	out := make(map[string]invitationRow, len(rows))
	for _, r := range rows {
		out[r.ID] = r
	}
	return out, nil
}

// settled reports whether every journey the client finished has reached its expected state
// in MySQL, no delivery is still in the works, and only the pending journeys' workflows
// still run.
func (e *env) settled(ctx context.Context, p *plan) (bool, string) {
	rows, err := e.invitations(ctx)
	if err != nil {
		return false, err.Error()
	}
	notYet := 0
	pending := 0
	for _, j := range p.journeys {
		if j.kind == kindPending {
			pending++
		}
		if j.id == "" {
			continue
		}
		r, ok := rows[j.id]
		if !ok || r.Status != string(j.kind.expected()) {
			notYet++
			continue
		}
		if j.kind == kindPending && r.DeliveryStatus != string(domain.DeliverySent) {
			notYet++
		}
	}
	var inWork int
	if err := e.db.GetContext(ctx, &inWork, "SELECT COUNT(*) FROM email_deliveries WHERE status IN ('queued', 'sending')"); err != nil {
		return false, err.Error()
	}
	running, err := e.tc.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: namespace, Query: "ExecutionStatus = 'Running'"})
	if err != nil {
		return false, err.Error()
	}
	state := fmt.Sprintf("%d journeys not in their final state, %d e-mails being sent, %d workflows running (want %d)", notYet, inWork, running.Count, pending)
	return notYet == 0 && inWork == 0 && int(running.Count) == pending, state
}

// waitSettled polls settled until it holds or within passes.
func (e *env) waitSettled(ctx context.Context, p *plan, within time.Duration) (time.Duration, error) {
	began := time.Now()
	deadline := began.Add(within)
	last := ""
	for {
		ok, state := e.settled(ctx, p)
		if ok {
			// Give visibility and the last webhooks of the workers a moment.
			time.Sleep(2 * time.Second)
			return time.Since(began), nil
		}
		if state != last {
			logf("%s: waiting to settle: %s", e.name, state)
			last = state
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return time.Since(began), fmt.Errorf("not settled after %s: %s", within, state)
		}
		time.Sleep(time.Second)
	}
}

// check runs every invariant, straight in MySQL and Temporal.
func (e *env) check(ctx context.Context, p *plan) (*verdict, error) {
	v := &verdict{}
	rows, err := e.invitations(ctx)
	if err != nil {
		return nil, err
	}
	executions, err := e.listInvitationWorkflows(ctx)
	if err != nil {
		return nil, err
	}

	// Every journey has exactly its one invitation, in the state it must end in.
	byEmail := map[string][]invitationRow{}
	for _, r := range rows {
		byEmail[strings.ToLower(r.Email)] = append(byEmail[strings.ToLower(r.Email)], r)
	}
	for _, j := range p.journeys {
		if j.err != nil {
			v.add(&v.clientErrs, "journey %d (%s, %s): %v", j.n, j.kind, j.email, j.err)
		}
		mine := byEmail[strings.ToLower(j.email)]
		if len(mine) > 1 {
			v.add(&v.duplicates, "journey %d (%s): %d invitations for one idempotency key", j.n, j.kind, len(mine))
		}
		if len(mine) == 0 {
			v.add(&v.lost, "journey %d (%s): no invitation row (client id %q)", j.n, j.kind, j.id)
			continue
		}
		r := mine[0]
		if j.id != "" && r.ID != j.id {
			v.add(&v.duplicates, "journey %d (%s): the client was given %s, MySQL holds %s", j.n, j.kind, j.id, r.ID)
		}
		want := j.kind.expected()
		if r.Status != string(want) {
			v.add(&v.wrong, "journey %d (%s): invitation %s is %s, want %s", j.n, j.kind, r.ID, r.Status, want)
		}
		switch j.kind {
		case kindRefused:
			if r.Status == string(domain.StatusFailed) {
				v.failedOK++
			}
		case kindPending:
			if r.DeliveryStatus != string(domain.DeliverySent) {
				v.add(&v.wrong, "journey %d (pending): delivery is %s, want sent", j.n, r.DeliveryStatus)
			}
		}
	}
	if len(rows) != len(p.journeys) {
		v.add(&v.duplicates, "%d invitation rows for %d journeys", len(rows), len(p.journeys))
	}

	// Every row has its workflow, and the workflow ended (or waits) in the row's state.
	expectRunning := map[string]bool{}
	for _, j := range p.journeys {
		if j.kind == kindPending && j.id != "" {
			expectRunning[workflows.InvitationWorkflowID(j.id)] = true
		}
	}
	for _, r := range rows {
		wid := workflows.InvitationWorkflowID(r.ID)
		ex, ok := executions[wid]
		if !ok {
			// Visibility may lag; ask the workflow itself.
			if _, err := e.tc.DescribeWorkflowExecution(ctx, wid, ""); err != nil {
				if errors.As(err, new(*serviceerror.NotFound)) {
					v.add(&v.lost, "invitation %s (%s) has no workflow", r.ID, r.Status)
				} else {
					v.add(&v.lost, "invitation %s: describing its workflow: %v", r.ID, err)
				}
			}
			continue
		}
		if status := searchStatus(ex); status != r.Status {
			v.add(&v.wrong, "invitation %s: MySQL says %s, the workflow %s (UsherStatus)", r.ID, r.Status, status)
		}
		switch ex.GetStatus() {
		case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
			if !expectRunning[wid] {
				v.add(&v.stuck, "workflow %s (%s) still running", wid, r.Status)
			}
		case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
			if expectRunning[wid] {
				v.add(&v.wrong, "workflow %s of a pending invitation has completed", wid)
			}
		default:
			v.add(&v.stuck, "workflow %s ended %s", wid, ex.GetStatus())
		}
	}

	// No workflow of any kind is failing or retrying without end.
	if err := e.checkRunning(ctx, v); err != nil {
		return nil, err
	}

	// One account per address and one membership per account and organization.
	var dupUsers []struct {
		Email string `db:"email"`
		N     int    `db:"n"`
	}
	if err := e.db.SelectContext(ctx, &dupUsers, "SELECT LOWER(email) AS email, COUNT(*) AS n FROM users GROUP BY LOWER(email) HAVING COUNT(*) > 1"); err != nil {
		return nil, err
	}
	for _, d := range dupUsers {
		v.add(&v.duplicates, "%d accounts for %s", d.N, d.Email)
	}
	var dupMembers int
	if err := e.db.GetContext(ctx, &dupMembers, "SELECT COUNT(*) FROM (SELECT user_id, organization_id FROM memberships GROUP BY user_id, organization_id HAVING COUNT(*) > 1) d"); err != nil {
		return nil, err
	}
	if dupMembers > 0 {
		v.add(&v.duplicates, "%d memberships held twice", dupMembers)
	}
	for _, j := range p.journeys {
		if j.kind.expected() != domain.StatusAccepted {
			continue
		}
		var users, members int
		if err := e.db.GetContext(ctx, &users, "SELECT COUNT(*) FROM users WHERE email = ?", j.email); err != nil {
			return nil, err
		}
		if err := e.db.GetContext(ctx, &members, "SELECT COUNT(*) FROM memberships m JOIN users u ON u.id = m.user_id WHERE u.email = ? AND m.organization_id = ?", j.email, e.org); err != nil {
			return nil, err
		}
		if users != 1 || members != 1 {
			v.add(&v.wrong, "journey %d (%s): %d accounts and %d memberships, want 1 and 1", j.n, j.kind, users, members)
		}
	}

	// No e-mail sent twice: at most one message per delivery key at the provider, and each
	// delivery MySQL calls sent is there.
	perKey := map[string]int{}
	for _, m := range e.mail.Messages() {
		key := m.Variables[mail.DeliveryIDVariable]
		if key == "" {
			v.add(&v.duplicates, "message %s to %v carries no delivery key", m.ID, m.To)
			continue
		}
		perKey[key]++
	}
	for key, n := range perKey {
		if n > 1 {
			v.add(&v.duplicates, "delivery %s was sent %d times", key, n)
		}
	}
	var sent []string
	if err := e.db.SelectContext(ctx, &sent, "SELECT delivery_key FROM email_deliveries WHERE status IN ('sent', 'delivered')"); err != nil {
		return nil, err
	}
	for _, key := range sent {
		if perKey[key] == 0 {
			v.add(&v.lost, "delivery %s is sent in MySQL but Mailgun never took it", key)
		}
	}
	for _, j := range p.journeys {
		if j.kind.expected() == domain.StatusAccepted {
			// A new account without a password gets exactly one set-password e-mail.
			if n := len(e.inbox.to(j.email, "set_password")); n != 1 {
				v.add(&v.wrong, "journey %d (%s): %d set-password e-mails, want 1", j.n, j.kind, n)
			}
		}
	}
	return v, nil
}

// listInvitationWorkflows lists every invitation workflow run through visibility.
func (e *env) listInvitationWorkflows(ctx context.Context) (map[string]*workflowpb.WorkflowExecutionInfo, error) {
	out := map[string]*workflowpb.WorkflowExecutionInfo{}
	var token []byte
	for {
		res, err := e.tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: namespace, Query: "WorkflowType = 'InvitationWorkflow'", PageSize: 1000, NextPageToken: token,
		})
		if err != nil {
			return nil, err
		}
		for _, ex := range res.Executions {
			id := ex.GetExecution().GetWorkflowId()
			if prev, ok := out[id]; ok {
				// Several runs: keep the newest.
				if prev.GetStartTime().AsTime().After(ex.GetStartTime().AsTime()) {
					continue
				}
			}
			out[id] = ex
		}
		if token = res.NextPageToken; len(token) == 0 {
			return out, nil
		}
	}
}

func searchStatus(ex *workflowpb.WorkflowExecutionInfo) string {
	p, ok := ex.GetSearchAttributes().GetIndexedFields()[workflows.SearchStatus.GetName()]
	if !ok {
		return ""
	}
	var s string
	_ = converter.GetDefaultDataConverter().FromPayload(p, &s)
	return s
}

// checkRunning describes every running workflow: none may have a workflow task failing
// again and again, or an activity retrying without end.
func (e *env) checkRunning(ctx context.Context, v *verdict) error {
	var token []byte
	for {
		res, err := e.tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: namespace, Query: "ExecutionStatus = 'Running'", PageSize: 1000, NextPageToken: token,
		})
		if err != nil {
			return err
		}
		for _, ex := range res.Executions {
			wid := ex.GetExecution().GetWorkflowId()
			if !strings.HasPrefix(wid, "invitation/") {
				v.add(&v.stuck, "workflow %s (%s) still running", wid, ex.GetType().GetName())
			}
			d, err := e.tc.DescribeWorkflowExecution(ctx, wid, ex.GetExecution().GetRunId())
			if err != nil {
				return err
			}
			if wft := d.GetPendingWorkflowTask(); wft != nil && wft.GetAttempt() > maxWorkflowTaskAttempt {
				v.add(&v.stuck, "workflow %s: workflow task at attempt %d", wid, wft.GetAttempt())
			}
			for _, a := range d.GetPendingActivities() {
				if a.GetAttempt() > maxActivityAttempt {
					v.add(&v.stuck, "workflow %s: activity %s at attempt %d (%s)", wid, a.GetActivityType().GetName(), a.GetAttempt(), a.GetLastFailure().GetMessage())
				}
			}
		}
		if token = res.NextPageToken; len(token) == 0 {
			return nil
		}
	}
}
