"""The Ising lowering: energies, block structure, files, fields, errors."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qnnc.compiler.diagnostics import QnncError
from qnnc.runtime.ising import IsingModel, from_weights, load_npz


def random_network(sizes, seed, with_bias=True):
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=(sizes[k], sizes[k - 1])) for k in range(1, len(sizes))]
    biases = [rng.normal(size=sizes[k]) if with_bias else None for k in range(1, len(sizes))]
    names = [f"l{k}" for k in range(len(sizes))]
    return weights, biases, names


def brute_force_energy(weights, biases, sizes, sigma, fields):
    """−Σ_k Σ_{j,i} W_k[j, i] σ^(k−1)_i σ^(k)_j − Σ b σ, written out spin by spin."""
    off = np.concatenate([[0], np.cumsum(sizes)])
    e = 0.0
    for k, W in enumerate(weights, start=1):
        for j in range(sizes[k]):
            for i in range(sizes[k - 1]):
                e -= W[j, i] * sigma[off[k - 1] + i] * sigma[off[k] + j]
        if fields and biases[k - 1] is not None:
            for j in range(sizes[k]):
                e -= biases[k - 1][j] * sigma[off[k] + j]
    return e


@settings(max_examples=25, deadline=None, derandomize=True)
@given(sizes=st.lists(st.integers(1, 4), min_size=2, max_size=4).filter(lambda s: sum(s) <= 10),
       seed=st.integers(0, 2**31 - 1), fields=st.booleans())
def test_energy_of_every_configuration_matches_brute_force(sizes, seed, fields):
    weights, biases, names = random_network(sizes, seed)
    model = IsingModel.from_weights(weights, names, biases, fields=fields)
    configs = np.array(list(itertools.product([-1.0, 1.0], repeat=sum(sizes))))
    batch = model.energy(configs)
    expected = np.array([brute_force_energy(weights, biases, sizes, s, fields) for s in configs])
    np.testing.assert_allclose(batch, expected, rtol=1e-12, atol=1e-12)
    # One configuration at a time gives the same numbers, and so does −½σᵀJσ − h·σ.
    J, h = model.dense(), model.fields()
    for s, e in zip(configs[:8], expected[:8]):
        assert model.energy(s) == pytest.approx(e, abs=1e-12)
        assert -0.5 * s @ J @ s - h @ s == pytest.approx(e, abs=1e-12)


def test_block_structure():
    sizes = [5, 4, 3, 2]
    weights, _, names = random_network(sizes, seed=1)
    model = from_weights(weights, names)
    J = model.dense()
    off = model.offsets
    assert J.shape == (14, 14) and model.n_spins == 14
    assert model.spins_per_layer == dict(zip(names, sizes))
    np.testing.assert_array_equal(J, J.T)
    for a in range(4):
        for b in range(4):
            block = J[off[a]:off[a + 1], off[b]:off[b + 1]]
            if b == a + 1:
                np.testing.assert_array_equal(block, weights[a].T)  # J^(k) = W_kᵀ, rows: layer k−1
            elif abs(a - b) != 1:
                assert not block.any()  # zero diagonal blocks, no skip connections
    np.testing.assert_array_equal(model.sparse().toarray(), J)
    assert len(model.blocks) == 3 and model.blocks[0].format == "csr"
    np.testing.assert_allclose(model.degree_vector(), (J * J).sum(axis=1), rtol=1e-13)
    norms = model.block_norms()
    assert list(norms) == ["l0->l1", "l1->l2", "l2->l3"]
    np.testing.assert_allclose(list(norms.values()), [np.linalg.norm(w) for w in weights], rtol=1e-13)
    np.testing.assert_allclose(model.gains(), [np.sum(w * w) / w.shape[0] for w in weights], rtol=1e-13)
    assert model.labels[0] == ("l0", 0) and model.labels[5] == ("l1", 0) and model.label(13) == ("l3", 1)
    assert len(model.labels) == 14


def test_gains_recover_the_initialisation_variance():
    rng = np.random.default_rng(0)
    sizes = [784, 512, 10]
    weights = [rng.normal(0, np.sqrt(2.0 / sizes[k - 1]), (sizes[k], sizes[k - 1])) for k in (1, 2)]
    model = from_weights(weights, ["in", "h", "out"])
    # C_k estimated from N_{k−1} N_k squares: relative error ~ sqrt(2 / (N_{k−1} N_k)).
    for c, k in zip(model.gains(), (1, 2)):
        assert c == pytest.approx(2.0, rel=5 * np.sqrt(2.0 / (sizes[k] * sizes[k - 1])))


@pytest.mark.parametrize("fields", [False, True])
def test_npz_round_trip(tmp_path, fields):
    weights, biases, names = random_network([6, 4, 3], seed=2)
    biases[1] = None  # a layer without bias: zero field
    model = from_weights(weights, names, biases, fields=fields, source="unit test")
    path = tmp_path / "sub" / "model.npz"
    model.to_npz(path)
    assert [p.name for p in path.parent.iterdir()] == ["model.npz"]  # no temporary left behind
    back = load_npz(path)
    assert back.layer_names == model.layer_names and back.layer_sizes == model.layer_sizes
    assert back.source == "unit test"
    np.testing.assert_array_equal(back.dense(), model.dense())
    assert back.has_fields == fields
    if fields:
        np.testing.assert_array_equal(back.h, model.h)
    with np.load(path, allow_pickle=False) as z:  # plain arrays only
        assert "format" in z.files
    json.dumps(back.to_json_dict(), allow_nan=False)


def test_fields_on_and_off():
    weights, biases, names = random_network([3, 4, 2], seed=3)
    off = from_weights(weights, names, biases)  # biases given, fields off by default
    assert off.h is None and not off.fields().any()
    on = from_weights(weights, names, [biases[0], None], fields=True)
    np.testing.assert_array_equal(on.h[:3], 0.0)  # the input layer has no bias
    np.testing.assert_array_equal(on.h[3:7], biases[0])
    np.testing.assert_array_equal(on.h[7:], 0.0)
    sigma = np.random.default_rng(0).choice([-1.0, 1.0], size=(16, 9))
    np.testing.assert_allclose(on.energy(sigma) - off.energy(sigma), -sigma @ on.h, atol=1e-12)
    # The bonds are the same either way.
    np.testing.assert_array_equal(on.dense(), off.dense())


def _code(excinfo) -> str:
    return excinfo.value.diagnostics[0].code


def test_bad_weights_are_diagnosed():
    weights, biases, names = random_network([4, 3, 2], seed=4)
    bad = [weights[0].copy(), weights[1]]
    bad[0][1, 2] = np.nan
    with pytest.raises(QnncError) as e:
        from_weights(bad, names)
    assert _code(e) == "Q0603" and "[1, 2]" in str(e.value)
    with pytest.raises(QnncError) as e:
        from_weights([weights[0], weights[1].T], names)  # transposed: shapes do not chain
    assert _code(e) == "Q0602"
    with pytest.raises(QnncError) as e:
        from_weights(weights, names[:2])
    assert _code(e) == "Q0601"
    with pytest.raises(QnncError) as e:
        from_weights([], ["in"])
    assert _code(e) == "Q0601"
    with pytest.raises(QnncError) as e:
        from_weights([weights[0][None]], names[:2])
    assert _code(e) == "Q0602"
    with pytest.raises(QnncError) as e:
        from_weights(weights, ["a", "a", "b"])
    assert _code(e) == "Q0606"
    with pytest.raises(QnncError) as e:
        from_weights(weights, names, fields=True)
    assert _code(e) == "Q0605"
    with pytest.raises(QnncError) as e:
        from_weights(weights, names, [biases[0][:2], None], fields=True)
    assert _code(e) == "Q0604"
    model = from_weights(weights, names)
    with pytest.raises(QnncError) as e:
        model.energy(np.ones(8))
    assert _code(e) == "Q0617"


def test_bad_files_are_diagnosed(tmp_path):
    with pytest.raises(QnncError) as e:
        load_npz(tmp_path / "missing.npz")
    assert _code(e) == "Q0615"
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file")
    with pytest.raises(QnncError) as e:
        load_npz(junk)
    assert _code(e) == "Q0615"
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.zeros(3))
    with pytest.raises(QnncError) as e:
        load_npz(foreign)
    assert _code(e) == "Q0615"
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, format=np.array("qnnc-ising"), version=np.array(1),
             layer_names=np.array([{"a": 1}], dtype=object))
    with pytest.raises(QnncError) as e:
        load_npz(pickled)
    assert _code(e) == "Q0615"


def test_npz_is_scipy_sparse_format(tmp_path):
    """`scipy.sparse.load_npz` reads the file as the symmetric coupling matrix J."""
    import scipy.sparse

    rng = np.random.default_rng(3)
    model = from_weights([rng.normal(size=(4, 6)), rng.normal(size=(3, 4))], ["x", "h", "y"])
    path = tmp_path / "j.npz"
    model.to_npz(path)
    j = scipy.sparse.load_npz(path)
    assert j.shape == (13, 13)
    assert np.array_equal(j.toarray(), model.dense())
    assert np.array_equal(load_npz(path).dense(), model.dense())
