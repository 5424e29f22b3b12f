package domain

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// tokenBytes is the entropy of every token Usher issues: 256 bits.
const tokenBytes = 32

// NewToken returns a fresh secret for a link, base64url-encoded without padding, and the
// SHA-256 hash that is the only form of it Usher stores.
func NewToken() (token string, hash []byte) {
	raw := make([]byte, tokenBytes)
	// crypto/rand.Read never fails on supported platforms (Go 1.24+ panics instead).
	_, _ = rand.Read(raw)
	token = base64.RawURLEncoding.EncodeToString(raw)
	return token, HashToken(token)
}

// HashToken returns the stored form of token. A string that cannot be a token hashes to a
// value no stored token has, so callers need no separate format check to be safe; they may
// still use ValidTokenFormat to answer malformed input early.
func HashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// ValidTokenFormat reports whether token has the shape of one Usher issued.
func ValidTokenFormat(token string) bool {
	if len(token) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(token)
	return err == nil
}
