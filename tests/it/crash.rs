//! An acknowledged calculation is never lost, through the real server: `ramtid serve` runs
//! as a child process, takes concurrent Estimate calls that name a case, is killed with
//! SIGKILL while calls are in flight, is started again on the same history, and must give
//! back every calculation it had answered OK, under its case id and with the minutes it
//! answered. `tests/history.rs` kills a process writing to the store directly; this covers
//! the path between the store and the answer too (the handler must answer only after the
//! commit), on SQLite and, with `RAMTID_TEST_PG_URL`, on PostgreSQL.
//!
//! `cargo test --test crash -- --nocapture` prints the counts.

use crate::common;
use common::{copy_dir, fixture};
use ramtid::client::{check_health, connect, sample_request};
use ramtid_proto::pb::{
    self, estimation_service_client::EstimationServiceClient,
    history_service_client::HistoryServiceClient, model_service_client::ModelServiceClient,
};
use std::collections::{HashSet, VecDeque};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;

/// Callers looping concurrently: enough that the writer commits groups of calculations and
/// that several calls are in flight whenever the kill comes.
const TASKS: usize = 32;
/// Kills, each followed by a restart on the same history: the second also finds whether a
/// history recovered from a kill goes on taking calculations durably, and whether it hands
/// out an id again that it had acknowledged before the first.
const KILLS: usize = 2;
/// Each kill comes once the load has run this long or acknowledged this many calculations
/// (each is looked up twice afterwards: a fast machine need not wait the full time)...
const LOAD_AT_MOST: Duration = Duration::from_millis(1000);
const ENOUGH_ACKED: usize = 5000;
/// ...and never before this many were acknowledged, so the test cannot pass on nothing.
const MIN_ACKED: usize = 100;
/// Start-up, and each call, on a loaded 2-core CI machine running a debug build: generous.
const PATIENCE: Duration = Duration::from_secs(120);
/// Log lines kept for the message when the server does not come up.
const LOG_TAIL: usize = 40;

#[test]
fn sqlite_server_loses_no_acknowledged_calculation_on_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    // No history.url: the default, data/history.db with synchronous=full.
    let report = crash_and_recover(dir.path(), None, "kill");
    assert!(
        dir.path().join("data/history.db").is_file(),
        "the history was the default SQLite file"
    );
    eprintln!("SQLite: {report}");
}

/// PostgreSQL (`RAMTID_TEST_PG_URL`, a role that may create databases: `.ci/run` starts one
/// with `tests/pg.sh`). Skipped, visibly, without one; under CI a missing server fails.
#[test]
fn postgres_server_loses_no_acknowledged_calculation_on_sigkill() {
    let base = match std::env::var("RAMTID_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL is required under CI: set RAMTID_TEST_PG_URL (tests/pg.sh)"
            );
            eprintln!("SKIPPED: SIGKILL through the server on PostgreSQL: no RAMTID_TEST_PG_URL");
            return;
        }
    };
    let db = PgDb::create(&base);
    let dir = tempfile::tempdir().unwrap();
    let report = crash_and_recover(dir.path(), Some(&db.url), "kill-pg");
    eprintln!("PostgreSQL: {report}");
}

