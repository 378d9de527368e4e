//! Room timers on the node's grid (`rooms.tick_grid_ms`).

use std::sync::OnceLock;
use std::time::Duration;

use ractor::ActorRef;
use ractor::concurrency::JoinHandle;

use super::RoomMsg;

/// Sends `msg()` to the room every `period`, starting on the node's timer grid
/// (`rooms.tick_grid_ms`). Rooms whose timers share a grid point fire in one turn of the runtime,
/// and their output reaches each socket thread in one wake-up, instead of one wake-up per room.
pub(super) fn on_grid(
    me: ActorRef<RoomMsg>,
    grid: Duration,
    period: Duration,
    msg: impl Fn() -> RoomMsg + Send + 'static,
) -> JoinHandle<()> {
    static EPOCH: OnceLock<tokio::time::Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(tokio::time::Instant::now);
    let start = epoch + grid_start(tokio::time::Instant::now() - epoch, grid, period);
    tokio::spawn(async move {
        let mut every = tokio::time::interval_at(start, period);
        loop {
            every.tick().await;
            if me.cast(msg()).is_err() {
                break;
            }
        }
    })
}

/// When a timer started `since` after the grid's epoch first fires: one `period` after the next
/// grid point (or after now, without a grid).
fn grid_start(since: Duration, grid: Duration, period: Duration) -> Duration {
    if grid.is_zero() {
        return since + period;
    }
    let slots = since.as_nanos() / grid.as_nanos() + 1;
    Duration::from_nanos((slots * grid.as_nanos()) as u64) + period
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_started_in_one_grid_slot_fire_together() {
        let ms = Duration::from_millis;
        let (grid, period) = (ms(10), ms(50));
        // Started 1 ms and 9 ms into the same slot: both first fire at 10 + 50 ms.
        assert_eq!(grid_start(ms(1), grid, period), ms(60));
        assert_eq!(grid_start(ms(9), grid, period), ms(60));
        // On a grid point: the next one.
        assert_eq!(grid_start(ms(10), grid, period), ms(70));
        // Timers of different slots keep whole slots apart.
        assert_eq!(grid_start(ms(23), grid, period), ms(80));
        // Without a grid: one period from now.
        assert_eq!(grid_start(ms(7), Duration::ZERO, period), ms(57));
    }
}
