//! Engine.IO v4 / Socket.IO v5 framing over a plain WebSocket (`docs/protocol/gpttranslator.md`).
//!
//! Only what a client on the `websocket` transport needs: no long polling, no upgrade. Pure
//! parsing and encoding, no I/O, so every malformed frame a server may send is an error value
//! (never a panic) and can be unit tested and fuzzed here.
//!
//! A WebSocket text frame carries one Engine.IO packet: a type digit and its payload. Engine.IO
//! "message" packets (`4…`) carry one Socket.IO packet: a type digit, for binary packets the
//! attachment count and `-`, the namespace and `,` unless it is `/`, an optional ack id, then JSON.
//! Binary attachments follow as WebSocket binary frames, one per attachment.

use serde::Deserialize;
use serde_json::Value;

/// A binary packet announcing more attachments than this is refused: a server sends one buffer per
/// event, and the bound keeps a broken peer from making the client collect frames forever.
pub const MAX_ATTACHMENTS: usize = 16;

/// Why a frame is not valid Engine.IO / Socket.IO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError(pub String);

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn error<T>(why: impl Into<String>) -> Result<T, FrameError> {
    Err(FrameError(why.into()))
}

/// The server's Engine.IO handshake (`0{…}`), the first frame on the connection.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Handshake {
    pub sid: String,
    #[serde(default)]
    pub upgrades: Vec<String>,
    /// Milliseconds between the server's pings.
    #[serde(default = "default_ping_interval")]
    pub ping_interval: u64,
    /// Milliseconds the server waits for the pong (and the client for the next ping).
    #[serde(default = "default_ping_timeout")]
    pub ping_timeout: u64,
    #[serde(default)]
    pub max_payload: Option<u64>,
}

/// The reference server's defaults, used when a handshake leaves them out.
fn default_ping_interval() -> u64 {
    25_000
}

fn default_ping_timeout() -> u64 {
    20_000
}

impl Handshake {
    /// A connection on which nothing arrives for this long is dead: the server pings every
    /// `pingInterval` and gives the client `pingTimeout`, so a live server is never silent longer.
    pub fn silence_limit(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.ping_interval.saturating_add(self.ping_timeout))
    }
}

/// One Engine.IO packet from a text frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnginePacket<'a> {
    Open(Handshake),
    Close,
    /// The server checks the client is alive; answer with [`pong`] and the same payload.
    Ping(&'a str),
    Pong(&'a str),
    /// A Socket.IO packet, to be read with [`Packet::parse`].
    Message(&'a str),
    Upgrade,
    Noop,
}

/// Parses the Engine.IO packet of one WebSocket text frame.
pub fn parse_engine(text: &str) -> Result<EnginePacket<'_>, FrameError> {
    let Some(&kind) = text.as_bytes().first() else {
        return error("empty Engine.IO packet");
    };
    if !kind.is_ascii_digit() {
        return error(format!("unknown Engine.IO packet type {:?}", preview(text)));
    }
    // The first byte is ASCII, so slicing after it stays on a character boundary.
    let payload = &text[1..];
    Ok(match kind {
        b'0' => EnginePacket::Open(
            serde_json::from_str(payload)
                .map_err(|err| FrameError(format!("malformed Engine.IO handshake: {err}")))?,
        ),
        b'1' => EnginePacket::Close,
        b'2' => EnginePacket::Ping(payload),
        b'3' => EnginePacket::Pong(payload),
        b'4' => EnginePacket::Message(payload),
        b'5' => EnginePacket::Upgrade,
        b'6' => EnginePacket::Noop,
        _ => return error(format!("unknown Engine.IO packet type {:?}", preview(text))),
    })
}

/// The answer to a server ping carrying `payload`.
pub fn pong(payload: &str) -> String {
    format!("3{payload}")
}

/// Socket.IO packet types (the digit after the Engine.IO `4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    Connect = 0,
    Disconnect = 1,
    Event = 2,
    Ack = 3,
    ConnectError = 4,
    BinaryEvent = 5,
    BinaryAck = 6,
}

impl PacketType {
    fn from_byte(byte: u8) -> Option<PacketType> {
        Some(match byte {
            b'0' => PacketType::Connect,
            b'1' => PacketType::Disconnect,
            b'2' => PacketType::Event,
            b'3' => PacketType::Ack,
            b'4' => PacketType::ConnectError,
            b'5' => PacketType::BinaryEvent,
            b'6' => PacketType::BinaryAck,
            _ => return None,
        })
    }

