//! The command line (and the few environment variables `run` reads) turned
//! into a typed configuration per mode; the usage text; durations.

use std::ffi::OsString;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::check::{BodyText, Check, CheckError, Kind, StatusSet};
use crate::probe::MAX_BODY;
use crate::wire::text::Shown;
use crate::wire::text::{parse_duration, DisplayDuration};

pub const USAGE: &str = "\
healthcheck: is every part of this pod ready?

Usage:
  healthcheck PORT TIMEOUT CHECK...          serve on 0.0.0.0:PORT (the original form)
  healthcheck serve [OPTIONS] CHECK...       serve /self and /all (aggregated readiness)
  healthcheck check [OPTIONS] CHECK...       probe once, print verdicts, exit 0 or 1
  healthcheck run [OPTIONS] -- COMMAND...    wait for checks, run COMMAND, call back

CHECK is [NAME=]URL with URL http[s]://host[:port]/path[?query], tcp://host:port
or grpc[s]://host:port[?service=NAME] (gRPC health, SERVING passes). https://
and grpcs:// check no certificate, as kubelet's HTTPS probe.
An unnamed check is named after its URL without the scheme; repeats are one check.
Durations as in Go: 500ms, 3s, 1.5s, 1m30s, 2h45m; a bare number is seconds.
An option that takes one value is given once; the repeatable ones say so.
The original form listens on IPv4 only: for IPv6 use serve --listen [::]:PORT.
--header NAME=FIELD: VALUE adds a request header to the check NAME (serve, check
and run --wait; repeatable): Host, User-Agent and Accept replace ours (an empty
Accept sends none), others are added.
--timeout NAME=DUR gives the check NAME its own deadline instead of --timeout DUR
(serve, check and run --wait; repeatable, once per check).
--expect-status NAME=LIST passes the http check NAME only on these statuses
(200, 200,204, 200-299,401; repeatable) instead of 200-399.
--expect-body NAME=TEXT passes the http check NAME only when TEXT occurs in the
first 10 KiB of its body (and its status passes).
--unix-socket NAME=PATH connects the http or grpc check NAME to the unix socket
PATH instead of the URL's host and port (whose host is still sent).

serve options:
  --listen ADDR           address to listen on: IP:PORT, :PORT (every address:
                          [::] dual-stack, else 0.0.0.0) or localhost:PORT
                          (127.0.0.1) [default: 0.0.0.0:8081]
  --port PORT             same as --listen 0.0.0.0:PORT
  --timeout DUR           deadline of each probe, from the round's start [default: 1s]
  --max-connections N     inbound connections kept open [default: 1024]
  --min-interval DUR      start a round at most once per DUR; requests in
                          between wait for the next one [default: 0, off]
  --interval DUR          also run a round every DUR in the background, so
                          logs and metrics stay current [default: 0, off]
  --verbose               log every round

check options:
  --timeout DUR           deadline of each probe [default: 1s]
  -q, --quiet             print nothing, only exit 0 (all pass) or 1
  --output FORMAT         text or json [default: text]

run options:
  --wait CHECK            wait until this passes before starting COMMAND (repeatable)
  --interval DUR          time between wait attempts [default: 1s]
  --timeout DUR           deadline of each wait attempt and --on-exit try [default: 1s]
  --wait-timeout DUR      give up waiting after DUR (exit 69) [default: wait forever]
  --wait-timeout-continue start COMMAND anyway when --wait-timeout runs out
  --on-exit URL           POST to URL after COMMAND ends (repeatable)
  --on-exit-timeout DUR   retry failed --on-exit requests until DUR [default: 5s]
  --on-exit-when WHEN     always, success or failure [default: always]
  --istio                 --wait http://localhost:15021/healthz/ready
                          --on-exit http://localhost:15020/quitquitquit
  --linkerd               --wait http://localhost:4191/ready
                          --on-exit http://localhost:4191/shutdown
                          (--istio and --linkerd exclude each other)
  Environment: ENABLE_COMPLETION_CALLBACK=1 (or true; 0, false or empty: off)
  with COMPLETION_CALLBACK_ENDPOINT=URL adds an --on-exit URL.
  Without --on-exit and when not PID 1, COMMAND is exec'd; else it is supervised.

Every mode (the original form too):
  --dry-run               check the command line, print the configuration, exit 0
  -h, --help              print this help
  --                      ends the options (serve, check: the rest are CHECKs)
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

/// Where `serve` listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listen {
    /// One address (`localhost` is read as 127.0.0.1, as Go listens on it).
    Addr(SocketAddr),
    /// `:PORT`, every address as Go's `net.Listen` reads it: `[::]`
    /// (dual-stack) where the host has IPv6, else `0.0.0.0`.
    Every(u16),
}

impl Listen {
    /// The addresses to try to bind, in order; the next is tried only when
    /// the host lacks the previous one's address family.
    pub(crate) fn candidates(self) -> Vec<SocketAddr> {
        match self {
            Listen::Addr(addr) => vec![addr],
            Listen::Every(port) => vec![
                SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
                SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
            ],
        }
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Addr(addr) => write!(f, "{addr}"),
            Listen::Every(port) => write!(f, ":{port} ([::] dual-stack, else 0.0.0.0)"),
        }
    }
}

#[derive(Debug)]
pub struct ServeConfig {
    pub(crate) listen: Listen,
    pub timeout: Duration,
    pub(crate) max_connections: usize,
    /// Rounds start at least this far apart (zero: as soon as asked).
    pub(crate) min_interval: Duration,
    /// A round every this long even when nothing asks (zero: never).
    pub(crate) interval: Duration,
    pub(crate) verbose: bool,
    pub dry_run: bool,
    pub checks: Vec<Check>,
}

