//! The checker: reads the nodes' logs into where each room ran and when, and holds the recorded
//! history to the soak's promises.

// Record types: each field is named for what it holds, as report.json shows it.
#![allow(missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead as _;

use serde::Serialize;
use serde_json::Value;

use super::cluster::Life;
use super::players::{ArenaLog, QueueLog};

/// A room running on one process, from its `room live` to its `room stopped` (or the process's
/// end).
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    pub node: String,
    pub pid: u32,
    pub from_us: i64,
    pub to_us: i64,
}

/// Two copies of one room running at once.
#[derive(Clone, Debug, Serialize)]
pub struct Overlap {
    pub room: String,
    pub nodes: (String, String),
    pub at_us: i64,
    pub ms: f64,
}

/// What the logs say, besides the room runs.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LogFacts {
    /// ERROR lines, by message.
    pub errors: BTreeMap<String, u64>,
    /// WARN lines, by message.
    pub warnings: BTreeMap<String, u64>,
}

/// Microseconds since the Unix epoch of an RFC 3339 UTC time as the node logs it
/// (`2026-12-03T09:01:44.866376Z`).
pub fn parse_time_us(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':').map(|x| x.parse::<i64>().ok());
    let (h, min, sec) = (t.next()??, t.next()??, t.next()??);
    let digits: String = frac.chars().take(6).collect();
    let micros = digits.parse::<i64>().ok()? * 10i64.pow(6 - digits.len() as u32);
    let days = days_from_civil(y, m, day);
    Some(((days * 24 + h) * 60 + min) * 60 * 1_000_000 + sec * 1_000_000 + micros)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Every room's runs, from every process's log; a run still open when its process ended ends
/// then (a process still running ends at `now_us`).
pub fn room_runs(lives: &[Life], now_us: i64) -> (HashMap<String, Vec<Run>>, LogFacts) {
    let mut runs: HashMap<String, Vec<Run>> = HashMap::new();
    let mut facts = LogFacts::default();
    for life in lives {
        let end = life.ended_us.unwrap_or(now_us);
        let mut open: HashMap<String, i64> = HashMap::new();
        let Ok(f) = std::fs::File::open(&life.log) else {
            continue;
        };
        for line in std::io::BufReader::new(f).lines().map_while(Result::ok) {
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            let msg = v["message"].as_str().unwrap_or_default();
            match v["level"].as_str() {
                Some("ERROR") => *facts.errors.entry(msg.to_owned()).or_default() += 1,
                Some("WARN") => *facts.warnings.entry(msg.to_owned()).or_default() += 1,
                _ => {}
            }
            if v["target"] != "warren_room_life" {
                continue;
            }
            let (Some(room), Some(at)) = (
                v["room"].as_str(),
                v["timestamp"].as_str().and_then(parse_time_us),
            ) else {
                continue;
            };
            match msg {
                "room live" => {
                    open.insert(room.to_owned(), at);
                }
                "room stopped" => {
                    if let Some(from) = open.remove(room) {
                        runs.entry(room.to_owned()).or_default().push(Run {
                            node: life.node.clone(),
                            pid: life.pid,
                            from_us: from,
                            to_us: at,
                        });
                    }
                }
                _ => {}
            }
        }
        for (room, from) in open {
            runs.entry(room).or_default().push(Run {
                node: life.node.clone(),
                pid: life.pid,
                from_us: from,
                to_us: end,
            });
        }
    }
    (runs, facts)
}

/// Runs of one room on two processes that overlap in time.
pub fn overlaps(runs: &HashMap<String, Vec<Run>>) -> Vec<Overlap> {
    let mut out = Vec::new();
    for (room, rs) in runs {
        for (i, a) in rs.iter().enumerate() {
            for b in &rs[i + 1..] {
                if a.pid == b.pid {
                    continue;
                }
                let (from, to) = (a.from_us.max(b.from_us), a.to_us.min(b.to_us));
                if to > from {
                    out.push(Overlap {
                        room: room.clone(),
                        nodes: (a.node.clone(), b.node.clone()),
                        at_us: from,
                        ms: (to - from) as f64 / 1e3,
                    });
                }
            }
        }
    }
    out.sort_by_key(|o| o.at_us);
    out
}

/// A fault the schedule applied, as the checker needs it.
#[derive(Clone, Debug, Serialize)]
pub struct Fault {
    pub kind: &'static str,
    pub node: String,
    pub at_us: i64,
    /// When the node was back (ready in the cluster again).
    pub back_us: i64,
}

/// The promises' bounds.
pub struct Bounds {
    pub failure_timeout_ms: u64,
    /// Ticks of one snapshot interval.
    pub snapshot_ticks: u64,
}

/// The figures and the broken promises of a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Verdict {
    pub violations: Vec<String>,
    /// Reconnects of seated players, and the longest wait for the seat, in ms.
    pub reseated: u64,
    pub longest_reseat_ms: f64,
    /// Acknowledged ticks lost after a kill or a partition: the most, in ticks.
    pub kill_loss_ticks: u64,
    pub partition_loss_ticks: u64,
    /// Regressions seen, by cause.
    pub kill_regressions: u64,
    pub partition_regressions: u64,
    pub other_regressions: u64,
    pub matches: u64,
    pub tickets_matched_twice: u64,
    pub longest_pause_ms: f64,
}

