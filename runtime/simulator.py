"""Lowering of a qnnc network (IR) to a differentiable torch simulator.

    from qnnc.runtime.simulator import QNNModel
    model = QNNModel(program, network=None, seed=0, dtype=torch.float32)
    logits = model(x, shots=15)                    # [shots, batch, n_out], sampled
    votes, per_shot = model.predict(x, shots=15)   # majority vote of argmax over shots
    model.expected_logits(x)                       # exact: sum over branches of p * logits
    outcomes, probs = model.exact_outcome_distribution(x[0])

Semantics (docs: /work/shared/design/quantum-neurons.md). Layer l computes
z = W_l d_prev (+ b_l) with W_l of shape [size, fan_in]; its activation is classical
(sign with sign(0) = +1, relu, tanh, linear) or a quantum neuron per unit, simulated by
`qnnc.runtime.neuron_kernel.NeuronKernel` from the neuron's own IR definition. Choices
made here where the IR leaves room:
  * A carried chain is a run of consecutive layers whose neurons have a carried qubit;
    neuron i of each continues neuron i of the one before (equal widths, else Q0622).
    The chain's first layer starts in |0> with `last` = +1. `last` in a neuron without
    a carried qubit is an error (Q0621).
  * Ancillas of a carried neuron still entangled at its end are traced out; the sampler
    does it by measuring them and forgetting the outcome (an exact unravelling).
  * A squash (tanh, clip) of x / a with a = 0 is sign(x), sign(0) = +1; so is the
    built-in `sign`.
  * In exact mode a sign layer has its true (zero) gradient, not the straight-through one.

Internally every activation is laid out image-major, [B, S, N] (images, shots,
neurons), or [B, 1, N] while it is still the same for every shot (the input, and
classical layers of it): the first hidden layer's pre-activation is computed once per
image and only the measurements are drawn per shot. Random numbers are counter-based
(`RandomFields`), so chunking the batch never changes a sample.

Gradients: `straight_through` (default): the forward pass samples; backward uses
dd/dz = 1{|z| < window} for quantum neurons and for sign; the carried qubit state
carries no gradient. `exact`: `exact_branches` enumerates all measurement branches and
weights each branch's logits by its probability, differentiable through the angles; the
expectations (`expected_logits`, `expected_loss`, `expected_output_distribution`) of a
chain of uncarried neuron layers use a dynamic programme over layers instead (cost
Σ 2^{w_{l-1}} 2^{w_l}, not 2^{Σ w_l}; `runtime/exact_dp.py` writes out its gradient).

Small no-grad passes of chains of R_y neurons take a lean path (`_sample_lean`): the
whole batch at once, the angle compiled once into in-place steps, the same random
fields at the same positions as the chunked path. With numba, narrow chains whose first
layer is a neuron layer go through the fused sampler instead (`runtime/fused.py`: the
neuron layers in one numba call, the same fields at the same positions). torch runs on
qnnc's default thread count (`qnnc.runtime.threads`).

Diagnostics raised here (Q06xx, runtime limits):
  Q0620 too many branches for exact enumeration      Q0626 bad layer source / network
  Q0621 `last` read by a neuron without carried qubit Q0630 tensors do not match the model
  Q0622 carried layer widths differ                   Q0631 checkpoint weights not loaded
  Q0623 malformed neuron definition                   Q0632 input has the wrong shape
  Q0624 bad neuron parameter / expression             Q0633 bad shots / argument
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Union

import numpy as np
import torch

from qnnc.compiler import ir
from qnnc.compiler.diagnostics import error
from qnnc.runtime.weights import initial_weights
from qnnc.runtime.exact import ExactEnumeration
from qnnc.runtime.fused import FusedSampler
from qnnc.runtime.neuron_kernel import NeuronKernel
from qnnc.runtime.devices import check_dtype, from_host, host_bool, host_float, resolve_device
from qnnc.runtime.random_fields import _PARALLEL_MIN, RandomFields, _entropy_words, scalar
from qnnc.runtime.threads import apply_default as apply_default_threads
from qnnc.runtime.torch_angles import bounded, sign_pos

__all__ = ["QNNModel", "DEFAULT_MAX_BRANCHES"]


DEFAULT_MAX_BRANCHES = 1 << 20
DEFAULT_GRADIENT = ir.Gradient("straight_through", 1.0)
# A no-grad pass works in chunks of images whose widest [images x shots, width] block
# has about this many values. Each op has a fixed cost (Python dispatch, and the intra-op
# threads meeting at a barrier: ~10 us when the cores are free, milliseconds when other
# processes hold them), so chunks are large; the few buffers per layer are reused from
# chunk to chunk (8 MiB each in float32), so large chunks cost no page faults.
DEFAULT_CHUNK_ELEMENTS = 1 << 21
# What is the same for every shot (the first layer's pre-activation or threshold) is
# computed for blocks of images of this many values.
_DET_BLOCK_ELEMENTS = 1 << 22
# Passes of at most this many [images x shots, widest neuron layer] values go through the
# fused numba sampler when the model has one (`runtime/fused.py`); larger ones through
# torch's vectorised element-wise ops, which were as fast from about 2,000 x 16 values on
# (hardware network, thread CPU time: 2,000 passes 0.61 against 0.66 ms, 4,000 passes
# 1.92 against 1.84 ms).
_FUSED_MAX_ELEMENTS = 3 << 14


def _buffer(ws: dict, key, rows: int, cols: int, dtype, device=None) -> torch.Tensor:
    """A [rows, cols] contiguous view of a workspace buffer (grown when needed)."""
    buf = ws.get(key)
    if buf is None or buf.numel() < rows * cols or buf.dtype != dtype:
        buf = ws[key] = torch.empty(rows * cols, dtype=dtype, device=device)
    return buf[:rows * cols].view(rows, cols)


class _StraightThrough(torch.autograd.Function):
    """Forward: the sampled (or sign) value d. Backward: dd/dz = 1{|z| < window}; when z
    is shared by all shots ([B, 1, N]) the shots' gradients add up."""

    @staticmethod
    def forward(ctx, z, d, window):
        ctx.save_for_backward(z.abs() < window)
        ctx.z_shape = z.shape
        return d.clone() if d.requires_grad else d.view_as(d)

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        g = grad * mask
        if g.shape != ctx.z_shape:
            g = g.sum_to_size(ctx.z_shape)
        return g, None, None


