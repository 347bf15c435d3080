use std::{collections::HashMap, pin::Pin};

use chrono::Utc;
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{Api, convert};
use crate::{
    auth::{self, Scope},
    domain::{
        GroupStatus,
        activity::{Activity, Change},
        cursor::{CreatedCursor, EventCursor, GroupCursor, bounded_limit, page_limit},
        export::{self, Format},
        filter::{EventFilter, Filter, GroupSearch},
        model,
    },
    error::Error,
    integrations::assigned,
    pb::{self, group_service_server::GroupService},
    store::{ACTIVITY_MAX, Actor, Comment, GroupQuery},
};

/// Most groups one bulk request may name.
const BULK_MAX: usize = 1000;
/// Most releases one listing returns.
const RELEASES_LISTED_MAX: u64 = 1000;

fn actor(p: &auth::Principal) -> Actor {
    Actor {
        member_id: p.member_id,
        key_id: p.key_id,
        key_name: p.key_name.clone(),
        admin: p.has(Scope::Admin),
    }
}

fn comment_to_pb(c: Comment) -> pb::GroupComment {
    pb::GroupComment {
        id: c.id.to_string(),
        group_id: c.group_id.to_string(),
        author: c.author,
        member_id: c.member_id.map(|m| m.to_string()).unwrap_or_default(),
        text: c.text,
        created_at: Some(convert::ts(c.created_at)),
        edited_at: c.edited_at.map(convert::ts),
    }
}

/// Entries a group's activity lists when the request names no limit.
const ACTIVITY_DEFAULT: u64 = 100;

fn activity_to_pb(a: Activity) -> pb::GroupActivity {
    let mut out = pb::GroupActivity {
        id: a.id.map(|id| id.to_string()).unwrap_or_default(),
        group_id: a.group_id.to_string(),
        r#type: a.change.kind().to_owned(),
        actor: a.actor.unwrap_or_default(),
        member_id: a.member_id.map(|m| m.to_string()).unwrap_or_default(),
        created_at: Some(convert::ts(a.created_at)),
        ..Default::default()
    };
    match a.change {
        Change::FirstSeen
        | Change::SetResolved
        | Change::Unassigned
        | Change::SetUnresolved { snooze_end: None } => {}
        Change::Note { text, .. } => out.text = text,
        Change::SetResolvedInRelease { release } => out.release = release,
        Change::SetUnresolved {
            snooze_end: Some(end),
        } => out.snooze_end = end.as_str().to_owned(),
        Change::SetIgnored {
            minutes,
            events,
            users,
            window,
            user_window,
            escalating,
        } => {
            out.ignore_duration = minutes.unwrap_or(0);
            out.ignore_count = events.unwrap_or(0);
            out.ignore_user_count = users.unwrap_or(0);
            out.ignore_window = window.unwrap_or(0);
            out.ignore_user_window = user_window.unwrap_or(0);
            out.until_escalating = escalating;
        }
        Change::SetRegression { release, event_id } => {
            out.release = release;
            out.event_id = event_id.to_string();
        }
        Change::Assigned(a) => out.assignee = Some(convert::assignee_to_pb(a)),
        Change::Merge { merged, events } => {
            out.merged_group_ids = merged.iter().map(Uuid::to_string).collect();
            out.merged_events = events;
        }
        Change::UnmergeSource {
            destination: other,
            hashes,
            events,
        }
        | Change::UnmergeDestination {
            source: other,
            hashes,
            events,
        } => {
            out.unmerged_hashes = hashes;
            out.unmerge_group_id = other.to_string();
            out.unmerged_events = events;
        }
        Change::Workflow { from, to } => {
            out.workflow_from = from;
            out.workflow_to = to;
        }
    }
    out
}

type ExportStream = Pin<Box<dyn Stream<Item = Result<pb::ExportEventsResponse, Status>> + Send>>;

