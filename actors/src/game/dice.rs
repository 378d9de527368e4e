//! `dice`: turn-based, with a turn timer (PROTOCOL.md "Games").

use std::collections::BTreeMap;

use rand::Rng;
use serde::{Deserialize, Serialize};
use warren_protocol::PlayerId;

use super::{Game, GameCtx, GameError, ParamsError};

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

/// `create_room` params of `dice`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiceParams {
    /// Seats, 2–8.
    #[serde(default = "DiceParams::default_seats")]
    pub seats: u32,
    /// Time for a turn before the server rolls, 1000–120000 ms.
    #[serde(default = "DiceParams::default_turn_ms")]
    pub turn_ms: u64,
}

impl DiceParams {
    fn default_seats() -> u32 {
        2
    }
    fn default_turn_ms() -> u64 {
        15_000
    }
}

/// A dice input: `{"action":"roll"}`.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum DiceInput {
    /// Roll two dice on your turn. (A struct variant, so that `deny_unknown_fields` refuses
    /// other fields beside the tag: serde ignores them for a unit variant.)
    Roll {},
}

/// What `dice` tells its players.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DiceEvent {
    /// Every seated player is ready: a round starts, in seat order.
    RoundStarted {
        /// The round.
        round: u64,
        /// Players by seat.
        order: Vec<PlayerId>,
    },
    /// A player rolled (or the server for it, when its turn ran out: `auto`).
    Rolled {
        /// Who.
        player: PlayerId,
        /// The two dice.
        dice: [u64; 2],
        /// Their sum.
        total: u64,
        /// Rolled by the server.
        auto: bool,
    },
    /// Everyone rolled.
    RoundOver {
        /// The round.
        round: u64,
        /// Totals by player.
        totals: BTreeMap<PlayerId, u64>,
        /// Players with the top total.
        winners: Vec<PlayerId>,
    },
}

/// The state players see.
#[derive(Serialize)]
struct DiceView<'a> {
    phase: &'static str,
    round: u64,
    turn: Option<u32>,
    totals: &'a BTreeMap<PlayerId, u64>,
}

type Ctx<'a> = GameCtx<'a, DiceEvent>;

impl Dice {
    fn current(&self) -> Option<&PlayerId> {
        self.turn.and_then(|i| self.order.get(i)).map(|(p, _)| p)
    }

    fn roll(&mut self, ctx: &mut Ctx<'_>, auto: bool) {
        let Some(player) = self.current().cloned() else {
            return;
        };
        let (a, b) = (
            ctx.rng.random_range(1..=6u64),
            ctx.rng.random_range(1..=6u64),
        );
        *self.totals.entry(player.clone()).or_insert(0) += a + b;
        ctx.emit(DiceEvent::Rolled {
            player,
            dice: [a, b],
            total: a + b,
            auto,
        });
        self.advance(ctx, self.turn.map_or(0, |i| i + 1));
    }

    /// Gives the turn to `order[next]`, or ends the round when everyone has rolled.
    fn advance(&mut self, ctx: &mut Ctx<'_>, next: usize) {
        if next < self.order.len() {
            self.turn = Some(next);
            self.turn_deadline_ms = Some(ctx.now_ms + self.turn_ms);
            return;
        }
        let top = self.totals.values().copied().max();
        let winners = self
            .totals
            .iter()
            .filter(|(_, t)| Some(**t) == top)
            .map(|(p, _)| p.clone())
            .collect();
        ctx.emit(DiceEvent::RoundOver {
            round: self.round,
            totals: self.totals.clone(),
            winners,
        });
        self.rolling = false;
        self.turn = None;
        self.turn_deadline_ms = None;
        ctx.clear_ready();
    }
}

impl Game for Dice {
    type Params = DiceParams;
    type Input = DiceInput;
    type Event = DiceEvent;
    const NAME: &'static str = "dice";
    const DEFAULT_SEATS: u32 = 2;

    fn create(p: DiceParams) -> Result<Self, ParamsError> {
        Ok(Self {
            seats: ParamsError::check_range("seats", p.seats, 2..=8)?,
            turn_ms: ParamsError::check_range("turn_ms", p.turn_ms, 1000..=120_000)?,
            rolling: false,
            round: 0,
            order: Vec::new(),
            turn: None,
            totals: BTreeMap::new(),
            turn_deadline_ms: None,
        })
    }

    fn seats(&self) -> u32 {
        self.seats
    }

    fn on_leave(&mut self, ctx: &mut Ctx<'_>, player: &PlayerId) {
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

    fn on_ready(&mut self, ctx: &mut Ctx<'_>, _player: &PlayerId) -> Result<(), GameError> {
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
            let order = self.order.iter().map(|(p, _)| p.clone()).collect();
            ctx.emit(DiceEvent::RoundStarted {
                round: self.round,
                order,
            });
            self.advance(ctx, 0);
        }
        Ok(())
    }

