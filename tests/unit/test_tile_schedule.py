"""Which tiling passes run on each live frame."""

from __future__ import annotations

import pytest

from appliance.vision.detector import TileSchedule


def test_every_frame_runs_every_pass():
    s = TileSchedule([1, 2, 3])
    assert [s.next() for _ in range(3)] == [(1, 2, 3)] * 3 and s.period == 1


def test_round_robin_keeps_the_whole_frame_and_rotates_the_grids():
    s = TileSchedule([1, 2, 3], "round_robin")
    assert [s.next() for _ in range(4)] == [(1, 2), (1, 3), (1, 2), (1, 3)] and s.period == 2
    s = TileSchedule([1, 2, 4, 6], "round_robin")
    assert [s.next() for _ in range(4)] == [(1, 2), (1, 4), (1, 6), (1, 2)] and s.period == 3


@pytest.mark.parametrize("tiles", [[1], [1, 2], [2]])
def test_with_one_grid_or_less_to_rotate_nothing_changes(tiles):
    s = TileSchedule(tiles, "round_robin")
    assert s.next() == tuple(tiles) and s.next() == tuple(tiles)


def test_round_robin_without_a_whole_frame_pass_rotates_all():
    s = TileSchedule([2, 3], "round_robin")
    assert [s.next() for _ in range(3)] == [(2,), (3,), (2,)]


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="every_frame or round_robin"):
        TileSchedule([1, 2], "sometimes")
