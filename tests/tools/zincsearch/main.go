// Command zincsearch serves ZincSearch's Elasticsearch-compatible API (under /es/) for the place
// search tests. It is ZincSearch's own main without telemetry, Sentry and the Pyroscope profiler
// (whose godeltaprof dependency no longer compiles with current Go).
//
// `go install` cannot build ZincSearch: its go.mod has replaces and `//go:embed web/dist` needs a
// built web UI that the module does not ship. scripts/test-deps.sh therefore copies the published
// module (checked against the Go checksum database by `go mod download`) into its cache, adds an
// empty web/dist, puts this file in as cmd/zincsearch-es and builds there, so ZincSearch's own
// go.mod (replaces) and go.sum apply unchanged. Configuration is ZincSearch's environment:
// ZINC_SERVER_ADDRESS, ZINC_SERVER_PORT, ZINC_DATA_PATH, ZINC_FIRST_ADMIN_USER,
// ZINC_FIRST_ADMIN_PASSWORD (set ZINC_TELEMETRY=false).
package main

import (
	"context"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/rs/zerolog/log"

	"github.com/zincsearch/zincsearch/pkg/config"
	"github.com/zincsearch/zincsearch/pkg/core"
	"github.com/zincsearch/zincsearch/pkg/meta"
	"github.com/zincsearch/zincsearch/pkg/metadata"
	"github.com/zincsearch/zincsearch/pkg/routes"
)

func main() {
	log.Info().Msgf("Starting Zinc %s", meta.Version)
	gin.SetMode(gin.ReleaseMode)
	app := gin.New()
	routes.Setup(app)

	server := &http.Server{
		Addr:    config.Global.ServerAddress + ":" + config.Global.ServerPort,
		Handler: app,
	}
	go func() {
		signals := make(chan os.Signal, 1)
		signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
		<-signals
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = server.Shutdown(ctx)
	}()
	log.Info().Msg("Listen on " + server.Addr)
	if err := server.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal().Err(err).Msg("server failed")
	}
	if err := core.ZINC_INDEX_LIST.Close(); err != nil {
		log.Error().Err(err).Msg("closing indexes")
	}
	if err := metadata.Close(); err != nil {
		log.Error().Err(err).Msg("closing metadata")
	}
}
