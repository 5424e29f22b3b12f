package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/internal/store"
)

type organizationJSON struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	LoginURL  *string   `json:"login_url"`
	LogoURL   *string   `json:"logo_url"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func toOrganizationJSON(o store.Organization) organizationJSON {
	return organizationJSON{ID: o.ID, Name: o.Name, LoginURL: o.LoginURL, LogoURL: o.LogoURL, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}
}

type createOrganizationRequest struct {
	Name     *string `json:"name"`
	LoginURL *string `json:"login_url"`
	LogoURL  *string `json:"logo_url"`
}

func (s *Server) createOrganization(c *gin.Context) {
	var req createOrganizationRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	if req.Name == nil || strings.TrimSpace(*req.Name) == "" {
		writeError(c, invalidField("name", "is required"))
		return
	}
	name, err := validName(strings.TrimSpace(*req.Name))
	if err != nil {
		writeError(c, err)
		return
	}
	if req.LoginURL != nil {
		if err := validRedirectURL(*req.LoginURL); err != nil {
			writeError(c, invalidField("login_url", "must be an absolute http(s) URL"))
			return
		}
	}
	if req.LogoURL != nil {
		if u, err := url.Parse(*req.LogoURL); err != nil || u.Scheme != "https" || u.Host == "" || len(*req.LogoURL) > 2048 {
			writeError(c, invalidField("logo_url", "must be an absolute https URL"))
			return
		}
	}
	org, err := s.Store.CreateOrganization(c, name, req.LoginURL, req.LogoURL)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusCreated, toOrganizationJSON(org))
}

func (s *Server) getOrganization(c *gin.Context) {
	id := c.Param("id")
	if !store.ValidID(id) {
		writeError(c, domain.Errorf(domain.CodeOrganizationNotFound, "no organization with id %q", id))
		return
	}
	org, err := s.Store.GetOrganization(c, id)
	if err != nil {
		writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, toOrganizationJSON(org))
}

type membershipJSON struct {
	OrganizationID   string    `json:"organization_id"`
	OrganizationName string    `json:"organization_name"`
	Role             string    `json:"role"`
	CreatedAt        time.Time `json:"created_at"`
}

func (s *Server) getUser(c *gin.Context) {
	id := c.Param("id")
	if !store.ValidID(id) {
		writeError(c, domain.Errorf(domain.CodeUserNotFound, "no user with id %q", id))
		return
	}
	s.writeUser(c, id)
}

func (s *Server) writeUser(c *gin.Context, id string) {
	user, memberships, err := s.Store.GetUser(c, id)
	if err != nil {
		writeError(c, err)
		return
	}
	out := make([]membershipJSON, 0, len(memberships))
	for _, m := range memberships {
		out = append(out, membershipJSON{OrganizationID: m.OrganizationID, OrganizationName: m.OrganizationName, Role: m.Role, CreatedAt: m.CreatedAt})
	}
	var profile any
	if user.ProfilePublic {
		profile = gin.H{
			"display_name": deref(user.ProfileDisplayName), "organization_id": deref(user.ProfileOrganizationID),
			"city": deref(user.ProfileCity), "bio": deref(user.ProfileBio),
		}
	}
	c.JSON(http.StatusOK, gin.H{
		"id": user.ID, "email": user.Email, "name": user.Name, "locale": user.Locale, "has_password": len(user.PasswordHash) > 0,
		"created_at": user.CreatedAt, "updated_at": user.UpdatedAt, "memberships": out, "public_profile": profile,
	})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

type publicProfileRequest struct {
	DisplayName    string `json:"display_name"`
	OrganizationID string `json:"organization_id"`
	City           string `json:"city"`
	Bio            string `json:"bio"`
}

// Limits of a public profile.
const (
	maxCityLength = 100
	maxBioLength  = 500
)

func (p publicProfileRequest) validate() (*store.PublicProfile, error) {
	display := strings.TrimSpace(p.DisplayName)
	if display == "" || utf8.RuneCountInString(display) > maxNameLength || !utf8.ValidString(display) {
		return nil, invalidField("public_profile.display_name", "is required, at most %d characters", maxNameLength)
	}
	if !store.ValidID(p.OrganizationID) {
		return nil, invalidField("public_profile.organization_id", "must be the ID of an organization the user belongs to")
	}
	city, bio := strings.TrimSpace(p.City), strings.TrimSpace(p.Bio)
	if utf8.RuneCountInString(city) > maxCityLength || !utf8.ValidString(city) {
		return nil, invalidField("public_profile.city", "must be at most %d characters", maxCityLength)
	}
	if utf8.RuneCountInString(bio) > maxBioLength || !utf8.ValidString(bio) {
		return nil, invalidField("public_profile.bio", "must be at most %d characters", maxBioLength)
	}
	return &store.PublicProfile{DisplayName: display, OrganizationID: p.OrganizationID, City: city, Bio: bio}, nil
}

// updateUserRequest is a JSON merge patch of a user: absent fields stay as they are, and
// "public_profile": null withdraws the profile.
type updateUserRequest struct {
	Name          *string         `json:"name"`
	Locale        *string         `json:"locale"`
	PublicProfile json.RawMessage `json:"public_profile"`
}

func (s *Server) updateUser(c *gin.Context) {
	id := c.Param("id")
	if !store.ValidID(id) {
		writeError(c, domain.Errorf(domain.CodeUserNotFound, "no user with id %q", id))
		return
	}
	var req updateUserRequest
	if err := decodeJSON(c, &req); err != nil {
		writeError(c, err)
		return
	}
	if req.Name != nil {
		name, err := validName(strings.TrimSpace(*req.Name))
		if err == nil && name == "" {
			err = invalidField("name", "must not be empty")
		}
		if err != nil {
			writeError(c, err)
			return
		}
		req.Name = &name
	}
	if req.Locale != nil && !domain.ValidLocale(*req.Locale) {
		writeError(c, invalidField("locale", "must be a language tag such as \"en\" or \"pt-BR\""))
		return
	}
	if _, _, err := s.Store.GetUser(c, id); err != nil {
		writeError(c, err)
		return
	}
	if len(req.PublicProfile) > 0 {
		var profile *store.PublicProfile
		if string(req.PublicProfile) != "null" {
			var p publicProfileRequest
			if err := json.Unmarshal(req.PublicProfile, &p); err != nil {
				writeError(c, invalidField("public_profile", "must be an object with display_name, organization_id, city and bio, or null"))
				return
			}
			var err error
			if profile, err = p.validate(); err != nil {
				writeError(c, err)
				return
			}
		}
		if err := s.Store.SetPublicProfile(c, id, profile); err != nil {
			writeError(c, err)
			return
		}
	}
	if req.Name != nil || req.Locale != nil {
		if err := s.Store.UpdateUser(c, id, req.Name, req.Locale); err != nil {
			writeError(c, err)
			return
		}
	}
	s.writeUser(c, id)
}
