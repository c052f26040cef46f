//! Calculation history: every estimate that names a (pseudonymous) case, stored durably so
//! that assessors can go back to it, economists can re-budget the caseload, and erasure and
//! retention can be honoured.
//!
//! Two backends behave the same: SQLite (a file in the data directory, the default: nothing
//! to install) and PostgreSQL (several replicas sharing one history). Both are chosen by URL,
//! `sqlite://PATH` or `postgres://…`, and both run their versioned schema migrations at open.
//!
//! The database is only ever touched from dedicated threads, never from a tokio worker
//! (the `postgres` crate is synchronous and would block, or panic, inside a runtime):
//!
//! * one **writer** thread does every write to the database. On SQLite,
//!   [`HistoryStore::record`] writes the calculation to a journal in the caller's thread and
//!   returns once it is durable there (`journal.rs`: written, or synced, by `?synchronous=`);
//!   the writer moves the journal into SQLite in large transactions, and reads wait until it
//!   has caught up with what was acknowledged before them. On PostgreSQL, `record` returns
//!   once the row is committed: records that arrive while a commit is in flight queue up and
//!   the writer commits all of them in the next transaction (group commit);
//! * one **reader** thread answers [`HistoryStore::list`] and [`HistoryStore::get`] on its own
//!   connection (SQLite's WAL lets it read while the writer commits);
//! * each [`HistoryStore::latest_per_case`] scan gets a thread and a connection of its own
//!   and streams chunks through a bounded channel, so a caseload of 100 000 cases is never
//!   held in memory at once and never stalls the other readers.
//!
//! The async methods can be awaited from tokio; the `*_blocking` twins are for plain threads
//! (they must not be called on a runtime thread).

mod journal;
/// Decoders of stored and client-sent bytes, for the fuzz targets in `fuzz/` (built with
/// the `fuzzing` feature only; not part of the crate's API).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::journal::fuzzing::*;

    /// `ListCalculations`' page token as the history reads it: whether it is accepted.
    pub fn page_token(token: &str) -> bool {
        crate::decode_token(token).is_ok()
    }
}
mod pg;
mod pg_tls;
mod sqlite;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread;
use tokio::sync::{mpsc, oneshot};

use journal::Journal;

/// A stored calculation's id: assigned by the database, increasing, never reused.
pub type CalcId = i64;

pub type Result<T, E = HistoryError> = std::result::Result<T, E>;

/// Most records committed in one transaction.
pub const MAX_BATCH: usize = 1024;
/// Page size when the caller asks for 0.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// Largest page [`HistoryStore::list`] returns.
pub const MAX_PAGE_SIZE: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history URL {0:?} is not supported: expected sqlite://PATH or postgres://…")]
    BadUrl(String),
    #[error("history directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("history (SQLite): {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("history (PostgreSQL): {0}")]
    Postgres(#[from] postgres::Error),
    #[error("history (PostgreSQL TLS): {0}")]
    PgTls(String),
    #[error("history schema is at version {found}, newer than this build knows ({known}): upgrade ramtid")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("page_token {0:?} is not one this service handed out")]
    BadPageToken(String),
    #[error("history batch commit failed: {0}")]
    Batch(String),
    #[error("the history store is closed")]
    Closed,
    #[error("this history was opened to read only")]
    ReadOnly,
    #[error("history journal segment {path} is in format version {version}, which this build does not know (it reads versions 1 and 2): replay it with the ramtid release that wrote it, or move it away to start without its records")]
    JournalFormat { path: PathBuf, version: u8 },
    #[error("the history journal {0} is in use by another ramtid process (one process per SQLite history; several replicas share one through PostgreSQL)")]
    InUse(PathBuf),
}

impl ramtid_core::error::ErrorKind for HistoryError {
    fn kind(&self) -> ramtid_core::error::Kind {
        use ramtid_core::error::Kind;
        match self {
            HistoryError::BadPageToken(_) => Kind::InvalidArgument,
            // Start-up only (the server does not start): what an operator must change.
            HistoryError::BadUrl(_) => Kind::InvalidArgument,
            HistoryError::SchemaTooNew { .. }
            | HistoryError::JournalFormat { .. }
            | HistoryError::InUse(_) => Kind::FailedPrecondition,
            // While serving: the store failed, not the caller.
            HistoryError::Io { .. }
            | HistoryError::Sqlite(_)
            | HistoryError::Postgres(_)
            | HistoryError::PgTls(_)
            | HistoryError::Batch(_)
            | HistoryError::Closed
            | HistoryError::ReadOnly => Kind::Internal,
        }
    }
}

