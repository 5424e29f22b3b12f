// Package worker runs Usher's workflows and activities on the task queue.
package worker

import (
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/usherhq/usher/activities"
	"github.com/usherhq/usher/workflows"
)

// New returns a worker for Usher's task queue with every workflow and activity registered
// under the names recorded in histories.
func New(c client.Client, a *activities.Activities, opts sdkworker.Options) sdkworker.Worker {
	w := sdkworker.New(c, workflows.TaskQueue, opts)
	Register(w, a)
	return w
}

// Registry is the part of a worker (or a replayer or test environment) that takes
// registrations.
type Registry interface {
	RegisterWorkflowWithOptions(w any, options workflow.RegisterOptions)
	RegisterActivityWithOptions(a any, options activity.RegisterOptions)
}

// Register registers Usher's workflows and activities on r.
func Register(r Registry, a *activities.Activities) {
	r.RegisterWorkflowWithOptions(workflows.InvitationWorkflow, workflow.RegisterOptions{Name: "InvitationWorkflow"})
	r.RegisterWorkflowWithOptions(workflows.JoinRequestWorkflow, workflow.RegisterOptions{Name: "JoinRequestWorkflow"})
	r.RegisterWorkflowWithOptions(workflows.RenewalRequestWorkflow, workflow.RegisterOptions{Name: "RenewalRequestWorkflow"})
	for name, fn := range map[string]any{
		workflows.ActivityRecordWorkflowStarted:  a.RecordWorkflowStarted,
		workflows.ActivityRecordStatus:           a.RecordStatus,
		workflows.ActivitySendInvitation:         a.SendInvitationEmail,
		workflows.ActivityAcceptInvitation:       a.AcceptInvitation,
		workflows.ActivitySendSetPassword:        a.SendSetPasswordEmail,
		workflows.ActivityNotifyInviter:          a.NotifyInviterOfAcceptance,
		workflows.ActivityRecordJoinStarted:      a.RecordJoinRequestStarted,
		workflows.ActivityRecordJoinStatus:       a.RecordJoinRequestStatus,
		workflows.ActivityCheckVisitorMember:     a.CheckVisitorMembership,
		workflows.ActivitySendJoinEmail:          a.SendJoinRequestEmail,
		workflows.ActivityApproveJoinRequest:     a.ApproveJoinRequest,
		workflows.ActivitySendJoinApprovedEmail:  a.SendJoinApprovedEmail,
		workflows.ActivityNotifyRenewalRequested: a.NotifyInviterOfRenewalRequest,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}
