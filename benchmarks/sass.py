"""Static reading of one compiled Triton kernel: its TTIR (which pointer arguments are loaded
and stored, how many elements each access moves, inside which loop) and its sm_90 SASS
(instruction mix, loop bodies, load/store vector widths, resource usage from cuobjdump).

Everything here is read from compiler output; nothing runs on a GPU. Counts weighted by loop
trip counts are estimates: the trip counts come from the kernel's Python source evaluated on
the launch's arguments (:func:`loop_trip_counts`), paired in order with the loops the compiler
emitted.
"""

import ast
import functools
import inspect
import math
import os
import re
import subprocess
import tempfile
import textwrap
from collections import Counter
from dataclasses import dataclass, field

import triton

NVIDIA_BIN = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
CUOBJDUMP = os.path.join(NVIDIA_BIN, "cuobjdump")
PTXAS = os.path.join(NVIDIA_BIN, "ptxas")

# Floating-point operations per SASS instruction (per thread): fused multiply-add counts 2,
# packed half/bf16 pairs count twice. MUFU (exp2, rsqrt, ...) counts 1.
FLOPS_PER_INSTRUCTION = {
    "FFMA": 2,
    "FADD": 1,
    "FMUL": 1,
    "FFMA2": 4,
    "FADD2": 2,
    "FMUL2": 2,
    "DFMA": 2,
    "DADD": 1,
    "DMUL": 1,
    "HFMA2": 4,
    "HADD2": 2,
    "HMUL2": 2,
    "MUFU": 1,
}
MEMORY_OPCODES = ("LDG", "STG", "LDS", "STS", "LD", "ST", "ATOMG", "RED", "LDL", "STL")
_WIDTH_SUFFIX = {"128": 128, "64": 64, "U8": 8, "S8": 8, "U16": 16, "S16": 16}
_SASS_LINE = re.compile(r"^\s*/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;")
_RESOURCES = re.compile(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)")
_TTIR_ELEMENT_BYTES = {
    "f64": 8,
    "i64": 8,
    "f32": 4,
    "i32": 4,
    "bf16": 2,
    "f16": 2,
    "i16": 2,
    "i8": 1,
    "i1": 1,
    "f8E4M3FN": 1,
    "f8E5M2": 1,
}


@dataclass
class Instruction:
    address: int
    opcode: str  # with modifiers, e.g. LDG.E.128
    operands: str

    @property
    def base(self):
        return self.opcode.split(".")[0]


@dataclass
class SassListing:
    instructions: list
    loops: list  # (first, last) instruction indices of each backward branch's body, by start
    registers: int
    stack_bytes: int
    static_shared_bytes: int
    local_bytes: int


def _run(*command):
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


@functools.lru_cache(maxsize=1)
def ptxas_version():
    lines = _run(PTXAS, "--version").strip().splitlines()
    return lines[-1] if lines else "unknown"


