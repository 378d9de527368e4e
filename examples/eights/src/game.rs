//! Crazy eights on Warren, written only against the public game API (`warren::game`).
//!
//! Rules. 2–4 players (`seats`), each dealt `hand` cards (3–7) from one shuffled 52-card deck; one
//! card starts the pile. The game starts when at least two players are seated and all of them
//! sent `ready`; from then on the room refuses new players. In turn, a player plays a card that
//! matches the top of the pile in rank or in suit, or any 8, naming the suit to follow
//! (`{"action":"play","card":"8H","suit":"S"}`), or draws one card, which ends its turn
//! (`{"action":"draw"}`). Whoever empties its hand first wins. A player who lets `turn_ms` pass
//! draws automatically. A player who leaves mid-game has its cards shuffled back into the deck;
//! the last player left wins.
//!
//! Hidden information: a player's hand is in its own view only, a drawn card in the drawer's
//! `drew` event only, the deck's order in nobody's. Everyone sees the pile's top, the suit to
//! follow, whose turn it is, and how many cards each player holds.
//!
//! This file is built twice: as version 2 of the game (the `warren-eights` package) and, with
//! `--cfg eights_v1`, as version 1 (the `warren-eights-v1` package), whose state named the pile
//! `discard` and did not count moves. Version 2 reads version 1's snapshots ([`Game::upgrades`]),
//! so a cluster upgrades from one to the other while games go on.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use rand::seq::SliceRandom as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
#[cfg(not(eights_v1))]
use warren::game::Upgrades;
use warren::game::{ErrorCode, Game, GameCtx, GameError, ParamsError, PlayerId};

/// A card: rank 1 (ace) to 13 (king) and a suit. Written as `"AS"`, `"10H"`, `"QD"`, `"8C"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Card {
    /// 1 (ace) to 13 (king).
    pub rank: u8,
    /// The suit.
    pub suit: Suit,
}

/// A suit, written `S`, `H`, `D` or `C`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Suit {
    /// Spades.
    S,
    /// Hearts.
    H,
    /// Diamonds.
    D,
    /// Clubs.
    C,
}

const SUITS: [Suit; 4] = [Suit::S, Suit::H, Suit::D, Suit::C];
const RANKS: [&str; 13] = [
    "A", "2", "3", "4", "5", "6", "7", "8", "9", "10", "J", "Q", "K",
];

impl Card {
    /// Every card of a deck, in order.
    pub fn deck() -> Vec<Card> {
        SUITS
            .iter()
            .flat_map(|&suit| (1..=13).map(move |rank| Card { rank, suit }))
            .collect()
    }
}

impl fmt::Display for Card {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:?}", RANKS[usize::from(self.rank - 1)], self.suit)
    }
}

impl FromStr for Card {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a card (rank A, 2–10, J, Q, K, then suit S, H, D, C)");
        // The suit is the last character (which may be any character a client sends).
        let (last, _) = s.char_indices().next_back().ok_or_else(bad)?;
        let (rank, suit) = s.split_at(last);
        let suit = match suit {
            "S" => Suit::S,
            "H" => Suit::H,
            "D" => Suit::D,
            "C" => Suit::C,
            _ => return Err(bad()),
        };
        let rank = RANKS.iter().position(|r| *r == rank).ok_or_else(bad)? as u8 + 1;
        Ok(Card { rank, suit })
    }
}

impl Serialize for Card {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Card {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Where a game is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Seating players until all are ready.
    Waiting,
    /// Being played.
    Playing,
    /// Someone won.
    Over,
}

/// The whole state of a game: what Warren snapshots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Eights {
    seats: u32,
    hand_size: u32,
    turn_ms: u64,
    phase: Phase,
    /// Face down; the last card is drawn first.
    deck: Vec<Card>,
    /// Face up; the last card is the top.
    #[cfg(eights_v1)]
    discard: Vec<Card>,
    /// Face up; the last card is the top.
    #[cfg(not(eights_v1))]
    pile: Vec<Card>,
    /// The suit to follow (an 8 names one).
    suit: Option<Suit>,
    hands: BTreeMap<PlayerId, Vec<Card>>,
    /// Players in turn order.
    order: Vec<PlayerId>,
    /// Index into `order` of whose turn it is.
    turn: usize,
    turn_deadline_ms: Option<u64>,
    winner: Option<PlayerId>,
    /// Plays and draws so far (version 2 added it).
    #[cfg(not(eights_v1))]
    moves: u32,
}

