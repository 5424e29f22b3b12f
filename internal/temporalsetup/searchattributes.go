// Package temporalsetup prepares a Temporal namespace for Usher: the custom search
// attributes its workflows set. `usher migrate` and the embedded dev server both use it.
package temporalsetup

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
)

// EnsureSearchAttributes adds the attributes of want that namespace lacks and waits until
// they are visible. An attribute that exists with another type is an error, since
// Temporal cannot change a type in place.
func EnsureSearchAttributes(ctx context.Context, op operatorservice.OperatorServiceClient, namespace string, want map[string]enumspb.IndexedValueType) (added []string, err error) {
	missing, err := MissingSearchAttributes(ctx, op, namespace, want)
	if err != nil || len(missing) == 0 {
		return nil, err
	}
	if _, err := op.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		SearchAttributes: missing,
		Namespace:        namespace,
	}); err != nil {
		return nil, fmt.Errorf("adding search attributes %s: %w", names(missing), err)
	}
	for {
		still, err := MissingSearchAttributes(ctx, op, namespace, want)
		if err != nil {
			return nil, err
		}
		if len(still) == 0 {
			return names(missing), nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("search attributes %s not visible after adding them: %w", strings.Join(names(still), ", "), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// MissingSearchAttributes is the part of want that namespace does not have yet.
func MissingSearchAttributes(ctx context.Context, op operatorservice.OperatorServiceClient, namespace string, want map[string]enumspb.IndexedValueType) (map[string]enumspb.IndexedValueType, error) {
	resp, err := op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return nil, fmt.Errorf("listing search attributes of namespace %q: %w", namespace, err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range want {
		have, ok := resp.GetCustomAttributes()[name]
		switch {
		case !ok:
			missing[name] = typ
		case have != typ:
			return nil, fmt.Errorf("search attribute %q already exists in namespace %q with type %v, want %v", name, namespace, have, typ)
		}
	}
	return missing, nil
}

// OperatorCommand is the `temporal` CLI command that registers want on namespace, for
// clusters where Usher may not call the operator service itself.
func OperatorCommand(namespace string, want map[string]enumspb.IndexedValueType) string {
	var b strings.Builder
	for _, name := range names(want) {
		fmt.Fprintf(&b, "temporal operator search-attribute create --namespace %s --name %s --type %s\n", namespace, name, typeName(want[name]))
	}
	return b.String()
}

func typeName(t enumspb.IndexedValueType) string {
	switch t {
	case enumspb.INDEXED_VALUE_TYPE_DATETIME:
		return "Datetime"
	case enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST:
		return "KeywordList"
	default:
		// Keyword, Text, Int, Double, Bool: the enum's own spelling, e.g. INDEXED_VALUE_TYPE_KEYWORD.
		s := strings.ToLower(strings.TrimPrefix(t.String(), "INDEXED_VALUE_TYPE_"))
		return strings.ToUpper(s[:1]) + s[1:]
	}
}

func names(m map[string]enumspb.IndexedValueType) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