#[derive(Debug)]
pub struct CheckConfig {
    pub(crate) timeout: Duration,
    pub(crate) quiet: bool,
    pub(crate) output: Output,
    pub dry_run: bool,
    pub(crate) checks: Vec<Check>,
}

/// How `check` prints its verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    /// `[+]NAME ok` lines, as `/all?verbose`.
    Text,
    /// The object `/all?format=json` answers.
    Json,
}

impl Output {
    /// The word the command line takes.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Output::Text => "text",
            Output::Json => "json",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    Always,
    Success,
    Failure,
}

impl When {
    /// The word the command line takes.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            When::Always => "always",
            When::Success => "success",
            When::Failure => "failure",
        }
    }
}

#[derive(Debug)]
pub struct RunConfig {
    pub(crate) wait: Vec<Check>,
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) wait_timeout: Option<Duration>,
    pub(crate) wait_timeout_continue: bool,
    pub(crate) on_exit: Vec<Check>,
    pub(crate) on_exit_timeout: Duration,
    pub(crate) on_exit_when: When,
    pub dry_run: bool,
    pub(crate) command: Vec<OsString>,
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
            Err(usage(format!("unknown option '{}' (a mode comes first: serve, check or run)", Shown(s))))
        }
        s if s.bytes().all(|b| b.is_ascii_digit()) => parse_positional(s, args),
        s => Err(usage(format!("unknown mode '{}': use serve, check or run", Shown(s)))),
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
    let mut dry_run = false;
    while let Some(arg) = args.next_str()? {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--dry-run" => dry_run = true,
            "--" => {
                while let Some(arg) = args.next_str()? {
                    checks.push(Check::parse(&arg)?);
                }
            }
            _ if arg.starts_with('-') => {
                return Err(usage(format!(
                    "unexpected option '{}' in the PORT TIMEOUT CHECK... form: use 'healthcheck serve'",
                    Shown(&arg)
                )))
            }
            _ => checks.push(Check::parse(&arg)?),
        }
    }
    let checks = finish_checks(checks)?;
    Ok(Command::Serve(ServeConfig {
        listen: Listen::Addr(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)),
        timeout,
        max_connections: DEFAULT_MAX_CONNECTIONS,
        min_interval: Duration::ZERO,
        interval: Duration::ZERO,
        verbose: false,
        dry_run,
        checks,
    }))
}

