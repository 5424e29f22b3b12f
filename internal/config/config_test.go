package config

import (
	"strings"
	"testing"
)

func TestMissingSettingsAreNamed(t *testing.T) {
	for _, name := range []string{"USHER_MYSQL_DSN", "USHER_PUBLIC_URL", "USHER_EMAIL_FROM", "MAILGUN_DOMAIN", "MAILGUN_API_KEY", "MAILGUN_API_BASE", "TEMPORAL_ADDRESS"} {
		t.Setenv(name, "")
	}
	t.Setenv("TEMPORAL_ADDRESS", "no-port")
	t.Setenv("MAILGUN_API_BASE", "ftp:/x")
	_, err := Load(Defaults, Needs{MySQL: true, Temporal: true, HTTP: true, Mail: true})
	if err == nil {
		t.Fatal("no error for an empty environment")
	}
	for _, name := range []string{"USHER_MYSQL_DSN", "USHER_PUBLIC_URL", "USHER_EMAIL_FROM", "MAILGUN_DOMAIN", "MAILGUN_API_KEY", "MAILGUN_API_BASE", "TEMPORAL_ADDRESS"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

func TestValidEnvironment(t *testing.T) {
	t.Setenv("USHER_MYSQL_DSN", "usher:secret@tcp(db:3306)/usher")
	t.Setenv("USHER_PUBLIC_URL", "https://usher.example.com")
	t.Setenv("USHER_EMAIL_FROM", "Usher <usher@example.com>")
	t.Setenv("MAILGUN_DOMAIN", "mg.example.com")
	t.Setenv("MAILGUN_API_KEY", "key")
	t.Setenv("MAILGUN_API_BASE", "https://api.eu.mailgun.net/v3")
	c, err := Load(Defaults, Needs{MySQL: true, Temporal: true, HTTP: true, Mail: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != ":8080" || c.TemporalAddress != "127.0.0.1:7233" {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

func TestMalformedDSN(t *testing.T) {
	t.Setenv("USHER_MYSQL_DSN", "not a dsn")
	_, err := Load(Defaults, Needs{MySQL: true})
	if err == nil || !strings.Contains(err.Error(), "USHER_MYSQL_DSN") {
		t.Fatalf("got %v", err)
	}
}
