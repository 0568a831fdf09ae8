"""Write what an istiod chart's own injector makes of the oracle's workloads: one file per variant and workload.

Usage, from the repository root:

    python -m tests.data.tools.injection_facts CHART_DIR TAG VARIANTS_DIR OUT_DIR

CHART_DIR is Istio's istiod chart (`manifests/charts/istio-control/istio-discovery` of istio/istio, copied
with `git archive` to a scratch directory outside this repository); TAG the image tag, pinned with the hub
`docker.io/istio` over every variant's values; VARIANTS_DIR a folder with `variants.yaml` and
`more-variants.yaml` (tests/data/istio-<version>-injection); OUT_DIR receives `<variant>/<workload>.yaml`.
The workloads are those of tests/data/istio-1.12-injection. Each variant goes through the functions the
oracle tests use (tests/oracle/injection.py: `render_injector` with the toolchain's helm, then one
`inject` over all workloads with the toolchain's istioctl and the variant's `env`), and each injected object
is written with `yaml.safe_dump(doc, sort_keys=True)`, replacing a file already there. A workload istioctl
returns no object for fails the run. Only istioctl's output is written; nothing of the chart.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from tests.oracle import cases
from tests.oracle.injection import OracleError, inject, render_injector


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    from meshcharts import tools

    chart, tag, variants_dir, out = Path(argv[0]), argv[1], Path(argv[2]), Path(argv[3])
    helm, istioctl = tools.path("helm"), tools.path("istioctl")
    pinned = {"global": {"hub": "docker.io/istio", "tag": tag}}
    workloads = cases.workloads()
    text = cases.workloads_text()
    for variant in cases.variants(variants_dir):
        try:
            injector = render_injector(
                helm, chart, variant.chart_values(pinned), estimated_concurrency=variant.estimated_concurrency
            )
            injected = inject(istioctl, injector, text, env=variant.env)
        except OracleError as err:
            print(f"variant {variant.name}: {err}", file=sys.stderr)
            return 1
        missing = sorted(set(workloads) - set(injected))
        if missing:
            print(f"variant {variant.name}: istioctl returned no object for {missing}", file=sys.stderr)
            return 1
        folder = out / variant.name
        folder.mkdir(parents=True, exist_ok=True)
        for name in workloads:
            (folder / f"{name}.yaml").write_text(yaml.safe_dump(injected[name], sort_keys=True))
        print(f"{variant.name}: {len(workloads)} injected objects", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
