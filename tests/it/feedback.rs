//! `POST /v1/feedback` end to end: statuses and stable codes, idempotent
//! retries, the feedback horizon, and the journal-backed export.

use std::io::Write;
use std::sync::Arc;

use fairtreat::cli::export::{export_journal, Filter, Format, Sink};
use fairtreat::clock::ManualClock;
use fairtreat::domain::interaction::{Interaction, InteractionInput};
use fairtreat::domain::policy::{Intent, Policy};
use fairtreat::service::{DecisionService, Models};
use fairtreat::sim::logs::LogRecord;
use fairtreat::store::journal::{FsyncPolicy, JournalConfig};
use fairtreat::store::memory::MemoryStore;
use fairtreat::store::Store;
use serde_json::{json, Value};
use time::macros::datetime;
use time::Duration;

use crate::helpers::{interaction_for, TestApp};

fn report(decision_id: &str, reward: f64) -> Value {
    json!({"decision_id": decision_id, "reward": reward,
           "outcome": {"replied": true, "sentiment_after": 0.4, "repurchased": false, "churned": false}})
}

async fn decided(app: &TestApp, n: usize) -> String {
    let d = app.decide(&interaction_for(n)).await;
    d["decision_id"].as_str().expect("decision id").to_string()
}

#[actix_web::test]
async fn the_first_report_is_201_and_an_identical_retry_is_200_with_the_same_body() {
    let app = TestApp::start().await;
    let id = decided(&app, 1).await;
    let (status, first) = app.post("/v1/feedback", &report(&id, 0.8)).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["decision_id"], id.as_str());
    assert_eq!(first["reward"], 0.8);
    assert_eq!(first["outcome"]["sentiment_after"], 0.4);
    assert_eq!(first["received_at"], "2026-11-20T12:00:00Z");
    // A retry later keeps the first record, received_at included.
    app.clock.advance(Duration::minutes(5));
    let (status, again) = app.post("/v1/feedback", &report(&id, 0.8)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, first);
    app.stop().await;
}

#[actix_web::test]
async fn a_different_report_for_the_same_decision_is_409_and_the_first_is_kept() {
    let app = TestApp::start().await;
    let id = decided(&app, 2).await;
    assert_eq!(app.post("/v1/feedback", &report(&id, 1.0)).await.0, 201);
    let (status, body) = app.post("/v1/feedback", &report(&id, 0.0)).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "feedback_conflict");
    let logged = app
        .store
        .logged_decisions(datetime!(2026-11-20 0:00 UTC), 10)
        .await
        .unwrap();
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].feedback.as_ref().map(|f| f.reward), Some(1.0));
    app.stop().await;
}

