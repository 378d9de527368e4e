//! The client's address: the peer of the connection, or, when that peer is a proxy the node trusts
//! (`http.trusted_proxies`), the address the proxy reports in `Forwarded` (RFC 7239) or
//! `X-Forwarded-For`. Per-address limits and log lines use it. From any other peer those headers
//! are ignored, so a client cannot pass for another address by sending them.
//!
//! The forwarded list is read from the right (the hop nearest the node) and the first address that
//! is not a trusted proxy is the client: entries further left were written by the client or by
//! proxies the node knows nothing of. An entry that is not an address (`unknown`, an obfuscated
//! identifier) ends the walk at the proxy that wrote it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// An address range, `10.0.0.0/8` or `fd00::/8`; a bare address is a range of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    /// Parses `ADDR/BITS` or `ADDR`.
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an address or CIDR range"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            Some(b) => b
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0–{max}"))?,
            None => max,
        };
        Ok(Self { net, bits })
    }

    /// Whether `ip` lies in the range (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                prefix_eq(&n.octets(), &a.octets(), u32::from(self.bits))
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                prefix_eq(&n.octets(), &a.octets(), u32::from(self.bits))
            }
            _ => false,
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u32) -> bool {
    let (whole, rest) = ((bits / 8) as usize, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[whole] & mask == b[whole] & mask
    }
}

/// The proxies whose forwarding headers the node believes.
#[derive(Clone, Debug, Default)]
pub(crate) struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// From `http.trusted_proxies`.
    pub(crate) fn parse(ranges: &[String]) -> Result<Self, String> {
        ranges
            .iter()
            .map(|r| Cidr::parse(r))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The client's address, given the connection's peer and the values of the request's
    /// `Forwarded` and `X-Forwarded-For` headers, in order.
    pub(crate) fn client<'a>(
        &self,
        peer: IpAddr,
        forwarded: impl Iterator<Item = &'a str>,
        x_forwarded_for: impl Iterator<Item = &'a str>,
    ) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        // `Forwarded` is the standard; a proxy that writes it is read from it alone.
        let mut hops: Vec<Option<IpAddr>> = forwarded
            .flat_map(|v| v.split(','))
            .filter_map(forwarded_for)
            .collect();
        if hops.is_empty() {
            hops = x_forwarded_for
                .flat_map(|v| v.split(','))
                .map(|h| parse_node(h.trim()))
                .collect();
        }
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop {
                Some(ip) => {
                    client = canonical(*ip);
                    if !self.trusts(client) {
                        break;
                    }
                }
                None => break,
            }
        }
        client
    }
}

