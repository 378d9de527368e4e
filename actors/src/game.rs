//! The game API: a game is a plain, synchronous state machine of the studio's own serde types, and
//! Warren runs each room of it as an actor.
//!
//! A game sees joins (which it may refuse), leaves, ready flags, inputs decoded into its own input
//! type, realtime ticks and its own deadline. It answers with events of its own event type:
//! to every player ([`GameCtx::emit`]), in a form of its own for each player
//! ([`GameCtx::emit_each`], hidden information), or to one player only ([`GameCtx::send_to`]).
//! Players see its state through [`Game::view`] and, when they must not all see the same,
//! [`Game::view_for`]. Warren keeps the state itself (the game value) in snapshots with a codec of
//! its choosing, so a room restarts, moves to another node or comes back after its node died with
//! the state it had; a new build of the game reads the snapshots of every older state layout it
//! declares ([`Game::upgrades`]).
//!
//! A complete game:
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use warren_actors::game::{Game, GameCtx, GameError, GameRegistry, GameSpec, ParamsError};
//! use warren_protocol::PlayerId;
//!
//! /// Players take turns adding 1–3 to a counter; whoever reaches `target` wins.
//! #[derive(Serialize, Deserialize)]
//! struct Race {
//!     target: u32,
//!     count: u32,
//!     turn: usize,
//! }
//!
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Params {
//!     #[serde(default = "default_target")]
//!     target: u32,
//! }
//! fn default_target() -> u32 {
//!     21
//! }
//!
//! /// What players send: `{"add": n}`.
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Add {
//!     add: u32,
//! }
//!
//! /// What players see happen: `{"kind":"added",…}` and `{"kind":"won",…}`.
//! #[derive(Serialize)]
//! #[serde(tag = "kind", rename_all = "snake_case")]
//! enum Event {
//!     Added { player: PlayerId, count: u32 },
//!     Won { player: PlayerId },
//! }
//!
//! #[derive(Serialize)]
//! struct View {
//!     count: u32,
//!     target: u32,
//! }
//!
//! impl Game for Race {
//!     type Params = Params;
//!     type Input = Add;
//!     type Event = Event;
//!     const NAME: &'static str = "race";
//!     const DEFAULT_SEATS: u32 = 2;
//!
//!     fn create(p: Params) -> Result<Self, ParamsError> {
//!         if !(5..=100).contains(&p.target) {
//!             return Err(ParamsError::new("`target` must be from 5 to 100"));
//!         }
//!         Ok(Race { target: p.target, count: 0, turn: 0 })
//!     }
//!     fn seats(&self) -> u32 {
//!         2
//!     }
//!     fn on_input(
//!         &mut self,
//!         ctx: &mut GameCtx<'_, Event>,
//!         player: &PlayerId,
//!         input: Add,
//!         _seq: Option<u64>,
//!     ) -> Result<(), GameError> {
//!         if ctx.seats.len() < 2 || self.count >= self.target {
//!             return Err(GameError::invalid_state("not playing"));
//!         }
//!         if ctx.seats[self.turn % 2].player != *player {
//!             return Err(GameError::not_your_turn());
//!         }
//!         if !(1..=3).contains(&input.add) {
//!             return Err(GameError::invalid_input("add 1, 2 or 3"));
//!         }
//!         self.count = (self.count + input.add).min(self.target);
//!         self.turn += 1;
//!         ctx.emit(Event::Added { player: player.clone(), count: self.count });
//!         if self.count == self.target {
//!             ctx.emit(Event::Won { player: player.clone() });
//!         }
//!         Ok(())
//!     }
//!     fn view(&self) -> impl Serialize + '_ {
//!         View { count: self.count, target: self.target }
//!     }
//! }
//!
//! let mut games = GameRegistry::builtin();
//! games.register(GameSpec::of::<Race>());
//! assert_eq!(games.names(), ["arena", "dice", "race"]);
//! ```

pub mod arena;
pub mod dice;
pub(crate) mod erased;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use serde::Serialize;
use serde::de::DeserializeOwned;
use warren_protocol::{ErrorCode, GameName, PlayerId};

pub(crate) use erased::{AnyGame, Effects, Env, Out};

/// A game's rules and state. Warren calls it from one room actor at a time, never concurrently.
///
/// The value itself is the state: Warren snapshots it (after every change of a turn-based game, on
/// `rooms.snapshot_interval_ms` for a realtime one) with a compact binary codec, which does not
/// describe itself. So the state's serde layout must not depend on the data:
/// no `#[serde(skip_serializing_if)]`, `flatten`, untagged or internally tagged enums, or
/// `serde_json::Value` in it. A room checks that a new game's state reads back before it opens,
/// and refuses to open otherwise, so such a mistake shows on the first `create_room`.
/// Change the layout only together with [`Game::STATE_VERSION`] and an [`Upgrades`] step.
pub trait Game: Serialize + DeserializeOwned + Send + 'static {
    /// `create_room`'s `params`, decoded from the JSON object the client sent (`{}` when it sent
    /// none). A decoding error is the `invalid_params` message.
    type Params: DeserializeOwned;
    /// An `input`'s `data`, decoded from the JSON object the client sent, once, on the node that
    /// hosts the room. A decoding error answers `invalid_input` with the decoder's message.
    type Input: DeserializeOwned;
    /// What the game tells players happened: `room_event`'s `event` (and `room_message`'s
    /// `message`). It must serialize to a JSON object with a string `kind`, which
    /// `#[serde(tag = "kind")]` on an enum gives.
    type Event: Serialize;

    /// The name clients create and queue for.
    const NAME: &'static str;
    /// Seats of a room that matchmaking fills.
    const DEFAULT_SEATS: u32;
    /// The version of the state's layout, written into every snapshot. Raise it when the layout
    /// changes, and declare how to read the older ones in [`Game::upgrades`].
    const STATE_VERSION: u32 = 1;

    /// A new game from `create_room`'s params; `Err` answers `invalid_params` with its message.
    fn create(params: Self::Params) -> Result<Self, ParamsError>;

    /// Seats in this room.
    fn seats(&self) -> u32;

    /// Interval of realtime ticks; `None` (the default) for a turn-based game. Ticks run while at
    /// least one of the room's players is connected, and pause while none is (every player
    /// dropped, their seats kept for the reconnect grace): measure game time in ticks, or read
    /// `ctx.now_ms`, knowing that the clock may have moved on by more than one interval.
    fn tick_interval(&self) -> Option<Duration> {
        None
    }

    /// A player is taking a seat; `ctx.seats` already shows it. `Err` refuses the join: the player
    /// gets the error (for example [`GameError::new`] with [`ErrorCode::RoomFull`], or
    /// [`GameError::invalid_state`] once the game has started) and nothing else happens, so a
    /// refusal must leave the game as it was. Players seated when the room is created (its
    /// creator, or a matched group) join too; a refusal then fails the `create_room` or the match.
    fn on_join(
        &mut self,
        _ctx: &mut GameCtx<'_, Self::Event>,
        _player: &PlayerId,
    ) -> Result<(), GameError> {
        Ok(())
    }

    /// A player left or was removed (`leave_room`, or the reconnect grace ran out).
    fn on_leave(&mut self, _ctx: &mut GameCtx<'_, Self::Event>, _player: &PlayerId) {}

    /// A player sent `ready`; `ctx.seats` already shows its flag set. `Err` answers the request
    /// and clears the flag again. The default refuses: the game has no ready phase.
    fn on_ready(
        &mut self,
        _ctx: &mut GameCtx<'_, Self::Event>,
        _player: &PlayerId,
    ) -> Result<(), GameError> {
        Err(GameError::invalid_state("this game has no ready phase"))
    }

    /// A player sent `input`. `seq` is the client's sequence number, if it sent one: Warren
    /// acknowledges the highest `seq` of the inputs this accepted in the player's next `state`
    /// (`ack`). `Err` answers the request and must leave the game as it was.
    fn on_input(
        &mut self,
        ctx: &mut GameCtx<'_, Self::Event>,
        player: &PlayerId,
        input: Self::Input,
        seq: Option<u64>,
    ) -> Result<(), GameError>;

    /// One realtime tick; after it every player gets `state` with its view.
    fn on_tick(&mut self, _ctx: &mut GameCtx<'_, Self::Event>) {}

    /// The game's deadline ([`Game::deadline_ms`]) passed.
    fn on_deadline(&mut self, _ctx: &mut GameCtx<'_, Self::Event>) {}

    /// When the game next wants [`Game::on_deadline`], in ms since the Unix epoch (wall clock, so
    /// a deadline holds when the room moves to another node). Read after every call.
    fn deadline_ms(&self) -> Option<u64> {
        None
    }

    /// The state every player sees: `room_state`'s and each tick's `state`. Must serialize to a
    /// JSON object.
    fn view(&self) -> impl Serialize + '_;

    /// What `player` sees instead of [`Game::view`], for a game with hidden information (a hand of
    /// cards, fog of war); `None` (the default) when it sees the common view. No player ever gets
    /// another player's private view.
    fn view_for(&self, _player: &PlayerId) -> Option<impl Serialize + '_> {
        None::<()>
    }

    /// How to read snapshots of older state layouts, when a new build of the game changed it.
    /// The default reads none: only [`Game::STATE_VERSION`].
    fn upgrades() -> Upgrades<Self> {
        Upgrades::new()
    }
}

/// The event type of a game that emits none of its own ([`Game::Event`]): it has no values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum NoEvent {}

/// What a game call may read, and what it answers with besides changing its own state.
pub struct GameCtx<'a, E> {
    /// Wall-clock now, in milliseconds since the Unix epoch.
    pub now_ms: u64,
    /// Seated players in seat order.
    pub seats: &'a [SeatView],
    /// Randomness for the game.
    pub rng: &'a mut dyn RngCore,
    out: Vec<Emit<E>>,
    clear_ready: bool,
}

/// One thing a game call emitted, in the order emitted.
#[derive(Clone, Debug, PartialEq)]
pub enum Emit<E> {
    /// A `room_event` for every player.
    All(E),
    /// One `room_event`, in each player's own form: every listed player gets its own, all at the
    /// same `version`.
    Each(Vec<(PlayerId, E)>),
    /// A `room_message` for one player only.
    To(PlayerId, E),
}

impl<'a, E> GameCtx<'a, E> {
    /// A context for driving a game outside a room: a game's own tests, tools.
    pub fn new(now_ms: u64, seats: &'a [SeatView], rng: &'a mut dyn RngCore) -> Self {
        Self {
            now_ms,
            seats,
            rng,
            out: Vec::new(),
            clear_ready: false,
        }
    }

    /// Tells every player that `event` happened (`room_event`; the room's `version` goes up by
    /// one).
    pub fn emit(&mut self, event: E) {
        self.out.push(Emit::All(event));
    }

    /// Tells every seated player that something happened, each in its own form: `form(player)`
    /// is what `player` gets. One `room_event`, at one `version`, for all. This is how a game
    /// with hidden information says "Ann drew a card" to all and "you drew the 7♥" to Ann.
    pub fn emit_each(&mut self, mut form: impl FnMut(&PlayerId) -> E) {
        let each = self
            .seats
            .iter()
            .map(|s| (s.player.clone(), form(&s.player)))
            .collect();
        self.out.push(Emit::Each(each));
    }

    /// Sends `message` to one seated player only, as `room_message`. It is not a `room_event`:
    /// the room's `version` does not change, and a player who is not connected at that moment
    /// does not get it later. Anything a player must not miss belongs in its view.
    pub fn send_to(&mut self, player: &PlayerId, message: E) {
        self.out.push(Emit::To(player.clone(), message));
    }

    /// Clears every seat's ready flag (the end of a round).
    pub fn clear_ready(&mut self) {
        self.clear_ready = true;
    }

    /// What was emitted so far, in order.
    pub fn emitted(&self) -> &[Emit<E>] {
        &self.out
    }

    /// Takes what was emitted so far, leaving none.
    pub fn take_emitted(&mut self) -> Vec<Emit<E>> {
        std::mem::take(&mut self.out)
    }

    /// Whether [`GameCtx::clear_ready`] was called.
    pub fn ready_cleared(&self) -> bool {
        self.clear_ready
    }
}

/// A seat as the game sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeatView {
    /// The seated player.
    pub player: PlayerId,
    /// Seat index, from 0.
    pub seat: u32,
    /// Whether the player sent `ready` since the flags were last cleared.
    pub ready: bool,
}

/// A refused game request: the `error` the player gets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct GameError {
    /// The error code, usually `invalid_state`, `invalid_input` or `not_your_turn` (a refused
    /// join: `room_full` or `invalid_state`).
    pub code: ErrorCode,
    /// Human-readable detail.
    pub message: String,
}

