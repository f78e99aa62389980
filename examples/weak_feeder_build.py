"""Build ``examples/weak_feeder.json``: a weak rural low-voltage feeder for the heavy-PV comparison
(issue 17). Run: ``python examples/weak_feeder_build.py`` (pandapower; the JSON is shipped, so
``examples/weak_feeder.py`` does not need this step).

A 50 kVA 6.6/0.4 kV pole transformer (u_k 4 %, u_r 1.5 %: a small distribution transformer's
typical figures) feeding one overhead line of 20 spans of 40 m of 48-AL1/8-ST1A aluminium
conductor (pandapower's standard type: 0.59 Ω/km, 210 A), each junction with one house on a
30 m NAYY 4x50 SE service cable. Japanese rural feeders are often this thin and long; the network
is three-phase balanced like the shipped one (docs/network.md). Bus names: ``mv``, ``lv``,
``j01``..``j20`` (junctions), ``h01``..``h20`` (house connections).
"""

from __future__ import annotations

from pathlib import Path

import pandapower as pp

HOUSES = 20
SPAN_KM = 0.040
SERVICE_KM = 0.030
OUT = Path(__file__).with_name("weak_feeder.json")


def build() -> pp.pandapowerNet:
    net = pp.create_empty_network(name="weak rural feeder, 50 kVA")
    mv = pp.create_bus(net, 6.6, name="mv")
    lv = pp.create_bus(net, 0.4, name="lv")
    pp.create_ext_grid(net, mv, vm_pu=1.0)
    pp.create_transformer_from_parameters(net, mv, lv, sn_mva=0.05, vn_hv_kv=6.6, vn_lv_kv=0.4, vkr_percent=1.5,
                                          vk_percent=4.0, pfe_kw=0.15, i0_percent=0.4, name="pole-50kVA")
    prev = lv
    for i in range(1, HOUSES + 1):
        j = pp.create_bus(net, 0.4, name=f"j{i:02d}")
        pp.create_line(net, prev, j, SPAN_KM, "48-AL1/8-ST1A 0.4", name=f"span-{i:02d}")
        h = pp.create_bus(net, 0.4, name=f"h{i:02d}")
        pp.create_line(net, j, h, SERVICE_KM, "NAYY 4x50 SE", name=f"service-{i:02d}")
        prev = j
    return net


if __name__ == "__main__":
    pp.to_json(build(), str(OUT))
    print(f"written: {OUT}")
