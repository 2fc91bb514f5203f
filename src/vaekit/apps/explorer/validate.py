"""Checking the explorer's requests before the model sees them.

Every problem with a request (not JSON, a missing or wrong-typed field, a vector of the wrong
length, NaN or inf, a value far outside the prior, a class or an example that does not exist)
becomes a :class:`RequestError` with a one-line message, which the server answers with
HTTP 400 and ``{"error": message}``. Nothing malformed reaches torch, so a bad request cannot
leave the model or the server in a bad state.
"""

from __future__ import annotations

import json
import math
from typing import Any

from vaekit.errors import VaekitError

# Under the N(0, I) prior a coordinate beyond 6 has probability below 1e-9; 1e3 is far outside
# anything the decoder was trained on, yet keeps every activation finite in float32.
MAX_ABS_LATENT = 1e3
# A request holds at most a latent vector and a few numbers; anything larger is not ours.
MAX_BODY_BYTES = 64 * 1024
METHODS = ("linear", "spherical")


class RequestError(VaekitError, ValueError):
    """A request the explorer cannot answer: the client's mistake (HTTP 400 unless ``status`` says otherwise)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of a request body."""
    if len(raw) > MAX_BODY_BYTES:
        raise RequestError(f"the request body has {len(raw)} bytes; at most {MAX_BODY_BYTES} are accepted", 413)
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(f"the request body is not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise RequestError(f"the request body must be a JSON object, not {type(body).__name__}")
    return body


def _number(value: Any, name: str) -> float:
    # bool is an int in Python, and JSON's true is no coordinate
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(f"{name} must be a number, not {json.dumps(value)[:40]}")
    if isinstance(value, int) and abs(value) > MAX_ABS_LATENT:
        return math.inf  # an integer too large for a float; refused as huge below
    return float(value)


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{name} must be an integer, not {json.dumps(value)[:40]}")
    return value


def latent_vector(body: dict[str, Any], latent_dim: int) -> list[float]:
    """``body["z"]``: a list of ``latent_dim`` finite numbers, each within +-MAX_ABS_LATENT."""
    if "z" not in body:
        raise RequestError("the request needs z, a list of latent coordinates")
    z = body["z"]
    if not isinstance(z, list):
        raise RequestError(f"z must be a list of {latent_dim} numbers")
    if len(z) != latent_dim:
        raise RequestError(f"z has {len(z)} coordinates; this model's latent_dim is {latent_dim}")
    values = [_number(v, f"z[{d}]") for d, v in enumerate(z)]
    for d, v in enumerate(values):
        # Python's json reads NaN and Infinity, so they arrive here as floats
        if math.isnan(v):
            raise RequestError(f"z[{d}] is NaN")
        if abs(v) > MAX_ABS_LATENT:
            raise RequestError(f"z[{d}] = {z[d]} is too large; the explorer accepts |z| <= {MAX_ABS_LATENT:g}")
    return values


def class_index(body: dict[str, Any], num_classes: int) -> int | None:
    """``body["y"]``: the class a conditional model decodes (required there, refused elsewhere)."""
    if num_classes == 0:
        if body.get("y") is not None:
            raise RequestError("y was given but this model is not conditional")
        return None
    if body.get("y") is None:
        raise RequestError(f"this model is conditional: give y, a class index in 0..{num_classes - 1}")
    y = _integer(body["y"], "y")
    if not 0 <= y < num_classes:
        raise RequestError(f"class y = {y} is out of range; this model has classes 0..{num_classes - 1}")
    return y


def example_index(value: Any, count: int, name: str, status: int = 400) -> int:
    """An index into the explorer's test examples (0..count-1)."""
    i = _integer(value, name)
    if not 0 <= i < count:
        raise RequestError(f"{name} = {i} is out of range; the explorer holds test examples 0..{count - 1}", status)
    return i


def path_request(body: dict[str, Any], count: int) -> tuple[int, int, float, str]:
    """(a, b, t, method) of a request for a point on the path between two test examples."""
    missing = [k for k in ("a", "b", "t") if k not in body]
    if missing:
        raise RequestError(f"the request needs {', '.join(missing)} (a, b: test example indices; t in [0, 1])")
    a, b = example_index(body["a"], count, "a"), example_index(body["b"], count, "b")
    t = _number(body["t"], "t")
    if not 0.0 <= t <= 1.0:  # also false for NaN
        raise RequestError(f"t = {body['t']} must lie in [0, 1]")
    method = body.get("method", "linear")
    if method not in METHODS:
        raise RequestError(f"method must be 'linear' or 'spherical', not {json.dumps(method)[:40]}")
    return a, b, t, method
