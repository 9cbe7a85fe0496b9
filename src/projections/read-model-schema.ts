import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import DatabaseCtor, { type Database } from 'better-sqlite3';
import { columnDeclarations, jobColumns, nodeColumns } from './read-model-views.ts';

/** The tables of one generation of the read model. */
const TABLES = ['node_state', 'nodes', 'jobs', 'broken_nodes'] as const;

/**
 * Read-model tables. A suffix names a generation: '' is live, '_rebuild' is built beside it
 * during a rebuild and renamed over the live one when caught up. `broken_nodes` holds the nodes
 * whose log has a message that does not decode; it belongs to the generation, so a rebuild
 * finds the same ones again.
 */
export const createReadModelTables = (db: Database, suffix: string): void => {
  db.exec(`
    CREATE TABLE IF NOT EXISTS node_state${suffix} (
      node_id TEXT PRIMARY KEY,
      state TEXT NOT NULL,
      position INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS nodes${suffix} (
      ${columnDeclarations(nodeColumns)}
    );
    CREATE TABLE IF NOT EXISTS jobs${suffix} (
      ${columnDeclarations(jobColumns)}
    );
    CREATE INDEX IF NOT EXISTS jobs${suffix}_node ON jobs${suffix}(node_id);
    CREATE TABLE IF NOT EXISTS broken_nodes${suffix} (
      node_id TEXT PRIMARY KEY,
      position INTEGER NOT NULL,
      reason TEXT NOT NULL,
      stored_at TEXT NOT NULL,
      skipped INTEGER NOT NULL
    );
  `);
  addMissingColumns(db, `nodes${suffix}`, nodeColumns);
  addMissingColumns(db, `jobs${suffix}`, jobColumns);
};

/**
 * Migrates a read model made by an older version: view columns added since are nullable, so they
 * are added in place and stay null until the node's next event or a rebuild fills them.
 */
const addMissingColumns = (db: Database, table: string, cols: Record<string, { column: string; sql: string }>): void => {
  const present = new Set((db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>).map((c) => c.name));
  for (const c of Object.values(cols)) {
    if (present.has(c.column)) continue;
    if (/NOT NULL|PRIMARY KEY/.test(c.sql)) throw new Error(`read model table ${table} lacks the required column ${c.column}: rebuild it`);
    db.exec(`ALTER TABLE ${table} ADD COLUMN ${c.column} ${c.sql}`);
  }
};

export const dropReadModelTables = (db: Database, suffix: string): void => {
  for (const t of TABLES) db.exec(`DROP TABLE IF EXISTS ${t}${suffix}`);
};

export const renameReadModelTables = (db: Database, from: string, to: string): void => {
  for (const t of TABLES) db.exec(`ALTER TABLE ${t}${from} RENAME TO ${t}${to}`);
  // Index names are not renamed with their table; recreate under the live name.
  db.exec(`DROP INDEX IF EXISTS jobs${from}_node; CREATE INDEX IF NOT EXISTS jobs${to}_node ON jobs${to}(node_id);`);
};

export const createCheckpointTable = (db: Database): void => {
  db.exec(`CREATE TABLE IF NOT EXISTS projection_checkpoints (name TEXT PRIMARY KEY, position INTEGER NOT NULL)`);
};

export const openReadModelDb = (dbPath: string): Database => {
  if (dbPath !== ':memory:') mkdirSync(dirname(dbPath), { recursive: true });
  const db = new DatabaseCtor(dbPath);
  db.pragma('journal_mode = WAL');
  // NORMAL is durable at transaction boundaries in WAL mode up to a power loss; the log can replay the rest.
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  createCheckpointTable(db);
  createReadModelTables(db, '');
  return db;
};
