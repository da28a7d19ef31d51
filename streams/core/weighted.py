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


def _priority(key: float) -> int:
    # splitmix64's finaliser over Python's numeric hash: well spread, and stable across runs
    # (numeric hashes are not randomised).
    z = (hash(key) + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


# A key is (float(value), value): comparisons are settled by the float in C, and only two
# values that round to the same float fall back to comparing the exact fractions.
Key = tuple[float, Fraction]


class _Node:
    __slots__ = ("key", "weight", "total", "priority", "left", "right")

    def __init__(self, key: Key, weight: int) -> None:
        self.key = key
        self.weight = weight
        self.total = weight
        self.priority = _priority(key[0])
        self.left: _Node | None = None
        self.right: _Node | None = None


def _total(node: _Node | None) -> int:
    return 0 if node is None else node.total


def _fix(node: _Node) -> None:
    node.total = node.weight + _total(node.left) + _total(node.right)


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


def _ceil(threshold: Fraction | int) -> int:
    # Weight sums are integers, so "sum >= threshold" is "sum >= ceil(threshold)": one exact
    # conversion instead of a Fraction comparison at every step of a descent.
    return -(-threshold.numerator // threshold.denominator)


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

    def _replace(self, parent: _Node | None, old: _Node, new: _Node | None) -> None:
        if parent is None:
            self._root = new
        elif parent.left is old:
            parent.left = new
        else:
            parent.right = new

    def add(self, value: Fraction, weight: int) -> None:
        """Add ``weight`` at ``value`` (a negative weight removes; a node at weight 0 goes)."""
        key = (value.numerator / value.denominator, value)  # float(value), without its Python-level detour
        path: list[_Node] = []
        node = self._root
        while node is not None:
            if key == node.key:
                break
            path.append(node)
            node = node.left if key < node.key else node.right
        if node is not None:
            if node.weight + weight < 0:
                raise ValueError(f"weight at {value} would become negative")
            for ancestor in path:
                ancestor.total += weight
            node.weight += weight
            node.total += weight
            if node.weight == 0:
                self._replace(path[-1] if path else None, node, _merge(node.left, node.right))
            return
        if weight <= 0:
            raise ValueError(f"cannot remove weight {-weight} at {value}: not present")
        for ancestor in path:
            ancestor.total += weight
        new = _Node(key, weight)
        if not path:
            self._root = new
            return
        parent = path[-1]
        if key < parent.key:
            parent.left = new
        else:
            parent.right = new
        # Rotate the new node up until the heap order on priorities holds again.
        while path and path[-1].priority < new.priority:
            parent = path.pop()
            if parent.left is new:
                parent.left = new.right
                new.right = parent
            else:
                parent.right = new.left
                new.left = parent
            _fix(parent)
            _fix(new)
            self._replace(path[-1] if path else None, parent, new)

    def remove(self, value: Fraction, weight: int) -> None:
        self.add(value, -weight)

    def largest_with_weight_at_or_above(self, threshold: Fraction | int) -> Fraction | None:
        """SPEC 4, at_most: "the largest stated value t such that Σw(considered with value >= t) >= q·C"."""
        need = _ceil(threshold)
        node, beyond, best = self._root, 0, None
        while node is not None:
            right = node.right
            here = beyond + (right.total if right is not None else 0) + node.weight
            if here >= need:
                best = node.key
                node = right
            else:
                beyond = here
                node = node.left
        return None if best is None else best[1]

    def smallest_with_weight_at_or_below(self, threshold: Fraction | int) -> Fraction | None:
        """SPEC 4, at_least: "the smallest stated value t such that Σw(considered with value <= t) >= q·C"."""
        need = _ceil(threshold)
        node, before, best = self._root, 0, None
        while node is not None:
            left = node.left
            here = before + (left.total if left is not None else 0) + node.weight
            if here >= need:
                best = node.key
                node = left
            else:
                before = here
                node = node.right
        return None if best is None else best[1]

    def items(self) -> Iterator[tuple[Fraction, int]]:
        """(value, weight) in ascending order."""
        stack: list[_Node] = []
        node = self._root
        while stack or node is not None:
            while node is not None:
                stack.append(node)
                node = node.left
            node = stack.pop()
            yield node.key[1], node.weight
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
