//! One contract, every store: the same cases run against the in-memory store,
//! a real `redis-server`, and a real 3-primary Redis Cluster.
//!
//! Each case takes a fresh [`Subject`] (a store with the bundled policy
//! seeded) and drives it only through the [`Store`] trait, with time passed
//! in, so window edges, cap windows and day boundaries are hit exactly. The
//! window counters and the grant decisions are checked against a small
//! reference model written here, independently of both stores, including by
//! a property test over random operation sequences (TESTPLAN C4).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use fairtreat::domain::decision::Decision;
use fairtreat::domain::feedback::{Feedback, OutcomeDetails};
use fairtreat::domain::interaction::InteractionInput;
use fairtreat::domain::policy::{Caps, Policy, PolicyChange};
use fairtreat::domain::validation::{CustomerId, InteractionId};
use fairtreat::domain::window::{bucket_of, Cell, Counts, SeverityBand, WindowStats};
use fairtreat::store::failures::FailureWindow;
use fairtreat::store::memory::MemoryStore;
use fairtreat::store::{
    body_hash, ActionProbability, Commit, CommitOutcome, FeedbackOutcome, GrantRequest, Refusals,
    RefusedBy, ShadowChoice, Store, FEEDBACK_HORIZON, IDEMPOTENCY_TTL,
};
use serde_json::json;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::redis_harness::{self as h, RedisServer};

/// A store under test and whatever keeps its server alive.
pub struct Subject {
    pub store: Arc<dyn Store>,
    _server: Option<RedisServer>,
}

pub const T0: OffsetDateTime = datetime!(2026-11-20 12:00 UTC);

/// A fresh store of `kind` ("memory", "redis", "cluster"), with the bundled
/// policy seeded when `seed`. Redis subjects get their own server; cluster
/// subjects share the run's cluster under their own key prefix. The store is
/// built inside the caller's runtime, which then drives its connection.
pub async fn subject(kind: &str, seed: bool) -> Subject {
    let (store, server): (Arc<dyn Store>, Option<RedisServer>) = match kind {
        "memory" => (Arc::new(MemoryStore::new()), None),
        "redis" => {
            let server = RedisServer::start();
            (Arc::new(h::test_store(&server.url(), "ft")), Some(server))
        }
        "cluster" => {
            let url = tokio::task::spawn_blocking(|| h::shared_cluster().url())
                .await
                .unwrap();
            (Arc::new(h::test_store(&url, &h::unique("ct"))), None)
        }
        other => unreachable!("{other}"),
    };
    if seed {
        store
            .seed_policy(&Policy::bundled(), T0)
            .await
            .expect("seed the policy");
    }
    Subject {
        store,
        _server: server,
    }
}

// ---------------------------------------------------------------------------
// Building commits

fn caps(perks: u32, days: u32, max_value: f64) -> Caps {
    Caps {
        perks_per_customer: perks,
        window_days: days,
        max_value_per_customer: max_value,
    }
}

fn input(iid: &str, cid: &str, text: &str) -> InteractionInput {
    serde_json::from_value(json!({
        "interaction_id": iid,
        "customer": {"id": cid, "tenure_days": 100, "lifetime_value": 10.0,
                     "attributes": {"tier": "gold"}},
        "channel": "email", "kind": "complaint", "rating": 2, "text": text,
        "order_value": 50.0
    }))
    .expect("a valid interaction")
}

fn decision(
    id: Uuid,
    iid: &str,
    gesture: Option<f64>,
    refusal: Option<&str>,
    at: OffsetDateTime,
) -> Decision {
    let rfc = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    serde_json::from_value(json!({
        "decision_id": id, "interaction_id": iid,
        "action": if gesture.is_some() { "apologise_private_credit" } else { "apologise_private" },
        "response": {"channel": "private", "template": "apology_private", "message": "Sorry."},
        "gesture": gesture.map(|v| json!({"kind": "credit", "value": v, "currency": "EUR", "delivery": "private"})),
        "scores": {"sentiment": -0.5, "severity": 0.75, "deservingness": 0.6},
        "propensity": 1.0, "explored": false,
        "alternatives": [{"action": "apologise_public", "utility": 1.5}],
        "constraints": refusal.map(|r| vec![json!({"name": r, "effect": "refused"})]).unwrap_or_default(),
        "explanation": "test", "model_version": "test", "policy_version": 1,
        "degraded": false, "decided_at": rfc
    }))
    .expect("a valid decision")
}

/// One commit request in the tests' terms.
#[derive(Debug, Clone)]
pub struct Op {
    pub iid: String,
    pub cid: String,
    pub at: OffsetDateTime,
    /// Gesture value requested (None: no gesture).
    pub gesture: Option<f64>,
    pub caps: Caps,
    pub daily: f64,
    pub policy_version: u32,
    pub cells: Vec<Cell>,
    /// Distinguishes bodies: the same iid with another text is a mismatch.
    pub text: String,
}

impl Op {
    pub fn new(iid: &str, cid: &str, at: OffsetDateTime, gesture: Option<f64>) -> Self {
        Self {
            iid: iid.into(),
            cid: cid.into(),
            at,
            gesture,
            caps: caps(10, 30, 1000.0),
            daily: 5000.0,
            policy_version: 1,
            cells: vec![
                Cell::Peer { band: 3 },
                Cell::Group {
                    attribute: "tier".into(),
                    group: "gold".into(),
                    band: SeverityBand::High,
                },
            ],
            text: "the parcel arrived broken".into(),
        }
    }

    pub fn commit(&self) -> Commit {
        let input = input(&self.iid, &self.cid, &self.text);
        let id = Uuid::new_v4();
        let mut granted = decision(id, &self.iid, self.gesture, None, self.at);
        let mut cap = decision(id, &self.iid, None, Some("per_customer_cap"), self.at);
        let mut budget = decision(id, &self.iid, None, Some("budget"), self.at);
        for d in [&mut granted, &mut cap, &mut budget] {
            d.policy_version = self.policy_version;
        }
        Commit {
            interaction_id: InteractionId::parse("interaction_id", self.iid.as_str()).unwrap(),
            customer_id: CustomerId::parse("customer.id", self.cid.as_str()).unwrap(),
            body_hash: body_hash(&serde_json::to_vec(&input).unwrap()),
            now: self.at,
            cells: self.cells.clone(),
            window_hours: 24,
            input_json: serde_json::to_vec(&input).unwrap(),
            input,
            grant: self.gesture.map(|value| GrantRequest {
                value,
                caps: self.caps.clone(),
                daily_budget: self.daily,
            }),
            granted,
            refusals: Refusals::new(move |why| match why {
                RefusedBy::Cap => cap.clone(),
                RefusedBy::Budget => budget.clone(),
            }),
            shadow: None,
        }
    }
}

