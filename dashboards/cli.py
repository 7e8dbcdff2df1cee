"""``growthwatch dashboards``: build (or check) the generated Grafana files, upload boards."""

from __future__ import annotations

import argparse
import json
from typing import Any

from growthwatch.cli.common import CliError, add_config_args, config_from_args


def register(sub: Any) -> None:
    parser = sub.add_parser("dashboards", help="Grafana dashboards and alerting as code")
    inner = parser.add_subparsers(dest="dashboards_command", metavar="ACTION", required=True)
    build = inner.add_parser(
        "build", help="write dashboards/json/*.json and provisioning/alerting/*.yaml from code",
        description="Render every board and the alerting provisioning from dashboards/. With "
        "--check nothing is written and the exit code is 1 if a committed file differs.",
    )  # fmt: skip
    build.add_argument("--check", action="store_true",
                       help="fail (exit 1) if the committed files differ from the code")  # fmt: skip
    build.set_defaults(func=run_build)
    upload = inner.add_parser(
        "upload", help="upload the boards to a running Grafana through its HTTP API",
        description="POST every board to /api/dashboards/db of grafana.url with grafana.token "
        "(for a Grafana without file provisioning).",
    )  # fmt: skip
    add_config_args(upload, required=True, data_dir=False)
    upload.add_argument("--folder-uid", default="growthwatch",
                        help="folder to upload into (created if missing; default %(default)s)")  # fmt: skip
    upload.set_defaults(func=run_upload)


def run_build(args: argparse.Namespace) -> int:
    from dashboards.build import ROOT, drift, render, write

    files = render()
    if args.check:
        problems = drift(files)
        for line in problems:
            print(line)
        if problems:
            print("run `growthwatch dashboards build` and commit the result")
            return 1
        print(f"{len(files)} generated files match the code")
        return 0
    for path in write(files):
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


def run_upload(args: argparse.Namespace) -> int:
    from dashboards.build import dashboards
    from dashboards.grafana_api import grafana_client, upload_dashboards

    config = config_from_args(args)
    assert config is not None
    if not config.section("grafana"):
        raise CliError(f"--config {args.config}: no grafana section (url, token)")
    api = grafana_client(config.section("grafana"))
    results = upload_dashboards(api, [m for _, m in dashboards()], folder_uid=args.folder_uid)
    print(json.dumps(results, indent=2))
    return 0
