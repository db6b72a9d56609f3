"""The fake WeChat for the token-exchange benchmark, served by granian (one worker).

    BENCH_FAKE_APPID=… BENCH_FAKE_SECRET=… BENCH_FAKE_CODES=codes.txt \
        python -m granian --interface wsgi --factory bench.fake_wechat:load

At start the fake mints one js_code per line of BENCH_FAKE_CODES (`<code> <user>`) for that
user of the mini-program (the same openid and unionid for the same user each time), as its
control API's `POST /__fake__/js_codes` would; each is consumed once by
`/sns/jscode2session`. Minting them
up front keeps the control API out of the measured window. The code lifetime is raised to an
hour for the length of the benchmark.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path
from typing import Any

from idp.wechat.fake import state as fake_state
from idp.wechat.fake.app import create_fake_wechat_app
from idp.wechat.fake.state import FakeApp, FakeState, _Code


def load() -> Any:
    fake_state.CODE_TTL["js"] = 3600
    appid = os.environ["BENCH_FAKE_APPID"]
    state = FakeState()
    state.register_app(FakeApp(appid=appid, secret=os.environ["BENCH_FAKE_SECRET"]))
    expires = state.now() + fake_state.CODE_TTL["js"]
    for line in Path(os.environ["BENCH_FAKE_CODES"]).read_text().splitlines():
        if not line.strip():
            continue
        code, name = line.split()
        user = state.make_user(appid, user=name)
        session = {
            "openid": user.openid,
            "session_key": base64.b64encode(secrets.token_bytes(16)).decode(),
            "unionid": user.unionid,
        }
        state._codes[code] = _Code("js", appid, expires, session)
    app = create_fake_wechat_app(state=state)
    state.record_call = lambda call: None  # type: ignore[method-assign]  # no growing call log
    return app
