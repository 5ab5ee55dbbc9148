package devstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/persistence"
	postgresplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
	serverschema "go.temporal.io/server/schema"
	pgschema "go.temporal.io/server/schema/postgresql/v12"
	sqliteschema "go.temporal.io/server/schema/sqlite"
)

// Postgres keeps the embedded server's state in Postgres instead of SQLite:
// history, matching and visibility writes then run on many connections in
// parallel rather than through SQLite's single writer, and the state
// survives restarts.
type Postgres struct {
	// URL is a postgres:// URL; its user, password, host, port and sslmode
	// are used, and its database is the one connected to when the server's
	// databases have to be created.
	URL string
	// Database and VisibilityDatabase hold the server's state and its
	// visibility (list) store; default "temporal" and "temporal_visibility".
	// They are created, with Temporal's schema, when missing.
	Database           string
	VisibilityDatabase string
	// HistoryShards is the number of history shards, fixed when the
	// databases are created (a later start must use the same); default 4.
	// Each shard serializes its workflows' history writes, so more shards
	// let more applications write at once.
	HistoryShards int32
	// MaxConns bounds each database's connection pool per server service;
	// default 20.
	MaxConns int
}

// Postgres store names in the server config.
const (
	pgDefaultStore    = "postgres-default"
	pgVisibilityStore = "postgres-visibility"
)

// schema files inside go.temporal.io/server/schema, embedded in the binary.
const (
	pgMainSchema       = "postgresql/v12/temporal/schema.sql"
	pgVisibilitySchema = "postgresql/v12/visibility/schema.sql"
)

// configure points the server's persistence at Postgres, creating the
// databases, their schema and the namespace when missing.
func (p Postgres) configure(ctx context.Context, conf *config.Persistence, o *Options) error {
	if p.Database == "" {
		p.Database = "temporal"
	}
	if p.VisibilityDatabase == "" {
		p.VisibilityDatabase = "temporal_visibility"
	}
	if p.HistoryShards == 0 {
		p.HistoryShards = 4
	}
	if p.HistoryShards < 1 || p.HistoryShards > 1024 {
		return fmt.Errorf("postgres history shards %d: accepted 1 to 1024", p.HistoryShards)
	}
	if p.MaxConns == 0 {
		p.MaxConns = 20
	}
	main, err := p.sqlConfig(p.Database)
	if err != nil {
		return err
	}
	vis, err := p.sqlConfig(p.VisibilityDatabase)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, db := range []struct{ name, schemaFile, version string }{
		{p.Database, pgMainSchema, pgschema.Version},
		{p.VisibilityDatabase, pgVisibilitySchema, pgschema.VisibilityVersion},
	} {
		if err := p.ensureDatabase(ctx, db.name); err != nil {
			return err
		}
		if err := p.ensureSchema(ctx, db.name, db.schemaFile, db.version); err != nil {
			return err
		}
	}
	ns, err := sqliteschema.NewNamespaceConfig("active", o.Namespace, false, o.SearchAttributes)
	if err != nil {
		return fmt.Errorf("namespace %q: %w", o.Namespace, err)
	}
	// CreateNamespaces works through the generic SQL layer, so it serves
	// Postgres as well as SQLite; an existing namespace is left as it is.
	if err := sqliteschema.CreateNamespaces(main, ns); err != nil {
		return fmt.Errorf("create namespace %q in postgres database %s: %w", o.Namespace, p.Database, err)
	}
	conf.DefaultStore = pgDefaultStore
	conf.VisibilityStore = pgVisibilityStore
	conf.NumHistoryShards = p.HistoryShards
	conf.DataStores = map[string]config.DataStore{pgDefaultStore: {SQL: main}, pgVisibilityStore: {SQL: vis}}
	return nil
}