impl GameError {
    /// An error with any code.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
    /// `invalid_input` with a message.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }
    /// `invalid_state` with a message.
    pub fn invalid_state(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidState, message)
    }
    /// `not_your_turn`.
    pub fn not_your_turn() -> Self {
        Self::new(ErrorCode::NotYourTurn, "it is not your turn")
    }
}

/// A game refused the params of `create_room`: the `invalid_params` message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParamsError(pub String);

impl ParamsError {
    /// A refusal with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// Checks that param `key` lies in `range`.
    pub fn check_range<T: PartialOrd + fmt::Display>(
        key: &str,
        value: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, Self> {
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(Self(format!(
                "`{key}` must be from {} to {}",
                range.start(),
                range.end()
            )))
        }
    }
}

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

type ReadFn<G> = fn(&[u8]) -> Result<G, RestoreError>;

/// The older state layouts a game reads, each with its typed upgrade step: a snapshot of version
/// `v` is decoded into the type that had that layout, then converted with `From`.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # use warren_actors::game::Upgrades;
/// /// The state as version 1 of the game wrote it, kept as it was.
/// #[derive(Deserialize)]
/// struct ScoreV1 {
///     points: u32,
/// }
/// /// Version 2 renamed `points` and added `bonus`.
/// #[derive(Serialize, Deserialize)]
/// struct Score {
///     score: u32,
///     bonus: u32,
/// }
/// impl From<ScoreV1> for Score {
///     fn from(old: ScoreV1) -> Self {
///         Score { score: old.points, bonus: 0 }
///     }
/// }
/// // In `impl Game for Score`: `const STATE_VERSION: u32 = 2;` and
/// fn upgrades() -> Upgrades<Score> {
///     Upgrades::new().version::<ScoreV1>(1)
/// }
/// assert_eq!(upgrades().versions().collect::<Vec<_>>(), [1]);
/// ```
pub struct Upgrades<G> {
    steps: Vec<(u32, ReadFn<G>)>,
}

