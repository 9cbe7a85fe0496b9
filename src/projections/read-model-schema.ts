import type { Database } from 'better-sqlite3';

/**
 * Read-model tables. A suffix names a generation: '' is live, '_rebuild' is built beside it
 * during a rebuild and renamed over the live one when caught up.
 */
export const createReadModelTables = (db: Database, suffix: string): void => {
  db.exec(`
    CREATE TABLE IF NOT EXISTS node_state${suffix} (
      node_id TEXT PRIMARY KEY,
      state TEXT NOT NULL,
      position INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS nodes${suffix} (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      status TEXT NOT NULL,
      provider TEXT NOT NULL,
      server_type TEXT NOT NULL,
      location TEXT NOT NULL,
      image TEXT NOT NULL,
      ssh_user TEXT NOT NULL,
      ssh_port INTEGER NOT NULL,
      provider_server_id TEXT,
      ipv4 TEXT,
      ipv6 TEXT,
      current_job_id TEXT,
      last_job_id TEXT,
      updated_at TEXT NOT NULL,
      last_position INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS jobs${suffix} (
      id TEXT PRIMARY KEY,
      node_id TEXT NOT NULL,
      kind TEXT NOT NULL,
      status TEXT NOT NULL,
      step TEXT NOT NULL,
      attempt INTEGER NOT NULL,
      max_attempts INTEGER NOT NULL,
      error_code TEXT,
      error_message TEXT,
      run_after TEXT,
      requested_at TEXT NOT NULL,
      started_at TEXT,
      finished_at TEXT,
      updated_at TEXT NOT NULL,
      last_position INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS jobs${suffix}_node ON jobs${suffix}(node_id);
  `);
};

export const dropReadModelTables = (db: Database, suffix: string): void => {
  db.exec(`DROP TABLE IF EXISTS node_state${suffix}; DROP TABLE IF EXISTS nodes${suffix}; DROP TABLE IF EXISTS jobs${suffix};`);
};

export const renameReadModelTables = (db: Database, from: string, to: string): void => {
  for (const t of ['node_state', 'nodes', 'jobs']) db.exec(`ALTER TABLE ${t}${from} RENAME TO ${t}${to}`);
  // Index names are not renamed with their table; recreate under the live name.
  db.exec(`DROP INDEX IF EXISTS jobs${from}_node; CREATE INDEX IF NOT EXISTS jobs${to}_node ON jobs${to}(node_id);`);
};

export const createCheckpointTable = (db: Database): void => {
  db.exec(`CREATE TABLE IF NOT EXISTS projection_checkpoints (name TEXT PRIMARY KEY, position INTEGER NOT NULL)`);
};
