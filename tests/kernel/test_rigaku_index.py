"""Rigaku reads: the offsets found by binary search, and the one compiled pass per read
(checks, frame starts, decoding), against numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xpcs_kernel.errors import FrameFormatError, UsageError
from xpcs_kernel.io import open_frames, rigaku
from xpcs_kernel.io._rigaku_kernels import DECODE_OK, DECODE_OUT_OF_ORDER, decode_block
from xpcs_kernel.io.rigaku import decode_rigaku_words

SHAPE = (6, 7)


def _words(frames: np.ndarray, pixels: np.ndarray, counts: np.ndarray) -> np.ndarray:
    return (
        (frames.astype(np.uint64) << np.uint64(40))
        | (pixels.astype(np.uint64) << np.uint64(16))
        | counts.astype(np.uint64)
    )


def _events(seed: int) -> np.ndarray:
    """Sorted events with empty frames at the start, in the middle and the end."""
    rng = np.random.default_rng(seed)
    per_frame = rng.poisson(3.0, size=40)
    per_frame[[0, 1, 17, 18, 19, 39]] = 0  # frames 0-1 and 17-19 empty; 39 empty too
    frames = np.repeat(np.arange(40), per_frame)
    # a pixel at most once per frame, as a detector writes them
    pixels = np.concatenate([rng.choice(SHAPE[0] * SHAPE[1], k, replace=False) for k in per_frame])
    counts = rng.integers(1, 4096, frames.size)
    return _words(frames, pixels, counts)


def _reference_indptr(words: np.ndarray, n_frames: int) -> np.ndarray:
    frame_of = (words >> np.uint64(40)).astype(np.int64)
    return np.searchsorted(frame_of, np.arange(n_frames + 1), side="left").astype(np.int64)


def _reference_dense(words: np.ndarray, n_frames: int) -> np.ndarray:
    frame_of, pixel_of, count_of = decode_rigaku_words(words)
    out = np.zeros((n_frames, SHAPE[0] * SHAPE[1]), dtype=np.int64)
    out[frame_of, pixel_of] = count_of
    return out


@pytest.mark.parametrize("chunk", [1, 3, 7, 40])  # empty frames at chunk edges, one read
def test_chunked_reads_equal_numpy(tmp_path: Path, chunk: int) -> None:
    words = _events(1)
    path = tmp_path / "e.bin"
    words.astype("<u8").tofile(path)
    last_frame = int(words[-1] >> np.uint64(40))  # 38: frame 39 has no event
    with open_frames(path, format="rigaku", frame_shape=SHAPE) as source:
        assert source.n_frames == last_frame + 1
        parts = []
        for start in range(0, source.n_frames, chunk):
            sp = source.read_sparse(start, min(start + chunk, source.n_frames))
            parts.append(sp.to_dense(np.uint16).reshape(sp.n_frames, -1))
        reference = _reference_indptr(words, last_frame + 1)
        for frame in range(last_frame + 2):  # every offset, the searched ones and others
            assert source._offset(frame) == reference[frame]  # type: ignore[attr-defined]
    np.testing.assert_array_equal(np.concatenate(parts), _reference_dense(words, last_frame + 1))


def test_reads_past_the_last_event_with_more_frames_than_the_file_names(tmp_path: Path) -> None:
    words = _events(2)
    path = tmp_path / "n.bin"
    words.astype("<u8").tofile(path)
    source = rigaku.RigakuFrameSource(path, frame_shape=SHAPE, n_frames=45)
    try:
        assert source.n_frames == 45
        assert source.read_sparse(40, 45).indptr.tolist() == [0] * 6  # empty frames
        whole = source.read_sparse(0, 45)
        np.testing.assert_array_equal(whole.indptr, _reference_indptr(words, 45))
    finally:
        source.close()


def test_out_of_order_names_the_word_in_whichever_read_holds_it(tmp_path: Path) -> None:
    words = _events(3)
    k = int(np.searchsorted(words >> np.uint64(40), np.uint64(25)))  # first word of frame 25
    words[k] = _words(np.array([3]), np.array([0]), np.array([1]))[0]  # frame 3 after 24
    path = tmp_path / "o.bin"
    words.astype("<u8").tofile(path)
    with open_frames(path, format="rigaku", frame_shape=SHAPE) as source:  # opening reads little
        source.read_sparse(0, 20)  # before the disorder: fine
        with pytest.raises(FrameFormatError, match="out of order") as err:
            # frame 3 sorts before 25, so the search puts its word in this read
            source.read_sparse(20, 25)
    assert err.value.offset == k * 8
    assert err.value.found == "frame 3"


def test_decode_block_checks_splits_and_indexes_in_one_pass() -> None:
    words = _events(4)
    n_frames = int(words[-1] >> np.uint64(40)) + 1
    out = decode_block(words, start=0, stop=n_frames, n_pixels=SHAPE[0] * SHAPE[1])
    assert (out.status, out.word) == (DECODE_OK, -1)
    _, ref_pixels, ref_counts = decode_rigaku_words(words)
    assert out.pixels.dtype == ref_pixels.dtype
    assert out.counts.dtype == ref_counts.dtype
    np.testing.assert_array_equal(out.pixels, ref_pixels)
    np.testing.assert_array_equal(out.counts, ref_counts)
    np.testing.assert_array_equal(out.indptr, _reference_indptr(words, n_frames))
    # a word of a frame outside the read is a disorder too (the read's edges came
    # from a search that assumes order)
    late = decode_block(words, start=0, stop=n_frames - 2, n_pixels=SHAPE[0] * SHAPE[1])
    assert late.status == DECODE_OUT_OF_ORDER
    assert late.word == int(np.searchsorted(words >> np.uint64(40), np.uint64(n_frames - 2)))


def test_reads_reuse_one_word_buffer_and_return_their_own_arrays(tmp_path: Path) -> None:
    words = _events(5)
    path = tmp_path / "e.bin"
    words.astype("<u8").tofile(path)
    with open_frames(path, format="rigaku", frame_shape=SHAPE) as source:
        whole = source.read_sparse(0, source.n_frames).to_dense(np.uint16)
        big = source.read_sparse(0, 30)
        kept = (big.pixels.copy(), big.counts.copy())
        small = source.read_sparse(20, 25)  # a shorter read into the same buffer
        again = source.read_sparse(2, 39)  # a longer one: the buffer grows
        # earlier results are not views of the buffer
        np.testing.assert_array_equal(big.pixels, kept[0])
        np.testing.assert_array_equal(big.counts, kept[1])
        np.testing.assert_array_equal(small.to_dense(np.uint16), whole[20:25])
        np.testing.assert_array_equal(again.to_dense(np.uint16), whole[2:39])
        np.testing.assert_array_equal(big.to_dense(np.uint16), whole[:30])


def test_a_closed_source_says_so_before_any_search(tmp_path: Path) -> None:
    words = _events(6)
    path = tmp_path / "c.bin"
    words.astype("<u8").tofile(path)
    source = open_frames(path, format="rigaku", frame_shape=SHAPE)
    source.close()
    with pytest.raises(UsageError, match="closed"):
        source.read_sparse(3, 9)  # offsets never searched: no read of a closed descriptor