fn parse_serve(mut args: Args) -> Result<Command, UsageError> {
    let mut listen = None;
    let mut port = None;
    let mut common = Common::default();
    let mut max_connections = None;
    let mut min_interval = None;
    let mut interval = None;
    let mut verbose = false;
    let help = common.options(&mut args, "serve", |flag, inline, args| {
        match flag {
            "--listen" => once(&mut listen, flag, parse_listen(&args.value(flag, inline)?)?)?,
            "--port" => once(&mut port, flag, parse_port(&args.value(flag, inline)?)?)?,
            "--max-connections" => {
                let v = args.value(flag, inline)?;
                let n = match v.parse::<usize>() {
                    Ok(n) if (1..=1_000_000).contains(&n) => n,
                    _ => return Err(usage(format!("invalid --max-connections '{}': use 1 to 1000000", Shown(&v)))),
                };
                once(&mut max_connections, flag, n)?;
            }
            "--min-interval" => {
                once(&mut min_interval, flag, parse_optional_duration(flag, &args.value(flag, inline)?)?)?
            }
            "--interval" => once(&mut interval, flag, parse_optional_duration(flag, &args.value(flag, inline)?)?)?,
            "--verbose" => verbose = switch(flag, inline)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if help {
        return Ok(Command::Help);
    }
    let listen = match (listen, port) {
        (Some(_), Some(_)) => return Err(usage("--listen and --port are exclusive")),
        (Some(listen), None) => listen,
        (None, port) => Listen::Addr(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port.unwrap_or(DEFAULT_PORT))),
    };
    let (timeout, dry_run) = (common.timeout(), common.dry_run);
    let checks = common.checks()?;
    Ok(Command::Serve(ServeConfig {
        listen,
        timeout,
        max_connections: max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS),
        min_interval: min_interval.unwrap_or(Duration::ZERO),
        interval: interval.unwrap_or(Duration::ZERO),
        verbose,
        dry_run,
        checks,
    }))
}

fn parse_check(mut args: Args) -> Result<Command, UsageError> {
    let mut common = Common::default();
    let mut quiet = false;
    let mut output = None;
    let help = common.options(&mut args, "check", |flag, inline, args| {
        match flag {
            "--quiet" | "-q" => quiet = switch(flag, inline)?,
            "--output" => {
                let v = args.value(flag, inline)?;
                let chosen = [Output::Text, Output::Json]
                    .into_iter()
                    .find(|o| o.as_str() == v)
                    .ok_or_else(|| usage(format!("invalid --output '{}': use text or json", Shown(&v))))?;
                once(&mut output, flag, chosen)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if help {
        return Ok(Command::Help);
    }
    let (timeout, dry_run, output) = (common.timeout(), common.dry_run, output.unwrap_or(Output::Text));
    let checks = common.checks()?;
    Ok(Command::Check(CheckConfig { timeout, quiet, output, dry_run, checks }))
}

/// The options `serve` and `check` share, and their CHECKs.
#[derive(Default)]
struct Common {
    /// `--timeout DUR`: every check's deadline, given once.
    timeout: Option<Duration>,
    dry_run: bool,
    checks: Vec<Check>,
    headers: Vec<String>,
    /// `--timeout NAME=DUR`, applied once the checks are known.
    check_timeouts: Vec<String>,
    /// The other per-check options, in order: the flag and its `NAME=VALUE`.
    per_check: Vec<(String, String)>,
}

/// Whether [`Common::take`] took an argument.
enum Taken {
    Yes,
    Help,
    /// An option of the mode's own (or an unknown one).
    No,
}

impl Common {
    /// Reads the options of `mode`: the shared ones here, the others by
    /// `own(flag, inline value, args)`, which says whether it knew the flag.
    /// Ok(true) when help was asked for.
    fn options(
        &mut self,
        args: &mut Args,
        mode: &str,
        mut own: impl FnMut(&str, Option<&str>, &mut Args) -> Result<bool, UsageError>,
    ) -> Result<bool, UsageError> {
        while let Some(arg) = args.next_str()? {
            match self.take(&arg, args)? {
                Taken::Yes => continue,
                Taken::Help => return Ok(true),
                Taken::No => {}
            }
            let (flag, inline) = split_flag(&arg);
            if !own(flag, inline, args)? {
                return Err(unknown_option(mode, &arg));
            }
        }
        Ok(false)
    }

    /// Takes `arg` when it is a shared option, `--` and the CHECKs after
    /// it, or a CHECK.
    fn take(&mut self, arg: &str, args: &mut Args) -> Result<Taken, UsageError> {
        let (flag, inline) = split_flag(arg);
        match flag {
            "--header" => self.headers.push(args.value(flag, inline)?),
            f if PER_CHECK.contains(&f) => self.per_check.push((flag.to_string(), args.value(flag, inline)?)),
            "--timeout" => self.timeout_option(flag, &args.value(flag, inline)?)?,
            "--dry-run" => self.dry_run = switch(flag, inline)?,
            "-h" | "--help" => return Ok(Taken::Help),
            "--" => {
                while let Some(arg) = args.next_str()? {
                    self.checks.push(Check::parse(&arg)?);
                }
            }
            f if f.starts_with('-') => return Ok(Taken::No),
            _ => self.checks.push(Check::parse(arg)?),
        }
        Ok(Taken::Yes)
    }

    /// A `--timeout` value: `NAME=DUR` is a check's own deadline
    /// (repeatable, once per check, applied with the checks); the plain
    /// `--timeout DUR` sets every other check's and is single-valued: given
    /// twice is a usage error.
    fn timeout_option(&mut self, flag: &str, value: &str) -> Result<(), UsageError> {
        if value.contains('=') {
            self.check_timeouts.push(value.to_string());
            return Ok(());
        }
        once(&mut self.timeout, flag, parse_timeout(flag, value)?)
    }

    /// The deadline of every check without its own.
    fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }

    /// The checks, validated, with the `--header` fields, the per-check
    /// options and the checks' own timeouts applied.
    fn checks(self) -> Result<Vec<Check>, UsageError> {
        let mut checks = finish_checks(self.checks)?;
        apply_headers(&mut checks, &self.headers)?;
        apply_timeouts(&mut checks, &self.check_timeouts)?;
        apply_per_check(&mut checks, &self.per_check)?;
        Ok(checks)
    }
}

fn parse_run(mut args: Args, env: impl Fn(&str) -> Option<String>) -> Result<Command, UsageError> {
    let mut wait = Vec::new();
    let mut on_exit = Vec::new();
    let mut interval = None;
    let mut timeout = None;
    let mut wait_timeout = None;
    let mut wait_timeout_continue = false;
    let mut on_exit_timeout = None;
    let mut on_exit_when = None;
    let mut dry_run = false;
    let (mut istio, mut linkerd) = (false, false);
    let mut command = Vec::new();
    let mut headers = Vec::new();
    let mut check_timeouts = Vec::new();
    let mut per_check = Vec::new();
    while let Some(arg) = args.next_os() {
        let Some(text) = arg.to_str() else {
            let arg = arg.to_string_lossy();
            return Err(usage(format!("invalid option '{}': put COMMAND after '--'", Shown(&arg))));
        };
        let (flag, inline) = split_flag(text);
        match flag {
            "--wait" => wait.push(Check::parse(&args.value(flag, inline)?)?),
            "--header" => headers.push(args.value(flag, inline)?),
            f if PER_CHECK.contains(&f) => per_check.push((flag.to_string(), args.value(flag, inline)?)),
            "--on-exit" => on_exit.push(Check::callback(&args.value(flag, inline)?)?),
            "--interval" => once(&mut interval, flag, parse_timeout(flag, &args.value(flag, inline)?)?)?,
            "--timeout" => {
                let v = args.value(flag, inline)?;
                if v.contains('=') {
                    check_timeouts.push(v);
                } else {
                    once(&mut timeout, flag, parse_timeout(flag, &v)?)?;
                }
            }
            "--wait-timeout" => once(&mut wait_timeout, flag, parse_timeout(flag, &args.value(flag, inline)?)?)?,
            "--wait-timeout-continue" => wait_timeout_continue = switch(flag, inline)?,
            "--on-exit-timeout" => once(&mut on_exit_timeout, flag, parse_timeout(flag, &args.value(flag, inline)?)?)?,
            "--on-exit-when" => {
                let v = args.value(flag, inline)?;
                let when =
                    [When::Always, When::Success, When::Failure].into_iter().find(|w| w.as_str() == v).ok_or_else(
                        || usage(format!("invalid --on-exit-when '{}': use always, success or failure", Shown(&v))),
                    )?;
                once(&mut on_exit_when, flag, when)?;
            }
            "--istio" => istio = switch(flag, inline)?,
            "--linkerd" => linkerd = switch(flag, inline)?,
            "--dry-run" => dry_run = switch(flag, inline)?,
            "-h" | "--help" => return Ok(Command::Help),
            "--" => {
                command.extend(args.by_ref_os());
                break;
            }
            _ if flag.starts_with('-') => return Err(unknown_option("run", text)),
            _ => return Err(usage(format!("unexpected argument '{}': put COMMAND after '--'", Shown(text)))),
        }
    }
    if command.is_empty() {
        return Err(usage("run needs a command after '--'"));
    }
    if wait_timeout_continue && wait_timeout.is_none() {
        return Err(usage("--wait-timeout-continue needs --wait-timeout"));
    }
    if istio && linkerd {
        return Err(usage("--istio and --linkerd are exclusive: one mesh per Job"));
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
    if completion_callback_enabled(env("ENABLE_COMPLETION_CALLBACK"))? {
        match env("COMPLETION_CALLBACK_ENDPOINT") {
            Some(url) if !url.is_empty() => {
                let callback =
                    Check::callback(&url).map_err(|e| usage(format!("COMPLETION_CALLBACK_ENDPOINT: {e}")))?;
                if !on_exit.iter().any(|c| c.same_target(&callback)) {
                    on_exit.push(callback);
                }
            }
            _ => return Err(usage("ENABLE_COMPLETION_CALLBACK is set but COMPLETION_CALLBACK_ENDPOINT is empty")),
        }
    }
    let mut wait = finish_checks_allow_empty(wait)?;
    apply_headers(&mut wait, &headers)?;
    apply_timeouts(&mut wait, &check_timeouts)?;
    apply_per_check(&mut wait, &per_check)?;
    let on_exit = finish_checks_allow_empty(on_exit)?;
    Ok(Command::Run(RunConfig {
        wait,
        interval: interval.unwrap_or(DEFAULT_TIMEOUT),
        timeout: timeout.unwrap_or(DEFAULT_TIMEOUT),
        wait_timeout,
        wait_timeout_continue,
        on_exit,
        on_exit_timeout: on_exit_timeout.unwrap_or(DEFAULT_ON_EXIT_TIMEOUT),
        on_exit_when: on_exit_when.unwrap_or(When::Always),
        dry_run,
        command,
    }))
}

/// `ENABLE_COMPLETION_CALLBACK`: `1`/`true` on, `0`/`false`/empty/unset off
/// (either case); anything else is a mistake worth stopping for.
fn completion_callback_enabled(value: Option<String>) -> Result<bool, UsageError> {
    let value = value.unwrap_or_default();
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" => Ok(true),
        "" | "0" | "false" => Ok(false),
        _ => Err(usage(format!("invalid ENABLE_COMPLETION_CALLBACK '{}': use 1, true, 0 or false", Shown(&value)))),
    }
}

fn finish_checks(checks: Vec<Check>) -> Result<Vec<Check>, UsageError> {
    if checks.is_empty() {
        return Err(usage("no CHECK given: name at least one URL to probe"));
    }
    finish_checks_allow_empty(checks)
}

/// Names the checks uniquely. Names are not resolved here: each round does
/// it, so a name that does not resolve yet is a failing check, not a usage
/// error, and `--dry-run` needs no DNS. Unnamed checks never make a usage
/// error: a repeat of the same target is dropped, and one whose default
/// name is taken gets the first free `NAME~2`, `NAME~3`, ... Two explicit
/// identical names are an error.
fn finish_checks_allow_empty(checks: Vec<Check>) -> Result<Vec<Check>, UsageError> {
    let mut kept: Vec<Check> = Vec::with_capacity(checks.len());
    for c in checks {
        // Callbacks are named after their URL too: a repeat is one callback.
        let unnamed = c.has_default_name() || c.kind == Kind::Post;
        if unnamed && kept.iter().any(|o| o.same_target(&c) && (o.has_default_name() || o.kind == Kind::Post)) {
            continue;
        }
        if !unnamed && kept.iter().any(|o| o.name == c.name) {
            return Err(usage(format!("duplicate check name '{}': give each check its own NAME=", c.name)));
        }
        kept.push(c);
    }
    for i in 0..kept.len() {
        let taken = |name: &str, kept: &[Check]| kept.iter().enumerate().any(|(j, o)| j != i && o.name == name);
        // An explicit name keeps its name; a default one yields to any check before it and to
        // every explicit one.
        let yields = kept[i].has_default_name()
            && kept.iter().enumerate().any(|(j, o)| o.name == kept[i].name && (j < i || !o.has_default_name()));
        if yields {
            let name = (2u32..)
                .map(|n| format!("{}~{n}", kept[i].name))
                .find(|candidate| !taken(candidate, &kept))
                .expect("a free suffix");
            kept[i].name = name;
        }
    }
    let checks = kept;
    Ok(checks)
}

/// Sets each `--timeout NAME=DUR` on the check NAME (the longest name
/// that matches, as names may hold `=`): its probes' deadline instead of
/// the mode's `--timeout`, as each kubelet probe has its own
/// `timeoutSeconds`.
fn apply_timeouts(checks: &mut [Check], timeouts: &[String]) -> Result<(), UsageError> {
    for arg in timeouts {
        let bad = |why: &str| usage(format!("invalid --timeout '{}': {why}", Shown(arg)));
        let Some(check) = checks
            .iter_mut()
            .filter(|c| arg.strip_prefix(c.name.as_str()).is_some_and(|rest| rest.starts_with('=')))
            .max_by_key(|c| c.name.len())
        else {
            return Err(bad("no check has that NAME (use NAME=DUR or DUR)"));
        };
        let value = &arg[check.name.len() + 1..];
        let duration = match parse_duration(value) {
            Ok(d) if d.is_zero() => return Err(bad("must be more than zero")),
            Ok(d) => d,
            Err(e) => return Err(bad(e)),
        };
        if check.timeout.is_some() {
            return Err(bad("that check's timeout is given twice"));
        }
        check.timeout = Some(duration);
    }
    Ok(())
}

/// Fields Go's client never sends from a probe's headers: the request's
/// framing is its own.
const FRAMING_FIELDS: [&str; 3] = ["content-length", "transfer-encoding", "trailer"];

/// Adds each `--header NAME=FIELD: VALUE` to the check NAME (the longest
/// name that matches, as names may hold `=`).
fn apply_headers(checks: &mut [Check], headers: &[String]) -> Result<(), UsageError> {
    for arg in headers {
        let bad = |why: &str| usage(format!("invalid --header '{}': {why}", Shown(arg)));
        if arg.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(bad("CR, LF and NUL are not allowed"));
        }
        let Some(check) = checks
            .iter_mut()
            .filter(|c| arg.strip_prefix(c.name.as_str()).is_some_and(|rest| rest.starts_with('=')))
            .max_by_key(|c| c.name.len())
        else {
            return Err(if arg.contains('=') { bad("no check has that NAME") } else { bad("use NAME=FIELD: VALUE") });
        };
        let field = &arg[check.name.len() + 1..];
        let Some((name, value)) = field.split_once(':') else {
            return Err(bad("missing ':' after the field name"));
        };
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(token) {
            return Err(bad("invalid field name"));
        }
        if value.bytes().any(|b| (b < b' ' && b != b'\t') || b == 0x7f) {
            return Err(bad("control characters are not allowed"));
        }
        if FRAMING_FIELDS.iter().any(|f| name.eq_ignore_ascii_case(f)) {
            return Err(bad("a probe request has no body to describe"));
        }
        if check.kind == crate::check::Kind::Tcp {
            return Err(bad("a tcp check sends no request"));
        }
        let grpc = check.kind == crate::check::Kind::Grpc;
        if grpc && crate::wire::grpc::reserved(name) {
            return Err(bad("the gRPC call sets this field itself"));
        }
        check.add_header(name, value);
        if grpc {
            check.grpc_request().map_err(|e| bad(&e.0))?;
        }
    }
    Ok(())
}

/// The per-check options other than `--header`, all `--OPTION NAME=VALUE`.
const PER_CHECK: [&str; 3] = ["--expect-status", "--expect-body", "--unix-socket"];

/// Longest unix socket path: `sun_path` holds 108 bytes with the NUL.
const MAX_SOCKET_PATH: usize = 107;

/// Applies each per-check option (`flag`, `NAME=VALUE`) to the check NAME
/// (the longest name that matches, as names may hold `=`).
fn apply_per_check(checks: &mut [Check], options: &[(String, String)]) -> Result<(), UsageError> {
    for (flag, arg) in options {
        let bad = |why: &str| usage(format!("invalid {flag} '{}': {why}", Shown(arg)));
        let Some(check) = checks
            .iter_mut()
            .filter(|c| arg.strip_prefix(c.name.as_str()).is_some_and(|rest| rest.starts_with('=')))
            .max_by_key(|c| c.name.len())
        else {
            return Err(bad(if arg.contains('=') { "no check has that NAME" } else { "use NAME=VALUE" }));
        };
        let value = &arg[check.name.len() + 1..];
        if value.is_empty() {
            return Err(bad("the value is empty"));
        }
        match flag.as_str() {
            "--expect-status" => {
                if check.kind != Kind::Http {
                    return Err(bad("only an http check has a status to expect"));
                }
                let set = StatusSet::parse(value).map_err(bad)?;
                match &mut check.expect_status {
                    Some(given) => given.extend(set),
                    None => check.expect_status = Some(set),
                }
            }
            "--expect-body" => {
                if check.kind != Kind::Http {
                    return Err(bad("only an http check has a body to read"));
                }
                if check.expect_body.is_some() {
                    return Err(bad("given twice for this check"));
                }
                if value.len() > MAX_BODY {
                    return Err(bad("longer than the 10 KiB of body read"));
                }
                check.expect_body = Some(BodyText::new(value));
            }
            "--unix-socket" => {
                if check.kind == Kind::Tcp {
                    return Err(bad("a tcp check connects to its host and port"));
                }
                if check.unix_socket.is_some() {
                    return Err(bad("given twice for this check"));
                }
                if value.len() > MAX_SOCKET_PATH {
                    return Err(bad("a socket path has at most 107 bytes"));
                }
                check.unix_socket = Some(value.into());
            }
            _ => unreachable!("one arm per PER_CHECK option"),
        }
    }
    Ok(())
}

/// `--listen`: `IP:PORT`, `:PORT` (every address) or `localhost:PORT`
/// (127.0.0.1, without DNS), as Go's `net.Listen` reads them.
fn parse_listen(v: &str) -> Result<Listen, UsageError> {
    let invalid = |why: &str| usage(format!("invalid --listen '{}': {why}", Shown(v)));
    let listen =
        if let Some(port) = v.strip_prefix(':') {
            Listen::Every(port.parse().map_err(|_| invalid("use a port from 1 to 65535"))?)
        } else if let Some((_, port)) = v.rsplit_once(':').filter(|(host, _)| host.eq_ignore_ascii_case("localhost")) {
            let port = port.parse().map_err(|_| invalid("use a port from 1 to 65535"))?;
            Listen::Addr(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
        } else {
            Listen::Addr(v.parse().map_err(|_| {
                invalid("use IP:PORT, :PORT or localhost:PORT, e.g. 127.0.0.1:8081, [::]:8081 or :8081")
            })?)
        };
    if listen.candidates().iter().any(|a| a.port() == 0) {
        return Err(invalid("use a port from 1 to 65535"));
    }
    Ok(listen)
}

fn parse_port(s: &str) -> Result<u16, UsageError> {
    match s.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(usage(format!("invalid port '{}': use 1 to 65535", Shown(s)))),
    }
}

/// Sets a single-valued option: given twice is a usage error naming it,
/// never "the last one wins" silently.
fn once<T>(slot: &mut Option<T>, flag: &str, value: T) -> Result<(), UsageError> {
    if slot.is_some() {
        return Err(usage(format!("{flag} given twice: give it once")));
    }
    *slot = Some(value);
    Ok(())
}

/// A duration where zero means "off".
fn parse_optional_duration(what: &str, s: &str) -> Result<Duration, UsageError> {
    parse_duration(s).map_err(|e| usage(format!("invalid {what} '{}': {e}", Shown(s))))
}

fn parse_timeout(what: &str, s: &str) -> Result<Duration, UsageError> {
    match parse_duration(s) {
        Ok(d) if d.is_zero() => Err(usage(format!("invalid {what} '{s}': must be more than zero"))),
        Ok(d) => Ok(d),
        Err(e) => Err(usage(format!("invalid {what} '{}': {e}", Shown(s)))),
    }
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
    usage(format!("unknown option '{}' for {mode}", Shown(arg)))
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
            Some(os) => os
                .into_string()
                .map(Some)
                .map_err(|os| usage(format!("argument is not UTF-8: '{}'", Shown(&os.to_string_lossy())))),
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
            let addrs = match &c.unix_socket {
                Some(_) => "unix socket".to_string(),
                None if addrs.is_empty() => "resolved each round".to_string(),
                None => addrs.join(","),
            };
            // The URL as written: two checks that differ only in how their host is
            // written (`LOCALHOST`, `:80`) probe differently and must look different.
            let url = Shown(&String::from_utf8_lossy(&c.target.to_text())).to_string();
            let _ = writeln!(out, "{label} {} {url} ({addrs})", c.name);
            // The service as sent: the URL and the name show it percent-encoded.
            if let Some(service) = c.grpc_service() {
                out.push_str(label);
                let _ = write!(out, "-service {} \"", c.name);
                let _ = crate::wire::text::write_escaped(out, &service, '"');
                out.push_str("\"\n");
            }
            for (name, value) in &c.headers {
                let _ = writeln!(out, "{label}-header {} {name}: {}", c.name, Shown(value));
            }
            if let Some(timeout) = c.timeout {
                let _ = writeln!(out, "{label}-timeout {} {}", c.name, DisplayDuration(timeout));
            }
            if let Some(set) = &c.expect_status {
                let _ = writeln!(out, "{label}-expect-status {} {}", c.name, set.shown());
            }
            if let Some(text) = &c.expect_body {
                let text = String::from_utf8_lossy(&text.bytes);
                let _ = writeln!(out, "{label}-expect-body {} '{}'", c.name, Shown(&text));
            }
            if let Some(path) = &c.unix_socket {
                let _ = writeln!(out, "{label}-unix-socket {} {}", c.name, Shown(&path.to_string_lossy()));
            }
        }
    };
    match cmd {
        Command::Serve(c) => {
            let _ = writeln!(
                out,
                "mode serve\nlisten {}\ntimeout {}\nmax-connections {}\nmin-interval {}\ninterval {}\nverbose {}",
                c.listen,
                DisplayDuration(c.timeout),
                c.max_connections,
                DisplayDuration(c.min_interval),
                DisplayDuration(c.interval),
                c.verbose
            );
            checks(&mut out, "check", &c.checks);
        }
        Command::Check(c) => {
            let _ = writeln!(
                out,
                "mode check\ntimeout {}\nquiet {}\noutput {}",
                DisplayDuration(c.timeout),
                c.quiet,
                c.output.as_str()
            );
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
            out.push_str("command [");
            for (i, arg) in c.command.iter().enumerate() {
                out.push_str(if i == 0 { "\"" } else { ", \"" });
                let _ = crate::wire::text::write_escaped(&mut out, &arg.to_string_lossy(), '"');
                out.push('"');
            }
            out.push_str("]\n");
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
    fn original_form() {
        let Ok(Command::Serve(c)) =
            parse(args("8081 3 http://localhost:15020/healthz/ready http://localhost:8080/healthz"), no_env)
        else {
            panic!()
        };
        assert_eq!(c.listen, Listen::Addr("0.0.0.0:8081".parse().unwrap()));
        assert_eq!(c.timeout, Duration::from_secs(3));
        assert_eq!(c.checks.len(), 2);
        assert_eq!(c.checks[1].name, "localhost:8080/healthz");
    }

    #[test]
    fn serve_flags() {
        let line = "serve --listen=[::1]:9000 --timeout 500ms --max-connections 10 --verbose app=http://127.0.0.1/h";
        let Ok(Command::Serve(c)) = parse(args(line), no_env) else { panic!() };
        assert_eq!(c.listen, Listen::Addr("[::1]:9000".parse().unwrap()));
        assert_eq!((c.timeout, c.max_connections, c.verbose), (Duration::from_millis(500), 10, true));
        assert_eq!(c.checks[0].name, "app");
        let Ok(Command::Serve(c)) = parse(args("serve --port 80 http://127.0.0.1/"), no_env) else { panic!() };
        assert_eq!(c.listen, Listen::Addr("0.0.0.0:80".parse().unwrap()));
        let listen = |v: &str| match parse(args(&format!("serve --listen {v} http://127.0.0.1/")), no_env) {
            Ok(Command::Serve(c)) => c.listen,
            other => panic!("{v}: {other:?}"),
        };
        assert_eq!(listen(":8081"), Listen::Every(8081));
        assert_eq!(listen("localhost:8081"), Listen::Addr("127.0.0.1:8081".parse().unwrap()));
        assert_eq!(listen("LocalHost:8081"), Listen::Addr("127.0.0.1:8081".parse().unwrap()));
        for bad in [":0", ":", ":x", "localhost:0", "localhost:", "example.com:8081", "localhost"] {
            assert!(err(&format!("serve --listen {bad} http://127.0.0.1/")).contains("invalid --listen"), "{bad}");
        }
    }

    #[test]
    fn check_output() {
        let Ok(Command::Check(c)) = parse(args("check --output=json http://127.0.0.1/"), no_env) else { panic!() };
        assert_eq!(c.output, Output::Json);
        let Ok(Command::Check(c)) = parse(args("check http://127.0.0.1/"), no_env) else { panic!() };
        assert_eq!(c.output, Output::Text);
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
            ("8081 3 ftp://localhost/", "unsupported scheme 'ftp'"),
            ("8081 3 ftp://localhost/", "unsupported scheme 'ftp'"),
            ("abc 3 http://localhost/", "unknown mode 'abc'"),
            ("serve --port abc http://localhost/", "invalid port 'abc'"),
            ("serve --timeout", "--timeout needs a value"),
            ("serve --bogus http://localhost/", "unknown option '--bogus'"),
            ("serve --listen 1.2.3.4 http://localhost/", "invalid --listen"),
            (
                "serve --listen 127.0.0.1:0 http://localhost/",
                "invalid --listen '127.0.0.1:0': use a port from 1 to 65535",
            ),
            ("serve --verbose=1 http://localhost/", "takes no value"),
            ("serve a=http://localhost/ a=http://127.0.0.1/", "duplicate check name 'a'"),
            ("run --istio --linkerd -- x", "--istio and --linkerd are exclusive"),
            ("check --timeout 0 http://localhost/", "--timeout"),
            ("check --output yaml http://localhost/", "invalid --output 'yaml': use text or json"),
            ("run --wait http://localhost/", "needs a command"),
            ("run -- ", "needs a command"),
            ("run --on-exit-when never -- true", "--on-exit-when"),
            ("run --on-exit tcp://localhost:1 -- true", "unsupported scheme 'tcp'"),
            ("run --wait-timeout-continue -- true", "needs --wait-timeout"),
            ("run true", "unexpected argument 'true'"),
            ("serve http://h:0/", "invalid URL 'http://h:0/': port 0"),
            ("check tcp://127.0.0.1:00", "invalid URL 'tcp://127.0.0.1:00': port 0"),
            ("check grpc://[::1]:0", "invalid URL 'grpc://[::1]:0': port 0"),
            ("run --on-exit http://h:0/x -- true", "invalid URL 'http://h:0/x': port 0"),
            ("serve --timeout 1s --timeout 2s http://h/", "--timeout given twice"),
            ("check --timeout=1s http://h/ --timeout 1s", "--timeout given twice"),
            ("run --timeout 1s --timeout 2s -- true", "--timeout given twice"),
            ("serve --listen :1 --listen :2 http://h/", "--listen given twice"),
            ("serve --port 1 --port 2 http://h/", "--port given twice"),
            ("serve --max-connections 1 --max-connections 2 http://h/", "--max-connections given twice"),
            ("serve --interval 1s --interval 1s http://h/", "--interval given twice"),
            ("serve --min-interval 0 --min-interval 1s http://h/", "--min-interval given twice"),
            ("check --output text --output json http://h/", "--output given twice"),
            ("run --interval 1s --interval 2s -- true", "--interval given twice"),
            ("run --wait-timeout 1s --wait-timeout 2s -- true", "--wait-timeout given twice"),
            ("run --on-exit-timeout 1s --on-exit-timeout 2s -- true", "--on-exit-timeout given twice"),
            ("run --on-exit-when always --on-exit-when failure -- true", "--on-exit-when given twice"),
        ];
        for (line, want) in cases {
            let msg = err(line);
            assert!(msg.contains(want), "{line:?}: {msg}");
            assert!(!msg.contains('\n'), "{line:?}: one line");
        }
    }

    #[test]
    fn unnamed_checks_are_never_a_usage_error() {
        let names = |line: &str| match parse(args(line), no_env) {
            Ok(Command::Serve(c)) => c.checks.into_iter().map(|c| c.name).collect::<Vec<_>>(),
            other => panic!("{line}: {other:?}"),
        };
        let same = "serve http://127.0.0.1:9/h HTTP://127.0.0.1:9/h#x http://127.0.0.1:9/h tcp://127.0.0.1:9 tcp://127.0.0.1:9/";
        assert_eq!(names(same), ["127.0.0.1:9/h", "127.0.0.1:9"]);
        // Hosts written differently are different probes to kubelet (the
        // Host sent, which redirects are followed): two checks.
        assert_eq!(names("serve http://localhost:80/ http://LOCALHOST/"), ["localhost/", "localhost/~2"]);
        assert_eq!(names("serve http://localhost/ http://localhost/#x"), ["localhost/"]);
        // A named check beside the same URL unnamed: two checks, two names.
        assert_eq!(names("serve app=http://127.0.0.1:9/ http://127.0.0.1:9/"), ["app", "127.0.0.1:9/"]);
        assert!(err("serve app=http://127.0.0.1:9/ app=http://127.0.0.1:9/").contains("duplicate check name 'app'"));
        // Two different probes under one default name (the request differs, as headers will
        // make it) keep both, the later one renamed past every name in use.
        let a = Check::parse("http://127.0.0.1:9/").unwrap();
        let mut b = a.clone();
        b.request.extend_from_slice(b"X");
        let mut c = a.clone();
        c.request.extend_from_slice(b"Y");
        let taken = Check::parse("http://127.0.0.1:9/~2").unwrap();
        let checks = finish_checks(vec![a, b, taken, c]).unwrap();
        let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["127.0.0.1:9/", "127.0.0.1:9/~3", "127.0.0.1:9/~2", "127.0.0.1:9/~4"]);
    }

    #[test]
    fn completion_callback_switch() {
        let env = |value: &'static str| {
            move |k: &str| match k {
                "ENABLE_COMPLETION_CALLBACK" => Some(value.to_string()),
                "COMPLETION_CALLBACK_ENDPOINT" => Some("http://127.0.0.1:15020/quitquitquit".to_string()),
                _ => None,
            }
        };
        for (value, on) in
            [("1", true), ("true", true), ("TRUE", true), ("0", false), ("false", false), ("False", false), ("", false)]
        {
            let Ok(Command::Run(c)) = parse(args("run -- job"), env(value)) else { panic!("{value}") };
            assert_eq!(c.on_exit.len(), usize::from(on), "{value:?}");
        }
        for value in ["yes", "on", "2", " 1"] {
            let Err(UsageError(msg)) = parse(args("run -- job"), env(value)) else { panic!("{value:?} accepted") };
            assert!(msg.contains("ENABLE_COMPLETION_CALLBACK"), "{value:?}: {msg}");
        }
    }

    #[test]
    fn run_presets_and_env() {
        let line = "run --istio --on-exit http://127.0.0.1:1/done -- app --flag";
        let Ok(Command::Run(c)) = parse(args(line), no_env) else { panic!() };
        assert_eq!(c.wait[0].target.to_text(), ISTIO_WAIT.as_bytes());
        assert_eq!(c.on_exit.len(), 1);
        assert_eq!(c.on_exit[0].target.to_text(), b"http://127.0.0.1:1/done");
        assert_eq!(c.command, args("app --flag"));
        assert_eq!(c.wait_timeout, None);

        let env = |k: &str| match k {
            "ENABLE_COMPLETION_CALLBACK" => Some("1".to_string()),
            "COMPLETION_CALLBACK_ENDPOINT" => Some("http://localhost:15020/quitquitquit".to_string()),
            _ => None,
        };
        let Ok(Command::Run(c)) = parse(args("run --linkerd -- job"), env) else { panic!() };
        let urls: Vec<Vec<u8>> = c.on_exit.iter().map(|c| c.target.to_text()).collect();
        assert_eq!(urls, [LINKERD_ON_EXIT.as_bytes(), ISTIO_ON_EXIT.as_bytes()]);
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
        assert!(text.contains("check name.invalid:8080/ http://name.invalid:8080/ (resolved each round)"), "{text}");
        assert!(text.contains("127.0.0.1:80,[::1]:80"), "{text}");
        assert!(parse(args("serve http://name.invalid/"), no_env).is_ok(), "a name is never a usage error");
    }

    #[test]
    fn dry_run_shows_the_command_quoted() {
        let mut argv = args("run --dry-run -- sh -c");
        argv.push("echo \"x\"\n".into());
        let Ok(cmd) = parse(argv, no_env) else { panic!() };
        assert!(describe(&cmd).contains("\ncommand [\"sh\", \"-c\", \"echo \\\"x\\\"\\n\"]\n"), "{}", describe(&cmd));
    }

    #[test]
    fn dry_run_shows_the_grpc_service_decoded() {
        let line = "check --dry-run grpc://127.0.0.1:9?service=a%2Fb+c%22 db=grpc://127.0.0.1:9 http://127.0.0.1:9/";
        let Ok(cmd) = parse(args(line), no_env) else { panic!() };
        let text = describe(&cmd);
        assert!(text.contains("\ncheck-service 127.0.0.1:9?service=a%2Fb+c%22 \"a/b+c\\\"\"\n"), "{text}");
        assert!(text.contains("\ncheck-service db \"\"\n"), "the server as a whole: {text}");
        assert_eq!(text.matches("-service").count(), 2, "{text}");
    }

    #[test]
    fn dry_run_shows_urls_as_written() {
        let line = "check --dry-run http://localhost:8080/a http://LOCALHOST:8080/a http://localhost:80 tcp://[::1]:5";
        let Ok(cmd) = parse(args(line), no_env) else { panic!() };
        let text = describe(&cmd);
        for want in [
            "check localhost:8080/a http://localhost:8080/a (127.0.0.1:8080,[::1]:8080)",
            "check localhost:8080/a~2 http://LOCALHOST:8080/a (127.0.0.1:8080,[::1]:8080)",
            "check localhost/ http://localhost:80 (127.0.0.1:80,[::1]:80)",
            "check [::1]:5 tcp://[::1]:5 ([::1]:5)",
        ] {
            assert!(text.contains(want), "{want}:\n{text}");
        }
    }
}
