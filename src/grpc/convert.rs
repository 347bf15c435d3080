//! Domain values to protobuf messages and back. Every message is destructured in full, so
//! a field added to a .proto fails the build here until it is handled.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    domain::{
        ExceptionData, Frame, GroupStatus, Level,
        filter::{EventFilter, GroupSort},
        grouping::{Grouping, GroupingVariant},
        model::{
            Assignee, Committed, Group, GroupDetail, RetentionPolicy, SnoozeRate, StoredEvent,
        },
        workflow::WorkflowStage,
    },
    error::Error,
    pb,
};

pub fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

pub fn from_ts(field: &str, t: prost_types::Timestamp) -> Result<DateTime<Utc>, Error> {
    let nanos = u32::try_from(t.nanos)
        .map_err(|_| Error::invalid_field(field, "nanos out of range", "OUT_OF_RANGE"))?;
    DateTime::from_timestamp(t.seconds, nanos)
        .ok_or_else(|| Error::invalid_field(field, "timestamp out of range", "OUT_OF_RANGE"))
}

/// A UUID field that may be left empty (`None`).
pub fn optional_uuid(field: &str, s: &str) -> Result<Option<Uuid>, Error> {
    match s.trim() {
        "" => Ok(None),
        s => uuid(field, s).map(Some),
    }
}

pub fn uuid(field: &str, s: &str) -> Result<Uuid, Error> {
    if s.trim().is_empty() {
        return Err(Error::required(field));
    }
    Uuid::parse_str(s.trim()).map_err(|_| Error::malformed(field, "is not a valid UUID"))
}

/// A user's feedback as the API shows it.
pub fn feedback_to_pb(r: crate::domain::feedback::UserReport) -> pb::UserFeedback {
    let (stored_event_id, group_id) = match r.event {
        Some((event, group)) => (event.to_string(), group.to_string()),
        None => (String::new(), String::new()),
    };
    pb::UserFeedback {
        id: r.id.to_string(),
        event_id: r.event_id.map(|id| id.to_string()).unwrap_or_default(),
        name: r.name,
        email: r.email,
        comments: r.comments,
        url: r.url,
        created_at: Some(ts(r.created_at)),
        stored_event_id,
        group_id,
    }
}

pub fn level_to_pb(l: Level) -> pb::Level {
    match l {
        Level::Debug => pb::Level::Debug,
        Level::Info => pb::Level::Info,
        Level::Warning => pb::Level::Warning,
        Level::Error => pb::Level::Error,
        Level::Fatal => pb::Level::Fatal,
    }
}

/// `None` for "unspecified"; an unknown number is a field error.
pub fn level_from_pb(field: &str, v: i32) -> Result<Option<Level>, Error> {
    match pb::Level::try_from(v) {
        Ok(pb::Level::Unspecified) => Ok(None),
        Ok(pb::Level::Debug) => Ok(Some(Level::Debug)),
        Ok(pb::Level::Info) => Ok(Some(Level::Info)),
        Ok(pb::Level::Warning) => Ok(Some(Level::Warning)),
        Ok(pb::Level::Error) => Ok(Some(Level::Error)),
        Ok(pb::Level::Fatal) => Ok(Some(Level::Fatal)),
        Err(_) => Err(Error::invalid_field(
            field,
            format!("unknown level {v}"),
            "INVALID_ENUM",
        )),
    }
}

pub fn status_to_pb(s: GroupStatus) -> pb::GroupStatus {
    match s {
        GroupStatus::Unresolved => pb::GroupStatus::Unresolved,
        GroupStatus::Resolved => pb::GroupStatus::Resolved,
        GroupStatus::Ignored => pb::GroupStatus::Ignored,
    }
}

