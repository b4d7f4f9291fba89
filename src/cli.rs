//! The command line (and the few environment variables `run` reads) turned
//! into a typed configuration per mode; the usage text; durations.

use std::ffi::OsString;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::check::{Check, CheckError, DisplayDuration};

pub const USAGE: &str = "\
healthcheck: is every part of this pod ready?

Usage:
  healthcheck PORT TIMEOUT CHECK...          serve on 0.0.0.0:PORT (the original form)
  healthcheck serve [OPTIONS] CHECK...       serve /self and /all (aggregated readiness)
  healthcheck check [OPTIONS] CHECK...       probe once, print verdicts, exit 0 or 1
  healthcheck run [OPTIONS] -- COMMAND...    wait for checks, run COMMAND, call back

CHECK is [NAME=]URL with URL http://host[:port]/path[?query], tcp://host:port
or grpc://host:port[?service=NAME] (gRPC health, SERVING passes).
Durations are 500ms, 3s, 2m or 1h; a bare number is seconds.

serve options:
  --listen ADDR           address to listen on [default: 0.0.0.0:8081]
  --port PORT             same as --listen 0.0.0.0:PORT
  --timeout DUR           deadline of each probe, from the round's start [default: 1s]
  --max-connections N     inbound connections kept open [default: 1024]
  --verbose               log every round

check options:
  --timeout DUR           deadline of each probe [default: 1s]
  --quiet                 print nothing, only exit 0 (all pass) or 1

run options:
  --wait CHECK            wait until this passes before starting COMMAND (repeatable)
  --interval DUR          time between wait attempts [default: 1s]
  --timeout DUR           deadline of each wait attempt [default: 1s]
  --wait-timeout DUR      give up waiting after DUR (exit 69) [default: wait forever]
  --wait-timeout-continue start COMMAND anyway when --wait-timeout runs out
  --on-exit URL           POST to URL after COMMAND ends (repeatable)
  --on-exit-timeout DUR   deadline of the --on-exit requests [default: 5s]
  --on-exit-when WHEN     always, success or failure [default: always]
  --istio                 --wait http://localhost:15021/healthz/ready
                          --on-exit http://localhost:15020/quitquitquit
  --linkerd               --wait http://localhost:4191/ready
                          --on-exit http://localhost:4191/shutdown
  Environment: ENABLE_COMPLETION_CALLBACK=1 with COMPLETION_CALLBACK_ENDPOINT=URL
  adds an --on-exit URL.

Every mode:
  --dry-run               check the command line, print the configuration, exit 0
  -h, --help              print this help
  -V, --version           print the version

Exit codes: 0 ok, 1 a check failed (check), 64 bad usage, 69 gave up waiting (run),
71 cannot listen; run exits with COMMAND's code (128+N if killed by signal N).
";

const DEFAULT_PORT: u16 = 8081;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_MAX_CONNECTIONS: usize = 1024;
const DEFAULT_ON_EXIT_TIMEOUT: Duration = Duration::from_secs(5);

const ISTIO_WAIT: &str = "http://localhost:15021/healthz/ready";
const ISTIO_ON_EXIT: &str = "http://localhost:15020/quitquitquit";
const LINKERD_WAIT: &str = "http://localhost:4191/ready";
const LINKERD_ON_EXIT: &str = "http://localhost:4191/shutdown";

#[derive(Debug)]
pub enum Command {
    Serve(ServeConfig),
    Check(CheckConfig),
    Run(RunConfig),
    Help,
    Version,
}

#[derive(Debug)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub timeout: Duration,
    pub max_connections: usize,
    pub verbose: bool,
    pub dry_run: bool,
    pub checks: Vec<Check>,
}

#[derive(Debug)]
pub struct CheckConfig {
    pub timeout: Duration,
    pub quiet: bool,
    pub dry_run: bool,
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    Success,
    Failure,
}

impl When {
    /// The word the command line takes.
    pub fn as_str(self) -> &'static str {
        match self {
            When::Always => "always",
            When::Success => "success",
            When::Failure => "failure",
        }
    }
}

#[derive(Debug)]
pub struct RunConfig {
    pub wait: Vec<Check>,
    pub interval: Duration,
    pub timeout: Duration,
    pub wait_timeout: Option<Duration>,
    pub wait_timeout_continue: bool,
    pub on_exit: Vec<Check>,
    pub on_exit_timeout: Duration,
    pub on_exit_when: When,
    pub dry_run: bool,
    pub command: Vec<OsString>,
}

