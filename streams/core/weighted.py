"""A multiset of numbers with integer weights that answers weighted-quantile questions in O(log k).

The joint demand's target on an ``at_most`` item is "the largest stated value t such that the
weight of positions with value >= t reaches q·C" (and the mirror image for ``at_least``). Kept as a
treap (a binary search tree balanced by heap priorities) whose nodes carry the weight sum of their
subtree, one position costs O(log k) to add or remove, and the target is one descent from the root.

The priorities are a hash of the key, not random numbers: the tree's shape is a function of its
contents alone, so it does not depend on the order in which positions arrived.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

_MASK = (1 << 64) - 1


def _priority(key: Fraction) -> int:
    # splitmix64's finaliser over Python's numeric hash: well spread, and stable across runs
    # (numeric hashes are not randomised).
    z = (hash(key) + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


class _Node:
    __slots__ = ("key", "weight", "total", "priority", "left", "right")

    def __init__(self, key: Fraction, weight: int) -> None:
        self.key = key
        self.weight = weight
        self.total = weight
        self.priority = _priority(key)
        self.left: _Node | None = None
        self.right: _Node | None = None


def _total(node: _Node | None) -> int:
    return 0 if node is None else node.total


def _fix(node: _Node) -> None:
    node.total = node.weight + _total(node.left) + _total(node.right)


def _rotate_right(node: _Node) -> _Node:
    pivot = node.left
    assert pivot is not None
    node.left = pivot.right
    pivot.right = node
    _fix(node)
    _fix(pivot)
    return pivot


def _rotate_left(node: _Node) -> _Node:
    pivot = node.right
    assert pivot is not None
    node.right = pivot.left
    pivot.left = node
    _fix(node)
    _fix(pivot)
    return pivot


def _merge(left: _Node | None, right: _Node | None) -> _Node | None:
    """Join two treaps whose keys are all smaller in ``left`` than in ``right``."""
    if left is None:
        return right
    if right is None:
        return left
    if left.priority > right.priority:
        left.right = _merge(left.right, right)
        _fix(left)
        return left
    right.left = _merge(left, right.left)
    _fix(right)
    return right


def _add(node: _Node | None, key: Fraction, weight: int) -> _Node | None:
    if node is None:
        if weight <= 0:
            raise ValueError(f"cannot remove weight {-weight} at {key}: not present")
        return _Node(key, weight)
    if key == node.key:
        node.weight += weight
        if node.weight < 0:
            raise ValueError(f"weight at {key} would become negative")
        if node.weight == 0:
            return _merge(node.left, node.right)
        node.total += weight
        return node
    if key < node.key:
        node.left = _add(node.left, key, weight)
        if node.left is not None and node.left.priority > node.priority:
            return _rotate_right(node)
    else:
        node.right = _add(node.right, key, weight)
        if node.right is not None and node.right.priority > node.priority:
            return _rotate_left(node)
    _fix(node)
    return node


class WeightedValues:
    """Numbers with positive integer weights; equal numbers share one node."""

    __slots__ = ("_root",)

    def __init__(self) -> None:
        self._root: _Node | None = None

    @property
    def total(self) -> int:
        return _total(self._root)

    def __bool__(self) -> bool:
        return self._root is not None

    def add(self, key: Fraction, weight: int) -> None:
        self._root = _add(self._root, key, weight)

    def remove(self, key: Fraction, weight: int) -> None:
        self._root = _add(self._root, key, -weight)

    def largest_with_weight_at_or_above(self, threshold: Fraction) -> Fraction | None:
        """The largest key t with Σ weight(keys >= t) >= threshold, or None if there is none."""
        node, beyond, best = self._root, 0, None
        while node is not None:
            here = beyond + _total(node.right) + node.weight
            if here >= threshold:
                best = node.key
                node = node.right
            else:
                beyond = here
                node = node.left
        return best

    def smallest_with_weight_at_or_below(self, threshold: Fraction) -> Fraction | None:
        """The smallest key t with Σ weight(keys <= t) >= threshold, or None if there is none."""
        node, before, best = self._root, 0, None
        while node is not None:
            here = before + _total(node.left) + node.weight
            if here >= threshold:
                best = node.key
                node = node.left
            else:
                before = here
                node = node.right
        return best

    def items(self) -> Iterator[tuple[Fraction, int]]:
        """(key, weight) in ascending key order."""
        stack: list[_Node] = []
        node = self._root
        while stack or node is not None:
            while node is not None:
                stack.append(node)
                node = node.left
            node = stack.pop()
            yield node.key, node.weight
            node = node.right

    def depth(self) -> int:
        """The height of the tree (for tests of its balance)."""
        best = 0
        stack = [(self._root, 1)] if self._root is not None else []
        while stack:
            node, d = stack.pop()
            assert node is not None
            best = max(best, d)
            stack.extend((child, d + 1) for child in (node.left, node.right) if child is not None)
        return best
