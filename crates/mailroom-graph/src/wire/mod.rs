//! The protocol side: Graph JSON and query text in, values out. No sockets, no
//! clocks (callers pass "now"), so everything here is tested with fixtures.

pub mod batch;
pub mod error;
pub mod folder;
pub mod html;
pub mod message;
pub mod odata;
pub mod retry;
pub mod subscription;

/// Deserializes a JSON document from bytes, checking that they are UTF-8 once for the
/// whole document (vectorised) rather than string by string: `serde_json::from_slice`
/// validates every string it meets with `core::str::from_utf8`, which was a tenth of
/// the client's instructions in the sync profile (bodies hold non-ASCII text). Bytes
/// that are not UTF-8 go through `from_slice`, for its error and position.
pub(crate) fn from_json<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> serde_json::Result<T> {
    match simdutf8::basic::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    #[test]
    fn json_is_read_from_utf8_bytes_and_invalid_bytes_are_an_error() {
        let value: Value = super::from_json("{\"a\": \"Zürich\\n\"}".as_bytes()).unwrap();
        assert_eq!(value["a"], "Zürich\n");
        let invalid = b"{\"a\": \"Z\xfcrich\"}";
        let error = super::from_json::<Value>(invalid).unwrap_err();
        assert_eq!(
            error.to_string(),
            serde_json::from_slice::<Value>(invalid)
                .unwrap_err()
                .to_string()
        );
        assert!(error.to_string().contains("invalid unicode"), "{error}");
    }
}
