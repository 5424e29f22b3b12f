package workflows_test

import (
	"context"
	"errors"
	"testing"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/usherhq/usher/workflows"
)

func runWebhookDelivery(t *testing.T, deliver func(ctx context.Context, id string) error) (workflows.WebhookOutcome, []workflows.WebhookFailure, int) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	attempts := 0
	var failures []workflows.WebhookFailure
	env.RegisterActivityWithOptions(func(ctx context.Context, id string) error {
		attempts++
		return deliver(ctx, id)
	}, activity.RegisterOptions{Name: workflows.ActivityDeliverWebhook})
	env.RegisterActivityWithOptions(func(ctx context.Context, f workflows.WebhookFailure) error {
		failures = append(failures, f)
		return nil
	}, activity.RegisterOptions{Name: workflows.ActivityFailWebhook})
	env.ExecuteWorkflow(workflows.WebhookDeliveryWorkflow, workflows.WebhookDeliveryInput{DeliveryID: "d1"})
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("workflow: completed %v, %v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	var out workflows.WebhookOutcome
	if err := env.GetWorkflowResult(&out); err != nil {
		t.Fatal(err)
	}
	return out, failures, attempts
}

// A receiver that fails a few times and then takes the webhook gets it; nothing is
// marked failed.
func TestWebhookDeliveryRetriesUntilDelivered(t *testing.T) {
	out, failures, attempts := runWebhookDelivery(t, func(ctx context.Context, id string) error {
		if activity.GetInfo(ctx).Attempt < 4 {
			return errors.New("the receiver answered 500")
		}
		return nil
	})
	if out.Status != "delivered" || len(failures) != 0 || attempts != 4 {
		t.Fatalf("outcome %+v, failures %v, attempts %d", out, failures, attempts)
	}
}

// A receiver that never answers well is given up on and the delivery marked failed. (The
// test environment caps "unlimited" attempts at 10; the real limit is the day-long
// ScheduleToCloseTimeout.)
func TestWebhookDeliveryGivesUp(t *testing.T) {
	out, failures, attempts := runWebhookDelivery(t, func(ctx context.Context, id string) error {
		return errors.New("the receiver answered 503")
	})
	if out.Status != "failed" || len(failures) != 1 || failures[0].DeliveryID != "d1" || failures[0].Reason != "" {
		t.Fatalf("outcome %+v, failures %v", out, failures)
	}
	if attempts < 2 {
		t.Fatalf("%d attempts", attempts)
	}
}

// A disabled endpoint stops the delivery at once.
func TestWebhookDeliveryStopsForADisabledEndpoint(t *testing.T) {
	out, failures, attempts := runWebhookDelivery(t, func(ctx context.Context, id string) error {
		return temporal.NewNonRetryableApplicationError("the endpoint was disabled", workflows.ErrWebhookEndpointDisabled, nil)
	})
	if out.Status != "failed" || attempts != 1 || len(failures) != 1 || failures[0].Reason != "the endpoint was disabled" {
		t.Fatalf("outcome %+v, failures %v, attempts %d", out, failures, attempts)
	}
}
