// Package config reads Usher's settings from the environment. A missing or malformed
// setting stops start-up with a message naming it.
package config

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Config is every setting Usher reads.
type Config struct {
	MySQLDSN          string // USHER_MYSQL_DSN
	TemporalAddress   string // TEMPORAL_ADDRESS
	TemporalNamespace string // TEMPORAL_NAMESPACE
	HTTPAddr          string // USHER_HTTP_ADDR
	// MetricsAddr is where `usher worker` serves /metrics; "off" serves none. The API serves
	// its metrics on USHER_HTTP_ADDR.
	MetricsAddr    string   // USHER_METRICS_ADDR
	PublicURL      string   // USHER_PUBLIC_URL
	EmailFrom      string   // USHER_EMAIL_FROM
	MailgunDomain  string   // MAILGUN_DOMAIN
	MailgunAPIKey  string   // MAILGUN_API_KEY
	MailgunAPIBase string   // MAILGUN_API_BASE
	LogLevel       string   // USHER_LOG_LEVEL
	TemplatesDir   string   // USHER_TEMPLATES_DIR
	SecretKey      string   // USHER_SECRET_KEY
	TrustedProxies []string // USHER_TRUSTED_PROXIES
	// Join requests.
	JoinDecisionWindow time.Duration // USHER_JOIN_DECISION_WINDOW
	JoinTellRejected   bool          // USHER_JOIN_TELL_REJECTED
	// PublicRateLimit is how many member searches and join requests one client address may
	// make a minute.
	PublicRateLimit int // USHER_PUBLIC_RATE_LIMIT
	// TokenRateLimit is how many failed uses of link tokens (unknown or malformed) one
	// client address, and one token prefix, may make a minute.
	TokenRateLimit int // USHER_TOKEN_RATE_LIMIT
	// SendsPerSecond caps e-mails and SMS handed to providers, across all workers.
	SendsPerSecond float64 // USHER_SENDS_PER_SECOND
	// WorkflowCacheSize is how many workflow executions the worker keeps in memory between
	// their workflow tasks (the SDK's sticky cache); 0 means the SDK's default, 10,000.
	// Each idle invitation held costs about 90 KB; one evicted is replayed from its history
	// when it next has work. The default, 1,000, keeps a worker with 10,000 invitations
	// waiting within 100 MB of an idle one (BENCHMARKS.md, benchmark 4).
	WorkflowCacheSize int // USHER_WORKFLOW_CACHE_SIZE
	// WebhookRetryInitial is the first retry interval of outgoing webhooks (then doubling
	// up to an hour, for a day); 0 means the default, 5 s.
	WebhookRetryInitial time.Duration // USHER_WEBHOOK_RETRY_INITIAL
	// InvitationReminders are how long before an invitation's expiry its invitee is
	// reminded; none when empty.
	InvitationReminders []time.Duration // USHER_INVITATION_REMINDERS
	// NotifyInviterOnExpiry e-mails the inviter when an invitation expires unaccepted.
	NotifyInviterOnExpiry bool // USHER_NOTIFY_INVITER_ON_EXPIRY
	// SMS through Twilio: all three of SID, token and sender, or none (no SMS).
	TwilioAccountSID string // TWILIO_ACCOUNT_SID
	TwilioAuthToken  string // TWILIO_AUTH_TOKEN
	TwilioFrom       string // TWILIO_FROM
	TwilioAPIBase    string // TWILIO_API_BASE
	// MailgunWebhookSigningKey verifies Mailgun's event webhooks; "" turns them off.
	MailgunWebhookSigningKey string // MAILGUN_WEBHOOK_SIGNING_KEY
}

// SMSConfigured reports whether invitations may go by SMS.
func (c Config) SMSConfigured() bool {
	return c.TwilioAccountSID != "" && c.TwilioAuthToken != "" && c.TwilioFrom != ""
}

// Defaults used when a variable is unset; `usher dev` supplies more of its own.
var Defaults = Config{
	TemporalAddress:   "127.0.0.1:7233",
	TemporalNamespace: "default",
	HTTPAddr:          ":8080",
	MetricsAddr:       ":9090",
	LogLevel:          "info",

	JoinDecisionWindow: 14 * 24 * time.Hour,
	JoinTellRejected:   true,
	PublicRateLimit:    20,
	TokenRateLimit:     10,

	WorkflowCacheSize: 1000,

	InvitationReminders:   []time.Duration{48 * time.Hour},
	NotifyInviterOnExpiry: true,
}

// Needs says which settings a command cannot run without.
type Needs struct {
	MySQL, Temporal, HTTP, Mail bool
}

