//! The supervisor's decisions against scripted fake sessions, on paused time: no network, no
//! waiting. Each test plays the engine's side by hand (connected, progress, answers, failures)
//! and checks what audio each session was given, what the element was told, and the counts.

use super::limits::INPUT_CHUNKS;
use super::router::Router;
use super::sessions::{SessionHandle, SessionOpener};
use super::supervisor::Supervisor;
use super::types::{ConnectionEvent, ConnectionParams, ConnectionState, ConnectionStats, Request};
use crate::protocol::translation::SessionConfig;
use crate::session_types::{
    Callback, Endpoint, Protocol, SessionCounters, SessionError, SessionEvent, SessionParams,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::sleep;

/// 200 ms of input.
const CHUNK: usize = 4800;
const KEEPALIVE: Duration = Duration::from_secs(4);

/// A session as the test sees it: how to speak for its engine, and what it was given.
struct FakeSession {
    on_event: Callback,
    audio: mpsc::Receiver<Vec<i16>>,
    control: Arc<Mutex<Vec<String>>>,
}

impl FakeSession {
    fn says(&self, event: SessionEvent) {
        (self.on_event)(event)
    }

    fn connected(&self, id: &str) {
        self.says(SessionEvent::Connected {
            session_id: id.into(),
            expires_at: None,
        });
    }

    /// The engine has heard `chunks` of its input and says something audible.
    fn answers_up_to(&self, chunks: u64) {
        self.says(SessionEvent::Progress {
            input_samples: chunks * CHUNK as u64,
        });
        self.says(SessionEvent::OutputAudio {
            samples: vec![3000; 2400],
            sample_rate: 24_000,
            channels: 1,
        });
    }

    /// Every chunk it was given so far.
    fn given(&mut self) -> Vec<Vec<i16>> {
        let mut chunks = Vec::new();
        while let Ok(chunk) = self.audio.try_recv() {
            chunks.push(chunk);
        }
        chunks
    }

    fn control(&self) -> Vec<String> {
        self.control.lock().unwrap().clone()
    }
}

struct FakeHandle {
    audio: mpsc::Sender<Vec<i16>>,
    control: Arc<Mutex<Vec<String>>>,
}

impl SessionHandle for FakeHandle {
    fn audio_sender(&self) -> mpsc::Sender<Vec<i16>> {
        self.audio.clone()
    }

    fn update(&self, config: SessionConfig) {
        self.control
            .lock()
            .unwrap()
            .push(format!("update {}", config.target_language));
    }

    /// Recorded with how many chunks it had been given by then.
    fn close(&self) {
        let given = 1000 - self.audio.capacity();
        self.control
            .lock()
            .unwrap()
            .push(format!("close after {given}"));
    }
}

#[derive(Clone, Default)]
struct FakeSessions(Arc<Mutex<Vec<Option<FakeSession>>>>);

impl SessionOpener for FakeSessions {
    type Handle = FakeHandle;

    fn open(
        &mut self,
        _params: &SessionParams,
        on_event: Callback,
        _counters: Arc<SessionCounters>,
    ) -> FakeHandle {
        let (audio_tx, audio_rx) = mpsc::channel(1000);
        let control = Arc::new(Mutex::new(Vec::new()));
        self.0.lock().unwrap().push(Some(FakeSession {
            on_event,
            audio: audio_rx,
            control: control.clone(),
        }));
        FakeHandle {
            audio: audio_tx,
            control,
        }
    }
}

impl FakeSessions {
    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Session `index` (0: the first opened), taken out to play its engine.
    fn take(&self, index: usize) -> FakeSession {
        self.0.lock().unwrap()[index]
            .take()
            .expect("opened, not taken")
    }
}

struct Stream {
    audio: mpsc::Sender<Vec<i16>>,
    requests: mpsc::UnboundedSender<Request>,
    sessions: FakeSessions,
    events: Arc<Mutex<Vec<ConnectionEvent>>>,
    stats: Arc<ConnectionStats>,
    /// Input chunks sent so far.
    sent: u64,
}

/// Chunk `i` of the input: speech whose samples say which chunk it is.
fn speech(i: u64) -> Vec<i16> {
    vec![1000 + i as i16; CHUNK]
}

fn params(protocol: Protocol) -> ConnectionParams {
    ConnectionParams {
        session: SessionParams {
            protocol,
            endpoint: Endpoint::Remote {
                url: "ws://127.0.0.1:9".into(),
                model: String::new(),
            },
            api_key: None,
            safety_identifier: None,
            config: SessionConfig {
                target_language: "es".into(),
                transcription: None,
                noise_reduction: None,
            },
            connect_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(5),
            keepalive_timeout: KEEPALIVE,
            tls_ca_file: None,
        },
        outage_buffer_samples: 10 * 24_000,
        rotation_margin: Duration::from_secs(30),
        backoff_initial: Duration::from_millis(500),
        backoff_max: Duration::from_secs(4),
        max_retries: None,
    }
}

impl Stream {
    fn start(protocol: Protocol, lossless: bool) -> Stream {
        let sessions = FakeSessions::default();
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        let stats = Arc::new(ConnectionStats::default());
        let (lifecycle_tx, lifecycle_rx) = mpsc::unbounded_channel();
        let router = Arc::new(Router::new(
            Arc::new(move |event| seen.lock().unwrap().push(event)),
            lifecycle_tx,
            stats.clone(),
        ));
        let supervisor = Supervisor::new(
            params(protocol),
            sessions.clone(),
            router,
            stats.clone(),
            lifecycle_rx,
            Arc::new(AtomicBool::new(lossless)),
        );
        let (audio_tx, audio_rx) = mpsc::channel(INPUT_CHUNKS);
        let (request_tx, request_rx) = mpsc::unbounded_channel();
        tokio::spawn(supervisor.run(audio_rx, request_rx));
        Stream {
            audio: audio_tx,
            requests: request_tx,
            sessions,
            events,
            stats,
            sent: 0,
        }
    }

    /// Feeds `count` chunks of input in real time (200 ms apart), made by `make(index)`.
    async fn feed(&mut self, count: u64, make: impl Fn(u64) -> Vec<i16>) {
        for _ in 0..count {
            self.audio.send(make(self.sent)).await.unwrap();
            self.sent += 1;
            sleep(Duration::from_millis(200)).await;
        }
    }

    fn states(&self) -> Vec<ConnectionState> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|event| match event {
                ConnectionEvent::State { state, .. } => Some(state.clone()),
                _ => None,
            })
            .collect()
    }

    /// The position (in chunks) of the first `reconnecting` state.
    fn reconnecting_at(&self) -> Option<f64> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .find_map(|event| match event {
                ConnectionEvent::State {
                    state: ConnectionState::Reconnecting { .. },
                    position,
                } => Some(*position as f64 / CHUNK as f64),
                _ => None,
            })
    }

    fn finished(&self) -> bool {
        self.events
            .lock()
            .unwrap()
            .iter()
            .any(|event| matches!(event, ConnectionEvent::Finished))
    }

    fn untranslated(&self) -> u64 {
        self.stats.untranslated_samples.load(Ordering::Relaxed)
    }

    /// Lets the supervisor act on what happened (paused time advances only when all are idle).
    async fn settle(&self) {
        sleep(Duration::from_millis(10)).await;
    }
}