/// A command line that cannot be run: exit 64.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<CheckError> for UsageError {
    fn from(e: CheckError) -> Self {
        UsageError(e.0)
    }
}

fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

/// Parses the arguments after the program name. `env` looks up environment
/// variables (only `run` reads any), so tests need not touch the process's.
pub fn parse(args: Vec<OsString>, env: impl Fn(&str) -> Option<String>) -> Result<Command, UsageError> {
    let mut args = Args { args: args.into_iter() };
    let Some(first) = args.next_str()? else {
        return Err(usage("missing arguments"));
    };
    match first.as_str() {
        "-h" | "--help" | "help" => Ok(Command::Help),
        "-V" | "--version" => Ok(Command::Version),
        "serve" => parse_serve(args),
        "check" => parse_check(args),
        "run" => parse_run(args, env),
        s if s.starts_with('-') => {
            Err(usage(format!("unknown option '{}' (a mode comes first: serve, check or run)", s.escape_debug())))
        }
        s if s.bytes().all(|b| b.is_ascii_digit()) => parse_positional(s, args),
        s => Err(usage(format!("unknown mode '{}': use serve, check or run", s.escape_debug()))),
    }
}

/// `PORT TIMEOUT CHECK...`: the original command line, kept working as is.
fn parse_positional(port: &str, mut args: Args) -> Result<Command, UsageError> {
    let port = parse_port(port)?;
    let Some(timeout) = args.next_str()? else {
        return Err(usage("missing TIMEOUT after PORT"));
    };
    let timeout = parse_timeout("TIMEOUT", &timeout)?;
    let mut checks = Vec::new();
    while let Some(arg) = args.next_str()? {
        if arg.starts_with('-') {
            return Err(usage(format!(
                "unexpected option '{}' in the PORT TIMEOUT CHECK... form: use 'healthcheck serve'",
                arg.escape_debug()
            )));
        }
        checks.push(Check::parse(&arg)?);
    }
    let checks = finish_checks(checks, false)?;
    Ok(Command::Serve(ServeConfig {
        listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        timeout,
        max_connections: DEFAULT_MAX_CONNECTIONS,
        verbose: false,
        dry_run: false,
        checks,
    }))
}

fn parse_serve(mut args: Args) -> Result<Command, UsageError> {
    let mut listen = None;
    let mut port = None;
    let mut timeout = DEFAULT_TIMEOUT;
    let mut max_connections = DEFAULT_MAX_CONNECTIONS;
    let (mut verbose, mut dry_run) = (false, false);
    let mut checks = Vec::new();
    while let Some(arg) = args.next_str()? {
        let (flag, inline) = split_flag(&arg);
        match flag {
            "--listen" => {
                let v = args.value(flag, inline)?;
                listen = Some(v.parse::<SocketAddr>().map_err(|_| {
                    usage(format!(
                        "invalid --listen '{}': use IP:PORT, e.g. 127.0.0.1:8081 or [::]:8081",
                        v.escape_debug()
                    ))
                })?);
                if listen.is_some_and(|a| a.port() == 0) {
                    return Err(usage("invalid --listen: port 0"));
                }
            }
            "--port" => port = Some(parse_port(&args.value(flag, inline)?)?),
            "--timeout" => timeout = parse_timeout(flag, &args.value(flag, inline)?)?,
            "--max-connections" => {
                let v = args.value(flag, inline)?;
                max_connections = match v.parse::<usize>() {
                    Ok(n) if (1..=1_000_000).contains(&n) => n,
                    _ => {
                        return Err(usage(format!(
                            "invalid --max-connections '{}': use 1 to 1000000",
                            v.escape_debug()
                        )))
                    }
                };
            }
            "--verbose" => verbose = switch(flag, inline)?,
            "--dry-run" => dry_run = switch(flag, inline)?,
            "--" => {
                while let Some(arg) = args.next_str()? {
                    checks.push(Check::parse(&arg)?);
                }
            }
            f if f.starts_with('-') => return Err(unknown_option("serve", &arg)),
            _ => checks.push(Check::parse(&arg)?),
        }
    }
    let listen = match (listen, port) {
        (Some(_), Some(_)) => return Err(usage("--listen and --port are exclusive")),
        (Some(addr), None) => addr,
        (None, port) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port.unwrap_or(DEFAULT_PORT)),
    };
    let checks = finish_checks(checks, dry_run)?;
    Ok(Command::Serve(ServeConfig { listen, timeout, max_connections, verbose, dry_run, checks }))
}