/// Loads, kills, restarts and checks; the counts, for the log.
fn crash_and_recover(dir: &Path, history_url: Option<&str>, label: &str) -> String {
    let config = write_config(dir, history_url);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let t0 = Instant::now();
    let mut load = Load::default();
    for round in 0..KILLS {
        // Case ids of this run only, should the history outlive it (a shared PostgreSQL);
        // not digits alone, which the server may take for a personnummer and refuse.
        let prefix = format!("{label}-{}-{round}", std::process::id());
        let mut server = ServerProcess::start(&config);
        let part = rt.block_on(async {
            let channel = server.serving().await;
            drive_and_kill(&mut server, channel, &prefix).await
        });
        load.acked.extend(part.acked);
        load.failed.extend(part.failed);
    }
    // An id acknowledged twice means one acknowledged calculation was lost and its id
    // handed out again after the kill.
    let mut ids = HashSet::new();
    let twice: Vec<&str> = load
        .acked
        .iter()
        .filter(|a| !ids.insert(a.id))
        .map(|a| a.case_id.as_str())
        .collect();
    assert!(
        twice.is_empty(),
        "{} calculation ids acknowledged twice, e.g. for {:?}",
        twice.len(),
        &twice[..twice.len().min(10)]
    );

    let again = ServerProcess::start(&config);
    let check = rt.block_on(async {
        let channel = again.serving().await;
        verify(channel, &load).await
    });
    drop(again);

    assert!(
        check.missing.is_empty(),
        "{} of {} acknowledged calculations not found as answered after the restart, e.g.:\n{}",
        check.missing.len(),
        load.acked.len(),
        check.missing[..check.missing.len().min(10)].join("\n")
    );
    assert_eq!(check.found, load.acked.len());
    format!(
        "{} calculations acknowledged over {KILLS} SIGKILLs, {} calls failed in flight ({} of \
         them stored anyway), {} of {} acknowledged found after the restart with their case id \
         and minutes; {:.1} s",
        load.acked.len(),
        load.failed.len(),
        check.unacknowledged_stored,
        check.found,
        load.acked.len(),
        t0.elapsed().as_secs_f64()
    )
}

/// The server's configuration file: its own copy of the fixture, any free port, the log
/// as JSON so that the bound address can be read from it.
fn write_config(dir: &Path, history_url: Option<&str>) -> PathBuf {
    let f = fixture();
    let (models, data) = (dir.join("models"), dir.join("data"));
    copy_dir(&f.models, &models);
    copy_dir(&f.data, &data);
    let mut t = toml::Table::new();
    let mut section = |name: &str, pairs: &[(&str, &str)]| {
        let s: toml::Table = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), toml::Value::from(*v)))
            .collect();
        t.insert(name.into(), s.into());
    };
    section(
        "server",
        &[("listen", "127.0.0.1:0"), ("metrics_listen", "")],
    );
    section(
        "models",
        &[("dir", models.to_str().unwrap()), ("active", "nordstad/1")],
    );
    section("data", &[("dir", data.to_str().unwrap())]);
    section("log", &[("format", "json"), ("level", "info")]);
    if let Some(url) = history_url {
        section("history", &[("url", url)]);
    }
    let path = dir.join("ramtid.toml");
    std::fs::write(&path, toml::to_string(&t).unwrap()).unwrap();
    path
}

