//! Warren client wire contract, v1.
//!
//! The types here are the one definition of what crosses the WebSocket between a game client and a
//! Warren node: ids, client requests (decoded once, at the edge, into validated values; encoded by
//! clients), server messages (encoded to JSON text by the server, read back by clients as
//! [`ServerMessage`]), and the error and close codes. Nothing here knows about actors,
//! sockets or the cluster, so the load tester and third-party tools can depend on it alone.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod client;
mod codes;
mod ids;
mod incoming;
mod json;
mod schema;
mod server;
pub mod text;

pub use client::{ClientRequest, DecodeError, Request, decode_client_frame};
pub use codes::{CloseCode, ErrorCode};
pub use ids::{GameName, NodeId, PlayerId, RoomId, SessionId, TicketId};
pub use incoming::{ServerMessage, Welcome};
pub use json::JsonObject;
pub use schema::SCHEMA_V1;
pub use server::{
    Outbound, PlayerView, RoomSummary, ServerMsg, encode, error_frame, ok_frame, state_frame,
};

/// The protocol version this crate implements.
pub const PROTOCOL_VERSION: u32 = 1;
