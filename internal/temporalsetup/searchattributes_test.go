package temporalsetup

import (
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
)

func TestOperatorCommandSpellsTypesAsTheCLIDoes(t *testing.T) {
	got := OperatorCommand("prod", map[string]enumspb.IndexedValueType{
		"UsherStatus":    enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"UsherExpiresAt": enumspb.INDEXED_VALUE_TYPE_DATETIME,
		"Tags":           enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST,
	})
	want := "temporal operator search-attribute create --namespace prod --name Tags --type KeywordList\n" +
		"temporal operator search-attribute create --namespace prod --name UsherExpiresAt --type Datetime\n" +
		"temporal operator search-attribute create --namespace prod --name UsherStatus --type Keyword\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