pub fn status_from_pb(field: &str, v: i32) -> Result<Option<GroupStatus>, Error> {
    match pb::GroupStatus::try_from(v) {
        Ok(pb::GroupStatus::Unspecified) => Ok(None),
        Ok(pb::GroupStatus::Unresolved) => Ok(Some(GroupStatus::Unresolved)),
        Ok(pb::GroupStatus::Resolved) => Ok(Some(GroupStatus::Resolved)),
        Ok(pb::GroupStatus::Ignored) => Ok(Some(GroupStatus::Ignored)),
        Err(_) => Err(Error::invalid_field(
            field,
            format!("unknown status {v}"),
            "INVALID_ENUM",
        )),
    }
}

pub fn sort_from_pb(v: i32) -> Result<GroupSort, Error> {
    match pb::GroupSort::try_from(v) {
        Ok(pb::GroupSort::Unspecified | pb::GroupSort::LastSeenDesc) => Ok(GroupSort::LastSeenDesc),
        Ok(pb::GroupSort::CountDesc) => Ok(GroupSort::CountDesc),
        Ok(pb::GroupSort::FirstSeenDesc) => Ok(GroupSort::FirstSeenDesc),
        Err(_) => Err(Error::invalid_field(
            "sort",
            format!("unknown sort {v}"),
            "INVALID_ENUM",
        )),
    }
}

pub fn frame_to_pb(f: &Frame) -> pb::Frame {
    let Frame {
        filename,
        function,
        module,
        lineno,
        colno,
        in_app,
        context_line,
        minified,
    } = f;
    pb::Frame {
        filename: filename.clone(),
        function: function.clone(),
        module: module.clone(),
        lineno: *lineno,
        colno: *colno,
        in_app: *in_app,
        context_line: context_line.clone(),
        minified: minified.as_deref().map(|m| Box::new(frame_to_pb(m))),
    }
}

pub fn frame_from_pb(f: pb::Frame) -> Frame {
    let pb::Frame {
        filename,
        function,
        module,
        lineno,
        colno,
        in_app,
        context_line,
        // Output only: what a source map placed.
        minified: _,
    } = f;
    Frame {
        filename,
        function,
        module,
        lineno,
        colno,
        in_app,
        context_line,
        minified: None,
    }
}

fn exception_to_pb(e: &ExceptionData) -> pb::ExceptionInfo {
    let ExceptionData {
        r#type,
        value,
        module: _,
        frames,
        raw_stacktrace,
        frames_from_text: _,
        mechanism,
        synthetic,
        chained,
    } = e;
    pb::ExceptionInfo {
        r#type: r#type.clone(),
        value: value.clone(),
        frames: frames.iter().map(frame_to_pb).collect(),
        raw_stacktrace: raw_stacktrace.clone(),
        mechanism: mechanism.clone(),
        synthetic: *synthetic,
        chained: chained.iter().map(exception_to_pb).collect(),
    }
}

pub fn grouping_to_pb(g: &Grouping) -> pb::GroupingInfo {
    let Grouping {
        version,
        source,
        components,
        fingerprint,
        variants,
    } = g;
    pb::GroupingInfo {
        version: *version,
        source: source.as_str().to_owned(),
        components: components.clone(),
        fingerprint: fingerprint.clone(),
        variants: variants.iter().map(variant_to_pb).collect(),
    }
}

fn variant_to_pb(v: &GroupingVariant) -> pb::GroupingVariant {
    let GroupingVariant {
        kind,
        version,
        source,
        components,
        hash,
        matches_group,
    } = v;
    pb::GroupingVariant {
        kind: kind.as_str().to_owned(),
        version: *version,
        source: source.as_str().to_owned(),
        components: components.clone(),
        hash: hash.clone(),
        matches_group: *matches_group,
    }
}

