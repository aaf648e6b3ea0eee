//! `wslink URL`: look at a WebSocket feed from the command line, with
//! wslink's reconnect, heartbeat, subscriptions and requests. `--help` lists
//! the flags and the exit codes.
//!
//! The run itself (`run.rs`) is written once, generic over
//! `wslink_adapter::Runtime`; this file only reads the arguments (`parse.rs`
//! into `args.rs`'s types) and picks the runtime: a tokio current-thread
//! runtime or `smol::block_on`.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod args;
mod exit;
mod help;
mod input;
mod log;
mod output;
mod parse;
mod redact;
mod run;
mod status;
mod values;

use std::io::IsTerminal;
use std::process::ExitCode;

use args::{Args, Command, RuntimeKind};
use exit::Exit;
use output::{Console, Format};
use status::StatusLine;

fn main() -> ExitCode {
    match parse::parse(std::env::args_os().skip(1)) {
        Ok(Command::Help) => print!("{}", help::HELP),
        Ok(Command::Version) => println!("wslink {}", env!("CARGO_PKG_VERSION")),
        Ok(Command::Run(args)) => return start(*args).into(),
        Err(e) => {
            eprintln!("wslink: error: {e}\nTry 'wslink --help' for the flags.");
            return Exit::Usage.into();
        }
    }
    ExitCode::SUCCESS
}

/// Runs on the runtime the arguments name.
fn start(args: Args) -> Exit {
    let status_shown = std::io::stderr().is_terminal() && !args.no_status;
    if let Some(warning) = log::init(args.quiet, args.verbose, status_shown) {
        eprintln!("wslink: warning: {warning}");
    }
    let status = StatusLine::new(status_shown);
    let format = Format { json: args.json, timestamps: args.timestamps };
    let console = Console::new(format, status, std::io::stdout().is_terminal(), args.quiet);
    match args.runtime {
        RuntimeKind::Tokio => match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt.block_on(run::run::<wslink_tokio::Tokio>(args, console)),
            Err(e) => {
                eprintln!("wslink: error: cannot start the tokio runtime: {e}");
                Exit::Failed
            }
        },
        RuntimeKind::Smol => smol::block_on(run::run::<wslink_smol::Smol>(args, console)),
    }
}
