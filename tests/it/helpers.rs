//! Shared test helpers: a service on port 0 with a manual clock and an
//! in-memory store, and a client that speaks to it.

use std::net::SocketAddr;
use std::sync::Arc;

use fairtreat::clock::{Clock, ManualClock};
use fairtreat::domain::policy::Policy;
use fairtreat::http::auth::{AdminKeys, Scope};
use fairtreat::service::{DecisionService, Models};
use fairtreat::store::memory::MemoryStore;
use serde_json::{json, Value};
use time::macros::datetime;

/// The admin key of test apps (every scope).
pub const ADMIN_KEY: &str = "test-admin-key-0123456789";
/// A key whose scopes do not include `policy:write`.
pub const ANALYST_KEY: &str = "test-analyst-key-9876543210";
/// A key whose scopes do not include `models:write`.
pub const MARKETER_KEY: &str = "test-marketer-key-5555555555";

pub struct TestApp {
    pub addr: SocketAddr,
    pub service: Arc<DecisionService>,
    pub store: Arc<MemoryStore>,
    pub clock: ManualClock,
    pub client: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
}

/// Serves `service` on a port of 127.0.0.1 with the test apps' admin keys
/// (two workers, `opts` otherwise), as `serve` does: the store is seeded
/// with the policy in force first. Returns the address and the server's
/// handle (stop it with `handle.stop(true)`). The server runs on its own
/// thread and actix System, so tests may block on requests (property
/// tests) without starving it.
pub async fn serve(
    service: Arc<DecisionService>,
    opts: fairtreat::http::ServerOptions,
) -> (SocketAddr, actix_web::dev::ServerHandle) {
    let (tx, rx) = std::sync::mpsc::channel();
    let svc = service.clone();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let admin = AdminKeys::single(ADMIN_KEY)
                .with_key("analyst", ANALYST_KEY, &[Scope::ModelsWrite])
                .with_key("marketer", MARKETER_KEY, &[Scope::PolicyWrite]);
            let opts = fairtreat::http::ServerOptions {
                workers: Some(2),
                ..opts
            };
            let (server, addr) =
                fairtreat::http::start_with(svc, admin, "127.0.0.1:0", opts).expect("bind port 0");
            tx.send((addr, server.handle())).expect("test alive");
            server.await
        })
    });
    let served = rx.recv().expect("server started");
    service.sync_policy().await.expect("policy seeded");
    served
}

impl TestApp {
    /// The bundled policy, in-memory store, clock at 2026-11-20 12:00 UTC.
    pub async fn start() -> TestApp {
        Self::with_policy(Policy::bundled()).await
    }

    pub async fn with_policy(policy: Policy) -> TestApp {
        Self::build(policy, Default::default()).await
    }

    /// As [`TestApp::start`], shedding decisions while a worker is more than
    /// `limit` behind (`serve --shed-after-ms`; off in the other test apps,
    /// `None` here too), the service reading the time through `wrap(clock)`
    /// (the app's manual clock): a clock that blocks its caller holds up a
    /// worker as a real overload does.
    pub async fn with_service_clock(
        limit: Option<std::time::Duration>,
        wrap: impl FnOnce(ManualClock) -> Arc<dyn Clock>,
    ) -> TestApp {
        let opts = fairtreat::http::ServerOptions {
            shed_after: limit,
            ..Default::default()
        };
        Self::build_with(Policy::bundled(), opts, wrap).await
    }

    /// As [`TestApp::start`], refusing an address's admin calls after
    /// `limit` failed authentications within `window` (`serve
    /// --auth-failure-limit`; off in the other test apps).
    pub async fn throttling_auth(limit: u32, window: std::time::Duration) -> TestApp {
        let opts = fairtreat::http::ServerOptions {
            auth_failures: Some((limit, window)),
            ..Default::default()
        };
        Self::build(Policy::bundled(), opts).await
    }

    async fn build(policy: Policy, opts: fairtreat::http::ServerOptions) -> TestApp {
        Self::build_with(policy, opts, |clock| Arc::new(clock)).await
    }

