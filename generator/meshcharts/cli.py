"""The `meshcharts` command: the only place that prints for the user and picks exit codes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from meshcharts.errors import MeshchartsError

Handler = Callable[[argparse.Namespace], int]


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _cmd_generate(args: argparse.Namespace) -> int:
    from meshcharts import write
    from meshcharts.paths import find_root

    layout = find_root()
    if args.check:
        drift = write.check(layout)
        if drift:
            sys.stdout.write(drift)
            _say("charts/ differs from what generator/specs renders; run `meshcharts generate` to update it")
            return 1
        _say("charts/ matches generator/specs")
        return 0
    changed = write.generate(layout)
    _say(f"generated charts/: {len(changed)} file(s) changed" + "".join(f"\n  {p}" for p in changed))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meshcharts",
        description="Generate, publish and test the Istio 1.12 Helm charts (base, istiod, gateway).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = sub.add_parser("generate", help="render generator/specs into charts/")
    gen.add_argument("--check", action="store_true", help="only diff a fresh render against charts/")
    gen.set_defaults(handler=_cmd_generate)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except MeshchartsError as err:
        _say(f"meshcharts {args.command}: {err}")
        return err.exit_code
    except KeyboardInterrupt:
        _say("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
