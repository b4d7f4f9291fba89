//! Prometheus metrics: counters kept per check, round and request, and the
//! text exposition (format 0.0.4) written into a reused buffer.

use std::fs::File;
use std::io::Read as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::check::Check;
use crate::verdict::{ReasonClass, Verdict};
use crate::wire::digits::{nanos, push_decimal, push_seconds, put};
use crate::wire::VERSION;

/// The `Content-Type` of a scrape.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Histogram upper bounds, in nanoseconds, and their `le` label as written
/// (constants: nothing to escape): 1 ms to 10 s, about evenly spaced on a
/// log scale (x3, x3.3), enough to tell a local answer from a slow
/// dependency and a timeout. Fixed, so series do not grow; nine, because
/// bucket lines are most of a scrape (13 steps of 1-2.5-5 cost a third more
/// CPU per scrape for a finer p99 than probe latencies need).
const BUCKETS: [(u64, &str); 9] = [
    (1_000_000, "le=\"0.001\"} "),
    (3_000_000, "le=\"0.003\"} "),
    (10_000_000, "le=\"0.01\"} "),
    (30_000_000, "le=\"0.03\"} "),
    (100_000_000, "le=\"0.1\"} "),
    (300_000_000, "le=\"0.3\"} "),
    (1_000_000_000, "le=\"1\"} "),
    (3_000_000_000, "le=\"3\"} "),
    (10_000_000_000, "le=\"10\"} "),
];
const INF: &str = "le=\"+Inf\"} ";

/// Which endpoint answered a request: the `handler` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handler {
    SelfCheck,
    All,
    /// `/all/NAME`.
    Check,
    Metrics,
    /// Unknown paths, other methods, malformed requests.
    Other,
}

impl Handler {
    const ALL: [Handler; 5] = [Handler::SelfCheck, Handler::All, Handler::Check, Handler::Metrics, Handler::Other];

    fn as_str(self) -> &'static str {
        match self {
            Handler::SelfCheck => "self",
            Handler::All => "all",
            Handler::Check => "check",
            Handler::Metrics => "metrics",
            Handler::Other => "other",
        }
    }
}

/// Every status the daemon answers with (see `http::status_body`), as the
/// `code` label; anything else is counted as `other`.
const CODES: [&str; 7] = ["200", "400", "404", "405", "431", "503", "other"];

fn code_index(status: u16) -> usize {
    match status {
        200 => 0,
        400 => 1,
        404 => 2,
        405 => 3,
        431 => 4,
        503 => 5,
        _ => 6,
    }
}

/// A histogram over [`BUCKETS`]; counts per bucket, made cumulative when
/// written.
#[derive(Clone, Debug, Default)]
pub(crate) struct Histogram {
    /// Observations per bucket, not cumulative; beyond the last: only `count`.
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum_nanos: u64,
}

impl Histogram {
    pub(crate) fn observe(&mut self, d: Duration) {
        let n = nanos(d);
        if let Some(i) = BUCKETS.iter().position(|&(bound, _)| n <= bound) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum_nanos = self.sum_nanos.saturating_add(n);
    }

    /// `_bucket` lines (cumulative, `+Inf` last and equal to `_count`),
    /// `_sum` and `_count`; `labels` are pre-escaped and go before `le`.
    /// The bucket lines are most of a scrape: each is a few copies.
    fn write(&self, out: &mut Vec<u8>, name: &str, labels: &[u8]) {
        let mut cumulative = 0;
        for (&(_, le), &n) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += n;
            bucket(out, name, labels, le, cumulative);
        }
        bucket(out, name, labels, INF, self.count);
        sample(out, name, "_sum", labels, &[]);
        push_seconds(out, self.sum_nanos);
        out.push(b'\n');
        sample(out, name, "_count", labels, &[]);
        push_decimal(out, self.count);
        out.push(b'\n');
    }
}

/// `NAME_bucket{LABELS,le="B"} N`; `le` is `le="B"} ` from [`BUCKETS`].
fn bucket(out: &mut Vec<u8>, name: &str, labels: &[u8], le: &str, n: u64) {
    put(out, name.as_bytes());
    put(out, b"_bucket{");
    if !labels.is_empty() {
        put(out, labels);
        out.push(b',');
    }
    put(out, le.as_bytes());
    push_decimal(out, n);
    out.push(b'\n');
}