/// What a commit did, in comparable terms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Seen {
    Granted(f64),
    NoGesture,
    RefusedByCap,
    RefusedByBudget,
    Replayed,
    Mismatch,
}

fn seen(out: &CommitOutcome) -> Seen {
    match out {
        CommitOutcome::Mismatch => Seen::Mismatch,
        CommitOutcome::Replayed(_) => Seen::Replayed,
        CommitOutcome::Recorded(d) => {
            let names: Vec<String> = d
                .constraints
                .iter()
                .map(|c| {
                    serde_json::to_value(c.name)
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect();
            match &d.gesture {
                Some(g) => Seen::Granted(g.value),
                None if names.iter().any(|n| n == "per_customer_cap") => Seen::RefusedByCap,
                None if names.iter().any(|n| n == "budget") => Seen::RefusedByBudget,
                None => Seen::NoGesture,
            }
        }
    }
}

/// What each commit of one [`Store::commit_all`] did.
async fn seen_batch(store: &dyn Store, commits: Vec<Commit>) -> Vec<Seen> {
    store
        .commit_all(commits)
        .await
        .iter()
        .map(|out| seen(out.as_ref().expect("commit")))
        .collect()
}

async fn run(s: &Subject, op: &Op) -> CommitOutcome {
    s.store.commit(op.commit()).await.expect("commit")
}

// ---------------------------------------------------------------------------
// The reference model

/// What the contract says a store does, as plainly as possible.
#[derive(Default)]
pub struct Model {
    /// iid → (text, customer) of the first body seen.
    decided: HashMap<String, (String, String)>,
    /// customer → grant times and values.
    ledger: HashMap<String, Vec<(OffsetDateTime, f64)>>,
    /// UTC day → spend.
    spent: BTreeMap<time::Date, f64>,
    /// Every recorded decision: time, cells, granted value.
    window: Vec<(OffsetDateTime, Vec<Cell>, Option<f64>)>,
}

impl Model {
    pub fn apply(&mut self, op: &Op) -> Seen {
        if let Some((text, _)) = self.decided.get(&op.iid) {
            return if *text == op.text {
                Seen::Replayed
            } else {
                Seen::Mismatch
            };
        }
        self.decided
            .insert(op.iid.clone(), (op.text.clone(), op.cid.clone()));
        let outcome = match op.gesture {
            None => Seen::NoGesture,
            Some(v) => {
                let since = op.at - Duration::days(i64::from(op.caps.window_days));
                let l = self.ledger.entry(op.cid.clone()).or_default();
                let in_window: Vec<f64> = l
                    .iter()
                    .filter(|(t, _)| *t > since)
                    .map(|(_, v)| *v)
                    .collect();
                let spent = self.spent.get(&op.at.date()).copied().unwrap_or(0.0);
                if in_window.len() as u32 >= op.caps.perks_per_customer
                    || in_window.iter().sum::<f64>() + v > op.caps.max_value_per_customer
                {
                    Seen::RefusedByCap
                } else if spent + v > op.daily {
                    Seen::RefusedByBudget
                } else {
                    l.push((op.at, v));
                    *self.spent.entry(op.at.date()).or_default() += v;
                    Seen::Granted(v)
                }
            }
        };
        let granted = match outcome {
            Seen::Granted(v) => Some(v),
            _ => None,
        };
        self.window.push((op.at, op.cells.clone(), granted));
        outcome
    }

    pub fn window(&self, now: OffsetDateTime, hours: u32) -> WindowStats {
        let last = bucket_of(now);
        let first = last - i64::from(hours) + 1;
        let mut w = WindowStats::default();
        for (at, cells, granted) in &self.window {
            if (first..=last).contains(&bucket_of(*at)) {
                w.record(cells, *granted);
            }
        }
        w
    }
}

// ---------------------------------------------------------------------------
// The cases

pub async fn a_replay_returns_the_stored_decision_unchanged_and_grants_nothing_more(s: Subject) {
    let op = Op::new("i-1", "c-1", T0, Some(20.0));
    let first = run(&s, &op).await;
    let CommitOutcome::Recorded(stored) = &first else {
        panic!("{first:?}")
    };
    assert_eq!(stored.gesture.as_ref().map(|g| g.value), Some(20.0));
    for later in [Duration::ZERO, Duration::hours(30)] {
        let mut again = op.clone();
        again.at = T0 + later;
        // A replay renders new answers with a new decision id: the store
        // must return the stored one, not these.
        match run(&s, &again).await {
            CommitOutcome::Replayed(d) => assert_eq!(&d, stored),
            other => panic!("{other:?}"),
        }
    }
    let spend = s.store.spend(T0).await.unwrap();
    assert_eq!((spend.grants, spend.spent), (1, 20.0));
    assert_eq!(
        s.store.decision(stored.decision_id).await.unwrap().as_ref(),
        Some(stored)
    );
}

pub async fn the_same_interaction_id_with_another_body_is_a_mismatch_and_changes_nothing(
    s: Subject,
) {
    let op = Op::new("i-1", "c-1", T0, Some(20.0));
    run(&s, &op).await;
    let before = s.store.window_stats(T0, 24).await.unwrap();
    let mut other = op.clone();
    other.text = "another body".into();
    assert_eq!(seen(&run(&s, &other).await), Seen::Mismatch);
    // Nothing was counted, granted or replaced.
    assert_eq!(s.store.window_stats(T0, 24).await.unwrap(), before);
    assert_eq!(s.store.spend(T0).await.unwrap().grants, 1);
}

pub async fn the_per_customer_cap_refuses_until_the_grant_leaves_the_cap_window(s: Subject) {
    let mut op = Op::new("i-1", "c-1", T0, Some(10.0));
    op.caps = caps(1, 30, 100.0);
    assert_eq!(seen(&run(&s, &op).await), Seen::Granted(10.0));
    let edge = T0 + Duration::days(30);
    for (n, at, expected) in [
        (2, edge - Duration::milliseconds(1), Seen::RefusedByCap),
        (3, edge, Seen::Granted(10.0)),
        (4, edge + Duration::milliseconds(1), Seen::RefusedByCap),
    ] {
        let mut o = op.clone();
        o.iid = format!("i-{n}");
        o.at = at;
        assert_eq!(seen(&run(&s, &o).await), expected, "at {at}");
    }
    // The value cap counts what was granted in the window.
    let mut v = Op::new("v-1", "c-2", T0, Some(10.0));
    v.caps = caps(5, 30, 25.0);
    assert_eq!(seen(&run(&s, &v).await), Seen::Granted(10.0));
    v.iid = "v-2".into();
    assert_eq!(seen(&run(&s, &v).await), Seen::Granted(10.0));
    v.iid = "v-3".into();
    assert_eq!(seen(&run(&s, &v).await), Seen::RefusedByCap);
    v.iid = "v-4".into();
    v.gesture = Some(5.0);
    assert_eq!(seen(&run(&s, &v).await), Seen::Granted(5.0));
}

pub async fn the_daily_budget_is_never_overspent_and_refusals_name_the_budget(s: Subject) {
    let mut seen_all = Vec::new();
    for n in 0..6 {
        let mut op = Op::new(&format!("i-{n}"), &format!("c-{n}"), T0, Some(33.0));
        op.daily = 100.0;
        seen_all.push(seen(&run(&s, &op).await));
    }
    assert_eq!(
        seen_all
            .iter()
            .filter(|x| **x == Seen::Granted(33.0))
            .count(),
        3,
        "{seen_all:?}"
    );
    assert_eq!(&seen_all[3..], &[Seen::RefusedByBudget; 3]);
    let spend = s.store.spend(T0).await.unwrap();
    assert_eq!((spend.grants, spend.spent), (3, 99.0));
    // A smaller gesture still fits in what is left.
    let mut small = Op::new("i-small", "c-small", T0, Some(1.0));
    small.daily = 100.0;
    assert_eq!(seen(&run(&s, &small).await), Seen::Granted(1.0));
    assert_eq!(s.store.spend(T0).await.unwrap().spent, 100.0);
}

pub async fn a_new_utc_day_opens_a_fresh_budget_and_the_old_day_keeps_its_spend(s: Subject) {
    let day_end = datetime!(2026-11-20 23:59:59.999 UTC);
    let next = datetime!(2026-11-21 00:00 UTC);
    let mk = |n: usize, at| {
        let mut op = Op::new(&format!("i-{n}"), &format!("c-{n}"), at, Some(30.0));
        op.daily = 50.0;
        op
    };
    assert_eq!(seen(&run(&s, &mk(1, T0)).await), Seen::Granted(30.0));
    assert_eq!(seen(&run(&s, &mk(2, day_end)).await), Seen::RefusedByBudget);
    assert_eq!(seen(&run(&s, &mk(3, next)).await), Seen::Granted(30.0));
    assert_eq!(seen(&run(&s, &mk(4, next)).await), Seen::RefusedByBudget);
    assert_eq!(s.store.spend(T0).await.unwrap().spent, 30.0);
    let d2 = s.store.spend(next).await.unwrap();
    assert_eq!((d2.day, d2.spent, d2.grants), (next.date(), 30.0, 1));
}

/// A batch is committed in one call per day's pool: items on either side
/// of midnight each spend their own day's budget.
pub async fn a_batch_across_midnight_spends_each_days_own_budget(s: Subject) {
    let day_end = datetime!(2026-11-20 23:59:59.999 UTC);
    let next = datetime!(2026-11-21 00:00 UTC);
    let ops: Vec<Op> = [day_end, next, day_end, next, next]
        .into_iter()
        .enumerate()
        .map(|(n, at)| {
            let mut op = Op::new(&format!("m-{n}"), &format!("c-{n}"), at, Some(30.0));
            op.daily = 50.0;
            op
        })
        .collect();
    let seen_all = seen_batch(&*s.store, ops.iter().map(Op::commit).collect()).await;
    assert_eq!(
        seen_all,
        [
            Seen::Granted(30.0),
            Seen::Granted(30.0),
            Seen::RefusedByBudget,
            Seen::RefusedByBudget,
            Seen::RefusedByBudget,
        ]
    );
    for at in [day_end, next] {
        let spend = s.store.spend(at).await.unwrap();
        assert_eq!((spend.day, spend.spent, spend.grants), (at.date(), 30.0, 1));
    }
}

pub async fn a_budget_change_in_a_newer_policy_applies_the_same_day(s: Subject) {
    let mk = |n: usize, daily: f64, version: u32| {
        let mut op = Op::new(&format!("i-{n}"), &format!("c-{n}"), T0, Some(30.0));
        op.daily = daily;
        op.policy_version = version;
        op
    };
    assert_eq!(seen(&run(&s, &mk(1, 100.0, 1)).await), Seen::Granted(30.0));
    // Lowered to 40: 30 + 30 would overspend it.
    assert_eq!(seen(&run(&s, &mk(2, 40.0, 2)).await), Seen::RefusedByBudget);
    // Raised to 200.
    assert_eq!(seen(&run(&s, &mk(3, 200.0, 3)).await), Seen::Granted(30.0));
    assert_eq!(s.store.spend(T0).await.unwrap().spent, 60.0);
}

pub async fn window_counters_match_the_reference_model_at_hour_edges(s: Subject) {
    // Time only moves forward (as on a real clock): decisions and snapshots
    // interleave, standing 1 ms before, on and 1 ms after hour edges.
    let hour = datetime!(2026-11-20 13:00 UTC);
    let ms = Duration::milliseconds;
    let mut model = Model::default();
    let timeline: [(OffsetDateTime, bool); 14] = [
        (hour - Duration::hours(24), true),
        (hour - Duration::hours(23) - ms(1), true),
        (hour - Duration::hours(23) - ms(1), false),
        (hour - Duration::hours(23), true),
        (hour - Duration::hours(23), false),
        (hour - ms(1), true),
        (hour - ms(1), false),
        (hour, true),
        (hour, false),
        (hour + ms(1), true),
        (hour + Duration::minutes(59), true),
        (hour + Duration::hours(1) - ms(1), false),
        (hour + Duration::hours(1), false),
        (hour + Duration::hours(24), false),
    ];
    for (n, (at, decide)) in timeline.iter().enumerate() {
        if *decide {
            let mut op = Op::new(&format!("w-{n}"), &format!("c-{n}"), *at, None);
            if n % 2 == 0 {
                op.gesture = Some(5.0);
            }
            if n == 5 {
                op.cells.push(Cell::Peer { band: 0 });
            }
            assert_eq!(seen(&run(&s, &op).await), model.apply(&op), "op {n}");
            continue;
        }
        for hours in [1, 2, 24] {
            assert_eq!(
                *s.store.window_stats(*at, hours).await.unwrap(),
                model.window(*at, hours),
                "window of {hours} h at {at}"
            );
        }
    }
    // By hand, once: at the hour, a 24 h window holds the hour bucket
    // b−23 to b (decisions 3, 5, 7, 9, 10: one perk, made at 13:59), and no
    // longer bucket b−24 (decisions 0 and 1, exactly 24 h and 23 h 1 ms
    // before the hour).
    let mut by_hand = Model::default();
    for (n, (at, _)) in timeline.iter().enumerate().filter(|(_, (_, d))| *d) {
        let mut op = Op::new(&format!("w-{n}"), &format!("c-{n}"), *at, None);
        op.gesture = (n % 2 == 0).then_some(5.0);
        by_hand.apply(&op);
    }
    assert_eq!(
        by_hand.window(hour, 24).get(&Cell::Peer { band: 3 }),
        Counts {
            decisions: 5,
            perks: 1,
            value: 5.0
        },
        "the reference model itself"
    );
}

pub async fn the_window_series_counts_every_decision_once_in_its_hour(s: Subject) {
    // Decisions in different peer bands (each decision is in exactly one
    // Peer cell), some with a perk, around hour edges; one just outside a
    // 24 h window and one replay that must not count twice.
    let hour = datetime!(2026-11-20 13:00 UTC);
    let ms = Duration::milliseconds;
    let mut model = Model::default();
    let plan: [(OffsetDateTime, Option<f64>, u8); 7] = [
        (hour - Duration::hours(24), Some(5.0), 1),
        (hour - Duration::hours(23), None, 2),
        (hour - ms(1), Some(7.5), 3),
        (hour - ms(1), None, 0),
        (hour, Some(2.0), 4),
        (hour + Duration::minutes(30), None, 3),
        (hour + Duration::minutes(31), Some(1.0), 2),
    ];
    for (n, (at, gesture, band)) in plan.iter().enumerate() {
        let mut op = Op::new(&format!("s-{n}"), &format!("c-{n}"), *at, *gesture);
        op.cells[0] = Cell::Peer { band: *band };
        assert_eq!(seen(&run(&s, &op).await), model.apply(&op), "op {n}");
    }
    let replay = Op::new("s-4", "c-4", hour, Some(2.0));
    let mut replay = replay;
    replay.cells[0] = Cell::Peer { band: 4 };
    assert_eq!(seen(&run(&s, &replay).await), Seen::Replayed);

    let now = hour + Duration::minutes(45);
    let series = s.store.window_series(now, 24).await.unwrap();
    let mut want: BTreeMap<i64, Counts> = BTreeMap::new();
    let first = bucket_of(now) - 23;
    for (at, _, granted) in &model.window {
        let b = bucket_of(*at);
        if (first..=bucket_of(now)).contains(&b) {
            want.entry(b).or_default().add(Counts {
                decisions: 1,
                perks: u64::from(granted.is_some()),
                value: granted.unwrap_or(0.0),
            });
        }
    }
    let want: Vec<(i64, Counts)> = want.into_iter().collect();
    assert_eq!(series, want, "the reference model");
    // By hand: bucket of 12:00 holds two decisions (one perk of 7.5), the
    // hour of 13:00 three (perks 2.0 and 1.0); 12:00 the day before is out.
    assert_eq!(
        series,
        vec![
            (
                bucket_of(hour) - 23,
                Counts {
                    decisions: 1,
                    perks: 0,
                    value: 0.0
                }
            ),
            (
                bucket_of(hour) - 1,
                Counts {
                    decisions: 2,
                    perks: 1,
                    value: 7.5
                }
            ),
            (
                bucket_of(hour),
                Counts {
                    decisions: 3,
                    perks: 2,
                    value: 3.0
                }
            ),
        ]
    );
    // A one-hour window is the current hour only; an empty store has none.
    assert_eq!(
        s.store.window_series(now, 1).await.unwrap(),
        vec![(
            bucket_of(hour),
            Counts {
                decisions: 3,
                perks: 2,
                value: 3.0
            }
        )]
    );
    assert!(s
        .store
        .window_series(hour + Duration::days(3), 24)
        .await
        .unwrap()
        .is_empty());
}

pub async fn policy_changes_are_compare_and_set_and_every_change_is_in_the_history(s: Subject) {
    let v1 = s.store.stored_policy().await.unwrap().expect("seeded");
    assert_eq!(v1, Policy::bundled());
    let mut p2 = v1.clone();
    p2.version = v1.version + 1;
    p2.budget.daily = 1234.0;
    let change = |p: &Policy, prev: u32, actor: &str| PolicyChange {
        version: p.version,
        previous_version: prev,
        actor: actor.into(),
        at: T0 + Duration::minutes(5),
        changes: fairtreat::domain::policy::diff(&v1, p),
        policy: p.clone(),
    };
    assert!(s
        .store
        .replace_policy(&change(&p2, v1.version, "alice"))
        .await
        .unwrap());
    // A second writer based on the old version loses.
    let mut p2b = p2.clone();
    p2b.budget.daily = 999.0;
    assert!(!s
        .store
        .replace_policy(&change(&p2b, v1.version, "bob"))
        .await
        .unwrap());
    assert_eq!(s.store.stored_policy().await.unwrap(), Some(p2.clone()));
    let history = s.store.policy_history(10).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0], change(&p2, v1.version, "alice"));
    assert_eq!(
        (history[1].actor.as_str(), history[1].version),
        ("startup", v1.version)
    );
    assert_eq!(s.store.policy_history(1).await.unwrap().len(), 1);
    // Seeding never goes back to an older version; a newer one wins.
    assert_eq!(s.store.seed_policy(&v1, T0).await.unwrap(), p2);
    let mut p5 = v1.clone();
    p5.version = 5;
    assert_eq!(s.store.seed_policy(&p5, T0).await.unwrap(), p5);
    let top = &s.store.policy_history(1).await.unwrap()[0];
    assert_eq!((top.version, top.previous_version), (5, p2.version));
    assert!(top.changes.iter().any(|c| c.field == "budget.daily"));
}

