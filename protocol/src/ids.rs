//! Newtype ids, so a room id is never passed where a player id belongs.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an already-validated string.
            pub fn new(s: impl Into<String>) -> Self {
                Self(s.into())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

string_id!(
    /// A player: the `sub` claim of its token.
    PlayerId
);
string_id!(
    /// A room, unique across the cluster.
    RoomId
);
string_id!(
    /// One WebSocket connection of a player.
    SessionId
);
string_id!(
    /// A Warren node: `node.id` in the config.
    NodeId
);
string_id!(
    /// A matchmaking ticket.
    TicketId
);
string_id!(
    /// A game's registered name (`dice`, `arena`, ...).
    GameName
);
