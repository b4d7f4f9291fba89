//! The tcp probe, kubelet's tcpSocket: the connect completing is the pass.

use super::action::Action;
use crate::verdict::Verdict;

#[derive(Debug, Default)]
pub(crate) struct Tcp;

impl Tcp {
    /// The connection is established: nothing more to ask.
    pub(crate) fn connected(&mut self) -> Action {
        Action::Done(Verdict::Pass)
    }
}
