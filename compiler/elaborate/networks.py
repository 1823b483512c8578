"""Elaborating networks: the input and its preprocessing, the layers (size, `dense`
connection and its initialisation, activation) and the readout."""

from __future__ import annotations

import math
from typing import Optional

from qnnc.compiler import ir
from qnnc.compiler import syntax as S
from qnnc.compiler.codes import (BAD_ARGUMENTS, BAD_INIT, BAD_NETWORK, BAD_PREPROCESS, BAD_READOUT,
                                 BAD_VALUE, DUPLICATE_NAME, OUT_OF_RANGE, SHAPE_MISMATCH, TOO_LARGE,
                                 TYPE_MISMATCH, UNKNOWN_LAYER)
from qnnc.compiler.diagnostics import did_you_mean
from qnnc.compiler.elaborate.neurons import NeuronElaboration
from qnnc.compiler.elaborate.text import where
from qnnc.compiler.ir import Span
from qnnc.compiler.limits import MAX_INPUT_FEATURES, MAX_LAYER_SIZE, MAX_SHOTS, MAX_WEIGHTS_PER_LAYER

BOOLEANS = {"on": True, "off": False, "true": True, "false": False}
INIT_FUNCTIONS = ("normal", "kaiming", "uniform", "zeros", "checkpoint")