/// The `for=` of one `Forwarded` element: `Some(None)` for a value that is not an address.
fn forwarded_for(element: &str) -> Option<Option<IpAddr>> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("for")
            .then(|| parse_node(v.trim().trim_matches('"')))
    })
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]:80`, `2001:db8::1`.
fn parse_node(s: &str) -> Option<IpAddr> {
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    s.parse().ok().or_else(|| {
        let (host, port) = s.rsplit_once(':')?;
        port.parse::<u16>().ok()?;
        host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
    })
}

/// A token bucket per client address: `per_minute` requests a minute, in bursts of as many.
/// The table holds at most [`PerAddress::MAX_ADDRESSES`] addresses; when it is full, addresses whose
/// buckets refilled are forgotten, and if none has, the request is refused (the node is being
/// flooded from more addresses than it tracks).
pub(crate) struct PerAddress {
    per_minute: u32,
    max: usize,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl PerAddress {
    /// Most addresses tracked at once.
    pub(crate) const MAX_ADDRESSES: usize = 100_000;

    pub(crate) fn new(per_minute: u32) -> Self {
        Self::with_max(per_minute, Self::MAX_ADDRESSES)
    }

    fn with_max(per_minute: u32, max: usize) -> Self {
        Self {
            per_minute,
            max,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `ip`; false when its bucket is empty. 0 per minute: no limit.
    pub(crate) fn admit(&self, ip: IpAddr, now: Instant) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let cap = f64::from(self.per_minute);
        let rate = cap / 60.0;
        let mut b = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if b.len() >= self.max && !b.contains_key(&ip) {
            b.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() * rate < cap
            });
            if b.len() >= self.max {
                return false;
            }
        }
        let (tokens, at) = b.entry(ip).or_insert((cap, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * rate).min(cap);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains(ip("10.200.1.1")));
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.1.1.1")));
        assert!(Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.1")));
        assert!(!Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.2")));
        assert!(Cidr::parse("fd00::/8").unwrap().contains(ip("fd12::1")));
        assert!(!Cidr::parse("fd00::/8").unwrap().contains(ip("10.0.0.1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nope").is_err());
        assert!(Cidr::parse("10.0.0.0/x").is_err());
    }

    fn client(trusted: &[&str], peer: &str, h: &[(&str, &str)]) -> IpAddr {
        let t = TrustedProxies::parse(&trusted.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
        let values = |name: &'static str| {
            h.iter()
                .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        };
        t.client(ip(peer), values("forwarded"), values("x-forwarded-for"))
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_peers() {
        let xff = [("X-Forwarded-For", "1.2.3.4")];
        assert_eq!(client(&[], "10.0.0.9", &xff), ip("10.0.0.9"));
        assert_eq!(client(&["10.0.0.0/8"], "10.0.0.9", &xff), ip("1.2.3.4"));
        assert_eq!(client(&["10.0.0.0/8"], "11.0.0.9", &xff), ip("11.0.0.9"));
        // A client's own header, then the proxy's addition: the proxy's word counts.
        let spoof = [("X-Forwarded-For", "6.6.6.6, 1.2.3.4")];
        assert_eq!(client(&["10.0.0.0/8"], "10.0.0.9", &spoof), ip("1.2.3.4"));
        // Two trusted hops.
        let two = [("X-Forwarded-For", "6.6.6.6, 1.2.3.4, 10.0.0.7")];
        assert_eq!(client(&["10.0.0.0/8"], "10.0.0.9", &two), ip("1.2.3.4"));
        // Split over two header lines.
        let lines = [
            ("X-Forwarded-For", "1.2.3.4"),
            ("X-Forwarded-For", "10.0.0.7"),
        ];
        assert_eq!(client(&["10.0.0.0/8"], "10.0.0.9", &lines), ip("1.2.3.4"));
        // Not an address: the proxy that wrote it is the client as far as the node can tell.
        let junk = [("X-Forwarded-For", "1.2.3.4, garbage")];
        assert_eq!(client(&["10.0.0.0/8"], "10.0.0.9", &junk), ip("10.0.0.9"));
        // No header from a trusted peer: the peer.
        assert_eq!(client(&["10.0.0.0/8"], "10.0.0.9", &[]), ip("10.0.0.9"));
    }

    #[test]
    fn forwarded_is_read_before_x_forwarded_for() {
        let h = [
            (
                "Forwarded",
                r#"for=192.0.2.60;proto=https, for="[2001:db8::1]:4711""#,
            ),
            ("X-Forwarded-For", "9.9.9.9"),
        ];
        assert_eq!(client(&["10.0.0.0/8"], "10.0.0.9", &h), ip("2001:db8::1"));
        let h = [("Forwarded", "for=192.0.2.60:8080;by=10.0.0.9")];
        assert_eq!(client(&["10.0.0.0/8"], "10.0.0.9", &h), ip("192.0.2.60"));
        let h = [("Forwarded", "for=unknown")];
        assert_eq!(client(&["10.0.0.0/8"], "10.0.0.9", &h), ip("10.0.0.9"));
    }

    #[test]
    fn per_address_buckets() {
        let l = PerAddress::new(3);
        let t0 = Instant::now();
        let (a, b) = (ip("1.1.1.1"), ip("2.2.2.2"));
        assert!((0..3).all(|_| l.admit(a, t0)));
        assert!(!l.admit(a, t0));
        assert!(l.admit(b, t0));
        // 3 a minute: one more after 20 s.
        assert!(l.admit(a, t0 + std::time::Duration::from_secs(20)));
        assert!(!l.admit(a, t0 + std::time::Duration::from_secs(20)));
        assert!(PerAddress::new(0).admit(a, t0));
    }

    #[test]
    fn the_table_of_addresses_is_bounded() {
        let l = PerAddress::with_max(2, 2);
        let t0 = Instant::now();
        assert!(l.admit(ip("1.1.1.1"), t0));
        assert!(l.admit(ip("2.2.2.2"), t0));
        // Full, and neither bucket refilled yet: a third address is refused, not tracked.
        assert!(!l.admit(ip("3.3.3.3"), t0));
        assert_eq!(l.buckets.lock().unwrap().len(), 2);
        // Once the others refilled they are forgotten and make room.
        let later = t0 + std::time::Duration::from_secs(60);
        assert!(l.admit(ip("3.3.3.3"), later));
        assert_eq!(l.buckets.lock().unwrap().len(), 1);
    }
}
