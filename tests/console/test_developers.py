"""The developer page's examples, run as printed against the sandbox of a `make run` stack.

Each ``curl`` line of ``/developpeurs`` is read from the page, its ``$TOKEN`` replaced by the
stack's demo token (what the page tells its reader to do), and called through the gateway:
every one must answer 200, so that a newcomer's first copy-paste works.
"""

from __future__ import annotations

import html
import itertools
import re
import shlex
import time

import httpx
import pytest

from tests.console.conftest import Stack

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

_EXAMPLE = re.compile(r'<pre class="console-example"><code>(.*?)</code></pre>', re.DOTALL)


def _examples(stack: Stack) -> list[list[str]]:
    page = httpx.get(f"{stack.console_url}/developpeurs", timeout=30)
    assert page.status_code == 200
    return [shlex.split(html.unescape(example)) for example in _EXAMPLE.findall(page.text)]


def test_every_example_of_the_developer_page_answers_200_as_printed(stack: Stack) -> None:
    examples = _examples(stack)
    assert len(examples) > 40
    failures = []
    with httpx.Client(timeout=30) as client:
        for words in examples:
            assert words[:2] == ["curl", "-gi"], words
            headers = dict(
                header.split(": ", 1) for flag, header in itertools.pairwise(words) if flag == "-H"
            )
            if "Authorization" in headers:
                headers["Authorization"] = headers["Authorization"].replace("$TOKEN", stack.token)
            url = words[-1]
            assert url.startswith(stack.rest_url), url
            response = client.get(url, headers=headers)
            if response.status_code == 429:  # the demo token's rate, which a reader's pace never meets
                time.sleep(float(response.headers["retry-after"]))
                response = client.get(url, headers=headers)
            if response.status_code != 200:
                failures.append((url.removeprefix(stack.rest_url), response.status_code, response.text[:200]))
    assert failures == [], "\n".join(map(str, failures))


def test_the_france_connect_examples_name_the_sandbox_token_that_opens_them(stack: Stack) -> None:
    bearers = {
        words[-1].removeprefix(stack.rest_url).split("?")[0]: words[words.index("-H") + 1]
        for words in _examples(stack)
        if "-H" in words
    }
    assert bearers["/v3/dss/quotient_familial/france_connect"] == "Authorization: Bearer fc-lefebvre"
    assert bearers["/v3/dss/quotient_familial/identite"] == "Authorization: Bearer $TOKEN"
    assert bearers["/mesh/v1/citizen/accesses"] == "Authorization: Bearer fc-lefebvre"
    assert all(
        bearer.startswith("Authorization: Bearer fc-")
        for path, bearer in bearers.items()
        if path.endswith("/france_connect")
    )
