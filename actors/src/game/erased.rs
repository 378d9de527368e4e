//! A [`Game`] as the room drives it: one object-safe interface for every game, speaking JSON text
//! to players and the snapshot codec to the directory. The typed game never sees either.

use std::time::Duration;

use rand::RngCore;
use serde::Deserialize as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tracing::error;
use warren_protocol::PlayerId;

use super::{Emit, Game, GameCtx, GameError, ParamsError, RestoreError, SeatView};

/// What a room lends a game call.
pub struct Env<'a> {
    /// Wall-clock now (ms since the Unix epoch).
    pub now_ms: u64,
    /// Seats in seat order.
    pub seats: &'a [SeatView],
    /// The room's randomness.
    pub rng: &'a mut dyn RngCore,
}

/// One event or message a game call produced, encoded for players.
#[derive(Debug)]
pub enum Out {
    /// A `room_event` for every player.
    All(Value),
    /// One `room_event`, each listed player with its own form.
    Each(Vec<(PlayerId, Value)>),
    /// A `room_message` for one player.
    To(PlayerId, Value),
}

/// What a game call produced besides its state change.
#[derive(Debug, Default)]
pub struct Effects {
    /// Events and messages, in order.
    pub out: Vec<Out>,
    /// The game asked to clear every ready flag.
    pub clear_ready: bool,
}

