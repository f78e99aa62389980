"""How far a trade's energy travels on the shipped feeder (grid fees' distance classes)."""

from __future__ import annotations

from p2penergy.network.feeder import BAND_PRESETS, kerber_community_feeder
from p2penergy.network.fees import distance, line_sections

HOMES = [f"house-{i:02d}" for i in range(1, 21)]


def test_distance_classes_on_the_default_feeder():
    f = kerber_community_feeder(HOMES, "office", BAND_PRESETS["japan"], sites={"house-02": "loadbus_1_1"})
    sections = line_sections(f)
    bus = f.site_bus
    assert distance(bus["house-01"], bus["house-02"], sections) == "same_bus"
    # feeder 1 and feeder 2 meet at the transformer's LV busbar: one LV section, no transformer between
    assert distance(bus["house-03"], bus["house-20"], sections) == "same_feeder"
    assert distance(bus["house-03"], bus["house-04"], sections) == "same_feeder"
    # the office is on the MV side
    assert distance(bus["house-13"], bus["office"], sections) == "through_transformer"
    assert distance(bus["office"], bus["office"], sections) == "same_bus"
    # a party on no bus (off the feeder, on the road)
    assert distance(None, bus["house-05"], sections) == "through_transformer"
    # two sections: the LV side (41 buses) and the MV bus
    assert sorted(list(sections.values()).count(r) for r in set(sections.values())) == [1, 41]
