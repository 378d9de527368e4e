//! The room's seats: joining, leaving, ready, inputs, chat, connections coming and going, seats
//! orphaned by a node that died, and full resyncs.

use std::time::Duration;

use ractor::ActorRef;
use serde_json::json;
use warren_protocol::{
    ErrorCode, JsonObject, NodeId, PlayerId, PlayerView, ServerMsg, encode, error_frame,
};

use super::{RoomMsg, RoomState, Seat, SeatRecord, route};
use crate::game::GameError;
use crate::inputs::QueuedInput;

impl RoomState {
    /// Seats a player, or gives a player who already holds a seat here its seat back (its session
    /// lost track of the room: it resumed on another node before the room came back there).
    pub(super) fn join(
        &mut self,
        player: PlayerId,
        name: String,
        home: NodeId,
    ) -> Result<(), GameError> {
        if let Some(i) = self.seat_of(&player) {
            if self.seats[i].rec.home != home {
                self.seats[i].rec.home = home;
                self.write_snapshot();
            }
            self.claimed(&player);
            self.set_connected(&player, true);
            return Ok(());
        }
        if self.seats.len() as u32 >= self.game.seats() {
            return Err(GameError::new(ErrorCode::RoomFull, "every seat is taken"));
        }
        let seat = (0..)
            .find(|i| self.seats.iter().all(|s| s.rec.seat != *i))
            .unwrap_or(0);
        let rec = SeatRecord {
            player: player.clone(),
            name: name.clone(),
            seat,
            connected: true,
            ready: false,
            home,
        };
        let at = self
            .seats
            .iter()
            .position(|s| s.rec.seat > seat)
            .unwrap_or(self.seats.len());
        self.seats.insert(
            at,
            Seat {
                rec,
                synced: false,
                doubted: false,
            },
        );
        self.refresh_views();
        let pre = vec![json!({"kind":"player_joined","player":player,"name":name,"seat":seat})];
        if let Err(e) = self.with_game_pre(pre, |g, env| g.on_join(env, &player)) {
            // Refused by the game: the seat was never taken.
            self.seats.remove(at);
            self.refresh_views();
            return Err(e);
        }
        self.write_snapshot();
        Ok(())
    }

    pub(super) fn leave(&mut self, player: &PlayerId) -> Result<(), ErrorCode> {
        let Some(i) = self.seat_of(player) else {
            return Err(ErrorCode::NotInRoom);
        };
        self.seats.remove(i);
        self.acks.remove(player);
        self.refresh_views();
        let pre = vec![json!({"kind":"player_left","player":player})];
        self.with_game_pre(pre, |g, env| (Ok(()), g.on_leave(env, player)))
            .ok();
        self.write_snapshot();
        Ok(())
    }

    pub(super) fn ready(&mut self, player: &PlayerId) -> Result<(), GameError> {
        let Some(i) = self.seat_of(player) else {
            return Err(GameError {
                code: ErrorCode::NotInRoom,
                message: "not in this room".into(),
            });
        };
        let was = self.seats[i].rec.ready;
        self.seats[i].rec.ready = true;
        self.refresh_views();
        let pre = vec![json!({"kind":"player_ready","player":player})];
        let r = self.with_game_pre(pre, |g, env| g.on_ready(env, player));
        if r.is_err() {
            self.seats[i].rec.ready = was;
            self.refresh_views();
        }
        r
    }

    pub(super) fn input(
        &mut self,
        player: &PlayerId,
        seq: Option<u64>,
        data: &JsonObject,
    ) -> Result<(), GameError> {
        if self.seat_of(player).is_none() {
            return Err(GameError {
                code: ErrorCode::NotInRoom,
                message: "not in this room".into(),
            });
        }
        // The one decode of the input, into the game's input type, on the node hosting the room.
        self.with_game(|g, env| g.on_input(env, player, seq, data.as_str()))?;
        if let Some(seq) = seq {
            // Found in place on every input but a player's first (no id copied per input).
            match self.acks.get_mut(player) {
                Some(ack) => *ack = (*ack).max(seq),
                None => {
                    self.acks.insert(player.clone(), seq);
                }
            }
        }
        Ok(())
    }

    /// Applies inputs that took the realtime path, in their order; errors go to their senders.
    pub(super) fn apply_queued(&mut self, queued: &mut Vec<QueuedInput>) {
        for q in queued.drain(..) {
            if let Err(e) = self.input(&q.player, q.seq, &q.data) {
                self.send_one(&q.player, error_frame(None, e.code, &e.message));
            }
        }
    }

