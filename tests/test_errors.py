"""The one exception hierarchy: structured fields, messages, ValueError for usage."""

from __future__ import annotations

import pytest

from xpcs_kernel import errors as e


def test_every_error_derives_from_the_root() -> None:
    for name in e.__all__:
        assert issubclass(getattr(e, name), e.XPCSFlowsError)


@pytest.mark.parametrize(
    "cls", [e.UsageError, e.ConfigurationError, e.InputDataError, e.FrameFormatError, e.QMapError]
)
def test_usage_and_input_errors_are_value_errors(cls: type[Exception]) -> None:
    assert issubclass(cls, ValueError)


def test_runtime_errors_are_not_value_errors() -> None:
    assert not issubclass(e.CorrelationError, ValueError)


def test_input_error_names_file_key_offset_and_expectation() -> None:
    err = e.FrameFormatError(
        "frame data runs past the end of the file",
        path="/data/a.imm",
        key="frame 12",
        offset=4096,
        expected="1024 header bytes",
        found="512",
    )
    text = str(err)
    assert text.startswith("/data/a.imm [frame 12] at byte offset 4096: frame data runs past")
    assert "(expected 1024 header bytes, found 512)" in text
    assert (err.path, err.key, err.offset) == ("/data/a.imm", "frame 12", 4096)
    assert err.to_dict() == {
        "type": "FrameFormatError",
        "message": text,
        "path": "/data/a.imm",
        "key": "frame 12",
        "offset": 4096,
        "expected": "1024 header bytes",
        "found": "512",
    }


def test_configuration_error_fields() -> None:
    err = e.ConfigurationError(
        "placeholder endpoint id",
        source="polaris.toml",
        field="compute.endpoint_id",
        expected="a UUID",
    )
    assert (
        str(err) == "polaris.toml [compute.endpoint_id]: placeholder endpoint id (expected a UUID)"
    )
    assert err.field == "compute.endpoint_id"


def test_usage_error_names_argument() -> None:
    err = e.UsageError("must be >= 1", argument="stride")
    assert str(err) == "stride: must be >= 1"
    assert err.argument == "stride"
    with pytest.raises(ValueError, match="stride"):
        raise err


def test_fit_error_names_bin() -> None:
    assert str(e.FitError("did not converge", bin_index=3)) == "q-bin 3: did not converge"