/// `ramtid serve` as a child process; killed (SIGKILL) and reaped when dropped, so that a
/// failing test leaves no server behind.
struct ServerProcess {
    child: Child,
    addr: String,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl ServerProcess {
    /// Starts the server and returns once it has bound its port (models may still load).
    fn start(config: &Path) -> ServerProcess {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ramtid"));
        cmd.arg("serve")
            .arg("--config")
            .arg(config)
            .current_dir(config.parent().unwrap())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // The configuration file alone decides: the environment layers above it, and
        // RAMTID_LOG could hide the line that names the port.
        cmd.env_remove("RAMTID_LOG");
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("RAMTID__") {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = mpsc::channel();
        {
            let log = log.clone();
            // Reads to the end: a server whose stderr pipe fills up blocks on its next log line.
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(addr) = listening_addr(&line) {
                        let _ = tx.send(addr);
                    }
                    let mut log = log.lock().unwrap();
                    if log.len() == LOG_TAIL {
                        log.pop_front();
                    }
                    log.push_back(line);
                }
            });
        }
        let mut server = ServerProcess {
            child,
            addr: String::new(),
            log,
        };
        match rx.recv_timeout(PATIENCE) {
            Ok(addr) => server.addr = addr,
            Err(e) => {
                let status = server.child.try_wait();
                panic!(
                    "ramtid serve did not report its address ({e}; exit: {status:?}); log:\n{}",
                    server.log_tail()
                );
            }
        }
        server
    }

    /// Waits until the health service says SERVING (the production model is loaded).
    async fn serving(&self) -> Channel {
        let t0 = Instant::now();
        loop {
            match check_health(&self.addr, "", Duration::from_secs(5)).await {
                Ok(ServingStatus::Serving) => break,
                status => assert!(
                    t0.elapsed() < PATIENCE,
                    "not SERVING: {status:?}; log:\n{}",
                    self.log_tail()
                ),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        connect(&self.addr, Duration::from_secs(10)).await.unwrap()
    }

    fn sigkill(&mut self) {
        use std::os::unix::process::ExitStatusExt;
        self.child.kill().unwrap(); // SIGKILL on Unix
        let status = self.child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "killed, not exited: {status:?}");
    }

    fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap();
        log.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in the server's JSON "listening" log line.
fn listening_addr(line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = v.get("fields")?;
    (fields.get("message")?.as_str()? == "listening")
        .then(|| fields.get("addr")?.as_str().map(str::to_string))
        .flatten()
}

#[derive(Clone)]
struct Ack {
    case_id: String,
    id: i64,
    weekly_min: f64,
}

#[derive(Default)]
struct Load {
    acked: Vec<Ack>,
    /// Case ids of the calls that got no answer because of the kill.
    failed: Vec<String>,
}

/// Drives Estimate from [`TASKS`] callers until enough calculations were acknowledged,
/// then kills the server with calls in flight (and reaps it).
async fn drive_and_kill(server: &mut ServerProcess, channel: Channel, prefix: &str) -> Load {
    let catalog = ModelServiceClient::new(channel.clone())
        .get_catalog(pb::GetCatalogRequest::default())
        .await
        .unwrap()
        .into_inner();
    let base = sample_request(&catalog);
    assert!(!base.needs.is_empty());
    let killed = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (base, killed, acked) = (base.clone(), killed.clone(), acked.clone());
            let mut client = EstimationServiceClient::new(channel.clone());
            let prefix = prefix.to_string();
            tokio::spawn(async move {
                let (mut acks, mut failed) = (Vec::new(), Vec::new());
                for n in 0.. {
                    if killed.load(Ordering::SeqCst) {
                        break;
                    }
                    let mut r = base.clone();
                    r.case_id = format!("{prefix}-{task}-{n}");
                    // Calculations differ in their minutes, so that finding the right
                    // minutes under an id means finding the right calculation.
                    r.needs[0].per_week = 1.0 + ((task * 7 + n) % 28) as f64;
                    let mut call = tonic::Request::new(r.clone());
                    call.set_timeout(PATIENCE);
                    match client.estimate(call).await {
                        Ok(resp) => {
                            let resp = resp.into_inner();
                            assert!(resp.calculation_id > 0, "{}: nothing stored", r.case_id);
                            acks.push(Ack {
                                case_id: r.case_id,
                                id: resp.calculation_id,
                                weekly_min: resp.estimate.unwrap().weekly_min,
                            });
                            acked.fetch_add(1, Ordering::SeqCst);
                        }
                        // The flag is set before the kill: a failure seen without it is a
                        // real one.
                        Err(_) if killed.load(Ordering::SeqCst) => {
                            failed.push(r.case_id);
                            break;
                        }
                        Err(status) => panic!("{} failed before the kill: {status:?}", r.case_id),
                    }
                }
                (acks, failed)
            })
        })
        .collect();

    let t0 = Instant::now();
    loop {
        let n = acked.load(Ordering::SeqCst);
        if n >= MIN_ACKED && (n >= ENOUGH_ACKED || t0.elapsed() >= LOAD_AT_MOST) {
            break;
        }
        assert!(
            t0.elapsed() < PATIENCE,
            "only {n} calculations acknowledged in {PATIENCE:?}"
        );
        if tasks.iter().any(|t| t.is_finished()) {
            // A caller ended before the kill: it panicked; joining it below shows why.
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    killed.store(true, Ordering::SeqCst);
    server.sigkill();

    let mut load = Load::default();
    for t in tasks {
        let (acks, failed) = t.await.expect("a caller failed");
        load.acked.extend(acks);
        load.failed.extend(failed);
    }
    assert!(
        load.acked.len() >= MIN_ACKED,
        "only {} acknowledged",
        load.acked.len()
    );
    load
}

struct Check {
    found: usize,
    /// What was wrong with each acknowledged calculation not found as answered.
    missing: Vec<String>,
    unacknowledged_stored: usize,
}

/// Looks every acknowledged calculation up by id and by case; and, for the record only,
/// which of the calls cut off by the kill were stored all the same.
async fn verify(channel: Channel, load: &Load) -> Check {
    let acked = Arc::new(load.acked.clone());
    let next = Arc::new(AtomicUsize::new(0));
    // A few concurrent checkers: thousands of lookups one after another would be slow.
    let checkers: Vec<_> = (0..8)
        .map(|_| {
            let (acked, next) = (acked.clone(), next.clone());
            let mut history = HistoryServiceClient::new(channel.clone());
            tokio::spawn(async move {
                let (mut found, mut missing) = (0, Vec::new());
                while let Some(ack) = acked.get(next.fetch_add(1, Ordering::SeqCst)) {
                    match check_one(&mut history, ack).await {
                        Ok(()) => found += 1,
                        Err(e) => missing.push(e),
                    }
                }
                (found, missing)
            })
        })
        .collect();
    let (mut found, mut missing) = (0, Vec::new());
    for c in checkers {
        let (f, m) = c.await.expect("a checker failed");
        found += f;
        missing.extend(m);
    }

    let mut unacknowledged_stored = 0;
    let mut history = HistoryServiceClient::new(channel);
    for case_id in &load.failed {
        let list = history
            .list_calculations(pb::ListCalculationsRequest {
                case_id: case_id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        // Committed but not answered before the kill: allowed, and worth seeing.
        assert!(list.calculations.len() <= 1, "case {case_id} stored twice");
        unacknowledged_stored += list.calculations.len();
    }
    Check {
        found,
        missing,
        unacknowledged_stored,
    }
}

/// The calculation is there under its id, with its case id and the minutes answered, and
/// its case lists it alone (each call had a case of its own).
async fn check_one(history: &mut HistoryServiceClient<Channel>, ack: &Ack) -> Result<(), String> {
    let (id, case_id) = (ack.id, &ack.case_id);
    let c = history
        .get_calculation(pb::GetCalculationRequest { id })
        .await
        .map_err(|s| format!("{id} ({case_id}): {:?} {}", s.code(), s.message()))?
        .into_inner();
    if &c.case_id != case_id {
        return Err(format!("{id}: stored under {}, not {case_id}", c.case_id));
    }
    let stored = c.estimate.map_or(f64::NAN, |e| e.weekly_min);
    if !same_minutes(stored, ack.weekly_min) {
        return Err(format!(
            "{id} ({case_id}): {stored} weekly minutes stored, {} answered",
            ack.weekly_min
        ));
    }
    let list = history
        .list_calculations(pb::ListCalculationsRequest {
            case_id: case_id.clone(),
            ..Default::default()
        })
        .await
        .map_err(|s| format!("case {case_id}: {:?} {}", s.code(), s.message()))?
        .into_inner();
    let ids: Vec<i64> = list.calculations.iter().map(|c| c.id).collect();
    if ids != [id] {
        return Err(format!("case {case_id} lists {ids:?}, not [{id}]"));
    }
    Ok(())
}

/// The stored estimate comes back through JSON, whose f64 parsing may differ from the
/// printed value in the last bit; anything more is a different calculation.
fn same_minutes(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// A fresh database on the PostgreSQL server, dropped again when this is dropped.
struct PgDb {
    base: String,
    name: String,
    url: String,
}

impl PgDb {
    fn create(base: &str) -> PgDb {
        let name = format!("ramtid_crash_test_{}", std::process::id());
        let mut admin = postgres::Client::connect(base, postgres::NoTls).expect("connect");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        // postgres://user@host:port/db?params → the same with our database
        let (head, query) = match base.split_once('?') {
            Some((h, q)) => (h, format!("?{q}")),
            None => (base, String::new()),
        };
        let scheme_end = head.find("://").unwrap() + 3;
        let server = match head[scheme_end..].find('/') {
            Some(slash) => &head[..scheme_end + slash],
            None => head,
        };
        PgDb {
            url: format!("{server}/{name}{query}"),
            base: base.to_string(),
            name,
        }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.base, postgres::NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}
