package gateway

import "github.com/gin-gonic/gin"

// Option adds an embedding program's gin parts to every engine the gateway
// builds: the first one, and each one a reload builds after it.
type Option func(*options)

type options struct {
	middleware []gin.HandlerFunc
	engine     []func(*gin.Engine)
}

// WithMiddleware adds gin middleware to every engine. It runs on every
// request under a FHIR base (and on an embedding program's own handlers),
// after fhirgate's request steps that precede routing — request id,
// recovery, size limits, base selection, the base's Authorization header
// check — and before the route's stages: it sees requests that have a
// base, and can stop one with c.Abort… (a status without a body becomes an
// OperationOutcome with that status).
func WithMiddleware(h ...gin.HandlerFunc) Option {
	return func(o *options) { o.middleware = append(o.middleware, h...) }
}

// WithEngine calls fn with every new engine once fhirgate's routes are
// registered, before the engine serves: for extra handlers (e.g.
// e.GET("/internal/status", …)) on paths outside the FHIR bases. A path
// that collides with a FHIR route rejects the table (a reload keeps the
// previous one).
func WithEngine(fn func(*gin.Engine)) Option {
	return func(o *options) { o.engine = append(o.engine, fn) }
}
