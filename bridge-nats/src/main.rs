//! `wslink-bridge --config bridge.toml [--shard K/N] [--instance NAME] [--print-assignment]`
//!
//! Runs one shard of the bridge until SIGINT or SIGTERM, then drains (the
//! acks in flight are awaited) and prints a summary as one JSON line on
//! stdout; the log (warnings, and the figures every `stats_interval_ms`) goes to stderr. Exit status:
//!
//! - 0 after a clean drain;
//! - 1 when messages were read and not stored: left undrained when the
//!   drain deadline passed (queued, held, awaiting acks, or still in the
//!   pools' buffers), or the pools' event stream had not ended by then; or
//!   when a hole in an exchange's numbering was never checked and marked;
//! - 2 on a bad command line or configuration (also one found at start,
//!   such as a missing `auth_params_env` variable);
//! - 3 when NATS or the stream could not be reached at start, the stream
//!   can never be made as configured (JetStream off, subjects overlapping
//!   another stream's: said at the first answer, without trying again), or
//!   the existing stream does not fit (its subjects or its duplicate window);
//! - 4 when every message was stored or accounted for, but some were
//!   rejected as too large for the server (each replaced by a `rejected`
//!   gap marker on its subject).

use std::process::ExitCode;
use std::sync::Arc;

use wslink_bridge_nats::{shard, Config, Stats};

const USAGE: &str = "usage: wslink-bridge --config FILE [--shard K/N] [--instance NAME] [--print-assignment]";

struct Args {
    config: String,
    shard: Option<(u32, u32)>,
    instance: Option<String>,
    print_assignment: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut config, mut shard, mut instance, mut print_assignment) = (None, None, None, false);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => config = Some(args.next().ok_or("--config needs a file")?),
            "--shard" => {
                let v = args.next().ok_or("--shard needs K/N")?;
                let (k, n) = v.split_once('/').ok_or("--shard takes K/N, as 0/4")?;
                let k = k.parse().map_err(|_| format!("--shard: {k:?} is not a number"))?;
                let n = n.parse().map_err(|_| format!("--shard: {n:?} is not a number"))?;
                shard = Some((k, n));
            }
            "--instance" => instance = Some(args.next().ok_or("--instance needs a name")?),
            "--print-assignment" => print_assignment = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(Args { config: config.ok_or(USAGE)?, shard, instance, print_assignment })
}

fn load(args: &Args) -> Result<Config, wslink_bridge_nats::ConfigError> {
    let mut config = Config::load(args.config.as_ref())?;
    if let Some((k, n)) = args.shard {
        config = config.with_shard(k, n)?;
    }
    if let Some(name) = &args.instance {
        config.bridge.instance = name.clone();
        config.validate()?;
    }
    Ok(config)
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_max_level(tracing::Level::INFO).with_ansi(false).init();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let config = match load(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wslink-bridge: {e}");
            return ExitCode::from(2);
        }
    };
    if args.print_assignment {
        for a in shard::assign(&config) {
            let name = &config.endpoints[a.endpoint].name;
            for (member, channels) in a.per_connection.iter().enumerate() {
                for c in channels {
                    println!("{name}\t{member}\t{c}");
                }
            }
        }
        return ExitCode::SUCCESS;
    }
    // One thread by default: nothing handed between threads (see `worker_threads`).
    let runtime = match config.bridge.worker_threads {
        1 => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        n => tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_all().build(),
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wslink-bridge: cannot start the runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let stats = Arc::new(Stats::default());
    match runtime.block_on(wslink_bridge_nats::run(config, stats, shutdown_signal())) {
        Ok(summary) => {
            println!("{}", serde_json::json!({ "summary": summary }));
            if summary.undrained > 0 || !summary.stream_ended || summary.unmarked_holes > 0 {
                ExitCode::from(1)
            } else if summary.rejected > 0 {
                ExitCode::from(4)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e @ wslink_bridge_nats::BridgeError::Config(_)) => {
            eprintln!("wslink-bridge: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("wslink-bridge: {e}");
            ExitCode::from(3)
        }
    }
}
