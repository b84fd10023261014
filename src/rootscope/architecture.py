"""Root mask -> plants -> primary and lateral roots, tips and branching points (pixels).

The pipeline: clean the mask, skeletonize it into a graph (:mod:`rootscope.skeleton`), undo root
crossings (a four-way junction whose edges pair into two straight roots is two roots passing, not a
branching point) and bands where two roots run together (a merge facing a split: both roots get the
band), find the seeds (seed class, given points, or the apexes where roots fan out downwards),
attach every part of the graph to its nearest seed by path length, and read each plant's tree as
roots: first-order roots start at the seed, the primary is the one that reaches the
deepest tip; every other branch is a lateral of order parent + 1 that follows its longest path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations

import cv2
import numpy as np
from scipy.ndimage import median_filter
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

from .errors import InputError
from .rsml import Metadata, Plant, Root, Scene
from .skeleton import SkeletonGraph, chain_length, clean_mask, merge_degree_two, path_length, resample, skeleton_graph, smooth_path

ROOT, SEED, SHOOT = 1, 2, 3


@dataclass
class RootPath:
    """One measured root of a plant.

    ``points`` is the smoothed ``N x 2`` (row, col) centreline from base to tip (px); ``diameter`` the
    root diameter (px) at each point; ``parent`` the index of the parent root in the plant (None for
    first-order roots); ``insertion_px`` the distance along the parent (px) where this root starts;
    ``overlap_px`` the length (px) of its stretches wide enough to hold a second root running along it
    (see :func:`overlap_lengths`), which the plant's total length counts again.
    """

    points: np.ndarray
    diameter: np.ndarray
    order: int
    length_px: float
    parent: int | None = None
    insertion_px: float = 0.0
    overlap_px: float = 0.0

    @property
    def base(self) -> np.ndarray:
        return self.points[0]

    @property
    def tip(self) -> np.ndarray:
        return self.points[-1]


@dataclass
class PlantArchitecture:
    """A plant: its seed (row, col) and roots; ``roots[primary]`` is the primary root (None: no root);
    ``seeded`` when the seed came from the seed mask or given points (else it is the top of a root system)."""

    id: int
    seed: np.ndarray
    roots: list[RootPath] = field(default_factory=list)
    primary: int | None = None
    seeded: bool = False

    @property
    def total_length_px(self) -> float:
        """Root length of the plant (px): every root's length plus the overlap estimated from width."""
        return float(sum(r.length_px + r.overlap_px for r in self.roots))

    def branch_points(self) -> np.ndarray:
        """``K x 2`` (row, col) where a lateral leaves its parent."""
        pts = [r.base for r in self.roots if r.parent is not None]
        return np.array(pts, float).reshape(-1, 2)

    def tips(self) -> np.ndarray:
        """``K x 2`` (row, col) root tips."""
        return np.array([r.tip for r in self.roots], float).reshape(-1, 2)


@dataclass
class ImageArchitecture:
    """Everything measured on one mask, as data (tables are made by :mod:`rootscope.traits`).

    ``unassigned_length_px`` is skeleton length not reachable from any seed; ``crossings`` the (row,
    col) points where two roots were found to cross, ``bundles`` the middles of stretches where two
    roots run together (:func:`resolve_bundles`); ``warnings`` human-readable notes.
    """

    shape: tuple[int, int]
    plants: list[PlantArchitecture] = field(default_factory=list)
    crossings: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    bundles: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    unassigned_length_px: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def branch_points(self) -> np.ndarray:
        """All branching points, ``K x 2`` (row, col)."""
        return np.vstack([p.branch_points() for p in self.plants] + [np.zeros((0, 2))])

    def tips(self) -> np.ndarray:
        """All root tips, ``K x 2`` (row, col)."""
        return np.vstack([p.tips() for p in self.plants] + [np.zeros((0, 2))])


