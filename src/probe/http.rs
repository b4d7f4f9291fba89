//! The http probe, kubelet's httpGet (and the `POST` of a completion
//! callback): send the request, read the status and a bounded body, follow
//! same-host redirects over the connection layer, reach a verdict.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::action::Action;
use super::conn::Conn;
use crate::check::{Check, Kind};
use crate::verdict::{HttpReason, Reason, Verdict};
use crate::wire::response::{self, BodyReader, Finder, Framing, Head, HeadReader, Progress};
use crate::wire::url;

/// Longest response head line kept (see [`response::MAX_LINE`]).
pub const MAX_HEAD: usize = response::MAX_LINE;
/// Body bytes read at most, as kubelet does, then the socket is closed.
pub const MAX_BODY: usize = 10 * 1024;
/// Requests made at most, as kubelet's redirect checker allows: the first
/// and 9 redirects; a tenth redirect fails.
pub const MAX_REDIRECTS: u8 = 10;
/// Before following a redirect Go reads this much of its body, when the
/// body's length is unknown or no larger.
pub(crate) const REDIRECT_DRAIN: usize = 2 << 10;

#[derive(Debug, Default)]
enum State {
    #[default]
    Sending,
    Head,
    /// Reading a body: for the verdict, or (`follow`) before a redirect.
    Body {
        reader: BodyReader,
        follow: bool,
    },
    Done,
}

/// The request of a redirect hop.
#[derive(Debug)]
struct Hop {
    url: url::Url,
    port: u16,
    /// Whether the hop goes over TLS (an `https` Location).
    tls: bool,
    request: Vec<u8>,
    /// The `Host` sent, when the user's one was kept.
    host: Option<Vec<u8>>,
}

/// What a 3xx leads to, as kubelet's client decides it.
#[derive(Debug, Default)]
enum Redirect {
    /// The 3xx itself is the answer (another host, or none planned).
    #[default]
    Answer,
    /// The next request, once the body is drained.
    Follow(Hop),
    /// A failure Go reports only after draining the body.
    Fail(Reason),
}

/// One HTTP exchange (and its redirects) for one round.
#[derive(Debug)]
pub(crate) struct Exchange {
    state: State,
    /// The current hop once a redirect was followed.
    redirect: Option<Hop>,
    /// What follows once the redirect's body is drained.
    next: Redirect,
    /// Requests made so far in this probe.
    requests: u8,
    /// Cleared by a 301/302/303: the user's body fields are then dropped.
    body_fields: bool,
    sent: usize,
    head: HeadReader,
    /// Why the status read fails the check (kubelet's rule, or the check's
    /// `--expect-status`); None while it passes or none was read.
    status_failure: Option<Reason>,
    /// The `--expect-body` text, shown, while it is wanted and not found.
    body_missing: Option<Arc<str>>,
    finder: Finder,
}

impl Default for Exchange {
    fn default() -> Self {
        Exchange {
            state: State::default(),
            redirect: None,
            next: Redirect::Answer,
            requests: 0,
            body_fields: true,
            sent: 0,
            head: HeadReader::default(),
            status_failure: None,
            body_missing: None,
            finder: Finder::default(),
        }
    }
}

impl Exchange {
    /// Resets for a new round, keeping the buffers: building a whole new
    /// probe and dropping the old one cost every check more than its
    /// parsing. The pattern names every field, so a new one cannot be missed.
    pub(crate) fn reset(&mut self) {
        let Exchange { state, redirect, next, requests, body_fields, sent, head, status_failure, body_missing, finder } =
            self;
        *state = State::default();
        *redirect = None;
        *next = Redirect::Answer;
        *requests = 0;
        *body_fields = true;
        *sent = 0;
        head.reset();
        *status_failure = None;
        *body_missing = None;
        finder.reset();
    }

    /// The step to retry when the connection reports readiness.
    pub(crate) fn resume(&self) -> Option<Action> {
        match self.state {
            State::Sending => Some(Action::Send),
            State::Head | State::Body { .. } => Some(Action::Receive),
            State::Done => None,
        }
    }

    /// The connection is established: send the (next) request.
    pub(crate) fn connected(&mut self) -> Action {
        self.state = State::Sending;
        self.sent = 0;
        self.requests = self.requests.saturating_add(1);
        Action::Send
    }

