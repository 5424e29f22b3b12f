// Package phone normalizes phone numbers typed by people into E.164, the
// form SMS providers expect ("+442079460958"), using
// github.com/nyaruka/phonenumbers (a Go port of Google's libphonenumber).
package phone

import (
	"errors"
	"strings"
	"unicode"

	"github.com/nyaruka/phonenumbers"
)

// Stable reasons of an *Error. They are part of Usher's API (they may be
// returned to clients as error codes): never change their spelling.
const (
	// ReasonMissingCountryCode: the number has no "+" (or "00") international
	// prefix and no default region was given to interpret it in.
	ReasonMissingCountryCode = "missing_country_code"
	// ReasonInvalidNumber: it looks like a phone number but is not a valid
	// one: unknown country code, too short, too long, or not a number that
	// exists in its country's numbering plan.
	ReasonInvalidNumber = "invalid_number"
	// ReasonNotAPhoneNumber: empty, no digits, or characters that have no
	// place in a phone number (letters, an extension, a second "+", …).
	ReasonNotAPhoneNumber = "not_a_phone_number"
)

// Error is why Normalize refused a number.
type Error struct {
	// Reason is one of the Reason* constants.
	Reason string
}

func (e *Error) Error() string {
	switch e.Reason {
	case ReasonMissingCountryCode:
		return "phone without country code"
	case ReasonInvalidNumber:
		return "invalid phone number"
	case ReasonNotAPhoneNumber:
		return "not a phone number"
	}
	return "invalid phone number: " + e.Reason
}

// Is reports whether target is an *Error with the same Reason, so that
// errors.Is(err, &phone.Error{Reason: phone.ReasonInvalidNumber}) works.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t != nil && t.Reason == e.Reason
}

// maxInputRunes bounds the input (libphonenumber's own limit is 250).
const maxInputRunes = 100

// Normalize returns raw in E.164 form ("+" and digits only).
//
// raw may contain spaces, dashes, dots, slashes and parentheses ("+7 (495)
// 123-45-67", "+49 (0)30 901820"). It must start with the international
// prefix "+" — or "00" when defaultRegion is "" — followed by the country
// code; a number without one is an *Error with ReasonMissingCountryCode
// unless defaultRegion (an ISO 3166-1 alpha-2 code such as "GB"; Usher
// passes "") says which country's national format it is in.
//
// Letters (including vanity numbers and "ext." extensions) are refused with
// ReasonNotAPhoneNumber; a number that parses but is not valid for its
// country (per libphonenumber's metadata) with ReasonInvalidNumber. Every
// error is an *Error.
func Normalize(raw, defaultRegion string) (string, error) {
	s := strings.TrimSpace(raw)
	region := strings.ToUpper(strings.TrimSpace(defaultRegion))

	digits, plus, ok := scan(s)
	switch {
	case !ok || digits == 0:
		return "", &Error{Reason: ReasonNotAPhoneNumber}
	case !plus && region == "":
		// "00" is the international prefix in most of the world; with a
		// region, libphonenumber applies that region's own prefix instead
		// (e.g. "0011" in Australia).
		rest, isIntl := cutDoubleZero(s)
		if !isIntl {
			return "", &Error{Reason: ReasonMissingCountryCode}
		}
		s, plus = "+"+rest, true
	}
	if len([]rune(s)) > maxInputRunes {
		return "", &Error{Reason: ReasonInvalidNumber}
	}

	num, err := phonenumbers.Parse(s, region)
	if err != nil {
		if errors.Is(err, phonenumbers.ErrInvalidCountryCode) && !plus {
			// No "+" and a region libphonenumber does not know.
			return "", &Error{Reason: ReasonMissingCountryCode}
		}
		// Unknown country code, too short, too long.
		return "", &Error{Reason: ReasonInvalidNumber}
	}
	if num.GetExtension() != "" || !phonenumbers.IsValidNumber(num) {
		return "", &Error{Reason: ReasonInvalidNumber}
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}

// scan checks that s holds only what people put in phone numbers: digits,
// one leading "+", and separators. It reports the number of digits and
// whether s starts with "+".
func scan(s string) (digits int, plus, ok bool) {
	for i, r := range s {
		switch {
		case r == '+' || r == '＋':
			if i != 0 {
				return 0, false, false
			}
			plus = true
		case unicode.IsDigit(r):
			digits++
		case isSeparator(r):
		default:
			return 0, false, false
		}
	}
	return digits, plus, true
}

func isSeparator(r rune) bool {
	switch r {
	case '-', '.', '/', '(', ')', '[', ']',
		'\u2010', '\u2011', '\u2012', '\u2013', '\u2014', '\u2015', '\u2212', // dashes, minus
		'\u30FC', '\uFF0D', '\uFF0E', '\uFF0F', '\uFF08', '\uFF09': // full-width forms
		return true
	}
	return unicode.IsSpace(r)
}

// cutDoubleZero reports whether the digits of s start with "00" and returns
// the digits after them.
func cutDoubleZero(s string) (string, bool) {
	return strings.CutPrefix(phonenumbers.NormalizeDigitsOnly(s), "00")
}
