//! Recipe: a phone bridge for a conversation between two languages. Two parties (telephony
//! gateways, SIP phones, softphones) send their speech as RTP with PCMU (8 kHz μ-law, payload
//! type 0); each party hears the other translated into their own language, sent back as PCMU at
//! 8 kHz, with the other's original voice ducked underneath (so speech already in the listener's
//! language, which the engine leaves untranslated, is not lost).
//!
//! ```text
//! cargo run --release -p realtimetranslate-recipes --example phone_bridge -- \
//!     --a-listen 5004 --a-send 192.0.2.10:5004 --a-language en \
//!     --b-listen 5006 --b-send 192.0.2.20:5004 --b-language es \
//!     [--original-volume 0.8] [--duck-level 0.25] [--jitter-ms 100] \
//!     [--backend local|openai] [--url URL] [--latency MS]
//! ```
//! One live pipeline, one chain (and one translation session) per direction:
//! `udpsrc ! rtpjitterbuffer ! rtppcmudepay ! mulawdec ! realtimetranslate ! mulawenc !
//! rtppcmupay ! udpsink`. Party A's speech is translated into B's language and sent to B, and the
//! other way round. The bridge runs until it is stopped (Ctrl-C); the subtitles of both directions
//! are printed as they come.

use gst::prelude::*;
use gstrealtimetranslate::realtimetranslate::{DEFAULT_LATENCY_MS, JITTER_MARGIN_MS};
use gstrealtimetranslate::subtitle_file::TimedCue;
use recipes::cli::{self, Arg};
use recipes::run::Stop;
use recipes::translator::TranslateOptions;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

const USAGE: &str = "phone_bridge --a-listen PORT --a-send [HOST:]PORT [--a-language en] \
     --b-listen PORT --b-send [HOST:]PORT [--b-language es] [--original-volume 0.8] \
     [--duck-level 0.25] [--jitter-ms 100] [--backend local|openai] [--url URL] [--latency MS]";

/// What telephony gateways send: G.711 μ-law, 8 kHz, static payload type 0.
pub const PCMU_CAPS: &str =
    "application/x-rtp,media=audio,clock-rate=8000,encoding-name=PCMU,payload=0";
/// 20 ms per packet, the usual telephony packetisation.
const PACKET_NS: u64 = 20_000_000;
/// The original under the translation: 0.8 keeps it clearly audible between translations.
pub const DEFAULT_ORIGINAL_VOLUME: f64 = 0.8;
pub const DEFAULT_DUCK_LEVEL: f64 = 0.25;
/// How long the jitter buffer waits for late or reordered packets.
pub const DEFAULT_JITTER_MS: u32 = 100;

/// One side of the call: where its RTP arrives, where the bridge sends what it should hear, and
/// the language it speaks (and hears).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    pub listen: u16,
    pub send_host: String,
    pub send_port: u16,
    pub language: String,
}

#[derive(Debug, Clone)]
pub struct Args {
    pub a: Party,
    pub b: Party,
    pub original_volume: f64,
    pub duck_level: f64,
    pub jitter_ms: u32,
    /// Shared by both directions; each direction's target language is its listener's.
    pub translate: TranslateOptions,
}

/// `HOST:PORT` or `PORT` (the host is then 127.0.0.1).
fn destination(flag: &str, value: &str) -> Result<(String, u16), String> {
    let (host, port) = value.rsplit_once(':').unwrap_or(("127.0.0.1", value));
    let port = port
        .parse()
        .map_err(|_| format!("{flag} {value}: give [HOST:]PORT"))?;
    Ok((host.trim_matches(['[', ']']).to_owned(), port))
}

impl Args {
    pub fn parse(mut args: cli::Args) -> Result<Self, String> {
        let mut translate = TranslateOptions::default();
        let (mut listen, mut send) = ([None, None], [None, None]);
        let mut language = [String::from("en"), String::from("es")];
        let (mut original_volume, mut duck_level, mut jitter_ms) = (
            DEFAULT_ORIGINAL_VOLUME,
            DEFAULT_DUCK_LEVEL,
            DEFAULT_JITTER_MS,
        );
        while let Some(arg) = args.next_arg() {
            match arg {
                Arg::Positional(value) => return Err(format!("unexpected argument {value}")),
                Arg::Flag(flag) if flag == "--language" => {
                    return Err("give each party's language: --a-language, --b-language".into());
                }
                Arg::Flag(flag) if translate.accept(&flag, &mut args)? => {}
                Arg::Flag(flag) => {
                    let side = match flag.get(..4) {
                        Some("--a-") => 0,
                        Some("--b-") => 1,
                        _ => 2,
                    };
                    match (side, flag.get(4..).unwrap_or_default()) {
                        (0 | 1, "listen") => listen[side] = Some(args.parsed::<u16>(&flag)?),
                        (0 | 1, "send") => {
                            send[side] = Some(destination(&flag, &args.value(&flag)?)?)
                        }
                        (0 | 1, "language") => language[side] = args.value(&flag)?,
                        _ => match flag.as_str() {
                            "--original-volume" => original_volume = args.parsed(&flag)?,
                            "--duck-level" => duck_level = args.parsed(&flag)?,
                            "--jitter-ms" => jitter_ms = args.parsed(&flag)?,
                            _ => return Err(cli::unknown(&flag)),
                        },
                    }
                }
            }
        }
        if !(0.0..=1.0).contains(&original_volume) || !(0.0..=1.0).contains(&duck_level) {
            return Err("--original-volume and --duck-level are between 0 and 1".into());
        }
        let mut parties = Vec::new();
        for (side, name) in ["a", "b"].into_iter().enumerate() {
            let listen = listen[side].ok_or(format!("give --{name}-listen PORT"))?;
            let (send_host, send_port) = send[side]
                .clone()
                .ok_or(format!("give --{name}-send [HOST:]PORT"))?;
            parties.push(Party {
                listen,
                send_host,
                send_port,
                language: language[side].clone(),
            });
        }
        if parties[0].listen == parties[1].listen {
            return Err("--a-listen and --b-listen must differ".into());
        }
        let [a, b] = <[Party; 2]>::try_from(parties).expect("two parties");
        Ok(Self {
            a,
            b,
            original_volume,
            duck_level,
            jitter_ms,
            translate,
        })
    }