    /// The request bytes still to write.
    pub(crate) fn output<'a>(&'a self, check: &'a Check) -> &'a [u8] {
        let request = match &self.redirect {
            Some(hop) => &hop.request,
            None => &check.request,
        };
        &request[self.sent.min(request.len())..]
    }

    pub(crate) fn wrote(&mut self, check: &Check, n: usize) -> Action {
        self.sent += n;
        if self.output(check).is_empty() {
            self.state = State::Head;
            self.head.reset();
            Action::Receive
        } else {
            Action::Send
        }
    }

    /// Bytes arrived (never empty: end of stream is [`Exchange::eof`]).
    pub(crate) fn received(&mut self, check: &Check, conn: &mut Conn, data: &[u8]) -> Action {
        match self.state {
            State::Head => match self.head.feed(data) {
                Ok(None) => Action::Receive,
                Ok(Some((head, used))) => self.on_head(check, conn, head, &data[used..]),
                Err(e) => self.finish(Verdict::Fail(e.into())),
            },
            State::Body { .. } => self.on_body(check, conn, data),
            _ => Action::Receive,
        }
    }

    /// The peer closed its side.
    pub(crate) fn eof(&mut self, conn: &mut Conn) -> Action {
        match &self.state {
            State::Body { follow: true, .. } => self.follow(conn),
            State::Body { reader, .. } => match reader.eof() {
                Ok(()) => self.body_done(),
                Err(e) => self.fail_after_status(e.into()),
            },
            State::Done => Action::Receive,
            _ => self.finish(Verdict::Fail(Reason::Closed)),
        }
    }

    /// A read or write failed.
    pub(crate) fn io_failed(&mut self, conn: &mut Conn, err: &io::Error) -> Action {
        // Go ignores errors while draining a redirect's body.
        if matches!(self.state, State::Body { follow: true, .. }) {
            return self.follow(conn);
        }
        self.fail_after_status(Reason::from_io(err, false))
    }

    /// The round's deadline passed before a verdict.
    pub(crate) fn timed_out(&mut self, after: Duration) -> Verdict {
        match self.fail_after_status(Reason::Timeout(after)) {
            Action::Done(verdict) => verdict,
            _ => unreachable!("fail_after_status always finishes"),
        }
    }

    /// Fails, but a failing status already read is the better reason.
    fn fail_after_status(&mut self, reason: Reason) -> Action {
        let reason = self.status_failure.take().unwrap_or(reason);
        self.finish(Verdict::Fail(reason))
    }

    fn finish(&mut self, verdict: Verdict) -> Action {
        self.state = State::Done;
        Action::Done(verdict)
    }

    /// A final head arrived; `rest` is what followed it in the same read.
    fn on_head(&mut self, check: &Check, conn: &mut Conn, head: Head, rest: &[u8]) -> Action {
        // Go follows a 3xx only with a non-empty Location.
        if check.kind == Kind::Http && is_redirect(head.status) && !head.location.is_empty() {
            match self.plan_redirect(check, &head) {
                Ok(Redirect::Answer) => {}
                Ok(next) => {
                    self.next = next;
                    let drain = match head.framing {
                        Some(Framing::Length(n)) if n > REDIRECT_DRAIN as u64 => None,
                        framing => framing,
                    };
                    let Some(framing) = drain else { return self.follow(conn) };
                    self.state = State::Body { reader: BodyReader::new(framing, REDIRECT_DRAIN), follow: true };
                    return if rest.is_empty() { Action::Receive } else { self.on_body(check, conn, rest) };
                }
                Err(reason) => return self.finish(Verdict::Fail(reason)),
            }
        }
        // The final response: a redirect followed is never judged.
        self.status_failure = match &check.expect_status {
            None if passes(head.status) => None,
            None => Some(Reason::Http(HttpReason::Status(head.status))),
            Some(set) if set.contains(head.status) => None,
            Some(set) => Some(Reason::Http(HttpReason::Unexpected(head.status, set.shown().clone()))),
        };
        self.body_missing = check.expect_body.as_ref().map(|text| text.shown.clone());
        self.finder.reset();
        let Some(framing) = head.framing else { return self.body_done() };
        self.state = State::Body { reader: BodyReader::new(framing, MAX_BODY), follow: false };
        if rest.is_empty() {
            Action::Receive
        } else {
            self.on_body(check, conn, rest)
        }
    }