    fn is_binary(self) -> bool {
        matches!(self, PacketType::BinaryEvent | PacketType::BinaryAck)
    }
}

/// One Socket.IO packet. Attachments of a binary packet are not part of it: see [`Reassembly`].
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    pub kind: PacketType,
    /// `/` for the main namespace.
    pub namespace: String,
    /// Set when the sender wants an acknowledgement (see [`ack`]).
    pub id: Option<u64>,
    /// Binary frames that follow this packet.
    pub attachments: usize,
    pub data: Option<Value>,
}

impl Packet {
    /// Parses a Socket.IO packet (the payload of an Engine.IO message).
    pub fn parse(text: &str) -> Result<Packet, FrameError> {
        let bytes = text.as_bytes();
        let Some(kind) = bytes.first().copied().and_then(PacketType::from_byte) else {
            return error(format!("unknown Socket.IO packet {:?}", preview(text)));
        };
        // Every position below is just past an ASCII byte, so slices stay on char boundaries.
        let mut pos = 1;
        let mut attachments = 0;
        if kind.is_binary() {
            let count = leading_digits(&text[pos..]);
            if count.is_empty() || bytes.get(pos + count.len()) != Some(&b'-') {
                return error(format!(
                    "binary packet without an attachment count: {:?}",
                    preview(text)
                ));
            }
            attachments = match count.parse::<usize>() {
                Ok(n) if n <= MAX_ATTACHMENTS => n,
                _ => {
                    return error(format!(
                        "binary packet announcing {count} attachments (at most {MAX_ATTACHMENTS})"
                    ));
                }
            };
            pos += count.len() + 1;
        }
        let namespace = if bytes.get(pos) == Some(&b'/') {
            let end = text[pos..].find(',').map_or(text.len(), |i| pos + i);
            let namespace = &text[pos..end];
            pos = (end + 1).min(text.len());
            namespace
        } else {
            "/"
        };
        let digits = leading_digits(&text[pos..]);
        let id = if digits.is_empty() {
            None
        } else {
            pos += digits.len();
            Some(
                digits
                    .parse::<u64>()
                    .map_err(|_| FrameError(format!("ack id {digits} out of range")))?,
            )
        };
        let rest = &text[pos..];
        let data = if rest.is_empty() {
            None
        } else {
            Some(serde_json::from_str::<Value>(rest).map_err(|err| {
                FrameError(format!(
                    "malformed Socket.IO payload {:?}: {err}",
                    preview(rest)
                ))
            })?)
        };
        let packet = Packet {
            kind,
            namespace: namespace.to_owned(),
            id,
            attachments,
            data,
        };
        packet.validate()?;
        Ok(packet)
    }

    /// The payload shapes the protocol allows for each type.
    fn validate(&self) -> Result<(), FrameError> {
        let ok = match (self.kind, &self.data) {
            (PacketType::Connect, None | Some(Value::Object(_))) => true,
            (PacketType::Disconnect, _) => true,
            (PacketType::Event | PacketType::BinaryEvent, Some(Value::Array(items))) => {
                matches!(items.first(), Some(Value::String(_)))
            }
            (PacketType::Ack | PacketType::BinaryAck, Some(Value::Array(_))) => true,
            (PacketType::ConnectError, None | Some(Value::Object(_) | Value::String(_))) => true,
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            error(format!("invalid payload for a {:?} packet", self.kind))
        }
    }

    /// For an event packet: its name and arguments.
    pub fn event(&self) -> Option<(&str, &[Value])> {
        if !matches!(self.kind, PacketType::Event | PacketType::BinaryEvent) {
            return None;
        }
        let Some(Value::Array(items)) = &self.data else {
            return None;
        };
        let (Value::String(name), args) = items.split_first()? else {
            return None;
        };
        Some((name, args))
    }
}

fn leading_digits(text: &str) -> &str {
    let end = text.bytes().take_while(u8::is_ascii_digit).count();
    &text[..end]
}

/// The start of a frame for error messages: frames can be megabytes of base64.
fn preview(text: &str) -> String {
    text.chars().take(60).collect()
}

/// `4<type>` and the namespace, as every client frame starts.
fn prefix(kind: PacketType, namespace: &str) -> String {
    let mut frame = format!("4{}", kind as u8);
    if namespace != "/" {
        frame.push_str(namespace);
        frame.push(',');
    }
    frame
}

/// The frame that joins `namespace`.
pub fn connect(namespace: &str) -> String {
    prefix(PacketType::Connect, namespace)
}

