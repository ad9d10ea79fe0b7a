//! `sluice`: the one binary of Sluice — server (`serve`), stream worker (`worker`) and the
//! client verbs that CI pipelines and people use against the REST API.

mod args;
mod logging;
mod serve;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use args::{Cli, Command};

/// Exit code for usage errors and verbs this build does not have yet.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Completion { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "sluice", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("sluice {}: not implemented yet in this build", other.verb());
            ExitCode::from(EXIT_USAGE)
        }
    }
}
