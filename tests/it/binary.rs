//! The real binary: flags, environment variables, defaults and logs.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{interaction, raise_open_files_limit};

struct Running {
    child: Child,
    addr: String,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fairtreat"));
    cmd.args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("REDIS_URL")
        .env_remove("FAIRTREAT_BIND")
        .env_remove("FAIRTREAT_POLICY")
        .env_remove("FAIRTREAT_MODELS")
        .env("RUST_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        // Tests run side by side in the repository: no shared ./var journal
        // (the restart test turns it back on with its own directory).
        .env("FAIRTREAT_NO_JOURNAL", "1")
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Starts the binary and waits for its "listening" log line.
fn start(args: &[&str], envs: &[(&str, &str)]) -> Running {
    let mut child = command(args, envs).spawn().expect("binary runs");
    let stderr = child.stderr.take().unwrap();
    let logs = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let sink = logs.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v["message"] == "fairtreat listening" {
                    let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_string());
                }
            }
            sink.lock().unwrap().push(line);
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("no listening line; logs: {:?}", logs.lock().unwrap()));
    Running { child, addr, logs }
}

#[actix_web::test]
async fn serve_flags_set_the_address_policy_and_models_and_logs_are_json_without_customer_text() {
    let run = start(
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--policy",
            "config/policy.toml",
            "--models",
            "models",
        ],
        &[],
    );
    let client = reqwest::Client::new();
    let mut body = interaction();
    body["text"] = serde_json::json!("CANARY-TEXT-7f3a the parcel arrived broken");
    let d: Value = client
        .post(format!("http://{}/v1/decisions", run.addr))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = d["decision_id"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(200));
    let logs = run.logs();
    let request_line = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message"] == "request" && v["route"] == "/v1/decisions")
        .unwrap_or_else(|| panic!("no request line in {logs}"));
    assert_eq!(
        request_line["span"]["decision_id"],
        id.as_str(),
        "the request span names the decision"
    );
    assert_eq!(request_line["span"]["interaction_id"], "crm-8812");
    assert!(
        !logs.contains("CANARY-TEXT"),
        "customer text must not be logged at info"
    );
}

#[actix_web::test]
async fn environment_variables_configure_serve_without_flags() {
    let dir = std::env::temp_dir().join(format!("fairtreat-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/policy.toml"))
            .unwrap()
            .replacen("version = 1", "version = 7", 1);
    let path = dir.join("policy.toml");
    std::fs::write(&path, policy).unwrap();
    // No subcommand: the same as `serve`.
    let run = start(
        &[],
        &[
            ("FAIRTREAT_BIND", "127.0.0.1:0"),
            ("FAIRTREAT_POLICY", path.to_str().unwrap()),
            ("FAIRTREAT_MODELS", "models"),
        ],
    );
    let ready: Value = reqwest::get(format!("http://{}/readyz", run.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["policy_version"], 7);
    drop(run);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_explicit_policy_or_models_directory_fails_at_start_with_a_clear_message() {
    for (args, needle) in [
        (
            vec![
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--policy",
                "/nonexistent/policy.toml",
            ],
            "/nonexistent/policy.toml",
        ),
        (
            vec![
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--models",
                "/nonexistent/models",
            ],
            "/nonexistent/models",
        ),
    ] {
        let out = command(&args, &[]).output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{err}");
    }
}

#[test]
fn out_of_range_deadlines_shedding_and_throttle_limits_are_refused_from_flags_and_the_environment()
{
    // With and without the `serve` subcommand: the bare binary reads the
    // same variables through the same checks.
    for (args, envs, flag) in [
        (
            vec!["serve", "--store-deadline-ms", "5"],
            vec![],
            "--store-deadline-ms",
        ),
        (
            vec!["serve"],
            vec![("FAIRTREAT_STORE_DEADLINE_MS", "20000")],
            "--store-deadline-ms",
        ),
        (
            vec![],
            vec![("FAIRTREAT_STORE_DEADLINE_MS", "5")],
            "--store-deadline-ms",
        ),
        (
            vec![],
            vec![("FAIRTREAT_STORE_DEADLINE_MS", "soon")],
            "--store-deadline-ms",
        ),
        (
            vec!["serve", "--shed-after-ms=-1"],
            vec![],
            "--shed-after-ms",
        ),
        (
            vec![],
            vec![("FAIRTREAT_SHED_AFTER_MS", "60001")],
            "--shed-after-ms",
        ),
        (
            vec![],
            vec![("FAIRTREAT_SHED_AFTER_MS", "fast")],
            "--shed-after-ms",
        ),
        (
            vec!["serve", "--auth-failure-limit=-1"],
            vec![],
            "--auth-failure-limit",
        ),
        (
            vec![],
            vec![("FAIRTREAT_AUTH_FAILURE_LIMIT", "1000001")],
            "--auth-failure-limit",
        ),
        (
            vec!["serve", "--auth-failure-window-secs", "0"],
            vec![],
            "--auth-failure-window-secs",
        ),
        (
            vec![],
            vec![("FAIRTREAT_AUTH_FAILURE_WINDOW_SECS", "86401")],
            "--auth-failure-window-secs",
        ),
    ] {
        let mut envs = envs;
        envs.push(("FAIRTREAT_BIND", "127.0.0.1:0"));
        let out = command(&args, &envs).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?} {envs:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag), "{args:?} {envs:?}: {err}");
    }
}

