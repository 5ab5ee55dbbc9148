package main

import (
	"strings"
	"testing"
)

func TestTemporalPostgresFlags(t *testing.T) {
	const dbURL = "postgres://postgres@127.0.0.1:5432/loanflow?sslmode=disable"
	for _, tc := range []struct {
		name, persistence, url, file string
		shards                       int
		wantURL, wantErr             string
	}{
		{name: "sqlite default", persistence: "sqlite", shards: 4},
		{name: "postgres on DATABASE_URL's server", persistence: "postgres", shards: 4, wantURL: dbURL},
		{name: "postgres elsewhere", persistence: "postgres", url: "postgres://t@db:5432/postgres", shards: 8, wantURL: "postgres://t@db:5432/postgres"},
		{name: "url without postgres", persistence: "sqlite", url: "postgres://x@y/z", shards: 4, wantErr: "needs -temporal-persistence postgres"},
		{name: "sqlite file with postgres", persistence: "postgres", file: "t.db", shards: 4, wantErr: "-temporal-db \"t.db\""},
		{name: "zero shards", persistence: "postgres", shards: 0, wantErr: "-temporal-history-shards 0: accepted 1 to 1024"},
		{name: "unknown store", persistence: "mysql", shards: 4, wantErr: "accepted sqlite or postgres"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pg, err := temporalPostgres(tc.persistence, tc.url, tc.file, tc.shards, dbURL)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantURL == "" {
				if pg != nil {
					t.Fatalf("got postgres %+v, want sqlite (nil)", pg)
				}
				return
			}
			if pg == nil || pg.URL != tc.wantURL || int(pg.HistoryShards) != tc.shards {
				t.Fatalf("got %+v, want URL %s with %d shards", pg, tc.wantURL, tc.shards)
			}
		})
	}
}
