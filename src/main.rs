//! The `healthcheck` command: parse the command line, run the mode, map the
//! outcome to an exit code.

use std::process::ExitCode;

use healthcheck::front::cli::{self, Command};
use healthcheck::front::error::Error;
use healthcheck::front::{check, run};
use healthcheck::serve;
use healthcheck::wire::VERSION;

/// Exit codes from sysexits.h (EX_USAGE, EX_OSERR), as linkerd-await and
/// other wrappers use them.
const EX_USAGE: u8 = 64;
const EX_OSERR: u8 = 71;
/// `check`: some check failed.
const EXIT_FAILED: u8 = 1;

fn main() -> ExitCode {
    let args = std::env::args_os().skip(1).collect();
    match cli::parse(args, |name| std::env::var(name).ok()) {
        Ok(command) => match execute(command) {
            Ok(code) => ExitCode::from(code),
            Err(e) => fail(&e),
        },
        Err(e) => fail(&Error::Usage(e)),
    }
}

fn execute(command: Command) -> Result<u8, Error> {
    let dry_run = match &command {
        Command::Serve(c) => c.dry_run,
        Command::Check(c) => c.dry_run,
        Command::Run(c) => c.dry_run,
        Command::Help | Command::Version => false,
    };
    if dry_run {
        print!("{}", cli::describe(&command));
        return Ok(0);
    }
    match command {
        Command::Help => print!("{}", cli::USAGE),
        Command::Version => println!("healthcheck {VERSION}"),
        Command::Serve(config) => serve::run(config)?,
        Command::Check(config) => return Ok(if check::check(&config)? { 0 } else { EXIT_FAILED }),
        Command::Run(config) => return run::run(&config),
    }
    Ok(0)
}

/// One plain line, once: the person at the terminal and whoever reads the
/// logs see the same line (a logfmt copy of it told them nothing more).
fn fail(e: &Error) -> ExitCode {
    eprintln!("healthcheck: error: {e}");
    match e {
        Error::Usage(_) => {
            eprintln!("Try 'healthcheck --help' for usage.");
            ExitCode::from(EX_USAGE)
        }
        _ => ExitCode::from(EX_OSERR),
    }
}