/// One calculation as it is recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Calculation {
    /// Pseudonymous case id (never a personnummer: the service refuses those before here).
    pub case_id: String,
    /// When it was calculated, UTC, in milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// Who asked: the token name as the access layer knows it (`anna`), or `anonymous`
    /// when access control is disabled.
    pub caller: String,
    pub model_name: String,
    pub model_version: String,
    /// The needs set as JSON (`ramtid_core::needs::NeedsSet`).
    pub needs_json: String,
    /// The result as it was answered.
    pub result: StoredResult,
    /// The result's minutes per week, for summaries without parsing `result_json`.
    pub weekly_min: f64,
    /// The team or provider the order goes to (the visit log's `unit_id`), or empty when
    /// the caller did not say; re-budgeting groups by it.
    pub unit_id: String,
}

/// A stored result, in the encoding its writer chose; the history does not look inside.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredResult {
    /// JSON of `ramtid_core::estimate::Estimate` (what schema version 1 stored).
    Json(String),
    /// The answer's wire message (`ramtid.v1.Estimate`, protobuf): about a third of the
    /// JSON's size, and far cheaper to write.
    Protobuf(Vec<u8>),
}

impl StoredResult {
    /// Bytes stored.
    pub fn len(&self) -> usize {
        match self {
            StoredResult::Json(s) => s.len(),
            StoredResult::Protobuf(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The (result_json, result_pb) columns.
    fn columns(&self) -> (&str, Option<&[u8]>) {
        match self {
            StoredResult::Json(s) => (s, None),
            StoredResult::Protobuf(b) => ("", Some(b)),
        }
    }

    fn from_columns(json: String, pb: Option<Vec<u8>>) -> StoredResult {
        match pb {
            Some(b) => StoredResult::Protobuf(b),
            None => StoredResult::Json(json),
        }
    }
}

/// A calculation read back, with its id.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCalculation {
    pub id: CalcId,
    pub calc: Calculation,
}

/// One page of a case's calculations, newest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Page {
    pub items: Vec<StoredCalculation>,
    /// Pass back to get the next (older) page; `None` on the last page.
    pub next_page_token: Option<String>,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Where the history lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Sqlite(PathBuf, SqliteSync),
    Postgres(String),
}

/// How hard SQLite syncs a commit (`?synchronous=` on the URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteSync {
    /// `?synchronous=full`: a calculation is acknowledged once its journal record is synced
    /// to disk (one `fdatasync` serves every call that wrote meanwhile). It survives a power
    /// loss or an OS crash. On two shared cores this costs about half of `Estimate`'s
    /// throughput (README).
    Full,
    /// The default: acknowledged once its journal record is written (in the kernel), so it
    /// survives a killed process (the SIGKILL tests); the syncer syncs the journal every
    /// `journal::SYNC_EVERY` (10 ms), so a power loss or OS crash can take at most the
    /// calculations of the last ~10 ms. SQLite's own default in WAL mode makes the same trade.
    #[default]
    Normal,
}

impl Target {
    /// `sqlite://data/history.db` (relative), `sqlite:///var/lib/ramtid/history.db`
    /// (absolute), optionally `?synchronous=normal` (see [`SqliteSync`]);
    /// `postgres://user@host/db` or `postgresql://…`.
    pub fn parse(url: &str) -> Result<Target> {
        if let Some(rest) = url.strip_prefix("sqlite://") {
            let bad = || HistoryError::BadUrl(url.to_string());
            let (path, sync) = match rest.split_once('?') {
                None => (rest, SqliteSync::default()),
                Some((path, "synchronous=full")) => (path, SqliteSync::Full),
                Some((path, "synchronous=normal")) => (path, SqliteSync::Normal),
                Some(_) => return Err(bad()),
            };
            if path.is_empty() {
                return Err(bad());
            }
            Ok(Target::Sqlite(PathBuf::from(path), sync))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Target::Postgres(url.to_string()))
        } else {
            Err(HistoryError::BadUrl(url.to_string()))
        }
    }

    fn connect(&self) -> Result<Box<dyn Backend>> {
        Ok(match self {
            Target::Sqlite(path, _) => Box::new(sqlite::SqliteBackend::open(path)?),
            Target::Postgres(url) => Box::new(pg::PgBackend::open(url)?),
        })
    }
}

