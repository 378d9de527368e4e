//! The `Game` trait: a plain, synchronous state machine that a `Room` drives.
//!
//! A game sees joins, leaves, ready flags, inputs, ticks and its own deadline, and answers with
//! events (broadcast as `room_event`) and, for realtime games, one `state` per tick. Its state is
//! serializable with a schema version so a room can be restarted, moved or adopted from a snapshot.
//! Studios add a game by implementing [`Game`] and registering a [`GameSpec`] by name.

pub mod arena;
pub mod dice;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use serde_json::{Map, Value};
use warren_protocol::{ErrorCode, GameName, PlayerId};

/// A seat as the game sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeatView {
    /// The seated player.
    pub player: PlayerId,
    /// Seat index.
    pub seat: u32,
    /// Whether the player sent `ready` since the flags were last cleared.
    pub ready: bool,
}

/// What a game call may read and produce besides changing its own state.
pub struct GameCtx<'a> {
    /// Wall-clock now, in milliseconds since the Unix epoch (deadlines survive moves between nodes).
    pub now_ms: u64,
    /// Seated players in seat order.
    pub seats: &'a [SeatView],
    /// Randomness for the game.
    pub rng: &'a mut dyn RngCore,
    pub(crate) events: Vec<Value>,
    pub(crate) clear_ready: bool,
}

impl<'a> GameCtx<'a> {
    /// A context for driving a game outside a room (tests, tools).
    pub fn new(now_ms: u64, seats: &'a [SeatView], rng: &'a mut dyn RngCore) -> Self {
        Self {
            now_ms,
            seats,
            rng,
            events: Vec::new(),
            clear_ready: false,
        }
    }

    /// Emits a room event; `event` must be an object with a `kind`.
    pub fn emit(&mut self, event: Value) {
        self.events.push(event);
    }

    /// Asks the room to clear every seat's ready flag (end of a round).
    pub fn clear_ready(&mut self) {
        self.clear_ready = true;
    }

    /// Events emitted so far.
    pub fn events(&self) -> &[Value] {
        &self.events
    }
}

/// A refused game request, mapped to an `error` for the client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct GameError {
    /// `invalid_state`, `invalid_input` or `not_your_turn`.
    pub code: ErrorCode,
    /// Human-readable detail.
    pub message: String,
}

impl GameError {
    /// `invalid_input` with a message.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::InvalidInput,
            message: message.into(),
        }
    }
    /// `invalid_state` with a message.
    pub fn invalid_state(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::InvalidState,
            message: message.into(),
        }
    }
    /// `not_your_turn`.
    pub fn not_your_turn() -> Self {
        Self {
            code: ErrorCode::NotYourTurn,
            message: "it is not your turn".into(),
        }
    }
}

/// One realtime tick's output: the state shared by all, and each player's acknowledged `seq`.
#[derive(Clone, Debug, PartialEq)]
pub struct TickOutput {
    /// The shared `state` object, encoded once.
    pub state_json: String,
    /// Highest applied input `seq` per player.
    pub acks: HashMap<PlayerId, u64>,
}