# ------------------------------------------------------------------------------------ input
def split_classes(mask: np.ndarray, root_class: int = ROOT, seed_class: int | None = SEED, name: str = "<mask>") -> tuple[np.ndarray, np.ndarray | None]:
    """Root and seed booleans from a class-index mask (``H x W`` ints).

    A 0/1 or 0/255 mask is all root. Other values need ``root_class`` (and ``seed_class``) to say which
    class is which; a float or colour image raises InputError naming ``name``.
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise InputError(f"{name}: mask has shape {m.shape}; expected a 2-D class-index image (H x W). Save the mask as a single-channel PNG.")
    if m.dtype.kind == "f":
        if not np.all(np.isin(np.unique(m), (0.0, 1.0))):
            raise InputError(f"{name}: mask holds non-integer values; expected class indices (0 background, 1 root, ...). Threshold probabilities first (e.g. rootscope segment).")
        m = m.astype(np.uint8)
    values = np.unique(m)
    if set(values.tolist()) <= {0, 255}:
        return m == 255, None
    if set(values.tolist()) <= {0, 1}:
        return m == 1, None
    if len(values) > 16:
        raise InputError(
            f"{name}: mask is not binary ({len(values)} distinct values, e.g. {values[:6].tolist()}); it looks like a "
            "grey-level image, not a class-index mask. Pass a segmentation mask, or --root-class K for class-index masks."
        )
    seed = (m == seed_class) if seed_class is not None and seed_class != root_class and seed_class in values else None
    return m == root_class, seed


# ------------------------------------------------------------------------------------ crossings
def _direction(g: SkeletonGraph, k: int, node: int, reach: float) -> np.ndarray:
    """Unit vector from ``node`` along edge ``k`` to the point ``reach`` px away (or the far end)."""
    p = g.edges[k].oriented(node)[: int(reach) + 2].astype(float)  # pixel steps are >= 1 px
    d = np.r_[0, np.cumsum(np.hypot(*np.diff(p, axis=0).T))]
    q = p[min(np.searchsorted(d, reach), len(p) - 1)]
    v = q - g.nodes[node]
    n = np.hypot(*v)
    return v / n if n > 0 else v


def _junction_clusters(g: SkeletonGraph, max_bridge: float) -> list[tuple[list[int], list[int]]]:
    """Groups of junctions joined by edges shorter than ``max_bridge`` x the wider root's diameter there
    (a thin root crossing a thick one leaves junctions on both sides of the thick one), with the edges
    that leave each group: (nodes, inner edge ids)."""
    deg = g.degree()
    parent = {}

    def find(a: int) -> int:
        while parent.setdefault(a, a) != a:
            a = parent[a]
        return a

    inner: dict[int, list[int]] = {}
    for k, e in g.edges.items():
        if e.u != e.v and deg[e.u] >= 3 and deg[e.v] >= 3 and e.length <= max_bridge * 2 * max(g.radius[e.u], g.radius[e.v]):
            parent[find(e.u)] = find(e.v)
    for n in np.flatnonzero(deg >= 3):
        find(int(n))
    groups: dict[int, list[int]] = {}
    for n in parent:
        groups.setdefault(find(n), []).append(n)
    for k, e in g.edges.items():
        if e.u in parent and e.v in parent and find(e.u) == find(e.v) and e.u != e.v:
            inner.setdefault(find(e.u), []).append(k)
    return [(sorted(nodes), inner.get(root, [])) for root, nodes in groups.items()]


def _two_laterals(g: SkeletonGraph, nodes: list[int], far: list[int], pairs: list[tuple[int, int]], at_seed: np.ndarray) -> bool:
    """Whether one of the two straight ``pairs`` of edge ends at a junction group (``nodes``; ``far``:
    the far node of each end) is two roots leaving the same point of their parent rather than one root
    passing over it. A passing root comes from a seed, so at least one of its sides reaches a seed
    (``at_seed``, per node) without going through the group. Only where the group itself is joined
    to a seed: a piece cut off from every seed tells nothing."""
    if not at_seed.any():
        return False
    n = len(g.nodes)
    u = np.array([e.u for e in g.edges.values()])
    v = np.array([e.v for e in g.edges.values()])

    def labels(keep: np.ndarray) -> np.ndarray:
        return connected_components(coo_matrix((np.ones(keep.sum()), (u[keep], v[keep])), shape=(n, n)), directed=False)[1]

    whole = labels(np.ones(len(u), bool))
    if not np.isin(whole[nodes[0]], whole[at_seed]):
        return False
    inside = np.isin(np.arange(n), nodes)
    cut = labels(~(inside[u] | inside[v]))
    seeded = np.zeros(n, bool)
    seeded[cut[at_seed & ~inside]] = True
    reaches = [bool(inside[f] or seeded[cut[f]]) for f in far]
    return any(not (reaches[i] or reaches[j]) for i, j in pairs)


def resolve_crossings(g: SkeletonGraph, *, max_bridge: float = 1.5, max_turn_deg: float = 35.0,
                      seeds: np.ndarray | None = None, seed_radii: np.ndarray | None = None,
                      start_nodes: np.ndarray | None = None) -> np.ndarray:
    """Split X-junctions into two roots passing each other, in place; returns crossing points (row, col).

    A crossing shows as one node with four edges, or two or three junctions joined by edges shorter than
    ``max_bridge`` x the root diameter (five edges when a root crosses at a branching point: the branch
    belongs to the pair it leaves forwards, downwards at an acute angle). When the
    edges leaving such a group hold two pairs that each continue straight (turn < ``max_turn_deg``),
    one pair becomes a single edge passing over the group: no branching point is left there. Groups
    within ``seed_radii`` px of ``seeds`` (``K x 2`` (row, col)) are left alone: roots fan out there.
    Roots start at nodes within those radii, and at ``start_nodes`` (indices) if given.
    """
    crossings = []
    cos_ok = np.cos(np.radians(180 - max_turn_deg))
    candidates = []
    deg = g.degree()
    at_seed = np.zeros(len(g.nodes), bool)
    if seeds is not None and len(seeds):
        at_seed = (np.hypot(*(g.nodes[:, None, :] - seeds[None, :, :]).transpose(2, 0, 1)) <= seed_radii).any(axis=1)
    if start_nodes is not None:
        at_seed[np.asarray(start_nodes, int)] = True
    for nodes, inner in _junction_clusters(g, max_bridge):
        if len(nodes) > 3:
            continue
        inc = {}
        for k, e in g.edges.items():
            if k in inner:
                continue
            for n in (e.u, e.v):
                if n in nodes:
                    inc.setdefault(k, []).append(n)
        ends = [(k, n) for k, ns in inc.items() for n in ns]
        if len(ends) not in (4, 5) or len(inc) != len(ends):
            continue
        reach = 4 * max(g.radius[n] for n in nodes) + 4
        dirs = [_direction(g, k, n, reach) for k, n in ends]
        # an edge to a free tip (not at a seed); two of them opposite each other are two laterals
        # leaving the same point of their parent, not a root passing over it
        far = [g.edges[k].v if g.edges[k].u == n else g.edges[k].u for k, n in ends]
        free = [deg[f] == 1 and not at_seed[f] for f in far]
        centre = g.nodes[nodes].mean(axis=0)
        if seeds is not None and len(seeds) and (np.hypot(*(seeds - centre).T) <= seed_radii).any():
            continue
        best, best_cost = None, (np.inf, 0.0)
        for a, b in combinations(range(len(ends)), 2):
            rest = [i for i in range(len(ends)) if i not in (a, b)]
            for c, d in combinations(rest, 2):
                cost = (max(dirs[a] @ dirs[b], dirs[c] @ dirs[d]), 0.0)
                if len(ends) == 5:  # the fifth edge is a branch of (c, d)
                    e5 = [i for i in rest if i not in (c, d)][0]
                    # of two roots crossing where one branches, the branch leaves forwards (down) at an acute angle
                    down = dirs[c] if dirs[c][0] > dirs[d][0] else dirs[d]
                    cost = (cost[0], -float(dirs[e5] @ down))
                if cost >= best_cost or (free[a] and free[b]) or (free[c] and free[d]):
                    continue
                best, best_cost = (a, b, c, d), cost
        if best is not None and best_cost[0] <= cos_ok and not _two_laterals(g, nodes, far, [best[:2], best[2:]], at_seed):
            candidates.append((best_cost[0], nodes, [ends[i] for i in best[:2]], centre))
    used: set[int] = set()
    for _, nodes, pair, centre in sorted(candidates, key=lambda c: c[0]):
        if used & set(nodes) or any(k not in g.edges for k, _ in pair):
            continue
        used.update(nodes)
        (ka, na), (kb, nb) = pair
        ea, eb = g.edges[ka], g.edges[kb]
        pa = ea.path if ea.v == na else ea.path[::-1]
        pb = eb.path if eb.u == nb else eb.path[::-1]
        far_a = ea.u if ea.v == na else ea.v
        far_b = eb.v if eb.u == nb else eb.u
        gap = np.hypot(*(pb[0] - pa[-1]))
        step = np.linspace(0, 1, max(int(np.ceil(gap)), 1) + 1)[1:-1, None]
        bridge = np.rint(pa[-1] + step * (pb[0] - pa[-1])).astype(pa.dtype)
        g.edges[ka] = type(ea)(far_a, far_b, np.vstack([pa, bridge, pb]))
        del g.edges[kb]
        crossings.append(centre)
    return np.array(crossings, float).reshape(-1, 2)


def _straight_pairing(da: np.ndarray, db: np.ndarray, dc: np.ndarray, dd: np.ndarray, max_deg: float) -> bool | None:
    """Which pairing of two roots arriving along ``-da``, ``-db`` with the two leaving along ``dc``,
    ``dd`` (unit vectors away from a band) lets both go on straight: True for a-c and b-d, False for
    a-d and b-c, None for neither. Straight: both turn at most ``max_deg``, and the other pairing
    makes one turn at least twice as much + 5 degrees."""
    turn = [float(np.degrees(np.arccos(np.clip(min(-da @ x, -db @ y), -1, 1)))) for x, y in ((dc, dd), (dd, dc))]
    for pairing, (t, other) in ((True, turn), (False, turn[::-1])):
        if t <= max_deg and other >= 2 * t + 5:
            return pairing
    return None


def _crossing_length(length: float, da: np.ndarray, db: np.ndarray, radii: np.ndarray) -> bool:
    """Whether a band ``length`` px long between two roots arriving along ``da`` and ``db`` (unit
    vectors) is what two straight roots crossing at that angle make: at most twice their width over the
    sine of the angle (roots that run together for a stretch make a longer one)."""
    sine = abs(float(da[0] * db[1] - da[1] * db[0]))
    return length <= 2 * (2 * float(np.max(radii))) / max(sine, 0.05)


def resolve_bundles(g: SkeletonGraph, *, max_angle_deg: float = 50.0, seeds: np.ndarray | None = None,
                    seed_radii: np.ndarray | None = None, straight_deg: float = 20.0) -> np.ndarray:
    """Give both roots their length where two roots run together for a stretch, in place.

    Two roots that meet at a shallow angle, run side by side (one band in the mask) and part again
    show as an edge ``m`` between two three-way junctions at each of which the two other edges
    both leave on the far side of ``m`` (within ``max_angle_deg`` of its line): a merge facing a
    split. Roots do not branch backwards, so ``m`` carries two roots: one pair of outer edges is
    joined through a copy of ``m``'s path (keeping each root on its side of the band), the other
    pair through ``m`` itself. Each root leaves on the side it came in, unless only the other pairing
    lets both roots go on straight (within ``straight_deg``, :func:`_straight_pairing`) and the band
    is no longer than two straight roots crossing at that angle make it (:func:`_crossing_length`):
    then they cross. Bands that start, end or centre within ``seed_radii`` of ``seeds`` are left
    alone (roots fan out there). Returns the band centres (row, col).
    """
    cos_ok = np.cos(np.radians(180 - max_angle_deg))
    cos_straight = np.cos(np.radians(straight_deg))
    out = []
    merge_degree_two(g)
    inc = g.incident()
    used: set[int] = set()
    for km in list(g.edges):
        m = g.edges.get(km)
        if m is None or m.u == m.v or km in used:
            continue
        ends = []
        for node in (m.u, m.v):
            other = [k for k in inc.get(node, []) if k != km]
            if len(inc.get(node, [])) != 3 or len(set(other)) != 2 or used & set(other):
                break
            reach = 4 * g.radius[node] + 4
            dm = _direction(g, km, node, reach)
            dirs = [_direction(g, k, node, reach) for k in other]
            if max(d @ dm for d in dirs) > cos_ok:
                break
            ends.append((node, other, dm, dirs))
        if len(ends) != 2 or set(ends[0][1]) & set(ends[1][1]):
            continue
        centre = m.path[len(m.path) // 2].astype(float)
        if seeds is not None and len(seeds) and any((np.hypot(*(seeds - p).T) <= seed_radii).any() for p in (centre, g.nodes[m.u], g.nodes[m.v])):
            continue
        (n1, (a, b), dm1, (da, db)), (n2, (c, d), dm2, (dc, dd)) = ends

        def side(v: np.ndarray, axis: np.ndarray) -> float:
            return float(axis[0] * v[1] - axis[1] * v[0])

        # travelling along m from n1 to n2, a root on the left of the band leaves it on the left, unless
        # the roots cross: only the other pairing goes on straight, and the band is as short as a crossing's
        keep = (side(da, dm1) > side(db, dm1)) == (side(dc, -dm2) > side(dd, -dm2))
        straight = _straight_pairing(da, db, dc, dd, straight_deg)
        if straight is not None and _crossing_length(
                m.length, *(_direction(g, k, n1, 3 * (4 * g.radius[n1] + 4)) for k in (a, b)), g.radius[[n1, n2]]):
            keep = straight
        if not keep:
            c, d = d, c
        ea, ec = g.edges[a], g.edges[c]
        pa = ea.path if ea.v == n1 else ea.path[::-1]
        pc = ec.path if ec.u == n2 else ec.path[::-1]
        far_a = ea.u if ea.v == n1 else ea.v
        far_c = ec.v if ec.u == n2 else ec.u
        pm = m.oriented(n1)
        g.edges[a] = type(ea)(far_a, far_c, np.vstack([pa, pm[1:], pc[1:]]))
        del g.edges[c]
        used.update((a, b, c, d, km))
        out.append(centre)
    merge_degree_two(g)
    return np.array(out, float).reshape(-1, 2)


# ------------------------------------------------------------------------------------ seeds
def seeds_from_mask(seed_mask: np.ndarray, min_area_px: int = 4) -> tuple[np.ndarray, list[np.ndarray]]:
    """Seed centroids (``K x 2`` (row, col)) and the (row, col) pixels of each seed blob (``N_i x 2``)
    of a boolean seed mask; blobs under ``min_area_px`` px are specks, not seeds."""
    rows, cols = np.nonzero(seed_mask)
    if len(rows) == 0:
        return np.zeros((0, 2)), []
    r0, c0 = rows.min(), cols.min()
    crop = np.zeros((rows.max() - r0 + 1, cols.max() - c0 + 1), np.uint8)
    crop[rows - r0, cols - c0] = 1
    n, lab = cv2.connectedComponents(crop, connectivity=8)
    ids = lab[rows - r0, cols - c0]
    blobs = [np.stack([rows[ids == i], cols[ids == i]], axis=1) for i in range(1, n)]
    blobs = [b for b in blobs if len(b) >= min_area_px]
    return np.array([b.mean(axis=0) for b in blobs], float).reshape(-1, 2), blobs


def _components(g: SkeletonGraph) -> np.ndarray:
    """Connected-component label of each node."""
    n = len(g.nodes)
    parent = np.arange(n)

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for e in g.edges.values():
        ra, rb = find(e.u), find(e.v)
        if ra != rb:
            parent[ra] = rb
    return np.array([find(i) for i in range(n)])


def seeds_from_tops(g: SkeletonGraph, *, min_length_px: float, merge_px: float, fans: np.ndarray | None = None) -> np.ndarray:
    """One seed per skeleton component longer than ``min_length_px``: its top node or, when one of
    ``fans`` (node ids, see :func:`apexes`) lies less than ``2 * merge_px`` below that top, the
    highest such fan (the top is then a root grown upwards from it); components whose tops are
    closer than ``merge_px`` (roots of one plant that do not touch) get one seed, the topmost's."""
    comp = _components(g)
    length: dict[int, float] = {}
    for e in g.edges.values():
        length[comp[e.u]] = length.get(comp[e.u], 0.0) + e.length
    fans = np.zeros(0, int) if fans is None else np.asarray(fans, int)
    tops = []
    for c, total in length.items():
        if total < min_length_px:
            continue
        members = np.flatnonzero(comp == c)
        top = g.nodes[members[np.argmin(g.nodes[members, 0])]]
        own = fans[(comp[fans] == c) & (g.nodes[fans, 0] < top[0] + 2 * merge_px)]
        tops.append((top, g.nodes[own[0]] if len(own) else top))  # fans come highest first
    tops = sorted(tops, key=lambda p: p[0][0])
    kept: list[np.ndarray] = []
    seeds: list[np.ndarray] = []
    for top, seed in tops:
        if not any(np.hypot(*(top - t)) <= merge_px for t in kept):
            kept.append(top)
            seeds.append(seed)
    return np.array(seeds, float).reshape(-1, 2)


