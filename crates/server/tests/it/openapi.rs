//! `/openapi.json` is generated from the route table that builds the router: every route the
//! router serves is in the document and every documented operation is served.

use crate::support;

use axum::body::Body;
use serde_json::Value;
use std::collections::BTreeSet;
use support::TestServer;

/// `path` with sample values for its parameters.
fn sample(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "nosuch" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn the_document_and_the_router_come_from_one_table() {
    let server = TestServer::new(&[]);
    let doc = server.get("/openapi.json").json();
    let table = mneme_server::http::routes::table(&server.state.config);
    assert_eq!(
        doc,
        mneme_server::http::document(&table),
        "the served document is the table's"
    );

    // Every route of the table (the router's) is in the document with each of its operations,
    // except the catch-all of unknown session actions, which is not an endpoint.
    let documented: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut routed = BTreeSet::new();
    let mut undocumented = Vec::new();
    for route in &table {
        if route.ops.is_empty() {
            undocumented.push(route.path);
            continue;
        }
        routed.insert(route.path);
        for op in &route.ops {
            assert!(
                doc["paths"][route.path][op.method].is_object(),
                "{} {}",
                op.method,
                route.path
            );
        }
    }
    assert_eq!(undocumented, ["/sessions/{session_id}/{*action}"]);
    assert_eq!(routed, documented);

    // Every documented operation is served: the router answers it with its handler, not with
    // its fallback or a 405.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let uri = sample(path);
            let reply = server.call(
                &method.to_uppercase(),
                &uri,
                &[("content-type", "application/json")],
                Body::from(if method == "get" || method == "delete" {
                    ""
                } else {
                    "{}"
                }),
            );
            assert_ne!(reply.status, 405, "{method} {path}: {}", reply.text());
            if reply.status == 404 {
                let body = reply.json();
                assert_ne!(
                    body["detail"], "Not Found",
                    "{method} {path} fell to the fallback"
                );
                assert_ne!(
                    body["detail"], "404: Not Found",
                    "{method} {path} fell to the fallback"
                );
            }
        }
    }
    // The fallback itself is what the checks above tell apart.
    assert_eq!(server.get("/no/such/route").json()["detail"], "Not Found");
    assert_eq!(
        server.get("/api/v1/no-such-route").json()["detail"],
        "404: Not Found"
    );
}

#[test]
fn the_document_describes_the_request_types() {
    let server = TestServer::new(&[]);
    let doc = server.get("/openapi.json").json();
    let schemas = &doc["components"]["schemas"];
    let mode: Vec<&str> = schemas["QueryRequest"]["properties"]["mode"]["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", schemas["QueryRequest"]["properties"]["mode"]))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for name in ["keyword", "terms", "vector", "hybrid"] {
        assert!(mode.contains(&name), "mode {name} in {mode:?}");
    }
    assert_eq!(
        schemas["QueryRequest"]["required"],
        serde_json::json!(["query"])
    );
    let body = &doc["paths"]["/sessions/{session_id}/observe"]["post"]["requestBody"];
    assert_eq!(
        body["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ObservationData"
    );
    assert!(schemas["ObservationData"]["properties"]["strings"].is_object());
    let extend: Vec<&Value> = doc["paths"]["/sessions/{session_id}/extend"]["post"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["in"] == "query")
        .collect();
    assert_eq!(extend.len(), 1);
    assert_eq!(extend[0]["name"], "ttl_seconds");
    // Every referenced schema is in the components.
    let text = doc.to_string();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = &reference[..reference.find('"').unwrap()];
        assert!(
            schemas[name].is_object(),
            "schema {name} is referenced but missing"
        );
    }
}

#[test]
fn every_json_answer_has_its_schema() {
    let server = TestServer::new(&[]);
    let doc = server.get("/openapi.json").json();
    let mut untyped = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            assert_eq!(responses.len(), 1, "{method} {path}: one success answer");
            let (_, success) = responses.iter().next().unwrap();
            let content = success["content"].as_object().unwrap();
            assert!(!content.is_empty(), "{method} {path}: a media type");
            if let Some(json) = content.get("application/json") {
                match json["schema"]["$ref"].as_str() {
                    Some(reference) => {
                        let name = reference.trim_start_matches("#/components/schemas/");
                        assert!(
                            doc["components"]["schemas"][name]["properties"].is_object(),
                            "{method} {path}: {name} describes its fields"
                        );
                    }
                    None => {
                        untyped.insert(format!("{method} {path}"));
                    }
                }
            }
        }
    }
    // The JSON answers without a schema of their own, each for a reason: the document itself,
    // KATO's free-form metrics object, an export (its own archive format, versioned in
    // docs/compatibility.md), a WebSocket upgrade and the CLI's private command route.
    let expected: BTreeSet<String> = [
        "get /openapi.json",
        "get /metrics",
        "get /api/v2/projects/{project_id}/export",
        "get /ws/events",
        "post /mneme/seq",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(untyped, expected);
    // A non-JSON answer is named by its media type.
    let stream = &doc["paths"]["/api/v2/projects/{project_id}/query/stream"]["post"]["responses"]["200"]
        ["content"];
    assert!(stream["text/event-stream"].is_object(), "{stream}");
    assert!(stream.get("application/json").is_none(), "{stream}");
}