/// The state as version 1 of the game wrote it, kept so version 2 reads its snapshots.
#[cfg(not(eights_v1))]
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
pub struct EightsV1 {
    seats: u32,
    hand_size: u32,
    turn_ms: u64,
    phase: Phase,
    deck: Vec<Card>,
    discard: Vec<Card>,
    suit: Option<Suit>,
    hands: BTreeMap<PlayerId, Vec<Card>>,
    order: Vec<PlayerId>,
    turn: usize,
    turn_deadline_ms: Option<u64>,
    winner: Option<PlayerId>,
}

/// Version 1 → 2: `discard` is now `pile`, and the moves of a game already under way count from
/// the cards on the pile past the first (plays; draws before the upgrade are not known).
#[cfg(not(eights_v1))]
impl From<EightsV1> for Eights {
    fn from(v1: EightsV1) -> Self {
        let moves = v1.discard.len().saturating_sub(1) as u32;
        Self {
            seats: v1.seats,
            hand_size: v1.hand_size,
            turn_ms: v1.turn_ms,
            phase: v1.phase,
            deck: v1.deck,
            pile: v1.discard,
            suit: v1.suit,
            hands: v1.hands,
            order: v1.order,
            turn: v1.turn,
            turn_deadline_ms: v1.turn_deadline_ms,
            winner: v1.winner,
            moves,
        }
    }
}

/// `create_room` params.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Seats, 2–4 (default 4).
    #[serde(default = "Params::seats")]
    pub seats: u32,
    /// Cards dealt to each player, 3–7 (default 5).
    #[serde(default = "Params::hand")]
    pub hand: u32,
    /// Time for a turn before the server draws for the player, 1000–120000 ms (default 20000).
    #[serde(default = "Params::turn_ms")]
    pub turn_ms: u64,
}

impl Params {
    fn seats() -> u32 {
        4
    }
    fn hand() -> u32 {
        5
    }
    fn turn_ms() -> u64 {
        20_000
    }
}

/// What a player sends (`input`'s `data`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Move {
    /// Play a card from the hand; an 8 names the suit to follow.
    Play {
        /// The card.
        card: Card,
        /// The suit to follow, with an 8 (and only then).
        #[serde(default)]
        suit: Option<Suit>,
    },
    /// Draw a card; the turn passes.
    Draw {},
}

/// What players are told (`room_event`'s `event`, `room_message`'s `message`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// The game started: turn order, the pile's first card, and (for each player only) its hand.
    Started {
        /// Players in turn order.
        order: Vec<PlayerId>,
        /// The pile's first card.
        top: Card,
        /// The receiver's hand.
        hand: Vec<Card>,
    },
    /// A card was played; `suit` is the suit to follow now.
    Played {
        /// Who.
        player: PlayerId,
        /// What.
        card: Card,
        /// The suit to follow.
        suit: Suit,
        /// Cards the player holds now (0: it won, and `game_over` follows).
        cards: usize,
    },
    /// A player drew (`auto`: its time ran out). Only the drawer is told the card.
    Drew {
        /// Who.
        player: PlayerId,
        /// The card, for the drawer only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        card: Option<Card>,
        /// Drawn by the server when the player's time ran out.
        auto: bool,
        /// Cards the player holds now.
        cards: usize,
    },
    /// A player could not draw (deck and pile both spent); the turn passes.
    Passed {
        /// Who.
        player: PlayerId,
    },
    /// The game is over.
    GameOver {
        /// The winner.
        winner: PlayerId,
        /// Plays and draws in the game (version 2 and later).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        moves: Option<u32>,
    },
    /// To one player (`room_message`): it is your turn, until `deadline_ms`.
    YourTurn {
        /// When the server draws for the player (ms since the Unix epoch).
        deadline_ms: u64,
    },
}

