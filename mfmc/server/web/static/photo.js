// One photo: my view (the server's render for me), what I see per face, and for each face I own (or am
// tagged in): who sees it real (audience), why for a chosen viewer (explain), and tag requests to answer.
"use strict";

function pct(value, total) { return `${(100 * value / total).toFixed(3)}%`; }

function drawBoxes(faces, width, height, user) {
  const layer = clear(document.getElementById("boxes"));
  for (const f of faces) {
    const [x0, y0, x1, y1] = f.box;
    const label = `${f.index}${(f.owner === user || f.tag === user) ? " (you)" : ""}`;
    const box = el("div", { class: "box", "data-face": f.index }, el("span", { text: label }));
    // CSSOM, not a style attribute: the page's Content-Security-Policy allows no inline styles
    Object.assign(box.style, { left: pct(x0, width), top: pct(y0, height), width: pct(x1 - x0, width),
      height: pct(y1 - y0, height) });
    layer.append(box);
  }
}

function reasonsList(reasons) {
  return el("ul", { class: "reasons" }, ...reasons.map((r) => el("li", { text: r })));
}

function explainForm(photoId, face, users, user) {
  const id = `viewer-${face.index}`;
  const select = el("select", { id, name: "viewer" },
    ...users.filter((u) => u !== user).map((u) => el("option", { value: u, text: u })));
  const out = el("div", { class: "explain", role: "status", "aria-live": "polite" });
  const form = el("form", { class: "inline" },
    el("label", { for: id, text: "Why does this viewer see it as they do?" }), " ", select, " ",
    el("button", { type: "submit", text: "Explain" }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(out);
    try {
      const got = await api("GET", `/api/photos/${photoId}/faces/${face.index}/explain?viewer=${encodeURIComponent(select.value)}`);
      const verdict = got.decision === "reveal" ? "sees your real face" : "sees a fake";
      out.append(el("p", {}, el("strong", { text: got.viewer }), ` ${verdict}:`), reasonsList(got.reasons));
    } catch (err) {
      out.append(el("p", { class: "error", text: err.message }));
    }
  });
  return [form, out];
}

function consentControls(photoId, face, refresh) {
  if (face.consent === "granted") {
    return el("p", {}, "You consented: your real face is shown. ",
      el("button", { type: "button", onclick: () => answer(false) }, "Withdraw consent"));
  }
  const state = face.consent === "refused" ? "You refused this tag." : `You are tagged here; your face stays fake until you accept.`;
  return el("div", { class: "consent", role: "group", "aria-label": `Tag request for face ${face.index}` },
    el("p", { text: state }),
    el("button", { type: "button", class: "primary", onclick: () => answer(true) }, "Accept: show my real face"), " ",
    face.consent === "refused" ? null : el("button", { type: "button", onclick: () => answer(false) }, "Refuse"));

  async function answer(grant) {
    try {
      await api("POST", `/api/photos/${photoId}/faces/${face.index}/consent`, { grant });
      say(grant ? `Consent given for face ${face.index}.` : `Face ${face.index}: consent refused.`, "ok");
      await refresh();
    } catch (err) { showError(err); }
  }
}

// The uploader of an explicit-model photo proposes who a face is; it stays fake until that person consents.
function tagControls(photoId, face, users, refresh) {
  const group = el("div", { class: "tagging" });
  if (face.tag && face.consent !== "refused") {
    const state = face.consent === "granted" ? "consented: shown real" : "waiting for their consent: shown fake";
    group.append(el("p", {}, `Tagged as ${face.tag} (${state}). `,
      el("button", { type: "button", onclick: () => act("DELETE", undefined, "Tag removed.") }, "Remove tag")));
    return group;
  }
  if (face.tag) group.append(el("p", { text: `${face.tag} refused this tag.` }));
  const id = `tag-${face.index}`;
  const select = el("select", { id, name: "user" }, ...users.map((u) => el("option", { value: u, text: u })));
  const form = el("form", { class: "inline" }, el("label", { for: id, text: "Who is this? Tag as" }), " ", select, " ",
    el("button", { type: "submit", text: "Tag" }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act("POST", { user: select.value }, `Tagged face ${face.index} as ${select.value}: it stays fake until they accept.`);
  });
  group.append(form);
  return group;

  async function act(method, body, done) {
    try {
      await api(method, `/api/photos/${photoId}/faces/${face.index}/tag`, body);
      say(done, "ok");
      await refresh();
    } catch (err) { showError(err); }
  }
}

