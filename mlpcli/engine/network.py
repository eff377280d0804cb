"""The multilayer perceptron: Dense -> [BatchNorm] -> activation -> [Dropout] per hidden layer,
then a Dense output layer with raw outputs (logits for classification).

All parameters live in one flat buffer per network and all gradients in another; each layer's
``W``, ``b``, ``gamma`` and ``beta`` are views into them. The weights come first in the buffer,
so ``flat_params[:n_weight_entries]`` is every Dense weight (what L1/L2 penalties and decoupled
weight decay act on) and the rest is biases and BatchNorm parameters. An optimizer can therefore
update the whole network with a handful of in-place array operations.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np

from . import activations as act
from .layers import Activation, BatchNorm, Dense, Dropout, Layer
from .workspace import Workspace

__all__ = ["MLP", "is_weight_key", "state_shapes"]

# Activations whose gradient does not vanish for positive inputs get He initialisation.
_HE_ACTIVATIONS = {"relu", "leaky_relu", "elu", "gelu", "softplus"}


def state_shapes(n_inputs: int, hidden, n_outputs: int, batchnorm: bool = False) -> dict[str, tuple[int, ...]]:
    """The names and shapes of ``MLP.get_state()`` for this architecture, computed without building the
    network: a model file's stored arrays are checked against them before anything of that size is
    allocated."""
    widths = [int(n_inputs), *(int(h) for h in hidden)]
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        shapes[f"dense{i}.W"], shapes[f"dense{i}.b"] = (n_out, n_in), (n_out,)
        if batchnorm:
            for name in ("gamma", "beta", "running_mean", "running_var"):
                shapes[f"batchnorm{i}.{name}"] = (n_out,)
    shapes[f"dense{len(widths) - 1}.W"], shapes[f"dense{len(widths) - 1}.b"] = (int(n_outputs), widths[-1]), (int(n_outputs),)
    return shapes


def is_weight_key(key: str) -> bool:
    """True for Dense weights (``dense0.W``, or ``W`` for the flat group of all weights)."""
    return key == "W" or key.endswith(".W")


class MLP:
    """A multilayer perceptron with raw outputs.

    Parameters
    ----------
    n_inputs, hidden, n_outputs : layer widths; ``hidden`` may be empty (a linear model).
    activation : hidden activation name (see ``activations.names()``); ``activation_params`` its
        parameters, e.g. ``{"alpha": 0.1}`` for leaky_relu.
    dropout : inverted-dropout rate after each hidden activation (0 switches it off).
    batchnorm : BatchNorm between each hidden Dense and its activation.
    seed : seeds the initial weights and the dropout masks (separate streams).
    dtype : "float64" (for checking) or "float32" (for speed).
    """

    def __init__(
        self,
        n_inputs: int,
        hidden,
        n_outputs: int,
        activation: str = "relu",
        dropout: float = 0.0,
        batchnorm: bool = False,
        seed: int = 0,
        dtype: str = "float64",
        activation_params: dict | None = None,
    ):
        hidden = [int(h) for h in (hidden or [])]
        if n_inputs < 1 or n_outputs < 1 or any(h < 1 for h in hidden):
            raise ValueError(f"layer widths must be >= 1, got inputs={n_inputs}, hidden={hidden}, outputs={n_outputs}")
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
        act.get(activation, **(activation_params or {}))  # validate early, with the library's message
        self.n_inputs, self.hidden, self.n_outputs = int(n_inputs), hidden, int(n_outputs)
        self.activation, self.activation_params = activation, dict(activation_params or {})
        self.dropout, self.batchnorm, self.seed = float(dropout), bool(batchnorm), int(seed)
        if not 0 <= self.dropout < 1:  # NaN too; the Dropout layer (built only for a rate > 0) checks the rest
            raise ValueError(f"dropout rate must be in [0, 1), got {dropout}")
        self.dtype = np.dtype(dtype)

        init_seq, dropout_seq = np.random.SeedSequence(self.seed).spawn(2)
        self._dropout_rng = np.random.default_rng(dropout_seq)
        self.layers: list[Layer] = []
        self._named: list[tuple[str, Layer]] = []  # layers that own parameters, with their prefix
        init = "he" if activation in _HE_ACTIVATIONS else "glorot"
        widths = [self.n_inputs, *hidden]
        for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
            dense = Dense(n_in, n_out, init=init)
            self._add(dense, f"dense{i}")
            if self.batchnorm:
                self._add(BatchNorm(n_out, dtype=self.dtype), f"batchnorm{i}")
            self.layers.append(Activation(activation, **self.activation_params))
            if self.dropout > 0:
                self.layers.append(Dropout(self.dropout, self._dropout_rng))
        self._add(Dense(widths[-1], self.n_outputs, init="glorot"), f"dense{len(hidden)}")
        self._allocate()
        rng = np.random.default_rng(init_seq)
        for layer in self.layers:
            layer.init_params(rng)  # always drawn in float64, so float32 and float64 nets start alike
        self.grad_input: np.ndarray | None = None
        self.workspace = Workspace()  # the training loop's minibatch buffer

    def _add(self, layer: Layer, prefix: str) -> None:
        self.layers.append(layer)
        self._named.append((prefix, layer))

    def _allocate(self) -> None:
        """One flat buffer for parameters, one for gradients; weights first."""
        self._plan_layout()
        self.flat_params = np.zeros(max((b for *_, b, _ in self._layout), default=0), dtype=self.dtype)
        self._bind_params()
        self._bind_grads()

    def _plan_layout(self) -> None:
        """``_layout``: (layer index in _named, name, first entry, end, shape) of each parameter in the flat
        buffers, every weight matrix first; and ``n_weight_entries``."""
        entries = [(i, name, shape) for i, (_, layer) in enumerate(self._named) for name, shape in layer.param_shapes().items()]
        start, pos = {}, 0
        for i, name, shape in [e for e in entries if e[1] == "W"] + [e for e in entries if e[1] != "W"]:
            start[(i, name)] = pos
            pos += int(np.prod(shape))
        # in layer order (``parameters()``'s), each at its place in the buffers
        self._layout = [(i, name, start[(i, name)], start[(i, name)] + int(np.prod(shape)), shape) for i, name, shape in entries]
        self.n_weight_entries = sum(b - a for _, name, a, b, _ in self._layout if name == "W")

    def _bind_params(self) -> None:
        """Each layer's parameters as views of ``flat_params``, per ``_layout``."""
        self._params: dict[str, np.ndarray] = {}
        self._flat_ranges: dict[int, dict[str, tuple[int, int]]] = {}  # id(layer) -> name -> its flat range
        views: dict[int, dict[str, np.ndarray]] = {i: {} for i in range(len(self._named))}
        for i, name, a, b, shape in self._layout:
            prefix, layer = self._named[i]
            views[i][name] = self._params[f"{prefix}.{name}"] = self.flat_params[a:b].reshape(shape)
            self._flat_ranges.setdefault(id(layer), {})[name] = (a, b)
        for i, (_, layer) in enumerate(self._named):
            layer.bind(views[i], {})

    def __setstate__(self, state: dict) -> None:
        """A copy or unpickled network: pickling (and deepcopy) copies each array on its own, so the layers'
        parameters are made views of ``flat_params`` again (they held the same values) and the gradients get
        their buffer again. A shallow copy shares the layers and buffers, which stay as they are. A network
        pickled before the layout was kept (its ``flat_grads`` an attribute) gets one planned."""
        state = dict(state)
        if "flat_grads" in state:  # pickled before flat_grads became a property
            state["_flat_grads"] = state.pop("flat_grads")
        self.__dict__.update(state)
        if "_layout" not in state:
            self._plan_layout()
        if not self._layout:
            return
        i, name = self._layout[0][:2]
        layer = self._named[i][1]
        if not np.shares_memory(layer.params[name], self.flat_params):
            self._bind_params()
        if self._flat_grads is not None and not (name in layer.grads and np.shares_memory(layer.grads[name], self._flat_grads)):
            self._bind_grads()

    def _bind_grads(self) -> None:
        """The gradient buffer (zeros) and each layer's views of it, laid out as the parameters."""
        self._flat_grads = np.zeros(self.flat_params.size, dtype=self.dtype)
        self._grads: dict[str, np.ndarray] = {}
        views: dict[int, dict[str, np.ndarray]] = {i: {} for i in range(len(self._named))}
        for i, name, a, b, shape in self._layout:
            views[i][name] = self._grads[f"{self._named[i][0]}.{name}"] = self._flat_grads[a:b].reshape(shape)
        for i, (_, layer) in enumerate(self._named):
            layer.bind(layer.params, views[i])

    @property
    def flat_grads(self) -> np.ndarray:
        """(n_params,) the gradient buffer, laid out as ``flat_params`` (allocated again, as zeros, after
        ``release_training_memory``)."""
        if self._flat_grads is None:
            self._bind_grads()
        return self._flat_grads

    def release_training_memory(self) -> None:
        """Free what only training needs: the gradient buffer (n_params,), the minibatch buffer (batch, n_inputs)
        and every layer's scratch arrays and cached activations, so that a trained member of a model holds little
        more than its parameters. Inference is unchanged; the next backward pass (or ``parameter_groups``)
        allocates the gradients again, as zeros."""
        self._flat_grads = None
        self._grads = {}
        for layer in self.layers:
            layer.release()
            if layer.grads:
                layer.bind(layer.params, {})
        self.workspace.clear()
        self.grad_input = None

    # ----------------------------------------------------------------- the public contract
    def parameters(self) -> dict[str, np.ndarray]:
        """Live parameter arrays, ordered by layer: ``dense0.W`` (out, in), ``dense0.b`` (out,),
        ``batchnorm0.gamma``, ``batchnorm0.beta``, ``dense1.W``, ..."""
        return dict(self._params)

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        """Raw outputs (n, n_outputs) for inputs X (n, n_inputs); ``training`` switches dropout
        on and BatchNorm to batch statistics.

        A training-mode forward writes into the layers' reused workspaces: its output is
        overwritten by the next training-mode forward (copy it to keep it). Inference-mode
        outputs are fresh arrays."""
        h = np.asarray(X, dtype=self.dtype)
        if h.ndim != 2 or h.shape[1] != self.n_inputs:
            raise ValueError(f"expected inputs of shape (n, {self.n_inputs}), got {h.shape}")
        for layer in self.layers:
            h = layer.forward(h, training)
        return h

    def backward(self, grad_output: np.ndarray, input_grad: bool = False,
                 ready: Callable[[int, int], None] | None = None) -> dict[str, np.ndarray]:
        """Gradients of the loss for the last ``forward`` call, given dL/d output (n, n_outputs).

        Returns a dict with the keys and shapes of ``parameters()``. The arrays are views into the
        network's gradient buffer, overwritten by the next backward call: copy them to keep them.
        With ``input_grad=True`` dL/dX is also stored in ``self.grad_input``.

        ready(start, stop): called with each range of ``flat_grads`` as soon as it is final and its parameters
        are no longer read by this pass (a layer's once its backward has returned; the first layer's weights a
        block of rows at a time, ``layers.weight_grad_rows``), so an optimizer can update them while the rest
        of the pass runs (``optim.StepInParts``). Every range is reported once.
        """
        g = np.asarray(grad_output, dtype=self.dtype)
        if g.ndim != 2 or g.shape[1] != self.n_outputs:
            raise ValueError(f"grad_output must be (n, {self.n_outputs}), got shape {g.shape}")
        if self._flat_grads is None:  # released after training: allocated again
            self._bind_grads()
        x = getattr(self.layers[0], "x", None)
        if x is None:
            raise ValueError("backward needs a forward pass first (forward(X, training=True))")
        if x.shape[0] != g.shape[0]:
            raise ValueError(f"grad_output has {g.shape[0]} rows; the last forward pass had {x.shape[0]}")
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            layer, need = self.layers[i], i > 0 or input_grad
            ranges = self._flat_ranges.get(id(layer), {}) if ready is not None else {}
            if isinstance(layer, Dense) and not need and ranges:  # W is not read again: report it by blocks
                start, n_in = ranges["W"][0], layer.n_in
                g = layer.backward(g, need_input_grad=False,
                                   ready=lambda a, b: ready(start + a * n_in, start + b * n_in))
                ranges = {k: v for k, v in ranges.items() if k != "W"}
            else:
                g = layer.backward(g, need_input_grad=need)
            for a, b in ranges.values():
                ready(a, b)
        self.grad_input = g.copy() if input_grad else None  # g lives in the first layer's workspace
        return dict(self._grads)

    def forward_layers(self, h: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Inference-mode outputs of ``layers[start:stop]`` for h, the input of layer ``start``
        ((n, n_inputs) for start 0). ``forward(X)`` is ``forward_layers(X)``; attributions run the first
        Dense layer and the rest apart (the first layer's output is linear along a straight path)."""
        h = np.asarray(h, dtype=self.dtype)
        for layer in self.layers[start:stop]:
            h = layer.forward(h, False)
        return h

    def input_gradient(self, grad_output: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
        """d(sum(grad_output * output)) / d(input of layer ``start``) for the last inference-mode
        forward pass through ``layers[start:stop]`` (``forward`` or ``forward_layers``): the vector-Jacobian
        product of their output (n, width) with ``grad_output``, shape (n, width of that input).

        A one-hot ``grad_output`` gives the gradient of one output (a class's logit) for each row. Parameter
        gradients are neither computed nor touched (no half of the work a training backward does), and the
        cached forward values stay, so several ``grad_output`` can follow one forward pass. Returns a new
        array."""
        g = np.asarray(grad_output, dtype=self.dtype)
        for layer in reversed(self.layers[start:stop]):
            g = layer.backward(g, need_input_grad=True, param_grads=False)
        return g.copy()  # g lives in a layer's workspace

    # ----------------------------------------------------------------- helpers for training and I/O
    def buffers(self) -> dict[str, np.ndarray]:
        """Non-trained state (BatchNorm running statistics), live."""
        out = {}
        for prefix, layer in self._named:
            if isinstance(layer, BatchNorm):
                out[f"{prefix}.running_mean"] = layer.running_mean
                out[f"{prefix}.running_var"] = layer.running_var
        return out

    def weight_keys(self) -> list[str]:
        return [k for k in self._params if is_weight_key(k)]

    @property
    def flat_weights(self) -> np.ndarray:
        """(n_weight_entries,) every weight matrix's entries, a view of ``flat_params`` (what penalties read)."""
        return self.flat_params[: self.n_weight_entries]

    def parameter_groups(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(params, grads) as two flat groups, ``W`` (all weights) and ``rest``, for fast optimizers."""
        nw = self.n_weight_entries
        params = {"W": self.flat_params[:nw], "rest": self.flat_params[nw:]}
        grads = {"W": self.flat_grads[:nw], "rest": self.flat_grads[nw:]}
        return params, grads

    @property
    def n_parameters(self) -> int:
        return int(self.flat_params.size)

    def config(self) -> dict:
        """Constructor arguments, JSON-able, to rebuild the same architecture."""
        return {
            "n_inputs": self.n_inputs,
            "hidden": list(self.hidden),
            "n_outputs": self.n_outputs,
            "activation": self.activation,
            "activation_params": dict(self.activation_params),
            "dropout": self.dropout,
            "batchnorm": self.batchnorm,
            "seed": self.seed,
            "dtype": self.dtype.name,
        }

    def get_state(self) -> dict[str, np.ndarray]:
        """A copy of every parameter and buffer (for best-weights checkpoints and saving)."""
        state = {k: v.copy() for k, v in self._params.items()}
        state.update({k: v.copy() for k, v in self.buffers().items()})
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Copy parameters and buffers in (shapes must match exactly)."""
        targets = {**self._params, **self.buffers()}
        missing = sorted(set(targets) - set(state))
        unexpected = sorted(set(state) - set(targets))
        if missing or unexpected:
            raise ValueError(f"state does not fit this network: missing {missing}, unexpected {unexpected}")
        for k, target in targets.items():
            src = np.asarray(state[k])
            if src.shape != target.shape:
                raise ValueError(f"state entry {k} has shape {src.shape}, expected {target.shape}")
            target[...] = src

    @contextmanager
    def frozen_masks(self) -> Iterator[None]:
        """Reuse each dropout layer's last mask while inside the block (for gradient checks)."""
        drops = [l for l in self.layers if isinstance(l, Dropout)]
        for d in drops:
            d.frozen = True
        try:
            yield
        finally:
            for d in drops:
                d.frozen = False

    def __repr__(self) -> str:
        return (
            f"MLP({self.n_inputs} -> {self.hidden} -> {self.n_outputs}, activation={self.activation!r}, "
            f"dropout={self.dropout}, batchnorm={self.batchnorm}, dtype={self.dtype.name}, "
            f"parameters={self.n_parameters})"
        )