/// What a player sees of the game (`room_state`'s `state`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct View {
    /// `waiting`, `playing` or `over`.
    pub phase: Phase,
    /// Players in turn order.
    pub order: Vec<PlayerId>,
    /// Whose turn it is.
    pub turn: Option<PlayerId>,
    /// The pile's top.
    pub top: Option<Card>,
    /// The suit to follow.
    pub suit: Option<Suit>,
    /// Cards left in the deck.
    pub deck: usize,
    /// How many cards each player holds.
    pub hands: BTreeMap<PlayerId, usize>,
    /// The viewer's own hand (absent for a player not dealt in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hand: Option<Vec<Card>>,
    /// The winner, once there is one.
    pub winner: Option<PlayerId>,
}

type Ctx<'a> = GameCtx<'a, Event>;

impl Eights {
    #[cfg(eights_v1)]
    fn pile(&self) -> &Vec<Card> {
        &self.discard
    }
    #[cfg(eights_v1)]
    fn pile_mut(&mut self) -> &mut Vec<Card> {
        &mut self.discard
    }
    #[cfg(not(eights_v1))]
    fn pile(&self) -> &Vec<Card> {
        &self.pile
    }
    #[cfg(not(eights_v1))]
    fn pile_mut(&mut self) -> &mut Vec<Card> {
        &mut self.pile
    }

    #[cfg(eights_v1)]
    fn count_move(&mut self) {}
    #[cfg(not(eights_v1))]
    fn count_move(&mut self) {
        self.moves += 1;
    }
    #[cfg(eights_v1)]
    fn moves(&self) -> Option<u32> {
        None
    }
    #[cfg(not(eights_v1))]
    fn moves(&self) -> Option<u32> {
        Some(self.moves)
    }

    fn current(&self) -> Option<&PlayerId> {
        (self.phase == Phase::Playing)
            .then(|| self.order.get(self.turn))
            .flatten()
    }

    fn playable(&self, card: Card) -> bool {
        card.rank == 8
            || self.pile().last().is_some_and(|top| top.rank == card.rank)
            || self.suit == Some(card.suit)
    }

    /// Draws the deck's next card, first shuffling the pile under its top back in when the deck is
    /// spent. `None` when there is no card to draw.
    fn draw_card(&mut self, ctx: &mut Ctx<'_>) -> Option<Card> {
        if self.deck.is_empty() {
            let pile = self.pile_mut();
            let top = pile.pop()?;
            let mut rest = std::mem::replace(pile, vec![top]);
            rest.shuffle(ctx.rng);
            self.deck = rest;
        }
        self.deck.pop()
    }

    /// The current player draws a card and its turn passes.
    fn draw(&mut self, ctx: &mut Ctx<'_>, auto: bool) {
        let Some(player) = self.current().cloned() else {
            return;
        };
        match self.draw_card(ctx) {
            Some(card) => {
                let hand = self.hands.entry(player.clone()).or_default();
                hand.push(card);
                let cards = hand.len();
                self.count_move();
                ctx.emit_each(|viewer| Event::Drew {
                    player: player.clone(),
                    card: (*viewer == player).then_some(card),
                    auto,
                    cards,
                });
            }
            None => ctx.emit(Event::Passed { player }),
        }
        self.pass(ctx, self.turn + 1);
    }

    /// Gives the turn to `order[next]` (wrapping).
    fn pass(&mut self, ctx: &mut Ctx<'_>, next: usize) {
        if self.order.is_empty() {
            return;
        }
        self.turn = next % self.order.len();
        let deadline_ms = ctx.now_ms + self.turn_ms;
        self.turn_deadline_ms = Some(deadline_ms);
        let next = self.order[self.turn].clone();
        ctx.send_to(&next, Event::YourTurn { deadline_ms });
    }

    fn finish(&mut self, ctx: &mut Ctx<'_>, winner: PlayerId) {
        self.phase = Phase::Over;
        self.turn_deadline_ms = None;
        self.winner = Some(winner.clone());
        ctx.emit(Event::GameOver {
            winner,
            moves: self.moves(),
        });
    }