/// What each backend does, synchronously, on its own connection.
pub(crate) trait Backend: Send {
    /// Runs the migrations this build knows and the database has not seen yet.
    fn migrate(&mut self) -> Result<()>;
    /// Inserts all of `calcs` in ONE transaction; their ids in the same order.
    fn insert_batch(&mut self, calcs: &[&Calculation]) -> Result<Vec<CalcId>>;
    /// A case's calculations strictly older than `before` (created_ms, id), newest first.
    fn list(
        &mut self,
        case_id: &str,
        before: Option<(i64, CalcId)>,
        limit: usize,
    ) -> Result<Vec<StoredCalculation>>;
    fn get(&mut self, id: CalcId) -> Result<Option<StoredCalculation>>;
    /// Every case's newest calculation, ordered by case id, handed to `sink` in chunks;
    /// stops early when `sink` returns false.
    fn scan_latest(
        &mut self,
        chunk: usize,
        sink: &mut dyn FnMut(Vec<StoredCalculation>) -> bool,
    ) -> Result<()>;
    fn erase_case(&mut self, case_id: &str) -> Result<u64>;
    fn purge_older_than(&mut self, created_ms: i64) -> Result<u64>;
    /// Inserts records whose ids the journal gave out, in ONE transaction; an id already
    /// there is skipped (a replay after a crash may repeat what was committed).
    fn insert_with_ids(&mut self, _rows: &[(CalcId, &Calculation)]) -> Result<()> {
        Err(HistoryError::Batch(
            "only the SQLite history has a journal".into(),
        ))
    }
    /// The largest id ever given out, erased ones included (0: none).
    fn last_id(&mut self) -> Result<CalcId> {
        Err(HistoryError::Batch(
            "only the SQLite history has a journal".into(),
        ))
    }
}

/// Columns in the order every backend selects them.
pub(crate) const COLUMNS: &str =
    "id, case_id, created_ms, caller, model_name, model_version, needs_json, result_json, weekly_min, unit_id, result_pb";

enum WriteMsg {
    Record(Calculation, oneshot::Sender<Result<CalcId>>),
    /// Index what the journal holds now (a reader waits for it).
    Flush,
    Erase(String, oneshot::Sender<Result<u64>>),
    Purge(i64, oneshot::Sender<Result<u64>>),
    /// The last clone is gone: finish and stop.
    Close,
}

enum ReadMsg {
    List {
        case_id: String,
        before: Option<(i64, CalcId)>,
        limit: usize,
        reply: oneshot::Sender<Result<Vec<StoredCalculation>>>,
    },
    Get(CalcId, oneshot::Sender<Result<Option<StoredCalculation>>>),
}

/// The calculation history. Cheap to clone; the threads stop when the last clone is dropped
/// (after finishing what was already sent).
#[derive(Clone)]
pub struct HistoryStore {
    target: Target,
    writer: std_mpsc::Sender<WriteMsg>,
    reader: std_mpsc::Sender<ReadMsg>,
    /// SQLite: where calculations are acknowledged (see [`journal`]); PostgreSQL: none, the
    /// writer commits them.
    journal: Option<Arc<Journal>>,
    read_only: bool,
    stats: Arc<Counters>,
    _threads: Arc<Threads>,
}

/// The threads that must be finished when the last clone is dropped: the writer (which
/// indexes what the journal still holds) and the syncer, so that the journal's lock is free
/// again by the time `drop` returns.
struct Threads {
    writer: std_mpsc::Sender<WriteMsg>,
    handles: std::sync::Mutex<Vec<thread::JoinHandle<()>>>,
}

impl Drop for Threads {
    fn drop(&mut self) {
        let _ = self.writer.send(WriteMsg::Close);
        let handles = std::mem::take(&mut *self.handles.lock().unwrap_or_else(|p| p.into_inner()));
        for h in handles {
            let _ = h.join();
        }
    }
}

#[derive(Default)]
struct Counters {
    records: AtomicU64,
    commits: AtomicU64,
}

/// What the writer has done since open: for metrics, and to see group commit at work
/// (`records / commits` is the mean batch size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriterStats {
    /// Calculations committed.
    pub records: u64,
    /// Transactions that committed them.
    pub commits: u64,
}

impl std::fmt::Debug for HistoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target = match &self.target {
            Target::Sqlite(p, sync) => format!("sqlite://{} ({sync:?})", p.display()),
            // the URL may carry a password: never print it
            Target::Postgres(_) => "postgres://…".to_string(),
        };
        f.debug_struct("HistoryStore")
            .field("target", &target)
            .finish()
    }
}

