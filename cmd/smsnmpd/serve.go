package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/smsnmpd/smsnmpd/internal/config"
	"github.com/smsnmpd/smsnmpd/internal/logging"
	"github.com/smsnmpd/smsnmpd/node"
	"github.com/smsnmpd/smsnmpd/rmtp"
)

const defaultConfigPath = "/etc/smsnmpd/smsnmpd.toml"

// serve runs the node a configuration file describes until SIGINT or
// SIGTERM. The configuration is fully validated before any socket opens.
func serve(args []string, stderr io.Writer) int {
	fs := newFlagSet("smsnmpd", stderr)
	path := fs.String("config", defaultConfigPath, "configuration `file`")
	var v verbosity
	fs.Var(&v, "v", "raise the log level one step (repeatable)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "smsnmpd: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	log, err := logging.New(cfg.Log, int(v), stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	if !cfg.RMTP.Insecure && cfg.RMTP.KeyFile != "" {
		// Load leaves the key file alone so check-config works away from the
		// target host; a running node refuses a key others can read, before
		// it opens anything, as for any other configuration error.
		if err := config.CheckKeyFile(cfg.RMTP.KeyFile); err != nil {
			fmt.Fprintln(stderr, err)
			return exitConfig
		}
	}
	n, err := node.New(cfg, node.Options{Descr: sysDescr(cfg), Version: version, Logger: log,
		CrashAfterSave: os.Getenv(crashAfterSaveEnv)})
	if err != nil {
		log.WithError(err).Error("cannot start")
		if errors.Is(err, rmtp.ErrKeyFile) || errors.Is(err, config.ErrPassphrase) {
			return exitConfig // a key or passphrase file that cannot be used
		}
		return exitFail
	}
	running := cfg
	reload := func() {
		next, err := config.Load(*path)
		if err != nil {
			log.WithError(err).Error("SIGHUP: configuration not reloaded; keeping the running one")
			return
		}
		old, now, err := logging.Reload(log, next.Log, int(v))
		if err != nil {
			log.WithError(err).Error("SIGHUP: log settings not reloaded")
			return
		}
		var pending []string
		for _, key := range config.Diff(running, next) {
			if !config.Reloadable(key) {
				pending = append(pending, key)
			}
		}
		log.WithFields(logrus.Fields{"config": *path, "old_level": old.String(), "level": now.String()}).
			Info("SIGHUP: configuration reloaded; log level and format applied")
		if len(pending) > 0 {
			log.WithField("keys", strings.Join(pending, ",")).Warn("SIGHUP: these changes take effect at the next restart")
		}
	}
	return runUntilSignal(n, log, reload)
}

func sysDescr(cfg *config.Config) string {
	return fmt.Sprintf("smsnmpd %s, %s level %d node %d", version, cfg.Node.Role, cfg.Node.Level, cfg.Node.ID)
}

// crashAfterSaveEnv is a test-only knob, not a configuration key: an SE
// given KEY=VALUE in it kills itself right after it persisted that value
// (node.Options.CrashAfterSave; test/e2e's interrupted SET). Never set it
// on a production node.
const crashAfterSaveEnv = "SMSNMPD_TEST_CRASH_AFTER_SAVE"

// runUntilSignal runs n until SIGINT/SIGTERM (or a frontend failing),
// calling reload on SIGHUP, and stops it within the shutdown grace.
func runUntilSignal(n *node.Node, log logrus.FieldLogger, reload func()) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	ran := make(chan error, 1)
	go func() { ran <- n.Run(ctx) }()
	code := exitOK
	for done := false; !done; {
		select {
		case s := <-sigs:
			if s == syscall.SIGHUP {
				if reload != nil {
					reload()
				}
				continue
			}
			log.WithField("signal", s.String()).Info("stopping")
			done = true
		case err := <-ran:
			if err != nil {
				log.WithError(err).Error("stopping after a failure")
				code = exitFail
			}
			done = true
		}
	}
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), node.ShutdownGrace)
	defer scancel()
	if err := n.Shutdown(sctx); err != nil {
		log.WithError(err).Warn("unclean stop")
	}
	log.Info("stopped")
	return code
}
