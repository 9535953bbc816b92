//! The queue in front of each src pad, drained by that pad's own task.
//!
//! Each src pad pushes from its own thread, so a downstream branch without a `queue` cannot
//! deadlock another branch, and a slow or unlinked text branch never stalls the audio.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// What a pad task pushes.
#[derive(Debug)]
pub enum Item {
    Event(gst::Event),
    /// A buffer and when the translated chunks in it arrived from the server (for statistics).
    Buffer(gst::Buffer, Vec<Instant>),
}

#[derive(Debug)]
struct Inner {
    items: VecDeque<Item>,
    flushing: bool,
    /// Result of the latest push downstream.
    flow: Result<gst::FlowSuccess, gst::FlowError>,
    /// Threads waiting on `changed`: a notification is a system call even when nobody waits,
    /// and at hundreds of streams two per buffer count, so only a waiter gets one.
    waiters: usize,
}

impl Inner {
    fn notify(&self, changed: &Condvar) {
        if self.waiters > 0 {
            changed.notify_all();
        }
    }
}

/// A bounded queue with a flushing flag that wakes every waiter.
#[derive(Debug)]
pub struct PadQueue {
    inner: Mutex<Inner>,
    changed: Condvar,
    capacity: usize,
}

impl PadQueue {
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                items: VecDeque::new(),
                flushing: true,
                flow: Ok(gst::FlowSuccess::Ok),
                waiters: 0,
            }),
            changed: Condvar::new(),
            capacity,
        }
    }

    /// Waits while the queue is full (backpressure from downstream); then the pad's last flow
    /// result, or `Flushing`. Producers add with [`PadQueue::push_nowait`] and then wait here.
    pub fn wait_for_room(&self) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut inner = self.inner.lock().unwrap();
        while !inner.flushing && inner.items.len() >= self.capacity {
            inner = self.wait(inner);
        }
        if inner.flushing {
            return Err(gst::FlowError::Flushing);
        }
        inner.flow
    }

    /// Adds an item without waiting; when full, GAP events are dropped (they are advisory and the
    /// next one covers the same span), anything else is kept.
    pub fn push_nowait(&self, item: Item) {
        let mut inner = self.inner.lock().unwrap();
        if inner.flushing {
            return;
        }
        let is_gap = matches!(&item, Item::Event(e) if e.type_() == gst::EventType::Gap);
        if is_gap && inner.items.len() >= self.capacity {
            return;
        }
        inner.items.push_back(item);
        inner.notify(&self.changed);
    }

    /// Takes the next item, waiting for one; `None` once flushing.
    pub fn pop(&self) -> Option<Item> {
        let mut inner = self.inner.lock().unwrap();
        loop {
            if inner.flushing {
                return None;
            }
            if let Some(item) = inner.items.pop_front() {
                inner.notify(&self.changed);
                return Some(item);
            }
            inner = self.wait(inner);
        }
    }

    /// Waits for a change, counted in `waiters` meanwhile.
    fn wait<'a>(&self, mut inner: MutexGuard<'a, Inner>) -> MutexGuard<'a, Inner> {
        inner.waiters += 1;
        let mut inner = self.changed.wait(inner).unwrap();
        inner.waiters -= 1;
        inner
    }

    /// Records the result of a push downstream, returned to the next producer.
    pub fn set_flow(&self, flow: Result<gst::FlowSuccess, gst::FlowError>) {
        self.inner.lock().unwrap().flow = flow;
    }

    /// Flushing drops everything queued and wakes every waiter; clearing it makes the queue
    /// usable again with a fresh flow state.
    pub fn set_flushing(&self, flushing: bool) {
        let mut inner = self.inner.lock().unwrap();
        inner.flushing = flushing;
        inner.items.clear();
        if !flushing {
            inner.flow = Ok(gst::FlowSuccess::Ok);
        }
        self.changed.notify_all();
    }

    pub fn is_flushing(&self) -> bool {
        self.inner.lock().unwrap().flushing
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap().items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    /// A thread waiting for room in the full `queue`, checked to be still waiting after 50 ms.
    fn blocked_producer(
        queue: &Arc<PadQueue>,
    ) -> std::thread::JoinHandle<Result<gst::FlowSuccess, gst::FlowError>> {
        let producer = {
            let queue = queue.clone();
            std::thread::spawn(move || queue.wait_for_room())
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !producer.is_finished(),
            "a full queue makes the producer wait"
        );
        producer
    }

    #[test]
    fn flushing_wakes_a_blocked_producer_and_consumer() {
        gst::init().unwrap();
        let queue = Arc::new(PadQueue::new(1));
        queue.set_flushing(false);
        queue.push_nowait(Item::Event(gst::event::Eos::new()));
        let producer = blocked_producer(&queue);
        queue.set_flushing(true);
        assert_eq!(producer.join().unwrap(), Err(gst::FlowError::Flushing));
        assert!(queue.pop().is_none());
    }

    #[test]
    fn a_waiting_consumer_is_woken_by_a_push_and_a_waiting_producer_by_a_pop() {
        gst::init().unwrap();
        let queue = Arc::new(PadQueue::new(1));
        queue.set_flushing(false);
        let consumer = {
            let queue = queue.clone();
            std::thread::spawn(move || queue.pop().is_some())
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !consumer.is_finished(),
            "an empty queue makes the consumer wait"
        );
        queue.push_nowait(Item::Event(gst::event::Eos::new()));
        assert!(consumer.join().unwrap());

        queue.push_nowait(Item::Event(gst::event::Eos::new()));
        let producer = blocked_producer(&queue);
        assert!(queue.pop().is_some());
        assert_eq!(producer.join().unwrap(), Ok(gst::FlowSuccess::Ok));
    }

    #[test]
    fn gaps_are_dropped_when_full_but_buffers_are_kept() {
        gst::init().unwrap();
        let queue = PadQueue::new(1);
        queue.set_flushing(false);
        let gap = || Item::Event(gst::event::Gap::builder(gst::ClockTime::ZERO).build());
        queue.push_nowait(gap());
        queue.push_nowait(gap());
        assert_eq!(queue.len(), 1);
        queue.push_nowait(Item::Buffer(gst::Buffer::new(), Vec::new()));
        assert_eq!(queue.len(), 2);
    }
}