    /// What a redirect leads to; Err to fail at once (a Location that does
    /// not parse).
    fn plan_redirect(&mut self, check: &Check, head: &Head) -> Result<Redirect, Reason> {
        let reference = url::Url::parse(&head.location).map_err(|_| Reason::Http(HttpReason::InvalidLocation))?;
        Ok(self.next_hop(check, head, &reference))
    }

    /// The next hop: the answer itself for another host; a failure after
    /// draining for the limit and a scheme or port Go cannot connect to.
    /// kubelet follows the same host whatever the scheme: http to https and
    /// back are both followed.
    fn next_hop(&mut self, check: &Check, head: &Head, reference: &url::Url) -> Redirect {
        let base = self.redirect.as_ref().map_or(&check.target, |hop| &hop.url);
        let url = base.join(reference);
        // kubelet follows only the same host name as written, any port.
        if url.hostname() != check.target.hostname() {
            return Redirect::Answer;
        }
        if self.requests >= MAX_REDIRECTS {
            return Redirect::Fail(Reason::Http(HttpReason::RedirectLimit));
        }
        let (tls, default_port) = match &url.scheme[..] {
            b"http" => (false, 80),
            b"https" if cfg!(feature = "tls") => (true, 443),
            _ => return Redirect::Fail(Reason::Http(HttpReason::UnsupportedScheme)),
        };
        let port = match url.port() {
            b"" => default_port,
            digits => match std::str::from_utf8(digits).ok().and_then(|p| p.parse().ok()) {
                Some(port) => port,
                None => return Redirect::Fail(Reason::Http(HttpReason::InvalidLocation)),
            },
        };
        if matches!(head.status, 301..=303) {
            self.body_fields = false;
        }
        // A given Host is kept through relative redirects only, as Go does.
        let current_host = match &self.redirect {
            Some(hop) => hop.host.clone(),
            None => check.host_override().filter(|h| *h != &check.target.host[..]).map(<[u8]>::to_vec),
        };
        let host = current_host.filter(|_| !reference.is_absolute());
        // Go sends no Referer from an https page to an http one.
        let downgrade = base.scheme.eq_ignore_ascii_case(b"https") && url.scheme.eq_ignore_ascii_case(b"http");
        let referer = (!downgrade).then(|| base.to_text());
        let request = check.request_to(&url, host.as_deref(), referer.as_deref(), self.body_fields);
        Redirect::Follow(Hop { url, port, tls, request, host })
    }

    /// Follows the planned redirect on a new connection.
    fn follow(&mut self, conn: &mut Conn) -> Action {
        let hop = match std::mem::take(&mut self.next) {
            Redirect::Answer => return self.body_done(),
            Redirect::Fail(reason) => return self.finish(Verdict::Fail(reason)),
            Redirect::Follow(hop) => hop,
        };
        let (port, tls) = (hop.port, hop.tls);
        self.redirect = Some(hop);
        self.status_failure = None;
        conn.reconnect(port, tls)
    }

    fn on_body(&mut self, check: &Check, conn: &mut Conn, data: &[u8]) -> Action {
        let State::Body { reader, follow } = &mut self.state else { return Action::Receive };
        let follow = *follow;
        let progress = match (&check.expect_body, &mut self.body_missing) {
            (Some(text), missing @ Some(_)) if !follow => {
                let finder = &mut self.finder;
                reader.feed_data(data, |piece| {
                    let found = finder.feed(&text.bytes, piece);
                    if found {
                        *missing = None;
                    }
                    found
                })
            }
            _ => reader.feed(data),
        };
        match progress {
            Ok(Progress::More) => Action::Receive,
            Ok(Progress::Done) if follow => self.follow(conn),
            Ok(Progress::Done) => self.body_done(),
            Err(_) if follow => self.follow(conn),
            Err(e) => self.fail_after_status(e.into()),
        }
    }

    #[inline]
    fn body_done(&mut self) -> Action {
        let missing = self.body_missing.take().map(|text| Reason::Http(HttpReason::BodyNotFound(text)));
        let verdict = match self.status_failure.take().or(missing) {
            None => Verdict::Pass,
            Some(reason) => Verdict::Fail(reason),
        };
        self.finish(verdict)
    }
}

/// kubelet's rule: 200 <= status < 400 passes.
pub fn passes(status: u16) -> bool {
    (200..400).contains(&status)
}

/// The status codes Go's client follows.
fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}
