"""The UI's one write: restoring a deleted run, only from the UI's own pages."""

from __future__ import annotations

from ui.demo import BASE_URL


def test_restore_run_only_from_this_ui(client, store, demo):
    rid = demo.runs["forest-b"]
    store.delete_run(rid)
    url = f"/api/runs/{rid}/restore"
    ours = {"X-Autolog-UI": "1", "Origin": BASE_URL}
    assert client.post(url).status_code == 403  # a plain form post from anywhere
    evil = client.post(url, headers={"X-Autolog-UI": "1", "Origin": "http://evil.example"})
    assert evil.status_code == 403 and evil.json()["error_code"] == "PERMISSION_DENIED"
    assert client.get(url).status_code == 405
    assert store.get_run(rid).info.lifecycle_stage == "deleted"
    listed = client.get("/api/runs", params={"deleted": "1"}).json()
    assert [r["run_id"] for r in listed["runs"]] == [rid] and listed["total"] == 1
    html = client.get(f"/experiments/{demo.experiment_id}?deleted=1").text
    assert f'<button type="button" class="restore plain" data-run="{rid}">Restore</button>' in html
    r = client.post(url, headers=ours)
    assert r.status_code == 200 and r.json() == {"run_id": rid, "lifecycle_stage": "active"}
    assert store.get_run(rid).info.lifecycle_stage == "active"
    again = client.post(url, headers=ours)
    assert again.status_code == 400
    assert again.json()["message"] == f"Run {rid} is active; there is nothing to restore."
    assert client.post(f"/api/runs/{'f' * 32}/restore", headers=ours).status_code == 404


def test_restore_behind_the_server_needs_a_write_user(store, demo):
    from starlette.testclient import TestClient

    from autolog.server.app import create_app
    from autolog.server.auth import Authenticator, hash_password

    store.add_user("ann", "write", hash_password("s3cret"))
    store.add_user("rob", "read", hash_password("pw"))
    rid = demo.runs["forest-b"]
    store.delete_run(rid)
    app = create_app(store, auth=Authenticator(store), host="127.0.0.1", port=5000)
    headers = {"X-Autolog-UI": "1"}
    with TestClient(app, base_url=BASE_URL) as c:
        url = f"/api/runs/{rid}/restore"
        r = c.post(url, headers=headers, auth=("rob", "pw"))
        assert (r.status_code, r.json()["error_code"]) == (403, "PERMISSION_DENIED")
        assert store.get_run(rid).info.lifecycle_stage == "deleted"
        assert c.post(url, headers=headers, auth=("ann", "s3cret")).status_code == 200
    assert store.get_run(rid).info.lifecycle_stage == "active"
