"""mneme's MCP server driven by the reference MCP client (the `mcp` package from PyPI), over
stdio (`mneme mcp-server`, KnowledgeBeast's command) and Streamable HTTP (`/mcp` of `mneme
serve`, behind the API key). scripts/test-mcp installs the client and runs this file."""

import json
import os
import re
import subprocess
import time

import anyio
import httpx2
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

MNEME = os.environ["MNEME_BIN"]
KB_TOOLS = {
    "kb_search", "kb_ingest", "kb_list_documents", "kb_list_projects", "kb_create_project",
    "kb_get_project_info", "kb_delete_project", "kb_get_analytics", "kb_export_project",
    "kb_import_project", "kb_health_check",
}
KATO_TOOLS = {"kato_create_session", "kato_observe", "kato_learn", "kato_predictions"}


def value(result):
    """A tool result as KnowledgeBeast's function returned it (dict or list)."""
    assert not result.is_error, result
    structured = result.structured_content
    if set(structured) == {"result"} and isinstance(structured["result"], list):
        items = [json.loads(block.text) for block in result.content]
        assert items == structured["result"]
        return items
    assert json.loads(result.content[0].text) == structured
    return structured


async def exercise(session, tmp_path, served):
    await session.initialize()
    names = {tool.name for tool in (await session.list_tools()).tools}
    assert KB_TOOLS | KATO_TOOLS <= names, names

    async def call(tool, **arguments):
        return value(await session.call_tool(tool, arguments))

    health = await call("kb_health_check")
    assert health["status"] == "healthy" and health["projects_accessible"] is True

    created = await call("kb_create_project", name="docs", description="d")
    pid = created["project_id"]
    assert created["success"] and created["collection_name"] == f"kb_project_{pid}"
    clash = await call("kb_create_project", name="docs")
    assert clash["error_type"] == "ValidationError" and "already exists" in clash["error"]

    ingested = await call(
        "kb_ingest", project_id=pid, content="# Eviction\nThe LRU cache evicts the oldest entry.",
        metadata={"name": "evict.md", "team": "core"},
    )
    assert ingested["success"] and ingested["doc_id"].startswith("doc_")
    await call("kb_ingest", project_id=pid, content="Bananas are yellow fruit.")
    missing = await call("kb_ingest", project_id=pid)
    assert missing["error_type"] == "ValidationError"

    hits = await call("kb_search", project_id=pid, query="cache eviction", mode="keyword", limit=5)
    assert hits[0]["doc_id"] == ingested["doc_id"] and "LRU" in hits[0]["content"], hits
    assert set(hits[0]) == {"doc_id", "content", "name", "path", "score"}
    bad_mode = await call("kb_search", project_id=pid, query="x", mode="fuzzy")
    assert bad_mode[0]["error_type"] == "ValidationError"
    unknown = await call("kb_search", project_id="nope", query="x")
    assert unknown[0]["error_type"] == "ProjectNotFound"

    listed = await call("kb_list_documents", project_id=pid)
    assert listed["total_documents"] == 2 and listed["project_name"] == "docs"
    meta = {d["doc_id"]: d["metadata"] for d in listed["documents"]}
    assert meta[ingested["doc_id"]]["team"] == "core"
    assert meta[ingested["doc_id"]]["source"] == "direct"

    info = await call("kb_get_project_info", project_id=pid)
    assert info["document_count"] == 2 and "cache_stats" in info
    analytics = await call("kb_get_analytics", project_id=pid)
    assert analytics["project_name"] == "docs" and analytics["document_count"] == 2

    # Export in each format, import each back as a new project with the same documents.
    for n, fmt in enumerate(["zip", "json", "yaml"]):
        out = f"export{n}.{fmt}" if served else str(tmp_path / f"export{n}.{fmt}")
        exported = await call("kb_export_project", project_id=pid, output_path=out, format=fmt)
        assert exported["success"] and exported["document_count"] == 2, exported
        again = await call("kb_export_project", project_id=pid, output_path=out, format=fmt)
        assert again["error_type"] == "ValidationError"  # never overwritten
        imported = await call(
            "kb_import_project", file_path=exported["output_path"], project_name=f"copy-{fmt}"
        )
        assert imported["success"] and imported["document_count"] == 2, imported
        copy = await call("kb_search", project_id=imported["project_id"], query="bananas",
                          mode="keyword")
        assert "Bananas" in copy[0]["content"]
    projects = await call("kb_list_projects")
    assert {p["name"] for p in projects} == {"docs", "copy-zip", "copy-json", "copy-yaml"}

    # A YAML alias bomb is refused, not expanded.
    bomb = tmp_path / "bomb.yaml"
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 12):
        lines.append(f"{chr(97 + i)}: &{chr(97 + i)} [" + ",".join([f"*{chr(96 + i)}"] * 10) + "]")
    bomb.write_text("\n".join(lines) + "\n")
    if not served:
        refused = await call("kb_import_project", file_path=str(bomb))
        assert refused["error_type"] == "ImportError", refused

    deleted = await call("kb_delete_project", project_id=pid)
    assert deleted["success"]
    gone = await call("kb_get_project_info", project_id=pid)
    assert gone["error_type"] == "ProjectNotFound"

    # The pattern engine.
    sid = (await call("kato_create_session", node_id="mcp-node"))["session_id"]
    for strings in (["hello"], ["world"]):
        await call("kato_observe", session_id=sid, strings=strings)
    learned = await call("kato_learn", session_id=sid)
    assert learned["pattern_name"].startswith("PTRN|")
    await call("kato_observe", session_id=sid, strings=["hello"])
    await call("kato_observe", session_id=sid, strings=["world"])
    predicted = await call("kato_predictions", session_id=sid)
    assert predicted["predictions"][0]["name"] == learned["pattern_name"][5:]
    nosession = await call("kato_learn", session_id="no-such-session")
    assert nosession["error_type"] == "SessionNotFound"


