//! Every kind of bad input gets a 4xx with the contract's JSON error object,
//! and nothing is stored (TESTPLAN §4.4).

use serde_json::{json, Value};

use crate::helpers::{interaction, TestApp};

const JSON: Option<&str> = Some("application/json");

fn with(mutate: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v = interaction();
    mutate(&mut v);
    serde_json::to_vec(&v).unwrap()
}

fn raw_with(field_json: &str, replacement: &str) -> Vec<u8> {
    let text = serde_json::to_string(&interaction()).unwrap();
    assert!(text.contains(field_json), "{field_json}");
    text.replacen(field_json, replacement, 1).into_bytes()
}

struct Case {
    name: &'static str,
    body: Vec<u8>,
    content_type: Option<&'static str>,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
}

fn case(
    name: &'static str,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
) -> Case {
    Case {
        name,
        body,
        content_type: JSON,
        status,
        code,
        field,
    }
}

fn cases() -> Vec<Case> {
    let example = serde_json::to_vec(&interaction()).unwrap();
    let mut deep = String::new();
    for _ in 0..100 {
        deep.push('[');
    }
    for _ in 0..100 {
        deep.push(']');
    }
    let mut two_docs = example.clone();
    two_docs.extend_from_slice(&example);
    let mut trailing = example.clone();
    trailing.extend_from_slice(b" garbage");
    let mut bom = "\u{feff}".as_bytes().to_vec();
    bom.extend_from_slice(&example);
    let mut invalid_utf8 = raw_with("\"Order arrived", "\"Order \u{1}arrived");
    let pos = invalid_utf8.iter().position(|b| *b == 1).unwrap();
    invalid_utf8[pos] = 0xff;
    let big = with(|v| v["text"] = json!("x".repeat(70 * 1024)));
    vec![
        case(
            "malformed JSON",
            b"{\"interaction_id\": ".to_vec(),
            400,
            "invalid_json",
            Some("interaction_id"),
        ),
        case("empty body", Vec::new(), 400, "invalid_json", None),
        case("trailing garbage", trailing, 400, "invalid_json", None),
        case("two documents", two_docs, 400, "invalid_json", None),
        case("BOM prefix", bom, 400, "invalid_json", None),
        Case {
            content_type: None,
            ..case(
                "no content type",
                example.clone(),
                415,
                "unsupported_media_type",
                None,
            )
        },
        Case {
            content_type: Some("text/plain"),
            ..case(
                "text/plain",
                example.clone(),
                415,
                "unsupported_media_type",
                None,
            )
        },
        Case {
            content_type: Some("application/x-www-form-urlencoded"),
            ..case(
                "form content type",
                example.clone(),
                415,
                "unsupported_media_type",
                None,
            )
        },
        case("body over 64 KiB", big, 413, "payload_too_large", None),
        case(
            "NaN literal",
            raw_with("89.9", "NaN"),
            400,
            "invalid_json",
            Some("order_value"),
        ),
        case(
            "Infinity literal",
            raw_with("89.9", "Infinity"),
            400,
            "invalid_json",
            Some("order_value"),
        ),
        case(
            "-Infinity literal",
            raw_with("89.9", "-Infinity"),
            400,
            "invalid_json",
            Some("order_value"),
        ),
        case(
            "1e999",
            raw_with("89.9", "1e999"),
            400,
            "invalid_json",
            Some("order_value"),
        ),
        case(
            "integer overflow",
            raw_with("5400", "184467440737095516160"),
            422,
            "invalid_field",
            Some("audience"),
        ),
        case(
            "float for an integer",
            raw_with("800", "800.5"),
            422,
            "invalid_field",
            Some("customer.tenure_days"),
        ),
        case(
            "exponent for an integer",
            raw_with("800", "8e2"),
            422,
            "invalid_field",
            Some("customer.tenure_days"),
        ),
        case(
            "string for an integer",
            raw_with("800", "\"800\""),
            422,
            "invalid_field",
            Some("customer.tenure_days"),
        ),
        case(
            "negative integer",
            raw_with("800", "-800"),
            422,
            "invalid_field",
            Some("customer.tenure_days"),
        ),
        case(
            "negative order value",
            with(|v| v["order_value"] = json!(-1.0)),
            422,
            "invalid_field",
            Some("order_value"),
        ),
        case(
            "negative lifetime value",
            with(|v| v["customer"]["lifetime_value"] = json!(-0.01)),
            422,
            "invalid_field",
            Some("customer.lifetime_value"),
        ),
        case(
            "unknown channel",
            with(|v| v["channel"] = json!("fax")),
            422,
            "invalid_field",
            Some("channel"),
        ),
        case(
            "unknown kind",
            with(|v| v["kind"] = json!("rant")),
            422,
            "invalid_field",
            Some("kind"),
        ),
        case(
            "missing interaction_id",
            with(|v| {
                v.as_object_mut().unwrap().remove("interaction_id");
            }),
            422,
            "invalid_field",
            Some("interaction_id"),
        ),
        case(
            "missing customer id",
            with(|v| {
                v["customer"].as_object_mut().unwrap().remove("id");
            }),
            422,
            "invalid_field",
            Some("customer.id"),
        ),
        case(
            "missing text",
            with(|v| {
                v.as_object_mut().unwrap().remove("text");
            }),
            422,
            "invalid_field",
            Some("text"),
        ),
        case(
            "null text",
            with(|v| v["text"] = Value::Null),
            422,
            "invalid_field",
            Some("text"),
        ),
        case(
            "unknown field",
            with(|v| v["ratting"] = json!(3)),
            422,
            "invalid_field",
            Some("ratting"),
        ),
        case(
            "unknown customer field",
            with(|v| v["customer"]["vip"] = json!(true)),
            422,
            "invalid_field",
            Some("customer.vip"),
        ),
        case(
            "duplicate field",
            raw_with(
                "\"kind\":\"complaint\"",
                "\"kind\":\"complaint\",\"kind\":\"praise\"",
            ),
            422,
            "invalid_field",
            Some("kind"),
        ),
        case(
            "lone surrogate",
            raw_with("\"Order arrived", "\"Order \\ud800 arrived"),
            400,
            "invalid_json",
            Some("text"),
        ),
        case(
            "invalid UTF-8",
            invalid_utf8,
            400,
            "invalid_json",
            Some("text"),
        ),
        case(
            "NUL in an id",
            with(|v| v["interaction_id"] = json!("a\u{0}b")),
            422,
            "invalid_field",
            Some("interaction_id"),
        ),
        case(
            "RTL override in an id",
            with(|v| v["interaction_id"] = json!("a\u{202e}b")),
            422,
            "invalid_field",
            Some("interaction_id"),
        ),
        case(
            "empty id",
            with(|v| v["interaction_id"] = json!("")),
            422,
            "invalid_field",
            Some("interaction_id"),
        ),
        case(
            "129-character id",
            with(|v| v["interaction_id"] = json!("x".repeat(129))),
            422,
            "invalid_field",
            Some("interaction_id"),
        ),
        case(
            "10k-character id",
            with(|v| v["customer"]["id"] = json!("x".repeat(10_000))),
            422,
            "invalid_field",
            Some("customer.id"),
        ),
        case(
            "braces in an id",
            with(|v| v["customer"]["id"] = json!("c{42}")),
            422,
            "invalid_field",
            Some("customer.id"),
        ),
        case(
            "colon in an id",
            with(|v| v["interaction_id"] = json!("crm:8812")),
            422,
            "invalid_field",
            Some("interaction_id"),
        ),
        case(
            "control character in an id",
            with(|v| v["interaction_id"] = json!("a\tb")),
            422,
            "invalid_field",
            Some("interaction_id"),
        ),
        case(
            "text over 8000 characters",
            with(|v| v["text"] = json!("é".repeat(8001))),
            422,
            "invalid_field",
            Some("text"),
        ),
        case(
            "NUL in the text",
            with(|v| v["text"] = json!("broken\u{0}")),
            422,
            "invalid_field",
            Some("text"),
        ),
        case(
            "rating 0",
            with(|v| v["rating"] = json!(0)),
            422,
            "invalid_field",
            Some("rating"),
        ),
        case(
            "rating 6",
            with(|v| v["rating"] = json!(6)),
            422,
            "invalid_field",
            Some("rating"),
        ),
        case(
            "fractional rating",
            with(|v| v["rating"] = json!(2.5)),
            422,
            "invalid_field",
            Some("rating"),
        ),
        case(
            "deep nesting in the wrong place",
            raw_with("\"social\"", &deep),
            400,
            "invalid_json",
            Some("channel"),
        ),
        case(
            "bad timestamp",
            with(|v| v["occurred_at"] = json!("yesterday")),
            422,
            "invalid_field",
            Some("occurred_at"),
        ),
        case(
            "attribute with a brace",
            with(|v| v["customer"]["attributes"]["tier"] = json!("go{ld")),
            422,
            "invalid_field",
            Some("customer.attributes.tier"),
        ),
        case(
            "array instead of an object",
            b"[1,2,3]".to_vec(),
            422,
            "invalid_field",
            None,
        ),
        // serde's derive would read a struct from its fields in order.
        case(
            "the interaction as an array of its fields in order",
            serde_json::to_vec(&json!([
                "crm-1",
                {"id": "c-1", "tenure_days": 5, "lifetime_value": 1.0, "attributes": {}},
                "email", false, 0, "complaint", 2, "broken", 10.0
            ]))
            .unwrap(),
            422,
            "invalid_field",
            None,
        ),
        case(
            "the customer as an array of its fields in order",
            with(|v| v["customer"] = json!(["c-1", 5, 1.0, {}])),
            422,
            "invalid_field",
            Some("customer"),
        ),
    ]
}

