//! Local server speaking the OpenAI realtime translation protocol (placeholder, being written).
pub mod engine;