impl Api {
    async fn events_page(
        &self,
        project_id: Uuid,
        filter: &EventFilter,
        cursor: &str,
        limit: u32,
    ) -> Result<(Vec<pb::Event>, String), Error> {
        let cursor = EventCursor::decode(cursor)?;
        let (events, next) = self
            .store
            .list_events(project_id, filter, cursor, page_limit(limit))
            .await?;
        Ok((
            events
                .into_iter()
                .map(|e| convert::event_to_pb(e, false))
                .collect(),
            next.map(|c| c.encode()).unwrap_or_default(),
        ))
    }

    async fn set_status(
        &self,
        ext: &http::Extensions,
        group_id: &str,
        status: GroupStatus,
    ) -> Result<pb::Group, Error> {
        let p = auth::require(ext, Scope::Write)?;
        let id = convert::uuid("error_group_id", group_id)?;
        Ok(convert::group_to_pb(
            self.store
                .set_group_status(p.project_id, id, status, Some(&actor(&p)))
                .await?,
        ))
    }

    /// The id of the team member `who` names (id, email, or `me`: the caller's member); 422
    /// on `assignee` when none.
    async fn member_named(&self, p: &auth::Principal, who: &str) -> Result<Uuid, Error> {
        if who.trim().eq_ignore_ascii_case("me") {
            return p.member_id.ok_or_else(|| {
                Error::invalid_field(
                    "assignee",
                    "\"me\" needs a member's own key; this key belongs to no member",
                    "NO_MEMBER",
                )
            });
        }
        match self.store.find_member(who).await? {
            Some(m) => Ok(m.id),
            None => Err(Error::invalid_field(
                "assignee",
                format!("{who:?} is no member of the team (give a member's id or email)"),
                "UNKNOWN_MEMBER",
            )),
        }
    }
}

