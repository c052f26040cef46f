//! The PostgreSQL backend, for several replicas sharing one history. The `postgres` crate is
//! synchronous (it runs a small tokio runtime of its own inside), so it is only ever called
//! from the store's dedicated threads, never from a tokio worker.

use super::{Backend, CalcId, Calculation, HistoryError, Result, StoredCalculation, COLUMNS};
use postgres::{Client, NoTls, Row};

/// Schema migrations, in order: entry i brings the schema to version i + 1. Never edit one
/// that has shipped; append. (Same schema as SQLite's, in PostgreSQL's types.)
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the calculations; an identity column never hands an erased id out again.
    "CREATE TABLE calculations (
        id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        case_id       TEXT COLLATE \"C\" NOT NULL, -- byte order, as in SQLite
        created_ms    BIGINT           NOT NULL,
        caller        TEXT             NOT NULL,
        model_name    TEXT             NOT NULL,
        model_version TEXT             NOT NULL,
        needs_json    TEXT             NOT NULL,
        result_json   TEXT             NOT NULL,
        weekly_min    DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX calculations_case ON calculations (case_id, created_ms, id);
    CREATE INDEX calculations_created ON calculations (created_ms);",
    // 2: the team or provider the order goes to, for re-budgeting by team.
    "ALTER TABLE calculations ADD COLUMN unit_id TEXT NOT NULL DEFAULT '';",
    // 3: results as protobuf (result_json is then ''), a third of the JSON's size.
    "ALTER TABLE calculations ADD COLUMN result_pb BYTEA;",
];

/// Advisory lock key held while migrating, so that replicas starting together migrate once.
const MIGRATION_LOCK: i64 = 0x7261_6d74_6964; // "ramtid"

pub(crate) struct PgBackend {
    client: Client,
}

impl PgBackend {
    /// Connects over TLS when the URL names a CA (`sslrootcert=`; see `pg_tls`), else in
    /// clear text (a local socket or a private network), which `sslmode=require` refuses.
    pub(crate) fn open(url: &str) -> Result<PgBackend> {
        let (url, root) = super::pg_tls::split_root_cert(url);
        let client = match root {
            Some(ca) => {
                // A CA is named to verify the server: never fall back to clear text
                // (tokio-postgres's default, `prefer`, would).
                let url = super::pg_tls::with_tls_required(&url)?;
                Client::connect(&url, super::pg_tls::connector(&ca)?)?
            }
            None if super::pg_tls::requires_tls(&url) => {
                return Err(HistoryError::PgTls(
                    "sslmode=require needs sslrootcert=<CA certificates, PEM> in the URL: the server's certificate is verified against them".into(),
                ))
            }
            None => Client::connect(&url, NoTls)?,
        };
        Ok(PgBackend { client })
    }
}

fn row_to_stored(row: &Row) -> Result<StoredCalculation> {
    Ok(StoredCalculation {
        id: row.try_get(0)?,
        calc: Calculation {
            case_id: row.try_get(1)?,
            created_ms: row.try_get(2)?,
            caller: row.try_get(3)?,
            model_name: row.try_get(4)?,
            model_version: row.try_get(5)?,
            needs_json: row.try_get(6)?,
            result: super::StoredResult::from_columns(row.try_get(7)?, row.try_get(10)?),
            weekly_min: row.try_get(8)?,
            unit_id: row.try_get(9)?,
        },
    })
}