/// An event; `detailed` adds the payload and grouping information.
pub fn event_to_pb(e: StoredEvent, detailed: bool) -> pb::Event {
    let StoredEvent {
        seq: _,
        id,
        project_id,
        group_id,
        timestamp,
        received_at,
        level,
        message,
        code,
        exception,
        culprit,
        release,
        environment,
        user_id,
        tags,
        grouping,
        payload_json,
    } = e;
    pb::Event {
        id: id.to_string(),
        group_id: group_id.to_string(),
        project_id: project_id.to_string(),
        fingerprint: grouping.fingerprint.clone(),
        timestamp: Some(ts(timestamp)),
        received_at: Some(ts(received_at)),
        level: level_to_pb(level) as i32,
        message,
        code,
        exception: exception.as_ref().map(exception_to_pb),
        culprit,
        release,
        environment,
        user_id,
        tags: tags.into_iter().collect(),
        payload_json: if detailed {
            payload_json.unwrap_or_default()
        } else {
            String::new()
        },
        grouping: detailed.then(|| grouping_to_pb(&grouping)),
    }
}

pub fn group_to_pb(g: Group) -> pb::Group {
    let Group {
        id,
        project_id,
        fingerprint,
        grouping_version,
        title,
        culprit,
        level,
        status,
        regressed,
        count,
        first_seen,
        last_seen,
        workflow_stage,
        ignored_until,
        ignored_until_count,
        last_release,
        resolved_in_release,
        first_release,
        assignee,
        ignored_until_user_count,
        ignored_until_rate,
        ignored_until_user_rate,
        ignored_until_escalating,
    } = g;
    pb::Group {
        id: id.to_string(),
        project_id: project_id.to_string(),
        fingerprint,
        title,
        culprit,
        level: level_to_pb(level) as i32,
        status: status_to_pb(status) as i32,
        regressed,
        count,
        first_seen: Some(ts(first_seen)),
        last_seen: Some(ts(last_seen)),
        grouping_version,
        workflow_stage: stage_to_pb(workflow_stage) as i32,
        ignored_until: ignored_until.map(ts),
        ignored_until_count,
        last_release,
        resolved_in_release,
        first_release,
        assignee: assignee.map(assignee_to_pb),
        ignored_until_user_count,
        ignored_until_rate: ignored_until_rate.map(rate_to_pb),
        ignored_until_user_rate: ignored_until_user_rate.map(rate_to_pb),
        ignored_until_escalating,
    }
}

fn rate_to_pb(r: SnoozeRate) -> pb::SnoozeRate {
    pb::SnoozeRate {
        count: r.count,
        window: r.window,
    }
}

pub fn assignee_to_pb(a: Assignee) -> pb::GroupAssignee {
    pb::GroupAssignee {
        id: a.id.to_string(),
        name: a.name,
        email: a.email,
    }
}

pub fn stage_to_pb(s: WorkflowStage) -> pb::WorkflowStage {
    match s {
        WorkflowStage::New => pb::WorkflowStage::New,
        WorkflowStage::Verifying => pb::WorkflowStage::Verifying,
        WorkflowStage::CannotReproduce => pb::WorkflowStage::CannotReproduce,
        WorkflowStage::PendingFix => pb::WorkflowStage::PendingFix,
        WorkflowStage::Fixing => pb::WorkflowStage::Fixing,
        WorkflowStage::Fixed => pb::WorkflowStage::Fixed,
        WorkflowStage::Verified => pb::WorkflowStage::Verified,
        WorkflowStage::Deployed => pb::WorkflowStage::Deployed,
        WorkflowStage::FixFailed => pb::WorkflowStage::FixFailed,
    }
}

/// The documented name of a stage on the wire (`NEW`, `PENDING_FIX`, …); unknown values read as NEW.
pub fn stage_name(v: i32) -> &'static str {
    stage_from_pb("stage", v)
        .unwrap_or(WorkflowStage::New)
        .as_str()
}

