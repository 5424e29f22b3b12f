package store

import (
	"context"

	"github.com/usherhq/usher/internal/domain"
)

// APIKeyPrefix marks Usher API keys, so that a leaked one is recognisable by scanners.
const APIKeyPrefix = "usk_"

// CreateAPIKey issues a key for an app. The key is returned once; only its hash is kept.
func (s *Store) CreateAPIKey(ctx context.Context, name string) (id, key string, err error) {
	secret, _ := domain.NewToken()
	key = APIKeyPrefix + secret
	return s.ImportAPIKey(ctx, name, key)
}

// ImportAPIKey stores a key chosen elsewhere (USHER_DEV_API_KEY); importing the same key
// again is a no-op.
func (s *Store) ImportAPIKey(ctx context.Context, name, key string) (id, sameKey string, err error) {
	hash := domain.HashToken(key)
	id = NewID()
	_, err = s.db.ExecContext(ctx, `INSERT INTO api_keys (id, name, key_hash, created_at) VALUES (?, ?, ?, ?)`,
		id, name, hash, s.timestamp())
	if isDuplicate(err) {
		err = s.db.GetContext(ctx, &id, `SELECT id FROM api_keys WHERE key_hash = ?`, hash)
	}
	return id, key, err
}

// AuthenticateAPIKey returns the ID of the live key whose hash is keyHash.
func (s *Store) AuthenticateAPIKey(ctx context.Context, keyHash []byte) (string, error) {
	var id string
	err := s.db.GetContext(ctx, &id, `SELECT id FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL`, keyHash)
	if isNotFound(err) {
		return "", domain.Errorf(domain.CodeUnauthorized, "the API key is not valid")
	}
	return id, err
}