def _follow(g: SkeletonGraph, inc: dict[int, list[int]], node: int, k: int, reach: float) -> np.ndarray:
    """The skeleton point ``reach`` px from ``node`` along edge ``k``, going on at each junction by the
    straightest edge (the root's own continuation); a tip ends the walk."""
    while True:
        e = g.edges[k]
        p = e.oriented(node).astype(float)
        arc = _arc(p)
        if arc[-1] >= reach:
            return p[int(np.searchsorted(arc, reach))]
        reach -= arc[-1]
        far = e.v if e.u == node else e.u
        nxt = [j for j in inc.get(far, []) if j != k]
        if not nxt or far == node:
            return p[-1]
        arrive = -_direction(g, k, far, 8.0)
        k = max(nxt, key=lambda j: float(arrive @ _direction(g, j, far, 8.0)))
        node = far


def apexes(g: SkeletonGraph, *, reach_px: float, drop_px: float, rise_px: float, max_bridge: float = 3.0) -> np.ndarray:
    """Node ids (highest first) of the points where a plant's roots fan out: junctions (and groups of
    junctions joined by edges shorter than ``max_bridge`` root diameters) from which the roots,
    each followed ``reach_px`` along its straightest continuation, go down: at least two end
    ``drop_px`` or more below the point and none ends more than ``rise_px`` above it, or one does
    and at least three go down (a seed with a root growing upwards). A branching point fails (its
    parent comes from above: one up, two down), and so does a root tip (one edge).
    """
    inc = g.incident()
    out = []
    for nodes, inner in _junction_clusters(g, max_bridge):
        ends = [(k, n) for n in nodes for k in inc.get(n, []) if k not in inner]
        if len(ends) < 3:
            continue
        top = min(nodes, key=lambda n: g.nodes[n, 0])
        rows = np.array([_follow(g, inc, n, k, reach_px)[0] for k, n in ends]) - g.nodes[top, 0]
        down, up = int((rows >= drop_px).sum()), int((rows < -rise_px).sum())
        if (up == 0 and down >= 2) or (up == 1 and down >= 3):
            out.append(top)
    out = np.array(out, int)
    return out[np.argsort(g.nodes[out, 0], kind="stable")] if len(out) else out