/// A stage from the wire; unspecified or unknown values are a bad request.
pub fn stage_from_pb(field: &str, v: i32) -> Result<WorkflowStage, Error> {
    let bad = || {
        Error::invalid_field(
            field,
            "must be one of NEW, VERIFYING, CANNOT_REPRODUCE, PENDING_FIX, FIXING, FIXED, VERIFIED, DEPLOYED, FIX_FAILED",
            "INVALID_ENUM",
        )
    };
    Ok(match pb::WorkflowStage::try_from(v).map_err(|_| bad())? {
        pb::WorkflowStage::Unspecified => return Err(bad()),
        pb::WorkflowStage::New => WorkflowStage::New,
        pb::WorkflowStage::Verifying => WorkflowStage::Verifying,
        pb::WorkflowStage::CannotReproduce => WorkflowStage::CannotReproduce,
        pb::WorkflowStage::PendingFix => WorkflowStage::PendingFix,
        pb::WorkflowStage::Fixing => WorkflowStage::Fixing,
        pb::WorkflowStage::Fixed => WorkflowStage::Fixed,
        pb::WorkflowStage::Verified => WorkflowStage::Verified,
        pb::WorkflowStage::Deployed => WorkflowStage::Deployed,
        pb::WorkflowStage::FixFailed => WorkflowStage::FixFailed,
    })
}

pub fn detail_to_pb(d: GroupDetail) -> pb::GetGroupResponse {
    let GroupDetail {
        group,
        top_tags,
        users_affected,
        releases,
        environments,
        trend,
    } = d;
    pb::GetGroupResponse {
        group: Some(group_to_pb(group)),
        top_tags: top_tags
            .into_iter()
            .map(|(key, value, count)| pb::TagValueCount { key, value, count })
            .collect(),
        users_affected,
        releases,
        environments,
        trend: trend
            .into_iter()
            .map(|(hour, count)| pb::TrendPoint {
                hour: Some(ts(hour)),
                count,
            })
            .collect(),
    }
}

pub fn filter_from_pb(f: Option<pb::EventFilter>) -> Result<EventFilter, Error> {
    let Some(f) = f else {
        return Ok(EventFilter::default());
    };
    let pb::EventFilter {
        level,
        status,
        environment,
        release,
        tags,
        user_id,
        group_id,
        since,
        until,
    } = f;
    let non_empty = |s: String| (!s.trim().is_empty()).then(|| s.trim().to_owned());
    Ok(EventFilter {
        level: level_from_pb("filter.level", level)?,
        status: status_from_pb("filter.status", status)?,
        environment: non_empty(environment),
        release: non_empty(release),
        tags: tags.into_iter().collect(),
        user_id: non_empty(user_id),
        group_id: optional_uuid("filter.group_id", &group_id)?,
        since: since.map(|t| from_ts("filter.since", t)).transpose()?,
        until: until.map(|t| from_ts("filter.until", t)).transpose()?,
        q: None,
    })
}

pub fn retention_to_pb(r: RetentionPolicy) -> pb::Retention {
    let RetentionPolicy {
        days,
        auto_export,
        export_destination,
        last_cleanup,
        last_cleanup_deleted,
    } = r;
    pb::Retention {
        days,
        auto_export_before_cleanup: auto_export,
        export_destination,
        last_cleanup: last_cleanup.map(ts),
        last_cleanup_deleted,
    }
}

pub fn committed_to_pb(c: Committed) -> pb::CaptureResponse {
    let Committed {
        event_id,
        group_id,
        fingerprint,
        new_group,
        duplicate: _,
    } = c;
    pb::CaptureResponse {
        event_id: event_id.to_string(),
        group_id: group_id.to_string(),
        fingerprint,
        new_group,
    }
}

/// A `google.protobuf.Struct` as JSON.
pub fn struct_to_json(s: prost_types::Struct) -> serde_json::Value {
    serde_json::Value::Object(
        s.fields
            .into_iter()
            .map(|(k, v)| (k, value_to_json(v)))
            .collect(),
    )
}

fn value_to_json(v: prost_types::Value) -> serde_json::Value {
    use prost_types::value::Kind;
    match v.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::NumberValue(n)) => serde_json::Number::from_f64(n)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Some(Kind::StringValue(s)) => serde_json::Value::String(s),
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(b),
        Some(Kind::StructValue(s)) => struct_to_json(s),
        Some(Kind::ListValue(l)) => {
            serde_json::Value::Array(l.values.into_iter().map(value_to_json).collect())
        }
    }
}
