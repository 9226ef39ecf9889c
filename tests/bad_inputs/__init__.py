"""The bad-input table: for every ember.ops entry point, the main nn modules and functionals,
and the compiled functions of ember._C, calls that must raise a TypeError / ValueError (or the
exception PyTorch raises there) whose message names the argument, or give the documented
result.

`TABLE` maps an entry point's name to a function returning its cases. tests/test_bad_inputs.py
runs each entry point's cases in a subprocess (`python -m bad_inputs ENTRY`, see __main__.py),
so a crash is a failure naming the case, not a lost test run. `python -m bad_inputs --count`
prints how many cases each entry point has.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

f32, f64 = np.float32, np.float64

# the dtypes no entry point accepts for its float arrays
WRONG_DTYPES = (np.int32, np.int64, np.float16, np.complex64, np.object_, np.bool_)


class Skip(Exception):
    """Raised by a case that cannot run on this machine (e.g. no address space to map)."""


@dataclass(frozen=True)
class Case:
    """One call. With `error` set it must raise that exception type with every one of `words`
    in its message (identifiers as whole words, anything else as a substring); otherwise it must
    return, and `check` (if given) asserts on the result."""

    name: str
    call: Callable[[], object]
    error: type | tuple | None = None
    words: tuple = ()
    check: Callable[[object], None] | None = None


def bad(name, call, error, *words) -> Case:
    return Case(name, call, error, words)


def good(name, call, check=None) -> Case:
    return Case(name, call, None, (), check)


def mentions(message: str, word: str) -> bool:
    if re.fullmatch(r"\w+", word):
        return re.search(rf"(?<![\w.]){re.escape(word)}(?!\w)", message) is not None
    return word in message


def evaluate(case: Case) -> tuple[str, str]:
    """('ok' | 'fail' | 'skip', detail)."""
    try:
        result = case.call()
    except Skip as e:
        return "skip", str(e)
    except Exception as e:  # the table checks its type
        got = f"{type(e).__name__}: {e}"
        if case.error is None:
            return "fail", f"expected a result, got {got}"
        if not isinstance(e, case.error):
            return "fail", f"expected {_names(case.error)}, got {got}"
        missing = [w for w in case.words if not mentions(str(e), w)]
        if missing:
            return "fail", f"message does not mention {missing}: {got}"
        return "ok", got
    if case.error is not None:
        return "fail", f"expected {_names(case.error)}, got a result"
    if case.check is not None:
        try:
            case.check(result)
        except AssertionError as e:
            return "fail", f"wrong result: {e}"
    return "ok", ""


def _names(error) -> str:
    errors = error if isinstance(error, tuple) else (error,)
    return " or ".join(e.__name__ for e in errors)


# ---- arrays and results --------------------------------------------------------------------


def rand(*shape, dtype=f32, seed=0):
    return np.random.default_rng(seed + 7 * len(shape)).standard_normal(shape).astype(dtype)


def leaves(result) -> list:
    """The arrays (and Nones) of a result, nested tuples flattened."""
    if isinstance(result, (tuple, list)):
        return [leaf for item in result for leaf in leaves(item)]
    if hasattr(result, "numpy") and not isinstance(result, np.ndarray):  # an ember.Tensor
        return [result.numpy()]
    return [result]


def assert_close(result, expected, rtol=1e-5, atol=1e-5):
    got, want = leaves(result), leaves(expected)
    assert len(got) == len(want), f"{len(got)} outputs, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if w is None or g is None:
            assert g is None and w is None, f"output {i}: {g!r} vs {w!r}"
            continue
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape, f"output {i}: shape {g.shape}, expected {w.shape}"
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"output {i}")


def shapes(*want):
    """A check: the result's arrays have these shapes (None for a None output)."""

    def check(result):
        got = [None if a is None else tuple(np.shape(a)) for a in leaves(result)]
        assert got == list(want), f"shapes {got}, expected {list(want)}"

    return check


def dtypes(dtype):
    """A check: the result's float arrays have this dtype (indices stay integers)."""

    def check(result):
        for a in leaves(result):
            if a is not None and a.dtype.kind == "f":
                assert a.dtype == dtype, f"dtype {a.dtype}, expected {np.dtype(dtype)}"

    return check


# ---- layouts: the same values in other memory layouts, which every entry point accepts -------


def negative_strides(a):
    return np.flip(np.flip(a).copy())


def every_other(a):
    big = np.zeros(tuple(2 * n for n in a.shape), a.dtype)
    view = big[tuple(slice(None, None, 2) for _ in a.shape)]
    view[...] = a
    return view