# ------------------------------------------------------------------------------------ geometry fixes
def _arc(p: np.ndarray) -> np.ndarray:
    return np.r_[0, np.cumsum(np.hypot(*np.diff(p, axis=0).T))]


def _straighten(raw: np.ndarray, at: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Replace the path within ``half`` px of each junction index ``at`` by a straight segment: a
    skeleton bends towards a branch at the junction, which would add length to the parent."""
    out = raw.copy()
    arc = _arc(raw)
    for i, h in zip(at, half):
        i0 = int(np.searchsorted(arc, arc[i] - h))
        i1 = int(np.searchsorted(arc, arc[i] + h, side="right")) - 1
        if i1 - i0 < 2 or i0 == 0 or i1 == len(raw) - 1:
            continue
        f = (arc[i0 : i1 + 1] - arc[i0]) / max(arc[i1] - arc[i0], 1e-9)
        out[i0 : i1 + 1] = raw[i0] + f[:, None] * (raw[i1] - raw[i0])
    return out


def _line(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and unit direction of the best line through points (principal axis)."""
    c = p.mean(axis=0)
    _, _, vt = np.linalg.svd(p - c, full_matrices=False)
    return c, vt[0]


def _distance_to_polyline(points: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Distance (px) from each of ``points`` to the polyline ``line`` (both ``N x 2``)."""
    if len(line) < 2:
        return np.hypot(*(points - line[0]).T)
    a, ab = line[:-1], np.diff(line, axis=0)
    ap = points[:, None, :] - a[None]
    t = np.clip((ap * ab[None]).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12)[None], 0, 1)
    return np.hypot(*(ap - t[..., None] * ab[None]).transpose(2, 0, 1)).min(axis=1)


def _parent_at(parent: RootPath, at: np.ndarray) -> tuple[float, np.ndarray]:
    """Half the parent's diameter at its point nearest ``at``, and the distance (px, along the parent)
    of each of its points from that one."""
    j = int(np.argmin(np.hypot(*(parent.points - at).T)))
    arc = _arc(parent.points)
    return float(parent.diameter[j]) / 2, np.abs(arc - arc[j])


def _correct_base(raw: np.ndarray, parent: RootPath, dist: np.ndarray, min_sin: float = 0.26) -> np.ndarray:
    """Start a lateral where its own axis meets its parent's axis.

    The skeleton junction sits off the parent's centreline, displaced along the lateral (far, for a
    lateral leaving at a shallow angle). The lateral's line, fitted where it is clear of the parent's
    outline, is intersected with the parent's line there; the lateral then starts at that point.
    Left unchanged when the two are within 15 degrees of parallel, the lateral never clears its parent,
    or the point lies farther from the junction than the stretch inside the parent plus the parent's
    diameter over the sine of the angle between the two (the junction's shift grows as the lateral
    leaves at a shallower angle).
    """
    r_par, parc = _parent_at(parent, raw[0])
    near = raw[: min(len(raw), int(12 * r_par) + 40)]
    rc = np.clip(np.rint(near).astype(int), 0, np.array(dist.shape) - 1)
    r_lat = float(np.median(dist[rc[:, 0], rc[:, 1]]))
    clear = np.flatnonzero(_distance_to_polyline(near, parent.points[parc <= 60]) >= r_par + r_lat + 0.5)
    local = parent.points[parc <= max(8.0, 2 * r_par)]
    if len(clear) == 0:
        return raw
    start = int(clear[0])
    arc = _arc(raw)
    fit = raw[(arc >= arc[start]) & (arc <= arc[start] + max(8.0, 2 * r_par))]
    if len(fit) < 3 or len(local) < 3:
        return raw
    (cc, dc), (cp, dp) = _line(fit), _line(local)
    sin = abs(dc[0] * dp[1] - dc[1] * dp[0])
    if sin < min_sin:
        return raw
    t = np.linalg.solve(np.stack([dc, -dp], 1), cp - cc)[0]
    base = cc + t * dc
    if np.hypot(*(base - raw[0])) > arc[start] + 2 * r_par / sin:
        return raw
    return np.vstack([base, raw[start:]])


def _start_at(raw: np.ndarray, point: np.ndarray, parent: RootPath, dist: np.ndarray) -> np.ndarray:
    """Start a lateral at ``point`` (on its parent): a straight line from there to the first point of
    its path clear of the parent's outline, then the path."""
    r_par, parc = _parent_at(parent, raw[0])
    rc = np.clip(np.rint(raw).astype(int), 0, np.array(dist.shape) - 1)
    clear = _distance_to_polyline(raw, parent.points[parc <= 60]) >= r_par + dist[rc[:, 0], rc[:, 1]] + 0.5
    clear[0] = False
    start = int(np.argmax(clear)) if clear.any() else 1
    return np.vstack([point, raw[start:]])


def _extend(raw: np.ndarray, mask: np.ndarray, dist: np.ndarray, at_start: bool = False) -> np.ndarray:
    """Redraw a skeleton end up to the centre of the root's rounded end.

    Thinning stops short of the tip and bends in the last root radius, so that stretch is replaced: from
    the point one radius back, march along the root's direction (fitted over the next 8 px back) to
    the mask edge, then come back by the radius.
    """
    p = raw[::-1] if at_start else raw
    arc = _arc(p)
    back = arc[-1] - arc
    body = p[(back >= 1) & (back <= 6)]
    if len(body) < 3:
        return raw
    rc = np.clip(np.rint(body).astype(int), 0, np.array(mask.shape) - 1)
    r = float(np.median(dist[rc[:, 0], rc[:, 1]]))
    keep = back >= r
    fit = p[keep & (back <= r + 8)]
    if len(fit) < 3 or keep.sum() < 2:
        return raw
    q = p[keep][-1]
    _, d = _line(fit)
    d = d if d @ (q - fit[0]) >= 0 else -d
    steps = np.arange(0.5, 3 * r + 8, 0.5)
    ray = np.rint(q + steps[:, None] * d).astype(int)
    inside = (ray >= 0).all(1) & (ray < np.array(mask.shape)).all(1)
    inside[inside] = mask[ray[inside, 0], ray[inside, 1]]
    run = int(np.argmin(inside)) if not inside.all() else len(inside)
    ext = (steps[run - 1] if run else 0.0) + 0.5 - r
    out = np.vstack([p[keep], q + max(ext, 0.0) * d]) if ext > 0.5 else p[keep]
    return out[::-1] if at_start else out


# ------------------------------------------------------------------------------------ plants
def _assign(g: SkeletonGraph, seeds: np.ndarray, zones: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, int]]:
    """Shortest-path forest (lengths in px) from one virtual node per seed, joined to its ``zones`` nodes.

    Returns the distance to the nearest seed, the predecessor (``n + i`` for seed ``i``), the seed index
    (-1 unreached) of every node, and the shortest edge id between each node pair (key ``u * n + v``, u < v).
    """
    n, s = len(g.nodes), len(seeds)
    rows, cols, w = [], [], []
    best: dict[int, int] = {}
    for k, e in g.edges.items():
        if e.u == e.v:
            continue
        a, b = min(e.u, e.v), max(e.u, e.v)
        key = a * n + b
        if key not in best or e.length < g.edges[best[key]].length:
            best[key] = k
    for key, k in best.items():
        e = g.edges[k]
        rows += [e.u, e.v]
        cols += [e.v, e.u]
        w += [max(e.length, 1e-6)] * 2
    for i, (seed, zone) in enumerate(zip(seeds, zones)):
        for node in zone:
            rows += [n + i]
            cols += [int(node)]
            w += [max(float(np.hypot(*(g.nodes[node] - seed))), 1e-6)]
    mat = coo_matrix((w, (rows, cols)), shape=(n + s, n + s)).tocsr()
    if s == 0:
        return np.full(n, np.inf), np.full(n, -9999), np.full(n, -1), best
    dist, pred, src = dijkstra(mat, directed=True, indices=np.arange(n, n + s), min_only=True, return_predecessors=True)
    return dist[:n], pred[:n], np.where(np.isfinite(dist[:n]), src[:n] - n, -1), best


