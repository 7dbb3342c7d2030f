"""The HTTP API against a real ``semstyle serve`` process on loopback, with the tiny model."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from semstyle.io import DIGITAL_SOURCE_TYPE

from .helpers import assert_one_line_error, data_dir, run_cli

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(model, *extra) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "semstyle.cli", "serve", "--port", str(port), "--model",
                             str(model), *map(str, extra)], stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        assert proc.poll() is None, proc.stderr.read()
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        assert time.time() < deadline, "server did not come up"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def server(model):
    proc, url = start(model, "--workers", "1", "--queue", "1", "--max-upload-mb", "2")
    yield url
    proc.terminate()
    proc.wait(30)


def png_bytes(size=(80, 60), seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def photo_bytes() -> bytes:
    return (data_dir("content") / "chicago.jpg").read_bytes()


def test_health_metrics_schema_and_docs(server):
    assert httpx.get(server + "/healthz").json()["status"] == "ok"
    schema = httpx.get(server + "/openapi.json").json()
    assert "/v1/stylize" in schema["paths"] and "/v1/styles" in schema["paths"]
    docs = httpx.get(server + "/docs").text
    assert "/openapi.json" in docs and "http" not in docs.replace("http://", "").split("<script>")[1].split("fetch")[0]
    assert "semstyle_requests_total" in httpx.get(server + "/metrics").text


def test_gallery_lists_paintings_with_thumbnails(server):
    styles = httpx.get(server + "/v1/styles").json()
    starry = next(s for s in styles if s["id"] == "starry_night")
    assert starry["painter"] == "Vincent van Gogh" and "Public domain" in starry["licence"]
    thumb = httpx.get(server + starry["thumbnail"])
    assert thumb.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumb.content)).size) == 256


def test_stylize_with_a_gallery_style_and_with_an_upload(server):
    reply = httpx.post(server + "/v1/stylize", files={"content": ("photo.jpg", photo_bytes())},
                       data={"style_id": "starry_night", "size": "96", "strength": "0.8", "format": "webp"},
                       timeout=60)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "image/webp"
    image = Image.open(io.BytesIO(reply.content))
    assert image.size == (96, 64)
    assert DIGITAL_SOURCE_TYPE.encode() in reply.content  # provenance travels with the bytes
    reply = httpx.post(server + "/v1/stylize", files={"content": ("a.png", png_bytes()), "style": ("s.png",
                       png_bytes(seed=1))}, timeout=60)
    assert reply.status_code == 200 and Image.open(io.BytesIO(reply.content)).size == (80, 60)


def test_style_fit_changes_the_picture(server):
    """style_fit in the form: the painting's vector fitted to the model first (cached after)."""
    def stylize(steps: str) -> bytes:
        reply = httpx.post(server + "/v1/stylize", files={"content": ("photo.jpg", photo_bytes())},
                           data={"style_id": "the_scream", "size": "96", "style_size": "96", "style_fit": steps},
                           timeout=120)
        assert reply.status_code == 200, reply.text
        return Image.open(io.BytesIO(reply.content)).convert("RGB").tobytes()

    plain, fitted = stylize("0"), stylize("3")
    assert plain != fitted and stylize("3") == fitted


@pytest.mark.parametrize("files,data,status,needle", [
    ({"content": ("a.txt", b"plain text, not an image" * 20)}, {"style_id": "starry_night"}, 415, "not an image"),
    ({"content": ("a.png", png_bytes())}, {"style_id": "../../etc/passwd"}, 404, "no style"),
    ({"content": ("a.png", png_bytes())}, {"style_id": "starry_night", "strength": "2"}, 422,
     "strength must be between 0 and 1"),
    ({"content": ("a.png", png_bytes())}, {"style_id": "starry_night", "strength": "nan"}, 422, "strength"),
    ({"content": ("a.png", png_bytes())}, {"style_id": "starry_night", "colour_match": "3"}, 422,
     "colour_match must be between 0 and 1"),
    ({"content": ("a.png", png_bytes())}, {"style_id": "starry_night", "format": "gif"}, 422, "format"),
    ({"content": ("a.png", png_bytes())}, {"style_id": "starry_night", "style_fit": "-1"}, 422, "style_fit"),
    ({"content": ("a.png", png_bytes())}, {}, 422, "give one of style"),
    ({}, {"style_id": "starry_night"}, 422, "content"),
    ({"content": ("a.png", png_bytes((20, 20)))}, {"style_id": "starry_night"}, 400, "too small"),
])
def test_bad_requests_get_json_errors(server, files, data, status, needle):
    reply = httpx.post(server + "/v1/stylize", files=files or None, data=data, timeout=60)
    assert reply.status_code == status, reply.text
    assert needle in reply.json()["error"]


