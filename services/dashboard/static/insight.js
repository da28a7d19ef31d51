// The what-if panel: as somebody types or ticks, the same GET the form sends (with fragment=1)
// draws the answer in place. Without script the form is sent and the whole page comes back.
(function () {
  const form = document.getElementById("what-if-form");
  const result = document.getElementById("what-if-result");
  if (!form || !result || !window.fetch) return;
  let timer = null;
  let asked = 0;
  async function ask() {
    const params = new URLSearchParams(new FormData(form));
    params.set("fragment", "1");
    const mine = ++asked;
    const response = await fetch(form.action.split("#")[0] + "?" + params.toString(), { credentials: "same-origin" });
    const text = await response.text();
    if (mine === asked) result.innerHTML = text;  // only the newest answer is drawn
  }
  function soon() { clearTimeout(timer); timer = setTimeout(ask, 250); }
  form.addEventListener("input", soon);
  form.addEventListener("change", soon);
  form.addEventListener("submit", function (event) { event.preventDefault(); clearTimeout(timer); ask(); });
})();