def _seed_zones(g: SkeletonGraph, blobs: list[np.ndarray], *, reach: float, max_reach: float) -> tuple[list[np.ndarray], list[float]]:
    """The nodes each seed blob's roots may start from, and how far (px) from its outline they lie.

    A root starts within ``reach`` px of its seed's outline. A seed with no root within ``reach``
    (the segmentation left a gap between seed and root, or gave the hypocotyl to the shoot class)
    reaches its nearest root end up to ``max_reach`` px away, plus ``reach`` beyond it (its other
    seminal roots), taking only nodes nearer to it than to any other seed.
    """
    owner = np.repeat(np.arange(len(blobs)), [len(b) for b in blobs])
    gap, nearest = cKDTree(np.vstack(blobs)).query(g.nodes, distance_upper_bound=max_reach + reach)
    nearest = owner[np.minimum(nearest, len(owner) - 1)]
    deg = g.degree()
    edged, ends = deg > 0, deg == 1
    zones, reaches = [], []
    for i, blob in enumerate(blobs):
        near = cKDTree(blob).query(g.nodes, distance_upper_bound=max_reach + reach)[0]
        r = reach
        if not (edged & (near <= reach)).any():
            own = ends & (nearest == i) & (gap <= max_reach)
            if own.any():
                r = float(near[own].min()) + reach
        zones.append(np.flatnonzero((near <= r) & ((near <= reach) | (nearest == i))))
        reaches.append(r)
    return zones, reaches


def _hanging_roots(g: SkeletonGraph, blobs: list[np.ndarray], zones: list[np.ndarray], gap_px: float) -> list[np.ndarray]:
    """``zones`` plus the top node of each root system that no zone reaches and whose top lies at most
    ``gap_px`` from a seed blob, below the blob's top (given to the nearest such blob): the pale
    hypocotyl or upper root between a seedling and its root system, which the segmentation missed."""
    comp = _components(g)
    reached = set(comp[np.concatenate(zones)].tolist()) if zones else set()
    deg = g.degree()
    owner = np.repeat(np.arange(len(blobs)), [len(b) for b in blobs])
    tree = cKDTree(np.vstack(blobs))
    tops_of = [float(b[:, 0].min()) for b in blobs]
    extra: list[list[int]] = [[] for _ in blobs]
    for c in set(comp[deg > 0].tolist()) - reached:
        members = np.flatnonzero((comp == c) & (deg > 0))
        top = int(members[np.argmin(g.nodes[members, 0])])
        gap, k = tree.query(g.nodes[top], distance_upper_bound=gap_px)
        if np.isfinite(gap) and g.nodes[top, 0] >= tops_of[owner[k]]:
            extra[owner[k]].append(top)
    return [np.union1d(zone, np.array(more, int)) for zone, more in zip(zones, extra)]


def _start_nodes(g: SkeletonGraph, seed: np.ndarray, zone: np.ndarray, deg: np.ndarray) -> np.ndarray:
    """The nodes of ``zone`` (near ``seed``) that roots start from: its root ends, else its node
    nearest the seed (nodes left without edges, pruned spurs, start nothing)."""
    zone = zone[deg[zone] > 0]
    tips = zone[deg[zone] == 1]
    if len(tips):
        return tips  # roots start at the seed: connect it to root ends, not to roots passing by
    return zone[[np.argmin(np.hypot(*(g.nodes[zone] - seed).T))]] if len(zone) else zone


def _unexplained_top(g: SkeletonGraph, pred: np.ndarray, seeds: np.ndarray, *, min_length_px: float,
                     level_px: float, merge_px: float, candidates: np.ndarray | None = None) -> np.ndarray | None:
    """The highest top (row, col) of a root system whose seed is missing from the seed mask, or None.

    Candidates are ``candidates`` (node ids; default: root ends) at the level of the seeds (at most
    ``level_px`` below the lowest seed; lower down, a piece of root cut off by the segmentation is
    not a plant) farther than ``merge_px`` from every seed. One is a top when no seed reaches it
    and its skeleton component is at least ``min_length_px`` long, or when its path to its seed (``pred``, from :func:`_assign`) first runs
    down by more than ``min_length_px``: a root grows down from its seed, so that end is the top of
    another plant whose roots touch this one's.
    """
    n = len(g.nodes)
    comp = _components(g)
    length = np.zeros(n)
    for e in g.edges.values():
        length[comp[e.u]] += e.length
    lowest = seeds[:, 0].max() + level_px
    ends = np.flatnonzero(g.degree() == 1) if candidates is None else np.asarray(candidates, int)
    for t in ends[np.argsort(g.nodes[ends, 0], kind="stable")]:
        top = g.nodes[t]
        if top[0] > lowest:
            return None
        if np.hypot(*(seeds - top).T).min() <= merge_px:
            continue
        if 0 <= pred[t] < n + len(seeds):
            deepest, x = top[0], int(t)
            while 0 <= x < n:
                deepest = max(deepest, g.nodes[x, 0])
                x = int(pred[x])
            if deepest - top[0] > min_length_px:
                return top.astype(float)
        elif length[comp[t]] >= min_length_px:
            return top.astype(float)
    return None


