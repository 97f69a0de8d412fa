// My rules: a textarea over a mirror (<pre>) that marks each diagnostic's line:col span; debounced calls to
// POST /api/rules/validate (errors, did-you-mean) and, when valid, POST /api/rules/analyze (who could see the
// face under this text, and who gains or loses it against the saved rules). Saving is done by the user's client
// (`mfmc rules set FILE`): it signs the next version with the user's key; the page polls for the new version.
"use strict";

const DEBOUNCE_MS = 300;
const DIAG = /^(.*):(\d+):(\d+): (error|warning): (.*)$/;

function parseDiagnostic(rendered) {
  const lines = rendered.split("\n");
  const head = DIAG.exec(lines[0]);
  const caret = lines.map((l) => /^\s*\|\s*(\^+)\s*$/.exec(l)).find(Boolean);
  const help = lines.map((l) => /^\s+help: (.*)$/.exec(l)).find(Boolean);
  if (!head) return { line: null, column: null, width: 1, severity: "error", message: rendered, help: null };
  return { line: Number(head[2]), column: Number(head[3]), severity: head[4], message: head[5],
    width: caret ? caret[1].length : 1, help: help ? help[1] : null };
}

function offsetOf(text, line, column) {
  const lines = text.split("\n");
  let offset = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i += 1) offset += lines[i].length + 1;
  return offset + Math.max(0, column - 1);
}

class Editor {
  constructor(user, file) {
    this.user = user;
    this.file = file;
    this.area = document.getElementById("text");
    this.mirror = document.getElementById("backdrop");
    this.gutter = document.getElementById("gutter");
    this.seq = 0;
    this.timer = null;
    this.area.addEventListener("input", () => { this.pending(); this.schedule(); });
    this.area.addEventListener("scroll", () => this.sync());
  }

  // While the text changes, earlier results are withdrawn rather than shown for text that is gone.
  pending() {
    this.seq += 1;  // answers to checks already on their way are for older text: ignored
    this.paint([]);
    document.getElementById("validity").textContent = "Checking…";
    document.getElementById("validity").className = "";
    clear(document.getElementById("errors"));
    document.getElementById("download").disabled = true;
    showAudience(undefined);
  }

  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.check(), DEBOUNCE_MS);
  }

  sync() {
    this.mirror.scrollTop = this.area.scrollTop;
    this.mirror.scrollLeft = this.area.scrollLeft;
    this.gutter.scrollTop = this.area.scrollTop;
  }

  // The mirror holds the same text (transparent) with <mark>s where diagnostics point; the gutter numbers lines.
  paint(diagnostics) {
    const lines = this.area.value.split("\n");
    clear(this.mirror);
    clear(this.gutter);
    lines.forEach((text, i) => {
      const number = i + 1;
      const here = diagnostics.filter((d) => d.line === number);
      const row = el("span", { class: here.length ? "row err" : "row", "data-line": number });
      let at = 0;
      for (const d of here.sort((a, b) => a.column - b.column)) {
        const start = Math.min(Math.max(0, d.column - 1), text.length);
        if (start < at) continue;
        const end = Math.min(text.length, start + Math.max(1, d.width));
        row.append(text.slice(at, start),
          el("mark", { class: d.severity, "data-line": number, "data-column": d.column }, text.slice(start, end) || " "));
        at = end;
      }
      row.append(text.slice(at), "\n");
      this.mirror.append(row);
      this.gutter.append(el("span", { class: here.length ? "err" : "", "data-line": number, text: String(number) }), "\n");
    });
    this.mirror.append("\n");
    this.area.setAttribute("aria-invalid", diagnostics.some((d) => d.severity === "error") ? "true" : "false");
    this.sync();
  }

  async check() {
    const seq = ++this.seq;
    const text = this.area.value;
    const validity = document.getElementById("validity");
    let got;
    try {
      got = await api("POST", "/api/rules/validate", { text, name: this.file });
    } catch (err) { showError(err); return; }
    if (seq !== this.seq) return;  // the text changed meanwhile: a newer check is on its way
    this.show(got.diagnostics.map(parseDiagnostic));
    document.getElementById("download").disabled = !got.ok;  // only valid text is worth signing
    validity.className = got.ok ? "ok" : "error";
    validity.textContent = got.ok ? "The rules are valid." : `${got.diagnostics.length} problem${got.diagnostics.length === 1 ? "" : "s"}:`;
    if (got.ok) await this.analyze(seq, text); else showAudience(null);
  }

  // Problems (errors, or the warnings of valid text) marked in the text and listed, each a button to jump there.
  show(diagnostics) {
    const list = document.getElementById("errors");
    this.paint(diagnostics);
    clear(list);
    for (const d of diagnostics) {
      const at = d.line ? `line ${d.line}, column ${d.column}: ` : "";
      const where = d.severity === "warning" ? `Warning, ${at}` : at.charAt(0).toUpperCase() + at.slice(1);
      list.append(el("li", { class: d.severity, "data-line": d.line || "" },
        el("button", { type: "button", class: "link", onclick: () => this.jump(d) }, `${where}${d.message}`),
        d.help ? el("span", { class: "help", text: ` — ${d.help}` }) : null));
    }
  }

  jump(d) {
    if (!d.line) return;
    const start = offsetOf(this.area.value, d.line, d.column);
    this.area.focus();
    this.area.setSelectionRange(start, start + Math.max(1, d.width));
  }

  async analyze(seq, text) {
    try {
      const got = await api("POST", "/api/rules/analyze", { text, name: this.file });
      if (seq !== this.seq) return;
      showAudience(got);
      const warnings = got.warnings.map(parseDiagnostic);
      this.show(warnings);
      if (warnings.length) {
        document.getElementById("validity").textContent = `The rules are valid, with ${warnings.length} warning${warnings.length === 1 ? "" : "s"}:`;
      }
    } catch (err) {
      if (seq === this.seq) { showAudience(null); document.getElementById("validity").textContent = err.message; }
    }
  }
}

