//! `POST /v1/decisions/batch`: per-item results in input order, per-item
//! errors identical to the single endpoint's, whole-request limits, and
//! items decided in order through the same idempotent, capped commit.

use serde_json::{json, Value};

use crate::helpers::{interaction, interaction_for, TestApp};

const BATCH: &str = "/v1/decisions/batch";

fn results(v: &Value) -> &Vec<Value> {
    v["results"].as_array().expect("results")
}

fn constraint_names(d: &Value) -> Vec<&str> {
    d["constraints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

/// Bad items, each with the error code and field the single endpoint gives.
fn bad_items() -> Vec<(Value, &'static str, &'static str)> {
    let mut negative_tenure = interaction_for(101);
    negative_tenure["customer"]["tenure_days"] = json!(-1);
    let mut bad_kind = interaction_for(102);
    bad_kind["kind"] = json!("rant");
    let mut no_text = interaction_for(103);
    no_text.as_object_mut().unwrap().remove("text");
    let mut bad_rating = interaction_for(104);
    bad_rating["rating"] = json!(9);
    vec![
        (negative_tenure, "invalid_field", "customer.tenure_days"),
        (bad_kind, "invalid_field", "kind"),
        (no_text, "invalid_field", "text"),
        (bad_rating, "invalid_field", "rating"),
        (json!("not an interaction"), "invalid_field", ""),
    ]
}

#[actix_web::test]
async fn a_mixed_batch_answers_every_item_in_order_with_the_single_endpoints_results() {
    let app = TestApp::start().await;
    let bad = bad_items();
    // Good items at 0, 2, 4, …; a bad one between each pair.
    let mut items = Vec::new();
    for (n, (b, _, _)) in bad.iter().enumerate() {
        items.push(interaction_for(n));
        items.push(b.clone());
    }
    let (status, v) = app.post(BATCH, &json!({ "interactions": items })).await;
    assert_eq!(status, 200, "{v}");
    let res = results(&v);
    assert_eq!(res.len(), items.len());
    for (i, r) in res.iter().enumerate() {
        assert_eq!(r["index"], json!(i), "{r}");
        if i % 2 == 0 {
            assert_eq!(r["status"], json!(200), "{r}");
            assert!(r.get("error").is_none(), "{r}");
            let d = &r["decision"];
            assert_eq!(d["interaction_id"], json!(format!("i-{}", i / 2)));
            assert_eq!(r["replayed"], json!(false));
            // The single endpoint replays exactly what the batch recorded.
            let single = app.decide(&items[i]).await;
            assert_eq!(&single, d);
        } else {
            let (_, code, field) = &bad[i / 2];
            assert_eq!(r["status"], json!(422), "{r}");
            assert!(r.get("decision").is_none(), "{r}");
            assert_eq!(r["error"]["code"], json!(code), "{r}");
            if field.is_empty() {
                assert!(r["error"].get("field").is_none(), "{r}");
            } else {
                assert_eq!(r["error"]["field"], json!(field), "{r}");
            }
            assert!(!r["error"]["message"].as_str().unwrap().is_empty());
            // The same error as the single endpoint, field for field.
            let (single_status, single) = app.post("/v1/decisions", &items[i]).await;
            assert_eq!(single_status, 422);
            assert_eq!(single["error"], r["error"], "item {i}");
        }
    }
    // Only the good items were recorded.
    assert_eq!(app.store.idempotency_records(), bad.len());
    app.stop().await;
}

#[actix_web::test]
async fn a_bare_array_is_the_same_request_as_the_interactions_object() {
    let a = TestApp::start().await;
    let b = TestApp::start().await;
    let items: Vec<Value> = (0..5).map(interaction_for).collect();
    let (sa, va) = a.post(BATCH, &json!(items)).await;
    let (sb, vb) = b.post(BATCH, &json!({ "interactions": items })).await;
    assert_eq!((sa, sb), (200, 200), "{va} {vb}");
    let strip = |v: &Value| -> Vec<Value> {
        results(v)
            .iter()
            .map(|r| {
                let mut d = r["decision"].clone();
                d.as_object_mut().unwrap().remove("decision_id");
                d.as_object_mut().unwrap().remove("decided_at");
                d
            })
            .collect()
    };
    assert_eq!(strip(&va), strip(&vb));
    assert_eq!(results(&va).len(), 5);
    a.stop().await;
    b.stop().await;
}

/// (name, body, status, code, field) of a request refused as a whole.
type WholeCase = (
    &'static str,
    Vec<u8>,
    u16,
    &'static str,
    Option<&'static str>,
);

#[actix_web::test]
async fn requests_that_are_not_a_usable_list_are_refused_whole_and_store_nothing() {
    let app = TestApp::start().await;
    let over: Vec<Value> = (0..1001).map(interaction_for).collect();
    let cases: Vec<WholeCase> = vec![
        (
            "empty list",
            b"[]".to_vec(),
            422,
            "invalid_field",
            Some("interactions"),
        ),
        (
            "empty object list",
            br#"{"interactions": []}"#.to_vec(),
            422,
            "invalid_field",
            Some("interactions"),
        ),
        (
            "over 1000",
            serde_json::to_vec(&over).unwrap(),
            422,
            "invalid_field",
            Some("interactions"),
        ),
        (
            "not a list",
            br#"{"interactions": 5}"#.to_vec(),
            422,
            "invalid_field",
            Some("interactions"),
        ),
        (
            "a string",
            br#""hello""#.to_vec(),
            422,
            "invalid_field",
            None,
        ),
        (
            "missing list",
            b"{}".to_vec(),
            422,
            "invalid_field",
            Some("interactions"),
        ),
        (
            "unknown field",
            br#"{"interactions": [], "dry_run": true}"#.to_vec(),
            422,
            "invalid_field",
            Some("dry_run"),
        ),
        (
            // A syntax error names where it happened, as on the single endpoint.
            "malformed",
            br#"{"interactions": [{"#.to_vec(),
            400,
            "invalid_json",
            Some("interactions[0]"),
        ),
        (
            "trailing garbage",
            b"[] []".to_vec(),
            400,
            "invalid_json",
            None,
        ),
    ];
    for (name, body, status, code, field) in cases {
        let (s, ct, text) = app.post_raw(BATCH, body, Some("application/json")).await;
        assert_eq!(s, status, "{name}: {text}");
        assert!(ct.starts_with("application/json"), "{name}: {ct}");
        let v: Value = serde_json::from_str(&text).expect("a JSON error");
        assert_eq!(v["error"]["code"], json!(code), "{name}: {v}");
        match field {
            Some(f) => assert_eq!(v["error"]["field"], json!(f), "{name}: {v}"),
            None => assert!(v["error"].get("field").is_none(), "{name}: {v}"),
        }
    }
    let (s, _, text) = app
        .post_raw(BATCH, b"[]".to_vec(), Some("text/plain"))
        .await;
    assert_eq!(s, 415, "{text}");
    // One byte over 8 MiB: 413 before anything is parsed.
    let big = vec![b' '; 8 * 1024 * 1024 + 1];
    let (s, _, text) = app.post_raw(BATCH, big, Some("application/json")).await;
    assert_eq!(s, 413, "{text}");
    assert!(text.contains("payload_too_large"), "{text}");
    assert_eq!(app.store.idempotency_records(), 0);
    app.stop().await;
}

#[actix_web::test]
async fn exactly_1000_interactions_are_decided() {
    let app = TestApp::start().await;
    // Metrics are process-wide (other tests batch too): compare a delta.
    let chunks_waited = || async {
        let text = app
            .client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("fairtreat_batch_wait_seconds_count "))
            .map_or(0, |n| n.trim().parse::<u64>().unwrap())
    };
    let before = chunks_waited().await;
    let items: Vec<Value> = (0..1000).map(interaction_for).collect();
    let (status, v) = app.post(BATCH, &json!({ "interactions": items })).await;
    assert_eq!(status, 200, "{v}");
    let res = results(&v);
    assert_eq!(res.len(), 1000);
    assert!(res
        .iter()
        .enumerate()
        .all(|(i, r)| r["index"] == json!(i) && r["status"] == json!(200)));
    assert_eq!(app.store.idempotency_records(), 1000);
    assert!(
        chunks_waited().await >= before + 32,
        "1000 items are 32 chunks, each waiting for its turn"
    );
    app.stop().await;
}

#[actix_web::test]
async fn a_repeated_item_is_replayed_and_a_changed_body_under_the_same_id_is_a_mismatch() {
    let app = TestApp::start().await;
    let first = interaction();
    let mut changed = interaction();
    changed["text"] = json!("Actually it is fine now, thanks");
    let items = json!([first, first, changed]);
    let (status, v) = app.post(BATCH, &items).await;
    assert_eq!(status, 200, "{v}");
    let res = results(&v);
    assert_eq!(res[0]["status"], json!(200));
    assert_eq!(res[0]["replayed"], json!(false));
    assert_eq!(res[1]["status"], json!(200));
    assert_eq!(res[1]["replayed"], json!(true));
    assert_eq!(
        res[1]["decision"], res[0]["decision"],
        "the stored decision"
    );
    assert_eq!(res[2]["status"], json!(422));
    assert_eq!(res[2]["error"]["code"], json!("idempotency_mismatch"));
    assert_eq!(res[2]["error"]["field"], json!("interaction_id"));
    assert_eq!(app.store.idempotency_records(), 1);
    // A whole retried batch replays every item: still one grant.
    let (_, again) = app.post(BATCH, &items).await;
    assert_eq!(results(&again)[0]["decision"], res[0]["decision"]);
    assert_eq!(results(&again)[0]["replayed"], json!(true));
    assert_eq!(app.store.ledger_total().0, 1);
    app.stop().await;
}

#[actix_web::test]
async fn two_items_for_one_customer_are_decided_in_order_so_the_cap_binds_on_the_second() {
    let app = TestApp::start().await;
    // The bundled policy allows one perk per customer per 30 days; both
    // complaints deserve one.
    let mut a = interaction();
    a["interaction_id"] = json!("cap-1");
    let mut b = interaction();
    b["interaction_id"] = json!("cap-2");
    let (status, v) = app.post(BATCH, &json!([a, b])).await;
    assert_eq!(status, 200, "{v}");
    let res = results(&v);
    let first = &res[0]["decision"];
    let second = &res[1]["decision"];
    assert!(first["gesture"].is_object(), "{first}");
    assert!(
        !constraint_names(first).contains(&"per_customer_cap"),
        "{first}"
    );
    assert!(second["gesture"].is_null(), "{second}");
    assert!(
        constraint_names(second).contains(&"per_customer_cap"),
        "{second}"
    );
    assert_eq!(app.store.ledger_total().0, 1, "one grant");
    app.stop().await;
}

#[actix_web::test]
async fn the_batch_route_is_in_the_openapi_document() {
    let app = TestApp::start().await;
    let (status, body) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_str(&body).unwrap();
    let op = &doc["paths"]["/v1/decisions/batch"]["post"];
    assert!(op.is_object(), "{}", doc["paths"]);
    assert!(op["responses"]["200"].is_object());
    assert!(op["responses"]["413"].is_object());
    app.stop().await;
}
