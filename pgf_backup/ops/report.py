"""Renderings of a `pgf-backup verify` report: a terminal table, JSON (schema `pgf-backup/verify/v1`), Markdown,
and a self-contained HTML page (no external asset) that sorts and filters.

Every rendering takes the JSON document (`Report.to_json()`), so they all say the same thing.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

FORMATS = ("table", "json", "md", "html")

_COLUMNS = ("status", "type", "name", "region", "tier", "selected", "age", "copies", "key", "problems")


def _copies(resource: Mapping[str, Any]) -> str:
    shown = [f"{c['target']}:{c['status']}" for c in resource["copies"]]
    return ", ".join(shown) or "-"


def _row(resource: Mapping[str, Any]) -> dict[str, str]:
    age = resource.get("age_hours")
    return {
        "status": resource["status"],
        "type": resource["type"],
        "name": resource["name"],
        "region": resource["region"],
        "tier": resource["tier"],
        "selected": ", ".join(resource["selected_by"]) or "-",
        "age": "-" if age is None else f"{age:g}h",
        "copies": _copies(resource),
        "key": ("AWS managed (trap)" if resource["key_trap"] else (resource.get("key_manager") or "-")),
        "problems": "; ".join(p.split(": ", 1)[-1] for p in resource["problems"]) or "-",
    }


def _coverage_lines(doc: Mapping[str, Any]) -> list[tuple[str, str, int, int, int]]:
    summary = doc["summary"]
    rows = [("all", "", summary["protected"], summary["unprotected"], summary["excluded"])]
    for axis in ("by_type", "by_tier"):
        for key, counts in summary[axis].items():
            rows.append((axis[3:], key, counts["protected"], counts["unprotected"], counts["excluded"]))
    return rows


def _verdict(doc: Mapping[str, Any]) -> str:
    if doc["ok"]:
        return "OK: every resource is protected, fresh and copied; the vaults match the config"
    return f"{doc['summary']['problems']} problem(s): unprotected, stale or misconfigured (listed above)"


def render_table(doc: Mapping[str, Any]) -> str:
    """A plain-text report for a terminal."""
    head = (
        f"pgf-backup verify: stack {doc['stack']} (account {doc['account_id']}, tier {doc['tier']}, "
        f"regions {', '.join(doc['regions'])}) at {doc['generated_at']}\n"
        f"RPO {doc['rpo_hours']}h (stale after {doc['window_hours']}h); copies expected: "
        f"{', '.join(doc['copy_targets']) or 'none'}"
    )
    rows = [_row(r) for r in doc["resources"]]
    table_cols = [c for c in _COLUMNS if c != "problems"]
    widths = {c: max([len(c), *(len(r[c]) for r in rows)]) for c in table_cols}
    lines = [head, "", "  ".join(c.upper().ljust(widths[c]) for c in table_cols)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in table_cols).rstrip() for r in rows]
    if not rows:
        lines.append("(no data resource found)")
    lines += ["", "Vaults:"]
    for vault in doc["vaults"]:
        lock = vault["mode"] or "no lock"
        if vault["mode"]:
            lock += f" {vault['min_retention_days']}-{vault['max_retention_days']}d"
        rotation = {True: "rotates", False: "NOT rotating", None: "-"}[vault["key_rotation"]]
        state = "ok" if not vault["problems"] else "PROBLEM"
        lines.append(
            f"  {vault['role']:<15} {vault['name']} ({vault['account']}, {vault['region']}): "
            f"{'exists' if vault['exists'] else 'MISSING'}, {lock}, key {rotation} [{state}]"
        )
    lines += ["", "Coverage:", f"  {'':<6}{'':<16}{'protected':>10}{'unprotected':>13}{'excluded':>10}"]
    for axis, key, protected, unprotected, excluded in _coverage_lines(doc):
        lines.append(f"  {axis:<6}{key:<16}{protected:>10}{unprotected:>13}{excluded:>10}")
    if doc["problems"]:
        lines += ["", "Problems:", *(f"  - {p}" for p in doc["problems"])]
    lines += [*(f"note: {n}" for n in doc["notes"]), "", _verdict(doc)]
    return "\n".join(lines) + "\n"


def render_json(doc: Mapping[str, Any]) -> str:
    """The JSON document, keys sorted (stable for diffs)."""
    return json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(str(c)) for c in row) + " |" for row in rows]
    return lines


def render_md(doc: Mapping[str, Any]) -> str:
    """Markdown: summary, coverage, resources, vaults, problems."""
    lines = [
        f"# Backup coverage: stack `{doc['stack']}`",
        "",
        f"Account {doc['account_id']}, tier **{doc['tier']}**, regions {', '.join(doc['regions'])}; generated "
        f"{doc['generated_at']}. RPO {doc['rpo_hours']} hours (stale after {doc['window_hours']}); copies expected: "
        f"{', '.join(doc['copy_targets']) or 'none'}.",
        "",
        f"**{_verdict(doc)}**",
        "",
        "## Coverage",
        "",
        *_md_table(("by", "value", "protected", "unprotected", "excluded"), _coverage_lines(doc)),
        "",
        "## Resources",
        "",
    ]
    rows = [[r[c] for c in _COLUMNS] for r in (_row(res) for res in doc["resources"])]
    lines += _md_table(_COLUMNS, rows) if rows else ["No data resource found."]
    lines += ["", "## Vaults", ""]
    lines += _md_table(
        ("role", "vault", "account", "region", "exists", "lock", "retention", "key rotation", "problems"),
        [
            (
                v["role"], v["name"], v["account"], v["region"], v["exists"], v["mode"] or "none",
                f"{v['min_retention_days']}-{v['max_retention_days']}" if v["mode"] else "-",
                v["key_rotation"], "; ".join(v["problems"]) or "-",
            )
            for v in doc["vaults"]
        ],
    )  # fmt: skip
    if doc["problems"]:
        lines += ["", "## Problems", "", *(f"- {p}" for p in doc["problems"])]
    if doc["notes"]:
        lines += ["", *(f"> {n}" for n in doc["notes"])]
    return "\n".join(lines) + "\n"


# The page's script: sorting (a click on a column's header, or `sort`/`dir` in the URL's fragment), filtering (the
# search box and the status, type, region and tier menus, or the same keys in the fragment), a live count of the
# visible rows, and the fragment kept in step so a filtered view can be shared. No external asset: everything the
# page needs is in it, data included (the JSON document in a script element).
_SCRIPT = r"""
(function () {
  var table = document.getElementById("resources");
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var controls = ["q", "status", "type", "region", "tier"];
  var state = {sort: "", dir: "asc"};
  function value(row, key) { return row.getAttribute("data-" + key) || ""; }
  function compare(a, b, key) {
    var x = value(a, key), y = value(b, key);
    var nx = parseFloat(x), ny = parseFloat(y);
    if (key === "age" && !isNaN(nx) && !isNaN(ny)) { return nx - ny; }
    if (key === "age") { return (isNaN(nx) ? 1 : 0) - (isNaN(ny) ? 1 : 0); }
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  function apply() {
    var q = document.getElementById("q").value.toLowerCase();
    var visible = 0;
    rows.forEach(function (row) {
      var show = !q || row.textContent.toLowerCase().indexOf(q) >= 0;
      ["status", "type", "region", "tier"].forEach(function (key) {
        var wanted = document.getElementById(key).value;
        if (wanted && value(row, key) !== wanted) { show = false; }
      });
      row.hidden = !show;
      if (show) { visible += 1; }
    });
    if (state.sort) {
      var sorted = rows.slice().sort(function (a, b) {
        var c = compare(a, b, state.sort);
        if (c === 0) { c = compare(a, b, "order"); return c; }
        return state.dir === "desc" ? -c : c;
      });
      sorted.forEach(function (row) { body.appendChild(row); });
    }
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) {
      var key = cell.getAttribute("data-key");
      cell.setAttribute("aria-sort", key === state.sort ? (state.dir === "desc" ? "descending" : "ascending") : "none");
    });
    document.getElementById("visible").textContent = String(visible);
    document.body.setAttribute("data-visible", String(visible));
    var parts = [];
    controls.forEach(function (key) {
      var v = document.getElementById(key).value;
      if (v) { parts.push(key + "=" + encodeURIComponent(v)); }
    });
    if (state.sort) { parts.push("sort=" + state.sort, "dir=" + state.dir); }
    if (history.replaceState) { history.replaceState(null, "", parts.length ? "#" + parts.join("&") : "#"); }
  }
  function fromFragment() {
    var text = (location.hash || "").replace(/^#/, "");
    text.split("&").forEach(function (part) {
      var pair = part.split("="), key = pair[0], v = decodeURIComponent(pair[1] || "");
      if (controls.indexOf(key) >= 0) { document.getElementById(key).value = v; }
      if (key === "sort") { state.sort = v; }
      if (key === "dir") { state.dir = v === "desc" ? "desc" : "asc"; }
    });
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) {
    cell.addEventListener("click", function () {
      var key = cell.getAttribute("data-key");
      state.dir = state.sort === key && state.dir === "asc" ? "desc" : "asc";
      state.sort = key;
      apply();
    });
  });
  controls.forEach(function (key) {
    document.getElementById(key).addEventListener("input", apply);
    document.getElementById(key).addEventListener("change", apply);
  });
  fromFragment();
  apply();
})();
"""

_STYLE = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em;color:#1b1f23}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{border:1px solid #d0d7de;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f6f8fa}th[data-key]{cursor:pointer}th[aria-sort=ascending]::after{content:" \\25B2"}
th[aria-sort=descending]::after{content:" \\25BC"}
.s-unprotected{background:#ffebe9}.s-stale{background:#fff8c5}.s-misconfigured{background:#fbefff}
.s-ok{background:#dafbe1}.s-excluded{background:#f6f8fa}
.verdict{font-weight:bold;padding:.5em;border:1px solid #d0d7de}.bad{background:#ffebe9}.good{background:#dafbe1}
.filters{display:flex;gap:.6em;flex-wrap:wrap;align-items:center}
@media print{.filters{display:none}tr[hidden]{display:none}}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _options(values: Sequence[str]) -> str:
    return '<option value="">all</option>' + "".join(f'<option value="{_esc(v)}">{_esc(v)}</option>' for v in values)


def render_html(doc: Mapping[str, Any]) -> str:
    """A self-contained page: no external asset, sortable and filterable, the JSON document embedded."""
    resources = doc["resources"]
    headers = (
        ("status", "Status"), ("type", "Type"), ("name", "Name"), ("region", "Region"), ("tier", "Tier"),
        ("selected", "Selected by"), ("age", "Last recovery point"), ("copies", "Copies"), ("key", "Key"),
        ("problems", "Problems"),
    )  # fmt: skip
    body_rows = []
    for order, resource in enumerate(resources):
        row = _row(resource)
        age = resource.get("age_hours")
        attributes = {
            "status": resource["status"], "type": resource["type"], "name": resource["name"],
            "region": resource["region"], "tier": resource["tier"], "selected": row["selected"],
            "age": "" if age is None else f"{age:g}", "copies": row["copies"], "key": row["key"],
            "problems": row["problems"], "order": f"{order:06d}", "arn": resource["arn"],
        }  # fmt: skip
        data = " ".join(f'data-{k}="{_esc(v)}"' for k, v in attributes.items())
        cells = "".join(f"<td>{_esc(row[key])}</td>" for key, _ in headers)
        body_rows.append(f'<tr class="s-{_esc(resource["status"])}" {data}>{cells}</tr>')
    coverage = "".join(
        f"<tr><td>{_esc(axis)}</td><td>{_esc(key)}</td><td>{p}</td><td>{u}</td><td>{e}</td></tr>"
        for axis, key, p, u, e in _coverage_lines(doc)
    )

    def vault_cells(vault: Mapping[str, Any]) -> str:
        values = (
            vault["role"], vault["name"], vault["account"], vault["region"], vault["exists"], vault["mode"] or "none",
            f"{vault['min_retention_days']}-{vault['max_retention_days']}" if vault["mode"] else "-",
            vault["key_rotation"], "; ".join(vault["problems"]) or "-",
        )  # fmt: skip
        return "".join(f"<td>{_esc(v)}</td>" for v in values)

    vaults = "".join(f"<tr>{vault_cells(vault)}</tr>" for vault in doc["vaults"])
    problems = "".join(f"<li>{_esc(p)}</li>" for p in doc["problems"]) or "<li>none</li>"

    def distinct(key: str) -> list[str]:
        return sorted({str(r[key]) for r in resources})

    header_cells = "".join(f'<th data-key="{k}" aria-sort="none">{_esc(t)}</th>' for k, t in headers)
    data_json = json.dumps(doc, sort_keys=True, default=str).replace("</", "<\\/")
    title = f"Backup coverage: stack {doc['stack']}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(title)}</title><style>{_STYLE}</style></head>
<body data-visible="{len(resources)}">
<h1>{_esc(title)}</h1>
<p>Account {_esc(doc["account_id"])}, tier <b>{_esc(doc["tier"])}</b>, regions {_esc(", ".join(doc["regions"]))};
generated {_esc(doc["generated_at"])}. RPO {_esc(doc["rpo_hours"])} hours (stale after {_esc(doc["window_hours"])});
copies expected: {_esc(", ".join(doc["copy_targets"]) or "none")}.</p>
<p class="verdict {"good" if doc["ok"] else "bad"}" id="verdict">{_esc(_verdict(doc))}</p>
<h2>Coverage</h2>
<table id="coverage"><thead><tr><th>by</th><th>value</th><th>protected</th><th>unprotected</th><th>excluded</th></tr>
</thead><tbody>{coverage}</tbody></table>
<h2>Resources (<span id="visible">{len(resources)}</span> of <span id="total">{len(resources)}</span> shown)</h2>
<div class="filters">
<label>Search <input id="q" type="search"></label>
<label>Status <select id="status">{_options(distinct("status"))}</select></label>
<label>Type <select id="type">{_options(distinct("type"))}</select></label>
<label>Region <select id="region">{_options(distinct("region"))}</select></label>
<label>Tier <select id="tier">{_options(distinct("tier"))}</select></label>
</div>
<table id="resources"><thead><tr>{header_cells}</tr>
</thead><tbody>
{chr(10).join(body_rows)}
</tbody></table>
<h2>Vaults</h2>
<table id="vaults"><thead><tr><th>role</th><th>vault</th><th>account</th><th>region</th><th>exists</th><th>lock</th>
<th>retention (days)</th><th>key rotation</th><th>problems</th></tr></thead><tbody>{vaults}</tbody></table>
<h2>Problems</h2>
<ul id="problems">{problems}</ul>
{"".join(f"<p><i>{_esc(n)}</i></p>" for n in doc["notes"])}
<script type="application/json" id="report-data">{data_json}</script>
<script>{_SCRIPT}</script>
</body></html>
"""


RENDERERS: Mapping[str, Callable[[Mapping[str, Any]], str]] = {
    "table": render_table,
    "json": render_json,
    "md": render_md,
    "html": render_html,
}
