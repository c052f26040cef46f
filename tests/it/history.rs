//! The calculation history: ONE suite, run against SQLite (always) and PostgreSQL.
//!
//! PostgreSQL: `RAMTID_TEST_PG_URL` if set (a role that may create databases: each test makes
//! a database of its own there and drops it); otherwise `tests/pg.sh` starts a throwaway local server for this process. Where
//! none can be started the PostgreSQL tests say `SKIPPED:` on stderr and pass, except under
//! CI (`CI` set), where they fail.
//!
//! Throughput figures (ignored by default):
//! `cargo test --release --test history -- --ignored --nocapture`

use ramtid_history::{Calculation, HistoryError, HistoryStore, StoredCalculation, StoredResult};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

const T0: i64 = 1_700_000_000_000;

fn calc(case_id: &str, created_ms: i64, n: usize) -> Calculation {
    Calculation {
        case_id: case_id.to_string(),
        created_ms,
        caller: format!("assessor:handläggare-{}", n % 3),
        model_name: "nordstad".into(),
        model_version: format!("{}", 1 + n % 2),
        needs_json: format!(
            r#"{{"recipient_id":"{case_id}","context":{{"age":84}},"needs":[{{"code":"SHOWER","per_week":{n}}}]}}"#
        ),
        // Both encodings round-trip: JSON (schema version 1) and protobuf bytes (any bytes,
        // zeros included; the history does not look inside).
        result: if n.is_multiple_of(2) {
            StoredResult::Json(format!(r#"{{"weekly_min":{}.25,"note":"ö ä å"}}"#, 100 + n))
        } else {
            StoredResult::Protobuf(vec![0, 0xff, n as u8, 0x0a, 0])
        },
        weekly_min: 100.25 + n as f64,
        unit_id: format!("team-{}", n % 4),
    }
}

fn latest_blocking(store: &HistoryStore, chunk: usize) -> Vec<StoredCalculation> {
    let mut rx = store.latest_per_case(chunk);
    let mut all = Vec::new();
    while let Some(part) = rx.blocking_recv() {
        let part = part.expect("scan");
        assert!(
            !part.is_empty() && part.len() <= chunk,
            "chunk of {}",
            part.len()
        );
        all.extend(part);
    }
    all
}

fn list_all(store: &HistoryStore, case_id: &str, page_size: usize) -> Vec<StoredCalculation> {
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = store
            .list_blocking(case_id, page_size, &token)
            .expect("list");
        assert!(page.items.len() <= page_size);
        all.extend(page.items);
        match page.next_page_token {
            Some(t) => token = t,
            None => return all,
        }
    }
}

/// The behaviour both backends must have. `store` must be empty.
fn suite(store: &HistoryStore) {
    // an unknown case, an unknown id
    let empty = store.list_blocking("nobody", 10, "").unwrap();
    assert!(empty.items.is_empty() && empty.next_page_token.is_none());
    assert_eq!(store.get_blocking(123_456).unwrap(), None);
    assert!(latest_blocking(store, 10).is_empty());

    // case A: five calculations, two of them in the same millisecond (the id breaks the tie)
    let a_times = [T0, T0 + 10, T0 + 10, T0 + 20, T0 + 30];
    let mut a = Vec::new();
    for (n, t) in a_times.iter().enumerate() {
        let c = calc("case-A", *t, n);
        a.push((store.record_blocking(c.clone()).unwrap(), c));
    }
    let b: Vec<_> = (0..3)
        .map(|n| {
            let c = calc("case-B", T0 + 5 + n as i64, 10 + n);
            (store.record_blocking(c.clone()).unwrap(), c)
        })
        .collect();
    let c_id = store.record_blocking(calc("case-C", T0 + 1, 20)).unwrap();

    // ids increase and come back with exactly what was stored
    let ids: Vec<_> = a.iter().chain(&b).map(|(id, _)| *id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    for (id, c) in a.iter().chain(&b) {
        let got = store.get_blocking(*id).unwrap().expect("stored");
        assert_eq!(got.id, *id);
        assert_eq!(&got.calc, c);
    }

    // newest first, paged without repeats or gaps, across the tie
    let mut expected: Vec<_> = a.iter().map(|(id, c)| (c.created_ms, *id)).collect();
    expected.sort_by(|x, y| y.cmp(x));
    for page_size in [1, 2, 3, 5, 50] {
        let got: Vec<_> = list_all(store, "case-A", page_size)
            .iter()
            .map(|s| (s.calc.created_ms, s.id))
            .collect();
        assert_eq!(got, expected, "page size {page_size}");
    }
    let first = store.list_blocking("case-A", 2, "").unwrap();
    assert_eq!(first.items.len(), 2);
    assert!(first.next_page_token.is_some());
    // exactly one page: no token
    let whole = store.list_blocking("case-A", 5, "").unwrap();
    assert_eq!(whole.items.len(), 5);
    assert_eq!(whole.next_page_token, None);
    // 0 means the default page size
    assert_eq!(store.list_blocking("case-A", 0, "").unwrap().items.len(), 5);
    assert!(matches!(
        store.list_blocking("case-A", 2, "not-a-token"),
        Err(HistoryError::BadPageToken(_))
    ));

    // the newest per case, by case id, in chunks
    let latest = latest_blocking(store, 2);
    let got: Vec<_> = latest
        .iter()
        .map(|s| (s.calc.case_id.as_str(), s.id))
        .collect();
    assert_eq!(
        got,
        [("case-A", a[4].0), ("case-B", b[2].0), ("case-C", c_id)]
    );
    assert_eq!(latest[0].calc, a[4].1);

    // the async API, from a runtime
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let d = calc("case-D", T0 + 40, 30);
    let d_id = rt.block_on(async {
        let id = store.record(d.clone()).await.unwrap();
        let page = store.list("case-D", 10, "").await.unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(store.get(id).await.unwrap().unwrap().calc, d);
        let mut rx = store.latest_per_case(1000);
        let mut n = 0;
        while let Some(part) = rx.recv().await {
            n += part.unwrap().len();
        }
        assert_eq!(n, 4);
        id
    });

    // many threads at once: every record comes back, with its content, under its own id
    let threads = 16;
    let per_thread = 40;
    let now = ramtid_history::now_ms();
    let before = store.writer_stats();
    let recorded: Vec<Vec<(i64, Calculation)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (0..per_thread)
                        .map(|n| {
                            let c = calc(&format!("conc-{t:02}"), now + n as i64, n);
                            (store.record_blocking(c.clone()).unwrap(), c)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let all_ids: HashSet<i64> = recorded.iter().flatten().map(|(id, _)| *id).collect();
    let after = store.writer_stats();
    assert_eq!(
        after.records - before.records,
        (threads * per_thread) as u64
    );
    assert!(after.commits - before.commits <= after.records - before.records);
    assert_eq!(before.records, 10, "A, B, C and D were committed");
    assert_eq!(all_ids.len(), threads * per_thread, "ids are unique");
    for (t, rows) in recorded.iter().enumerate() {
        let listed = list_all(store, &format!("conc-{t:02}"), 7);
        assert_eq!(listed.len(), per_thread);
        let by_id: BTreeMap<i64, &Calculation> = listed.iter().map(|s| (s.id, &s.calc)).collect();
        for (id, c) in rows {
            assert_eq!(by_id.get(id), Some(&c), "thread {t} id {id}");
        }
    }
    assert_eq!(latest_blocking(store, 5).len(), 4 + threads);

    // erasure removes the case, all of it, and nothing else
    assert_eq!(store.erase_case_blocking("case-B").unwrap(), 3);
    assert!(store
        .list_blocking("case-B", 10, "")
        .unwrap()
        .items
        .is_empty());
    for (id, _) in &b {
        assert_eq!(store.get_blocking(*id).unwrap(), None);
    }
    assert_eq!(store.erase_case_blocking("case-B").unwrap(), 0);
    assert_eq!(list_all(store, "case-A", 10).len(), 5);
    assert_eq!(latest_blocking(store, 100).len(), 3 + threads);

    // retention: strictly older than the cutoff goes, the rest stays
    // A at T0, T0+10, T0+10, T0+20, T0+30; C at T0+1; D at T0+40
    assert_eq!(store.purge_older_than_blocking(T0 + 10).unwrap(), 2); // A@T0, C
    assert_eq!(store.get_blocking(c_id).unwrap(), None);
    assert_eq!(store.get_blocking(a[0].0).unwrap(), None);
    assert_eq!(list_all(store, "case-A", 10).len(), 4);
    assert_eq!(store.purge_older_than_blocking(T0 + 10).unwrap(), 0);
    assert_eq!(store.purge_older_than_blocking(T0 + 41).unwrap(), 5); // rest of A, D
    assert_eq!(store.get_blocking(d_id).unwrap(), None);
    let left = latest_blocking(store, 100);
    assert_eq!(left.len(), threads);
    assert!(left.iter().all(|s| s.calc.case_id.starts_with("conc-")));

    // a new id is never an old one
    let fresh = store.record_blocking(calc("case-B", T0, 0)).unwrap();
    assert!(!all_ids.contains(&fresh) && fresh > d_id);
}

// ---- SQLite ----

#[test]
fn sqlite_passes_the_suite_and_keeps_data_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    // a directory that does not exist yet: open creates it
    let url = format!("sqlite://{}/data/history.db", dir.path().display());
    let store = HistoryStore::open(&url).unwrap();
    suite(&store);
    let id = store.record_blocking(calc("keep", T0, 1)).unwrap();
    drop(store);

    let again = HistoryStore::open(&url).unwrap();
    assert_eq!(
        again.get_blocking(id).unwrap().unwrap().calc,
        calc("keep", T0, 1)
    );
    let conn = rusqlite::Connection::open(dir.path().join("data/history.db")).unwrap();
    let versions: i64 = conn
        .query_row("SELECT count(*) FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(versions, 3, "each migration ran once");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn sqlite_refuses_a_newer_schema_and_bad_urls() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    drop(HistoryStore::open(&format!("sqlite://{}", path.display())).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("INSERT INTO schema_version (version) VALUES (99)", [])
        .unwrap();
    drop(conn);
    let err = HistoryStore::open(&format!("sqlite://{}", path.display())).unwrap_err();
    assert!(
        matches!(err, HistoryError::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
    assert!(matches!(
        HistoryStore::open("mysql://x"),
        Err(HistoryError::BadUrl(_))
    ));
}

/// The journal's segment files and their total size.
fn journal_bytes(db: &std::path::Path) -> (Vec<std::path::PathBuf>, Vec<u8>) {
    let dir = db.with_file_name(format!(
        "{}.journal",
        db.file_name().unwrap().to_str().unwrap()
    ));
    let mut files = Vec::new();
    let mut bytes = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "seg") {
            bytes.extend(std::fs::read(&p).unwrap());
            files.push(p);
        }
    }
    (files, bytes)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn sqlite_journal_is_indexed_in_the_background_and_emptied_at_a_clean_stop() {
    for sync in ["", "?synchronous=full"] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("h.db");
        let store = HistoryStore::open(&format!("sqlite://{}{sync}", db.display())).unwrap();
        let ids: Vec<i64> = (0..50)
            .map(|n| {
                store
                    .record_blocking(calc("bg", T0 + n, n as usize))
                    .unwrap()
            })
            .collect();
        assert!(
            contains(&journal_bytes(&db).1, "bg"),
            "{sync}: written to the journal"
        );
        // no read asks for it: the writer indexes on its own within a fraction of a second
        let raw = rusqlite::Connection::open(&db).unwrap();
        let t0 = Instant::now();
        while raw
            .query_row("SELECT count(*) FROM calculations", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap()
            < 50
        {
            assert!(
                t0.elapsed().as_secs() < 10,
                "{sync}: not indexed after 10 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        drop(store);
        let (files, bytes) = journal_bytes(&db);
        assert!(
            bytes.is_empty(),
            "{sync}: a clean stop leaves nothing to replay: {files:?}"
        );
        let again = HistoryStore::open(&format!("sqlite://{}{sync}", db.display())).unwrap();
        let next = again.record_blocking(calc("bg", T0, 0)).unwrap();
        assert!(next > *ids.last().unwrap(), "ids go on after a restart");
    }
}

#[test]
fn sqlite_erasure_leaves_no_copy_in_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let store = HistoryStore::open(&format!("sqlite://{}", db.display())).unwrap();
    for n in 0..20 {
        store
            .record_blocking(calc("erase-me-7f3a", T0 + n, 1))
            .unwrap();
        store
            .record_blocking(calc("keep-me-51c0", T0 + n, 1))
            .unwrap();
    }
    assert!(contains(&journal_bytes(&db).1, "erase-me-7f3a"));
    assert_eq!(store.erase_case_blocking("erase-me-7f3a").unwrap(), 20);
    let (files, bytes) = journal_bytes(&db);
    assert!(!contains(&bytes, "erase-me-7f3a"), "{files:?}");
    // and when every copy was already indexed before the erasure (the usual case)
    for n in 0..5 {
        store
            .record_blocking(calc("erase-me-7f3a", T0 + n, 1))
            .unwrap();
    }
    assert_eq!(list_all(&store, "erase-me-7f3a", 50).len(), 5, "indexed");
    assert!(contains(&journal_bytes(&db).1, "erase-me-7f3a"));
    assert_eq!(store.erase_case_blocking("erase-me-7f3a").unwrap(), 5);
    let (files, bytes) = journal_bytes(&db);
    assert!(!contains(&bytes, "erase-me-7f3a"), "{files:?}");
    assert_eq!(list_all(&store, "keep-me-51c0", 50).len(), 20);
    assert!(list_all(&store, "erase-me-7f3a", 50).is_empty());
}

#[test]
fn sqlite_history_has_one_writer_and_any_number_of_readers() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/h.db", dir.path().display());
    let store = HistoryStore::open(&url).unwrap();
    let id = store.record_blocking(calc("shared", T0, 1)).unwrap();
    // a second server on the same file would hand out the same ids: refused, clearly
    let err = HistoryStore::open(&url).unwrap_err();
    assert!(matches!(err, HistoryError::InUse(_)), "{err}");
    assert!(err.to_string().contains("PostgreSQL"), "{err}");
    // re-budgeting from the command line reads beside it
    let reader = HistoryStore::open_read_only(&url).unwrap();
    let t0 = Instant::now();
    while reader.get_blocking(id).unwrap().is_none() {
        assert!(t0.elapsed().as_secs() < 10, "not indexed after 10 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(latest_blocking(&reader, 10).len(), 1);
    assert!(matches!(
        reader.record_blocking(calc("shared", T0, 2)),
        Err(HistoryError::ReadOnly)
    ));
    assert!(matches!(
        reader.erase_case_blocking("shared"),
        Err(HistoryError::ReadOnly)
    ));
}

/// Schema version 1 as it shipped (before `unit_id`), to test upgrading a live database.
const SCHEMA_V1: &str = "
    CREATE TABLE schema_version (version INTEGER NOT NULL);
    INSERT INTO schema_version (version) VALUES (1);
    CREATE TABLE calculations (
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
    CREATE INDEX calculations_created ON calculations (created_ms);
    INSERT INTO calculations (case_id, created_ms, caller, model_name, model_version,
        needs_json, result_json, weekly_min)
    VALUES ('old-case', 1700000000000, 'anonymous', 'nordstad', '1', '{}', '{}', 42.5);";

/// What a history upgraded from schema version 1 must show: the old row as it was (no team),
/// and new rows after it with their team.
fn upgraded_from_version_1(store: &HistoryStore) {
    let old = store.list_blocking("old-case", 10, "").unwrap();
    assert_eq!(old.items.len(), 1);
    assert_eq!(old.items[0].calc.weekly_min, 42.5);
    assert_eq!(old.items[0].calc.unit_id, "", "old rows get no team");
    let id = store.record_blocking(calc("new-case", T0, 1)).unwrap();
    assert!(id > old.items[0].id);
    assert_eq!(
        store.get_blocking(id).unwrap().unwrap().calc.unit_id,
        "team-1"
    );
}

#[test]
fn sqlite_upgrades_a_version_1_database_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(SCHEMA_V1)
        .unwrap();
    let store = HistoryStore::open(&format!("sqlite://{}", path.display())).unwrap();
    upgraded_from_version_1(&store);
    drop(store);
    let versions: Vec<i64> = rusqlite::Connection::open(&path)
        .unwrap()
        .prepare("SELECT version FROM schema_version ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(versions, [1, 2, 3]);
}

// ---- PostgreSQL ----

/// The CA of the test server's TLS certificate (`RAMTID_TEST_PG_CA`, or what the
/// throwaway server `pg_base` started printed).
static PG_CA: OnceLock<Option<String>> = OnceLock::new();

fn pg_ca() -> Option<&'static str> {
    pg_base()?;
    PG_CA
        .get_or_init(|| {
            std::env::var("RAMTID_TEST_PG_CA")
                .ok()
                .filter(|c| !c.is_empty())
        })
        .as_deref()
}

/// The server's base URL: the environment's, or a throwaway server's; None to skip.
fn pg_base() -> Option<&'static str> {
    static BASE: OnceLock<Option<String>> = OnceLock::new();
    BASE.get_or_init(|| {
        if let Ok(url) = std::env::var("RAMTID_TEST_PG_URL") {
            if !url.is_empty() {
                return Some(url);
            }
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pg.sh");
        let out = std::process::Command::new("bash")
            .arg(script)
            .arg("--watch")
            .arg(std::process::id().to_string())
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .output();
        let why = match out {
            Ok(o) if o.status.success() => {
                let text = String::from_utf8_lossy(&o.stdout);
                let _ = PG_CA.set(
                    text.lines()
                        .find_map(|l| l.strip_prefix("export RAMTID_TEST_PG_CA="))
                        .map(|c| c.trim().to_string()),
                );
                match text
                    .lines()
                    .find_map(|l| l.strip_prefix("export RAMTID_TEST_PG_URL="))
                {
                    Some(url) => return Some(url.trim().to_string()),
                    None => format!("tests/pg.sh printed no URL: {text}"),
                }
            }
            Ok(o) => format!("tests/pg.sh failed ({})", o.status),
            Err(e) => format!("cannot run tests/pg.sh: {e}"),
        };
        if std::env::var_os("CI").is_some() {
            panic!("PostgreSQL is required under CI and could not be started: {why}");
        }
        eprintln!("SKIPPED: PostgreSQL history tests: no RAMTID_TEST_PG_URL and {why}");
        None
    })
    .as_deref()
}

/// A fresh database on the server, dropped again when this is dropped.
struct PgDb {
    base: &'static str,
    name: String,
    url: String,
}

impl PgDb {
    fn create() -> Option<PgDb> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let base = pg_base()?;
        let name = format!(
            "ramtid_test_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let mut admin = postgres::Client::connect(base, postgres::NoTls).expect("connect");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        // postgres://user@host:port/db?params → same with our database
        let (head, query) = match base.split_once('?') {
            Some((h, q)) => (h, format!("?{q}")),
            None => (base, String::new()),
        };
        let scheme_end = head.find("://").unwrap() + 3;
        let server = match head[scheme_end..].find('/') {
            Some(slash) => &head[..scheme_end + slash],
            None => head,
        };
        let url = format!("{server}/{name}{query}");
        Some(PgDb { base, name, url })
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(self.base, postgres::NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

#[test]
fn postgres_passes_the_suite_and_keeps_data_across_reopen() {
    let Some(db) = PgDb::create() else { return };
    let store = HistoryStore::open(&db.url).unwrap();
    suite(&store);
    let id = store.record_blocking(calc("keep", T0, 1)).unwrap();
    drop(store);

    let again = HistoryStore::open(&db.url).unwrap();
    assert_eq!(
        again.get_blocking(id).unwrap().unwrap().calc,
        calc("keep", T0, 1)
    );
    let mut conn = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    let versions: i64 = conn
        .query_one("SELECT count(*) FROM schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(versions, 3, "each migration ran once");
}

#[test]
fn postgres_replicas_opening_together_migrate_once() {
    let Some(db) = PgDb::create() else { return };
    let stores: Vec<HistoryStore> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| HistoryStore::open(&db.url).unwrap()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // what one replica records, another reads
    let id = stores[0].record_blocking(calc("shared", T0, 2)).unwrap();
    assert_eq!(
        stores[3].get_blocking(id).unwrap().unwrap().calc,
        calc("shared", T0, 2)
    );
    let mut conn = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    let versions: i64 = conn
        .query_one("SELECT count(*) FROM schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(versions, 3, "each migration ran once");
}

// ---- an acknowledged record survives SIGKILL ----

/// Run as a child process by the SIGKILL tests (does nothing on its own): records from 16
/// threads as fast as it can and prints each acknowledged id.
#[test]
fn child_records_until_killed() {
    let Ok(url) = std::env::var("RAMTID_HISTORY_CHILD_URL") else {
        return;
    };
    let store = HistoryStore::open(&url).unwrap();
    std::thread::scope(|s| {
        for t in 0..16 {
            let store = &store;
            s.spawn(move || loop {
                let id = store
                    .record_blocking(calc(&format!("kill-{t}"), T0, t))
                    .unwrap();
                println!("acked {id}");
            });
        }
    });
}

/// Kills a recording child with SIGKILL and finds every id it was told is committed.
fn sigkill_loses_no_acknowledged_record(url: &str) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "history::child_records_until_killed",
            "--nocapture",
        ])
        .env("RAMTID_HISTORY_CHILD_URL", url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| l.strip_prefix("acked ").and_then(|id| id.parse().ok()))
            .collect::<Vec<i64>>()
    });
    std::thread::sleep(std::time::Duration::from_millis(1500));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let acked = reader.join().unwrap();
    assert!(acked.len() >= 20, "only {} acknowledged", acked.len());
    let store = HistoryStore::open(url).unwrap();
    let stored: HashSet<i64> = (0..16)
        .flat_map(|t| list_all(&store, &format!("kill-{t}"), 1000))
        .map(|s| s.id)
        .collect();
    for id in &acked {
        assert!(stored.contains(id), "acknowledged {id} lost");
    }
    // and one by id, through the other read path
    let last = *acked.iter().max().unwrap();
    assert!(store.get_blocking(last).unwrap().is_some());
    eprintln!("SIGKILL: all {} acknowledged records found", acked.len());
}

#[test]
fn sqlite_loses_no_acknowledged_record_on_sigkill() {
    // the default: acknowledged once written to the journal
    let dir = tempfile::tempdir().unwrap();
    sigkill_loses_no_acknowledged_record(&format!("sqlite://{}/h.db", dir.path().display()));
    // acknowledged once the journal is synced
    let dir = tempfile::tempdir().unwrap();
    sigkill_loses_no_acknowledged_record(&format!(
        "sqlite://{}/h.db?synchronous=full",
        dir.path().display()
    ));
}

#[test]
fn postgres_loses_no_acknowledged_record_on_sigkill() {
    let Some(db) = PgDb::create() else { return };
    sigkill_loses_no_acknowledged_record(&db.url);
}

// ---- throughput (ignored: figures, not checks) ----

/// A real calculation's size: the shipped model's estimate for the example needs.
fn realistic(case_id: &str, created_ms: i64) -> Calculation {
    static PAYLOAD: OnceLock<(String, Vec<u8>, f64)> = OnceLock::new();
    let (needs, result, weekly) = PAYLOAD.get_or_init(|| {
        let root = env!("CARGO_MANIFEST_DIR");
        let model =
            ramtid_core::model::Model::load(&std::path::Path::new(root).join("models/nordstad/1"))
                .unwrap();
        let needs_json =
            std::fs::read_to_string(std::path::Path::new(root).join("examples/needs.json"))
                .unwrap();
        let needs: ramtid_core::needs::NeedsSet = serde_json::from_str(&needs_json).unwrap();
        let valid = needs.validate(&model.catalog).unwrap();
        let e = ramtid_core::estimate::estimate(&model, &valid);
        (
            serde_json::to_string(&needs).unwrap(),
            // as the server stores it: the answer's wire message
            prost::Message::encode_to_vec(&ramtid_proto::convert::estimate(e.clone(), true)),
            e.weekly_min,
        )
    });
    Calculation {
        case_id: case_id.to_string(),
        created_ms,
        caller: "assessor:anna".into(),
        model_name: "nordstad".into(),
        model_version: "1".into(),
        needs_json: needs.clone(),
        result: StoredResult::Protobuf(result.clone()),
        weekly_min: *weekly,
        unit_id: String::new(),
    }
}

/// `threads` callers each recording `per_thread` calculations as fast as they can.
fn throughput(label: &str, store: &HistoryStore, threads: usize, per_thread: usize) {
    let bytes = {
        let c = realistic("x", 0);
        c.needs_json.len() + c.result.len()
    };
    let stats = store.writer_stats();
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                for n in 0..per_thread {
                    store
                        .record_blocking(realistic(&format!("{label}-{t}"), T0 + n as i64))
                        .unwrap();
                }
            });
        }
    });
    eprintln!("{label}: {bytes} bytes of JSON per calculation");
    let secs = start.elapsed().as_secs_f64();
    let total = threads * per_thread;
    let after = store.writer_stats();
    eprintln!(
        "{label}: {threads} threads x {per_thread} = {total} durable records in {secs:.2} s: {:.0} records/s, {:.1} per commit",
        total as f64 / secs,
        (after.records - stats.records) as f64 / (after.commits - stats.commits).max(1) as f64
    );
}

/// 100 000 cases with one calculation each, then one scan of the newest per case (what
/// caseload re-budgeting reads).
fn scan_100k(label: &str, store: &HistoryStore) {
    let (threads, per_thread) = (250, 400);
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                for n in 0..per_thread {
                    let case = format!("{label}-case-{:06}", t * per_thread + n);
                    store.record_blocking(realistic(&case, T0)).unwrap();
                }
            });
        }
    });
    let start = Instant::now();
    let mut rx = store.latest_per_case(1000);
    let mut n = 0;
    while let Some(part) = rx.blocking_recv() {
        n += part.unwrap().len();
    }
    assert!(n >= threads * per_thread);
    eprintln!(
        "{label}: latest_per_case streamed {n} cases in {:.2} s",
        start.elapsed().as_secs_f64()
    );
}

