//! TrainModel through the real server and client: the training runs in a worker process
//! confined to the data directory, within limits, one at a time, cancellable, and a worker
//! that dies ends the stream with INTERNAL and an audit line.

use crate::common;
use common::{server_config, world, World};
use ramtid_proto::pb::{self, model_service_client::ModelServiceClient};
use ramtid_server::config::Config;
use ramtid_server::{start, Running};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

fn config(w: &World) -> Config {
    server_config(w)
}

async fn serve(cfg: Config) -> (Running, ModelServiceClient<Channel>) {
    let running = start(cfg).await.unwrap();
    let channel = Channel::from_shared(format!("http://{}", running.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    (running, ModelServiceClient::new(channel))
}

fn request(catalog: &str, visits: &str) -> pb::TrainModelRequest {
    pb::TrainModelRequest {
        catalog_path: catalog.into(),
        visits_path: visits.into(),
        name: "nordstad".into(),
        folds: 3,
        activate: false,
        settings: None,
    }
}

/// Runs a TrainModel to its end: the stages seen and the result or the status.
async fn train(
    m: &mut ModelServiceClient<Channel>,
    r: pb::TrainModelRequest,
) -> (Vec<String>, Result<pb::TrainResult, Status>) {
    let mut stages = Vec::new();
    let mut stream = match m.train_model(r).await {
        Ok(s) => s.into_inner(),
        Err(st) => return (stages, Err(st)),
    };
    let mut done = None;
    loop {
        match stream.message().await {
            Ok(Some(p)) => match p.event.unwrap() {
                pb::train_progress::Event::Stage(s) => stages.push(s.stage),
                pb::train_progress::Event::Done(d) => done = Some(d),
            },
            Ok(None) => break,
            Err(st) => return (stages, Err(st)),
        }
    }
    let done = done.ok_or_else(|| Status::unknown("the stream ended OK without a result"));
    (stages, done)
}

fn described(st: &Status) -> String {
    let details = st
        .get_error_details()
        .bad_request()
        .map(|b| {
            b.field_violations
                .iter()
                .map(|v| format!("{}: {}", v.field, v.description))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    format!("{} | {details}", st.message())
}

fn field_of(st: &Status) -> Vec<String> {
    st.get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

fn audit_lines(w: &World) -> Vec<String> {
    std::fs::read_to_string(w.data.join("audit.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn versions(w: &World) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(w.models.join("nordstad"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_training_runs_in_a_worker_and_publishes_a_complete_version() {
    let w = world();
    let (running, mut m) = serve(config(&w)).await;
    let (stages, done) = train(&mut m, request("catalog.toml", "visits.csv")).await;
    let done = done.unwrap();
    assert_eq!(stages, vec!["reading", "fitting", "writing"]);
    assert_eq!(done.model.unwrap().version, "2");
    // Only published versions: no temporary folder stays behind.
    assert_eq!(versions(&w), vec!["1", "2"]);
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_and_other_files_never_come_back_in_an_error() {
    let w = world();
    let (running, mut m) = serve(config(&w)).await;
    // Something to audit first, so that audit.log holds records.
    let _ = m
        .activate_model(pb::ActivateModelRequest {
            model: "nordstad/1".into(),
            alias: String::new(),
        })
        .await
        .unwrap();
    let audit = std::fs::read_to_string(w.data.join("audit.log")).unwrap();
    assert!(audit.contains("activate_model"), "{audit}");
    // The audit log itself, and a copy of it under another name (parsed, refused by
    // position), as catalog and as visit log.
    std::fs::write(w.data.join("copy.log"), &audit).unwrap();
    std::fs::write(
        w.data.join("secret.toml"),
        "[[insats]]\ncode = \"SECRET-MARKER\"\ncategory = \"SECRET-MARKER-2\"\nschablon_min = 1\n",
    )
    .unwrap();
    for (catalog, visits, field) in [
        ("audit.log", "visits.csv", "catalog_path"),
        ("catalog.toml", "audit.log", "visits_path"),
        ("copy.log", "visits.csv", "catalog_path"),
        ("catalog.toml", "copy.log", "visits_path"),
        ("secret.toml", "visits.csv", "catalog_path"),
    ] {
        let (_, result) = train(&mut m, request(catalog, visits)).await;
        let st = result.expect_err(catalog);
        let text = described(&st);
        assert_eq!(
            st.code(),
            Code::InvalidArgument,
            "{catalog} {visits}: {text}"
        );
        assert_eq!(field_of(&st), vec![field.to_string()], "{text}");
        for leak in [
            "activate_model",
            "nordstad/1",
            "SECRET-MARKER",
            "\"ts\"",
            "action",
        ] {
            assert!(
                !text.contains(leak),
                "{catalog} {visits}: '{leak}' in {text}"
            );
        }
        if catalog == "copy.log" {
            assert!(text.contains("line 1, column"), "{text}");
        }
    }
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_swapped_for_a_link_outside_is_never_read() {
    let w = world();
    let (running, mut m) = serve(config(&w)).await;
    // Outside the data directory: a catalog whose errors would name its code.
    let secret = w.root.join("secret.toml");
    let outside = "[[insats]]\ncode = \"SECRET-MARKER\"\ncategory = \"service\"\nschablon_min = 1\n\
                   [[insats]]\ncode = \"SECRET-MARKER\"\ncategory = \"service\"\nschablon_min = 2\n";
    std::fs::write(&secret, outside).unwrap();
    // Inside: a real catalog, and a log that is only a header (fails right after the
    // catalog was read, so every call reads the catalog).
    let real = std::fs::read_to_string(w.data.join("catalog.toml")).unwrap();
    let header = std::fs::read_to_string(w.data.join("visits.csv")).unwrap();
    let header = header.lines().next().unwrap().to_string() + "\n";
    std::fs::write(w.data.join("empty.csv"), header).unwrap();
    // The real catalog and a link to the secret one, swapped in one call at a time.
    let (race, other) =
        crate::train_limits::exchanged(&w.data, "race.toml", real.as_bytes(), &secret);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flipper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut flips = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                crate::train_limits::exchange(&race, &other);
                flips += 1;
            }
            flips
        })
    };
    let (mut as_link, mut as_file) = (0, 0);
    for _ in 0..400 {
        let (_, result) = train(&mut m, request("race.toml", "empty.csv")).await;
        let st = result.expect_err("a header-only log cannot train");
        let text = described(&st);
        assert!(!text.contains("SECRET-MARKER"), "{text}");
        assert!(
            !text.contains("defined twice"),
            "the outside file was read: {text}"
        );
        if text.contains("symbolic link") {
            as_link += 1;
        } else {
            assert!(text.contains("no usable visits"), "{text}");
            as_file += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let flips = flipper.join().unwrap();
    eprintln!("400 calls over {flips} flips: {as_link} met the link, {as_file} the file");
    assert!(flips > 0);
    running.shutdown().await.unwrap();
}

/// A catalog of `n` codes in the contract's shape.
fn big_catalog(n: usize) -> String {
    let mut s = String::with_capacity(n * 64);
    for i in 0..n {
        s.push_str(&format!(
            "[[insats]]\ncode = \"C{i}\"\ncategory = \"service\"\nschablon_min = 10\n"
        ));
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_over_the_limits_is_refused_with_the_numbers() {
    let w = world();
    std::fs::write(w.data.join("huge.toml"), big_catalog(100_200)).unwrap();
    let (running, mut m) = serve(config(&w)).await;
    let (stages, result) = train(&mut m, request("huge.toml", "visits.csv")).await;
    let st = result.unwrap_err();
    let text = described(&st);
    assert_eq!(st.code(), Code::InvalidArgument, "{text}");
    assert_eq!(field_of(&st), vec!["catalog_path".to_string()]);
    assert!(
        text.contains("catalog has 100 200 codes; the limit is 2 000 (training.max_codes)"),
        "{text}"
    );
    // Refused before the log was read.
    assert!(stages.is_empty(), "{stages:?}");
    assert!(audit_lines(&w)
        .iter()
        .any(|l| l.contains("train_model") && l.contains("training.max_codes")));
    running.shutdown().await.unwrap();
}

/// A stand-in worker: reads the job, reports a stage, leaves a temporary version folder
/// as a real one would while writing, then does what `then` says.
fn fake_worker(w: &World, then: &str) -> PathBuf {
    let path = w.root.join(format!("worker-{}.sh", then.len()));
    let tmp = w.models.join("nordstad").join(".tmp-2-$$-0000abcd");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nread job\nmkdir -p '{}'\necho '{{\"stage\":{{\"stage\":\"reading\",\"total\":null,\"elapsed_s\":0.0}}}}'\n{then}\n",
            tmp.display().to_string().replace("$$", "'$$'")
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn temp_folders(w: &World) -> Vec<String> {
    versions(w)
        .into_iter()
        .filter(|v| v.starts_with(".tmp-"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_dies_ends_the_stream_with_internal_and_an_audit_line() {
    let w = world();
    let mut cfg = config(&w);
    for (then, expect) in [
        ("kill -KILL $$", "stopped by signal 9"),
        ("exit 101", "exited with status 101"),
        (
            "echo '{\"failed\":{\"kind\":\"internal\",\"field\":null,\"message\":\"the training worker panicked at src/x.rs:1\"}}'; exit 101",
            "panicked at src/x.rs:1",
        ),
    ] {
        cfg.training.worker = fake_worker(&w, then);
        let (running, mut m) = serve(cfg.clone()).await;
        let before = audit_lines(&w).len();
        let (stages, result) = train(&mut m, request("catalog.toml", "visits.csv")).await;
        let st = result.unwrap_err();
        assert_eq!(st.code(), Code::Internal, "{then}: {}", st.message());
        assert!(st.message().contains(expect), "{then}: {}", st.message());
        assert_eq!(stages, vec!["reading"]);
        // The line the training needed before it began, then its outcome.
        let lines = audit_lines(&w);
        assert_eq!(lines.len(), before + 2, "{then}: {lines:?}");
        assert!(lines[before].contains("train_model") && lines[before].contains("started"));
        assert!(
            lines[before + 1].contains("train_model") && lines[before + 1].contains("Internal")
        );
        // What the dead worker left is removed; no version was published.
        assert!(temp_folders(&w).is_empty(), "{:?}", versions(&w));
        assert_eq!(versions(&w), vec!["1"]);
        running.shutdown().await.unwrap();
    }
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// The pid of the running worker, from the temporary folder it made.
async fn worker_pid(w: &World) -> u32 {
    let t0 = Instant::now();
    loop {
        if let Some(pid) = temp_folders(w)
            .first()
            .and_then(|n| ramtid_core::model::temp_writer(n))
        {
            return pid;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the worker never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_training_at_a_time_and_a_cancelled_one_is_killed_and_cleaned() {
    let w = world();
    let mut cfg = config(&w);
    cfg.training.worker = fake_worker(&w, "sleep 60");
    let (running, mut m) = serve(cfg).await;
    let mut first = m
        .train_model(request("catalog.toml", "visits.csv"))
        .await
        .unwrap()
        .into_inner();
    let stage = first.message().await.unwrap().unwrap();
    assert!(matches!(
        stage.event,
        Some(pb::train_progress::Event::Stage(_))
    ));
    let pid = worker_pid(&w).await;
    assert!(alive(pid));

    // A second training while the first runs.
    let (_, second) = train(&mut m, request("catalog.toml", "visits.csv")).await;
    let st = second.unwrap_err();
    assert_eq!(st.code(), Code::Aborted, "{}", st.message());
    assert!(st.message().contains("in progress"), "{}", st.message());

    // The caller goes away: the worker is killed, its folder removed, the end audited.
    drop(first);
    let t0 = Instant::now();
    while alive(pid) || !temp_folders(&w).is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "worker {pid} still there: {:?}",
            versions(&w)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t0 = Instant::now();
    while !audit_lines(&w).iter().any(|l| l.contains("cancelled")) {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{:?}",
            audit_lines(&w)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The slot is free again: the next training starts (and is cancelled in turn).
    let mut third = m
        .train_model(request("catalog.toml", "visits.csv"))
        .await
        .unwrap()
        .into_inner();
    let stage = third.message().await.unwrap().unwrap();
    assert!(matches!(
        stage.event,
        Some(pb::train_progress::Event::Stage(_))
    ));
    drop(third);
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_temporary_versions_are_ignored_and_removed_at_start_up() {
    let w = world();
    // Left by a worker that is gone (pid beyond pid_max): half written, invalid manifest.
    let stale = w.models.join("nordstad/.tmp-2-4194305-deadbeef");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("manifest.json"), "{").unwrap();
    let (running, mut m) = serve(config(&w)).await;
    assert!(!stale.exists());
    let list = m
        .list_models(pb::ListModelsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let seen: Vec<String> = list.models.iter().map(|i| i.version.clone()).collect();
    assert_eq!(seen, vec!["1".to_string()]);
    running.shutdown().await.unwrap();
}

/// The worker limits its own address space (`RLIMIT_AS`) before it reads anything: what a
/// training allocates beyond its budget fails in the worker, never in the server. Read from
/// /proc while the worker trains.
#[cfg(target_os = "linux")]
#[test]
fn the_worker_trains_under_its_memory_limit() {
    use ramtid_core::params::{FitParams, ParamGuard};
    use ramtid_core::train::{TrainLimits, TrainRequest, WORKER_HEADROOM_MB};
    use std::io::Write;
    let w = world();
    let job = ramtid_server::worker::Job {
        request: TrainRequest {
            catalog: "catalog.toml".into(),
            visits: "visits.csv".into(),
            data_dir: Some(w.data.clone()),
            limits: TrainLimits {
                max_memory_mb: 512,
                ..Default::default()
            },
            models_dir: w.models.clone(),
            name: "limited".into(),
            rejects: None,
            params: FitParams::new().folds(3).check().unwrap(),
        },
        limit_memory: true,
        lower_priority: false,
    };
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ramtid"))
        .arg(ramtid_server::worker::SUBCOMMAND)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let limits = format!("/proc/{}/limits", child.id());
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}\n", serde_json::to_string(&job).unwrap()).as_bytes())
        .unwrap();
    let mut seen = None;
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() && t0.elapsed() < Duration::from_secs(120) {
        let text = std::fs::read_to_string(&limits).unwrap_or_default();
        let soft = text
            .lines()
            .find(|l| l.starts_with("Max address space"))
            .and_then(|l| l.split_whitespace().nth(3))
            .unwrap_or("unlimited")
            .to_string();
        if soft != "unlimited" {
            seen = Some(soft);
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let status = child.wait().unwrap();
    assert_eq!(
        seen,
        Some(((512 + WORKER_HEADROOM_MB) << 20).to_string()),
        "the worker ({status}) never ran with its address space limited"
    );
    assert!(status.success(), "{status}");
}
