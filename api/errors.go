package api

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/go-sql-driver/mysql"

	"github.com/usherhq/usher/internal/domain"
)

type errorBody struct {
	Error *domain.Error `json:"error"`
}

// writeError answers with the one error shape. Errors that are not domain errors are
// logged and reach the client only as internal_error.
func writeError(c *gin.Context, err error) {
	var de *domain.Error
	if !errors.As(err, &de) {
		c.Error(err) //nolint:errcheck // recorded for the request log
		if dependencyUnavailable(err) {
			de = domain.Errorf(domain.CodeTemporarilyUnavailable, "a service Usher depends on is unavailable; try again shortly")
		} else {
			de = domain.Errorf(domain.CodeInternal, "internal error")
		}
	}
	c.AbortWithStatusJSON(de.Code.HTTPStatus(), errorBody{Error: de})
}

// decodeJSON reads a JSON object body into dst, turning every way it can be wrong into an
// invalid_request (or request_too_large / unsupported_media_type) that names the problem.
func decodeJSON(c *gin.Context, dst any) error {
	if ct := c.GetHeader("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return domain.Errorf(domain.CodeUnsupportedMediaType, "send the body as application/json")
		}
	}
	dec := json.NewDecoder(c.Request.Body)
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return domain.Errorf(domain.CodeInvalidRequest, "the body must hold a single JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return jsonError(err)
		}
		return domain.Errorf(domain.CodeInvalidRequest, "the body must hold a single JSON object")
	}
	return nil
}

var errEmptyBody = domain.Errorf(domain.CodeInvalidRequest, "the body is empty; send a JSON object")

func isEmptyBody(err error) bool { return err == errEmptyBody }

func jsonError(err error) error {
	var tooLarge *http.MaxBytesError
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooLarge):
		return domain.Errorf(domain.CodeRequestTooLarge, "the body is larger than %d bytes", tooLarge.Limit)
	case errors.Is(err, io.EOF):
		return errEmptyBody
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return domain.Errorf(domain.CodeInvalidRequest, "the body is not valid JSON")
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return domain.Errorf(domain.CodeInvalidRequest, "the body must be a JSON object")
		}
		return domain.Errorf(domain.CodeInvalidRequest, "%s must be a %s", typeErr.Field, jsonTypeName(typeErr.Type.Kind().String())).
			WithDetail("field", typeErr.Field)
	default:
		return domain.Errorf(domain.CodeInvalidRequest, "the body could not be read: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "map", "struct":
		return "object"
	case "slice", "array":
		return "array"
	case "ptr":
		return "value of the right type"
	default:
		return "number"
	}
}

func invalidField(field, format string, args ...any) *domain.Error {
	return domain.Errorf(domain.CodeInvalidRequest, "%s: %s", field, fmt.Sprintf(format, args...)).WithDetail("field", field)
}

// dependencyUnavailable recognises failures of MySQL or the network that pass with time,
// which clients should retry rather than report.
func dependencyUnavailable(err error) bool {
	var netErr net.Error
	var mysqlErr *mysql.MySQLError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, driver.ErrBadConn), errors.Is(err, mysql.ErrInvalidConn),
		errors.As(err, &netErr):
		return true
	case errors.As(err, &mysqlErr):
		switch mysqlErr.Number {
		case 1040, 1053, 1205, 1213: // too many connections, shutdown, lock wait timeout, deadlock
			return true
		}
	}
	return false
}