def test_oversized_upload_is_refused_before_reading_it(server):
    """A 3 MB body against a 2 MB limit: 413 from the headers alone."""
    big = b"\x00" * (3 * 1024 * 1024)
    reply = httpx.post(server + "/v1/stylize", files={"content": ("big.png", big)},
                       data={"style_id": "starry_night"}, timeout=60)
    assert reply.status_code == 413 and "limit of 2 MB" in reply.json()["error"]


def test_unknown_path_and_thumbnail_traversal(server):
    assert httpx.get(server + "/nothing").json()["error"].startswith("no such path")
    reply = httpx.get(server + "/v1/styles/..%2F..%2Fsecret/thumbnail")
    assert reply.status_code == 404 and "error" in reply.json()


def test_a_full_queue_answers_503_with_retry_after(server):
    """One worker and one queue place: of several simultaneous large jobs, some are refused at once."""
    import concurrent.futures

    def job(_):
        return httpx.post(server + "/v1/stylize", files={"content": ("photo.jpg", photo_bytes())},
                          data={"style_id": "the_scream", "size": "700"}, timeout=120)

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(job, range(6)))
    codes = sorted(r.status_code for r in replies)
    assert 200 in codes and 503 in codes, codes
    busy = next(r for r in replies if r.status_code == 503)
    assert busy.headers["retry-after"] == "2" and "busy" in busy.json()["error"]