#[derive(Debug)]
struct CheckMetrics {
    /// `check="NAME"`, escaped once at startup: a scrape copies it.
    label: Vec<u8>,
    up: Option<bool>,
    /// Unix time of the last change of `up`, in nanoseconds.
    last_change: u64,
    duration: Histogram,
    failures: [u64; ReasonClass::ALL.len()],
}

/// Everything `/metrics` reports. Its size is fixed by the configured
/// checks; traffic only moves counters.
#[derive(Debug)]
pub struct Metrics {
    checks: Vec<CheckMetrics>,
    rounds: u64,
    round_duration: Histogram,
    requests: [[u64; CODES.len()]; Handler::ALL.len()],
    dropped: u64,
    /// Process start, Unix time in nanoseconds (None without /proc).
    start_time: Option<u64>,
    /// The checks' families as last written: they change only with a
    /// verdict, so a burst of scrapes between rounds copies them.
    checks_text: Vec<u8>,
    checks_stale: bool,
    /// The process figures as last read, and when: read from /proc at most
    /// once per [`PROCESS_REFRESH`], not once per scrape.
    process_text: Vec<u8>,
    process_read: Option<Instant>,
}

/// How long the process figures of a scrape are reused.
pub const PROCESS_REFRESH: Duration = Duration::from_secs(1);

impl Metrics {
    pub fn new(checks: &[Check]) -> Metrics {
        let checks = checks
            .iter()
            .map(|c| {
                let mut label = Vec::new();
                push_label(&mut label, "check", c.name.as_bytes());
                CheckMetrics {
                    label,
                    up: None,
                    last_change: 0,
                    duration: Histogram::default(),
                    failures: [0; ReasonClass::ALL.len()],
                }
            })
            .collect();
        Metrics {
            checks,
            rounds: 0,
            round_duration: Histogram::default(),
            requests: [[0; CODES.len()]; Handler::ALL.len()],
            dropped: 0,
            start_time: process_start_time(),
            checks_text: Vec::new(),
            checks_stale: true,
            process_text: Vec::new(),
            process_read: None,
        }
    }

    /// Records check `index`'s verdict, reached `elapsed` after its round
    /// started; `now` dates a change of state.
    pub fn verdict(&mut self, index: usize, verdict: &Verdict, elapsed: Duration, now: SystemTime) {
        let Some(m) = self.checks.get_mut(index) else {
            return;
        };
        self.checks_stale = true;
        m.duration.observe(elapsed);
        if let Verdict::Fail(reason) = verdict {
            m.failures[ReasonClass::of(reason) as usize] += 1;
        }
        if m.up != Some(verdict.passed()) {
            m.up = Some(verdict.passed());
            // Milliseconds, as Prometheus keeps time: more digits say nothing.
            let since = nanos(now.duration_since(UNIX_EPOCH).unwrap_or_default());
            m.last_change = since - since % 1_000_000;
        }
    }

    /// Records a round that took `elapsed` from start to its last verdict.
    pub(crate) fn round(&mut self, elapsed: Duration) {
        self.rounds += 1;
        self.round_duration.observe(elapsed);
    }

    /// Records an answered request.
    pub fn request(&mut self, handler: Handler, status: u16) {
        self.requests[handler as usize][code_index(status)] += 1;
    }

    /// Records an inbound connection dropped without an answer.
    pub(crate) fn dropped(&mut self) {
        self.dropped += 1;
    }

    /// Appends the whole exposition; `connections` are those open now.
    /// Process figures are read from /proc at scrape time, at most once
    /// per [`PROCESS_REFRESH`].
    pub fn write(&mut self, out: &mut Vec<u8>, connections: usize, now: Instant) {
        if self.checks_stale {
            self.checks_text.clear();
            write_checks(&mut self.checks_text, &self.checks);
            self.checks_stale = false;
        }
        out.extend_from_slice(&self.checks_text);
        self.write_server(out, connections);
        if self.process_read.is_none_or(|t| now.saturating_duration_since(t) >= PROCESS_REFRESH) {
            self.process_text.clear();
            write_process(&mut self.process_text, self.start_time);
            self.process_read = Some(now);
        }
        out.extend_from_slice(&self.process_text);
    }