    pub(super) fn chat(&mut self, player: &PlayerId, text: &str) {
        let Some(i) = self.seat_of(player) else {
            return;
        };
        let name = self.seats[i].rec.name.clone();
        let frame = encode(&ServerMsg::Chat {
            room: &self.id,
            player,
            name: &name,
            text,
        });
        self.broadcast(frame);
    }

    /// After a restart or an adoption: seats whose session was on a node that is not reachable
    /// any more are disconnected, and released after the reconnect grace unless their players
    /// resume on another node (their sessions, which would have done that, died with the node).
    pub(super) fn orphan_seats(&mut self, myself: &ActorRef<RoomMsg>) {
        let Some(peers) = self.env.peers().cloned() else {
            return;
        };
        let here = self.env.node.clone();
        self.orphan_seats_of(myself, true, |home| *home != here && !peers.reachable(home));
    }

    /// Disconnects the seats whose sessions lived on a node for which `lost` holds, and releases
    /// each after the reconnect grace unless its player comes back to a session anywhere.
    /// `quiet` while the room starts (an adoption): the revived state shows the seats, no event.
    pub(super) fn orphan_seats_of(
        &mut self,
        myself: &ActorRef<RoomMsg>,
        quiet: bool,
        lost: impl Fn(&NodeId) -> bool,
    ) {
        let grace = Duration::from_millis(self.env.settings.load().rooms.reconnect_grace_ms);
        let mut gone = Vec::new();
        for seat in &mut self.seats {
            let home = seat.rec.home.clone();
            if !lost(&home) {
                continue;
            }
            if seat.rec.connected && !quiet {
                gone.push(seat.rec.player.clone());
            } else {
                seat.rec.connected = false;
            }
            // Its release is the orphan grace's now.
            seat.doubted = false;
            seat.synced = false;
            let player = seat.rec.player.clone();
            drop(myself.send_after(grace, move || RoomMsg::OrphanGrace {
                player,
                home,
                called: false,
            }));
        }
        for player in gone {
            self.set_connected(&player, false);
        }
    }

    /// After an adoption: the seats whose sessions' nodes are reachable (those of unreachable
    /// nodes are orphaned) are doubted, and released after the reconnect grace unless a session
    /// claims them (`SessionState::seat_waiting` answers the call `CallOrphans` makes). The
    /// replica may predate what those sessions told the old host: a player who left, or a
    /// session whose grace ended, while the host was dying. A seat whose player plays on stays
    /// as it is meanwhile, connected and sent states.
    pub(super) fn doubt_seats(&mut self, myself: &ActorRef<RoomMsg>) {
        let grace = Duration::from_millis(self.env.settings.load().rooms.reconnect_grace_ms);
        let peers = self.env.peers().cloned();
        let here = self.env.node.clone();
        for seat in &mut self.seats {
            let home = &seat.rec.home;
            let reachable = *home == here || peers.as_ref().is_some_and(|p| p.reachable(home));
            if !reachable {
                continue;
            }
            seat.doubted = true;
            let player = seat.rec.player.clone();
            drop(myself.send_after(grace, move || RoomMsg::Unclaimed {
                player,
                called: false,
            }));
        }
    }

    /// A session claimed the player's seat: it holds the player (connected or within its own
    /// reconnect grace), so the seat is no longer doubted.
    pub(super) fn claimed(&mut self, player: &PlayerId) {
        if let Some(i) = self.seat_of(player) {
            self.seats[i].doubted = false;
        }
    }

    /// Starts the reconnect grace of the disconnected seats whose sessions were on a node for
    /// which `lost` holds: released after it unless their players come back.
    pub(super) fn orphan_disconnected_of(
        &mut self,
        myself: &ActorRef<RoomMsg>,
        lost: impl Fn(&NodeId) -> bool,
    ) {
        let grace = Duration::from_millis(self.env.settings.load().rooms.reconnect_grace_ms);
        for seat in &mut self.seats {
            if seat.rec.connected || !lost(&seat.rec.home) {
                continue;
            }
            let (player, home) = (seat.rec.player.clone(), seat.rec.home.clone());
            drop(myself.send_after(grace, move || RoomMsg::OrphanGrace {
                player,
                home,
                called: false,
            }));
        }
    }

