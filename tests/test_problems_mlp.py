"""The 4-layer MLP: gradients vs finite differences and torch autograd; accuracy."""

import numpy as np
import pytest

from refopt.problems import MLP

SIZES = (7, 6, 5, 4, 3)


def setup(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    net = MLP(SIZES)
    params = net.init(rng, dtype=dtype)
    for k in params:  # non-zero biases so every gradient path is exercised
        if k.startswith("b"):
            params[k] = (0.1 * rng.standard_normal(params[k].shape)).astype(dtype)
    x = rng.standard_normal((9, SIZES[0]))
    y = rng.integers(0, SIZES[-1], 9)
    return net, params, x, y


def test_param_layout_for_muon_plus_adam():
    net, params, _, _ = setup()
    assert sorted(params) == ["W1", "W2", "W3", "W4", "b1", "b2", "b3", "b4"]
    for layer in range(1, 5):
        assert params[f"W{layer}"].shape == (SIZES[layer], SIZES[layer - 1])
        assert params[f"b{layer}"].shape == (SIZES[layer],)


def test_gradient_matches_central_differences():
    net, params, x, y = setup()
    loss, grads = net.loss_and_grad(params, x, y)
    assert loss == pytest.approx(net.evaluate(params, x, y)[0], rel=1e-15)
    h = 1e-6
    for k, p in params.items():
        fd = np.empty_like(p)
        for idx in np.ndindex(p.shape):
            plus = {**params, k: p.copy()}
            minus = {**params, k: p.copy()}
            plus[k][idx] += h
            minus[k][idx] -= h
            fd[idx] = (net.evaluate(plus, x, y)[0] - net.evaluate(minus, x, y)[0]) / (2 * h)
        np.testing.assert_allclose(grads[k], fd, rtol=1e-5, atol=1e-8, err_msg=k)


def test_matches_torch():
    torch = pytest.importorskip("torch")
    net, params, x, y = setup(seed=1)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    h = torch.tensor(x)
    for layer in range(1, 5):
        h = torch.nn.functional.linear(h, tp[f"W{layer}"], tp[f"b{layer}"])
        if layer < 4:
            h = torch.relu(h)
    loss = torch.nn.functional.cross_entropy(h, torch.tensor(y))
    loss.backward()
    ours, grads = net.loss_and_grad(params, x, y)
    assert ours == pytest.approx(loss.item(), rel=1e-13)
    np.testing.assert_allclose(net.forward(params, x), h.detach().numpy(), rtol=1e-13)
    for k in params:
        np.testing.assert_allclose(grads[k], tp[k].grad.numpy(), rtol=1e-11, atol=1e-15)


def test_float32_stays_float32_and_accuracy():
    net, params, x, y = setup(dtype=np.float32)
    loss, grads = net.loss_and_grad(params, x, y)
    assert all(g.dtype == np.float32 for g in grads.values())
    logits = net.forward(params, x)
    acc = net.evaluate(params, x, y)[1]
    assert acc == np.mean(np.argmax(logits, 1) == y)
    assert 0 <= acc <= 1


def test_loss_of_uniform_logits_is_log_classes():
    net, params, x, y = setup()
    params = {k: np.zeros_like(v) for k, v in params.items()}
    assert net.evaluate(params, x, y) == (pytest.approx(np.log(SIZES[-1])), pytest.approx(np.mean(y == 0)))


def test_inputs_not_mutated():
    net, params, x, y = setup()
    before = {k: v.copy() for k, v in params.items()}
    net.loss_and_grad(params, x, y)
    assert all(np.array_equal(before[k], params[k]) for k in params)


def test_bad_inputs():
    with pytest.raises(ValueError, match="sizes"):
        MLP((3, 4, 5))
    with pytest.raises(ValueError, match="classes"):
        MLP((3, 4, 4, 4, 1))
    net, params, x, y = setup()
    with pytest.raises(ValueError, match="x must"):
        net.evaluate(params, x[:, :3], y)
    with pytest.raises(ValueError, match="labels"):
        net.evaluate(params, x, y + 10)
    with pytest.raises(ValueError, match="y must"):
        net.evaluate(params, x, y[:3])
    with pytest.raises(TypeError, match="Generator"):
        net.init(0)
