"""The download command against a local stand-in for GitHub's archive endpoint."""
import io
import tarfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from evaluate import main as evaluate_main
from sft_playbook.evaluate.download import DownloadError, download_problems
from sft_playbook.evaluate.verilogeval import load_problems

PROBLEMS = Path(__file__).parent / "fixtures" / "verilog_eval" / "problems"


def _archive(path: Path, root="verilog-eval-main", hostile=True):
    with tarfile.open(path, "w:gz") as tar:
        for f in sorted(PROBLEMS.iterdir()):
            tar.add(f, arcname=f"{root}/dataset_spec-to-rtl/{f.name}")
        info = tarfile.TarInfo(f"{root}/LICENSE")
        data = b"MIT License (stand-in)\n"
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo(f"{root}/scripts/sv-generate")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"xyz"))
        if hostile:
            for name in (f"{root}/dataset_spec-to-rtl/../../evil_prompt.txt", "/abs/Prob1_x_prompt.txt"):
                info = tarfile.TarInfo(name)
                info.size = 4
                tar.addfile(info, io.BytesIO(b"evil"))
            link = tarfile.TarInfo(f"{root}/dataset_spec-to-rtl/Prob777_link_prompt.txt")
            link.type = tarfile.SYMTYPE
            link.linkname = "/etc/passwd"
            tar.addfile(link)


@pytest.fixture()
def server(tmp_path):
    site = tmp_path / "site"
    (site / "NVlabs/verilog-eval/archive").mkdir(parents=True)
    _archive(site / "NVlabs/verilog-eval/archive/main.tar.gz")
    (site / "NVlabs/verilog-eval/archive/broken.tar.gz").write_bytes(b"not a tarball")
    handler = partial(SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a, **k: None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/NVlabs/verilog-eval/archive/{{ref}}.tar.gz"
    httpd.shutdown()


def test_download_installs_only_problem_files(server, tmp_path):
    dest = tmp_path / "data" / "verilogeval"
    target = download_problems(dest, url=server, ref="main")
    assert target == dest / "spec-to-rtl"
    names = sorted(p.name for p in target.iterdir())
    assert names == sorted([p.name for p in PROBLEMS.iterdir()] + ["LICENSE", "SOURCE.txt"])
    assert not (tmp_path / "evil_prompt.txt").exists() and not (dest / "evil_prompt.txt").exists()
    assert [p.id for p in load_problems(dest)] == ["Prob901_counter4", "Prob902_mux2"]
    assert "ref: main" in (target / "SOURCE.txt").read_text()
    assert [p.name for p in dest.iterdir()] == ["spec-to-rtl"]  # no temporary leftovers
    # a second download replaces the folder atomically
    assert download_problems(dest, url=server, ref="main") == target


def test_download_errors_are_clear(server, tmp_path):
    with pytest.raises(DownloadError, match="could not download .*nope.tar.gz"):
        download_problems(tmp_path, url=server, ref="nope")
    with pytest.raises(DownloadError, match="not a readable tar archive"):
        download_problems(tmp_path, url=server, ref="broken")
    assert not (tmp_path / "spec-to-rtl").exists()


def test_download_command(server, tmp_path, capsys):
    dest = tmp_path / "ve"
    rc = evaluate_main(["download", f"download.url={server}", f"download.dest={dest}"])
    assert rc == 0 and (dest / "spec-to-rtl" / "Prob902_mux2_test.sv").is_file()
    rc = evaluate_main(["references", f"verilogeval.problems_dir={dest}", f"out_dir={tmp_path / 'out'}"])
    assert rc == 0 and '"passed_problems": 2' in capsys.readouterr().out
