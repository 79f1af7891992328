"""MkDocs hooks: every page that describes code is generated from the code at build time.

* ``api/``: one page per public module, from its ``__all__`` (see ``api.py`` for the checks that
  fail the build when a public name has no entry or no docstring).
* ``catalogue/``: one page per family module, walking the loss registry, with a plot of each loss
  and its gradient computed from the real function (``plots.py``).
* ``examples/``: one page per ``examples/*.py``, with its output plot when one is present.
* Placeholders ``<!-- gen: NAME -->`` in hand-written pages are replaced by generated tables
  (porting tables, benchmark tables and charts from ``benchmarks/results/latest.json``).

Images live for one build only (in memory, or in a temporary directory for the loss plots, which
worker processes draw while the pages render); nothing is written to ``docs/``.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
for path in (str(HERE), str(ROOT)):
    if path not in sys.path:
        sys.path.insert(0, path)
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("KERAS_BACKEND", "jax")

import site_api as api  # noqa: E402
import site_plots as plots  # noqa: E402
import site_porting as porting  # noqa: E402
import site_text as text  # noqa: E402
from mkdocs.exceptions import PluginError  # noqa: E402
from mkdocs.structure.files import File  # noqa: E402

log = logging.getLogger("mkdocs.hooks.jaxloss")
PLACEHOLDER = re.compile(r"<!--\s*gen:\s*([\w-]+)\s*-->")

KIND_INPUTS = {
    "regression": "real-valued `y_true` and `y_pred` of the same shape",
    "binary": "`y_true` in {0, 1} (or soft targets in [0, 1]); `y_pred` probabilities or logits",
    "categorical": "one-hot or soft `y_true` [..., C]; `y_pred` probabilities or logits [..., C]",
    "sparse_categorical": "integer labels `y_true` [...]; `y_pred` probabilities or logits "
    "[..., C]",
    "segmentation": "masks `y_true` in [0, 1]; probabilities `y_pred`, same shape [batch, ..., C]",
    "metric_learning": "integer labels `y_true` [batch]; L2-normalised embeddings `y_pred` "
    "[batch, dim]",
    "ctc": "padded integer labels `y_true` [batch, L]; logits `y_pred` [batch, T, C]",
    "linear_head": "integer labels `y_true` [...]; `y_pred` the pair `(hidden, weight[, bias])` "
    "whose product would be the logits",
}


@dataclasses.dataclass
class Site:
    modules: list[api.Module]
    families: dict[str, list[Any]]  # family -> registry entries
    family_docs: dict[str, str]  # family -> module path
    pages: dict[str, str] = dataclasses.field(default_factory=dict)
    images: dict[str, bytes] = dataclasses.field(default_factory=dict)
    plot_files: dict[str, Path] = dataclasses.field(default_factory=dict)
    snippets: dict[str, str] = dataclasses.field(default_factory=dict)
    # identifier -> page; the same dict the griffe extension resolves roles against
    known: dict[str, str] = dataclasses.field(default_factory=lambda: text.KNOWN)


STATE: dict[str, Site] = {}


def _family(fn: Any) -> tuple[str, str]:
    module = getattr(fn, "__module__", "jaxloss")
    name = module.rsplit(".", 1)[-1].lstrip("_")
    return name, module


def _title(name: str) -> str:
    return name.replace("_", " ").capitalize()


def load_site() -> Site:
    """Import jaxloss, check its public API and group the registry by family (cached per build)."""
    if "site" in STATE:
        return STATE["site"]
    try:
        modules = api.load()
    except api.APIError as err:
        raise PluginError(str(err)) from err
    from jaxloss._registry import registered

    families: dict[str, list[Any]] = {}
    family_docs: dict[str, str] = {}
    for entry in registered():
        name, module = _family(entry.function)
        families.setdefault(name, []).append(entry)
        family_docs[name] = module
    site = Site(modules, families, family_docs)
    STATE["site"] = site
    return site


# ---------------------------------------------------------------------------------------------
# MkDocs events


def on_config(config: Any) -> Any:
    site = load_site()
    STATE.pop("built", None)
    site.pages.clear()
    site.images.clear()
    site.plot_files.clear()
    _register_identifiers(site)

    def expand(item: Any) -> Any:
        if isinstance(item, dict):
            return {k: expand(v) for k, v in item.items()}
        if isinstance(item, list):
            return [expand(v) for v in item]
        if item == "catalogue/index.md":
            return [item] + [{_title(f): f"catalogue/{f}.md"} for f in site.families]
        if item == "api/index.md":
            return [item] + [{m.title: m.page} for m in site.modules]
        if item == "examples/index.md":
            return [item] + [{p.name: f"examples/{p.stem}.md"} for p in _examples()]
        return item

    config["nav"] = expand(config["nav"])
    return config


def on_files(files: Any, config: Any) -> Any:
    site = load_site()
    if "built" not in STATE:
        _api_pages(site)
        _catalogue(site)
        _example_pages(site)
        _benchmarks(site)
        _porting(site)
        _concept_snippets(site)
        STATE["built"] = site  # type: ignore[assignment]
    for path, content in site.pages.items():
        files.append(File.generated(config, path, content=content))
    for path, data in site.images.items():
        files.append(File.generated(config, path, content=data))
    # Written by the plotter's workers before the static files are copied (see on_env).
    for path, source in site.plot_files.items():
        files.append(File.generated(config, path, abs_src_path=str(source)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    site = load_site()

    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in site.snippets:
            log.warning("%s: unknown placeholder <!-- gen: %s -->", page.file.src_uri, key)
            return ""
        return site.snippets[key]

    return PLACEHOLDER.sub(sub, markdown)


# ---------------------------------------------------------------------------------------------
# Identifiers and links


def _register_identifiers(site: Site) -> None:
    registered_objs = {
        id(o): fam for fam, es in site.families.items() for e in es for o in (e.function, e.cls)
    }
    # Modules are linked by page, not by identifier: a module docstring is rendered without a
    # heading, so it registers no anchor.
    for m in site.modules:
        for n in m.names:
            if n.kind == "alias":
                continue
            if n.kind == "module":
                continue
            fam = registered_objs.get(id(n.obj)) if m.path == "jaxloss" else None
            n.page = f"catalogue/{fam}.md" if fam else m.page
            site.known[n.identifier] = n.page
            if n.kind == "class":
                for member, value in vars(n.obj).items():
                    if not member.startswith("_") and api.own_doc(value):
                        site.known[f"{n.identifier}.{member}"] = n.page


def ref(identifier: str, shown: str | None = None) -> str:
    """A Markdown cross-reference to a documented identifier."""
    return f"[`{shown or identifier}`][{identifier}]"


def _canonical(site: Site, dotted: str) -> str | None:
    """The documented identifier for ``dotted`` (an alias resolves to its target)."""
    if dotted in site.known:
        return dotted
    module, _, name = dotted.rpartition(".")
    for m in site.modules:
        if m.path == module:
            for n in m.names:
                if n.name == name and n.kind == "alias":
                    return f"{module}.{n.target}"
    return None


# ---------------------------------------------------------------------------------------------
# API reference


def _entry(identifier: str, level: int) -> str:
    return f"::: {identifier}\n    options:\n      heading_level: {level}\n"


def _api_pages(site: Site) -> None:
    index = [
        "# API reference",
        "",
        "Generated from the code: every name in the `__all__` of each public module has an entry "
        "(the build fails otherwise). Loss handles are documented on their "
        "[catalogue](../catalogue/index.md) page, next to their plots.",
        "",
        "| module | names | summary |",
        "|---|---|---|",
    ]
    for m in site.modules:
        summary = m.doc.split("\n\n", 1)[0].replace("\n", " ")
        summary = _cell(text.convert_roles(summary, lambda t: text.resolve(t, ["jaxloss"])))
        index.append(f"| [`{m.path}`]({Path(m.page).name}) | {len(m.names)} | {summary} |")
    site.pages["api/index.md"] = "\n".join(index) + "\n"

    for m in site.modules:
        lines = [f"# `{m.path}`", "", _module_doc(m.path), ""]
        lines += ["| name | kind | summary |", "|---|---|---|"]
        for n in m.names:
            if n.kind == "alias":
                lines.append(f"| `{n.name}` | alias | of {ref(f'{m.path}.{n.target}', n.target)} |")
            elif n.kind == "module":
                page = next((x.page for x in site.modules if x.module is n.obj), None)
                link = f"[`{n.name}`]({Path(page).name})" if page else f"`{n.name}`"
                lines.append(f"| {link} | module | {_summary(n)} |")
            else:
                lines.append(f"| {ref(n.identifier, n.name)} | {n.kind} | {_summary(n)} |")
        lines += ["", "## Entries", ""]
        for n in m.names:
            if n.kind in ("alias", "module") or n.page != m.page:
                continue
            lines.append(_entry(n.identifier, 3))
        site.pages[m.page] = "\n".join(lines) + "\n"


def _module_doc(path: str) -> str:
    """A module's docstring, rendered by mkdocstrings without its members."""
    return (
        f"::: {path}\n    options:\n      show_root_heading: false\n      members: false\n"
        "      show_root_toc_entry: false\n"
    )


