//! Feature flags on a real server over real HTTP: the management API, OFREP single and
//! bulk evaluation (responses checked against the shapes of the OFREP OpenAPI document),
//! ETag / 304, the kill switch, authentication, and the DORA endpoint and gauges.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

mod util;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use util::TestServer;

const ENVS: &str =
    "    staging:\n      listen: 127.0.0.1:0\n    production:\n      listen: 127.0.0.1:0\n";

/// The OFREP OpenAPI document's `evaluationSuccess`: `key`, `reason`, `variant` strings,
/// a `value`, `metadata` values that are booleans, strings or numbers.
fn assert_evaluation_success(v: &Value) {
    assert!(v["key"].is_string(), "key: {v}");
    assert!(!v["value"].is_null(), "value: {v}");
    let reason = v["reason"]
        .as_str()
        .unwrap_or_else(|| panic!("reason: {v}"));
    assert!(
        [
            "STATIC",
            "TARGETING_MATCH",
            "SPLIT",
            "DISABLED",
            "DEFAULT",
            "UNKNOWN",
            "ERROR",
            "CACHED",
            "STALE"
        ]
        .contains(&reason),
        "{reason} is no OpenFeature reason"
    );
    assert!(v["variant"].is_string(), "variant: {v}");
    for (k, m) in v["metadata"]
        .as_object()
        .unwrap_or_else(|| panic!("metadata: {v}"))
    {
        assert!(
            m.is_boolean() || m.is_string() || m.is_number(),
            "metadata {k}: {m}"
        );
    }
    assert!(v.get("errorCode").is_none(), "{v}");
}

/// `evaluationFailure` (400) and `flagNotFound` (404): `key` and an `errorCode` of the
/// document's enums; `errorDetails` a string.
fn assert_evaluation_failure(v: &Value, code: &str) {
    assert!(v["key"].is_string(), "key: {v}");
    assert_eq!(v["errorCode"], code, "{v}");
    assert!(
        [
            "PARSE_ERROR",
            "TARGETING_KEY_MISSING",
            "INVALID_CONTEXT",
            "GENERAL",
            "FLAG_NOT_FOUND"
        ]
        .contains(&code)
    );
    assert!(v["errorDetails"].is_string(), "{v}");
}

struct Ofrep<'a> {
    s: &'a TestServer,
    http: reqwest::Client,
}