#[tonic::async_trait]
impl GroupService for Api {
    #[tracing::instrument(skip_all, name = "faultline.v1.GroupService/ListEvents")]
    async fn list_events(
        &self,
        req: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Read)?;
        let pb::ListEventsRequest {
            filter,
            cursor,
            limit,
        } = req.into_inner();
        let filter = convert::filter_from_pb(filter)?;
        let (events, next_cursor) = self
            .events_page(p.project_id, &filter, &cursor, limit)
            .await?;
        Ok(Response::new(pb::ListEventsResponse {
            events,
            next_cursor,
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.GroupService/SearchEvents")]
    async fn search_events(
        &self,
        req: Request<pb::SearchEventsRequest>,
    ) -> Result<Response<pb::SearchEventsResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Read)?;
        let pb::SearchEventsRequest {
            q,
            filter,
            cursor,
            limit,
        } = req.into_inner();
        if q.trim().is_empty() {
            return Err(Error::required("q").into());
        }
        let mut filter = convert::filter_from_pb(filter)?;
        filter.q = Some(q);
        let (events, next_cursor) = self
            .events_page(p.project_id, &filter, &cursor, limit)
            .await?;
        Ok(Response::new(pb::SearchEventsResponse {
            events,
            next_cursor,
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.GroupService/GetEvent")]
    async fn get_event(
        &self,
        req: Request<pb::GetEventRequest>,
    ) -> Result<Response<pb::GetEventResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Read)?;
        let pb::GetEventRequest { event_id } = req.into_inner();
        let id = convert::uuid("event_id", &event_id)?;
        let mut event = self.store.get_event(p.project_id, id).await?;
        self.sourcemaps.place_stored(&mut event).await?;
        Ok(Response::new(pb::GetEventResponse {
            event: Some(convert::event_to_pb(event, true)),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.GroupService/ListGroups")]
    async fn list_groups(
        &self,
        req: Request<pb::ListGroupsRequest>,
    ) -> Result<Response<pb::ListGroupsResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Read)?;
        let pb::ListGroupsRequest {
            status,
            sort,
            cursor,
            limit,
            query,
            assignee,
            first_release,
        } = req.into_inner();
        let sort = convert::sort_from_pb(sort)?;
        let cursor = GroupCursor::decode(&cursor)?;
        // Terms of the search take precedence over the request's fields of the same meaning.
        let search = GroupSearch::parse(&query, Utc::now())?.with_fields(
            || convert::status_from_pb("status", status),
            &assignee,
            &first_release,
        )?;
        let filters = search.filters;
        let mut members = HashMap::new();
        for who in filters.iter().flat_map(|f| f.members()) {
            if !members.contains_key(who) {
                members.insert(who.clone(), self.member_named(&p, who).await?);
            }
        }
        let filters: Vec<Filter<Uuid>> = filters
            .into_iter()
            .map(|f| f.map_members(|who| members[&who]))
            .collect();
        let (groups, next) = self
            .store
            .list_groups(
                p.project_id,
                GroupQuery {
                    words: &search.words,
                    filters: &filters,
                    sort,
                },
                cursor,
                page_limit(limit),
            )
            .await?;
        Ok(Response::new(pb::ListGroupsResponse {
            groups: groups.into_iter().map(convert::group_to_pb).collect(),
            next_cursor: next.map(|c| c.encode()).unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.GroupService/GetGroup")]
    async fn get_group(
        &self,
        req: Request<pb::GetGroupRequest>,
    ) -> Result<Response<pb::GetGroupResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Read)?;
        let pb::GetGroupRequest { group_id } = req.into_inner();
        let id = convert::uuid("error_group_id", &group_id)?;
        Ok(Response::new(convert::detail_to_pb(
            self.store.group_detail(p.project_id, id).await?,
        )))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.GroupService/ListGroupEvents")]
    async fn list_group_events(
        &self,
        req: Request<pb::ListGroupEventsRequest>,
    ) -> Result<Response<pb::ListGroupEventsResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Read)?;
        let pb::ListGroupEventsRequest {
            group_id,
            cursor,
            limit,
        } = req.into_inner();
        let id = convert::uuid("error_group_id", &group_id)?;
        // An unknown group is a 404, not an empty page.
        self.store.get_group(p.project_id, id).await?;
        let filter = EventFilter {
            group_id: Some(id),
            ..EventFilter::default()
        };
        let (events, next_cursor) = self
            .events_page(p.project_id, &filter, &cursor, limit)
            .await?;
        Ok(Response::new(pb::ListGroupEventsResponse {
            events,
            next_cursor,
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.GroupService/ResolveGroup")]
    async fn resolve_group(
        &self,
        req: Request<pb::ResolveGroupRequest>,
    ) -> Result<Response<pb::ResolveGroupResponse>, Status> {
        let pb::ResolveGroupRequest {
            group_id,
            in_next_release,
        } = req.get_ref();
        let group = if *in_next_release {
            let p = auth::require(req.extensions(), Scope::Write)?;
            let id = convert::uuid("error_group_id", group_id)?;
            convert::group_to_pb(
                self.store
                    .resolve_in_next_release(p.project_id, id, Some(&actor(&p)))
                    .await?,
            )
        } else {
            self.set_status(req.extensions(), group_id, GroupStatus::Resolved)
                .await?
        };
        Ok(Response::new(pb::ResolveGroupResponse {
            group: Some(group),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.GroupService/UnresolveGroup")]
    async fn unresolve_group(
        &self,
        req: Request<pb::UnresolveGroupRequest>,
    ) -> Result<Response<pb::UnresolveGroupResponse>, Status> {
        let group = self
            .set_status(
                req.extensions(),
                &req.get_ref().group_id,
                GroupStatus::Unresolved,
            )
            .await?;
        Ok(Response::new(pb::UnresolveGroupResponse {
            group: Some(group),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.GroupService/AssignGroup")]
    async fn assign_group(
        &self,
        req: Request<pb::AssignGroupRequest>,
    ) -> Result<Response<pb::AssignGroupResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Write)?;
        let pb::AssignGroupRequest { group_id, assignee } = req.into_inner();
        let id = convert::uuid("error_group_id", &group_id)?;
        let member = match assignee.trim() {
            "" => None,
            who => Some(self.member_named(&p, who).await?),
        };
        let by = actor(&p);
        let (group, changed) = self
            .store
            .assign_group(p.project_id, id, member, Some(&by))
            .await?;
        if changed && group.assignee.is_some() {
            assigned::spawn(self.store.clone(), p.project_id, by, vec![group.clone()]);
        }
        Ok(Response::new(pb::AssignGroupResponse {
            group: Some(convert::group_to_pb(group)),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.GroupService/ListReleases")]
    async fn list_releases(
        &self,
        req: Request<pb::ListReleasesRequest>,
    ) -> Result<Response<pb::ListReleasesResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Read)?;
        let limit = bounded_limit(req.get_ref().limit, 50, RELEASES_LISTED_MAX);
        let releases = self.store.list_releases(p.project_id, limit).await?;
        Ok(Response::new(pb::ListReleasesResponse {
            releases: releases
                .into_iter()
                .map(|r| pb::Release {
                    version: r.version,
                    first_seen: Some(convert::ts(r.first_seen)),
                    event_count: r.event_count,
                    issue_count: r.issue_count,
                    new_issue_count: r.new_issue_count,
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.GroupService/ListGroupComments")]
    async fn list_group_comments(
        &self,
        req: Request<pb::ListGroupCommentsRequest>,
    ) -> Result<Response<pb::ListGroupCommentsResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Read)?;
        let id = convert::uuid("error_group_id", &req.get_ref().group_id)?;
        let comments = self.store.list_comments(p.project_id, id).await?;
        Ok(Response::new(pb::ListGroupCommentsResponse {
            comments: comments.into_iter().map(comment_to_pb).collect(),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.GroupService/ListGroupActivity")]
    async fn list_group_activity(
        &self,
        req: Request<pb::ListGroupActivityRequest>,
    ) -> Result<Response<pb::ListGroupActivityResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Read)?;
        let pb::ListGroupActivityRequest { group_id, limit } = req.into_inner();
        let id = convert::uuid("error_group_id", &group_id)?;
        let limit = bounded_limit(limit, ACTIVITY_DEFAULT, ACTIVITY_MAX);
        let activity = self.store.list_activity(p.project_id, id, limit).await?;
        Ok(Response::new(pb::ListGroupActivityResponse {
            activity: activity.into_iter().map(activity_to_pb).collect(),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.GroupService/AddGroupComment")]
    async fn add_group_comment(
        &self,
        req: Request<pb::AddGroupCommentRequest>,
    ) -> Result<Response<pb::AddGroupCommentResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Write)?;
        let pb::AddGroupCommentRequest { group_id, text } = req.into_inner();
        let id = convert::uuid("error_group_id", &group_id)?;
        let comment = self
            .store
            .add_comment(p.project_id, id, &actor(&p), &text)
            .await?;
        Ok(Response::new(pb::AddGroupCommentResponse {
            comment: Some(comment_to_pb(comment)),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.GroupService/DeleteGroupComment")]
    async fn delete_group_comment(
        &self,
        req: Request<pb::DeleteGroupCommentRequest>,
    ) -> Result<Response<pb::DeleteGroupCommentResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Write)?;
        let pb::DeleteGroupCommentRequest {
            group_id,
            comment_id,
        } = req.into_inner();
        let group = convert::uuid("error_group_id", &group_id)?;
        let id = convert::uuid("comment_id", &comment_id)?;
        self.store
            .delete_comment(p.project_id, group, id, &actor(&p))
            .await?;
        Ok(Response::new(pb::DeleteGroupCommentResponse { comment_id }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.GroupService/UpdateGroupComment")]
    async fn update_group_comment(
        &self,
        req: Request<pb::UpdateGroupCommentRequest>,
    ) -> Result<Response<pb::UpdateGroupCommentResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Write)?;
        let pb::UpdateGroupCommentRequest {
            group_id,
            comment_id,
            text,
        } = req.into_inner();
        let group = convert::uuid("error_group_id", &group_id)?;
        let id = convert::uuid("comment_id", &comment_id)?;
        let comment = self
            .store
            .edit_comment(p.project_id, group, id, &actor(&p), &text)
            .await?;
        Ok(Response::new(pb::UpdateGroupCommentResponse {
            comment: Some(comment_to_pb(comment)),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.GroupService/IgnoreGroup")]
    async fn ignore_group(
        &self,
        req: Request<pb::IgnoreGroupRequest>,
    ) -> Result<Response<pb::IgnoreGroupResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Write)?;
        let pb::IgnoreGroupRequest {
            group_id,
            ignore_duration,
            ignore_count,
            ignore_user_count,
            ignore_window,
            ignore_user_window,
            until_escalating,
        } = req.into_inner();
        let id = convert::uuid("error_group_id", &group_id)?;
        let snooze = model::Snooze::new(ignore_duration, ignore_count, ignore_user_count)?
            .with_windows(ignore_window, ignore_user_window)?
            .until_escalating(until_escalating)?;
        let by = actor(&p);
        let group = convert::group_to_pb(
            self.store
                .set_group_status_snoozed(p.project_id, id, GroupStatus::Ignored, snooze, Some(&by))
                .await?,
        );
        Ok(Response::new(pb::IgnoreGroupResponse {
            group: Some(group),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.GroupService/DeleteGroup")]
    async fn delete_group(
        &self,
        req: Request<pb::DeleteGroupRequest>,
    ) -> Result<Response<pb::DeleteGroupResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Write)?;
        let pb::DeleteGroupRequest { group_id } = req.into_inner();
        let id = convert::uuid("error_group_id", &group_id)?;
        let deleted_events = self.store.delete_group(p.project_id, id).await?;
        Ok(Response::new(pb::DeleteGroupResponse {
            group_id: id.to_string(),
            deleted_events,
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.GroupService/MergeGroups")]
    async fn merge_groups(
        &self,
        req: Request<pb::MergeGroupsRequest>,
    ) -> Result<Response<pb::MergeGroupsResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Write)?;
        let pb::MergeGroupsRequest { group_ids } = req.into_inner();
        let ids = group_ids
            .iter()
            .map(|raw| convert::uuid("error_group_ids", raw))
            .collect::<Result<Vec<_>, _>>()?;
        let set = model::MergeSet::new(ids)?;
        let (group, merged, moved_events) = self
            .store
            .merge_groups(p.project_id, &set, Some(&actor(&p)))
            .await?;
        Ok(Response::new(pb::MergeGroupsResponse {
            group: Some(convert::group_to_pb(group)),
            merged_group_ids: merged.iter().map(Uuid::to_string).collect(),
            moved_events,
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.GroupService/ListFeedback")]
    async fn list_feedback(
        &self,
        req: Request<pb::ListFeedbackRequest>,
    ) -> Result<Response<pb::ListFeedbackResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Read)?;
        let pb::ListFeedbackRequest {
            group_id,
            cursor,
            limit,
        } = req.into_inner();
        let group = convert::optional_uuid("error_group_id", &group_id)?;
        let cursor = CreatedCursor::decode(&cursor)?;
        let (reports, next) = self
            .store
            .list_user_reports(p.project_id, group, cursor, page_limit(limit))
            .await?;
        Ok(Response::new(pb::ListFeedbackResponse {
            feedback: reports.into_iter().map(convert::feedback_to_pb).collect(),
            next_cursor: next.map(|c| c.encode()).unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.GroupService/ListGroupHashes")]
    async fn list_group_hashes(
        &self,
        req: Request<pb::ListGroupHashesRequest>,
    ) -> Result<Response<pb::ListGroupHashesResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Read)?;
        let pb::ListGroupHashesRequest { group_id } = req.into_inner();
        let id = convert::uuid("error_group_id", &group_id)?;
        let keys = self.store.group_keys(p.project_id, id).await?;
        Ok(Response::new(pb::ListGroupHashesResponse {
            hashes: keys
                .keys
                .into_iter()
                .map(|k| pb::GroupHash {
                    hash: k.hash,
                    kind: k.kind.map(|k| k.as_str().to_owned()).unwrap_or_default(),
                    primary: k.primary,
                    events: k.events,
                    latest_event: k.latest.map(|e| convert::event_to_pb(e, false)),
                })
                .collect(),
            other_events: keys.other_events,
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.GroupService/UnmergeGroup")]
    async fn unmerge_group(
        &self,
        req: Request<pb::UnmergeGroupRequest>,
    ) -> Result<Response<pb::UnmergeGroupResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Write)?;
        let pb::UnmergeGroupRequest { group_id, hashes } = req.into_inner();
        let id = convert::uuid("error_group_id", &group_id)?;
        let keys = model::UnmergeKeys::new(hashes)?;
        let out = self
            .store
            .unmerge_group(p.project_id, id, &keys, Some(&actor(&p)))
            .await?;
        Ok(Response::new(pb::UnmergeGroupResponse {
            group: Some(convert::group_to_pb(out.source)),
            new_group: Some(convert::group_to_pb(out.destination)),
            moved_events: out.moved_events,
        }))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.GroupService/BulkUpdateGroups")]
    async fn bulk_update_groups(
        &self,
        req: Request<pb::BulkUpdateGroupsRequest>,
    ) -> Result<Response<pb::BulkUpdateGroupsResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Write)?;
        let pb::BulkUpdateGroupsRequest {
            group_ids,
            action,
            ignore_duration,
            ignore_count,
            assignee,
            ignore_user_count,
            ignore_window,
            ignore_user_window,
            until_escalating,
        } = req.into_inner();
        // Checked once, before any group changes; only an ignore takes it.
        let snooze = model::Snooze::new(ignore_duration, ignore_count, ignore_user_count)?
            .with_windows(ignore_window, ignore_user_window)?
            .until_escalating(until_escalating)?;
        let action = match pb::BulkAction::try_from(action) {
            Ok(pb::BulkAction::Unspecified) => return Err(Error::required("action").into()),
            Ok(a) => a,
            Err(_) => {
                return Err(Error::invalid_field(
                    "action",
                    format!("unknown action {action}"),
                    "INVALID_ENUM",
                )
                .into());
            }
        };
        if group_ids.is_empty() {
            return Err(Error::invalid_field(
                "error_group_ids",
                "must name at least one group",
                "REQUIRED",
            )
            .into());
        }
        if group_ids.len() > BULK_MAX {
            return Err(Error::invalid_field(
                "error_group_ids",
                format!("at most {BULK_MAX} groups per request"),
                "TOO_MANY",
            )
            .into());
        }
        // Looked up once too; only an assignment takes it.
        let member = match (action, assignee.trim()) {
            (pb::BulkAction::Assign, who) if !who.is_empty() => {
                Some(self.member_named(&p, who).await?)
            }
            _ => None,
        };
        let by = actor(&p);
        let mut succeeded = Vec::new();
        let mut failed = Vec::new();
        // The groups this request gave to `member`: told in one message.
        let mut newly_assigned = Vec::new();
        for raw in group_ids {
            let outcome = match convert::uuid("error_group_ids", &raw) {
                Err(e) => Err(e),
                Ok(id) => match action {
                    pb::BulkAction::Resolve => self
                        .store
                        .set_group_status(p.project_id, id, GroupStatus::Resolved, Some(&by))
                        .await
                        .map(|_| ()),
                    pb::BulkAction::Unresolve => self
                        .store
                        .set_group_status(p.project_id, id, GroupStatus::Unresolved, Some(&by))
                        .await
                        .map(|_| ()),
                    pb::BulkAction::Ignore => self
                        .store
                        .set_group_status_snoozed(
                            p.project_id,
                            id,
                            GroupStatus::Ignored,
                            snooze,
                            Some(&by),
                        )
                        .await
                        .map(|_| ()),
                    pb::BulkAction::Delete => {
                        self.store.delete_group(p.project_id, id).await.map(|_| ())
                    }
                    pb::BulkAction::Assign => self
                        .store
                        .assign_group(p.project_id, id, member, Some(&by))
                        .await
                        .map(|(group, changed)| {
                            if changed && group.assignee.is_some() {
                                newly_assigned.push(group);
                            }
                        }),
                    pb::BulkAction::Unspecified => Err(Error::required("action")),
                },
            };
            match outcome {
                Ok(()) => succeeded.push(raw),
                Err(e @ Error::Unavailable(_)) | Err(e @ Error::Internal(_)) => {
                    return Err(e.into());
                }
                Err(e) => failed.push(pb::BulkFailure {
                    group_id: raw,
                    code: e.code().to_owned(),
                    message: e.to_string(),
                }),
            }
        }
        if !newly_assigned.is_empty() {
            assigned::spawn(self.store.clone(), p.project_id, by, newly_assigned);
        }
        Ok(Response::new(pb::BulkUpdateGroupsResponse {
            action: action as i32,
            succeeded,
            failed,
        }))
    }

    type ExportEventsStream = ExportStream;

    #[tracing::instrument(skip_all, name = "faultline.v1.GroupService/ExportEvents")]
    async fn export_events(
        &self,
        req: Request<pb::ExportEventsRequest>,
    ) -> Result<Response<Self::ExportEventsStream>, Status> {
        let p = auth::require(req.extensions(), Scope::Read)?;
        let pb::ExportEventsRequest { filter, format } = req.into_inner();
        let filter = convert::filter_from_pb(filter)?;
        let format = match pb::ExportFormat::try_from(format) {
            Ok(pb::ExportFormat::Unspecified | pb::ExportFormat::Json) => Format::Json,
            Ok(pb::ExportFormat::Csv) => Format::Csv,
            Err(_) => {
                return Err(Error::invalid_field(
                    "format",
                    format!("unknown format {format}"),
                    "INVALID_ENUM",
                )
                .into());
            }
        };
        // Read the first page before answering, so a database failure is a status, not a broken stream.
        let first = self
            .store
            .export_page(p.project_id, &filter, None, self.export_page)
            .await?;

        // A small channel: the reader's pace sets ours, so memory stays at a few pages.
        let (tx, rx) = mpsc::channel::<Result<pb::ExportEventsResponse, Status>>(2);
        let api = self.clone();
        tokio::spawn(async move {
            let mut writer = export::Writer::new(format);
            let send = |data: Vec<u8>, first: bool| {
                let tx = tx.clone();
                let timeout = api.export_send_timeout;
                async move {
                    let msg = pb::ExportEventsResponse {
                        data,
                        content_type: if first {
                            format.content_type().to_owned()
                        } else {
                            String::new()
                        },
                    };
                    matches!(
                        tokio::time::timeout(timeout, tx.send(Ok(msg))).await,
                        Ok(Ok(()))
                    )
                }
            };
            let mut chunk = writer.start();
            let mut page = first;
            let mut exported = 0u64;
            let mut is_first = true;
            loop {
                chunk.extend(writer.chunk(&page.events));
                exported += page.events.len() as u64;
                if !send(std::mem::take(&mut chunk), is_first).await {
                    tracing::info!(exported, "export reader went away");
                    return;
                }
                is_first = false;
                let Some(next) = page.next else { break };
                page = match api
                    .store
                    .export_page(p.project_id, &filter, Some(next), api.export_page)
                    .await
                {
                    Ok(pg) => pg,
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                };
            }
            let _ = send(writer.finish(), false).await;
            tracing::info!(exported, "export finished");
        });
        Ok(Response::new(
            Box::pin(ReceiverStream::new(rx)) as ExportStream
        ))
    }

    #[tracing::instrument(skip_all, name = "faultline.v1.GroupService/TransitionWorkflow")]
    async fn transition_workflow(
        &self,
        req: Request<pb::TransitionWorkflowRequest>,
    ) -> Result<Response<pb::TransitionWorkflowResponse>, Status> {
        let p = auth::require(req.extensions(), Scope::Write)?;
        let pb::TransitionWorkflowRequest { group_id, stage } = req.into_inner();
        let id = convert::uuid("error_group_id", &group_id)?;
        let to = convert::stage_from_pb("stage", stage)?;
        let (group, from) = self
            .store
            .transition_workflow(p.project_id, id, to, Some(&actor(&p)))
            .await?;
        Ok(Response::new(pb::TransitionWorkflowResponse {
            group: Some(convert::group_to_pb(group)),
            previous_stage: convert::stage_to_pb(from) as i32,
        }))
    }
}