/// A game as a room drives it.
pub trait AnyGame: Send {
    /// Seats in the room.
    fn seats(&self) -> u32;
    /// Realtime tick interval.
    fn tick_interval(&self) -> Option<Duration>;
    /// The game's deadline.
    fn deadline_ms(&self) -> Option<u64>;
    /// A player is joining.
    fn on_join(&mut self, env: Env<'_>, player: &PlayerId) -> (Result<(), GameError>, Effects);
    /// A player left.
    fn on_leave(&mut self, env: Env<'_>, player: &PlayerId) -> Effects;
    /// A player is ready.
    fn on_ready(&mut self, env: Env<'_>, player: &PlayerId) -> (Result<(), GameError>, Effects);
    /// An input, as the JSON text of its `data` object: decoded here, once.
    fn on_input(
        &mut self,
        env: Env<'_>,
        player: &PlayerId,
        seq: Option<u64>,
        data: &str,
    ) -> (Result<(), GameError>, Effects);
    /// A realtime tick.
    fn on_tick(&mut self, env: Env<'_>) -> Effects;
    /// The deadline passed.
    fn on_deadline(&mut self, env: Env<'_>) -> Effects;
    /// The common view, as JSON text.
    fn view(&self) -> Result<Box<RawValue>, serde_json::Error>;
    /// A player's private view, as JSON text, when it has one.
    fn view_for(&self, player: &PlayerId) -> Option<Result<Box<RawValue>, serde_json::Error>>;
    /// The state in the snapshot codec.
    fn snapshot(&self) -> Result<Vec<u8>, postcard::Error>;
}

struct Typed<G>(G);

fn call<G: Game, R>(env: Env<'_>, f: impl FnOnce(&mut GameCtx<'_, G::Event>) -> R) -> (R, Effects) {
    let mut ctx = GameCtx::new(env.now_ms, env.seats, env.rng);
    let r = f(&mut ctx);
    let effects = Effects {
        clear_ready: ctx.clear_ready,
        out: ctx
            .out
            .into_iter()
            .filter_map(|e| encode_emit::<G>(e))
            .collect(),
    };
    (r, effects)
}

/// An event as JSON: an object with a string `kind`, or nothing (a game bug, logged).
fn event_json<G: Game>(event: &G::Event) -> Option<Value> {
    match serde_json::to_value(event) {
        Ok(v) if v.get("kind").is_some_and(Value::is_string) => Some(v),
        Ok(v) => {
            error!(game = G::NAME, event = %v, "the game emitted an event that is not a JSON object with a string `kind`; dropped");
            None
        }
        Err(e) => {
            error!(game = G::NAME, error = %e, "the game emitted an event that does not serialize; dropped");
            None
        }
    }
}

fn encode_emit<G: Game>(e: Emit<G::Event>) -> Option<Out> {
    Some(match e {
        Emit::All(e) => Out::All(event_json::<G>(&e)?),
        Emit::Each(each) => Out::Each(
            each.into_iter()
                .map(|(p, e)| event_json::<G>(&e).map(|v| (p, v)))
                .collect::<Option<Vec<_>>>()?,
        ),
        Emit::To(p, e) => Out::To(p, event_json::<G>(&e)?),
    })
}

fn to_raw(v: &impl Serialize) -> Result<Box<RawValue>, serde_json::Error> {
    serde_json::value::to_raw_value(v)
}

impl<G: Game> AnyGame for Typed<G> {
    fn seats(&self) -> u32 {
        self.0.seats()
    }
    fn tick_interval(&self) -> Option<Duration> {
        self.0.tick_interval()
    }
    fn deadline_ms(&self) -> Option<u64> {
        self.0.deadline_ms()
    }
    fn on_join(&mut self, env: Env<'_>, player: &PlayerId) -> (Result<(), GameError>, Effects) {
        call::<G, _>(env, |ctx| self.0.on_join(ctx, player))
    }
    fn on_leave(&mut self, env: Env<'_>, player: &PlayerId) -> Effects {
        call::<G, _>(env, |ctx| self.0.on_leave(ctx, player)).1
    }
    fn on_ready(&mut self, env: Env<'_>, player: &PlayerId) -> (Result<(), GameError>, Effects) {
        call::<G, _>(env, |ctx| self.0.on_ready(ctx, player))
    }
    fn on_input(
        &mut self,
        env: Env<'_>,
        player: &PlayerId,
        seq: Option<u64>,
        data: &str,
    ) -> (Result<(), GameError>, Effects) {
        let input = match serde_json::from_str::<G::Input>(data) {
            Ok(i) => i,
            Err(e) => {
                return (
                    Err(GameError::invalid_input(decode_message(&e))),
                    Effects::default(),
                );
            }
        };
        call::<G, _>(env, |ctx| self.0.on_input(ctx, player, input, seq))
    }
    fn on_tick(&mut self, env: Env<'_>) -> Effects {
        call::<G, _>(env, |ctx| self.0.on_tick(ctx)).1
    }
    fn on_deadline(&mut self, env: Env<'_>) -> Effects {
        call::<G, _>(env, |ctx| self.0.on_deadline(ctx)).1
    }
    fn view(&self) -> Result<Box<RawValue>, serde_json::Error> {
        to_raw(&self.0.view())
    }
    fn view_for(&self, player: &PlayerId) -> Option<Result<Box<RawValue>, serde_json::Error>> {
        self.0.view_for(player).map(|v| to_raw(&v))
    }
    fn snapshot(&self) -> Result<Vec<u8>, postcard::Error> {
        postcard::to_stdvec(&self.0)
    }
}

/// A decoder's message without serde_json's position suffix when the text is one line (it always
/// is: the edge keeps the client's object as sent, and a frame is one object).
fn decode_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    match full.rfind(" at line ") {
        Some(i) if e.line() == 1 => full[..i].to_owned(),
        _ => full,
    }
}

/// Decodes a game's state (any version's layout) from the snapshot codec.
pub(crate) fn decode_state<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RestoreError> {
    postcard::from_bytes::<T>(bytes).map_err(|e| RestoreError::Corrupt(e.to_string()))
}

/// `GameSpec::create` of `G`: params decoded into `G::Params`, then a state that reads back.
pub(crate) fn create<G: Game>(
    params: &Map<String, Value>,
) -> Result<Box<dyn AnyGame>, ParamsError> {
    let params = G::Params::deserialize(&Value::Object(params.clone()))
        .map_err(|e| ParamsError(decode_message(&e)))?;
    let game = G::create(params)?;
    Ok(Box::new(Typed(game)))
}

/// `GameSpec::restore` of `G`.
pub(crate) fn restore<G: Game>(
    version: u32,
    bytes: &[u8],
) -> Result<Box<dyn AnyGame>, RestoreError> {
    restore_typed::<G>(version, bytes).map(|g| Box::new(Typed(g)) as Box<dyn AnyGame>)
}

/// A `G` from a snapshot of its own state version, or of an older one it declares an upgrade for.
pub(crate) fn restore_typed<G: Game>(version: u32, bytes: &[u8]) -> Result<G, RestoreError> {
    if version == G::STATE_VERSION {
        return decode_state::<G>(bytes);
    }
    let read = G::upgrades()
        .reader(version)
        .filter(|_| version < G::STATE_VERSION)
        .ok_or(RestoreError::UnsupportedVersion(version))?;
    read(bytes)
}

/// `GameSpec::reads` of `G`.
pub(crate) fn reads<G: Game>(version: u32) -> bool {
    version == G::STATE_VERSION
        || (version < G::STATE_VERSION && G::upgrades().reader(version).is_some())
}

/// Checks that a new game's state reads back from its snapshot: a layout the snapshot codec cannot
/// carry (see [`Game`]) shows on the first `create_room` rather than on the first restart.
pub(crate) fn check_round_trip(
    game: &dyn AnyGame,
    restore: super::RestoreFn,
    version: u32,
) -> Result<(), String> {
    let bytes = game.snapshot().map_err(|e| e.to_string())?;
    let back = restore(version, &bytes).map_err(|e| e.to_string())?;
    let again = back.snapshot().map_err(|e| e.to_string())?;
    if again != bytes {
        return Err("the state read back differs from the state written".into());
    }
    Ok(())
}
