package webhooks

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
)

// Sealer encrypts signing secrets for storage. They cannot be kept only as hashes, since
// every delivery signs with them; so they are sealed with AES-256-GCM under a key derived
// (HKDF-SHA256) from the deployment's USHER_SECRET_KEY. A database dump alone does not
// reveal them; changing USHER_SECRET_KEY makes existing endpoints unusable (re-register).
type Sealer struct {
	aead cipher.AEAD
}

const sealerInfo = "usher webhook endpoint secrets v1"

// NewSealer derives the sealing key from rootKey (USHER_SECRET_KEY, at least 32 bytes).
func NewSealer(rootKey []byte) (*Sealer, error) {
	if len(rootKey) < 32 {
		return nil, errors.New("webhooks: USHER_SECRET_KEY must be set (at least 32 characters) to store webhook secrets")
	}
	key, err := hkdf.Key(sha256.New, rootKey, nil, sealerInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts secret; the result is nonce || ciphertext.
func (s *Sealer) Seal(secret string) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(secret)+s.aead.Overhead())
	_, _ = rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, []byte(secret), []byte(sealerInfo))
}

// Open decrypts what Seal made.
func (s *Sealer) Open(sealed []byte) (string, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return "", errors.New("webhooks: sealed secret too short")
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(sealerInfo))
	if err != nil {
		return "", errors.New("webhooks: cannot open the endpoint's secret (was USHER_SECRET_KEY changed?)")
	}
	return string(plain), nil
}