pub async fn recent_interactions_come_newest_first_since_the_given_time_up_to_the_limit(
    s: Subject,
) {
    for n in 0..12 {
        let op = Op::new(
            &format!("r-{n}"),
            &format!("c-{n}"),
            T0 + Duration::minutes(n),
            None,
        );
        run(&s, &op).await;
    }
    let ids = |v: Vec<InteractionInput>| -> Vec<String> {
        v.into_iter().map(|i| i.interaction_id).collect()
    };
    let all = ids(s.store.recent_interactions(T0, 100).await.unwrap());
    let expected: Vec<String> = (0..12).rev().map(|n| format!("r-{n}")).collect();
    assert_eq!(all, expected);
    assert_eq!(
        ids(s
            .store
            .recent_interactions(T0 + Duration::minutes(9), 100)
            .await
            .unwrap()),
        ["r-11", "r-10", "r-9"]
    );
    assert_eq!(
        ids(s.store.recent_interactions(T0, 2).await.unwrap()),
        ["r-11", "r-10"]
    );
    let one = s.store.recent_interactions(T0, 1).await.unwrap();
    assert_eq!(one[0], input("r-11", "c-11", "the parcel arrived broken"));
}

pub async fn every_recorded_decision_can_be_found_by_its_id_and_unknown_ids_are_none(s: Subject) {
    let mut ids = Vec::new();
    for n in 0..5 {
        let op = Op::new(&format!("d-{n}"), &format!("c-{n}"), T0, Some(1.0));
        match run(&s, &op).await {
            CommitOutcome::Recorded(d) => ids.push(d),
            other => panic!("{other:?}"),
        }
    }
    for d in &ids {
        assert_eq!(
            s.store.decision(d.decision_id).await.unwrap().as_ref(),
            Some(d)
        );
    }
    assert_eq!(s.store.decision(Uuid::new_v4()).await.unwrap(), None);
    assert!(s.store.ping().await.is_ok());
    assert!(IDEMPOTENCY_TTL >= Duration::hours(24));
}

