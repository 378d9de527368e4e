//! A room's snapshot: what brings it back after a crash, on its backup after its node died, and
//! on another node after a move. Its layout crosses builds (see [`SNAPSHOT_FORMAT`]).

use serde::{Deserialize, Serialize};
use warren_protocol::{GameName, NodeId, PlayerId, RoomId};

/// Version of [`RoomSnapshot`]'s layout.
///
/// Snapshots cross between nodes of two builds during a rolling upgrade, in both directions, and
/// postcard is not self-describing, so the layout only ever grows by appending: the format-1 fields
/// come first, unchanged, and each later format adds a tail after them. A reader ignores a tail it
/// does not know (postcard stops after the fields it expects) and defaults a tail that is missing.
/// - 1: the base fields.
/// - 2: tail [`SnapshotTail2`]: when the snapshot was taken.
/// - 3: tail [`SnapshotTail3`]: the input `seq` acknowledged to each player.
pub const SNAPSHOT_FORMAT: u32 = 3;

/// What format 2 appends to a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotTail2 {
    /// When the snapshot was taken (ms since the Unix epoch): an adopting node reports how old the
    /// state it revived was, which is what its players lost. 0 when unknown (a format-1 snapshot).
    pub saved_ms: u64,
}

/// What format 3 appends to a snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotTail3 {
    /// The highest input `seq` acknowledged to each player (`state`'s `ack`), so acks never go
    /// back when the room restarts or moves. Empty when unknown (an older snapshot).
    pub acks: Vec<(PlayerId, u64)>,
}

/// A seat, as kept in snapshots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeatRecord {
    /// The player.
    pub player: PlayerId,
    /// Display name.
    pub name: String,
    /// Seat index.
    pub seat: u32,
    /// Live connection.
    pub connected: bool,
    /// Sent `ready`.
    pub ready: bool,
    /// Node of the player's session: where its frames go.
    pub home: NodeId,
}

/// Everything needed to bring a room back: on restart, and later on another node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoomSnapshot {
    /// [`SNAPSHOT_FORMAT`].
    pub format: u32,
    /// The room.
    pub room: RoomId,
    /// Its game.
    pub game: GameName,
    /// Hidden from listings.
    pub private: bool,
    /// Version of the last event.
    pub version: u64,
    /// Last realtime tick.
    pub tick: u64,
    /// Seats.
    pub seats: Vec<SeatRecord>,
    /// The game's schema version.
    pub game_version: u32,
    /// The game's own snapshot.
    pub game_state: Vec<u8>,
    /// Format 2's tail (not part of the format-1 layout; see [`SNAPSHOT_FORMAT`]).
    #[serde(skip)]
    pub tail2: SnapshotTail2,
    /// Format 3's tail.
    #[serde(skip)]
    pub tail3: SnapshotTail3,
}

/// The leading fields of every format, up to the game's state version: what a node reads to know
/// whether it could restore a snapshot, without copying the game's state.
#[derive(Deserialize)]
struct SnapshotHead {
    _format: u32,
    _room: RoomId,
    game: GameName,
    _private: bool,
    _version: u64,
    _tick: u64,
    _seats: Vec<SeatRecord>,
    game_version: u32,
}

impl RoomSnapshot {
    /// The game and its state version of snapshot `bytes`.
    pub fn game_of(bytes: &[u8]) -> Result<(GameName, u32), postcard::Error> {
        let (head, _) = postcard::take_from_bytes::<SnapshotHead>(bytes)?;
        Ok((head.game, head.game_version))
    }

    /// The snapshot's bytes: the format-1 layout, then the tails.
    pub fn encode(&self) -> Result<Vec<u8>, postcard::Error> {
        let base = postcard::to_stdvec(self)?;
        let with2 = postcard::to_extend(&self.tail2, base)?;
        postcard::to_extend(&self.tail3, with2)
    }

    /// Reads a snapshot of any format: the tails it lacks get their defaults, tails of formats
    /// newer than this build are ignored.
    pub fn decode(bytes: &[u8]) -> Result<Self, postcard::Error> {
        let (mut snap, rest) = postcard::take_from_bytes::<RoomSnapshot>(bytes)?;
        if snap.format >= 2 && !rest.is_empty() {
            let (tail2, rest) = postcard::take_from_bytes(rest)?;
            snap.tail2 = tail2;
            if snap.format >= 3 && !rest.is_empty() {
                snap.tail3 = postcard::take_from_bytes(rest)?.0;
            }
        }
        Ok(snap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    /// The snapshot exactly as the previous build (format 1) wrote and read it.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct SnapshotV1 {
        format: u32,
        room: RoomId,
        game: GameName,
        private: bool,
        version: u64,
        tick: u64,
        seats: Vec<SeatRecord>,
        game_version: u32,
        game_state: Vec<u8>,
    }

    fn seats() -> Vec<SeatRecord> {
        vec![SeatRecord {
            player: "p1".into(),
            name: "Ann".into(),
            seat: 0,
            connected: true,
            ready: false,
            home: "n2".into(),
        }]
    }

    #[test]
    fn snapshots_cross_between_the_previous_format_and_this_one_both_ways() {
        // Previous build → this one: the tail it did not write gets its default.
        let old = SnapshotV1 {
            format: 1,
            room: "n1.rold".into(),
            game: "dice".into(),
            private: true,
            version: 41,
            tick: 7,
            seats: seats(),
            game_version: 1,
            game_state: vec![1, 2, 3],
        };
        let bytes = postcard::to_stdvec(&old).unwrap();
        let read = RoomSnapshot::decode(&bytes).unwrap();
        assert_eq!(
            (read.format, &read.room, read.version, read.tick),
            (1, &old.room, 41, 7)
        );
        assert_eq!(read.seats, old.seats);
        assert_eq!(read.game_state, old.game_state);
        assert_eq!(read.tail2, SnapshotTail2::default());
        assert_eq!(read.tail3, SnapshotTail3::default());

        // This build → the previous one: it reads the fields it knows and ignores the tail.
        let new = RoomSnapshot {
            format: SNAPSHOT_FORMAT,
            room: "n2.rnew".into(),
            game: "arena".into(),
            private: false,
            version: 9,
            tick: 1234,
            seats: seats(),
            game_version: 1,
            game_state: vec![9; 40],
            tail2: SnapshotTail2 {
                saved_ms: 1_790_000_000_000,
            },
            tail3: SnapshotTail3 {
                acks: vec![("p1".into(), 77)],
            },
        };
        let bytes = new.encode().unwrap();
        let back: SnapshotV1 = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(
            (back.room, back.version, back.tick, back.game_state),
            (new.room.clone(), 9, 1234, new.game_state.clone())
        );
        // And this build reads its own, tail included.
        assert_eq!(RoomSnapshot::decode(&bytes).unwrap(), new);
        // A format-2 snapshot (the build before): no acks, the time kept.
        let mut two = new.clone();
        two.format = 2;
        let two_bytes =
            postcard::to_extend(&two.tail2, postcard::to_stdvec(&two).unwrap()).unwrap();
        let read = RoomSnapshot::decode(&two_bytes).unwrap();
        assert_eq!(read.tail2, new.tail2);
        assert_eq!(read.tail3, SnapshotTail3::default());
        // A snapshot of a later build, with a tail this one does not know, still reads.
        let mut later = bytes.clone();
        later.extend_from_slice(&[0xAA, 0x01, 0x02]);
        assert_eq!(RoomSnapshot::decode(&later).unwrap(), new);
        // Garbage is an error, not a room.
        assert!(RoomSnapshot::decode(&[0xff; 3]).is_err());
    }
}