impl HistoryStore {
    /// Opens (creating if needed) the history at `url`, runs the migrations (and, for
    /// SQLite, replays what a crash left in the journal) and starts the writer and reader
    /// threads. Blocks until both are connected; at start-up from async code that is fine
    /// (the connections themselves are made on the new threads).
    pub fn open(url: &str) -> Result<HistoryStore> {
        let target = Target::parse(url)?;
        let stats = Arc::new(Counters::default());
        // The writer migrates (and replays the journal) before anyone else connects.
        let setup_target = target.clone();
        let Worker {
            sender: writer,
            made: journal,
            thread: writer_thread,
        } = spawn_worker(
            "ramtid-history-writer",
            target.clone(),
            move |backend| {
                backend.migrate()?;
                match &setup_target {
                    Target::Sqlite(path, sync) => {
                        let last = backend.last_id()?;
                        let journal = Journal::open(path, *sync, last, &mut |rows| {
                            backend.insert_with_ids(rows)
                        })?;
                        Ok(Some(Arc::new(journal)))
                    }
                    Target::Postgres(_) => Ok(None),
                }
            },
            {
                let stats = stats.clone();
                move |b, rx, journal: Option<Arc<Journal>>| match journal {
                    Some(j) => index_loop(b, rx, &j, &stats),
                    None => writer_loop(b, rx, &stats),
                }
            },
        )?;
        let mut handles = vec![writer_thread];
        if let Some(j) = &journal {
            let j = j.clone();
            handles.push(
                thread::Builder::new()
                    .name("ramtid-history-syncer".into())
                    .spawn(move || j.run_syncer())
                    .map_err(|e| HistoryError::Batch(format!("cannot start the syncer: {e}")))?,
            );
        }
        let threads = Arc::new(Threads {
            writer: writer.clone(),
            handles: std::sync::Mutex::new(handles),
        });
        let reader = spawn_worker(
            "ramtid-history-reader",
            target.clone(),
            |_| Ok(()),
            |b, rx, ()| reader_loop(b, rx),
        )?
        .sender;
        Ok(HistoryStore {
            target,
            writer,
            reader,
            journal,
            read_only: false,
            stats,
            _threads: threads,
        })
    }

    /// Opens the history at `url` to read only, beside a server that has it open (re-budgeting
    /// from the command line): no migrations, no journal, and every write refused. It reads
    /// what the database holds; on SQLite, calculations a running server acknowledged in the
    /// last moments may still be in that server's journal (at most ~0.1 s of them).
    pub fn open_read_only(url: &str) -> Result<HistoryStore> {
        let target = Target::parse(url)?;
        let reader = spawn_worker(
            "ramtid-history-reader",
            target.clone(),
            |_| Ok(()),
            |b, rx, ()| reader_loop(b, rx),
        )?
        .sender;
        let (writer, _) = std_mpsc::channel();
        Ok(HistoryStore {
            target,
            writer: writer.clone(),
            reader,
            journal: None,
            read_only: true,
            stats: Arc::default(),
            _threads: Arc::new(Threads {
                writer,
                handles: std::sync::Mutex::default(),
            }),
        })
    }

    /// Stores one calculation; returns its id once it is durable.
    ///
    /// SQLite: written to the journal here, on the caller's thread, and acknowledged at once
    /// (`synchronous=normal`) or after the syncer's next `fdatasync` (`full`); the writer
    /// indexes it into SQLite shortly after. PostgreSQL: committed by the writer thread, many
    /// calls per transaction.
    pub async fn record(&self, calc: Calculation) -> Result<CalcId> {
        if self.read_only {
            return Err(HistoryError::ReadOnly);
        }
        if let Some(j) = &self.journal {
            let id = j.append(&calc)?;
            drop(calc);
            self.stats.records.fetch_add(1, Ordering::Relaxed);
            if j.waits_for_sync() {
                j.synced.wait(id).await?;
            }
            if id - j.indexed.upto() > journal::MAX_UNINDEXED {
                // The indexer is far behind (a slow disk): wait rather than fill memory.
                let _ = self.writer.send(WriteMsg::Flush);
                j.indexed.wait(id - journal::MAX_UNINDEXED / 2).await?;
            }
            return Ok(id);
        }
        let (tx, rx) = oneshot::channel();
        self.send_write(WriteMsg::Record(calc, tx))?;
        rx.await.map_err(|_| HistoryError::Closed)?
    }