    fn start(&mut self, ctx: &mut Ctx<'_>) {
        let mut deck = Card::deck();
        deck.shuffle(ctx.rng);
        self.order = ctx.seats.iter().map(|s| s.player.clone()).collect();
        self.hands = self
            .order
            .iter()
            .map(|p| {
                let hand = deck.split_off(deck.len() - self.hand_size as usize);
                (p.clone(), hand)
            })
            .collect();
        // The pile starts with a card that is not an 8 (an 8 would need a suit named).
        let first = deck.iter().rposition(|c| c.rank != 8).unwrap_or(0);
        let top = deck.remove(first);
        *self.pile_mut() = vec![top];
        self.suit = Some(top.suit);
        self.deck = deck;
        self.phase = Phase::Playing;
        let (order, hands) = (self.order.clone(), &self.hands);
        ctx.emit_each(|viewer| Event::Started {
            order: order.clone(),
            top,
            hand: hands.get(viewer).cloned().unwrap_or_default(),
        });
        self.pass(ctx, 0);
    }
}

impl Game for Eights {
    type Params = Params;
    type Input = Move;
    type Event = Event;
    const NAME: &'static str = "eights";
    const DEFAULT_SEATS: u32 = 2;
    #[cfg(eights_v1)]
    const STATE_VERSION: u32 = 1;
    #[cfg(not(eights_v1))]
    const STATE_VERSION: u32 = 2;

    fn create(p: Params) -> Result<Self, ParamsError> {
        Ok(Self {
            seats: ParamsError::check_range("seats", p.seats, 2..=4)?,
            hand_size: ParamsError::check_range("hand", p.hand, 3..=7)?,
            turn_ms: ParamsError::check_range("turn_ms", p.turn_ms, 1000..=120_000)?,
            phase: Phase::Waiting,
            deck: Vec::new(),
            #[cfg(eights_v1)]
            discard: Vec::new(),
            #[cfg(not(eights_v1))]
            pile: Vec::new(),
            suit: None,
            hands: BTreeMap::new(),
            order: Vec::new(),
            turn: 0,
            turn_deadline_ms: None,
            winner: None,
            #[cfg(not(eights_v1))]
            moves: 0,
        })
    }

    fn seats(&self) -> u32 {
        self.seats
    }

    fn on_join(&mut self, _ctx: &mut Ctx<'_>, _player: &PlayerId) -> Result<(), GameError> {
        match self.phase {
            Phase::Waiting => Ok(()),
            Phase::Playing => Err(GameError::new(
                ErrorCode::InvalidState,
                "the game has started; join another room",
            )),
            Phase::Over => Err(GameError::invalid_state("the game is over")),
        }
    }

    fn on_leave(&mut self, ctx: &mut Ctx<'_>, player: &PlayerId) {
        if self.phase != Phase::Playing {
            return;
        }
        let Some(idx) = self.order.iter().position(|p| p == player) else {
            return;
        };
        // Its cards go back into the deck, unseen.
        if let Some(hand) = self.hands.remove(player) {
            self.deck.extend(hand);
            self.deck.shuffle(ctx.rng);
        }
        self.order.remove(idx);
        if self.order.len() == 1 {
            let last = self.order[0].clone();
            return self.finish(ctx, last);
        }
        match self.turn {
            t if t == idx => self.pass(ctx, idx),
            t if t > idx => self.turn -= 1,
            _ => {}
        }
    }

    fn on_ready(&mut self, ctx: &mut Ctx<'_>, _player: &PlayerId) -> Result<(), GameError> {
        if self.phase != Phase::Waiting {
            return Err(GameError::invalid_state("the game has started"));
        }
        if ctx.seats.len() >= 2 && ctx.seats.iter().all(|s| s.ready) {
            self.start(ctx);
        }
        Ok(())
    }

    fn on_input(
        &mut self,
        ctx: &mut Ctx<'_>,
        player: &PlayerId,
        input: Move,
        _seq: Option<u64>,
    ) -> Result<(), GameError> {
        if self.phase != Phase::Playing {
            return Err(GameError::invalid_state("no game is being played"));
        }
        if self.current() != Some(player) {
            return Err(GameError::not_your_turn());
        }
        match input {
            Move::Draw {} => self.draw(ctx, false),
            Move::Play { card, suit } => {
                let hand = self.hands.get(player).map(Vec::as_slice).unwrap_or(&[]);
                let Some(at) = hand.iter().position(|c| *c == card) else {
                    return Err(GameError::invalid_input(format!(
                        "{card} is not in your hand"
                    )));
                };
                if !self.playable(card) {
                    return Err(GameError::invalid_input(format!(
                        "{card} matches neither the suit nor the rank of the top card"
                    )));
                }
                let follow = match (card.rank, suit) {
                    (8, Some(s)) => s,
                    (8, None) => {
                        return Err(GameError::invalid_input("an 8 names the suit to follow"));
                    }
                    (_, Some(_)) => {
                        return Err(GameError::invalid_input("only an 8 names a suit"));
                    }
                    (_, None) => card.suit,
                };
                let left = match self.hands.get_mut(player) {
                    Some(hand) => {
                        hand.remove(at);
                        hand.len()
                    }
                    None => 0,
                };
                self.pile_mut().push(card);
                self.suit = Some(follow);
                self.count_move();
                ctx.emit(Event::Played {
                    player: player.clone(),
                    card,
                    suit: follow,
                    cards: left,
                });
                if left == 0 {
                    self.finish(ctx, player.clone());
                } else {
                    self.pass(ctx, self.turn + 1);
                }
            }
        }
        Ok(())
    }

