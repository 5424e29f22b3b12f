package deploy

import (
	"slices"
	"testing"
)

func TestMetricNamesFromText(t *testing.T) {
	rules := stripComments(`# usher_in_a_comment_total is not a metric
- alert: X
  expr: |
    histogram_quantile(0.95, sum by (le) (rate(temporal_activity_schedule_to_start_latency_seconds_bucket{task_queue!~"usher[-_]delivery", tq="usher_delivery"}[5m])))
    / sum(rate(usher_sends_total{result=~"refused|retry"}[5m])) > 0 and usher_x_sum > usher_x_count
  annotations:
    runbook: "see usher_sends_total{provider=\"mailgun\"}, usher_*"`)
	var exprs []string
	if err := collectExprs([]byte(`{"panels":[{"targets":[{"expr":"usher_http_requests_total"}]},
		{"type":"row","panels":[{"targets":[{"expr":"rate(usher_a_seconds_count[1m])","legendFormat":"usher_not_a_query"}]}]}]}`), &exprs); err != nil {
		t.Fatal(err)
	}
	got := metricNames(rules, exprs[0]+"\n"+exprs[1])
	want := []string{
		"temporal_activity_schedule_to_start_latency_seconds",
		"usher_a_seconds",
		"usher_http_requests_total",
		"usher_sends_total",
		"usher_x",
	}
	if !slices.Equal(got, want) {
		t.Errorf("metricNames = %q, want %q", got, want)
	}
}