#[actix_web::test]
async fn feedback_for_an_unknown_decision_is_404() {
    let app = TestApp::start().await;
    let (status, body) = app
        .post(
            "/v1/feedback",
            &report("5f0c6a8e-2d1b-4c3a-9e8f-1a2b3c4d5e6f", 0.5),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    app.stop().await;
}

#[actix_web::test]
async fn feedback_is_accepted_for_seven_days_after_the_decision_and_404_after() {
    let app = TestApp::start().await;
    let early = decided(&app, 3).await;
    let late = decided(&app, 4).await;
    app.clock.advance(Duration::days(7));
    assert_eq!(app.post("/v1/feedback", &report(&early, 0.5)).await.0, 201);
    app.clock.advance(Duration::seconds(1));
    let (status, body) = app.post("/v1/feedback", &report(&late, 0.5)).await;
    assert_eq!(status, 404, "{body}");
    app.stop().await;
}

#[actix_web::test]
async fn bad_feedback_gets_a_4xx_naming_the_field_and_records_nothing() {
    let app = TestApp::start().await;
    let id = decided(&app, 5).await;
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut v = report(&id, 0.5);
        edit(&mut v);
        serde_json::to_vec(&v).unwrap()
    };
    type Case = (
        &'static str,
        Vec<u8>,
        u16,
        &'static str,
        Option<&'static str>,
    );
    let cases: Vec<Case> = vec![
        (
            "reward above 1",
            with(&|v| v["reward"] = json!(1.5)),
            422,
            "invalid_field",
            Some("reward"),
        ),
        (
            "reward below 0",
            with(&|v| v["reward"] = json!(-0.01)),
            422,
            "invalid_field",
            Some("reward"),
        ),
        (
            "reward not a number",
            with(&|v| v["reward"] = json!("high")),
            422,
            "invalid_field",
            Some("reward"),
        ),
        (
            "reward missing",
            with(&|v| {
                v.as_object_mut().unwrap().remove("reward");
            }),
            422,
            "invalid_field",
            Some("reward"),
        ),
        (
            "decision id not a uuid",
            with(&|v| v["decision_id"] = json!("d-1")),
            422,
            "invalid_field",
            Some("decision_id"),
        ),
        (
            "sentiment after outside [-1, 1]",
            with(&|v| v["outcome"]["sentiment_after"] = json!(1.5)),
            422,
            "invalid_field",
            Some("outcome.sentiment_after"),
        ),
        (
            "replied not a boolean",
            with(&|v| v["outcome"]["replied"] = json!("yes")),
            422,
            "invalid_field",
            Some("outcome.replied"),
        ),
        (
            "unknown top-level field",
            with(&|v| v["note"] = json!("x")),
            422,
            "invalid_field",
            Some("note"),
        ),
        (
            "unknown outcome field",
            with(&|v| v["outcome"]["mood"] = json!(1)),
            422,
            "invalid_field",
            Some("outcome.mood"),
        ),
        (
            "malformed JSON",
            b"not json".to_vec(),
            400,
            "invalid_json",
            None,
        ),
        (
            "body over 64 KiB",
            with(&|v| v["note"] = json!("x".repeat(70_000))),
            413,
            "payload_too_large",
            None,
        ),
    ];
    for (what, body, status, code, field) in cases {
        let (got, _, text) = app
            .post_raw("/v1/feedback", body, Some("application/json"))
            .await;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(got, status, "{what}: {text}");
        assert_eq!(v["error"]["code"], code, "{what}: {text}");
        assert_eq!(v["error"]["field"].as_str(), field, "{what}: {text}");
    }
    let (got, _, _) = app
        .post_raw("/v1/feedback", with(&|_| {}), Some("text/plain"))
        .await;
    assert_eq!(got, 415);
    let logged = app
        .store
        .logged_decisions(datetime!(2026-11-20 0:00 UTC), 10)
        .await
        .unwrap();
    assert_eq!(logged[0].feedback, None, "nothing was recorded");
    // The valid report still goes through afterwards.
    assert_eq!(app.post("/v1/feedback", &report(&id, 0.5)).await.0, 201);
    app.stop().await;
}

#[actix_web::test]
async fn feedback_reports_are_counted_in_the_metrics_by_result() {
    let app = TestApp::start().await;
    let id = decided(&app, 6).await;
    app.post("/v1/feedback", &report(&id, 0.5)).await;
    app.post("/v1/feedback", &report(&id, 0.5)).await;
    let (_, text) = app.get("/metrics").await;
    for result in ["recorded", "replayed"] {
        assert!(
            text.lines().any(|l| l
                .starts_with(&format!("fairtreat_feedback_total{{result=\"{result}\"}}"))),
            "{result} missing in {text}"
        );
    }
    app.stop().await;
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "fairtreat-it-{tag}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn export(dir: &std::path::Path, format: Format, filter: Filter) -> String {
    let policy = Policy::bundled();
    let mut out = Vec::new();
    let mut sink = Sink::new(format, &mut out, &policy, filter);
    export_journal(dir, &mut sink).unwrap();
    sink.finish().unwrap();
    String::from_utf8(out).unwrap()
}

const ALL: Filter = Filter {
    since: None,
    until: None,
    include_pending: false,
};

/// A service over a journaled memory store in `dir`, at `clock`.
fn journaled(dir: &std::path::Path, clock: &ManualClock) -> (Arc<MemoryStore>, DecisionService) {
    use fairtreat::clock::Clock;
    let mut cfg = JournalConfig::new(dir);
    cfg.fsync = FsyncPolicy::Always;
    let store = Arc::new(MemoryStore::open(&cfg, clock.now()).unwrap());
    let service = DecisionService::new(
        Policy::bundled(),
        Models::bundled(),
        store.clone(),
        Arc::new(clock.clone()),
    );
    (store, service)
}