def read_cubin(cubin: bytes) -> SassListing:
    """Disassemble a cubin with the cuobjdump that ships in Triton's wheel."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "kernel.cubin")
        with open(path, "wb") as handle:
            handle.write(cubin)
        resources = _RESOURCES.search(_run(CUOBJDUMP, "--dump-resource-usage", path))
        listing = _run(CUOBJDUMP, "-sass", path)
    instructions = []
    for line in listing.splitlines():
        match = _SASS_LINE.match(line)
        if not match:
            continue
        text = re.sub(r"^@!?U?P[T0-9]+\s+", "", match.group(2).strip())  # drop the predicate
        opcode, _, operands = text.partition(" ")
        if opcode == "NOP":
            continue
        instructions.append(Instruction(int(match.group(1), 16), opcode, operands.strip()))
    index_of = {instruction.address: i for i, instruction in enumerate(instructions)}
    loops = []
    for i, instruction in enumerate(instructions):
        if instruction.base != "BRA":
            continue
        target = re.search(r"0x([0-9a-f]+)", instruction.operands)
        if not target:
            continue
        address = int(target.group(1), 16)
        # the self-branch after the final EXIT is padding, not a loop
        if address < instruction.address and address in index_of:
            loops.append((index_of[address], i))
    loops.sort()
    registers, stack, shared, local = (int(value) for value in resources.groups())
    return SassListing(instructions, loops, registers, stack, shared, local)


def access_width_bits(opcode):
    """Bits one thread moves with a load/store opcode such as LDG.E.128 (default 32)."""
    for part in opcode.split(".")[1:]:
        if part in _WIDTH_SUFFIX:
            return _WIDTH_SUFFIX[part]
    return 32


# ------------------------------------------------------------------------------------------
# Python source: the kernel's run-time loops and their trip counts


def _is_runtime_range(node):
    """``range(...)`` or ``tl.range(...)``; ``tl.static_range`` is unrolled at compile time."""
    func = node.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
    return name == "range"


def loop_trip_counts(kernel, arguments):
    """Trip counts of the kernel's run-time ``for`` loops in source order, nested loops
    multiplied by their parents' trips; ``None`` for a loop whose bounds are not plain
    expressions of the launch arguments (or which sits inside a loop that is unknown)."""
    source = textwrap.dedent(inspect.getsource(kernel.fn))
    tree = ast.parse(source)
    function = next(node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef))
    trips = []

    def visit(body, outer):
        for node in body:
            if (
                isinstance(node, ast.For)
                and isinstance(node.iter, ast.Call)
                and _is_runtime_range(node.iter)
            ):
                count = _range_length(node.iter.args, arguments)
                total = None if count is None or outer is None else count * outer
                trips.append(total)
                visit(node.body, total)
                continue
            for child in ("body", "orelse", "finalbody"):
                if hasattr(node, child) and not isinstance(node, ast.FunctionDef):
                    visit(getattr(node, child), outer)

    visit(function.body, 1)
    return trips


def _range_length(args, arguments):
    try:
        values = [
            eval(
                compile(ast.Expression(arg), "<range>", "eval"),  # noqa: S307
                {"__builtins__": {}},
                dict(arguments),
            )
            for arg in args
        ]
    except Exception:  # a bound computed inside the kernel: unknown here
        return None
    if not all(isinstance(value, int) for value in values):
        return None
    start, stop, step = {1: (0, values[0], 1), 2: (*values, 1), 3: tuple(values)}[len(values)]
    return max(0, math.ceil((stop - start) / step))


# ------------------------------------------------------------------------------------------
# TTIR: which pointer arguments are read and written, and how many elements per access


@dataclass
class MemoryAccess:
    argument: str
    kind: str  # "load", "store" or "atomic"
    elements: int  # per program instance and execution
    element_bytes: int
    loops: tuple = field(default_factory=tuple)  # indices of the enclosing scf.for loops


def _shape_elements(type_text):
    """Elements of ``tensor<64x16x!tt.ptr<f32>>`` (1 for a scalar pointer)."""
    match = re.search(r"tensor<((?:\d+x)+)!tt\.ptr<(\w+)>", type_text)
    if match:
        dims = [int(d) for d in match.group(1).rstrip("x").split("x")]
        return math.prod(dims), _TTIR_ELEMENT_BYTES.get(match.group(2), 4)
    match = re.search(r"!tt\.ptr<(\w+)>", type_text)
    return 1, _TTIR_ELEMENT_BYTES.get(match.group(1), 4) if match else 4


def read_ttir(ttir):
    """(memory accesses, number of scf.for loops) of one kernel's TTIR."""
    origins = {}  # SSA value -> pointer arguments it derives from
    header = re.search(r"tt\.func[^(]*\((.*)\)\s*attributes", ttir)
    if header:
        for name in re.findall(r"%(\w+): !tt\.ptr", header.group(1)):
            origins[name] = {name}
    accesses, open_loops, num_loops, depth = [], [], 0, 0
    for line in ttir.splitlines():
        code = line.split(" loc(")[0]
        lhs, equals, rhs = code.partition(" = ")
        if not equals:
            lhs, rhs = "", code
        operands = re.findall(r"%([\w.]+)", rhs)
        for new, old in re.findall(r"%([\w.]+) = %([\w.]+)", rhs if "iter_args" in rhs else ""):
            if old in origins:
                origins[new] = origins[old]
        derived = (
            set().union(*(origins.get(name, set()) for name in operands)) if operands else set()
        )
        if derived and "!tt.ptr" in rhs:
            for name in re.findall(r"%([\w.]+)", lhs):
                origins[name.split(":")[0]] = derived
        op = re.match(r"\s*(\S+)", rhs)
        op = op.group(1) if op else ""
        kinds = {
            "tt.load": "load",
            "tt.store": "store",
            "tt.atomic_rmw": "atomic",
            "tt.atomic_cas": "atomic",
        }
        if op in kinds and operands:
            pointer = operands[0] if op != "tt.atomic_rmw" else operands[0]
            elements, element_bytes = _shape_elements(rhs.rpartition(":")[2])
            for argument in sorted(origins.get(pointer, ())):
                accesses.append(
                    MemoryAccess(
                        argument,
                        kinds[op],
                        elements,
                        element_bytes,
                        tuple(index for index, _ in open_loops),
                    )
                )
        # a loop with results reads "%r = scf.for %i = ...", one without "scf.for %i = ...",
        # which the split at " = " above leaves in lhs
        if op == "scf.for" or code.lstrip().startswith("scf.for "):
            open_loops.append((num_loops, depth))
            num_loops += 1
        depth += code.count("{") - code.count("}")
        while open_loops and depth <= open_loops[-1][1]:
            open_loops.pop()
    return accesses, num_loops


