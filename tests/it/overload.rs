//! Load shedding (TESTPLAN S5, `src/http/overload.rs`): a burst that leaves
//! the workers far behind gets some decisions answered `503 overloaded`
//! with `Retry-After`, at once and with nothing stored, and the rest decided
//! as usual; without shedding the same burst is all decided.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{interaction_for, raise_open_files_limit, TestApp};

const BURST: usize = 400;

/// Sends `BURST` different decisions at once; (status, Retry-After, body) of each.
async fn burst(app: &TestApp) -> Vec<(u16, Option<String>, Value)> {
    raise_open_files_limit(4 * BURST as u64);
    let calls = (0..BURST).map(|n| {
        let client = app.client.clone();
        let url = app.url("/v1/decisions");
        async move {
            let resp = client
                .post(url)
                .json(&interaction_for(n))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let retry = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (status, retry, resp.json::<Value>().await.unwrap())
        }
    });
    futures_util::future::join_all(calls).await
}

#[actix_web::test]
async fn a_burst_that_leaves_the_workers_behind_is_partly_shed_with_503_and_retry_after() {
    let app = TestApp::shedding_after(Duration::from_millis(20)).await;
    let answers = burst(&app).await;
    let decided = answers.iter().filter(|(s, _, _)| *s == 200).count();
    let shed: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 503).collect();
    assert_eq!(
        decided + shed.len(),
        BURST,
        "only 200 and 503: {:?}",
        answers.iter().map(|(s, _, _)| s).collect::<Vec<_>>()
    );
    assert!(!shed.is_empty(), "nothing shed");
    assert!(decided > 0, "nothing decided");
    for (_, retry, body) in &shed {
        assert_eq!(retry.as_deref(), Some("1"), "{body}");
        assert_eq!(body["error"]["code"], "overloaded", "{body}");
    }
    assert_eq!(
        app.store.idempotency_records(),
        decided,
        "a shed decision stores nothing"
    );
    let metrics = app.get("/metrics").await.1;
    let counted: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("fairtreat_shed_requests_total{route=\"/v1/decisions\"} "))
        .unwrap_or_else(|| panic!("no shed counter in {metrics}"))
        .parse()
        .unwrap();
    assert!(
        counted >= shed.len() as f64,
        "{counted} counted, {} shed",
        shed.len()
    );
    eprintln!("{} of {BURST} shed, {decided} decided", shed.len());
    // Caught up, the replica decides again.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, d) = app.post("/v1/decisions", &interaction_for(BURST)).await;
    assert_eq!(status, 200, "{d}");
    assert!(d["decision_id"].is_string(), "{d}");
    app.stop().await;
}

#[actix_web::test]
async fn without_shedding_the_same_burst_is_all_decided() {
    let app = TestApp::start().await;
    let answers = burst(&app).await;
    let statuses: Vec<u16> = answers.iter().map(|(s, _, _)| *s).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(app.store.idempotency_records(), BURST);
    app.stop().await;
}
