//! `arena`: realtime, fixed tick (PROTOCOL.md "Games").
//!
//! A player's input is a held direction: each tick moves every player by its latest direction × 10,
//! clamped to the 1000×1000 field, and acknowledges the highest `seq` received before the tick.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};
use warren_protocol::PlayerId;

use super::{Game, GameCtx, GameError, NoEvent, ParamsError};

const FIELD: f64 = 1000.0;
const SPEED: f64 = 10.0;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Avatar {
    x: f64,
    y: f64,
    dx: f64,
    dy: f64,
    seq: u64,
}

/// The arena game's whole state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Arena {
    seats: u32,
    tick_hz: u32,
    players: BTreeMap<PlayerId, Avatar>,
}

/// `create_room` params of `arena`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArenaParams {
    /// Seats, 1–64.
    #[serde(default = "ArenaParams::default_seats")]
    pub seats: u32,
    /// Ticks per second, 1–60.
    #[serde(default = "ArenaParams::default_tick_hz")]
    pub tick_hz: u32,
}

impl ArenaParams {
    fn default_seats() -> u32 {
        8
    }
    fn default_tick_hz() -> u32 {
        20
    }
}

/// An arena input: the direction to hold, each component in [-1, 1].
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Move {
    /// Horizontal.
    pub dx: f64,
    /// Vertical.
    pub dy: f64,
}

/// `{"players":{"<player>":{"x":…,"y":…}}}`, written straight from the state.
#[derive(Serialize)]
struct ArenaView<'a> {
    #[serde(serialize_with = "positions")]
    players: &'a BTreeMap<PlayerId, Avatar>,
}

#[derive(Serialize)]
struct Position {
    x: f64,
    y: f64,
}

fn positions<S: Serializer>(
    players: &&BTreeMap<PlayerId, Avatar>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(
        players
            .iter()
            .map(|(p, a)| (p, Position { x: a.x, y: a.y })),
    )
}

fn direction(key: &str, v: f64) -> Result<f64, GameError> {
    if (-1.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(GameError::invalid_input(format!(
            "`{key}` must be a number in [-1, 1]"
        )))
    }
}

impl Game for Arena {
    type Params = ArenaParams;
    type Input = Move;
    type Event = NoEvent;
    const NAME: &'static str = "arena";
    const DEFAULT_SEATS: u32 = 8;

    fn create(p: ArenaParams) -> Result<Self, ParamsError> {
        Ok(Self {
            seats: ParamsError::check_range("seats", p.seats, 1..=64)?,
            tick_hz: ParamsError::check_range("tick_hz", p.tick_hz, 1..=60)?,
            players: BTreeMap::new(),
        })
    }

    fn seats(&self) -> u32 {
        self.seats
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(Duration::from_secs_f64(1.0 / f64::from(self.tick_hz)))
    }

    fn on_join(
        &mut self,
        _ctx: &mut GameCtx<'_, NoEvent>,
        player: &PlayerId,
    ) -> Result<(), GameError> {
        self.players.entry(player.clone()).or_insert(Avatar {
            x: FIELD / 2.0,
            y: FIELD / 2.0,
            dx: 0.0,
            dy: 0.0,
            seq: 0,
        });
        Ok(())
    }

    fn on_leave(&mut self, _ctx: &mut GameCtx<'_, NoEvent>, player: &PlayerId) {
        self.players.remove(player);
    }

    fn on_input(
        &mut self,
        _ctx: &mut GameCtx<'_, NoEvent>,
        player: &PlayerId,
        input: Move,
        seq: Option<u64>,
    ) -> Result<(), GameError> {
        let (dx, dy) = (direction("dx", input.dx)?, direction("dy", input.dy)?);
        let Some(a) = self.players.get_mut(player) else {
            return Err(GameError::invalid_state("not playing"));
        };
        match seq {
            // An input older than one already received arrived out of order: the newer one wins.
            Some(s) if s < a.seq => {}
            Some(s) => (a.dx, a.dy, a.seq) = (dx, dy, s),
            None => (a.dx, a.dy) = (dx, dy),
        }
        Ok(())
    }

    fn on_tick(&mut self, _ctx: &mut GameCtx<'_, NoEvent>) {
        for a in self.players.values_mut() {
            a.x = (a.x + a.dx * SPEED).clamp(0.0, FIELD);
            a.y = (a.y + a.dy * SPEED).clamp(0.0, FIELD);
        }
    }

    fn view(&self) -> impl Serialize + '_ {
        ArenaView {
            players: &self.players,
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use serde_json::{Value, json};

    use super::*;

    fn create(v: Value) -> Result<Arena, String> {
        let p: ArenaParams = serde_json::from_value(v).map_err(|e| e.to_string())?;
        Arena::create(p).map_err(|e| e.0)
    }

    fn input(v: Value) -> Result<Move, serde_json::Error> {
        serde_json::from_value(v)
    }

    #[test]
    fn ticks_move_and_clamp_and_a_late_older_input_loses() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut g = create(json!({})).unwrap();
        let mut ctx = GameCtx::new(0, &[], &mut rng);
        let p: PlayerId = "a".into();
        g.on_join(&mut ctx, &p).unwrap();
        g.on_input(
            &mut ctx,
            &p,
            input(json!({"dx":1.0,"dy":-0.5})).unwrap(),
            Some(5),
        )
        .unwrap();
        g.on_input(
            &mut ctx,
            &p,
            input(json!({"dx":-1,"dy":-1})).unwrap(),
            Some(4),
        )
        .unwrap();
        g.on_tick(&mut ctx);
        let v = serde_json::to_value(g.view()).unwrap();
        assert_eq!(v["players"]["a"]["x"], 510.0);
        assert_eq!(v["players"]["a"]["y"], 495.0);
        for _ in 0..100 {
            g.on_tick(&mut ctx);
        }
        assert_eq!(
            serde_json::to_value(g.view()).unwrap()["players"]["a"]["x"],
            1000.0
        );
    }

    #[test]
    fn bad_input_is_refused() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut g = create(json!({})).unwrap();
        let mut ctx = GameCtx::new(0, &[], &mut rng);
        let p: PlayerId = "a".into();
        g.on_join(&mut ctx, &p).unwrap();
        let e = g
            .on_input(
                &mut ctx,
                &p,
                input(json!({"dx": 2, "dy": 0})).unwrap(),
                Some(1),
            )
            .unwrap_err();
        assert_eq!(e.code, warren_protocol::ErrorCode::InvalidInput);
        for bad in [
            json!({"dx": "1", "dy": 0}),
            json!({"dx": 0}),
            json!({"dx":0,"dy":0,"z":1}),
        ] {
            assert!(input(bad.clone()).is_err(), "{bad}");
        }
        assert!(create(json!({"tick_hz":61})).is_err());
    }
}