fn parse_check(mut args: Args) -> Result<Command, UsageError> {
    let mut timeout = DEFAULT_TIMEOUT;
    let (mut quiet, mut dry_run) = (false, false);
    let mut checks = Vec::new();
    while let Some(arg) = args.next_str()? {
        let (flag, inline) = split_flag(&arg);
        match flag {
            "--timeout" => timeout = parse_timeout(flag, &args.value(flag, inline)?)?,
            "--quiet" | "-q" => quiet = switch(flag, inline)?,
            "--dry-run" => dry_run = switch(flag, inline)?,
            f if f.starts_with('-') => return Err(unknown_option("check", &arg)),
            _ => checks.push(Check::parse(&arg)?),
        }
    }
    let checks = finish_checks(checks, dry_run)?;
    Ok(Command::Check(CheckConfig { timeout, quiet, dry_run, checks }))
}

fn parse_run(mut args: Args, env: impl Fn(&str) -> Option<String>) -> Result<Command, UsageError> {
    let mut wait = Vec::new();
    let mut on_exit = Vec::new();
    let mut interval = DEFAULT_TIMEOUT;
    let mut timeout = DEFAULT_TIMEOUT;
    let mut wait_timeout = None;
    let mut wait_timeout_continue = false;
    let mut on_exit_timeout = DEFAULT_ON_EXIT_TIMEOUT;
    let mut on_exit_when = When::Always;
    let mut dry_run = false;
    let (mut istio, mut linkerd) = (false, false);
    let mut command = Vec::new();
    while let Some(arg) = args.next_os() {
        let Some(text) = arg.to_str() else {
            return Err(usage(format!("invalid option {arg:?}: put COMMAND after '--'")));
        };
        let (flag, inline) = split_flag(text);
        match flag {
            "--wait" => wait.push(Check::parse(&args.value(flag, inline)?)?),
            "--on-exit" => on_exit.push(Check::callback(&args.value(flag, inline)?)?),
            "--interval" => interval = parse_timeout(flag, &args.value(flag, inline)?)?,
            "--timeout" => timeout = parse_timeout(flag, &args.value(flag, inline)?)?,
            "--wait-timeout" => wait_timeout = Some(parse_timeout(flag, &args.value(flag, inline)?)?),
            "--wait-timeout-continue" => wait_timeout_continue = switch(flag, inline)?,
            "--on-exit-timeout" => on_exit_timeout = parse_timeout(flag, &args.value(flag, inline)?)?,
            "--on-exit-when" => {
                let v = args.value(flag, inline)?;
                on_exit_when = [When::Always, When::Success, When::Failure]
                    .into_iter()
                    .find(|w| w.as_str() == v)
                    .ok_or_else(|| {
                        usage(format!("invalid --on-exit-when '{}': use always, success or failure", v.escape_debug()))
                    })?;
            }
            "--istio" => istio = switch(flag, inline)?,
            "--linkerd" => linkerd = switch(flag, inline)?,
            "--dry-run" => dry_run = switch(flag, inline)?,
            "--" => {
                command.extend(args.by_ref_os());
                break;
            }
            _ if flag.starts_with('-') => return Err(unknown_option("run", text)),
            _ => return Err(usage(format!("unexpected argument '{}': put COMMAND after '--'", text.escape_debug()))),
        }
    }
    if command.is_empty() {
        return Err(usage("run needs a command after '--'"));
    }
    if wait_timeout_continue && wait_timeout.is_none() {
        return Err(usage("--wait-timeout-continue needs --wait-timeout"));
    }
    // Presets fill only what the explicit flags left empty.
    for (on, wait_url, exit_url) in [(istio, ISTIO_WAIT, ISTIO_ON_EXIT), (linkerd, LINKERD_WAIT, LINKERD_ON_EXIT)] {
        if !on {
            continue;
        }
        if wait.is_empty() {
            wait.push(Check::parse(wait_url)?);
        }
        if on_exit.is_empty() {
            on_exit.push(Check::callback(exit_url)?);
        }
    }
    if env("ENABLE_COMPLETION_CALLBACK").is_some_and(|v| matches!(v.as_str(), "1" | "true" | "TRUE" | "True")) {
        match env("COMPLETION_CALLBACK_ENDPOINT") {
            Some(url) if !url.is_empty() => {
                let callback =
                    Check::callback(&url).map_err(|e| usage(format!("COMPLETION_CALLBACK_ENDPOINT: {e}")))?;
                if !on_exit.iter().any(|c| c.url == callback.url) {
                    on_exit.push(callback);
                }
            }
            _ => return Err(usage("ENABLE_COMPLETION_CALLBACK is set but COMPLETION_CALLBACK_ENDPOINT is empty")),
        }
    }
    let wait = finish_checks_allow_empty(wait, dry_run)?;
    let on_exit = finish_checks_allow_empty(on_exit, dry_run)?;
    Ok(Command::Run(RunConfig {
        wait,
        interval,
        timeout,
        wait_timeout,
        wait_timeout_continue,
        on_exit,
        on_exit_timeout,
        on_exit_when,
        dry_run,
        command,
    }))
}

