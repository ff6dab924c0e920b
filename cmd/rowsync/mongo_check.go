package main

import "github.com/rowsync/rowsync/config"

func mongoChecks(cfg *config.Config) []check { return nil }