#[tokio::test]
async fn a_journaled_store_survives_a_restart_and_exports_decisions_joined_with_feedback() {
    use fairtreat::clock::Clock;
    use fairtreat::domain::feedback::{Feedback, FeedbackInput};
    use fairtreat::store::FeedbackOutcome;

    let dir = temp_dir("journal");
    let clock = ManualClock::new(datetime!(2026-11-20 12:00 UTC));
    let inputs: Vec<InteractionInput> = (0..3)
        .map(|n| serde_json::from_value(interaction_for(100 + n)).unwrap())
        .collect();
    let mut first = Vec::new();
    {
        let (_, service) = journaled(&dir, &clock);
        service.sync_policy().await.unwrap();
        for i in &inputs {
            let d = service
                .decide(i, Interaction::try_from(i.clone()).unwrap())
                .await
                .unwrap();
            first.push(d.decision);
            clock.advance(Duration::minutes(1));
        }
        let f = Feedback::parse(
            FeedbackInput {
                decision_id: first[0].decision_id.to_string(),
                reward: 0.25,
                outcome: None,
            },
            clock.now(),
        )
        .unwrap();
        assert_eq!(
            service.record_feedback(&f).await.unwrap(),
            FeedbackOutcome::Recorded
        );
    }
    clock.advance(Duration::hours(1));
    let (store, service) = journaled(&dir, &clock);
    service.sync_policy().await.unwrap();
    // The same interaction replays the stored decision after the restart.
    let again = service
        .decide(
            &inputs[1],
            Interaction::try_from(inputs[1].clone()).unwrap(),
        )
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.decision, first[1]);
    // Feedback state came back: a retry replays, another report conflicts.
    let retry = Feedback::parse(
        FeedbackInput {
            decision_id: first[0].decision_id.to_string(),
            reward: 0.25,
            outcome: None,
        },
        clock.now(),
    )
    .unwrap();
    assert!(matches!(
        service.record_feedback(&retry).await.unwrap(),
        FeedbackOutcome::Replayed(_)
    ));
    let mut other = retry.clone();
    other.reward = 0.9;
    assert!(matches!(
        store.record_feedback(&other).await.unwrap(),
        FeedbackOutcome::Conflict(f) if f.reward == 0.25
    ));
    let logged = store
        .logged_decisions(datetime!(2026-11-20 0:00 UTC), 10)
        .await
        .unwrap();
    assert_eq!(logged.len(), 3, "the log ring was rebuilt");

    // Only the decision with feedback is exported by default, as a LogRecord.
    let jsonl = export(&dir, Format::Jsonl, ALL);
    let records: Vec<LogRecord> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 1, "{jsonl}");
    let r = &records[0];
    assert_eq!(r.decision_id, first[0].decision_id);
    assert_eq!(r.reward, 0.25);
    assert_eq!(r.action, first[0].action);
    let policy = Policy::bundled();
    assert_eq!(
        r.intent,
        policy
            .action(&r.action)
            .map(|a| a.intent)
            .unwrap_or(Intent::Ignore)
    );
    assert_eq!(r.interaction.interaction_id, "i-100");

    // CSV with pending rows: one row per decision, reward only where reported.
    let csv = export(
        &dir,
        Format::Csv,
        Filter {
            include_pending: true,
            ..ALL
        },
    );
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let header = rows.headers().unwrap().clone();
    let reward = header.iter().position(|h| h == "reward").unwrap();
    let id = header.iter().position(|h| h == "decision_id").unwrap();
    let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3, "{csv}");
    assert_eq!(&rows[0][id], first[0].decision_id.to_string());
    assert_eq!(&rows[0][reward], "0.25");
    assert_eq!(&rows[1][reward], "");

    // --since and --until select by decision time.
    let window = export(
        &dir,
        Format::Csv,
        Filter {
            since: Some(datetime!(2026-11-20 12:01 UTC)),
            until: Some(datetime!(2026-11-20 12:02 UTC)),
            include_pending: true,
        },
    );
    assert_eq!(window.lines().count(), 2, "header and one row: {window}");
    drop((store, service));
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_torn_last_journal_line_is_skipped_and_the_store_still_opens() {
    let dir = temp_dir("torn");
    let clock = ManualClock::new(datetime!(2026-11-20 12:00 UTC));
    let input: InteractionInput = serde_json::from_value(interaction_for(7)).unwrap();
    let first = {
        let (_, service) = journaled(&dir, &clock);
        service
            .decide(&input, Interaction::try_from(input.clone()).unwrap())
            .await
            .unwrap()
            .decision
    };
    let segment = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap();
    f.write_all(b"{\"type\":\"decision\",\"at\":\"2026-11-")
        .unwrap();
    drop(f);
    let (_, service) = journaled(&dir, &clock);
    let again = service
        .decide(&input, Interaction::try_from(input.clone()).unwrap())
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.decision, first);
    drop(service);
    std::fs::remove_dir_all(dir).unwrap();
}
