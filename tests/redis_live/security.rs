//! TESTPLAN §4.5 S2 and S3 with real processes: canary secrets never reach
//! logs or response bodies, whatever Redis does, and the service runs as a
//! Redis ACL user limited to its key prefix and the commands it uses.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::interaction;
use crate::redis_harness::{self as h, RedisOptions, RedisServer, Replica};

/// Exactly the commands the store sends, directly or from its scripts.
pub const ACL_COMMANDS: &str = "+evalsha +script|load +ping +get +set +exists \
    +hget +hmget +hset +hgetall +hincrby +pexpire \
    +lrange +lpush +rpush +ltrim +zadd +zrange +zremrangebyscore +xadd +xrange +xrevrange";

fn acl_user(redis: &RedisServer, user: &str, password: &str, commands: &str) {
    let mut args = vec!["ACL", "SETUSER", user, "reset", "on"];
    let pass = format!(">{password}");
    args.push(&pass);
    args.extend(["~ft:*", "resetchannels", "-@all"]);
    args.extend(commands.split_whitespace());
    let out = redis.cli(&args);
    assert!(out.trim() == "OK", "ACL SETUSER: {out}");
}

fn body(iid: &str) -> Value {
    let mut v = interaction();
    v["interaction_id"] = json!(iid);
    v["customer"]["id"] = json!(format!("cust-{iid}"));
    v
}