impl Backend for PgBackend {
    fn migrate(&mut self) -> Result<()> {
        let mut tx = self.client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
        let current: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_version",
                &[],
            )?
            .try_get(0)?;
        let known = MIGRATIONS.len() as i64;
        if current > known {
            return Err(HistoryError::SchemaTooNew {
                found: current,
                known,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            tx.batch_execute(sql)?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES ($1)",
                &[&(i as i64 + 1)],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn insert_batch(&mut self, calcs: &[&Calculation]) -> Result<Vec<CalcId>> {
        // Two round trips per batch whatever its size: take the ids, then one INSERT of all
        // rows from arrays (one statement is one transaction: all rows commit or none).
        let n = calcs.len() as i64;
        let mut ids: Vec<CalcId> = self
            .client
            .query(
                "SELECT nextval(pg_get_serial_sequence('calculations', 'id'))
                 FROM generate_series(1, $1::BIGINT)",
                &[&n],
            )?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        ids.sort_unstable();
        let col = |f: fn(&Calculation) -> &String| calcs.iter().map(|c| f(c)).collect::<Vec<_>>();
        let created: Vec<i64> = calcs.iter().map(|c| c.created_ms).collect();
        let weekly: Vec<f64> = calcs.iter().map(|c| c.weekly_min).collect();
        self.client.execute(
            "INSERT INTO calculations (id, case_id, created_ms, caller, model_name,
                 model_version, needs_json, result_json, weekly_min, unit_id, result_pb)
             OVERRIDING SYSTEM VALUE
             SELECT * FROM unnest($1::BIGINT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[],
                 $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::DOUBLE PRECISION[],
                 $10::TEXT[], $11::BYTEA[])",
            &[
                &ids,
                &col(|c| &c.case_id),
                &created,
                &col(|c| &c.caller),
                &col(|c| &c.model_name),
                &col(|c| &c.model_version),
                &col(|c| &c.needs_json),
                &calcs
                    .iter()
                    .map(|c| c.result.columns().0)
                    .collect::<Vec<_>>(),
                &weekly,
                &col(|c| &c.unit_id),
                &calcs
                    .iter()
                    .map(|c| c.result.columns().1)
                    .collect::<Vec<_>>(),
            ],
        )?;
        Ok(ids)
    }

    fn list(
        &mut self,
        case_id: &str,
        before: Option<(i64, CalcId)>,
        limit: usize,
    ) -> Result<Vec<StoredCalculation>> {
        let (created, id) = before.unwrap_or((i64::MAX, i64::MAX));
        let rows = self.client.query(
            &format!(
                "SELECT {COLUMNS} FROM calculations
                 WHERE case_id = $1 AND (created_ms, id) < ($2, $3)
                 ORDER BY created_ms DESC, id DESC LIMIT $4"
            ),
            &[&case_id, &created, &id, &(limit as i64)],
        )?;
        rows.iter().map(row_to_stored).collect()
    }

    fn get(&mut self, id: CalcId) -> Result<Option<StoredCalculation>> {
        let row = self.client.query_opt(
            &format!("SELECT {COLUMNS} FROM calculations WHERE id = $1"),
            &[&id],
        )?;
        row.as_ref().map(row_to_stored).transpose()
    }

    fn scan_latest(
        &mut self,
        chunk: usize,
        sink: &mut dyn FnMut(Vec<StoredCalculation>) -> bool,
    ) -> Result<()> {
        // A portal in one read-only transaction: one snapshot, fetched `chunk` rows at a time.
        let mut tx = self.client.build_transaction().read_only(true).start()?;
        let portal = tx.bind(
            &format!(
                "SELECT DISTINCT ON (case_id) {COLUMNS} FROM calculations
                 ORDER BY case_id, created_ms DESC, id DESC"
            ),
            &[],
        )?;
        loop {
            let rows = tx.query_portal(&portal, chunk.min(i32::MAX as usize) as i32)?;
            if rows.is_empty() {
                break;
            }
            let last = rows.len() < chunk;
            let items = rows.iter().map(row_to_stored).collect::<Result<Vec<_>>>()?;
            if !sink(items) || last {
                break;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn erase_case(&mut self, case_id: &str) -> Result<u64> {
        Ok(self
            .client
            .execute("DELETE FROM calculations WHERE case_id = $1", &[&case_id])?)
    }

    fn purge_older_than(&mut self, created_ms: i64) -> Result<u64> {
        Ok(self.client.execute(
            "DELETE FROM calculations WHERE created_ms < $1",
            &[&created_ms],
        )?)
    }
}