pub async fn a_refusal_is_recorded_and_replayed_like_a_grant(s: Subject) {
    let mut op = Op::new("i-1", "c-1", T0, Some(10.0));
    op.caps = caps(1, 1, 100.0);
    run(&s, &op).await;
    let mut refused = op.clone();
    refused.iid = "i-2".into();
    let CommitOutcome::Recorded(d) = run(&s, &refused).await else {
        panic!("recorded")
    };
    assert_eq!(
        seen(&CommitOutcome::Recorded(d.clone())),
        Seen::RefusedByCap
    );
    // After the cap window (and within the idempotency TTL), the same
    // interaction still replays the refusal.
    refused.at = T0 + Duration::hours(30);
    assert_eq!(run(&s, &refused).await, CommitOutcome::Replayed(d));
    assert_eq!(s.store.spend(T0).await.unwrap().grants, 1);
}

/// `op`'s commit, counting how often the store renders each refusal
/// (`[cap, budget]`).
fn counted(op: &Op) -> (Commit, Arc<[AtomicUsize; 2]>) {
    let mut c = op.commit();
    let counts = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let (inner, n) = (c.refusals.clone(), counts.clone());
    c.refusals = Refusals::new(move |why| {
        let k = match why {
            RefusedBy::Cap => 0,
            RefusedBy::Budget => 1,
        };
        n[k].fetch_add(1, Ordering::SeqCst);
        inner.render(why)
    });
    (c, counts)
}

