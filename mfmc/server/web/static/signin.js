// The one-time code is in the URL fragment (#code=…), which the browser never sends to the server in a request
// line; it is exchanged once for the session cookie (HttpOnly: this script never sees it), then removed.
// A link opened in a tab already showing this page only changes the fragment: `hashchange` handles that.
"use strict";

async function exchange() {
  const code = new URLSearchParams(location.hash.slice(1)).get("code");
  if (location.hash) history.replaceState(null, "", location.pathname);  // out of the address bar and history
  if (!code) {
    say("No sign-in code in this link.", "");
    return;
  }
  say("Signing in…");
  try {
    const session = await api("POST", "/api/auth/session", { code });
    say(`Signed in as ${session.user}.`, "ok");
    location.replace("./");
  } catch (err) {
    showError(err);
  }
}

window.addEventListener("hashchange", exchange);
exchange();
