//! `realtimetranslate-server`: serves the OpenAI realtime translation protocol on a local socket.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use realtimetranslate_server::engine::EngineFactory;
use realtimetranslate_server::engine::echo::EchoEngineFactory;
use realtimetranslate_server::engine::offline::languages::{RECOGNIZER_NAMES, RecognizerChoice};
use realtimetranslate_server::engine::offline::{OfflineEngineFactory, OfflineOptions};
use realtimetranslate_server::engine::utterance::UtteranceEngineFactory;
use realtimetranslate_server::faults::FAULT_PARAMETERS;
use realtimetranslate_server::{Faults, Server, ServerConfig};

const USAGE: &str = "\
Usage: realtimetranslate-server [--listen ADDR] [--engine offline|utterance|echo] [--api-key KEY]
                                [--recognizer NAME] [--fault-NAME VALUE]...

Serves the OpenAI realtime translation protocol (ws://ADDR/v1/realtime/translations?model=...).

Options:
  --listen ADDR    address to listen on (default 127.0.0.1:8787; keep it on loopback)
  --engine NAME    offline   Whisper or PocketSphinx -> Apertium -> eSpeak NG, or Whisper's
                             translation -> Piper (English) (default)
                   utterance deterministic test engine (one tone per detected utterance)
                   echo      returns the input audio unchanged
  --recognizer NAME  offline engine's recogniser for sessions whose `model=` names none:
                   whisper-base (default), whisper-tiny.en or pocketsphinx
  --api-key KEY    require `Authorization: Bearer KEY` (default: no key required)
  -h, --help       show this help

Fault injection, for every connection (a connection's `fault_*` URL query parameters override these):
  --fault-expire-after-ms N              session ends after N ms of session time (announced in expires_at)
  --fault-expire-early-ms N              same, but expires_at announces the usual 3600 s
  --fault-drop-after-audio-ms N          drop the TCP connection (no close frame) after N ms of input audio
  --fault-stall-after-audio-ms N         stop reading and writing after N ms of input audio
  --fault-mute-after-audio-ms N          keep reading (answer pings) but say nothing after N ms of input audio
  --fault-refuse-status CODE             refuse every handshake with HTTP CODE (400..599)
  --fault-send KIND                      after session.created send one malformed_json | unknown_event |
                                         invalid_base64 | oversized | binary frame
  --fault-rate-limit-first K             refuse the first K handshakes with HTTP 429
  --fault-server-error-after-audio-ms N  error server_error, close 1011 after N ms of input audio
  --fault-error-after-audio-ms N         error CODE, close 3000 after N ms of input audio
  --fault-error-code CODE                ... with this code (e.g. insufficient_quota)
  --fault-answer-delay-ms N              send every engine output N ms (wall time) after it was produced
  --fault-language CODE                  the audio-triggered faults above fire only in sessions into CODE

Prints `listening on ws://ADDR/v1/realtime/translations (engine NAME)` once ready.";

struct Args {
    listen: SocketAddr,
    engine: String,
    recognizer: RecognizerChoice,
    api_key: Option<String>,
    faults: Faults,
}

/// `Ok(None)` means help was asked for.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut out = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
        engine: "offline".into(),
        recognizer: RecognizerChoice::WhisperBase,
        api_key: None,
        faults: Faults::default(),
    };
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        if name == "-h" || name == "--help" {
            return Ok(None);
        }
        // `--fault-x-y` is query parameter `fault_x_y`.
        let fault = name
            .strip_prefix("--")
            .map(|n| n.replace('-', "_"))
            .filter(|n| FAULT_PARAMETERS.contains(&n.as_str()));
        if fault.is_none()
            && !matches!(
                name.as_str(),
                "--listen" | "--engine" | "--api-key" | "--recognizer"
            )
        {
            return Err(format!("unknown argument `{arg}`"));
        }
        let value = match inline {
            Some(v) => v,
            None => args
                .next()
                .ok_or_else(|| format!("`{name}` needs a value"))?,
        };
        if let Some(param) = fault {
            out.faults
                .set(&param, &value)
                .map_err(|e| format!("`{name} {value}`: {e}"))?;
            continue;
        }
        match name.as_str() {
            "--listen" => {
                out.listen = value.parse().map_err(|_| {
                    format!("`--listen {value}`: expected an address like 127.0.0.1:8787")
                })?
            }
            "--engine" => {
                if !matches!(value.as_str(), "offline" | "utterance" | "echo") {
                    return Err(format!(
                        "`--engine {value}`: expected offline, utterance or echo"
                    ));
                }
                out.engine = value;
            }
            "--recognizer" => {
                if !RECOGNIZER_NAMES.contains(&value.as_str()) {
                    return Err(format!(
                        "`--recognizer {value}`: expected {}",
                        RECOGNIZER_NAMES.join(", ")
                    ));
                }
                out.recognizer = RecognizerChoice::from_model(&value, out.recognizer);
            }
            _ => {
                if value.is_empty() {
                    return Err("`--api-key` must not be empty".into());
                }
                out.api_key = Some(value);
            }
        }
    }
    out.faults.validate().map_err(|e| e.to_string())?;
    Ok(Some(out))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("realtimetranslate-server: {e}\n(see --help)");
            return ExitCode::from(2);
        }
    };
    let engine: Arc<dyn EngineFactory> = match args.engine.as_str() {
        "echo" => Arc::new(EchoEngineFactory::new()),
        "utterance" => Arc::new(UtteranceEngineFactory::new()),
        _ => match OfflineEngineFactory::with_options(OfflineOptions {
            default_recognizer: args.recognizer,
            ..OfflineOptions::default()
        }) {
            Ok(f) => Arc::new(f),
            Err(e) => {
                eprintln!("realtimetranslate-server: offline engine unavailable: {e}");
                return ExitCode::from(1);
            }
        },
    };
    let name = engine.name();
    let mut config = ServerConfig::new(engine);
    config.required_api_key = args.api_key;
    config.log = Some(Arc::new(|line: &str| eprintln!("{line}")));
    config.event_record_limit = 1000;
    let config_faults = args.faults.to_query();
    config.faults = args.faults;

    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("realtimetranslate-server: cannot start runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async {
        let server = match Server::bind(args.listen, config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!(
                    "realtimetranslate-server: cannot listen on {}: {e}",
                    args.listen
                );
                return ExitCode::from(1);
            }
        };
        println!("listening on {} (engine {name})", server.url());
        if !config_faults.is_empty() {
            println!("injecting faults into every connection: {config_faults}");
        }
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        // Runs until killed (Ctrl-C's default action ends the process).
        server.serve().await;
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<Option<Args>, String> {
        parse_args(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn args() {
        let a = parse(&[
            "--engine",
            "echo",
            "--listen=127.0.0.1:9000",
            "--api-key",
            "k",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(a.engine, "echo");
        assert_eq!(a.listen.port(), 9000);
        assert_eq!(a.api_key.as_deref(), Some("k"));
        assert!(parse(&["--help"]).unwrap().is_none());
        assert!(parse(&["--engine", "nope"]).is_err());
        assert!(parse(&["--listen"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert_eq!(parse(&[]).unwrap().unwrap().engine, "offline");
    }

    #[test]
    fn fault_flags() {
        let a = parse(&[
            "--fault-drop-after-audio-ms",
            "3000",
            "--fault-send=binary",
            "--fault-error-after-audio-ms",
            "500",
            "--fault-error-code",
            "insufficient_quota",
            "--fault-refuse-status=429",
            "--fault-answer-delay-ms",
            "700",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            a.faults.to_query(),
            "fault_drop_after_audio_ms=3000&fault_refuse_status=429\
             &fault_error_after_audio_ms=500&fault_answer_delay_ms=700&fault_send=binary\
             &fault_error_code=insufficient_quota"
        );
        let e = parse(&["--fault-stall-after-audio-ms", "soon"])
            .err()
            .unwrap();
        assert!(e.contains("'fault_stall_after_audio_ms'"), "{e}");
        let e = parse(&["--fault-error-after-audio-ms", "5"]).err().unwrap();
        assert!(e.contains("needs 'fault_error_code'"), "{e}");
        assert!(parse(&["--fault-bogus", "1"]).is_err());
        assert!(parse(&["--fault-send"]).is_err());
        // Every query parameter has its flag.
        for p in FAULT_PARAMETERS {
            let flag = format!("--{}", p.replace('_', "-"));
            let value = match p {
                "fault_send" => "binary",
                "fault_error_code" => "x",
                "fault_audio_repeat" => "3",
                "fault_language" => "fr",
                _ => "429",
            };
            let r = parse(&[&flag, value]);
            assert!(
                r.is_ok() || r.err().unwrap().contains("needs"),
                "{flag} not accepted"
            );
        }
    }
}
