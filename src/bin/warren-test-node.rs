//! `warren-test-node`: the node the end-to-end tests run. It is the `warren` binary's node with one
//! more game, registered through the public API as a studio registers its own: `crash`, which
//! counts inputs and panics on `{"action":"panic"}`, so the tests can watch a room restart from its
//! snapshot. Built only with the `test-hooks` feature; no release build contains it.

// A binary links every dependency of the package; the lint is for the library.
#![allow(unused_crate_dependencies)]

use std::process::ExitCode;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use warren::game::{
    Game, GameCtx, GameError, GameRegistry, GameSpec, ParamsError, int_param, known_params,
    restore_postcard,
};
use warren_protocol::PlayerId;

fn main() -> ExitCode {
    let mut games = GameRegistry::builtin();
    games.register(SPEC);
    warren::main_with(games)
}

/// Registration of `crash`.
pub const SPEC: GameSpec = GameSpec {
    name: "crash",
    default_seats: 2,
    state_version: 1,
    create: |p| Crash::from_params(p).map(|g| Box::new(g) as Box<dyn Game>),
    restore: restore_postcard::<Crash>,
};

/// State: a counter of accepted inputs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Crash {
    seats: u32,
    count: u64,
}

impl Crash {
    fn from_params(params: &Map<String, Value>) -> Result<Self, ParamsError> {
        known_params(params, &["seats"])?;
        Ok(Self {
            seats: int_param(params, "seats", 1, 8, 2)? as u32,
            count: 0,
        })
    }
}

impl Game for Crash {
    fn seats(&self) -> u32 {
        self.seats
    }

    fn on_input(
        &mut self,
        ctx: &mut GameCtx<'_>,
        _player: &PlayerId,
        _seq: Option<u64>,
        data: &Map<String, Value>,
    ) -> Result<(), GameError> {
        match data.get("action").and_then(Value::as_str) {
            Some("panic") => panic!("crash game asked to panic"),
            Some("count") => {
                self.count += 1;
                ctx.emit(json!({"kind":"counted","count":self.count}));
                Ok(())
            }
            _ => Err(GameError::invalid_input("action is count or panic")),
        }
    }

    fn state_json(&self) -> Value {
        json!({ "count": self.count })
    }

    fn snapshot(&self) -> Result<Vec<u8>, postcard::Error> {
        postcard::to_stdvec(self)
    }
}
