//! `faultline-bench`: load generator (`load`), bulk seeder (`seed`) and read-latency probe
//! (`reads`) for a Faultline server on this machine, and two references for what the machine
//! can do at all: a server that does nothing (`null-server`) and bare durable appends
//! (`store-floor`).
//!
//! Every command refuses a target that is not a loopback address: it is meant for a server
//! you started yourself, never for a shared or production one. The null server likewise
//! listens on loopback only.

mod codec;
mod common;
mod events;
mod floor;
mod h1;
mod h2;
mod load;
mod null;
mod procinfo;
mod reads;
mod seed;
mod sourcemaps;
mod stats;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use common::CommonArgs;

#[derive(Parser)]
#[command(
    name = "faultline-bench",
    version,
    about = "Benchmarks a local Faultline server: capture load (REST, gRPC, batches), bulk seeding and read latencies."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sends capture load for a bounded time, then checks that every acknowledged event is
    /// committed (reading back the counts of the groups the answers named).
    Load {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        args: load::LoadArgs,
    },
    /// Loads many events fast through CaptureBatch (gRPC), spread over groups and the last 7 days.
    Seed {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        args: seed::SeedArgs,
    },
    /// Measures the latency of the main read endpoints (run after `seed`).
    Reads {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        args: reads::ReadsArgs,
    },
    /// Measures what placing events in the original source costs a capture: uploads a large
    /// synthetic source map to a release of its own, then times the release's first event (the
    /// map is decoded), the next ones (it is reused) and events of a release without maps.
    SourceMaps {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        args: sourcemaps::SourceMapArgs,
    },
    /// Measures the machine's floor for storing event-sized rows durably, with no server:
    /// bare appends to one table without an index (SQLite as Faultline's writer opens it, or
    /// a loopback PostgreSQL).
    StoreFloor {
        #[command(flatten)]
        args: floor::FloorArgs,
    },
    /// Serves the capture routes (REST and gRPC, one port) in Faultline's answer shapes while
    /// doing no work and storing nothing: `load` against it gives the ceiling of the transport
    /// and the load generator on this machine. A reference for benchmarks, not a Faultline.
    NullServer {
        #[command(flatten)]
        args: null::NullArgs,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Load { common, args } => run(common, |t| load::run(t, args)).await,
        Command::Seed { common, args } => run(common, |t| seed::run(t, args)).await,
        Command::Reads { common, args } => run(common, |t| reads::run(t, args)).await,
        Command::SourceMaps { common, args } => run(common, |t| sourcemaps::run(t, args)).await,
        Command::StoreFloor { args } => floor::run(args).await,
        Command::NullServer { args } => null::run(args).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("faultline-bench: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run<F, Fut>(common: CommonArgs, f: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(common::Target) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<ExitCode>>,
{
    let target = common.resolve()?;
    f(target).await
}
