//! The routing table of live connections: which connection, and which session, serves each
//! player here. Rooms deliver frames through it; it is read on every frame, so it is a table, not
//! an actor. Its writers are fixed by the types: the session host holds the one
//! [`SessionsWriter`], and gives each session a [`RouteSlot`] that writes only its own player's
//! route.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use ractor::ActorCell;
use warren_protocol::{CloseCode, Outbound, PlayerId};

use crate::conn::Conn;
use crate::util::{read, write};

/// A live connection and the session it serves.
#[derive(Clone)]
pub struct Route {
    /// Where frames go.
    pub conn: Conn,
    /// The session actor (typed by `Route::session`, beside the session actor).
    pub(crate) session_cell: ActorCell,
}

/// Live connections by player: the fan-out table rooms deliver through.
pub struct Sessions {
    routes: RwLock<HashMap<PlayerId, Route>>,
}

impl Sessions {
    /// An empty table, and the one handle that writes it (the session host's).
    pub fn new() -> (Arc<Self>, SessionsWriter) {
        let table = Arc::new(Self {
            routes: RwLock::default(),
        });
        (table.clone(), SessionsWriter { table })
    }

    fn remove(&self, player: &PlayerId, conn_id: u64) {
        let mut routes = write(&self.routes);
        if routes.get(player).is_some_and(|r| r.conn.id == conn_id) {
            routes.remove(player);
        }
    }

    /// Sends to one player; false if the player has no live connection here.
    pub fn send(&self, player: &PlayerId, msg: Outbound) -> bool {
        read(&self.routes)
            .get(player)
            .is_some_and(|r| r.conn.send(msg))
    }

    /// Sends to many players under one lock.
    pub fn send_each<'a>(&self, items: impl IntoIterator<Item = (&'a PlayerId, Outbound)>) {
        let routes = read(&self.routes);
        for (p, msg) in items {
            if let Some(r) = routes.get(p) {
                r.conn.send(msg);
            }
        }
    }

    /// The session serving a player, if connected.
    pub fn route(&self, player: &PlayerId) -> Option<Route> {
        read(&self.routes).get(player).cloned()
    }

    /// Live connections.
    pub fn len(&self) -> usize {
        read(&self.routes).len()
    }

    /// Whether there are no live connections.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes every live connection with `code`.
    pub fn close_all(&self, code: CloseCode) {
        for r in read(&self.routes).values() {
            r.conn.close(code);
        }
    }

    /// Closes every live connection with `code` once its session has answered the requests it
    /// received before (`SessionMsg::Close`): a request is never left in doubt to take effect
    /// after its player resumed elsewhere. A connection whose session is gone closes at once.
    pub fn close_all_answered(&self, code: CloseCode) {
        for r in read(&self.routes).values() {
            if r.session()
                .cast(crate::session::SessionMsg::Close(code))
                .is_err()
            {
                r.conn.close(code);
            }
        }
    }
}

/// The one handle that writes the table: the session host's.
pub struct SessionsWriter {
    table: Arc<Sessions>,
}

impl SessionsWriter {
    /// The handle a session writes its player's route with.
    pub(crate) fn slot(&self, player: &PlayerId) -> RouteSlot {
        RouteSlot {
            table: self.table.clone(),
            player: player.clone(),
        }
    }

    /// Removes the player's connection if it is still `conn_id` (its session failed).
    pub(crate) fn remove(&self, player: &PlayerId, conn_id: u64) {
        self.table.remove(player, conn_id);
    }
}

/// What one session writes of the table: its player's route.
pub struct RouteSlot {
    table: Arc<Sessions>,
    player: PlayerId,
}

impl RouteSlot {
    /// Installs (or replaces) the player's live connection.
    pub(crate) fn install(&self, route: Route) {
        write(&self.table.routes).insert(self.player.clone(), route);
    }

    /// Removes the player's connection if it is still `conn_id`.
    pub(crate) fn remove(&self, conn_id: u64) {
        self.table.remove(&self.player, conn_id);
    }
}