#[test]
fn an_invalid_policy_file_is_refused_naming_each_bad_field() {
    let dir = std::env::temp_dir().join(format!("fairtreat-badpolicy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/policy.toml"))
            .unwrap()
            .replacen("min_parity_ratio = 0.8", "min_parity_ratio = 1.8", 1)
            .replacen("daily = 5000.0", "daily = -5.0", 1);
    let path = dir.join("policy.toml");
    std::fs::write(&path, policy).unwrap();
    let out = command(
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--policy",
            path.to_str().unwrap(),
        ],
        &[],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fairness.min_parity_ratio") && err.contains("budget.daily"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Decides `n` interactions and reports alternating rewards; returns the decisions.
async fn decide_and_report(addr: &str, n: usize) -> Vec<Value> {
    let client = reqwest::Client::new();
    let mut out = Vec::new();
    for k in 0..n {
        let d: Value = client
            .post(format!("http://{addr}/v1/decisions"))
            .json(&crate::helpers::interaction_for(500 + k))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let resp = client
            .post(format!("http://{addr}/v1/feedback"))
            .json(&serde_json::json!({"decision_id": d["decision_id"], "reward": (k % 2) as f64}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        out.push(d);
    }
    out
}

#[actix_web::test]
async fn after_kill_9_a_restart_replays_decisions_and_feedback_from_the_journal_and_export_trains()
{
    let dir = std::env::temp_dir().join(format!("fairtreat-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data");
    let data_arg = data.to_str().unwrap().to_string();
    let args = ["serve", "--bind", "127.0.0.1:0", "--data-dir", &data_arg];
    let journal_on = [("FAIRTREAT_NO_JOURNAL", "false")];
    let mut run = start(&args, &journal_on);
    let decided = decide_and_report(&run.addr, 8).await;
    // kill -9: no shutdown hook runs; the default fsync policy (interval)
    // loses nothing to a process crash.
    run.child.kill().unwrap();
    run.child.wait().unwrap();
    drop(run);

    let run = start(&args, &journal_on);
    let client = reqwest::Client::new();
    let again: Value = client
        .post(format!("http://{}/v1/decisions", run.addr))
        .json(&crate::helpers::interaction_for(503))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        again, decided[3],
        "the same interaction returns the same decision"
    );
    let feedback = |reward: f64| {
        client
            .post(format!("http://{}/v1/feedback", run.addr))
            .json(&serde_json::json!({"decision_id": decided[3]["decision_id"], "reward": reward}))
            .send()
    };
    assert_eq!(
        feedback(1.0).await.unwrap().status().as_u16(),
        200,
        "identical retry"
    );
    let conflict = feedback(0.0).await.unwrap();
    assert_eq!(conflict.status().as_u16(), 409);
    let body: Value = conflict.json().await.unwrap();
    assert_eq!(body["error"]["code"], "feedback_conflict");
    drop(run);

    let export = dir.join("export.jsonl");
    let out = command(
        &[
            "export",
            "--data-dir",
            &data_arg,
            "--out",
            export.to_str().unwrap(),
        ],
        &[],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records: Vec<fairtreat::sim::logs::LogRecord> = std::fs::read_to_string(&export)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), decided.len(), "every decision had feedback");
    for (r, d) in records.iter().zip(&decided) {
        assert_eq!(
            r.decision_id.to_string(),
            d["decision_id"].as_str().unwrap()
        );
        assert_eq!(r.action, d["action"].as_str().unwrap());
    }
    assert_eq!(records[3].reward, 1.0);

    // The export is training data as it stands.
    let models = dir.join("models");
    let out = command(
        &[
            "train",
            "outcome",
            "--logs",
            export.to_str().unwrap(),
            "--out",
            models.to_str().unwrap(),
            "--version",
            "from-export",
            "--eval-n",
            "200",
        ],
        &[],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(models.join("from-export").join("model.json").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// TESTPLAN §4.4 (slowloris) and S5: connections that send part of a
/// request head and then nothing hold no worker. A fresh decision is
/// answered while 2,000 of them hang, and each is answered 408 and closed
/// once `client_request_timeout` (5 s) has passed.
#[actix_web::test]
async fn two_thousand_half_open_request_heads_block_no_one_and_are_closed_with_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const HALF_OPEN: usize = 2_000;
    raise_open_files_limit(3 * HALF_OPEN as u64);
    let run = start(&["serve", "--bind", "127.0.0.1:0"], &[]);

    let mut hanging = Vec::with_capacity(HALF_OPEN);
    for _ in 0..HALF_OPEN {
        let mut socket = tokio::net::TcpStream::connect(&run.addr).await.unwrap();
        socket
            .write_all(b"POST /v1/decisions HTTP/1.1\r\nHost: fairtreat\r\nContent-Type: app")
            .await
            .unwrap();
        hanging.push(socket);
    }

    let resp = reqwest::Client::new()
        .post(format!("http://{}/v1/decisions", run.addr))
        .json(&interaction())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let d: Value = resp.json().await.unwrap();
    assert!(d["decision_id"].is_string(), "{d}");
    let mut probe = [0u8; 64];
    let still_open = hanging
        .iter()
        .filter(|s| {
            matches!(s.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        })
        .count();
    assert_eq!(
        still_open, HALF_OPEN,
        "the fresh decision was answered while every half-open connection still hung"
    );

    let answers =
        futures_util::future::join_all(hanging.into_iter().map(|mut socket| async move {
            let mut answer = Vec::new();
            let read =
                tokio::time::timeout(Duration::from_secs(30), socket.read_to_end(&mut answer));
            (read.await.is_ok(), answer)
        }))
        .await;
    let closed = answers.iter().filter(|(closed, _)| *closed).count();
    let timed_out = answers
        .iter()
        .filter(|(_, a)| a.starts_with(b"HTTP/1.1 408"))
        .count();
    assert_eq!(closed, HALF_OPEN, "every half-open connection is closed");
    assert_eq!(timed_out, HALF_OPEN, "each after a 408 answer");
    let logs = run.logs();
    assert!(!logs.contains("panicked"), "{logs}");
}