#[actix_web::test]
async fn every_kind_of_bad_input_gets_a_json_4xx_naming_the_field_and_stores_nothing() {
    let app = TestApp::start().await;
    let mut failures = Vec::new();
    for c in cases() {
        let (status, content_type, body) =
            app.post_raw("/v1/decisions", c.body, c.content_type).await;
        let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let got = (
            status,
            parsed["error"]["code"].as_str().map(str::to_string),
            parsed["error"]["field"].as_str().map(str::to_string),
        );
        let want = (
            c.status,
            Some(c.code.to_string()),
            c.field.map(str::to_string),
        );
        if got != want
            || !content_type.starts_with("application/json")
            || !parsed["error"]["message"].is_string()
        {
            failures.push(format!(
                "{}: got {got:?} ({content_type}) {body}, want {want:?}",
                c.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(app.store.idempotency_records(), 0, "nothing stored");
    assert_eq!(app.store.ledger_total().0, 0);
    app.stop().await;
}

#[actix_web::test]
async fn a_chunked_body_over_the_limit_is_cut_off_with_413() {
    let app = TestApp::start().await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..100).map(|_| Ok(vec![b' '; 1024])).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let resp = app
        .client
        .post(app.url("/v1/decisions"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    app.stop().await;
}

#[actix_web::test]
async fn wrong_methods_get_405_and_unknown_paths_404_as_json() {
    let app = TestApp::start().await;
    let cases = [
        ("GET", "/v1/decisions", 405, "method_not_allowed"),
        ("PUT", "/v1/decisions", 405, "method_not_allowed"),
        ("TRACE", "/v1/decisions", 405, "method_not_allowed"),
        ("DELETE", "/healthz", 405, "method_not_allowed"),
        ("POST", "/metrics", 405, "method_not_allowed"),
        ("GET", "/v1/nope", 404, "not_found"),
        ("POST", "/", 405, "method_not_allowed"),
        ("GET", "/nope/deeper", 404, "not_found"),
    ];
    for (method, path, status, code) in cases {
        let resp = app
            .client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                app.url(path),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), status, "{method} {path}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], code, "{method} {path}");
    }
    app.stop().await;
}

#[actix_web::test]
async fn arrays_in_place_of_objects_are_refused_in_every_request_document() {
    use crate::helpers::ADMIN_KEY;
    let app = TestApp::start().await;
    let (_, policy) = app.call("GET", "/v1/policy", None, None).await;
    let positional =
        |v: &Value| -> Value { Value::Array(v.as_object().unwrap().values().cloned().collect()) };
    let mut cases: Vec<(&str, &str, Option<&str>, Value, &str)> = Vec::new();
    for part in ["fairness", "caps", "budget", "exploration", "scoring"] {
        let mut p = policy.clone();
        p[part] = positional(&policy[part]);
        cases.push(("PUT", "/v1/policy", Some(ADMIN_KEY), p, part));
    }
    let mut p = policy.clone();
    p["actions"][0] = positional(&policy["actions"][0]);
    cases.push(("PUT", "/v1/policy", Some(ADMIN_KEY), p, "actions[0]"));
    let with_gesture = policy["actions"]
        .as_array()
        .unwrap()
        .iter()
        .position(|a| a["gesture"].is_object())
        .expect("an action with a gesture");
    let mut p = policy.clone();
    p["actions"][with_gesture]["gesture"] = positional(&policy["actions"][with_gesture]["gesture"]);
    let gesture_field = format!("actions[{with_gesture}].gesture");
    cases.push(("PUT", "/v1/policy", Some(ADMIN_KEY), p, &gesture_field));
    cases.push((
        "POST",
        "/v1/policy/simulate",
        None,
        json!({ "policy": positional(&policy) }),
        "policy",
    ));
    cases.push((
        "POST",
        "/v1/feedback",
        None,
        json!({"decision_id": "6f2b7a0e-0000-4000-8000-000000000000", "reward": 1.0,
               "outcome": [true, 0.5, false, false]}),
        "outcome",
    ));
    let mut failures = Vec::new();
    for (method, path, key, body, field) in &cases {
        let (status, v) = app.call(method, path, *key, Some(body)).await;
        if status != 422
            || v["error"]["code"] != "invalid_field"
            || v["error"]["field"] != json!(field)
        {
            failures.push(format!(
                "{method} {path} with {field} as an array: {status} {v}"
            ));
        }
    }
    // A whole document as an array has no field to name.
    for (method, path, key, body) in [
        ("PUT", "/v1/policy", Some(ADMIN_KEY), positional(&policy)),
        (
            "POST",
            "/v1/feedback",
            None,
            json!(["6f2b7a0e-0000-4000-8000-000000000000", 1.0]),
        ),
    ] {
        let (status, v) = app.call(method, path, key, Some(&body)).await;
        if status != 422 || v["error"]["code"] != "invalid_field" {
            failures.push(format!("{method} {path} as an array: {status} {v}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let (_, after) = app.call("GET", "/v1/policy", None, None).await;
    assert_eq!(
        after["version"], policy["version"],
        "no policy change applied"
    );
    app.stop().await;
}
