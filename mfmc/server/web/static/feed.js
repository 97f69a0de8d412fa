// My feed: GET /api/photos (metadata only), newest first, shown a page at a time; each image is the server's
// render for the signed-in viewer, loaded lazily by the browser (loading="lazy").
"use strict";

const PAGE = Math.max(1, Number.parseInt(param("per") || "12", 10) || 12);  // photos per page (?per=N)

function card(photo) {
  const faces = `${photo.faces} face${photo.faces === 1 ? "" : "s"}`;
  const where = photo.album ? ` in the album “${photo.album}”` : "";
  const img = el("img", {
    src: photo.render, loading: "lazy", decoding: "async", width: photo.width, height: photo.height,
    alt: `Photo ${photo.id} uploaded by ${photo.uploader}${where}, as you see it (${faces}).`,
  });
  return el("li", { class: "card", "data-photo": photo.id },
    el("a", { href: `photo.html?id=${encodeURIComponent(photo.id)}` },
      el("figure", {}, img,
        el("figcaption", {}, el("strong", { text: `Photo ${photo.id}` }),
          ` · by ${photo.uploader}${photo.album ? ` · ${photo.album}` : ""} · ${faces} · ${photo.model}`))));
}

async function showRequests() {
  const { requests } = await api("GET", "/api/tags/requests");
  const pending = requests.filter((r) => r.consent === "pending");
  const list = clear(document.getElementById("request-list"));
  for (const r of pending) {
    list.append(el("li", {}, `${r.uploader} tagged you in `,
      el("a", { href: `photo.html?id=${encodeURIComponent(r.photo)}#face-${r.face}` }, `photo ${r.photo}, face ${r.face}`),
      " — accept or refuse it there."));
  }
  document.getElementById("requests").hidden = pending.length === 0;
}

(async () => {
  const me = await signedIn();
  if (!me) return;
  try {
    const { photos } = await api("GET", "/api/photos");
    photos.sort((a, b) => b.id - a.id);
    const feed = document.getElementById("feed");
    const more = document.getElementById("more");
    const count = document.getElementById("count");
    let shown = 0;
    const next = () => {
      for (const photo of photos.slice(shown, shown + PAGE)) feed.append(card(photo));
      shown = Math.min(photos.length, shown + PAGE);
      more.hidden = shown >= photos.length;
      count.textContent = photos.length ? `${shown} of ${photos.length} photos shown.` : "No photos yet.";
    };
    more.addEventListener("click", () => {
      const first = shown;
      next();
      const link = feed.children[first] && feed.children[first].querySelector("a");
      if (link) link.focus();  // keyboard users continue at the first new photo
    });
    if ("IntersectionObserver" in window) {  // once the reader scrolls, the next page comes before the end
      window.addEventListener("scroll", () => {
        new IntersectionObserver((entries) => {
          if (entries.some((e) => e.isIntersecting) && shown < photos.length) next();
        }, { rootMargin: "400px" }).observe(more);
      }, { once: true, passive: true });
    }
    next();
    await showRequests();
  } catch (err) {
    showError(err);
  }
})();
