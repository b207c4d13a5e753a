"""Parameter layout: how a problem's flat parameter vector splits into layers and units.

Every problem stores θ as one flat vector of length P (a batch of paths as an (R, P) tensor).
Each weight matrix and each bias vector is its own *layer* (a contiguous slice, row-major), the
unit of the layer-wise rule (18). A *unit* is one output row of a layer with at least two axes
(all axes but the first, as NFNets' AGC), or the whole layer otherwise; units are contiguous
slices too. Groups (layers or units) are numbered 0..G-1 and ``ids[p]`` is the group of
coordinate ``p``, so per-group sums are one ``index_add``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import torch

__all__ = ["Layer", "Layout"]


@dataclass(frozen=True)
class Layer:
    """One layer: a name, its shape and its offset in the flat parameter vector."""

    name: str
    shape: tuple[int, ...]
    offset: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def stop(self) -> int:
        return self.offset + self.size

    def view(self, flat: torch.Tensor) -> torch.Tensor:
        """This layer of a batch of flat vectors (..., P), as a view of shape (..., *shape)."""
        return flat[..., self.offset : self.stop].unflatten(-1, self.shape)


@dataclass(frozen=True)
class Layout:
    """The layers of a flat parameter vector, in order."""

    layers: tuple[Layer, ...]

    @classmethod
    def of(cls, *named_shapes: tuple[str, tuple[int, ...]]) -> Layout:
        """Layers laid out one after the other: ``Layout.of(("weight", (25, 20)), ...)``."""
        layers, offset = [], 0
        for name, shape in named_shapes:
            layers.append(Layer(name, tuple(shape), offset))
            offset += math.prod(shape)
        return cls(tuple(layers))

    @property
    def size(self) -> int:
        """P, the number of parameters."""
        return self.layers[-1].stop if self.layers else 0

    def __getitem__(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    @cached_property
    def unit_slices(self) -> tuple[tuple[int, int], ...]:
        """(start, stop) of every unit: each row of a matrix layer, each vector layer whole."""
        units = []
        for layer in self.layers:
            if len(layer.shape) >= 2:
                width = math.prod(layer.shape[1:])
                units += [
                    (layer.offset + i * width, layer.offset + (i + 1) * width)
                    for i in range(layer.shape[0])
                ]
            else:
                units.append((layer.offset, layer.stop))
        return tuple(units)

    def group_ids(self, unitwise: bool) -> list[int]:
        """``ids[p]``: the group (layer, or unit when ``unitwise``) of coordinate ``p``."""
        slices = (
            self.unit_slices if unitwise else tuple((la.offset, la.stop) for la in self.layers)
        )
        ids: list[int] = []
        for group, (start, stop) in enumerate(slices):
            ids += [group] * (stop - start)
        return ids