def _summary(n: api.Name) -> str:
    """The first paragraph of a docstring, roles resolved, safe inside a table cell."""
    context = [n.module, "jaxloss.ops", "jaxloss"]
    return _cell(text.convert_roles(n.summary, lambda t: text.resolve(t, context)))


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


# ---------------------------------------------------------------------------------------------
# Loss catalogue


def _options(fn: Any) -> str:
    try:
        params = list(inspect.signature(fn).parameters.values())[2:]
    except (TypeError, ValueError):
        return ""
    shown = []
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = "" if p.default is p.empty else f"={p.default!r}"
        shown.append(f"`{p.name}{default}`")
    return ", ".join(shown)


def _catalogue(site: Site) -> None:
    rows = []
    plotter = Plotter()
    STATE["plotter"] = plotter  # type: ignore[assignment]
    plotter.start([e for entries in site.families.values() for e in entries])
    for fam, entries in site.families.items():
        page = f"catalogue/{fam}.md"
        lines = [f"# {_title(fam)}", "", _module_doc(site.family_docs[fam]), ""]
        lines += ["| function | class | aliases | inputs | options |", "|---|---|---|---|---|"]
        for e in entries:
            fn, cls = e.function.__name__, e.cls.__name__
            aliases = ", ".join(f"`{a}`" for a in e.aliases)
            lines.append(
                f"| [`{fn}`](#{fn}) | {ref('jaxloss.' + cls, cls)} | {aliases} | "
                f"[{e.inputs}](index.md#inputs-{e.inputs}) | {_options(e.function)} |"
            )
            keras = "yes" if cls in porting.KERAS3_CLASSES else "no (jaxloss addition)"
            rows.append(
                f"| {ref('jaxloss.' + fn, fn)} | {ref('jaxloss.' + cls, cls)} | "
                f"[{_title(fam)}]({fam}.md) | [{e.inputs}](#inputs-{e.inputs}) | {keras} |"
            )
        kinds: dict[str, list[Any]] = {}
        for e in entries:
            kinds.setdefault(e.inputs, []).append(e)
        for kind, group in kinds.items():
            lines += ["", f"## Inputs: {kind}", "", KIND_INPUTS.get(kind, ""), ""]
            for e in group:
                fn = e.function.__name__
                try:
                    caption = plots.recipe_for(e.function, e.inputs).caption
                except Exception as err:  # the worker reports the same failure
                    log.debug("catalogue: no recipe for %s: %s", fn, err)
                    caption = ""
                lines += [f"### {fn} {{ #{fn} }}", ""]
                if caption:
                    site.plot_files[f"catalogue/plots/{fn}.png"] = plotter.path(fn)
                    lines += [
                        f"![{fn}: the loss and its derivative](plots/{fn}.png)",
                        "",
                        f"*The loss and its derivative (`jax.grad`) for {caption}.*",
                        "",
                    ]
                lines += [_entry(f"jaxloss.{fn}", 4), _entry(f"jaxloss.{e.cls.__name__}", 4)]
        site.pages[page] = "\n".join(lines) + "\n"

    index = [
        "# Loss catalogue",
        "",
        "Every registered loss, generated from the registry: one page per family, each loss with "
        "its function and class handles, their docstrings and a plot of the loss and its "
        "gradient computed while the site was built.",
        "",
        "| function | class | family | inputs | in Keras 3 |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "## Inputs kinds",
        "",
    ]
    kinds_seen = sorted({e.inputs for es in site.families.values() for e in es})
    for kind in kinds_seen:
        index += [f"### {kind} {{ #inputs-{kind} }}", "", KIND_INPUTS.get(kind, "see the loss"), ""]
    site.pages["catalogue/index.md"] = "\n".join(index) + "\n"


