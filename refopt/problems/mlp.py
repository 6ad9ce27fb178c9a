"""A fully connected ReLU network with softmax cross-entropy, in NumPy.

The network has four linear layers (three hidden ReLU layers):

.. math::

    h_0 = x,\\quad h_l = \\operatorname{relu}(h_{l-1} W_l^\\top + b_l)\\ (l = 1, 2, 3),
    \\quad z = h_3 W_4^\\top + b_4,

and the loss is the mean softmax cross-entropy
:math:`\\frac1B \\sum_k [\\log\\sum_c e^{z_{kc}} - z_{k y_k}]`. Parameters are a dict of
arrays, ``"W1".."W4"`` (2-D, shape ``(fan_out, fan_in)`` as in PyTorch's ``Linear``)
and ``"b1".."b4"`` (1-D), so a combined optimizer can send 2-D weights to Muon and
1-D biases to Adam. Computations run in the parameters' dtype (float64 or float32).
"""

from __future__ import annotations

import numpy as np

__all__ = ["MLP"]


class MLP:
    """A 4-layer ReLU perceptron with softmax cross-entropy loss.

    :meth:`loss_and_grad` is the backward pass, :meth:`evaluate` the loss and accuracy,
    :meth:`forward` the logits.

    Parameters
    ----------
    sizes : sequence of int
        Five layer widths ``(inputs, hidden1, hidden2, hidden3, classes)``.

    Raises
    ------
    ValueError
        If ``sizes`` does not hold five positive integers or has fewer than two classes.

    Notes
    -----
    Backward pass for a batch of :math:`B` rows, with :math:`p = \\operatorname{softmax}(z)`
    and one-hot :math:`Y`: :math:`\\delta_4 = (p - Y)/B`; for each layer
    :math:`\\partial W_l = \\delta_l^\\top h_{l-1}`, :math:`\\partial b_l = \\mathbf{1}^\\top
    \\delta_l`, :math:`\\delta_{l-1} = (\\delta_l W_l) \\odot [h_{l-1} > 0]`.
    The paper's exact widths are unknown; refopt's defaults are set by the studies.

    Provenance: refopt.
    """

    n_layers = 4

    def __init__(self, sizes: tuple[int, ...]) -> None:
        sizes = tuple(sizes)
        if len(sizes) != self.n_layers + 1 or not all(
            isinstance(s, int | np.integer) and s >= 1 for s in sizes
        ):
            raise ValueError(f"sizes must be {self.n_layers + 1} positive integers, got {sizes!r}")
        if sizes[-1] < 2:
            raise ValueError(f"the last size (classes) must be >= 2, got {sizes[-1]}")
        self.sizes = tuple(int(s) for s in sizes)

    def init(self, rng: np.random.Generator, dtype: type = np.float64) -> dict[str, np.ndarray]:
        """Draw initial parameters (He-normal weights, zero biases).

        Parameters
        ----------
        rng : numpy.random.Generator
            The source of the weights (drawn layer by layer, C order).
        dtype : numpy dtype, default numpy.float64
            The parameters' floating dtype.

        Returns
        -------
        dict of str to numpy.ndarray
            ``W1..W4`` with entries :math:`\\mathcal{N}(0, 2/\\text{fan\\_in})`; ``b1..b4``
            zeros.

        Raises
        ------
        TypeError
            If ``rng`` is not a :class:`numpy.random.Generator`.
        """
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        params: dict[str, np.ndarray] = {}
        for layer in range(1, self.n_layers + 1):
            fan_in, fan_out = self.sizes[layer - 1], self.sizes[layer]
            w = rng.standard_normal((fan_out, fan_in)) * np.sqrt(2.0 / fan_in)
            params[f"W{layer}"] = w.astype(dtype)
            params[f"b{layer}"] = np.zeros(fan_out, dtype=dtype)
        return params

    def _check(self, params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.sizes[0]:
            raise ValueError(f"x must have shape (batch, {self.sizes[0]}), got {x.shape}")
        return x.astype(params["W1"].dtype, copy=False)

    def _activations(self, params: dict[str, np.ndarray], x: np.ndarray) -> list[np.ndarray]:
        hs = [self._check(params, x)]
        for layer in range(1, self.n_layers + 1):
            z = hs[-1] @ params[f"W{layer}"].T + params[f"b{layer}"]
            hs.append(np.maximum(z, 0) if layer < self.n_layers else z)
        return hs

    def forward(self, params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
        """Return the logits for a batch.

        Parameters
        ----------
        params : dict of str to numpy.ndarray
            As returned by :meth:`init`.
        x : numpy.ndarray
            Inputs of shape ``(batch, sizes[0])``.

        Returns
        -------
        numpy.ndarray
            Logits of shape ``(batch, sizes[-1])``.
        """
        return self._activations(params, x)[-1]

    @staticmethod
    def _log_softmax(z: np.ndarray) -> np.ndarray:
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    def _labels(self, y: np.ndarray, batch: int) -> np.ndarray:
        y = np.asarray(y)
        if y.shape != (batch,) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"y must be {batch} integer labels, got shape {y.shape} {y.dtype}")
        if y.size and (y.min() < 0 or y.max() >= self.sizes[-1]):
            raise ValueError(f"labels must lie in [0, {self.sizes[-1]})")
        return y

    def loss_and_grad(
        self, params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray
    ) -> tuple[float, dict[str, np.ndarray]]:
        """Return the loss and its gradient with respect to every parameter.

        Parameters
        ----------
        params : dict of str to numpy.ndarray
            The parameters, as returned by :meth:`init`.
        x : numpy.ndarray
            Inputs ``(batch, sizes[0])`` (cast to the parameters' dtype).
        y : numpy.ndarray
            Integer labels ``(batch,)`` in ``[0, classes)``.

        Returns
        -------
        loss : float
            The mean cross-entropy.
        grads : dict of str to numpy.ndarray
            Gradients with the same keys, shapes and dtype as ``params``.
        """
        hs = self._activations(params, x)
        batch = hs[0].shape[0]
        y = self._labels(y, batch)
        logp = self._log_softmax(hs[-1])
        loss = float(-logp[np.arange(batch), y].mean())
        delta = np.exp(logp)
        delta[np.arange(batch), y] -= 1
        delta /= batch
        grads: dict[str, np.ndarray] = {}
        for layer in range(self.n_layers, 0, -1):
            grads[f"W{layer}"] = delta.T @ hs[layer - 1]
            grads[f"b{layer}"] = delta.sum(axis=0)
            if layer > 1:
                delta = (delta @ params[f"W{layer}"]) * (hs[layer - 1] > 0)
        return loss, {k: grads[k] for k in params}

    def evaluate(self, params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Return the loss and the accuracy on a batch (one forward pass).

        Parameters
        ----------
        params, x, y
            As in :meth:`loss_and_grad`.

        Returns
        -------
        loss : float
            The mean softmax cross-entropy (the value :meth:`loss_and_grad` returns).
        accuracy : float
            The fraction of rows whose largest logit is the label, in ``[0, 1]``.
        """
        z = self.forward(params, x)
        y = self._labels(y, z.shape[0])
        loss = float(-self._log_softmax(z)[np.arange(len(y)), y].mean())
        return loss, float(np.mean(z.argmax(axis=1) == y))

    def __repr__(self) -> str:
        return f"MLP(sizes={self.sizes})"
