"""Root mask -> clean mask -> one-pixel skeleton -> graph of nodes and edges with true lengths.

Coordinates are ``(row, col)`` pixels. A node is a tip (one neighbour) or a junction (a cluster of
skeleton pixels with three or more neighbours); an edge is the pixel path between two nodes. Lengths
are measured on a smoothed, resampled path so that a digital staircase is not counted as steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from numba import njit
from scipy.ndimage import gaussian_filter1d
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from skimage.morphology import skeletonize

#: Neighbour offsets, 4-neighbours first so that a traced path takes straight steps before diagonals.
_DR = np.array([-1, 1, 0, 0, -1, -1, 1, 1], np.int64)
_DC = np.array([0, 0, -1, 1, -1, 1, -1, 1], np.int64)


# ------------------------------------------------------------------------------------ cleaning
def clean_mask(mask: np.ndarray, *, min_area_px: int = 30, max_hole_px: int = 20, bridge_px: int = 0) -> np.ndarray:
    """Boolean root mask without specks (< ``min_area_px`` px) and small holes (< ``max_hole_px`` px).

    ``bridge_px`` > 0 joins a tip to another piece of root up to that many pixels ahead of it, along
    the tip's direction (gaps left by segmentation). Returns a new bool array.
    """
    m = np.ascontiguousarray(np.asarray(mask), dtype=np.uint8).copy()
    m[m > 0] = 1
    if m.any() and (min_area_px > 0 or max_hole_px > 0):
        # contours, not connected-component labelling: their cost follows the outlines, not the image size
        contours, hierarchy = cv2.findContours(m, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
        outer = [c for c, h in zip(contours, hierarchy[0]) if h[3] < 0]
        holes = [c for c, h in zip(contours, hierarchy[0]) if h[3] >= 0]
        # pixel area of a blob ~ polygon area through its boundary pixels + half its outline + 1
        small = [c for c in outer if cv2.contourArea(c) + cv2.arcLength(c, True) / 2 + 1 < min_area_px]
        fill = [c for c in holes if cv2.contourArea(c) - cv2.arcLength(c, True) / 2 + 1 < max_hole_px]
        if fill:
            cv2.drawContours(m, fill, -1, 1, -1)
        if small:
            cv2.drawContours(m, small, -1, 0, -1)
    if bridge_px > 0 and m.any():
        m = _bridge_gaps(m, bridge_px)
    return m.astype(bool)


def _bridge_gaps(m: np.ndarray, gap_px: int, back_px: int = 10, max_angle_deg: float = 30.0) -> np.ndarray:
    """Draw a root-wide segment from each skeleton tip to the nearest pixel of another piece of root
    at most ``gap_px`` beyond the tip's edge and within ``max_angle_deg`` of the tip's direction."""
    skel = skeletonize(m.astype(bool))
    _, comp = cv2.connectedComponents(m, connectivity=8)
    tips = np.argwhere(skel & (_neighbour_count(skel) == 1))
    width = cv2.distanceTransform(m, cv2.DIST_L2, 5)
    pts = np.argwhere(skel)
    out = m.copy()
    cos_max = np.cos(np.radians(max_angle_deg))
    for r, c in tips:
        near = pts[(np.abs(pts[:, 0] - r) <= back_px) & (np.abs(pts[:, 1] - c) <= back_px)]
        near = near[comp[near[:, 0], near[:, 1]] == comp[r, c]]
        direction = np.array([r, c], float) - near.mean(axis=0)
        norm = np.hypot(*direction)
        if norm < 1:
            continue
        direction /= norm
        reach = gap_px + int(np.ceil(width[r, c])) + 1
        r0, c0 = max(r - reach, 0), max(c - reach, 0)
        window = comp[r0 : r + reach + 1, c0 : c + reach + 1]
        cand = np.argwhere((window > 0) & (window != comp[r, c])) + [r0, c0]
        if len(cand) == 0:
            continue
        vec = cand - np.array([r, c])
        dist = np.hypot(vec[:, 0], vec[:, 1])
        ok = (dist <= reach) & ((vec @ direction) >= cos_max * dist)
        if not ok.any():
            continue
        k = np.flatnonzero(ok)[np.argmin(dist[ok])]
        end = cand[k] + direction * width[r, c]  # reach into the other piece by a root radius
        thickness = max(1, int(round(2 * width[r, c])))
        cv2.line(out, (int(c), int(r)), (int(round(end[1])), int(round(end[0]))), 1, thickness)
    return out


# ------------------------------------------------------------------------------------ lengths
def smooth_path(path: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """Gaussian-smoothed copy of an ``N x 2`` pixel path (``sigma`` in samples); ends stay in place."""
    p = np.asarray(path, dtype=np.float64)
    if len(p) < 3 or sigma <= 0:
        return p.copy()
    s = gaussian_filter1d(p, sigma, axis=0, mode="nearest")
    s[0], s[-1] = p[0], p[-1]
    return s


def resample(path: np.ndarray, *, sigma: float = 2.0, step: int = 3) -> np.ndarray:
    """Smoothed (``sigma`` px) pixel path kept every ``step`` points and at its last point: the
    polyline whose length is the root length (see :func:`path_length`)."""
    p = smooth_path(path, sigma)
    if len(p) < 2:
        return p
    return p[np.unique(np.r_[np.arange(0, len(p), max(1, step)), len(p) - 1])]


def path_length(path: np.ndarray, *, sigma: float = 2.0, step: int = 3) -> float:
    """Length in px of a pixel path, smoothed (``sigma`` px) and resampled every ``step`` points.

    A chain of 8-connected pixels counts each diagonal step as sqrt(2); smoothing and resampling remove
    the extra length of the staircase a straight or gently curved line makes on the grid.
    """
    return chain_length(resample(path, sigma=sigma, step=step))


def chain_length(path: np.ndarray) -> float:
    """Length in px of an 8-connected pixel path with diagonal steps as sqrt(2), no smoothing."""
    d = np.diff(np.asarray(path, dtype=np.float64).reshape(-1, 2), axis=0)
    return float(np.hypot(d[:, 0], d[:, 1]).sum())


# ------------------------------------------------------------------------------------ graph
@dataclass
class Edge:
    """Skeleton path from node ``u`` to node ``v``; ``path`` is ``K x 2`` (row, col) int pixels."""

    u: int
    v: int
    path: np.ndarray

    @property
    def length(self) -> float:
        """Chain length in px (diagonal steps sqrt(2))."""
        return chain_length(self.path)

    def oriented(self, start: int) -> np.ndarray:
        """The path read from node ``start`` to the other end."""
        return self.path if start == self.u else self.path[::-1]


@dataclass
class SkeletonGraph:
    """Nodes (``N x 2`` (row, col) float positions) and edges of a skeleton; ``radius`` is the root
    half-width in px (distance transform) at each node. Node ids index ``nodes``; removed edges are
    deleted from ``edges`` (a dict keyed by edge id)."""

    nodes: np.ndarray
    radius: np.ndarray
    edges: dict[int, Edge] = field(default_factory=dict)
    shape: tuple[int, int] = (0, 0)

    def incident(self) -> dict[int, list[int]]:
        """Edge ids at each node (a self-loop appears twice)."""
        inc: dict[int, list[int]] = {}
        for k, e in self.edges.items():
            inc.setdefault(e.u, []).append(k)
            inc.setdefault(e.v, []).append(k)
        return inc

    def degree(self) -> np.ndarray:
        """Number of edge ends at each node."""
        deg = np.zeros(len(self.nodes), np.int64)
        for e in self.edges.values():
            deg[e.u] += 1
            deg[e.v] += 1
        return deg

    def add_node(self, rc: np.ndarray, radius: float) -> int:
        """Append a node at (row, col) and return its id."""
        self.nodes = np.vstack([self.nodes, np.asarray(rc, float)[None]])
        self.radius = np.r_[self.radius, radius]
        return len(self.nodes) - 1

    def add_edge(self, u: int, v: int, path: np.ndarray) -> int:
        """Insert an edge and return its id."""
        k = max(self.edges, default=-1) + 1
        self.edges[k] = Edge(u, v, np.asarray(path))
        return k

    def total_length(self) -> float:
        """Sum of smoothed edge lengths in px."""
        return float(sum(path_length(e.path) for e in self.edges.values()))


def _neighbour_count(skel: np.ndarray) -> np.ndarray:
    k = np.ones((3, 3), np.float32)
    k[1, 1] = 0
    return cv2.filter2D(skel.astype(np.uint8), -1, k, borderType=cv2.BORDER_CONSTANT).astype(np.int32) * skel


@njit(cache=True)
def _trace(skel, node_lab, node_r, node_c, dr, dc):  # pragma: no cover - compiled
    """Walk every edge from every node pixel. Returns (u, v, offsets, rows, cols) of the paths."""
    h, w = skel.shape
    visited = np.zeros((h, w), np.bool_)
    n_pix = 0
    for r in range(h):
        for c in range(w):
            if skel[r, c]:
                n_pix += 1
    cap = n_pix + 16 * len(node_r) + 16
    rows = np.empty(cap, np.int32)
    cols = np.empty(cap, np.int32)
    max_e = 8 * len(node_r) + 1
    eu = np.empty(max_e, np.int32)
    ev = np.empty(max_e, np.int32)
    off = np.zeros(max_e + 1, np.int64)
    ne = 0
    npt = 0
    for k in range(len(node_r)):
        r0 = node_r[k]
        c0 = node_c[k]
        lab0 = node_lab[r0, c0]
        for d in range(8):
            r1 = r0 + dr[d]
            c1 = c0 + dc[d]
            if not skel[r1, c1]:
                continue
            lab1 = node_lab[r1, c1]
            if lab1 > 0:
                if lab1 > lab0:
                    rows[npt] = r0
                    cols[npt] = c0
                    rows[npt + 1] = r1
                    cols[npt + 1] = c1
                    npt += 2
                    eu[ne] = lab0
                    ev[ne] = lab1
                    ne += 1
                    off[ne] = npt
                continue
            if visited[r1, c1]:
                continue
            start = npt
            rows[npt] = r0
            cols[npt] = c0
            rows[npt + 1] = r1
            cols[npt + 1] = c1
            npt += 2
            visited[r1, c1] = True
            pr, pc, cr, cc = r0, c0, r1, c1
            end = -1
            steps = 1
            while True:
                for d2 in range(8):
                    rr = cr + dr[d2]
                    c2 = cc + dc[d2]
                    if (rr == pr and c2 == pc) or not skel[rr, c2]:
                        continue
                    lab = node_lab[rr, c2]
                    if lab > 0 and not (lab == lab0 and steps < 2):
                        end = lab
                        rows[npt] = rr
                        cols[npt] = c2
                        npt += 1
                        break
                if end > 0:
                    break
                moved = False
                for d2 in range(8):
                    rr = cr + dr[d2]
                    c2 = cc + dc[d2]
                    if skel[rr, c2] and not visited[rr, c2] and node_lab[rr, c2] == 0:
                        visited[rr, c2] = True
                        rows[npt] = rr
                        cols[npt] = c2
                        npt += 1
                        pr, pc, cr, cc = cr, cc, rr, c2
                        steps += 1
                        moved = True
                        break
                if not moved:
                    break
            if end < 0:
                npt = start
                continue
            eu[ne] = lab0
            ev[ne] = end
            ne += 1
            off[ne] = npt
    return eu[:ne], ev[:ne], off[: ne + 1], rows[:npt], cols[:npt]


def build_graph(skel: np.ndarray, dist: np.ndarray | None = None) -> SkeletonGraph:
    """Graph of a one-pixel skeleton (bool ``H x W``); ``dist`` is the mask's distance transform (px).

    Junction pixels that touch form one node at their mean position. Closed loops without any node
    (an isolated ring) are left out.
    """
    skel = np.asarray(skel, bool)
    h, w = skel.shape
    pad = np.zeros((h + 2, w + 2), np.bool_)
    pad[1:-1, 1:-1] = skel
    deg = _neighbour_count(pad)
    nr, nc = np.nonzero(pad & (deg != 2))
    # clusters of touching node pixels (few and sparse: label them as points, not as an image)
    touching = cKDTree(np.stack([nr, nc], axis=1)).query_pairs(1.5, output_type="ndarray") if len(nr) else np.zeros((0, 2), int)
    n_lab, cluster = connected_components(coo_matrix((np.ones(len(touching)), touching.T), shape=(len(nr), len(nr))), directed=False)
    n_lab += 1
    lab = np.zeros(pad.shape, np.int32)
    lab[nr, nc] = cluster + 1
    eu, ev, off, rows, cols = _trace(pad, lab, nr.astype(np.int64), nc.astype(np.int64), _DR, _DC)
    # node positions: mean pixel of each cluster (label 0 unused -> row 0 dropped)
    ids = lab[nr, nc]
    cnt = np.bincount(ids, minlength=n_lab).astype(float)
    cnt[cnt == 0] = 1
    pos = np.stack([np.bincount(ids, nr, n_lab) / cnt, np.bincount(ids, nc, n_lab) / cnt], axis=1) - 1
    pos = pos[1:]
    if dist is None:
        radius = np.ones(len(pos))
    else:
        rr = np.clip(np.rint(pos[:, 0]).astype(int), 0, h - 1)
        cc = np.clip(np.rint(pos[:, 1]).astype(int), 0, w - 1)
        radius = np.maximum(dist[rr, cc], 1.0)
    g = SkeletonGraph(nodes=pos, radius=radius.astype(float), shape=(h, w))
    seen_direct: set[tuple[int, int]] = set()
    pts = np.stack([rows, cols], axis=1) - 1
    for k in range(len(eu)):
        u, v = int(eu[k]) - 1, int(ev[k]) - 1
        path = pts[off[k] : off[k + 1]]
        if len(path) == 2:
            key = (min(u, v), max(u, v))
            if key in seen_direct:
                continue
            seen_direct.add(key)
        g.edges[k] = Edge(u, v, path)
    return g


# ------------------------------------------------------------------------------------ editing
def merge_degree_two(g: SkeletonGraph) -> None:
    """Join the two edges at every node that has exactly two (not a self-loop), in place."""
    inc = g.incident()
    for node, ks in inc.items():
        if len(ks) != 2 or ks[0] == ks[1]:
            continue
        a, b = g.edges[ks[0]], g.edges[ks[1]]
        pa = a.path if a.v == node else a.path[::-1]
        pb = b.path if b.u == node else b.path[::-1]
        ua = a.u if a.v == node else a.v
        vb = b.v if b.u == node else b.u
        new = Edge(ua, vb, np.vstack([pa, pb[1:]]))
        del g.edges[ks[0]], g.edges[ks[1]]
        k = max(g.edges, default=-1) + 1
        g.edges[k] = new
        for end in (ua, vb):
            lst = inc[end]
            for old in ks:
                if old in lst:
                    lst[lst.index(old)] = k
        inc[node] = []


def prune_spurs(g: SkeletonGraph, *, factor: float = 1.0, min_px: float = 2.0, rounds: int = 5,
                dist: np.ndarray | None = None, keep_protrusion_px: float = 0.5, max_spur_density: float = 0.015) -> int:
    """Remove terminal edges shorter than ``factor`` x the root radius at their junction + ``min_px``.

    Such spurs come from bumps on the mask outline, not from roots. On a smooth mask (fewer such spurs
    than ``max_spur_density`` per skeleton px) a spur thinner than the parent whose tip reaches
    ``keep_protrusion_px`` or more beyond the parent's diameter from its centre line (the mask's
    distance transform ``dist``, px: distance from the tip to the parent's centre line + half-width at
    the tip - the parent's median diameter there) is a lateral that has emerged and stays (None: no
    spur stays). On a ragged mask bumps of that size are everywhere and the length rule alone holds.
    Repeats (spurs on spurs) up to ``rounds`` times and merges the nodes left with two edges.
    Returns the number of edges removed.
    """

    def short(g: SkeletonGraph, deg: np.ndarray) -> list[tuple[int, int]]:
        """(edge, junction node) of each spur under the length threshold."""
        out = []
        for k, e in g.edges.items():
            if e.u != e.v and min(deg[e.u], deg[e.v]) == 1 and max(deg[e.u], deg[e.v]) >= 3:
                b = e.u if deg[e.u] >= 3 else e.v
                if e.length < factor * g.radius[b] + min_px:
                    out.append((k, b))
        return out

    skeleton_px = sum(len(e.path) - 1 for e in g.edges.values())
    smooth = dist is not None and len(short(g, g.degree())) < max_spur_density * max(skeleton_px, 1)
    removed = 0
    for _ in range(rounds):
        deg = g.degree()
        found = short(g, deg)
        if smooth and found:
            inc = g.incident()
            found = [(k, b) for k, b in found if _protrusion(g, k, b, inc, dist) < keep_protrusion_px]
        if not found:
            break
        for k, _ in found:
            del g.edges[k]
        removed += len(found)
        merge_degree_two(g)
    merge_degree_two(g)
    return removed


def _protrusion(g: SkeletonGraph, k: int, b: int, inc: dict[int, list[int]], dist: np.ndarray) -> float:
    """How far (px) the mask at the tip of spur ``k`` (junction node ``b``) reaches from the centre
    line of the roots it leaves (near ``b``), beyond their diameter there: tip distance to that line +
    half-width at the tip - twice their median half-width; -inf where the tip is no thinner than
    they are (a bulge of the outline, not a lateral)."""
    e = g.edges[k]
    tip = e.path[-1] if e.u == b else e.path[0]
    reach = int(4 * g.radius[b] + 8)
    others = [g.edges[j].oriented(b)[:reach] for j in inc[b] if j != k]
    if not others:
        return -np.inf
    line = np.vstack(others)
    half, parent_half = float(dist[tip[0], tip[1]]), float(np.median(dist[line[:, 0], line[:, 1]]))
    if half >= parent_half:
        return -np.inf
    return float(np.hypot(*(line - tip).T).min()) + half - 2 * parent_half


def skeleton_graph(mask: np.ndarray, *, spur_factor: float = 1.0, spur_min_px: float = 2.0) -> tuple[SkeletonGraph, np.ndarray]:
    """Skeleton graph of a boolean root mask, pruned of spurs. Returns (graph, distance transform px).

    Works on the bounding box of the roots (plates are mostly empty); coordinates are the full image's.
    """
    m = np.asarray(mask, bool)
    dist = np.zeros(m.shape, np.float32)
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if len(rows) == 0:
        return SkeletonGraph(nodes=np.zeros((0, 2)), radius=np.zeros(0), shape=m.shape), dist
    r0, r1, c0, c1 = max(rows[0] - 1, 0), rows[-1] + 2, max(cols[0] - 1, 0), cols[-1] + 2
    crop = m[r0:r1, c0:c1]
    dist[r0:r1, c0:c1] = cv2.distanceTransform(crop.astype(np.uint8), cv2.DIST_L2, 5)
    g = build_graph(skeletonize(crop), dist[r0:r1, c0:c1])
    g.nodes = g.nodes + [r0, c0]
    for e in g.edges.values():
        e.path = e.path + np.array([r0, c0], e.path.dtype)
    g.shape = m.shape
    prune_spurs(g, factor=spur_factor, min_px=spur_min_px, dist=dist)
    return g, dist
