package deploy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/usherhq/usher/deploy"
)

// Paths relative to this package's directory (go test runs in it).
const (
	prometheusConfig = "prometheus/prometheus.yml"
	alertRules       = "prometheus/alerts.yml"
	alertTests       = "prometheus/alerts_test.yml"
	alertTestsAccept = "prometheus/alerts_accept_test.yml" // evaluated hourly
	dashboardFile    = "grafana/dashboards/usher.json"
	datasourceFile   = "grafana/provisioning/datasources/prometheus.yml"
	providerFile     = "grafana/provisioning/dashboards/usher.yml"
	composeFile      = "../docker-compose.yml"
)

// promtool finds promtool, or skips the test without it, except in CI (CI=true), where it
// fails: .ci/run installs it with scripts/ensure-promtool.sh.
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed; the deploy tests need it in CI (.ci/run installs it with scripts/ensure-promtool.sh)")
		}
		t.Skip("promtool is not installed (scripts/ensure-promtool.sh, or apt-get install prometheus); skipping")
	}
	return path
}

func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), promtool(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
}

func TestPrometheusConfig(t *testing.T) {
	// Also loads the rule files, resolved relative to the config file as in the container.
	runPromtool(t, "check", "config", prometheusConfig)
}

func TestAlertRules(t *testing.T) {
	runPromtool(t, "check", "rules", alertRules)
}

func TestAlertRuleUnitTests(t *testing.T) {
	runPromtool(t, "test", "rules", alertTests, alertTestsAccept)
}

var alertName = regexp.MustCompile(`(?m)^\s*- alert:\s*(\S+)\s*$`)

// TestAlertsHaveMetadata checks, without promtool, that every alert says how long it waits,
// how bad it is and what to do.
func TestAlertsHaveMetadata(t *testing.T) {
	src := string(deploy.AlertRules)
	locs := alertName.FindAllStringSubmatchIndex(src, -1)
	if len(locs) < 10 {
		t.Fatalf("found %d alerts in %s, want at least 10", len(locs), alertRules)
	}
	var tests []byte
	for _, f := range []string{alertTests, alertTestsAccept} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		tests = append(tests, b...)
	}
	seen := map[string]bool{}
	for i, loc := range locs {
		name := src[loc[2]:loc[3]]
		end := len(src)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		// The block of one alert, cut before the next group if there is one.
		block, _, _ := strings.Cut(src[loc[0]:end], "\n  - name:")
		if seen[name] {
			t.Errorf("alert %s is defined twice", name)
		}
		seen[name] = true
		if !strings.HasPrefix(name, "Usher") {
			t.Errorf("alert %s: names start with Usher", name)
		}
		for _, want := range []string{"expr:", "for:", "summary:", "description:", "runbook:"} {
			if !strings.Contains(block, want) {
				t.Errorf("alert %s has no %s", name, strings.TrimSuffix(want, ":"))
			}
		}
		if !regexp.MustCompile(`severity:\s*(critical|warning)\s`).MatchString(block) {
			t.Errorf("alert %s has no severity: critical or warning", name)
		}
		if !strings.Contains(string(tests), "alertname: "+name+"\n") {
			t.Errorf("alert %s has no case in %s or %s", name, alertTests, alertTestsAccept)
		}
	}
}

type dashboardJSON struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query string `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Datasource *datasource `json:"datasource"`
		Expr       string      `json:"expr"`
		RefID      string      `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // those of a collapsed row
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func loadDashboard(t *testing.T) dashboardJSON {
	t.Helper()
	var d dashboardJSON
	if err := json.Unmarshal(deploy.Dashboard, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// allPanels flattens rows, collapsed or not.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard needs a uid and a title")
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d: want a current dashboard schema (36 or later)", d.SchemaVersion)
	}
	hasVar := slices.ContainsFunc(d.Templating.List, func(v struct {
		Name  string `json:"name"`
		Type  string `json:"type"`
		Query string `json:"query"`
	}) bool {
		return v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus"
	})
	if !hasVar {
		t.Errorf("dashboard needs a datasource variable named datasource of type prometheus")
	}

	okDatasource := func(ds *datasource) bool {
		return ds != nil && ds.Type == "prometheus" && (ds.UID == "${datasource}" || ds.UID == "prometheus")
	}
	ids := map[int]bool{}
	var rows []string
	panels := allPanels(d.Panels)
	for _, p := range panels {
		name := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if p.ID == 0 || ids[p.ID] {
			t.Errorf("%s: ids must be set and unique", name)
		}
		ids[p.ID] = true
		if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("%s: bad gridPos %+v", name, p.GridPos)
		}
		if p.Type == "row" {
			rows = append(rows, p.Title)
			continue
		}
		if p.Title == "" {
			t.Errorf("%s: no title", name)
		}
		if !okDatasource(p.Datasource) {
			t.Errorf("%s: datasource %+v, want the prometheus ${datasource} variable", name, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no targets", name)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" || tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("%s: target %q needs an expr and a unique refId", name, tg.RefID)
			}
			refs[tg.RefID] = true
			if !okDatasource(tg.Datasource) {
				t.Errorf("%s: target %s datasource %+v", name, tg.RefID, tg.Datasource)
			}
		}
	}
	for _, want := range []string{"Funnel", "Delivery", "API", "Temporal health", "Outgoing webhooks"} {
		if !slices.Contains(rows, want) {
			t.Errorf("dashboard has no %q row (rows: %q)", want, rows)
		}
	}
}