#[test]
#[ignore]
fn scan_100k_cases_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/h.db?synchronous=normal", dir.path().display());
    scan_100k("sqlite", &HistoryStore::open(&url).unwrap());
}

#[test]
#[ignore]
fn scan_100k_cases_postgres() {
    let Some(db) = PgDb::create() else { return };
    scan_100k("postgres", &HistoryStore::open(&db.url).unwrap());
}

#[test]
#[ignore]
fn throughput_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = HistoryStore::open(&format!("sqlite://{}/h.db", dir.path().display())).unwrap();
    throughput("sqlite-1", &store, 1, 300);
    throughput("sqlite-64", &store, 64, 300);
    throughput("sqlite-256", &store, 256, 100);
    let normal = format!("sqlite://{}/n.db?synchronous=normal", dir.path().display());
    let normal = HistoryStore::open(&normal).unwrap();
    throughput("sqlite-normal-1", &normal, 1, 300);
    throughput("sqlite-normal-64", &normal, 64, 300);
    let t = Instant::now();
    let n = latest_blocking(&store, 1000).len();
    eprintln!(
        "sqlite latest_per_case: {n} cases in {:.3} s",
        t.elapsed().as_secs_f64()
    );
}

#[test]
#[ignore]
fn throughput_postgres() {
    let Some(db) = PgDb::create() else { return };
    let store = HistoryStore::open(&db.url).unwrap();
    throughput("postgres-1", &store, 1, 300);
    throughput("postgres-64", &store, 64, 300);
    throughput("postgres-256", &store, 256, 100);
}