impl<'a> Ofrep<'a> {
    fn new(s: &'a TestServer) -> Self {
        Ofrep {
            s,
            http: reqwest::Client::new(),
        }
    }

    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        env: Option<&str>,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.s.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(e) = env {
            req = req.header("X-Slipway-Environment", e);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn one(&self, key: &str, body: Value) -> (u16, Value) {
        let (status, _, v) = self
            .post(
                &format!("/ofrep/v1/evaluate/flags/{key}"),
                Some(&self.s.admin),
                Some("production"),
                &[],
                &body.to_string(),
            )
            .await;
        (status, v)
    }
}

async fn put_flag(s: &TestServer, token: &str, env: &str, key: &str, flag: Value) -> (u16, Value) {
    s.call(
        "PUT",
        &format!("/api/v1/flags/{env}/{key}"),
        token,
        Some(flag),
    )
    .await
}

fn boolean(rollout: u32) -> Value {
    json!({
        "variants": [
            {"name": "on", "value": true, "weight": 100},
            {"name": "off", "value": false}
        ],
        "default_variant": "off",
        "rollout": rollout
    })
}

#[tokio::test]
async fn ofrep_single_evaluation_answers_with_the_protocol_s_reasons_codes_and_statuses() {
    let s = TestServer::start(ENVS).await;
    let bob = s.user("bob", "deployer").await;
    assert_eq!(
        put_flag(&s, &bob, "production", "everyone", boolean(100))
            .await
            .0,
        200
    );
    assert_eq!(
        put_flag(
            &s,
            &bob,
            "production",
            "Feature.flexibleRollout.10",
            boolean(10)
        )
        .await
        .0,
        200
    );
    let mut beta = boolean(100);
    beta["constraints"] =
        json!([{"context": "appVersion", "operator": "semver_gt", "values": ["2.0.0"]}]);
    assert_eq!(put_flag(&s, &bob, "production", "beta", beta).await.0, 200);
    let o = Ofrep::new(&s);

    let (status, v) = o.one("everyone", json!({"context": {}})).await;
    assert_eq!(status, 200, "{v}");
    assert_evaluation_success(&v);
    assert_eq!(
        (
            v["value"].clone(),
            v["reason"].clone(),
            v["variant"].clone()
        ),
        (json!(true), json!("STATIC"), json!("on"))
    );
    assert_eq!(v["metadata"]["environment"], "production");

    // Unleash's published vectors, over the wire: user 174 is in bucket 10, 499 in 32.
    let (status, v) = o
        .one(
            "Feature.flexibleRollout.10",
            json!({"context": {"targetingKey": "174"}}),
        )
        .await;
    assert_eq!(
        (status, v["value"].clone(), v["reason"].clone()),
        (200, json!(true), json!("SPLIT"))
    );
    let (_, v) = o
        .one(
            "Feature.flexibleRollout.10",
            json!({"context": {"targetingKey": "499"}}),
        )
        .await;
    assert_eq!(
        (v["value"].clone(), v["reason"].clone()),
        (json!(false), json!("DEFAULT"))
    );
    assert_evaluation_success(&v);

    let (_, v) = o
        .one("beta", json!({"context": {"appVersion": "2.1.0"}}))
        .await;
    assert_eq!(
        (v["value"].clone(), v["reason"].clone()),
        (json!(true), json!("TARGETING_MATCH"))
    );
    let (_, v) = o
        .one("beta", json!({"context": {"appVersion": "1.9.0"}}))
        .await;
    assert_eq!(
        (v["value"].clone(), v["reason"].clone()),
        (json!(false), json!("DEFAULT"))
    );

    let (status, v) = o
        .one("Feature.flexibleRollout.10", json!({"context": {}}))
        .await;
    assert_eq!(status, 400);
    assert_evaluation_failure(&v, "TARGETING_KEY_MISSING");
    let (status, v) = o.one("nope", json!({"context": {}})).await;
    assert_eq!(status, 404);
    assert_evaluation_failure(&v, "FLAG_NOT_FOUND");
    assert!(v["errorDetails"].as_str().unwrap().contains("nope"), "{v}");
    let (status, v) = o.one("everyone", json!({"context": "user-1"})).await;
    assert_eq!(status, 400);
    assert_evaluation_failure(&v, "INVALID_CONTEXT");
    let (status, v) = o
        .one("everyone", json!({"context": {"targetingKey": 42}}))
        .await;
    assert_eq!(status, 400);
    assert_evaluation_failure(&v, "INVALID_CONTEXT");
    let (status, _, v) = o
        .post(
            "/ofrep/v1/evaluate/flags/everyone",
            Some(&s.admin),
            Some("production"),
            &[],
            "{not json",
        )
        .await;
    assert_eq!(status, 400);
    assert_evaluation_failure(&v, "PARSE_ERROR");
    let (status, _, v) = o
        .post(
            "/ofrep/v1/evaluate/flags/everyone",
            Some(&s.admin),
            None,
            &[],
            "{}",
        )
        .await;
    assert_eq!(status, 400);
    assert_evaluation_failure(&v, "GENERAL");
    assert!(
        v["errorDetails"]
            .as_str()
            .unwrap()
            .contains("X-Slipway-Environment"),
        "{v}"
    );
    // Flags are per environment: staging has none.
    let (status, _, v) = o
        .post(
            "/ofrep/v1/evaluate/flags/everyone",
            Some(&s.admin),
            Some("staging"),
            &[],
            "{}",
        )
        .await;
    assert_eq!(status, 404, "{v}");
    s.stop().await;
}

#[tokio::test]
async fn ofrep_bulk_evaluation_has_an_etag_answers_304_until_a_flag_changes() {
    let s = TestServer::start(ENVS).await;
    let bob = s.user("bob", "deployer").await;
    put_flag(&s, &bob, "production", "a-flag", boolean(100)).await;
    put_flag(&s, &bob, "production", "b-split", boolean(50)).await;
    let o = Ofrep::new(&s);
    let body = r#"{"context":{"targetingKey":"user-7"}}"#;
    let (status, headers, v) = o
        .post(
            "/ofrep/v1/evaluate/flags",
            Some(&s.admin),
            Some("production"),
            &[],
            body,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let flags = v["flags"].as_array().unwrap();
    assert_eq!(
        flags
            .iter()
            .map(|f| f["key"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["a-flag", "b-split"]
    );
    flags.iter().for_each(assert_evaluation_success);
    let etag = headers["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    let (status, headers, v) = o
        .post(
            "/ofrep/v1/evaluate/flags",
            Some(&s.admin),
            Some("production"),
            &[("If-None-Match", &etag)],
            body,
        )
        .await;
    assert_eq!(status, 304, "{v}");
    assert_eq!(headers["etag"].to_str().unwrap(), etag);
    assert_eq!(v, json!(""));

    // Another context gets its own answer; without a targeting key the split flag errs
    // inside the list while the others are still evaluated.
    let (status, _, v) = o
        .post(
            "/ofrep/v1/evaluate/flags",
            Some(&s.admin),
            Some("production"),
            &[("If-None-Match", &etag)],
            "{}",
        )
        .await;
    assert_eq!(status, 200);
    assert_evaluation_success(&v["flags"][0]);
    assert_evaluation_failure(&v["flags"][1], "TARGETING_KEY_MISSING");

    let (status, _) = s
        .call(
            "POST",
            "/api/v1/flags/production/a-flag/kill",
            &bob,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, headers, v) = o
        .post(
            "/ofrep/v1/evaluate/flags",
            Some(&s.admin),
            Some("production"),
            &[("If-None-Match", &etag)],
            body,
        )
        .await;
    assert_eq!(status, 200, "a change must invalidate the tag");
    assert_ne!(headers["etag"].to_str().unwrap(), etag);
    assert_eq!(
        (
            v["flags"][0]["value"].clone(),
            v["flags"][0]["reason"].clone()
        ),
        (json!(false), json!("DISABLED"))
    );

    let (status, _, v) = o
        .post(
            "/ofrep/v1/evaluate/flags",
            Some(&s.admin),
            Some("production"),
            &[],
            r#"{"context": [1]}"#,
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        v["errorCode"], "INVALID_CONTEXT",
        "bulkEvaluationFailure: {v}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_kill_switch_takes_effect_for_evaluators_within_a_second() {
    let s = TestServer::start(ENVS).await;
    let bob = s.user("bob", "deployer").await;
    put_flag(&s, &bob, "production", "checkout", boolean(100)).await;
    let o = Ofrep::new(&s);
    assert_eq!(o.one("checkout", json!({})).await.1["value"], true);
    let killed = Instant::now();
    let (status, v) = s
        .call(
            "POST",
            "/api/v1/flags/production/checkout/kill",
            &bob,
            Some(json!({"killed": true})),
        )
        .await;
    assert_eq!((status, v["killed"].clone()), (200, json!(true)), "{v}");
    loop {
        let (_, v) = o
            .one("checkout", json!({"context": {"targetingKey": "u"}}))
            .await;
        if v["value"] == false {
            assert_eq!(v["reason"], "DISABLED");
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(1),
            "still on a second after the kill: {v}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(killed.elapsed() < Duration::from_secs(1));
    let (status, _) = s
        .call(
            "POST",
            "/api/v1/flags/production/checkout/kill",
            &bob,
            Some(json!({"killed": false})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(o.one("checkout", json!({})).await.1["value"], true);
    s.stop().await;
}

#[tokio::test]
async fn ofrep_refuses_a_missing_a_malformed_and_a_forged_token() {
    let s = TestServer::start(ENVS).await;
    let bob = s.user("bob", "deployer").await;
    put_flag(&s, &bob, "production", "checkout", boolean(100)).await;
    let o = Ofrep::new(&s);
    let forged = format!("slw_{}", "0".repeat(64));
    for token in [None, Some(""), Some(forged.as_str())] {
        for path in [
            "/ofrep/v1/evaluate/flags/checkout",
            "/ofrep/v1/evaluate/flags",
        ] {
            let (status, _, v) = o.post(path, token, Some("production"), &[], "{}").await;
            assert_eq!(status, 401, "{path} with {token:?}: {v}");
            assert!(v.get("value").is_none() && v.get("flags").is_none(), "{v}");
        }
    }
    // A viewer's token is enough to evaluate.
    let viewer = s.user("vera", "viewer").await;
    let (status, _, _) = o
        .post(
            "/ofrep/v1/evaluate/flags/checkout",
            Some(&viewer),
            Some("production"),
            &[],
            "{}",
        )
        .await;
    assert_eq!(status, 200);
    s.stop().await;
}

#[tokio::test]
async fn the_flags_api_checks_roles_and_input_and_records_every_change() {
    let s = TestServer::start(ENVS).await;
    let bob = s.user("bob", "deployer").await;
    let viewer = s.user("vera", "viewer").await;
    let (status, v) = put_flag(&s, &viewer, "production", "checkout", boolean(100)).await;
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (403, json!("forbidden")),
        "{v}"
    );

    let mut bad = boolean(100);
    bad["variants"][1]["weight"] = json!(5);
    let (status, v) = put_flag(&s, &bob, "production", "checkout", bad).await;
    assert_eq!(status, 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("weights sum to 105, they must sum to 100"),
        "{v}"
    );
    let mut bad = boolean(100);
    bad["constraints"] =
        json!([{"context": "appVersion", "operator": "semver_lt", "values": ["two"]}]);
    let (status, v) = put_flag(&s, &bob, "production", "checkout", bad).await;
    assert_eq!(status, 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("constraints[0].values: \"two\" is not a semantic version"),
        "{v}"
    );
    let (status, v) = put_flag(&s, &bob, "moon", "checkout", boolean(100)).await;
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (404, json!("unknown_environment"))
    );
    let (status, v) = s
        .call(
            "POST",
            "/api/v1/flags/production/ghost/rollout",
            &bob,
            Some(json!({"percent": 5})),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (404, json!("flag_not_found"))
    );

    assert_eq!(
        put_flag(&s, &bob, "production", "checkout", boolean(100))
            .await
            .0,
        200
    );
    let (status, v) = s
        .call(
            "POST",
            "/api/v1/flags/production/checkout/rollout",
            &s.admin,
            Some(json!({"percent": 25})),
        )
        .await;
    assert_eq!(
        (status, v["rollout"].clone(), v["version"].clone()),
        (200, json!(25), json!(2))
    );
    let (status, v) = s
        .call(
            "POST",
            "/api/v1/flags/production/checkout/rollout",
            &bob,
            Some(json!({"percent": 101})),
        )
        .await;
    assert_eq!(status, 400, "{v}");

    let (status, v) = s
        .call("GET", "/api/v1/flags/production/checkout", &viewer, None)
        .await;
    assert_eq!(status, 200);
    let history: Vec<_> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["action"].as_str().unwrap().to_owned(),
                c["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        history,
        [
            ("rollout".to_owned(), "admin".to_owned()),
            ("set".to_owned(), "bob".to_owned())
        ]
    );
    let (_, v) = s
        .call("GET", "/api/v1/flags?environment=staging", &viewer, None)
        .await;
    assert_eq!(v["flags"], json!([]));
    let (_, v) = s.call("GET", "/api/v1/flags", &viewer, None).await;
    assert_eq!(v["flags"][0]["key"], "checkout");

    // Flags and their history outlive a restart.
    let mut s = s;
    s.restart().await;
    let (_, v) = s
        .call("GET", "/api/v1/flags/production/checkout", &viewer, None)
        .await;
    assert_eq!(
        (v["rollout"].clone(), v["history"].as_array().unwrap().len()),
        (json!(25), 2)
    );
    s.stop().await;
}

#[tokio::test]
async fn dora_figures_over_the_api_and_as_prometheus_gauges() {
    let s = TestServer::start(ENVS).await;
    s.deploy_and_wait("staging", "v1", "success").await;
    let (status, v) = s
        .call(
            "GET",
            "/api/v1/metrics/dora?environment=staging&since=7d",
            &s.admin,
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let r = &v["reports"][0];
    assert_eq!(
        (r["app"].clone(), r["environment"].clone()),
        (json!("web"), json!("staging"))
    );
    assert_eq!(r["deployment_frequency"]["deployments"], 1);
    assert_eq!(r["change_fail_rate"]["rate"], 0.0);
    assert_eq!(r["change_fail_rate"]["band"], "elite");
    let (status, v) = s
        .call("GET", "/api/v1/metrics/dora?since=soon", &s.admin, None)
        .await;
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (400, json!("invalid_duration"))
    );
    for (query, code) in [
        ("app=nope", "unknown_app"),
        ("environment=nope", "unknown_environment"),
    ] {
        let (status, v) = s
            .call(
                "GET",
                &format!("/api/v1/metrics/dora?{query}"),
                &s.admin,
                None,
            )
            .await;
        assert_eq!(
            (status, v["error"]["code"].clone()),
            (404, json!(code)),
            "{v}"
        );
    }

    let text = reqwest::get(format!("{}/metrics", s.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("slipway_dora_deployments_per_day{app=\"web\",environment=\"staging\"}")
        })
        .unwrap_or_else(|| panic!("no DORA gauge in:\n{text}"));
    let per_day: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((per_day - 1.0 / 30.0).abs() < 1e-6, "{line}");
    assert!(
        text.contains("slipway_dora_change_fail_rate{app=\"web\",environment=\"staging\"} 0"),
        "{text}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_replaced_token_stops_evaluating_within_a_second_or_two() {
    let s = TestServer::start(ENVS).await;
    let old = s.user("bob", "deployer").await;
    put_flag(&s, &old, "production", "checkout", boolean(100)).await;
    let o = Ofrep::new(&s);
    let eval = |token: String| {
        let o = &o;
        async move {
            o.post(
                "/ofrep/v1/evaluate/flags/checkout",
                Some(&token),
                Some("production"),
                &[],
                "{}",
            )
            .await
            .0
        }
    };
    assert_eq!(eval(old.clone()).await, 200);
    let new = s.user("bob", "deployer").await;
    let replaced = Instant::now();
    while eval(old.clone()).await != 401 {
        assert!(
            replaced.elapsed() < Duration::from_secs(2),
            "the old token still evaluates"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(eval(new).await, 200);
    s.stop().await;
}

/// The OpenAPI document describes the flag and DORA endpoints as they answer: each
/// operation's parameters (environments named as configured), bodies and schemas.
#[tokio::test]
async fn the_openapi_document_has_the_flag_and_dora_endpoints_with_their_schemas() {
    let s = TestServer::start(ENVS).await;
    let doc: Value = reqwest::get(format!("{}/api/v1/openapi.json", s.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let envs = json!(["production", "staging"]);
    let schema_ref = |name: &str| json!({ "$ref": format!("#/components/schemas/{name}") });
    let operations = [
        ("/api/v1/flags", "get", "FlagList", None, false),
        ("/api/v1/flags/{env}/{key}", "get", "FlagView", None, false),
        (
            "/api/v1/flags/{env}/{key}",
            "put",
            "FlagView",
            Some("FlagDefinition"),
            true,
        ),
        (
            "/api/v1/flags/{env}/{key}/rollout",
            "post",
            "FlagView",
            Some("RolloutBody"),
            true,
        ),
        (
            "/api/v1/flags/{env}/{key}/kill",
            "post",
            "FlagView",
            Some("KillBody"),
            true,
        ),
        ("/api/v1/metrics/dora", "get", "DoraView", None, false),
    ];
    for (path, method, body, request, needs_role) in operations {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is missing");
        assert_eq!(
            op["responses"]["200"]["content"]["application/json"]["schema"],
            schema_ref(body),
            "{method} {path}"
        );
        let mut errors = vec!["400", "401", "404"];
        if needs_role {
            errors.push("403");
        }
        for code in errors {
            assert_eq!(
                op["responses"][code]["content"]["application/json"]["schema"],
                schema_ref("ErrorBody"),
                "{method} {path} {code}"
            );
        }
        assert_eq!(
            op["requestBody"]["content"]["application/json"]["schema"],
            request.map_or(Value::Null, schema_ref),
            "{method} {path}"
        );
        for param in op["parameters"].as_array().unwrap() {
            if param["name"] == "env" || param["name"] == "environment" {
                assert_eq!(param["schema"]["enum"], envs, "{method} {path}");
            }
        }
    }
    let names = |method: &str, path: &str| -> Vec<String> {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names("get", "/api/v1/flags"), ["environment"]);
    assert_eq!(
        names("post", "/api/v1/flags/{env}/{key}/kill"),
        ["env", "key"]
    );
    assert_eq!(
        names("get", "/api/v1/metrics/dora"),
        ["app", "environment", "since", "rollback_within"]
    );

    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["Operator"]["enum"].as_array().map(Vec::len),
        Some(11),
        "{}",
        schemas["Operator"]
    );
    assert_eq!(
        schemas["Band"]["enum"],
        json!(["elite", "high", "medium", "low"])
    );
    // A variant's value is any JSON a flag serves but null: booleans and strings as much
    // as objects.
    let value = &schemas["Variant"]["properties"]["value"];
    assert!(value.get("type").is_none(), "{}", schemas["Variant"]);
    assert_eq!(value["not"], json!({ "type": "null" }));
    // PUT takes the flag without its key, which the path gives.
    assert!(schemas["FlagDefinition"]["properties"]["key"].is_null());
    assert!(schemas["FlagDefinition"]["properties"]["variants"].is_object());
    assert_eq!(
        schemas["FailureCause"]["enum"],
        json!(["failure", "aborted", "manual_rollback"])
    );
    // What is served names only fields the schemas declare.
    let declared = |name: &str| -> Vec<String> {
        let schema = &schemas[name];
        let parts = schema["allOf"].as_array().cloned().unwrap_or_default();
        let mut fields: Vec<String> = Vec::new();
        for part in parts.iter().chain([schema]) {
            let part = match part["$ref"].as_str() {
                Some(r) => &schemas[r.rsplit('/').next().unwrap()],
                None => part,
            };
            if let Some(props) = part["properties"].as_object() {
                fields.extend(props.keys().cloned());
            }
        }
        fields
    };
    let assert_declared = |name: &str, served: &Value| {
        let fields = declared(name);
        for key in served.as_object().unwrap().keys() {
            assert!(
                fields.contains(key),
                "{name} does not declare {key}: {served}"
            );
        }
    };
    let mut flag = boolean(50);
    flag["description"] = json!("served as documented");
    flag["constraints"] = json!([{"context": "country", "operator": "in", "values": ["NL"]}]);
    let (status, v) = put_flag(&s, &s.admin, "staging", "documented", flag).await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = s
        .call("GET", "/api/v1/flags/staging/documented", &s.admin, None)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_declared("FlagView", &v);
    assert_declared("ChangeView", &v["history"][0]);
    assert_declared("Flag", &v["history"][0]["flag"]);
    assert_declared("Variant", &v["variants"][0]);
    assert_declared("Constraint", &v["constraints"][0]);

    s.deploy_and_wait("staging", "v1", "success").await;
    let (status, v) = s.call("GET", "/api/v1/metrics/dora", &s.admin, None).await;
    assert_eq!(status, 200, "{v}");
    assert_declared("DoraView", &v);
    let report = &v["reports"][0];
    assert_declared("Report", report);
    for (field, schema) in [
        ("deployment_frequency", "Frequency"),
        ("lead_time", "LeadTime"),
        ("change_fail_rate", "FailRate"),
        ("recovery_time", "Recovery"),
    ] {
        assert_declared(schema, &report[field]);
    }
    s.stop().await;
}
