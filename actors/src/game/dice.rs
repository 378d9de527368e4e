//! `dice`: turn-based, with a turn timer (PROTOCOL.md "Games").

use std::collections::BTreeMap;

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use warren_protocol::PlayerId;

use super::{Game, GameCtx, GameError, GameSpec, int_param, known_params, restore_postcard};

/// Registration of `dice`.
pub const SPEC: GameSpec = GameSpec {
    name: "dice",
    default_seats: 2,
    state_version: 1,
    create: |p| Dice::from_params(p).map(|g| Box::new(g) as Box<dyn Game>),
    restore: restore_postcard::<Dice>,
};

/// The dice game's whole state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dice {
    seats: u32,
    turn_ms: u64,
    rolling: bool,
    round: u64,
    /// Players of the current round in seat order, with their seats.
    order: Vec<(PlayerId, u32)>,
    /// Index into `order` of whose turn it is.
    turn: Option<usize>,
    totals: BTreeMap<PlayerId, u64>,
    turn_deadline_ms: Option<u64>,
}

impl Dice {
    /// A new game from `create_room` params.
    pub fn from_params(params: &Map<String, Value>) -> Result<Self, super::ParamsError> {
        known_params(params, &["seats", "turn_ms"])?;
        Ok(Self {
            seats: int_param(params, "seats", 2, 8, 2)? as u32,
            turn_ms: int_param(params, "turn_ms", 1000, 120_000, 15_000)?,
            rolling: false,
            round: 0,
            order: Vec::new(),
            turn: None,
            totals: BTreeMap::new(),
            turn_deadline_ms: None,
        })
    }

    fn current(&self) -> Option<&PlayerId> {
        self.turn.and_then(|i| self.order.get(i)).map(|(p, _)| p)
    }

    fn roll(&mut self, ctx: &mut GameCtx<'_>, auto: bool) {
        let Some(player) = self.current().cloned() else {
            return;
        };
        let (a, b) = (
            ctx.rng.random_range(1..=6u64),
            ctx.rng.random_range(1..=6u64),
        );
        *self.totals.entry(player.clone()).or_insert(0) += a + b;
        ctx.emit(json!({"kind":"rolled","player":player,"dice":[a,b],"total":a+b,"auto":auto}));
        self.advance(ctx, self.turn.map_or(0, |i| i + 1));
    }

    /// Gives the turn to `order[next]`, or ends the round when everyone has rolled.
    fn advance(&mut self, ctx: &mut GameCtx<'_>, next: usize) {
        if next < self.order.len() {
            self.turn = Some(next);
            self.turn_deadline_ms = Some(ctx.now_ms + self.turn_ms);
            return;
        }
        let top = self.totals.values().copied().max();
        let winners: Vec<&PlayerId> = self
            .totals
            .iter()
            .filter(|(_, t)| Some(**t) == top)
            .map(|(p, _)| p)
            .collect();
        ctx.emit(
            json!({"kind":"round_over","round":self.round,"totals":self.totals,"winners":winners}),
        );
        self.rolling = false;
        self.turn = None;
        self.turn_deadline_ms = None;
        ctx.clear_ready();
    }
}

impl Game for Dice {
    fn seats(&self) -> u32 {
        self.seats
    }

    fn on_leave(&mut self, ctx: &mut GameCtx<'_>, player: &PlayerId) {
        if !self.rolling {
            return;
        }
        let Some(idx) = self.order.iter().position(|(p, _)| p == player) else {
            return;
        };
        self.order.remove(idx);
        self.totals.remove(player);
        match self.turn {
            Some(t) if t == idx => self.advance(ctx, idx),
            Some(t) if t > idx => self.turn = Some(t - 1),
            _ => {}
        }
    }

    fn on_ready(&mut self, ctx: &mut GameCtx<'_>, _player: &PlayerId) -> Result<(), GameError> {
        if self.rolling {
            return Err(GameError::invalid_state("a round is being played"));
        }
        if ctx.seats.len() >= 2 && ctx.seats.iter().all(|s| s.ready) {
            self.round += 1;
            self.rolling = true;
            self.order = ctx
                .seats
                .iter()
                .map(|s| (s.player.clone(), s.seat))
                .collect();
            self.totals = self.order.iter().map(|(p, _)| (p.clone(), 0)).collect();
            let order: Vec<&PlayerId> = self.order.iter().map(|(p, _)| p).collect();
            ctx.emit(json!({"kind":"round_started","round":self.round,"order":order}));
            self.advance(ctx, 0);
        }
        Ok(())
    }