fn renders(counts: &[AtomicUsize; 2]) -> [usize; 2] {
    [0, 1].map(|k| counts[k].load(Ordering::SeqCst))
}

/// Refusals are rendered on demand: never for a commit without a gesture,
/// at most once each, and the refusal recorded is one rendered. (The
/// embedded store renders only the refusal it records; see
/// `the_embedded_store_renders_only_the_refusal_it_records`.)
pub async fn refusals_are_rendered_at_most_once_and_never_without_a_gesture(s: Subject) {
    let mk = |iid: &str, cid: &str, gesture| {
        let mut op = Op::new(iid, cid, T0, gesture);
        op.caps = caps(1, 30, 100.0);
        op.daily = 50.0;
        op
    };
    let cases = [
        (mk("r-1", "c-1", None), Seen::NoGesture),
        (mk("r-2", "c-1", Some(30.0)), Seen::Granted(30.0)),
        (mk("r-3", "c-1", Some(10.0)), Seen::RefusedByCap),
        (mk("r-4", "c-2", Some(30.0)), Seen::RefusedByBudget),
        (mk("r-5", "c-3", None), Seen::NoGesture),
    ];
    for (op, expected) in &cases {
        let (commit, counts) = counted(op);
        let out = s.store.commit(commit).await.expect("commit");
        assert_eq!(seen(&out), *expected, "{}", op.iid);
        let [cap, budget] = renders(&counts);
        assert!(
            cap <= 1 && budget <= 1,
            "{}: rendered {cap} and {budget} times",
            op.iid
        );
        if op.gesture.is_none() {
            assert_eq!((cap, budget), (0, 0), "{}: nothing to refuse", op.iid);
        }
        match expected {
            Seen::RefusedByCap => assert_eq!(cap, 1, "{}", op.iid),
            Seen::RefusedByBudget => assert_eq!(budget, 1, "{}", op.iid),
            _ => {}
        }
    }
}

