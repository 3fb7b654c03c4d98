//! Marketer controls over HTTP: the policy, its audit log, the report and
//! the what-if preview.

use serde_json::{json, Value};

use crate::helpers::{interaction_for, TestApp, ADMIN_KEY, ANALYST_KEY};

#[actix_web::test]
async fn the_policy_in_force_is_published() {
    let app = TestApp::start().await;
    let (status, p) = app.call("GET", "/v1/policy", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(p["version"], 1);
    assert_eq!(p["fairness"]["min_parity_ratio"], 0.8);
    assert!(p["actions"].as_array().unwrap().len() >= 8);
    app.stop().await;
}

#[actix_web::test]
async fn replacing_the_policy_needs_a_key_with_the_policy_scope() {
    let app = TestApp::start().await;
    let (_, p) = app.call("GET", "/v1/policy", None, None).await;
    let cases: [(Option<&str>, &str, u16, &str); 5] = [
        (None, "/v1/policy", 401, "unauthorized"),
        (Some("wrong-key"), "/v1/policy", 401, "unauthorized"),
        (Some(&ADMIN_KEY[..10]), "/v1/policy", 401, "unauthorized"),
        (
            None,
            "/v1/policy?api_key=test-admin-key-0123456789",
            400,
            "credentials_in_query",
        ),
        (Some(ANALYST_KEY), "/v1/policy", 403, "forbidden"),
    ];
    for (key, path, status, code) in cases {
        let (s, body) = app.call("PUT", path, key, Some(&p)).await;
        assert_eq!(
            (s, body["error"]["code"].as_str().unwrap_or_default()),
            (status, code),
            "{key:?} {path}"
        );
    }
    let (_, p_after) = app.call("GET", "/v1/policy", None, None).await;
    assert_eq!(p_after["version"], 1, "nothing applied");
    app.stop().await;
}

#[actix_web::test]
async fn a_valid_change_bumps_the_version_applies_at_once_and_is_audited() {
    let app = TestApp::start().await;
    let (_, mut p) = app.call("GET", "/v1/policy", None, None).await;
    p["fairness"]["min_parity_ratio"] = json!(0.9);
    p["budget"]["daily"] = json!(1234.0);
    let (status, change) = app
        .call("PUT", "/v1/policy", Some(ADMIN_KEY), Some(&p))
        .await;
    assert_eq!(status, 200, "{change}");
    assert_eq!(change["version"], 2);
    assert_eq!(change["previous_version"], 1);
    assert_eq!(change["actor"], "admin");
    let fields: Vec<&str> = change["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        vec!["budget.daily", "fairness.min_parity_ratio", "version"]
    );
    let ratio = change["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == "fairness.min_parity_ratio")
        .unwrap();
    assert_eq!(
        (ratio["old"].clone(), ratio["new"].clone()),
        (json!(0.8), json!(0.9))
    );
    // Decisions name the new version at once.
    let d = app.decide(&interaction_for(1)).await;
    assert_eq!(d["policy_version"], 2);
    let (_, served) = app.call("GET", "/v1/policy", None, None).await;
    assert_eq!(served["version"], 2);
    assert_eq!(served["budget"]["daily"], 1234.0);
    // The audit log, most recent first.
    let (status, history) = app.call("GET", "/v1/policy/history", None, None).await;
    assert_eq!(status, 200);
    let h = history.as_array().unwrap();
    assert_eq!(h[0]["version"], 2);
    assert!(h[0]["at"].as_str().unwrap().starts_with("2026-11-20T12:00"));
    app.stop().await;
}

#[actix_web::test]
async fn an_edit_of_an_outdated_version_is_refused_with_409() {
    let app = TestApp::start().await;
    let (_, p) = app.call("GET", "/v1/policy", None, None).await;
    let (s1, _) = app
        .call("PUT", "/v1/policy", Some(ADMIN_KEY), Some(&p))
        .await;
    assert_eq!(s1, 200);
    let (s2, body) = app
        .call("PUT", "/v1/policy", Some(ADMIN_KEY), Some(&p))
        .await;
    assert_eq!(s2, 409);
    assert_eq!(body["error"]["code"], "version_conflict");
    app.stop().await;
}

#[actix_web::test]
async fn an_invalid_policy_is_refused_naming_every_bad_field_and_changes_nothing() {
    let app = TestApp::start().await;
    let (_, mut p) = app.call("GET", "/v1/policy", None, None).await;
    p["fairness"]["min_parity_ratio"] = json!(1.5);
    p["caps"]["max_value_per_customer"] = json!(-1.0);
    p["budget"]["daily"] = json!(-10.0);
    p["actions"][1]["id"] = p["actions"][0]["id"].clone();
    p["actions"][2]["template"] = json!("no_such_template");
    p["exploration"]["epsilon"] = json!(2.0);
    let (status, body) = app
        .call("PUT", "/v1/policy", Some(ADMIN_KEY), Some(&p))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_field");
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    for f in [
        "fairness.min_parity_ratio",
        "caps.max_value_per_customer",
        "budget.daily",
        "actions[1].id",
        "actions[2].template",
        "exploration.epsilon",
    ] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
    // A ratio of zero is outside (0, 1] too; an unknown field is refused by name.
    let (_, mut q) = app.call("GET", "/v1/policy", None, None).await;
    q["fairness"]["min_parity_ratio"] = json!(0.0);
    assert_eq!(
        app.call("PUT", "/v1/policy", Some(ADMIN_KEY), Some(&q))
            .await
            .0,
        422
    );
    q["fairness"]["min_parity_ratio"] = json!(0.8);
    q["fairness"]["min_parity"] = json!(0.8);
    let (status, body) = app
        .call("PUT", "/v1/policy", Some(ADMIN_KEY), Some(&q))
        .await;
    assert_eq!(
        (status, body["error"]["field"].clone()),
        (422, json!("fairness.min_parity"))
    );
    let (_, served) = app.call("GET", "/v1/policy", None, None).await;
    assert_eq!(served["version"], 1);
    let (_, history) = app.call("GET", "/v1/policy/history", None, None).await;
    let h = history.as_array().unwrap();
    assert_eq!(h.len(), 1, "only the startup seed: {history}");
    assert_eq!(
        (h[0]["actor"].clone(), h[0]["version"].clone()),
        (json!("startup"), json!(1))
    );
    app.stop().await;
}

#[actix_web::test]
async fn the_report_shows_decisions_perks_rates_and_parity_per_band_and_group() {
    let app = TestApp::start().await;
    for n in 0..12 {
        let mut body = interaction_for(n);
        body["customer"]["attributes"]["tier"] = json!(if n % 2 == 0 { "gold" } else { "bronze" });
        app.decide(&body).await;
    }
    let (status, r) = app
        .call("GET", "/v1/fairness/report?attribute=tier", None, None)
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["attribute"], "tier");
    assert_eq!(r["window_hours"], 168);
    assert_eq!(r["threshold"], 0.8);
    let bands = r["bands"].as_array().unwrap();
    assert_eq!(bands.len(), 3);
    let total: u64 = r["overall"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["decisions"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 12);
    for b in bands {
        assert!(b["parity_ratio"].is_number() && b["enforced"].is_boolean());
        for g in b["groups"].as_array().unwrap() {
            let (d, p) = (
                g["decisions"].as_f64().unwrap(),
                g["perks"].as_f64().unwrap(),
            );
            assert!((g["perk_rate"].as_f64().unwrap() - p / d).abs() < 1e-6);
            assert!(g["mean_value"].is_number());
        }
    }
    let (status, err) = app
        .call("GET", "/v1/fairness/report?attribute=shoe_size", None, None)
        .await;
    assert_eq!(
        (status, err["error"]["field"].clone()),
        (422, json!("attribute"))
    );
    let (status, _) = app.call("GET", "/v1/fairness/report", None, None).await;
    assert_eq!(status, 422);
    app.stop().await;
}

#[actix_web::test]
async fn the_what_if_preview_compares_policies_on_the_window_and_changes_nothing() {
    let app = TestApp::start().await;
    for n in 0..30 {
        app.decide(&interaction_for(n)).await;
    }
    let ledger_before = app.store.ledger_total();
    let (_, mut proposed) = app.call("GET", "/v1/policy", None, None).await;
    proposed["budget"]["daily"] = json!(100.0);
    let (status, w) = app
        .call(
            "POST",
            "/v1/policy/simulate",
            None,
            Some(&json!({"policy": proposed})),
        )
        .await;
    assert_eq!(status, 200, "{w}");
    assert_eq!(w["source"], "window");
    assert_eq!(w["replayed"], 30);
    let (before, after) = (&w["before"], &w["after"]);
    for k in ["perk_rate", "spend", "expected_utility", "justice_cost"] {
        assert!(before[k].is_number() && after[k].is_number(), "{k}");
    }
    assert!(
        after["spend"].as_f64().unwrap() <= 100.0,
        "the proposed budget binds"
    );
    assert!(before["spend"].as_f64().unwrap() > after["spend"].as_f64().unwrap());
    assert!(w["changed_decisions"].as_u64().unwrap() > 0);
    assert_eq!(before["parity"].as_array().unwrap().len(), 2);
    // The preview of the policy in force changes no decision.
    let (_, current) = app.call("GET", "/v1/policy", None, None).await;
    let (_, same) = app
        .call(
            "POST",
            "/v1/policy/simulate",
            None,
            Some(&json!({"policy": current})),
        )
        .await;
    assert_eq!(same["changed_decisions"], 0);
    assert_eq!(same["before"], same["after"]);
    // Nothing changed.
    assert_eq!(app.store.ledger_total(), ledger_before);
    let (_, p) = app.call("GET", "/v1/policy", None, None).await;
    assert_eq!(p["version"], 1);
    app.stop().await;
}

#[actix_web::test]
async fn the_what_if_preview_replays_supplied_interactions_and_checks_them() {
    let app = TestApp::start().await;
    let (_, policy) = app.call("GET", "/v1/policy", None, None).await;
    let interactions: Vec<Value> = (0..5).map(interaction_for).collect();
    let (status, w) = app
        .call(
            "POST",
            "/v1/policy/simulate",
            None,
            Some(&json!({"policy": policy, "interactions": interactions})),
        )
        .await;
    assert_eq!(status, 200, "{w}");
    assert_eq!(
        (w["source"].clone(), w["replayed"].clone()),
        (json!("supplied"), json!(5))
    );
    let mut bad = interactions.clone();
    bad[3]["rating"] = json!(9);
    let (status, err) = app
        .call(
            "POST",
            "/v1/policy/simulate",
            None,
            Some(&json!({"policy": policy, "interactions": bad})),
        )
        .await;
    assert_eq!(
        (status, err["error"]["field"].clone()),
        (422, json!("interactions[3].rating"))
    );
    let mut bad_policy = policy.clone();
    bad_policy["fairness"]["min_parity_ratio"] = json!(7);
    let (status, err) = app
        .call(
            "POST",
            "/v1/policy/simulate",
            None,
            Some(&json!({"policy": bad_policy})),
        )
        .await;
    assert_eq!(
        (status, err["error"]["field"].clone()),
        (422, json!("policy.fairness.min_parity_ratio"))
    );
    assert_eq!(
        app.store.idempotency_records(),
        0,
        "the preview stores nothing"
    );
    app.stop().await;
}