    fn on_input(
        &mut self,
        ctx: &mut GameCtx<'_>,
        player: &PlayerId,
        _seq: Option<u64>,
        data: &Map<String, Value>,
    ) -> Result<(), GameError> {
        if data.get("action").and_then(Value::as_str) != Some("roll") || data.len() != 1 {
            return Err(GameError::invalid_input(
                r#"dice input is {"action":"roll"}"#,
            ));
        }
        if !self.rolling {
            return Err(GameError::invalid_state(
                "no round is being played; send ready",
            ));
        }
        if self.current() != Some(player) {
            return Err(GameError::not_your_turn());
        }
        self.roll(ctx, false);
        Ok(())
    }

    fn on_deadline(&mut self, ctx: &mut GameCtx<'_>) {
        if self.rolling && self.turn_deadline_ms.is_some_and(|d| d <= ctx.now_ms) {
            self.roll(ctx, true);
        }
    }

    fn deadline_ms(&self) -> Option<u64> {
        self.turn_deadline_ms
    }

    fn state_json(&self) -> Value {
        let turn = self
            .turn
            .and_then(|i| self.order.get(i))
            .map(|(_, seat)| *seat);
        json!({
            "phase": if self.rolling { "rolling" } else { "waiting" },
            "round": self.round,
            "turn": turn,
            "totals": self.totals,
        })
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
    use crate::game::SeatView;

    fn seats(ready: &[bool]) -> Vec<SeatView> {
        ready
            .iter()
            .enumerate()
            .map(|(i, r)| SeatView {
                player: format!("p{i}").as_str().into(),
                seat: i as u32,
                ready: *r,
            })
            .collect()
    }

    #[test]
    fn params_are_validated() {
        let bad: Map<String, Value> = serde_json::from_str(r#"{"seats":9}"#).unwrap();
        assert!(Dice::from_params(&bad).is_err());
        let bad: Map<String, Value> = serde_json::from_str(r#"{"turn_ms":999}"#).unwrap();
        assert!(Dice::from_params(&bad).is_err());
        let bad: Map<String, Value> = serde_json::from_str(r#"{"colour":"red"}"#).unwrap();
        assert!(Dice::from_params(&bad).is_err());
    }

    #[test]
    fn a_round_with_a_skipped_leaver_and_an_auto_roll() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut g = Dice::from_params(&Map::new()).unwrap();
        let s = seats(&[true, true, true]);
        let mut ctx = GameCtx::new(0, &s, &mut rng);
        g.on_ready(&mut ctx, &"p2".into()).unwrap();
        assert_eq!(ctx.events()[0]["kind"], "round_started");
        assert_eq!(g.state_json()["turn"], 0);
        // p1 is skipped when it leaves before its turn.
        g.on_leave(&mut ctx, &"p1".into());
        let err = g.on_input(
            &mut ctx,
            &"p2".into(),
            None,
            &serde_json::from_str(r#"{"action":"roll"}"#).unwrap(),
        );
        assert_eq!(
            err.unwrap_err().code,
            warren_protocol::ErrorCode::NotYourTurn
        );
        g.on_input(
            &mut ctx,
            &"p0".into(),
            None,
            &serde_json::from_str(r#"{"action":"roll"}"#).unwrap(),
        )
        .unwrap();
        assert_eq!(g.state_json()["turn"], 2);
        // p2's timer runs out: the server rolls for it and the round ends.
        let deadline = g.deadline_ms().unwrap();
        let mut ctx = GameCtx::new(deadline, &s, &mut rng);
        g.on_deadline(&mut ctx);
        let kinds: Vec<&str> = ctx
            .events()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["rolled", "round_over"]);
        assert_eq!(ctx.events()[0]["auto"], true);
        assert!(ctx.clear_ready);
        assert_eq!(g.state_json()["phase"], "waiting");
        assert!(g.state_json()["totals"].get("p1").is_none());
    }

    #[test]
    fn snapshot_round_trips() {
        let g = Dice::from_params(&Map::new()).unwrap();
        let back = (SPEC.restore)(1, &g.snapshot().unwrap()).unwrap();
        assert_eq!(back.state_json(), g.state_json());
    }
}
