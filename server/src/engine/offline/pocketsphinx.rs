//! Minimal hand-written binding to Debian's libpocketsphinx3 (0.8+5prealpha).
//!
//! The crates.io bindings target an older API (`ps_start_utt(ps, uttid)`), so the ten functions the
//! recogniser needs are declared here against `/usr/include/pocketsphinx/pocketsphinx.h`. This is the
//! only module with `unsafe`.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::ptr;
use std::sync::{Mutex, Once};

#[repr(C)]
struct PsDecoder {
    _private: [u8; 0],
}
#[repr(C)]
struct CmdLn {
    _private: [u8; 0],
}
#[repr(C)]
struct Arg {
    _private: [u8; 0],
}

unsafe extern "C" {
    fn ps_args() -> *const Arg;
    fn cmd_ln_parse_r(
        inout: *mut CmdLn,
        defn: *const Arg,
        argc: i32,
        argv: *mut *mut c_char,
        strict: i32,
    ) -> *mut CmdLn;
    fn cmd_ln_free_r(cmdln: *mut CmdLn) -> c_int;
    fn ps_init(config: *mut CmdLn) -> *mut PsDecoder;
    fn ps_free(ps: *mut PsDecoder) -> c_int;
    fn ps_start_utt(ps: *mut PsDecoder) -> c_int;
    fn ps_process_raw(
        ps: *mut PsDecoder,
        data: *const i16,
        n_samples: usize,
        no_search: c_int,
        full_utt: c_int,
    ) -> c_int;
    fn ps_get_in_speech(ps: *mut PsDecoder) -> u8;
    fn ps_get_hyp(ps: *mut PsDecoder, out_best_score: *mut i32) -> *const c_char;
    fn ps_end_utt(ps: *mut PsDecoder) -> c_int;
    fn err_set_logfp(stream: *mut c_void);
}

/// sphinxbase keeps its logging and some model-loading state in globals: silence the log once and
/// build decoders one at a time.
static INIT_LOCK: Mutex<()> = Mutex::new(());
static QUIET: Once = Once::new();

/// One PocketSphinx decoder with its configuration; 16 kHz mono input.
pub struct Decoder {
    ps: *mut PsDecoder,
    config: *mut CmdLn,
    in_utt: bool,
}

// SAFETY: a decoder has no thread affinity; all access goes through `&mut self`, so it is never used
// from two threads at once. Creation (which touches sphinxbase globals) is serialised by INIT_LOCK.
unsafe impl Send for Decoder {}

impl Decoder {
    /// Builds a decoder from command-line style options (`["-hmm", path, "-lm", path, ...]`).
    pub fn new(args: &[(&str, &str)]) -> Result<Self, String> {
        let _guard = INIT_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        QUIET.call_once(|| {
            // SAFETY: a null stream is documented to disable logging.
            unsafe { err_set_logfp(ptr::null_mut()) };
        });
        let owned: Vec<CString> = args
            .iter()
            .flat_map(|(k, v)| [*k, *v])
            .map(|s| CString::new(s).map_err(|_| format!("NUL in decoder option {s:?}")))
            .collect::<Result<_, _>>()?;
        let mut argv: Vec<*mut c_char> = owned.iter().map(|s| s.as_ptr() as *mut c_char).collect();
        let argc = i32::try_from(argv.len()).map_err(|_| "too many decoder options".to_string())?;
        // SAFETY: `argv` points at `argc` NUL-terminated strings that outlive the call; the parser
        // copies what it keeps. `ps_args()` returns a static definition table.
        let config =
            unsafe { cmd_ln_parse_r(ptr::null_mut(), ps_args(), argc, argv.as_mut_ptr(), 1) };
        if config.is_null() {
            return Err(format!("pocketsphinx rejected the options {args:?}"));
        }
        // SAFETY: `config` is a valid configuration; ps_init retains its own reference.
        let ps = unsafe { ps_init(config) };
        if ps.is_null() {
            // SAFETY: we own this reference to `config` and nothing else uses it.
            unsafe { cmd_ln_free_r(config) };
            return Err(
                "pocketsphinx could not load its model (is pocketsphinx-en-us installed?)".into(),
            );
        }
        let mut d = Decoder {
            ps,
            config,
            in_utt: false,
        };
        d.start()?;
        Ok(d)
    }

    /// Starts an utterance unless one is running.
    fn start(&mut self) -> Result<(), String> {
        if !self.in_utt {
            // SAFETY: `self.ps` is a live decoder owned by `self`.
            if unsafe { ps_start_utt(self.ps) } < 0 {
                return Err("ps_start_utt failed".into());
            }
            self.in_utt = true;
        }
        Ok(())
    }

    /// Decodes more 16 kHz samples of the current utterance.
    pub fn process(&mut self, pcm: &[i16]) -> Result<(), String> {
        self.start()?;
        if pcm.is_empty() {
            return Ok(());
        }
        // SAFETY: `pcm` is a valid slice of `pcm.len()` samples for the duration of the call.
        let r = unsafe { ps_process_raw(self.ps, pcm.as_ptr(), pcm.len(), 0, 0) };
        if r < 0 {
            Err("ps_process_raw failed".into())
        } else {
            Ok(())
        }
    }

    /// Whether the voice-activity detector currently hears speech (with its hang-over).
    pub fn in_speech(&mut self) -> bool {
        // SAFETY: `self.ps` is a live decoder owned by `self`.
        unsafe { ps_get_in_speech(self.ps) != 0 }
    }

    /// Ends the current utterance and returns its final hypothesis (possibly empty); the next
    /// `process` starts a new utterance.
    pub fn end(&mut self) -> String {
        if !self.in_utt {
            return String::new();
        }
        self.in_utt = false;
        // SAFETY: an utterance is running on this live decoder.
        if unsafe { ps_end_utt(self.ps) } < 0 {
            return String::new();
        }
        let mut score = 0i32;
        // SAFETY: the returned string is owned by the decoder and valid until the next decoder call;
        // it is copied before that.
        let hyp = unsafe { ps_get_hyp(self.ps, &mut score) };
        if hyp.is_null() {
            return String::new();
        }
        // SAFETY: non-null, NUL-terminated, still owned by the decoder (see above).
        unsafe { CStr::from_ptr(hyp) }
            .to_string_lossy()
            .into_owned()
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: both pointers are owned by `self` and not used after this.
        unsafe {
            ps_free(self.ps);
            cmd_ln_free_r(self.config);
        }
    }
}
