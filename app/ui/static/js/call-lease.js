// The call screen's heartbeat: while the page is open the navigator keeps the call.
//
// Every `data-every-seconds` the page asks the server to renew its lease
// (POST data-heartbeat-url with the session's CSRF token). When a renewal fails the navigator
// is told at once if a colleague has the call, and warned `data-warn-seconds` before a lease
// that could not be renewed (network down, laptop asleep) lapses. Loaded as a module file:
// the Content-Security-Policy forbids inline script. Without JavaScript the lease still lasts
// its full length and saving a lapsed call nobody else took still works.
//
// Time left is counted from the server's `seconds left` with the page's own monotonic timer
// (performance.now), never by comparing the server's time with the workstation's clock: a
// clinic PC whose clock is out by minutes (or days) must not warn falsely or too late.

const panel = document.querySelector("[data-call-lease]");

function localTime(moment) {
  return moment.toLocaleTimeString("en-GB", {
    hour: "2-digit",
    minute: "2-digit",
    timeZone: "Europe/London",
  });
}

if (panel) {
  const url = panel.dataset.heartbeatUrl;
  const token = panel.dataset.csrfToken;
  const everyMs = Number(panel.dataset.everySeconds || 60) * 1000;
  const warnMs = Number(panel.dataset.warnSeconds || 300) * 1000;
  const until = panel.querySelector("[data-lease-until]");
  const warning = panel.querySelector("[data-lease-warning]");
  // The server's time the hold ends (shown to the navigator) and, on this page's own timer,
  // the moment it ends.
  let expiresAt = new Date(panel.dataset.expiresAt);
  let endsAtTick = performance.now() + Number(panel.dataset.secondsLeft || 0) * 1000;
  let stopped = false;

  const warn = (text) => {
    warning.textContent = text;
    warning.hidden = false;
  };

  const checkLapse = () => {
    const left = endsAtTick - performance.now();
    if (!stopped && left <= warnMs) {
      warn(
        `Your hold on this call could not be renewed and ends at ${localTime(expiresAt)}. ` +
          "Save your outcomes now.",
      );
    }
  };

  const beat = async () => {
    if (stopped) return;
    const sentAt = performance.now();
    try {
      const response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": token, Accept: "application/json" },
      });
      if (response.ok) {
        const body = await response.json();
        expiresAt = new Date(body.lease_expires_at);
        // Counted from when the request left: the conservative end if the answer was slow.
        endsAtTick = sentAt + Number(body.lease_seconds_left) * 1000;
        until.textContent = localTime(expiresAt);
        warning.hidden = true;
        panel.dataset.renewals = String(Number(panel.dataset.renewals || 0) + 1);
        return;
      }
      if (response.status === 409 || response.status === 404) {
        stopped = true;
        let message = "You no longer hold this call.";
        try {
          message = (await response.json()).detail || message;
        } catch (_) {
          // keep the plain message
        }
        warn(`${message} Anything you type now is kept when you save, and you can choose then.`);
        return;
      }
    } catch (_) {
      // offline: the lapse check below warns in time
    }
    checkLapse();
  };

  setInterval(beat, everyMs);
  setInterval(checkLapse, 15_000);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") beat();
  });
  // Tells tests (and anyone inspecting the page) that the heartbeat is running.
  panel.dataset.leaseReady = "true";
}
