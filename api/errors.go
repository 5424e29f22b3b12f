package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

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
		de = domain.Errorf(domain.CodeInternal, "internal error")
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

func jsonError(err error) error {
	var tooLarge *http.MaxBytesError
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooLarge):
		return domain.Errorf(domain.CodeRequestTooLarge, "the body is larger than %d bytes", tooLarge.Limit)
	case errors.Is(err, io.EOF):
		return domain.Errorf(domain.CodeInvalidRequest, "the body is empty; send a JSON object")
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
