//! The other protocols on the one port: gRPC-Web over HTTP/1.1, server reflection (v1 and
//! v1alpha), health, and REST over HTTP/2.

use std::{collections::HashSet, time::Duration};

use faultline::pb;
use prost::Message;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

const GRPC_WEB: &str = "application/grpc-web+proto";

fn web_frame(msg: &impl Message) -> Vec<u8> {
    let bytes = msg.encode_to_vec();
    let mut out = vec![0u8];
    out.extend((bytes.len() as u32).to_be_bytes());
    out.extend(bytes);
    out
}

/// Splits a gRPC-Web body into (flag, payload) frames.
fn web_frames(body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut i = 0;
    while i < body.len() {
        assert!(
            i + 5 <= body.len(),
            "truncated gRPC-Web frame header at {i} in {body:?}"
        );
        let flag = body[i];
        let len = u32::from_be_bytes(body[i + 1..i + 5].try_into().unwrap()) as usize;
        assert!(
            i + 5 + len <= body.len(),
            "truncated gRPC-Web frame at {i} (len {len}) in {body:?}"
        );
        frames.push((flag, body[i + 5..i + 5 + len].to_vec()));
        i += 5 + len;
    }
    frames
}

struct WebReply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    data: Vec<Vec<u8>>,
    trailers: String,
}

