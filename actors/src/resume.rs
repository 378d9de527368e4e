//! Resume tokens: `base64url(payload) . base64url(hmac-sha256(payload))`, signed with a key
//! derived from the cluster-wide JWT secret so that any node can check a token minted by another.
//!
//! The payload is binary, each field length-prefixed, so that no field's content can be read as
//! another's: `2` (the format), `u16` length and the player id, `u16` length and the session id,
//! `u64` issued-at in Unix milliseconds, all big-endian. A token older than [`MAX_AGE_MS`] (or
//! issued in the future beyond [`SKEW_MS`]) is stale.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use warren_protocol::{PlayerId, SessionId};

/// The longest a resume token stays valid: a day. A token is refreshed in every `welcome`, so
/// only a connection that lasted longer than this resumes without one (and keeps its seat, as an
/// authenticated player does).
pub const MAX_AGE_MS: u64 = 24 * 60 * 60 * 1000;

/// How far in the future a token's issue time may lie (clocks of the cluster's nodes differ).
pub const SKEW_MS: u64 = 60 * 1000;

/// The payload format this build writes and reads.
const FORMAT: u8 = 2;

type HmacSha256 = Hmac<Sha256>;

/// The key resume tokens are signed with.
#[derive(Clone)]
pub struct ResumeKey(Vec<u8>);

/// What a valid token names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumeClaims {
    /// The player.
    pub player: PlayerId,
    /// The session to resume.
    pub session: SessionId,
    /// When it was minted.
    pub issued_ms: u64,
}

impl ResumeKey {
    /// Derives the resume key from the cluster secret, so tokens are not interchangeable with JWTs
    /// (nor with the tokens of format 1, which are refused).
    pub fn derive(secret: &[u8]) -> Self {
        let mut mac = new_mac(secret);
        mac.update(b"warren resume token v2");
        Self(mac.finalize().into_bytes().to_vec())
    }

    fn mac(&self) -> HmacSha256 {
        new_mac(&self.0)
    }

    /// Mints a token. Ids longer than 65,535 bytes are cut (the edge bounds them far below).
    pub fn sign(&self, player: &PlayerId, session: &SessionId, issued_ms: u64) -> String {
        let (player, session) = (field(player.as_str()), field(session.as_str()));
        let mut payload = Vec::with_capacity(1 + 2 + player.len() + 2 + session.len() + 8);
        payload.push(FORMAT);
        for f in [player, session] {
            payload.extend_from_slice(&(f.len() as u16).to_be_bytes());
            payload.extend_from_slice(f);
        }
        payload.extend_from_slice(&issued_ms.to_be_bytes());
        let mut mac = self.mac();
        mac.update(&payload);
        format!(
            "{}.{}",
            B64.encode(&payload),
            B64.encode(mac.finalize().into_bytes())
        )
    }

    /// Checks a token's signature and age at `now_ms` and reads it; `None` for anything forged,
    /// malformed or stale.
    pub fn verify(&self, token: &str, now_ms: u64) -> Option<ResumeClaims> {
        let (payload_b64, sig_b64) = token.split_once('.')?;
        let payload = B64.decode(payload_b64).ok()?;
        let sig = B64.decode(sig_b64).ok()?;
        let mut mac = self.mac();
        mac.update(&payload);
        mac.verify_slice(&sig).ok()?;
        let (&format, mut rest) = payload.split_first()?;
        if format != FORMAT {
            return None;
        }
        let mut take = |n: usize| -> Option<&[u8]> {
            let (head, tail) = rest.split_at_checked(n)?;
            rest = tail;
            Some(head)
        };
        let mut text = || -> Option<String> {
            let len = u16::from_be_bytes(take(2)?.try_into().ok()?);
            String::from_utf8(take(len.into())?.to_vec()).ok()
        };
        let (player, session) = (text()?, text()?);
        let issued_ms = u64::from_be_bytes(take(8)?.try_into().ok()?);
        if !rest.is_empty()
            || issued_ms > now_ms.saturating_add(SKEW_MS)
            || now_ms.saturating_sub(issued_ms) > MAX_AGE_MS
        {
            return None;
        }
        Some(ResumeClaims {
            player: PlayerId::new(player),
            session: SessionId::new(session),
            issued_ms,
        })
    }
}

