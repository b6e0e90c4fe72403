"""Every bad input raises FrameFormatError naming the file and the key/offset."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from numpy.typing import NDArray

from xpcs_kernel.errors import FrameFormatError, InputDataError, UsageError
from xpcs_kernel.io import (
    FrameSelection,
    iter_chunks,
    open_frames,
    write_hdf5_frames,
    write_imm,
    write_rigaku,
)
from xpcs_kernel.io.imm import IMM_HEADER_BYTES

N, H, W = 10, 6, 5
FRAME_BYTES = IMM_HEADER_BYTES + 2 * H * W  # one dense IMM frame


@pytest.fixture
def frames() -> NDArray[np.uint16]:
    rng = np.random.default_rng(5)
    return rng.poisson(1.5, size=(N, H, W)).astype(np.uint16)


# ---------------------------------------------------------------- HDF5


def test_truncated_hdf5(tmp_path: Path, frames: NDArray[np.uint16]) -> None:
    path = write_hdf5_frames(tmp_path / "t.h5", frames)
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(FrameFormatError, match="truncated") as info:
        open_frames(path)
    assert info.value.path == os.fspath(path)
    assert str(path) in str(info.value)


def test_corrupt_hdf5_chunk_names_the_dataset(tmp_path: Path) -> None:
    frames = np.random.default_rng(1).integers(0, 50, size=(N, 32, 32)).astype(np.uint16)
    path = write_hdf5_frames(tmp_path / "c.h5", frames, compression="lz4", chunk_frames=2)
    with h5py.File(path, "r") as f:
        info = f["/entry/data/data"].id.get_chunk_info(2)  # frames 4-5
        offset, size = info.byte_offset, info.size
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(b"\xff" * size)
    with open_frames(path) as source:
        np.testing.assert_array_equal(source.read_dense(0, 4), frames[:4])  # intact chunks
        with pytest.raises(FrameFormatError) as err:
            list(iter_chunks(source, chunk_frames=3))
    assert err.value.path == os.fspath(path)
    assert err.value.key == "/entry/data/data"
    assert "[3, 6)" in str(err.value)


def test_missing_dataset_lists_what_exists(tmp_path: Path, frames: NDArray[np.uint16]) -> None:
    path = write_hdf5_frames(tmp_path / "m.h5", frames, dataset="/entry/data/frames")
    with pytest.raises(FrameFormatError, match="not found") as err:
        open_frames(path)
    assert err.value.path == os.fspath(path)
    assert err.value.key == "/entry/data/data"
    assert "frames (dataset (10, 6, 5) uint16)" in str(err.value)
    # a deeper missing level: the deepest existing group is described
    with pytest.raises(FrameFormatError, match="/entry holds data \\(group\\)"):
        open_frames(path, dataset="/entry/other/data")


def test_group_instead_of_dataset(tmp_path: Path, frames: NDArray[np.uint16]) -> None:
    path = write_hdf5_frames(tmp_path / "g.h5", frames)
    with pytest.raises(FrameFormatError, match="group") as err:
        open_frames(path, dataset="/entry/data")
    assert err.value.key == "/entry/data"


@pytest.mark.parametrize("shape", [(N, H), (2, N, H, W), (H,)])
def test_wrong_rank(tmp_path: Path, shape: tuple[int, ...]) -> None:
    path = tmp_path / "r.h5"
    with h5py.File(path, "w") as f:
        f["/entry/data/data"] = np.zeros(shape, dtype=np.uint16)
    with pytest.raises(FrameFormatError, match="rank") as err:
        open_frames(path)
    assert err.value.key == "/entry/data/data"
    assert err.value.expected == "shape (N, H, W)"
    assert err.value.found == str(shape)


def test_zero_frames(tmp_path: Path) -> None:
    path = tmp_path / "z.h5"
    with h5py.File(path, "w") as f:
        f["/entry/data/data"] = np.zeros((0, H, W), dtype=np.uint16)
    with pytest.raises(FrameFormatError, match="no frames") as err:
        open_frames(path)
    assert err.value.path == os.fspath(path)
    assert err.value.key == "/entry/data/data"


def test_non_numeric_dataset(tmp_path: Path) -> None:
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        f["/entry/data/data"] = np.zeros((2, 2, 2), dtype="S4")
    with pytest.raises(FrameFormatError, match="unsupported") as err:
        open_frames(path)
    assert err.value.key == "/entry/data/data"


@pytest.mark.parametrize("fmt", ["hdf5", "imm", "rigaku"])
def test_unopenable_paths(tmp_path: Path, fmt: str) -> None:
    with pytest.raises(FrameFormatError, match="not found") as err:
        open_frames(tmp_path / "absent", format=fmt)
    assert err.value.path == os.fspath(tmp_path / "absent")
    with pytest.raises(FrameFormatError) as err:
        open_frames(tmp_path, format=fmt)  # a directory
    assert err.value.path == os.fspath(tmp_path)


def test_errors_are_value_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="file not found"):
        open_frames(tmp_path / "absent.h5", format="hdf5")
    assert issubclass(FrameFormatError, InputDataError)


# ---------------------------------------------------------------- IMM


def test_imm_truncated_data(tmp_path: Path, frames: NDArray[np.uint16]) -> None:
    path = write_imm(tmp_path / "t.imm", frames, sparse=False)
    with open(path, "r+b") as f:
        f.truncate(N * FRAME_BYTES - 10)
    with pytest.raises(FrameFormatError, match="past the end") as err:
        open_frames(path)
    assert err.value.path == os.fspath(path)
    assert err.value.key == f"frame {N - 1}"
    assert err.value.offset == (N - 1) * FRAME_BYTES


def test_imm_truncated_header(tmp_path: Path, frames: NDArray[np.uint16]) -> None:
    path = write_imm(tmp_path / "h.imm", frames, sparse=True)
    size = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b"\x00" * 100)
    with pytest.raises(FrameFormatError, match="header runs past") as err:
        open_frames(path)
    assert err.value.key == f"frame {N}"
    assert err.value.offset == size


def test_imm_inconsistent_shape(tmp_path: Path, frames: NDArray[np.uint16]) -> None:
    first = write_imm(tmp_path / "a.imm", frames[:3], sparse=False)
    second = write_imm(tmp_path / "b.imm", np.ones((2, W, H), dtype=np.uint16), sparse=False)
    path = tmp_path / "ab.imm"
    path.write_bytes(first.read_bytes() + second.read_bytes())
    with pytest.raises(FrameFormatError, match="frame size differs") as err:
        open_frames(path)
    assert err.value.key == "frame 3"
    assert err.value.offset == 3 * FRAME_BYTES + 108
    assert err.value.expected == f"rows, cols = {(H, W)}"


def test_imm_sparse_pixel_out_of_range(tmp_path: Path, frames: NDArray[np.uint16]) -> None:
    path = write_imm(tmp_path / "p.imm", frames, sparse=True)
    data = bytearray(path.read_bytes())
    # frame 0's first pixel index sits right after its header
    data[IMM_HEADER_BYTES : IMM_HEADER_BYTES + 4] = np.int32(H * W + 3).tobytes()
    path.write_bytes(bytes(data))
    with open_frames(path) as source, pytest.raises(FrameFormatError, match="outside") as err:
        list(iter_chunks(source))
    assert err.value.key == "frame 0"
    assert err.value.offset == IMM_HEADER_BYTES
    assert err.value.found == str(H * W + 3)


def test_imm_sparse_negative_pixel_index(tmp_path: Path, frames: NDArray[np.uint16]) -> None:
    path = write_imm(tmp_path / "n.imm", frames, sparse=True)
    data = bytearray(path.read_bytes())
    # the second frame starts after frame 0's header and 6 bytes per stored pixel
    second = IMM_HEADER_BYTES + 6 * int(np.count_nonzero(frames[0]))
    data[second + IMM_HEADER_BYTES + 4 : second + IMM_HEADER_BYTES + 8] = np.int32(-2).tobytes()
    path.write_bytes(bytes(data))
    with open_frames(path) as source, pytest.raises(FrameFormatError, match="outside") as err:
        source.read_sparse(0, N)
    assert err.value.key == "frame 1"
    assert err.value.offset == second + IMM_HEADER_BYTES + 4
    assert err.value.found == "-2"


def test_imm_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "e.imm"
    path.write_bytes(b"")
    with pytest.raises(FrameFormatError, match="empty") as err:
        open_frames(path)
    assert err.value.offset == 0


# ---------------------------------------------------------------- Rigaku


def test_rigaku_out_of_order(tmp_path: Path, frames: NDArray[np.uint16]) -> None:
    path = write_rigaku(tmp_path / "o.bin", frames)
    words = np.fromfile(path, dtype="<u8")
    frame_of = words >> np.uint64(40)
    k = int(np.searchsorted(frame_of, 4))  # first word of frame 4
    words[[k - 1, k]] = words[[k, k - 1]]  # last word of frame 3 now after frame 4's
    words.tofile(path)
    with (
        open_frames(path, frame_shape=(H, W)) as source,
        pytest.raises(FrameFormatError, match="out of order") as err,
    ):
        source.read_sparse(0, source.n_frames)  # a read checks its words
    assert err.value.path == os.fspath(path)
    assert err.value.offset == k * 8
    assert err.value.found == "frame 3"


def test_rigaku_pixel_beyond_frame(tmp_path: Path, frames: NDArray[np.uint16]) -> None:
    path = write_rigaku(tmp_path / "p.bin", frames)
    words = np.fromfile(path, dtype="<u8")
    pixels = (words >> np.uint64(16)) & np.uint64(2**21 - 1)
    first_bad = int(np.argmax(pixels >= (H - 1) * W))
    with (
        open_frames(path, frame_shape=(H - 1, W)) as source,
        pytest.raises(FrameFormatError, match="pixel index beyond") as err,
    ):
        source.read_sparse(0, source.n_frames)
    assert err.value.offset == first_bad * 8
    assert err.value.expected == f"pixel < {(H - 1) * W}"
    with open_frames(path, frame_shape=(H, W)) as source:  # the right shape is fine
        assert source.n_frames == N


def test_rigaku_partial_word_and_empty(tmp_path: Path, frames: NDArray[np.uint16]) -> None:
    path = write_rigaku(tmp_path / "w.bin", frames)
    size = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b"\x01\x02\x03")
    with pytest.raises(FrameFormatError, match="multiple of 8") as err:
        open_frames(path, frame_shape=(H, W))
    assert err.value.offset == size
    empty = tmp_path / "e.bin"
    empty.write_bytes(b"")
    with pytest.raises(FrameFormatError, match="empty") as err:
        open_frames(empty, format="rigaku")
    assert err.value.path == os.fspath(empty)


# ---------------------------------------------------------------- values in chunks


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, -1.0])
def test_nan_inf_negative_in_array(frames: NDArray[np.uint16], bad: float) -> None:
    data = frames.astype(np.float32)
    data[6, 2, 3] = bad
    with open_frames(data) as source:
        list(iter_chunks(source, FrameSelection(end=6)))  # frames before 6 are fine
        with pytest.raises(FrameFormatError) as err:
            list(iter_chunks(source, chunk_frames=4))
        assert err.value.key == "frame 6"
        assert err.value.path is None
        assert "1 pixel(s) in frame 6" in str(err.value)
        with pytest.raises(FrameFormatError) as err:  # also on the sparse path
            list(iter_chunks(source, sparse=True, chunk_frames=4))
        assert err.value.key == "frame 6"


def test_negative_integer_in_hdf5(tmp_path: Path, frames: NDArray[np.uint16]) -> None:
    data = frames.astype(np.int32)
    data[8, 0, :2] = -1
    path = write_hdf5_frames(tmp_path / "n.h5", data)
    with open_frames(path) as source, pytest.raises(FrameFormatError, match="negative") as err:
        list(iter_chunks(source, FrameSelection(stride=2), chunk_frames=2))
    assert err.value.path == os.fspath(path)
    assert err.value.key == "frame 8"  # the raw frame index, not the output index
    assert "2 pixel(s) in frame 8" in str(err.value)


@pytest.mark.parametrize("kind", ["hdf5", "imm-sparse", "numpy"])
def test_saturated_pixels(tmp_path: Path, frames: NDArray[np.uint16], kind: str) -> None:
    data = frames.copy()
    data[7, 1, 1] = data[7, 4, 2] = data[7, 5, 0] = 65535
    data[9, 0, 0] = 65535
    if kind == "hdf5":
        source = open_frames(write_hdf5_frames(tmp_path / "s.h5", data, compression="lz4"))
    elif kind == "imm-sparse":
        source = open_frames(write_imm(tmp_path / "s.imm", data, sparse=True))
    else:
        source = open_frames(data)
    with source:
        with pytest.raises(FrameFormatError, match="saturated") as err:
            list(iter_chunks(source, FrameSelection(begin=1, avg=2)))
        assert err.value.key == "frame 7"
        assert "3 pixel(s) in frame 7" in str(err.value)
        assert "q-map" in str(err.value)
        chunks = list(iter_chunks(source, allow_saturated=True, sparse=False))
        got = np.concatenate([c.dense for c in chunks if c.dense is not None])
        np.testing.assert_array_equal(got, data)


def test_uint8_saturation_uses_the_dtype_max(frames: NDArray[np.uint16]) -> None:
    data = np.minimum(frames, 254).astype(np.uint8)
    with open_frames(data) as source:
        list(iter_chunks(source))  # 254 is not saturated for uint8
    data[2, 0, 0] = 255
    with open_frames(data) as source, pytest.raises(FrameFormatError, match="255") as err:
        list(iter_chunks(source))
    assert err.value.key == "frame 2"


# ---------------------------------------------------------------- arguments


def test_bad_arguments_are_usage_errors(frames: NDArray[np.uint16]) -> None:
    with open_frames(frames) as source:
        with pytest.raises(UsageError) as err:
            list(iter_chunks(source, chunk_frames=0))
        assert err.value.argument == "chunk_frames"
        with pytest.raises(UsageError) as err:
            list(iter_chunks(source, memory_budget=0))
        assert err.value.argument == "memory_budget"
        with pytest.raises(UsageError) as err:
            list(iter_chunks(source, FrameSelection(begin=N)))
        assert err.value.argument == "begin"
        with pytest.raises(UsageError) as err:
            source.read_dense(3, N + 1)
        assert err.value.argument == "start"
    with pytest.raises(UsageError, match="closed"):
        source.read_dense(0, 1)
    with pytest.raises(FrameFormatError, match="3-d"):
        open_frames(frames[0])
    with pytest.raises(FrameFormatError, match="no frames"):
        open_frames(frames[:0])
