"""The rooms of app/: no package imports another that imports it back, and imports sit at
the top of their modules (only the app factory wires things up inside functions).

Both rules are read from the source with ast, so they hold for code paths no other test
runs. Each rule is also run once on a small tree written here, so a rule that stopped
seeing cycles or nested imports would fail too.
"""

import ast
import pathlib

APP = pathlib.Path(__file__).resolve().parent.parent / "app"

# The app factory registers blueprints, extensions, CLI commands and signal handlers
# inside create_app and its helpers: importing those modules at the top of app/__init__.py
# would import the whole application whenever any part of it is imported.
NESTED_IMPORTS_ALLOWED = {"app/__init__.py"}


def _module_parts(path, root):
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return parts, is_package


def _imported_modules(node, parts, is_package):
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = parts if is_package else parts[:-1]
        base = base[: len(base) - (node.level - 1)]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module or ""
    # "from app.x import y" may name a module y inside package x
    return [module] + [f"{module}.{alias.name}" for alias in node.names]


def _walk(node, functions, where, found):
    rel, unit, parts, is_package = where
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            _walk(child, functions + [child.name], where, found)
            continue
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            for module in _imported_modules(child, parts, is_package):
                found.append((rel, child.lineno, unit, module, functions))
        _walk(child, functions, where, found)


def read_imports(root):
    """Every import in the tree under root: (file, line, importing unit, imported module,
    names of the enclosing functions). A unit is a package or module directly under root."""
    found = []
    for path in sorted(root.rglob("*.py")):
        parts, is_package = _module_parts(path, root)
        unit = parts[1] if len(parts) > 1 else "__init__"
        rel = path.relative_to(root.parent).as_posix()
        _walk(ast.parse(path.read_text()), [], (rel, unit, parts, is_package), found)
    return found


def package_graph(root):
    """unit -> {imported unit: [where]} for imports between different units of root."""
    top = root.name
    graph = {}
    for rel, line, unit, module, _functions in read_imports(root):
        pieces = module.split(".")
        if pieces[0] != top or len(pieces) < 2 or pieces[1] == unit:
            continue
        graph.setdefault(unit, {}).setdefault(pieces[1], []).append(f"{rel}:{line}")
    return graph


def cycles(graph):
    """The strongly connected groups of more than one unit (Tarjan), each sorted."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(unit):
        index[unit] = low[unit] = len(index)
        stack.append(unit)
        on_stack.add(unit)
        for other in graph.get(unit, {}):
            if other not in index:
                visit(other)
                low[unit] = min(low[unit], low[other])
            elif other in on_stack:
                low[unit] = min(low[unit], index[other])
        if low[unit] == index[unit]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == unit:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for unit in list(graph):
        if unit not in index:
            visit(unit)
    return sorted(groups)


def nested_imports(root, allowed):
    return [
        f"{rel}:{line} in {'.'.join(functions)}: {module}"
        for rel, line, _unit, module, functions in read_imports(root)
        if functions and rel not in allowed
    ]


def _describe(graph, group):
    return "; ".join(
        f"{a} -> {b} ({', '.join(graph[a][b][:2])})" for a in group for b in group if b in graph.get(a, {})
    )


def test_no_package_of_app_imports_one_that_imports_it_back():
    graph = package_graph(APP)
    assert graph, "the import graph of app/ came out empty"
    found = cycles(graph)
    assert found == [], "\n".join(_describe(graph, group) for group in found)


def test_only_the_app_factory_imports_inside_functions():
    assert nested_imports(APP, NESTED_IMPORTS_ALLOWED) == []


def _write(root, files):
    for name, source in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)


def test_the_rules_see_a_cycle_and_a_nested_import(tmp_path):
    app = tmp_path / "app"
    _write(
        app,
        {
            "__init__.py": "",
            "orders/__init__.py": "",
            "orders/services.py": "from app.mail.send import deliver\n",
            "mail/__init__.py": "",
            "mail/send.py": "def deliver():\n    from ..orders import services\n",
            "clock.py": "import datetime\n",
            "reports/__init__.py": "from app import clock\n",
        },
    )
    graph = package_graph(app)
    assert cycles(graph) == [["mail", "orders"]]
    assert graph["reports"] == {"clock": ["app/reports/__init__.py:1"]}
    assert nested_imports(app, set()) == [
        "app/mail/send.py:2 in deliver: app.orders",
        "app/mail/send.py:2 in deliver: app.orders.services",
    ]
    assert nested_imports(app, {"app/mail/send.py"}) == []


# The dispatch tick (claim → send → record) reports what the providers answered; it does
# not act on the suppression list or the customer pages itself: a Twilio 21610 is recorded
# as a failure of kind "opted_out" and sent as ``send_refused``, which the suppression list
# (app/optouts/services.py, connected in the app factory) acts on.
TICK_MODULES = ("app/lifecycle/dispatch.py", "app/lifecycle/claims.py", "app/lifecycle/results.py")


def test_the_dispatch_tick_reports_refusals_and_leaves_the_suppression_list_to_optouts():
    found = {
        (rel, module)
        for rel, _line, _unit, module, _functions in read_imports(APP)
        if rel in TICK_MODULES and module.startswith(("app.optouts.services", "app.public"))
    }
    assert {rel for rel, *_ in read_imports(APP)} >= set(TICK_MODULES)
    assert found == set()
