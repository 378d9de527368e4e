//! A room snapshot from anywhere (a peer's replica, a move, a restart), restored as a node
//! restores it: the snapshot's layout, then the game's state at the snapshot's state version,
//! for every game this repository ships; a restored game then shows its state. An error,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren_actors::game::arena::Arena;
use warren_actors::game::dice::Dice;
use warren_actors::game::testing::restore;
use warren_actors::game::Game;
use warren_actors::room::RoomSnapshot;
use warren_eights::Eights;

fn revive<G: Game>(version: u32, state: &[u8]) {
    if let Ok(game) = restore::<G>(version, state) {
        let _ = serde_json::to_string(&game.view());
    }
}

fuzz_target!(|data: &[u8]| {
    // A whole snapshot.
    if let Ok(s) = RoomSnapshot::decode(data) {
        match s.game.as_str() {
            "dice" => revive::<Dice>(s.game_version, &s.game_state),
            "arena" => revive::<Arena>(s.game_version, &s.game_state),
            "eights" => revive::<Eights>(s.game_version, &s.game_state),
            _ => {}
        }
    }
    // A game's state alone: the first byte picks the game and the state version.
    let Some((&pick, state)) = data.split_first() else {
        return;
    };
    let version = u32::from(pick >> 2);
    match pick & 3 {
        0 => revive::<Dice>(version, state),
        1 => revive::<Arena>(version, state),
        _ => revive::<Eights>(version, state),
    }
});
