import DatabaseCtor from 'better-sqlite3';

/**
 * SQLite result codes that describe the moment, not the data: a full disk, a lock held by another
 * connection, an I/O hiccup. Retrying the same transaction later can succeed. Extended codes
 * (SQLITE_IOERR_WRITE, SQLITE_BUSY_SNAPSHOT…) share their primary code's prefix.
 */
const TRANSIENT = ['SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_FULL', 'SQLITE_IOERR', 'SQLITE_NOMEM', 'SQLITE_PROTOCOL'];

export type SqliteError = InstanceType<typeof DatabaseCtor.SqliteError>;

export const isTransientSqliteError = (e: unknown): e is SqliteError =>
  e instanceof DatabaseCtor.SqliteError && TRANSIENT.some((c) => e.code === c || e.code.startsWith(`${c}_`));
