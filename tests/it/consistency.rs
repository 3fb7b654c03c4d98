//! Consistency over HTTP, as a property: interactions that differ only in
//! audience, public flag, channel or group attributes get the same gesture.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

use crate::helpers::TestApp;

fn channel() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "review_site",
        "social",
        "email",
        "chat",
        "phone",
        "in_app",
        "survey",
    ])
}

fn view() -> impl Strategy<Value = (bool, u64, &'static str, &'static str, &'static str)> {
    (
        any::<bool>(),
        prop_oneof![Just(0u64), 1u64..100, 100u64..10_000_000],
        channel(),
        prop::sample::select(vec!["gold", "silver", "bronze"]),
        prop::sample::select(vec!["EU", "US", "APAC"]),
    )
}

fn case() -> impl Strategy<Value = (u8, u32, f64, f64, &'static str, &'static str)> {
    (
        1u8..=5,
        0u32..3000,
        0.0f64..5000.0,
        1.0f64..400.0,
        prop::sample::select(vec!["complaint", "review", "mention", "praise", "question"]),
        prop::sample::select(vec![
            "Order arrived broken and nobody answers my emails",
            "The delivery was three days late.",
            "Terrible experience, I want a refund now!",
            "It was ok I guess",
            "Love it, thank you!",
        ]),
    )
}

fn body(
    id: String,
    cust: &str,
    c: &(u8, u32, f64, f64, &str, &str),
    v: &(bool, u64, &str, &str, &str),
) -> Value {
    json!({
        "interaction_id": id,
        "customer": {"id": cust, "tenure_days": c.1, "lifetime_value": c.2,
                     "attributes": {"tier": v.3, "region": v.4}},
        "channel": v.2, "public": v.0, "audience": v.1,
        "kind": c.4, "rating": c.0, "text": c.5, "order_value": c.3
    })
}

fn lists_parity(d: &Value) -> bool {
    d["constraints"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "parity")
}

#[test]
fn audience_visibility_channel_and_attributes_never_change_the_gesture_unless_parity_says_so() {
    let app = actix_web::rt::System::new().block_on(TestApp::start());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 96,
        ..Config::default()
    });
    let counter = std::sync::atomic::AtomicUsize::new(0);
    let parity_cases = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&(case(), view(), view()), |(c, a, b)| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // A fresh customer per side, so per-customer caps never bind.
            let da = rt.block_on(app.post(
                "/v1/decisions",
                &body(format!("p{n}a"), &format!("pc{n}a"), &c, &a),
            ));
            let db = rt.block_on(app.post(
                "/v1/decisions",
                &body(format!("p{n}b"), &format!("pc{n}b"), &c, &b),
            ));
            prop_assert_eq!(da.0, 200);
            prop_assert_eq!(db.0, 200);
            prop_assert_eq!(&da.1["scores"], &db.1["scores"]);
            // Conditional parity may give or withhold a perk by group, and
            // then says so; nothing else may change the gesture.
            if lists_parity(&da.1) || lists_parity(&db.1) {
                parity_cases.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            } else {
                prop_assert_eq!(
                    &da.1["gesture"]["kind"],
                    &db.1["gesture"]["kind"],
                    "{} vs {}",
                    da.1,
                    db.1
                );
                prop_assert_eq!(&da.1["gesture"]["value"], &db.1["gesture"]["value"]);
            }
            Ok(())
        })
        .unwrap();
    let n = counter.load(std::sync::atomic::Ordering::Relaxed);
    let p = parity_cases.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        p * 4 < n,
        "parity bound in {p} of {n} cases: the property was barely exercised"
    );
    actix_web::rt::System::new().block_on(app.stop());
}
