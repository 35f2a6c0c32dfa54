"""NumPy 2 compatibility for megatron-core 0.15.3, applied before NeMo / Megatron are imported.

megatron-core 0.15.3 (the version NeMo 2.7.3 works with; 0.16.1 breaks ``import_ckpt``) still calls
``np.product`` in its distributed-checkpoint code - ``dist_checkpointing/mapping.py:219``
(``ShardedTensor.local_coordinates``), ``validation.py:522`` (``_validate_sharding_for_key_flattened``)
and ``exchange_utils.py:66`` (``_shard_size``). NumPy deprecated that alias of ``np.prod`` in 1.25
and removed it in 2.0, so with NumPy 2.x the first checkpoint save under tensor parallelism dies
with ``AttributeError: module 'numpy' has no attribute 'product'`` (seen on 2x H200, NumPy 2.5.2,
2026-11-30; upstream: NVIDIA/Megatron-LM issue #1563, PR #1440).

Why a shim and not ``numpy<2``: megatron-core declares ``numpy<2.0.0``, so a fresh ``pip install
'.[nemo]'`` already resolves NumPy 1.26, where the alias exists and this module changes nothing. But
where NumPy 2 is already there - the GPU image, whose torch, JAX, CuPy, pandas and SciPy are built
for NumPy 2.x and some of which require it, or any Python 3.13 environment (no NumPy 1.x wheels) -
shadowing it with NumPy 1.x would break those packages. ``np.product`` is the only NumPy name that
megatron-core 0.15.3 and NeMo 2.7.3's LLM code use and NumPy 2 lacks (checked by scanning both
wheels' sources against NumPy 2.4), and ``np.prod`` is exactly what it aliased, so restoring that one
alias is the smallest correct fix.
"""
from __future__ import annotations

import types

#: NumPy 1.x aliases removed in NumPy 2.0 that megatron-core 0.15.3 calls, and what each aliased
REMOVED_ALIASES = {"product": "prod"}


def restore_numpy_aliases(np: types.ModuleType | None = None) -> list[str]:
    """Give ``np`` back each alias in REMOVED_ALIASES that it lacks (NumPy >= 2.0), pointing at the
    function it aliased (``np.product = np.prod``). Names ``np`` still has (NumPy 1.x, e.g. the NeMo
    container) are left untouched. Idempotent.

    ``np`` defaults to the imported ``numpy`` module; tests pass a stand-in.

    Returns:
        The alias names added, e.g. ``["product"]`` under NumPy 2.x; ``[]`` when none were missing.
    """
    if np is None:
        import numpy as np
    added = []
    for old, new in REMOVED_ALIASES.items():
        if not hasattr(np, old):
            setattr(np, old, getattr(np, new))
            added.append(old)
    return added