// Load reads the environment over base and validates what needs asks for.
func Load(base Config, needs Needs) (Config, error) {
	c := base
	read := func(dst *string, name string) {
		if v, ok := os.LookupEnv(name); ok && strings.TrimSpace(v) != "" {
			*dst = strings.TrimSpace(v)
		}
	}
	read(&c.MySQLDSN, "USHER_MYSQL_DSN")
	read(&c.TemporalAddress, "TEMPORAL_ADDRESS")
	read(&c.TemporalNamespace, "TEMPORAL_NAMESPACE")
	read(&c.HTTPAddr, "USHER_HTTP_ADDR")
	read(&c.MetricsAddr, "USHER_METRICS_ADDR")
	if c.MetricsAddr == "off" {
		c.MetricsAddr = ""
	}
	read(&c.PublicURL, "USHER_PUBLIC_URL")
	read(&c.EmailFrom, "USHER_EMAIL_FROM")
	read(&c.MailgunDomain, "MAILGUN_DOMAIN")
	read(&c.MailgunAPIKey, "MAILGUN_API_KEY")
	read(&c.MailgunAPIBase, "MAILGUN_API_BASE")
	read(&c.MailgunWebhookSigningKey, "MAILGUN_WEBHOOK_SIGNING_KEY")
	read(&c.LogLevel, "USHER_LOG_LEVEL")
	read(&c.TemplatesDir, "USHER_TEMPLATES_DIR")
	read(&c.TwilioAccountSID, "TWILIO_ACCOUNT_SID")
	read(&c.TwilioAuthToken, "TWILIO_AUTH_TOKEN")
	read(&c.TwilioFrom, "TWILIO_FROM")
	read(&c.TwilioAPIBase, "TWILIO_API_BASE")
	var problems []error
	read(&c.SecretKey, "USHER_SECRET_KEY")
	if v := strings.TrimSpace(os.Getenv("USHER_TRUSTED_PROXIES")); v != "" {
		c.TrustedProxies = nil
		for _, p := range strings.Split(v, ",") {
			p = strings.TrimSpace(p)
			if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
				problems = append(problems, fmt.Errorf("USHER_TRUSTED_PROXIES: %q is neither an IP address nor a CIDR range", p))
			}
			c.TrustedProxies = append(c.TrustedProxies, p)
		}
	}
	if v := os.Getenv("USHER_JOIN_DECISION_WINDOW"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute || d > 90*24*time.Hour {
			problems = append(problems, fmt.Errorf("USHER_JOIN_DECISION_WINDOW: must be a duration between 1m and 2160h, got %q", v))
		}
		c.JoinDecisionWindow = d
	}
	if v := os.Getenv("USHER_SENDS_PER_SECOND"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			problems = append(problems, fmt.Errorf("USHER_SENDS_PER_SECOND: must be a number of sends a second (0 for no cap), got %q", v))
		}
		c.SendsPerSecond = f
	}
	if v := os.Getenv("USHER_WORKFLOW_CACHE_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			problems = append(problems, fmt.Errorf("USHER_WORKFLOW_CACHE_SIZE: must be a number of workflow executions (0 for the SDK's default), got %q", v))
		}
		c.WorkflowCacheSize = n
	}
	if v := os.Getenv("USHER_WEBHOOK_RETRY_INITIAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 10*time.Millisecond || d > time.Hour {
			problems = append(problems, fmt.Errorf("USHER_WEBHOOK_RETRY_INITIAL: must be a duration between 10ms and 1h, got %q", v))
		}
		c.WebhookRetryInitial = d
	}
	if v := os.Getenv("USHER_PUBLIC_RATE_LIMIT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			problems = append(problems, fmt.Errorf("USHER_PUBLIC_RATE_LIMIT: must be a positive number of requests a minute, got %q", v))
		}
		c.PublicRateLimit = n
	}
	if v := os.Getenv("USHER_TOKEN_RATE_LIMIT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			problems = append(problems, fmt.Errorf("USHER_TOKEN_RATE_LIMIT: must be a positive number of failed token uses a minute, got %q", v))
		}
		c.TokenRateLimit = n
	}
	// Set but empty means no reminders, so this one is looked up rather than read.
	if v, ok := os.LookupEnv("USHER_INVITATION_REMINDERS"); ok {
		reminders, err := ParseReminders(v)
		if err != nil {
			problems = append(problems, fmt.Errorf("USHER_INVITATION_REMINDERS: %w", err))
		}
		c.InvitationReminders = reminders
	}
	if v := os.Getenv("USHER_NOTIFY_INVITER_ON_EXPIRY"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			problems = append(problems, fmt.Errorf("USHER_NOTIFY_INVITER_ON_EXPIRY: must be true or false, got %q", v))
		}
		c.NotifyInviterOnExpiry = b
	}
	if v := os.Getenv("USHER_JOIN_TELL_REJECTED"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			problems = append(problems, fmt.Errorf("USHER_JOIN_TELL_REJECTED: must be true or false, got %q", v))
		}
		c.JoinTellRejected = b
	}
	if err := c.validate(needs); err != nil {
		problems = append(problems, err)
	}
	return c, errors.Join(problems...)
}

