//! Shadow models over HTTP (issue 6, criterion 6): attach and detach with
//! `models:write`, the shadow never changes what the client receives, its
//! choice is logged beside the decision, and `GET /v1/models` reports its
//! agreement and off-policy value.

use std::path::PathBuf;

use fairtreat::domain::decide::{plan, Inputs};
use fairtreat::domain::interaction::{Interaction, InteractionInput};
use fairtreat::domain::window::WindowStats;
use fairtreat::model::load_version;
use fairtreat::service::Models;
use fairtreat::store::{LoggedDecision, Store};
use serde_json::{json, Value};
use time::macros::datetime;

use crate::helpers::{
    broken_outcome_model_dir, interaction_for, TestApp, ADMIN_KEY, ANALYST_KEY, MARKETER_KEY,
};

/// The repository's models directory (the test app runs on the bundled
/// models, which are `vader-lexicon-3.3.2` and `outcome-rules-1` there).
fn repo_models() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models")
}

async fn app_with_models() -> TestApp {
    let app = TestApp::start().await;
    app.service.set_models_dir(repo_models());
    app
}

/// Varied interactions: texts and orders on which sentiment models differ.
fn varied(n: usize) -> Vec<Value> {
    const TEXTS: &[&str] = &[
        "Order arrived broken and nobody answers my emails",
        "The delivery was late and the box was damaged.",
        "Worst service ever. I want my money back!!!",
        "It's ok I guess, a bit slow",
        "Not great, not terrible. The parcel was dented.",
        "I am disappointed, the product stopped working after a week",
        "Support was rude and unhelpful, never again",
        "The item is fine but the courier lost it twice",
        "meh",
        "Terrible packaging, half the items were missing",
        "Took three weeks to arrive, really annoying",
        "I waited on hold for an hour and then got cut off",
    ];
    (0..n)
        .map(|k| {
            let mut v = interaction_for(1000 + k);
            v["text"] = json!(TEXTS[k % TEXTS.len()]);
            v["kind"] = json!(if k % 3 == 0 { "review" } else { "complaint" });
            v["rating"] = json!(1 + (k % 4));
            v["public"] = json!(k % 2 == 0);
            v["order_value"] = json!(20.0 + 7.0 * k as f64);
            v
        })
        .collect()
}

fn without_id(mut d: Value) -> Value {
    d["decision_id"] = Value::Null;
    d
}

