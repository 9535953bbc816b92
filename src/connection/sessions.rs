//! What the supervisor needs of a session, as a trait: the real [`Session`] in the element, a
//! scripted fake in the supervisor's unit tests (rotation, reconnection, outage and replay are
//! decided without a network).

use crate::protocol::translation::SessionConfig;
use crate::session::Session;
use crate::session_types::{Callback, SessionCounters, SessionParams};
use std::sync::Arc;
use tokio::sync::mpsc;

/// A running session as the supervisor drives it. Dropping it aborts the session.
pub trait SessionHandle: Send + 'static {
    /// The session's own audio queue (bounded: a full queue is the network not keeping up).
    fn audio_sender(&self) -> mpsc::Sender<Vec<i16>>;
    /// A new configuration; never dropped.
    fn update(&self, config: SessionConfig);
    /// Send what is queued, then end politely; `Finished` (or `Failed`) follows. Never dropped.
    fn close(&self);
}

/// Opens sessions; every event of a session goes to its `on_event`.
pub trait SessionOpener: Send + 'static {
    type Handle: SessionHandle;
    fn open(
        &mut self,
        params: &SessionParams,
        on_event: Callback,
        counters: Arc<SessionCounters>,
    ) -> Self::Handle;
}

/// Real sessions over the network.
pub struct NetworkSessions;

impl SessionOpener for NetworkSessions {
    type Handle = Session;

    fn open(
        &mut self,
        params: &SessionParams,
        on_event: Callback,
        counters: Arc<SessionCounters>,
    ) -> Session {
        Session::start(params.clone(), on_event, counters)
    }
}

impl SessionHandle for Session {
    fn audio_sender(&self) -> mpsc::Sender<Vec<i16>> {
        Session::audio_sender(self)
    }

    fn update(&self, config: SessionConfig) {
        Session::update(self, config)
    }

    fn close(&self) {
        Session::close(self)
    }
}