class NetworkElaboration(NeuronElaboration):
    """A layer's activation is a neuron bound by `NeuronElaboration`."""

    def network(self, d: S.NetworkSyntax) -> Optional[ir.Network]:
        inputs = [s for s in d.body if isinstance(s, S.InputDecl)]
        layers_syn = [s for s in d.body if isinstance(s, S.LayerDecl)]
        readouts = [s for s in d.body if isinstance(s, S.ReadoutDecl)]
        if not inputs:
            self.c.add(BAD_NETWORK, f"network `{d.name}` has no input", d.name_span,
                       help="declare one, e.g. `input x[28, 28] with scale(1 / 255)`")
            return None
        for extra in inputs[1:]:
            self.c.add(BAD_NETWORK, "a network has one input", extra.span, "a second input")
        for extra in readouts[1:]:
            self.c.add(DUPLICATE_NAME, "a network has one readout", extra.span, "a second readout")
        inp = self.input(inputs[0])
        names: dict[str, Span] = {inputs[0].name: inputs[0].name_span}
        layers: list[ir.Layer] = []
        prev_name, prev_size = inputs[0].name, (inp.features if inp else None)
        prev_layer: Optional[ir.Layer] = None
        for i, ls in enumerate(layers_syn):
            if ls.name in names:
                self.c.add(DUPLICATE_NAME, f"`{ls.name}` is declared twice in network `{d.name}`",
                           ls.name_span, "declared again here", help="give each layer its own name",
                           notes=[f"first declared at {where(names[ls.name])}"])
                continue
            names[ls.name] = ls.name_span
            layer = self.layer(ls, d, prev_name, prev_size, prev_layer, names)
            if ls.role == "output" and i != len(layers_syn) - 1:
                self.c.add(BAD_NETWORK, "the output layer must be the last layer", ls.span,
                           help="move it to the end of the network")
            if layer is not None:
                layers.append(layer)
                prev_layer = layer
                prev_size = layer.size
            else:
                prev_layer, prev_size = None, None
            prev_name = ls.name
        if not any(ls.role == "output" for ls in layers_syn):
            at = layers_syn[-1].span if layers_syn else d.name_span
            self.c.add(BAD_NETWORK, f"network `{d.name}` has no output layer", at,
                       help="end it with e.g. `output y[10] = linear of dense(h2)`")
        readout = self.readout(readouts[0] if readouts else None, d)
        if inp is None or readout is None or len(layers) != len(layers_syn):
            return None
        return ir.Network(d.name, inp, tuple(layers), readout, d.span)

    def input(self, d: S.InputDecl) -> Optional[ir.Input]:
        shape = []
        for e in d.shape:
            v = self.eval_int(e, "an input dimension", low=1)
            if v is None:
                return None
            shape.append(v)
        steps = []
        pooled = list(shape)  # the shape as the steps see it; the IR keeps the raw shape
        for st in d.steps:  # every bad step is reported, not only the first
            steps.append(self.preprocess(st, pooled))
        if None in steps:
            return None
        inp = ir.Input(d.name, tuple(shape), tuple(steps), d.span)
        n = 1
        for s in shape:
            n *= s
        if n > MAX_INPUT_FEATURES:
            self.c.add(TOO_LARGE, f"an input of {n:,} values exceeds the limit of {MAX_INPUT_FEATURES:,}",
                       d.span)
            return None
        return inp

    def preprocess(self, st: S.CallSyntax, shape: list[int]) -> Optional[ir.PreprocessStep]:
        if st.name not in ir.PREPROCESS_KINDS:
            self.c.add(BAD_PREPROCESS, f"unknown preprocessing step `{st.name}`", st.name_span,
                       help=did_you_mean(st.name, ir.PREPROCESS_KINDS)
                       or "steps: scale(factor), pool(size), threshold(level)")
            return None
        if st.args is None or len(st.args) != 1 or st.args[0].name is not None:
            self.c.add(BAD_ARGUMENTS, f"`{st.name}` takes one value", st.span,
                       help=f"e.g. `{st.name}({ {'scale': '1 / 255', 'pool': '2', 'threshold': '0.5'}[st.name] })`")
            return None
        e = st.args[0].value
        if st.name == "pool":
            k = self.eval_int(e, "a pooling size", low=1)
            if k is None:
                return None
            for dim in shape:
                if dim % k:
                    self.c.add(SHAPE_MISMATCH, f"pool({k}) does not divide the input shape "
                               f"[{', '.join(map(str, shape))}]", st.span,
                               help="pool by a divisor of every dimension (28 x 28: 2, 4, 7 or 14)")
                    return None
            for i in range(len(shape)):
                shape[i] //= k
            return ir.PreprocessStep("pool", float(k), st.span)
        v = self.eval_real(e, f"the {st.name} value")
        if v is None:
            return None
        return ir.PreprocessStep(st.name, v, st.span)

    def layer(self, ls: S.LayerDecl, net: S.NetworkSyntax, prev_name: str, prev_size: Optional[int],
              prev_layer: Optional[ir.Layer], names: dict[str, Span]) -> Optional[ir.Layer]:
        size = self.eval_int(ls.size, "a layer size", low=1)
        if size is not None and size > MAX_LAYER_SIZE:
            self.c.add(TOO_LARGE, f"layer `{ls.name}` has {size:,} neurons, more than the limit of "
                       f"{MAX_LAYER_SIZE:,}", ls.size.span, "too many neurons",
                       help="qnnc refuses this before allocating anything; use a smaller width")
            size = None
        dense = self.dense(ls, net, prev_name, prev_size, size, names)
        activation = self.activation(ls.activation)
        if size is None or dense is None or activation is None:
            return None
        if prev_size is not None and prev_size * size > MAX_WEIGHTS_PER_LAYER:
            self.c.add(TOO_LARGE, f"layer `{ls.name}` would have {prev_size * size:,} weights, more than "
                       f"the limit of {MAX_WEIGHTS_PER_LAYER:,}", ls.size.span)
            return None
        role = "output" if ls.role == "output" else "hidden"
        if role == "output" and isinstance(activation, ir.NeuronActivation):
            self.c.add(BAD_NETWORK, "the output layer must be classical", ls.activation.span,
                       "a quantum neuron", help="use `linear` logits (the papers' read-out) or sign/relu/tanh")
            return None
        if isinstance(activation, ir.NeuronActivation):
            neuron = self.neurons[activation.neuron]
            if neuron.carried and prev_layer is not None and isinstance(prev_layer.activation, ir.NeuronActivation) \
                    and self.neurons[prev_layer.activation.neuron].carried and prev_layer.size != size:
                self.c.add(SHAPE_MISMATCH, f"layer `{ls.name}` ({size} neurons) continues the qubits of "
                           f"`{prev_layer.name}` ({prev_layer.size} neurons)", ls.size.span,
                           "widths differ",
                           help=f"a carried neuron reuses the same-index qubit of the previous layer: "
                           f"give `{ls.name}` {prev_layer.size} neurons")
                return None
        return ir.Layer(ls.name, size, role, dense, activation, ls.span)

    def dense(self, ls: S.LayerDecl, net: S.NetworkSyntax, prev_name: str, prev_size: Optional[int],
              size: Optional[int], names: dict[str, Span]) -> Optional[ir.Dense]:
        call = ls.dense
        if call.name != "dense":
            self.c.add(BAD_NETWORK, f"unknown connection `{call.name}`", call.name_span,
                       help=did_you_mean(call.name, ["dense"]) or "layers connect with `dense(SOURCE, ...)`")
            return None
        args = call.args or ()
        positional = [a for a in args if a.name is None]
        if len(positional) != 1 or not isinstance(positional[0].value, S.Name):
            self.c.add(BAD_ARGUMENTS, "`dense` takes its source layer as the first argument", call.span,
                       help=f"e.g. `dense({prev_name}, bias = off)`")
            return None
        src = positional[0].value
        if src.name not in names or src.name == ls.name:
            self.c.add(UNKNOWN_LAYER, f"unknown layer `{src.name}`", src.span,
                       f"not declared before `{ls.name}` in network `{net.name}`",
                       help=did_you_mean(src.name, [n for n in names if n != ls.name])
                       or f"layers read from the input or an earlier layer, e.g. `dense({prev_name})`")
            return None
        if src.name != prev_name:
            self.c.add(BAD_NETWORK, f"layer `{ls.name}` reads from `{src.name}`, not from the layer before it",
                       src.span, f"expected `{prev_name}`",
                       help="qnnc networks are chains: each layer reads the one declared just before it")
            return None
        bias, init = False, None
        seen: set[str] = set()
        for a in args:
            if a.name is None:
                continue
            if a.name in seen:
                self.c.add(DUPLICATE_NAME, f"`{a.name}` is given twice", a.name_span)
                continue
            seen.add(a.name)
            if a.name == "bias":
                if isinstance(a.value, S.Name) and a.value.name in BOOLEANS:
                    bias = BOOLEANS[a.value.name]
                else:
                    self.c.add(TYPE_MISMATCH, "`bias` is `on` or `off`", a.value.span)
            elif a.name == "init":
                init = self.init(a.value, prev_size, size)
                if init is None:
                    return None
            else:
                self.c.add(BAD_ARGUMENTS, f"`dense` has no argument `{a.name}`", a.name_span,
                           help=did_you_mean(a.name, ["bias", "init"]) or "arguments: bias, init")
        if init is None:
            if prev_size is None or size is None:
                return None
            std = 1.0 / math.sqrt(prev_size)
            init = ir.NormalInit(0.0, std, std * std * prev_size, call.span)
        return ir.Dense(src.name, bias, init, call.span)

    def init(self, e: S.Expr, fan_in: Optional[int], fan_out: Optional[int]) -> Optional[ir.Init]:
        if isinstance(e, S.Name):
            name, args = e.name, ()
            span, fspan = e.span, e.span
        elif isinstance(e, S.Apply):
            name, args, span, fspan = e.function, e.args, e.span, e.function_span
        else:
            self.c.add(BAD_INIT, "expected an initialisation", e.span,
                       help="normal(mean, std), kaiming, uniform(low, high), zeros or checkpoint(...)")
            return None
        if name not in INIT_FUNCTIONS:
            self.c.add(BAD_INIT, f"unknown initialisation `{name}`", fspan,
                       help=did_you_mean(name, INIT_FUNCTIONS) or "inits: " + ", ".join(INIT_FUNCTIONS))
            return None
        if fan_in is None or fan_out is None:
            return None
        env = dict(self.env, fan_in=fan_in, fan_out=fan_out)
        pos = [a for a in args if a.name is None]
        kw = {a.name: a for a in args if a.name is not None}
        if name == "checkpoint":
            if len(pos) != 1 or not isinstance(pos[0].value, S.Str):
                self.c.add(BAD_INIT, "`checkpoint` takes the run directory as a string", span,
                           help='e.g. `checkpoint("runs/a05", step = 500, tensor = "h1")`')
                return None
            step = None
            tensor = None
            for k, a in kw.items():
                if k == "step":
                    step = self.eval_int(a.value, "a checkpoint step", low=0, env=env)
                elif k == "tensor":
                    if isinstance(a.value, S.Str):
                        tensor = a.value.value
                    else:
                        self.c.add(TYPE_MISMATCH, "`tensor` is a string", a.value.span)
                else:
                    self.c.add(BAD_ARGUMENTS, f"`checkpoint` has no argument `{k}`", a.name_span,
                               help=did_you_mean(k, ["step", "tensor"]))
            if tensor is None:
                self.c.add(BAD_INIT, "`checkpoint` needs the tensor name", span,
                           help='add `tensor = "h1"` (the layer name in that run)')
                return None
            return ir.CheckpointInit(pos[0].value.value, step, tensor, span)
        expected = {"normal": ("mean", "std"), "uniform": ("low", "high"), "kaiming": ("gain",),
                    "zeros": ()}[name]
        values: dict[str, float] = {}
        if len(pos) > len(expected):
            self.c.add(BAD_ARGUMENTS, f"`{name}` takes at most {len(expected)} argument(s)", span)
            return None
        for key, a in zip(expected, pos):
            values[key] = a.value  # type: ignore[assignment]
        for k, a in kw.items():
            if k not in expected:
                self.c.add(BAD_ARGUMENTS, f"`{name}` has no argument `{k}`", a.name_span,
                           help=did_you_mean(k, expected))
                return None
            values[k] = a.value  # type: ignore[assignment]
        nums: dict[str, float] = {}
        for k, v in values.items():
            r = self.eval_real(v, f"`{k}`", env=env)  # type: ignore[arg-type]
            if r is None:
                return None
            nums[k] = r
        if name == "normal":
            if "std" not in nums:
                self.c.add(BAD_INIT, "`normal` needs a standard deviation", span,
                           help="e.g. `normal(0, 1 / sqrt(fan_in))`")
                return None
            std, mean = nums["std"], nums.get("mean", 0.0)
            if std < 0:
                self.c.add(OUT_OF_RANGE, "a standard deviation cannot be negative", values["std"].span)  # type: ignore[union-attr]
                return None
            return ir.NormalInit(mean, std, std * std * fan_in, span)
        if name == "kaiming":
            # Kaiming-normal for ReLU: std = gain / sqrt(fan_in), gain sqrt(2) by default.
            gain = nums.get("gain", math.sqrt(2.0))
            if gain < 0:
                self.c.add(OUT_OF_RANGE, "the gain of `kaiming` cannot be negative", values["gain"].span,  # type: ignore[union-attr]
                           "a negative gain", help="the default is sqrt(2), for ReLU layers")
                return None
            std = gain / math.sqrt(fan_in)
            return ir.NormalInit(0.0, std, std * std * fan_in, span)
        if name == "uniform":
            if "low" not in nums or "high" not in nums:
                self.c.add(BAD_INIT, "`uniform` needs low and high", span)
                return None
            if nums["low"] > nums["high"]:
                self.c.add(BAD_VALUE, "`uniform` needs low <= high", span)
                return None
            return ir.UniformInit(nums["low"], nums["high"], span)
        return ir.ZerosInit(span)


    def readout(self, d: Optional[S.ReadoutDecl], net: S.NetworkSyntax) -> Optional[ir.Readout]:
        if d is None:
            return ir.Readout("argmax", 1, net.span)
        if d.kind not in ir.READOUT_KINDS:
            self.c.add(BAD_READOUT, f"unknown readout `{d.kind}`", d.kind_span,
                       help=did_you_mean(d.kind, ir.READOUT_KINDS) or "readouts: argmax, logits")
            return None
        shots = 1
        if d.shots is not None:
            shots = self.eval_int(d.shots, "the number of shots", low=1, high=MAX_SHOTS)
            if shots is None:
                return None
            if d.kind == "logits":
                self.c.add(BAD_READOUT, "a vote needs `argmax`", d.span, help="write `readout argmax, vote over N shots`")
                return None
        return ir.Readout(d.kind, shots, d.span)

