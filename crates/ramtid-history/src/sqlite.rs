//! The SQLite backend: one file in the data directory, WAL mode.

use super::{Backend, CalcId, Calculation, HistoryError, Result, StoredCalculation, COLUMNS};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

/// Schema migrations, in order: entry i brings the schema to version i + 1. Never edit one
/// that has shipped; append.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the calculations. AUTOINCREMENT so that an erased calculation's id is never handed
    // out again (an old link must not show someone else's calculation).
    "CREATE TABLE calculations (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        case_id       TEXT    NOT NULL,
        created_ms    INTEGER NOT NULL,
        caller        TEXT    NOT NULL,
        model_name    TEXT    NOT NULL,
        model_version TEXT    NOT NULL,
        needs_json    TEXT    NOT NULL,
        result_json   TEXT    NOT NULL,
        weekly_min    REAL    NOT NULL
    );
    CREATE INDEX calculations_case ON calculations (case_id, created_ms, id);
    CREATE INDEX calculations_created ON calculations (created_ms);",
    // 2: the team or provider the order goes to, for re-budgeting by team.
    "ALTER TABLE calculations ADD COLUMN unit_id TEXT NOT NULL DEFAULT '';",
    // 3: results as protobuf (result_json is then ''), a third of the JSON's size.
    "ALTER TABLE calculations ADD COLUMN result_pb BLOB;",
];

pub(crate) struct SqliteBackend {
    conn: Connection,
}

impl SqliteBackend {
    pub(crate) fn open(path: &Path) -> Result<SqliteBackend> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| HistoryError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // Always FULL here: calculations are acknowledged from the journal, and a journal
        // segment is deleted once the writer's commit of its records returns, so that commit
        // must be on disk. The writer commits a few times a second, so it costs little.
        // (`?synchronous=` on the URL sets when the journal acknowledges; see journal.rs.)
        conn.pragma_update(None, "synchronous", "FULL")?;
        // The writer commits thousands of calculations at a time, touching most leaves of the
        // case index: with SQLite's default 2 MiB page cache it spilled to the WAL mid-commit
        // and read pages back (2.5 % of Estimate's CPU under load). 32 MiB holds the index of
        // ~700 000 cases; readers keep the default.
        conn.pragma_update(None, "cache_size", -32 * 1024)?;
        // Checkpoint every ~40 MiB of WAL rather than 4: a leaf rewritten by ten commits is
        // copied into the database once, not ten times.
        conn.pragma_update(None, "wal_autocheckpoint", 10_000)?;
        // Erasure must erase: overwrite deleted rows instead of leaving them in free pages.
        conn.pragma_update(None, "secure_delete", "ON")?;
        Ok(SqliteBackend { conn })
    }
}

fn row_to_stored(row: &Row<'_>) -> rusqlite::Result<StoredCalculation> {
    Ok(StoredCalculation {
        id: row.get(0)?,
        calc: Calculation {
            case_id: row.get(1)?,
            created_ms: row.get(2)?,
            caller: row.get(3)?,
            model_name: row.get(4)?,
            model_version: row.get(5)?,
            needs_json: row.get(6)?,
            result: super::StoredResult::from_columns(row.get(7)?, row.get(10)?),
            weekly_min: row.get(8)?,
            unit_id: row.get(9)?,
        },
    })
}

impl SqliteBackend {
    /// Inserts `rows` in ONE transaction, each with its id or, for `None`, the next one
    /// SQLite gives out; an id already there is skipped. The ids, in order.
    fn insert_rows<'c>(
        &mut self,
        rows: impl Iterator<Item = (Option<CalcId>, &'c Calculation)>,
    ) -> Result<Vec<CalcId>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut ids = Vec::with_capacity(rows.size_hint().0);
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO calculations (id, case_id, created_ms, caller, model_name,
                     model_version, needs_json, result_json, weekly_min, unit_id, result_pb)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (id) DO NOTHING",
            )?;
            for (id, c) in rows {
                let (result_json, result_pb) = c.result.columns();
                stmt.execute(params![
                    id,
                    c.case_id,
                    c.created_ms,
                    c.caller,
                    c.model_name,
                    c.model_version,
                    c.needs_json,
                    result_json,
                    c.weekly_min,
                    c.unit_id,
                    result_pb
                ])?;
                ids.push(id.unwrap_or_else(|| tx.last_insert_rowid()));
            }
        }
        tx.commit()?;
        Ok(ids)
    }
}