// sqlConfig is the server's connection to one database, through pgx.
func (p Postgres) sqlConfig(database string) (*config.SQL, error) {
	u, err := url.Parse(p.URL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return nil, fmt.Errorf("temporal postgres URL %q: accepted postgres://user[:password]@host[:port]/database[?sslmode=...]", redact(p.URL))
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "5432"
	}
	pw, _ := u.User.Password()
	attrs := map[string]string{}
	if m := u.Query().Get("sslmode"); m != "" {
		attrs["sslmode"] = m
	}
	return &config.SQL{
		PluginName:         postgresplugin.PluginNamePGX,
		User:               u.User.Username(),
		Password:           pw,
		ConnectAddr:        net.JoinHostPort(host, port),
		DatabaseName:       database,
		ConnectAttributes:  attrs,
		MaxConns:           p.MaxConns,
		MaxIdleConns:       p.MaxConns,
		MaxConnLifetime:    time.Hour,
		ConnectProtocol:    "tcp",
		TaskScanPartitions: 4,
	}, nil
}

// ensureDatabase creates the database unless it exists; two processes
// racing to create it both succeed.
func (p Postgres) ensureDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, p.URL)
	if err != nil {
		return fmt.Errorf("connect to postgres at %s to create database %s: %w", redact(p.URL), name, err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "42P04") { // duplicate_database
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// ensureSchema installs Temporal's schema and its version record in one
// transaction, unless the version record is already there. A database at
// another version is refused: upgrading it is temporal-sql-tool's job.
func (p Postgres) ensureSchema(ctx context.Context, database, schemaFile, version string) error {
	u, _ := url.Parse(p.URL) // parsed by sqlConfig already
	u.Path = "/" + database
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return fmt.Errorf("connect to postgres database %s: %w", database, err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin schema setup of %s: %w", database, err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	// Serializes concurrent first starts on the same database.
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(7233)"); err != nil {
		return fmt.Errorf("lock schema setup of %s: %w", database, err)
	}
	var versioned bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass('schema_version') IS NOT NULL").Scan(&versioned); err != nil {
		return fmt.Errorf("look up the schema version table of %s: %w", database, err)
	}
	var current string
	if versioned {
		err := tx.QueryRow(ctx, "SELECT curr_version FROM schema_version WHERE version_partition = 0 AND db_name = $1", database).Scan(&current)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("read schema version of %s: %w", database, err)
		}
	}
	switch current {
	case version:
		return nil
	case "":
	default:
		return fmt.Errorf("postgres database %s has temporal schema version %s, this server needs %s: upgrade it with temporal-sql-tool update-schema, or use another database", database, current, version)
	}
	raw, err := fs.ReadFile(serverschema.Assets(), schemaFile)
	if err != nil {
		return fmt.Errorf("read embedded schema %s: %w", schemaFile, err)
	}
	stmts, err := persistence.LoadAndSplitQueryFromReaders([]io.Reader{bytes.NewReader(raw)})
	if err != nil {
		return fmt.Errorf("parse embedded schema %s: %w", schemaFile, err)
	}
	// The version tables are the ones temporal-sql-tool keeps, so the tool
	// can upgrade a database set up here.
	stmts = append(stmts,
		`CREATE TABLE IF NOT EXISTS schema_version(version_partition INT not null, db_name VARCHAR(255) not null, creation_time TIMESTAMP, curr_version VARCHAR(64), min_compatible_version VARCHAR(64), PRIMARY KEY (version_partition, db_name))`,
		`CREATE TABLE IF NOT EXISTS schema_update_history(version_partition INT not null, year int not null, month int not null, update_time TIMESTAMP not null, description VARCHAR(255), manifest_md5 VARCHAR(64), new_version VARCHAR(64), old_version VARCHAR(64), PRIMARY KEY (version_partition, year, month, update_time))`,
	)
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("set up temporal schema in %s: %w", database, err)
		}
	}
	now := time.Now().UTC()
	if _, err := tx.Exec(ctx, `INSERT INTO schema_version(version_partition, db_name, creation_time, curr_version, min_compatible_version) VALUES (0, $1, $2, $3, $3)`,
		database, now, version); err != nil {
		return fmt.Errorf("record schema version of %s: %w", database, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_update_history(version_partition, year, month, update_time, old_version, new_version, manifest_md5, description) VALUES (0, $1, $2, $3, '0', $4, '', 'initial version')`,
		now.Year(), int(now.Month()), now, version); err != nil {
		return fmt.Errorf("record schema history of %s: %w", database, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit schema setup of %s: %w", database, err)
	}
	return nil
}

// redact hides a URL's password in messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