/// Every response body seen, for the canary check.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    async fn call(
        &mut self,
        client: &reqwest::Client,
        method: reqwest::Method,
        url: String,
        auth: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut req = client.request(method, url);
        if let Some(a) = auth {
            req = req.bearer_auth(a);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.expect("answered");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        self.0.push(text.clone());
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

fn assert_no_canary(what: &str, text: &str, canaries: &[&str]) {
    for c in canaries {
        assert!(!text.contains(c), "{what} contains the canary {c}:\n{text}");
    }
    assert!(
        !text.contains("CANARY-"),
        "{what} contains a canary:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_secrets_never_reach_logs_or_bodies_and_an_acl_user_limited_to_the_prefix_is_enough()
{
    let _serial = h::heavy().await;
    let admin_pw = format!("CANARY-REDIS-admin-{}", std::process::id());
    let user_pw = format!("CANARY-REDIS-user-{}", std::process::id());
    let wrong_pw = format!("CANARY-REDIS-wrong-{}", std::process::id());
    let api_key = format!("CANARY-API-{}", std::process::id());
    let mut redis = RedisServer::start_with(RedisOptions {
        password: Some(admin_pw.clone()),
        persistent: true,
        ..Default::default()
    });
    acl_user(&redis, "fairtreat", &user_pw, ACL_COMMANDS);
    let url = format!("redis://fairtreat:{user_pw}@127.0.0.1:{}", redis.port);
    let replica = Replica::start(
        &url,
        None,
        &[("FAIRTREAT_ADMIN_KEY", &api_key), ("RUST_LOG", "debug")],
    );
    let client = reqwest::Client::new();
    let mut seen = Seen::default();
    use reqwest::Method;

    // Everything works as the restricted user.
    let (s, d) = seen
        .call(
            &client,
            Method::POST,
            replica.url("/v1/decisions"),
            None,
            Some(&body("s-1")),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(d["degraded"], false, "{d}");
    assert!(
        d["gesture"].is_object(),
        "a grant through the ACL user: {d}"
    );
    let (s, again) = seen
        .call(
            &client,
            Method::POST,
            replica.url("/v1/decisions"),
            None,
            Some(&body("s-1")),
        )
        .await;
    assert_eq!((s, &again), (200, &d), "replayed");
    let mut other = body("s-1");
    other["text"] = json!("another body");
    let (s, _) = seen
        .call(
            &client,
            Method::POST,
            replica.url("/v1/decisions"),
            None,
            Some(&other),
        )
        .await;
    assert_eq!(s, 422);
    let id = d["decision_id"].as_str().unwrap();
    let (s, found) = seen
        .call(
            &client,
            Method::GET,
            replica.url(&format!("/v1/decisions/{id}")),
            None,
            None,
        )
        .await;
    assert_eq!((s, &found), (200, &d));
    let (s, policy) = seen
        .call(&client, Method::GET, replica.url("/v1/policy"), None, None)
        .await;
    assert_eq!(s, 200);
    let (s, _) = seen
        .call(
            &client,
            Method::PUT,
            replica.url("/v1/policy"),
            Some("wrong-key"),
            Some(&policy),
        )
        .await;
    assert_eq!(s, 401);
    let (s, change) = seen
        .call(
            &client,
            Method::PUT,
            replica.url("/v1/policy"),
            Some(&api_key),
            Some(&policy),
        )
        .await;
    assert_eq!(s, 200, "a policy change through the ACL user: {change}");
    let (s, history) = seen
        .call(
            &client,
            Method::GET,
            replica.url("/v1/policy/history"),
            None,
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(history[0]["version"], change["version"]);
    // The what-if preview reads recent interactions from the decision log.
    let (s, whatif) = seen
        .call(
            &client,
            Method::POST,
            replica.url("/v1/policy/simulate"),
            None,
            Some(&json!({ "policy": change["policy"] })),
        )
        .await;
    assert_eq!(s, 200, "{whatif}");
    assert_eq!(whatif["replayed"], 1, "the one decision made: {whatif}");
    let (s, fb) = seen
        .call(
            &client,
            Method::POST,
            replica.url("/v1/feedback"),
            None,
            Some(&json!({ "decision_id": id, "reward": 1.0 })),
        )
        .await;
    assert_eq!(s, 201, "{fb}");
    for path in [
        "/readyz",
        "/metrics",
        "/healthz",
        "/v1/fairness/report?attribute=tier",
        "/v1/dashboard/summary",
    ] {
        let (s, b) = seen
            .call(&client, Method::GET, replica.url(path), None, None)
            .await;
        assert_eq!(s, 200, "{path}: {b}");
    }

    // The ACL user cannot do anything else.
    for cmd in [
        vec!["FLUSHALL"],
        vec!["KEYS", "*"],
        vec!["CONFIG", "GET", "requirepass"],
        vec!["GET", "other:key"],
    ] {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &redis.port.to_string()])
            .args([
                "--user",
                "fairtreat",
                "--pass",
                &user_pw,
                "--no-auth-warning",
            ])
            .args(&cmd)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("NOPERM"), "{cmd:?} must be refused: {text}");
    }

    // Redis goes away: degraded answers and a 503 that says so, no secret.
    redis.kill();
    let (s, d) = seen
        .call(
            &client,
            Method::POST,
            replica.url("/v1/decisions"),
            None,
            Some(&body("s-2")),
        )
        .await;
    assert_eq!((s, d["degraded"].clone()), (200, json!(true)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, ready) = seen
        .call(&client, Method::GET, replica.url("/readyz"), None, None)
        .await;
    assert_eq!(s, 503, "{ready}");
    let (s, _) = seen
        .call(
            &client,
            Method::GET,
            replica.url(&format!("/v1/decisions/{id}")),
            None,
            None,
        )
        .await;
    assert_eq!(s, 503);
    tokio::task::block_in_place(|| redis.restart());

    // A wrong password: refused by Redis, reported without the password.
    let wrong = Replica::start(
        &format!("redis://fairtreat:{wrong_pw}@127.0.0.1:{}", redis.port),
        None,
        &[("RUST_LOG", "debug")],
    );
    let (s, d) = seen
        .call(
            &client,
            Method::POST,
            wrong.url("/v1/decisions"),
            None,
            Some(&body("s-3")),
        )
        .await;
    assert_eq!((s, d["degraded"].clone()), (200, json!(true)), "{d}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, ready) = seen
        .call(&client, Method::GET, wrong.url("/readyz"), None, None)
        .await;
    assert_eq!(s, 503, "{ready}");

    // A URL that cannot be used stops the binary, without quoting it.
    let bad = Command::new(env!("CARGO_BIN_EXE_fairtreat"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("REDIS_URL", format!("rediss://:{wrong_pw}@127.0.0.1:1"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let bad_out = format!(
        "{}{}",
        String::from_utf8_lossy(&bad.stdout),
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(bad_out.contains("REDIS_URL"), "{bad_out}");

    tokio::time::sleep(Duration::from_millis(200)).await;
    let canaries = [&admin_pw, &user_pw, &wrong_pw, &api_key].map(|s| s.as_str());
    for (n, b) in seen.0.iter().enumerate() {
        assert_no_canary(&format!("response body {n}"), b, &canaries);
    }
    let logs = replica.logs();
    assert!(logs.contains("Redis unusable"), "the outage is logged");
    assert_no_canary("replica logs", &logs, &canaries);
    assert_no_canary("wrong-password replica logs", &wrong.logs(), &canaries);
    assert_no_canary("refused start", &bad_out, &canaries);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_the_acl_forbids_fails_closed_with_a_degraded_answer_and_nothing_half_applied() {
    let _serial = h::heavy().await;
    // Each write only the commit script runs, on a decision that grants: the
    // script checks it before its first write, so the refusal (NOPERM)
    // leaves nothing of the decision behind, whichever command it is.
    for forbidden in ["zadd", "rpush", "xadd", "zremrangebyscore"] {
        let redis = RedisServer::start();
        let grant = format!("+{forbidden}");
        let crippled: Vec<&str> = ACL_COMMANDS
            .split_whitespace()
            .filter(|c| *c != grant)
            .collect();
        assert_eq!(crippled.len() + 1, ACL_COMMANDS.split_whitespace().count());
        let crippled = crippled.join(" ");
        acl_user(&redis, "crippled", "crippled-pw", &crippled);
        let replica = Replica::start(
            &format!("redis://crippled:crippled-pw@127.0.0.1:{}", redis.port),
            None,
            &[],
        );
        let client = reqwest::Client::new();
        for n in 0..3 {
            let resp = client
                .post(replica.url("/v1/decisions"))
                .json(&body(&format!("n-{n}")))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "without {forbidden}");
            let d: Value = resp.json().await.unwrap();
            assert_eq!(d["degraded"], true, "without {forbidden}: {d}");
            assert!(d["gesture"].is_null(), "without {forbidden}: {d}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let logs = replica.logs();
        let refusal = format!("may not run {}", forbidden.to_uppercase());
        assert!(
            logs.contains("failed closed") && logs.contains(&refusal),
            "the refusal of {forbidden} is logged: {logs}"
        );
        // Nothing half-applied: no idempotency record, no decision log.
        for pattern in ["ft:*idem*", "ft:{s*}:log", "ft:*:fb:*"] {
            assert_eq!(
                redis.cli(&["--scan", "--pattern", pattern]).trim(),
                "",
                "without {forbidden}: {pattern}"
            );
        }
    }
}
