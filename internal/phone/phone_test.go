package phone

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		region string
		want   string // E.164 on success
		reason string // expected *Error reason otherwise
	}{
		// United Kingdom
		{name: "UK spaces", raw: "+44 20 7946 0958", want: "+442079460958"},
		{name: "UK compact", raw: "+442079460958", want: "+442079460958"},
		{name: "UK parentheses and dashes", raw: "+44 (20) 7946-0958", want: "+442079460958"},
		{name: "UK dots", raw: "+44.20.7946.0958", want: "+442079460958"},
		{name: "UK surrounding space", raw: "  +44 20 7946 0958\t", want: "+442079460958"},
		{name: "UK 00 prefix", raw: "0044 20 7946 0958", want: "+442079460958"},
		{name: "UK mobile", raw: "+44 7911 123456", want: "+447911123456"},
		{name: "UK drama range is not valid", raw: "+44 7700 900123", reason: ReasonInvalidNumber},
		{name: "UK national without region", raw: "020 7946 0958", reason: ReasonMissingCountryCode},
		{name: "UK national with region", raw: "020 7946 0958", region: "GB", want: "+442079460958"},
		{name: "UK national lower-case region", raw: "020 7946 0958", region: "gb", want: "+442079460958"},
		{name: "UK 00 prefix with region", raw: "00 44 20 7946 0958", region: "GB", want: "+442079460958"},
		{name: "UK too long", raw: "+44 20 7946 09581234", reason: ReasonInvalidNumber},

		// United States
		{name: "US parentheses", raw: "+1 (202) 555-0143", want: "+12025550143"},
		{name: "US dashes", raw: "+1-415-555-2671", want: "+14155552671"},
		{name: "US national with region", raw: "(202) 555-0143", region: "US", want: "+12025550143"},
		{name: "US national without region", raw: "(202) 555-0143", reason: ReasonMissingCountryCode},
		{name: "US too short", raw: "+1 555", reason: ReasonInvalidNumber},
		{name: "US vanity letters", raw: "+1 800 FLOWERS", reason: ReasonNotAPhoneNumber},

		// Germany
		{name: "DE Berlin", raw: "+49 30 901820", want: "+4930901820"},
		{name: "DE trunk zero in parentheses", raw: "+49 (0)30 901820", want: "+4930901820"},
		{name: "DE mobile with slash", raw: "+49 151/2345 6789", want: "+4915123456789"},
		{name: "DE 00 prefix", raw: "0049 151 2345 6789", want: "+4915123456789"},
		{name: "DE national with region", raw: "030 901820", region: "DE", want: "+4930901820"},

		// Russia
		{name: "RU Moscow", raw: "+7 (495) 123-45-67", want: "+74951234567"},
		{name: "RU mobile", raw: "+7 912 345-67-89", want: "+79123456789"},
		{name: "RU national 8 with region", raw: "8 (495) 123-45-67", region: "RU", want: "+74951234567"},
		{name: "RU national 8 without region", raw: "8 (495) 123-45-67", reason: ReasonMissingCountryCode},

		// Other scripts' digits and separators.
		{name: "full-width digits", raw: "＋４４ ２０ ７９４６ ０９５８", want: "+442079460958"},
		{name: "unicode dashes", raw: "+44 20\u20137946\u20140958", want: "+442079460958"},

		// Garbage and edge cases.
		{name: "empty", raw: "", reason: ReasonNotAPhoneNumber},
		{name: "blank", raw: "   ", reason: ReasonNotAPhoneNumber},
		{name: "plus only", raw: "+", reason: ReasonNotAPhoneNumber},
		{name: "word", raw: "hello", reason: ReasonNotAPhoneNumber},
		{name: "e-mail", raw: "ann@example.com", reason: ReasonNotAPhoneNumber},
		{name: "leading junk", raw: "abc+44 20 7946 0958", reason: ReasonNotAPhoneNumber},
		{name: "trailing junk", raw: "+44 20 7946 0958 a", reason: ReasonNotAPhoneNumber},
		{name: "extension", raw: "+44 20 7946 0958 ext. 12", reason: ReasonNotAPhoneNumber},
		{name: "double plus", raw: "++44 20 7946 0958", reason: ReasonNotAPhoneNumber},
		{name: "plus in the middle", raw: "44+20 7946 0958", reason: ReasonNotAPhoneNumber},
		{name: "tel URI", raw: "tel:+44-20-7946-0958", reason: ReasonNotAPhoneNumber},
		{name: "country code only", raw: "+44", reason: ReasonInvalidNumber},
		{name: "too short", raw: "+44 12", reason: ReasonInvalidNumber},
		{name: "too short without plus", raw: "12", reason: ReasonMissingCountryCode},
		{name: "one digit", raw: "1", reason: ReasonMissingCountryCode},
		{name: "unknown country code", raw: "+999 1234567", reason: ReasonInvalidNumber},
		{name: "country code zero", raw: "+0 20 7946 0958", reason: ReasonInvalidNumber},
		{name: "00 then nothing", raw: "00", reason: ReasonInvalidNumber},
		{name: "way too long", raw: "+" + strings.Repeat("1", 300), reason: ReasonInvalidNumber},
		{name: "unknown region", raw: "020 7946 0958", region: "XX", reason: ReasonMissingCountryCode},
		{name: "unknown region with plus", raw: "+44 20 7946 0958", region: "XX", want: "+442079460958"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Normalize(tt.raw, tt.region)
			if tt.reason == "" {
				if err != nil || got != tt.want {
					t.Fatalf("Normalize(%q, %q) = %q, %v; want %q", tt.raw, tt.region, got, err, tt.want)
				}
				return
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Normalize(%q, %q) = %q, %v; want *Error %s", tt.raw, tt.region, got, err, tt.reason)
			}
			if pe.Reason != tt.reason || got != "" {
				t.Fatalf("Normalize(%q, %q) = %q, reason %q; want reason %q", tt.raw, tt.region, got, pe.Reason, tt.reason)
			}
		})
	}
}

func TestErrorMessagesAndIs(t *testing.T) {
	_, err := Normalize("020 7946 0958", "")
	if err == nil || err.Error() != "phone without country code" {
		t.Fatalf("err = %v", err)
	}
	if !errors.Is(err, &Error{Reason: ReasonMissingCountryCode}) {
		t.Error("errors.Is with the same reason = false")
	}
	if errors.Is(err, &Error{Reason: ReasonInvalidNumber}) {
		t.Error("errors.Is with another reason = true")
	}
	for reason, want := range map[string]string{
		ReasonInvalidNumber:   "invalid phone number",
		ReasonNotAPhoneNumber: "not a phone number",
	} {
		if got := (&Error{Reason: reason}).Error(); got != want {
			t.Errorf("Error() for %s = %q, want %q", reason, got, want)
		}
	}
}

func TestNormalizeIsIdempotent(t *testing.T) {
	for _, raw := range []string{"+44 20 7946 0958", "+1 (202) 555-0143", "+49 30 901820", "+7 912 345-67-89"} {
		e164, err := Normalize(raw, "")
		if err != nil {
			t.Fatalf("Normalize(%q): %v", raw, err)
		}
		again, err := Normalize(e164, "")
		if err != nil || again != e164 {
			t.Errorf("Normalize(%q) = %q, %v; want it unchanged", e164, again, err)
		}
	}
}