function people(audience) {
  if (audience.audience === "everyone") {
    return `everyone${audience.except.length ? ` except ${audience.except.join(", ")}` : ""} (also people outside the platform)`;
  }
  if (audience.audience === "only") return audience.users.join(", ");
  return "no one";
}

function changeText(change) {
  const parts = [];
  const n = change.gained;
  if (n || change.strangers_gain) {
    parts.push(`This edit reveals your face to ${n} more ${n === 1 ? "person" : "people"}`
      + `${n ? ` (${people(change.gains)})` : ""}${change.strangers_gain ? ", and to people outside the platform" : ""}.`);
  }
  const m = change.lost;
  if (m || change.strangers_lose) {
    parts.push(`It hides your face from ${m} ${m === 1 ? "person" : "people"}${m ? ` (${people(change.loses)})` : ""}`
      + `${change.strangers_lose ? ", and from people outside the platform" : ""} who could see it before.`);
  }
  if (!parts.length) parts.push("No change in who can see your real face.");
  return parts.join(" ");
}

function showAudience(got) {
  const box = clear(document.getElementById("audience"));
  if (got === undefined) {
    box.append(el("dt", { text: "Checking…" }));
    return;
  }
  if (!got) {
    box.append(el("dt", { text: "Not known" }), el("dd", { text: "Fix the problems above to see who would see your face." }));
    return;
  }
  const saved = got.change.stored_version ? `your saved rules (version ${got.change.stored_version})` : "no saved rules (default nobody)";
  box.append(
    el("dt", { text: "Could ever see your real face (in some photo)" }), el("dd", { id: "aud-ever", text: got.ever.text }),
    el("dt", { text: "See it in every photo" }), el("dd", { id: "aud-always", text: got.always.text }),
    el("dt", { text: `Compared with ${saved}` }), el("dd", { id: "aud-change", text: changeText(got.change) }));
  if (got.change.note) box.append(el("dd", { class: "muted", text: got.change.note }));
  if (got.dead.length) {
    box.append(el("dt", { text: "Lines that decide nothing" }),
      el("dd", { text: got.dead.map((d) => `line ${d.line}: ${d.text}`).join("; ") }));
  }
}

// What signs and stores the file with the user's client (run where its data dir is, as for `mfmc open`).
function saveCommand(file) { return `MFMC_SERVER=${location.origin} mfmc rules set ${file}`; }

async function savedVersion(user) {
  const got = await api("GET", `/api/rules/${encodeURIComponent(user)}`);
  return got;
}

(async () => {
  const me = await signedIn();
  if (!me) return;
  const user = me.user;
  const file = `${user}.mfmc`;
  const editor = new Editor(user, file);
  let known = 0;
  try {
    const saved = await savedVersion(user);
    known = saved.version || 0;
    editor.area.value = saved.rules ? saved.rules.text : `face ${user}\ndefault nobody\n`;
    document.getElementById("saved-version").textContent = saved.rules
      ? `Saved rules: version ${known}.` : "No saved rules yet: nobody but you sees your real face.";
  } catch (err) { showError(err); }
  document.getElementById("command").textContent = saveCommand(file);
  document.getElementById("download").textContent = `Download ${file}`;
  editor.paint([]);
  editor.check();

  let polling = null;
  const watch = () => {
    if (polling) return;
    polling = setInterval(async () => {
      try {
        const now = await savedVersion(user);
        if ((now.version || 0) > known) {
          known = now.version;
          document.getElementById("saved").textContent = `Saved: version ${known} of your rules is now in effect.`;
          document.getElementById("saved-version").textContent = `Saved rules: version ${known}.`;
          editor.check();
        }
      } catch (_) { /* a transient failure: the next poll retries */ }
    }, 3000);
  };
  document.getElementById("download").addEventListener("click", () => {
    const blob = new Blob([editor.area.value], { type: "text/plain" });
    const link = el("a", { href: URL.createObjectURL(blob), download: file });
    document.body.append(link);
    link.click();
    link.remove();
    document.getElementById("saved").textContent = `Downloaded ${file}. Run the command below; this page notices the new version.`;
    watch();
  });
  document.getElementById("copy").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(saveCommand(file));
      document.getElementById("saved").textContent = "Command copied.";
    } catch (_) {
      document.getElementById("saved").textContent = "Copying is not allowed here: select the command and copy it.";
    }
    watch();
  });
})();
