//! sea-orm entities, one per table. Only `store` sees them.

pub mod alert_rule;
pub mod api_key;
pub mod audit;
pub mod debug_file;
pub mod event;
pub mod event_tag;
pub mod filtered_event;
pub mod group;
pub mod group_activity;
pub mod group_comment;
pub mod group_hash;
pub mod group_hourly;
pub mod group_stat;
pub mod incident;
pub mod integration;
pub mod member;
pub mod project;
pub mod project_name;
pub mod project_setting;
pub mod release;
pub mod release_file;
pub mod retention;
pub mod upload_chunk;
pub mod user_report;
