"""Two-level factorial designs over a space: the full 2^k grid or a regular fraction.

``fractional_design(space, "1/2")`` takes the space's two-level parameters (switches, or
parameters of two values) as the factors, picks the generators of the fraction that alias
the fewest low-order effects (pydoe's minimum-aberration search, ``fracfact_opt``), and
returns the points with the alias structure. A fraction whose resolution is below IV
(a main effect aliased with a two-factor interaction or another main effect) is refused:
what the design is for is telling main effects apart.
"""
from __future__ import annotations

import itertools
import math
import string
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .params import SpaceError

MIN_RESOLUTION = 4
ROMAN = {2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI", 7: "VII", 8: "VIII"}


@dataclass(frozen=True)
class Design:
    fraction: str
    factors: list[str]
    points: list[dict[str, Any]]
    generators: list[str]  # "CT = PT x PC x TC"
    aliases: list[str]  # "PT x PC = TC x CT", main effects and two-factor interactions only
    resolution: int | None  # None: the full factorial (no defining relation)

    def describe(self) -> str:
        head = (f"design: 2^({len(self.factors)}-{len(self.generators)}) fraction {self.fraction} "
                f"of {', '.join(self.factors)}: {len(self.points)} points")
        if self.resolution is None:
            return head + ", the full factorial (no aliases)"
        lines = [head + f", resolution {ROMAN.get(self.resolution, self.resolution)}",
                 "  generators: " + "; ".join(self.generators),
                 "  aliases (main effects and two-factor interactions):"]
        return "\n".join(lines + [f"    {a}" for a in self.aliases])

    def as_attr(self) -> dict:
        return {"fraction": self.fraction, "factors": self.factors, "generators": self.generators,
                "aliases": self.aliases, "resolution": self.resolution, "points": len(self.points)}


def parse_fraction(text: Any) -> int:
    """``"1"``, ``"1/2"``, ``"1/4"``, ... -> p (the fraction is 1/2^p)."""
    try:
        f = Fraction(str(text).strip())
    except (ValueError, ZeroDivisionError):
        f = None
    if f is None or f <= 0 or f > 1 or f.numerator != 1 or f.denominator & (f.denominator - 1):
        raise SpaceError(f"fraction: {text!r}; allowed: 1, 1/2, 1/4, 1/8, ... (one over a power of 2)")
    return int(math.log2(f.denominator))


def two_level_factors(space) -> list[tuple[str, list]]:
    """The space's parameters as (name, [low, high]); any other parameter is an error."""
    out = []
    for p in space.parameters:
        values = p.values() if p.finite else None
        if p.when is not None or values is None or len(values) != 2:
            what = ("conditional" if p.when is not None else
                    f"{'continuous' if values is None else len(values)} values")
            raise SpaceError(f"space {space.name!r}: parameter {p.name!r} ({what}): a factorial "
                             "design takes parameters of exactly two values (switches, or two "
                             "choices), none conditional")
        low, high = (False, True) if p.type == "bool" else (values[0], values[1])
        out.append((p.name, [low, high]))
    return out


def _word(term: str, names: dict[str, str]) -> str:
    return " x ".join(names[c] for c in term)


def _defining_words(gens: list[str], k: int) -> list[frozenset]:
    """Every word of the defining relation: products of the generator words."""
    letters = string.ascii_lowercase
    base = [frozenset(g) | {letters[k - len(gens) + i]} for i, g in enumerate(gens)]
    words = []
    for r in range(1, len(base) + 1):
        for combo in itertools.combinations(base, r):
            w = frozenset()
            for b in combo:
                w = w ^ b
            words.append(w)
    return words


def _generators(k: int, p: int) -> tuple[list[str], int]:
    """The minimum-aberration generators of a 2^(k-p) design and its resolution; ValueError
    when k - p base factors cannot carry p more."""
    from pydoe import fracfact_opt

    if k - p < 2 or p > 2 ** (k - p) - (k - p) - 1:
        raise ValueError(f"{k} factors in {2 ** (k - p)} runs")
    gens = fracfact_opt(k, p)[0].split()[k - p:]
    return gens, min(len(w) for w in _defining_words(gens, k))


def _allowed(k: int) -> list[str]:
    out = ["1"]
    for p in range(1, k):
        try:
            if _generators(k, p)[1] < MIN_RESOLUTION:
                break
        except ValueError:
            break
        out.append(f"1/{2 ** p}")
    return out


def fractional_design(space, fraction: Any) -> Design:
    """The design of ``fraction`` over ``space``'s two-level parameters (see the module)."""
    return factorial_design(two_level_factors(space), fraction, f"space {space.name!r}")


def factorial_design(factors: list[tuple[str, list]], fraction: Any, where: str = "design") -> Design:
    """The design of ``fraction`` over ``factors`` ``[(name, [low, high]), ...]``."""
    from pydoe import fracfact, fracfact_aliasing

    k, p = len(factors), parse_fraction(fraction)
    letters = string.ascii_lowercase
    names = {letters[i]: f for i, (f, _) in enumerate(factors)}
    label = "1" if p == 0 else f"1/{2 ** p}"
    if not 2 <= k <= 20:
        raise SpaceError(f"{where}: a factorial design takes 2 to 20 two-level parameters; "
                         f"it has {k}")
    gens, resolution = [], None
    if p:
        try:
            gens, resolution = _generators(k, p)
        except ValueError:
            raise SpaceError(f"fraction: {label} of {k} factors leaves too few runs; allowed: "
                             + ", ".join(_allowed(k))) from None
        if resolution < MIN_RESOLUTION:
            raise SpaceError(f"fraction: {label} of {k} factors has resolution "
                             f"{ROMAN.get(resolution, resolution)} (main effects aliased with "
                             "two-factor interactions); allowed (resolution IV or more): "
                             + ", ".join(_allowed(k)))
    matrix = fracfact(" ".join([*letters[:k - p], *gens]))
    points = [{f: levels[int(v > 0)] for (f, levels), v in zip(factors, row)} for row in matrix]
    aliases = []
    for group in (fracfact_aliasing(matrix)[0] if p else ()):
        terms = sorted((t.strip() for t in group.split("=")), key=len)
        if len(terms) > 1 and len(terms[0]) <= 2:
            aliases.append(" = ".join(_word(t, names) for t in terms if len(t) <= 3))
    generators = [f"{names[letters[k - p + i]]} = {_word(g, names)}" for i, g in enumerate(gens)]
    return Design(label, [f for f, _ in factors], points, generators, aliases, resolution)
