//! Delivery of the sessions' output in session order: the oldest session still delivering is
//! live; what later sessions say waits until every session before them is done. Lifecycle events
//! go to the supervisor instead.

use super::limits::MAX_HELD_SAMPLES;
use super::types::{ConnectionEvent, ConnectionStats, EventCallback};
use crate::session_types::SessionEvent;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Passes the sessions' output to the element in session order: the oldest session still
/// delivering is live; what later sessions say waits until every session before them is done.
/// Lifecycle events go to the supervisor.
pub(super) struct Router {
    inner: Mutex<RouterInner>,
    deliver: EventCallback,
    lifecycle: mpsc::UnboundedSender<(u64, SessionEvent)>,
    stats: Arc<ConnectionStats>,
}

/// A session in the delivery order.
struct Place {
    slot: u64,
    held: VecDeque<SessionEvent>,
    /// It will say nothing more: once it is first, its held output goes out and it leaves.
    done: bool,
}

#[derive(Default)]
struct RouterInner {
    order: VecDeque<Place>,
    held_samples: u64,
}

impl Router {
    pub(super) fn new(
        deliver: EventCallback,
        lifecycle: mpsc::UnboundedSender<(u64, SessionEvent)>,
        stats: Arc<ConnectionStats>,
    ) -> Router {
        Router {
            inner: Mutex::new(RouterInner::default()),
            deliver,
            lifecycle,
            stats,
        }
    }

    pub(super) fn on_session_event(&self, slot: u64, event: SessionEvent) {
        match event {
            SessionEvent::Connected { .. } | SessionEvent::Finished | SessionEvent::Failed(_) => {
                let _ = self.lifecycle.send((slot, event));
            }
            data => {
                let mut inner = self.inner.lock().unwrap();
                let Some(index) = inner.order.iter().position(|p| p.slot == slot) else {
                    // Not (or no longer) part of the stream.
                    if let SessionEvent::OutputAudio { samples, .. } = &data {
                        self.stats
                            .held_dropped_samples
                            .fetch_add(samples.len() as u64, Ordering::Relaxed);
                    }
                    return;
                };
                if index == 0 {
                    (self.deliver)(ConnectionEvent::Session(data));
                    return;
                }
                if let SessionEvent::OutputAudio { samples, .. } = &data {
                    inner.held_samples += samples.len() as u64;
                }
                inner.order[index].held.push_back(data);
                self.bound_held(&mut inner);
            }
        }
    }

    /// Keeps held output bounded: past the limit the oldest held audio is dropped (counted).
    fn bound_held(&self, inner: &mut RouterInner) {
        while inner.held_samples > MAX_HELD_SAMPLES {
            let Some(place) = inner.order.iter_mut().skip(1).find(|p| !p.held.is_empty()) else {
                inner.held_samples = 0;
                return;
            };
            if let Some(SessionEvent::OutputAudio { samples, .. }) = place.held.pop_front() {
                let length = samples.len() as u64;
                inner.held_samples = inner.held_samples.saturating_sub(length);
                self.stats
                    .held_dropped_samples
                    .fetch_add(length, Ordering::Relaxed);
            }
        }
    }

    /// A new session joins the end of the order.
    pub(super) fn join(&self, slot: u64) {
        let mut inner = self.inner.lock().unwrap();
        inner.order.push_back(Place {
            slot,
            held: VecDeque::new(),
            done: false,
        });
        self.advance(&mut inner);
    }

    /// A new session joins right after `earlier` (at the end if `earlier` has left): it takes
    /// over what `earlier` could not deliver, before anything later.
    pub(super) fn join_after(&self, earlier: u64, slot: u64) {
        let mut inner = self.inner.lock().unwrap();
        let index = inner
            .order
            .iter()
            .position(|p| p.slot == earlier)
            .map_or(inner.order.len(), |i| i + 1);
        inner.order.insert(
            index,
            Place {
                slot,
                held: VecDeque::new(),
                done: false,
            },
        );
        self.advance(&mut inner);
    }

    /// `slot` will say nothing more.
    pub(super) fn finished(&self, slot: u64) {
        let mut inner = self.inner.lock().unwrap();
        if let Some(place) = inner.order.iter_mut().find(|p| p.slot == slot) {
            place.done = true;
        }
        self.advance(&mut inner);
    }

    /// Finished sessions at the front leave; the one that becomes first delivers what it held.
    fn advance(&self, inner: &mut RouterInner) {
        loop {
            let Some(first) = inner.order.front_mut() else {
                return;
            };
            for event in std::mem::take(&mut first.held) {
                if let SessionEvent::OutputAudio { samples, .. } = &event {
                    inner.held_samples = inner.held_samples.saturating_sub(samples.len() as u64);
                }
                (self.deliver)(ConnectionEvent::Session(event));
            }
            let first = inner.order.front().expect("checked");
            if !first.done {
                return;
            }
            inner.order.pop_front();
        }
    }

    /// Audio waiting for earlier sessions to finish.
    pub(super) fn held_samples(&self) -> u64 {
        self.inner.lock().unwrap().held_samples
    }

    pub(super) fn report(&self, event: ConnectionEvent) {
        // Under the lock: in order with the session output it delivers.
        let _inner = self.inner.lock().unwrap();
        (self.deliver)(event);
    }
}