/// The fault a moment of the run follows: a kill or a partition whose effects can still show
/// (until its node was back, and a failure timeout and 5 s more).
fn cause(faults: &[Fault], at_us: i64, ft_ms: u64) -> Option<&Fault> {
    let tail = (ft_ms as i64 + 5_000) * 1_000;
    faults
        .iter()
        .filter(|f| f.kind == "kill" || f.kind == "partition")
        .rfind(|f| f.at_us <= at_us && at_us <= f.back_us.max(f.at_us) + tail)
}

/// Holds the players' history to the promises.
pub fn judge(
    arena: &[ArenaLog],
    queues: &[QueueLog],
    faults: &[Fault],
    round_ends_us: &[i64],
    b: &Bounds,
) -> Verdict {
    let mut v = Verdict::default();
    let bound_ms = b.failure_timeout_ms as f64 + 1_000.0;
    for p in arena {
        if let Some(why) = &p.failed {
            v.violations
                .push(format!("{} (room {}): {why}", p.player, p.room));
        }
        if let Some(why) = &p.seat_lost {
            v.violations
                .push(format!("{} lost its seat in {}: {why}", p.player, p.room));
        }
        v.longest_pause_ms = v.longest_pause_ms.max(p.longest_pause_ms);
        for l in &p.losses {
            match l.seated_after_ms {
                Some(ms) => {
                    v.reseated += 1;
                    v.longest_reseat_ms = v.longest_reseat_ms.max(ms);
                    if ms > bound_ms {
                        v.violations.push(format!(
                            "{} (room {}) was seated again {ms:.0} ms after losing its connection \
                             to {} (close {}), more than the failure timeout + 1 s",
                            p.player, p.room, l.node, l.code
                        ));
                    }
                }
                None => {
                    // Unless the round ended before the bound was up.
                    let end = round_ends_us
                        .iter()
                        .find(|&&e| e >= l.at_us)
                        .copied()
                        .unwrap_or(i64::MAX);
                    if (end - l.at_us) as f64 / 1e3 > bound_ms {
                        v.violations.push(format!(
                            "{} (room {}) was never seated again after losing its connection to {} \
                             (close {})",
                            p.player, p.room, l.node, l.code
                        ));
                    }
                }
            }
        }
        for r in &p.regressions {
            let ticks = r.tick_before.saturating_sub(r.tick_now);
            match cause(faults, r.at_us, b.failure_timeout_ms) {
                Some(f) if f.kind == "kill" => {
                    v.kill_regressions += 1;
                    v.kill_loss_ticks = v.kill_loss_ticks.max(ticks);
                    if ticks > b.snapshot_ticks + 1 {
                        v.violations.push(format!(
                            "{} (room {}): {ticks} ticks (acks {} → {}) lost after {} was killed, \
                             more than one snapshot interval ({} ticks)",
                            p.player, p.room, r.acked, r.now, f.node, b.snapshot_ticks
                        ));
                    }
                }
                Some(_) => {
                    v.partition_regressions += 1;
                    v.partition_loss_ticks = v.partition_loss_ticks.max(ticks);
                }
                None => {
                    v.other_regressions += 1;
                    v.violations.push(format!(
                        "{} (room {}): acknowledged inputs lost with no kill or partition \
                         (acks {} → {}, ticks {} → {})",
                        p.player, p.room, r.acked, r.now, r.tick_before, r.tick_now
                    ));
                }
            }
        }
    }
    let mut tickets: HashMap<&str, Vec<&str>> = HashMap::new();
    for q in queues {
        if let Some(why) = &q.failed {
            v.violations.push(format!("{}: {why}", q.player));
        }
        for m in &q.matches {
            v.matches += 1;
            tickets.entry(&m.ticket).or_default().push(&m.room);
        }
    }
    for (t, rooms) in tickets {
        if rooms.len() > 1 {
            v.tickets_matched_twice += 1;
            v.violations.push(format!(
                "ticket {t} matched {} times: {rooms:?}",
                rooms.len()
            ));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_times_read_as_unix_microseconds() {
        assert_eq!(parse_time_us("1970-01-01T00:00:00.000001Z"), Some(1));
        assert_eq!(
            parse_time_us("2000-03-01T00:00:01.5Z"),
            Some(11_017 * 86_400 * 1_000_000 + 1_500_000)
        );
        // 2026-12-03T09:01:44.866376Z, from `date -d … +%s%6N`.
        assert_eq!(
            parse_time_us("2026-12-03T09:01:44.866376Z"),
            Some(1_796_288_504_866_376)
        );
        assert_eq!(parse_time_us("not a time"), None);
    }

    #[test]
    fn runs_of_one_room_on_two_processes_at_once_are_overlaps() {
        let run = |node: &str, pid, from_us, to_us| Run {
            node: node.into(),
            pid,
            from_us,
            to_us,
        };
        let mut runs = HashMap::new();
        // A move: n1 stops before n2 starts. A restart on n2 (same process) does not count.
        runs.insert(
            "r1".to_owned(),
            vec![
                run("n1", 1, 0, 100),
                run("n2", 2, 101, 200),
                run("n2", 2, 150, 300),
            ],
        );
        assert!(overlaps(&runs).is_empty());
        // Adopted while the old host still ran it for 50 µs.
        runs.insert(
            "r2".to_owned(),
            vec![run("n1", 1, 0, 150), run("n3", 3, 100, 400)],
        );
        let o = overlaps(&runs);
        assert_eq!(o.len(), 1);
        assert_eq!((o[0].room.as_str(), o[0].ms), ("r2", 0.05));
    }
}