def _hang_points(g: SkeletonGraph, dist_g: np.ndarray, pred: np.ndarray, best: dict[int, int],
                 ring_diameters: float = 15.0) -> tuple[dict[int, int], np.ndarray]:
    """For each edge outside the shortest-path forest (it closes a loop, or joins two plants where a
    root touches another), the end it belongs to: the one it continues most straight from (a root
    touching another ends there; it does not branch from it), then the one nearer its seed. Left out:
    edges shorter than four root radii + 4 px (the far side of a hole in the mask), and rings: an edge
    at least 1.4 times as long as the tree edge between the same two nodes and at most
    ``ring_diameters`` root diameters long (a bubble or a ring of dust touching a root: an arc round
    a chord is at least pi / 2 times the chord). Also returns the ends of the rings (``K x 2`` (row,
    col)), where a root seems to branch but does not."""
    n = len(g.nodes)
    tree = {best[min(int(pred[x]), x) * n + max(int(pred[x]), x)] for x in range(n) if 0 <= pred[x] < n}
    hang, rings = {}, []
    for k, e in g.edges.items():
        r = max(g.radius[e.u], g.radius[e.v])
        if k in tree or e.length < 4 * r + 4:
            continue  # a short edge closing a loop goes round a hole in the mask: not a root
        chord = best.get(min(e.u, e.v) * n + max(e.u, e.v))
        if chord is not None and chord in tree and 1.4 * g.edges[chord].length <= e.length <= ring_diameters * 2 * r:
            rings += [g.nodes[e.u], g.nodes[e.v]]
            continue
        options = []
        for x in (e.u, e.v):
            if not np.isfinite(dist_g[x]):
                continue
            p = int(pred[x])
            turn = 1.0
            if 0 <= p < n:
                reach = 4 * g.radius[x] + 4
                arrive = -_direction(g, best[min(p, x) * n + max(p, x)], x, reach)
                turn = -float(arrive @ _direction(g, k, x, reach))  # -1 straight on, +1 turning back
            options.append((round(turn, 1), dist_g[x], x))
        if options:
            hang[k] = min(options)[2]
    return hang, np.array(rings).reshape(-1, 2)


def find_architecture(
    mask: np.ndarray,
    *,
    seed_mask: np.ndarray | None = None,
    seed_points: np.ndarray | None = None,
    seed_radius_px: float | None = None,
    seed_gap_px: float | None = None,
    min_area_px: int = 30,
    max_hole_px: int = 20,
    bridge_px: int = 0,
    spur_factor: float = 1.0,
    min_plant_length_px: float = 50.0,
    smooth_sigma: float = 2.0,
    bundle_angle_deg: float = 50.0,
    overlap_ratio: float | None = 1.4,
    support: np.ndarray | None = None,
    support_px: float = 5.0,
    unsupported_diameters: float = 3.0,
    emerging: np.ndarray | None = None,
    primary_straight: float = 1.0,
    name: str = "<mask>",
) -> ImageArchitecture:
    """Plants, roots, tips and branching points of one root mask.

    ``mask`` is a boolean ``H x W`` root mask. Seeds (one plant each) come from ``seed_mask`` (the
    centroid of each seed blob; roots that start within the blob's reach belong to it), from
    ``seed_points`` (``K x 2`` (row, col)), or else from the top of each skeleton component longer than
    ``min_plant_length_px`` (or the apex near it where roots fan out downwards, :func:`apexes`),
    plus every other apex whose path to that seed first runs down (a touching plant); with a seed mask, a root system that touches no seed blob (its seed was
    not segmented) starts at its top too. A seed with less than ``min_plant_length_px`` of root is
    not a plant (a speck of the seed class, or a seed not yet germinated): it is left out with a
    warning. ``seed_radius_px`` is how far from a seed point a root may start (and
    how close two component tops must be to be one plant); defaults follow the root width. A seed blob
    with no root that near reaches its nearest root end up to ``seed_gap_px`` away (default: the seed
    radius), for a pale hypocotyl or upper root that the segmentation missed. Branches
    that leave within the seed radius are first-order roots (seminal roots of cereals). An unbranched
    lateral shorter than its parent's diameter is left out (a bump on the outline, or a lateral that
    has not yet emerged from its parent in the mask), unless it leaves within ``support_px`` of a
    ``support`` point: ``K x 2`` (row, col) branching points found another way, e.g. by a branch-point
    network that sees the scan (the pipeline passes those of ``models.branches``); a lateral that
    leaves that near one starts there, and with ``support`` an unbranched lateral shorter than
    ``unsupported_diameters`` x its parent's diameter with no point near its base is left out too (a
    bump the network does not see as a branching point). ``emerging``: ``K x 2`` (row, col) points where
    such a detector is sure a lateral leaves; one on a root but farther than ``support_px`` from every
    lateral base becomes a lateral with no length (it has emerged, but the mask does not show it).
    Roots from a seed mask or seed points start at the seed. A first-order root follows, at each
    junction, the branch towards the deepest tip, unless another branch goes straight on and the deeper
    one turns away and reaches at most ``primary_straight`` times as far again below the junction
    (:func:`_straight_on`; 0: always the deepest tip): a lateral grown deeper than a short primary does
    not become the primary. Two roots that run together for a stretch and part again (at most
    ``bundle_angle_deg`` apart where they meet and part) each get that stretch
    (:func:`resolve_bundles`, repeated while it finds bands: a third root joining and leaving
    inside a band leaves the outer merge facing the outer split once it is resolved); where a root is ``overlap_ratio`` times as wide as it is elsewhere, a
    second root runs along it and the plant's total length counts that stretch again
    (:func:`overlap_lengths`; None: never). Lengths in px.
    """
    mask = np.asarray(mask, bool)
    arch = ImageArchitecture(shape=mask.shape)
    clean = clean_mask(mask, min_area_px=min_area_px, max_hole_px=max_hole_px, bridge_px=bridge_px)
    if not clean.any():
        arch.warnings.append(f"{name}: no root pixels left after cleaning")
        return arch
    g, dist = skeleton_graph(clean, spur_factor=spur_factor)
    root_r = float(np.median(g.radius)) if len(g.radius) else 2.0
    # seeds and the nodes each may start from
    zones: list[np.ndarray] = []
    seeds, blobs = seeds_from_mask(seed_mask) if seed_mask is not None else (np.zeros((0, 2)), [])
    if seed_mask is not None and not blobs:
        arch.warnings.append(f"{name}: no seed in the seed class; plants start at the top of each root system")
    radius = seed_radius_px if seed_radius_px is not None else 6 * root_r + 10
    radii: list[float] = []
    fans = np.zeros(0, int)
    if blobs:
        zones, reaches = _seed_zones(g, blobs, reach=2 * root_r + 3, max_reach=radius)
        if seed_gap_px:
            zones = _hanging_roots(g, blobs, zones, seed_gap_px)
        radii = [float(np.sqrt(len(b) / np.pi)) + r for b, r in zip(blobs, reaches)]
        tops = np.zeros((0, 2))
    elif seed_points is not None:
        tops = np.asarray(seed_points, float).reshape(-1, 2)
    else:
        fans = apexes(g, reach_px=2 * radius, drop_px=radius, rise_px=radius / 2)
        tops = seeds_from_tops(g, min_length_px=min_plant_length_px, merge_px=radius, fans=fans)
    for s in tops:
        zones.append(np.flatnonzero(np.hypot(*(g.nodes - s).T) <= radius))
    seeds = np.vstack([seeds, tops])
    n_centred = len(seeds) if seed_points is not None and not blobs else len(blobs)  # roots start at these
    radii += [radius] * len(tops)
    if seed_radius_px is not None:
        radii = [seed_radius_px] * len(seeds)
    # roots fanning out of a seed are not crossings
    arch.crossings = resolve_crossings(g, seeds=seeds, seed_radii=np.asarray(radii, float),
                                       start_nodes=np.concatenate(zones) if zones else None)
    merge_degree_two(g)
    if bundle_angle_deg > 0:
        found = [resolve_bundles(g, max_angle_deg=bundle_angle_deg, seeds=seeds, seed_radii=np.asarray(radii, float))]
        while len(found[-1]) and len(found) < 8:  # a resolved band can leave a merge facing a split around it
            found.append(resolve_bundles(g, max_angle_deg=bundle_angle_deg, seeds=seeds, seed_radii=np.asarray(radii, float)))
        arch.bundles = np.vstack(found)
    if len(seeds) == 0:
        arch.warnings.append(f"{name}: no seed or root system found")
        arch.unassigned_length_px = g.total_length()
        return arch
    deg = g.degree()
    zones = [_start_nodes(g, s, zone, deg) for s, zone in zip(seeds, zones)]
    dist_g, pred, src, best = _assign(g, seeds, zones)
    hidden = 0
    # root systems whose seed the seed class missed start at their top, highest first; without seeds,
    # a fan apex whose path to its plant's seed first runs down is the seed of a touching plant
    while blobs or (seed_points is None and len(fans)):
        top = _unexplained_top(g, pred, seeds, min_length_px=min_plant_length_px, level_px=2 * radius if blobs else np.inf,
                               merge_px=radius, candidates=None if blobs else fans)
        if top is None:
            break
        hidden += bool(blobs)
        zones.append(_start_nodes(g, top, np.flatnonzero(np.hypot(*(g.nodes - top).T) <= radius), deg))
        seeds = np.vstack([seeds, top])
        radii.append(radius)
        dist_g, pred, src, best = _assign(g, seeds, zones)
    if hidden:
        arch.warnings.append(f"{name}: {hidden} root system(s) without a seed in the seed class start at their top")
    n = len(g.nodes)
    hang, rings = _hang_points(g, dist_g, pred, best)
    support_near = _nearest_support(support, support_px)
    short = 0
    for i, seed in enumerate(seeds):
        plant = PlantArchitecture(id=len(arch.plants) + 1, seed=np.asarray(seed, float), seeded=i < n_centred)
        _plant_roots(g, plant, i, dist_g, pred, src, best, hang, dist, clean, radii[i], smooth_sigma, n, i < n_centred,
                     support_near, unsupported_diameters if support is not None and support_px > 0 else 1.0,
                     primary_straight)
        if plant.total_length_px < min_plant_length_px:
            short += 1  # a speck of the seed class, or a seed whose root is not (yet) seen: not a plant
            continue
        arch.plants.append(plant)
    if short:
        arch.warnings.append(f"{name}: {short} seed(s) with less than {min_plant_length_px:.0f} px of root left out")
    if overlap_ratio is not None:
        roots = [r for p in arch.plants for r in p.roots]
        for r, extra in zip(roots, overlap_lengths(roots, ratio=overlap_ratio)):
            r.overlap_px = extra
    if emerging is not None:
        _add_emerging(arch.plants, emerging, support_px, rings)
    unreached = [e for e in g.edges.values() if src[e.u] < 0 and src[e.v] < 0]
    arch.unassigned_length_px = float(sum(path_length(e.path) for e in unreached))
    return arch