def test_token_is_required_when_given(model):
    proc, url = start(model, "--token", "s3cret")
    try:
        assert httpx.get(url + "/v1/styles").status_code == 401
        assert httpx.get(url + "/v1/styles", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert httpx.get(url + "/healthz").status_code == 200
    finally:
        proc.terminate()
        proc.wait(30)


def test_listening_beyond_loopback_needs_a_token(capsys, model, monkeypatch):
    monkeypatch.delenv("SEMSTYLE_TOKEN", raising=False)
    code, _, err = run_cli(["serve", "--host", "0.0.0.0", "--model", model], capsys)
    assert_one_line_error(code, err, "--host 0.0.0.0 listens beyond this machine", "--token")


def test_gallery_names_work_on_the_command_line(model, photo, tmp_path, capsys):
    out = tmp_path / "o.png"
    code, _, err = run_cli(["stylize", photo, "--style", "the_scream", "-o", out, "--model", model], capsys)
    assert code == 0, err
    code, stdout, _ = run_cli(["styles"], capsys)
    assert code == 0 and "starry_night" in stdout and "Vincent van Gogh" in stdout
    assert len(stdout.splitlines()) == 26  # one line per shipped painting


def test_video_job_runs_reports_progress_and_returns_the_video(server, tmp_path):
    from .test_video import make_clip, probe

    clip = make_clip(tmp_path / "clip.mp4", size=(64, 48), frames=12, audio=True)
    reply = httpx.post(server + "/v1/videos", files={"video": ("clip.mp4", clip.read_bytes())},
                       data={"style_id": "starry_night"}, timeout=60)
    assert reply.status_code == 202, reply.text
    job = reply.json()
    assert reply.headers["location"] == f"/v1/jobs/{job['id']}"
    deadline = time.time() + 120
    while job["status"] in ("queued", "running"):
        assert time.time() < deadline
        time.sleep(0.3)
        job = httpx.get(server + f"/v1/jobs/{job['id']}").json()
    assert job["status"] == "done" and job["frames_done"] == 12 and job["progress"] == 1.0, job
    video = httpx.get(server + job["result"], timeout=60)
    assert video.headers["content-type"] == "video/mp4"
    (tmp_path / "out.mp4").write_bytes(video.content)
    assert probe(tmp_path / "out.mp4")["frames"] == 12 and probe(tmp_path / "out.mp4")["audio"] is not None
    assert httpx.delete(server + f"/v1/jobs/{job['id']}").json()["status"] == "deleted"
    assert httpx.get(server + f"/v1/jobs/{job['id']}").status_code == 404


def test_a_running_video_job_can_be_cancelled(server, tmp_path):
    from .test_video import make_clip

    clip = make_clip(tmp_path / "long.mp4", size=(96, 64), frames=300, audio=False)
    job = httpx.post(server + "/v1/videos", files={"video": ("long.mp4", clip.read_bytes())},
                     data={"style_id": "the_scream"}, timeout=60).json()
    deadline = time.time() + 60
    while httpx.get(server + f"/v1/jobs/{job['id']}").json()["frames_done"] < 2:
        assert time.time() < deadline
        time.sleep(0.2)
    assert httpx.delete(server + f"/v1/jobs/{job['id']}").json()["status"] == "cancelled"
    while httpx.get(server + f"/v1/jobs/{job['id']}").json()["status"] == "running":
        assert time.time() < deadline
        time.sleep(0.2)
    status = httpx.get(server + f"/v1/jobs/{job['id']}").json()
    assert status["status"] == "cancelled" and status["result"] is None
    assert httpx.get(server + f"/v1/jobs/{job['id']}/result").status_code == 409


def test_bad_video_uploads(server):
    reply = httpx.post(server + "/v1/videos", files={"video": ("x.mp4", b"not a video" * 50)},
                       data={"style_id": "starry_night"}, timeout=60)
    job = reply.json()
    deadline = time.time() + 30
    while job["status"] in ("queued", "running"):
        assert time.time() < deadline
        time.sleep(0.2)
        job = httpx.get(server + f"/v1/jobs/{job['id']}").json()
    assert job["status"] == "failed" and "not a video" in job["error"]
    assert httpx.post(server + "/v1/videos", files={"video": ("x.mp4", b"x")}, data={"style_id": "starry_night",
                      "format": "avi"}).status_code == 422
    assert httpx.get(server + "/v1/jobs/nope").status_code == 404


def test_label_maps_auto_regions_and_refine(server):
    sem = data_dir("semantic")
    files = {"content": ("c.jpg", (sem / "gogh_portrait_content.jpg").read_bytes()),
             "style": ("s.jpg", (sem / "gogh_portrait_style.jpg").read_bytes()),
             "content_labels": ("cl.png", (sem / "gogh_portrait_content_mask.png").read_bytes()),
             "style_labels": ("sl.png", (sem / "gogh_portrait_style_mask.png").read_bytes())}
    reply = httpx.post(server + "/v1/stylize", files=files, data={"size": "96", "style_size": "96", "refine": "2"},
                       timeout=120)
    assert reply.status_code == 200, reply.text
    assert Image.open(io.BytesIO(reply.content)).size == (66, 96)
    reply = httpx.post(server + "/v1/stylize", files={k: files[k] for k in ("content", "style")},
                       data={"size": "96", "style_size": "96", "auto_regions": "3"}, timeout=120)
    assert reply.status_code == 200, reply.text
    bad = httpx.post(server + "/v1/stylize", files={k: files[k] for k in ("content", "style", "content_labels")},
                     timeout=60)
    assert bad.status_code == 422 and "go together" in bad.json()["error"]
    bad = httpx.post(server + "/v1/stylize", files={k: files[k] for k in ("content", "style")},
                     data={"refine": "-3"}, timeout=60)
    assert bad.status_code == 422 and "refine must be" in bad.json()["error"]


def test_malformed_multipart_and_a_slow_client(server):
    reply = httpx.post(server + "/v1/stylize", content=b"--xyz\r\nnonsense without an end",
                       headers={"Content-Type": "multipart/form-data; boundary=xyz"}, timeout=30)
    assert reply.status_code in (400, 422) and "error" in reply.json()
    # a client that sends its headers and then nothing: the server goes on answering others
    with socket.create_connection(("127.0.0.1", int(server.rsplit(":", 1)[1]))) as slow:
        slow.sendall(b"POST /v1/stylize HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                     b"Content-Length: 100000\r\n\r\n--b\r\n")
        assert httpx.get(server + "/healthz", timeout=10).status_code == 200


def test_under_load_every_reply_is_a_200_or_a_503(model):
    """16 clients x 4 requests against 1 worker and a queue of 2 (benchmarks/load.py, scaled down):
    no reply lost, nothing but 200 and 503, and the server process stays bounded in memory."""
    from benchmarks.load import peak_memory_mib, run_load

    proc, url = start(model, "--workers", "1", "--queue", "2")
    try:
        results = run_load(url, png_bytes((96, 64)), clients=16, requests=4, size=96)
        memory = peak_memory_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
    codes = [code for code, _ in results]
    assert len(codes) == 64 and set(codes) <= {200, 503} and 200 in codes, codes
    assert memory < 1500, memory


def gogh_files() -> dict:
    sem = data_dir("semantic")
    return {"content": ("c.jpg", (sem / "gogh_portrait_content.jpg").read_bytes()),
            "style": ("s.jpg", (sem / "gogh_portrait_style.jpg").read_bytes()),
            "content_labels": ("cl.png", (sem / "gogh_portrait_content_mask.png").read_bytes()),
            "style_labels": ("sl.png", (sem / "gogh_portrait_style_mask.png").read_bytes())}


def wait_for_job(server, job, seen=None, timeout=180):
    deadline = time.time() + timeout
    while job["status"] in ("queued", "running"):
        assert time.time() < deadline, job
        time.sleep(0.05)
        job = httpx.get(server + f"/v1/jobs/{job['id']}").json()
        if seen is not None:
            seen.append(job)
    return job


def test_a_refine_job_reports_its_steps_and_returns_the_image(server):
    """POST /v1/stylize/jobs: the stylize form as a job; its progress is refinement's steps, rising to done."""
    reply = httpx.post(server + "/v1/stylize/jobs", files=gogh_files(),
                       data={"size": "128", "style_size": "96", "refine": "20", "format": "jpeg"}, timeout=60)
    assert reply.status_code == 202, reply.text
    job = reply.json()
    assert reply.headers["location"] == f"/v1/jobs/{job['id']}" and job["kind"] == "image"
    seen: list[dict] = []
    job = wait_for_job(server, job, seen)
    assert job["status"] == "done" and job["steps_done"] == job["steps_total"] == 20 and job["progress"] == 1.0, job
    progress = [s["progress"] for s in seen]
    assert progress == sorted(progress), progress                 # never goes back
    assert any(0 < p < 1 for p in progress), progress             # reported step by step, not just at the end
    assert {s["steps_total"] for s in seen} <= {0, 20}
    image = httpx.get(server + job["result"], timeout=60)
    assert image.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(image.content)).size == (88, 128)
    assert DIGITAL_SOURCE_TYPE.encode() in image.content
    assert httpx.delete(server + f"/v1/jobs/{job['id']}").json()["status"] == "deleted"


def test_image_jobs_check_the_form_first_and_can_be_cancelled(server):
    files = gogh_files()
    bad = httpx.post(server + "/v1/stylize/jobs", files={k: files[k] for k in ("content", "style")},
                     data={"refine": "-3"}, timeout=60)
    assert bad.status_code == 422 and "refine must be" in bad.json()["error"]
    bad = httpx.post(server + "/v1/stylize/jobs", files={"content": ("a.txt", b"not an image" * 30)},
                     data={"style_id": "starry_night"}, timeout=60)
    assert bad.status_code == 415
    job = httpx.post(server + "/v1/stylize/jobs", files=files, data={"size": "96", "style_size": "96",
                     "refine": "5000"}, timeout=60).json()
    deadline = time.time() + 120
    while httpx.get(server + f"/v1/jobs/{job['id']}").json()["steps_done"] < 1:
        assert time.time() < deadline
        time.sleep(0.1)
    assert httpx.delete(server + f"/v1/jobs/{job['id']}").json()["status"] == "cancelled"
    job = wait_for_job(server, httpx.get(server + f"/v1/jobs/{job['id']}").json(), timeout=60)
    assert job["status"] == "cancelled" and job["result"] is None and job["steps_done"] < 5000


# -- the live WebSocket ------------------------------------------------------------------------------

def carphone_jpegs(count: int) -> list[tuple[np.ndarray, bytes]]:
    from semstyle.video.container import VideoReader

    frames = []
    with VideoReader(data_dir("video") / "carphone.mp4") as reader:
        for _, frame in zip(range(count), reader):
            buffer = io.BytesIO()
            Image.fromarray(frame.rgb).save(buffer, format="JPEG", quality=90)
            frames.append((frame.rgb, buffer.getvalue()))
    return frames


def live_socket(server, first: dict | str | bytes | None = None, **options):
    import websocket

    ws = websocket.create_connection(server.replace("http://", "ws://") + "/v1/live", timeout=60, **options)
    if isinstance(first, bytes):
        ws.send_binary(first)
    elif first is not None:
        ws.send(first if isinstance(first, str) else json.dumps(first))
    return ws


def closed_with_error(ws) -> tuple[str, int]:
    """The JSON error message the server sends, then its close code."""
    import websocket

    message = json.loads(ws.recv())
    opcode, data = ws.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    ws.close()
    return message["error"], int.from_bytes(data[:2], "big")


def test_live_websocket_stylizes_each_frame(server):
    ws = live_socket(server, {"style_id": "starry_night", "strength": 1.0, "size": 128})
    try:
        assert json.loads(ws.recv()) == {"ready": True, "style_id": "starry_night", "size": 128}
        for rgb, data in carphone_jpegs(4):
            ws.send_binary(data)
            reply = ws.recv()
            assert isinstance(reply, bytes)
            image = Image.open(io.BytesIO(reply))
            assert image.format == "JPEG" and image.size == (128, 105)
            small = np.asarray(Image.fromarray(rgb).resize(image.size, Image.LANCZOS)).astype(int)
            assert np.abs(np.asarray(image.convert("RGB")).astype(int) - small).mean() > 20   # stylized
    finally:
        ws.close()


def test_live_drops_frames_it_cannot_keep_up_with(server):
    """Twenty frames at once: only the newest waiting frame is stylized each time, so fewer come back,
    promptly, and the session goes on answering."""
    import websocket

    ws = live_socket(server, {"style_id": "the_scream", "size": 176})
    try:
        assert json.loads(ws.recv())["ready"]
        frames = carphone_jpegs(20)
        for _, data in frames:
            ws.send_binary(data)
        replies = []
        ws.settimeout(3)
        with contextlib.suppress(websocket.WebSocketTimeoutException):
            while True:
                replies.append(ws.recv())
        assert 1 <= len(replies) < 20, len(replies)
        assert all(Image.open(io.BytesIO(r)).size == (176, 144) for r in replies)
        ws.settimeout(60)
        ws.send_binary(frames[0][1])
        assert Image.open(io.BytesIO(ws.recv())).size == (176, 144)
    finally:
        ws.close()


@pytest.mark.parametrize("first,needle", [
    (b"\xff\xd8 a frame before the settings", "first message must be JSON text"),
    ("{not json", "not JSON"),
    ("[1, 2]", "JSON object"),
    ({"style_id": "../../etc/passwd"}, "no style"),
    ({"style_id": "starry_night", "strength": 2}, "strength must be between 0 and 1"),
    ({"style_id": "starry_night", "strength": "strong"}, "strength must be a number"),
    ({"style_id": "starry_night", "size": 100000}, "size must be a whole number"),
    ({"style_id": "starry_night", "colour": True}, "unknown field 'colour'"),
])
def test_live_bad_first_message_is_a_json_error_then_close(server, first, needle):
    message, code = closed_with_error(live_socket(server, first))
    assert needle in message and code == 1008


def test_live_bad_frames_and_cross_origin(server):
    ws = live_socket(server, {"style_id": "starry_night", "size": 96})
    assert json.loads(ws.recv())["ready"]
    ws.send_binary(b"this is not a JPEG" * 10)
    message, code = closed_with_error(ws)
    assert "bad frame" in message and "not an image" in message and code == 1003
    ws = live_socket(server, {"style_id": "starry_night", "size": 96})
    assert json.loads(ws.recv())["ready"]
    ws.send("more settings")
    message, code = closed_with_error(ws)
    assert "binary" in message and code == 1003
    ws = live_socket(server, {"style_id": "starry_night", "size": 96})
    assert json.loads(ws.recv())["ready"]
    ws.send_binary(b"\x00" * (3 * 1024 * 1024))   # over the server's 2 MB upload limit
    message, code = closed_with_error(ws)
    assert "over the limit" in message and code == 1009
    message, code = closed_with_error(live_socket(server, {"style_id": "starry_night"},
                                                  origin="http://elsewhere.example"))
    assert "cross-origin" in message and code == 1008


def test_live_sessions_hold_a_worker_slot(server):
    """One worker and one queue place: two sessions fit, a third is refused as busy; closing frees them."""
    first = live_socket(server, {"style_id": "starry_night", "size": 96})
    second = live_socket(server, {"style_id": "starry_night", "size": 96})
    try:
        assert json.loads(first.recv())["ready"] and json.loads(second.recv())["ready"]
        assert "semstyle_live_sessions 2" in httpx.get(server + "/metrics").text
        message, code = closed_with_error(live_socket(server, {"style_id": "starry_night"}))
        assert message.startswith("busy") and code == 1013
        assert httpx.post(server + "/v1/stylize", files={"content": ("a.png", png_bytes())},
                          data={"style_id": "starry_night"}, timeout=60).status_code == 503
    finally:
        first.close()
        second.close()
    deadline = time.time() + 30
    while "semstyle_jobs_in_progress 0" not in httpx.get(server + "/metrics").text:
        assert time.time() < deadline, "the live sessions kept their slots"
        time.sleep(0.2)
    assert httpx.post(server + "/v1/stylize", files={"content": ("a.png", png_bytes())},
                      data={"style_id": "starry_night"}, timeout=60).status_code == 200
