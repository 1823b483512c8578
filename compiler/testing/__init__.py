"""Hypothesis strategies for `.qnn` programs: `qnnc.compiler.testing`.

For property tests of the compiler and of anything that consumes its IR:

    from hypothesis import given, strategies as st
    from qnnc.compiler import format_source, parse_program
    from qnnc.compiler.testing import messy_layout, programs

    @given(programs())
    def test_checks(text):
        parse_program(text)                    # every generated program is valid

    @given(st.data())
    def test_fmt_ignores_layout(data):
        text = data.draw(programs())
        assert format_source(data.draw(messy_layout(text))) == text

Strategies:

    syntax_modules()  -> qnnc.compiler.syntax.Module   a valid program as a syntax tree
    programs()        -> str                            its canonical text (`qnnc fmt` layout)
    ir_programs()     -> qnnc.compiler.ir.Program       programs().map(parse_program)
    messy_layout(text, comments=False) -> str           the same program, re-laid out
    names()           -> str                            a user name (identifier or keyword)

Generated programs are small (a few parameters, neurons and layers) so that hundreds of
examples run in seconds, but they use every construct of the language: typed and ranged
`param`s whose values are expressions over earlier params; user neurons with real, int
and squash parameters, a qubit (sometimes carried) and ancillas, built from
ry/rx/rz/x/h/cx/cz/measure/reset with angle expressions in `z`, `last` (only with a
carried qubit), the neuron's parameters, `pi` and the built-in functions; the stdlib
neurons; networks of random depth and width with classical and quantum activations bound
to valid arguments (positional and keyword), preprocessing steps, every init, readouts;
and train blocks with random statements and checkpoint schedules. Names are drawn from
identifiers and from the language's (contextual) keywords.

Every generated program elaborates without error: the generator tracks the value of
every expression it writes (with the same int/float rules as the compiler) and only
writes values that fit the declared ranges. That is part of the property being tested.

Modules: `values` (names, and constant expressions with their values, computed by the
compiler's own `qnnc.compiler.expressions`), `programs` (neurons, networks, train
blocks, whole programs), `layout` (`messy_layout`). Needs the `hypothesis` package (the
`test` extra).
"""

from qnnc.compiler.testing.layout import messy_layout
from qnnc.compiler.testing.programs import ir_programs, programs, syntax_modules
from qnnc.compiler.testing.values import names

__all__ = ["syntax_modules", "programs", "ir_programs", "messy_layout", "names"]