#[test]
fn postgres_upgrades_a_version_1_database_in_place() {
    let Some(db) = PgDb::create() else { return };
    let mut conn = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    // Version 1 as it shipped, before `unit_id`.
    conn.batch_execute(
        "CREATE TABLE schema_version (version BIGINT NOT NULL);
         INSERT INTO schema_version (version) VALUES (1);
         CREATE TABLE calculations (
             id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             case_id       TEXT COLLATE \"C\" NOT NULL,
             created_ms    BIGINT           NOT NULL,
             caller        TEXT             NOT NULL,
             model_name    TEXT             NOT NULL,
             model_version TEXT             NOT NULL,
             needs_json    TEXT             NOT NULL,
             result_json   TEXT             NOT NULL,
             weekly_min    DOUBLE PRECISION NOT NULL
         );
         CREATE INDEX calculations_case ON calculations (case_id, created_ms, id);
         CREATE INDEX calculations_created ON calculations (created_ms);
         INSERT INTO calculations (case_id, created_ms, caller, model_name, model_version,
             needs_json, result_json, weekly_min)
         VALUES ('old-case', 1700000000000, 'anonymous', 'nordstad', '1', '{}', '{}', 42.5);",
    )
    .unwrap();
    let store = HistoryStore::open(&db.url).unwrap();
    upgraded_from_version_1(&store);
    drop(store);
    let versions: Vec<i64> = conn
        .query("SELECT version FROM schema_version ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1, 2, 3]);
}

/// The history on a PostgreSQL server elsewhere: TLS, with the server's certificate verified
/// against the CA the URL names; a CA that did not sign it, or TLS asked for without one, is
/// refused at open.
#[test]
fn postgres_over_tls_verifies_the_server_certificate() {
    let Some(db) = PgDb::create() else { return };
    let Some(ca) = pg_ca() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "under CI the test server speaks TLS: RAMTID_TEST_PG_CA (tests/pg.sh) is required"
        );
        eprintln!("SKIPPED: PostgreSQL over TLS: the test server has no TLS (no openssl?)");
        return;
    };
    // sslmode=require is implied by a named CA.
    let url = format!("{}?sslrootcert={ca}", db.url);
    let store = HistoryStore::open(&url).unwrap();
    let id = store.record_blocking(calc("tls", T0, 1)).unwrap();
    assert_eq!(
        store.get_blocking(id).unwrap().unwrap().calc,
        calc("tls", T0, 1)
    );
    let mut admin = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
    let encrypted: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.datname = $1 AND s.ssl",
            &[&db.name],
        )
        .unwrap()
        .get(0);
    assert!(encrypted >= 2, "writer and reader over TLS: {encrypted}");
    drop(store);

    let wrong_ca =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls/ca.pem");
    let e = HistoryStore::open(&format!(
        "{}?sslmode=require&sslrootcert={}",
        db.url,
        wrong_ca.display()
    ))
    .unwrap_err();
    assert!(
        matches!(e, HistoryError::Postgres(_)) && format!("{e:?}").contains("UnknownIssuer"),
        "{e:?}"
    );
    let e = HistoryStore::open(&format!("{}?sslmode=require", db.url)).unwrap_err();
    assert!(e.to_string().contains("sslrootcert"), "{e}");
    assert!(
        !e.to_string().contains(&db.name),
        "no URL in the message: {e}"
    );
}
