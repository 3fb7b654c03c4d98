//! The OpenAPI document is generated from the code and covers every route.

use serde_json::Value;

use crate::helpers::TestApp;

#[actix_web::test]
async fn the_openapi_document_covers_every_route_and_method() {
    let app = TestApp::start().await;
    let (status, body) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (method, path) in fairtreat::http::ROUTES {
        let op = &doc["paths"][path][method.to_lowercase()];
        assert!(
            op.is_object(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        fairtreat::http::ROUTES.len(),
        "no undocumented or stale operations"
    );
    for schema in [
        "InteractionInput",
        "Decision",
        "ErrorBody",
        "Scores",
        "Gesture",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema}"
        );
    }
    app.stop().await;
}

#[actix_web::test]
async fn every_listed_route_is_actually_served() {
    let app = TestApp::start().await;
    for (method, path) in fairtreat::http::ROUTES {
        let path = path.replace("{decision_id}", "00000000-0000-0000-0000-000000000000");
        let resp = app
            .client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                app.url(&path),
            )
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        assert_ne!(status, 405, "{method} {path}");
        assert!(
            !body.contains("no such route"),
            "{method} {path} is not routed: {body}"
        );
    }
    app.stop().await;
}
