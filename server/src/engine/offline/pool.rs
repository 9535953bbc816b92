//! A pool of warmed-up PocketSphinx decoders, so that a new session starts in milliseconds.
//!
//! Loading the model takes a noticeable fraction of a second, and a fresh decoder gets its first
//! utterance wrong (its cepstral-mean estimate starts from defaults), so each decoder decodes a
//! warm-up utterance once when built. A background thread keeps a spare ready; sessions take one.
//! A used decoder is freed, not reused: its adaptation follows whatever the last session heard
//! (after 30 s of noise the next speech came out as "oh oh" instead of "please open the window"),
//! so every session starts from the same warmed state.

use super::pocketsphinx::Decoder;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread;

/// Idle decoders kept at most (each holds ~100 MB of model).
const MAX_IDLE: usize = 2;

struct Inner {
    args: Vec<(String, String)>,
    /// 16 kHz speech, with silence around it, decoded once by every new decoder.
    warmup: Vec<i16>,
    idle: Mutex<Vec<Decoder>>,
    /// How many idle decoders the background thread keeps ready.
    spare: usize,
    refilling: AtomicBool,
}

impl Inner {
    fn build(&self) -> Result<Decoder, String> {
        let args: Vec<(&str, &str)> = self
            .args
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut d = Decoder::new(&args)?;
        for piece in self.warmup.chunks(1600) {
            d.process(piece)?;
        }
        d.end();
        Ok(d)
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Decoder>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Shared pool; cheap to clone.
#[derive(Clone)]
pub struct DecoderPool {
    inner: Arc<Inner>,
}

impl DecoderPool {
    /// Builds the first decoder right away (which validates the model), then keeps `spare` ready.
    pub fn new(
        args: Vec<(String, String)>,
        warmup: Vec<i16>,
        spare: usize,
    ) -> Result<Self, String> {
        let inner = Arc::new(Inner {
            args,
            warmup,
            idle: Mutex::new(Vec::new()),
            spare: spare.clamp(1, MAX_IDLE),
            refilling: AtomicBool::new(false),
        });
        let first = inner.build()?;
        inner.idle().push(first);
        let pool = DecoderPool { inner };
        pool.refill();
        Ok(pool)
    }

    /// A warmed decoder: an idle one if any, else a freshly built one.
    pub fn take(&self) -> Result<PooledDecoder, String> {
        let popped = self.inner.idle().pop();
        let decoder = match popped {
            Some(d) => d,
            None => self.inner.build()?,
        };
        self.refill();
        Ok(PooledDecoder {
            decoder: Some(decoder),
            pool: Arc::downgrade(&self.inner),
        })
    }

    /// Number of idle decoders (for tests and logs).
    pub fn idle_count(&self) -> usize {
        self.inner.idle().len()
    }

    /// Tops the idle list up to `spare` on a background thread (one at a time).
    fn refill(&self) {
        refill(&self.inner);
    }
}

fn refill(inner: &Arc<Inner>) {
    if inner.idle().len() >= inner.spare || inner.refilling.swap(true, Ordering::AcqRel) {
        return;
    }
    let weak = Arc::downgrade(inner);
    let spawned = thread::Builder::new()
        .name("pocketsphinx-pool".into())
        .spawn(move || {
            while let Some(inner) = weak.upgrade() {
                if inner.idle().len() >= inner.spare {
                    inner.refilling.store(false, Ordering::Release);
                    // A `take` between the check and the store saw `refilling` set and left the
                    // work to us: carry on unless the pool is full or another refill started.
                    if inner.idle().len() >= inner.spare
                        || inner.refilling.swap(true, Ordering::AcqRel)
                    {
                        break;
                    }
                    continue;
                }
                match inner.build() {
                    Ok(d) => inner.idle().push(d),
                    Err(e) => {
                        eprintln!("offline engine: cannot build a spare decoder: {e}");
                        inner.refilling.store(false, Ordering::Release);
                        break;
                    }
                }
            }
        });
    if spawned.is_err() {
        inner.refilling.store(false, Ordering::Release);
    }
}

/// A decoder on loan from the pool; freed when dropped, and the pool builds a fresh spare.
pub struct PooledDecoder {
    decoder: Option<Decoder>,
    pool: Weak<Inner>,
}

impl Deref for PooledDecoder {
    type Target = Decoder;
    fn deref(&self) -> &Decoder {
        self.decoder.as_ref().expect("decoder present until drop")
    }
}

impl DerefMut for PooledDecoder {
    fn deref_mut(&mut self) -> &mut Decoder {
        self.decoder.as_mut().expect("decoder present until drop")
    }
}

impl Drop for PooledDecoder {
    fn drop(&mut self) {
        drop(self.decoder.take());
        if let Some(pool) = self.pool.upgrade() {
            refill(&pool);
        }
    }
}
