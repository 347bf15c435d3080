use chrono::Utc;
use serde_json::{Map, Value, json};
use tonic::{Request, Response, Status};

use super::{Api, convert};
use crate::{
    auth::{self, Principal, Scope},
    domain::{Level, feedback::NewReport},
    error::Error,
    ingest::{self, CaptureInput, ExceptionInput},
    pb::{self, capture_service_server::CaptureService},
    store::NewAudit,
};

#[tonic::async_trait]
impl CaptureService for Api {
    #[tracing::instrument(skip_all, name = "faultline.v1.CaptureService/Capture")]
    async fn capture(
        &self,
        req: Request<pb::CaptureRequest>,
    ) -> Result<Response<pb::CaptureResponse>, Status> {
        let principal = auth::require(req.extensions(), Scope::Ingest)?;
        let entry = super::access::audit(&principal, req.extensions(), "project.create");
        let payload = PayloadJson::of(&req);
        let mut req = req.into_inner();
        let project = std::mem::take(&mut req.project);
        let room = self.ingest.reserve(1)?;
        let project_id = self.capture_project(&principal, &project, entry).await?;
        let input = capture_input(req, payload)?;
        let maps = self.sourcemaps.for_capture(project_id, &input).await;
        let event =
            ingest::prepare_placed(project_id, input, Level::Error, Utc::now(), maps.as_ref())?;
        let committed = room.submit(event).await?;
        Ok(Response::new(convert::committed_to_pb(committed)))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.CaptureService/CaptureBatch")]
    async fn capture_batch(
        &self,
        req: Request<pb::CaptureBatchRequest>,
    ) -> Result<Response<pb::CaptureBatchResponse>, Status> {
        let principal = auth::require(req.extensions(), Scope::Ingest)?;
        let entry = super::access::audit(&principal, req.extensions(), "project.create");
        let payload = PayloadJson::of(&req);
        let pb::CaptureBatchRequest { events } = req.into_inner();
        if events.is_empty() {
            return Err(
                Error::invalid_field("events", "must hold at least one event", "REQUIRED").into(),
            );
        }
        if events.len() > BATCH_MAX {
            return Err(Error::invalid_field(
                "events",
                format!("at most {BATCH_MAX} events per batch"),
                "TOO_MANY",
            )
            .into());
        }
        let mut room = self.ingest.reserve(events.len())?;
        let now = Utc::now();
        let mut results: Vec<Option<pb::CaptureBatchResult>> = Vec::with_capacity(events.len());
        let mut slots = Vec::with_capacity(events.len());
        for (i, mut item) in events.into_iter().enumerate() {
            let project = std::mem::take(&mut item.project);
            let prepared = match self
                .capture_project(&principal, &project, entry.clone())
                .await
                .and_then(|project_id| Ok((project_id, capture_input(item, payload)?)))
            {
                Ok((project_id, input)) => {
                    let maps = self.sourcemaps.for_capture(project_id, &input).await;
                    ingest::prepare_placed(project_id, input, Level::Error, now, maps.as_ref())
                }
                Err(e) => Err(e),
            };
            match prepared {
                Ok(event) => {
                    room.queue(event)?;
                    slots.push(i);
                    results.push(None);
                }
                Err(e) => results.push(Some(batch_error(e))),
            }
        }
        for (slot, outcome) in slots.into_iter().zip(room.committed().await) {
            results[slot] = Some(match outcome {
                Ok(c) => pb::CaptureBatchResult {
                    outcome: Some(pb::capture_batch_result::Outcome::Captured(
                        convert::committed_to_pb(c),
                    )),
                },
                Err(e) => batch_error(e),
            });
        }
        let results: Vec<pb::CaptureBatchResult> = results.into_iter().flatten().collect();
        let accepted = results
            .iter()
            .filter(|r| {
                matches!(
                    r.outcome,
                    Some(pb::capture_batch_result::Outcome::Captured(_))
                )
            })
            .count() as u32;
        let rejected = results.len() as u32 - accepted;
        Ok(Response::new(pb::CaptureBatchResponse {
            results,
            accepted,
            rejected,
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.CaptureService/CaptureMessage")]
    async fn capture_message(
        &self,
        req: Request<pb::CaptureMessageRequest>,
    ) -> Result<Response<pb::CaptureMessageResponse>, Status> {
        let principal = auth::require(req.extensions(), Scope::Ingest)?;
        let room = self.ingest.reserve(1)?;
        let pb::CaptureMessageRequest {
            text,
            level,
            tags,
            user_id,
            release,
            environment,
            idempotency_key,
            payload_json,
        } = req.into_inner();
        let original = original_payload(payload_json)?;
        if text.trim().is_empty() {
            return Err(Error::required("text").into());
        }
        let level = convert::level_from_pb("level", level)?;
        let mut input = CaptureInput {
            message: text,
            level,
            release,
            environment,
            user_id,
            tags: tags.into_iter().collect(),
            idempotency_key: (!idempotency_key.is_empty()).then_some(idempotency_key),
            ..CaptureInput::default()
        };
        // As in `capture_input`: made from the fields only when the request brings none.
        input.payload_json = match original {
            Some(p) => p,
            None => message_payload(&input).to_string(),
        };
        let event = ingest::prepare(principal.project_id, input, Level::Info, Utc::now())?;
        let c = room.submit(event).await?;
        Ok(Response::new(pb::CaptureMessageResponse {
            event_id: c.event_id.to_string(),
            group_id: c.group_id.to_string(),
            fingerprint: c.fingerprint,
            new_group: c.new_group,
            duplicate: c.duplicate,
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.CaptureService/CaptureEnvelope")]
    async fn capture_envelope(
        &self,
        req: Request<pb::CaptureEnvelopeRequest>,
    ) -> Result<Response<pb::CaptureEnvelopeResponse>, Status> {
        super::sentry::capture_envelope(self, req).await
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.CaptureService/SubmitFeedback")]
    async fn submit_feedback(
        &self,
        req: Request<pb::SubmitFeedbackRequest>,
    ) -> Result<Response<pb::SubmitFeedbackResponse>, Status> {
        let principal = auth::require(req.extensions(), Scope::Ingest)?;
        let pb::SubmitFeedbackRequest {
            event_id,
            name,
            email,
            comments,
            url,
        } = req.into_inner();
        let event_id = convert::optional_uuid("event_id", &event_id)?;
        let report = NewReport::new(event_id, &name, &email, &comments, &url)?;
        let stored = self
            .store
            .add_user_reports(principal.project_id, &[report])
            .await?;
        Ok(Response::new(pb::SubmitFeedbackResponse {
            feedback: stored.into_iter().next().map(convert::feedback_to_pb),
        }))
    }
}

impl Api {
    /// The project a capture names (by name or id): the key's own when none is named. A
    /// missing one is created when the key may create projects (the rule of
    /// `CreateProject`); otherwise, and for a project beyond the key's reach, NOT_FOUND, so
    /// a key learns nothing about projects it may not see.
    async fn capture_project(
        &self,
        p: &Principal,
        project: &str,
        entry: NewAudit,
    ) -> Result<uuid::Uuid, Error> {
        let project = project.trim();
        if project.is_empty() {
            return Ok(p.project_id);
        }
        let not_found = Error::NotFound { what: "project" };
        if let Some(id) = self.store.find_project_ref(project).await? {
            return if p.sees_project(id) {
                Ok(id)
            } else {
                Err(not_found)
            };
        }
        if p.restricted || !p.has(Scope::Admin) {
            return Err(not_found);
        }
        let name = super::access::name("project", project)?;
        let details = json!({ "name": name, "via": "capture" });
        let (id, _created) = self
            .store
            .project_named_or_create(&name, entry.details(details))
            .await?;
        Ok(id)
    }
}

/// Most events one batch may carry.
pub const BATCH_MAX: usize = 1000;

fn batch_error(e: Error) -> pb::CaptureBatchResult {
    let fields = e.violations().iter().map(ToString::to_string).collect();
    let message = e.public_message();
    pb::CaptureBatchResult {
        outcome: Some(pb::capture_batch_result::Outcome::Error(
            pb::CaptureBatchError {
                code: e.code().to_owned(),
                message,
                fields,
            },
        )),
    }
}

/// Whether a capture's `payload_json` still needs to be checked. A transport that sends its
/// own request body as the payload, after decoding it as a JSON object (the REST routes), says
/// so with the `PayloadJson::Decoded` extension; every other payload is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadJson {
    Decoded,
    Unchecked,
}

impl PayloadJson {
    fn of<T>(req: &Request<T>) -> PayloadJson {
        req.extensions()
            .get::<PayloadJson>()
            .copied()
            .unwrap_or(PayloadJson::Unchecked)
    }
}

/// A `CaptureRequest` as ingest input.
fn capture_input(req: pb::CaptureRequest, payload: PayloadJson) -> Result<CaptureInput, Error> {
    let pb::CaptureRequest {
        message,
        code,
        stack,
        tags,
        exception,
        level,
        release,
        environment,
        user_id,
        fingerprint,
        timestamp,
        extra,
        payload_json,
        chained,
        platform,
        transaction,
        project: _,
    } = req;
    let original = match payload {
        PayloadJson::Decoded => Some(payload_json).filter(|p| !p.trim().is_empty()),
        PayloadJson::Unchecked => original_payload(payload_json)?,
    };
    let level = convert::level_from_pb("level", level)?;
    let timestamp = timestamp
        .map(|t| convert::from_ts("timestamp", t))
        .transpose()?;
    let mut input = CaptureInput {
        message,
        code,
        stack,
        exception: exception.map(exception_input),
        level,
        release,
        environment,
        user_id,
        tags: tags.into_iter().collect(),
        chained: chained.into_iter().map(exception_input).collect(),
        platform,
        transaction,
        fingerprint,
        timestamp,
        idempotency_key: None,
        payload_json: String::new(),
        debug_images: Vec::new(),
    };
    // The payload as the client sent it (REST passes its body), else made from the fields.
    // Made only then: every REST capture copied its stack text and fields into a map that
    // was thrown away.
    input.payload_json = match original {
        Some(p) => p,
        None => payload_of(&input, extra).to_string(),
    };
    Ok(input)
}

/// The stored payload of a message sent without one: its fields as JSON.
fn message_payload(input: &CaptureInput) -> Value {
    let mut payload = Map::new();
    payload.insert("text".into(), json!(input.message));
    if let Some(l) = input.level {
        payload.insert("level".into(), json!(l.as_str()));
    }
    if !input.tags.is_empty() {
        payload.insert("tags".into(), json!(input.tags));
    }
    put(&mut payload, "user_id", json!(input.user_id));
    put(&mut payload, "release", json!(input.release));
    put(&mut payload, "environment", json!(input.environment));
    if let Some(key) = &input.idempotency_key {
        put(&mut payload, "idempotency_key", json!(key));
    }
    Value::Object(payload)
}

/// The stored payload of a capture sent without one: its fields as JSON, beside `extra`.
fn payload_of(input: &CaptureInput, extra: Option<prost_types::Struct>) -> Value {
    let mut payload = Map::new();
    if let Some(extra) = extra
        && let Value::Object(o) = convert::struct_to_json(extra)
    {
        payload.extend(o);
    }
    put(&mut payload, "message", json!(input.message));
    put(&mut payload, "code", json!(input.code));
    put(&mut payload, "stack", json!(input.stack));
    if !input.tags.is_empty() {
        payload.insert("tags".into(), json!(input.tags));
    }
    let exception_json = |e: &ExceptionInput| {
        json!({
            "type": e.r#type, "message": e.message, "module": e.module,
            "stacktrace": if e.stacktrace_lines.is_empty() { json!(e.stacktrace) } else { json!(e.stacktrace_lines) },
            "frames": e.frames, "synthetic": e.synthetic, "mechanism": e.mechanism,
        })
    };
    if let Some(e) = &input.exception {
        payload.insert("exception".into(), exception_json(e));
    }
    if !input.chained.is_empty() {
        let chain: Vec<Value> = input.chained.iter().map(exception_json).collect();
        payload.insert("chained".into(), Value::Array(chain));
    }
    put(&mut payload, "platform", json!(input.platform));
    put(&mut payload, "transaction", json!(input.transaction));
    if let Some(l) = input.level {
        payload.insert("level".into(), json!(l.as_str()));
    }
    put(&mut payload, "release", json!(input.release));
    put(&mut payload, "environment", json!(input.environment));
    put(&mut payload, "user_id", json!(input.user_id));
    if !input.fingerprint.is_empty() {
        payload.insert("fingerprint".into(), json!(input.fingerprint));
    }
    if let Some(t) = input.timestamp {
        payload.insert("timestamp".into(), json!(t.to_rfc3339()));
    }
    Value::Object(payload)
}

fn exception_input(e: pb::ExceptionInput) -> ExceptionInput {
    let pb::ExceptionInput {
        r#type,
        message,
        stacktrace,
        stacktrace_lines,
        frames,
        module,
        synthetic,
        mechanism,
    } = e;
    ExceptionInput {
        r#type,
        message,
        module,
        stacktrace,
        stacktrace_lines,
        frames: frames.into_iter().map(convert::frame_from_pb).collect(),
        synthetic,
        mechanism,
    }
}

/// The client's own payload, when a front-end passed it on; it must be a JSON object.
fn original_payload(payload_json: String) -> Result<Option<String>, Error> {
    if payload_json.trim().is_empty() {
        return Ok(None);
    }
    match serde_json::from_str::<serde::de::IgnoredAny>(&payload_json) {
        Ok(_) if payload_json.trim_start().starts_with('{') => Ok(Some(payload_json)),
        _ => Err(Error::invalid_field(
            "payload_json",
            "must be a JSON object",
            "INVALID_JSON",
        )),
    }
}

/// Adds a field to the stored payload unless it is an empty string.
fn put(payload: &mut Map<String, Value>, key: &str, v: Value) {
    if v.as_str().is_some_and(str::is_empty) {
        return;
    }
    payload.insert(key.to_owned(), v);
}
