"""The unbiased pass@k estimator (Chen et al. 2021): 1 - C(n-c, k) / C(n, k)."""
from __future__ import annotations

from collections.abc import Iterable


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n samples, c of
    them correct, is correct. Needs 0 <= c <= n and 1 <= k <= n.

    Returns:
        pass@k in [0, 1]: ``1 - C(n-c, k) / C(n, k)``, computed as a product (no big binomials); 1.0
        when ``n - c < k``.

    Raises:
        ValueError: not 0 <= c <= n and 1 <= k <= n.
    """
    if not (0 <= c <= n) or not (1 <= k <= n):
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):  # C(n-c,k)/C(n,k) = prod_{i=n-c+1}^{n} (1 - k/i)
        prod *= 1.0 - k / i
    return 1.0 - prod


def mean_pass_at_k(counts: Iterable[tuple[int, int]], k: int) -> float | None:
    """Mean pass@k over problems given (n, c) per problem.

    Args:
        counts: ``(n samples, c correct)`` per problem.
        k: the k of pass@k.

    Returns:
        The mean of ``pass_at_k(n, c, k)`` over the problems, in [0, 1]; None when some problem has
        n < k or there are no problems.

    Raises:
        ValueError: a problem has c outside [0, n] or k < 1 (``pass_at_k``).
    """
    vals = []
    for n, c in counts:
        if n < k:
            return None
        vals.append(pass_at_k(n, c, k))
    return sum(vals) / len(vals) if vals else None