/// The frame that leaves `namespace` (no payload, as the reference client sends it).
pub fn disconnect(namespace: &str) -> String {
    prefix(PacketType::Disconnect, namespace)
}

/// The frame of event `name` in `namespace`, with one argument or none.
pub fn event(namespace: &str, name: &str, argument: Option<Value>) -> String {
    let mut items = vec![Value::String(name.to_owned())];
    items.extend(argument);
    prefix(PacketType::Event, namespace) + &Value::Array(items).to_string()
}

/// The empty acknowledgement of the server's packet `id`.
pub fn ack(namespace: &str, id: u64) -> String {
    format!("{}{id}[]", prefix(PacketType::Ack, namespace))
}

/// The attachment index of a `{"_placeholder":true,"num":N}` object standing for a binary frame.
pub fn placeholder(value: &Value) -> Option<usize> {
    let object = value.as_object()?;
    if object.get("_placeholder")?.as_bool()? {
        usize::try_from(object.get("num")?.as_u64()?).ok()
    } else {
        None
    }
}

/// A packet with all its binary attachments, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Complete {
    pub packet: Packet,
    pub attachments: Vec<Vec<u8>>,
}

/// Collects the binary frames that follow a binary packet.
#[derive(Debug, Default)]
pub struct Reassembly {
    waiting: Option<Complete>,
}

impl Reassembly {
    /// Takes a packet from a text frame. Returns it when it is complete (no attachments), and an
    /// error if it cut short a binary packet that was still waiting for attachments (that one is
    /// dropped; this one is still returned or awaited).
    pub fn text(&mut self, packet: Packet) -> (Option<Complete>, Option<FrameError>) {
        let abandoned = self.waiting.take().map(|stale| {
            FrameError(format!(
                "a binary packet was cut short after {} of {} attachments",
                stale.attachments.len(),
                stale.packet.attachments
            ))
        });
        let complete = Complete {
            attachments: Vec::with_capacity(packet.attachments),
            packet,
        };
        if complete.packet.attachments == 0 {
            (Some(complete), abandoned)
        } else {
            self.waiting = Some(complete);
            (None, abandoned)
        }
    }