@dataclass
class _Plan:
    index: int
    layer: ir.Layer
    name: str
    size: int
    source: str
    fan_in: int
    kind: str  # "neuron" or a classical activation
    kernel: Optional[NeuronKernel]
    chained: bool  # continues the previous layer's carried qubits


class QNNModel(ExactEnumeration, torch.nn.Module):
    """A network of the program as a torch module (weights are its parameters)."""

    def __init__(self, program: ir.Program, network: Union[str, ir.Network, None] = None, seed: int = 0,
                 dtype: torch.dtype = torch.float32, *, gradient: Optional[ir.Gradient] = None,
                 max_branches: int = DEFAULT_MAX_BRANCHES, chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
                 force_generic: bool = False, device=None, noise=None):
        super().__init__()
        apply_default_threads()
        if dtype not in (torch.float32, torch.float64):
            raise error("Q0633", f"dtype must be float32 or float64, got {dtype}")
        # Where its tensors live (docs/devices.md); the sampling generator stays on the
        # host: it only supplies each pass's entropy, and is what checkpoints save.
        self.device = resolve_device(device, flag="device")
        check_dtype(self.device, dtype, "a float64 model")
        if isinstance(network, ir.Network):
            net = network
        else:
            net = program.network(network)
            if net is None:
                have = ", ".join(n.name for n in program.networks) or "none"
                raise error("Q0626", f"no network `{network}` in {program.source} (have: {have})")
        self.program, self.network, self.dtype = program, net, dtype
        recipe = program.train(net.name)
        self.gradient = gradient or (recipe.gradient if recipe is not None else DEFAULT_GRADIENT)
        if self.gradient.kind not in ir.GRADIENT_KINDS:
            raise error("Q0633", f"unknown gradient kind {self.gradient.kind!r}", self.gradient.span)
        self.max_branches = int(max_branches)
        self.chunk_elements = int(chunk_elements)
        self.features = net.input.features
        self.n_out = net.layers[-1].size
        self.plans: list[_Plan] = self._plan(program, net, force_generic)
        self.max_width = max([self.features] + [p.size for p in self.plans])
        # Device noise (`qnnc.runtime.noise.NoiseModel`): every neuron layer's kernel evolves
        # its registers' density matrix through the device's gates and channels.
        self.noise = noise
        if noise is not None:
            from qnnc.runtime.noise import attach

            attach(noise, self.plans)

        # Weights: from the one weight source (float64, numpy), then cast, so a seed gives
        # the same network in float32 and float64 and in every command.
        initial = initial_weights(net, int(seed))
        self.weight = torch.nn.ParameterDict()
        self.bias = torch.nn.ParameterDict()
        self.pending: dict[str, ir.CheckpointInit] = {
            p.name: p.layer.dense.init for p in self.plans if isinstance(p.layer.dense.init, ir.CheckpointInit)}
        for p in self.plans:
            self.weight[p.name] = torch.nn.Parameter(from_host(initial[p.name], self.device, dtype))
            if p.layer.dense.bias:
                self.bias[p.name] = torch.nn.Parameter(torch.zeros(p.size, dtype=dtype, device=self.device))
        # The sampling generator: independent of the init stream, owned by the model.
        sample_seed = int(np.random.SeedSequence([int(seed), 0x51A]).generate_state(1, np.uint64)[0] >> 1)
        self.generator = torch.Generator().manual_seed(sample_seed)
        self._fused_first = None  # the first layer's (W, b), for the fused sampler
        self._fused_params = None  # (self.weight, self.bias), for the fused sampler
        # One naming of the weights: state_dict() and load_state_dict() use the checkpoint
        # names (`h1`, `h1.bias`), so `load_state_dict(safetensors.torch.load_file(ckpt))`
        # works (the file's training state, `optimizer/...` and `rng/...`, is skipped).
        self._register_state_dict_hook(_checkpoint_names)
        self._register_load_state_dict_pre_hook(_module_names, with_module=True)

    # Caches that hold references to this model's own parameters (or a lock): a copy
    # (copy.deepcopy, pickling) starts without them and builds its own.
    _OWN_CACHES = ("_fused_cache", "_dp_route", "_dp_fused_cache", "_param_list", "_finite_key", "_fused_w0")

    def __getstate__(self):
        state = self.__dict__.copy()
        for k in self._OWN_CACHES:
            state.pop(k, None)
        state["_fused_first"] = None
        state["_fused_params"] = None
        return state

    # ------------------------------------------------------------------ construction

    def _plan(self, program: ir.Program, net: ir.Network, force_generic: bool) -> list[_Plan]:
        sizes = {net.input.name: self.features}
        plans: list[_Plan] = []
        for i, layer in enumerate(net.layers):
            src = layer.dense.source
            if src not in sizes:
                raise error("Q0626", f"layer `{layer.name}` reads `{src}`, which is not the input or an "
                            "earlier layer", layer.dense.span)
            act = layer.activation
            kernel, chained = None, False
            if isinstance(act, ir.ClassicalActivation):
                if act.kind not in ir.CLASSICAL_ACTIVATIONS:
                    raise error("Q0624", f"unknown activation `{act.kind}`", act.span)
                kind = act.kind
            else:
                nd = program.neuron(act.neuron)
                if nd is None:
                    raise error("Q0623", f"unknown neuron `{act.neuron}`", act.span)
                kernel = NeuronKernel(nd, {b.name: b.value for b in act.args}, span=act.span,
                                      force_generic=force_generic)
                kind = "neuron"
                prev = plans[-1] if plans else None
                if kernel.carried and prev is not None and prev.kind == "neuron" and prev.kernel.carried:
                    if prev.size != layer.size:
                        raise error("Q0622", f"layer `{layer.name}` carries the qubits of `{prev.name}`, but "
                                    f"their widths differ ({layer.size} vs {prev.size})", layer.span,
                                    help="carried layers must have equal widths: neuron i continues qubit i")
                    chained = True
            plans.append(_Plan(i, layer, layer.name, layer.size, src, sizes[src], kind, kernel, chained))
            sizes[layer.name] = layer.size
        return plans

    # ------------------------------------------------------------------ weights

    def tensors(self, copy: bool = True) -> dict[str, torch.Tensor]:
        """The weights under their checkpoint names: {"h1": W [size, fan_in], "h1.bias": b, ...}
        (copies; with copy=False detached views of the live parameters)."""
        out: dict[str, torch.Tensor] = {}
        take = (lambda t: t.detach().clone()) if copy else (lambda t: t.detach())
        for p in self.plans:
            out[p.name] = take(self.weight[p.name])
            if p.name in self.bias:
                out[p.name + ".bias"] = take(self.bias[p.name])
        return out

    def load_tensors(self, tensors: dict[str, torch.Tensor], *, strict: bool = True) -> None:
        """Set weights from a name -> tensor dict (the names of `tensors()`). Shapes must
        match; with `strict`, so must the set of names."""
        want = {n: t.shape for n, t in self.tensors().items()}
        missing = sorted(set(want) - set(tensors))
        extra = sorted(set(tensors) - set(want))
        bad = sorted(n for n in set(want) & set(tensors) if tuple(tensors[n].shape) != tuple(want[n]))
        notes = []
        if strict and missing:
            notes.append("missing: " + ", ".join(missing))
        if strict and extra:
            notes.append("not in the model: " + ", ".join(extra))
        for n in bad:
            notes.append(f"`{n}` has shape {list(tensors[n].shape)}, the model needs {list(want[n])}")
        if notes:
            raise error("Q0630", f"tensors do not match network `{self.network.name}`", notes=notes,
                        help="the names are the layer names (weights) and `<layer>.bias`")
        with torch.no_grad():
            for n, t in tensors.items():
                if n not in want:
                    continue
                layer, _, suffix = n.partition(".")
                target = self.bias[layer] if suffix == "bias" else self.weight[layer]
                target.copy_(torch.as_tensor(t).to(device=self.device, dtype=self.dtype))
                if not suffix:
                    self.pending.pop(layer, None)

    def sample(self, x: torch.Tensor, shots: Optional[int] = None,
               generator: Optional[torch.Generator] = None) -> dict[str, torch.Tensor]:
        """One sampled pass per shot, without gradients: every layer's outcomes d
        ([shots, batch, size], ±1 for neuron layers) and the logits [shots, batch, n_out]."""
        with torch.no_grad():
            rec = self.trace(x, self._shots(shots), generator)
        return {name: d for name, (_, d) in rec.items()}

    def load_weights(self, loader: Callable[[ir.CheckpointInit, str], torch.Tensor]) -> None:
        """Fill the layers whose init is `checkpoint(...)`: `loader(init, name)` returns
        the tensor `name` (init.tensor, or init.tensor + ".bias") of that checkpoint."""
        got: dict[str, torch.Tensor] = {}
        for layer, init in list(self.pending.items()):
            got[layer] = loader(init, init.tensor)
            if layer in self.bias:
                got[layer + ".bias"] = loader(init, init.tensor + ".bias")
        self.load_tensors(got, strict=False)

    def _check_ready(self) -> None:
        if self.pending:
            names = ", ".join(f"`{n}` ({i.run})" for n, i in self.pending.items())
            raise error("Q0631", f"weights of {names} come from a checkpoint and were not loaded",
                        help="call model.load_weights(loader) or model.load_tensors(...) first")

    def _input(self, x) -> torch.Tensor:
        if (type(x) is torch.Tensor and x.dtype == self.dtype and x.device == self.device and x.dim() == 2
                and x.shape[1] == self.features):
            return x  # (what the conversions below return for it)
        x = torch.as_tensor(x)
        if x.dim() != 2 or x.shape[1] != self.features:
            raise error("Q0632", f"network `{self.network.name}` expects inputs of shape [batch, "
                        f"{self.features}], got {list(x.shape)}",
                        help="flatten and preprocess the raw input first")
        return x.to(device=self.device, dtype=self.dtype)

    def neuron_kernel(self, layer: str) -> Optional[NeuronKernel]:
        return next((p.kernel for p in self.plans if p.name == layer), None)

    @property
    def outcome_layers(self) -> list[tuple[str, int]]:
        """The layers whose emitted outcomes `exact_outcome_distribution` reports, in column order."""
        return [(p.name, p.size) for p in self.plans if p.kind == "neuron"]

    # ------------------------------------------------------------------ sampling

    def _window(self) -> float:
        return float(self.gradient.window) if self.gradient.kind == "straight_through" else 1.0

    def _layer_z(self, p: _Plan, src: torch.Tensor, inplace: bool, ws: Optional[dict] = None) -> torch.Tensor:
        W = self.weight[p.name]
        if ws is not None and src.is_contiguous():
            # Into a buffer reused from chunk to chunk: no allocation, no page faults.
            rows = math.prod(src.shape[:-1])
            buf = _buffer(ws, (p.index, "z"), rows, p.size, self.dtype, self.device)
            z = torch.mm(src.view(rows, src.shape[-1]), W.t(), out=buf).view(*src.shape[:-1], p.size)
        else:
            z = torch.matmul(src, W.t())
        if p.name in self.bias:
            z = z.add_(self.bias[p.name]) if inplace else z + self.bias[p.name]
        return z

    def _sample(self, x: torch.Tensor, shots: int, fields: RandomFields, first: int, *,
                inplace: bool, pre: Optional[dict] = None, record: Optional[dict] = None,
                ws: Optional[dict] = None, shifts: Optional[dict] = None) -> torch.Tensor:
        """One stochastic pass over images x (global index of x[0]: `first`); returns [B, S, C].
        `ws`: buffers reused across chunks (no-grad passes only). `shifts`: layer name ->
        {op index: per-neuron angle shift [N]} (the kernel's parameter-shift hook)."""
        grad = torch.is_grad_enabled()
        b = x.shape[0]
        acts: dict[str, torch.Tensor] = {self.network.input.name: x.unsqueeze(1)}
        carry = None  # (post state, emitted d) of the previous layer, when carried
        window = self._window()
        for p in self.plans:
            if pre is not None and (p.name, "threshold") in pre:
                z = None  # the kernel needs only its precomputed threshold
            elif pre is not None and p.name in pre:
                z = pre[p.name]
            else:
                z = self._layer_z(p, acts[p.source], inplace, ws)
            if record is not None:
                # Hand out z as [S, B, N] in a form that is an ancestor of d (for autograd.grad).
                z_out = z.transpose(0, 1)
                z = z_out.transpose(0, 1)
            if p.kind == "neuron":
                state, last = carry if p.chained else (None, 1.0)
                shape = (b, shots, p.size)
                out = _buffer(ws, (p.index, "d"), b * shots, p.size, self.dtype, self.device) if ws is not None else None
                thr = pre.get((p.name, "threshold")) if pre is not None else None
                d, post = p.kernel.sample(z.detach() if z is not None else None, last, state, fields, (p.index,),
                                          first * shots * p.size, shape, inplace=inplace and record is None,
                                          out=out, threshold=thr,
                                          shift=shifts.get(p.name) if shifts else None)
                carry = (post, d) if p.kernel.carried else None
                if grad and z is not None and z.requires_grad:
                    d = _StraightThrough.apply(z, d, window)
            else:
                carry = None
                d = self._classical(p.kind, z, inplace and record is None, window)
            acts[p.name] = d
            if record is not None:
                record[p.name] = (z_out, d.transpose(0, 1))
        out = acts[self.plans[-1].name]
        return out.expand(b, shots, out.shape[-1])

    @staticmethod
    def _classical(kind: str, z: torch.Tensor, inplace: bool, window: float) -> torch.Tensor:
        if kind == "sign":
            with torch.no_grad():
                d = sign_pos(z.detach())
            if torch.is_grad_enabled() and z.requires_grad:
                d = _StraightThrough.apply(z, d, window)
            return d
        if kind == "relu":
            return z.relu_() if inplace else torch.relu(z)
        if kind == "tanh":
            return z.tanh_() if inplace else torch.tanh(z)
        return z

    def _shots(self, shots) -> int:
        shots = self.network.readout.shots if shots is None else shots
        if int(shots) != shots or shots < 1:
            raise error("Q0633", f"shots must be a positive integer, got {shots!r}")
        return int(shots)

    def forward(self, x: torch.Tensor, shots: int = 1, generator: Optional[torch.Generator] = None
                ) -> torch.Tensor:
        """Sampled logits [shots, batch, n_out]. With autograd on, backward is the
        straight-through estimator; with it off the pass runs chunked and in place."""
        if self.pending:
            self._check_ready()
        x = self._input(x)
        if type(shots) is not int or shots < 1:
            shots = self._shots(shots)
        generator = generator if generator is not None else self.generator
        if torch.is_grad_enabled() and any(t.requires_grad for t in self._params()):
            out = self._sample(x, shots, RandomFields(generator, self.dtype, self.device), 0, inplace=False)
        else:
            words = _entropy_words(generator)  # (the pass's one draw from the generator)
            fs = self._fused_route(x.shape[0] * shots)
            if fs is not None:
                out = self._sample_fused(x, shots, words, fs, shots_first=True)
                if out is not None:
                    return out
            out = self._sample_chunked(x, shots, RandomFields(None, self.dtype, self.device, words.tolist()))
        return out.transpose(0, 1)

    def _lean_plan(self) -> Optional[list]:
        """The layers in the form the lean no-grad path runs, or None. It applies when the
        network is a chain (each layer reads the one before) whose neuron layers all take
        the R_y fast path with angles that are finite whenever z is not NaN (`bounded`):
        then a pass is, per layer, one matrix product, the compiled threshold in place,
        one fill of the random field and two element-wise ops, and no finiteness check
        beyond one of the input and of the weights (cached by their version counter)."""
        cached = getattr(self, "_lean_cache", False)
        if cached is not False:
            return cached
        prev, ok = self.network.input.name, True
        for p in self.plans:
            ok = ok and p.source == prev
            if p.kind == "neuron":
                ok = ok and p.kernel.fast_ry and bounded(p.kernel.ops[0][3])
            prev = p.name
        self._lean_cache = list(self.plans) if ok else None
        return self._lean_cache

    def _params(self) -> list:
        """The parameters (the same objects for the model's life: loading copies into them)."""
        params = getattr(self, "_param_list", None)
        if params is None:
            params = self._param_list = list(self.parameters())
        return params

    def _finite_weights(self) -> bool:
        params = self.__dict__.get("_param_list") or self._params()
        key = [(t._version, t.data_ptr()) for t in params]  # in-place updates bump _version
        if self.__dict__.get("_finite_key") != key:
            if not all(host_bool(torch.isfinite(t).all()) for t in params):
                return False
            self._finite_key = key
        return True

    def _sample_lean(self, x: torch.Tensor, shots: int, fields: RandomFields) -> Optional[torch.Tensor]:
        """One no-grad pass of the whole batch for networks `_lean_plan` accepts; draws
        exactly the random values `_sample_chunked` draws (same fields, same positions).
        None when the input or the weights are not finite (the general path reports it)."""
        if not self._finite_weights():
            return None
        B = x.shape[0]
        src = x  # [rows, features]; rows = B (shot-independent) or B * shots
        per_shot = False
        f_small = B * shots * self.max_width < _PARALLEL_MIN  # one thread would fill it anyway
        with torch.no_grad():
            for i, p in enumerate(self.plans):
                W = self.weight[p.name]
                z = torch.mm(src, W.t())
                if p.name in self.bias:
                    z.add_(self.bias[p.name])
                if i == 0 and not math.isfinite(host_float(z.sum())):
                    # A NaN or infinite input makes the first z so (an overflowing sum
                    # only sends a finite batch to the general path): one reduction
                    # instead of a check of every input value.
                    return None
                if p.kind != "neuron":
                    src = self._classical(p.kind, z, True, 1.0)
                    continue
                thr = p.kernel.lean_threshold(z)
                shape = (B, shots, p.size)
                f = (fields.uniform_12_new((p.index, 1), shape) if f_small else
                     fields.uniform_12((p.index, 1), 0, shape))
                f.add_(thr.view(B, shots, p.size) if per_shot else thr.view(B, 1, p.size))
                src = torch.copysign(scalar(1.0, f), f, out=f).view(B * shots, p.size)
                per_shot = True
        out = src.view(B, shots if per_shot else 1, -1)
        return out.expand(B, shots, out.shape[-1])

    def _fused_sampler(self):
        """The fused numba sampler of this model (`runtime/fused.py`), or None."""
        fs = getattr(self, "_fused_cache", False)
        if fs is False:
            # numba runs on host memory: other devices keep the torch path.
            fs = self._fused_cache = (FusedSampler.build(self.plans, self.dtype)
                                      if self._lean_plan() is not None and self.device.type == "cpu" else None)
        return fs

    def _fused_route(self, rows: int):
        """The fused sampler when a no-grad pass of `rows` = images x shots goes through it."""
        fs = self.__dict__.get("_fused_cache", False)
        if fs is False:
            fs = self._fused_sampler()
        if (fs is not None and rows * fs.max_width <= _FUSED_MAX_ELEMENTS and self._lean_plan() is not None
                and rows * self.max_width <= self.chunk_elements):
            return fs
        return None

    def _sample_fused(self, x: torch.Tensor, shots: int, fields, fs, shots_first: bool = False
                      ) -> Optional[torch.Tensor]:
        """One no-grad pass through the fused sampler: the first layer's z once per image
        (torch), every later layer in one numba call (the logits of a linear readout
        through pattern tables: torch's product up to the order of the sum). Draws the
        same field values at the same positions as the other paths. None when the input
        or the weights are not finite."""
        if not self._finite_weights():
            return None
        first = self._fused_first
        if first is None:  # (W, b): the parameters are the same objects for the model's life
            p = self.plans[0]
            first = self._fused_first = (self.weight[p.name], self.bias[p.name] if p.name in self.bias else None)
        if torch.is_grad_enabled():
            with torch.no_grad():
                return self._sample_fused(x, shots, fields, fs, shots_first)
        key = self._finite_key  # (a new object whenever a parameter changed)
        w0 = self.__dict__.get("_fused_w0")
        if w0 is None or w0[0] is not key:
            # The first layer's weights transposed, contiguous: x [B, F] times it is MKL's
            # plain product, about 1.5x faster than against the transposed view at these
            # sizes; its sums may round differently in the last bit, which only moves the
            # first layer's thresholds (a sample flips only when its random value lies
            # within that bit of its threshold: about 1 in 10^7 values in float32).
            w0 = self._fused_w0 = (key, first[0].detach().t().contiguous())
        z = torch.mm(x, w0[1])
        b = first[1]
        if b is not None:
            z.add_(b)
        # fields: the pass's RandomFields, or its entropy alone (a list, or `_entropy_words`)
        params = self._fused_params
        if params is None:  # (the parameter dicts are submodules: each attribute read is a lookup)
            params = self._fused_params = (self.weight, self.bias)
        src = fs.run(z, shots, fields if type(fields) in (list, np.ndarray) else fields.entropy, *params, key)
        if src is None:
            return None
        n = src.shape[1]  # (rows r = image * shots + shot)
        if shots_first:  # [shots, B, n], as forward returns it
            return src.as_strided((shots, x.shape[0], n), (n, shots * n, 1))
        return src.view(x.shape[0], shots, n)

    def _sample_chunked(self, x: torch.Tensor, shots: int, fields: RandomFields) -> torch.Tensor:
        B = x.shape[0]
        if self._lean_plan() is not None and B * shots * self.max_width <= self.chunk_elements:
            fs = self._fused_route(B * shots)
            if fs is not None:
                out = self._sample_fused(x, shots, fields, fs)
                if out is not None:
                    return out
            out = self._sample_lean(x, shots, fields)
            if out is not None:
                return out
        out = torch.empty(B, shots, self.n_out, dtype=self.dtype, device=self.device)
        per_image = max(self.features, shots * max(p.size for p in self.plans))  # values per image
        chunk = max(1, self.chunk_elements // per_image)
        block = max(chunk, (_DET_BLOCK_ELEMENTS // self.max_width) // chunk * chunk)
        ws: dict = {}
        with torch.no_grad():
            for b0 in range(0, B, block):
                xb = x[b0:b0 + block]
                pre = self._deterministic_prefix(xb)
                for c0 in range(0, xb.shape[0], chunk):
                    sl = slice(c0, c0 + chunk)
                    pc = {k: v[sl] for k, v in pre.items()}  # views: [images, 1, N] each
                    out[b0 + c0:b0 + c0 + chunk] = self._sample(xb[sl], shots, fields, b0 + c0,
                                                                inplace=True, pre=pc, ws=ws)
        return out

    def _deterministic_prefix(self, x: torch.Tensor) -> dict:
        """What does not depend on the shot ([B, 1, N]), for a block of images, computed once
        per image: the pre-activation of every layer fed by the input or by classical layers
        of it (key: layer name), or, for a fast-path neuron layer, its sampling threshold
        (key: (layer name, "threshold"))."""
        det = {self.network.input.name: x.unsqueeze(1)}
        pre = {}
        for p in self.plans:
            if p.source not in det:
                continue
            z = self._layer_z(p, det[p.source], inplace=True)
            if p.kind == "neuron" and p.kernel.fast_ry:
                pre[(p.name, "threshold")] = p.kernel.fast_threshold(z, inplace=True)
                continue
            pre[p.name] = z
            if p.kind != "neuron":  # a classical layer of deterministic inputs is deterministic
                det[p.name] = self._classical(p.kind, z.clone(), True, 1.0)
        return pre

    @torch.no_grad()
    def predict(self, x: torch.Tensor, shots: Optional[int] = None,
                generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(votes [batch], per_shot [shots, batch]): the argmax of each of `shots`
        independent passes and their majority vote (ties go to the lowest class)."""
        logits = self.forward(x, self._shots(shots), generator)
        per_shot = logits.argmax(-1)
        counts = torch.zeros(per_shot.shape[1], self.n_out, dtype=torch.int64, device=per_shot.device)
        counts.scatter_add_(1, per_shot.t(), torch.ones_like(per_shot.t()))
        return counts.argmax(-1), per_shot

    def trace(self, x: torch.Tensor, shots: int = 1, generator: Optional[torch.Generator] = None,
              shifts: Optional[dict] = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Every layer's (z, d) of one sampled pass, each [shots, batch, size] (z may be
        [1, batch, size] when it is the same for all shots). Differentiable like forward.
        `shifts`: layer name -> {op index: angle shift per neuron [size]}, added to those
        gates' angles after they are computed (`qnnc.runtime.gradients`)."""
        self._check_ready()
        x = self._input(x)
        shots = self._shots(shots)
        fields = RandomFields(generator if generator is not None else self.generator, self.dtype, self.device)
        rec: dict = {}
        self._sample(x, shots, fields, 0, inplace=False, record=rec, shifts=shifts)
        return rec

def _checkpoint_names(module, state_dict, prefix, local_metadata):
    """state_dict hook: `weight.h1` -> `h1`, `bias.h1` -> `h1.bias` (the checkpoint names)."""
    for key in list(state_dict):
        if not key.startswith(prefix):
            continue
        kind, _, layer = key[len(prefix):].partition(".")
        if kind in ("weight", "bias") and layer:
            state_dict[prefix + (layer if kind == "weight" else f"{layer}.bias")] = state_dict.pop(key)
    return state_dict


def _module_names(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                  error_msgs):
    """load_state_dict pre-hook: checkpoint names back to the parameters' names; a
    checkpoint file's training state (`optimizer/...`, `rng/...`) is not the module's."""
    names = {p.name for p in module.plans}
    for key in list(state_dict):
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix):]
        if rest.startswith(("optimizer/", "rng/")):
            del state_dict[key]
        elif rest in names:
            state_dict[prefix + "weight." + rest] = state_dict.pop(key)
        elif rest.endswith(".bias") and rest[:-5] in names:
            state_dict[prefix + "bias." + rest[:-5]] = state_dict.pop(key)
