package worker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/workflows"
)

// WebhookDispatcher starts a workflow for every queued webhook delivery (the outbox rows
// written with each event). It polls every Interval and also as soon as a transaction of
// the same Store queues deliveries. Several dispatchers (one per worker process) may run:
// a delivery's workflow ID is fixed, so a second start is a no-op.
type WebhookDispatcher struct {
	Store    *store.Store
	Temporal client.Client
	Logger   *slog.Logger
	Interval time.Duration
	// RetryInitial is handed to each delivery workflow (0: the default, 5 s).
	RetryInitial time.Duration
}

// dispatchBatch is how many deliveries one pass starts at most; dispatchParallel how many
// starts are in flight at once.
const (
	dispatchBatch    = 500
	dispatchParallel = 8
)

// Run dispatches until ctx ends.
func (d *WebhookDispatcher) Run(ctx context.Context) {
	ticker := time.NewTicker(d.Interval)
	defer ticker.Stop()
	for {
		n, err := d.DispatchOnce(ctx)
		if err != nil && ctx.Err() == nil {
			d.Logger.WarnContext(ctx, "dispatching webhook deliveries", "error", err)
		}
		if n == dispatchBatch {
			continue // more are waiting
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-d.Store.WebhooksQueued():
		}
	}
}

// DispatchOnce starts the workflows of up to one batch of queued deliveries.
func (d *WebhookDispatcher) DispatchOnce(ctx context.Context) (int, error) {
	rows, err := d.Store.UnstartedWebhookDeliveries(ctx, dispatchBatch)
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	var (
		mu       sync.Mutex
		started  int
		firstErr error
		wg       sync.WaitGroup
		slots    = make(chan struct{}, dispatchParallel)
	)
	for _, row := range rows {
		slots <- struct{}{}
		wg.Add(1)
		go func(id string) {
			defer func() { <-slots; wg.Done() }()
			err := workflows.StartWebhookDelivery(ctx, d.Temporal, workflows.WebhookDeliveryInput{DeliveryID: id, RetryInitialInterval: d.RetryInitial})
			if err == nil {
				err = d.Store.MarkWebhookDeliveryStarted(ctx, id)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			started++
		}(row.ID)
	}
	wg.Wait()
	if firstErr != nil {
		return started, firstErr
	}
	return len(rows), nil
}
