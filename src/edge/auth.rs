//! Player JWTs (HS256: `sub`, `exp`, optional `name` and `mmr`), guest tokens, and admin access.

use std::net::IpAddr;

use actix_web::HttpRequest;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use warren_protocol::{PlayerId, text};

/// Default rating of a player whose token has no `mmr`.
pub(crate) const DEFAULT_MMR: i64 = 1000;

/// The range a token's `mmr` is clamped to (a rating far outside it would make the matchmaking
/// spread of two players wrap around and match anyone).
pub(crate) const MMR_RANGE: std::ops::RangeInclusive<i64> = -1_000_000..=1_000_000;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mmr: Option<i64>,
}

/// An authenticated player.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    /// `sub`.
    pub(crate) player: PlayerId,
    /// `name`, or the player id.
    pub(crate) name: String,
    /// `mmr`, or 1000.
    pub(crate) mmr: i64,
}

/// Why a token was refused (all answer 401).
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthError {
    /// No token in the header or the query.
    #[error("missing token")]
    Missing,
    /// Bad signature, expired, malformed, or missing claims.
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Admin access refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AdminDenied {
    /// A token is configured and the request's is missing or wrong: 401.
    Unauthorized,
    /// No token configured and the client is not on loopback: 403.
    Forbidden,
    /// A browser page of another site sent it (`Sec-Fetch-Site`, `Origin`), or, with no token
    /// configured, it names the node by a DNS name other than `localhost` (a rebound name): 403.
    CrossSite,
}

/// Token checks and minting.
pub(crate) struct Auth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Guests allowed.
    pub(crate) allow_guest: bool,
    /// Guest token lifetime.
    pub(crate) guest_ttl_secs: u64,
    admin_token: Option<String>,
}

impl Auth {
    /// From the secret (not empty: the node makes a random one when none is configured) and
    /// settings.
    pub(crate) fn new(
        secret: &[u8],
        allow_guest: bool,
        guest_ttl_secs: u64,
        admin_token: &str,
        leeway_secs: u64,
    ) -> Result<Self, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        // A token not valid yet (`nbf` in the future, beyond the leeway) is refused.
        validation.validate_nbf = true;
        validation.leeway = leeway_secs;
        Ok(Self {
            encoding: EncodingKey::from_secret(secret)?,
            decoding: DecodingKey::from_secret(secret)?,
            validation,
            allow_guest,
            guest_ttl_secs,
            admin_token: (!admin_token.is_empty()).then(|| admin_token.to_owned()),
        })
    }

    /// Checks a player token.
    pub(crate) fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let c = data.claims;
        let len = c.sub.chars().count();
        if len == 0 || len > 64 {
            return Err(AuthError::Invalid("`sub` must be 1–64 characters".into()));
        }
        // Control characters and bidirectional overrides in an id are refused: ids reach other
        // players' screens and the fields of whatever joins them. A display name follows the
        // rules of `warren_protocol::text` (an empty one stands for `sub`).
        if c.sub.chars().any(|ch| {
            ch.is_control() || matches!(ch, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        }) {
            return Err(AuthError::Invalid(
                "`sub` must not contain control characters or bidirectional overrides".into(),
            ));
        }
        if let Some(name) = c.name.as_deref().filter(|n| !n.is_empty())
            && let Err(why) = text::check_name(name, text::MAX_NAME_CHARS)
        {
            return Err(AuthError::Invalid(format!(
                "`name` must be 1–{} characters with a visible one, no control characters or \
                 bidirectional overrides: {why}",
                text::MAX_NAME_CHARS
            )));
        }
        Ok(Identity {
            name: c
                .name
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| c.sub.clone()),
            player: PlayerId::new(c.sub),
            mmr: c
                .mmr
                .unwrap_or(DEFAULT_MMR)
                .clamp(*MMR_RANGE.start(), *MMR_RANGE.end()),
        })
    }

    /// Mints a token (guests, and tests through the same code).
    pub(crate) fn mint(
        &self,
        player: &PlayerId,
        name: &str,
        exp: u64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = Claims {
            sub: player.to_string(),
            exp,
            name: Some(name.to_owned()),
            mmr: None,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// The player token of a request: `Authorization: Bearer` first, then `?token=`.
    /// `authorization` is the request's `Authorization` header, if it has one.
    pub(crate) fn identify(
        &self,
        authorization: Option<&str>,
        query_token: Option<&str>,
    ) -> Result<Identity, AuthError> {
        let token = authorization
            .and_then(bearer_token)
            .or(query_token)
            .ok_or(AuthError::Missing)?;
        self.verify(token)
    }

    /// Admin endpoints: the configured bearer token, or loopback clients when none is configured.
    /// `client` is the request's client address ([`super::Edge::client_of`]); a request a proxy
    /// forwarded is never a loopback client, even from a proxy on the node's own host.
    pub(crate) fn admin(
        &self,
        req: &HttpRequest,
        client: Option<IpAddr>,
    ) -> Result<(), AdminDenied> {
        // Admin endpoints allow no cross-site request: a page on another site in a browser on
        // the node's host would otherwise reach them as a loopback client.
        if cross_site(req) {
            return Err(AdminDenied::CrossSite);
        }
        match &self.admin_token {
            Some(expected) => match bearer(req) {
                Some(t) if constant_time_eq(t.as_bytes(), expected.as_bytes()) => Ok(()),
                _ => Err(AdminDenied::Unauthorized),
            },
            None => {
                let loopback =
                    !super::forwarded(req) && client.is_some_and(|ip: IpAddr| ip.is_loopback());
                if loopback && !local_host(req) {
                    Err(AdminDenied::CrossSite)
                } else if loopback {
                    Ok(())
                } else {
                    Err(AdminDenied::Forbidden)
                }
            }
        }
    }
}

/// Whether a browser says the request comes from a page of another site: `Sec-Fetch-Site` other
/// than `same-origin` or `none` (typed by the user), or an `Origin` whose host and port are not
/// the request's `Host`.
fn cross_site(req: &HttpRequest) -> bool {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or("\u{0}"))
    };
    if let Some(site) = header("sec-fetch-site")
        && !site.eq_ignore_ascii_case("same-origin")
        && !site.eq_ignore_ascii_case("none")
    {
        return true;
    }
    let Some(origin) = header("origin") else {
        return false;
    };
    let Some((scheme, authority)) = origin.split_once("://") else {
        return true; // `null`, or not an origin
    };
    let host = header("host").unwrap_or("");
    !without_default_port(scheme, authority)
        .eq_ignore_ascii_case(without_default_port(scheme, host))
}

