//! One module per wire protocol. Each exposes `converse(params, link)`: the whole life of one
//! session, reading audio and control requests from the [`Link`](crate::session_types::Link) and
//! reporting through its callback, returning how it ended.

pub mod gpttranslator;
pub mod openai_realtime;
pub mod openai_transcription;
pub mod openai_translation;
pub mod websocket;
