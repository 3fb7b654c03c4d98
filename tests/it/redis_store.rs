//! What only the Redis store has to prove, beyond the shared contract: key
//! hygiene (TTLs, prefix), the sharded budget under concurrency, failing
//! closed on an emptied store, and refusing a mismatched key layout.

use std::sync::Arc;

use fairtreat::domain::feedback::Feedback;
use fairtreat::domain::policy::Policy;
use fairtreat::domain::validation::CustomerId;
use fairtreat::store::redis::RedisStore;
use fairtreat::store::{CommitOutcome, FeedbackOutcome, Store, StoreError};
use time::Duration;

use crate::redis_harness::{self as h, RedisServer};
use crate::store_contract::{Op, T0};

/// Keys allowed without a TTL: the configuration and its audit log.
fn may_live_forever(key: &str) -> bool {
    key.ends_with(":{meta}:policy")
        || key.ends_with(":{meta}:policy:log")
        || key.ends_with(":{meta}:layout")
}

async fn some_traffic(store: &RedisStore) {
    // A client's failed admin authentication, whose record expires with
    // its window.
    let window = std::time::Duration::from_secs(60);
    for client in ["192.0.2.1", "2001:db8::1"] {
        let client = client.parse().unwrap();
        store.count_auth_failure(client, T0, window).await.unwrap();
    }
    for n in 0..40 {
        let mut op = Op::new(
            &format!("i-{n}"),
            &format!("c-{}", n % 13),
            T0 + Duration::minutes(n * 7),
            (n % 3 != 0).then_some(20.0),
        );
        op.daily = 300.0;
        let outcome = store.commit(op.commit()).await.expect("commit");
        // Some feedback too, so the feedback records and stream exist.
        if let (CommitOutcome::Recorded(d), true) = (&outcome, n % 4 == 0) {
            let f = Feedback {
                decision_id: d.decision_id,
                reward: 1.0,
                outcome: Default::default(),
                received_at: op.at,
            };
            assert_eq!(
                store.record_feedback(&f).await.unwrap(),
                FeedbackOutcome::Recorded
            );
        }
    }
}

fn assert_ttls(keys: &[(String, i64)]) {
    assert!(keys.len() > 20, "{keys:?}");
    let forever: Vec<&String> = keys
        .iter()
        .filter(|(_, ttl)| *ttl < 0)
        .map(|(k, _)| k)
        .collect();
    assert!(
        forever.iter().all(|k| may_live_forever(k)),
        "keys without a TTL: {forever:?}"
    );
    for (k, ttl) in keys {
        assert!(*ttl != -2, "{k} vanished");
        if k.contains(":fb:") {
            assert!(
                *ttl > 7 * 86_400_000,
                "{k}: feedback accepted for 7 days, got {ttl} ms"
            );
        }
        if k.contains("{auth:") {
            assert!(
                (1..=60_000).contains(ttl),
                "{k}: kept until its 60 s window ends, got {ttl} ms"
            );
        }
        if k.contains(":idem:") {
            assert!(
                *ttl > 47 * 3_600_000,
                "{k}: idempotency kept ≥ 24 h, got {ttl} ms"
            );
        }
    }
}

#[tokio::test]
async fn every_key_but_the_configuration_carries_a_ttl_and_starts_with_the_prefix() {
    let server = RedisServer::start();
    let store = h::test_store(&server.url(), "ft");
    store.seed_policy(&Policy::bundled(), T0).await.unwrap();
    some_traffic(&store).await;
    let keys: Vec<(String, i64)> = server
        .cli(&["--scan"])
        .lines()
        .map(|k| {
            let ttl = server.cli(&["pttl", k]).trim().parse().unwrap();
            (k.to_string(), ttl)
        })
        .collect();
    assert!(keys.iter().all(|(k, _)| k.starts_with("ft:")), "{keys:?}");
    for kind in [":fb:", "}:log", "}:fblog", "{auth:2001:db8::}:fail"] {
        assert!(keys.iter().any(|(k, _)| k.contains(kind)), "no {kind} key");
    }
    assert_ttls(&keys);
}