    fn on_deadline(&mut self, ctx: &mut Ctx<'_>) {
        if self.turn_deadline_ms.is_some_and(|d| d <= ctx.now_ms) {
            self.draw(ctx, true);
        }
    }

    fn deadline_ms(&self) -> Option<u64> {
        self.turn_deadline_ms
    }

    fn view(&self) -> impl Serialize + '_ {
        self.common_view()
    }

    fn view_for(&self, player: &PlayerId) -> Option<impl Serialize + '_> {
        let hand = self.hands.get(player)?;
        let mut v = self.common_view();
        v.hand = Some(hand.clone());
        Some(v)
    }

    #[cfg(not(eights_v1))]
    fn upgrades() -> Upgrades<Self> {
        Upgrades::new().version::<EightsV1>(1)
    }
}

impl Eights {
    /// The view every player shares.
    fn common_view(&self) -> View {
        View {
            phase: self.phase,
            order: self.order.clone(),
            turn: self.current().cloned(),
            top: self.pile().last().copied(),
            suit: self.suit,
            deck: self.deck.len(),
            hands: self
                .hands
                .iter()
                .map(|(p, h)| (p.clone(), h.len()))
                .collect(),
            hand: None,
            winner: self.winner.clone(),
        }
    }
}

#[cfg(all(test, not(eights_v1)))]
#[allow(clippy::unwrap_used)]
mod tests {
    use rand::SeedableRng as _;
    use rand::rngs::StdRng;
    use serde_json::{Value, json};
    use warren::game::{Emit, GameSpec, SeatView, testing};

    use super::*;

    fn seats(n: usize) -> Vec<SeatView> {
        (0..n)
            .map(|i| SeatView {
                player: PlayerId::new(format!("p{i}")),
                seat: i as u32,
                ready: true,
            })
            .collect()
    }

    fn new_game(seats_n: usize) -> (Eights, Vec<SeatView>, StdRng) {
        let g = Eights::create(serde_json::from_value(json!({"seats": 4})).unwrap()).unwrap();
        (g, seats(seats_n), StdRng::seed_from_u64(7))
    }

    fn json_of(v: impl Serialize) -> Value {
        serde_json::to_value(v).unwrap()
    }

    #[test]
    fn cards_read_and_write_as_rank_then_suit() {
        for s in ["AS", "10H", "QD", "8C", "2S", "KH"] {
            assert_eq!(s.parse::<Card>().unwrap().to_string(), s);
        }
        for bad in ["", "S", "1S", "11H", "8X", "10", "AAS"] {
            assert!(bad.parse::<Card>().is_err(), "{bad}");
        }
        assert_eq!(Card::deck().len(), 52);
    }