def _plant_roots(g, plant, i, dist_g, pred, src, best, hang, dist, mask, seed_r, sigma, n, from_centre,
                 support_near, stub, straight) -> None:
    """Fill ``plant.roots`` from the shortest-path tree of seed ``i`` (see :func:`find_architecture`)."""
    virtual = n + i
    children: dict[int, list[tuple[int, np.ndarray]]] = {}  # node -> [(child node, path node->child)]
    extra = n + len(dist_g)  # ids for the far ends of edges outside the tree
    mine = set(np.flatnonzero(src == i).tolist())
    for node in sorted(mine):
        p = int(pred[node])
        if p == virtual:
            children.setdefault(virtual, []).append((node, g.nodes[node][None]))
        elif 0 <= p < n:
            k = best[min(p, node) * n + max(p, node)]
            children.setdefault(p, []).append((node, g.edges[k].oriented(p).astype(float)))
    for k, e in g.edges.items():
        a = hang.get(k)
        if a is None or a not in mine:
            continue
        children.setdefault(a, []).append((extra, e.oriented(a).astype(float)))
        extra += 1
    into = {c: path for kids in children.values() for c, path in kids if len(path) > 1}
    if virtual not in children:
        return
    score: dict[tuple[int, str], tuple[float, int]] = {}

    def choose(node: int, how: str) -> int:
        """Index of the child to follow at ``node``: towards the deepest tip (``deep``) or along the
        longest path (``long``)."""
        if (node, how) not in score:
            todo, seen = [node], []
            while todo:
                x = todo.pop()
                seen.append(x)
                todo.extend(c for c, _ in children.get(x, []))
            for x in reversed(seen):
                kids = children.get(x, [])
                if not kids:
                    score[(x, how)] = (-np.inf if how == "deep" else 0.0, -1)
                    continue
                vals = []
                for c, path in kids:
                    sub = score[(c, how)][0]
                    vals.append(max(sub, path[-1, 0]) if how == "deep" else sub + chain_length(path))
                pick = int(np.argmax(vals))
                if how == "deep" and straight > 0 and len(kids) > 1 and x in into:
                    pick = _straight_on(into[x], [path for _, path in kids], vals, pick, straight, 4 * g.radius[x] + 4)
                score[(x, how)] = (vals[pick], pick)
        return score[(node, how)][1]

    def walk(start: int, j: int, order: int, parent: int | None, insertion: float, from_seed: bool = False) -> None:
        how = "deep" if order == 1 else "long"
        seq, chosen, pieces = [start], [j], []
        x = start
        while True:
            c, path = children[x][chosen[-1]]
            pieces.append(path if not pieces else path[1:])
            x = c
            seq.append(x)
            if not children.get(x):
                break
            chosen.append(choose(x, how))
        raw = np.vstack(pieces)
        at = np.cumsum([len(p) for p in pieces]) - 1  # raw index of seq[1:]
        raw = _straighten(raw, at[:-1], 2 * g.radius[seq[1:-1]] + 1)
        raw = _extend(raw, mask, dist)
        found = None
        if parent is not None:
            raw = _correct_base(raw, plant.roots[parent], dist)
            found = support_near(raw[0])
            if found is not None:  # the branching point as the network placed it
                raw = _start_at(raw, found, plant.roots[parent], dist)
        elif from_seed and dist_g[start] <= seed_r:
            raw = np.vstack([plant.seed, raw])  # a root from the seed starts at the seed's centre
        else:
            raw = _extend(raw, mask, dist, at_start=True)
        shift = len(raw) - (at[-1] + 1)  # points added or removed at the base
        pts = resample(raw, sigma=sigma)
        rc = np.clip(np.rint(pts).astype(int), 0, np.array(dist.shape) - 1)
        if parent is not None and len(seq) == 2 and found is None and chain_length(pts) < stub * 2 * dist[rc[0, 0], rc[0, 1]]:
            return  # an unbranched stub that does not reach out of its parent (or that the network does not see): a bump
        rid = len(plant.roots)
        plant.roots.append(RootPath(pts, 2 * dist[rc[:, 0], rc[:, 1]], order, chain_length(pts), parent, insertion))
        arc = _arc(smooth_path(raw, sigma))
        at = np.clip(at + shift, 0, len(arc) - 1)
        for t in range(1, len(seq) - 1):
            node = seq[t]
            for j2 in range(len(children[node])):
                if j2 == chosen[t]:
                    continue
                if order == 1 and dist_g[node] <= seed_r:
                    walk(node, j2, 1, None, 0.0, True)  # another root from the seed (seminal root)
                else:
                    walk(node, j2, order + 1, rid, float(arc[at[t - 1]]))

    for collar, _ in children[virtual]:
        for j in range(len(children.get(collar, []))):
            walk(collar, j, 1, None, 0.0, from_centre)
    if plant.roots:
        firsts = [k for k, r in enumerate(plant.roots) if r.order == 1]
        plant.primary = max(firsts, key=lambda k: plant.roots[k].tip[0])


