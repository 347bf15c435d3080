//! `CaptureService.CaptureEnvelope` and `SettingsService.GetDsn`: Sentry SDK traffic and the
//! DSN that points an SDK here. The REST Sentry endpoints call these same methods.
//!
//! Authentication differs from the rest of the API: Sentry SDKs send a project's public key
//! (the DSN's user part), which may only send events. A normal ingest API key also works, so
//! a gRPC client can forward traffic under its own key.

use chrono::Utc;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{Api, convert};
use crate::{
    auth::{self, Scope},
    domain::{Level, feedback::NewReport},
    error::Error,
    ingest::{
        self,
        sentry::{self, Format, auth::key_from_dsn},
    },
    pb,
    store::sentry::SentryProject,
};

pub(super) async fn capture_envelope(
    api: &Api,
    req: Request<pb::CaptureEnvelopeRequest>,
) -> Result<Response<pb::CaptureEnvelopeResponse>, Status> {
    let (_, extensions, msg) = req.into_parts();
    let pb::CaptureEnvelopeRequest {
        body,
        content_encoding,
        format,
        project,
        sentry_key,
    } = msg;
    let format = match pb::SentryPayloadFormat::try_from(format) {
        Ok(pb::SentryPayloadFormat::Event) => Format::Event,
        Ok(pb::SentryPayloadFormat::Envelope | pb::SentryPayloadFormat::Unspecified) => {
            Format::Envelope
        }
        Err(_) => {
            return Err(Error::invalid_field("format", "unknown format", "INVALID").into());
        }
    };
    // Decoding needs no database; do it first so bad input costs no lookup. The key may
    // only be known after parsing (the envelope header's dsn).
    let unpacked = sentry::unpack(body.into(), &content_encoding, format)?;
    let key = Some(sentry_key)
        .filter(|k| !k.trim().is_empty())
        .or_else(|| unpacked.dsn.as_deref().and_then(key_from_dsn));
    let project_id = authenticate(api, &extensions, key.as_deref(), project.trim()).await?;

    // The project's inbound filters drop what it does not want; the SDK is answered as for
    // any event.
    let mut received = unpacked.events;
    if let Some(policy) = crate::limits::policy::get(project_id).filter(|p| !p.inbound.is_empty()) {
        received.retain(|(input, origin)| {
            match ingest::inbound::rejects(&policy.inbound, input, origin) {
                Some(reason) => {
                    api.filtered.note(project_id, reason);
                    false
                }
                None => true,
            }
        });
    }
    let mut room = api.ingest.reserve(received.len())?;
    let now = Utc::now();
    let mut prepared = Vec::with_capacity(received.len());
    for (input, _) in received {
        let maps = api.sourcemaps.for_capture(project_id, &input).await;
        prepared.push(ingest::prepare_placed(
            project_id,
            input,
            Level::Error,
            now,
            maps.as_ref(),
        )?);
    }
    // All of an envelope's events are queued, or (one is invalid) none.
    for event in prepared {
        room.queue(event)?;
    }
    let mut events = Vec::new();
    for outcome in room.committed().await {
        events.push(convert::committed_to_pb(outcome?));
    }
    // User feedback, after the events it may be about; a report an SDK sent unreadable or
    // without comments is left out (refusing it would make the SDK send the events again).
    let reports: Vec<NewReport> = unpacked
        .reports
        .into_iter()
        .filter_map(|r| {
            NewReport::new(r.event_id, &r.name, &r.email, &r.comments, &r.url)
                .inspect_err(|e| tracing::debug!(error = %e, "sentry user feedback left out"))
                .ok()
                .map(|n| n.dedup(r.dedup_key))
        })
        .collect();
    let feedback_stored = api
        .store
        .add_user_reports(project_id, &reports)
        .await?
        .len() as u32;
    tracing::debug!(items = ?unpacked.item_counts, events = events.len(), "sentry envelope accepted");
    Ok(Response::new(pb::CaptureEnvelopeResponse {
        event_id: unpacked
            .event_id
            .map(|id| id.simple().to_string())
            .unwrap_or_default(),
        events,
        item_counts: unpacked.item_counts.into_iter().collect(),
        feedback_stored,
    }))
}

/// The project events go to. A public key (or else the call's ingest API key) names it; the
/// DSN path's project, when given, must be the same one.
async fn authenticate(
    api: &Api,
    extensions: &http::Extensions,
    key: Option<&str>,
    project: &str,
) -> Result<Uuid, Error> {
    let sentry = match key {
        Some(key) => api
            .store
            .sentry_project_by_key(key.trim())
            .await?
            .ok_or_else(|| Error::Unauthenticated("unknown sentry_key: check the DSN".into()))?,
        None => {
            let principal = match auth::require(extensions, Scope::Ingest) {
                Err(Error::Unauthenticated(_)) => {
                    return Err(Error::Unauthenticated(
                        "missing authorization: send 'X-Sentry-Auth: Sentry sentry_key=<public key>', \
                         '?sentry_key=', a DSN in the envelope header, or an ingest API key"
                            .into(),
                    ));
                }
                other => other?,
            };
            api.store.sentry_project(principal.project_id).await?
        }
    };
    if !project.is_empty() && !names(&sentry, project) {
        return Err(Error::PermissionDenied(format!(
            "this key does not belong to project {project}"
        )));
    }
    Ok(sentry.project_id)
}

/// Whether the DSN path's `project` (a number, or a Faultline project id) names `p`.
fn names(p: &SentryProject, project: &str) -> bool {
    project.parse::<i64>().is_ok_and(|n| n == p.sentry_id)
        || Uuid::try_parse(project).is_ok_and(|id| id == p.project_id)
}

pub(super) async fn get_dsn(
    api: &Api,
    req: Request<pb::GetDsnRequest>,
) -> Result<Response<pb::GetDsnResponse>, Status> {
    let principal = auth::require(req.extensions(), Scope::Read)?;
    let forwarded_https = req
        .metadata()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let header_host = req
        .metadata()
        .get("x-forwarded-host")
        .or_else(|| req.metadata().get("host"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let pb::GetDsnRequest { host } = req.into_inner();
    let host = Some(host)
        .filter(|h| !h.trim().is_empty())
        .or(header_host)
        .map(|h| h.trim().to_owned())
        .ok_or_else(|| {
            Error::invalid_field(
                "host",
                "is required when the request has no Host header: the host[:port] SDKs reach Faultline at",
                "REQUIRED",
            )
        })?;
    if host.contains(['/', '@', ' ']) {
        return Err(Error::invalid_field("host", "must be host[:port]", "INVALID").into());
    }
    let p = api.store.sentry_project(principal.project_id).await?;
    let scheme = if forwarded_https { "https" } else { "http" };
    Ok(Response::new(pb::GetDsnResponse {
        dsn: dsn(scheme, &p, &host),
        public_key: p.public_key,
        project_number: u64::try_from(p.sentry_id).unwrap_or(0),
    }))
}

/// `scheme://<public_key>@<host>/<project number>`.
pub fn dsn(scheme: &str, p: &SentryProject, host: &str) -> String {
    format!("{scheme}://{}@{host}/{}", p.public_key, p.sentry_id)
}