func (c Config) validate(needs Needs) error {
	var problems []error
	bad := func(name, format string, args ...any) {
		problems = append(problems, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if needs.MySQL {
		if c.MySQLDSN == "" {
			bad("USHER_MYSQL_DSN", "is required, e.g. user:password@tcp(127.0.0.1:3306)/usher")
		} else if cfg, err := mysql.ParseDSN(c.MySQLDSN); err != nil {
			bad("USHER_MYSQL_DSN", "is not a valid DSN: %v", err)
		} else if cfg.DBName == "" {
			bad("USHER_MYSQL_DSN", "must name a database, e.g. .../usher")
		}
	}
	if needs.Temporal {
		if _, _, err := net.SplitHostPort(c.TemporalAddress); err != nil {
			bad("TEMPORAL_ADDRESS", "must be host:port, got %q", c.TemporalAddress)
		}
		if c.TemporalNamespace == "" {
			bad("TEMPORAL_NAMESPACE", "is required")
		}
	}
	if needs.HTTP {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			bad("USHER_HTTP_ADDR", "must be [host]:port, got %q", c.HTTPAddr)
		}
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			bad("USHER_METRICS_ADDR", `must be [host]:port or "off", got %q`, c.MetricsAddr)
		}
	}
	if needs.Mail {
		if u, err := url.Parse(c.PublicURL); c.PublicURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("USHER_PUBLIC_URL", "must be the absolute http(s) base URL of the links in e-mails, got %q", c.PublicURL)
		}
		if _, err := mail.ParseAddress(c.EmailFrom); err != nil {
			bad("USHER_EMAIL_FROM", "must be an address such as \"Usher <usher@example.com>\", got %q", c.EmailFrom)
		}
		if c.MailgunDomain == "" {
			bad("MAILGUN_DOMAIN", "is required")
		}
		if c.MailgunAPIKey == "" {
			bad("MAILGUN_API_KEY", "is required")
		}
		if c.MailgunAPIBase != "" {
			if u, err := url.Parse(c.MailgunAPIBase); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad("MAILGUN_API_BASE", "must be an absolute URL such as https://api.eu.mailgun.net/v3, got %q", c.MailgunAPIBase)
			}
		}
	}
	if c.TemplatesDir != "" {
		if info, err := os.Stat(c.TemplatesDir); err != nil || !info.IsDir() {
			bad("USHER_TEMPLATES_DIR", "must be a directory, got %q", c.TemplatesDir)
		}
	}
	if set := c.TwilioAccountSID != "" || c.TwilioAuthToken != "" || c.TwilioFrom != ""; set && !c.SMSConfigured() {
		bad("TWILIO_ACCOUNT_SID", "SMS needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM together; some are missing")
	}
	if c.TwilioFrom != "" && !strings.HasPrefix(c.TwilioFrom, "+") {
		bad("TWILIO_FROM", "must be a number in E.164 form such as +15017122661, got %q", c.TwilioFrom)
	}
	if c.SecretKey != "" && len(c.SecretKey) < 32 {
		bad("USHER_SECRET_KEY", "must be at least 32 characters (e.g. openssl rand -hex 32)")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("USHER_LOG_LEVEL", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	return errors.Join(problems...)
}

// maxReminder is the longest an invitation lasts (domain.MaxExpiresIn); a reminder further
// ahead of the expiry could never go out.
const maxReminder = 720 * time.Hour

// ParseReminders reads a reminder schedule: durations before the expiry separated by
// commas ("48h", "72h,24h"); "" or "none" means no reminders. The result is sorted, longest
// first, without repeats.
func ParseReminders(v string) ([]time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "" || strings.EqualFold(v, "none") {
		return nil, nil
	}
	var out []time.Duration
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		d, err := time.ParseDuration(part)
		if err != nil || d < time.Minute || d > maxReminder {
			return nil, fmt.Errorf("must be durations before the expiry separated by commas (such as \"72h,24h\"), each between 1m and 720h, or \"none\"; got %q", part)
		}
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b time.Duration) int { return cmp.Compare(b, a) })
	return out, nil
}
