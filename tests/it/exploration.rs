//! Opt-in gesture exploration end to end (issue 6, criterion 2): off by
//! default, bounded by validation, and when on, flagged in the decision, its
//! explanation, the decision log and the metrics.

use fairtreat::domain::policy::Policy;
use fairtreat::store::Store;
use serde_json::{json, Value};
use time::macros::datetime;

use crate::helpers::{interaction_for, TestApp, ADMIN_KEY};

const GESTURE_SENTENCE: &str = "Gesture exploration:";

/// Complaints and reviews that deserve gestures of various sizes.
fn cases(n: usize) -> Vec<Value> {
    (0..n)
        .map(|k| {
            let mut v = interaction_for(5000 + k);
            v["public"] = json!(k % 2 == 0);
            v["rating"] = json!(1 + k % 3);
            v["order_value"] = json!(15.0 + 11.0 * (k % 9) as f64);
            v["customer"]["tenure_days"] = json!(30 * (k % 40));
            v
        })
        .collect()
}

fn gesture_explored(d: &Value) -> bool {
    d["explanation"]
        .as_str()
        .unwrap()
        .contains(GESTURE_SENTENCE)
}

async fn explored_metric(app: &TestApp, part: &str) -> f64 {
    let (_, text) = app.get("/metrics").await;
    let prefix = format!("fairtreat_explored_decisions_total{{part=\"{part}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[actix_web::test]
async fn gesture_exploration_is_off_by_default() {
    let app = TestApp::start().await;
    let (_, policy) = app.call("GET", "/v1/policy", None, None).await;
    assert_eq!(policy["exploration"]["gesture_epsilon"], json!(0.0));
    for case in cases(40) {
        let d = app.decide(&case).await;
        assert!(!gesture_explored(&d), "{d}");
    }
    app.stop().await;
}

#[actix_web::test]
async fn a_gesture_exploration_rate_outside_its_bounds_is_refused_with_the_other_errors() {
    let app = TestApp::start().await;
    for (rate, ok) in [(0.5, false), (-0.1, false), (0.2, true), (0.0, true)] {
        let (_, mut p) = app.call("GET", "/v1/policy", None, None).await;
        p["exploration"]["gesture_epsilon"] = json!(rate);
        p["budget"]["daily"] = json!(-1.0);
        let (status, body) = app
            .call("PUT", "/v1/policy", Some(ADMIN_KEY), Some(&p))
            .await;
        assert_eq!(status, 422, "{body}");
        let fields: Vec<&str> = body["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&"budget.daily"), "{fields:?}");
        assert_eq!(
            fields.contains(&"exploration.gesture_epsilon"),
            !ok,
            "{rate}: {fields:?}"
        );
    }
    app.stop().await;
}

#[actix_web::test]
async fn explored_gestures_are_flagged_logged_with_their_propensity_and_counted() {
    let mut policy = Policy::bundled();
    policy.exploration.gesture_epsilon = 0.2;
    let app = TestApp::with_policy(policy).await;
    let before = explored_metric(&app, "gesture").await;
    let mut explored = Vec::new();
    let all = cases(80);
    for case in &all {
        let d = app.decide(case).await;
        if gesture_explored(&d) {
            assert_eq!(d["explored"], json!(true), "{d}");
            // At most the rate: the step's share of it, times the reply's.
            assert!(d["propensity"].as_f64().unwrap() <= 0.2 + 1e-12, "{d}");
            if let Some(g) = d["gesture"].as_object() {
                assert_eq!(g["delivery"], json!("private"));
                if d["response"]["channel"] == json!("public") {
                    let message = d["response"]["message"].as_str().unwrap();
                    assert!(!message.chars().any(|c| c.is_ascii_digit()), "{d}");
                }
            }
            explored.push(d);
        }
    }
    // About a fifth of the cases that have a gesture step (deterministic:
    // the draws come from the request bodies).
    assert!(
        explored.len() >= 5 && explored.len() <= 30,
        "{} of {}",
        explored.len(),
        all.len()
    );
    // The decision log keeps the flag and the propensity.
    let log = app
        .store
        .logged_decisions(datetime!(2000-01-01 0:00 UTC), 1000)
        .await
        .unwrap();
    for d in &explored {
        let id = d["decision_id"].as_str().unwrap();
        let r = log
            .iter()
            .find(|r| r.decision.decision_id.to_string() == id)
            .expect("logged");
        assert!(r.decision.explored);
        assert_eq!(r.decision.propensity, d["propensity"].as_f64().unwrap());
    }
    // Metrics are process-wide and other tests never explore gestures.
    let after = explored_metric(&app, "gesture").await;
    assert_eq!(after - before, explored.len() as f64);
    app.stop().await;
}