    /// The rounds, requests and connections: counters that move with every
    /// request, written afresh.
    fn write_server(&self, out: &mut Vec<u8>, connections: usize) {
        counter(out, "healthcheck_rounds_total", "Rounds of probes run.", self.rounds);
        let name = "healthcheck_round_duration_seconds";
        family(out, name, "histogram", "Time from the start of a round to its last verdict.");
        self.round_duration.write(out, name, b"");
        let name = "healthcheck_http_requests_total";
        family(out, name, "counter", "Inbound requests answered, by handler and status code.");
        for (handler, codes) in Handler::ALL.iter().zip(&self.requests) {
            for (code, &n) in CODES.iter().zip(codes) {
                if n > 0 {
                    sample(out, name, "", b"", &[("handler", handler.as_str().as_bytes()), ("code", code.as_bytes())]);
                    push_decimal(out, n);
                    out.push(b'\n');
                }
            }
        }
        gauge(out, "healthcheck_connections", "Inbound connections open now.", connections as u64);
        counter(
            out,
            "healthcheck_connections_dropped_total",
            "Inbound connections dropped at the connection limit or for a timeout.",
            self.dropped,
        );
        family(out, "healthcheck_build_info", "gauge", "Always 1; the version is a label.");
        sample(out, "healthcheck_build_info", "", b"", &[("version", VERSION.as_bytes())]);
        put(out, b"1\n");
    }
}

/// The checks' families: state, durations, failures, last change.
fn write_checks(out: &mut Vec<u8>, checks: &[CheckMetrics]) {
    family(out, "healthcheck_check_up", "gauge", "1 if the check passed in its last round, 0 if it failed.");
    for m in checks {
        if let Some(up) = m.up {
            sample(out, "healthcheck_check_up", "", &m.label, &[]);
            put(out, if up { b"1\n" } else { b"0\n" });
        }
    }
    let name = "healthcheck_check_duration_seconds";
    family(out, name, "histogram", "How long each probe of the check took to its verdict.");
    for m in checks.iter().filter(|m| m.duration.count > 0) {
        m.duration.write(out, name, &m.label);
    }
    let name = "healthcheck_check_failures_total";
    family(out, name, "counter", "Failed verdicts by reason class.");
    for m in checks {
        for (class, &n) in ReasonClass::ALL.iter().zip(&m.failures) {
            if n > 0 {
                sample(out, name, "", &m.label, &[("reason", class.as_str().as_bytes())]);
                push_decimal(out, n);
                out.push(b'\n');
            }
        }
    }
    let name = "healthcheck_check_last_change_timestamp_seconds";
    family(out, name, "gauge", "When the check last changed state, in Unix time.");
    for m in checks.iter().filter(|m| m.up.is_some()) {
        sample(out, name, "", &m.label, &[]);
        push_seconds(out, m.last_change);
        out.push(b'\n');
    }
}

/// Appends `key="value"` with the value escaped as the text format wants:
/// `\` `"` and line feed. The one place a label value is written.
pub fn push_label(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    put(out, key.as_bytes());
    put(out, b"=\"");
    for &b in value {
        match b {
            b'\\' => put(out, b"\\\\"),
            b'"' => put(out, b"\\\""),
            b'\n' => put(out, b"\\n"),
            b => out.push(b),
        }
    }
    out.push(b'"');
}

/// `# HELP` and `# TYPE` of a family (help texts are ours: nothing to escape).
fn family(out: &mut Vec<u8>, name: &str, kind: &str, help: &str) {
    for (tag, text) in [("# HELP ", help), ("# TYPE ", kind)] {
        put(out, tag.as_bytes());
        put(out, name.as_bytes());
        out.push(b' ');
        put(out, text.as_bytes());
        out.push(b'\n');
    }
}

/// Starts a sample line, up to its value: `NAMESUFFIX{PRE,k="v"} `. `pre`
/// holds labels already escaped ([`push_label`]); `labels` are escaped here.
fn sample(out: &mut Vec<u8>, name: &str, suffix: &str, pre: &[u8], labels: &[(&str, &[u8])]) {
    put(out, name.as_bytes());
    put(out, suffix.as_bytes());
    if !pre.is_empty() || !labels.is_empty() {
        out.push(b'{');
        put(out, pre);
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 || !pre.is_empty() {
                out.push(b',');
            }
            push_label(out, key, value);
        }
        out.push(b'}');
    }
    out.push(b' ');
}