/// Which input chunk each given chunk came from, and how much of it (a cut chunk is shorter).
fn origins(chunks: &[Vec<i16>]) -> Vec<(u64, usize)> {
    chunks
        .iter()
        .map(|chunk| ((chunk[0] - 1000) as u64, chunk.len()))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_lost_session_s_unanswered_audio_goes_to_the_next_from_just_before_its_last_answer() {
    let mut stream = Stream::start(Protocol::Translation, false);
    stream.settle().await;
    let mut first = stream.sessions.take(0);
    first.connected("s1");
    stream.feed(10, speech).await;
    // The engine answered the first 4 chunks, then the connection breaks.
    first.answers_up_to(4);
    stream.feed(2, speech).await;
    first.says(SessionEvent::Failed(SessionError::Connection("cut".into())));
    stream.settle().await;
    assert_eq!(first.given().len(), 12);
    // It had worked for 2 s: replaced at once, from 200 ms (a chunk) before its last answer.
    assert_eq!(stream.sessions.count(), 2);
    let reconnect_at = stream.reconnecting_at().expect("reconnecting");
    assert!((reconnect_at - 3.0).abs() < 1e-9, "{reconnect_at}");
    let mut second = stream.sessions.take(1);
    stream.feed(2, speech).await;
    second.connected("s2");
    stream.settle().await;
    let given = origins(&second.given());
    // Chunks 3..=13, whole, in order.
    assert_eq!(
        given.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        (3..14).collect::<Vec<_>>()
    );
    assert!(given.iter().all(|(_, length)| *length == CHUNK));
    assert_eq!(stream.untranslated(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_engine_silent_on_a_live_socket_is_replaced_after_the_keepalive_timeout() {
    let mut stream = Stream::start(Protocol::Translation, false);
    stream.settle().await;
    let mut first = stream.sessions.take(0);
    first.connected("s1");
    stream.feed(5, speech).await;
    first.answers_up_to(5);
    // From now on it says nothing: no reconnection before the timeout has passed...
    stream.feed(19, speech).await;
    assert!(stream.reconnecting_at().is_none(), "{:?}", stream.states());
    // ...and one by the time it has (the first unanswered chunk went at 1.0 s, timeout 4 s).
    stream.feed(2, speech).await;
    assert!(stream.reconnecting_at().is_some(), "{:?}", stream.states());
    let states = stream.states();
    let reason = states
        .iter()
        .find_map(|state| match state {
            ConnectionState::Reconnecting { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .expect("reconnecting");
    assert!(reason.contains("said nothing for 4000 ms"), "{reason}");
    // It was given everything up to the moment it was dropped (at 5.0 s).
    assert!((25..=26).contains(&first.given().len()));
    // The next session gets everything from 200 ms before the last answer (chunk 5).
    let mut second = stream.sessions.take(1);
    second.connected("s2");
    stream.settle().await;
    let given = origins(&second.given());
    assert_eq!(given[0], (4, CHUNK));
    assert_eq!(given.last().unwrap().0, stream.sent - 1);
    assert_eq!(stream.untranslated(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_turn_based_engine_may_stay_silent_through_a_pause_but_not_through_speech() {
    let mut stream = Stream::start(
        Protocol::Interpreter {
            voice: "marin".into(),
        },
        false,
    );
    stream.settle().await;
    let first = stream.sessions.take(0);
    first.connected("s1");
    // 6 s of pause, three times the timeout: a turn-based engine says nothing, rightly.
    stream.feed(30, |_| vec![0; CHUNK]).await;
    assert_eq!(stream.sessions.count(), 1, "{:?}", stream.states());
    // Speech it does not react to at all is a stall.
    stream.feed(25, speech).await;
    assert_eq!(stream.sessions.count(), 2, "{:?}", stream.states());
}

#[tokio::test(start_paused = true)]
async fn end_of_stream_during_an_outage_sends_the_buffered_audio_before_closing() {
    for lossless in [false, true] {
        let mut stream = Stream::start(Protocol::Translation, lossless);
        stream.settle().await;
        // The first attempt fails at once: back-off, the audio waits in the outage buffer.
        let first = stream.sessions.take(0);
        first.says(SessionEvent::Failed(SessionError::Connection(
            "refused".into(),
        )));
        stream.feed(3, speech).await;
        stream.requests.send(Request::Close).unwrap();
        // The retry comes after the back-off (≤ 500 ms) and is given the audio, then the close.
        sleep(Duration::from_secs(1)).await;
        assert_eq!(stream.sessions.count(), 2, "lossless {lossless}");
        let mut second = stream.sessions.take(1);
        second.connected("s2");
        stream.settle().await;
        let given = origins(&second.given());
        assert_eq!(
            given.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            vec![0, 1, 2],
            "lossless {lossless}"
        );
        assert_eq!(second.control(), vec!["close after 3".to_owned()]);
        second.says(SessionEvent::Finished);
        stream.settle().await;
        assert!(stream.finished(), "lossless {lossless}");
        assert_eq!(stream.untranslated(), 0, "lossless {lossless}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_live_outage_longer_than_the_buffer_counts_exactly_what_was_dropped() {
    let mut stream = Stream::start(Protocol::Translation, false);
    stream.settle().await;
    // Never connects: 14 s of input against a 10 s buffer.
    stream.feed(70, speech).await;
    assert_eq!(stream.untranslated(), 20 * CHUNK as u64);
    // At the end, the buffered 10 s still wait for a session (the element's end-of-stream time
    // limit decides how long).
    stream.requests.send(Request::Close).unwrap();
    stream.settle().await;
    assert!(!stream.finished());
}

#[tokio::test(start_paused = true)]
async fn a_replaced_session_lost_while_finishing_is_recovered_in_its_place() {
    let mut stream = Stream::start(Protocol::Translation, false);
    stream.settle().await;
    let first = stream.sessions.take(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Expires in 90 s: the next session is opened 30 s before, at about 60 s.
    first.says(SessionEvent::Connected {
        session_id: "s1".into(),
        expires_at: Some(now as i64 + 90),
    });
    for i in 0..20 {
        stream.feed(1, speech).await;
        first.answers_up_to(i + 1);
    }
    // (No input meanwhile: a pause in a stream that can wait.)
    sleep(Duration::from_secs(58)).await;
    assert_eq!(stream.sessions.count(), 2, "{:?}", stream.states());
    let second = stream.sessions.take(1);
    second.connected("s2");
    // Speech (no switch in the middle of it), then a pause: the next session takes over there.
    stream.feed(5, speech).await;
    stream.feed(1, |_| vec![0; CHUNK]).await;
    // The successor already speaks; it waits for the first to finish.
    second.says(SessionEvent::OutputTranscript("later".into()));
    // The first is lost before answering chunks 20..25.
    first.says(SessionEvent::Failed(SessionError::Connection("cut".into())));
    stream.settle().await;
    // A recovery session is given them, from 200 ms before the first's last answer, and closed.
    assert_eq!(stream.sessions.count(), 3, "{:?}", stream.states());
    let mut recovery = stream.sessions.take(2);
    recovery.connected("s3");
    stream.settle().await;
    let given = origins(&recovery.given());
    assert_eq!(
        given.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        (19..25).collect::<Vec<_>>()
    );
    assert_eq!(recovery.control(), vec!["close after 6".to_owned()]);
    // Its output goes out in the first's place: before the successor's.
    recovery.says(SessionEvent::OutputTranscript("earlier".into()));
    recovery.says(SessionEvent::Finished);
    stream.settle().await;
    let texts: Vec<String> = stream
        .events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|event| match event {
            ConnectionEvent::Session(SessionEvent::OutputTranscript(text)) => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["earlier", "later"]);
    assert_eq!(stream.untranslated(), 0);
}

#[tokio::test(start_paused = true)]
async fn language_changes_and_the_close_are_never_dropped() {
    let mut stream = Stream::start(Protocol::Translation, false);
    stream.settle().await;
    let first = stream.sessions.take(0);
    first.connected("s1");
    stream.feed(1, speech).await;
    for i in 0..500 {
        let mut config = params(Protocol::Translation).session.config;
        config.target_language = format!("l{i}");
        stream.requests.send(Request::Update(config)).unwrap();
    }
    stream.requests.send(Request::Close).unwrap();
    stream.settle().await;
    let control = first.control();
    assert_eq!(control.len(), 501);
    assert_eq!(control[499], "update l499");
    assert_eq!(control[500], "close after 1");
}

#[tokio::test(start_paused = true)]
async fn abandoning_counts_what_no_session_answered() {
    let mut stream = Stream::start(Protocol::Translation, false);
    stream.settle().await;
    let first = stream.sessions.take(0);
    first.connected("s1");
    stream.feed(10, speech).await;
    first.answers_up_to(4);
    // Two chunks of pause, then two more of speech: the last speech is never answered.
    stream.feed(2, |_| vec![0; CHUNK]).await;
    stream.feed(2, speech).await;
    stream.requests.send(Request::Close).unwrap();
    let (reply, done) = tokio::sync::oneshot::channel();
    stream.requests.send(Request::Abandon(reply)).unwrap();
    done.await.unwrap();
    // Chunks 4..10 and 12..14 were speech it never answered; the pause is not counted.
    assert_eq!(stream.untranslated(), 8 * CHUNK as u64);
    assert!(stream.finished());
}
