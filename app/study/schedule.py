"""When a card comes back: FSRS (the `fsrs` package) from each grade given.

A card's schedule is `fsrs.Card`'s state, stored as its `to_dict()` without the id; a card never
reviewed has none and is due from the moment it is made. Grades are FSRS's ratings: 1 Again, 2 Hard,
3 Good, 4 Easy. One scheduler, FSRS's default parameters and 90 % desired retention.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from fsrs import Card, Rating, Scheduler

if TYPE_CHECKING:
    from fsrs.card import CardDict

GRADES = {1: "Again", 2: "Hard", 3: "Good", 4: "Easy"}
_SCHEDULER = Scheduler()


@dataclass(frozen=True)
class Next:
    schedule: dict[str, Any]
    due: datetime


def review(schedule: dict[str, Any] | None, grade: int, *, now: datetime | None = None) -> Next:
    """The card's state and due time after it was given `grade` (1-4) at `now`."""
    card = Card.from_dict(cast("CardDict", {**schedule, "card_id": 0})) if schedule else Card(card_id=0)
    card, _ = _SCHEDULER.review_card(card, Rating(grade), review_datetime=now or datetime.now(UTC))
    state: dict[str, Any] = {key: value for key, value in card.to_dict().items() if key != "card_id"}
    return Next(schedule=state, due=card.due)
