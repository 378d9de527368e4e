//! Resume tokens: `base64url(player \n session \n issued_ms) . base64url(hmac-sha256)`, signed with
//! a key derived from the cluster-wide JWT secret so that any node can check a token minted by another.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use warren_protocol::{PlayerId, SessionId};

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
    /// Derives the resume key from the cluster secret, so tokens are not interchangeable with JWTs.
    pub fn derive(secret: &[u8]) -> Self {
        let mut mac = new_mac(secret);
        mac.update(b"warren resume token v1");
        Self(mac.finalize().into_bytes().to_vec())
    }

    fn mac(&self) -> HmacSha256 {
        new_mac(&self.0)
    }

    /// Mints a token.
    pub fn sign(&self, player: &PlayerId, session: &SessionId, issued_ms: u64) -> String {
        let payload = format!("{player}\n{session}\n{issued_ms}");
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        format!(
            "{}.{}",
            B64.encode(payload),
            B64.encode(mac.finalize().into_bytes())
        )
    }

    /// Checks a token's signature and reads it; `None` for anything forged or malformed.
    pub fn verify(&self, token: &str) -> Option<ResumeClaims> {
        let (payload_b64, sig_b64) = token.split_once('.')?;
        let payload = B64.decode(payload_b64).ok()?;
        let sig = B64.decode(sig_b64).ok()?;
        let mut mac = self.mac();
        mac.update(&payload);
        mac.verify_slice(&sig).ok()?;
        let text = String::from_utf8(payload).ok()?;
        let mut parts = text.split('\n');
        let (player, session, issued) = (parts.next()?, parts.next()?, parts.next()?);
        Some(ResumeClaims {
            player: PlayerId::new(player),
            session: SessionId::new(session),
            issued_ms: issued.parse().ok()?,
        })
    }
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    // HMAC is defined for keys of any length: this cannot fail.
    HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_forgery() {
        let k = ResumeKey::derive(b"secret");
        let t = k.sign(&"p".into(), &"s".into(), 42);
        assert_eq!(k.verify(&t).unwrap().session, SessionId::from("s"));
        assert!(ResumeKey::derive(b"other").verify(&t).is_none());
        assert!(k.verify("garbage").is_none());
        let (payload, sig) = t.split_once('.').unwrap();
        let forged = format!("{}.{sig}", B64.encode("q\ns\n42"));
        assert!(k.verify(&forged).is_none());
        assert!(!payload.is_empty());
    }
}