// TestDashboardQueries has promtool parse every dashboard query, with Grafana's variables
// replaced, by checking them as recording rules.
func TestDashboardQueries(t *testing.T) {
	bin := promtool(t)
	grafanaVars := strings.NewReplacer("$__rate_interval", "1m", "$__interval", "1m", "$__range", "1h")
	type rule struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	var rules []rule
	for _, p := range allPanels(loadDashboard(t).Panels) {
		for _, tg := range p.Targets {
			rules = append(rules, rule{Record: fmt.Sprintf("dashboard:panel_%d:%s", p.ID, tg.RefID), Expr: grafanaVars.Replace(tg.Expr)})
		}
	}
	// JSON is YAML, which promtool reads.
	doc, err := json.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(file, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), bin, "check", "rules", file).CombinedOutput()
	if err != nil {
		t.Fatalf("a dashboard query does not parse: %v\n%s", err, out)
	}
}

// TestProvisioning checks that the Grafana files and docker-compose.yml agree on names and
// paths.
func TestProvisioning(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	ds := read(datasourceFile)
	for _, want := range []string{"type: prometheus", "uid: prometheus", "url: http://prometheus:9090"} {
		if !strings.Contains(ds, want) {
			t.Errorf("%s: no %q", datasourceFile, want)
		}
	}
	if p := read(providerFile); !strings.Contains(p, "path: /var/lib/grafana/dashboards") {
		t.Errorf("%s: the provider must read /var/lib/grafana/dashboards", providerFile)
	}
	compose := read(composeFile)
	for _, want := range []string{
		"./deploy/prometheus:/etc/prometheus",
		"./deploy/grafana/provisioning:/etc/grafana/provisioning",
		"./deploy/grafana/dashboards:/var/lib/grafana/dashboards",
		`USHER_METRICS_ADDR: ":9090"`,
	} {
		if !strings.Contains(compose, want) {
			t.Errorf("%s does not contain %q", composeFile, want)
		}
	}
	prom := read(prometheusConfig)
	for _, want := range []string{"usher-api:8080", "usher-worker:9090", "- alerts.yml"} {
		if !strings.Contains(prom, want) {
			t.Errorf("%s: no %q", prometheusConfig, want)
		}
	}
}

// The metrics the lead's instrumentation exports (and the Temporal SDK metrics through tally).
// A name in the alerts or the dashboard outside this list is most likely a typo.
var knownMetrics = []string{
	"usher_http_requests_total",
	"usher_http_request_duration_seconds",
	"usher_invitation_events_total",
	"usher_join_request_events_total",
	"usher_invitation_accept_delay_seconds",
	"usher_sends_total",
	"usher_send_duration_seconds",
	"usher_mailgun_webhooks_total",
	"usher_webhook_deliveries_total",
	"usher_webhook_delivery_duration_seconds",
	"temporal_workflow_task_schedule_to_start_latency_seconds",
	"temporal_workflow_task_execution_latency_seconds",
	"temporal_workflow_task_execution_failed_total",
	"temporal_activity_schedule_to_start_latency_seconds",
	"temporal_activity_execution_latency_seconds",
	"temporal_activity_execution_failed_total",
	"temporal_request_failure_total",
	"temporal_request_latency_seconds",
	"temporal_long_request_failure_total",
	"temporal_worker_task_slots_available",
}

func TestMetricNames(t *testing.T) {
	names := deploy.MetricNames()
	t.Logf("%d metric names: %q", len(names), names)
	if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
		t.Errorf("MetricNames is not sorted and unique: %q", names)
	}
	for _, n := range names {
		if strings.HasSuffix(n, "_bucket") || strings.HasSuffix(n, "_count") || strings.HasSuffix(n, "_sum") {
			t.Errorf("%s: series suffix not removed", n)
		}
		if !slices.Contains(knownMetrics, n) {
			t.Errorf("%s is referenced in deploy/ but is not a known metric (typo?)", n)
		}
	}
	// Names that appear only as _bucket/_count series, or only in the dashboard.
	for _, want := range []string{
		"usher_http_request_duration_seconds",
		"usher_invitation_accept_delay_seconds",
		"usher_sends_total",
		"usher_join_request_events_total",
		"temporal_workflow_task_schedule_to_start_latency_seconds",
		"temporal_worker_task_slots_available",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("MetricNames lacks %s", want)
		}
	}
	for _, label := range []string{"usher_delivery", "usher_csrf", "temporal_go"} {
		if slices.Contains(names, label) {
			t.Errorf("MetricNames took %s for a metric", label)
		}
	}
}