fn finish_checks(checks: Vec<Check>, dry_run: bool) -> Result<Vec<Check>, UsageError> {
    if checks.is_empty() {
        return Err(usage("no CHECK given: name at least one URL to probe"));
    }
    finish_checks_allow_empty(checks, dry_run)
}

/// Rejects duplicate names and resolves every check (a dry run only the
/// local ones: it must not depend on DNS).
fn finish_checks_allow_empty(mut checks: Vec<Check>, dry_run: bool) -> Result<Vec<Check>, UsageError> {
    for (i, c) in checks.iter().enumerate() {
        if checks[..i].iter().any(|o| o.name == c.name) {
            return Err(usage(format!("duplicate check name '{}': name them NAME=URL", c.name)));
        }
    }
    for c in &mut checks {
        if !dry_run || c.is_local() {
            c.resolve()?;
        }
    }
    Ok(checks)
}

fn parse_port(s: &str) -> Result<u16, UsageError> {
    match s.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(usage(format!("invalid port '{}': use 1 to 65535", s.escape_debug()))),
    }
}

fn parse_timeout(what: &str, s: &str) -> Result<Duration, UsageError> {
    match parse_duration(s) {
        Ok(d) if d.is_zero() => Err(usage(format!("invalid {what} '{s}': must be more than zero"))),
        Ok(d) => Ok(d),
        Err(e) => Err(usage(format!("invalid {what} '{}': {e}", s.escape_debug()))),
    }
}

/// Parses `500ms`, `3s`, `2m`, `1h`, or a bare number of seconds, with
/// checked arithmetic.
pub fn parse_duration(s: &str) -> Result<Duration, &'static str> {
    const HINT: &str = "use a whole number with ms, s, m or h, e.g. 500ms or 3s";
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(HINT);
    }
    let n: u64 = s[..digits].parse().map_err(|_| "too large")?;
    let ms_per_unit: u64 = match &s[digits..] {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(HINT),
    };
    n.checked_mul(ms_per_unit).map(Duration::from_millis).ok_or("too large")
}

fn split_flag(arg: &str) -> (&str, Option<&str>) {
    match arg.split_once('=') {
        Some((flag, value)) if flag.starts_with("--") => (flag, Some(value)),
        _ => (arg, None),
    }
}

/// A flag without a value (`--verbose`): true, or an error for `--verbose=x`.
fn switch(flag: &str, inline: Option<&str>) -> Result<bool, UsageError> {
    match inline {
        None => Ok(true),
        Some(_) => Err(usage(format!("{flag} takes no value"))),
    }
}

fn unknown_option(mode: &str, arg: &str) -> UsageError {
    usage(format!("unknown option '{}' for {mode}", arg.escape_debug()))
}

struct Args {
    args: std::vec::IntoIter<OsString>,
}

impl Args {
    fn next_os(&mut self) -> Option<OsString> {
        self.args.next()
    }

