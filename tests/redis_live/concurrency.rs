//! TESTPLAN §4.3 with real replicas: three `fairtreat serve` processes on
//! their own ports share one `redis-server`. Every check compares what
//! clients were told with the final Redis state (the grant log), never with a
//! counter alone: lost updates hide overspend in counters (TESTPLAN §0).
//!
//! A `degraded` answer means the outcome is unknown (the commit may still
//! have run), so such requests are replayed with the same interaction id
//! before the comparison, as a client would (TESTPLAN F7).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::interaction;
use crate::redis_harness::{self as h, RedisServer, Replica};

fn body(iid: &str, customer: &str) -> Value {
    let mut v = interaction();
    v["interaction_id"] = json!(iid);
    v["customer"]["id"] = json!(customer);
    v.as_object_mut().unwrap().remove("occurred_at");
    v
}

async fn post(client: &reqwest::Client, replica: &str, body: &Value) -> (u16, String) {
    let resp = client
        .post(format!("{replica}/v1/decisions"))
        .json(body)
        .send()
        .await
        .expect("the replica answers");
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn degraded(text: &str) -> bool {
    serde_json::from_str::<Value>(text).is_ok_and(|v| v["degraded"] == true)
}

/// Replays a request until its answer is no longer degraded.
async fn settle(client: &reqwest::Client, replica: &str, body: &Value) -> String {
    for _ in 0..50 {
        let (status, text) = post(client, replica, body).await;
        assert_eq!(status, 200, "{text}");
        if !degraded(&text) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("still degraded after 50 replays: {body}")
}

fn three_replicas(redis: &RedisServer, policy: Option<&std::path::Path>) -> Vec<Replica> {
    (0..3)
        .map(|_| Replica::start(&redis.url(), policy, &[]))
        .collect()
}

async fn ledger(redis: &RedisServer) -> Vec<(String, f64)> {
    let store = h::test_store(&redis.url(), "ft");
    let today = OffsetDateTime::now_utc().date();
    let mut all = Vec::new();
    for day in [today.previous_day().unwrap(), today] {
        for g in store.grants(day).await.unwrap() {
            all.push((g.interaction_id, g.value_milli as f64 / 1000.0));
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn c1_simultaneous_identical_requests_over_three_replicas_grant_once_and_answer_identically()
{
    let _serial = h::heavy().await;
    let redis = RedisServer::start();
    let replicas = three_replicas(&redis, None);
    let urls: Vec<String> = replicas.iter().map(|r| r.url("")).collect();
    let client = reqwest::Client::new();
    let mut unknown_outcomes = 0;
    for round in 0..20 {
        let b = body(&format!("c1-{round}"), &format!("c1-customer-{round}"));
        let gate = Arc::new(tokio::sync::Barrier::new(48));
        let tasks: Vec<_> = (0..48)
            .map(|n| {
                let (client, url, b, gate) =
                    (client.clone(), urls[n % 3].clone(), b.clone(), gate.clone());
                tokio::spawn(async move {
                    gate.wait().await;
                    post(&client, &url, &b).await
                })
            })
            .collect();
        let mut answers = Vec::new();
        for t in tasks {
            let (status, text) = t.await.unwrap();
            assert_eq!(status, 200, "round {round}: {text}");
            answers.push(text);
        }
        for a in answers.iter_mut().filter(|a| degraded(a)) {
            unknown_outcomes += 1;
            *a = settle(&client, &urls[0], &b).await;
        }
        assert!(
            answers.iter().all(|a| a == &answers[0]),
            "round {round}: answers differ"
        );
        let d: Value = serde_json::from_str(&answers[0]).unwrap();
        assert!(!d["gesture"].is_null(), "the example earns a gesture: {d}");
    }
    let grants = ledger(&redis).await;
    for round in 0..20 {
        let id = format!("c1-{round}");
        assert_eq!(
            grants.iter().filter(|(i, _)| *i == id).count(),
            1,
            "exactly one grant for {id}"
        );
    }
    assert_eq!(grants.len(), 20);
    // Same id, another body: refused on every replica, and nothing granted.
    let mut other = body("c1-0", "c1-customer-0");
    other["text"] = json!("something else entirely");
    for url in &urls {
        let (status, text) = post(&client, url, &other).await;
        assert_eq!(status, 422, "{text}");
        assert!(text.contains("idempotency_mismatch"), "{text}");
    }
    assert_eq!(ledger(&redis).await.len(), 20);
    eprintln!("C1: 20 rounds x 48 requests, {unknown_outcomes} degraded answers replayed");
}

/// A policy with fairness costs off, so every complaint asks for a gesture,
/// a daily budget of `daily`, and `edit` applied.
fn gestures_for_all(daily: f64, edit: impl FnOnce(&mut toml::Table)) -> std::path::PathBuf {
    h::policy_file(|doc| {
        let fairness = doc["fairness"].as_table_mut().unwrap();
        fairness.insert("justice_weight".into(), 0.0.into());
        fairness.insert("enforce_parity".into(), false.into());
        doc["budget"]
            .as_table_mut()
            .unwrap()
            .insert("daily".into(), daily.into());
        edit(doc);
    })
}

/// A policy whose every gesture is worth exactly 10 and whose budget is
/// exactly 100 gestures; fairness costs off so every interaction asks for one.
fn hundred_gestures_policy() -> std::path::PathBuf {
    gestures_for_all(1000.0, |doc| {
        for action in doc["actions"].as_array_mut().unwrap() {
            if let Some(g) = action.get_mut("gesture").and_then(|g| g.as_table_mut()) {
                g.insert("min".into(), 10.0.into());
                g.insert("max".into(), 10.0.into());
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn c2_a_budget_for_exactly_100_gestures_gives_exactly_100_under_64_concurrent_clients() {
    let _serial = h::heavy().await;
    let redis = RedisServer::start();
    let policy = hundred_gestures_policy();
    let replicas = three_replicas(&redis, Some(&policy));
    let urls: Arc<Vec<String>> = Arc::new(replicas.iter().map(|r| r.url("")).collect());
    let client = reqwest::Client::new();
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|k| {
            let (client, urls) = (client.clone(), urls.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for j in 0..40 {
                    let b = body(&format!("c2-{k}-{j}"), &format!("c2-customer-{k}-{j}"));
                    let url = &urls[(k + j) % 3];
                    let (status, text) = post(&client, url, &b).await;
                    assert_eq!(status, 200, "{text}");
                    seen.push((b, url.clone(), text));
                }
                seen
            })
        })
        .collect();
    let mut told = BTreeSet::new();
    let mut unknown = 0;
    let mut answers = 0;
    for t in tasks {
        for (b, url, mut text) in t.await.unwrap() {
            answers += 1;
            if degraded(&text) {
                unknown += 1;
                text = settle(&client, &url, &b).await;
            }
            let d: Value = serde_json::from_str(&text).unwrap();
            if let Some(v) = d["gesture"]["value"].as_f64() {
                assert_eq!(v, 10.0);
                told.insert(d["interaction_id"].as_str().unwrap().to_string());
            }
        }
    }
    let elapsed = started.elapsed();
    let grants = ledger(&redis).await;
    let in_ledger: BTreeSet<String> = grants.iter().map(|(i, _)| i.clone()).collect();
    assert_eq!(answers, 2560);
    assert_eq!(told.len(), 100, "grants clients were told about");
    assert_eq!(grants.len(), 100, "grants in the ledger");
    assert_eq!(in_ledger, told, "what clients were told is the ledger");
    let store = h::test_store(&redis.url(), "ft");
    use fairtreat::store::Store;
    let spend = store.spend(OffsetDateTime::now_utc()).await.unwrap();
    assert!(spend.spent <= 1000.0, "never over the budget: {spend:?}");
    assert_eq!(grants.iter().map(|(_, v)| v).sum::<f64>(), 1000.0);
    eprintln!(
        "C2: 2560 requests from 64 clients over 3 replicas in {elapsed:?}: {} grants told, {} in the ledger, {unknown} degraded answers replayed, spent {}",
        told.len(),
        grants.len(),
        spend.spent
    );
}

/// TESTPLAN C3's policy: fairness costs off so complaints ask for gestures
/// whose values follow their order values (mixed amounts), and a budget
/// that runs out well before the demand does.
fn mixed_amounts_policy(daily: f64) -> std::path::PathBuf {
    gestures_for_all(daily, |_| {})
}

/// One client's request and every answer it got for it.
struct Sent {
    body: Value,
    answers: Vec<String>,
}

/// Sends `body` to a live replica, moving to another when the one it picked
/// is down (killed mid-request: the outcome is unknown, so this is a retry
/// with the same body, as a client would make). Returns the answer text.
async fn post_to_any(
    client: &reqwest::Client,
    live: &parking_lot::RwLock<Vec<String>>,
    pick: usize,
    body: &Value,
) -> String {
    for attempt in 0..200 {
        let url = {
            let live = live.read();
            live[(pick + attempt) % live.len()].clone()
        };
        let sent = client
            .post(format!("{url}/v1/decisions"))
            .timeout(Duration::from_secs(5))
            .json(body)
            .send()
            .await;
        match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let Ok(text) = resp.text().await else {
                    continue;
                };
                assert_eq!(status, 200, "{text}");
                return text;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    panic!("no replica answered {body}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn c3_mixed_amounts_retries_and_replicas_killed_at_random_never_overspend_or_grant_twice() {
    use rand::{Rng, SeedableRng};
    let _serial = h::heavy().await;
    let redis = RedisServer::start();
    const DAILY: f64 = 2500.0;
    let policy = mixed_amounts_policy(DAILY);
    let mut replicas = three_replicas(&redis, Some(&policy));
    let live = Arc::new(parking_lot::RwLock::new(
        replicas.iter().map(|r| r.url("")).collect::<Vec<_>>(),
    ));
    let client = reqwest::Client::new();
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));

    // The chaos: every 300-700 ms one replica is killed (mid-request, as
    // SIGKILL) and a new one started in its place.
    let chaos = {
        let (live, running, policy) = (live.clone(), running.clone(), policy.clone());
        let redis_url = redis.url();
        tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(3);
            let mut kills = 0;
            while running.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(rng.gen_range(300..700))).await;
                let k = rng.gen_range(0..replicas.len());
                drop(replicas.remove(k));
                kills += 1;
                let (url, policy) = (redis_url.clone(), policy.clone());
                let fresh =
                    tokio::task::spawn_blocking(move || Replica::start(&url, Some(&policy), &[]))
                        .await
                        .unwrap();
                replicas.insert(k, fresh);
                *live.write() = replicas.iter().map(|r| r.url("")).collect();
            }
            (kills, replicas)
        })
    };

    // 32 clients x 30 interactions, each for a new customer with a random
    // order value; 30 % are sent again with the same body after a random
    // delay, to any replica.
    let tasks: Vec<_> = (0..32)
        .map(|k| {
            let (client, live) = (client.clone(), live.clone());
            tokio::spawn(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(100 + k as u64);
                let mut sent = Vec::new();
                for j in 0..30 {
                    let mut b = body(&format!("c3-{k}-{j}"), &format!("c3-customer-{k}-{j}"));
                    b["order_value"] =
                        json!((rng.gen_range(8.0..160.0f64) * 100.0).round() / 100.0);
                    let first = post_to_any(&client, &live, k + j, &b).await;
                    let mut answers = vec![first];
                    if rng.gen_bool(0.3) {
                        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..150))).await;
                        answers.push(post_to_any(&client, &live, k + j + 1, &b).await);
                    }
                    sent.push(Sent { body: b, answers });
                }
                sent
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    running.store(false, std::sync::atomic::Ordering::Relaxed);
    let (kills, _replicas) = chaos.await.unwrap();

    // Every unknown outcome (a degraded answer) is settled by a replay.
    let mut told: std::collections::BTreeMap<String, f64> = Default::default();
    let (mut unknown, mut retried) = (0, 0);
    for s in &mut all {
        retried += usize::from(s.answers.len() > 1);
        if s.answers.iter().any(|a| degraded(a)) {
            unknown += 1;
            let url = live.read()[0].clone();
            s.answers.push(settle(&client, &url, &s.body).await);
        }
        // Every answer that is not degraded is the one recorded decision.
        let settled: Vec<Value> = s
            .answers
            .iter()
            .filter(|a| !degraded(a))
            .map(|a| serde_json::from_str(a).unwrap())
            .collect();
        let d = &settled[0];
        for other in &settled[1..] {
            assert_eq!(other, d, "a retry was answered differently: {}", s.body);
        }
        if let Some(v) = d["gesture"]["value"].as_f64() {
            told.insert(d["interaction_id"].as_str().unwrap().to_string(), v);
        }
    }

    let grants = ledger(&redis).await;
    let mut in_ledger: std::collections::BTreeMap<String, f64> = Default::default();
    for (iid, v) in &grants {
        assert!(
            in_ledger.insert(iid.clone(), *v).is_none(),
            "{iid} granted twice"
        );
    }
    let total: f64 = grants.iter().map(|(_, v)| v).sum();
    let store = h::test_store(&redis.url(), "ft");
    use fairtreat::store::Store;
    let spend = store.spend(OffsetDateTime::now_utc()).await.unwrap();
    let distinct: BTreeSet<String> = grants.iter().map(|(_, v)| format!("{v:.2}")).collect();
    assert!(distinct.len() >= 3, "amounts were not mixed: {distinct:?}");
    assert!(kills >= 2, "the chaos killed {kills} replicas");
    assert!(total <= DAILY + 1e-9, "granted {total} of a {DAILY} budget");
    assert!(
        total >= DAILY - 60.0,
        "the budget should bind: only {total} granted"
    );
    assert!(
        (spend.spent - total).abs() < 1e-6,
        "spent {} but the ledger holds {total}",
        spend.spent
    );
    assert_eq!(in_ledger, told, "what clients were told is the ledger");
    eprintln!(
        "C3: {} interactions ({retried} retried, {unknown} with an unknown outcome settled by replay), {kills} replicas killed; {} grants of {} distinct amounts, {total:.2} of {DAILY} granted",
        all.len(),
        grants.len(),
        distinct.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_change_on_one_replica_reaches_the_others_within_about_a_second() {
    let _serial = h::heavy().await;
    let redis = RedisServer::start();
    let key = "policy-test-key";
    let replicas: Vec<Replica> = (0..3)
        .map(|_| Replica::start(&redis.url(), None, &[("FAIRTREAT_ADMIN_KEY", key)]))
        .collect();
    let client = reqwest::Client::new();
    let mut policy: Value = client
        .get(replicas[0].url("/v1/policy"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    policy["budget"]["daily"] = json!(4321.0);
    let resp = client
        .put(replicas[0].url("/v1/policy"))
        .bearer_auth(key)
        .json(&policy)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let change: Value = resp.json().await.unwrap();
    let version = change["version"].as_u64().unwrap();
    let start = std::time::Instant::now();
    for r in &replicas[1..] {
        loop {
            let p: Value = client
                .get(r.url("/v1/policy"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if p["version"].as_u64() == Some(version) {
                assert_eq!(p["budget"]["daily"], 4321.0);
                break;
            }
            assert!(
                start.elapsed() < Duration::from_millis(2500),
                "replica still on version {} after {:?}",
                p["version"],
                start.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let d: Value = client
        .post(replicas[2].url("/v1/decisions"))
        .json(&body("p-1", "p-customer-1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["policy_version"].as_u64(), Some(version));
    // A stale edit on another replica is refused, not silently applied.
    let resp = client
        .put(replicas[1].url("/v1/policy"))
        .bearer_auth(key)
        .json(&policy)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);
    eprintln!(
        "policy version {version} reached every replica in {:?}",
        start.elapsed()
    );
}
