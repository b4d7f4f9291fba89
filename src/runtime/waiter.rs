//! A poll loop for the modes that wait on one thing at a time (`check` and
//! `run`): a round of probes, a pause, or a signal.

use std::io;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use super::engine::{Engine, Tokens};
use super::signals::Signals;
use super::Error;
use crate::check::Check;
use crate::verdict::Verdict;

const SIGNALS: Token = Token(0);
const FIRST_TOKEN: usize = 1;

pub(crate) struct Waiter {
    poll: Poll,
    events: Events,
    signals: Signals,
    tokens: Tokens,
    engine: Engine,
    /// Per check, how long the last round took to its verdict.
    durations: Vec<Duration>,
}

impl Waiter {
    /// Blocks `signals` and delivers them through [`Waiter`]'s waits.
    pub(crate) fn new(signals: &[libc::c_int]) -> Result<Waiter, Error> {
        let mut signals = Signals::new(signals).map_err(Error::Signals)?;
        let poll = Poll::new().map_err(Error::Poll)?;
        poll.registry().register(&mut signals, SIGNALS, Interest::READABLE).map_err(Error::Poll)?;
        Ok(Waiter {
            poll,
            events: Events::with_capacity(256),
            signals,
            tokens: Tokens::new(FIRST_TOKEN),
            engine: Engine::new(),
            durations: Vec::new(),
        })
    }

    /// The signal mask from before [`Waiter::new`] blocked its signals.
    pub(crate) fn original_mask(&self) -> libc::sigset_t {
        self.signals.original_mask()
    }

    /// Probes every check once, concurrently, each bounded by `timeout`.
    /// A signal for which `stops` is true ends the round early,
    /// Err(signal); other signals are dropped.
    pub(crate) fn round(
        &mut self,
        checks: &[Check],
        timeout: Duration,
        stops: impl Fn(libc::c_int) -> bool,
    ) -> Result<Result<Vec<Verdict>, libc::c_int>, Error> {
        self.engine.start(checks, timeout, Instant::now(), self.poll.registry(), &mut self.tokens);
        loop {
            if let Some(round) = self.engine.finished() {
                self.durations.clear();
                self.durations.extend(round.durations());
                return Ok(Ok(round.verdicts().cloned().collect()));
            }
            let deadline = self.engine.deadline();
            if let Some(sig) = self.wait(deadline)? {
                if stops(sig) {
                    self.engine.abort();
                    return Ok(Err(sig));
                }
            }
            let registry = self.poll.registry();
            let now = Instant::now();
            for event in self.events.iter() {
                if event.token() != SIGNALS {
                    self.engine.ready(event.token(), checks, registry, now);
                }
            }
            self.engine.expire(now, checks, registry);
        }
    }

    /// Per check, how long the last finished round took to its verdict.
    pub(crate) fn durations(&self) -> &[Duration] {
        &self.durations
    }

    /// Waits until `until` (or forever); Some(signal) if one came first.
    pub(crate) fn pause(&mut self, until: Option<Instant>) -> Result<Option<libc::c_int>, Error> {
        loop {
            if let Some(sig) = self.wait(until)? {
                return Ok(Some(sig));
            }
            if until.is_some_and(|t| Instant::now() >= t) {
                return Ok(None);
            }
        }
    }

    /// One poll; returns a pending signal if there is one.
    fn wait(&mut self, until: Option<Instant>) -> Result<Option<libc::c_int>, Error> {
        if let Some(sig) = self.signals.pending().map_err(Error::Signals)? {
            return Ok(Some(sig));
        }
        let timeout = until.map(|t| t.saturating_duration_since(Instant::now()));
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Poll(e)),
        }
        self.signals.pending().map_err(Error::Signals)
    }
}