    #[test]
    fn a_started_game_shows_each_player_its_own_hand_only() {
        let (mut g, s, mut rng) = new_game(3);
        let mut ctx = GameCtx::new(1_000, &s, &mut rng);
        g.on_ready(&mut ctx, &s[0].player).unwrap();
        let Emit::Each(started) = &ctx.emitted()[0] else {
            panic!("{:?}", ctx.emitted());
        };
        for (player, ev) in started {
            let Event::Started { hand, .. } = ev else {
                panic!("{ev:?}")
            };
            assert_eq!(hand, &g.hands[player]);
        }
        // The turn message goes to the first player only.
        assert!(
            matches!(&ctx.emitted()[1], Emit::To(p, Event::YourTurn { .. }) if *p == s[0].player)
        );
        let common = json_of(g.view());
        assert!(common.get("hand").is_none(), "{common}");
        assert_eq!(common["hands"]["p1"], 5);
        for seat in &s {
            let v = json_of(g.view_for(&seat.player).unwrap());
            assert_eq!(json_of(&g.hands[&seat.player]), v["hand"]);
        }
        assert!(g.view_for(&PlayerId::new("stranger")).is_none());
        // Started: nobody else may sit down.
        let err = g.on_join(&mut ctx, &PlayerId::new("late")).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidState);
    }

    #[test]
    fn only_the_drawer_learns_the_card_and_plays_follow_the_rules() {
        let (mut g, s, mut rng) = new_game(2);
        let mut ctx = GameCtx::new(1_000, &s, &mut rng);
        g.on_ready(&mut ctx, &s[0].player).unwrap();
        ctx.take_emitted();
        let (p0, p1) = (s[0].player.clone(), s[1].player.clone());
        assert_eq!(
            g.on_input(&mut ctx, &p1, Move::Draw {}, None)
                .unwrap_err()
                .code,
            ErrorCode::NotYourTurn
        );
        g.on_input(&mut ctx, &p0, Move::Draw {}, None).unwrap();
        let Emit::Each(drew) = &ctx.emitted()[0] else {
            panic!("{:?}", ctx.emitted());
        };
        for (viewer, ev) in drew {
            let Event::Drew { card, .. } = ev else {
                panic!("{ev:?}")
            };
            assert_eq!(card.is_some(), *viewer == p0, "{viewer}: {ev:?}");
        }
        // A card not in the hand, and an unplayable one, are refused; the game is unchanged.
        let before = g.clone();
        let not_mine = g.hands[&p0][0];
        let e = g
            .on_input(
                &mut ctx,
                &p1,
                Move::Play {
                    card: not_mine,
                    suit: None,
                },
                None,
            )
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        let top = *g.pile().last().unwrap();
        if let Some(bad) = g.hands[&p1]
            .iter()
            .copied()
            .find(|c| c.rank != 8 && c.rank != top.rank && Some(c.suit) != g.suit)
        {
            assert!(
                g.on_input(
                    &mut ctx,
                    &p1,
                    Move::Play {
                        card: bad,
                        suit: None
                    },
                    None
                )
                .is_err()
            );
        }
        assert_eq!(g, before);
        // The turn runs out: the server draws for p1.
        let deadline = g.deadline_ms().unwrap();
        let mut ctx = GameCtx::new(deadline, &s, &mut rng);
        g.on_deadline(&mut ctx);
        assert!(
            matches!(&ctx.emitted()[0], Emit::Each(e) if matches!(e[0].1, Event::Drew { auto: true, .. }))
        );
        assert_eq!(g.moves, 2);
    }

    #[test]
    fn version_2_reads_version_1_snapshots() {
        let v1 = EightsV1 {
            seats: 3,
            hand_size: 5,
            turn_ms: 20_000,
            phase: Phase::Playing,
            deck: vec!["2S".parse().unwrap()],
            discard: vec!["3S".parse().unwrap(), "4S".parse().unwrap()],
            suit: Some(Suit::S),
            hands: BTreeMap::from([(PlayerId::new("a"), vec!["5S".parse().unwrap()])]),
            order: vec![PlayerId::new("a")],
            turn: 0,
            turn_deadline_ms: Some(5),
            winner: None,
        };
        // A version 1 snapshot, as a version 1 node keeps it, revived by this version.
        let bytes = testing::encode_state(&v1);
        let spec = GameSpec::of::<Eights>();
        assert!(spec.reads(1) && spec.reads(2) && !spec.reads(3));
        let g = testing::restore::<Eights>(1, &bytes).unwrap();
        assert_eq!(g.pile, v1.discard);
        assert_eq!(g.hands, v1.hands);
        assert_eq!(g.moves, 1);
        // Its own snapshots read back as they were; a version it does not know is refused.
        let again = testing::restore::<Eights>(2, &testing::encode_state(&g)).unwrap();
        assert_eq!(again, g);
        assert!(testing::restore::<Eights>(3, &bytes).is_err());
    }
}