def misaligned(a):
    buf = np.zeros(a.nbytes + 1, np.uint8)
    view = buf[1:].view(a.dtype).reshape(a.shape)
    view[...] = a
    return view


def read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


LAYOUTS = {
    "negative strides": negative_strides,
    "every other element": every_other,
    "Fortran order": np.asfortranarray,
    "big-endian": lambda a: a.astype(a.dtype.newbyteorder(">")),
    "misaligned": misaligned,
    "read-only": read_only,
}

# MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE on Linux: address space without memory
_MAP_FLAGS = 0x02 | 0x20 | 0x4000


def far_apart(shape, first_stride, dtype=f32):
    """An array of `shape` whose first dimension steps `first_stride` elements (the others are
    C-contiguous) inside a lazily mapped region, so element offsets pass 2**31 while only the
    touched pages cost memory. Raises Skip where the mapping is refused."""
    import mmap

    itemsize = np.dtype(dtype).itemsize
    inner = int(np.prod(shape[1:]))
    nbytes = ((shape[0] - 1) * first_stride + inner) * itemsize
    try:
        region = mmap.mmap(-1, nbytes, flags=_MAP_FLAGS)
    except (OSError, ValueError, OverflowError) as e:
        raise Skip(f"cannot map {nbytes} bytes of address space: {e}") from e
    base = np.frombuffer(region, dtype)
    strides = (first_stride * itemsize,) + tuple(
        inner // int(np.prod(shape[1 : d + 1])) * itemsize for d in range(1, len(shape))
    )
    return np.lib.stride_tricks.as_strided(base, shape, strides)


# ---- the cases every entry point gets for each of its float array arguments ----------------


def standard_cases(call, make, arrays, required, *, rtol=1e-5, atol=1e-5) -> list:
    """Cases for `call(**make(dtype))`: float32 and float64 work; each argument in `arrays`
    refuses other dtypes, a mix of float32 and float64, lists, scalars and (if in `required`)
    None with a TypeError naming it, and in any memory layout gives the float32 result."""
    baseline = []

    def expected():
        if not baseline:
            baseline.append(call(**make(f32)))
        return baseline[0]

    cases = [
        good("float32", lambda: call(**make(f32)), dtypes(f32)),
        good(
            "float64",
            lambda: call(**make(f64)),
            lambda r: (dtypes(f64)(r), assert_close(r, expected(), rtol=1e-4, atol=1e-4)),
        ),
    ]

    def replaced(name, transform, dtype=f32):
        def run():
            kwargs = make(dtype)
            kwargs[name] = transform(kwargs[name])
            return call(**kwargs)

        return run

    for name in arrays:
        for dtype in WRONG_DTYPES:
            cases.append(
                bad(
                    f"{name} {np.dtype(dtype).name}",
                    replaced(name, lambda a, d=dtype: a.astype(d)),
                    TypeError,
                    name,
                )
            )
        if len(arrays) > 1:
            # a mix names one of the arrays involved (not necessarily this one) and both dtypes
            mixed = ("float32", "float64")
            cases.append(
                bad(
                    f"{name} float64, the rest float32",
                    replaced(name, lambda a: a.astype(f64)),
                    TypeError,
                    *mixed,
                )
            )
            cases.append(
                bad(
                    f"{name} float32, the rest float64",
                    replaced(name, lambda a: a.astype(f32), f64),
                    TypeError,
                    *mixed,
                )
            )
        cases += [
            bad(f"{name} a list", replaced(name, lambda a: a.tolist()), TypeError, name),
            bad(f"{name} a Python float", replaced(name, lambda a: 1.5), TypeError, name),
            bad(
                f"{name} a NumPy scalar", replaced(name, lambda a: np.float32(1.5)), TypeError, name
            ),
            bad(f"{name} a string", replaced(name, lambda a: "x"), TypeError, name),
        ]
        if name in required:
            cases.append(bad(f"{name} None", replaced(name, lambda a: None), TypeError, name))
        for layout, transform in LAYOUTS.items():
            cases.append(
                good(
                    f"{name} {layout}",
                    replaced(name, transform),
                    lambda r: assert_close(r, expected(), rtol=rtol, atol=atol),
                )
            )
    return cases


def _load_table() -> dict:
    from bad_inputs import extension_cases, nn_cases, ops_cases

    return {**ops_cases.TABLE, **nn_cases.TABLE, **extension_cases.TABLE}


TABLE: dict = {}


def table() -> dict:
    """{entry point: function returning its list of Cases}."""
    if not TABLE:
        TABLE.update(_load_table())
    return TABLE