    /// [`record`](Self::record) for plain threads.
    pub fn record_blocking(&self, calc: Calculation) -> Result<CalcId> {
        if self.read_only {
            return Err(HistoryError::ReadOnly);
        }
        if let Some(j) = &self.journal {
            let id = j.append(&calc)?;
            self.stats.records.fetch_add(1, Ordering::Relaxed);
            if j.waits_for_sync() {
                j.synced.wait_blocking(id)?;
            }
            if id - j.indexed.upto() > journal::MAX_UNINDEXED {
                let _ = self.writer.send(WriteMsg::Flush);
                j.indexed.wait_blocking(id - journal::MAX_UNINDEXED / 2)?;
            }
            return Ok(id);
        }
        let (tx, rx) = oneshot::channel();
        self.send_write(WriteMsg::Record(calc, tx))?;
        rx.blocking_recv().map_err(|_| HistoryError::Closed)?
    }

    /// Before a read: waits until every calculation acknowledged so far is indexed, so that
    /// a caller reads its own writes. Immediate when the indexer has caught up.
    async fn caught_up(&self) -> Result<()> {
        if let Some(j) = &self.journal {
            let target = j.last_id();
            if j.indexed.upto() < target {
                self.send_write(WriteMsg::Flush)?;
                j.indexed.wait(target).await?;
            }
        }
        Ok(())
    }

    /// [`caught_up`](Self::caught_up) for plain threads.
    fn caught_up_blocking(&self) -> Result<()> {
        if let Some(j) = &self.journal {
            let target = j.last_id();
            if j.indexed.upto() < target {
                self.send_write(WriteMsg::Flush)?;
                j.indexed.wait_blocking(target)?;
            }
        }
        Ok(())
    }

    /// A case's calculations, newest first. `page_size` 0 means [`DEFAULT_PAGE_SIZE`]; more
    /// than [`MAX_PAGE_SIZE`] is cut to it. `page_token` is `""` for the first page.
    pub async fn list(&self, case_id: &str, page_size: usize, page_token: &str) -> Result<Page> {
        let (limit, before) = page_args(page_size, page_token)?;
        self.caught_up().await?;
        let (tx, rx) = oneshot::channel();
        self.send_read(ReadMsg::List {
            case_id: case_id.to_string(),
            before,
            limit: limit + 1,
            reply: tx,
        })?;
        let rows = rx.await.map_err(|_| HistoryError::Closed)??;
        Ok(make_page(rows, limit))
    }

    /// [`list`](Self::list) for plain threads.
    pub fn list_blocking(&self, case_id: &str, page_size: usize, page_token: &str) -> Result<Page> {
        let (limit, before) = page_args(page_size, page_token)?;
        self.caught_up_blocking()?;
        let (tx, rx) = oneshot::channel();
        self.send_read(ReadMsg::List {
            case_id: case_id.to_string(),
            before,
            limit: limit + 1,
            reply: tx,
        })?;
        let rows = rx.blocking_recv().map_err(|_| HistoryError::Closed)??;
        Ok(make_page(rows, limit))
    }

    /// One calculation by id (`None` if there is none, or it was erased or purged).
    pub async fn get(&self, id: CalcId) -> Result<Option<StoredCalculation>> {
        self.caught_up().await?;
        let (tx, rx) = oneshot::channel();
        self.send_read(ReadMsg::Get(id, tx))?;
        rx.await.map_err(|_| HistoryError::Closed)?
    }

    /// [`get`](Self::get) for plain threads.
    pub fn get_blocking(&self, id: CalcId) -> Result<Option<StoredCalculation>> {
        self.caught_up_blocking()?;
        let (tx, rx) = oneshot::channel();
        self.send_read(ReadMsg::Get(id, tx))?;
        rx.blocking_recv().map_err(|_| HistoryError::Closed)?
    }

    /// Every case's newest calculation, by case id, in chunks of up to `chunk` (0 means 1000),
    /// on a thread and connection of its own. The channel holds at most four chunks: a slow
    /// consumer slows the scan, it does not fill memory. Dropping the receiver stops the
    /// scan. An error ends the stream as its last item.
    pub fn latest_per_case(&self, chunk: usize) -> mpsc::Receiver<Result<Vec<StoredCalculation>>> {
        let chunk = if chunk == 0 { 1000 } else { chunk };
        let (tx, rx) = mpsc::channel(4);
        let store = self.clone();
        let spawned = thread::Builder::new()
            .name("ramtid-history-scan".into())
            .spawn({
                let tx = tx.clone();
                move || {
                    let result = store
                        .caught_up_blocking()
                        .and_then(|()| store.target.connect())
                        .and_then(|mut backend| {
                            backend
                                .scan_latest(chunk, &mut |rows| tx.blocking_send(Ok(rows)).is_ok())
                        });
                    if let Err(e) = result {
                        let _ = tx.blocking_send(Err(e));
                    }
                }
            });
        if let Err(e) = spawned {
            let _ = tx.try_send(Err(HistoryError::Batch(format!(
                "cannot start the scan thread: {e}"
            ))));
        }
        rx
    }