#[tokio::test]
async fn fairtreat_export_reads_the_redis_decision_log_joined_with_feedback() {
    let server = RedisServer::start();
    let store = h::test_store(&server.url(), "ex");
    store.seed_policy(&Policy::bundled(), T0).await.unwrap();
    some_traffic(&store).await;
    let dir = std::env::temp_dir().join(format!("fairtreat-redis-export-{}", h::unique("x")));
    std::fs::create_dir_all(&dir).unwrap();
    let export = |args: &[&str], file: &str| {
        let path = dir.join(file);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_fairtreat"))
            .args([
                "export",
                "--redis-prefix",
                "ex",
                "--out",
                path.to_str().unwrap(),
            ])
            .args(args)
            .env("REDIS_URL", server.url())
            .env_remove("FAIRTREAT_POLICY")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(path).unwrap()
    };
    // some_traffic reports feedback for every fourth of its 40 decisions.
    let jsonl = export(&[], "all.jsonl");
    let records: Vec<fairtreat::sim::logs::LogRecord> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 10, "{jsonl}");
    assert!(records.iter().all(|r| r.reward == 1.0));
    let ids: Vec<&str> = records
        .iter()
        .map(|r| r.interaction.interaction_id.as_str())
        .collect();
    assert_eq!(ids[..3], ["i-0", "i-4", "i-8"], "oldest first");
    let csv = export(&["--format", "csv", "--include-pending"], "all.csv");
    assert_eq!(csv.lines().count(), 41, "a header and every decision");
    // i-n was decided at T0 + 7n minutes: [T0 + 28 min, T0 + 56 min) holds i-4..i-7.
    let window = export(
        &[
            "--format",
            "csv",
            "--include-pending",
            "--since",
            "2026-11-20T12:28:00Z",
            "--until",
            "2026-11-20T12:56:00Z",
        ],
        "window.csv",
    );
    assert_eq!(window.lines().count(), 5, "{window}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn on_the_cluster_each_shard_lives_in_one_slot_and_every_key_carries_a_ttl() {
    let cluster = tokio::task::spawn_blocking(h::shared_cluster)
        .await
        .unwrap();
    let prefix = h::unique("ttl");
    let store = h::test_store(&cluster.url(), &prefix);
    store.seed_policy(&Policy::bundled(), T0).await.unwrap();
    some_traffic(&store).await;
    let mut keys = Vec::new();
    let mut slot_of_tag = std::collections::HashMap::new();
    for (port, k) in cluster.keys(&format!("{prefix}:*")) {
        let ttl = h::cli(port, None, &["pttl", &k]).trim().parse().unwrap();
        let slot = h::cli(port, None, &["cluster", "keyslot", &k]);
        let tag = k
            .split('{')
            .nth(1)
            .unwrap()
            .split('}')
            .next()
            .unwrap()
            .to_string();
        let prev = slot_of_tag.insert(tag.clone(), (port, slot.clone()));
        assert!(
            prev.is_none_or(|p| p == (port, slot.clone())),
            "tag {tag} spans slots"
        );
        keys.push((k, ttl));
    }
    let nodes: std::collections::HashSet<u16> = slot_of_tag.values().map(|(p, _)| *p).collect();
    assert!(
        nodes.len() >= 2,
        "shards spread over the primaries: {slot_of_tag:?}"
    );
    assert_ttls(&keys);
}

