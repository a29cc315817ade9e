"""KATOClient in process and over HTTP against `mneme serve`: the same answers."""

import subprocess
import sys

import pytest

from mneme import KATOClient, KATOError

VOLATILE = {"session_id", "unique_id", "created_at", "expires_at", "ttl_seconds", "time_ms", "message"}


def scrub(value):
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def script(client):
    """A session's life, recording every answer."""
    out = []
    out.append(client.observe(["hello", "world"], emotives={"joy": 0.5}))
    out.append(client.observe(["b"]))
    out.append(client.observe(["c"], metadata={"k": "v"}))
    learned = client.learn()
    out.append(learned)
    out.append(client.get_pattern(learned["pattern_name"]))
    out.append(client.observe_sequence([{"strings": ["hello"]}, {"strings": ["b"]}]))
    out.append(client.get_stm())
    out.append(client.get_predictions_full())
    out.append(client.update_session_config({"recall_threshold": 0.3, "max_predictions": 5}))
    out.append(client.get_session_config())
    out.append(client.get_predictions())
    out.append(client.get_symbol_stats())
    out.append(client.clear_stm())
    out.append(client.get_stm())
    return out


def test_in_process_matches_server(tmp_path, server):
    with KATOClient(data_dir=str(tmp_path / "local"), node_id="py_test") as local:
        here = script(local)
    with KATOClient(base_url=server, node_id="py_test") as remote:
        there = script(remote)
    assert scrub(here) == scrub(there)
    assert here[3]["pattern_name"].startswith("PTRN|")
    assert here[7]["count"] >= 1


def test_errors(tmp_path):
    with KATOClient(data_dir=str(tmp_path / "d"), node_id="errs") as client:
        with pytest.raises(KATOError) as err:
            client.learn()
        assert err.value.status == 400 and err.value.detail == "Cannot learn from empty STM"
        with pytest.raises(KATOError) as err:
            client.update_session_config({"recall_threshold": 7})
        assert err.value.status == 400
        with pytest.raises(ValueError):
            client.set_recall_threshold(float("nan"))
        with pytest.raises(TypeError):
            client.observe("not a list")
        # The session survived every bad request.
        client.observe(["a"])
        assert client.get_stm() == [["a"]]
    with pytest.raises(ValueError):
        KATOClient(node_id="")


def test_patterns_persist_in_the_data_directory(tmp_path):
    data = str(tmp_path / "persist")
    with KATOClient(data_dir=data, node_id="keep") as client:
        client.observe(["x"])
        client.observe(["y"])
        name = client.learn()["pattern_name"]
    # Another process opens the same store once this one lets it go.
    import mneme.client

    del client
    mneme.client._engines.clear()
    code = (
        "import sys; from mneme import KATOClient;"
        "c = KATOClient(data_dir=sys.argv[1], node_id='keep');"
        "print(c.get_pattern(sys.argv[2])['pattern']['pattern_data'])"
    )
    out = subprocess.run([sys.executable, "-c", code, data, name], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[['x'], ['y']]"