/// A game's rules. Implementations are synchronous and deterministic given the ctx's rng.
pub trait Game: Send + 'static {
    /// Seats in this room.
    fn seats(&self) -> u32;
    /// Interval of realtime ticks; `None` for turn-based games.
    fn tick_interval(&self) -> Option<Duration> {
        None
    }
    /// A player took a seat.
    fn on_join(&mut self, _ctx: &mut GameCtx<'_>, _player: &PlayerId) {}
    /// A player left or was removed.
    fn on_leave(&mut self, _ctx: &mut GameCtx<'_>, _player: &PlayerId) {}
    /// A player sent `ready`; `ctx.seats` already shows the flag set.
    fn on_ready(&mut self, _ctx: &mut GameCtx<'_>, _player: &PlayerId) -> Result<(), GameError> {
        Err(GameError::invalid_state("this game has no ready phase"))
    }
    /// A player sent `input`.
    fn on_input(
        &mut self,
        ctx: &mut GameCtx<'_>,
        player: &PlayerId,
        seq: Option<u64>,
        data: &Map<String, Value>,
    ) -> Result<(), GameError>;
    /// One realtime tick.
    fn on_tick(&mut self, _ctx: &mut GameCtx<'_>) -> Option<TickOutput> {
        None
    }
    /// The game's deadline (Unix ms) passed.
    fn on_deadline(&mut self, _ctx: &mut GameCtx<'_>) {}
    /// When the game next wants `on_deadline`, in Unix ms.
    fn deadline_ms(&self) -> Option<u64> {
        None
    }
    /// The state object of `room_state`.
    fn state_json(&self) -> Value;
    /// The serialized state (postcard), read back by the spec's `restore`.
    fn snapshot(&self) -> Result<Vec<u8>, postcard::Error>;
}

type CreateFn = fn(&Map<String, Value>) -> Result<Box<dyn Game>, ParamsError>;
type RestoreFn = fn(u32, &[u8]) -> Result<Box<dyn Game>, RestoreError>;

/// A game refused the params of `create_room`: the `invalid_params` message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParamsError(pub String);

impl From<String> for ParamsError {
    fn from(message: String) -> Self {
        Self(message)
    }
}

/// Why a game could not be revived from a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// The snapshot's game is not registered on this node.
    #[error("game `{0}` is not registered here")]
    UnknownGame(GameName),
    /// The game cannot read this version of its state.
    #[error("state version {0} is not one this build of the game reads")]
    UnsupportedVersion(u32),
    /// The state did not decode.
    #[error("state unreadable: {0}")]
    Corrupt(String),
}

/// How to make and revive one game.
#[derive(Clone, Copy)]
pub struct GameSpec {
    /// Registered name.
    pub name: &'static str,
    /// Seats of a matchmade room.
    pub default_seats: u32,
    /// Schema version written into snapshots.
    pub state_version: u32,
    /// A new game from `create_room` params; `Err` is the `invalid_params` message.
    pub create: CreateFn,
    /// A game from a snapshot of the given schema version.
    pub restore: RestoreFn,
}

/// Games by name.
#[derive(Clone, Default)]
pub struct GameRegistry {
    specs: HashMap<String, GameSpec>,
}

impl GameRegistry {
    /// The built-in games: `dice` and `arena`.
    pub fn builtin() -> Self {
        let mut r = Self::default();
        r.register(dice::SPEC);
        r.register(arena::SPEC);
        r
    }

    /// Adds or replaces a game.
    pub fn register(&mut self, spec: GameSpec) {
        self.specs.insert(spec.name.to_owned(), spec);
    }

    /// The spec of a game.
    pub fn get(&self, name: &GameName) -> Option<&GameSpec> {
        self.specs.get(name.as_str())
    }

    /// Registered names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.specs.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }
}

/// Shared handle to the registry.
pub type Games = Arc<GameRegistry>;

/// `GameSpec::restore` for games whose whole state is one postcard-serialized value.
pub fn restore_postcard<G: Game + serde::de::DeserializeOwned>(
    _version: u32,
    bytes: &[u8],
) -> Result<Box<dyn Game>, RestoreError> {
    postcard::from_bytes::<G>(bytes)
        .map(|g| Box::new(g) as Box<dyn Game>)
        .map_err(|e| RestoreError::Corrupt(e.to_string()))
}

/// Reads an integer param in `[min, max]`, or the default when absent.
pub fn int_param(
    params: &Map<String, Value>,
    key: &str,
    min: u64,
    max: u64,
    default: u64,
) -> Result<u64, ParamsError> {
    match params.get(key) {
        None => Ok(default),
        Some(v) => match v.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ParamsError(format!(
                "`{key}` must be an integer from {min} to {max}"
            ))),
        },
    }
}

/// Refuses params other than `allowed`.
pub fn known_params(params: &Map<String, Value>, allowed: &[&str]) -> Result<(), ParamsError> {
    match params.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ParamsError(format!(
            "unknown param `{k}` (allowed: {})",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}
