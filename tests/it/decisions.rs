//! `POST /v1/decisions` end to end: the contract, the product rules, the
//! constraints that need shared state, and idempotency.

use futures_util::future::join_all;
use serde_json::{json, Value};
use time::Duration;

use crate::helpers::{assert_numbers_present, interaction, interaction_for, TestApp};
use fairtreat::domain::policy::Policy;

fn constraint_names(d: &Value) -> Vec<String> {
    d["constraints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[actix_web::test]
async fn the_contract_example_gets_a_decision_with_every_contract_field() {
    let app = TestApp::start().await;
    let d = app.decide(&interaction()).await;
    for field in [
        "decision_id",
        "interaction_id",
        "action",
        "response",
        "gesture",
        "scores",
        "propensity",
        "alternatives",
        "constraints",
        "explanation",
        "model_version",
        "policy_version",
        "degraded",
    ] {
        assert!(d.get(field).is_some(), "missing {field} in {d}");
    }
    for field in ["channel", "template", "message"] {
        assert!(d["response"][field].is_string(), "response.{field} in {d}");
    }
    assert_eq!(d["interaction_id"], "crm-8812");
    assert!(uuid::Uuid::parse_str(d["decision_id"].as_str().unwrap()).is_ok());
    let policy = Policy::bundled();
    assert!(
        policy.action(d["action"].as_str().unwrap()).is_some(),
        "action from the catalogue"
    );
    for alt in d["alternatives"].as_array().unwrap() {
        assert!(policy.action(alt["action"].as_str().unwrap()).is_some());
    }
    assert_eq!(d["policy_version"], json!(policy.version));
    assert_eq!(d["model_version"], json!(app.service.models().version()));
    assert_eq!(d["degraded"], json!(false));
    let p = d["propensity"].as_f64().unwrap();
    assert!(p > 0.0 && p <= 1.0);
    assert!(!d["explanation"].as_str().unwrap().is_empty());
    assert_numbers_present(&d);
    app.stop().await;
}

#[actix_web::test]
async fn a_severe_public_complaint_gets_an_apology_and_a_privately_delivered_gesture() {
    let app = TestApp::start().await;
    let mut body = interaction();
    body["rating"] = json!(1);
    body["text"] = json!("Absolutely terrible. The blender broke after one day, I want my money back and nobody answers!");
    let d = app.decide(&body).await;
    let action = Policy::bundled()
        .action(d["action"].as_str().unwrap())
        .unwrap()
        .clone();
    assert_eq!(
        serde_json::to_value(action.intent).unwrap(),
        "apologise",
        "{d}"
    );
    let g = &d["gesture"];
    assert!(g.is_object(), "a gesture is expected: {d}");
    assert_eq!(g["delivery"], "private");
    assert!(g["value"].as_f64().unwrap() > 0.0);
    assert!(
        g["value"].as_f64().unwrap() <= 1.5 * 89.9,
        "never above 150% of the order"
    );
    assert_eq!(d["response"]["channel"], "public");
    assert_eq!(d["response"]["template"], "apology_move_private");
    assert!(
        constraint_names(&d).contains(&"visibility".to_string()),
        "{d}"
    );
    // The public message names no amount and no tier.
    let msg = d["response"]["message"].as_str().unwrap();
    assert!(!msg.chars().any(|c| c.is_ascii_digit()), "{msg}");
    assert!(
        !msg.contains("EUR") && !msg.to_lowercase().contains("gold"),
        "{msg}"
    );
    app.stop().await;
}

#[actix_web::test]
async fn a_private_complaint_names_the_gesture_in_the_private_message_without_a_visibility_constraint(
) {
    let app = TestApp::start().await;
    let mut body = interaction();
    body["public"] = json!(false);
    body["channel"] = json!("email");
    body["rating"] = json!(1);
    let d = app.decide(&body).await;
    assert!(d["gesture"].is_object(), "{d}");
    assert_eq!(d["response"]["channel"], "private");
    assert!(!constraint_names(&d).contains(&"visibility".to_string()));
    let value = d["gesture"]["value"].as_f64().unwrap();
    assert!(
        d["response"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("{value:.0} EUR")),
        "{d}"
    );
    app.stop().await;
}

#[actix_web::test]
async fn praise_gets_thanks_and_never_a_perk() {
    let app = TestApp::start().await;
    for (n, public) in [(1, true), (2, false)] {
        let mut body = interaction_for(n);
        body["kind"] = json!("praise");
        body["rating"] = json!(5);
        body["public"] = json!(public);
        body["text"] = json!("Fantastic service, the team went above and beyond. Thank you!");
        let d = app.decide(&body).await;
        let expected = if public {
            "thank_public"
        } else {
            "thank_private"
        };
        assert_eq!(d["action"], expected, "{d}");
        assert!(d["gesture"].is_null(), "{d}");
    }
    app.stop().await;
}

#[actix_web::test]
async fn empty_or_spam_like_text_gets_no_action_and_no_reply() {
    let app = TestApp::start().await;
    for (n, text) in [
        "",
        "   ",
        "http://spam.example/x https://spam.example/y buy now",
        "!!!!!!",
    ]
    .iter()
    .enumerate()
    {
        let mut body = interaction_for(n);
        body["text"] = json!(text);
        let d = app.decide(&body).await;
        assert_eq!(d["action"], "no_action", "{text:?}: {d}");
        assert_eq!(d["response"]["channel"], "none");
        assert!(d["gesture"].is_null());
    }
    app.stop().await;
}

#[actix_web::test]
async fn a_question_gets_an_answer_without_a_gesture() {
    let app = TestApp::start().await;
    let mut body = interaction();
    body["kind"] = json!("question");
    body["rating"] = json!(null);
    body["text"] = json!("Do you ship to Norway, and how long does it take?");
    let d = app.decide(&body).await;
    assert_eq!(d["action"], "answer_question", "{d}");
    assert!(d["gesture"].is_null());
    app.stop().await;
}

#[actix_web::test]
async fn replaying_an_interaction_returns_the_identical_decision_and_grants_once() {
    let app = TestApp::start().await;
    let first = app.decide(&interaction()).await;
    app.clock.advance(Duration::minutes(5));
    let second = app.decide(&interaction()).await;
    assert_eq!(first, second, "byte-for-byte the same decision");
    assert!(first["gesture"].is_object());
    assert_eq!(app.store.ledger_total().0, 1, "one grant");
    // Concurrent replays too.
    let body = interaction();
    let replies = join_all((0..16).map(|_| app.post("/v1/decisions", &body))).await;
    for (status, d) in replies {
        assert_eq!(status, 200);
        assert_eq!(d, first);
    }
    assert_eq!(app.store.ledger_total().0, 1);
    app.stop().await;
}

#[actix_web::test]
async fn concurrent_first_requests_for_one_interaction_grant_exactly_once() {
    let app = TestApp::start().await;
    let body = interaction_for(7);
    let replies = join_all((0..32).map(|_| app.post("/v1/decisions", &body))).await;
    let first = &replies[0].1;
    for (status, d) in &replies {
        assert_eq!(*status, 200);
        assert_eq!(d["decision_id"], first["decision_id"]);
        assert_eq!(d, first);
    }
    assert_eq!(app.store.ledger_total().0, 1);
    app.stop().await;
}

#[actix_web::test]
async fn reusing_an_interaction_id_with_another_body_is_refused_and_changes_nothing() {
    let app = TestApp::start().await;
    let first = app.decide(&interaction()).await;
    let mut other = interaction();
    other["text"] = json!("Actually it was fine");
    let (status, err) = app.post("/v1/decisions", &other).await;
    assert_eq!(status, 422);
    assert_eq!(err["error"]["code"], "idempotency_mismatch");
    assert_eq!(err["error"]["field"], "interaction_id");
    assert_eq!(app.store.ledger_total().0, 1);
    // The original is still served for the original body.
    assert_eq!(app.decide(&interaction()).await, first);
    app.stop().await;
}

#[actix_web::test]
async fn the_per_customer_cap_withholds_a_second_perk_until_the_window_has_passed() {
    let app = TestApp::start().await;
    let mut n = 0;
    let mut next = || {
        n += 1;
        let mut b = interaction();
        b["interaction_id"] = json!(format!("cap-{n}"));
        b
    };
    let granted = app.decide(&next()).await;
    assert!(granted["gesture"].is_object());
    // Exactly one cap window later minus a second: still capped.
    app.clock.advance(Duration::days(30) - Duration::seconds(1));
    let capped = app.decide(&next()).await;
    assert!(capped["gesture"].is_null(), "{capped}");
    assert!(
        constraint_names(&capped).contains(&"per_customer_cap".to_string()),
        "{capped}"
    );
    assert!(!capped["explanation"].as_str().unwrap().is_empty());
    // At exactly the window's end the old perk no longer counts.
    app.clock.advance(Duration::seconds(1));
    let again = app.decide(&next()).await;
    assert!(again["gesture"].is_object(), "{again}");
    // The embedded ledger keeps only the cap window: the first perk aged out.
    assert_eq!(app.store.ledger_total().0, 1);
    app.stop().await;
}

#[actix_web::test]
async fn the_value_cap_withholds_a_perk_that_would_exceed_it() {
    let mut policy = Policy::bundled();
    policy.caps.perks_per_customer = 10;
    policy.caps.max_value_per_customer = 40.0;
    let app = TestApp::with_policy(policy).await;
    let first = app.decide(&interaction_for(1)).await;
    let v = first["gesture"]["value"].as_f64().unwrap();
    assert!(
        v > 20.0 && v <= 40.0,
        "the test assumes one perk of 20-40: {v}"
    );
    let mut second = interaction_for(1);
    second["interaction_id"] = json!("i-1-again");
    let d = app.decide(&second).await;
    assert!(d["gesture"].is_null(), "{d}");
    assert!(constraint_names(&d).contains(&"per_customer_cap".to_string()));
    app.stop().await;
}

#[actix_web::test]
async fn the_daily_budget_is_never_overspent_under_concurrent_requests() {
    let probe = TestApp::start().await;
    let value = probe.decide(&interaction_for(0)).await["gesture"]["value"]
        .as_f64()
        .unwrap();
    probe.stop().await;

    let mut policy = Policy::bundled();
    policy.budget.daily = 10.5 * value;
    let app = TestApp::with_policy(policy).await;
    let replies = join_all((0..64).map(|n| {
        let body = interaction_for(n);
        let app = &app;
        async move { app.post("/v1/decisions", &body).await }
    }))
    .await;
    let mut told = 0.0;
    let mut grants = 0;
    let mut budget_refusals = 0;
    for (status, d) in &replies {
        assert_eq!(*status, 200, "{d}");
        if let Some(v) = d["gesture"]["value"].as_f64() {
            told += v;
            grants += 1;
        } else if constraint_names(d).contains(&"budget".to_string()) {
            budget_refusals += 1;
        }
    }
    assert_eq!(grants, 10, "exactly as many perks as the budget covers");
    assert_eq!(budget_refusals, 54);
    let (ledger_n, ledger_sum) = app.store.ledger_total();
    assert_eq!(ledger_n, 10);
    assert!(
        (ledger_sum - told).abs() < 1e-9,
        "what clients were told equals the ledger"
    );
    let spend = fairtreat::store::Store::spend(
        app.store.as_ref(),
        fairtreat::clock::Clock::now(&app.clock),
    )
    .await
    .unwrap();
    assert!(spend.spent <= 10.5 * value);
    assert!((spend.spent - told).abs() < 1e-9);

    // A new UTC day brings a new budget.
    app.clock.advance(Duration::days(1));
    let d = app.decide(&interaction_for(1000)).await;
    assert!(d["gesture"].is_object(), "{d}");
    app.stop().await;
}

#[actix_web::test]
async fn deservingness_ignores_audience_visibility_channel_and_group_attributes() {
    let app = TestApp::start().await;
    let base = app.decide(&interaction_for(1)).await["scores"].clone();
    let variants: [fn(&mut Value); 4] = [
        |b| b["audience"] = json!(0),
        |b| b["public"] = json!(false),
        |b| b["channel"] = json!("email"),
        |b| b["customer"]["attributes"] = json!({"tier": "bronze", "region": "APAC"}),
    ];
    for (n, change) in variants.iter().enumerate() {
        let mut b = interaction_for(100 + n);
        b["customer"]["id"] = json!("c-1");
        change(&mut b);
        let scores = app.decide(&b).await["scores"].clone();
        assert_eq!(scores, base, "variant {n}");
    }
    app.stop().await;
}

#[actix_web::test]
async fn metrics_count_decisions_by_action_and_record_latency_histograms() {
    let app = TestApp::start().await;
    app.decide(&interaction()).await;
    let (status, text) = app.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        text.contains("fairtreat_decisions_total{action=\""),
        "{text}"
    );
    assert!(
        text.contains("fairtreat_http_request_duration_seconds_bucket{"),
        "{text}"
    );
    assert!(
        text.contains("fairtreat_decision_duration_seconds_bucket{"),
        "{text}"
    );
    app.stop().await;
}

#[actix_web::test]
async fn health_and_readiness_report_the_store_and_versions() {
    let app = TestApp::start().await;
    let (status, body) = app.get("/healthz").await;
    assert_eq!((status, body.contains("ok")), (200, true));
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "ready");
    assert_eq!(v["store"], "memory");
    assert_eq!(v["policy_version"], 1);
    app.stop().await;
}

#[actix_web::test]
async fn a_recorded_decision_can_be_fetched_by_its_id() {
    let app = TestApp::start().await;
    let d = app.decide(&interaction()).await;
    let (status, body) = app
        .get(&format!(
            "/v1/decisions/{}",
            d["decision_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), d);
    let (status, body) = app
        .get("/v1/decisions/00000000-0000-0000-0000-000000000000")
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = app.get("/v1/decisions/not-a-uuid").await;
    assert_eq!(status, 404);
    app.stop().await;
}
