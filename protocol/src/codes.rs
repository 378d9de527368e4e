//! Error codes carried by `error` messages and WebSocket close codes (PROTOCOL.md tables).

use serde::{Deserialize, Serialize};

/// The `code` of an `error` message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, no `type`, or missing or wrongly typed fields.
    BadRequest,
    /// A `type` the server does not know.
    UnknownType,
    /// `create_room` or `queue` named a game that is not registered.
    UnknownGame,
    /// `create_room` params out of range or unknown.
    InvalidParams,
    /// The player already holds a seat.
    AlreadyInRoom,
    /// The node is draining and takes no new rooms.
    ServerDraining,
    /// No such room.
    NotFound,
    /// Every seat is taken.
    RoomFull,
    /// The request needs a seat and the player has none.
    NotInRoom,
    /// The game is not in a phase that allows this.
    InvalidState,
    /// `input` data the game does not accept.
    InvalidInput,
    /// Turn-based input from a player whose turn it is not.
    NotYourTurn,
    /// The player already has a ticket.
    AlreadyQueued,
    /// `unqueue` without a ticket.
    NotQueued,
    /// Over the message rate limit; the message was dropped.
    RateLimited,
    /// The server failed; the request may or may not have taken effect.
    Internal,
}

impl ErrorCode {
    /// Every error code.
    pub const ALL: [ErrorCode; 16] = [
        Self::BadRequest,
        Self::UnknownType,
        Self::UnknownGame,
        Self::InvalidParams,
        Self::AlreadyInRoom,
        Self::ServerDraining,
        Self::NotFound,
        Self::RoomFull,
        Self::NotInRoom,
        Self::InvalidState,
        Self::InvalidInput,
        Self::NotYourTurn,
        Self::AlreadyQueued,
        Self::NotQueued,
        Self::RateLimited,
        Self::Internal,
    ];

    /// The wire name of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::UnknownType => "unknown_type",
            Self::UnknownGame => "unknown_game",
            Self::InvalidParams => "invalid_params",
            Self::AlreadyInRoom => "already_in_room",
            Self::ServerDraining => "server_draining",
            Self::NotFound => "not_found",
            Self::RoomFull => "room_full",
            Self::NotInRoom => "not_in_room",
            Self::InvalidState => "invalid_state",
            Self::InvalidInput => "invalid_input",
            Self::NotYourTurn => "not_your_turn",
            Self::AlreadyQueued => "already_queued",
            Self::NotQueued => "not_queued",
            Self::RateLimited => "rate_limited",
            Self::Internal => "internal",
        }
    }
}

/// WebSocket close codes Warren sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum CloseCode {
    /// Normal closure.
    Normal = 1000,
    /// The client broke the WebSocket protocol (bad masking, bad UTF-8 in a text frame, ...).
    ProtocolError = 1002,
    /// The client sent a binary frame.
    Binary = 1003,
    /// The client sent a frame over `limits.max_frame_bytes`.
    TooLarge = 1009,
    /// The server failed.
    Internal = 1011,
    /// No frame and no pong for two heartbeat intervals.
    HeartbeatTimeout = 4000,
    /// The node is draining.
    Draining = 4001,
    /// A newer connection of the same player took over.
    Replaced = 4002,
    /// The outbound queue overflowed.
    TooSlow = 4003,
    /// Over the rate limit for too long.
    RateLimited = 4004,
}

impl CloseCode {
    /// Every close code the server sends.
    pub const ALL: [CloseCode; 10] = [
        Self::Normal,
        Self::ProtocolError,
        Self::Binary,
        Self::TooLarge,
        Self::Internal,
        Self::HeartbeatTimeout,
        Self::Draining,
        Self::Replaced,
        Self::TooSlow,
        Self::RateLimited,
    ];

    /// The close code with this number, if the server sends it.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// The numeric code.
    pub fn code(self) -> u16 {
        self as u16
    }

    /// A short human-readable reason sent with the close frame.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::ProtocolError => "protocol error",
            Self::Binary => "binary frames are not supported",
            Self::TooLarge => "frame too large",
            Self::Internal => "internal error",
            Self::HeartbeatTimeout => "heartbeat timeout",
            Self::Draining => "node draining",
            Self::Replaced => "replaced by a newer connection",
            Self::TooSlow => "outbound queue full",
            Self::RateLimited => "rate limit exceeded",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_close_code_of_the_contract_round_trips() {
        let contract = [1000, 1002, 1003, 1009, 1011, 4000, 4001, 4002, 4003, 4004];
        for code in contract {
            let c = CloseCode::from_code(code).unwrap_or_else(|| panic!("{code} missing"));
            assert_eq!(c.code(), code);
            assert!(!c.reason().is_empty());
        }
        assert_eq!(CloseCode::ALL.len(), contract.len());
        assert_eq!(CloseCode::from_code(1001), None);
    }
}
