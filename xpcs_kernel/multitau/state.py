"""Resumable state of the streaming multi-tau correlator.

Per level ``L`` and pixel tile the state holds (``W = 2D``):

* the carry, the last ``W`` level-``L`` frames (float32, right aligned, zeros
  before the first frame): all of them for level 0 in ``tail0[tile, 0:W, :]``,
  the oldest ``D + 1`` in ``tail[L, tile, 0:D+1, :]`` for ``L >= 1``; the newer
  ``D - 1`` are means of frames in the carry of level ``L - 1``
  (:meth:`CorrelatorState.carry` rebuilds them);
* ``total0[tile, :]``: the sum of all level-0 frames (float64); the total of
  level ``L + 1`` is half that of level ``L`` less its unpaired last frame
  (:meth:`CorrelatorState.level_total`), so it is not stored;
* ``headsum[L, tile, k-D-1, :]``: the sum of the first ``k`` level-``L``
  frames for lags ``k = D+1 .. 2D`` (float32: exact for counts, ~1e-7
  relative otherwise), and ``headsum0[tile, k-1, :]`` for level-0 lags
  ``k = 1 .. D``;
* ``g2acc[L, tile, k-D-1, :]`` and ``g2acc0[tile, k-1, :]``: the sums over
  pairs of ``I(t) I(t+k)`` (float64), split the same way.

The level axis is outermost and allocated with spare capacity by
``np.zeros``, whose untouched pages cost no memory, so a new level never
copies the others. Memory per correlated pixel, for ``n_lev = floor(log2 N) + 1``
levels of which ``n_act`` correlate, with ``D = 4``: ``20 n_lev + 20 +
48 (n_act + 1)`` bytes, i.e. 0.88 kB for 10,000 frames (14 levels, 11 active).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xpcs_kernel.errors import UsageError
from xpcs_kernel.multitau.dense import TILE
from xpcs_kernel.multitau.scheme import active_levels, lag_range, lag_row, n_rows

__all__ = ["STATE_VERSION", "CorrelatorState"]

STATE_VERSION = 1
_STEP_TILES = 64  # tiles per block when rebuilding carries (small temporaries)
_LEVEL_CAPACITY = 24  # levels allocated at first (2^24 frames); grows by copying


def _zeros(dtype: type[np.floating[Any]], *shape: int) -> NDArray[Any]:
    return np.zeros(shape, dtype=dtype)


@dataclass
class CorrelatorState:
    """Arrays of the correlator for ``n_frames`` frames of ``n_corr`` pixels."""

    n_corr: int
    dpl: int
    n_frames: int = 0
    n_levels: int = 0
    n_active: int = 0
    tail0: NDArray[np.float32] = field(default_factory=lambda: _zeros(np.float32, 0, 0, 0))
    tail: NDArray[np.float32] = field(default_factory=lambda: _zeros(np.float32, 0, 0, 0, 0))
    total0: NDArray[np.float64] = field(default_factory=lambda: _zeros(np.float64, 0, 0))
    headsum: NDArray[np.float32] = field(default_factory=lambda: _zeros(np.float32, 0, 0, 0, 0))
    g2acc: NDArray[np.float64] = field(default_factory=lambda: _zeros(np.float64, 0, 0, 0, 0))
    headsum0: NDArray[np.float32] = field(default_factory=lambda: _zeros(np.float32, 0, 0, 0))
    g2acc0: NDArray[np.float64] = field(default_factory=lambda: _zeros(np.float64, 0, 0, 0))
    _level_cache: tuple[int, int, NDArray[np.float64], NDArray[np.float32]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.tail.shape[1:] != (self.n_tiles, self.dpl + 1, TILE):
            self.tail0 = _zeros(np.float32, self.n_tiles, 2 * self.dpl, TILE)
            self.headsum0 = _zeros(np.float32, self.n_tiles, self.dpl, TILE)
            self.total0 = _zeros(np.float64, self.n_tiles, TILE)
            self.g2acc0 = _zeros(np.float64, self.n_tiles, self.dpl, TILE)
            self._allocate(_LEVEL_CAPACITY)

    def _allocate(self, capacity: int) -> None:
        """(Re)allocate for ``capacity`` levels, keeping the levels in use."""
        nt, d = self.n_tiles, self.dpl
        arrays = {
            "tail": _zeros(np.float32, capacity, nt, d + 1, TILE),  # level 0: tail0
            "headsum": _zeros(np.float32, capacity, nt, d, TILE),
            "g2acc": _zeros(np.float64, capacity, nt, d, TILE),
        }
        for name, new in arrays.items():
            old = getattr(self, name)
            used = self.n_levels if name == "tail" else self.n_active
            if used:
                new[:used] = old[:used]
            setattr(self, name, new)

    def kernel_arrays(self) -> tuple[NDArray[Any], ...]:
        """The arrays :func:`~xpcs_kernel.multitau.dense.dense_feed` updates, in its order."""
        return (
            self.tail0,
            self.tail,
            self.total0,
            self.headsum,
            self.g2acc,
            self.headsum0,
            self.g2acc0,
        )

    def reset(self) -> None:
        """Back to zero frames, reusing the memory (no new pages to fault in)."""
        for arr in (self.tail0, self.headsum0, self.total0, self.g2acc0):
            arr.fill(0)
        self.tail[: self.n_levels].fill(0)
        self.headsum[: self.n_active].fill(0)
        self.g2acc[: self.n_active].fill(0)
        self.n_frames = self.n_levels = self.n_active = 0
        self._level_cache = None

    @property
    def n_tiles(self) -> int:
        """Pixel tiles of the kernel."""
        return -(-self.n_corr // TILE)

    def _flat(self, part: NDArray[Any]) -> NDArray[np.float64]:
        return np.asarray(part, dtype=np.float64).reshape(-1)[: self.n_corr]

    def lag_block(self, name: str, level: int, lag: int) -> NDArray[Any]:
        """``[tile, pixel]`` block of ``"g2acc"`` or ``"headsum"`` for (level, lag)."""
        if lag <= self.dpl:
            return getattr(self, name + "0")[:, lag - 1]  # type: ignore[no-any-return]
        return getattr(self, name)[level, :, lag - self.dpl - 1]  # type: ignore[no-any-return]

    def pair_sum(self, level: int, lag: int) -> NDArray[np.float64]:
        """Per-pixel sum over pairs of ``I(t) I(t + lag)``."""
        return self._flat(self.lag_block("g2acc", level, lag))

    def head_sum(self, level: int, lag: int) -> NDArray[np.float64]:
        """Per-pixel sum of the first ``lag`` level frames (a new array)."""
        block = np.array(self.lag_block("headsum", level, lag), dtype=np.float64)
        return block.reshape(-1)[: self.n_corr]

    def level_total(self, level: int) -> NDArray[np.float64]:
        """Per-pixel sum of all level frames.

        Level ``L + 1`` frames are the means of the pairs ``(2q, 2q + 1)`` of
        level ``L``, so its total is ``(total_L - last_L) / 2`` where
        ``last_L`` is the last level-``L`` frame when ``N_L`` is odd (it is in
        the carry) and 0 otherwise. The last level asked for is cached, so
        asking for the levels in increasing order (as the reduction does)
        costs one step per level.
        """
        return self._flat(self._level(level)[0])

    def carry(self, level: int) -> NDArray[np.float32]:
        """``[tile, 0:W, pixel]``: the last ``W`` level frames, rebuilt.

        The array is the cache: read it before asking for another level.
        """
        return self._level(level)[1]

    def _level(self, level: int) -> tuple[NDArray[np.float64], NDArray[np.float32]]:
        """Tile-major total and carry of ``level``, cached (and reused in place)."""
        cached = self._level_cache
        if cached is not None and cached[0] == self.n_frames and cached[1] <= level:
            lev, total, carry = cached[1], cached[2], cached[3]
        else:
            lev = 0
            total = self.total0.copy()
            carry = self.tail0.copy()
        for t0 in range(0, self.n_tiles, _STEP_TILES):  # small temporaries
            part = slice(t0, t0 + _STEP_TILES)
            self._step(lev, level, total[part], carry[part], part)
        self._level_cache = (self.n_frames, level, total, carry)
        return total, carry

    def release(self) -> None:
        """Drop the cached carry and total (kept while levels are read in order)."""
        self._level_cache = None

    def _step(
        self,
        lev: int,
        level: int,
        total: NDArray[np.float64],
        carry: NDArray[np.float32],
        tiles: slice,
    ) -> None:
        """Turn ``total`` and ``carry`` of level ``lev`` into those of ``level``, in place."""
        d, w = self.dpl, 2 * self.dpl
        while lev < level:
            par = (self.n_frames >> lev) & 1
            if par:
                total -= carry[:, w - 1]
            total *= 0.5
            newer = np.empty((carry.shape[0], w - d - 1, TILE), dtype=np.float32)
            for j in range(d + 1, w):  # as _load_carry (float32, same operations)
                r = 2 * j - w - par
                np.multiply(
                    carry[:, r] + carry[:, r + 1], np.float32(0.5), out=newer[:, j - d - 1]
                )
            carry[:, : d + 1] = self.tail[lev + 1, tiles]
            carry[:, d + 1 :] = newer
            lev += 1

    def last_sum(self, level: int, k: int) -> NDArray[np.float64]:
        """Per-pixel sum of the last ``k`` level frames (from the carry; a new array)."""
        w = 2 * self.dpl
        tail = self.carry(level)[:, w - k :]
        return self._flat(tail.sum(axis=1, dtype=np.float64))

    def prepare(self, n_new: int) -> None:
        """Make room for ``n_new`` more frames (before correlating them).

        A new level starts with an empty carry. A level that becomes active
        holds at most ``D + 1 <= W`` frames, all in its carry: its head sums
        are those of the carry and it has no pair yet.
        """
        n_after = self.n_frames + n_new
        n_lev = int(n_after).bit_length()
        n_act = active_levels(n_after, self.dpl) if n_after > 0 else 0
        if n_lev > self.tail.shape[0]:
            self._allocate(n_lev + 8)
        new_levels = range(self.n_active, n_act)
        if self.n_frames and len(new_levels):  # no frames yet: every carry is zero
            carried = np.empty((len(new_levels), *self.total0.shape), dtype=np.float64)
            for t0 in range(0, self.n_tiles, _STEP_TILES):
                part = slice(t0, t0 + _STEP_TILES)
                total, tail = self.total0[part].copy(), self.tail0[part].copy()
                lev = 0
                for i, target in enumerate(new_levels):  # one step per level
                    self._step(lev, target, total, tail, part)
                    lev = target
                    carried[i, part] = tail.sum(axis=1, dtype=np.float64)
            for i, lev in enumerate(new_levels):
                lo, hi = lag_range(lev, self.dpl)
                for k in range(lo, hi):
                    self.lag_block("headsum", lev, k)[...] = carried[i]
        self.n_levels = max(self.n_levels, n_lev)
        self.n_active = max(self.n_active, n_act)

    def prefault(self, n_frames: int) -> None:
        """Touch the memory that ``n_frames`` frames will use, before the first one.

        A fresh process pays for each page of the state the first time it is
        written (1.3 ms per MB on the 2-core benchmark VM: 60 ms for 256x256
        pixels, 0.2 s for 0.5 Mpx). Done in a thread while the kernels load,
        the correlating threads no longer pay it. Only before any frame:
        afterwards it returns at once (it writes zeros).
        """
        if self.n_frames or n_frames <= 0:
            return
        n_lev = int(n_frames).bit_length()
        n_act = active_levels(int(n_frames), self.dpl)
        if n_lev > self.tail.shape[0]:
            self._allocate(n_lev + 8)
        for arr in (self.tail0, self.headsum0, self.total0, self.g2acc0):
            arr.fill(0)
        self.tail[:n_lev].fill(0)
        self.headsum[:n_act].fill(0)
        self.g2acc[:n_act].fill(0)

    # export ---------------------------------------------------------------------
    def _pixels(self, block: NDArray[Any]) -> NDArray[Any]:
        """``[tile, *rows, pixel]`` to ``[*rows, n_corr]``."""
        moved = np.moveaxis(block, 0, -2)
        flat = moved.reshape(*moved.shape[:-2], moved.shape[-2] * moved.shape[-1])
        return np.ascontiguousarray(flat[..., : self.n_corr])

    def _tiles(self, arr: NDArray[Any]) -> NDArray[Any]:
        """``[*rows, n_corr]`` to ``[tile, *rows, pixel]`` (zero padded)."""
        nt = self.n_tiles
        pad = np.zeros((*arr.shape[:-1], nt * TILE), dtype=arr.dtype)
        pad[..., : self.n_corr] = arr
        return np.moveaxis(pad.reshape(*arr.shape[:-1], nt, TILE), -2, 0)

    def _lag_rows(self, name: str) -> NDArray[Any]:
        """Compact ``[row(L, k), n_corr]`` of ``"g2acc"`` or ``"headsum"``."""
        dtype = getattr(self, name).dtype
        out = np.zeros((n_rows(self.n_active, self.dpl), self.n_corr), dtype=dtype)
        for lev in range(self.n_active):
            lo, hi = lag_range(lev, self.dpl)
            for k in range(lo, hi):
                block = self.lag_block(name, lev, k)
                out[lag_row(lev, k, self.dpl)] = block.reshape(-1)[: self.n_corr]
        return out

    def to_dict(self) -> dict[str, NDArray[Any]]:
        """Arrays that restore this state, per pixel (see :meth:`from_dict`)."""
        return {
            "state_version": np.asarray(STATE_VERSION, dtype=np.int64),
            "n_corr": np.asarray(self.n_corr, dtype=np.int64),
            "delays_per_level": np.asarray(self.dpl, dtype=np.int64),
            "n_frames": np.asarray(self.n_frames, dtype=np.int64),
            "tail": np.stack([self._pixels(self.carry(lev)) for lev in range(self.n_levels)])
            if self.n_levels
            else np.zeros((0, 2 * self.dpl, self.n_corr), np.float32),
            "total": np.stack([self.level_total(lev).copy() for lev in range(self.n_active)])
            if self.n_active
            else np.zeros((0, self.n_corr), np.float64),
            "headsum": self._lag_rows("headsum"),
            "g2acc": self._lag_rows("g2acc"),
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, NDArray[Any]]) -> CorrelatorState:
        """Rebuild a state saved by :meth:`to_dict`, checking every shape."""
        keys = ["state_version", "n_corr", "delays_per_level", "n_frames"]
        keys += ["tail", "total", "headsum", "g2acc"]
        missing = [k for k in keys if k not in state]
        if missing:
            raise UsageError(f"missing keys {missing}", argument="state")
        version = int(np.asarray(state["state_version"]))
        if version != STATE_VERSION:
            raise UsageError(
                f"state version {version} is not supported (expected {STATE_VERSION})",
                argument="state",
            )
        n_corr = int(np.asarray(state["n_corr"]))
        dpl = int(np.asarray(state["delays_per_level"]))
        n_frames = int(np.asarray(state["n_frames"]))
        if n_corr < 1 or dpl < 1 or n_frames < 0:
            raise UsageError("inconsistent n_corr/delays_per_level/n_frames", argument="state")
        w = 2 * dpl
        n_lev = n_frames.bit_length()
        n_act = active_levels(n_frames, dpl) if n_frames > 0 else 0
        rows = n_rows(n_act, dpl)
        expected = {
            "tail": (n_lev, w, n_corr),
            "total": (n_act, n_corr),
            "headsum": (rows, n_corr),
            "g2acc": (rows, n_corr),
        }
        for key, shape in expected.items():
            found = np.shape(state[key])
            if found != shape:
                raise UsageError(
                    f"{key} has shape {found}, expected {shape} for {n_frames} frames",
                    argument="state",
                )
        out = cls(n_corr=n_corr, dpl=dpl)
        if n_lev > out.tail.shape[0]:
            out._allocate(n_lev + 8)
        out.n_frames, out.n_levels, out.n_active = n_frames, n_lev, n_act
        for lev in range(n_lev):
            carry = out._tiles(np.asarray(state["tail"][lev], dtype=np.float32))
            if lev == 0:
                out.tail0[...] = carry
            else:  # the newer rows follow from level lev - 1
                out.tail[lev] = carry[:, : dpl + 1]
        if n_act:  # the upper totals follow from level 0 and the carries
            out.total0[...] = out._tiles(np.asarray(state["total"][0], dtype=np.float64))
        for lev in range(n_act):
            lo, hi = lag_range(lev, dpl)
            for k in range(lo, hi):
                for name in ("headsum", "g2acc"):
                    block = out.lag_block(name, lev, k)
                    values = np.asarray(state[name][lag_row(lev, k, dpl)], dtype=block.dtype)
                    block[...] = out._tiles(values)
        return out