    fn by_ref_os(&mut self) -> impl Iterator<Item = OsString> + '_ {
        self.args.by_ref()
    }

    fn next_str(&mut self) -> Result<Option<String>, UsageError> {
        match self.args.next() {
            None => Ok(None),
            Some(os) => os.into_string().map(Some).map_err(|os| usage(format!("argument is not UTF-8: {os:?}"))),
        }
    }

    /// The value of `--flag value` or `--flag=value`.
    fn value(&mut self, flag: &str, inline: Option<&str>) -> Result<String, UsageError> {
        if let Some(v) = inline {
            return Ok(v.to_string());
        }
        match self.next_str()? {
            Some(v) if !v.starts_with("--") => Ok(v),
            _ => Err(usage(format!("{flag} needs a value"))),
        }
    }
}

/// The effective configuration, for `--dry-run`.
pub fn describe(cmd: &Command) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let checks = |out: &mut String, label: &str, checks: &[Check]| {
        for c in checks {
            let addrs: Vec<String> = c.addrs.iter().map(ToString::to_string).collect();
            let addrs = if addrs.is_empty() { "unresolved".to_string() } else { addrs.join(",") };
            let _ = writeln!(out, "{label} {} {} ({addrs})", c.name, c.url);
        }
    };
    match cmd {
        Command::Serve(c) => {
            let _ = writeln!(
                out,
                "mode serve\nlisten {}\ntimeout {}\nmax-connections {}",
                c.listen,
                DisplayDuration(c.timeout),
                c.max_connections
            );
            checks(&mut out, "check", &c.checks);
        }
        Command::Check(c) => {
            let _ = writeln!(out, "mode check\ntimeout {}", DisplayDuration(c.timeout));
            checks(&mut out, "check", &c.checks);
        }
        Command::Run(c) => {
            let _ = writeln!(
                out,
                "mode run\ninterval {}\ntimeout {}",
                DisplayDuration(c.interval),
                DisplayDuration(c.timeout)
            );
            match c.wait_timeout {
                Some(d) => {
                    let then = if c.wait_timeout_continue { "continue" } else { "give up" };
                    let _ = writeln!(out, "wait-timeout {} then {then}", DisplayDuration(d));
                }
                None => out.push_str("wait-timeout none\n"),
            }
            checks(&mut out, "wait", &c.wait);
            let _ = writeln!(
                out,
                "on-exit-timeout {}\non-exit-when {}",
                DisplayDuration(c.on_exit_timeout),
                c.on_exit_when.as_str()
            );
            checks(&mut out, "on-exit", &c.on_exit);
            let _ = writeln!(out, "command {:?}", c.command);
        }
        Command::Help | Command::Version => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<OsString> {
        line.split_whitespace().map(OsString::from).collect()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn err(line: &str) -> String {
        match parse(args(line), no_env) {
            Err(UsageError(msg)) => msg,
            Ok(cmd) => panic!("{line}: accepted as {cmd:?}"),
        }
    }

    #[test]
    fn durations() {
        let ok = [
            ("500ms", 500),
            ("3s", 3000),
            ("3", 3000),
            ("2m", 120_000),
            ("1h", 3_600_000),
            ("0", 0),
            ("18446744073709551615ms", u64::MAX),
        ];
        for (s, ms) in ok {
            assert_eq!(parse_duration(s), Ok(Duration::from_millis(ms)), "{s}");
        }
        for s in
            ["", "abc", "-1", "1.5s", "3 s", "3sec", "ms", "18446744073709551615", "18446744073709551616ms", "+3", "3S"]
        {
            assert!(parse_duration(s).is_err(), "{s}");
        }
    }

    #[test]
    fn original_form() {
        let Ok(Command::Serve(c)) =
            parse(args("8081 3 http://localhost:15020/healthz/ready http://localhost:8080/healthz"), no_env)
        else {
            panic!()
        };
        assert_eq!(c.listen, "0.0.0.0:8081".parse().unwrap());
        assert_eq!(c.timeout, Duration::from_secs(3));
        assert_eq!(c.checks.len(), 2);
        assert_eq!(c.checks[1].name, "localhost:8080/healthz");
    }

    #[test]
    fn serve_flags() {
        let line = "serve --listen=[::1]:9000 --timeout 500ms --max-connections 10 --verbose app=http://127.0.0.1/h";
        let Ok(Command::Serve(c)) = parse(args(line), no_env) else { panic!() };
        assert_eq!(c.listen, "[::1]:9000".parse().unwrap());
        assert_eq!((c.timeout, c.max_connections, c.verbose), (Duration::from_millis(500), 10, true));
        assert_eq!(c.checks[0].name, "app");
        let Ok(Command::Serve(c)) = parse(args("serve --port 80 http://127.0.0.1/"), no_env) else { panic!() };
        assert_eq!(c.listen, "0.0.0.0:80".parse().unwrap());
    }

    #[test]
    fn usage_errors_name_the_argument() {
        let cases = [
            ("", "missing arguments"),
            ("8081", "missing TIMEOUT"),
            ("8081 3", "no CHECK"),
            ("0 3 http://localhost/", "invalid port '0'"),
            ("70000 3 http://localhost/", "invalid port '70000'"),
            ("8081 abc http://localhost/", "invalid TIMEOUT 'abc'"),
            ("8081 0 http://localhost/", "must be more than zero"),
            ("8081 -1 http://localhost/", "invalid TIMEOUT '-1'"),
            ("8081 3 https://localhost/", "https"),
            ("8081 3 ftp://localhost/", "unsupported scheme 'ftp'"),
            ("abc 3 http://localhost/", "unknown mode 'abc'"),
            ("serve --port abc http://localhost/", "invalid port 'abc'"),
            ("serve --timeout", "--timeout needs a value"),
            ("serve --bogus http://localhost/", "unknown option '--bogus'"),
            ("serve --listen 1.2.3.4 http://localhost/", "invalid --listen"),
            ("serve --verbose=1 http://localhost/", "takes no value"),
            ("serve a=http://localhost/ a=http://127.0.0.1/", "duplicate check name 'a'"),
            ("serve http://localhost/ http://localhost/", "duplicate check name"),
            ("check --timeout 0 http://localhost/", "--timeout"),
            ("run --wait http://localhost/", "needs a command"),
            ("run -- ", "needs a command"),
            ("run --on-exit-when never -- true", "--on-exit-when"),
            ("run --on-exit tcp://localhost:1 -- true", "unsupported scheme 'tcp'"),
            ("run --wait-timeout-continue -- true", "needs --wait-timeout"),
            ("run true", "unexpected argument 'true'"),
        ];
        for (line, want) in cases {
            let msg = err(line);
            assert!(msg.contains(want), "{line:?}: {msg}");
            assert!(!msg.contains('\n'), "{line:?}: one line");
        }
    }

    #[test]
    fn run_presets_and_env() {
        let line = "run --istio --on-exit http://127.0.0.1:1/done -- app --flag";
        let Ok(Command::Run(c)) = parse(args(line), no_env) else { panic!() };
        assert_eq!(c.wait[0].url.as_str(), ISTIO_WAIT);
        assert_eq!(c.on_exit.len(), 1);
        assert_eq!(c.on_exit[0].url.as_str(), "http://127.0.0.1:1/done");
        assert_eq!(c.command, args("app --flag"));
        assert_eq!(c.wait_timeout, None);

        let env = |k: &str| match k {
            "ENABLE_COMPLETION_CALLBACK" => Some("1".to_string()),
            "COMPLETION_CALLBACK_ENDPOINT" => Some("http://localhost:15020/quitquitquit".to_string()),
            _ => None,
        };
        let Ok(Command::Run(c)) = parse(args("run --linkerd -- job"), env) else { panic!() };
        let urls: Vec<&str> = c.on_exit.iter().map(|c| c.url.as_str()).collect();
        assert_eq!(urls, [LINKERD_ON_EXIT, ISTIO_ON_EXIT]);
        let Ok(Command::Run(c)) =
            parse(args("run --wait-timeout 30s --wait-timeout-continue --on-exit-when failure -- x"), no_env)
        else {
            panic!()
        };
        assert_eq!(
            (c.wait_timeout, c.wait_timeout_continue, c.on_exit_when),
            (Some(Duration::from_secs(30)), true, When::Failure)
        );
    }

    #[test]
    fn dry_run_does_not_resolve_names() {
        let Ok(cmd) = parse(args("serve --dry-run http://name.invalid:8080/ http://localhost/"), no_env) else {
            panic!()
        };
        let text = describe(&cmd);
        assert!(text.contains("check name.invalid:8080/ http://name.invalid:8080/ (unresolved)"), "{text}");
        assert!(text.contains("127.0.0.1:80,[::1]:80"), "{text}");
        assert!(err("serve http://name.invalid/").contains("cannot resolve 'name.invalid'"));
    }
}
