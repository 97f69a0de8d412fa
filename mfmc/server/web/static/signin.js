// The one-time code is in the URL fragment (#code=…), which the browser never sends to the server in a request
// line; it is exchanged once for the session cookie (HttpOnly: this script never sees it), then removed.
"use strict";

(async () => {
  const code = new URLSearchParams(location.hash.slice(1)).get("code");
  history.replaceState(null, "", location.pathname);  // the code leaves the address bar and the history
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
})();
