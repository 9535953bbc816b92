//! The recipes' command lines: what runs with no options (the offline engine, so no account is
//! needed), and the mistakes they refuse with a message that says what to fix.

#[allow(dead_code)]
#[path = "../examples/burn_in_subtitles.rs"]
mod burn_in;
#[allow(dead_code)]
#[path = "../examples/captions_flv.rs"]
mod captions_flv;
#[allow(dead_code)]
#[path = "../examples/hls_translated.rs"]
mod hls;
#[allow(dead_code)]
#[path = "../examples/multi_language.rs"]
mod multi_language;
#[allow(dead_code)]
#[path = "../examples/srt_relay.rs"]
mod srt_relay;

use recipes::cli::Args;

#[test]
fn every_recipe_defaults_to_the_offline_engine_into_spanish() {
    let burn = burn_in::Args::parse(Args::new(["in.mp4", "out.mp4"])).unwrap();
    let flv = captions_flv::Args::parse(Args::new(["in.mp4", "out.flv"])).unwrap();
    let hls = hls::Args::parse(Args::new(["in.mp4", "out"])).unwrap();
    let relay = srt_relay::Args::parse(Args::new(Vec::<String>::new())).unwrap();
    let multi = multi_language::Args::parse(Args::new(["talk.wav"])).unwrap();
    for options in [
        &burn.translate,
        &flv.translate,
        &hls.translate,
        &relay.translate,
        &multi.translate,
    ] {
        assert_eq!(options.backend(), "local");
        assert_eq!(options.language(), "es");
        assert!(options.api_key.is_none());
    }
    assert_eq!(flv.fps, 30);
    assert_eq!(
        hls.source_language, "en",
        "the offline engine hears English"
    );
    assert_eq!(hls.segment_duration, 4);
    assert_eq!(relay.input, "srt://:8890?mode=listener");
    assert_eq!(relay.output, "srt://:8891?mode=listener");
    assert_eq!(multi.languages, ["es", "en"]);
    assert_eq!(multi.output("es", "srt"), "talk.es.srt");
    assert_eq!(flv.languages, ["es"]);
    assert_eq!(hls.languages, ["es"]);
}

#[test]
fn further_languages_are_request_pads_of_the_one_element() {
    let hls = hls::Args::parse(Args::new(["in.mp4", "out", "--languages", "es,ca"])).unwrap();
    let pipeline = hls::pipeline_description(&hls);
    assert_eq!(pipeline.matches("realtimetranslate").count(), 1);
    for part in [
        "translate.src !",
        "translate.src_ca !",
        "translate.subtitle_src_ca !",
        "audio-ca/segment%05d.ts",
        "backend=local",
    ] {
        assert!(pipeline.contains(part), "{part} not in {pipeline}");
    }
    let flv =
        captions_flv::Args::parse(Args::new(["in.mp4", "o.flv", "--languages", "es,ca"])).unwrap();
    let pipeline = captions_flv::pipeline_description(&flv);
    assert!(
        pipeline.contains("translate.subtitle_src_ca !"),
        "{pipeline}"
    );
    assert!(pipeline.contains("cea608-channel=3"), "{pipeline}");
    assert!(
        captions_flv::Args::parse(Args::new(["i", "o.flv", "--languages", "es,ca,gl"]))
            .unwrap_err()
            .contains("CC1 and CC3")
    );
    assert!(
        hls::Args::parse(Args::new([
            "i",
            "o",
            "--languages",
            "es",
            "--language",
            "ca"
        ]))
        .unwrap_err()
        .contains("not both")
    );
}

#[test]
fn a_server_url_selects_the_remote_protocol_and_an_unknown_source_language() {
    let hls = hls::Args::parse(Args::new([
        "in.mp4",
        "out",
        "--url",
        "ws://127.0.0.1:8787/v1/realtime/translations",
        "--language",
        "fr",
    ]))
    .unwrap();
    assert_eq!(hls.translate.backend(), "openai");
    assert_eq!(hls.translate.language(), "fr");
    assert_eq!(hls.source_language, "und");
    let pipeline = hls::pipeline_description(&hls);
    assert!(pipeline.contains("audio-fr/segment%05d.ts"), "{pipeline}");
}

#[test]
fn mistakes_are_refused_with_what_to_fix() {
    let refused = |result: Result<(), String>, expected: &str| {
        let err = result.unwrap_err();
        assert!(
            err.contains(expected),
            "{err:?} should mention {expected:?}"
        );
    };
    refused(
        burn_in::Args::parse(Args::new(["in.mp4"])).map(drop),
        "OUTPUT",
    );
    refused(
        captions_flv::Args::parse(Args::new(["in.mp4", "o.flv", "--fps", "15"])).map(drop),
        "[24, 25, 30, 50, 60]",
    );
    refused(
        hls::Args::parse(Args::new(["in.mp4", "out", "--segment-duration", "0"])).map(drop),
        "--segment-duration",
    );
    refused(
        srt_relay::Args::parse(Args::new(["--input", "udp://:5000"])).map(drop),
        "srt://",
    );
    refused(
        multi_language::Args::parse(Args::new(["in.wav", "--url", "ws://h/x"])).map(drop),
        "--languages",
    );
    refused(
        multi_language::Args::parse(Args::new(["in.wav", "--languages", "es,es"])).map(drop),
        "twice",
    );
    refused(
        multi_language::Args::parse(Args::new(["in.wav", "--languages", "es,x y"])).map(drop),
        "not a language code",
    );
    refused(
        burn_in::Args::parse(Args::new(["a", "b", "--backend", "cloud"])).map(drop),
        "local or openai",
    );
}
