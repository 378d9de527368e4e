//! `warren-test-node`: the node the end-to-end tests run. It is the `warren` binary's node with one
//! more game, registered through the public API as a studio registers its own: `crash`, which
//! counts inputs and panics on `{"action":"panic"}`, so the tests can watch a room restart from its
//! snapshot, counts inputs whose `seq` came after a higher one (inputs out of order), and stalls
//! its room on `{"action":"stall","ms":n}`, so the tests can queue messages behind a busy room.
//! With `{"tick_ms":n}` its room is a realtime one (one-way inputs through the input box).
//! Built only with the `test-hooks` feature; no release build contains it.

// A binary links every dependency of the package; the lint is for the library.
#![allow(unused_crate_dependencies)]

use std::process::ExitCode;

use serde::{Deserialize, Serialize};
use warren::game::{Game, GameCtx, GameError, GameRegistry, ParamsError};
use warren_protocol::PlayerId;

fn main() -> ExitCode {
    // How many rooms moving here from other nodes this node refuses (a failed move, tried again).
    if let Some(n) = std::env::var("TEST_NODE_REFUSE_MOVES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        warren_actors::room_host::REFUSE_MOVES_FOR_TEST
            .store(n, std::sync::atomic::Ordering::Relaxed);
    }
    let mut games = GameRegistry::builtin();
    games.add::<Crash>();
    warren::main_with(games)
}

/// State: a counter of accepted inputs, the highest `seq` seen, and inputs that arrived after
/// one with a higher `seq`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Crash {
    seats: u32,
    count: u64,
    last_seq: u64,
    out_of_order: u64,
    /// Realtime: ticks this many ms apart, and takes one-way inputs through its input box.
    #[serde(default)]
    tick_ms: Option<u64>,
}

/// `create_room` params.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashParams {
    #[serde(default = "two")]
    seats: u32,
    /// A realtime room, ticking this many ms apart (10 to 1,000); turn-based without it.
    #[serde(default)]
    tick_ms: Option<u64>,
}

fn two() -> u32 {
    2
}

/// `{"action":"count"}`, `{"action":"panic"}` or `{"action":"stall","ms":n}`.
#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum CrashInput {
    /// Count one more.
    Count,
    /// Panic in the room.
    Panic,
    /// Block the room for `ms` milliseconds (at most 5,000).
    Stall {
        /// How long.
        ms: u64,
    },
}

/// `{"kind":"counted","count":n}`.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CrashEvent {
    /// The counter went up.
    Counted {
        /// Its value.
        count: u64,
    },
}

#[derive(Serialize)]
struct View {
    count: u64,
    last_seq: u64,
    out_of_order: u64,
}

impl Game for Crash {
    type Params = CrashParams;
    type Input = CrashInput;
    type Event = CrashEvent;
    const NAME: &'static str = "crash";
    const DEFAULT_SEATS: u32 = 2;

    fn create(p: CrashParams) -> Result<Self, ParamsError> {
        Ok(Self {
            seats: ParamsError::check_range("seats", p.seats, 1..=8)?,
            count: 0,
            last_seq: 0,
            out_of_order: 0,
            tick_ms: match p.tick_ms {
                Some(ms) => Some(ParamsError::check_range("tick_ms", ms, 10..=1000)?),
                None => None,
            },
        })
    }

    fn seats(&self) -> u32 {
        self.seats
    }

    fn tick_interval(&self) -> Option<std::time::Duration> {
        self.tick_ms.map(std::time::Duration::from_millis)
    }

    fn on_input(
        &mut self,
        ctx: &mut GameCtx<'_, CrashEvent>,
        _player: &PlayerId,
        input: CrashInput,
        seq: Option<u64>,
    ) -> Result<(), GameError> {
        match input {
            CrashInput::Panic => panic!("crash game asked to panic"),
            CrashInput::Stall { ms } => {
                // The tests wait for this line to know the room is busy.
                tracing::info!(ms, "crash room stalls");
                std::thread::sleep(std::time::Duration::from_millis(ms.min(5000)));
                Ok(())
            }
            CrashInput::Count => {
                self.count += 1;
                if let Some(seq) = seq {
                    if seq <= self.last_seq {
                        self.out_of_order += 1;
                    }
                    self.last_seq = self.last_seq.max(seq);
                }
                ctx.emit(CrashEvent::Counted { count: self.count });
                Ok(())
            }
        }
    }

    fn view(&self) -> impl Serialize + '_ {
        View {
            count: self.count,
            last_seq: self.last_seq,
            out_of_order: self.out_of_order,
        }
    }
}