pub async fn an_empty_store_accepts_the_first_policy_change_whatever_it_is_based_on(s: Subject) {
    assert_eq!(s.store.stored_policy().await.unwrap(), None);
    assert!(s.store.policy_history(10).await.unwrap().is_empty());
    let mut p = Policy::bundled();
    p.version = 4;
    let change = PolicyChange {
        version: 4,
        previous_version: 3,
        actor: "alice".into(),
        at: T0,
        changes: vec![],
        policy: p.clone(),
    };
    assert!(s.store.replace_policy(&change).await.unwrap());
    assert_eq!(s.store.stored_policy().await.unwrap(), Some(p));
    assert_eq!(
        s.store.policy_history(10).await.unwrap(),
        vec![change.clone()]
    );
    assert!(
        !s.store.replace_policy(&change).await.unwrap(),
        "now 4 is stored, not 3"
    );
}

/// Random operation sequences against the reference model: grants, retries,
/// mismatches, hour and day steps, with a small budget and tight caps.
pub fn random_operation_sequences_agree_with_the_reference_model(kind: &'static str) {
    random_sequences_agree_with_the_reference_model(kind, false);
}

/// The same sequences, every run of operations between two clock advances
/// committed in one [`Store::commit_all`]: each outcome must be what
/// committing them one after the other gives (Redis sends them in
/// pipelines and settles reservations afterwards).
pub fn random_batches_agree_with_the_reference_model(kind: &'static str) {
    random_sequences_agree_with_the_reference_model(kind, true);
}

fn random_sequences_agree_with_the_reference_model(kind: &'static str, batched: bool) {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    #[derive(Debug, Clone)]
    enum Step {
        Decide { customer: u8, gesture: Option<u8> },
        Retry { back: u8, change_body: bool },
        Advance { minutes: u16 },
    }
    let step = prop_oneof![
        5 => (0u8..6, proptest::option::of(1u8..4)).prop_map(|(customer, gesture)| Step::Decide { customer, gesture }),
        2 => (0u8..20, any::<bool>()).prop_map(|(back, change_body)| Step::Retry { back, change_body }),
        2 => prop_oneof![0u16..90, Just(60u16), 600u16..1500].prop_map(|minutes| Step::Advance { minutes }),
    ];
    let mut runner = TestRunner::new(Config {
        cases: 12,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(step, 1..40), |steps| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let s = subject_for(kind).await;
                let mut model = Model::default();
                let start = datetime!(2026-11-20 22:30 UTC);
                let mut now = start;
                let mut done: Vec<Op> = Vec::new();
                // Operations not yet committed (batched: until the clock moves).
                let mut batch: Vec<Op> = Vec::new();
                for (n, st) in steps.iter().enumerate() {
                    let op = match st {
                        Step::Advance { minutes } => {
                            check_batch(&s, &mut model, &mut batch, now).await?;
                            // Stay within the idempotency TTL: expiry runs on
                            // Redis's clock, not on the injected one.
                            now = (now + Duration::minutes(i64::from(*minutes)))
                                .min(start + Duration::hours(40));
                            continue;
                        }
                        Step::Decide { customer, gesture } => {
                            let mut op = Op::new(
                                &format!("p-{n}"),
                                &format!("c-{customer}"),
                                now,
                                gesture.map(|g| f64::from(g) * 10.0),
                            );
                            op.caps = caps(2, 1, 45.0);
                            op.daily = 60.0;
                            op.cells = vec![Cell::Peer {
                                band: *customer % 2,
                            }];
                            op
                        }
                        Step::Retry { back, change_body } => {
                            let Some(prev) = done
                                .iter()
                                .rev()
                                .nth(usize::from(*back) % done.len().max(1))
                            else {
                                continue;
                            };
                            let mut op = prev.clone();
                            op.at = now;
                            if *change_body {
                                op.text = format!("{} (edited)", op.text);
                            }
                            op
                        }
                    };
                    done.push(op.clone());
                    if batched {
                        batch.push(op);
                        continue;
                    }
                    let got = seen(&s.store.commit(op.commit()).await.expect("commit"));
                    prop_assert_eq!(&got, &model.apply(&op), "step {} {:?}", n, op);
                    check_window(&s, &model, now).await?;
                }
                check_batch(&s, &mut model, &mut batch, now).await?;
                for (day, spent) in &model.spent {
                    let at = day.midnight().assume_utc();
                    prop_assert_eq!(s.store.spend(at).await.expect("spend").spent, *spent);
                }
                Ok(())
            })
        })
        .unwrap();
}

/// Commits `batch` (if any) in one `commit_all` and checks every outcome,
/// in order, and the window after it, against the model.
async fn check_batch(
    s: &Subject,
    model: &mut Model,
    batch: &mut Vec<Op>,
    now: OffsetDateTime,
) -> Result<(), proptest::test_runner::TestCaseError> {
    if batch.is_empty() {
        return Ok(());
    }
    let ops = std::mem::take(batch);
    let outcomes = s
        .store
        .commit_all(ops.iter().map(Op::commit).collect())
        .await;
    proptest::prop_assert_eq!(outcomes.len(), ops.len());
    for (k, (op, out)) in ops.iter().zip(outcomes).enumerate() {
        let got = seen(&out.expect("commit"));
        proptest::prop_assert_eq!(
            &got,
            &model.apply(op),
            "item {} of {} {:?}",
            k,
            ops.len(),
            op
        );
    }
    check_window(s, model, now).await
}

