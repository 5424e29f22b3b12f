package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestInvitationReminders(t *testing.T) {
	for _, tc := range []struct {
		env  *string
		want []time.Duration
	}{
		{nil, []time.Duration{48 * time.Hour}},
		{ptr(""), nil},
		{ptr("none"), nil},
		{ptr(" 24h, 72h ,24h"), []time.Duration{72 * time.Hour, 24 * time.Hour}},
	} {
		if tc.env != nil {
			t.Setenv("USHER_INVITATION_REMINDERS", *tc.env)
		}
		c, err := Load(Defaults, Needs{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c.InvitationReminders, tc.want) {
			t.Errorf("%v: got %v, want %v", tc.env, c.InvitationReminders, tc.want)
		}
		if !c.NotifyInviterOnExpiry {
			t.Error("the inviter is not told of expiry by default")
		}
	}
	for _, bad := range []string{"48", "2d", "-1h", "721h", "48h,,24h"} {
		t.Setenv("USHER_INVITATION_REMINDERS", bad)
		if _, err := Load(Defaults, Needs{}); err == nil || !strings.Contains(err.Error(), "USHER_INVITATION_REMINDERS") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	t.Setenv("USHER_INVITATION_REMINDERS", "")
	t.Setenv("USHER_NOTIFY_INVITER_ON_EXPIRY", "maybe")
	if _, err := Load(Defaults, Needs{}); err == nil || !strings.Contains(err.Error(), "USHER_NOTIFY_INVITER_ON_EXPIRY") {
		t.Errorf("bad boolean: %v", err)
	}
}

func ptr(s string) *string { return &s }