    /// The latency the bridge's pipeline runs with: the jitter buffer's and what the element
    /// reports (`latency` + its margin), plus a few ms of resampling and packetisation. Each party
    /// hears the other's original voice about this much later.
    pub fn expected_latency_ms(&self) -> u64 {
        let latency = self.translate.latency_ms.unwrap_or(DEFAULT_LATENCY_MS);
        u64::from(self.jitter_ms) + u64::from(latency) + JITTER_MARGIN_MS
    }
}

/// One direction: `from`'s RTP in, translated into `to`'s language by the element `name`, RTP out
/// to `to`; the element's subtitles go to the sink `subtitles_{name}`. The sinks do not wait for
/// preroll (`async=false`): a party that has not called yet must not hold the other direction.
fn direction(args: &Args, from: &Party, to: &Party, name: &str) -> String {
    format!(
        "udpsrc port={listen} caps=\"{PCMU_CAPS}\" ! rtpjitterbuffer latency={jitter} \
         ! rtppcmudepay ! mulawdec ! audioconvert ! audioresample \
         ! realtimetranslate name={name} original-volume={volume} duck-level={duck} \
         ! audioconvert ! audioresample ! audio/x-raw,format=S16LE,rate=8000,channels=1 \
         ! mulawenc ! rtppcmupay pt=0 min-ptime={PACKET_NS} max-ptime={PACKET_NS} \
         ! udpsink host={host} port={port} async=false \
         {name}.subtitle_src ! queue ! fakesink name=subtitles_{name} sync=false async=false",
        listen = from.listen,
        jitter = args.jitter_ms,
        volume = args.original_volume,
        duck = args.duck_level,
        host = to.send_host,
        port = to.send_port,
    )
}

/// Both directions in one live pipeline: A → `to_b` → B and B → `to_a` → A.
pub fn pipeline_description(args: &Args) -> String {
    format!(
        "{} {}",
        direction(args, &args.a, &args.b, "to_b"),
        direction(args, &args.b, &args.a, "to_a")
    )
}

/// The bridge, built and ready to run.
pub struct Bridge {
    pub pipeline: gst::Pipeline,
    /// Subtitles of A's speech in B's language (what B hears), on the pipeline's running time.
    pub subtitles_to_b: Arc<Mutex<Vec<TimedCue>>>,
    /// Subtitles of B's speech in A's language (what A hears).
    pub subtitles_to_a: Arc<Mutex<Vec<TimedCue>>>,
}

impl Bridge {
    pub fn new(args: &Args) -> Result<Self, String> {
        recipes::plugins::register()?;
        let pipeline = recipes::run::launch(&pipeline_description(args))?;
        let mut subtitles = Vec::new();
        for (name, listener) in [("to_b", &args.b), ("to_a", &args.a)] {
            let options = TranslateOptions {
                language: Some(listener.language.clone()),
                ..args.translate.clone()
            };
            options.apply_to(pipeline.upcast_ref(), name)?;
            let sink = pipeline
                .by_name(&format!("subtitles_{name}"))
                .expect("in the description");
            let label = if name == "to_b" { "A → B" } else { "B → A" };
            recipes::cues::watch(&sink, move |event| {
                if let recipes::cues::TextEvent::Cue(cue) = event {
                    println!(
                        "{label} [{:7.2} s] {}",
                        cue.start_ns as f64 / 1e9,
                        cue.text.trim()
                    );
                }
            })?;
            subtitles.push(recipes::cues::collect(&sink)?);
        }
        let [subtitles_to_b, subtitles_to_a] =
            <[_; 2]>::try_from(subtitles).unwrap_or_else(|_| unreachable!("two directions"));
        Ok(Self {
            pipeline,
            subtitles_to_b,
            subtitles_to_a,
        })
    }

    /// Bridges the call until `stop` is requested or an element fails.
    pub fn run(&self, stop: &Stop) -> Result<(), String> {
        recipes::run::run_to_end(&self.pipeline, stop)
    }
}

fn main() -> ExitCode {
    let args = match Args::parse(cli::Args::from_env()) {
        Ok(args) => args,
        Err(err) => return cli::usage_error("phone_bridge", USAGE, &err),
    };
    let bridge = match Bridge::new(&args) {
        Ok(bridge) => bridge,
        Err(err) => {
            eprintln!("phone_bridge: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "bridging A (UDP {}, {}) ↔ B (UDP {}, {}): each hears the other's voice ≈ {} ms later, \
         the translation once the engine answers; Ctrl-C ends the call",
        args.a.listen,
        args.a.language,
        args.b.listen,
        args.b.language,
        args.expected_latency_ms()
    );
    match bridge.run(&Stop::new()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("phone_bridge: {err}");
            ExitCode::FAILURE
        }
    }
}
