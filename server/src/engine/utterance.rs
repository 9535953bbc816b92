//! (utterance engine placeholder, being written)
