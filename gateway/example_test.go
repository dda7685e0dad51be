package gateway_test

import (
	"context"
	"log"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/fhirgate/fhirgate/config"
	"github.com/fhirgate/fhirgate/gateway"
	"github.com/gin-gonic/gin"
)

// A program that runs fhirgate in-process, with a middleware of its own on
// every FHIR request and a handler outside the FHIR bases. Both stay in
// place across reloads (SIGHUP here).
func Example() {
	cfg, err := config.Load("routes.yaml")
	if err != nil {
		log.Fatal(err)
	}
	srv, err := gateway.NewServer(cfg, slog.Default(),
		gateway.WithMiddleware(func(c *gin.Context) {
			if c.GetHeader("X-Tenant") == "" {
				c.AbortWithStatus(http.StatusForbidden) // answered as a 403 OperationOutcome
			}
		}),
		gateway.WithEngine(func(e *gin.Engine) {
			e.GET("/internal/version", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"version": "1.0"}) })
		}),
	)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go func() {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		for range hup {
			srv.Reload("SIGHUP")
		}
	}()
	if err := srv.Run(ctx); err != nil { // or serve srv.Handler() on a listener of your own
		log.Fatal(err)
	}
}