class Plotter:
    """Draws the catalogue's plots in two spawned worker processes while MkDocs renders the pages
    (compiling each loss's curves is nearly all the cost, and it is single-threaded). Each PNG goes
    to a temporary directory that lives for one build; a plot that cannot be drawn is a warning,
    so it fails the strict build."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="jaxloss-docs-plots-"))
        self.futures: dict[str, Any] = {}
        self.pool: Any = None

    def start(self, entries: list[Any]) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        flags, path = os.environ.get("XLA_FLAGS"), list(sys.path)
        # Spawned workers inherit the environment and sys.path (MkDocs restores sys.path after
        # loading this hook, so the generator modules must be put back for the workers).
        os.environ["XLA_FLAGS"] = f"{flags or ''} {plots.FAST_COMPILE}".strip()
        sys.path[:0] = [str(HERE), str(ROOT)]
        try:
            self.pool = ProcessPoolExecutor(
                max_workers=max(1, min(2, os.cpu_count() or 1)),
                mp_context=multiprocessing.get_context("spawn"),
                initializer=plots.init_worker,
                initargs=([str(HERE), str(ROOT)],),
            )
            for e in entries:
                job = (e.function.__module__, e.function.__name__, e.inputs)
                self.futures[e.function.__name__] = self.pool.submit(plots.render_by_name, *job)
        finally:
            sys.path[:] = path
            if flags is None:
                os.environ.pop("XLA_FLAGS", None)
            else:
                os.environ["XLA_FLAGS"] = flags

    def path(self, name: str) -> Path:
        return self.dir / f"{name}.png"

    def finish(self) -> None:
        for name, future in self.futures.items():
            try:
                png, _ = future.result()
            except Exception as err:  # a plot that cannot be drawn must fail the build
                log.warning("catalogue: cannot plot %s: %s: %s", name, type(err).__name__, err)
                png = b""
            self.path(name).write_bytes(png)
        self.futures.clear()
        self.close()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None

    def cleanup(self) -> None:
        self.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def on_env(env: Any, config: Any, files: Any) -> Any:
    # After every page is rendered and before static files are copied: the plots are needed now.
    plotter = STATE.get("plotter")
    if plotter is not None:
        plotter.finish()  # type: ignore[attr-defined]
    return env


def on_post_build(config: Any) -> None:
    plotter = STATE.pop("plotter", None)
    if plotter is not None:
        plotter.cleanup()  # type: ignore[attr-defined]


def on_build_error(error: Exception) -> None:
    on_post_build({})


# ---------------------------------------------------------------------------------------------
# Examples


def _examples() -> list[Path]:
    return sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))


def _example_pages(site: Site) -> None:
    index = [
        "# Examples",
        "",
        "Each script runs on a CPU; `--tiny` (or `JAXLOSS_TINY=1`) gives the few-second run that "
        'the test suite does. Install the extras with `pip install "jaxloss[examples]"`.',
        "",
    ]
    for path in _examples():
        source = path.read_text()
        doc = inspect.cleandoc(_docstring(source))
        first = doc.split("\n\n", 1)[0].replace("\n", " ")
        index.append(f"- [{path.name}]({path.stem}.md): {first}")
        lines = [f"# {path.name}", "", text.doctest_to_fence(doc), ""]
        outputs = sorted((ROOT / "examples" / "output").glob(f"{path.stem}*.png"))
        for out in outputs:
            site.images[f"examples/{out.name}"] = out.read_bytes()
            lines += [f"![output of {path.name}]({out.name})", ""]
        lines += [f"```bash\npython examples/{path.name}\n```", ""]
        lines += ["## Source", "", "```python", source.rstrip(), "```", ""]
        site.pages[f"examples/{path.stem}.md"] = "\n".join(lines)
    site.pages["examples/index.md"] = "\n".join(index) + "\n"


def _docstring(source: str) -> str:
    import ast

    return ast.get_docstring(ast.parse(source)) or ""


# ---------------------------------------------------------------------------------------------
# Benchmarks


def _benchmarks(site: Site) -> None:
    path = ROOT / "benchmarks" / "results" / "latest.json"
    if not path.exists():
        site.snippets["benchmarks"] = "No benchmark results are stored in this version."
        return
    data = json.loads(path.read_text())
    rows = data.get("rows", [])
    machine = data.get("machine", {})
    versions = data.get("versions", {})
    out = [
        f"Measured {data.get('date', '?')[:10]} on {machine.get('cpu', '?')} "
        f"({machine.get('usable_cpus', '?')} usable CPUs, {machine.get('memory', '?')}); "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + ". Load average: "
        + str(machine.get("load_average", "?"))
        + ". `speedup` is optax's time over the contender's (above 1 is faster than optax).",
        "",
    ]
    suites: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        suites.setdefault(str(row.get("suite")), []).append(row)
    for suite, srows in suites.items():
        out += [f"### {suite}", ""]
        png = _bench_chart(suite, srows)
        site.images[f"bench/{suite}.png"] = png
        out += [f"![{suite}: speedup over optax](bench/{suite}.png)", ""]
        groups: dict[str, list[dict[str, Any]]] = {}
        for row in srows:
            groups.setdefault(_group_key(row), []).append(row)
        for key, grows in groups.items():
            out += [
                f"**{key}**",
                "",
                "| contender | median ms | temp MiB | speedup | max abs err |",
            ]
            out.append("|---|---|---|---|---|")
            for r in grows:
                out.append(
                    f"| {r.get('contender')} | {_num(r.get('median_ms'))} | "
                    f"{_num(r.get('temp_mib'))} | {_num(r.get('speedup_vs_optax'))} | "
                    f"{_num(r.get('max_abs_err'))} |"
                )
            out.append("")
    errors = data.get("errors") or {}
    if errors:
        out += ["Errors reported by the run:", ""]
        out += [f"- `{k}`: {_cell(str(v))}" for k, v in errors.items()]
    site.snippets["benchmarks"] = "\n".join(out)


def _group_key(row: dict[str, Any]) -> str:
    parts = [str(row.get("case", ""))]
    parts += [str(row[k]) for k in ("setting", "malloc", "dtype") if row.get(k) is not None]
    return " · ".join(parts)


def _num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _bench_chart(suite: str, rows: list[dict[str, Any]]) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys: list[str] = []
    contenders: list[str] = []
    for r in rows:
        if r.get("speedup_vs_optax") is None or r.get("contender") == "optax":
            continue
        if _group_key(r) not in keys:
            keys.append(_group_key(r))
        if r["contender"] not in contenders:
            contenders.append(str(r["contender"]))
    bars = max(len(keys), 2) * max(len(contenders), 1)
    fig, ax = plt.subplots(figsize=(9, 0.16 * bars + 1.2))
    height = 0.8 / max(len(contenders), 1)
    for j, c in enumerate(contenders):
        ys, xs = [], []
        for i, k in enumerate(keys):
            match = [r for r in rows if r.get("contender") == c and _group_key(r) == k]
            if match and match[0].get("speedup_vs_optax") is not None:
                ys.append(i + j * height)
                xs.append(float(match[0]["speedup_vs_optax"]))
        ax.barh(ys, xs, height=height, label=c)
    ax.axvline(1.0, color="0.3", lw=1)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(keys))], keys, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("speedup over optax (optax time / time)", fontsize=8)
    if contenders:
        ax.legend(fontsize=7, frameon=False, loc="best")
    ax.set_title(suite, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# Porting tables


def _code_cell(site: Site, code: str, uses: tuple[str, ...]) -> str:
    missing = [u for u in uses if porting.lookup(u) is None]
    if missing:
        return "not available in this version (" + ", ".join(f"`{u}`" for u in missing) + ")"
    links = [_canonical(site, u) for u in uses]
    cell = f"`{code}`"
    documented = [link for link in links if link]
    if documented:
        cell += " (" + ", ".join(ref(x, x.rsplit(".", 1)[-1]) for x in documented) + ")"
    return cell


def _porting(site: Site) -> None:
    def table(rows: list[porting.Row], peer: str, compat: str | None) -> str:
        head = f"| {peer} | jaxloss | notes |"
        compat_mod = porting.lookup(compat) if compat else None
        if compat_mod is not None:
            head = f"| {peer} | `{compat}` | jaxloss | notes |"
        out = [head, "|" + "---|" * head.count(" | ") + "---|"]
        for r in rows:
            cells = [f"`{r.peer}`"]
            if compat_mod is not None:
                name = r.peer.split("(")[0].removeprefix("F.")
                cells.append(_compat_cell(site, compat, name))
            cells += [_code_cell(site, r.jaxloss, r.uses), _cell(r.note)]
            out.append("| " + " | ".join(cells) + " |")
        return "\n".join(out)

    site.snippets["porting-keras2"] = table(porting.KERAS2, "Keras 2 / tf.keras", None)
    site.snippets["porting-optax"] = table(porting.OPTAX, "`optax.losses`", "jaxloss.compat.optax")
    site.snippets["porting-torch"] = table(
        porting.TORCH, "`torch.nn.functional` (`F`)", "jaxloss.compat.torch"
    )
    site.snippets["porting-optax-compat"] = _compat_summary(
        site, "jaxloss.compat.optax", porting.OPTAX_NAMES
    )
    site.snippets["porting-torch-compat"] = _compat_summary(
        site, "jaxloss.compat.torch", porting.TORCH_NAMES
    )
    site.snippets["porting-keras3"] = _keras3_table(site)


def _compat_cell(site: Site, module: str | None, name: str) -> str:
    identifier = f"{module}.{name}"
    if porting.lookup(identifier) is None:
        return "—"
    canonical = _canonical(site, identifier)
    return ref(canonical, name) if canonical else f"`{name}`"


def _compat_summary(site: Site, module: str, names: list[str]) -> str:
    if porting.lookup(module) is None:
        return (
            f"`{module}` is not part of this version: port with the native calls in the table "
            "above."
        )
    have = [n for n in names if porting.lookup(f"{module}.{n}") is not None]
    missing = [n for n in names if n not in have]
    out = [
        f"`{module}` keeps the peer's names, signatures and semantics: change the import. "
        f"It defines {len(have)} of the {len(names)} names listed here:",
        "",
        ", ".join(_compat_cell(site, module, n) for n in have) or "none",
        "",
    ]
    if missing:
        out += ["Not available yet: " + ", ".join(f"`{n}`" for n in missing) + ".", ""]
    return "\n".join(out)


def _keras3_table(site: Site) -> str:
    out = ["| Keras 3 | jaxloss | options beyond Keras's |", "|---|---|---|"]
    extra = []
    for entries in site.families.values():
        for e in entries:
            cls, fn = e.cls.__name__, e.function.__name__
            jl = f"{ref('jaxloss.' + cls, cls)} / {ref('jaxloss.' + fn, fn)}"
            if cls in porting.KERAS3_CLASSES:
                out.append(f"| `keras.losses.{cls}` / `keras.losses.{fn}` | {jl} | |")
            else:
                extra.append(f"| — | {jl} | jaxloss only |")
    return "\n".join(out + extra)


# ---------------------------------------------------------------------------------------------
# Concept-page facts read from the code


def _concept_snippets(site: Site) -> None:
    ops = next((m for m in site.modules if m.path == "jaxloss.ops"), None)
    names = [n for n in ops.names if n.kind == "function"] if ops else []

    vocab = [n for n in names if "vocab_axis_name" in _params(n.obj)]
    text_ = (
        "With the vocabulary sharded over a mesh axis inside `shard_map` (the logits' class axis, "
        "or the weight's vocabulary axis), each device keeps its block: partial logsumexps are "
        "combined with `pmax`/`psum`, the label's logit comes from the device that owns it, and "
        "the backward needs no communication. "
    )
    if vocab:
        text_ += (
            "Kernels that take `vocab_axis_name` in this version: "
            + ", ".join(ref(n.identifier, n.name) for n in vocab)
            + "."
        )
    else:
        text_ += "No kernel of this version takes `vocab_axis_name` yet."
    site.snippets["vocab-parallel"] = text_

    loss_cls = next((n.obj for n in site.modules[0].names if n.name == "Loss"), None)
    partial = [m for m in dir(loss_cls) if "partial" in m and not m.startswith("_")]
    if partial:
        site.snippets["partial-sums"] = (
            "Class handles return these sums themselves: "
            + ", ".join(
                (
                    ref(f"jaxloss.Loss.{m}", f"Loss.{m}")
                    if f"jaxloss.Loss.{m}" in site.known
                    else f"`Loss.{m}`"
                )
                for m in partial
            )
            + ". They add across micro-batches and devices, and divide once at the end."
        )
    else:
        site.snippets["partial-sums"] = ""

    site.snippets["bad-values"] = _bad_values_table(site)

    pairs = []
    by_name = {n.name: n for n in names}
    for n in names:
        for other in names:
            if (
                other.name.startswith(n.name + "_")
                and other.name not in by_name.get(n.name, n).name
            ):
                pairs.append((n, other))
    if pairs:
        rows = ["| custom-VJP kernel | variant for every transformation |", "|---|---|"]
        rows += [f"| {ref(a.identifier, a.name)} | {ref(b.identifier, b.name)} |" for a, b in pairs]
        site.snippets["forward-mode"] = "\n".join(rows)
    else:
        site.snippets["forward-mode"] = "No separately named variants exist in this version."


def _bad_values_table(site: Site) -> str:
    """One row per registered loss: what it does with the value problems jit cannot refuse."""
    rows = ["| loss | family | bad values |", "|---|---|---|"]
    for fam, entries in site.families.items():
        for e in entries:
            fn = e.function.__name__
            found = text.bad_values(inspect.getdoc(e.function))
            context = [e.function.__module__, "jaxloss.ops", "jaxloss"]
            resolve = lambda t, c=context: text.resolve(t, c)
            shown = text.convert_roles(found, resolve) if found else ""
            rows.append(
                f"| {ref('jaxloss.' + fn, fn)} | [{_title(fam)}](../catalogue/{fam}.md) | "
                f"{_cell(shown) or 'see its docstring'} |"
            )
    return "\n".join(rows)


def _params(fn: Any) -> set[str]:
    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return set()
