//! `sluice`: the one binary of Sluice — server (`serve`), stream worker (`worker`) and the
//! client verbs that CI pipelines and people use against the REST API.

mod args;
mod client;
mod commands;
mod crd;
mod input;
mod logging;
mod serve;

use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser};

use args::{Cli, Command};
use commands::Failure;

/// jemalloc, not the system allocator: the job's threads (transform, sink, librdkafka's)
/// allocate and free many small records each; glibc's per-thread arenas kept more memory
/// and ran the `backfill_join` bench's PostgreSQL backfill ~12 % slower (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Exit code for usage errors and verbs this build does not have yet.
const EXIT_USAGE: u8 = 2;
/// Exit code for a refused spec or a failed request.
const EXIT_REJECTED: u8 = 1;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Worker(args) => serve::work(args),
        Command::Crd { out } => crd::run(out.as_deref()),
        Command::Completion { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "sluice", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        command @ (Command::Apply { .. }
        | Command::Plan { .. }
        | Command::Get { .. }
        | Command::Describe { .. }
        | Command::Delete { .. }
        | Command::Approve { .. }
        | Command::Reject { .. }
        | Command::Token { .. }
        | Command::Audit { .. }
        | Command::Demo(_)
        | Command::Verify { .. }) => client_verb(&cli.client, command),
    }
}

fn client_verb(options: &args::ClientArgs, command: Command) -> ExitCode {
    let verb = command.verb();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("sluice {verb}: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let client = client::Client::new(&options.url, options.token.clone());
    let result = runtime.block_on(async {
        match &command {
            Command::Apply {
                files,
                wait,
                timeout,
            } => commands::apply::run(&client, files, *wait, Duration::from_secs(*timeout)).await,
            Command::Plan { files } => commands::plan::run(&client, files).await,
            Command::Get {
                kind,
                name,
                team,
                output,
            } => commands::get::run(&client, kind, name.as_deref(), team.as_deref(), *output).await,
            Command::Describe { kind, name, team } => {
                commands::get::describe(&client, kind, name, team.as_deref()).await
            }
            Command::Delete { kind, name, team } => {
                commands::delete::run(&client, kind, name, team.as_deref()).await
            }
            Command::Approve { product, comment } => {
                commands::decide::run(&client, product, comment.as_deref(), true).await
            }
            Command::Reject { product, comment } => {
                commands::decide::run(&client, product, Some(comment), false).await
            }
            Command::Token { action } => commands::admin::token(&client, action).await,
            Command::Audit { action } => commands::admin::audit(&client, action.as_ref()).await,
            Command::Demo(args) => commands::demo::run(&client, args).await,
            Command::Verify { product } => commands::verify::run(&client, product).await,
            _ => Err(Failure::Usage(format!("{verb} is not a client verb"))),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("sluice {verb}: {message}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::Rejected(message)) => {
            eprintln!("sluice {verb}: {message}");
            ExitCode::from(EXIT_REJECTED)
        }
    }
}
