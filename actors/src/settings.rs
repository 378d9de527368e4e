//! The settings actors read at run time. The node's config module builds them from the file and
//! swaps in new limits and matchmaking settings on reload.

/// Per-connection limits (PROTOCOL.md "Limits").
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Largest accepted frame.
    pub max_frame_bytes: usize,
    /// Sustained message rate per connection.
    pub messages_per_sec: u32,
    /// Burst above the sustained rate.
    pub message_burst: u32,
    /// How long a connection may stay over the rate limit before close 4004.
    pub rate_limit_close_ms: u64,
    /// Outbound frames queued per connection before close 4003.
    pub max_outbound_queue: usize,
    /// Connections per node before upgrades get 503.
    pub max_connections: usize,
    /// Server ping interval; two silent intervals close with 4000.
    pub heartbeat_ms: u64,
}

/// Room behaviour.
#[derive(Clone, Debug, PartialEq)]
pub struct RoomSettings {
    /// How long a disconnected player keeps its seat.
    pub reconnect_grace_ms: u64,
    /// Snapshot interval of realtime rooms (turn-based rooms snapshot after every event).
    pub snapshot_interval_ms: u64,
    /// Restarts allowed within `restart_window_ms` before a crashing room is closed.
    pub max_restarts: u32,
    /// Window of the restart budget.
    pub restart_window_ms: u64,
    /// Rooms a node moves per second onto nodes below their share of the cluster's rooms
    /// (a node joined); 0 turns rebalancing off.
    pub rebalance_per_sec: u32,
    /// Realtime rooms' timers start on a node-wide grid of this step, so rooms tick together in a
    /// few slots per period (fewer wake-ups, a little more latency); 0 turns the grid off.
    pub tick_grid_ms: u64,
    /// How long a session resumed from a node that is gone looks for the player's seat while the
    /// cluster brings that node's rooms back: failure detection (`cluster.failure_timeout_ms`)
    /// plus [`SEAT_SEARCH_MARGIN_MS`] for the adoption itself.
    pub seat_search_ms: u64,
}

/// What the seat search adds to the failure timeout: the adopting node's next look at its
/// members (every 100 ms) and the revival of every room of the dead node it holds a replica of.
pub const SEAT_SEARCH_MARGIN_MS: u64 = 5000;

/// Matchmaking windows (PROTOCOL.md "Matchmaking").
#[derive(Clone, Debug, PartialEq)]
pub struct MatchSettings {
    /// Rating window of a new ticket.
    pub initial_window: u32,
    /// Widening per second of waiting.
    pub widen_per_sec: u32,
    /// Widest window.
    pub max_window: u32,
    /// How often pools look again at waiting tickets as their windows widen.
    pub sweep_interval_ms: u64,
    /// How long a pool stays empty before it is retired.
    pub pool_idle_ms: u64,
}

/// Everything actors read.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Connection limits.
    pub limits: Limits,
    /// Rooms.
    pub rooms: RoomSettings,
    /// Matchmaking.
    pub matchmaking: MatchSettings,
}

/// Settings for unit tests, built without a configuration file.
#[cfg(test)]
pub(crate) fn for_tests() -> Settings {
    Settings {
        limits: Limits {
            max_frame_bytes: 65_536,
            messages_per_sec: 100,
            message_burst: 100,
            rate_limit_close_ms: 1000,
            max_outbound_queue: 1024,
            max_connections: 100,
            heartbeat_ms: 15_000,
        },
        rooms: RoomSettings {
            reconnect_grace_ms: 30_000,
            snapshot_interval_ms: 1000,
            max_restarts: 3,
            restart_window_ms: 60_000,
            rebalance_per_sec: 0,
            tick_grid_ms: 0,
            seat_search_ms: 7000,
        },
        matchmaking: MatchSettings {
            initial_window: 100,
            widen_per_sec: 50,
            max_window: 1000,
            sweep_interval_ms: 250,
            pool_idle_ms: 60_000,
        },
    }
}
