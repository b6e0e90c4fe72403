"""The compiled Rigaku passes: the frame index and the decoding equal numpy's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xpcs_kernel.errors import FrameFormatError
from xpcs_kernel.io import open_frames, rigaku
from xpcs_kernel.io._rigaku_kernels import decode_events
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


@pytest.mark.parametrize("scan_words", [4, 7, 1 << 20])  # many blocks, uneven, one block
def test_index_equals_numpy_across_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scan_words: int
) -> None:
    monkeypatch.setattr(rigaku, "_SCAN_WORDS", scan_words)
    words = _events(1)
    path = tmp_path / "e.bin"
    words.astype("<u8").tofile(path)
    last_frame = int(words[-1] >> np.uint64(40))  # 38: frame 39 has no event
    with open_frames(path, format="rigaku", frame_shape=SHAPE) as source:
        assert source.n_frames == last_frame + 1
        np.testing.assert_array_equal(
            source._indptr,  # type: ignore[attr-defined]
            _reference_indptr(words, last_frame + 1),
        )
        sp = source.read_sparse(0, source.n_frames)
        dense = sp.to_dense(np.uint16)
    # the frames back, against numpy's decoding of the same words
    frame_of, pixel_of, count_of = decode_rigaku_words(words)
    expected = np.zeros((last_frame + 1, SHAPE[0] * SHAPE[1]), dtype=np.int64)
    expected[frame_of, pixel_of] = count_of
    np.testing.assert_array_equal(dense.reshape(last_frame + 1, -1), expected)


def test_index_with_more_frames_than_the_file_names(tmp_path: Path) -> None:
    words = _events(2)
    path = tmp_path / "n.bin"
    words.astype("<u8").tofile(path)
    source = rigaku.RigakuFrameSource(path, frame_shape=SHAPE, n_frames=45)
    try:
        assert source.n_frames == 45
        np.testing.assert_array_equal(source._indptr, _reference_indptr(words, 45))
        assert source.read_sparse(40, 45).indptr.tolist() == [0] * 6  # empty frames
    finally:
        source.close()


def test_out_of_order_in_a_later_block_names_the_word(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rigaku, "_SCAN_WORDS", 5)
    words = _events(3)
    k = int(np.searchsorted(words >> np.uint64(40), np.uint64(25)))  # first word of frame 25
    words[k] = _words(np.array([3]), np.array([0]), np.array([1]))[0]  # frame 3 after 24
    path = tmp_path / "o.bin"
    words.astype("<u8").tofile(path)
    with pytest.raises(FrameFormatError, match="out of order") as err:
        open_frames(path, format="rigaku", frame_shape=SHAPE)
    assert err.value.offset == k * 8
    assert err.value.found == "frame 3"
    assert err.value.expected == f"frame >= {int(words[k - 1] >> np.uint64(40))}"


def test_decode_events_equals_numpy() -> None:
    words = _events(4)
    pixels, counts = decode_events(words)
    _, ref_pixels, ref_counts = decode_rigaku_words(words)
    assert pixels.dtype == ref_pixels.dtype
    assert counts.dtype == ref_counts.dtype
    np.testing.assert_array_equal(pixels, ref_pixels)
    np.testing.assert_array_equal(counts, ref_counts)


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
