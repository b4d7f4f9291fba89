//! The `healthcheck` command: parse the command line, run the mode, map the
//! outcome to an exit code.

use std::process::ExitCode;

use healthcheck::cli::{self, Command};
use healthcheck::{log, serve, Error, VERSION};

/// Exit codes from sysexits.h, as Kubernetes tooling expects of a CLI.
const EX_USAGE: u8 = 64;
const EX_OSERR: u8 = 71;

fn main() -> ExitCode {
    let args = std::env::args_os().skip(1).collect();
    let command = match cli::parse(args, |name| std::env::var(name).ok()) {
        Ok(command) => command,
        Err(e) => return fail(&Error::Usage(e)),
    };
    let result = match command {
        Command::Help => {
            print!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Command::Version => {
            println!("healthcheck {VERSION}");
            return ExitCode::SUCCESS;
        }
        ref cmd @ (Command::Serve(ServeConfig { dry_run: true, .. })) => {
            print!("{}", cli::describe(cmd));
            return ExitCode::SUCCESS;
        }
        Command::Serve(config) => serve::run(config),
        Command::Check(_) | Command::Run(_) => todo!(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

use healthcheck::cli::ServeConfig;

fn fail(e: &Error) -> ExitCode {
    match e {
        Error::Usage(e) => {
            eprintln!("healthcheck: error: {e}");
            eprintln!("Try 'healthcheck --help' for usage.");
            ExitCode::from(EX_USAGE)
        }
        e => {
            eprintln!("healthcheck: error: {e}");
            log::error("fatal").kv("error", e);
            ExitCode::from(EX_OSERR)
        }
    }
}
