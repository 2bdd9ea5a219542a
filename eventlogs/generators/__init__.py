"""The four scenario generators (reference: shared/reference/eventlogs.md), by kind."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from . import ad, hotel, lol, raid
from .base import Event, Game, Options, TruthRow

GENERATORS: dict[str, Callable[[Options], Iterator[Game]]] = {
    "lol": lol.games,
    "hotel": hotel.games,
    "raid": raid.games,
    "ad": ad.games,
}

__all__ = ["GENERATORS", "Event", "Game", "Options", "TruthRow"]
