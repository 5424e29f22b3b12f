package api

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/webhooks"
)

// Outgoing webhooks: apps register endpoints; every event recorded afterwards that an
// endpoint subscribes to is delivered to it, signed, by the worker (see workflows/webhook.go).

type webhookEndpointJSON struct {
	ID             string     `json:"id"`
	URL            string     `json:"url"`
	Events         []string   `json:"events"`
	OrganizationID *string    `json:"organization_id"`
	Description    string     `json:"description"`
	Status         string     `json:"status"`
	CreatedAt      time.Time  `json:"created_at"`
	DisabledAt     *time.Time `json:"disabled_at"`
	// Secret is shown once, in the answer to the creation.
	Secret string `json:"secret,omitempty"`
}

func toWebhookEndpointJSON(ep store.WebhookEndpoint) webhookEndpointJSON {
	status := "active"
	if ep.DisabledAt != nil {
		status = "disabled"
	}
	return webhookEndpointJSON{ID: ep.ID, URL: ep.URL, Events: ep.Events, OrganizationID: ep.OrganizationID,
		Description: ep.Description, Status: status, CreatedAt: ep.CreatedAt, DisabledAt: ep.DisabledAt}
}

type webhookEndpointRequest struct {
	URL            string   `json:"url"`
	Events         []string `json:"events"`
	OrganizationID *string  `json:"organization_id"`
	Description    string   `json:"description"`
}

func (r webhookEndpointRequest) validate() (store.WebhookEndpoint, error) {
	ep := store.WebhookEndpoint{URL: strings.TrimSpace(r.URL), OrganizationID: r.OrganizationID, Description: strings.TrimSpace(r.Description)}
	u, err := url.Parse(ep.URL)
	switch {
	case ep.URL == "":
		return ep, invalidField("url", "is required")
	case len(ep.URL) > 2048:
		return ep, invalidField("url", "must be at most 2048 characters")
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "":
		return ep, invalidField("url", "must be an absolute http or https URL without a fragment")
	case u.User != nil:
		// Credentials in a URL would be stored and shown in the clear; the signature is
		// how receivers authenticate Usher.
		return ep, invalidField("url", "must not contain a user name or password")
	}
	if len(r.Events) == 0 {
		return ep, invalidField("events", `must list at least one event type, or ["*"] for all`)
	}
	for _, e := range r.Events {
		if e == "*" && len(r.Events) > 1 {
			return ep, invalidField("events", `"*" stands for all events and must be alone`)
		}
		if e != "*" && !store.KnownEventType(e) {
			return ep, invalidField("events", "%q is not an event type; known types: %s", e, strings.Join(store.EventTypes, ", "))
		}
		if !slices.Contains(ep.Events, e) {
			ep.Events = append(ep.Events, e)
		}
	}
	if r.OrganizationID != nil && !store.ValidID(*r.OrganizationID) {
		return ep, invalidField("organization_id", "is not an organization ID")
	}
	if len([]rune(ep.Description)) > 200 {
		return ep, invalidField("description", "must be at most 200 characters")
	}
	return ep, nil
}

func (s *Server) createWebhookEndpoint(c *gin.Context) {
	if s.WebhookSealer == nil {
		writeError(c, domain.Errorf(domain.CodeWebhooksUnavailable, "webhooks need USHER_SECRET_KEY to be set on this server"))
		return
	}
	var req webhookEndpointRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	ep, err := req.validate()
	if err != nil {
		writeError(c, err)
		return
	}
	secret := webhooks.NewSecret()
	ep.SecretCiphertext = s.WebhookSealer.Seal(secret)
	if ep, err = s.Store.CreateWebhookEndpoint(c, ep); err != nil {
		writeError(c, err)
		return
	}
	out := toWebhookEndpointJSON(ep)
	out.Secret = secret
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, out)
}

func (s *Server) listWebhookEndpoints(c *gin.Context) {
	pg, err := pageRequest(c)
	if err != nil {
		writeError(c, err)
		return
	}
	rows, err := s.Store.ListWebhookEndpoints(c, pg.After, pg.Limit+1)
	if err != nil {
		writeError(c, err)
		return
	}
	writePage(c, pg, rows, func(ep store.WebhookEndpoint) string { return ep.ID }, toWebhookEndpointJSON)
}

