// Live updates: every message of the negotiation's stream reloads the board fragment in place,
// and its notices are read out in the "Live" list (an aria-live region).
// No inline script or handler anywhere (the Content-Security-Policy allows none): a form that
// asks before it is sent says what in data-confirm, and this asks.
(function () {
  // The report's "Print / save as PDF" button (no inline handler: the policy allows none).
  for (const button of document.querySelectorAll("[data-print]")) {
    button.addEventListener("click", function () { window.print(); });
  }
  const board = document.getElementById("board");
  if (!board) return;
  board.addEventListener("submit", function (event) {
    const question = event.target.dataset && event.target.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });
  if (!window.EventSource) return;
  const notices = document.getElementById("live-notices");
  const types = JSON.parse(document.getElementById("event-types").textContent);
  const source = new EventSource(board.dataset.live);
  let pending = null;
  let edited = false;  // somebody typed into a form of the board and has not sent it
  board.addEventListener("input", function () { edited = true; });
  board.addEventListener("change", function () { edited = true; });
  const paused = document.getElementById("live-paused");
  function busy() {
    const active = document.activeElement;
    return edited || (active && board.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName));
  }
  function refresh() {
    // Never replace a form somebody is filling in: the board waits, and says so.
    if (busy()) { if (paused) paused.hidden = false; return; }
    if (pending) return;
    pending = setTimeout(async function () {
      pending = null;
      if (busy()) { if (paused) paused.hidden = false; return; }
      const response = await fetch(board.dataset.fragment, { credentials: "same-origin" });
      if (response.ok && !busy()) {
        // An open "why?" stays open when the board is drawn again.
        const open = Array.from(board.querySelectorAll("details[open][id]"), (d) => d.id);
        board.innerHTML = await response.text();
        for (const id of open) { const again = document.getElementById(id); if (again) again.open = true; }
      }
    }, 50);
  }
  function onMessage(event) {
    const message = JSON.parse(event.data);
    for (const notice of message.notices || []) {
      const item = document.createElement("li");
      item.textContent = notice.text;
      notices.prepend(item);
    }
    refresh();
  }
  for (const type of types) source.addEventListener(type, onMessage);
})();
