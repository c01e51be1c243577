// Command ferretdb serves the MongoDB wire protocol for the test fixtures, on a SQLite directory
// (`-handler=sqlite`, the default) or a PostgreSQL database (`-handler=postgresql`), FerretDB v1's
// two backends. It embeds the published FerretDB v1 package because the project's own main panics
// when built with `go install` (it expects a generated version.txt).
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	handler := flag.String("handler", "sqlite", "backend: sqlite or postgresql")
	dir := flag.String("sqlite-dir", "data", "directory holding the SQLite databases (sqlite handler)")
	pgURL := flag.String("postgresql-url", "", "PostgreSQL connection string (postgresql handler)")
	flag.Parse()

	config := ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: *listen},
		Handler:  *handler,
	}
	switch *handler {
	case "sqlite":
		if err := os.MkdirAll(*dir, 0o755); err != nil {
			log.Fatal(err)
		}
		config.SQLiteURL = "file:" + *dir + "/"
	case "postgresql":
		if *pgURL == "" {
			log.Fatal("-handler=postgresql needs -postgresql-url")
		}
		config.PostgreSQLURL = *pgURL
	default:
		log.Fatalf("unknown handler %q (sqlite or postgresql)", *handler)
	}
	db, err := ferretdb.New(&config)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := db.Run(ctx); err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
}
