package main

import (
	"errors"

	"github.com/chainstore/chainstore/server"
	"github.com/chainstore/chainstore/ui"
)

// mountUI serves the web UI (package ui) under /ui/ on the HTTP API's
// port; without --http-addr there is no UI.
func mountUI(srv *server.Server, cfg server.Config) error {
	if cfg.HTTPAddr == "" {
		return nil
	}
	if err := srv.Mount(ui.Prefix, ui.Handler()); err != nil {
		return errors.Join(err, srv.Stop(false))
	}
	return nil
}
