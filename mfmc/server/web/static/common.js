// Shared by every page: API calls (the session cookie is sent by the browser; the page never sees it),
// DOM building from nodes and text only (user content never goes through an HTML parser), and the header.
"use strict";

class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `the server answered ${status}`);
    this.status = status;
    this.help = err.help || null;
  }
}

async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { "X-Mfmc-Web": "1", "Accept": "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// el("a", {href: "x", class: "y"}, "text", child) — attributes set one by one, children as text nodes or nodes.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

function say(message, kind) {
  const box = document.getElementById("status");
  if (!box) return;
  box.textContent = message || "";
  box.className = kind || "";
}

function showError(err) {
  if (err instanceof ApiError && err.status === 401) {
    say("You are not signed in (or the session ended). Run `mfmc open --as NAME` and open the link it prints.", "error");
  } else {
    say(`Error: ${err.message}${err.help ? ` (${err.help})` : ""}`, "error");
  }
}

// Fills the header; resolves to the signed-in user's /api/me, or null (then the page shows how to sign in).
async function signedIn() {
  const who = document.getElementById("who");
  const out = document.getElementById("signout");
  try {
    const me = await api("GET", "/api/me");
    who.textContent = `Signed in as ${me.user}`;
    out.hidden = false;
    out.addEventListener("click", async () => {
      try { await api("POST", "/api/auth/logout"); } finally { location.href = "signin.html"; }
    });
    return me;
  } catch (err) {
    who.textContent = "Not signed in";
    showError(err);
    return null;
  }
}

function param(name) { return new URLSearchParams(location.search).get(name); }
