//! Property tests of the pure `proto` modules: no panic on any input, and the round
//! trips hold (UTF-7 names, UID sets, cursors, remote ids, quoting, the guard).

use async_imap::imap_proto::{AttributeValue, Response};
use mailroom_imap::proto::guard::{Guard, decode_text};
use mailroom_imap::proto::mime::{Completeness, message_from_bytes};
use mailroom_imap::proto::{
    cursor::Cursor, quote, remote_id::RemoteId, structure, uidset::UidSet, unescape_quoted, utf7,
};
use proptest::prelude::*;

fn uid_set() -> impl Strategy<Value = UidSet> {
    prop::collection::vec(1u32..=u32::MAX, 0..40).prop_map(UidSet::from_uids)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn utf7_round_trips(name in "\\PC*") {
        let wire = utf7::encode(&name);
        prop_assert!(wire.is_ascii());
        prop_assert_eq!(utf7::decode(&wire).unwrap(), name);
    }

    #[test]
    fn utf7_decodes_anything_without_panic(wire in "\\PC*", bytes in ".*") {
        let _ = utf7::decode(&wire);
        let _ = utf7::decode_lossy(&wire);
        let _ = utf7::decode(&bytes);
    }

    #[test]
    fn uid_sets_round_trip(set in uid_set(), other in uid_set()) {
        prop_assert_eq!(UidSet::parse(&set.to_string()), Some(set.clone()));
        let diff = set.difference(&other);
        for uid in diff.iter().take(1000) {
            prop_assert!(set.contains(uid) && !other.contains(uid));
        }
    }

    #[test]
    fn uid_sets_parse_anything(s in "[0-9:,]{0,40}|.{0,40}") {
        if let Some(set) = UidSet::parse(&s) {
            prop_assert_eq!(UidSet::parse(&set.to_string()), Some(set));
        }
    }

    #[test]
    fn cursors_round_trip(
        uid_validity: u32,
        highest_modseq: u64,
        last_uid: u32,
        known in prop::option::of(uid_set()),
        junk in ".{0,60}",
    ) {
        let c = Cursor { uid_validity, highest_modseq, last_uid, known };
        prop_assert_eq!(Cursor::decode(&c.encode()), Some(c));
        let _ = Cursor::decode(&junk);
        let _ = Cursor::decode(&format!("imap1;{junk}"));
    }

    #[test]
    fn remote_ids_round_trip(mailbox in "\\PC+", uid_validity: u32, uid in 1u32.., junk in ".{0,40}") {
        let id = RemoteId::new(mailbox, uid_validity, uid);
        prop_assert_eq!(RemoteId::parse(&id.to_string()), Some(id));
        let _ = RemoteId::parse(&junk);
    }

    #[test]
    fn quoting_round_trips(value in "[^\r\n\0]*") {
        let quoted = quote(&value, "a value").unwrap();
        let inner = &quoted[1..quoted.len() - 1];
        prop_assert_eq!(unescape_quoted(inner), value);
    }

    #[test]
    fn mime_parses_anything(raw in prop::collection::vec(any::<u8>(), 0..2000), full_size: u64) {
        let _ = message_from_bytes(&raw, Completeness::Whole);
        let _ = message_from_bytes(&raw, Completeness::Truncated { full_size });
    }

    #[test]
    fn structures_of_any_parsed_response(body in "[ -~]{0,300}") {
        let line = format!("* 1 FETCH (BODYSTRUCTURE {body})\r\n");
        if let Ok((_, Response::Fetch(_, attrs))) = Response::parse(line.as_bytes()) {
            for a in attrs {
                if let AttributeValue::BodyStructure(s) = a {
                    let _ = structure::attachments(&s);
                }
            }
        }
    }

    /// What the parser sees does not depend on how the bytes arrive.
    #[test]
    fn the_guard_does_not_depend_on_chunking(
        input in prop::collection::vec(any::<u8>(), 0..3000),
        cuts in prop::collection::vec(1usize..300, 1..20),
        limit in 1024u64..4096,
    ) {
        let mut whole = Guard::new(limit);
        let mut expected = Vec::new();
        let whole_result = whole.feed(&input, &mut expected);
        let mut pieces = Guard::new(limit);
        let mut got = Vec::new();
        let mut rest = &input[..];
        let mut result = Ok(());
        for cut in cuts.iter().cycle() {
            if rest.is_empty() || result.is_err() {
                break;
            }
            let (a, b) = rest.split_at((*cut).min(rest.len()));
            result = pieces.feed(a, &mut got);
            rest = b;
        }
        prop_assert_eq!(whole_result.is_ok(), result.is_ok());
        if result.is_ok() {
            prop_assert_eq!(got, expected);
        }
    }

    /// A status text comes back as the server sent it.
    #[test]
    fn status_texts_round_trip(text in "[^\r\n]*", status in "OK|NO|BAD|BYE") {
        let mut g = Guard::new(1 << 20);
        let mut out = Vec::new();
        g.feed(format!("a1 {status} {text}\r\n").as_bytes(), &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        let escaped = out
            .strip_prefix(&format!("a1 {status} "))
            .and_then(|s| s.strip_suffix("\r\n"))
            .unwrap();
        prop_assert!(escaped.bytes().all(|b| (1..0x80).contains(&b)));
        prop_assert_eq!(decode_text(escaped), text);
    }
}
