package api

import (
	"encoding/base64"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/usherhq/usher/internal/store"
)

const (
	defaultPageSize = 50
	maxPageSize     = 200
)

// keysetPage is a keyset page request: up to Limit rows after the row with ID After.
type keysetPage struct {
	Limit int
	After string
}

// pageRequest reads ?limit= and ?cursor=.
func pageRequest(c *gin.Context) (keysetPage, error) {
	p := keysetPage{Limit: defaultPageSize}
	if raw := c.Query("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxPageSize {
			return p, invalidField("limit", "must be a number from 1 to %d", maxPageSize)
		}
		p.Limit = n
	}
	if raw := c.Query("cursor"); raw != "" {
		after, err := decodeCursor(raw)
		if err != nil {
			return p, err
		}
		p.After = after
	}
	return p, nil
}

// writePage answers with one page of rows, fetched with a limit of p.Limit+1 so that the
// extra row tells whether there is a next page.
func writePage[Row, JSON any](c *gin.Context, p keysetPage, rows []Row, id func(Row) string, toJSON func(Row) JSON) {
	var next *string
	if len(rows) > p.Limit {
		rows = rows[:p.Limit]
		cursor := encodeCursor(id(rows[len(rows)-1]))
		next = &cursor
	}
	data := make([]JSON, 0, len(rows))
	for _, r := range rows {
		data = append(data, toJSON(r))
	}
	c.JSON(http.StatusOK, gin.H{"data": data, "next_cursor": next})
}

// Cursors are opaque to clients so the keyset behind them can change.
func encodeCursor(lastID string) string { return base64.RawURLEncoding.EncodeToString([]byte(lastID)) }

func decodeCursor(cursor string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || !store.ValidID(string(raw)) {
		return "", invalidField("cursor", "is not a cursor this API returned")
	}
	return string(raw), nil
}