fn counter(out: &mut Vec<u8>, name: &str, help: &str, n: u64) {
    family(out, name, "counter", help);
    sample(out, name, "", b"", &[]);
    push_decimal(out, n);
    out.push(b'\n');
}

fn gauge(out: &mut Vec<u8>, name: &str, help: &str, n: u64) {
    family(out, name, "gauge", help);
    sample(out, name, "", b"", &[]);
    push_decimal(out, n);
    out.push(b'\n');
}

/// The process figures the Prometheus client libraries export, read at
/// scrape time. Each is left out when its source cannot be read (no /proc).
fn write_process(out: &mut Vec<u8>, start_time: Option<u64>) {
    if let Some(stat) = read_self_stat() {
        let name = "process_cpu_seconds_total";
        family(out, name, "counter", "Total user and system CPU time spent in seconds.");
        sample(out, name, "", b"", &[]);
        push_seconds(out, ticks_to_nanos(stat.cpu_ticks));
        out.push(b'\n');
        gauge(out, "process_resident_memory_bytes", "Resident memory size in bytes.", stat.rss_pages * page_size());
    }
    if let Some(n) = open_fds() {
        gauge(out, "process_open_fds", "Number of open file descriptors.", n);
    }
    if let Some(n) = max_fds() {
        gauge(out, "process_max_fds", "Maximum number of open file descriptors.", n);
    }
    if let Some(t) = start_time {
        let name = "process_start_time_seconds";
        family(out, name, "gauge", "Start time of the process since unix epoch in seconds.");
        sample(out, name, "", b"", &[]);
        push_seconds(out, t);
        out.push(b'\n');
    }
}

/// The fields of `/proc/self/stat` that are exported.
#[derive(Debug, PartialEq, Eq)]
struct Stat {
    /// utime + stime, in clock ticks.
    cpu_ticks: u64,
    /// Clock ticks after boot when the process started.
    start_ticks: u64,
    rss_pages: u64,
}

/// Parses `/proc/PID/stat` (proc(5)). The command name is in parentheses
/// and may hold spaces and parentheses itself: fields count from the last `)`.
fn parse_stat(text: &[u8]) -> Option<Stat> {
    let close = text.iter().rposition(|&b| b == b')')?;
    let mut fields = text[close + 1..].split(|&b| b == b' ').filter(|f| !f.is_empty());
    // After the name: state is field 3, utime 14, stime 15, starttime 22, rss 24.
    let mut field = |n: usize| -> Option<u64> { parse_u64(fields.nth(n)?) };
    let utime = field(14 - 3)?;
    let stime = field(0)?;
    let start_ticks = field(22 - 16)?;
    let rss_pages = field(24 - 23)?;
    Some(Stat { cpu_ticks: utime.saturating_add(stime), start_ticks, rss_pages })
}