fn without_default_port<'a>(scheme: &str, authority: &'a str) -> &'a str {
    let default = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return authority,
    };
    authority.strip_suffix(default).unwrap_or(authority)
}

/// Whether the request names the node by an address or `localhost` (its `Host`), not a DNS name:
/// a page whose name an attacker rebinds to 127.0.0.1 is same-origin to the browser, but its
/// requests carry that name.
fn local_host(req: &HttpRequest) -> bool {
    let Some(host) = req.headers().get("host").and_then(|h| h.to_str().ok()) else {
        return true; // HTTP/1.0 tools
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => {
            return v6
                .split_once(']')
                .is_some_and(|(ip, _)| ip.parse::<IpAddr>().is_ok());
        }
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok()
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    let h = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    bearer_token(h)
}

/// The token of an `Authorization: Bearer <token>` header value.
fn bearer_token(h: &str) -> Option<&str> {
    let (scheme, token) = h.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn ratings_are_clamped_so_no_spread_wraps() {
        let auth = Auth::new(b"k", true, 60, "", 0).unwrap();
        let sign = |mmr: i64| {
            let claims = serde_json::json!({"sub": "p", "exp": now() + 60, "mmr": mmr});
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &auth.encoding).unwrap()
        };
        assert_eq!(auth.verify(&sign(i64::MIN)).unwrap().mmr, -1_000_000);
        assert_eq!(auth.verify(&sign(i64::MAX)).unwrap().mmr, 1_000_000);
        assert_eq!(auth.verify(&sign(1234)).unwrap().mmr, 1234);
        // The widest possible spread of two clamped ratings fits an i64 many times over.
        let (a, b) = (*MMR_RANGE.start(), *MMR_RANGE.end());
        assert_eq!(b.checked_sub(a), Some(2_000_000));
    }

    #[test]
    fn admin_access_by_token_or_loopback() {
        use actix_web::test::TestRequest;
        let open = Auth::new(b"k", true, 60, "", 0).unwrap();
        let local = TestRequest::default()
            .peer_addr("127.0.0.1:5000".parse().unwrap())
            .to_http_request();
        let remote = TestRequest::default()
            .peer_addr("10.1.2.3:5000".parse().unwrap())
            .to_http_request();
        assert_eq!(
            open.admin(&local, local.peer_addr().map(|a| a.ip())),
            Ok(())
        );
        assert_eq!(
            open.admin(&remote, remote.peer_addr().map(|a| a.ip())),
            Err(AdminDenied::Forbidden)
        );
        // Through a proxy on the node's own host: not a loopback client.
        let proxied = TestRequest::default()
            .peer_addr("127.0.0.1:5000".parse().unwrap())
            .insert_header(("X-Forwarded-For", "203.0.113.9"))
            .to_http_request();
        assert_eq!(
            open.admin(&proxied, Some("127.0.0.1".parse().unwrap())),
            Err(AdminDenied::Forbidden)
        );
        let guarded = Auth::new(b"k", true, 60, "secret", 0).unwrap();
        assert_eq!(guarded.admin(&local, None), Err(AdminDenied::Unauthorized));
        let with = |t: &str| {
            TestRequest::default()
                .peer_addr("10.1.2.3:5000".parse().unwrap())
                .insert_header(("Authorization", t))
                .to_http_request()
        };
        assert_eq!(guarded.admin(&with("Bearer secret"), None), Ok(()));
        assert_eq!(guarded.admin(&with("bearer secret"), None), Ok(()));
        assert_eq!(
            guarded.admin(&with("Bearer nope"), None),
            Err(AdminDenied::Unauthorized)
        );
        assert_eq!(
            guarded.admin(&with("Basic secret"), None),
            Err(AdminDenied::Unauthorized)
        );
    }

    #[test]
    fn tokens_are_checked() {
        let a = Auth::new(b"k", true, 60, "", 0).unwrap();
        let t = a.mint(&"alice".into(), "Alice", now() + 60).unwrap();
        assert_eq!(a.verify(&t).unwrap().name, "Alice");
        let other = Auth::new(b"other", true, 60, "", 0).unwrap();
        assert!(other.verify(&t).is_err());
        let expired = a.mint(&"alice".into(), "Alice", now() - 10).unwrap();
        assert!(a.verify(&expired).is_err());
        assert!(a.verify("not.a.jwt").is_err());
    }
}