    /// Takes a binary frame: the packet it completes, if any.
    pub fn binary(&mut self, bytes: Vec<u8>) -> Result<Option<Complete>, FrameError> {
        let Some(waiting) = self.waiting.as_mut() else {
            return error("a binary frame arrived without a binary packet announcing it");
        };
        waiting.attachments.push(bytes);
        if waiting.attachments.len() < waiting.packet.attachments {
            return Ok(None);
        }
        Ok(self.waiting.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    const NS: &str = "/api/realtime-translator";

    #[test]
    fn handshake_gives_the_silence_limit() {
        let text = r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
        let EnginePacket::Open(handshake) = parse_engine(text).unwrap() else {
            panic!("not an open packet");
        };
        assert_eq!(handshake.sid, "abc");
        assert_eq!(handshake.max_payload, Some(1_000_000));
        assert_eq!(handshake.silence_limit().as_millis(), 45_000);
        let EnginePacket::Open(minimal) = parse_engine(r#"0{"sid":"x"}"#).unwrap() else {
            panic!("not an open packet");
        };
        assert_eq!(
            (minimal.ping_interval, minimal.ping_timeout),
            (25_000, 20_000)
        );
    }

    #[test]
    fn engine_packet_types() {
        assert_eq!(parse_engine("2").unwrap(), EnginePacket::Ping(""));
        assert_eq!(parse_engine("2probe").unwrap(), EnginePacket::Ping("probe"));
        assert_eq!(parse_engine("3").unwrap(), EnginePacket::Pong(""));
        assert_eq!(parse_engine("1").unwrap(), EnginePacket::Close);
        assert_eq!(parse_engine("6").unwrap(), EnginePacket::Noop);
        assert_eq!(
            parse_engine("42[\"a\"]").unwrap(),
            EnginePacket::Message("2[\"a\"]")
        );
        assert_eq!(pong("probe"), "3probe");
        for bad in ["", "7", "x", "é", "0{", "0[]"] {
            assert!(parse_engine(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn namespace_connect_answers() {
        let accepted = Packet::parse(&format!("0{NS},{{\"sid\":\"s1\"}}")).unwrap();
        assert_eq!(accepted.kind, PacketType::Connect);
        assert_eq!(accepted.namespace, NS);
        assert_eq!(accepted.data, Some(json!({"sid": "s1"})));

        let refused = Packet::parse(&format!("4{NS},{{\"message\":\"Invalid API key\"}}")).unwrap();
        assert_eq!(refused.kind, PacketType::ConnectError);
        assert_eq!(refused.data, Some(json!({"message": "Invalid API key"})));
        let bare = Packet::parse(&format!("4{NS},\"Unauthorized\"")).unwrap();
        assert_eq!(bare.data, Some(json!("Unauthorized")));

        let left = Packet::parse(&format!("1{NS},")).unwrap();
        assert_eq!((left.kind, left.data), (PacketType::Disconnect, None));
        // The main namespace has no prefix.
        let main = Packet::parse("0{\"sid\":\"m\"}").unwrap();
        assert_eq!(main.namespace, "/");
    }

    #[test]
    fn events_with_and_without_arguments_and_ack_ids() {
        let packet = Packet::parse(&format!(
            "2{NS},[\"output_transcript\",{{\"delta\":\"Hola\"}}]"
        ))
        .unwrap();
        let (name, args) = packet.event().unwrap();
        assert_eq!(name, "output_transcript");
        assert_eq!(args, [json!({"delta": "Hola"})]);
        assert_eq!(packet.id, None);

        let with_id = Packet::parse(&format!("2{NS},17[\"translation_closed\"]")).unwrap();
        assert_eq!(with_id.id, Some(17));
        assert_eq!(with_id.event().unwrap(), ("translation_closed", &[][..]));

        let main = Packet::parse("2[\"x\",1,2]").unwrap();
        assert_eq!(main.event().unwrap().1.len(), 2);

        for bad in [
            format!("2{NS},{{\"a\":1}}"),
            format!("2{NS},[]"),
            format!("2{NS},[1]"),
            format!("2{NS},"),
            format!("0{NS},[1]"),
            format!("2{NS},99999999999999999999999[\"x\"]"),
            format!("2{NS},[\"x\""),
            "9".into(),
            String::new(),
        ] {
            assert!(Packet::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn client_frames_match_the_reference_encoding() {
        assert_eq!(connect(NS), "40/api/realtime-translator,");
        assert_eq!(connect("/"), "40");
        assert_eq!(disconnect(NS), "41/api/realtime-translator,");
        assert_eq!(
            event(
                NS,
                "translation_start",
                Some(json!({"targetLanguage": "pt-BR"}))
            ),
            r#"42/api/realtime-translator,["translation_start",{"targetLanguage":"pt-BR"}]"#
        );
        assert_eq!(
            event(NS, "translation_stop", None),
            r#"42/api/realtime-translator,["translation_stop"]"#
        );
        assert_eq!(ack(NS, 5), "43/api/realtime-translator,5[]");
        // What the client sends, it can read back.
        let frame = event(NS, "audio_chunk", Some(json!({"audioData": "AAA="})));
        let EnginePacket::Message(inner) = parse_engine(&frame).unwrap() else {
            panic!("not a message");
        };
        let packet = Packet::parse(inner).unwrap();
        assert_eq!(packet.event().unwrap().0, "audio_chunk");
        assert_eq!(packet.namespace, NS);
    }

    #[test]
    fn binary_event_collects_its_attachments() {
        let text = format!(
            "52-{NS},[\"output_audio\",{{\"delta\":{{\"_placeholder\":true,\"num\":1}},\"x\":{{\"_placeholder\":true,\"num\":0}}}}]"
        );
        let packet = Packet::parse(&text).unwrap();
        assert_eq!(packet.kind, PacketType::BinaryEvent);
        assert_eq!(packet.attachments, 2);
        let mut reassembly = Reassembly::default();
        assert_eq!(reassembly.text(packet), (None, None));
        assert_eq!(reassembly.binary(vec![1, 2]).unwrap(), None);
        let complete = reassembly.binary(vec![3, 4]).unwrap().unwrap();
        assert_eq!(complete.attachments, [vec![1, 2], vec![3, 4]]);
        let (_, args) = complete.packet.event().unwrap();
        assert_eq!(placeholder(&args[0]["delta"]), Some(1));
        assert_eq!(placeholder(&args[0]["x"]), Some(0));
        assert_eq!(placeholder(&json!({"_placeholder": false, "num": 0})), None);
        assert_eq!(placeholder(&json!("AAAA")), None);
        // Nothing is waiting any more.
        assert!(reassembly.binary(vec![5]).is_err());
    }

    #[test]
    fn a_text_packet_cutting_a_binary_one_short_is_reported_and_kept() {
        let mut reassembly = Reassembly::default();
        let binary = Packet::parse(&format!(
            "51-{NS},[\"a\",{{\"_placeholder\":true,\"num\":0}}]"
        ))
        .unwrap();
        assert_eq!(reassembly.text(binary), (None, None));
        let next = Packet::parse(&format!("2{NS},[\"translation_closed\"]")).unwrap();
        let (complete, abandoned) = reassembly.text(next);
        assert_eq!(
            complete.unwrap().packet.event().unwrap().0,
            "translation_closed"
        );
        assert!(abandoned.unwrap().0.contains("0 of 1"));
    }

    #[test]
    fn attachment_counts_are_bounded() {
        assert!(Packet::parse(&format!("517-{NS},[\"a\"]")).is_err());
        assert!(Packet::parse(&format!("5{NS},[\"a\"]")).is_err());
        assert!(Packet::parse("5-[\"a\"]").is_err());
        assert!(Packet::parse("599999999999999999999999-[\"a\"]").is_err());
        assert_eq!(Packet::parse("516-[\"a\"]").unwrap().attachments, 16);
    }

    /// Valid frames of every kind, the seeds the fuzz test mutates.
    fn seeds() -> Vec<String> {
        vec![
            r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#.into(),
            "2".into(),
            "3probe".into(),
            "1".into(),
            "6".into(),
            format!("40{NS},{{\"sid\":\"s\"}}"),
            format!("44{NS},{{\"message\":\"Invalid API key\"}}"),
            format!("44{NS},\"bare\""),
            format!("41{NS},"),
            format!("42{NS},[\"output_audio\",{{\"delta\":\"AAABAA==\"}}]"),
            format!("42{NS},12[\"status\",{{\"status\":\"ready_for_audio\"}}]"),
            format!("43{NS},3[]"),
            format!("451-{NS},[\"output_audio\",{{\"delta\":{{\"_placeholder\":true,\"num\":0}}}}]"),
            "461-/,7[{\"_placeholder\":true,\"num\":0}]".into(),
            "42[\"é€😀\",{\"delta\":\"ñ\"}]".into(),
        ]
    }

    fn mutate(rng: &mut StdRng, seed: &str) -> Vec<u8> {
        const INTERESTING: &[u8] = b"0123456789-/,[]{}\":_\\ \x00\xff\xc3\xa9";
        let mut bytes = seed.as_bytes().to_vec();
        for _ in 0..rng.random_range(1..=4) {
            let at = rng.random_range(0..=bytes.len());
            let byte = if rng.random_bool(0.7) {
                INTERESTING[rng.random_range(0..INTERESTING.len())]
            } else {
                rng.random()
            };
            match rng.random_range(0..4) {
                0 => bytes.insert(at, byte),
                1 if at < bytes.len() => {
                    bytes.remove(at);
                }
                2 if at < bytes.len() => bytes[at] = byte,
                _ => bytes.truncate(at),
            }
        }
        bytes
    }

    /// Feeds a frame through everything a receiving client does with it.
    fn receive(reassembly: &mut Reassembly, text: &str) {
        if let Ok(EnginePacket::Message(inner)) = parse_engine(text)
            && let Ok(packet) = Packet::parse(inner)
        {
            let _ = packet.event();
            let (complete, _) = reassembly.text(packet);
            if let Some(complete) = complete
                && let Some((_, args)) = complete.packet.event()
            {
                args.iter().for_each(|arg| {
                    let _ = placeholder(arg);
                });
            }
        }
    }

    /// Parsing never panics: mutated valid frames, random bytes and random binary frames.
    #[test]
    fn parsing_never_panics_on_mutated_or_random_frames() {
        const CASES: usize = 200_000;
        let mut rng = StdRng::seed_from_u64(0x50c_e710);
        let seeds = seeds();
        let mut reassembly = Reassembly::default();
        let mut parsed = 0;
        for case in 0..CASES {
            let bytes = if case % 4 == 3 {
                (0..rng.random_range(0..40)).map(|_| rng.random()).collect()
            } else {
                mutate(&mut rng, &seeds[case % seeds.len()])
            };
            let text = String::from_utf8_lossy(&bytes);
            parsed += usize::from(parse_engine(&text).is_ok());
            receive(&mut reassembly, &text);
            if case % 7 == 0 {
                let _ = reassembly.binary(bytes);
            }
        }
        // The mutations keep plenty of frames valid, so the deep paths ran too.
        assert!(parsed > CASES / 4, "only {parsed} of {CASES} frames parsed");
    }
}