impl<G> Default for Upgrades<G> {
    fn default() -> Self {
        Self { steps: Vec::new() }
    }
}

impl<G: 'static> Upgrades<G> {
    /// None: only the current layout is read.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads state version `version`, whose layout is `Old`'s, and upgrades it with
    /// `G::from(old)`. For a chain (1 → 2 → 3), declare each old version with its own type and a
    /// `From` that goes all the way.
    pub fn version<Old: DeserializeOwned + Into<G>>(mut self, version: u32) -> Self {
        self.steps.retain(|(v, _)| *v != version);
        self.steps.push((version, read_old::<G, Old>));
        self
    }

    /// The older versions declared, in the order declared.
    pub fn versions(&self) -> impl Iterator<Item = u32> + '_ {
        self.steps.iter().map(|(v, _)| *v)
    }

    fn reader(&self, version: u32) -> Option<ReadFn<G>> {
        self.steps
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, f)| *f)
    }
}

fn read_old<G, Old: DeserializeOwned + Into<G>>(bytes: &[u8]) -> Result<G, RestoreError> {
    erased::decode_state::<Old>(bytes).map(Into::into)
}

type CreateFn =
    fn(&serde_json::Map<String, serde_json::Value>) -> Result<Box<dyn AnyGame>, ParamsError>;