/// At most 65,535 bytes of `s`, cut at a character boundary.
fn field(s: &str) -> &[u8] {
    let mut end = s.len().min(usize::from(u16::MAX));
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s.as_bytes()[..end]
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    // HMAC is defined for keys of any length: this cannot fail.
    HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    #[test]
    fn round_trip_and_forgery() {
        let k = ResumeKey::derive(b"secret");
        let t = k.sign(&"p".into(), &"s".into(), NOW);
        let c = k.verify(&t, NOW).unwrap();
        assert_eq!(
            (c.player, c.session, c.issued_ms),
            ("p".into(), SessionId::from("s"), NOW)
        );
        assert!(ResumeKey::derive(b"other").verify(&t, NOW).is_none());
        assert!(k.verify("garbage", NOW).is_none());
        let (_, sig) = t.split_once('.').unwrap();
        let forged = format!("{}.{sig}", B64.encode(b"\x02\x00\x01q\x00\x01s"));
        assert!(k.verify(&forged, NOW).is_none());
    }

    /// A player id holding the separator of the old format (`player \n session \n issued`) can
    /// no longer be read as another player's token: fields are length-prefixed.
    #[test]
    fn no_field_can_be_read_as_another() {
        let k = ResumeKey::derive(b"secret");
        let t = k.sign(&"bob\ns-of-bob".into(), &"s1".into(), NOW);
        let c = k.verify(&t, NOW).unwrap();
        assert_eq!(c.player, PlayerId::from("bob\ns-of-bob"));
        assert_eq!(c.session, SessionId::from("s1"));
        // A token of the old format, signed with the old key's derivation, is refused.
        let mut old = new_mac(b"secret");
        old.update(b"warren resume token v1");
        let old_key = ResumeKey(old.finalize().into_bytes().to_vec());
        let payload = format!("bob\ns1\n{NOW}");
        let mut mac = old_key.mac();
        mac.update(payload.as_bytes());
        let v1 = format!(
            "{}.{}",
            B64.encode(&payload),
            B64.encode(mac.finalize().into_bytes())
        );
        assert!(k.verify(&v1, NOW).is_none());
    }

    #[test]
    fn stale_and_future_tokens_are_refused() {
        let k = ResumeKey::derive(b"secret");
        let t = k.sign(&"p".into(), &"s".into(), NOW);
        assert!(k.verify(&t, NOW + MAX_AGE_MS).is_some());
        assert!(k.verify(&t, NOW + MAX_AGE_MS + 1).is_none());
        assert!(k.verify(&t, NOW - SKEW_MS).is_some());
        assert!(k.verify(&t, NOW - SKEW_MS - 1).is_none());
    }

    #[test]
    fn trailing_or_truncated_payloads_are_refused() {
        let k = ResumeKey::derive(b"secret");
        let signed = |payload: &[u8]| {
            let mut mac = k.mac();
            mac.update(payload);
            format!(
                "{}.{}",
                B64.encode(payload),
                B64.encode(mac.finalize().into_bytes())
            )
        };
        let t = k.sign(&"p".into(), &"s".into(), NOW);
        let payload = B64.decode(t.split_once('.').unwrap().0).unwrap();
        let mut long = payload.clone();
        long.push(0);
        assert!(k.verify(&signed(&long), NOW).is_none());
        assert!(
            k.verify(&signed(&payload[..payload.len() - 1]), NOW)
                .is_none()
        );
        assert!(k.verify(&signed(&[]), NOW).is_none());
        assert!(k.verify(&signed(&payload), NOW).is_some());
    }
}
