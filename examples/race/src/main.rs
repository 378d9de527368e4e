//! A race to 21 on Warren: two players take turns adding 1, 2 or 3; whoever reaches the target
//! wins, and a player who lets its 10 s run out adds 1. The whole `src/main.rs` of a game's node.

use std::process::ExitCode;

use serde::{Deserialize, Serialize};
use warren::game::{Game, GameCtx, GameError, GameRegistry, ParamsError, PlayerId};

/// The whole state of a race: Warren snapshots it, restores it, moves it between nodes.
#[derive(Serialize, Deserialize)]
struct Race {
    target: u32,
    count: u32,
    turn_ms: u64,
    turn: usize,
    deadline_ms: Option<u64>,
    winner: Option<PlayerId>,
}

/// `create_room` params: `{"target": 21}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default = "twenty_one")]
    target: u32,
}

fn twenty_one() -> u32 {
    21
}

/// What a player sends: `{"add": 2}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Add {
    add: u32,
}

/// What players are told: `{"kind":"added",…}`, `{"kind":"won",…}`.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Event {
    Added {
        player: PlayerId,
        add: u32,
        count: u32,
    },
    Won {
        player: PlayerId,
    },
}

/// What players see: `room_state`'s `state` (`turn`: the seat to play).
#[derive(Serialize)]
struct View<'a> {
    count: u32,
    target: u32,
    turn: usize,
    winner: Option<&'a PlayerId>,
}

impl Race {
    fn add(&mut self, ctx: &mut GameCtx<'_, Event>, player: &PlayerId, add: u32) {
        self.count = (self.count + add).min(self.target);
        ctx.emit(Event::Added {
            player: player.clone(),
            add,
            count: self.count,
        });
        if self.count == self.target {
            self.winner = Some(player.clone());
            self.deadline_ms = None;
            ctx.emit(Event::Won {
                player: player.clone(),
            });
        } else {
            self.turn = (self.turn + 1) % ctx.seats.len();
            self.deadline_ms = Some(ctx.now_ms + self.turn_ms);
        }
    }
}

impl Game for Race {
    type Params = Params;
    type Input = Add;
    type Event = Event;
    const NAME: &'static str = "race";
    const DEFAULT_SEATS: u32 = 2;

    fn create(p: Params) -> Result<Self, ParamsError> {
        let target = ParamsError::check_range("target", p.target, 5..=100)?;
        let race = Race {
            target,
            count: 0,
            turn_ms: 10_000,
            turn: 0,
            deadline_ms: None,
            winner: None,
        };
        Ok(race)
    }

    fn seats(&self) -> u32 {
        2
    }

    /// Two players in: the first one's clock starts.
    fn on_join(
        &mut self,
        ctx: &mut GameCtx<'_, Event>,
        _player: &PlayerId,
    ) -> Result<(), GameError> {
        if ctx.seats.len() == 2 {
            self.deadline_ms = Some(ctx.now_ms + self.turn_ms);
        }
        Ok(())
    }

    fn on_input(
        &mut self,
        ctx: &mut GameCtx<'_, Event>,
        player: &PlayerId,
        input: Add,
        _seq: Option<u64>,
    ) -> Result<(), GameError> {
        if ctx.seats.len() < 2 || self.winner.is_some() {
            return Err(GameError::invalid_state("no race is on"));
        }
        if ctx.seats[self.turn % ctx.seats.len()].player != *player {
            return Err(GameError::not_your_turn());
        }
        if !(1..=3).contains(&input.add) {
            return Err(GameError::invalid_input("add 1, 2 or 3"));
        }
        self.add(ctx, player, input.add);
        Ok(())
    }

    /// The player on turn let its clock run out: it adds 1.
    fn on_deadline(&mut self, ctx: &mut GameCtx<'_, Event>) {
        if let Some(seat) = ctx.seats.get(self.turn % ctx.seats.len().max(1)) {
            let player = seat.player.clone();
            self.add(ctx, &player, 1);
        }
    }

    fn deadline_ms(&self) -> Option<u64> {
        self.deadline_ms
    }

    fn view(&self) -> impl Serialize + '_ {
        View {
            count: self.count,
            target: self.target,
            turn: self.turn,
            winner: self.winner.as_ref(),
        }
    }
}

fn main() -> ExitCode {
    let mut games = GameRegistry::builtin();
    games.add::<Race>();
    warren::main_with(games)
}