fn parse_u64(s: &[u8]) -> Option<u64> {
    let s = s.trim_ascii();
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// Bytes of `/proc/self/stat` kept: the line is about 300 bytes.
const STAT_BUF: usize = 1024;

/// Reads `/proc/self/stat` into a stack buffer: no allocation per scrape.
fn read_self_stat() -> Option<Stat> {
    let mut buf = [0u8; STAT_BUF];
    let mut file = File::open("/proc/self/stat").ok()?;
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    parse_stat(&buf[..len])
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf only reads a constant of the system.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(100)
}

fn page_size() -> u64 {
    // SAFETY: as above.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

fn ticks_to_nanos(ticks: u64) -> u64 {
    let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(clock_ticks());
    u64::try_from(nanos).unwrap_or(u64::MAX)
}

/// Unix time of the process start: the boot time (`btime` in /proc/stat)
/// plus the start in ticks after boot. Read once: neither changes.
fn process_start_time() -> Option<u64> {
    let stat = std::fs::read("/proc/stat").ok()?;
    let btime = stat.split(|&b| b == b'\n').find_map(|line| line.strip_prefix(b"btime ")).and_then(parse_u64)?;
    let start = ticks_to_nanos(read_self_stat()?.start_ticks);
    btime.checked_mul(1_000_000_000)?.checked_add(start)
}

/// Counts the entries of /proc/self/fd, less the one listing them.
fn open_fds() -> Option<u64> {
    // SAFETY: the path is a NUL-terminated literal; the DIR pointer is
    // checked, only used while open, and closed once.
    unsafe {
        let dir = libc::opendir(c"/proc/self/fd".as_ptr());
        if dir.is_null() {
            return None;
        }
        let mut n: u64 = 0;
        loop {
            let entry = libc::readdir(dir);
            if entry.is_null() {
                break;
            }
            if (*entry).d_name[0] != b'.' as libc::c_char {
                n += 1;
            }
        }
        libc::closedir(dir);
        Some(n.saturating_sub(1))
    }
}

/// The soft descriptor limit, as `Max open files` in /proc/self/limits
/// says, without parsing text.
fn max_fds() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes the struct passed in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    Some(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::{HttpReason, Reason};

    fn checks(names: &[&str]) -> Vec<Check> {
        names.iter().map(|n| Check::parse(&format!("{n}=http://127.0.0.1:1/")).unwrap()).collect()
    }

    fn scrape(m: &mut Metrics) -> String {
        let mut out = Vec::new();
        m.write(&mut out, 3, Instant::now());
        String::from_utf8(out).unwrap()
    }

    fn value(text: &str, series: &str) -> Option<String> {
        text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')).map(str::to_string)
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = Vec::new();
        push_label(&mut out, "check", "a\\b\"c\nd é\t".as_bytes());
        assert_eq!(String::from_utf8(out).unwrap(), "check=\"a\\\\b\\\"c\\nd é\t\"");
    }

    #[test]
    fn odd_names_stay_one_line_each() {
        let mut m = Metrics::new(&checks(&["app"]));
        // Default names come from URLs and hold almost anything.
        m.checks[0].label.clear();
        push_label(&mut m.checks[0].label, "check", b"x\"}\n{y=\"1\\");
        m.verdict(0, &Verdict::Pass, Duration::from_millis(1), SystemTime::now());
        let text = scrape(&mut m);
        assert_eq!(value(&text, "healthcheck_check_up{check=\"x\\\"}\\n{y=\\\"1\\\\\"}"), Some("1".into()));
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut h = Histogram::default();
        for ms in [0, 1, 2, 7, 7, 300, 10_000, 10_001, 60_000] {
            h.observe(Duration::from_millis(ms));
        }
        let mut out = Vec::new();
        h.write(&mut out, "h_seconds", b"");
        let text = String::from_utf8(out).unwrap();
        let get = |le: &str| value(&text, &format!("h_seconds_bucket{{le=\"{le}\"}}")).unwrap();
        assert_eq!(get("0.001"), "2"); // 0 and exactly 1 ms: `le` is inclusive
        assert_eq!(get("0.003"), "3");
        assert_eq!(get("0.01"), "5");
        assert_eq!(get("0.1"), "5");
        assert_eq!(get("0.3"), "6");
        assert_eq!(get("3"), "6");
        assert_eq!(get("10"), "7");
        assert_eq!(get("+Inf"), "9");
        assert_eq!(value(&text, "h_seconds_count").unwrap(), "9");
        assert_eq!(value(&text, "h_seconds_sum").unwrap(), "80.318");
        let counts: Vec<u64> = text
            .lines()
            .filter(|l| l.contains("_bucket"))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(counts.len(), BUCKETS.len() + 1);
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    }

    #[test]
    fn bucket_labels_match_their_bounds() {
        for (i, &(bound, le)) in BUCKETS.iter().enumerate() {
            let value: f64 = le.strip_prefix("le=\"").unwrap().strip_suffix("\"} ").unwrap().parse().unwrap();
            assert_eq!((value * 1e9).round() as u64, bound, "{le}");
            assert!(i == 0 || BUCKETS[i - 1].0 < bound);
            let mut written = Vec::new();
            push_label(&mut written, "le", &le.as_bytes()[4..le.len() - 3]);
            assert_eq!(written, &le.as_bytes()[..le.len() - 2]);
        }
        assert_eq!((BUCKETS[0].0, BUCKETS[BUCKETS.len() - 1].0), (1_000_000, 10_000_000_000));
    }

    #[test]
    fn scrapes_what_rounds_found() {
        let mut m = Metrics::new(&checks(&["app", "db", "never"]));
        let t0 = UNIX_EPOCH + Duration::from_millis(1_795_705_200_123);
        m.verdict(0, &Verdict::Pass, Duration::from_micros(2100), t0);
        m.verdict(1, &Verdict::Fail(Reason::Http(HttpReason::Status(503))), Duration::from_millis(3), t0);
        m.round(Duration::from_millis(3));
        m.verdict(0, &Verdict::Pass, Duration::from_millis(1), t0 + Duration::from_secs(5));
        m.verdict(1, &Verdict::Fail(Reason::Refused), Duration::from_millis(1), t0 + Duration::from_secs(5));
        m.round(Duration::from_millis(1));
        m.request(Handler::All, 503);
        m.request(Handler::All, 503);
        m.request(Handler::Other, 400);
        m.dropped();
        let text = scrape(&mut m);
        assert_eq!(value(&text, "healthcheck_check_up{check=\"app\"}").unwrap(), "1");
        assert_eq!(value(&text, "healthcheck_check_up{check=\"db\"}").unwrap(), "0");
        assert!(!text.contains("check=\"never\""), "a check never run has no series:\n{text}");
        assert_eq!(value(&text, "healthcheck_check_failures_total{check=\"db\",reason=\"status\"}").unwrap(), "1");
        assert_eq!(value(&text, "healthcheck_check_failures_total{check=\"db\",reason=\"refused\"}").unwrap(), "1");
        assert_eq!(value(&text, "healthcheck_check_duration_seconds_count{check=\"app\"}").unwrap(), "2");
        assert_eq!(value(&text, "healthcheck_check_duration_seconds_sum{check=\"app\"}").unwrap(), "0.0031");
        // Unchanged state keeps the time of the first verdict.
        let changed = "healthcheck_check_last_change_timestamp_seconds{check=\"app\"}";
        assert_eq!(value(&text, changed).unwrap(), "1795705200.123");
        assert_eq!(value(&text, "healthcheck_rounds_total").unwrap(), "2");
        assert_eq!(value(&text, "healthcheck_round_duration_seconds_count").unwrap(), "2");
        assert_eq!(value(&text, "healthcheck_http_requests_total{handler=\"all\",code=\"503\"}").unwrap(), "2");
        assert_eq!(value(&text, "healthcheck_http_requests_total{handler=\"other\",code=\"400\"}").unwrap(), "1");
        assert_eq!(value(&text, "healthcheck_connections").unwrap(), "3");
        assert_eq!(value(&text, "healthcheck_connections_dropped_total").unwrap(), "1");
        assert_eq!(value(&text, &format!("healthcheck_build_info{{version=\"{VERSION}\"}}")).unwrap(), "1");
        // Every family has its HELP and TYPE, once, before its samples.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
            assert_eq!(text.matches(&format!("# TYPE {family} ")).count(), 1, "{family}");
            assert_eq!(text.matches(&format!("# HELP {family} ")).count(), 1, "{family}");
        }
    }

    #[test]
    fn reads_this_process() {
        let text = scrape(&mut Metrics::new(&[]));
        let cpu: f64 = value(&text, "process_cpu_seconds_total").unwrap().parse().unwrap();
        assert!(cpu >= 0.0);
        let rss: u64 = value(&text, "process_resident_memory_bytes").unwrap().parse().unwrap();
        assert!(rss > 100_000, "{rss}");
        let fds: u64 = value(&text, "process_open_fds").unwrap().parse().unwrap();
        assert!(fds >= 3, "{fds}");
        let max: u64 = value(&text, "process_max_fds").unwrap().parse().unwrap();
        assert!(max >= fds);
        let start: f64 = value(&text, "process_start_time_seconds").unwrap().parse().unwrap();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
        assert!(start <= now + 1.0 && start > now - 86_400.0 * 30.0, "{start} vs {now}");
    }

    #[test]
    fn parses_proc_stat() {
        let line = b"4242 (a) b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 25 17 0 0 20 0 1 0 9876 2000000 345 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
        assert_eq!(parse_stat(line), Some(Stat { cpu_ticks: 42, start_ticks: 9876, rss_pages: 345 }));
        assert_eq!(parse_stat(b"4242 (a) S 1 2"), None);
        assert_eq!(parse_stat(b""), None);
    }
}