async fn check_window(
    s: &Subject,
    model: &Model,
    now: OffsetDateTime,
) -> Result<(), proptest::test_runner::TestCaseError> {
    for hours in [1u32, 3] {
        proptest::prop_assert_eq!(
            s.store.window_stats(now, hours).await.expect("window"),
            model.window(now, hours).into()
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Feedback and the decision log

fn feedback(id: Uuid, reward: f64, at: OffsetDateTime) -> Feedback {
    Feedback {
        decision_id: id,
        reward,
        outcome: OutcomeDetails {
            replied: Some(true),
            sentiment_after: Some(0.25),
            ..OutcomeDetails::default()
        },
        received_at: at,
    }
}

async fn recorded(s: &Subject, op: &Op) -> Decision {
    match run(s, op).await {
        CommitOutcome::Recorded(d) => d,
        other => panic!("expected a recorded decision, got {other:?}"),
    }
}

pub async fn feedback_is_recorded_once_an_identical_retry_replays_and_another_report_conflicts(
    s: Subject,
) {
    let d = recorded(&s, &Op::new("f-1", "c-1", T0, Some(5.0))).await;
    let first = feedback(d.decision_id, 0.75, T0 + Duration::hours(2));
    assert_eq!(
        s.store.record_feedback(&first).await.unwrap(),
        FeedbackOutcome::Recorded
    );
    // A retry received later is the same report: the stored one comes back.
    let retry = feedback(d.decision_id, 0.75, T0 + Duration::hours(3));
    assert_eq!(
        s.store.record_feedback(&retry).await.unwrap(),
        FeedbackOutcome::Replayed(first.clone())
    );
    let other = feedback(d.decision_id, 0.0, T0 + Duration::hours(3));
    assert_eq!(
        s.store.record_feedback(&other).await.unwrap(),
        FeedbackOutcome::Conflict(first.clone())
    );
    assert_eq!(
        s.store
            .record_feedback(&feedback(Uuid::new_v4(), 0.5, T0))
            .await
            .unwrap(),
        FeedbackOutcome::UnknownDecision
    );
    let log = s.store.logged_decisions(T0, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        log[0].feedback.as_ref(),
        Some(&first),
        "the first report is kept"
    );
}

pub async fn the_decision_log_joins_each_decision_with_its_feedback_oldest_first(s: Subject) {
    let mut decisions = Vec::new();
    for n in 0..3i64 {
        let mut op = Op::new(
            &format!("l-{n}"),
            &format!("c-{n}"),
            T0 + Duration::minutes(n),
            Some(10.0),
        );
        if n == 1 {
            // Refused by the cap: the log holds the answer actually given.
            op.caps = caps(0, 30, 100.0);
        }
        let mut c = op.commit();
        if n == 2 {
            c.shadow = Some(ShadowChoice {
                model_version: "shadow-1".into(),
                action: "apologise_private".into(),
                gesture: None,
                propensity: 0.9,
                probabilities: vec![ActionProbability {
                    action: "apologise_private".into(),
                    probability: 0.9,
                }],
            });
        }
        let shadow = c.shadow.clone();
        match s.store.commit(c).await.unwrap() {
            CommitOutcome::Recorded(d) => decisions.push((d, shadow)),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        seen(&CommitOutcome::Recorded(decisions[1].0.clone())),
        Seen::RefusedByCap
    );
    let f = feedback(decisions[1].0.decision_id, 1.0, T0 + Duration::hours(1));
    s.store.record_feedback(&f).await.unwrap();
    // A replay and a mismatch add nothing to the log.
    run(
        &s,
        &Op::new("l-0", "c-0", T0 + Duration::minutes(5), Some(10.0)),
    )
    .await;
    let mut mismatch = Op::new("l-0", "c-0", T0 + Duration::minutes(5), Some(10.0));
    mismatch.text = "another body".into();
    assert_eq!(run(&s, &mismatch).await, CommitOutcome::Mismatch);

    let log = s.store.logged_decisions(T0, 10).await.unwrap();
    assert_eq!(log.len(), 3);
    for (logged, (d, shadow)) in log.iter().zip(&decisions) {
        assert_eq!(&logged.decision, d);
        assert_eq!(&logged.shadow, shadow);
        assert_eq!(logged.input.interaction_id, d.interaction_id);
    }
    assert_eq!(log[0].feedback, None);
    assert_eq!(log[1].feedback.as_ref(), Some(&f));
    assert_eq!(log[2].feedback, None);
    // `since` is inclusive, and `limit` keeps the oldest.
    let later = s
        .store
        .logged_decisions(T0 + Duration::minutes(1), 10)
        .await
        .unwrap();
    assert_eq!(later.len(), 2);
    assert_eq!(later[0].decision, decisions[1].0);
    let one = s.store.logged_decisions(T0, 1).await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].decision, decisions[0].0);
    assert!(s
        .store
        .logged_decisions(T0 + Duration::minutes(3), 10)
        .await
        .unwrap()
        .is_empty());
}

pub async fn feedback_is_accepted_up_to_the_horizon_and_refused_after_it(s: Subject) {
    assert_eq!(FEEDBACK_HORIZON, Duration::days(7));
    let a = recorded(&s, &Op::new("h-1", "c-1", T0, None)).await;
    let b = recorded(&s, &Op::new("h-2", "c-2", T0, None)).await;
    assert_eq!(
        s.store
            .record_feedback(&feedback(a.decision_id, 0.5, T0 + FEEDBACK_HORIZON))
            .await
            .unwrap(),
        FeedbackOutcome::Recorded
    );
    assert_eq!(
        s.store
            .record_feedback(&feedback(
                b.decision_id,
                0.5,
                T0 + FEEDBACK_HORIZON + Duration::milliseconds(1)
            ))
            .await
            .unwrap(),
        FeedbackOutcome::UnknownDecision
    );
    // Past the idempotency TTL the decision still takes (idempotent) feedback.
    assert!(IDEMPOTENCY_TTL < FEEDBACK_HORIZON);
    assert!(matches!(
        s.store
            .record_feedback(&feedback(a.decision_id, 0.5, T0 + FEEDBACK_HORIZON))
            .await
            .unwrap(),
        FeedbackOutcome::Replayed(_)
    ));
}

/// Failed admin authentication (`http::throttle`): one window per client,
/// from its first failure, ending exactly `window` later; an IPv6 client is
/// its /64. Every replica on a shared store counts into the same window.
pub async fn failed_admin_authentication_is_counted_in_one_window_per_client_that_ends_on_time(
    s: Subject,
) {
    let store = &s.store;
    let minute = std::time::Duration::from_secs(60);
    let at = |ms: i64| T0 + Duration::milliseconds(ms);
    let ip = |a: &str| a.parse::<std::net::IpAddr>().unwrap();
    let window = |count, left_ms| FailureWindow {
        count,
        left: std::time::Duration::from_millis(left_ms),
    };
    let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));

    assert_eq!(store.auth_failures(a, at(0)).await.unwrap(), None);
    let counted = store.count_auth_failure(a, at(0), minute).await.unwrap();
    assert_eq!(counted, window(1, 60_000));
    let counted = store
        .count_auth_failure(a, at(20_000), minute)
        .await
        .unwrap();
    assert_eq!(
        counted,
        window(2, 40_000),
        "the window runs from the first failure"
    );
    let seen = store.auth_failures(a, at(59_999)).await.unwrap();
    assert_eq!(seen, Some(window(2, 1)));
    assert_eq!(
        store.auth_failures(b, at(20_000)).await.unwrap(),
        None,
        "another client"
    );
    assert_eq!(
        store.auth_failures(a, at(60_000)).await.unwrap(),
        None,
        "it has ended"
    );
    let counted = store
        .count_auth_failure(a, at(60_000), minute)
        .await
        .unwrap();
    assert_eq!(
        counted,
        window(1, 60_000),
        "a failure after it opens a new one"
    );

    let counted = store
        .count_auth_failure(ip("2001:db8:1:2::7"), at(0), minute)
        .await
        .unwrap();
    assert_eq!(counted.count, 1);
    let counted = store
        .count_auth_failure(ip("2001:db8:1:2:ffff::1"), at(1), minute)
        .await
        .unwrap();
    assert_eq!(counted, window(2, 59_999), "one /64, one client");
    let next = store
        .auth_failures(ip("2001:db8:1:3::7"), at(1))
        .await
        .unwrap();
    assert_eq!(next, None, "the next /64 is another client");
    let mapped = store
        .auth_failures(ip("::ffff:192.0.2.1"), at(60_000))
        .await
        .unwrap();
    assert_eq!(
        mapped,
        Some(window(1, 60_000)),
        "an IPv4-mapped address is its IPv4 client"
    );
}

