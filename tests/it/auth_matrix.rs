//! The admin authorisation matrix (TESTPLAN §4.5 S1), over every admin route
//! the app has.
//!
//! The admin routes are not listed here: they are read from the app itself
//! (the operations of its OpenAPI document that carry a security
//! requirement) and checked against `http::ADMIN_ROUTES` and against what the
//! server actually does without credentials. A new route that forgets its
//! check, its documentation or its entry in `ADMIN_ROUTES` fails here before
//! it can skip the matrix.

use std::collections::BTreeSet;
use std::sync::Arc;

use fairtreat::clock::ManualClock;
use fairtreat::domain::policy::Policy;
use fairtreat::http::auth::Scope;
use fairtreat::http::{ADMIN_ROUTES, ROUTES};
use fairtreat::service::{DecisionService, Models};
use fairtreat::store::memory::MemoryStore;
use serde_json::{json, Value};
use time::macros::datetime;

use crate::helpers::{TestApp, ADMIN_KEY, ANALYST_KEY, MARKETER_KEY};

/// A concrete path for a route template: real ids where the route needs
/// one to do anything, a harmless word otherwise.
fn concrete(path: &str) -> String {
    path.replace("{decision_id}", "00000000-0000-0000-0000-000000000000")
        .replace("{version}", "sentiment-logreg-1")
        .replace("{file}", "app.js")
        .split('/')
        .map(|part| {
            if part.starts_with('{') && part.ends_with('}') {
                "x"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A key configured in the test app without `scope`, and one with only it.
fn keys_for(scope: Scope) -> (&'static str, &'static str) {
    match scope {
        // The analyst may only activate models; the marketer only edit policy.
        Scope::PolicyWrite => (ANALYST_KEY, MARKETER_KEY),
        Scope::ModelsWrite => (MARKETER_KEY, ANALYST_KEY),
    }
}

struct Reply {
    status: u16,
    code: Option<String>,
    www_authenticate: Option<String>,
    body: String,
}

/// Sends `method path?query` with the given Authorization header values and
/// a JSON body (`{}` unless given).
async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    query: &str,
    authorization: &[&str],
    body: Option<&Value>,
) -> Reply {
    let url = if query.is_empty() {
        app.url(path)
    } else {
        app.url(&format!("{path}?{query}"))
    };
    let mut req = app
        .client
        .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
    for value in authorization {
        req = req.header("authorization", *value);
    }
    let req = req.json(body.unwrap_or(&json!({})));
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let www_authenticate = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let body = resp.text().await.expect("body");
    let code = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_string));
    Reply {
        status,
        code,
        www_authenticate,
        body,
    }
}

/// The (method, path) of every operation of the app's OpenAPI document that
/// requires credentials.
async fn secured_operations(app: &TestApp) -> BTreeSet<(String, String)> {
    let (status, text) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"]
            .as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("bearer")),
        "the bearer scheme is declared: {}",
        doc["components"]
    );
    let mut secured = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let requirements = op["security"].as_array().cloned().unwrap_or_default();
            if !requirements.is_empty() {
                assert!(
                    requirements.iter().all(|r| r.get("bearer").is_some()),
                    "{method} {path}: {requirements:?}"
                );
                secured.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    secured
}

fn admin_routes() -> BTreeSet<(String, String)> {
    ADMIN_ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect()
}

#[actix_web::test]
async fn the_documented_admin_operations_are_exactly_the_admin_routes() {
    let app = TestApp::start().await;
    let secured = secured_operations(&app).await;
    assert!(!secured.is_empty());
    assert_eq!(secured, admin_routes());
    let routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert!(
        admin_routes().is_subset(&routes),
        "every admin route is a served route"
    );
    app.stop().await;
}

#[actix_web::test]
async fn without_credentials_exactly_the_admin_routes_answer_401() {
    let app = TestApp::start().await;
    let admin = admin_routes();
    let mut refused = BTreeSet::new();
    for (method, path) in ROUTES {
        // A malformed JSON body, so an admin route that reads its body before
        // checking the caller answers 400 `invalid_json` instead of 401 and
        // is caught (routes without a body ignore it).
        let resp = app
            .client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                app.url(&concrete(path)),
            )
            .header("content-type", "application/json")
            .body("{")
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        assert!(status < 500, "{method} {path}: {status}");
        if status == 401 {
            refused.insert((method.to_string(), path.to_string()));
        }
    }
    assert_eq!(refused, admin);
    app.stop().await;
}

