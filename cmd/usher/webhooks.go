package main

import (
	"github.com/usherhq/usher/internal/config"
	"github.com/usherhq/usher/internal/webhooks"
)

// webhookSealer is what keeps webhook signing secrets encrypted, keyed by USHER_SECRET_KEY
// (the API and the worker must share it); nil, so no endpoint can be registered, without one.
func webhookSealer(cfg config.Config) *webhooks.Sealer {
	sealer, err := webhooks.NewSealer([]byte(cfg.SecretKey))
	if err != nil {
		return nil
	}
	return sealer
}