func (s *Server) loadWebhookEndpoint(c *gin.Context) (store.WebhookEndpoint, error) {
	id := c.Param("id")
	if !store.ValidID(id) {
		return store.WebhookEndpoint{}, domain.Errorf(domain.CodeWebhookEndpointNotFound, "no webhook endpoint with id %q", id)
	}
	return s.Store.GetWebhookEndpoint(c, id)
}

func (s *Server) getWebhookEndpoint(c *gin.Context) {
	ep, err := s.loadWebhookEndpoint(c)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, toWebhookEndpointJSON(ep))
}

// disableWebhookEndpoint stops deliveries to an endpoint; its history stays listable.
func (s *Server) disableWebhookEndpoint(c *gin.Context) {
	ep, err := s.loadWebhookEndpoint(c)
	if err == nil {
		ep, err = s.Store.DisableWebhookEndpoint(c, ep.ID)
	}
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, toWebhookEndpointJSON(ep))
}

type webhookAttemptJSON struct {
	Attempt      int       `json:"attempt"`
	AttemptedAt  time.Time `json:"attempted_at"`
	DurationMS   int       `json:"duration_ms"`
	StatusCode   *int      `json:"status_code"`
	Error        *string   `json:"error"`
	ResponseBody *string   `json:"response_body"`
}

type webhookDeliveryJSON struct {
	ID             string               `json:"id"`
	EndpointID     string               `json:"endpoint_id"`
	EventID        string               `json:"event_id"`
	EventType      string               `json:"event_type"`
	Status         string               `json:"status"`
	AttemptCount   int                  `json:"attempt_count"`
	LastStatusCode *int                 `json:"last_status_code"`
	LastError      *string              `json:"last_error"`
	LastAttemptAt  *time.Time           `json:"last_attempt_at"`
	NextAttemptAt  *time.Time           `json:"next_attempt_at"`
	CreatedAt      time.Time            `json:"created_at"`
	FinishedAt     *time.Time           `json:"finished_at"`
	Attempts       []webhookAttemptJSON `json:"attempts"`
}

func toWebhookDeliveryJSON(d store.WebhookDelivery) webhookDeliveryJSON {
	attempts := make([]webhookAttemptJSON, 0, len(d.Attempts))
	for _, a := range d.Attempts {
		attempts = append(attempts, webhookAttemptJSON{Attempt: a.Attempt, AttemptedAt: a.AttemptedAt, DurationMS: a.DurationMS,
			StatusCode: a.StatusCode, Error: a.Error, ResponseBody: a.ResponseBody})
	}
	return webhookDeliveryJSON{ID: d.ID, EndpointID: d.EndpointID, EventID: d.EventID, EventType: d.EventType, Status: d.Status,
		AttemptCount: d.AttemptCount, LastStatusCode: d.LastStatusCode, LastError: d.LastError, LastAttemptAt: d.LastAttemptAt,
		NextAttemptAt: d.NextAttemptAt, CreatedAt: d.CreatedAt, FinishedAt: d.FinishedAt, Attempts: attempts}
}

// listWebhookDeliveries lists an endpoint's deliveries newest first, each with its attempts.
func (s *Server) listWebhookDeliveries(c *gin.Context) {
	ep, err := s.loadWebhookEndpoint(c)
	if err != nil {
		writeError(c, err)
		return
	}
	pg, err := pageRequest(c)
	if err != nil {
		writeError(c, err)
		return
	}
	rows, err := s.Store.ListWebhookDeliveries(c, ep.ID, pg.After, pg.Limit+1)
	if err != nil {
		writeError(c, err)
		return
	}
	writePage(c, pg, rows, func(d store.WebhookDelivery) string { return d.ID }, toWebhookDeliveryJSON)
}

func (s *Server) getWebhookDelivery(c *gin.Context) {
	ep, err := s.loadWebhookEndpoint(c)
	if err != nil {
		writeError(c, err)
		return
	}
	id := c.Param("delivery_id")
	if !store.ValidID(id) {
		writeError(c, domain.Errorf(domain.CodeWebhookDeliveryNotFound, "no delivery %q of webhook endpoint %q", id, ep.ID))
		return
	}
	d, err := s.Store.GetWebhookDelivery(c, ep.ID, id)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, toWebhookDeliveryJSON(d))
}