/// One row of the matrix: the request's credentials and what must come back.
struct Case {
    name: &'static str,
    authorization: Vec<String>,
    query: String,
    expect: Expect,
}

enum Expect {
    /// 401 `unauthorized` with `WWW-Authenticate: Bearer`.
    Unauthorized,
    /// 400 `credentials_in_query`.
    CredentialsInQuery,
    /// 403 `forbidden`.
    Forbidden,
    /// Past authorisation: neither 401 nor 403, and not a server error.
    Authorised,
}

fn cases(scope: Scope) -> Vec<Case> {
    let (without_scope, only_scope) = keys_for(scope);
    let bearer = |k: &str| vec![format!("Bearer {k}")];
    // Same length as the admin key, one byte changed: only a comparison of
    // every byte tells them apart.
    let mut near = ADMIN_KEY.as_bytes().to_vec();
    let last = near.len() - 1;
    near[last] ^= 1;
    let near = String::from_utf8(near).unwrap();
    let case = |name, authorization: Vec<String>, query: &str, expect| Case {
        name,
        authorization,
        query: query.to_string(),
        expect,
    };
    use Expect::*;
    vec![
        case("no Authorization header", vec![], "", Unauthorized),
        case(
            "the Basic scheme",
            vec![format!("Basic {ADMIN_KEY}")],
            "",
            Unauthorized,
        ),
        case(
            "Bearer without a key",
            vec!["Bearer".into()],
            "",
            Unauthorized,
        ),
        case(
            "two spaces before the key",
            vec![format!("Bearer  {ADMIN_KEY}")],
            "",
            Unauthorized,
        ),
        case(
            "the key followed by another word",
            vec![format!("Bearer {ADMIN_KEY} {ADMIN_KEY}")],
            "",
            Unauthorized,
        ),
        case(
            "the key without a scheme",
            vec![ADMIN_KEY.into()],
            "",
            Unauthorized,
        ),
        case(
            "two Authorization headers",
            [bearer(ADMIN_KEY), bearer(ADMIN_KEY)].concat(),
            "",
            Unauthorized,
        ),
        case("a wrong key", bearer("wrong-key"), "", Unauthorized),
        case(
            "a key of the right length, one byte different",
            bearer(&near),
            "",
            Unauthorized,
        ),
        case(
            "a prefix of the key",
            bearer(&ADMIN_KEY[..ADMIN_KEY.len() - 1]),
            "",
            Unauthorized,
        ),
        case(
            "the key and one more byte",
            bearer(&format!("{ADMIN_KEY}0")),
            "",
            Unauthorized,
        ),
        case(
            "the key in the query string",
            vec![],
            &format!("api_key={ADMIN_KEY}"),
            CredentialsInQuery,
        ),
        case(
            "the key in the query string as well as the header",
            bearer(ADMIN_KEY),
            &format!("token={ADMIN_KEY}"),
            CredentialsInQuery,
        ),
        case(
            "a valid key without the route's scope",
            bearer(without_scope),
            "",
            Forbidden,
        ),
        case("the admin key", bearer(ADMIN_KEY), "", Authorised),
        case(
            "a key with only the route's scope",
            bearer(only_scope),
            "",
            Authorised,
        ),
        case(
            "a lower-case scheme (RFC 7235: case-insensitive)",
            vec![format!("bearer {ADMIN_KEY}")],
            "",
            Authorised,
        ),
    ]
}

/// A body the route accepts, when it takes one: refusals are then about the
/// credentials alone.
async fn valid_body(app: &TestApp, method: &str, path: &str) -> Value {
    match (method, path) {
        ("PUT", "/v1/policy") => {
            let (status, policy) = app.call("GET", "/v1/policy", None, None).await;
            assert_eq!(status, 200);
            policy
        }
        _ => json!({}),
    }
}

