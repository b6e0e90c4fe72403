"""Format detection by content (the extension is a hint only) and open_frames options."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from numpy.typing import NDArray

from xpcs_kernel.errors import FrameFormatError, UsageError
from xpcs_kernel.io import (
    Hdf5FrameSource,
    ImmFrameSource,
    RigakuFrameSource,
    detect_format,
    open_frames,
    write_hdf5_frames,
    write_imm,
    write_rigaku,
)

N, H, W = 9, 8, 7


@pytest.fixture
def frames() -> NDArray[np.uint16]:
    return np.random.default_rng(2).poisson(1.0, size=(N, H, W)).astype(np.uint16)


def _write(kind: str, path: Path, frames: NDArray[np.uint16]) -> Path:
    if kind == "hdf5":
        return write_hdf5_frames(path, frames, compression="bitshuffle")
    if kind == "imm-dense":
        return write_imm(path, frames, sparse=False)
    if kind == "imm-sparse":
        return write_imm(path, frames, sparse=True)
    return write_rigaku(path, frames)


FORMAT = {"hdf5": "hdf5", "imm-dense": "imm", "imm-sparse": "imm", "rigaku": "rigaku"}
CLASS = {"hdf5": Hdf5FrameSource, "imm": ImmFrameSource, "rigaku": RigakuFrameSource}


@pytest.mark.parametrize("kind", list(FORMAT))
@pytest.mark.parametrize("name", ["frames.dat", "frames", "frames.h5", "frames.imm", "frames.bin"])
def test_detection_by_content_whatever_the_name(
    tmp_path: Path, frames: NDArray[np.uint16], kind: str, name: str
) -> None:
    path = _write(kind, tmp_path / name, frames)
    assert detect_format(path) == FORMAT[kind]
    with open_frames(os.fspath(path), frame_shape=(H, W)) as source:
        assert isinstance(source, CLASS[FORMAT[kind]])
        np.testing.assert_array_equal(source.read_dense(0, N), frames)


def test_single_frame_files_are_detected(tmp_path: Path, frames: NDArray[np.uint16]) -> None:
    assert detect_format(write_imm(tmp_path / "one.bin", frames[:1], sparse=False)) == "imm"
    assert detect_format(write_imm(tmp_path / "one.h5", frames[:1], sparse=True)) == "imm"


def test_hdf5_with_user_block(tmp_path: Path, frames: NDArray[np.uint16]) -> None:
    path = tmp_path / "ub.imm"
    with h5py.File(path, "w", userblock_size=512) as f:
        f["/entry/data/data"] = frames
    assert path.read_bytes()[512:520] == b"\x89HDF\r\n\x1a\n"
    assert detect_format(path) == "hdf5"


def test_unrecognised_content(tmp_path: Path) -> None:
    path = tmp_path / "noise.dat"
    path.write_bytes(np.random.default_rng(0).bytes(4099))  # not a multiple of 8
    with pytest.raises(FrameFormatError, match="unrecognised") as err:
        detect_format(path)
    assert err.value.path == os.fspath(path)
    assert err.value.offset == 0


def test_extension_picks_the_reader_that_explains_damage(
    tmp_path: Path, frames: NDArray[np.uint16]
) -> None:
    path = write_imm(tmp_path / "cut.imm", frames, sparse=False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 3])  # odd size: no longer Rigaku-like either
    with pytest.raises(FrameFormatError, match="past the end") as err:
        open_frames(path)
    assert err.value.key == f"frame {N - 1}"
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"not really hdf5 at all" * 3)
    with pytest.raises(FrameFormatError, match="HDF5") as err:
        open_frames(broken)
    assert err.value.path == os.fspath(broken)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FrameFormatError, match="not found") as err:
        detect_format(tmp_path / "nope.h5")
    assert err.value.path == os.fspath(tmp_path / "nope.h5")


def test_open_frames_options(tmp_path: Path, frames: NDArray[np.uint16]) -> None:
    imm = write_imm(tmp_path / "a.imm", frames, sparse=True)
    with pytest.raises(UsageError) as err:
        open_frames(imm, format="tiff")
    assert err.value.argument == "format"
    with pytest.raises(UsageError) as err:
        open_frames(imm, dataset="/entry/data/data")
    assert err.value.argument == "dataset"
    with pytest.raises(UsageError) as err:
        open_frames(frames, format="hdf5")
    assert err.value.argument == "format"
    with pytest.raises(UsageError) as err:
        open_frames(42)  # type: ignore[arg-type]
    assert err.value.argument == "source"
    with pytest.raises(FrameFormatError, match="frame_shape") as ferr:
        open_frames(imm, frame_shape=(W, H))
    assert ferr.value.expected == str((W, H))
    assert ferr.value.found == str((H, W))
    # format= skips detection: reading an IMM file as Rigaku fails loudly
    with pytest.raises(FrameFormatError):
        open_frames(imm, format="rigaku", frame_shape=(H, W))


def test_rigaku_default_frame_shape(tmp_path: Path) -> None:
    frames = np.zeros((2, 512, 1024), dtype=np.uint16)
    frames[1, 511, 1023] = 9
    path = write_rigaku(tmp_path / "m.bin", frames)
    with open_frames(path) as source:
        assert source.frame_shape == (512, 1024)
        sparse = source.read_sparse(0, 2)
        np.testing.assert_array_equal(sparse.pixels, [512 * 1024 - 1])
        np.testing.assert_array_equal(sparse.indptr, [0, 0, 1])
