//! The committed trained outcome model (`models/outcome-logreg-1`): it
//! loads, acting greedily on it is nearly as good as acting greedily on the
//! simulator's truth on held-out interactions, and the models API lists and
//! activates it.

use std::path::{Path, PathBuf};

use fairtreat::domain::interaction::Interaction;
use fairtreat::domain::policy::Policy;
use fairtreat::model::outcome::{greedy_check, TARGET_GREEDY_RATIO};
use fairtreat::model::{load, load_version, Loaded};
use fairtreat::sim::world::generate;
use serde_json::json;

use crate::helpers::{
    broken_outcome_model_dir, interaction_for, TestApp, ADMIN_KEY, ANALYST_KEY, MARKETER_KEY,
};

const VERSION: &str = "outcome-logreg-1";

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

#[test]
fn the_committed_outcome_model_is_nearly_as_good_as_the_truth_when_acting_greedily() {
    let dir = models_dir();
    let (card, loaded) = load_version(&dir, VERSION).unwrap();
    assert_eq!(card.task, "outcome");
    let Loaded::Outcome(model) = loaded else {
        panic!("{VERSION} is not an outcome model");
    };
    assert_eq!(model.version(), VERSION);
    let sentiment = load(&dir).unwrap().sentiment;
    // A seed used neither in training (7) nor in the card's evaluation (1007).
    let end = time::OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap();
    let interactions: Vec<Interaction> = generate(424_242, 3000, end, 30)
        .into_iter()
        .map(|i| Interaction::try_from(i).unwrap())
        .collect();
    let g = greedy_check(
        &Policy::bundled(),
        sentiment.as_ref(),
        model.as_ref(),
        &interactions,
    );
    println!("{g:?}");
    assert!(g.interactions > 2900, "{g:?}");
    assert!(g.ratio >= TARGET_GREEDY_RATIO, "{g:?}");
}

#[actix_web::test]
async fn the_models_api_lists_and_activates_models() {
    let app = TestApp::start().await;
    app.service.set_models_dir(models_dir());

    let (status, list) = app.call("GET", "/v1/models", None, None).await;
    assert_eq!(status, 200, "{list}");
    let models = list["models"].as_array().unwrap();
    let entry = |v: &str| models.iter().find(|m| m["version"] == json!(v)).cloned();
    let ours = entry(VERSION).expect("the outcome model is listed");
    assert_eq!(ours["task"], json!("outcome"));
    assert_eq!(ours["card"]["kind"], json!("linfa_logistic_outcome"));
    assert_eq!(ours["active"], json!(false), "bundled models are active");
    assert_eq!(entry("outcome-rules-1").unwrap()["active"], json!(true));
    assert_eq!(list["active"]["outcome"], json!("outcome-rules-1"));

    let path = format!("/v1/models/{VERSION}/activate");
    let (status, _) = app.call("POST", &path, None, None).await;
    assert_eq!(status, 401);
    let (status, _) = app
        .call("POST", &path, Some("wrong-key-000000000000"), None)
        .await;
    assert_eq!(status, 401);
    let (status, body) = app.call("POST", &path, Some(MARKETER_KEY), None).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (403, json!("forbidden")),
        "a key without models:write"
    );
    let (status, body) = app
        .call(
            "POST",
            "/v1/models/no-such-model-1/activate",
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = app
        .call(
            "POST",
            "/v1/models/..%2Fetc/activate",
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert!(status == 404 || status == 422, "{status} {body}");

    // Before: decisions name the bundled outcome model.
    let d = app.decide(&interaction_for(1)).await;
    assert!(
        d["model_version"]
            .as_str()
            .unwrap()
            .ends_with("outcome-rules-1"),
        "{d}"
    );

    // The analyst key has models:write.
    let (status, body) = app.call("POST", &path, Some(ANALYST_KEY), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["task"], json!("outcome"));
    assert_eq!(body["active"]["outcome"], json!(VERSION));
    let d = app.decide(&interaction_for(2)).await;
    assert!(
        d["model_version"].as_str().unwrap().ends_with(VERSION),
        "{d}"
    );
    let (_, list) = app.call("GET", "/v1/models", None, None).await;
    let models = list["models"].as_array().unwrap();
    assert!(models
        .iter()
        .any(|m| m["version"] == json!(VERSION) && m["active"] == json!(true)));

    // Activating the sentiment model swaps only the sentiment side.
    let (status, body) = app
        .call(
            "POST",
            "/v1/models/sentiment-logreg-1/activate",
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["model_version"],
        json!(format!("sentiment-logreg-1+{VERSION}"))
    );
    app.stop().await;
}

#[actix_web::test]
async fn a_corrupt_model_is_refused_with_422_and_the_active_one_stays() {
    let app = TestApp::start().await;
    let dir = broken_outcome_model_dir("fairtreat-models-api");
    app.service.set_models_dir(&dir);
    let before = app.service.models().version();
    let (status, body) = app
        .call(
            "POST",
            "/v1/models/outcome-broken-1/activate",
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], json!("model_refused"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("model.json"),
        "{body}"
    );
    assert_eq!(app.service.models().version(), before);
    std::fs::remove_dir_all(&dir).unwrap();
    app.stop().await;
}