    async fn build_with(
        policy: Policy,
        opts: fairtreat::http::ServerOptions,
        wrap: impl FnOnce(ManualClock) -> Arc<dyn Clock>,
    ) -> TestApp {
        let store = Arc::new(MemoryStore::new());
        let clock = ManualClock::new(datetime!(2026-11-20 12:00 UTC));
        let service = Arc::new(DecisionService::new(
            policy,
            Models::bundled(),
            store.clone(),
            wrap(clock.clone()),
        ));
        let (addr, handle) = serve(service.clone(), opts).await;
        TestApp {
            addr,
            service,
            store,
            clock,
            client: reqwest::Client::new(),
            handle,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POSTs JSON and returns status and parsed body (Null when not JSON).
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let resp = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// POSTs raw bytes with the given content type (None: no header).
    pub async fn post_raw(
        &self,
        path: &str,
        body: Vec<u8>,
        content_type: Option<&str>,
    ) -> (u16, String, String) {
        let mut req = self.client.post(self.url(path)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        (status, ct, resp.text().await.expect("body"))
    }

    /// A request with optional bearer key; returns status and JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut req = self.client.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            self.url(path),
        );
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let resp = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.text().await.expect("body"))
    }

    pub async fn decide(&self, body: &Value) -> Value {
        let (status, v) = self.post("/v1/decisions", body).await;
        assert_eq!(status, 200, "{v}");
        v
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

/// The contract's example interaction.
pub fn interaction() -> Value {
    json!({
        "interaction_id": "crm-8812",
        "customer": {"id": "c-42", "tenure_days": 800, "lifetime_value": 1250.0,
                     "attributes": {"tier": "gold", "region": "EU"}},
        "channel": "social", "public": true, "audience": 5400,
        "kind": "complaint", "rating": 2,
        "text": "Order arrived broken and nobody answers my emails",
        "order_value": 89.9, "occurred_at": "2026-11-20T10:00:00Z"
    })
}

/// The example with another interaction and customer id.
pub fn interaction_for(n: usize) -> Value {
    let mut v = interaction();
    v["interaction_id"] = json!(format!("i-{n}"));
    v["customer"]["id"] = json!(format!("c-{n}"));
    v
}

/// Asserts every number anywhere in `v` is present (no `null` where the
/// contract promises a number) by walking the known numeric fields.
pub fn assert_numbers_present(d: &Value) {
    for path in [
        "/scores/sentiment",
        "/scores/severity",
        "/scores/deservingness",
        "/propensity",
        "/policy_version",
    ] {
        assert!(
            d.pointer(path).is_some_and(Value::is_number),
            "{path} in {d}"
        );
    }
    if !d["gesture"].is_null() {
        assert!(d["gesture"]["value"].is_number(), "{d}");
    }
    for a in d["alternatives"].as_array().expect("alternatives") {
        assert!(a["utility"].is_number(), "{d}");
    }
}

/// A models directory holding `outcome-broken-1`: a valid card and a
/// truncated artefact, which loading must refuse (422 `model_refused`).
pub fn broken_outcome_model_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{tag}-{}", std::process::id()));
    let m = dir.join("outcome-broken-1");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(
        m.join("card.json"),
        r#"{"version":"outcome-broken-1","task":"outcome","kind":"linfa_logistic_outcome","schema":1}"#,
    )
    .unwrap();
    std::fs::write(m.join("model.json"), "{\"format\": 1, \"kind\":").unwrap();
    dir
}

/// Raises this process's soft limit on open files (children inherit it) to
/// at least `want`, failing when the hard limit is lower: tests that hold
/// thousands of connections need one descriptor per connection on each side.
pub fn raise_open_files_limit(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        assert!(
            lim.rlim_max >= want,
            "the hard limit on open files is {}; this test needs {want}",
            lim.rlim_max
        );
        if lim.rlim_cur < want {
            lim.rlim_cur = want;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        }
    }
}
