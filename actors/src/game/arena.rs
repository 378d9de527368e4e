//! `arena`: realtime, fixed tick (PROTOCOL.md "Games").
//!
//! A player's input is a held direction: each tick moves every player by its latest direction × 10,
//! clamped to the 1000×1000 field, and acknowledges the highest `seq` received before the tick.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use warren_protocol::PlayerId;

use super::{
    Game, GameCtx, GameError, GameSpec, TickOutput, int_param, known_params, restore_postcard,
};

/// Registration of `arena`.
pub const SPEC: GameSpec = GameSpec {
    name: "arena",
    default_seats: 8,
    state_version: 1,
    create: |p| Arena::from_params(p).map(|g| Box::new(g) as Box<dyn Game>),
    restore: restore_postcard::<Arena>,
};

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

impl Arena {
    /// A new game from `create_room` params.
    pub fn from_params(params: &Map<String, Value>) -> Result<Self, super::ParamsError> {
        known_params(params, &["seats", "tick_hz"])?;
        Ok(Self {
            seats: int_param(params, "seats", 1, 64, 8)? as u32,
            tick_hz: int_param(params, "tick_hz", 1, 60, 20)? as u32,
            players: BTreeMap::new(),
        })
    }

    fn encode_state(&self) -> String {
        let mut s = String::with_capacity(16 + self.players.len() * 48);
        s.push_str(r#"{"players":{"#);
        for (i, (p, a)) in self.players.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&serde_json::to_string(p.as_str()).unwrap_or_default());
            let _ = write!(s, r#":{{"x":{},"y":{}}}"#, a.x, a.y);
        }
        s.push_str("}}");
        s
    }
}

fn direction(data: &Map<String, Value>, key: &str) -> Result<f64, GameError> {
    match data.get(key).and_then(Value::as_f64) {
        Some(v) if (-1.0..=1.0).contains(&v) => Ok(v),
        _ => Err(GameError::invalid_input(format!(
            "`{key}` must be a number in [-1, 1]"
        ))),
    }
}

impl Game for Arena {
    fn seats(&self) -> u32 {
        self.seats
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(Duration::from_secs_f64(1.0 / f64::from(self.tick_hz)))
    }

    fn on_join(&mut self, _ctx: &mut GameCtx<'_>, player: &PlayerId) {
        self.players.entry(player.clone()).or_insert(Avatar {
            x: FIELD / 2.0,
            y: FIELD / 2.0,
            dx: 0.0,
            dy: 0.0,
            seq: 0,
        });
    }

    fn on_leave(&mut self, _ctx: &mut GameCtx<'_>, player: &PlayerId) {
        self.players.remove(player);
    }

    fn on_input(
        &mut self,
        _ctx: &mut GameCtx<'_>,
        player: &PlayerId,
        seq: Option<u64>,
        data: &Map<String, Value>,
    ) -> Result<(), GameError> {
        if data.len() != 2 {
            return Err(GameError::invalid_input(
                r#"arena input is {"dx":x,"dy":y}"#,
            ));
        }
        let (dx, dy) = (direction(data, "dx")?, direction(data, "dy")?);
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

    fn on_tick(&mut self, _ctx: &mut GameCtx<'_>) -> Option<TickOutput> {
        let mut acks = HashMap::with_capacity(self.players.len());
        for (p, a) in &mut self.players {
            a.x = (a.x + a.dx * SPEED).clamp(0.0, FIELD);
            a.y = (a.y + a.dy * SPEED).clamp(0.0, FIELD);
            acks.insert(p.clone(), a.seq);
        }
        Some(TickOutput {
            state_json: self.encode_state(),
            acks,
        })
    }

    fn state_json(&self) -> Value {
        let players: Map<String, Value> = self
            .players
            .iter()
            .map(|(p, a)| (p.to_string(), json!({"x": a.x, "y": a.y})))
            .collect();
        json!({ "players": players })
    }

    fn snapshot(&self) -> Result<Vec<u8>, postcard::Error> {
        postcard::to_stdvec(self)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn input(dx: f64, dy: f64) -> Map<String, Value> {
        serde_json::from_value(json!({"dx": dx, "dy": dy})).unwrap()
    }

    #[test]
    fn ticks_move_clamp_and_ack() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut g = Arena::from_params(&Map::new()).unwrap();
        let mut ctx = GameCtx::new(0, &[], &mut rng);
        let p: PlayerId = "a".into();
        g.on_join(&mut ctx, &p);
        g.on_input(&mut ctx, &p, Some(5), &input(1.0, -0.5))
            .unwrap();
        g.on_input(&mut ctx, &p, Some(4), &input(-1.0, -1.0))
            .unwrap();
        let out = g.on_tick(&mut ctx).unwrap();
        assert_eq!(out.acks[&p], 5);
        let v: Value = serde_json::from_str(&out.state_json).unwrap();
        assert_eq!(v["players"]["a"]["x"], 510.0);
        assert_eq!(v["players"]["a"]["y"], 495.0);
        for _ in 0..100 {
            g.on_tick(&mut ctx);
        }
        assert_eq!(g.state_json()["players"]["a"]["x"], 1000.0);
    }

    #[test]
    fn bad_input_is_refused() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut g = Arena::from_params(&Map::new()).unwrap();
        let mut ctx = GameCtx::new(0, &[], &mut rng);
        let p: PlayerId = "a".into();
        g.on_join(&mut ctx, &p);
        for bad in [
            json!({"dx": 2, "dy": 0}),
            json!({"dx": "1", "dy": 0}),
            json!({"dx": 0}),
            json!({"dx":0,"dy":0,"z":1}),
        ] {
            let data: Map<String, Value> = serde_json::from_value(bad).unwrap();
            assert_eq!(
                g.on_input(&mut ctx, &p, Some(1), &data).unwrap_err().code,
                warren_protocol::ErrorCode::InvalidInput
            );
        }
        let bad: Map<String, Value> = serde_json::from_str(r#"{"tick_hz":61}"#).unwrap();
        assert!(Arena::from_params(&bad).is_err());
    }
}