/// 300 concurrent grants over many customers (so many shards lease from
/// the pool at once) against a budget for exactly 100: exactly 100 granted,
/// and the grant log matches what callers were told.
async fn exact_budget_under_concurrency(url: &str, prefix: &str) {
    let store = Arc::new(h::test_store(url, prefix));
    store.seed_policy(&Policy::bundled(), T0).await.unwrap();
    let tasks: Vec<_> = (0..300)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut op = Op::new(&format!("b-{n}"), &format!("c-{n}"), T0, Some(10.0));
                op.daily = 1000.0;
                let out = store.commit(op.commit()).await.expect("commit");
                match out {
                    CommitOutcome::Recorded(d) => d.gesture.map(|_| op.iid),
                    other => panic!("{other:?}"),
                }
            })
        })
        .collect();
    let mut told: Vec<String> = Vec::new();
    for t in tasks {
        told.extend(t.await.unwrap());
    }
    told.sort();
    let mut ledger: Vec<String> = store
        .grants(T0.date())
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.interaction_id)
        .collect();
    ledger.sort();
    assert_eq!(told.len(), 100, "grants told");
    assert_eq!(ledger, told, "the grant log is what callers were told");
    let spend = store.spend(T0).await.unwrap();
    assert_eq!((spend.spent, spend.grants), (1000.0, 100));
    assert_eq!(store.pool_remaining(T0.date()).await.unwrap(), Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sharded_budget_grants_exactly_the_budget_under_concurrency() {
    let server = RedisServer::start();
    exact_budget_under_concurrency(&server.url(), "ft").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sharded_budget_grants_exactly_the_budget_under_concurrency_on_the_cluster() {
    let url = tokio::task::spawn_blocking(|| h::shared_cluster().url())
        .await
        .unwrap();
    exact_budget_under_concurrency(&url, &h::unique("bud")).await;
}

#[tokio::test]
async fn an_emptied_store_refuses_perks_instead_of_opening_a_full_budget() {
    let server = RedisServer::start();
    let store = h::test_store(&server.url(), "ft");
    store.seed_policy(&Policy::bundled(), T0).await.unwrap();
    let grant = |n: usize| {
        let mut op = Op::new(&format!("e-{n}"), &format!("c-{n}"), T0, Some(10.0));
        op.daily = 1000.0;
        op
    };
    assert!(matches!(
        store.commit(grant(1).commit()).await.unwrap(),
        CommitOutcome::Recorded(d) if d.gesture.is_some()
    ));
    // Redis restarted without persistence: every key is gone.
    server.cli(&["flushall"]);
    let err = store.commit(grant(2).commit()).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Unavailable(m) if m.contains("no shared policy")),
        "{err}"
    );
    assert!(store.ping().await.is_err(), "/readyz must report it");
    // Decisions without a perk still work.
    let plain = Op::new("e-plain", "c-9", T0, None);
    assert!(matches!(
        store.commit(plain.commit()).await.unwrap(),
        CommitOutcome::Recorded(_)
    ));
    // Re-seeding (a replica restart, after reconciling) opens the day again.
    store.seed_policy(&Policy::bundled(), T0).await.unwrap();
    assert!(store.ping().await.is_ok());
    assert!(matches!(
        store.commit(grant(3).commit()).await.unwrap(),
        CommitOutcome::Recorded(d) if d.gesture.is_some()
    ));
}

