"""A second, independent MCP client: the official Python SDK (`mcp`) talks to the real
`codelens --mcp` over stdio on a temporary git repository, and checks the round trip an
agent makes: list the tools, find a symbol, see the staleness banner after an edit.

Usage: python mcp_roundtrip.py PATH/TO/codelens   (scripts/test runs it in a venv)
"""

import asyncio
import os
import subprocess
import sys
import tempfile

from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client

BANNER = "⚠️ Some files referenced below were edited since the last index sync"


def git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def text_of(result):
    return "".join(block.text for block in result.content if getattr(block, "type", "") == "text")


async def roundtrip(codelens, repo):
    server = StdioServerParameters(
        command=codelens,
        args=["--mcp", repo],
        cwd=repo,
        # A long debounce keeps the edit pending while we look at it.
        env={**os.environ, "CODELENS_WATCH_DEBOUNCE_MS": "30000"},
    )
    async with stdio_client(server) as (read, write):
        async with ClientSession(
            read, write, client_info=types.Implementation(name="codelens-python-check", version="1.0")
        ) as session:
            init = await session.initialize()
            assert init.server_info.name == "codelens", init.server_info

            tools = await session.list_tools()
            names = sorted(tool.name for tool in tools.tools)
            assert names == [
                "file_outline", "find_files", "index_status", "search_symbols", "search_text", "symbol_definition"
            ], names
            assert all(tool.annotations and tool.annotations.read_only_hint for tool in tools.tools)

            clean = await session.call_tool("search_symbols", {"query": "render_page", "match": "exact"})
            assert not clean.is_error, clean
            assert "web/page.py:1: function render_page" in text_of(clean), text_of(clean)
            assert BANNER not in text_of(clean)
            assert clean.structured_content["stale_files"] == []

            with open(os.path.join(repo, "web", "page.py"), "a", encoding="utf-8") as f:
                f.write("\n\ndef edited_by_python():\n    pass\n")

            stale = await session.call_tool("search_symbols", {"query": "render_page", "match": "exact"})
            body = text_of(stale)
            assert body.startswith(BANNER), body
            assert "web/page.py (edited" in body, body
            assert [f["path"] for f in stale.structured_content["stale_files"]] == ["web/page.py"]

            refused = await session.call_tool("file_outline", {"path": "../../etc/passwd"})
            assert refused.is_error, refused


def main():
    codelens = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory(prefix="codelens-py-") as repo:
        repo = os.path.realpath(repo)
        os.makedirs(os.path.join(repo, "web"))
        with open(os.path.join(repo, "web", "page.py"), "w", encoding="utf-8") as f:
            f.write("def render_page():\n    return 'ok'\n")
        git(repo, "init", "-q", "-b", "main")
        subprocess.run([codelens, "init", "-q"], cwd=repo, check=True)
        asyncio.run(roundtrip(codelens, repo))
    print("mcp-python: 1 passed, 0 failed")


if __name__ == "__main__":
    main()
