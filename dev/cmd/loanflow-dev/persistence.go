package main

import (
	"fmt"

	"loanflow/dev/devstack"
)

// temporalPostgres reads the embedded server's store flags: nil keeps
// SQLite; postgres defaults to the server that holds loanflow's own database.
func temporalPostgres(persistence, url, sqliteFile string, shards int, databaseURL string) (*devstack.Postgres, error) {
	switch persistence {
	case "sqlite":
		if url != "" {
			return nil, fmt.Errorf("-temporal-db-url %q needs -temporal-persistence postgres", url)
		}
		return nil, nil
	case "postgres":
		if sqliteFile != "" {
			return nil, fmt.Errorf("-temporal-db %q is a SQLite file: not accepted with -temporal-persistence postgres", sqliteFile)
		}
		if shards < 1 || shards > 1024 {
			return nil, fmt.Errorf("-temporal-history-shards %d: accepted 1 to 1024", shards)
		}
		if url == "" {
			url = databaseURL
		}
		return &devstack.Postgres{URL: url, HistoryShards: int32(shards)}, nil
	default:
		return nil, fmt.Errorf("-temporal-persistence %q: accepted sqlite or postgres", persistence)
	}
}
