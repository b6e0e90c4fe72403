"""A software prefetch for numba kernels (``llvm.prefetch``).

The dense multi-tau kernel reads, for one pixel tile, a short run of each
frame (a few hundred bytes) at a stride of a whole frame: the hardware
prefetchers do not follow such a pattern across pages, so each row costs a
memory latency. Asking for the rows a few frames ahead hides it (about a
third of the conversion time on a 256x256 uint8 stack).
"""

from __future__ import annotations

from typing import Any

import llvmlite.binding as llvm_binding
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["prefetch_row"]

# LLVM 16 and newer have opaque pointers only (intrinsic ``.p0``); older ones ``.p0i8``
_NAME = "llvm.prefetch.p0" if llvm_binding.llvm_version_info[0] >= 16 else "llvm.prefetch.p0i8"


def _prefetch_row(typingctx: Any, arr: Any, row: Any, col: Any) -> Any:
    """Hint that ``arr[row, col]`` (a 2-D array) will be read soon (no bounds check)."""
    if not isinstance(arr, types.Array) or arr.ndim != 2:
        return None
    sig = types.void(arr, row, col)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        ary, i, j = args
        aryty = signature.args[0]
        array = context.make_array(aryty)(context, builder, ary)
        index = [
            context.cast(builder, i, signature.args[1], types.intp),
            context.cast(builder, j, signature.args[2], types.intp),
        ]
        ptr = cgutils.get_item_pointer(  # type: ignore[no-untyped-call]
            context, builder, aryty, array, index, wraparound=False
        )
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _NAME)  # type: ignore[no-untyped-call]
        # read (0), keep in all cache levels (3), data cache (1)
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


prefetch_row: Any = intrinsic(_prefetch_row)
"""``prefetch_row(arr, row, col)`` in a numba kernel: prefetch ``arr[row, col]``."""
