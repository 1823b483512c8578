"""Elaborating train blocks: data sets, optimizer, loss, gradient, batch, epochs, seed
and the checkpoint schedule."""

from __future__ import annotations

from typing import Optional

from qnnc.compiler import ir
from qnnc.compiler import syntax as S
from qnnc.compiler.limits import MAX_BATCH, MAX_CHECKPOINTS, MAX_EPOCHS, MAX_SEED, MAX_TOTAL_STEPS
from qnnc.compiler.codes import (BAD_ARGUMENTS, BAD_SCHEDULE, BAD_TRAIN, DUPLICATE_NAME,
                                 MISSING_STATEMENT, OUT_OF_RANGE, UNKNOWN_DATASET, UNKNOWN_NETWORK)
from qnnc.compiler.diagnostics import did_you_mean
from qnnc.compiler.elaborate.scope import Scope
from qnnc.compiler.elaborate.text import where
from qnnc.compiler.ir import Span

BUILTIN_DATASETS = ("mnist.train5k", "mnist.test", "mnist.train")
OPTIMIZERS = {"sgd": ("lr", "momentum", "weight_decay"), "adam": ("lr", "weight_decay")}
LOSSES = ("cross_entropy",)


class TrainElaboration(Scope):
    def train(self, d: S.TrainSyntax, networks: dict[str, ir.Network]) -> Optional[ir.TrainRecipe]:
        if d.name not in networks:
            self.c.add(UNKNOWN_NETWORK, f"unknown network `{d.name}`", d.name_span,
                       help=did_you_mean(d.name, networks) or "train blocks are named after a network")
            return None
        stmts: dict[str, S.TrainStmt] = {}
        for st in d.body:
            if st.keyword in stmts:
                self.c.add(DUPLICATE_NAME, f"`{st.keyword}` is given twice", st.span, "given again here")
                continue
            stmts[st.keyword] = st
        if "data" not in stmts:
            self.c.add(MISSING_STATEMENT, f"train block `{d.name}` has no `data` statement", d.name_span,
                       help="add e.g. `data mnist.train5k`")
            return None
        data = self.dataset(stmts["data"].value)
        validate = self.dataset(stmts["validate"].value) if "validate" in stmts else None
        optimizer = ir.Optimizer("sgd", 0.01, 0.9, 0.0, d.span)
        if "optimizer" in stmts:
            optimizer = self.optimizer(stmts["optimizer"].value)
        batch = self.eval_int(stmts["batch"].value, "the batch size", low=1, high=MAX_BATCH) if "batch" in stmts else 64
        epochs = self.eval_int(stmts["epochs"].value, "the number of epochs", low=0, high=MAX_EPOCHS) if "epochs" in stmts else 10
        seed = self.eval_int(stmts["seed"].value, "the seed", low=0, high=MAX_SEED) if "seed" in stmts else 0
        loss = "cross_entropy"
        if "loss" in stmts:
            name = stmts["loss"].value
            if name.name not in LOSSES:
                self.c.add(BAD_TRAIN, f"unknown loss `{name.name}`", name.span,
                           help=did_you_mean(name.name, LOSSES) or "losses: " + ", ".join(LOSSES))
                loss = None
            else:
                loss = name.name
        gradient = ir.Gradient("straight_through", 1.0, d.span)
        if "gradient" in stmts:
            gradient = self.gradient(stmts["gradient"].value)
        schedule = ir.CheckpointSchedule(None, False, (), True, d.span)
        if "checkpoint" in stmts:
            schedule = self.schedule(stmts["checkpoint"])
        parts = (data, optimizer, batch, epochs, seed, loss, gradient, schedule)
        if any(p is None for p in parts) or ("validate" in stmts and validate is None):
            return None
        return ir.TrainRecipe(d.name, data, validate, optimizer, batch, epochs, seed, loss, gradient,
                              schedule, d.span)

    def dataset(self, ds: S.DatasetSyntax) -> Optional[ir.Dataset]:
        if ds.kind == "builtin":
            if ds.text not in BUILTIN_DATASETS:
                self.c.add(UNKNOWN_DATASET, f"unknown data set `{ds.text}`", ds.span,
                           help=did_you_mean(ds.text, BUILTIN_DATASETS)
                           or "built-in: " + ", ".join(BUILTIN_DATASETS) + '; or a file: "path.npz"')
                return None
            return ir.Dataset("builtin", ds.text, ds.span)
        path = S.Str(ds.text).value
        if not path.endswith(".npz"):
            self.c.add(UNKNOWN_DATASET, f"data files are .npz archives, not `{path}`", ds.span,
                       help="save arrays `images` and `labels` with numpy.savez")
            return None
        return ir.Dataset("file", path, ds.span)

    def optimizer(self, call: S.CallSyntax) -> Optional[ir.Optimizer]:
        if call.name not in OPTIMIZERS:
            self.c.add(BAD_TRAIN, f"unknown optimizer `{call.name}`", call.name_span,
                       help=did_you_mean(call.name, OPTIMIZERS) or "optimizers: sgd, adam")
            return None
        names = OPTIMIZERS[call.name]
        values = {"lr": 0.01 if call.name == "sgd" else 0.001, "momentum": 0.0, "weight_decay": 0.0}
        args = call.args or ()
        for i, a in enumerate(args):
            key = a.name if a.name is not None else (names[i] if i < len(names) else None)
            if key is None or key not in names:
                self.c.add(BAD_ARGUMENTS, f"`{call.name}` has no argument `{key or '#' + str(i + 1)}`",
                           a.name_span if a.name else a.span,
                           help=did_you_mean(key or "", names) or "arguments: " + ", ".join(names))
                return None
            v = self.eval_real(a.value, f"`{key}`")
            if v is None:
                return None
            if v < 0 or (key == "lr" and v == 0):
                self.c.add(OUT_OF_RANGE, f"`{key}` must be {'positive' if key == 'lr' else 'non-negative'}",
                           a.value.span)
                return None
            values[key] = v
        return ir.Optimizer(call.name, values["lr"], values["momentum"], values["weight_decay"], call.span)

    def gradient(self, call: S.CallSyntax) -> Optional[ir.Gradient]:
        if call.name not in ir.GRADIENT_KINDS:
            self.c.add(BAD_TRAIN, f"unknown gradient `{call.name}`", call.name_span,
                       help=did_you_mean(call.name, ir.GRADIENT_KINDS) or "gradients: straight_through, exact")
            return None
        window = 1.0
        for a in call.args or ():
            if call.name == "straight_through" and a.name in (None, "window"):
                w = self.eval_real(a.value, "the window")
                if w is None:
                    return None
                if w <= 0:
                    self.c.add(OUT_OF_RANGE, "the window must be positive", a.value.span)
                    return None
                window = w
            else:
                self.c.add(BAD_ARGUMENTS, f"`{call.name}` has no argument `{a.name or ''}`".replace(" ``", ""),
                           a.span, help="straight_through(window = 1); exact takes none")
                return None
        return ir.Gradient(call.name, window, call.span)

    def schedule(self, st: S.TrainStmt) -> Optional[ir.CheckpointSchedule]:
        every, log, steps, end = None, False, [], False
        seen: dict[int, Span] = {}
        for sch in st.value:
            if sch.kind == "every" and every is not None:
                self.c.add(BAD_SCHEDULE, "`every N steps` is given twice", sch.span, "a second interval",
                           help="keep one interval; list extra steps with `at steps [...]`")
                return None
            if sch.kind == "every":
                every = self.eval_int(sch.values[0], "a checkpoint interval", low=1, high=MAX_TOTAL_STEPS)
                if every is None:
                    return None
            elif sch.kind == "log":
                log = True
            elif sch.kind == "end":
                end = True
            else:
                for e in sch.values:
                    v = self.eval_int(e, "a checkpoint step", low=0, high=MAX_TOTAL_STEPS)
                    if v is None:
                        return None
                    if v in seen:
                        self.c.add(BAD_SCHEDULE, f"checkpoint step {v} is listed twice", e.span,
                                   "listed again here", notes=[f"first listed at {where(seen[v])}"])
                        return None
                    seen[v] = e.span
                    steps.append(v)
        if len(steps) > MAX_CHECKPOINTS:
            self.c.add(BAD_SCHEDULE, f"{len(steps):,} checkpoint steps are listed; the limit is "
                       f"{MAX_CHECKPOINTS:,}", st.span, "too many checkpoints")
            return None
        return ir.CheckpointSchedule(every, log, tuple(sorted(steps)), end, st.span)