    /// Tells the cluster that the seats of players whose sessions were lost with a node wait
    /// here: a player who already reconnected elsewhere gets its seat back at once. A player who
    /// reconnects later finds the seat when its new session asks the cluster for it. The
    /// sessions of doubted seats are asked to claim them the same way.
    pub(super) fn call_orphans(&self) {
        let Some(peers) = self.env.peers().cloned() else {
            return;
        };
        let called: Vec<PlayerId> = self
            .seats
            .iter()
            .filter(|s| {
                s.doubted
                    || (!s.rec.connected
                        && s.rec.home != self.env.node
                        && !peers.reachable(&s.rec.home))
            })
            .map(|s| s.rec.player.clone())
            .collect();
        self.call_players(called);
    }

    /// [`Self::call_orphans`] for the disconnected seats whose sessions were on a node for which
    /// `lost` holds.
    pub(super) fn call_orphans_where(&self, lost: impl Fn(&NodeId) -> bool) {
        let orphans: Vec<PlayerId> = self
            .seats
            .iter()
            .filter(|s| !s.rec.connected && s.rec.home != self.env.node && lost(&s.rec.home))
            .map(|s| s.rec.player.clone())
            .collect();
        self.call_players(orphans);
    }

    /// Tells the sessions of these players, here and on every reachable node, that their seats
    /// wait here: one without a seat takes it, one seated here and connected says it is (see
    /// `SessionState::seat_waiting`).
    pub(super) fn call_players(&self, orphans: Vec<PlayerId>) {
        let Some(peers) = self.env.peers() else {
            return;
        };
        if orphans.is_empty() {
            return;
        }
        let Some(epoch) = self.slot.epoch() else {
            return;
        };
        let at = crate::node::Location {
            node: self.env.node.clone(),
            epoch,
        };
        let note = crate::remote::SessionNote::SeatWaiting {
            room: self.id.clone(),
            at: at.clone(),
        };
        for p in &orphans {
            if let Some(route) = self.env.sessions.route(p) {
                let _ = route
                    .session()
                    .cast(crate::session::SessionMsg::Note(note.clone()));
            }
        }
        peers.seat_waiting(&self.id, &at, &orphans);
    }

    /// Calls for `player` once more ([`Self::call_players`]), and sends the room `then` after
    /// the reconnect grace: a seat kept in doubt has that long to be claimed.
    pub(super) fn call_again(
        &self,
        myself: &ActorRef<RoomMsg>,
        player: PlayerId,
        then: impl FnOnce() -> RoomMsg + Send + 'static,
    ) {
        self.call_players(vec![player]);
        let grace = Duration::from_millis(self.env.settings.load().rooms.reconnect_grace_ms);
        drop(myself.send_after(grace, then));
    }

    /// Releases a seat nobody claimed; true when it was the last, and the room stops.
    pub(super) fn release_unclaimed(
        &mut self,
        myself: &ActorRef<RoomMsg>,
        player: &PlayerId,
    ) -> bool {
        let _ = self.leave(player);
        if self.seats.is_empty() {
            myself.stop(Some("empty".into()));
            return true;
        }
        false
    }

    pub(super) fn set_connected(&mut self, player: &PlayerId, connected: bool) {
        let Some(i) = self.seat_of(player) else {
            return;
        };
        let seat = &mut self.seats[i];
        if seat.rec.connected == connected {
            return;
        }
        seat.rec.connected = connected;
        seat.synced = false;
        let kind = if connected {
            "player_reconnected"
        } else {
            "player_disconnected"
        };
        self.publish(&json!({"kind": kind, "player": player}));
        self.write_snapshot();
    }

    pub(super) fn resync(&mut self, player: &PlayerId) {
        let Some(i) = self.seat_of(player) else {
            return;
        };
        let players: Vec<PlayerView> = self
            .seats
            .iter()
            .map(|s| PlayerView {
                player: s.rec.player.clone(),
                name: s.rec.name.clone(),
                seat: s.rec.seat,
                connected: s.rec.connected,
                ready: s.rec.ready,
            })
            .collect();
        let state = self.view_of(player, &mut None);
        let frame = encode(&ServerMsg::RoomState {
            room: &self.id,
            game: &self.game_name,
            version: self.version,
            players: &players,
            state: &state,
            node: &self.env.node,
        });
        let rec = &self.seats[i].rec;
        // A remote player's frame is on its way; a local one only if the player is connected here.
        let sent = if rec.home == self.env.node {
            self.env.sessions.send(player, frame)
        } else {
            route(&self.env, std::iter::once((rec, frame)));
            true
        };
        if sent {
            self.seats[i].synced = true;
        }
    }
}
