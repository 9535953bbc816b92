//! Local server speaking the OpenAI realtime *translation* protocol
//! (`docs/protocol/translation.md`) faithfully (and, on `/v1/realtime`, the Realtime API's
//! conversation and transcription sessions, see [`realtime`]), with deterministic test engines
//! (`echo`, `utterance`) and an offline one. Tests drive a real client against it and inspect
//! [`Records`] to see exactly what the client sent.

mod config;
pub mod engine;
pub mod faults;
mod handshake;
pub mod protocol;
pub mod realtime;
mod record;
mod server;
mod session;
mod shared;
mod worker;

pub use config::{LogFn, ServerConfig};
pub use faults::{FaultSend, Faults};
pub use handshake::PATH;
pub use record::{ClientEventRecord, FiredFault, Records, RefusedHandshake, SessionRecord};
pub use server::{BackgroundServer, Server};
