//! Schema migrations, run by the server at start-up. One migration per file; the same
//! statements serve SQLite and PostgreSQL because they are built with sea-query's schema helpers.

pub use sea_orm_migration::prelude::*;

mod m20261121_000001_initial;
mod m20261121_000002_group_stats;
mod m20261121_000003_workflow;
mod m20261121_000004_sentry;
mod m20261121_000005_group_hashes;
mod m20261121_000006_access;
mod m20261121_000007_limits;
mod m20261121_000008_log_center;
mod m20261204_000009_events_inline;
mod m20261205_000010_search_forget;
mod m20261205_000011_pg_search;
mod m20261205_000012_group_stats_clustered;
mod m20261205_000013_drop_status_prefix_index;
mod m20261206_000014_alerts;
mod m20261206_000015_snooze;
mod m20261207_000016_unignored;
mod m20261207_000017_releases;
mod m20261207_000018_release_order;
mod m20261207_000019_assignee;
mod m20261207_000020_comments;
mod m20261207_000021_activity;
mod m20261207_000022_first_release;
mod m20261207_000023_comment_edits;
mod m20261207_000024_alert_filters;
mod m20261207_000025_release_files;
mod m20261207_000026_upload_chunks;
mod m20261207_000027_debug_files;
mod m20261207_000028_inbound_filters;
mod m20261207_000029_user_reports;
mod m20261207_000030_file_last_used;
mod m20261207_000031_snooze_users;
mod m20261207_000032_alert_tags;
mod m20261208_000033_snooze_rates;
mod m20261208_000034_until_escalating;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_initial::Migration),
            Box::new(m20261121_000002_group_stats::Migration),
            Box::new(m20261121_000003_workflow::Migration),
            Box::new(m20261121_000004_sentry::Migration),
            Box::new(m20261121_000005_group_hashes::Migration),
            Box::new(m20261121_000006_access::Migration),
            Box::new(m20261121_000007_limits::Migration),
            Box::new(m20261121_000008_log_center::Migration),
            Box::new(m20261204_000009_events_inline::Migration),
            Box::new(m20261205_000010_search_forget::Migration),
            Box::new(m20261205_000011_pg_search::Migration),
            Box::new(m20261205_000012_group_stats_clustered::Migration),
            Box::new(m20261205_000013_drop_status_prefix_index::Migration),
            Box::new(m20261206_000014_alerts::Migration),
            Box::new(m20261206_000015_snooze::Migration),
            Box::new(m20261207_000016_unignored::Migration),
            Box::new(m20261207_000017_releases::Migration),
            Box::new(m20261207_000018_release_order::Migration),
            Box::new(m20261207_000019_assignee::Migration),
            Box::new(m20261207_000020_comments::Migration),
            Box::new(m20261207_000021_activity::Migration),
            Box::new(m20261207_000022_first_release::Migration),
            Box::new(m20261207_000023_comment_edits::Migration),
            Box::new(m20261207_000024_alert_filters::Migration),
            Box::new(m20261207_000025_release_files::Migration),
            Box::new(m20261207_000026_upload_chunks::Migration),
            Box::new(m20261207_000027_debug_files::Migration),
            Box::new(m20261207_000028_inbound_filters::Migration),
            Box::new(m20261207_000029_user_reports::Migration),
            Box::new(m20261207_000030_file_last_used::Migration),
            Box::new(m20261207_000031_snooze_users::Migration),
            Box::new(m20261207_000032_alert_tags::Migration),
            Box::new(m20261208_000033_snooze_rates::Migration),
            Box::new(m20261208_000034_until_escalating::Migration),
        ]
    }
}
