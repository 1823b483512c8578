"""A neutral circuit as OpenQASM 3 in the dialect Braket's OpenQASM runner reads, with
no SDK: one classical register `c` (Braket reports results for a single register),
conditions written as conjunctions of bit tests (`c[3] == 1 && c[4] == 0`; Braket
cannot compare a register with an integer), Braket's gate names (`cnot`, `v`, `vi`,
`xx`), and `input float` declarations for parameters. It lets the dynamic strategy's
feed-forward circuit run on `LocalSimulator` through `braket.ir.openqasm.Program`."""

from __future__ import annotations

from qnnc.compiler.gates import GATES
from qnnc.runtime.targets.circuit import Circuit, Param

def _angle(a) -> str:
    return a.name if isinstance(a, Param) else repr(float(a))


def to_openqasm3(circ: Circuit) -> str:
    lines = ["OPENQASM 3.0;"]
    lines += [f"input float {p};" for p in circ.params]
    lines.append(f"bit[{circ.num_clbits}] c;")
    lines.append(f"qubit[{circ.num_qubits}] q;")
    for reg in circ.cregs:
        lines.append(f"// {reg.name} = c[{reg.clbits[0]}:{reg.clbits[-1]}]" if reg.clbits else
                     f"// {reg.name} is empty")
    for op in circ.ops:
        qs = ", ".join(f"q[{q}]" for q in op.qubits)
        if op.name == "measure":
            stmt = f"c[{op.clbit}] = measure {qs};"
        elif op.name == "reset":
            stmt = f"reset {qs};"
        elif op.name == "barrier":
            stmt = f"barrier {qs};"
        else:  # a gate: the gate table's Braket spelling
            g = GATES[op.name]
            sp = g.spelling("braket")
            params = [repr(float(x)) for x in sp.fixed] + ([_angle(op.angle)] if g.takes_angle else [])
            stmt = f"{sp.name}({', '.join(params)}) {qs};" if params else f"{sp.name} {qs};"
        if op.condition is not None:
            cond = " && ".join(f"c[{b}] == {(op.condition.value >> k) & 1}"
                               for k, b in enumerate(op.condition.clbits))
            stmt = f"if ({cond}) {{ {stmt} }}"
        lines.append(stmt)
    return "\n".join(lines) + "\n"
