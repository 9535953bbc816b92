//! (echo engine placeholder, being written)
