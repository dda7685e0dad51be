// Command fhirgate is the FHIR façade gateway.
//
//	fhirgate serve --config routes.yaml   run the gateway
//	fhirgate check routes.yaml            check a configuration; exit 0 or print errors and exit 1
//	fhirgate validate --version stu3|r4 FILE…       base-validate resources (JSON or XML)
//	fhirgate convert --version stu3|r4 --to json|xml [--force] FILE   convert a resource
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fhirgate/fhirgate/config"
	"github.com/fhirgate/fhirgate/gateway"
	"github.com/fhirgate/fhirgate/gateway/linebuf"
	"github.com/fhirgate/fhirgate/gateway/logline"
	"github.com/fhirgate/fhirgate/gateway/memtrim"
)

const usage = `usage:
  fhirgate serve [--config routes.yaml]   run the gateway
  fhirgate check FILE                     check a configuration file
  fhirgate validate --version stu3|r4 [--profiles DIR] [--package TGZ] [--profile SD] [--as URL] FILE...
                                          validate resources; one OperationOutcome per file
  fhirgate convert --version stu3|r4 --to json|xml [--force] FILE
                                          convert a resource between JSON and XML
                                          (--force: an invalid one too, exit 2)
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "check":
		return check(args[1:], stdout, stderr)
	case "validate":
		return validate(args[1:], stdout, stderr)
	case "convert":
		return convert(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "fhirgate: unknown command %q\n%s", args[0], usage)
	return 2
}

func check(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if _, err := config.Load(args[0]); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", args[0])
	return 0
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "routes.yaml", "configuration file")
	watch := fs.Duration("watch", 200*time.Millisecond, "reload the configuration once it or a file it reads has changed and been quiet this long; 0 disables (SIGHUP always reloads)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	var level slog.Level
	level.UnmarshalText([]byte(cfg.Log.Level))
	out := linebuf.New(os.Stdout, 64<<10, cfg.Log.FlushInterval.D())
	defer out.Close()
	// The access log's lines are written by hand (logline), byte for byte
	// as slog's JSON handler writes the rest.
	log := slog.New(logline.New(out, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)
	srv, err := gateway.NewServer(cfg, log)
	if err != nil {
		log.Error("cannot start", "error", err.Error())
		return 1
	}
	srv.WatchDebounce = *watch
	// Started: what only the start needed goes back to the kernel — the
	// heap garbage of loading, the binary's pages only the start read
	// (memtrim).
	if released, err := memtrim.AfterStart(); err != nil {
		log.Warn("start-up pages of the binary not released", "error", err.Error())
	} else {
		log.Debug("start-up pages of the binary released", "kib", released>>10)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			srv.Reload("SIGHUP")
		}
	}()
	if err := srv.Run(ctx); err != nil {
		log.Error("server stopped", "error", err.Error())
		return 1
	}
	log.Info("stopped")
	return 0
}