    /// Erases every calculation of a case (right to erasure); how many there were.
    pub async fn erase_case(&self, case_id: &str) -> Result<u64> {
        self.seal_journal()?;
        let (tx, rx) = oneshot::channel();
        self.send_write(WriteMsg::Erase(case_id.to_string(), tx))?;
        rx.await.map_err(|_| HistoryError::Closed)?
    }

    /// [`erase_case`](Self::erase_case) for plain threads.
    pub fn erase_case_blocking(&self, case_id: &str) -> Result<u64> {
        self.seal_journal()?;
        let (tx, rx) = oneshot::channel();
        self.send_write(WriteMsg::Erase(case_id.to_string(), tx))?;
        rx.blocking_recv().map_err(|_| HistoryError::Closed)?
    }

    /// Deletes every calculation created strictly before `created_ms` (retention); how many.
    pub async fn purge_older_than(&self, created_ms: i64) -> Result<u64> {
        let (tx, rx) = oneshot::channel();
        self.send_write(WriteMsg::Purge(created_ms, tx))?;
        rx.await.map_err(|_| HistoryError::Closed)?
    }

    /// [`purge_older_than`](Self::purge_older_than) for plain threads.
    pub fn purge_older_than_blocking(&self, created_ms: i64) -> Result<u64> {
        let (tx, rx) = oneshot::channel();
        self.send_write(WriteMsg::Purge(created_ms, tx))?;
        rx.blocking_recv().map_err(|_| HistoryError::Closed)?
    }

    /// Counts of what the writer committed since open.
    pub fn writer_stats(&self) -> WriterStats {
        WriterStats {
            records: self.stats.records.load(Ordering::Relaxed),
            commits: self.stats.commits.load(Ordering::Relaxed),
        }
    }

    /// Before an erasure: closes the journal segment being written, so that every copy of
    /// the case's calculations is in segments the writer deletes once it has indexed them,
    /// before it erases (the erasure then leaves no copy in the journal).
    fn seal_journal(&self) -> Result<()> {
        self.journal.as_ref().map_or(Ok(()), |j| j.seal())
    }

    fn send_write(&self, msg: WriteMsg) -> Result<()> {
        if self.read_only {
            return Err(HistoryError::ReadOnly);
        }
        self.writer.send(msg).map_err(|_| HistoryError::Closed)
    }

    fn send_read(&self, msg: ReadMsg) -> Result<()> {
        self.reader.send(msg).map_err(|_| HistoryError::Closed)
    }
}

fn page_args(page_size: usize, page_token: &str) -> Result<(usize, Option<(i64, CalcId)>)> {
    let limit = match page_size {
        0 => DEFAULT_PAGE_SIZE,
        n => n.min(MAX_PAGE_SIZE),
    };
    Ok((limit, decode_token(page_token)?))
}

fn make_page(mut rows: Vec<StoredCalculation>, limit: usize) -> Page {
    let next_page_token = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| encode_token(r.calc.created_ms, r.id))
    } else {
        None
    };
    Page {
        items: rows,
        next_page_token,
    }
}

/// The token is the position of the last row handed out, `created_ms.id`: keyset paging, so
/// that records arriving between pages neither repeat nor skip rows.
fn encode_token(created_ms: i64, id: CalcId) -> String {
    format!("{created_ms}.{id}")
}

fn decode_token(token: &str) -> Result<Option<(i64, CalcId)>> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || HistoryError::BadPageToken(token.to_string());
    let (created, id) = token.split_once('.').ok_or_else(bad)?;
    Ok(Some((
        created.parse().map_err(|_| bad())?,
        id.parse().map_err(|_| bad())?,
    )))
}