macro_rules! contract {
    ($subject:ident: [$($case:ident),*], fresh: [$($fresh:ident),*]) => {
        mod $subject {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::subject(stringify!($subject), true).await).await
                }
            )*
            $(
                #[tokio::test]
                async fn $fresh() {
                    super::$fresh(super::subject(stringify!($subject), false).await).await
                }
            )*

            #[test]
            fn random_operation_sequences_agree_with_the_reference_model() {
                super::random_operation_sequences_agree_with_the_reference_model(stringify!(
                    $subject
                ));
            }

            #[test]
            fn random_batches_agree_with_the_reference_model() {
                super::random_batches_agree_with_the_reference_model(stringify!($subject));
            }
        }
    };
}

macro_rules! contract_for_every_store {
    (seeded: [$($case:ident),* $(,)?], fresh: [$($fresh:ident),* $(,)?]) => {
        contract!(memory: [$($case),*], fresh: [$($fresh),*]);
        contract!(redis: [$($case),*], fresh: [$($fresh),*]);
        contract!(cluster: [$($case),*], fresh: [$($fresh),*]);
    };
}

contract_for_every_store!(
    seeded: [
        a_replay_returns_the_stored_decision_unchanged_and_grants_nothing_more,
        the_same_interaction_id_with_another_body_is_a_mismatch_and_changes_nothing,
        the_per_customer_cap_refuses_until_the_grant_leaves_the_cap_window,
        the_daily_budget_is_never_overspent_and_refusals_name_the_budget,
        a_new_utc_day_opens_a_fresh_budget_and_the_old_day_keeps_its_spend,
        a_budget_change_in_a_newer_policy_applies_the_same_day,
        a_batch_across_midnight_spends_each_days_own_budget,
        window_counters_match_the_reference_model_at_hour_edges,
        the_window_series_counts_every_decision_once_in_its_hour,
        policy_changes_are_compare_and_set_and_every_change_is_in_the_history,
        recent_interactions_come_newest_first_since_the_given_time_up_to_the_limit,
        every_recorded_decision_can_be_found_by_its_id_and_unknown_ids_are_none,
        a_refusal_is_recorded_and_replayed_like_a_grant,
        refusals_are_rendered_at_most_once_and_never_without_a_gesture,
        feedback_is_recorded_once_an_identical_retry_replays_and_another_report_conflicts,
        the_decision_log_joins_each_decision_with_its_feedback_oldest_first,
        feedback_is_accepted_up_to_the_horizon_and_refused_after_it,
        failed_admin_authentication_is_counted_in_one_window_per_client_that_ends_on_time,
    ],
    fresh: [
        an_empty_store_accepts_the_first_policy_change_whatever_it_is_based_on,
    ]
);

/// For the property test: one subject per case. Redis cases share one
/// server per test thread and isolate themselves by key prefix.
async fn subject_for(kind: &str) -> Subject {
    thread_local! {
        static SERVER: std::cell::RefCell<Option<RedisServer>> = const { std::cell::RefCell::new(None) };
    }
    match kind {
        "redis" => {
            let url = SERVER.with(|s| s.borrow_mut().get_or_insert_with(RedisServer::start).url());
            let store: Arc<dyn Store> = Arc::new(h::test_store(&url, &h::unique("pt")));
            store
                .seed_policy(&Policy::bundled(), T0)
                .await
                .expect("seed");
            Subject {
                store,
                _server: None,
            }
        }
        other => subject(other, true).await,
    }
}

/// The embedded store decides under its lock, in process: it renders a
/// refusal only when it records it, one commit or a batch.
#[tokio::test]
async fn the_embedded_store_renders_only_the_refusal_it_records() {
    let store = MemoryStore::new();
    store.seed_policy(&Policy::bundled(), T0).await.unwrap();
    let mk = |iid: &str, cid: &str| {
        let mut op = Op::new(iid, cid, T0, Some(30.0));
        op.caps = caps(1, 30, 100.0);
        op.daily = 50.0;
        op
    };
    let ops = [
        mk("e-1", "c-1"),
        mk("e-2", "c-1"),
        mk("e-3", "c-2"),
        mk("e-4", "c-3"),
    ];
    let (one, one_counts) = counted(&ops[0]);
    assert_eq!(seen(&store.commit(one).await.unwrap()), Seen::Granted(30.0));
    assert_eq!(renders(&one_counts), [0, 0], "a grant renders no refusal");
    let (commits, counts): (Vec<Commit>, Vec<_>) = ops[1..].iter().map(counted).unzip();
    let seen_all = seen_batch(&store, commits).await;
    assert_eq!(
        seen_all,
        [
            Seen::RefusedByCap,
            Seen::RefusedByBudget,
            Seen::RefusedByBudget
        ]
    );
    let rendered: Vec<[usize; 2]> = counts.iter().map(|c| renders(c)).collect();
    assert_eq!(rendered, [[1, 0], [0, 1], [0, 1]]);
}
