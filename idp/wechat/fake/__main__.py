"""`python -m idp.wechat.fake --port 8800`, until `idp fake-wechat` is wired."""

from __future__ import annotations

import argparse

from idp.wechat.fake.server import run


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m idp.wechat.fake")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8800)
    arguments = parser.parse_args()
    run(arguments.host, arguments.port)


if __name__ == "__main__":
    main()