#[tokio::test]
async fn a_replica_with_another_shard_count_refuses_to_use_the_store() {
    let server = RedisServer::start();
    let store = h::test_store(&server.url(), "ft");
    store.seed_policy(&Policy::bundled(), T0).await.unwrap();
    let mut cfg = fairtreat::store::redis::RedisConfig::new(
        fairtreat::store::redis::RedisUrl::new(server.url()),
    );
    cfg.shards = 8;
    let other = RedisStore::connect(cfg).unwrap();
    let op = Op::new("l-1", "c-1", T0, None);
    let err = other.commit(op.commit()).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt(m) if m.contains("shards=16")),
        "{err}"
    );
    assert!(other.ping().await.is_err());
    // The first one is unaffected.
    assert!(store.commit(op.commit()).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_window_snapshot_is_refreshed_within_its_ttl_and_keeps_closed_hours() {
    use fairtreat::store::redis::{RedisConfig, RedisUrl};
    let server = RedisServer::start();
    let exact = h::test_store(&server.url(), "ft");
    exact.seed_policy(&Policy::bundled(), T0).await.unwrap();
    let now = T0 + Duration::hours(30);
    for n in 0..30 {
        let op = Op::new(
            &format!("w-{n}"),
            &format!("c-{n}"),
            T0 + Duration::hours(n),
            None,
        );
        exact.commit(op.commit()).await.unwrap();
    }
    let mut cfg = RedisConfig::new(RedisUrl::new(server.url()));
    cfg.window_snapshot_ttl = std::time::Duration::from_millis(200);
    let served = RedisStore::connect(cfg).unwrap();
    served.ping().await.unwrap();
    // The first snapshot of a replica is read in the background.
    let fresh = |s: &RedisStore| {
        let s = s.clone();
        async move {
            for _ in 0..100 {
                if let Ok(w) = s.window_stats(now, 24).await {
                    return w;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            panic!("no window snapshot within 2 s")
        }
    };
    let first = fresh(&served).await;
    assert_eq!(first, exact.window_stats(now, 24).await.unwrap());
    // A new decision: at most one TTL (plus a refresh) later, it is in.
    let op = Op::new("w-new", "c-new", now, None);
    exact.commit(op.commit()).await.unwrap();
    let want = exact.window_stats(now, 24).await.unwrap();
    assert_ne!(want, first);
    let start = std::time::Instant::now();
    while served.window_stats(now, 24).await.unwrap() != want {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(1),
            "still stale after 1 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let staleness = start.elapsed();
    assert!(
        staleness >= std::time::Duration::from_millis(100),
        "served from the cache first: {staleness:?}"
    );
    // Hours older than the previous one are read once and kept: removing
    // one from Redis changes exact reads, not the served snapshot.
    let old = fairtreat::domain::window::bucket_of(now) - 10;
    for key in server
        .cli(&["--scan", "--pattern", &format!("ft:*:w:{old}")])
        .lines()
    {
        server.cli(&["del", key]);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let _ = served.window_stats(now, 24).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(served.window_stats(now, 24).await.unwrap(), want);
    assert_ne!(exact.window_stats(now, 24).await.unwrap(), want);
}

#[tokio::test]
async fn on_redis_an_interaction_id_is_scoped_to_its_customer_whatever_shard_they_share() {
    use fairtreat::domain::validation::CustomerId;
    let server = RedisServer::start();
    let store = h::test_store(&server.url(), "ft");
    store.seed_policy(&Policy::bundled(), T0).await.unwrap();
    let shard = |c: &str| store.shard_of(&CustomerId::parse("c", c).unwrap());
    let names: Vec<String> = (0..200).map(|n| format!("c-{n}")).collect();
    let same = names[1..]
        .iter()
        .find(|c| shard(c) == shard(&names[0]))
        .expect("two customers in one shard");
    let other = names[1..]
        .iter()
        .find(|c| shard(c) != shard(&names[0]))
        .expect("two customers in two shards");
    let first = Op::new("shared-id", &names[0], T0, Some(10.0));
    assert!(matches!(
        store.commit(first.commit()).await.unwrap(),
        CommitOutcome::Recorded(_)
    ));
    for c in [same, other] {
        let op = Op::new("shared-id", c, T0, Some(10.0));
        assert!(
            matches!(store.commit(op.commit()).await.unwrap(), CommitOutcome::Recorded(d) if d.gesture.is_some()),
            "{c}: a new interaction"
        );
        assert!(matches!(
            store.commit(op.commit()).await.unwrap(),
            CommitOutcome::Replayed(_)
        ));
    }
}

/// Script calls (`EVALSHA`, `EVAL`) `server` has run so far.
fn script_calls(server: &RedisServer) -> u64 {
    let stats = server.cli(&["info", "commandstats"]);
    let of = |cmd: &str| {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{cmd}:calls=")))
            .and_then(|rest| rest.split(',').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    of("evalsha") + of("eval")
}

/// A store whose decisions read a served window snapshot (not exact
/// reads), so a decision makes no window read of its own, and whose
/// budgets are generous enough for a loaded test machine.
fn served_snapshot_store(server: &RedisServer) -> Arc<RedisStore> {
    use fairtreat::store::redis::{RedisConfig, RedisUrl};
    let mut cfg = RedisConfig::new(RedisUrl::new(server.url()));
    cfg.window_snapshot_ttl = std::time::Duration::from_secs(60);
    cfg.call_budget = std::time::Duration::from_secs(5);
    cfg.op_timeout = std::time::Duration::from_secs(5);
    Arc::new(RedisStore::connect(cfg).unwrap())
}

#[tokio::test]
async fn a_batch_on_one_redis_is_decided_in_order_in_one_script_call() {
    use fairtreat::clock::ManualClock;
    use fairtreat::domain::interaction::{Interaction, InteractionInput};
    use fairtreat::service::{DecisionService, Models, ServiceError};
    use serde_json::json;

    let server = RedisServer::start();
    let store = served_snapshot_store(&server);
    assert!(
        store.batches_commits(),
        "Redis sends a batch's commits together"
    );
    let service = DecisionService::new(
        Policy::bundled(),
        Models::bundled(),
        store.clone(),
        Arc::new(ManualClock::new(T0)),
    )
    // What is checked is the order and the script calls, not deadlines: a
    // loaded machine must not make an item fail closed.
    .with_store_deadline(std::time::Duration::from_secs(5));
    service.sync_policy().await.unwrap();
    // A first decision loads the scripts and takes the window snapshot.
    let mut warm = crate::helpers::interaction();
    warm["interaction_id"] = json!("warm");
    let warm: InteractionInput = serde_json::from_value(warm).unwrap();
    let first = service
        .decide_all(vec![(&warm, Interaction::try_from(warm.clone()).unwrap())])
        .await;
    assert!(first[0].is_ok(), "{:?}", first[0].as_ref().err());
    // Two complaints of one customer (the bundled policy allows one perk per
    // 30 days), the first again, the first with another body, and customers
    // of their own in between.
    let complaint = |iid: &str, cid: &str, text: &str| -> InteractionInput {
        let mut v = crate::helpers::interaction();
        v["interaction_id"] = json!(iid);
        v["customer"]["id"] = json!(cid);
        v["text"] = json!(text);
        serde_json::from_value(v).unwrap()
    };
    let broken = "Order arrived broken and nobody answers my emails";
    let inputs = [
        complaint("b-1", "c-x", broken),
        complaint("b-2", "c-y", broken),
        complaint("b-3", "c-x", broken),
        complaint("b-1", "c-x", broken),
        complaint("b-4", "c-z", broken),
        complaint("b-1", "c-x", "Actually it is fine now, thanks"),
    ];
    let items = inputs
        .iter()
        .map(|i| (i, Interaction::try_from(i.clone()).unwrap()))
        .collect();
    let granted_before = store.spend(T0).await.unwrap().grants;
    let before = script_calls(&server);
    let out = service.decide_all(items).await;
    assert_eq!(
        script_calls(&server) - before,
        1,
        "one script call for the batch"
    );
    assert_eq!(out.len(), inputs.len());
    let decided = |k: usize| out[k].as_ref().unwrap_or_else(|e| panic!("item {k}: {e}"));
    for k in [0, 1, 4] {
        assert!(!decided(k).replayed);
        assert!(decided(k).decision.gesture.is_some(), "item {k} is granted");
        assert!(!decided(k).decision.degraded);
    }
    let capped = &decided(2).decision;
    assert!(
        capped.gesture.is_none(),
        "the cap binds on the customer's second complaint"
    );
    assert!(capped
        .constraints
        .iter()
        .any(|c| serde_json::to_value(c.name).unwrap() == "per_customer_cap"));
    assert!(decided(3).replayed);
    assert_eq!(
        decided(3).decision,
        decided(0).decision,
        "the stored decision"
    );
    assert!(matches!(out[5], Err(ServiceError::IdempotencyMismatch(_))));
    let spend = store.spend(T0).await.unwrap();
    assert_eq!(
        spend.grants - granted_before,
        3,
        "one grant per customer of the batch"
    );
}

#[tokio::test]
async fn recent_interactions_are_read_back_from_the_decision_log_across_pages() {
    let server = RedisServer::start();
    let store = h::test_store(&server.url(), "ft");
    store.seed_policy(&Policy::bundled(), T0).await.unwrap();
    // One customer: one shard, so its log is read back in several pages
    // (200 entries each).
    let n: i64 = 450;
    for k in 0..n {
        let op = Op::new(&format!("r-{k}"), "c-one", T0 + Duration::seconds(k), None);
        store.commit(op.commit()).await.unwrap();
    }
    let ids = |v: Vec<fairtreat::domain::interaction::InteractionInput>| -> Vec<String> {
        v.into_iter().map(|i| i.interaction_id).collect()
    };
    let newest = |count: i64, since: i64| -> Vec<String> {
        (since..n)
            .rev()
            .take(count as usize)
            .map(|k| format!("r-{k}"))
            .collect()
    };
    assert_eq!(
        ids(store.recent_interactions(T0, 1000).await.unwrap()),
        newest(n, 0),
        "all of them, newest first"
    );
    assert_eq!(
        ids(store.recent_interactions(T0, 250).await.unwrap()),
        newest(250, 0),
        "a limit inside the second page"
    );
    assert_eq!(
        ids(store
            .recent_interactions(T0 + Duration::seconds(100), 1000)
            .await
            .unwrap()),
        newest(n, 100),
        "stops at the first entry older than `since`, in the second page"
    );
    assert_eq!(
        ids(store
            .recent_interactions(T0 + Duration::seconds(n), 1000)
            .await
            .unwrap()),
        Vec::<String>::new(),
        "nothing since the last one"
    );
}

/// TESTPLAN C5: three replicas whose clocks are 2 s behind, right and 2 s
/// ahead decide complaints every 100 ms from 10 s before to 10 s after
/// midnight UTC, on one Redis. The day of a grant is its replica's day:
/// each day's pool is opened once, with the day's budget, and never
/// overspent; skew moves grants across midnight by at most the skew but
/// never gives a day two budgets.
#[tokio::test]
async fn replicas_with_skewed_clocks_around_midnight_spend_one_budget_per_day() {
    use fairtreat::clock::ManualClock;
    use fairtreat::domain::interaction::{Interaction, InteractionInput};
    use fairtreat::service::{DecisionService, Models};
    use serde_json::json;
    use time::macros::datetime;

    const DAILY: f64 = 300.0;
    let midnight = datetime!(2026-11-21 00:00 UTC);
    let server = RedisServer::start();
    let mut policy = Policy::bundled();
    policy.budget.daily = DAILY;
    // Fairness costs off: every complaint asks for a gesture, so the budget
    // of the first day runs out before midnight.
    policy.fairness.justice_weight = 0.0;
    policy.fairness.enforce_parity = false;
    let skews = [-2_000i64, 0, 2_000];
    let replicas: Vec<(Arc<ManualClock>, DecisionService)> = skews
        .iter()
        .map(|_| {
            let clock = Arc::new(ManualClock::new(midnight));
            let store = Arc::new(h::test_store(&server.url(), "ft"));
            // The test is about the day each grant lands in, not about
            // deadlines: under a loaded machine a decision could otherwise
            // miss the 50 ms default and fail closed (seen twice while soak
            // runs shared the two cores).
            let service =
                DecisionService::new(policy.clone(), Models::bundled(), store, clock.clone())
                    .with_store_deadline(std::time::Duration::from_secs(5));
            (clock, service)
        })
        .collect();
    replicas[0].1.sync_policy().await.unwrap();
    let mut told = Vec::new();
    for step in -100i64..=100 {
        let truth = midnight + Duration::milliseconds(step * 100);
        for (k, ((clock, service), skew)) in replicas.iter().zip(skews).enumerate() {
            let at = truth + Duration::milliseconds(skew);
            clock.set(at);
            let mut v = crate::helpers::interaction();
            v["interaction_id"] = json!(format!("c5-{step}-{k}"));
            v["customer"]["id"] = json!(format!("c5-customer-{step}-{k}"));
            v["order_value"] = json!(40.0 + (step.rem_euclid(7) * 10) as f64);
            let input: InteractionInput = serde_json::from_value(v).unwrap();
            let parsed = Interaction::try_from(input.clone()).unwrap();
            let d = service.decide(&input, parsed).await.unwrap().decision;
            assert!(!d.degraded, "{d:?}");
            if let Some(g) = &d.gesture {
                told.push((at.date(), d.interaction_id.clone(), g.value));
            }
        }
    }
    let store = h::test_store(&server.url(), "ft");
    for day in [midnight.date().previous_day().unwrap(), midnight.date()] {
        let grants = store.grants(day).await.unwrap();
        let total: f64 = grants.iter().map(|g| g.value_milli as f64 / 1000.0).sum();
        assert!(total <= DAILY, "{day}: {total} granted of {DAILY}");
        assert!(
            total > DAILY - 100.0,
            "{day}: the budget should bind, only {total} granted"
        );
        for g in &grants {
            assert_eq!(
                g.at.date(),
                day,
                "a grant in the pool of another day: {g:?}"
            );
        }
        let spend = store.spend(day.midnight().assume_utc()).await.unwrap();
        assert!(
            (spend.spent - total).abs() < 1e-9,
            "{day}: {spend:?} vs {total}"
        );
        let mine: Vec<_> = told.iter().filter(|(d, _, _)| *d == day).collect();
        assert_eq!(mine.len(), grants.len(), "{day}: told {mine:?}");
        // The pool was opened once, with one day's budget.
        let remaining = store.pool_remaining(day).await.unwrap().unwrap();
        assert!(
            (remaining + total - DAILY).abs() < 1e-9,
            "{day}: {remaining} left"
        );
    }
}

/// On one Redis a grant takes its value from the day's pool inside the
/// commit script: one `EVALSHA`, one round trip, as every other decision
/// (three on a Cluster, where the pool is in another slot). With Redis a
/// network hop away that is what keeps grants within the deadline.
#[tokio::test]
async fn on_one_redis_a_grant_is_a_single_script_call() {
    use fairtreat::clock::ManualClock;
    use fairtreat::domain::interaction::{Interaction, InteractionInput};
    use fairtreat::service::{DecisionService, Models};
    use serde_json::json;

    let server = RedisServer::start();
    let service = DecisionService::new(
        Policy::bundled(),
        Models::bundled(),
        served_snapshot_store(&server),
        Arc::new(ManualClock::new(T0)),
    );
    service.sync_policy().await.unwrap();
    let decide = |iid: &str, cid: &str| {
        let mut v = crate::helpers::interaction();
        v["interaction_id"] = json!(iid);
        v["customer"]["id"] = json!(cid);
        let input: InteractionInput = serde_json::from_value(v).unwrap();
        let parsed = Interaction::try_from(input.clone()).unwrap();
        let service = &service;
        async move { service.decide(&input, parsed).await.unwrap().decision }
    };
    // The first decision loads the scripts and opens the day's pool.
    assert!(decide("g-0", "c-0").await.gesture.is_some());
    let before = script_calls(&server);
    let d = decide("g-1", "c-1").await;
    assert!(d.gesture.is_some() && !d.degraded, "{d:?}");
    assert_eq!(
        script_calls(&server) - before,
        1,
        "one script call for a grant"
    );
}

#[tokio::test]
async fn a_decision_recorded_before_its_index_moved_into_the_feedback_record_is_still_found() {
    let server = RedisServer::start();
    let store = h::test_store(&server.url(), "ft");
    store.seed_policy(&Policy::bundled(), T0).await.unwrap();
    let op = Op::new("i-old", "c-old", T0, Some(5.0));
    let CommitOutcome::Recorded(d) = store.commit(op.commit()).await.unwrap() else {
        panic!("a first commit is recorded");
    };
    let id = d.decision_id;
    let k = store.shard_of(&CustomerId::parse("customer.id", "c-old").unwrap());
    let record = store.shard_key(k, &format!("fb:{id}"));
    assert_eq!(server.cli(&["hget", &record, "r"]).trim(), "c-old:i-old");
    // As a commit before 2026-11-24 left it: the index in a key of its own.
    let index = store.shard_key(k, &format!("dec:{id}"));
    server.cli(&["hdel", &record, "r"]);
    server.cli(&["set", &index, "c-old:i-old", "px", "172800000"]);
    assert_eq!(store.decision(id).await.unwrap().as_ref(), Some(&d));
    // Neither index: the decision cannot be found by its id.
    server.cli(&["del", &index]);
    assert_eq!(store.decision(id).await.unwrap(), None);
}

/// A replica serving `store` with the test apps' admin keys and the
/// authentication throttle at `limit` failures a minute.
async fn throttling_replica(
    store: RedisStore,
    limit: u32,
) -> (
    Arc<fairtreat::service::DecisionService>,
    std::net::SocketAddr,
    actix_web::dev::ServerHandle,
) {
    let service = Arc::new(fairtreat::service::DecisionService::new(
        Policy::bundled(),
        fairtreat::service::Models::bundled(),
        Arc::new(store),
        Arc::new(fairtreat::clock::SystemClock),
    ));
    let opts = fairtreat::http::ServerOptions {
        auth_failures: Some((limit, std::time::Duration::from_secs(60))),
        ..Default::default()
    };
    let (addr, handle) = crate::helpers::serve(service.clone(), opts).await;
    (service, addr, handle)
}

/// `PUT /v1/policy` on `addr` with `key`: the status and `Retry-After`.
async fn put_policy(addr: std::net::SocketAddr, key: &str) -> (u16, Option<u64>) {
    let url = format!("http://{addr}/v1/policy");
    let client = reqwest::Client::new();
    let policy: serde_json::Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    let resp = client
        .put(&url)
        .bearer_auth(key)
        .json(&policy)
        .send()
        .await
        .expect("request");
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().expect("whole seconds"));
    (resp.status().as_u16(), retry_after)
}

/// TESTPLAN §5 (item 4): the throttle's count is global. A guesser that
/// spreads its attempts over the replicas on one Redis gets `limit` of them
/// in all, not `limit` per replica; and a client refused by the count is
/// then refused by each replica's own table, without asking Redis again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_admin_authentication_on_one_replica_refuses_the_client_on_every_replica() {
    let server = RedisServer::start();
    let (_, a, stop_a) = throttling_replica(h::test_store(&server.url(), "ft"), 3).await;
    let (_, b, stop_b) = throttling_replica(h::test_store(&server.url(), "ft"), 3).await;
    let key = crate::helpers::MARKETER_KEY;

    assert_eq!(put_policy(a, "wrong-1").await.0, 401);
    assert_eq!(put_policy(b, "wrong-2").await.0, 401);
    assert_eq!(put_policy(b, key).await.0, 200, "two failures of three");
    assert_eq!(
        put_policy(a, "wrong-3").await.0,
        401,
        "the third, on the other replica"
    );
    for replica in [a, b] {
        let (status, retry_after) = put_policy(replica, key).await;
        assert_eq!(status, 429, "every replica refuses the client now");
        assert!(matches!(retry_after, Some(1..=60)), "{retry_after:?}");
    }
    let record = server.cli(&["hget", "ft:{auth:127.0.0.1}:fail", "n"]);
    assert_eq!(record.trim(), "3", "refused calls are not failures");

    // Replica b holds the refusal in its own table now: with Redis paused,
    // it still refuses at once (a replica that never saw the count would
    // let the client try again, the store being unable to say).
    server.pause();
    let (status, _) = put_policy(b, key).await;
    server.resume();
    assert_eq!(status, 429);
    stop_a.stop(true).await;
    stop_b.stop(true).await;
}

/// A store that cannot answer does not lock the operators out, nor open the
/// door: each replica then counts on its own, and a client that fails
/// `limit` times on it is refused there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_cannot_answer_each_replica_still_throttles_on_its_own_count() {
    let mut server = RedisServer::start();
    let (service, a, stop) = throttling_replica(h::test_store(&server.url(), "ft"), 2).await;
    // The policy is read from the replica's memory, so the PUT can be tried.
    assert_eq!(put_policy(a, "wrong-1").await.0, 401);
    server.kill();
    assert!(service
        .auth_failures("127.0.0.1".parse().unwrap())
        .await
        .is_err());
    let (status, _) = put_policy(a, "wrong-2").await;
    assert_eq!(
        status, 401,
        "counted here: the key was looked at and refused"
    );
    let (status, retry_after) = put_policy(a, crate::helpers::MARKETER_KEY).await;
    assert_eq!(status, 429, "two failures on this replica");
    assert!(matches!(retry_after, Some(1..=60)), "{retry_after:?}");
    stop.stop(true).await;
}

/// Guesses sent all at once, each passing the first check while Redis is
/// asked, still get at most `limit` past one replica: its table is read
/// again after Redis answers and counts a failure before the next guess
/// can be let through (give or take one per worker thread, 2 here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_parallel_guesses_gets_no_more_than_the_limit_past_a_replica() {
    let server = RedisServer::start();
    let (_, a, stop) = throttling_replica(h::test_store(&server.url(), "ft"), 3).await;
    let url = format!("http://{a}/v1/policy");
    let client = reqwest::Client::new();
    let policy: serde_json::Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    let guesses = (0..40).map(|n| {
        let put = client
            .put(&url)
            .bearer_auth(format!("wrong-{n}"))
            .json(&policy);
        async move { put.send().await.expect("request").status().as_u16() }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let looked_at = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(looked_at + refused, 40, "{statuses:?}");
    assert!((3..=4).contains(&looked_at), "keys compared: {looked_at}");
    stop.stop(true).await;
}
