//! Comments on groups (issues): who wrote what, when, oldest first.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use super::{
    Store,
    activity::{Actor, signature},
    db_err,
    entity::group_comment,
};
use crate::{domain::model::from_millis, error::Error};

/// Most comments a group's listing returns (the oldest ones).
pub const COMMENTS_MAX: u64 = 1000;
/// Longest comment, in characters.
pub const COMMENT_CHARS_MAX: usize = 10_000;

/// A comment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: Uuid,
    pub group_id: Uuid,
    /// The member whose key wrote it, if any.
    pub member_id: Option<Uuid>,
    pub author: String,
    pub text: String,
    pub created_at: DateTime<Utc>,
    /// When its author last edited it.
    pub edited_at: Option<DateTime<Utc>>,
}

/// `text` trimmed, when it is 1 to `COMMENT_CHARS_MAX` characters.
fn comment_text(text: &str) -> Result<&str, Error> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::required("text"));
    }
    if text.chars().count() > COMMENT_CHARS_MAX {
        return Err(Error::invalid_field(
            "text",
            format!("at most {COMMENT_CHARS_MAX} characters"),
            "TOO_LONG",
        ));
    }
    Ok(text)
}

/// Whether `by` wrote `c`: the same key, or the same member.
fn written_by(c: &group_comment::Model, by: &Actor) -> bool {
    c.key_id == by.key_id || (c.member_id.is_some() && c.member_id == by.member_id)
}

fn comment(m: group_comment::Model) -> Comment {
    Comment {
        id: m.id,
        group_id: m.group_id,
        member_id: m.member_id,
        author: m.author,
        text: m.text,
        created_at: from_millis(m.created_at),
        edited_at: m.edited_at.map(from_millis),
    }
}

impl Store {
    /// The comments on a group of the project, oldest first (at most `COMMENTS_MAX`).
    pub async fn list_comments(
        &self,
        project_id: Uuid,
        group_id: Uuid,
    ) -> Result<Vec<Comment>, Error> {
        self.get_group(project_id, group_id).await?;
        Ok(group_comment::Entity::find()
            .filter(group_comment::Column::GroupId.eq(group_id))
            .filter(group_comment::Column::ProjectId.eq(project_id))
            .order_by_asc(group_comment::Column::CreatedAt)
            .order_by_asc(group_comment::Column::Id)
            .limit(COMMENTS_MAX)
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(comment)
            .collect())
    }

    /// Adds a comment to a group of the project: `text` trimmed, 1 to `COMMENT_CHARS_MAX`
    /// characters, signed with the member's name (or email) when the key is a member's own,
    /// else with the key's name.
    pub async fn add_comment(
        &self,
        project_id: Uuid,
        group_id: Uuid,
        by: &Actor,
        text: &str,
    ) -> Result<Comment, Error> {
        let text = comment_text(text)?;
        self.get_group(project_id, group_id).await?;
        let name = signature(&self.db, by).await?.name;
        let row = group_comment::ActiveModel {
            id: Set(Uuid::now_v7()),
            project_id: Set(project_id),
            group_id: Set(group_id),
            member_id: Set(by.member_id),
            key_id: Set(by.key_id),
            author: Set(name),
            text: Set(text.to_owned()),
            created_at: Set(Utc::now().timestamp_millis()),
            edited_at: Set(None),
        }
        .insert(&self.db)
        .await
        .map_err(db_err)?;
        Ok(comment(row))
    }

    /// Replaces the text of a comment on a group of the project (checked as `add_comment`
    /// checks it). Only the key (or the member) that wrote it may: an admin deletes another's
    /// words but does not rewrite them.
    pub async fn edit_comment(
        &self,
        project_id: Uuid,
        group_id: Uuid,
        id: Uuid,
        by: &Actor,
        text: &str,
    ) -> Result<Comment, Error> {
        let text = comment_text(text)?;
        let c = self.comment_of(project_id, group_id, id).await?;
        if !written_by(&c, by) {
            return Err(Error::PermissionDenied(
                "only the comment's author edits it".into(),
            ));
        }
        let mut row: group_comment::ActiveModel = c.into();
        row.text = Set(text.to_owned());
        row.edited_at = Set(Some(Utc::now().timestamp_millis()));
        let row = row.update(&self.db).await.map_err(db_err)?;
        Ok(comment(row))
    }

    /// A comment on a group of the project.
    async fn comment_of(
        &self,
        project_id: Uuid,
        group_id: Uuid,
        id: Uuid,
    ) -> Result<group_comment::Model, Error> {
        group_comment::Entity::find_by_id(id)
            .filter(group_comment::Column::GroupId.eq(group_id))
            .filter(group_comment::Column::ProjectId.eq(project_id))
            .one(&self.db)
            .await
            .map_err(db_err)?
            .ok_or(Error::NotFound { what: "comment" })
    }

    /// Deletes a comment on a group of the project. Only the key (or the member) that wrote it,
    /// or an admin, may.
    pub async fn delete_comment(
        &self,
        project_id: Uuid,
        group_id: Uuid,
        id: Uuid,
        by: &Actor,
    ) -> Result<(), Error> {
        let c = self.comment_of(project_id, group_id, id).await?;
        if !written_by(&c, by) && !by.admin {
            return Err(Error::PermissionDenied(
                "only the comment's author or an admin deletes it".into(),
            ));
        }
        let res = group_comment::Entity::delete_many()
            .filter(group_comment::Column::Id.eq(id))
            .filter(group_comment::Column::GroupId.eq(group_id))
            .filter(group_comment::Column::ProjectId.eq(project_id))
            .exec(&self.db)
            .await
            .map_err(db_err)?;
        if res.rows_affected == 0 {
            return Err(Error::NotFound { what: "comment" });
        }
        Ok(())
    }
}