async function faceSection(photoId, view, face, users, user, refresh) {
  const box = el("article", { class: "face", id: `face-${face.index}`, "aria-labelledby": `face-h-${face.index}` },
    el("h3", { id: `face-h-${face.index}`, text: `Face ${face.index}` }));
  const mine = face.owner === user || face.tag === user;
  if (view.model === "explicit" && view.uploader === user && face.tag !== user) {
    box.append(tagControls(photoId, face, users, refresh));
  }
  if (!mine) {  // the uploader sees every face's summary; only owners ask who sees a face
    if (view.model !== "explicit") {
      box.append(el("p", { class: "muted", text: face.owner ? `Identified as ${face.owner}.` : "Not identified." }));
    }
    return box;
  }
  if (view.model === "explicit" && face.tag === user) box.append(consentControls(photoId, face, refresh));
  try {
    const who = await api("GET", `/api/photos/${photoId}/faces/${face.index}/audience`);
    box.append(el("p", { class: "audience" }, "Who sees your real face: ", el("strong", { text: who.text })));
  } catch (err) {
    box.append(el("p", { class: "error", text: err.message }));
  }
  box.append(...explainForm(photoId, face, users, user));
  return box;
}

async function load(photoId, me) {
  const view = await api("GET", `/api/photos/${photoId}`);
  const user = me.user;
  document.title = `Photo ${photoId} — mfmc`;
  document.getElementById("title").textContent = `Photo ${photoId} by ${view.uploader}${view.album ? ` · ${view.album}` : ""}`;
  const reals = view.faces.filter((d) => d.decision === "reveal").length;
  const img = document.getElementById("photo");
  img.alt = `Photo ${photoId} uploaded by ${view.uploader}, as you see it: ${view.faces.length} faces, `
    + `${reals} real and ${view.faces.length - reals} replaced by fakes.`;
  img.src = `${view.render}?v=${Date.now()}`;  // renders change with rules and consent: never a stale copy
  document.getElementById("stage").hidden = false;
  const list = clear(document.getElementById("decisions"));
  for (const d of view.faces) {
    list.append(el("li", { "data-face": d.index, "data-decision": d.decision }, `Face ${d.index}: `,
      el("strong", { text: d.decision === "reveal" ? "real face" : "fake" }), d.owner === user ? " (yours)" : ""));
  }
  document.getElementById("seen").hidden = false;
  const mine = view.mine || [];
  await new Promise((resolve) => { if (img.complete && img.naturalWidth) resolve(); else img.onload = img.onerror = resolve; });
  // at most 40rem wide and 24rem high, keeping the photo's shape (CSSOM: no inline style attributes)
  const scale = Math.min(640 / (img.naturalWidth || 1), 384 / (img.naturalHeight || 1));
  img.style.width = `${Math.round((img.naturalWidth || 1) * scale)}px`;
  drawBoxes(mine, img.naturalWidth || 1, img.naturalHeight || 1, user);
  const section = clear(document.getElementById("mine-list"));
  const { users } = await api("GET", "/api/users");
  for (const face of mine) section.append(await faceSection(photoId, view, face, users, user, () => load(photoId, me)));
  document.getElementById("mine-h").textContent = view.uploader === user ? "Faces in your photo" : "Your faces in this photo";
  if (!mine.length) section.append(el("p", { class: "muted", text: "None of the faces is yours." }));
  document.getElementById("mine").hidden = false;
  return view;
}

(async () => {
  const me = await signedIn();
  if (!me) return;
  const photoId = Number.parseInt(param("id") || "", 10);
  if (!Number.isInteger(photoId)) { say("No photo chosen: open one from your feed.", "error"); return; }
  try {
    await load(photoId, me);
    const target = location.hash && document.getElementById(location.hash.slice(1));
    if (target) target.scrollIntoView();
  } catch (err) {
    showError(err);
  }
})();
