package domain

import (
	"testing"
	"time"
)

func TestNormalizeEmail(t *testing.T) {
	good := map[string]string{
		"ann@example.com":          "ann@example.com",
		"  Ann.Smith@Example.COM ": "ann.smith@example.com",
		"a+tag@sub.example.co.uk":  "a+tag@sub.example.co.uk",
	}
	for in, want := range good {
		got, err := NormalizeEmail(in)
		if err != nil || got != want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "ann", "ann@", "@example.com", "Ann <ann@example.com>", "ann@localhost",
		"ann@example..com", "a,b@example.com", "ann@-example.com", "ann@example.com, bob@example.com"} {
		if _, err := NormalizeEmail(bad); ErrorCode(err) != CodeInvalidEmail {
			t.Errorf("NormalizeEmail(%q) accepted or wrong error: %v", bad, err)
		}
	}
}

func TestCheckAction(t *testing.T) {
	cases := []struct {
		status Status
		action Action
		want   Code // "" means allowed
	}{
		{StatusPending, ActionAccept, ""},
		{StatusExpired, ActionAccept, CodeInvitationExpired},
		{StatusRevoked, ActionAccept, CodeInvitationRevoked},
		{StatusAccepted, ActionAccept, CodeInvitationUsed},
		{StatusDraft, ActionAccept, CodeInvalidState},
		{StatusDraft, ActionSend, ""},
		{StatusPending, ActionSend, CodeInvalidState},
		{StatusPending, ActionResend, ""},
		{StatusExpired, ActionResend, CodeInvalidState},
		{StatusPending, ActionRenew, ""},
		{StatusExpired, ActionRenew, ""},
		{StatusAccepted, ActionRenew, CodeInvalidState},
		{StatusFailed, ActionRenew, CodeInvalidState},
		{StatusDraft, ActionRevoke, ""},
		{StatusPending, ActionRevoke, ""},
		{StatusAccepted, ActionRevoke, CodeInvalidState},
	}
	for _, tc := range cases {
		err := CheckAction(tc.status, tc.action)
		got := Code("")
		if err != nil {
			got = ErrorCode(err)
		}
		if got != tc.want {
			t.Errorf("%s in %s: got %q, want %q", tc.action, tc.status, got, tc.want)
		}
	}
}

func TestParseExpiresIn(t *testing.T) {
	if d, err := ParseExpiresIn(""); err != nil || d != DefaultExpiresIn {
		t.Fatalf("default: %v %v", d, err)
	}
	if d, err := ParseExpiresIn("1s"); err != nil || d != time.Second {
		t.Fatalf("1s: %v %v", d, err)
	}
	for _, bad := range []string{"0s", "999ms", "721h", "-1h", "week", "1"} {
		if _, err := ParseExpiresIn(bad); ErrorCode(err) != CodeInvalidExpiry {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestTokens(t *testing.T) {
	token, hash := NewToken()
	if !ValidTokenFormat(token) || len(token) != 43 {
		t.Fatalf("token %q has the wrong shape", token)
	}
	if string(HashToken(token)) != string(hash) || len(hash) != 32 {
		t.Fatal("hash does not match")
	}
	other, _ := NewToken()
	if other == token {
		t.Fatal("two tokens alike")
	}
	for _, bad := range []string{"", "short", token + "x", token[:42] + "!"} {
		if ValidTokenFormat(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestEveryCodeHasAStatus(t *testing.T) {
	for _, c := range []Code{CodeInvalidRequest, CodeInvalidEmail, CodeInvalidExpiry, CodeUnauthorized, CodeNotFound,
		CodeOrganizationNotFound, CodeInvitationNotFound, CodeUserNotFound, CodeInviterNotFound, CodeAlreadyMember,
		CodeInvitationPending, CodeInvalidState, CodeInvalidToken, CodeInvitationExpired, CodeInvitationRevoked,
		CodeInvitationUsed, CodeWeakPassword, CodeIdempotencyKeyReused, CodeRequestTooLarge, CodeUnsupportedMediaType,
		CodeMethodNotAllowed, CodeTemporarilyUnavailable} {
		if c.HTTPStatus() == 500 {
			t.Errorf("%s maps to 500", c)
		}
	}
	if EmailHint("ann.smith@example.com") != "a***@example.com" {
		t.Fatal(EmailHint("ann.smith@example.com"))
	}
}