impl WebReply {
    /// grpc-status from the trailers frame, or from the headers of a trailers-only answer.
    fn grpc_status(&self) -> Option<String> {
        for line in self.trailers.split("\r\n").chain(self.trailers.split('\n')) {
            if let Some((k, v)) = line.split_once(':')
                && k.trim().eq_ignore_ascii_case("grpc-status")
            {
                return Some(v.trim().to_owned());
            }
        }
        self.headers
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

async fn grpc_web(app: &TestApp, path: &str, frame: Vec<u8>, key: Option<&str>) -> WebReply {
    let client = reqwest::Client::builder()
        .http1_only()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut rb = client
        .post(app.url(path))
        .header("content-type", GRPC_WEB)
        .header("accept", GRPC_WEB)
        .header("x-grpc-web", "1")
        .body(frame);
    if let Some(k) = key {
        rb = rb.header("authorization", format!("Bearer {k}"));
    }
    let r = rb
        .send()
        .await
        .unwrap_or_else(|e| panic!("gRPC-Web POST {path}: {e:?}"));
    assert_eq!(
        r.version(),
        reqwest::Version::HTTP_11,
        "the gRPC-Web call must go over HTTP/1.1"
    );
    let status = r.status();
    let headers = r.headers().clone();
    let body = r.bytes().await.expect("gRPC-Web body").to_vec();
    let mut data = Vec::new();
    let mut trailers = String::new();
    if status == StatusCode::OK {
        for (flag, payload) in web_frames(&body) {
            if flag & 0x80 != 0 {
                trailers.push_str(&String::from_utf8_lossy(&payload));
            } else {
                data.push(payload);
            }
        }
    }
    WebReply {
        status,
        headers,
        data,
        trailers,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_over_http1() {
    let app = spawn_app().await;
    let (st, b) = app
        .put("/v1/errors/retention/set", &json!({"days": 33}))
        .await;
    assert_eq!(st, StatusCode::OK, "{b}");

    // The empty GetRetentionRequest: flag 0, length 0.
    let r = grpc_web(
        &app,
        "/faultline.v1.SettingsService/GetRetention",
        vec![0, 0, 0, 0, 0],
        Some(&app.key),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let ct = r
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        ct.starts_with("application/grpc-web"),
        "content-type {ct:?}"
    );
    assert_eq!(r.data.len(), 1, "one data frame; trailers {:?}", r.trailers);
    assert!(!r.trailers.is_empty(), "a trailers frame");
    assert_eq!(
        r.grpc_status().as_deref(),
        Some("0"),
        "trailers: {:?}",
        r.trailers
    );
    let resp =
        pb::GetRetentionResponse::decode(r.data[0].as_slice()).expect("GetRetentionResponse");
    assert_eq!(
        resp.retention.expect("retention").days,
        33,
        "the same policy REST set"
    );

    // A capture over gRPC-Web is visible over REST.
    let r = grpc_web(
        &app,
        "/faultline.v1.CaptureService/CaptureMessage",
        web_frame(&pb::CaptureMessageRequest {
            text: "from the browser".into(),
            ..Default::default()
        }),
        Some(&app.key),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.grpc_status().as_deref(),
        Some("0"),
        "trailers: {:?}",
        r.trailers
    );
    let resp =
        pb::CaptureMessageResponse::decode(r.data[0].as_slice()).expect("CaptureMessageResponse");
    let e = app.event(&resp.event_id).await;
    assert_eq!(e["message"], json!("from the browser"));

    // Without a key: UNAUTHENTICATED (16) in the grpc-web status.
    let r = grpc_web(
        &app,
        "/faultline.v1.SettingsService/GetRetention",
        vec![0, 0, 0, 0, 0],
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.grpc_status().as_deref(),
        Some("16"),
        "headers {:?} trailers {:?}",
        r.headers,
        r.trailers
    );
    assert!(r.data.is_empty());

    // Plain REST over HTTP/1.1 on the same port is not taken for gRPC-Web.
    let client = reqwest::Client::builder()
        .http1_only()
        .no_proxy()
        .build()
        .unwrap();
    let resp = client
        .get(app.url("/v1/errors/groups"))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_over_http2_prior_knowledge() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .build()
        .unwrap();
    let r = client
        .post(app.url("/v1/errors/capture"))
        .bearer_auth(&app.key)
        .json(&json!({"message": "over h2c"}))
        .send()
        .await
        .expect("h2c request");
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("x-request-id").is_some());
    let b: serde_json::Value = r.json().await.unwrap();
    let r = client
        .get(app.url(&format!("/v1/errors/get/{}", s(&b["event_id"]))))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

const SERVICES: [&str; 5] = [
    "faultline.v1.AlertService",
    "faultline.v1.CaptureService",
    "faultline.v1.GroupService",
    "faultline.v1.SettingsService",
    "grpc.health.v1.Health",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1_lists_services_without_a_key() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let app = spawn_app().await;
    let mut client = ServerReflectionClient::new(app.channel().await);
    let reqs = vec![
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "faultline.v1.GroupService".into(),
            )),
        },
    ];
    let mut stream = client
        .server_reflection_info(tokio_stream::iter(reqs))
        .await
        .expect("reflection v1")
        .into_inner();
    let first = stream
        .message()
        .await
        .expect("reflection answer")
        .expect("a message");
    let names: HashSet<String> = match first.message_response {
        Some(MessageResponse::ListServicesResponse(l)) => {
            l.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("expected a service list, got {other:?}"),
    };
    for s in SERVICES {
        assert!(
            names.contains(s),
            "reflection v1 does not list {s}: {names:?}"
        );
    }
    let second = stream
        .message()
        .await
        .expect("reflection answer")
        .expect("a message");
    match second.message_response {
        Some(MessageResponse::FileDescriptorResponse(f)) => {
            let fd =
                prost_types::FileDescriptorProto::decode(f.file_descriptor_proto[0].as_slice())
                    .expect("descriptor");
            assert_eq!(fd.package(), "faultline.v1");
        }
        other => panic!("expected a file descriptor, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1alpha_lists_services_without_a_key() {
    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let app = spawn_app().await;
    let mut client = ServerReflectionClient::new(app.channel().await);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .expect("reflection v1alpha")
        .into_inner();
    let first = stream
        .message()
        .await
        .expect("reflection answer")
        .expect("a message");
    let names: HashSet<String> = match first.message_response {
        Some(MessageResponse::ListServicesResponse(l)) => {
            l.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("expected a service list, got {other:?}"),
    };
    for s in SERVICES {
        assert!(
            names.contains(s),
            "reflection v1alpha does not list {s}: {names:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_serving_without_a_key() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let app = spawn_app().await;
    let mut client = HealthClient::new(app.channel().await);
    for service in [
        "",
        "faultline.v1.AlertService",
        "faultline.v1.CaptureService",
        "faultline.v1.GroupService",
        "faultline.v1.SettingsService",
    ] {
        let r = client
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("health check {service:?}: {e:?}"))
            .into_inner();
        assert_eq!(
            r.status,
            ServingStatus::Serving as i32,
            "health of {service:?}"
        );
    }
    let st = client
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .expect_err("unknown service");
    assert_eq!(st.code(), tonic::Code::NotFound);
}
