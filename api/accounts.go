package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/internal/store"
)

type organizationJSON struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	LoginURL  *string   `json:"login_url"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func toOrganizationJSON(o store.Organization) organizationJSON {
	return organizationJSON{ID: o.ID, Name: o.Name, LoginURL: o.LoginURL, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}
}

type createOrganizationRequest struct {
	Name     *string `json:"name"`
	LoginURL *string `json:"login_url"`
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
	org, err := s.Store.CreateOrganization(c, name, req.LoginURL)
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
	user, memberships, err := s.Store.GetUser(c, id)
	if err != nil {
		writeError(c, err)
		return
	}
	out := make([]membershipJSON, 0, len(memberships))
	for _, m := range memberships {
		out = append(out, membershipJSON{OrganizationID: m.OrganizationID, OrganizationName: m.OrganizationName, Role: m.Role, CreatedAt: m.CreatedAt})
	}
	c.JSON(http.StatusOK, gin.H{
		"id": user.ID, "email": user.Email, "name": user.Name, "has_password": len(user.PasswordHash) > 0,
		"created_at": user.CreatedAt, "updated_at": user.UpdatedAt, "memberships": out,
	})
}
