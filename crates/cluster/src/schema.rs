//! The PostgreSQL schema, created and migrated by mneme itself when a node starts.
//!
//! `mneme_schema` records the version applied; each migration runs once, in order, in one
//! transaction under an advisory lock, so that nodes starting together migrate once.

/// The migrations, in order; migration `i` brings the schema to version `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the pattern engine's store of record.
    r#"
    CREATE TABLE mneme_kb (
        kb_id text PRIMARY KEY,
        -- The last change's version (0: nothing committed yet).
        version bigint NOT NULL DEFAULT 0,
        patterns bigint NOT NULL DEFAULT 0,
        distinct_symbols bigint NOT NULL DEFAULT 0,
        total_symbols_in_patterns bigint NOT NULL DEFAULT 0,
        total_unique_patterns bigint NOT NULL DEFAULT 0,
        vectors bigint NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE mneme_patterns (
        kb_id text NOT NULL,
        -- Bare 40-hex-digit SHA-1 (KATO's name without "PTRN|").
        name text NOT NULL,
        -- Position in the node's arena: replicas load patterns in this order.
        position bigint NOT NULL,
        events json NOT NULL,
        length integer NOT NULL,
        frequency bigint NOT NULL,
        emotives json NOT NULL,
        metadata json NOT NULL,
        PRIMARY KEY (kb_id, name)
    );
    CREATE TABLE mneme_symbols (
        kb_id text NOT NULL,
        name text NOT NULL,
        frequency bigint NOT NULL,
        pattern_member_frequency bigint NOT NULL,
        PRIMARY KEY (kb_id, name)
    );
    CREATE TABLE mneme_affinity (
        kb_id text NOT NULL,
        symbol text NOT NULL,
        -- [[emotive, decimal string], ...], as KATO's Redis hash holds them.
        sums json NOT NULL,
        PRIMARY KEY (kb_id, symbol)
    );
    CREATE TABLE mneme_vectors (
        kb_id text NOT NULL,
        name text NOT NULL,
        position bigserial,
        vector float8[] NOT NULL,
        PRIMARY KEY (kb_id, name)
    );
    CREATE TABLE mneme_finalized (
        kb_id text NOT NULL,
        name text NOT NULL,
        entropy float8 NOT NULL,
        normalized_entropy float8 NOT NULL,
        global_normalized_entropy float8 NOT NULL,
        tf json NOT NULL,
        PRIMARY KEY (kb_id, name)
    );
    CREATE TABLE mneme_changes (
        kb_id text NOT NULL,
        version bigint NOT NULL,
        -- postcard of mneme_seq::node::Change.
        change bytea NOT NULL,
        -- The request that made the change (a retried request finds it here).
        request_key text,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (kb_id, version)
    );
    CREATE UNIQUE INDEX mneme_changes_request ON mneme_changes (kb_id, request_key)
        WHERE request_key IS NOT NULL;
    "#,
    // 2: the knowledge base's projects: the registry (projects, API keys, document metadata)
    // and each project's documents as an ordered log.
    r#"
    CREATE TABLE mneme_registry (
        key bytea PRIMARY KEY,
        value bytea NOT NULL
    );
    CREATE TABLE mneme_kb_generation (
        project_id text PRIMARY KEY,
        generation bigint NOT NULL
    );
    CREATE TABLE mneme_kb_documents (
        project_id text NOT NULL,
        generation bigint NOT NULL,
        position integer NOT NULL,
        doc_id text NOT NULL,
        path text NOT NULL,
        kb_dir text NOT NULL,
        name text NOT NULL,
        -- mneme_kb::convert::Format as JSON ("Markdown", ...).
        format text NOT NULL,
        content bytea NOT NULL,
        PRIMARY KEY (project_id, generation, position)
    );
    "#,
    // 3: API v1's knowledge base: the ordered log of scans every node's index replays.
    r#"
    CREATE TABLE mneme_kb_scans (
        generation bigint PRIMARY KEY,
        -- mneme_kb::Scan::to_bytes: the walk and the bytes of every changed file.
        scan bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    "#,
];

/// The advisory lock key that serialises migrations (any fixed number unlikely to clash).
pub(crate) const MIGRATION_LOCK: i64 = 0x6d6e_656d_6501;

/// Brings the schema up to date; returns the version it is at.
pub(crate) async fn migrate(client: &mut tokio_postgres::Client) -> Result<usize, String> {
    let tx = client
        .transaction()
        .await
        .map_err(|e| format!("starting the migration: {e}"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| format!("locking the schema: {e}"))?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS mneme_schema (version integer NOT NULL)")
        .await
        .map_err(|e| format!("creating mneme_schema: {e}"))?;
    let current: i32 = match tx
        .query_opt("SELECT version FROM mneme_schema", &[])
        .await
        .map_err(|e| format!("reading mneme_schema: {e}"))?
    {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO mneme_schema (version) VALUES (0)", &[])
                .await
                .map_err(|e| format!("initialising mneme_schema: {e}"))?;
            0
        }
    };
    let current = current as usize;
    if current > MIGRATIONS.len() {
        return Err(format!(
            "the database's mneme schema is version {current}, newer than this binary knows \
             ({}): upgrade this node to the version the other nodes run",
            MIGRATIONS.len()
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        tx.batch_execute(sql)
            .await
            .map_err(|e| format!("schema migration {}: {e}", i + 1))?;
    }
    tx.execute(
        "UPDATE mneme_schema SET version = $1",
        &[&(MIGRATIONS.len() as i32)],
    )
    .await
    .map_err(|e| format!("recording the schema version: {e}"))?;
    tx.commit()
        .await
        .map_err(|e| format!("committing the migration: {e}"))?;
    Ok(MIGRATIONS.len())
}
