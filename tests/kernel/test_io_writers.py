"""Writers: atomic replace, iterator input, value-range checks."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from xpcs_kernel.errors import UsageError
from xpcs_kernel.io import open_frames, write_hdf5_frames, write_imm, write_rigaku

H, W = 4, 3


def _blocks(n_blocks: int, *, fail_at: int | None = None) -> Iterator[np.ndarray]:
    for i in range(n_blocks):
        if i == fail_at:
            raise RuntimeError("source broke")
        yield np.full((2, H, W), i + 1, dtype=np.uint16)


WRITERS = {
    "hdf5": lambda p, f: write_hdf5_frames(p, f, compression="lz4"),
    "imm": lambda p, f: write_imm(p, f, sparse=True),
    "rigaku": write_rigaku,
}


@pytest.mark.parametrize("kind", list(WRITERS))
def test_iterator_input(tmp_path: Path, kind: str) -> None:
    path = WRITERS[kind](tmp_path / "it.dat", _blocks(3))
    with open_frames(path, frame_shape=(H, W)) as source:
        assert source.n_frames == 6
        dense = source.read_dense(0, 6)
    np.testing.assert_array_equal(dense[:, 0, 0], [1, 1, 2, 2, 3, 3])


@pytest.mark.parametrize("kind", list(WRITERS))
def test_failure_leaves_the_old_file_and_no_temporary(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "out.dat"
    path.write_bytes(b"previous content")
    with pytest.raises(RuntimeError, match="source broke"):
        WRITERS[kind](path, _blocks(3, fail_at=2))
    assert path.read_bytes() == b"previous content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.dat"]


@pytest.mark.parametrize("kind", list(WRITERS))
def test_no_frames_is_an_error(tmp_path: Path, kind: str) -> None:
    with pytest.raises(UsageError) as err:
        WRITERS[kind](tmp_path / "e.dat", np.zeros((0, H, W), dtype=np.uint16))
    assert err.value.argument == "frames"
    assert list(tmp_path.iterdir()) == []


def test_value_ranges(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="4095"):
        write_rigaku(tmp_path / "r.bin", np.full((1, H, W), 4096, dtype=np.uint16))
    with pytest.raises(UsageError, match="65535"):
        write_imm(tmp_path / "i.imm", np.full((1, H, W), -1, dtype=np.int32), sparse=False)
    with pytest.raises(UsageError, match="integer"):
        write_imm(tmp_path / "f.imm", np.full((1, H, W), 0.5), sparse=True)
    with pytest.raises(UsageError) as err:
        write_hdf5_frames(tmp_path / "c.h5", np.zeros((1, H, W)), compression="zstd")  # type: ignore[arg-type]
    assert err.value.argument == "compression"
    with pytest.raises(UsageError) as err:
        write_hdf5_frames(tmp_path / "c.h5", np.zeros((1, H, W)), chunk_frames=0)
    assert err.value.argument == "chunk_frames"
    with pytest.raises(UsageError) as err:
        write_hdf5_frames(tmp_path / "missing" / "c.h5", np.zeros((1, H, W)))
    assert err.value.argument == "path"
    with pytest.raises(UsageError, match="differs"):
        write_rigaku(tmp_path / "s.bin", iter([np.zeros((1, 2, 2)), np.zeros((1, 3, 3))]))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_float_integers_are_accepted_by_integer_formats(tmp_path: Path) -> None:
    frames = np.arange(2 * H * W, dtype=np.float64).reshape(2, H, W)
    path = write_imm(tmp_path / "f.imm", frames, sparse=False)
    with open_frames(path) as source:
        np.testing.assert_array_equal(source.read_dense(0, 2), frames)


def test_writers_return_the_path(tmp_path: Path) -> None:
    frames = np.ones((1, H, W), dtype=np.uint8)
    assert write_hdf5_frames(str(tmp_path / "a.h5"), frames) == tmp_path / "a.h5"
    assert write_imm(tmp_path / "a.imm", frames, sparse=False) == tmp_path / "a.imm"
    assert write_rigaku(tmp_path / "a.bin", frames) == tmp_path / "a.bin"


def test_written_files_honour_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = write_rigaku(tmp_path / "m.bin", np.ones((1, H, W), dtype=np.uint8))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