pub(crate) type RestoreFn = fn(u32, &[u8]) -> Result<Box<dyn AnyGame>, RestoreError>;
type ReadsFn = fn(u32) -> bool;

/// How a node makes and revives rooms of one game: [`GameSpec::of`] a [`Game`].
#[derive(Clone, Copy)]
pub struct GameSpec {
    name: &'static str,
    default_seats: u32,
    state_version: u32,
    pub(crate) create: CreateFn,
    pub(crate) restore: RestoreFn,
    reads: ReadsFn,
}

impl fmt::Debug for GameSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GameSpec")
            .field("name", &self.name)
            .field("default_seats", &self.default_seats)
            .field("state_version", &self.state_version)
            .finish_non_exhaustive()
    }
}

impl GameSpec {
    /// The spec of game `G`.
    pub const fn of<G: Game>() -> Self {
        Self {
            name: G::NAME,
            default_seats: G::DEFAULT_SEATS,
            state_version: G::STATE_VERSION,
            create: erased::create::<G>,
            restore: erased::restore::<G>,
            reads: erased::reads::<G>,
        }
    }

    /// The name clients use.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Seats of a matchmade room.
    pub fn default_seats(&self) -> u32 {
        self.default_seats
    }

    /// The state version this build writes.
    pub fn state_version(&self) -> u32 {
        self.state_version
    }

