//! A connection's message rate limit (PROTOCOL.md "Limits"): a token bucket, and how long the
//! client has been over it (4004 after `limits.rate_limit_close_ms`).

use std::time::{Duration, Instant};

use warren_actors::settings::Limits;
use warren_protocol::{DecodeError, ErrorCode, decode_client_frame};

/// Drops further apart than this end an episode of being over the limit.
const CALM_AFTER: Duration = Duration::from_secs(1);

/// Token bucket with a record of how long the client has been over it. An episode of being over
/// the limit lasts while drops keep coming less than [`CALM_AFTER`] apart; a client that floods
/// persistently still gets an occasional message through as tokens refill, and that must not
/// reset the episode.
pub(super) struct RateLimit {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
    over_since: Option<Instant>,
    last_drop: Option<Instant>,
    close_after: Duration,
}

pub(super) enum Admit {
    Yes,
    Drop,
    Close,
}

impl RateLimit {
    pub(super) fn new(l: &Limits) -> Self {
        let burst = f64::from(l.message_burst.max(1));
        Self {
            rate: f64::from(l.messages_per_sec),
            burst,
            tokens: burst,
            at: Instant::now(),
            over_since: None,
            last_drop: None,
            close_after: Duration::from_millis(l.rate_limit_close_ms),
        }
    }

    pub(super) fn admit(&mut self, now: Instant) -> Admit {
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
        if self
            .last_drop
            .is_some_and(|d| now.duration_since(d) > CALM_AFTER)
        {
            self.over_since = None;
            self.last_drop = None;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Admit::Yes;
        }
        self.last_drop = Some(now);
        let since = *self.over_since.get_or_insert(now);
        if now.duration_since(since) >= self.close_after {
            Admit::Close
        } else {
            Admit::Drop
        }
    }
}

/// The `rate_limited` error for a dropped frame, with its `rid` when one can be read.
pub(super) fn rate_limited(text: &str) -> DecodeError {
    let rid = match decode_client_frame(text) {
        Ok(r) => r.rid,
        Err(e) => e.rid,
    };
    DecodeError {
        rid,
        code: ErrorCode::RateLimited,
        message: "rate limit exceeded; message dropped".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rate: u32, burst: u32, close_ms: u64) -> Limits {
        Limits {
            max_frame_bytes: 65536,
            messages_per_sec: rate,
            message_burst: burst,
            rate_limit_close_ms: close_ms,
            max_outbound_queue: 16,
            max_connections: 1,
            heartbeat_ms: 1000,
        }
    }

    #[test]
    fn persistent_flooding_closes_even_as_tokens_trickle_in() {
        let mut r = RateLimit::new(&limits(10, 10, 5000));
        let t0 = Instant::now();
        let mut closed_at = None;
        // 100 messages a second for 10 s.
        for i in 0..1000u64 {
            let now = t0 + Duration::from_millis(i * 10);
            if let Admit::Close = r.admit(now) {
                closed_at = Some(i * 10);
                break;
            }
        }
        let at = closed_at.expect("closed");
        assert!((5000..6000).contains(&at), "closed at {at} ms");
    }

    #[test]
    fn a_burst_then_calm_never_closes() {
        let mut r = RateLimit::new(&limits(10, 10, 500));
        let t0 = Instant::now();
        for round in 0..5u64 {
            let start = t0 + Duration::from_secs(round * 3);
            for i in 0..30u64 {
                assert!(!matches!(
                    r.admit(start + Duration::from_millis(i)),
                    Admit::Close
                ));
            }
        }
    }
}