def _straight_on(arrive: np.ndarray, paths: list[np.ndarray], depths: list[float], deepest: int, ratio: float,
                 reach: float, straight_deg: float = 30.0, turn_deg: float = 45.0) -> int:
    """The child a first-order root follows at a junction: the one towards the deepest tip (``deepest``
    of ``depths``, rows), unless another goes straight on (turns less than ``straight_deg`` from the
    path ``arrive`` into the junction) where that one turns more than ``turn_deg``, and reaches no more
    than ``ratio`` times as far below the junction beyond the straight one's depth: a lateral that grows
    deeper than a short primary does not take the primary's name. ``paths`` start at the junction."""
    row = arrive[-1, 0]
    back = arrive[max(0, len(arrive) - 1 - int(reach))] - arrive[-1]
    turns = []
    for path in paths:
        out = path[min(int(reach), len(path) - 1)] - path[0]
        cos = -float(back @ out) / max(float(np.hypot(*back) * np.hypot(*out)), 1e-9)
        turns.append(float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))))
    j = int(np.argmin(turns))
    if j != deepest and turns[j] < straight_deg and turns[deepest] > turn_deg \
            and depths[deepest] - depths[j] < ratio * (depths[j] - row):
        return j
    return deepest


def _add_emerging(plants: list[PlantArchitecture], points: np.ndarray, base_px: float,
                  rings: np.ndarray = np.zeros((0, 2))) -> None:
    """Add a one-point lateral at each (row, col) point (best first) that lies on a measured root (within
    its radius + 2 px of the centre line) and farther than ``base_px`` from every lateral base, from
    the ends of the ``rings`` (:func:`_hang_points`) and from the points kept before it, as a child of
    the nearest root."""
    points = np.asarray(points, float).reshape(-1, 2)
    roots = [(plant, k) for plant in plants for k in range(len(plant.roots))]
    if not len(points) or not roots:
        return
    bases = [plant.roots[k].points[0] for plant, k in roots if plant.roots[k].parent is not None] + list(rings)
    if bases:
        points = points[cKDTree(np.array(bases)).query(points)[0] > base_px]
    kept: list[np.ndarray] = []
    for q in points:  # one lateral per cluster of points, the first (best) of them
        if all(np.hypot(*(q - k)) > base_px for k in kept):
            kept.append(q)
    points = np.array(kept).reshape(-1, 2)
    line = np.vstack([plant.roots[k].points for plant, k in roots])
    owner = np.concatenate([np.full(len(plant.roots[k].points), i) for i, (plant, k) in enumerate(roots)])
    start = np.r_[0, np.cumsum([len(plant.roots[k].points) for plant, k in roots])]
    for q, d, j in zip(points, *cKDTree(line).query(points)):
        plant, k = roots[owner[j]]
        parent, at = plant.roots[k], j - start[owner[j]]
        if d <= parent.diameter[at] / 2 + 2:
            plant.roots.append(RootPath(q[None], parent.diameter[at:at + 1].copy(), parent.order + 1, 0.0, k,
                                        float(_arc(parent.points)[at])))


def _nearest_support(support: np.ndarray | None, radius: float) -> Callable[[np.ndarray], np.ndarray | None]:
    """The ``support`` point (row, col) nearest a (row, col) point and within ``radius`` px of it, or None."""
    points = np.zeros((0, 2)) if support is None else np.asarray(support, float).reshape(-1, 2)
    if not len(points) or radius <= 0:
        return lambda at: None
    tree = cKDTree(points)

    def nearest(at: np.ndarray) -> np.ndarray | None:
        d, k = tree.query(at, distance_upper_bound=radius)
        return points[k] if np.isfinite(d) else None

    return nearest


def overlap_lengths(roots: list[RootPath], *, ratio: float = 1.4, min_diameter_px: float = 4.0) -> np.ndarray:
    """Length (px) of each root that carries a second root alongside, judged from the mask width.

    Two roots side by side a few px apart make one band in the mask, wider than either: where a
    root's diameter (median over 5 points) is at least ``ratio`` times its median diameter and 2 px
    more, between narrower stretches of the same root (a tapering root is wide at one end only), the
    stretch is counted once more. Roots under ``min_diameter_px`` across are left alone: there the
    distance transform moves in steps as large as the root, and width cannot tell one root from two. Its first and last two diameters (junction and tip) and points
    within a diameter + 2 px of another measured root (a junction or crossing, which widens the
    mask, or a band already given to both roots by :func:`resolve_bundles`) are left out. Roots fully on top of each other do not widen
    the mask and stay invisible.
    """
    out = np.zeros(len(roots))
    if not roots:
        return out
    owner = np.concatenate([np.full(len(r.points), i) for i, r in enumerate(roots)])
    tree = cKDTree(np.vstack([r.points for r in roots]))
    for i, r in enumerate(roots):
        ref = float(np.median(r.diameter)) if len(r.points) else 0.0
        if len(r.points) < 5 or ref < min_diameter_px:
            continue
        arc = _arc(r.points)
        ok = (arc > 2 * ref) & (arc < arc[-1] - 2 * ref)
        if ok.any():  # near another root (own points are ~3 px apart: 24 neighbours suffice)
            _, idx = tree.query(r.points[ok], k=24, distance_upper_bound=ref + 2)
            found = idx < len(owner)
            ok[ok] = ~(found & (owner[np.minimum(idx, len(owner) - 1)] != i)).any(axis=1)
        local = median_filter(r.diameter, 5, mode="nearest")
        wide = ok & (local >= ratio * ref) & (local >= ref + 2)
        narrow = ok & ~wide  # a band lies between narrower stretches: a tapering root is wide at one end only
        wide &= np.maximum.accumulate(narrow) & np.maximum.accumulate(narrow[::-1])[::-1]
        out[i] = float(np.diff(arc)[wide[1:] & wide[:-1]].sum())
    return out


# ------------------------------------------------------------------------------------ RSML
def to_scene(arch: ImageArchitecture, *, name: str = "", px_per_mm: float | None = None) -> Scene:
    """RSML scene of an :class:`ImageArchitecture`: points in (x, y) px, laterals nested in their
    parents, per-point ``diameter`` (px). ``px_per_mm`` is stored as metadata (unit stays pixel)."""
    meta = Metadata(unit="pixel", resolution=1.0, file_key=name)
    if px_per_mm:
        meta.extra["px_per_mm"] = f"{px_per_mm:.6g}"
    scene = Scene(metadata=meta)
    for plant in arch.plants:
        out = Plant(id=str(plant.id), label=f"plant{plant.id}")
        made: list[Root] = []
        for k, r in enumerate(plant.roots):
            root = Root(points=r.points[:, ::-1].copy(), id=f"{plant.id}.{k + 1}", label="primary" if k == plant.primary else f"order{r.order}",
                        order=r.order, functions={"diameter": r.diameter.copy()})
            made.append(root)
            (out.roots if r.parent is None else made[r.parent].children).append(root)
        scene.plants.append(out)
    return scene