/// Starts a thread that connects, runs `setup` on the connection (migrations, journal
/// replay) and reports how that went, then runs `work` until every sender is gone.
fn spawn_worker<M: Send + 'static, T: Clone + Send + 'static>(
    name: &str,
    target: Target,
    setup: impl FnOnce(&mut dyn Backend) -> Result<T> + Send + 'static,
    work: impl FnOnce(Box<dyn Backend>, std_mpsc::Receiver<M>, T) + Send + 'static,
) -> Result<Worker<M, T>> {
    let (tx, rx) = std_mpsc::channel::<M>();
    let (ready_tx, ready_rx) = std_mpsc::sync_channel::<Result<T>>(1);
    let handle = thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let opened = target.connect().and_then(|mut backend| {
                let made = setup(backend.as_mut())?;
                Ok((backend, made))
            });
            match opened {
                Ok((backend, made)) => {
                    let _ = ready_tx.send(Ok(made.clone()));
                    work(backend, rx, made);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        })
        .map_err(|e| HistoryError::Batch(format!("cannot start {name}: {e}")))?;
    let made = ready_rx.recv().map_err(|_| HistoryError::Closed)??;
    Ok(Worker {
        sender: tx,
        made,
        thread: handle,
    })
}

/// A started worker thread: where to send it work, what its setup made, and the thread.
struct Worker<M, T> {
    sender: std_mpsc::Sender<M>,
    made: T,
    thread: thread::JoinHandle<()>,
}

/// The writer in front of SQLite: indexes what the journal acknowledged, every
/// [`journal::INDEX_EVERY`] or sooner when a reader asks, and does erasures and purges
/// after indexing (so that they cover every acknowledged record).
fn index_loop(
    mut backend: Box<dyn Backend>,
    rx: std_mpsc::Receiver<WriteMsg>,
    journal: &Journal,
    stats: &Counters,
) {
    let mut cursor = journal.start();
    loop {
        let msg = match rx.recv_timeout(journal::INDEX_EVERY) {
            Ok(msg) => Some(msg),
            Err(std_mpsc::RecvTimeoutError::Timeout) => None,
            Err(std_mpsc::RecvTimeoutError::Disconnected) => Some(WriteMsg::Close),
        };
        let indexed = index_journal(backend.as_mut(), journal, &mut cursor, stats);
        match msg {
            None | Some(WriteMsg::Flush) => {}
            Some(WriteMsg::Close) => {
                // A clean stop leaves an empty journal: the next start has nothing to replay.
                if indexed.is_ok() && journal.seal().is_ok() {
                    let _ = index_journal(backend.as_mut(), journal, &mut cursor, stats);
                }
                journal.shut_down();
                return;
            }
            Some(WriteMsg::Erase(case_id, reply)) => {
                let _ = reply.send(indexed.and_then(|()| backend.erase_case(&case_id)));
            }
            Some(WriteMsg::Purge(before, reply)) => {
                let _ = reply.send(indexed.and_then(|()| backend.purge_older_than(before)));
            }
            Some(WriteMsg::Record(calc, reply)) => {
                // Not sent in journal mode; answered rather than dropped all the same.
                let _ = reply.send(backend.insert_batch(&[&calc]).map(|ids| ids[0]));
            }
        }
    }
}

/// Commits everything the journal holds past `cursor` into SQLite, then lets the journal
/// delete the segments that are wholly committed. On failure the cursor stays (the records
/// are still in the journal, on disk) and readers hear why; the next round tries again.
fn index_journal(
    backend: &mut dyn Backend,
    journal: &Journal,
    cursor: &mut journal::Cursor,
    stats: &Counters,
) -> Result<()> {
    loop {
        let (batch, next) = journal.read_from(*cursor).inspect_err(|e| {
            tracing::error!(error = %e, "cannot read the history journal back");
            journal.indexed.fail(e.to_string());
        })?;
        let Some(last) = batch.last().map(|r| r.0) else {
            // Caught up: a segment sealed since (an erasure) may now be deleted.
            return journal.indexed_upto(journal.indexed.upto());
        };
        let rows: Vec<(CalcId, &Calculation)> = batch.iter().map(|(id, c)| (*id, c)).collect();
        if let Err(e) = backend.insert_with_ids(&rows) {
            let msg = e.to_string();
            tracing::error!(error = %msg, rows = rows.len(), "cannot index the history journal into SQLite; the records stay in the journal");
            journal.indexed.fail(msg.clone());
            return Err(HistoryError::Batch(msg));
        }
        *cursor = next;
        stats.commits.fetch_add(1, Ordering::Relaxed);
        journal.indexed_upto(last)?;
    }
}