def test_stdio_as_knowledgebeast_users_configure_it(tmp_path):
    async def main():
        params = StdioServerParameters(
            command=MNEME,
            args=["mcp-server", "--chroma-path", str(tmp_path / "chroma"), "--log-level", "INFO"],
            env={"MNEME_DATA_DIR": str(tmp_path / "data"), "PATH": os.environ["PATH"]},
        )
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await exercise(session, tmp_path, served=False)

    anyio.run(main)
    assert (tmp_path / "chroma" / "registry.redb").exists()


@pytest.fixture
def server(tmp_path):
    env = dict(os.environ, MNEME_DATA_DIR=str(tmp_path / "srv"), KB_API_KEY="secret-key")
    proc = subprocess.Popen(
        [MNEME, "serve", "--port", "0", "--no-ingest"], env=env,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        url = None
        deadline = time.time() + 60
        while time.time() < deadline and url is None:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                raise RuntimeError("mneme serve exited before listening")
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                url = match.group(1)
        assert url, "mneme serve did not say where it listens"
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_streamable_http_behind_the_api_key(server, tmp_path):
    # Without the key: refused before any MCP message is read.
    refused = httpx2.post(f"{server}/mcp", json={}, headers={"accept": "application/json, text/event-stream"})
    assert refused.status_code == 403

    async def main():
        async with httpx2.AsyncClient(headers={"X-API-Key": "secret-key"}, timeout=30) as http:
            async with streamable_http_client(f"{server}/mcp", http_client=http) as streams:
                read, write = streams[0], streams[1]
                async with ClientSession(read, write) as session:
                    await exercise(session, tmp_path, served=True)
                    # Over HTTP, files outside the knowledge dirs and exports are refused.
                    outside = value(await session.call_tool(
                        "kb_import_project", {"file_path": "/etc/passwd.json"}))
                    assert outside["error_type"] == "AccessDenied"

    anyio.run(main)