#[actix_web::test]
async fn every_admin_route_refuses_every_bad_credential_and_accepts_the_right_key() {
    let app = TestApp::start().await;
    // Activation reads model folders (it does not write them).
    app.service
        .set_models_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/models"));
    assert!(!ADMIN_ROUTES.is_empty());
    for (method, template, scope) in ADMIN_ROUTES {
        let path = concrete(template);
        for case in cases(*scope) {
            let what = format!("{method} {template}, {}", case.name);
            let body = valid_body(&app, method, template).await;
            let headers: Vec<&str> = case.authorization.iter().map(String::as_str).collect();
            let r = send(&app, method, &path, &case.query, &headers, Some(&body)).await;
            assert!(
                !r.body.contains(ADMIN_KEY) && !r.body.contains(&ADMIN_KEY[..12]),
                "{what}: a response echoes the key: {}",
                r.body
            );
            match case.expect {
                Expect::Unauthorized => {
                    assert_eq!(r.status, 401, "{what}: {}", r.body);
                    assert_eq!(r.code.as_deref(), Some("unauthorized"), "{what}");
                    assert_eq!(r.www_authenticate.as_deref(), Some("Bearer"), "{what}");
                }
                Expect::CredentialsInQuery => {
                    assert_eq!(r.status, 400, "{what}: {}", r.body);
                    assert_eq!(r.code.as_deref(), Some("credentials_in_query"), "{what}");
                }
                Expect::Forbidden => {
                    assert_eq!(r.status, 403, "{what}: {}", r.body);
                    assert_eq!(r.code.as_deref(), Some("forbidden"), "{what}");
                    assert_eq!(r.www_authenticate, None, "{what}");
                }
                Expect::Authorised => {
                    assert!(
                        ![400, 401, 403].contains(&r.status) && r.status < 500,
                        "{what}: {} {}",
                        r.status,
                        r.body
                    );
                    // The two routes whose success is known here must succeed.
                    if matches!(
                        (*method, *template),
                        ("PUT", "/v1/policy") | ("POST", "/v1/models/{version}/activate")
                    ) {
                        assert_eq!(r.status, 200, "{what}: {}", r.body);
                    }
                }
            }
        }
    }
    app.stop().await;
}

#[actix_web::test]
async fn a_refused_policy_change_changes_nothing() {
    let app = TestApp::start().await;
    let before = app.service.policy().version;
    let (_, history_before) = app.call("GET", "/v1/policy/history", None, None).await;
    let (_, mut policy) = app.call("GET", "/v1/policy", None, None).await;
    policy["budget"]["daily"] = json!(1.0);
    for key in [None, Some("wrong-key"), Some(ANALYST_KEY)] {
        let (status, _) = app.call("PUT", "/v1/policy", key, Some(&policy)).await;
        assert!(status == 401 || status == 403, "{key:?}: {status}");
    }
    assert_eq!(app.service.policy().version, before);
    let (_, history_after) = app.call("GET", "/v1/policy/history", None, None).await;
    assert_eq!(
        history_after, history_before,
        "nothing was audited as applied"
    );
    // The same document with the right key is applied: the refusals above
    // were about the credentials only.
    let (status, change) = app
        .call("PUT", "/v1/policy", Some(MARKETER_KEY), Some(&policy))
        .await;
    assert_eq!(status, 200, "{change}");
    assert_eq!(change["actor"], json!("marketer"));
    assert_eq!(app.service.policy().version, before + 1);
    app.stop().await;
}

#[actix_web::test]
async fn without_a_configured_key_every_admin_call_is_refused() {
    // A service started without any admin key (`http::start`): admin routes
    // must stay closed, never fall open.
    let service = Arc::new(DecisionService::new(
        Policy::bundled(),
        Models::bundled(),
        Arc::new(MemoryStore::new()),
        Arc::new(ManualClock::new(datetime!(2026-11-20 12:00 UTC))),
    ));
    service.set_models_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/models"));
    let (tx, rx) = std::sync::mpsc::channel();
    let svc = service.clone();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let (server, addr) =
                fairtreat::http::start(svc, "127.0.0.1:0", Some(1)).expect("bind port 0");
            tx.send((addr, server.handle())).expect("test alive");
            server.await
        })
    });
    let (addr, handle) = rx.recv().expect("server started");
    let client = reqwest::Client::new();
    let policy = Policy::bundled();
    for (method, template, _) in ADMIN_ROUTES {
        for key in [ADMIN_KEY, "", "anything"] {
            let resp = client
                .request(
                    reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                    format!("http://{addr}{}", concrete(template)),
                )
                .header("authorization", format!("Bearer {key}"))
                .json(&policy)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 401, "{method} {template} {key:?}");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"]["code"], json!("unauthorized"));
        }
    }
    assert_eq!(service.policy().version, policy.version);
    assert_eq!(service.models().version(), Models::bundled().version());
    handle.stop(true).await;
}

