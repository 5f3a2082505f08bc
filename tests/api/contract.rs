//! The proto's RPCs, the REST routes and the OpenAPI document agree: no RPC lacks a REST
//! operation (or a documented reason), no route is undocumented, and every documented route
//! answers on the live server, with and without its trailing slash.

use std::collections::BTreeSet;

use prost::Message as _;
use videoflix_gateway::{OPERATIONS, UNMAPPED_RPCS};

use crate::helpers::{Backend, spawn_app};

fn proto_rpcs() -> BTreeSet<String> {
    let fds = prost_types::FileDescriptorSet::decode(videoflix::grpc::FILE_DESCRIPTOR_SET)
        .expect("descriptor set");
    let mut rpcs = BTreeSet::new();
    for file in fds.file {
        let package = file.package().to_owned();
        for service in file.service {
            for method in &service.method {
                rpcs.insert(format!("{package}.{}/{}", service.name(), method.name()));
            }
        }
    }
    rpcs
}

#[test]
fn every_rpc_has_a_rest_operation_or_a_reason() {
    let rpcs = proto_rpcs();
    let mapped: BTreeSet<String> = OPERATIONS.iter().map(|o| o.rpc.to_owned()).collect();
    let unmapped: BTreeSet<String> = UNMAPPED_RPCS.iter().map(|(r, _)| (*r).to_owned()).collect();
    for rpc in &rpcs {
        assert!(
            mapped.contains(rpc) ^ unmapped.contains(rpc),
            "{rpc} must be either mapped to REST or listed as unmapped (not both)"
        );
    }
    for rpc in mapped.union(&unmapped) {
        assert!(rpcs.contains(rpc), "{rpc} is not in the proto");
    }
}

#[test]
fn the_openapi_document_lists_exactly_the_rest_operations() {
    let doc = serde_json::to_value(videoflix_gateway::openapi()).expect("json");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("item").keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let declared: BTreeSet<(String, String)> = OPERATIONS
        .iter()
        .map(|o| (o.method.to_owned(), o.path.to_owned()))
        .collect();
    assert_eq!(documented, declared);
    // Every operation documents its error body.
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|code| code.starts_with('4')),
                "{method} {path} documents no error"
            );
        }
    }
}

#[tokio::test]
async fn every_documented_route_answers_with_and_without_its_slash() {
    let app = spawn_app(Backend::Embedded).await;
    for op in OPERATIONS {
        for path in [op.path.to_owned(), op.path.trim_end_matches('/').to_owned()] {
            let method = reqwest::Method::from_bytes(op.method.as_bytes()).expect("method");
            let response = app
                .http
                .request(method, format!("{}{path}", app.base))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .expect("request");
            let status = response.status().as_u16();
            assert!(
                !matches!(status, 404 | 405) && status < 500,
                "{} {path} answered {status}",
                op.method
            );
        }
    }
}
