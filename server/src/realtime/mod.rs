//! Protocol-faithful test servers of the OpenAI Realtime API on `/v1/realtime`
//! (`docs/protocol/realtime-interpreter.md` and `docs/protocol/realtime-transcription.md`), served
//! by the same [`crate::Server`] as the translation endpoint:
//! - `?model=…` opens a conversation session that answers each spoken turn like the general
//!   model prompted as an interpreter ([`conversation`]);
//! - `?intent=transcription` opens a transcription session ([`transcription`]).
//!
//! Both validate client events strictly (GA shapes; beta shapes get `beta_api_shape_disabled`,
//! and an `OpenAI-Beta` header closes the connection with 4000 as the live service does),
//! detect speech by energy ([`vad`]), produce deterministic transcripts and tones, and record
//! every client frame in the server's [`crate::Records`].
//!
//! Test-server extension: the query parameter `test_event_names=beta` makes the server send the
//! retired beta names of its output events (`response.audio.delta`, …).

mod conversation;
mod events;
mod handshake;
mod session_object;
mod transcription;
mod vad;
mod validate;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

pub(crate) use handshake::{Accepted, check};
pub use handshake::{EventNames, Kind, PATH};

use crate::record::SessionRecord;
use crate::shared::Shared;
use wire::{Wire, Ws};

/// Runs one accepted `/v1/realtime` connection to its end.
pub(crate) async fn run(ws: Ws, peer: SocketAddr, accepted: Accepted, shared: Arc<Shared>) {
    let record = shared.records.open(SessionRecord {
        path_and_query: accepted.path_and_query.clone(),
        authorization: accepted.authorization.clone(),
        beta_header: accepted.beta_header,
        safety_identifier: accepted.safety_identifier.clone(),
        ..SessionRecord::default()
    });
    let n = shared.sessions.fetch_add(1, Ordering::Relaxed) + 1;
    let id = format!("sess_{n}");
    let (sink, mut stream) = ws.split();
    let mut wire = Wire::new(sink, record, accepted.event_names);
    shared.config.log(|| {
        format!(
            "{peer}: {id} opened ({}, {:?})",
            accepted.path_and_query, accepted.kind
        )
    });
    if accepted.beta_header {
        // What the live service answers to `OpenAI-Beta: realtime=v1` [observed].
        let refused = wire
            .send(events::error(
                "invalid_request_error",
                "beta_api_shape_disabled",
                "The Realtime Beta API is no longer supported. Please use /v1/realtime for the \
                 GA API.",
                None,
                None,
            ))
            .await
            .is_ok()
            && wire
                .close(
                    CloseCode::from(4000),
                    "invalid_request_error.beta_api_shape_disabled",
                )
                .await
                .is_ok();
        if refused {
            wire::await_client_close(&mut wire, &mut stream).await;
        }
        return;
    }
    let lifetime = shared.config.session_lifetime;
    let expires_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        + lifetime.as_secs();
    match accepted.kind {
        Kind::Conversation => {
            let session = session_object::conversation(&id, &accepted.model, expires_at);
            let mut dialogue = conversation::Conversation::new(session);
            wire::run(wire, stream, &mut dialogue, accepted.kind, lifetime).await;
        }
        Kind::Transcription => {
            let session = session_object::transcription(&id, expires_at);
            let mut dialogue = transcription::Transcription::new(session);
            wire::run(wire, stream, &mut dialogue, accepted.kind, lifetime).await;
        }
    }
    shared.config.log(|| format!("{peer}: {id} ended"));
}
