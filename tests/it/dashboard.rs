//! The dashboard at `GET /`, driven in a real headless Chromium through
//! chromedriver's WebDriver protocol (spoken with reqwest, no extra crate).
//!
//! Needs Debian's `chromium` and `chromium-driver` (`scripts/test.sh`
//! installs them when missing); without them this test fails, never skips.
//! It writes screenshots `dashboard-1280.png` and `dashboard-390.png` to
//! `target/screenshots/`, so a test run leaves the tracked files alone;
//! `FAIRTREAT_SCREENSHOTS=docs/screenshots` writes the README's copies.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64_decode::decode;
use serde_json::{json, Value};

use crate::helpers::{interaction_for, TestApp, ADMIN_KEY};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A chromedriver process with one browser session; both end on drop.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    async fn start() -> Browser {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: the dashboard test needs Debian's chromium and \
                 chromium-driver packages; run scripts/test.sh, which installs them"
            );
        }
        let port = free_port();
        // Its own process group, so the browser it starts ends with it even
        // when the test panics.
        let driver = Command::new(CHROMEDRIVER)
            .process_group(0)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http
                .get(format!("{base}/status"))
                .send()
                .await
                .ok()
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = std::env::temp_dir().join(format!(
            "fairtreat-chromium-{}-{}",
            std::process::id(),
            port
        ));
        std::fs::create_dir_all(&profile).unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        }}});
        let resp: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .unwrap();
        let session = resp["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {resp}"))
            .to_string();
        Browser {
            driver,
            base,
            session,
            http,
            _profile: TempDir(profile),
        }
    }

    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{}", self.base, self.session, path);
        let req = self
            .http
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        let v: Value = req.send().await.expect("webdriver").json().await.unwrap();
        if v["value"].get("error").is_some() {
            panic!("webdriver {method} {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url }))).await;
    }

    async fn js(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Waits until `script` returns something truthy; returns it.
    async fn wait_for(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.js(script, json!([])).await;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn element(&self, css: &str) -> String {
        let v = self
            .cmd(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_string()
    }

    async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.cmd("POST", &format!("/element/{id}/click"), Some(json!({})))
            .await;
    }

    /// Replaces an input's value by typing, as a person would.
    async fn fill(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.cmd("POST", &format!("/element/{id}/clear"), Some(json!({})))
            .await;
        self.cmd(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    async fn text(&self, css: &str) -> String {
        self.js(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
            json!([css]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Emulates a viewport of exactly `width` × `height` CSS pixels.
    async fn viewport(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/goog/cdp/execute",
            Some(
                json!({"cmd": "Emulation.setDeviceMetricsOverride", "params": {
                    "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600
                }}),
            ),
        )
        .await;
    }

    /// Browser console entries of level SEVERE since the last call.
    async fn console_errors(&self) -> Vec<String> {
        let v = self
            .cmd("POST", "/se/log", Some(json!({"type": "browser"})))
            .await;
        v.as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// A screenshot of the whole page at `width` (the viewport grows to the
    /// page's height for the shot, then returns to `height`).
    /// Saves a full-height screenshot as `name` in the screenshot folder
    /// (see the module doc).
    async fn screenshot(&self, width: u32, height: u32, name: &str) {
        let full = self
            .js("return document.documentElement.scrollHeight;", json!([]))
            .await
            .as_u64()
            .unwrap_or(u64::from(height)) as u32;
        self.viewport(width, full.max(height)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let b64 = self.cmd("GET", "/screenshot", None).await;
        let png = decode(b64.as_str().expect("base64 screenshot"));
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = std::env::var("FAIRTREAT_SCREENSHOTS")
            .unwrap_or_else(|_| "target/screenshots".to_string());
        let out = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join(name);
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        std::fs::write(&out, png).unwrap();
        self.viewport(width, height).await;
    }

    /// Ends the session (the browser quits); chromedriver ends on drop.
    async fn quit(self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver's process group: chromedriver and the browser it runs.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Standard base64 (what WebDriver screenshots are), without another crate.
mod base64_decode {
    pub fn decode(s: &str) -> Vec<u8> {
        let val = |c: u8| -> Option<u32> {
            Some(match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                _ => return None,
            } as u32)
        };
        let mut out = Vec::with_capacity(s.len() * 3 / 4);
        let (mut acc, mut bits) = (0u32, 0u32);
        for c in s.bytes() {
            let Some(v) = val(c) else { continue };
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        out
    }
}

/// A few dozen decisions over several hours: gold customers once each,
/// silver customers several times (the per-customer cap then refuses their
/// later perks, so silver's perk rate falls behind gold's).
async fn seed(app: &TestApp) -> usize {
    let mut n = 0;
    for i in 0..36 {
        let mut body = interaction_for(1000 + i);
        if i % 3 == 0 {
            body["customer"]["id"] = json!(format!("silver-{}", i % 2));
            body["customer"]["attributes"]["tier"] = json!("silver");
        }
        if i % 5 == 4 {
            body["kind"] = json!("praise");
            body["rating"] = json!(5);
            body["text"] = json!("Lovely service, thank you so much!");
        }
        body["occurred_at"] = json!(app.clock.now_rfc3339());
        app.decide(&body).await;
        n += 1;
        if i % 4 == 3 {
            app.clock.advance(time::Duration::hours(1));
        }
    }
    n
}

trait NowRfc3339 {
    fn now_rfc3339(&self) -> String;
}

impl NowRfc3339 for fairtreat::clock::ManualClock {
    fn now_rfc3339(&self) -> String {
        use fairtreat::clock::Clock;
        self.now()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => s.parse().unwrap_or(f64::NAN),
        _ => f64::NAN,
    }
}

const READY: &str = "return document.body.getAttribute('data-ready') === 'true';";

/// No script error, and no console error but the failed requests the step
/// provoked on purpose (Chromium logs every 4xx answer to `fetch`).
async fn assert_no_errors(b: &Browser, when: &str, expected_statuses: &[u16]) {
    let recorded = b.js("return window.__errors;", json!([])).await;
    assert_eq!(recorded, json!([]), "page errors {when}");
    let mut console = b.console_errors().await;
    console.retain(|m| {
        !expected_statuses.iter().any(|s| {
            m.contains(&format!(
                "Failed to load resource: the server responded with a status of {s} "
            ))
        })
    });
    assert!(console.is_empty(), "console errors {when}: {console:?}");
}

#[actix_web::test]
async fn the_dashboard_shows_the_window_previews_and_applies_policy_changes_in_chromium() {
    let mut policy = fairtreat::domain::policy::Policy::bundled();
    // Small groups are enforced, so the seeded disparity shows as failing.
    policy.fairness.min_group_samples = 3;
    let app = TestApp::with_policy(policy).await;
    let seeded = seed(&app).await;
    let (_, summary) = app.call("GET", "/v1/dashboard/summary", None, None).await;
    let b = Browser::start().await;

    // ---- 1280 px -------------------------------------------------------
    b.viewport(1280, 900).await;
    b.goto(&app.url("/")).await;
    b.wait_for("the page to load its data", READY).await;
    assert_eq!(
        b.js("return window.innerWidth;", json!([])).await,
        json!(1280)
    );
    assert_no_errors(&b, "after loading at 1280 px", &[]).await;

    // The series chart: one bar per hour of the window, summing to the seed.
    let bars = b
        .js(
            "return [...document.querySelectorAll('#chart-series rect.bar-decisions')]
                .map(r => [Number(r.dataset.decisions), r.getBBox().height]);",
            json!([]),
        )
        .await;
    let bars = bars.as_array().unwrap();
    assert_eq!(bars.len() as u64, summary["window_hours"].as_u64().unwrap());
    let total: f64 = bars.iter().map(|x| num(&x[0])).sum();
    assert_eq!(total as usize, seeded, "every seeded decision is charted");
    assert!(
        bars.iter().filter(|x| num(&x[1]) > 0.0).count() >= 5,
        "decisions are spread over hours and drawn: {bars:?}"
    );
    let api_perks: u64 = summary["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["perks"].as_u64().unwrap())
        .sum();
    let page_perks = b
        .js(
            "return [...document.querySelectorAll('#chart-series rect.bar-perks')]
                .reduce((a, r) => a + Number(r.dataset.perks), 0);",
            json!([]),
        )
        .await;
    assert_eq!(page_perks.as_u64().unwrap(), api_perks);
    assert!(api_perks > 0, "some perks were granted");
    // Spend against the budget.
    let spent = b
        .js(
            "return Number(document.querySelector('#chart-budget rect.bar-spend').dataset.spent);",
            json!([]),
        )
        .await;
    assert!(close(num(&spent), num(&summary["budget"]["spent_today"])));
    // Constraints chart (process-wide counters: at least one bar).
    b.wait_for(
        "the constraints chart",
        "return document.querySelectorAll('#chart-constraints rect.bar-constraint').length;",
    )
    .await;
    // Versions in force.
    assert_eq!(b.text("#policy-version").await, "v1");
    assert_eq!(
        b.text("#model-version").await,
        summary["model_version"].as_str().unwrap()
    );
    // Parity: a chart per audited attribute, failing cells as the API says.
    for attr in ["tier", "region"] {
        let (s, report) = app
            .call(
                "GET",
                &format!("/v1/fairness/report?attribute={attr}"),
                None,
                None,
            )
            .await;
        assert_eq!(s, 200);
        let bars = b
            .js(
                "return document.querySelectorAll(
                    `figure.parity-chart[data-attribute=\"${arguments[0]}\"] rect.bar-parity`).length;",
                json!([attr]),
            )
            .await;
        assert_eq!(bars, json!(4), "3 bands and overall for {attr}");
        let mut want: Vec<String> = report["bands"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["failing"] == json!(true))
            .map(|b| b["band"].as_str().unwrap().to_string())
            .collect();
        want.sort();
        let got = b
            .js(
                "return [...document.querySelectorAll(
                    `td.parity-cell.failing[data-attribute=\"${arguments[0]}\"]`)]
                    .map(td => td.dataset.band).sort();",
                json!([attr]),
            )
            .await;
        assert_eq!(got, json!(want), "failing cells of {attr}");
        if attr == "tier" {
            assert!(
                !want.is_empty(),
                "the seed makes a tier band fail: {report}"
            );
        }
    }
    // Every form control has a label.
    let unlabelled = b
        .js(
            "return [...document.querySelectorAll('input')]
                .filter(i => !document.querySelector(`label[for=\"${i.id}\"]`)).map(i => i.id);",
            json!([]),
        )
        .await;
    assert_eq!(unlabelled, json!([]));
    // Keyboard: Tab reaches the editor's inputs and buttons in order.
    let mut focused = Vec::new();
    for _ in 0..14 {
        b.cmd(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "kbd", "actions": [
                {"type": "keyDown", "value": "\u{E004}"}, {"type": "keyUp", "value": "\u{E004}"}
            ]}]})),
        )
        .await;
        focused.push(
            b.js(
                "return document.activeElement.id || document.activeElement.tagName;",
                json!([]),
            )
            .await
            .as_str()
            .unwrap_or_default()
            .to_string(),
        );
    }
    assert!(
        focused.iter().any(|f| f == "f-fairness-min_parity_ratio")
            && focused.iter().any(|f| f == "preview-btn"),
        "Tab reaches the editor: {focused:?}"
    );

    // ---- Preview matches the what-if API ----------------------------------
    b.fill("#f-fairness-min_parity_ratio", "0.5").await;
    b.fill("#f-budget-daily", "40").await;
    b.fill("#f-fairness-justice_weight", "2").await;
    b.click("#preview-btn").await;
    b.wait_for(
        "the preview",
        "return document.querySelector('#preview-table');",
    )
    .await;
    let (_, mut proposed) = app.call("GET", "/v1/policy", None, None).await;
    proposed["fairness"]["min_parity_ratio"] = json!(0.5);
    proposed["budget"]["daily"] = json!(40);
    proposed["fairness"]["justice_weight"] = json!(2);
    let (s, whatif) = app
        .call(
            "POST",
            "/v1/policy/simulate",
            None,
            Some(&json!({ "policy": proposed })),
        )
        .await;
    assert_eq!(s, 200, "{whatif}");
    let shown = b
        .js(
            "const out = {};
             for (const tr of document.querySelectorAll('#preview-table tr[data-key]')) {
               out[tr.dataset.key] = [...tr.querySelectorAll('td')].map(td => [td.dataset.value, td.textContent]);
             }
             for (const s of document.querySelectorAll('#preview-changed [data-key]')) {
               out[s.dataset.key] = [[s.dataset.value, s.textContent]];
             }
             return out;",
            json!([]),
        )
        .await;
    let check = |key: &str, before: &Value, after: Option<&Value>, digits: i32| {
        let cells = shown[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} not shown: {shown}"));
        let sides: Vec<&Value> = std::iter::once(before).chain(after).collect();
        assert_eq!(cells.len(), sides.len(), "{key}");
        for (cell, want) in cells.iter().zip(sides) {
            let want = num(want);
            assert!(close(num(&cell[0]), want), "{key}: {cell} vs {want}");
            let text = cell[1].as_str().unwrap().trim_start_matches('v');
            let shown: f64 = text.parse().unwrap_or(f64::NAN);
            assert!(
                (shown - want).abs() <= 0.5 * 10f64.powi(-digits) + 1e-9,
                "{key}: shows {text}, API says {want}"
            );
        }
    };
    let (bf, af) = (&whatif["before"], &whatif["after"]);
    for (key, digits) in [
        ("decisions", 0),
        ("perks", 0),
        ("perk_rate", 4),
        ("spend", 2),
        ("expected_utility", 2),
        ("justice_cost", 2),
        ("policy_version", 0),
    ] {
        check(key, &bf[key], Some(&af[key]), digits);
    }
    for (pb, pa) in bf["parity"]
        .as_array()
        .unwrap()
        .iter()
        .zip(af["parity"].as_array().unwrap())
    {
        let attr = pb["attribute"].as_str().unwrap();
        for (xb, xa) in pb["bands"]
            .as_array()
            .unwrap()
            .iter()
            .zip(pa["bands"].as_array().unwrap())
        {
            let key = format!("parity.{attr}.{}", xb["band"].as_str().unwrap());
            check(&key, &xb["parity_ratio"], Some(&xa["parity_ratio"]), 3);
        }
        check(
            &format!("parity.{attr}.overall"),
            &pb["overall"],
            Some(&pa["overall"]),
            3,
        );
    }
    check("changed_decisions", &whatif["changed_decisions"], None, 0);
    check("changed_gestures", &whatif["changed_gestures"], None, 0);
    assert!(
        whatif["changed_decisions"].as_u64().unwrap() > 0,
        "a 40 EUR budget changes decisions: {whatif}"
    );
    assert_no_errors(&b, "after Preview", &[]).await;
    // For people: the dashboard with a preview, at 1280 px.
    b.screenshot(1280, 900, "dashboard-1280.png").await;

    // ---- a validation error appears next to its field ---------------------
    b.fill("#f-fairness-min_parity_ratio", "1.5").await;
    b.fill("#admin-key", ADMIN_KEY).await;
    b.click("#apply-btn").await;
    let msg = b
        .wait_for(
            "the field error",
            "return document.querySelector('#e-fairness-min_parity_ratio').textContent;",
        )
        .await;
    let mut bad = proposed.clone();
    bad["fairness"]["min_parity_ratio"] = json!(1.5);
    let (s, err) = app
        .call("PUT", "/v1/policy", Some("not-the-key"), Some(&bad))
        .await;
    assert_eq!(s, 401, "{err}");
    let (s, err) = app
        .call(
            "POST",
            "/v1/policy/simulate",
            None,
            Some(&json!({ "policy": bad })),
        )
        .await;
    assert_eq!(s, 422, "{err}");
    let api_msg = err["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["field"] == "policy.fairness.min_parity_ratio")
        .map(|d| d["message"].clone())
        .unwrap_or_else(|| panic!("{err}"));
    assert_eq!(msg, api_msg, "the API's message, next to the input");
    assert_eq!(
        b.js(
            "return document.querySelector('#f-fairness-min_parity_ratio').getAttribute('aria-invalid');",
            json!([])
        )
        .await,
        json!("true")
    );
    assert_eq!(b.text("#policy-version").await, "v1", "nothing applied");
    assert_no_errors(&b, "after a validation error", &[422]).await;

    // ---- Apply with a wrong key: an error, no new version ------------------
    b.fill("#f-fairness-min_parity_ratio", "0.7").await;
    b.fill("#admin-key", "wrong-key-0000000000").await;
    b.click("#apply-btn").await;
    let alert = b
        .wait_for(
            "the error alert",
            "const a = document.querySelector('#editor-alert'); return a.hidden ? '' : a.textContent;",
        )
        .await;
    assert!(alert.as_str().unwrap().contains("401"), "{alert}");
    assert!(!b.text("#e-admin-key").await.is_empty());
    let (_, p) = app.call("GET", "/v1/policy", None, None).await;
    assert_eq!(p["version"], json!(1));

    // ---- Apply with the admin key: the version is bumped -------------------
    b.fill("#admin-key", ADMIN_KEY).await;
    b.click("#apply-btn").await;
    b.wait_for(
        "the new version",
        "return document.querySelector('#policy-version').textContent === 'v2';",
    )
    .await;
    let status = b.text("#editor-status").await;
    assert!(status.contains("v2"), "{status}");
    let (_, p) = app.call("GET", "/v1/policy", None, None).await;
    assert_eq!(p["version"], json!(2));
    assert_eq!(p["fairness"]["min_parity_ratio"], json!(0.7));
    assert_eq!(p["budget"]["daily"], json!(40.0));
    let history = b
        .js(
            "const li = document.querySelector('#history li[data-version=\"2\"]'); return li && li.textContent;",
            json!([]),
        )
        .await;
    let history = history.as_str().unwrap_or_default();
    assert!(
        history.contains("admin") && history.contains("fairness.min_parity_ratio"),
        "history shows who and what: {history}"
    );
    assert_no_errors(&b, "after Apply", &[401]).await;

    // ---- 390 px phone ------------------------------------------------------
    b.viewport(390, 844).await;
    b.goto(&app.url("/")).await;
    b.wait_for("the page at 390 px", READY).await;
    assert_eq!(
        b.js("return window.innerWidth;", json!([])).await,
        json!(390)
    );
    let overflow = b
        .js("return document.documentElement.scrollWidth;", json!([]))
        .await;
    assert!(
        overflow.as_u64().unwrap() <= 390,
        "no horizontal scrolling at 390 px: {overflow}"
    );
    assert_eq!(
        b.js(
            "return document.querySelectorAll('#chart-series rect.bar-decisions').length > 0
                && document.querySelectorAll('figure.parity-chart rect').length > 0;",
            json!([])
        )
        .await,
        json!(true)
    );
    assert_no_errors(&b, "at 390 px", &[]).await;
    b.screenshot(390, 844, "dashboard-390.png").await;

    b.quit().await;
    app.stop().await;
}
