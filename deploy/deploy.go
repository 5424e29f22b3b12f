// Package deploy holds the monitoring files for running Usher (Prometheus scrape config and
// alert rules, Grafana provisioning and dashboard) and exposes the metric names they depend
// on, so that an end-to-end test can check each one against a real scrape.
package deploy

import (
	_ "embed"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
)

// AlertRules is deploy/prometheus/alerts.yml.
//
//go:embed prometheus/alerts.yml
var AlertRules []byte

// Dashboard is deploy/grafana/dashboards/usher.json.
//
//go:embed grafana/dashboards/usher.json
var Dashboard []byte

// metricRef matches usher_* and temporal_* names with the character before them. A name ends
// in a letter or digit, so `usher_*` in prose or the regexp usher[-_]delivery is not taken
// for one.
var metricRef = regexp.MustCompile(`(^|[^A-Za-z0-9_:])((?:usher|temporal)_[A-Za-z0-9_]*[A-Za-z0-9])`)

// MetricNames returns, sorted and without duplicates, every usher_* and temporal_* metric
// name that the alert rules (outside comments) and the dashboard's queries refer to, as a
// metric family name: the _bucket, _sum and _count suffixes of histogram series are removed,
// so usher_send_duration_seconds_bucket becomes usher_send_duration_seconds. Counters keep
// their _total suffix, as in the exposition format. Quoted label values
// (task_queue="usher_delivery") are not metric names and are left out.
func MetricNames() []string {
	var exprs []string
	if err := collectExprs(Dashboard, &exprs); err != nil {
		panic("deploy: grafana/dashboards/usher.json: " + err.Error()) // embedded; tests parse it
	}
	return metricNames(stripComments(string(AlertRules)), strings.Join(exprs, "\n"))
}

func metricNames(sources ...string) []string {
	var names []string
	for _, src := range sources {
		for _, m := range metricRef.FindAllStringSubmatchIndex(src, -1) {
			if src[m[2]:m[3]] == `"` && m[2] > 0 && strings.ContainsRune("=~", rune(src[m[2]-1])) {
				continue // a label value: ="…", !="…", =~"…", !~"…"
			}
			names = append(names, familyName(src[m[4]:m[5]]))
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// stripComments drops YAML comment lines; a # inside a line is left alone (PromQL has none,
// and templates may use it).
func stripComments(yaml string) string {
	lines := strings.Split(yaml, "\n")
	kept := lines[:0]
	for _, l := range lines {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			kept = append(kept, l)
		}
	}
	return strings.Join(kept, "\n")
}

// collectExprs appends the value of every "expr" key in a Grafana dashboard (panel targets,
// also inside collapsed rows).
func collectExprs(dashboard []byte, exprs *[]string) error {
	var v any
	if err := json.Unmarshal(dashboard, &v); err != nil {
		return err
	}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "expr" {
					*exprs = append(*exprs, s)
				} else {
					walk(x)
				}
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
	return nil
}

func familyName(series string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if name, ok := strings.CutSuffix(series, suffix); ok {
			return name
		}
	}
	return series
}
