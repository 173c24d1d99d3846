//! Property tests through the public [`Vault`] API: any bytes round-trip, any token
//! text is refused without panic, a changed token never decrypts, rotation keeps
//! every plaintext.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use mailroom_vault::{FernetKey, Vault};
use proptest::prelude::*;

fn key(bytes: [u8; 32]) -> FernetKey {
    FernetKey::parse(&URL_SAFE.encode(bytes)).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_plaintext_round_trips(k: [u8; 32], plaintext in prop::collection::vec(any::<u8>(), 0..600)) {
        let vault = Vault::new(vec![key(k)]).unwrap();
        let token = vault.encrypt(&plaintext);
        prop_assert_eq!(vault.decrypt(&token).unwrap(), plaintext.clone());
        prop_assert_eq!(vault.decrypt(token.trim()).unwrap(), plaintext);
    }

    #[test]
    fn a_changed_token_never_decrypts(
        k: [u8; 32],
        plaintext in prop::collection::vec(any::<u8>(), 0..100),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let vault = Vault::new(vec![key(k)]).unwrap();
        let token = vault.encrypt(&plaintext);
        let mut raw = URL_SAFE.decode(&token).unwrap();
        let i = at.index(raw.len());
        raw[i] ^= 1 << bit;
        let changed = URL_SAFE.encode(&raw);
        prop_assert!(vault.decrypt(&changed).is_err());
    }

    #[test]
    fn any_text_is_refused_without_panic(k: [u8; 32], text in ".{0,200}", bytes in prop::collection::vec(any::<u8>(), 0..200), ttl: u64, now: u64) {
        let vault = Vault::new(vec![key(k)]).unwrap();
        let _ = vault.decrypt(&text);
        let b64 = URL_SAFE.encode(&bytes);
        prop_assert!(vault.decrypt(&b64).is_err());
        let _ = vault.decrypt_with_ttl(&b64, ttl, now);
        let _ = FernetKey::parse(&text);
        let _ = Vault::from_key_list(&text);
    }

    #[test]
    fn rotation_keeps_every_plaintext(old: [u8; 32], new: [u8; 32], plaintext in prop::collection::vec(any::<u8>(), 0..200)) {
        prop_assume!(old != new);
        let before = Vault::new(vec![key(old)]).unwrap();
        let token = before.encrypt(&plaintext);
        let both = Vault::new(vec![key(new), key(old)]).unwrap();
        let rotated = both.rotate(&token).unwrap();
        let after = Vault::new(vec![key(new)]).unwrap();
        prop_assert_eq!(after.decrypt(&rotated).unwrap(), plaintext);
        prop_assert!(after.decrypt(&token).is_err());
    }
}