/// Attaches `version` as shadow with the admin key; it must succeed.
async fn attach_shadow(app: &TestApp, version: &str) {
    let (status, body) = app
        .call(
            "POST",
            &format!("/v1/models/{version}/shadow"),
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn logged(app: &TestApp) -> Vec<LoggedDecision> {
    app.store
        .logged_decisions(datetime!(2000-01-01 0:00 UTC), 10_000)
        .await
        .expect("the memory store serves its decision log")
}

#[actix_web::test]
async fn attaching_and_detaching_a_shadow_needs_models_write() {
    let app = app_with_models().await;
    let path = "/v1/models/sentiment-logreg-1/shadow";
    for key in [None, Some("wrong-key-000000000000")] {
        let (status, body) = app.call("POST", path, key, None).await;
        assert_eq!(status, 401, "{body}");
        let (status, body) = app.call("DELETE", "/v1/models/shadow", key, None).await;
        assert_eq!(status, 401, "{body}");
    }
    let (status, body) = app.call("POST", path, Some(MARKETER_KEY), None).await;
    assert_eq!((status, &body["error"]["code"]), (403, &json!("forbidden")));
    let (status, body) = app
        .call("DELETE", "/v1/models/shadow", Some(MARKETER_KEY), None)
        .await;
    assert_eq!((status, &body["error"]["code"]), (403, &json!("forbidden")));
    assert!(
        app.service.shadow().is_none(),
        "nothing attached by refused calls"
    );

    let (status, body) = app
        .call(
            "POST",
            "/v1/models/no-such-model-1/shadow",
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("not_found")),
        "{body}"
    );

    let (status, body) = app.call("POST", path, Some(ANALYST_KEY), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["version"], json!("sentiment-logreg-1"));
    assert_eq!(body["task"], json!("sentiment"));
    assert_eq!(
        body["model_version"],
        json!("sentiment-logreg-1+outcome-rules-1")
    );
    assert_eq!(
        body["active_model_version"],
        json!("vader-lexicon-3.3.2+outcome-rules-1"),
        "the active models are unchanged"
    );
    assert_eq!(body["attached_at"], json!("2026-11-20T12:00:00Z"));
    assert_eq!(
        app.service.models().version(),
        "vader-lexicon-3.3.2+outcome-rules-1"
    );

    let (_, list) = app.call("GET", "/v1/models", None, None).await;
    assert_eq!(list["shadow"]["version"], json!("sentiment-logreg-1"));
    assert_eq!(list["shadow"]["decisions_scored"], json!(0));
    assert_eq!(list["shadow"]["agreement_rate"], Value::Null);
    let entry = list["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["version"] == json!("sentiment-logreg-1"))
        .unwrap();
    assert_eq!(
        (entry["shadow"].clone(), entry["active"].clone()),
        (json!(true), json!(false))
    );

    let (status, body) = app
        .call("DELETE", "/v1/models/shadow", Some(ANALYST_KEY), None)
        .await;
    assert_eq!(
        (status, body),
        (200, json!({"detached": "sentiment-logreg-1"}))
    );
    let (status, body) = app
        .call("DELETE", "/v1/models/shadow", Some(ANALYST_KEY), None)
        .await;
    assert_eq!(
        (status, body),
        (200, json!({"detached": null})),
        "idempotent"
    );
    let (_, list) = app.call("GET", "/v1/models", None, None).await;
    assert_eq!(list["shadow"], Value::Null);
    app.stop().await;
}

#[actix_web::test]
async fn a_corrupt_shadow_is_refused_with_422_and_nothing_is_attached() {
    let app = TestApp::start().await;
    let dir = broken_outcome_model_dir("fairtreat-shadow-api");
    app.service.set_models_dir(&dir);
    let (status, body) = app
        .call(
            "POST",
            "/v1/models/outcome-broken-1/shadow",
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], json!("model_refused"), "{body}");
    assert!(app.service.shadow().is_none());
    let d = app.decide(&interaction_for(1)).await;
    assert!(!d["decision_id"].is_null());
    assert_eq!(logged(&app).await[0].shadow, None);
    std::fs::remove_dir_all(&dir).unwrap();
    app.stop().await;
}

#[actix_web::test]
async fn a_shadow_never_changes_what_the_client_receives() {
    // Two apps on the same fixed clock and the same inputs; one has a
    // different model attached as shadow.
    let plain = app_with_models().await;
    let shadowed = app_with_models().await;
    let (status, body) = shadowed
        .call(
            "POST",
            "/v1/models/sentiment-logreg-1/shadow",
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let cases = varied(24);
    for case in &cases {
        let a = plain.decide(case).await;
        let b = shadowed.decide(case).await;
        assert_eq!(without_id(a), without_id(b), "{case}");
    }
    // And the shadow did score them all.
    let log = logged(&shadowed).await;
    assert_eq!(log.len(), cases.len());
    assert!(log.iter().all(|r| r.shadow.is_some()));
    plain.stop().await;
    shadowed.stop().await;
}

#[actix_web::test]
async fn the_shadow_choice_and_its_probabilities_are_logged_beside_the_decision() {
    let app = app_with_models().await;
    attach_shadow(&app, "sentiment-logreg-1").await;
    let case = varied(1).remove(0);
    let d = app.decide(&case).await;
    let log = logged(&app).await;
    assert_eq!(log.len(), 1);
    let record = &log[0];
    assert_eq!(
        record.decision.decision_id.to_string(),
        d["decision_id"].as_str().unwrap()
    );
    let s = record.shadow.as_ref().expect("a shadow choice");
    assert_eq!(s.model_version, "sentiment-logreg-1+outcome-rules-1");

    // It is exactly what the shadow models plan for the same inputs (an
    // empty window: the first decision of the app; the same draws).
    let (_, loaded) = load_version(&repo_models(), "sentiment-logreg-1").unwrap();
    let models = loaded.replace_in(&Models::bundled());
    let input: InteractionInput = serde_json::from_value(case.clone()).unwrap();
    let interaction = Interaction::try_from(input.clone()).unwrap();
    let policy = app.service.policy();
    let draws = fairtreat::service::draws(&fairtreat::store::body_hash(
        &serde_json::to_vec(&input).unwrap(),
    ));
    let expected = plan(&Inputs {
        interaction: &interaction,
        policy: &policy,
        sentiment: models.sentiment.as_ref(),
        outcome: models.outcome.as_ref(),
        window: &WindowStats::default(),
        draws,
    });
    assert_eq!(s.action, expected.primary.action);
    assert_eq!(
        s.gesture.as_ref().map(|g| (g.kind, g.value)),
        expected.primary.gesture
    );
    assert_eq!(s.propensity, expected.primary.propensity);
    let published: Vec<(String, f64)> = s
        .probabilities
        .iter()
        .map(|a| (a.action.clone(), a.probability))
        .collect();
    assert_eq!(published, expected.primary.probabilities);
    let total: f64 = published.iter().map(|(_, p)| p).sum();
    assert!((total - 1.0).abs() < 1e-12, "{published:?}");
    app.stop().await;
}

#[actix_web::test]
async fn agreement_is_one_for_the_active_models_and_below_one_for_a_different_model() {
    let app = app_with_models().await;
    // The active sentiment model itself as shadow: the same models.
    let (status, body) = app
        .call(
            "POST",
            "/v1/models/vader-lexicon-3.3.2/shadow",
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let cases = varied(36);
    for case in &cases[..18] {
        app.decide(case).await;
    }
    let (_, list) = app.call("GET", "/v1/models", None, None).await;
    assert_eq!(list["shadow"]["decisions_scored"], json!(18), "{list}");
    assert_eq!(list["shadow"]["agreement_rate"], json!(1.0), "{list}");
    assert_eq!(list["shadow"]["error"], Value::Null);

    // The trained sentiment model reads some texts differently.
    app.clock.advance(time::Duration::minutes(1));
    attach_shadow(&app, "sentiment-logreg-1").await;
    for case in &cases[18..] {
        app.decide(case).await;
    }
    let (_, list) = app.call("GET", "/v1/models", None, None).await;
    let shadow = &list["shadow"];
    assert_eq!(
        shadow["decisions_scored"],
        json!(18),
        "only since attachment: {list}"
    );
    // Count by hand from the log.
    let log = logged(&app).await;
    let scored: Vec<&LoggedDecision> = log
        .iter()
        .filter(|r| {
            r.shadow.as_ref().map(|s| s.model_version.as_str())
                == Some("sentiment-logreg-1+outcome-rules-1")
        })
        .collect();
    assert_eq!(scored.len(), 18);
    let agreed = scored
        .iter()
        .filter(|r| {
            let s = r.shadow.as_ref().unwrap();
            s.action == r.decision.action
                && s.gesture.as_ref().map(|g| g.value)
                    == r.decision.gesture.as_ref().map(|g| g.value)
        })
        .count();
    assert!(agreed < 18, "the trained model should disagree somewhere");
    let rate = shadow["agreement_rate"].as_f64().unwrap();
    assert_eq!(rate, agreed as f64 / 18.0);
    assert!(rate < 1.0);
    app.stop().await;
}

#[actix_web::test]
async fn the_estimated_value_is_the_snips_of_the_logged_feedback() {
    let app = app_with_models().await;
    attach_shadow(&app, "sentiment-logreg-1").await;
    let cases = varied(8);
    let mut ids = Vec::new();
    for case in &cases {
        ids.push(
            app.decide(case).await["decision_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // No feedback yet: no estimate, never NaN.
    let (_, list) = app.call("GET", "/v1/models", None, None).await;
    let value = &list["shadow"]["estimated_value"];
    assert_eq!(value["estimator"], json!("snips"));
    assert_eq!(value["estimate"], Value::Null, "{list}");
    assert_eq!(value["records_with_feedback"], json!(0));
    assert_eq!(value["effective_sample_size"], json!(0.0));
    assert_eq!(value["active_mean_reward"], Value::Null);

    // Feedback on five of the eight.
    let rewards = [1.0, 0.0, 0.5, 1.0, 0.25];
    for (id, reward) in ids.iter().zip(rewards) {
        let (status, body) = app
            .post(
                "/v1/feedback",
                &json!({"decision_id": id, "reward": reward}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    // By hand, from the stored log: w = shadow probability of the logged
    // action / logged propensity.
    let log = logged(&app).await;
    let (mut sw, mut swr, mut sw2, mut sr) = (0.0, 0.0, 0.0, 0.0);
    let mut n = 0;
    for (id, reward) in ids.iter().zip(rewards) {
        let r = log
            .iter()
            .find(|r| r.decision.decision_id.to_string() == *id)
            .unwrap();
        let s = r.shadow.as_ref().unwrap();
        let pi = s
            .probabilities
            .iter()
            .find(|a| a.action == r.decision.action)
            .map_or(0.0, |a| a.probability);
        let w = pi / r.decision.propensity;
        sw += w;
        swr += w * reward;
        sw2 += w * w;
        sr += reward;
        n += 1;
    }
    assert!(sw > 0.0, "the shadow takes some logged actions");
    let (_, list) = app.call("GET", "/v1/models", None, None).await;
    let value = &list["shadow"]["estimated_value"];
    assert_eq!(value["records_with_feedback"], json!(n));
    let estimate = value["estimate"].as_f64().unwrap();
    assert!(
        (estimate - swr / sw).abs() < 1e-12,
        "{estimate} vs {}",
        swr / sw
    );
    let ess = value["effective_sample_size"].as_f64().unwrap();
    assert!((ess - sw * sw / sw2).abs() < 1e-9, "{ess}");
    assert_eq!(value["active_mean_reward"].as_f64().unwrap(), sr / n as f64);
    assert_eq!(list["shadow"]["decisions_scored"], json!(8));
    app.stop().await;
}