/// The writer in front of PostgreSQL: group commit.
fn writer_loop(mut backend: Box<dyn Backend>, rx: std_mpsc::Receiver<WriteMsg>, stats: &Counters) {
    let mut records: Vec<(Calculation, oneshot::Sender<Result<CalcId>>)> = Vec::new();
    // Block for the first message, then take whatever else queued up meanwhile (the calls
    // that arrived during the previous commit): consecutive records share one transaction.
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(msg) = next.take() {
            taken += 1;
            match msg {
                WriteMsg::Record(calc, reply) => records.push((calc, reply)),
                other => {
                    commit_records(backend.as_mut(), &mut records, stats);
                    match other {
                        WriteMsg::Erase(case_id, reply) => {
                            let _ = reply.send(backend.erase_case(&case_id));
                        }
                        WriteMsg::Purge(before, reply) => {
                            let _ = reply.send(backend.purge_older_than(before));
                        }
                        WriteMsg::Flush => {}
                        WriteMsg::Close => return,
                        WriteMsg::Record(..) => unreachable!(),
                    }
                }
            }
            if records.len() >= MAX_BATCH {
                commit_records(backend.as_mut(), &mut records, stats);
            }
            if taken < 4 * MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        commit_records(backend.as_mut(), &mut records, stats);
    }
}

fn commit_records(
    backend: &mut dyn Backend,
    records: &mut Vec<(Calculation, oneshot::Sender<Result<CalcId>>)>,
    stats: &Counters,
) {
    if records.is_empty() {
        return;
    }
    let calcs: Vec<&Calculation> = records.iter().map(|(c, _)| c).collect();
    match backend.insert_batch(&calcs) {
        Ok(ids) => {
            stats.commits.fetch_add(1, Ordering::Relaxed);
            stats.records.fetch_add(ids.len() as u64, Ordering::Relaxed);
            for ((_, reply), id) in records.drain(..).zip(ids) {
                let _ = reply.send(Ok(id));
            }
        }
        Err(batch_error) => {
            // The transaction rolled back as a whole. Retry one by one, so that one bad row
            // costs only its own call and every caller hears its own outcome.
            tracing::warn!(error = %batch_error, rows = records.len(), "history batch failed; retrying row by row");
            for (calc, reply) in records.drain(..) {
                let one = backend
                    .insert_batch(&[&calc])
                    .and_then(|ids| ids.first().copied().ok_or(HistoryError::Closed));
                if one.is_ok() {
                    stats.commits.fetch_add(1, Ordering::Relaxed);
                    stats.records.fetch_add(1, Ordering::Relaxed);
                }
                let _ = reply.send(one);
            }
        }
    }
}

fn reader_loop(mut backend: Box<dyn Backend>, rx: std_mpsc::Receiver<ReadMsg>) {
    while let Ok(msg) = rx.recv() {
        match msg {
            ReadMsg::List {
                case_id,
                before,
                limit,
                reply,
            } => {
                let _ = reply.send(backend.list(&case_id, before, limit));
            }
            ReadMsg::Get(id, reply) => {
                let _ = reply.send(backend.get(id));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_select_the_backend() {
        assert_eq!(
            Target::parse("sqlite://data/h.db").unwrap(),
            Target::Sqlite("data/h.db".into(), SqliteSync::Normal)
        );
        assert_eq!(
            Target::parse("sqlite://h.db?synchronous=full").unwrap(),
            Target::Sqlite("h.db".into(), SqliteSync::Full)
        );
        assert_eq!(
            Target::parse("sqlite:///var/h.db?synchronous=normal").unwrap(),
            Target::Sqlite("/var/h.db".into(), SqliteSync::Normal)
        );
        assert!(matches!(
            Target::parse("postgresql://u@h/db").unwrap(),
            Target::Postgres(_)
        ));
        for bad in [
            "",
            "sqlite://",
            "sqlite://h.db?sync=off",
            "mysql://x",
            "data/h.db",
        ] {
            assert!(
                matches!(Target::parse(bad), Err(HistoryError::BadUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn page_tokens_round_trip_and_refuse_garbage() {
        assert_eq!(decode_token("").unwrap(), None);
        let t = encode_token(1_700_000_000_123, 42);
        assert_eq!(decode_token(&t).unwrap(), Some((1_700_000_000_123, 42)));
        for bad in ["x", "1.", ".2", "1.2.3", "a.b"] {
            assert!(
                matches!(decode_token(bad), Err(HistoryError::BadPageToken(_))),
                "{bad}"
            );
        }
    }
}
