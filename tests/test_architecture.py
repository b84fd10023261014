"""Skeleton lengths, spur pruning, crossings, plants and root orders on masks drawn from known polylines."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from rootscope import rsml
from rootscope.architecture import RootPath, find_architecture, overlap_lengths, split_classes, to_scene
from rootscope.errors import InputError
from rootscope.skeleton import build_graph, chain_length, clean_mask, path_length, skeleton_graph
from skimage.morphology import skeletonize


def arc(x0: float, y0: float, length: float, angle_deg: float, bend_rad: float = 0.0) -> np.ndarray:
    """(x, y) polyline sampled every 1 px, starting at (x0, y0) with the given heading (0 = +x, 90 = down),
    turning steadily by ``bend_rad`` over its length."""
    n = int(round(length))
    a = np.radians(angle_deg) + np.linspace(0, bend_rad, n)
    steps = np.stack([np.cos(a), np.sin(a)], 1) * (length / n)
    return np.vstack([[x0, y0], np.array([x0, y0]) + np.cumsum(steps, 0)])


def draw(mask: np.ndarray, xy: np.ndarray, width: int = 7, value: int = 1) -> None:
    """Draw a polyline ``width`` px across (round caps), as rsml.render_mask does."""
    cv2.polylines(mask, [np.rint(xy * 16).astype(np.int32).reshape(-1, 1, 2)], False, value, max(1, width - 2), cv2.LINE_8, 4)


def plant_with_laterals(shape=(700, 600), x0=300.0, y0=50.0, insert=(80, 150, 220, 290), width=7):
    """A gently curved primary with laterals alternating sides; returns mask, primary, laterals (x, y)."""
    mask = np.zeros(shape, np.uint8)
    primary = arc(x0, y0, 550, 90, 0.4)
    laterals = []
    for k, i in enumerate(insert):
        side = 1 if k % 2 == 0 else -1
        laterals.append(arc(*primary[i], 120, 90 - side * 55, side * 0.3))
    for xy in [primary, *laterals]:
        draw(mask, xy, width)
    return mask, primary, laterals


# ------------------------------------------------------------------------------ lengths
@pytest.mark.parametrize("angle", np.arange(0.0, 180.0, 7.5))
def test_straight_root_length_is_true_at_every_angle(angle):
    mask = np.zeros((360, 360), np.uint8)
    line = arc(180 - 150 * np.cos(np.radians(angle)), 180 - 150 * np.sin(np.radians(angle)), 300, angle)
    draw(mask, line, 5)
    g, _ = skeleton_graph(mask > 0)
    (edge,) = g.edges.values()
    # skeleton ends sit inside the rounded caps: allow their few px, not the staircase (up to +8 %)
    assert abs(path_length(edge.path) - 300) / 300 < 0.012


def test_raw_pixel_chain_overcounts_a_sloped_line_which_smoothing_removes():
    mask = np.zeros((300, 360), np.uint8)
    draw(mask, arc(20, 20, 300, 22.5), 5)
    (edge,) = skeleton_graph(mask > 0)[0].edges.values()
    assert chain_length(edge.path) / 300 > 1.05
    assert abs(path_length(edge.path) / 300 - 1) < 0.012


@pytest.mark.parametrize("radius", [40.0, 80.0, 160.0])
@pytest.mark.parametrize("start_deg", [0.0, 33.0, 71.0])
def test_curved_root_length_is_true(radius, start_deg):
    mask = np.zeros((420, 420), np.uint8)
    t = np.radians(start_deg) + np.linspace(0, 1.5 * np.pi * min(1.0, 120 / radius), 2000)
    xy = np.stack([210 + radius * np.cos(t), 210 + radius * np.sin(t)], 1)
    draw(mask, xy, 5)
    true = rsml.polyline_length(xy)
    arch = find_architecture(mask > 0, seed_points=xy[:1, ::-1], seed_radius_px=3)
    (root,) = arch.plants[0].roots
    assert abs(root.length_px - true) / true < 0.02  # a 40 px radius bends 7 degrees per root width


# ------------------------------------------------------------------------------ graph
def test_graph_of_a_y_has_three_edges_meeting_at_one_node():
    mask = np.zeros((200, 200), np.uint8)
    draw(mask, arc(100, 10, 180, 90), 5)
    draw(mask, arc(100, 100, 70, 30), 5)
    g = build_graph(skeletonize(mask > 0))
    deg = g.degree()
    assert len(g.edges) == 3 and (deg >= 3).sum() == 1 and (deg == 1).sum() == 3


def test_bumps_on_the_outline_are_pruned_but_a_short_lateral_is_kept():
    mask = np.zeros((300, 200), np.uint8)
    draw(mask, arc(100, 10, 280, 90), 7)
    cv2.circle(mask, (104, 80), 4, 1, -1)  # a bump 1-2 px proud of the outline
    draw(mask, arc(100, 200, 16, 0), 4)  # a lateral 16 px from the primary's centre
    g, _ = skeleton_graph(clean_mask(mask > 0))
    assert len(g.edges) == 3  # primary above and below the lateral, and the lateral; no spur at the bump


def test_a_short_lateral_protruding_from_a_smooth_outline_is_kept_but_not_among_ragged_bumps():
    mask = np.zeros((300, 200), np.uint8)
    draw(mask, arc(100, 10, 280, 90), 4)  # a root 3 px wide
    cv2.circle(mask, (101, 80), 2, 1, -1)  # a bump 2 px proud of the outline and 3 px wide
    draw(mask, arc(100, 200, 4, 0), 3)  # a lateral 1 px wide reaching 3 px out of the root
    seed = np.array([[10.0, 100.0]])
    assert len(skeleton_graph(mask > 0)[0].edges) == 3  # the lateral's spur stays, the bump's goes
    assert sum(r.order == 2 for r in find_architecture(mask > 0, seed_points=seed).plants[0].roots) == 1
    ragged = mask.copy()
    for y in range(20, 280, 6):  # bumps every 6 px on both sides: a spur this short is one of them
        cv2.circle(ragged, (103 if y % 12 else 97, y), 2, 1, -1)
    assert len(skeleton_graph(ragged > 0)[0].edges) == 1
    assert not any(r.order == 2 for r in find_architecture(ragged > 0, seed_points=seed).plants[0].roots)


def test_a_stub_inside_its_parents_width_counts_only_where_another_detector_found_a_branching_point():
    mask = np.zeros((300, 200), np.uint8)
    draw(mask, arc(100, 10, 280, 90), 9)  # a root 9 px wide
    draw(mask, arc(100, 150, 9, 0), 3)  # a young lateral reaching 9 px from its centre line: shorter than its width
    seed = np.array([[10.0, 100.0]])

    def laterals(**kw) -> list:
        return [r for r in find_architecture(mask > 0, seed_points=seed, **kw).plants[0].roots if r.order == 2]

    assert len(skeleton_graph(mask > 0)[0].edges) == 3  # the skeleton has the stub's spur
    assert laterals() == []  # alone, the mask cannot tell it from a bump of the outline
    (stub,) = laterals(support=np.array([[152.0, 101.0]]))  # a branch-point network saw it
    assert np.allclose(stub.points[0], [152, 101])  # and the lateral starts where the network put it
    assert laterals(support=np.array([[152.0, 101.0]]), support_px=0) == []  # switched off
    assert laterals(support=np.array([[170.0, 100.0]])) == []  # a point 20 px away supports nothing


def test_a_short_lateral_the_other_detector_does_not_see_is_a_bump():
    mask = np.zeros((300, 200), np.uint8)
    draw(mask, arc(100, 10, 280, 90), 9)
    draw(mask, arc(100, 150, 22, 0), 3)  # reaches 17 px beyond the outline: about 2 diameters of its parent
    seed = np.array([[10.0, 100.0]])

    def laterals(**kw) -> int:
        return sum(r.order == 2 for r in find_architecture(mask > 0, seed_points=seed, **kw).plants[0].roots)

    assert laterals() == 1  # the mask alone: it reaches out of its parent
    assert laterals(support=np.array([[152.0, 101.0]])) == 1  # the network saw it
    assert laterals(support=np.array([[40.0, 100.0]])) == 0  # the network saw branching points, not this one
    assert laterals(support=np.array([[40.0, 100.0]]), unsupported_diameters=1.0) == 1


def test_a_lateral_the_other_detector_is_sure_of_where_the_mask_shows_none_has_no_length(tmp_path):
    from rootscope.traits import plant_table, root_table

    mask, primary, laterals = plant_with_laterals()
    seed = np.array([primary[0][::-1]])
    on_primary = primary[400][::-1] + [0.0, 1.0]  # 1 px off the centre line, no lateral in the mask
    points = np.array([on_primary, on_primary + [2.0, 0.0],  # one lateral for the two
                       primary[330][::-1] + [0.0, 15.0],  # beside the root: nothing
                       laterals[0][0][::-1] + [2.0, 1.0]])  # the base of a lateral already there: nothing
    plain = find_architecture(mask > 0, seed_points=seed)
    arch = find_architecture(mask > 0, seed_points=seed, emerging=points)
    (plant,) = arch.plants
    new = plant.roots[len(plain.plants[0].roots):]
    assert len(new) == 1 and np.allclose(new[0].points, [on_primary]) and new[0].length_px == 0
    assert new[0].order == 2 and new[0].parent == plant.primary
    table = plant_table(arch, px_per_mm=10.0)
    assert table.lateral_count.item() == len(laterals) + 1
    assert np.isnan(root_table(arch, px_per_mm=10.0).emergence_angle_deg.iloc[-1])
    path = rsml.write_rsml(tmp_path / "a.rsml", to_scene(arch, px_per_mm=10.0))
    assert len(rsml.branching_points(rsml.read_rsml(path))) == len(laterals) + 1


@pytest.mark.parametrize("ring_radius", [5, 8, 12])
def test_a_ring_touching_a_root_is_no_lateral_and_no_network_point_there_makes_one(ring_radius):
    """A bubble or a ring of dust against a root: the mask closes a loop beside the root (an arc on a
    chord), which is neither root length nor a lateral, even where the network sees branching points."""
    mask, primary, laterals = plant_with_laterals()
    seed = np.array([primary[0][::-1]])
    plain = find_architecture(mask > 0, seed_points=seed)
    x, y = primary[400]
    centre = (int(round(x + 3.5 + ring_radius - 1)), int(round(y)))  # the ring's outline overlaps the root's
    cv2.circle(mask, centre, ring_radius, 1, 2)
    junctions = [primary[400 + k][::-1] + [0.0, 2.0] for k in (-round(0.55 * ring_radius), round(0.55 * ring_radius))]
    arch = find_architecture(mask > 0, seed_points=seed, support=np.array(junctions), emerging=np.array(junctions))
    assert sum(r.order == 2 for r in arch.plants[0].roots) == len(laterals)
    assert arch.plants[0].total_length_px == pytest.approx(plain.plants[0].total_length_px, rel=0.01)


def test_a_lateral_starts_at_the_branching_point_another_detector_found_near_its_base():
    mask, primary, laterals = plant_with_laterals()
    seed = np.array([primary[0][::-1]])
    bases = [lat[0][::-1] for lat in laterals]
    shifted = np.array(bases) + [3.0, 0.0]  # 3 px further down the primary
    arch = find_architecture(mask > 0, seed_points=seed, support=shifted)
    found = sorted(r.points[0].tolist() for r in arch.plants[0].roots if r.order == 2)
    assert np.allclose(found, sorted(shifted.tolist()))
    plain = find_architecture(mask > 0, seed_points=seed)
    lengths = lambda a: sorted(r.length_px for r in a.plants[0].roots if r.order == 2)  # noqa: E731
    assert np.allclose(lengths(arch), lengths(plain), atol=3)  # the stretch inside the parent is redrawn, not added


def test_clean_mask_removes_specks_fills_holes_and_bridges_gaps():
    mask = np.zeros((200, 200), np.uint8)
    draw(mask, arc(100, 10, 80, 90), 7)
    draw(mask, arc(100, 106, 80, 90), 7)  # a 9 px gap along the root
    mask[50, 100] = 0  # pin hole
    mask[150:153, 20:23] = 1  # speck
    clean = clean_mask(mask > 0, min_area_px=30, max_hole_px=20)
    assert clean[50, 100] and not clean[151, 21]
    assert cv2.connectedComponents(clean.astype(np.uint8))[0] - 1 == 2
    bridged = clean_mask(mask > 0, bridge_px=12)
    assert cv2.connectedComponents(bridged.astype(np.uint8))[0] - 1 == 1


# ------------------------------------------------------------------------------ plants and roots
def test_primary_and_laterals_measured_against_the_drawn_polylines():
    mask, primary, laterals = plant_with_laterals()
    arch = find_architecture(mask > 0, seed_points=np.array([primary[0][::-1]]))
    (plant,) = arch.plants
    prim = plant.roots[plant.primary]
    assert abs(prim.length_px - 550) / 550 < 0.01
    lats = [r for r in plant.roots if r.order == 2]
    assert len(lats) == 4
    assert np.allclose(sorted(r.length_px for r in lats), 120, rtol=0.03)
    truth = np.array([lat[0][::-1] for lat in laterals])
    found = plant.branch_points()
    d = np.hypot(*(found[:, None] - truth[None]).transpose(2, 0, 1)).min(axis=0)
    assert d.max() < 3.0


def test_a_lateral_grown_deeper_than_a_short_primary_does_not_become_the_primary():
    mask = np.zeros((600, 600), np.uint8)
    primary = arc(200.0, 50.0, 300, 90)  # straight down to row 350
    lateral = arc(*primary[100], 330, 45, 0.6)  # leaves at 45 degrees, bends down, ends near row 440
    for xy in (primary, lateral):
        draw(mask, xy, 7)
    seed = np.array([primary[0][::-1]])
    (plant,) = find_architecture(mask > 0, seed_points=seed).plants
    main = plant.roots[plant.primary]
    assert main.tip[0] < 360 and main.length_px == pytest.approx(chain_length(primary), rel=0.03)
    assert [r.order for r in plant.roots].count(2) == 1
    (deepest,) = find_architecture(mask > 0, seed_points=seed, primary_straight=0).plants
    assert deepest.roots[deepest.primary].tip[0] > 420  # the literal rule: the path to the deepest tip


def test_third_order_laterals_hang_from_their_lateral():
    mask = np.zeros((500, 500), np.uint8)
    primary = arc(250, 20, 450, 90)
    lateral = arc(*primary[100], 200, 30)
    sub = arc(*lateral[120], 60, 100)
    for xy in (primary, lateral, sub):
        draw(mask, xy, 7)
    arch = find_architecture(mask > 0, seed_points=np.array([[20, 250]]))
    (plant,) = arch.plants
    orders = sorted(r.order for r in plant.roots)
    assert orders == [1, 2, 3]
    third = next(r for r in plant.roots if r.order == 3)
    assert plant.roots[third.parent].order == 2
    assert abs(third.length_px - 60) < 4


@pytest.mark.parametrize("cross_angle", [90, 60, 40])
def test_two_plants_crossing_make_no_branching_point(cross_angle):
    mask = np.zeros((500, 500), np.uint8)
    a = arc(250, 20, 460, 90)
    b = arc(250 - 200 * np.cos(np.radians(90 - cross_angle)), 250 - 200 * np.sin(np.radians(90 - cross_angle)), 400, 90 - cross_angle)
    draw(mask, a, 7)
    draw(mask, b, 7)
    arch = find_architecture(mask > 0, seed_points=np.array([a[0][::-1], b[0][::-1]]))
    assert len(arch.crossings) == 1
    assert len(arch.branch_points()) == 0
    for plant, truth in zip(arch.plants, (a, b)):
        assert len(plant.roots) == 1
        assert abs(plant.roots[0].length_px - rsml.polyline_length(truth)) / rsml.polyline_length(truth) < 0.02


def test_a_root_starting_at_the_end_of_a_long_seed_still_passes_over_a_crossing():
    # the root's top lies by the seed's outline but far from its centre: it still comes from the seed
    root, seed = np.zeros((480, 400), np.uint8), np.zeros((480, 400), np.uint8)
    seed[30:35, 40:81] = 1  # a seed lying on its side, 41 x 5 px
    cv2.circle(seed, (300, 30), 6, 1, -1)
    a = arc(80, 37, 360, 90)
    primary, lateral = arc(300, 38, 400, 90), arc(300, 150, 300, 150)  # the lateral crosses a near y = 277
    for xy in (a, primary, lateral):
        draw(root, xy, 7)
    arch = find_architecture(root > 0, seed_mask=seed > 0)
    assert len(arch.crossings) == 1 and len(arch.plants) == 2
    first, second = sorted(arch.plants, key=lambda p: p.seed[1])
    assert len(first.roots) == 1 and first.roots[0].length_px == pytest.approx(360, abs=8)
    assert sorted(r.order for r in second.roots) == [1, 2]


def test_a_lateral_branching_where_another_root_crosses_keeps_its_branching_point():
    mask = np.zeros((500, 500), np.uint8)
    a = arc(250, 20, 460, 90)
    lateral = arc(250, 250, 150, 40)
    other = arc(60, 275, 400, 0)  # another plant's root crossing both 25 px below the branch
    for xy in (a, lateral, other):
        draw(mask, xy, 7)
    arch = find_architecture(mask > 0, seed_points=np.array([[20, 250], [275, 60]]))
    first, second = arch.plants
    assert sorted(r.order for r in first.roots) == [1, 2]
    assert len(second.roots) == 1 and abs(second.roots[0].length_px - 400) < 10
    assert len(arch.branch_points()) == 1


def test_a_lateral_leaving_where_another_plants_root_crosses_belongs_to_the_root_it_leaves_forwards():
    # five arms at one point: a lateral leaves downwards at an acute angle to its parent, backwards to the other
    mask = np.zeros((480, 420), np.uint8)
    a, other = arc(200, 20, 440, 90), arc(380, 70, 330, 135)  # the other crosses a at (200, 250)
    lateral = arc(200, 250, 60, 40)
    for xy in (a, other, lateral):
        draw(mask, xy, 5)
    arch = find_architecture(mask > 0, seed_points=np.array([a[0][::-1], other[0][::-1]]))
    first, second = sorted(arch.plants, key=lambda p: p.seed[1])
    assert sorted(r.order for r in first.roots) == [1, 2] and len(second.roots) == 1
    assert abs(first.roots[first.primary].length_px - 440) < 6


@pytest.mark.parametrize("angle, above", [(50, 8), (65, 6), (65, 10)])
def test_a_thin_root_crossing_a_thick_one_just_below_its_lateral_passes_over(angle, above):
    # the thin root leaves junctions on both sides of the thick one, farther apart than its own width
    mask = np.zeros((500, 460), np.uint8)
    thick = arc(200, 20, 460, 90)
    heading = np.radians(90 - angle)
    thin = arc(200 - 150 * np.cos(heading), 250 - 150 * np.sin(heading), 300, 90 - angle)  # crosses at (200, 250)
    lateral = arc(200, 250 - above, 100, 135)  # the thick root's lateral, leaving down-left just above
    draw(mask, thick, 9)
    draw(mask, thin, 3)
    draw(mask, lateral, 5)
    arch = find_architecture(mask > 0, seed_points=np.array([thick[0][::-1], thin[0][::-1]]))
    by_seed = {round(p.seed[1]): p for p in arch.plants}
    assert sorted(r.order for r in by_seed[200].roots) == [1, 2]
    assert by_seed[200].total_length_px == pytest.approx(560, abs=8)
    (passing,) = by_seed[round(thin[0][0])].roots
    assert passing.length_px == pytest.approx(300, abs=8)


def test_two_branched_laterals_leaving_one_point_on_opposite_sides_are_not_a_crossing():
    # their straight line through the primary looks like a root passing over it, but neither side
    # leads back to the seed: two laterals, two branching points, no crossing
    mask = np.zeros((500, 600), np.uint8)
    primary = arc(300, 20, 450, 90)
    left, right = arc(*primary[200], 200, 180), arc(*primary[200], 200, 0)
    subs = [arc(*left[120], 50, 120), arc(*right[120], 50, 60)]  # so neither lateral ends in a free tip
    for xy in (primary, left, right, *subs):
        draw(mask, xy, 5)
    arch = find_architecture(mask > 0, seed_points=np.array([[20, 300]]))
    (plant,) = arch.plants
    assert len(arch.crossings) == 0
    assert sorted(r.order for r in plant.roots) == [1, 2, 2, 3, 3]
    assert sorted(np.round([r.length_px for r in plant.roots if r.order == 2], -1)) == [200, 200]
    bp = plant.branch_points()
    assert (np.hypot(*(bp - primary[200][::-1]).T) < 4).sum() == 2


def test_touching_root_systems_are_split_by_path_to_their_seed():
    mask_a, prim_a, lats_a = plant_with_laterals(shape=(700, 800), x0=250)
    mask_b, prim_b, lats_b = plant_with_laterals(shape=(700, 800), x0=420, insert=(110, 180))
    mask = mask_a | mask_b
    seeds = np.array([prim_a[0][::-1], prim_b[0][::-1]])
    arch = find_architecture(mask > 0, seed_points=seeds)
    totals = [sum(r.length_px for r in p.roots) for p in arch.plants]
    truth = [550 + 120 * 4, 550 + 120 * 2]
    assert np.allclose(totals, truth, rtol=0.03)


def test_seeds_from_the_seed_class_and_roots_start_at_the_seed_centre():
    mask = np.zeros((400, 400), np.uint8)
    roots = [arc(100, 40, 300, 92), arc(300, 40, 250, 88)]
    for xy in roots:
        draw(mask, xy, 7)
    for x, y in (r[0] for r in roots):
        cv2.ellipse(mask, (int(x), int(y)), (8, 5), 0, 0, 360, 2, -1)
    root, seed = split_classes(mask)
    arch = find_architecture(root, seed_mask=seed)
    assert len(arch.plants) == 2
    for plant, xy in zip(arch.plants, roots):
        assert np.hypot(*(plant.seed - xy[0][::-1])) < 1.0
        assert abs(plant.roots[plant.primary].length_px - rsml.polyline_length(xy)) / rsml.polyline_length(xy) < 0.02


@pytest.mark.parametrize("tilt, angle, parent_w, lateral_w", [(70, 26, 4, 3), (70, 26, 5, 3), (60, 30, 4, 3), (60, 34, 6, 4)])
def test_a_lateral_leaving_at_a_shallow_angle_starts_on_its_parent(tilt, angle, parent_w, lateral_w):
    # the skeleton junction of a shallow lateral lies several px out along it (5-7 px here)
    mask = np.zeros((400, 400), np.uint8)
    primary = arc(150, 20, 360, tilt)
    draw(mask, primary, parent_w)
    draw(mask, arc(*primary[150], 100, tilt - angle), lateral_w)
    arch = find_architecture(mask > 0, seed_points=primary[:1, ::-1])
    assert len(arch.branch_points()) == 1
    assert np.hypot(*(arch.branch_points()[0] - primary[150][::-1])) < 2.5


def test_a_seed_whose_root_starts_a_few_px_below_it_takes_that_root():
    # thin roots (median radius ~1 px, so the usual reach is ~5 px) starting 7 and 8 px below their seed
    # blob's outline, as where the segmentation gives the hypocotyl to the shoot class; a third attached
    mask = np.zeros((420, 500), np.uint8)
    seeds, gaps, primaries = [(100, 40), (250, 40), (400, 40)], [7, 8, 0], []
    for (x, y), gap in zip(seeds, gaps):
        primaries.append(arc(x, y + 3 + gap, 330, 90, 0.2))
        draw(mask, primaries[-1], 3)
        for i in (60, 120, 180, 240):
            draw(mask, arc(*primaries[-1][i], 60, 35 if i % 120 else 145), 3)
    for x, y in [*seeds, (470, 20)]:  # the last one has no root within reach: not a plant
        cv2.circle(mask, (x, y), 3, 2, -1)
    root, seed = split_classes(mask)
    arch = find_architecture(root, seed_mask=seed)
    assert len(arch.plants) == 3 and arch.unassigned_length_px == 0
    assert any("1 seed(s)" in w for w in arch.warnings)
    for plant, (x, y), gap, xy in zip(arch.plants, seeds, gaps, primaries):
        assert np.hypot(*(plant.seed - (y, x))) < 1.0
        assert len(plant.roots) == 5 and sum(r.order == 1 for r in plant.roots) == 1
        primary = plant.roots[plant.primary].length_px  # from the seed's centre: the gap counts
        assert abs(primary - (rsml.polyline_length(xy) + 3 + gap)) < 0.02 * primary


def test_without_seeds_each_root_system_starts_at_its_top_and_seminal_roots_are_first_order():
    mask = np.zeros((500, 600), np.uint8)
    draw(mask, arc(150, 30, 400, 90), 7)  # plant 1: one root
    seed = np.array([400.0, 30.0])
    for angle in (60, 90, 125):  # plant 2: three seminal roots from one seed
        draw(mask, arc(*seed, 300, angle), 7)
    arch = find_architecture(mask > 0)
    assert len(arch.plants) == 2
    counts = sorted(sum(r.order == 1 for r in p.roots) for p in arch.plants)
    assert counts == [1, 3]


def test_two_roots_running_together_each_get_the_shared_stretch():
    mask = np.zeros((520, 420), np.uint8)
    a = arc(150, 20, 480, 90)  # straight down
    join = np.array([150.0, 200.0])
    b = np.vstack([arc(280, 20, 1, 90)[:1], join])  # from up right, meeting a at 36 degrees
    b = np.vstack([np.linspace(b[0], b[1], 200), np.linspace(join, [150, 330], 131)[1:], np.linspace([150, 330], [270, 490], 200)[1:]])
    for xy in (a, b):
        draw(mask, xy, 7)
    seeds = np.array([a[0][::-1], b[0][::-1]])
    truth = [rsml.polyline_length(a), rsml.polyline_length(b)]
    arch = find_architecture(mask > 0, seed_points=seeds)
    assert len(arch.bundles) == 1 and len(arch.branch_points()) == 0
    assert np.allclose([p.total_length_px for p in arch.plants], truth, rtol=0.02)
    once = find_architecture(mask > 0, seed_points=seeds, bundle_angle_deg=0)
    assert sum(p.total_length_px for p in once.plants) < 0.9 * sum(truth)  # the band counted once


@pytest.mark.parametrize("angle", [8, 12, 16, 25])
def test_two_straight_roots_crossing_at_a_shallow_angle_each_go_on_straight(angle):
    # their band is short and both go on straight only by swapping sides: not two roots running together
    half = np.radians(angle / 2)
    a = arc(150, 20, 500, 90 - angle / 2)
    b = arc(150 + 500 * np.sin(half), 20, 500, 90 + angle / 2)  # they cross half-way down
    mask = np.zeros((560, 420), np.uint8)
    for xy in (a, b):
        draw(mask, xy, 5)
    arch = find_architecture(mask > 0, seed_points=np.array([a[0][::-1], b[0][::-1]]))
    assert len(arch.bundles) == 1
    for plant, xy in zip(arch.plants, (a, b)):
        primary = plant.roots[plant.primary]
        assert np.hypot(*(primary.tip[::-1] - xy[-1])) < 3 and primary.length_px == pytest.approx(500, rel=0.01)


def test_three_roots_running_together_each_get_the_shared_stretches():
    # a and b meet, c joins their band, c leaves, then a and b part: the bands nest, and each root
    # gets every stretch it runs in
    def path(*corners):
        corners = np.array(corners, float)
        return np.vstack([corners[:1]] + [np.linspace(p, q, int(np.hypot(*(q - p))) + 1)[1:] for p, q in zip(corners[:-1], corners[1:])])

    a = path((300, 20), (300, 560))
    b = path((180, 20), (300, 200), (300, 430), (200, 560))  # meeting and leaving a at 30-40 degrees, each on its side
    c = path((420, 60), (300, 260), (300, 340), (400, 460))
    mask = np.zeros((600, 620), np.uint8)
    for xy in (a, b, c):
        draw(mask, xy, 5)
    seeds = np.array([xy[0][::-1] for xy in (a, b, c)])
    arch = find_architecture(mask > 0, seed_points=seeds, seed_radius_px=20)
    assert len(arch.bundles) == 2 and len(arch.branch_points()) == 0
    assert np.allclose([p.total_length_px for p in arch.plants], [rsml.polyline_length(xy) for xy in (a, b, c)], rtol=0.03)


def test_a_band_as_wide_as_two_roots_counts_twice():
    mask = np.zeros((660, 400), np.uint8)
    a = arc(200, 20, 600, 90)
    b = arc(204, 250, 150, 90)  # a root lying 4 px beside a for 150 px: one band 9 px wide
    for xy in (a, b):
        draw(mask, xy, 5)
    arch = find_architecture(mask > 0, seed_points=a[:1, ::-1])
    (plant,) = arch.plants
    assert abs(plant.total_length_px - 750) / 750 < 0.03
    assert abs(sum(r.overlap_px for r in plant.roots) - 150) < 20
    plain = find_architecture(mask > 0, seed_points=a[:1, ::-1], overlap_ratio=None)
    assert abs(plain.plants[0].total_length_px - 600) / 600 < 0.02  # the band counted once


def test_overlap_is_the_length_where_a_root_is_wider_than_its_own_median():
    points = np.stack([np.arange(0, 600, 3.0), np.full(200, 50.0)], axis=1)
    diameter = np.full(200, 5.0)
    diameter[80:120] = 9.0  # 40 points, 3 px apart: 117 px of band
    lone = RootPath(points, diameter, 1, 597.0)
    other = RootPath(points + [0, 1.0], diameter, 2, 597.0)  # a root on top of it: already counted
    assert overlap_lengths([lone])[0] == pytest.approx(117.0, abs=7)
    assert overlap_lengths([lone, other]).sum() == 0
    taper = RootPath(points, np.r_[np.full(60, 9.0), np.full(140, 5.0)], 1, 597.0)  # wide at its base only
    assert overlap_lengths([taper])[0] == 0
    thin = RootPath(points, np.where(diameter > 5, 4.0, 2.0), 1, 597.0)  # 2 px roots: width steps, not roots
    assert overlap_lengths([thin])[0] == 0


def test_touching_plants_without_seeds_are_found_as_two_apexes():
    mask = np.zeros((650, 800), np.uint8)
    seeds = np.array([[60.0, 250.0], [70.0, 560.0]])  # (row, col)
    fans = {0: (60, 95, 125), 1: (70, 100, 165)}  # seminal root headings (0 = right, 90 = down)
    roots = []
    for k, (r, c) in enumerate(seeds):
        for angle in fans[k]:
            roots.append((k, arc(c, r, 420 if angle in (60, 165) else 380, angle)))
    for _, xy in roots:
        draw(mask, xy, 7)
    # plant 0's first root and plant 1's last one cross: one skeleton component
    assert cv2.connectedComponents(mask)[0] - 1 == 1
    arch = find_architecture(mask > 0)
    assert len(arch.plants) == 2
    found = np.array([p.seed for p in arch.plants])
    assert np.hypot(*(found[:, None] - seeds[None]).transpose(2, 0, 1)).min(axis=0).max() < 12
    for plant in arch.plants:
        k = int(np.argmin(np.hypot(*(seeds - plant.seed).T)))
        assert sum(r.order == 1 for r in plant.roots) == 3
        truth = sum(rsml.polyline_length(xy) for j, xy in roots if j == k)
        assert abs(plant.total_length_px - truth) / truth < 0.03


# ------------------------------------------------------------------------------ bad input and RSML
def test_empty_mask_gives_no_plant_and_a_warning():
    arch = find_architecture(np.zeros((50, 50), bool), name="empty.png")
    assert arch.plants == [] and "empty.png" in arch.warnings[0]


def test_grey_image_is_refused_as_a_mask_and_class_masks_are_split():
    grey = (np.arange(100 * 100).reshape(100, 100) % 256).astype(np.uint8)
    with pytest.raises(InputError, match="not binary"):
        split_classes(grey, name="scan.png")
    with pytest.raises(InputError, match="2-D"):
        split_classes(np.zeros((4, 4, 3), np.uint8))
    root, seed = split_classes(np.array([[0, 1], [2, 3]], np.uint8))
    assert root.sum() == 1 and seed.sum() == 1
    root, seed = split_classes(np.array([[0, 255]], np.uint8))
    assert root.sum() == 1 and seed is None


def test_rsml_written_reads_back_to_the_same_lengths(tmp_path):
    mask, primary, _ = plant_with_laterals()
    arch = find_architecture(mask > 0, seed_points=np.array([primary[0][::-1]]))
    path = rsml.write_rsml(tmp_path / "a.rsml", to_scene(arch, name="a", px_per_mm=10.0))
    back = rsml.read_rsml(path)
    ours = sorted(r.length_px for p in arch.plants for r in p.roots)
    again = sorted(rsml.root_length(r) for r in back.all_roots())
    assert np.allclose(ours, again, atol=1e-3)
    assert [r.order for r in back.plants[0].roots[0].walk()][:1] == [1]
    assert len(back.plants[0].roots[0].children) == 4


# ------------------------------------------------------------------------------ synthetic plates
def test_synthetic_plate_lengths_and_branching_points_match_the_generator():
    from scipy.spatial import cKDTree

    from rootscope.metrics import match_points
    from rootscope.synth import SynthConfig, make_series

    frame = make_series(frames=2, seed=5, config=SynthConfig(size=1000))[1]
    root, seed = split_classes(frame.mask)
    arch = find_architecture(root, seed_mask=seed)
    assert len(arch.plants) == len(frame.scene.plants)
    truth_seeds = np.array([p.roots[0].points[0][::-1] for p in frame.scene.plants])
    _, nearest = cKDTree([p.seed for p in arch.plants]).query(truth_seeds)
    t = frame.lengths
    primary_err, total_err = [], []
    for plant, k in zip(frame.scene.plants, nearest):
        ours, mine = arch.plants[k], t[t.plant == int(plant.id)]
        true_primary = mine.length_px[mine.order == 1].sum()
        primary_err.append(abs(ours.roots[ours.primary].length_px - true_primary) / true_primary)
        total_err.append(abs(sum(r.length_px for r in ours.roots) - mine.length_px.sum()) / mine.length_px.sum())
    assert np.median(primary_err) < 0.02 and np.median(total_err) < 0.03
    match = match_points(arch.branch_points()[:, ::-1], frame.branch_points[["x", "y"]].to_numpy(), 5.0)
    assert match.f1 >= 0.85
