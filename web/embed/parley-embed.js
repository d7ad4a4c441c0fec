/*
 * parley-embed.js — put a Parley account portal inside your page.
 *
 *   <div id="portal"></div>
 *   <script src="https://parley.example.com/embed/parley-embed.js"></script>
 *   <script>
 *     ParleyEmbed.mount(document.getElementById("portal"), {
 *       // Ask YOUR backend for a fresh portal URL: it signs a partner
 *       // assertion and POSTs it to Parley's …/Partners/{sid}/PortalSessions.
 *       fetchPortalUrl: async () => (await (await fetch("/parley/portal-url", { method: "POST" })).json()).url,
 *     });
 *   </script>
 *
 * The portal URL works once and for at most a minute, so the snippet asks
 * for a new one whenever the portal says its session ended. The iframe is
 * resized to the portal's height (messages are accepted only from the
 * portal's own origin and window).
 */
(function (global) {
  "use strict";

  function mount(container, options) {
    if (!container || typeof options?.fetchPortalUrl !== "function") {
      throw new TypeError("ParleyEmbed.mount(container, { fetchPortalUrl }) needs an element and a fetchPortalUrl function");
    }
    const minHeight = options.minHeight ?? 480;
    const iframe = document.createElement("iframe");
    iframe.title = options.title ?? "Account portal";
    iframe.style.cssText = `width:100%;border:0;display:block;height:${minHeight}px;background:transparent;`;
    iframe.setAttribute("allow", "");
    container.replaceChildren(iframe);

    let portalOrigin = null;
    let lastFetch = 0;
    let fetching = null;
    let destroyed = false;

    async function load() {
      if (fetching || destroyed) return fetching;
      // Never ask more than once every 5 s, whatever the portal says.
      const wait = Math.max(0, lastFetch + 5000 - Date.now());
      fetching = (async () => {
        if (wait) await new Promise((r) => setTimeout(r, wait));
        lastFetch = Date.now();
        try {
          const url = await options.fetchPortalUrl();
          if (destroyed) return;
          portalOrigin = new URL(url).origin;
          iframe.src = url;
        } catch (err) {
          options.onError?.(err);
        } finally {
          fetching = null;
        }
      })();
      return fetching;
    }

    function onMessage(ev) {
      if (ev.source !== iframe.contentWindow || ev.origin !== portalOrigin) return;
      const msg = ev.data;
      if (!msg || msg.source !== "parley-portal") return;
      if (msg.type === "parley:resize" && Number.isFinite(msg.height)) {
        iframe.style.height = `${Math.max(minHeight, Math.ceil(msg.height))}px`;
      } else if (msg.type === "parley:expired") {
        options.onExpired?.();
        load();
      }
    }
    global.addEventListener("message", onMessage);
    load();

    return {
      iframe,
      reload: load,
      destroy() {
        destroyed = true;
        global.removeEventListener("message", onMessage);
        iframe.remove();
      },
    };
  }

  global.ParleyEmbed = { mount };
})(window);