impl Backend for SqliteBackend {
    fn migrate(&mut self) -> Result<()> {
        // IMMEDIATE: take the write lock first, so that two processes opening the same file
        // cannot both apply a migration.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
        let current: i64 = tx.query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )?;
        let known = MIGRATIONS.len() as i64;
        if current > known {
            return Err(HistoryError::SchemaTooNew {
                found: current,
                known,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [i as i64 + 1],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn insert_batch(&mut self, calcs: &[&Calculation]) -> Result<Vec<CalcId>> {
        // No id: SQLite gives out the next one (AUTOINCREMENT).
        self.insert_rows(calcs.iter().map(|c| (None, *c)))
    }

    fn list(
        &mut self,
        case_id: &str,
        before: Option<(i64, CalcId)>,
        limit: usize,
    ) -> Result<Vec<StoredCalculation>> {
        let (created, id) = before.unwrap_or((i64::MAX, i64::MAX));
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM calculations
             WHERE case_id = ?1 AND (created_ms, id) < (?2, ?3)
             ORDER BY created_ms DESC, id DESC LIMIT ?4"
        ))?;
        let rows = stmt.query_map(params![case_id, created, id, limit as i64], row_to_stored)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn get(&mut self, id: CalcId) -> Result<Option<StoredCalculation>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM calculations WHERE id = ?1"))?;
        Ok(stmt.query_row([id], row_to_stored).optional()?)
    }

    fn scan_latest(
        &mut self,
        chunk: usize,
        sink: &mut dyn FnMut(Vec<StoredCalculation>) -> bool,
    ) -> Result<()> {
        // One statement, one read snapshot (WAL): writers carry on meanwhile.
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM (
                 SELECT *, row_number() OVER (PARTITION BY case_id
                                              ORDER BY created_ms DESC, id DESC) AS rn
                 FROM calculations)
             WHERE rn = 1 ORDER BY case_id"
        ))?;
        let mut rows = stmt.query([])?;
        let mut buf = Vec::with_capacity(chunk);
        while let Some(row) = rows.next()? {
            buf.push(row_to_stored(row)?);
            if buf.len() == chunk && !sink(std::mem::replace(&mut buf, Vec::with_capacity(chunk))) {
                return Ok(());
            }
        }
        if !buf.is_empty() {
            sink(buf);
        }
        Ok(())
    }

    fn insert_with_ids(&mut self, rows: &[(CalcId, &Calculation)]) -> Result<()> {
        self.insert_rows(rows.iter().map(|(id, c)| (Some(*id), *c)))
            .map(drop)
    }

    fn last_id(&mut self) -> Result<CalcId> {
        // sqlite_sequence remembers ids whose rows were erased (AUTOINCREMENT).
        Ok(self.conn.query_row(
            "SELECT max(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'calculations'), 0),
                        COALESCE((SELECT max(id) FROM calculations), 0))",
            [],
            |r| r.get(0),
        )?)
    }

    fn erase_case(&mut self, case_id: &str) -> Result<u64> {
        Ok(self
            .conn
            .execute("DELETE FROM calculations WHERE case_id = ?1", [case_id])? as u64)
    }

    fn purge_older_than(&mut self, created_ms: i64) -> Result<u64> {
        Ok(self.conn.execute(
            "DELETE FROM calculations WHERE created_ms < ?1",
            [created_ms],
        )? as u64)
    }
}