def _counter_step(listing, first, last):
    """The largest negative immediate an integer add in a loop body applies: the step of the
    trip counter ptxas counts down when it unrolls (4 for a loop unrolled four times)."""
    steps = [1]
    for instruction in listing.instructions[first : last + 1]:
        if instruction.base in ("IADD3", "IADD", "UIADD3"):
            steps += [
                int(value, 16) for value in re.findall(r"-0x([0-9a-f]+)", instruction.operands)
            ]
    return max(steps)


def _sequential(loops):
    return all(earlier[1] < later[0] for earlier, later in zip(loops, loops[1:]))


def loop_weights(listing, trips):
    """Per SASS loop, how many times its body runs, and how they were paired with the
    source's loops: "paired" (one SASS loop per source loop, in order), "unrolled" (one source
    loop that ptxas unrolled into a main loop counting down by its step plus remainder loops:
    the main loop runs trips // step times, each remainder loop trips % step), or None (not
    modelled: every instruction counts once)."""
    if not listing.loops and not trips:
        return [], "paired"
    if any(count is None for count in trips):
        return None, None
    if len(listing.loops) == len(trips):
        return list(trips), "paired"
    if len(trips) == 1 and len(listing.loops) > 1 and _sequential(listing.loops):
        step = _counter_step(listing, *listing.loops[0])
        if step > 1:
            return [trips[0] // step] + [trips[0] % step] * (len(listing.loops) - 1), "unrolled"
    return None, None


def weighted_instruction_counts(listing, trips):
    """Per-thread dynamic counts of each opcode: an instruction inside the body of a SASS loop
    counts as often as the body runs (see :func:`loop_weights`; a body that runs 0 times is
    still counted once, an over-count of one body). Returns (counts, loop model or None)."""
    multiplicity = [1] * len(listing.instructions)
    weights, model = loop_weights(listing, trips)
    for (first, last), count in zip(listing.loops, weights or ()):
        # nested trip counts already include the parents', so an inner loop's
        # instructions take the largest, not the product
        for index in range(first, last + 1):
            multiplicity[index] = max(multiplicity[index], count)
    counts = Counter()
    for instruction, weight in zip(listing.instructions, multiplicity):
        counts[instruction.opcode] += weight
    return counts, model