/// One admin call: status, error code and `Retry-After`.
async fn admin_put(
    client: &reqwest::Client,
    url: String,
    key: Option<&str>,
    body: &Value,
) -> (u16, Option<String>, Option<u64>) {
    let mut req = client.put(url).json(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse::<u64>().expect("whole seconds"));
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let code = body["error"]["code"].as_str().map(str::to_string);
    (status, code, retry_after)
}

#[actix_web::test]
async fn an_address_that_fails_authentication_too_often_is_refused_before_its_key_is_looked_at() {
    let app = TestApp::throttling_auth(3, std::time::Duration::from_secs(60)).await;
    let (_, mut policy) = app.call("GET", "/v1/policy", None, None).await;
    policy["budget"]["daily"] = json!(1.0);
    let put = |key, query: &str| {
        let url = app.url(&format!("/v1/policy{query}"));
        let client = app.client.clone();
        let policy = policy.clone();
        async move { admin_put(&client, url, key, &policy).await }
    };
    // A valid key without the scope guessed nothing: not a failure.
    assert_eq!(put(Some(ANALYST_KEY), "").await.0, 403);
    assert_eq!(put(None, "").await.0, 401);
    assert_eq!(put(Some("wrong-key"), "").await.0, 401);
    // Two failures of three: the right key still works.
    let (status, ..) = put(Some(MARKETER_KEY), "").await;
    assert_eq!(status, 200);
    let applied = app.service.policy().version;
    // A key in the query string is the third failure.
    let query = format!("?api_key={MARKETER_KEY}");
    assert_eq!(put(None, &query).await.0, 400);

    // Now the address is refused whatever it sends, the right key included,
    // and nothing is applied.
    for key in [Some(MARKETER_KEY), Some("wrong-key"), None] {
        let (status, code, retry_after) = put(key, "").await;
        assert_eq!(status, 429, "{key:?}");
        assert_eq!(code.as_deref(), Some("too_many_auth_failures"));
        let retry_after = retry_after.expect("Retry-After");
        assert!((1..=60).contains(&retry_after), "{retry_after}");
    }
    assert_eq!(app.service.policy().version, applied);

    // Decisions from the same address are not admin calls.
    let (status, _) = app
        .post("/v1/decisions", &crate::helpers::interaction())
        .await;
    assert_eq!(status, 200);
    // Another address is not refused.
    let elsewhere = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let (status, ..) = admin_put(
        &elsewhere,
        app.url("/v1/policy"),
        Some(MARKETER_KEY),
        &app.call("GET", "/v1/policy", None, None).await.1,
    )
    .await;
    assert_eq!(status, 200, "127.0.0.2 has its own count");
    assert_eq!(app.service.policy().version, applied + 1);

    let (_, metrics) = app.get("/metrics").await;
    let throttled = metrics
        .lines()
        .find(|l| l.starts_with("fairtreat_admin_auth_refused_total{") && l.contains("throttled"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(throttled >= 3.0, "counted: {throttled}");
    app.stop().await;
}

#[actix_web::test]
async fn the_refusal_ends_with_the_window_that_began_at_the_first_failure() {
    // The throttle reads the service's clock: the window's edge is stepped
    // to, not slept to.
    let window = std::time::Duration::from_secs(60);
    let app = TestApp::throttling_auth(1, window).await;
    let (_, policy) = app.call("GET", "/v1/policy", None, None).await;
    let put = |key| admin_put(&app.client, app.url("/v1/policy"), Some(key), &policy);
    assert_eq!(put("wrong").await.0, 401);
    app.clock.advance(time::Duration::seconds(59));
    let (status, _, retry_after) = put(MARKETER_KEY).await;
    assert_eq!((status, retry_after), (429, Some(1)), "one second is left");
    app.clock.advance(time::Duration::milliseconds(999));
    let (status, _, retry_after) = put(MARKETER_KEY).await;
    assert_eq!(
        (status, retry_after),
        (429, Some(1)),
        "a millisecond is left: Retry-After rounds it up"
    );
    app.clock.advance(time::Duration::milliseconds(1));
    assert_eq!(put(MARKETER_KEY).await.0, 200, "the window has ended");
    app.stop().await;
}