    /// Whether this build of the game restores snapshots of state version `version`.
    pub fn reads(&self, version: u32) -> bool {
        (self.reads)(version)
    }
}

/// The games a node runs, by name.
#[derive(Clone, Default)]
pub struct GameRegistry {
    specs: HashMap<String, GameSpec>,
}

impl GameRegistry {
    /// The built-in games: `dice` and `arena`.
    pub fn builtin() -> Self {
        let mut r = Self::default();
        r.register(GameSpec::of::<dice::Dice>());
        r.register(GameSpec::of::<arena::Arena>());
        r
    }

    /// Adds a game, or replaces the one of the same name.
    pub fn register(&mut self, spec: GameSpec) {
        self.specs.insert(spec.name.to_owned(), spec);
    }

    /// Adds game `G` ([`GameRegistry::register`] of [`GameSpec::of`]).
    pub fn add<G: Game>(&mut self) -> &mut Self {
        self.register(GameSpec::of::<G>());
        self
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

    /// Every game with the state versions this node restores: what it tells the cluster, so no
    /// room is moved here that it could not revive.
    pub fn readable_versions(&self) -> GameVersions {
        let mut v: GameVersions = self
            .specs
            .values()
            .map(|s| {
                let mut versions: Vec<u32> =
                    (1..=s.state_version).filter(|v| s.reads(*v)).collect();
                versions.sort_unstable();
                (s.name.to_owned(), versions)
            })
            .collect();
        v.sort();
        v
    }
}

/// For a game's own tests: its state through the snapshot codec, as a room would keep it.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # use warren_actors::game::testing;
/// #[derive(Serialize, Deserialize, PartialEq, Debug)]
/// struct OldState { points: u32 }
/// let bytes = testing::encode_state(&OldState { points: 3 });
/// assert_eq!(testing::decode_state::<OldState>(&bytes).unwrap(), OldState { points: 3 });
/// ```
pub mod testing {
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use super::{Game, RestoreError, erased};

    /// `state` as a snapshot holds it (any type: an older layout of a game's state, to test
    /// [`super::Upgrades`] steps).
    pub fn encode_state<T: Serialize>(state: &T) -> Vec<u8> {
        postcard::to_stdvec(state).unwrap_or_default()
    }

    /// Reads back what [`encode_state`] wrote.
    pub fn decode_state<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RestoreError> {
        erased::decode_state(bytes)
    }

    /// Revives game `G` from the state of version `version`, as a node does when it restarts,
    /// receives or adopts a room: its own version, or an older one through its upgrade step.
    pub fn restore<G: Game>(version: u32, bytes: &[u8]) -> Result<G, RestoreError> {
        erased::restore_typed::<G>(version, bytes)
    }
}

/// Shared handle to the registry.
pub type Games = Arc<GameRegistry>;

/// Games a node runs, each with the state versions it restores, sorted.
pub type GameVersions = Vec<(String, Vec<u32>)>;

/// Whether a node that announced `games` restores rooms of `game` at state `version`. A node
/// that announced nothing (a build from before games were versioned, cluster protocol 5 or
/// older) is taken to restore version 1 of every game, the only version such builds wrote.
pub fn node_reads(games: Option<&GameVersions>, game: &str, version: u32) -> bool {
    match games {
        None => version == 1,
        Some(list) => list
            .iter()
            .any(|(g, versions)| g == game && versions.contains(&version)),
    }
}
