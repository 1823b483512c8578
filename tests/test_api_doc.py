"""docs/api.md: every ```python block runs, in order, in one namespace, in a fresh folder
holding a copy of examples/ (the doc's examples are the API's tests)."""

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def test_api_doc_examples_run(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("qiskit_aer")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    code = blocks(ROOT / "docs" / "api.md")
    assert len(code) >= 7
    namespace: dict = {}
    for k, block in enumerate(code):
        exec(compile(block, f"docs/api.md[block {k}]", "exec"), namespace)
    out = capsys.readouterr().out
    assert "True ['h1', 'h2', 'h3', 'y']" in out  # a torch.nn.Module with the checkpoint names
    assert (tmp_path / "bundle-ibm" / "bundle.json").is_file()
    assert (tmp_path / "bundle-ibm" / "run_ibm.py").is_file()


def test_checkpoint_loads_with_load_state_dict(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    from qnnc.compiler import load_program
    from qnnc.runtime.checkpoint import save_checkpoint, checkpoint_path
    from qnnc.runtime.simulator import QNNModel

    program = load_program(str(ROOT / "examples" / "hardware.qnn"))
    trained = QNNModel(program, seed=5)
    save_checkpoint(tmp_path, 7, trained.tensors(), {"network": "hardware"},
                    {"optimizer/h1.momentum": torch.zeros(1), "rng/torch": torch.zeros(2, dtype=torch.uint8)})
    model = QNNModel(program, seed=0)
    result = model.load_state_dict(load_file(str(checkpoint_path(tmp_path, 7))))
    assert not result.missing_keys and not result.unexpected_keys
    for name, t in trained.tensors().items():
        assert torch.equal(model.state_dict()[name], t)
    assert list(model.state_dict()) == list(trained.tensors())