    fn on_input(
        &mut self,
        ctx: &mut Ctx<'_>,
        player: &PlayerId,
        input: DiceInput,
        _seq: Option<u64>,
    ) -> Result<(), GameError> {
        let DiceInput::Roll {} = input;
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

    fn on_deadline(&mut self, ctx: &mut Ctx<'_>) {
        if self.rolling && self.turn_deadline_ms.is_some_and(|d| d <= ctx.now_ms) {
            self.roll(ctx, true);
        }
    }

    fn deadline_ms(&self) -> Option<u64> {
        self.turn_deadline_ms
    }

    fn view(&self) -> impl Serialize + '_ {
        DiceView {
            phase: if self.rolling { "rolling" } else { "waiting" },
            round: self.round,
            turn: self
                .turn
                .and_then(|i| self.order.get(i))
                .map(|(_, seat)| *seat),
            totals: &self.totals,
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use serde_json::{Value, json};

    use super::*;
    use crate::game::{Emit, GameSpec, SeatView};

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

    fn params(v: Value) -> Result<Dice, String> {
        let p: DiceParams = serde_json::from_value(v).map_err(|e| e.to_string())?;
        Dice::create(p).map_err(|e| e.0)
    }

    fn view(g: &Dice) -> Value {
        serde_json::to_value(g.view()).unwrap()
    }

    fn kinds(ctx: &Ctx<'_>) -> Vec<String> {
        ctx.emitted()
            .iter()
            .map(|e| match e {
                Emit::All(e) => serde_json::to_value(e).unwrap()["kind"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                other => panic!("dice only emits to all: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn params_are_validated() {
        assert_eq!(
            params(json!({"seats":9})).unwrap_err(),
            "`seats` must be from 2 to 8"
        );
        assert!(params(json!({"turn_ms":999})).is_err());
        let e = params(json!({"colour":"red"})).unwrap_err();
        assert!(e.starts_with("unknown field `colour`"), "{e}");
        assert!(params(json!({"seats":"2"})).is_err());
        assert_eq!(params(json!({})).unwrap().seats, 2);
    }

    #[test]
    fn inputs_decode_into_the_one_action() {
        assert!(serde_json::from_str::<DiceInput>(r#"{"action":"roll"}"#).is_ok());
        for bad in [
            r#"{"action":"jump"}"#,
            r#"{}"#,
            r#"{"action":"roll","x":1}"#,
        ] {
            assert!(serde_json::from_str::<DiceInput>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_round_with_a_skipped_leaver_and_an_auto_roll() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut g = params(json!({})).unwrap();
        let s = seats(&[true, true, true]);
        let mut ctx = GameCtx::new(0, &s, &mut rng);
        g.on_ready(&mut ctx, &"p2".into()).unwrap();
        assert_eq!(kinds(&ctx)[0], "round_started");
        assert_eq!(view(&g)["turn"], 0);
        // p1 is skipped when it leaves before its turn.
        g.on_leave(&mut ctx, &"p1".into());
        let err = g.on_input(&mut ctx, &"p2".into(), DiceInput::Roll {}, None);
        assert_eq!(
            err.unwrap_err().code,
            warren_protocol::ErrorCode::NotYourTurn
        );
        g.on_input(&mut ctx, &"p0".into(), DiceInput::Roll {}, None)
            .unwrap();
        assert_eq!(view(&g)["turn"], 2);
        // p2's timer runs out: the server rolls for it and the round ends.
        let deadline = g.deadline_ms().unwrap();
        let mut ctx = GameCtx::new(deadline, &s, &mut rng);
        g.on_deadline(&mut ctx);
        assert_eq!(kinds(&ctx), ["rolled", "round_over"]);
        let Emit::All(DiceEvent::Rolled { auto, .. }) = &ctx.emitted()[0] else {
            panic!("{:?}", ctx.emitted());
        };
        assert!(auto);
        assert!(ctx.ready_cleared());
        assert_eq!(view(&g)["phase"], "waiting");
        assert!(view(&g)["totals"].get("p1").is_none());
    }

    #[test]
    fn snapshot_round_trips() {
        let spec = GameSpec::of::<Dice>();
        let g = (spec.create)(&serde_json::Map::new()).unwrap();
        let back = (spec.restore)(1, &g.snapshot().unwrap()).unwrap();
        assert_eq!(back.view().unwrap().get(), g.view().unwrap().get());
        assert!(matches!(
            (spec.restore)(2, &g.snapshot().unwrap()),
            Err(crate::game::RestoreError::UnsupportedVersion(2))
        ));
    }
}
