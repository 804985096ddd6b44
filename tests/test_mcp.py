"""The app as an MCP server (``demo.launch(mcp_server=True)``): predict and analyze are tools.

Needs the ``gradio[mcp]`` extra (the ``mcp`` package); skipped without it. The app is built fresh
(``app.build_demo()``) and served in this process on a free 127.0.0.1 port; listing tools loads
no model.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest

pytest.importorskip("mcp", reason="the gradio[mcp] extra is not installed")

from app_server import free_port


@pytest.fixture(scope="module")
def mcp_url():
    import app

    demo = app.build_demo()
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, mcp_server=True,
                quiet=True, show_error=False)
    try:
        yield f"http://127.0.0.1:{port}/gradio_api/mcp/"
    finally:
        demo.close()


def test_schema_lists_predict_and_analyze(mcp_url):
    with urllib.request.urlopen(mcp_url + "schema", timeout=30) as r:
        schema = json.loads(r.read())
    tools = {t["name"]: t for t in schema}
    assert {"predict", "analyze", "timeline"} <= set(tools)
    assert "audio" in json.dumps(tools["predict"]["inputSchema"])


def test_an_mcp_client_lists_the_tools(mcp_url):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async def list_tools(url):
        async with streamablehttp_client(url) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return {t.name: t for t in (await session.list_tools()).tools}

    tools = asyncio.run(list_tools(mcp_url))
    assert {"predict", "analyze"} <= set(tools)
    assert "emotion" in tools["predict"].description.lower()
    only = asyncio.run(list_tools(mcp_url + "?tools=predict,analyze"))  # what a client may restrict to
    assert set(only) == {"predict", "analyze"}
